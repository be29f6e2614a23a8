"""The arrays a comparison needs, read from a run folder's structural history.

A training-mode run counts time in periods. :func:`time_axis` maps period ``e`` to the
age ``start_day + e * days_per_period`` (days after birth), from, in this order:

1. the arguments (``--days-per-period``, ``--start-day`` of ``sdsnn-bio compare``);
2. the run folder's own time axis: a ``time_axis`` object in ``run.json`` or a ``[time]``
   table in ``config.toml``, each with ``days_per_period`` and ``start_day`` (or
   ``age_start_days``, as the developmental mode, :mod:`sdsnn_bio.cortex`, writes it); a model in
   biological time declares it there, and then every record carries an age. Where the run
   declares its ages at the *end* of each period (``age_of_period_end`` in ``run.json``,
   ``age_start_days + (period + 1) * days_per_period``), period ``e``'s record, the structure
   after period ``e``'s run, is at that age;
3. the convention :data:`DEFAULT_DAYS_PER_PERIOD` = 4 days per period from
   :data:`DEFAULT_START_DAY` = postnatal day 16. This is a *convention*, not a calibration:
   one period is one 4-day imaging interval of Holtmaat et al. (2005), so that every period
   is one look, and period 0 is the first age they imaged (P16). A training run's periods
   are not days of development; the comparison says which mapping it used.

From the history (:class:`sdsnn_bio.history.History`): the presence of a spine at a
synapse site is its connection mask (every potential synapse of every recorded layer is a
site); the density is the fraction of sites connected.

Training runs: the neurons are the units of the pruned layers (:meth:`History.alive`);
spine sizes are the spine widths ``r_up + |r_lo|`` of the live synapses at the last
recorded period, a stand-in for spine volume in model units (the training mode has no
volume in µm³), so their median is not compared with measured volumes.

Developmental runs (``kind = "development"``, :mod:`sdsnn_bio.cortex`): the recorded stage's
``r_up`` is the spine volume in µm³ (``r_lo = 0``), so the sizes are volumes; the neurons
alive are counted from the run's table (``age_days``, ``n_alive`` after each period's
decisions), with all ``n_exc + n_inh`` neurons alive at the start age.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import RunError
from ..records import RunFolder

__all__ = ["RunRecord", "run_record", "time_axis", "DEFAULT_DAYS_PER_PERIOD", "DEFAULT_START_DAY"]

#: Convention of the period-to-age mapping of a training run (see the module documentation).
DEFAULT_DAYS_PER_PERIOD = 4.0
#: Age (postnatal day) of period 0 under the convention.
DEFAULT_START_DAY = 16.0


@dataclass
class RunRecord:
    """What the comparisons read of a run.

    Attributes
    ----------
    ages : numpy.ndarray [n_looks]
        Age (days) of each recorded period.
    periods : numpy.ndarray [n_looks]
    presence : numpy.ndarray [n_looks, n_sites] of bool
        Spine present at each potential synapse site.
    density : numpy.ndarray [n_looks]
        Fraction of the sites with a spine: of all potential sites (training runs), or
        (developmental runs) of the sites between two living neurons, the table's
        ``spine_density_alive``: a dead neuron's dendrites and axon are gone, so its sites are
        not tissue, and a density per volume of neuropil (Huttenlocher 1979) does not count them.
    density_all_sites : numpy.ndarray [n_looks]
        Fraction of all potential sites with a spine.
    density_basis : str
        What ``density`` is measured over.
    alive : numpy.ndarray [n_records, n_neurons] of bool, or [n_records] of int
        Which neurons are alive, or (developmental runs) how many.
    alive_ages : numpy.ndarray [n_records]
        Ages of the ``alive`` records (days).
    sizes : numpy.ndarray
        Sizes of the live spines at the last look (may be empty).
    size_unit : str
        Unit of ``sizes``; ``"um3"`` only for real volumes.
    size_label : str
        What ``sizes`` are.
    sizes_source : str
        Where ``sizes`` were read: a snapshot (exact) or a history keyframe (8-bit codes).
    mapping : dict
        ``days_per_period``, ``start_day``, ``offset`` (ages are ``start_day + (period + offset) *
        days_per_period``), ``source`` (``"arguments"``, ``"run.json"``, ``"config.toml"``,
        ``"convention"`` or ``"mixed"``).
    """

    ages: np.ndarray
    periods: np.ndarray
    presence: np.ndarray
    density: np.ndarray
    alive: np.ndarray
    sizes: np.ndarray
    size_unit: str
    size_label: str
    mapping: dict
    alive_ages: np.ndarray | None = None
    kind: str = "training"
    path: Path | None = None
    layers: list = field(default_factory=list)
    sizes_source: str = ""
    density_all_sites: np.ndarray | None = None
    density_basis: str = "all potential synapse sites"


def time_axis(run_dir, days_per_period=None, start_day=None) -> dict:
    """The period-to-age mapping of a run folder (see the module documentation).

    Returns
    -------
    dict
        ``days_per_period``, ``start_day``, ``offset`` (0, or 1 where the run declares ages at
        period ends), ``source`` and the source of each.
    """
    folder = run_dir if isinstance(run_dir, RunFolder) else RunFolder(run_dir)
    declared, source = {}, None
    meta = folder.path / "run.json"
    if meta.is_file():
        try:
            d = json.loads(meta.read_text())
        except (OSError, ValueError) as exc:
            raise RunError(f"{meta}: unreadable run metadata ({exc})") from exc
        if isinstance(d, dict) and isinstance(d.get("time_axis"), dict):
            declared, source = d["time_axis"], "run.json"
    if not declared and folder.config.is_file():
        try:
            with open(folder.config, "rb") as f:
                c = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise RunError(f"{folder.config}: unreadable configuration ({exc})") from exc
        if isinstance(c.get("time"), dict):
            declared, source = c["time"], "config.toml"
    out = {}
    for key, arg, default in (("days_per_period", days_per_period, DEFAULT_DAYS_PER_PERIOD),
                              ("start_day", start_day, DEFAULT_START_DAY)):
        if arg is not None:
            val, src = arg, "arguments"
        elif key in declared or (key == "start_day" and "age_start_days" in declared):
            val, src = declared.get(key, declared.get("age_start_days")), source
        else:
            val, src = default, "convention"
        try:
            val = float(val)
        except (TypeError, ValueError):
            raise RunError(f"{folder.path}: {key} must be a number, got {val!r} ({src})") from None
        if not np.isfinite(val) or (key == "days_per_period" and val <= 0) or (key == "start_day" and val < 0):
            raise RunError(f"{folder.path}: {key} = {val:g} ({src}) must be "
                             f"{'positive' if key == 'days_per_period' else 'a postnatal day >= 0'}")
        out[key] = val
        out[f"{key}_source"] = src
    # ages at period ends ("age_start_days + (period + 1) * days_per_period"), unless overridden
    end = "period+1" in str(declared.get("age_of_period_end", "")).replace(" ", "")
    out["offset"] = 1.0 if (end and out["start_day_source"] == source) else 0.0
    srcs = {out["days_per_period_source"], out["start_day_source"]}
    out["source"] = srcs.pop() if len(srcs) == 1 else "mixed"
    return out


def run_record(run_dir, days_per_period=None, start_day=None) -> RunRecord:
    """Read the arrays of the comparisons from a run folder's structural history.

    Parameters
    ----------
    run_dir : path or RunFolder
    days_per_period, start_day : float, optional
        Override the run's time axis (see :func:`time_axis`).

    Returns
    -------
    RunRecord

    Raises
    ------
    sdsnn_bio.history.HistoryError
        The folder is missing, not a run folder, or has no structural history.
    """
    from ..history import History, HistoryError

    h = History(run_dir)
    axis = time_axis(h.folder, days_per_period, start_day)
    kind = "development" if getattr(h.cfg, "time", None) is not None and hasattr(h.cfg, "network") else "training"
    recorded = [st.name for st in h.recorded]
    presence = np.concatenate([_presence(h, name) for name in recorded], axis=1)
    periods = h.periods.copy()
    if kind == "development":
        # the final record (period P) of a developmental run is the state after period P - 1's
        # decisions, which period P - 1's own record already holds: one look per period
        keep = periods < int(h.cfg.schedule.periods)
        periods, presence = periods[keep], presence[keep]
        if not periods.size:
            raise HistoryError(f"{h.folder.history}: no record of a period of the run (only its final state)")
    ages = axis["start_day"] + (periods + axis["offset"]) * axis["days_per_period"]
    if kind == "development":
        alive_ages, alive = _alive_counts(h, axis)
        size_unit, size_label = "um3", "spine volume of the live spines"
    else:
        neuron_layers = h.layers or recorded
        alive = np.concatenate([h.alive(name)[1] for name in neuron_layers], axis=1)
        alive_ages = ages
        size_unit = "model units"
        size_label = "spine width r_up + |r_lo| of the live synapses (stand-in for spine volume)"
    sizes, sizes_source = _sizes(h, recorded, int(periods[-1]), presence[-1])
    all_sites = presence.mean(axis=1)
    density, basis = all_sites, "all potential synapse sites"
    if kind == "development":
        tissue = _tissue_density(h, periods)
        if tissue is not None:
            density, basis = tissue, TISSUE_BASIS
    return RunRecord(ages=ages, periods=periods, presence=presence, density=density, alive=alive,
                     sizes=sizes, size_unit=size_unit, size_label=size_label, mapping=axis, alive_ages=alive_ages,
                     kind=kind, path=h.folder.path, layers=recorded, sizes_source=sizes_source,
                     density_all_sites=all_sites, density_basis=basis)


#: What the density of a developmental run is measured over (see :class:`RunRecord`).
TISSUE_BASIS = "potential sites between two living neurons (the surviving tissue; periods.csv spine_density_alive)"


def _tissue_density(h, periods) -> np.ndarray | None:
    """``spine_density_alive`` of the run's table at ``periods``, or None where the table lacks it."""
    from ..history import HistoryError

    if not h.folder.table.is_file():
        return None
    table = h.folder.read_table()
    if not {"period", "spine_density_alive"} <= set(table):
        return None
    try:
        by_period = dict(zip(np.asarray(table["period"], float).astype(int),
                             np.asarray(table["spine_density_alive"], float)))
    except (TypeError, ValueError):
        raise HistoryError(f"{h.folder.table}: period and spine_density_alive must be numbers") from None
    missing = [int(e) for e in periods if int(e) not in by_period]
    if missing:
        raise HistoryError(f"{h.folder.table}: no row of periods {missing[:5]} for the density over the living tissue")
    return np.array([by_period[int(e)] for e in periods])


