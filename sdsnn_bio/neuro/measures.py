"""The measures that the reference data report, computed on simulated records.

Each function takes plain arrays (a per-site presence matrix at given ages, a density
curve, spine sizes, an alive matrix) or a run folder (then the arrays come from
:func:`sdsnn_bio.neuro.runs.run_record`), and returns a dict of numbers with the
definition used. Ages are days after birth on the shared axis of the reference data.

Definitions
-----------
Synapse density overshoot
    ``peak_ratio`` = maximum of the density curve / the adult level, the adult level being
    the mean of the curve over ``adult_ages`` (default: the last quarter of the record's age
    span); ``peak_age`` = the age of the maximum (first one on a tie).
Formation and elimination per two weeks (Zuo et al. 2005)
    Two looks ``t`` and ``t + 14 d``: elimination = spines present at ``t`` and gone at
    ``t + 14``, formation = spines present at ``t + 14`` and absent at ``t``, each as a
    fraction of the spines present at ``t``. Spines born and lost between the two looks are
    invisible, as in the imaging. Over an age bin the rates are averaged over every look
    ``t`` in the bin whose partner ``t + 14`` is recorded.
Persistent spines (Holtmaat et al. 2005)
    Looks every 4 days over the age bin. Every run of consecutive looks in which a site
    carries a spine is one distinct spine (a spine that disappears and reappears at the same
    site is a new spine). The persistent fraction is the fraction of all distinct spines seen
    whose run spans at least 8 days (first to last look of the run), i.e. at least 3
    consecutive looks at the 4-day spacing. This is *not* the survival of the spines present
    at the first look.
Spine sizes
    Log-normal fit (``scipy.stats.lognorm.fit`` with ``floc=0``) against a normal fit
    (``scipy.stats.norm.fit``) of the live spines' sizes: parameters, total log-likelihoods,
    which is larger, and the median ``exp(mu)`` of the log-normal.
Neuron death
    Of the neurons alive at any record, the fraction not alive at the last record.
"""

from __future__ import annotations

import numpy as np

from ..errors import SdsnnError

__all__ = ["MeasureError", "density_overshoot", "turnover", "turnover_two_weeks", "persistent_fraction",
           "size_fits", "neuron_death", "select_looks"]


class MeasureError(SdsnnError, ValueError):
    """A measure cannot be computed from the given input (the message says why and where)."""


def _record(x, **kw):
    from .runs import RunRecord, run_record
    if isinstance(x, RunRecord):
        return x
    return run_record(x, **kw)


def _is_run(x) -> bool:
    from pathlib import Path

    from ..records import RunFolder
    from .runs import RunRecord
    return isinstance(x, (str, Path, RunFolder, RunRecord))


def _presence_ages(presence, ages, **kw):
    if _is_run(presence):
        rec = _record(presence, **kw)
        return rec.presence, rec.ages
    p = np.asarray(presence)
    if p.ndim != 2:
        raise MeasureError(f"presence must be a matrix [n_looks, n_sites], got shape {p.shape}")
    if ages is None:
        raise MeasureError("presence given as an array: give the ages of its looks (days)")
    a = np.asarray(ages, dtype=float)
    if a.shape != (p.shape[0],):
        raise MeasureError(f"{a.size} ages for {p.shape[0]} looks")
    if a.size > 1 and np.any(np.diff(a) <= 0):
        raise MeasureError("the ages of the looks must increase")
    return p.astype(bool), a


