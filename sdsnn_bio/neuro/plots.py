"""A run's curves over the measured data points, in the brian2tools shape.

Each function takes plain arrays (and the reference rows to draw), an optional ``axes``,
labels its axes with the quantity and its unit, passes ``**kwds`` to matplotlib for the
simulated curve and returns the ``Axes``. The data points carry their source in the
legend; the report's captions repeat the full citations.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_density_overshoot", "plot_turnover", "plot_persistence", "plot_size_fit", "plot_neuron_death"]

_DATA = dict(color="k", capsize=3, linestyle="none")


def _axes(axes):
    if axes is None:
        import matplotlib.pyplot as plt
        _, axes = plt.subplots(figsize=(6, 4))
    return axes


def _age_err(row):
    lo, hi = row.age_days
    mid = 0.5 * (lo + hi)
    return mid, [[mid - lo], [hi - mid]]


def plot_density_overshoot(ages, density, adult_level, points=(), axes=None, **kwds):
    """Synapse density relative to its adult level over age, with measured relative points.

    Parameters
    ----------
    ages, density : array_like
        The run's ages (days) and density (any unit).
    adult_level : float
        The run's adult density (:func:`~sdsnn_bio.neuro.measures.density_overshoot`).
    points : sequence of (label, age_low_d, age_high_d, relative_value)
        Measured densities relative to the same study's adult value.
    axes : matplotlib.axes.Axes, optional
    **kwds
        Passed to ``plot`` of the run's curve.
    """
    ax = _axes(axes)
    a = np.asarray(ages, float)
    kw = dict(color="C0", label="simulated")
    kw.update(kwds)
    ax.plot(a, np.asarray(density, float) / adult_level, **kw)
    markers = "osD^v"
    for k, (label, lo, hi, v) in enumerate(points):
        mid = 0.5 * (lo + hi)
        ax.errorbar([mid], [v], xerr=[[mid - lo], [hi - mid]], marker=markers[k % len(markers)], label=label, **_DATA)
    ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
    if a.min() > 0 or any(p[1] > 0 for p in points):
        ax.set_xscale("log")
    ax.set_xlabel("age (days after birth)")
    ax.set_ylabel("synapse density / adult density")
    ax.legend(fontsize="small")
    return ax


def plot_turnover(ages, formation, elimination, rows=(), interval=14.0, axes=None, **kwds):
    """Spines formed and eliminated per ``interval`` days over age, with measured ranges.

    Parameters
    ----------
    ages, formation, elimination : array_like
        Age of the first look (days) and the fractions (:func:`~sdsnn_bio.neuro.measures.turnover`).
    rows : sequence of reference rows
        Zuo et al. (2005) formation and elimination rows (ranges in % at an age in days).
    **kwds
        Passed to ``plot`` of both simulated curves.
    """
    ax = _axes(axes)
    a = np.asarray(ages, float)
    ax.plot(a, 100 * np.asarray(elimination, float), color="C3", label="simulated elimination", **kwds)
    ax.plot(a, 100 * np.asarray(formation, float), color="C2", label="simulated formation", **kwds)
    for r in rows:
        if r.age_days is None:
            continue
        mid, xerr = _age_err(r)
        lo, hi = r.interval
        c = "C3" if "eliminated" in r.quantity else "C2"
        ax.errorbar([mid], [0.5 * (lo + hi)], xerr=xerr, yerr=[[0.5 * (hi - lo)]], color=c, capsize=3,
                    marker="s", mfc="none", linestyle="none",
                    label=f"{'elimination' if c == 'C3' else 'formation'}, {r.short_source}")
    ax.set_xlabel("age (days after birth)")
    ax.set_ylabel(f"spines per {interval:g} days (% of present)")
    h, lab = ax.get_legend_handles_labels()
    keep = {k: v for k, v in zip(lab, h)}
    ax.legend(keep.values(), keep.keys(), fontsize="small")
    return ax


def plot_persistence(bins, simulated, rows=(), axes=None, **kwds):
    """Fraction of persistent spines (lifetime >= 8 d) per age bin, simulated and measured.

    Parameters
    ----------
    bins : sequence of (low, high)
        Age bins (days).
    simulated : sequence of float
        The run's persistent fractions per bin (NaN where not covered).
    rows : sequence of reference rows
        Holtmaat et al. (2005) rows (% at an age bin).
    **kwds
        Passed to ``plot`` of the simulated points.
    """
    ax = _axes(axes)
    mids = np.array([0.5 * (lo + hi) for lo, hi in bins], float)
    kw = dict(color="C0", marker="o", label="simulated")
    kw.update(kwds)
    ax.plot(mids, 100 * np.asarray(simulated, float), **kw)
    for k, r in enumerate(rows):
        mid, xerr = _age_err(r)
        ax.errorbar([mid], [r.value], xerr=xerr, marker="s", label=r.short_source if k == 0 else None, **_DATA)
    ax.set_xlabel("age (days after birth)")
    ax.set_ylabel("persistent spines (% of all seen)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize="small")
    return ax


def plot_size_fit(sizes, fit, unit="um3", measured_range=None, range_label="", bins=60, axes=None, **kwds):
    """Histogram of spine sizes with the fitted log-normal and normal densities.

    Parameters
    ----------
    sizes : array_like
    fit : dict
        :func:`~sdsnn_bio.neuro.measures.size_fits` of ``sizes``.
    unit : str
        Unit of the sizes (axis label).
    measured_range : (float, float), optional
        Measured range of the median, drawn as a band.
    **kwds
        Passed to ``hist``.
    """
    from scipy import stats

    ax = _axes(axes)
    x = np.asarray(sizes, float)
    x = x[np.isfinite(x)]
    kw = dict(bins=bins, density=True, color="0.75", label="simulated")
    kw.update(kwds)
    ax.hist(x, **kw)
    g = np.linspace(max(x.min(), 1e-12), x.max(), 400)
    ax.plot(g, stats.lognorm.pdf(g, fit["shape"], scale=fit["scale"]), color="C0",
            label=f"log-normal fit (LL {fit['loglik_lognormal']:.4g})")
    ax.plot(g, stats.norm.pdf(g, fit["normal_mean"], fit["normal_sd"]), color="C1", ls="--",
            label=f"normal fit (LL {fit['loglik_normal']:.4g})")
    ax.axvline(fit["median"], color="C0", lw=0.8, ls=":")
    if measured_range is not None:
        ax.axvspan(measured_range[0], measured_range[1], color="C2", alpha=0.2, label=range_label or "measured")
    ax.set_xlabel(f"spine size ({unit})")
    ax.set_ylabel(f"probability density (1/{unit})")
    ax.legend(fontsize="small")
    return ax


def plot_neuron_death(ages, alive_fraction, rows=(), axes=None, **kwds):
    """Fraction of the neurons still alive over age, with measured death fractions as surviving levels.

    Parameters
    ----------
    ages, alive_fraction : array_like
        :func:`~sdsnn_bio.neuro.measures.neuron_death`'s ``ages`` and ``alive_fraction``.
    rows : sequence of reference rows
        Death fractions in % (drawn as ``1 - fraction``).
    **kwds
        Passed to ``plot`` of the run's curve.
    """
    ax = _axes(axes)
    kw = dict(color="C0", label="simulated")
    kw.update(kwds)
    ax.plot(np.asarray(ages, float), np.asarray(alive_fraction, float), **kw)
    for k, r in enumerate(rows):
        lo, hi = r.interval
        v = r.value if r.value is not None else (hi if lo is None else lo)
        ax.axhline(1 - v / 100.0, color=f"C{k + 2}", ls="--", lw=1,
                   label=f"{r.short_source}: {r.describe()} die")
    ax.set_xlabel("age (days after birth)")
    ax.set_ylabel("neurons alive (fraction)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize="small")
    return ax