def _sizes(h, recorded: list, period: int, mask: np.ndarray) -> tuple:
    """Spine sizes ``r_up + |r_lo|`` of the live sites at the last look ``period``, and where they come from.

    Exact values where the folder has them: the last snapshot (float64, the state as the next run
    starts from it), if it is of ``period`` or, where ``period`` is the run's final record, of the
    period before it with the same mask (the final state of a finished run is that snapshot's
    state). Otherwise the history's nearest keyframe (8-bit codes, :meth:`History.structure_at`).
    """
    from ..history import HistoryError, HistoryRecorder

    snaps = h.folder.snapshot_periods()
    if snaps:
        k = max(snaps)
        final = h.final_period is not None and period == h.final_period
        if k == period or (final and k == period - 1):
            try:
                snap = h.folder.load_snapshot(k)
            except (OSError, ValueError, KeyError, EOFError) as exc:
                raise HistoryError(f"{h.folder.snapshot_path(k)}: unreadable snapshot ({exc})") from exc
            lays = [HistoryRecorder._layer_arrays(snap.arrays, name) for name in recorded]
            if all(a[v] is not None for a in lays for v in ("connected", "r_up", "r_lo")):
                conn = np.concatenate([np.asarray(a["connected"]) != 0 for a in lays])
                if conn.shape == mask.shape and np.array_equal(conn, mask):
                    width = np.concatenate([np.asarray(a["r_up"], float) + np.abs(np.asarray(a["r_lo"], float))
                                            for a in lays])[conn]
                    return width[np.isfinite(width)], f"snapshot of period {k} (exact)"
    last = h.structure_at(period)
    sizes, exact = [], True
    for name in recorded:
        s = last[name]
        exact = exact and s.exact
        width = (np.asarray(s.r_up, float) + np.abs(np.asarray(s.r_lo, float)))[s.connected]
        sizes.append(width[np.isfinite(width)])
    vp = last[recorded[0]].values_period if recorded else period
    src = f"snapshot of period {vp} (exact, float32)" if exact else f"history keyframe of period {vp} (8-bit codes)"
    return (np.concatenate(sizes) if sizes else np.zeros(0)), src