# ------------------------------------------------------------------ density
def density_overshoot(ages, density=None, adult_ages=None, **kw) -> dict:
    """Peak of a synapse-density curve relative to its adult level, and the age of the peak.

    Parameters
    ----------
    ages : array_like or run folder
        Ages (days) of the records; or a run folder / :class:`~sdsnn_bio.neuro.runs.RunRecord`,
        whose live synapses per potential synapse are the density.
    density : array_like, optional
        Density at each age (any unit; the ratio is unit-free). Not with a run folder.
    adult_ages : (float, float), optional
        Age interval (days) whose mean density is the adult level; default the last quarter of
        the record's age span.

    Returns
    -------
    dict
        ``peak_ratio``, ``peak_age`` (days), ``peak``, ``adult_level``, ``adult_ages``, ``n_adult``.
    """
    if _is_run(ages):
        rec = _record(ages, **kw)
        ages, density = rec.ages, rec.density
    a = np.asarray(ages, dtype=float)
    d = np.asarray(density, dtype=float)
    if a.ndim != 1 or d.shape != a.shape or a.size < 2:
        raise MeasureError(f"density needs two 1-D arrays of equal length >= 2 (got {a.shape} and {d.shape})")
    if adult_ages is None:
        adult_ages = (a.min() + 0.75 * (a.max() - a.min()), a.max())
    lo, hi = float(adult_ages[0]), float(adult_ages[1])
    sel = (a >= lo) & (a <= hi)
    if not sel.any():
        raise MeasureError(f"no record in the adult ages {lo:g}..{hi:g} d (records {a.min():g}..{a.max():g} d)")
    adult = float(d[sel].mean())
    if adult <= 0:
        raise MeasureError(f"adult density {adult:g} is not positive")
    k = int(np.argmax(d))
    return {"peak_ratio": float(d[k]) / adult, "peak_age": float(a[k]), "peak": float(d[k]),
            "adult_level": adult, "adult_ages": (lo, hi), "n_adult": int(sel.sum())}


# ----------------------------------------------------------------- turnover
def turnover(presence, ages=None, interval: float = 14.0, tol: float | None = None, **kw) -> dict:
    """Formation and elimination between each look and the look ``interval`` days later.

    Parameters
    ----------
    presence : array_like [n_looks, n_sites] of bool, or run folder
    ages : array_like [n_looks]
        Age of each look (days).
    interval : float
        Days between the two looks compared (14: Zuo et al. 2005).
    tol : float, optional
        Largest allowed difference between ``interval`` and the real gap between the two
        looks; default half the median spacing of the looks, at most a quarter of ``interval``.

    Returns
    -------
    dict
        ``age`` (of the first look), ``gap`` (days actually between the looks), ``present``
        (spines at the first look), ``formation`` and ``elimination`` (fractions of
        ``present``), one entry per look that has a partner.
    """
    p, a = _presence_ages(presence, ages, **kw)
    if tol is None:
        tol = min(0.5 * float(np.median(np.diff(a))), 0.25 * interval) if a.size > 1 else 0.0
    out = {k: [] for k in ("age", "gap", "present", "formation", "elimination")}
    for i in range(a.size):
        j = int(np.argmin(np.abs(a - (a[i] + interval))))
        if j <= i or abs(a[j] - a[i] - interval) > tol + 1e-9:
            continue
        n0 = int(p[i].sum())
        if n0 == 0:
            continue
        out["age"].append(a[i])
        out["gap"].append(a[j] - a[i])
        out["present"].append(n0)
        out["elimination"].append(np.count_nonzero(p[i] & ~p[j]) / n0)
        out["formation"].append(np.count_nonzero(~p[i] & p[j]) / n0)
    return {k: np.asarray(v, dtype=float if k != "present" else int) for k, v in out.items()}


def turnover_two_weeks(presence, ages=None, age_bin=None, interval: float = 14.0, tol: float | None = None,
                       **kw) -> dict:
    """Formation and elimination per two weeks at a measured age (Zuo et al. 2005's measure).

    Parameters
    ----------
    presence, ages, interval, tol
        As :func:`turnover`.
    age_bin : float or (float, float)
        The measured age (days): a single age (the look nearest to it, at most a quarter of
        ``interval`` away) or an
        interval (every look ``t`` in ``[low, max(low, high - interval)]`` with its partner,
        averaged).

    Returns
    -------
    dict
        ``formation``, ``elimination`` (fractions per ``interval``), ``n_pairs``, ``ages``
        (first looks used), ``gap`` (mean days between the looks).
    """
    t = turnover(presence, ages, interval=interval, tol=tol, **kw)
    if t["age"].size == 0:
        raise MeasureError(f"no pair of looks {interval:g} d apart with spines present")
    if age_bin is None:
        raise MeasureError("give the measured age (age_bin) of the two-week turnover")
    if np.ndim(age_bin) == 0:
        k = int(np.argmin(np.abs(t["age"] - float(age_bin))))
        sel = np.zeros(t["age"].size, bool)
        sel[k] = True
        if abs(t["age"][k] - float(age_bin)) > 0.25 * interval + 1e-9:
            raise MeasureError(f"no look within {0.25 * interval:g} d of age {float(age_bin):g} d with a partner "
                               f"{interval:g} d later (looks with partners: {t['age'].min():g}..{t['age'].max():g} d)")
    else:
        lo, hi = float(age_bin[0]), float(age_bin[1])
        sel = (t["age"] >= lo) & (t["age"] <= max(lo, hi - interval) + 1e-9)
        if not sel.any():
            raise MeasureError(f"no look in {lo:g}..{hi:g} d with a partner {interval:g} d later "
                               f"(looks with partners: {t['age'].min():g}..{t['age'].max():g} d)")
    return {"formation": float(t["formation"][sel].mean()), "elimination": float(t["elimination"][sel].mean()),
            "n_pairs": int(sel.sum()), "ages": t["age"][sel], "gap": float(t["gap"][sel].mean())}