def _presence(h, name: str) -> np.ndarray:
    """Masks of layer ``name`` at every recorded period, ``[n_periods, n_synapses]``: the first
    period's mask, then its pruning and regeneration events applied period by period."""
    m = h.mask(name, int(h.periods[0]))
    out = np.empty((len(h.periods), m.size), bool)
    out[0] = m
    ev = h.events(name)
    syn = np.isin(ev["kind"], ("synapse_pruned", "synapse_regenerated"))
    per, idx = ev["period"][syn], ev["index"][syn]
    for k, e in enumerate(h.periods[1:], start=1):
        flip = idx[per == e]
        m[flip] = ~m[flip]
        out[k] = m
    return out


def _alive_counts(h, axis) -> tuple:
    """``(ages, n_alive)`` of a developmental run: all neurons at the start age, then the table's rows."""
    from ..history import HistoryError

    table = h.folder.read_table() if h.folder.table.is_file() else {}
    n0 = int(h.cfg.network.n_exc + h.cfg.network.n_inh)
    if table and not {"age_days", "n_alive"} <= set(table):
        raise HistoryError(f"{h.folder.table}: a developmental run's table needs the columns age_days and n_alive")
    try:
        a = np.asarray(table.get("age_days", []), dtype=float)
        c = np.asarray(table.get("n_alive", []), dtype=float)
    except (TypeError, ValueError):
        raise HistoryError(f"{h.folder.table}: age_days and n_alive must be numbers") from None
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(c))):
        raise HistoryError(f"{h.folder.table}: empty or non-finite age_days or n_alive")
    ages = np.concatenate([[axis["start_day"]], a])
    counts = np.concatenate([[n0], c]).astype(int)
    return ages, counts