# -------------------------------------------------------------- persistence
def select_looks(ages, age_bin, spacing: float = 4.0) -> np.ndarray:
    """Indices of the looks nearest to ``low, low + spacing, ...`` within ``age_bin`` (duplicates dropped)."""
    a = np.asarray(ages, dtype=float)
    lo, hi = float(age_bin[0]), float(age_bin[1])
    inside = np.flatnonzero((a >= lo - 1e-9) & (a <= hi + 1e-9))
    if inside.size == 0:
        return inside
    grid = np.arange(lo, hi + 1e-9, spacing)
    idx = [int(inside[np.argmin(np.abs(a[inside] - g))]) for g in grid]
    return np.unique(idx)


def persistent_fraction(presence, ages=None, age_bin=None, spacing: float = 4.0, min_days: float = 8.0,
                        **kw) -> dict:
    """Fraction of persistent spines over an age bin, counted as Holtmaat et al. (2005) count it.

    Parameters
    ----------
    presence : array_like [n_looks, n_sites] of bool, or run folder
    ages : array_like [n_looks]
        Ages of the looks (days).
    age_bin : (float, float), optional
        Ages (days) over which looks are taken; default all looks.
    spacing : float
        Days between looks (4 in Holtmaat 2005): the looks nearest to ``low + k * spacing``.
    min_days : float
        Lifetime (days between the first and the last look of a spine's run) that makes a
        spine persistent (8: three consecutive looks at a 4-day spacing).

    Returns
    -------
    dict
        ``fraction`` (persistent / distinct spines), ``n_spines`` (distinct spines seen),
        ``n_persistent``, ``looks`` (their ages), ``spacing`` (mean spacing of the looks used).
    """
    p, a = _presence_ages(presence, ages, **kw)
    if age_bin is None:
        age_bin = (a[0], a[-1])
    idx = select_looks(a, age_bin, spacing)
    if idx.size < 2:
        raise MeasureError(f"fewer than two looks in the age bin {age_bin[0]:g}..{age_bin[1]:g} d "
                           f"(looks at {a.min():g}..{a.max():g} d)")
    sub, t = p[idx], a[idx]
    # runs of consecutive looks with a spine: starts and ends per site
    pad = np.zeros((1, sub.shape[1]), bool)
    x = np.vstack([pad, sub, pad]).astype(np.int8)
    d = np.diff(x, axis=0)                    # +1 at a start, -1 one past an end
    # in site-major order the k-th start and the k-th end belong to the same run
    _, s_look = np.nonzero(d.T == 1)
    _, e_look = np.nonzero(d.T == -1)
    first, last = t[s_look], t[e_look - 1]
    life = last - first
    n = int(life.size)
    if n == 0:
        raise MeasureError(f"no spine seen in the looks of {age_bin[0]:g}..{age_bin[1]:g} d")
    n_p = int(np.count_nonzero(life >= min_days - 1e-9))
    return {"fraction": n_p / n, "n_spines": n, "n_persistent": n_p, "looks": t,
            "spacing": float(np.mean(np.diff(t)))}


# -------------------------------------------------------------------- sizes
def size_fits(sizes, measured_range=None, **kw) -> dict:
    """Log-normal against normal fit of live spine sizes.

    Parameters
    ----------
    sizes : array_like or run folder
        Sizes (volumes, or a stand-in) of the live spines; must be positive.
    measured_range : (float, float), optional
        Range of the measured median (same unit as ``sizes``); ``median_in_range`` says
        whether the fitted median lies in it.

    Returns
    -------
    dict
        ``shape`` (sigma), ``scale`` (``exp(mu)``, the median), ``mu``, ``sigma``, ``loglik_lognormal``,
        ``normal_mean``, ``normal_sd``, ``loglik_normal``, ``better`` (``"lognormal"`` or
        ``"normal"``), ``median`` (fitted), ``sample_median``, ``n``, ``median_in_range``.
    """
    from scipy import stats

    if _is_run(sizes):
        sizes = _record(sizes, **kw).sizes
    x = np.asarray(sizes, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if x.size < 3:
        raise MeasureError(f"a size fit needs at least 3 finite sizes, got {x.size}")
    if np.any(x <= 0):
        raise MeasureError(f"{int(np.count_nonzero(x <= 0))} sizes are not positive: a log-normal fit needs "
                           "positive sizes")
    if np.ptp(x) == 0:
        raise MeasureError("all sizes are equal: no distribution to fit")
    s, loc, scale = stats.lognorm.fit(x, floc=0)
    ll_ln = float(np.sum(stats.lognorm.logpdf(x, s, loc=0, scale=scale)))
    m, sd = stats.norm.fit(x)
    ll_n = float(np.sum(stats.norm.logpdf(x, m, sd)))
    out = {"shape": float(s), "sigma": float(s), "scale": float(scale), "mu": float(np.log(scale)),
           "loglik_lognormal": ll_ln, "normal_mean": float(m), "normal_sd": float(sd), "loglik_normal": ll_n,
           "better": "lognormal" if ll_ln > ll_n else "normal", "median": float(scale),
           "sample_median": float(np.median(x)), "n": int(x.size), "median_in_range": None}
    if measured_range is not None:
        out["median_in_range"] = bool(measured_range[0] <= scale <= measured_range[1])
    return out


# ------------------------------------------------------------- neuron death
def neuron_death(alive, ages=None, **kw) -> dict:
    """Fraction of neurons that died.

    Parameters
    ----------
    alive : array_like [n_records, n_neurons] of bool, or [n_records] of int, or run folder
        Which neurons are alive at each record; or only how many (then neurons are taken to
        die and never come back: the neurons ever alive are the largest count).
    ages : array_like [n_records], optional
        Ages of the records (days), returned with the alive fraction over time.

    Returns
    -------
    dict
        ``fraction_died`` (of the neurons alive at any record, those not alive at the last),
        ``n_neurons`` (alive at any record), ``n_died``, ``alive_fraction`` per record
        (relative to ``n_neurons``), ``ages``.
    """
    if _is_run(alive):
        rec = _record(alive, **kw)
        alive, ages = rec.alive, rec.alive_ages
    if np.ndim(alive) == 1:
        c = np.asarray(alive)
        if c.size < 1 or np.any(c < 0) or np.any(c != np.round(c)):
            raise MeasureError("alive counts must be non-negative integers, one per record")
        n = int(c.max())
        if n == 0:
            raise MeasureError("no neuron is alive at any record")
        a = None if ages is None else np.asarray(ages, dtype=float)
        if a is not None and a.shape != c.shape:
            raise MeasureError(f"{a.size} ages for {c.size} records")
        return {"fraction_died": (n - int(c[-1])) / n, "n_neurons": n, "n_died": n - int(c[-1]),
                "alive_fraction": c / n, "ages": a}
    m = np.asarray(alive, dtype=bool)
    if m.ndim != 2 or m.shape[0] < 1:
        raise MeasureError(f"alive must be a matrix [n_records, n_neurons] or counts, got shape {m.shape}")
    ever = m.any(axis=0)
    n = int(ever.sum())
    if n == 0:
        raise MeasureError("no neuron is alive at any record")
    died = int(np.count_nonzero(ever & ~m[-1]))
    a = None if ages is None else np.asarray(ages, dtype=float)
    if a is not None and a.shape != (m.shape[0],):
        raise MeasureError(f"{a.size} ages for {m.shape[0]} records")
    return {"fraction_died": died / n, "n_neurons": n, "n_died": died,
            "alive_fraction": m[:, ever].sum(axis=1) / n, "ages": a}
