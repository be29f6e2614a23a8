"""Every comparison of a run with the reference data, as a table and a Markdown report.

:func:`compare_record` puts a :class:`~sdsnn_bio.neuro.runs.RunRecord` (from a run folder,
or built from arrays) beside each shipped dataset and returns one :class:`Comparison` per
quantity: the simulated value, the measured value or range, its source and tag.
:func:`write_report` writes ``compare.md`` (the table, the mapping of periods to ages, one
figure per dataset with the sources in the captions) and ``compare.json`` (the numbers);
:func:`compare_run` does both for a run folder (``sdsnn-bio compare RUN_DIR``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .measures import (MeasureError, density_overshoot, neuron_death, persistent_fraction, size_fits, turnover,
                       turnover_two_weeks)
from .reference import load_dataset
from .runs import RunRecord, run_record

__all__ = ["Comparison", "compare_record", "format_table", "write_report", "compare_run"]

_NONE = "-"


@dataclass
class Comparison:
    """One line of the comparison table.

    ``value`` is the simulated number (None where the run does not cover the measured age
    or the quantity is not available); ``simulated`` is it as text, with the reason where
    it is missing; ``agrees`` says whether the simulated value lies in the measured range
    (None where that is not defined).
    """

    dataset: str
    quantity: str
    simulated: str
    measured: str
    source: str
    tag: str
    value: float | None = None
    agrees: bool | None = None
    note: str = ""


def _in(v, lo, hi):
    return bool((lo is None or v >= lo - 1e-12) and (hi is None or v <= hi + 1e-12))


def _death_rows():
    """The cortical death fractions compared with: Southwell 2012 (mouse) and Blanquie 2017 (rodents)."""
    return [r for r in load_dataset("neuron_death") if r.authors.startswith(("Southwell", "Blanquie"))]


def _age_text(row):
    if row.age_days is None:
        return row.age
    lo, hi = row.age_days
    return f"{row.age}, {lo:g} d" if lo == hi else f"{row.age}, {lo:g}-{hi:g} d"


#: Range of the peak / adult density ratio that agrees (issue 12: 1.3-1.8, around Huttenlocher 1979's ~1.5).
PEAK_RATIO_TARGET = (1.3, 1.8)


def compare_record(rec: RunRecord, adult_ages=None) -> tuple:
    """Compare a run's record with every dataset.

    Parameters
    ----------
    rec : RunRecord
    adult_ages : (float, float), optional
        Adult ages (days) of the density overshoot; default the last quarter of the record.

    Returns
    -------
    (list of Comparison, dict)
        The table's lines, and the detailed results per measure (for the figures and JSON).
    """
    out, details = [], {}
    span = f"run ages {rec.ages.min():g}-{rec.ages.max():g} d"
    # ---- synapse density
    dens = load_dataset("synapse_density")
    try:
        d = density_overshoot(rec.ages, rec.density, adult_ages=adult_ages)
    except MeasureError as exc:
        d = None
        out.append(Comparison("synapse_density", "synapse density, peak / adult", f"n/a ({exc})", _NONE, _NONE,
                              _NONE))
    if d is not None:
        details["density"] = {**d, "basis": rec.density_basis}
        for r in dens.select(quantity="peak synaptic density relative to adult"):
            out.append(Comparison("synapse_density", f"synapse density, peak / adult ({r.species}, {r.area})",
                                  f"{d['peak_ratio']:.3g}", f"{r.describe()} at {_age_text(r)}", r.source, r.tag,
                                  value=d["peak_ratio"], agrees=_in(d["peak_ratio"], *PEAK_RATIO_TARGET),
                                  note=f"over the {rec.density_basis.split(' (')[0]}; adult level: mean over "
                                  f"{d['adult_ages'][0]:g}-{d['adult_ages'][1]:g} d; agrees: in "
                                  f"{PEAK_RATIO_TARGET[0]:g}-{PEAK_RATIO_TARGET[1]:g} (issue 12's target around "
                                  f"Huttenlocher's ~1.5)"))
            if rec.density_all_sites is not None and rec.density_all_sites is not rec.density:
                try:
                    a = density_overshoot(rec.ages, rec.density_all_sites, adult_ages=adult_ages)
                    details["density_all_sites"] = a
                    out.append(Comparison("synapse_density", "synapse density over all potential sites, peak / adult",
                                          f"{a['peak_ratio']:.3g}", f"{r.describe()} at {_age_text(r)}", r.source,
                                          r.tag, value=a["peak_ratio"],
                                          note="counts the sites of dead neurons as empty tissue; not compared"))
                except MeasureError:
                    pass
        for r in dens.select(quantity="age of maximum synaptic density"):
            bound = r.value is None and r.low is not None      # "not reached until after"
            out.append(Comparison("synapse_density", f"age of peak synapse density ({r.species}, {r.area}), d",
                                  f"{d['peak_age']:g}", f"{r.describe()} ({_age_text(r)})", r.source, r.tag,
                                  value=d["peak_age"], agrees=(d["peak_age"] >= r.age_days[0]) if bound else None))
        peak = dens.select(quantity="synaptic density", statistic="all-layer mean (peak)")
        adult = dens.select(quantity="synaptic density", statistic="all-layer mean (adult)")
        for p, a in zip(peak, adult):
            out.append(Comparison("synapse_density", f"synapse density, peak / adult ({p.species}, {p.area})",
                                  f"{d['peak_ratio']:.3g}", f"peak {p.describe()} at {_age_text(p)}; adult "
                                  f"{a.describe()} at {_age_text(a)}", p.source, p.tag, value=d["peak_ratio"]))
    # ---- turnover per two weeks (Zuo 2005)
    tw = load_dataset("spine_turnover")
    t_all = turnover(rec.presence, rec.ages)
    details["turnover_14d"] = {k: v.tolist() for k, v in t_all.items()}
    for r in tw:
        if r.age_days is None or "2 weeks" not in r.quantity:
            continue
        lo, hi = r.age_days
        key = "elimination" if "eliminated" in r.quantity else "formation"
        try:
            m = turnover_two_weeks(rec.presence, rec.ages, age_bin=lo if lo == hi else (lo, hi))
            v = 100 * m[key]
            rlo, rhi = r.interval
            c = Comparison("spine_turnover", f"{r.quantity} (%), {r.age}", f"{v:.3g}", r.describe(), r.source, r.tag,
                           value=v, agrees=_in(v, rlo, rhi),
                           note=f"{m['n_pairs']} pair(s) of looks {m['gap']:g} d apart from {m['ages'][0]:g} d")
        except MeasureError:
            c = Comparison("spine_turnover", f"{r.quantity} (%), {r.age}", f"not covered ({span})", r.describe(),
                           r.source, r.tag)
        out.append(c)
    # ---- turnover per period (the training mode's own clock; no measurement)
    if rec.presence.shape[0] > 1:
        p0, p1 = rec.presence[:-1], rec.presence[1:]
        n0 = np.maximum(p0.sum(axis=1), 1)
        form = (~p0 & p1).sum(axis=1) / n0
        elim = (p0 & ~p1).sum(axis=1) / n0
        details["turnover_per_look"] = {"age": rec.ages[:-1].tolist(), "formation": form.tolist(),
                                        "elimination": elim.tolist()}
        gap = float(np.median(np.diff(rec.ages)))
        for name, x in (("formation", form), ("elimination", elim)):
            out.append(Comparison("spine_turnover", f"spine {name} per look ({gap:g} d), mean (%)",
                                  f"{100 * x.mean():.3g}", _NONE, _NONE, _NONE, value=100 * float(x.mean()),
                                  note="between consecutive records; no measurement at this interval"))
    # ---- persistent fraction (Holtmaat 2005)
    bins, fr = [], []
    for r in load_dataset("spine_persistence"):
        lo, hi = r.age_days
        bins.append((lo, hi))
        try:
            m = persistent_fraction(rec.presence, rec.ages, age_bin=(lo, hi))
            if m["looks"].size < 3:
                raise MeasureError("fewer than 3 looks")
            v = 100 * m["fraction"]
            fr.append(m["fraction"])
            out.append(Comparison("spine_persistence", f"persistent spines (%), {r.age}", f"{v:.3g}", r.describe(),
                                  r.source, r.tag, value=v, agrees=abs(v - r.value) <= 15,
                                  note=f"{m['n_spines']} spines in {m['looks'].size} looks "
                                  f"{m['looks'][0]:g}-{m['looks'][-1]:g} d; agrees: within 15 points"))
        except MeasureError:
            fr.append(np.nan)
            out.append(Comparison("spine_persistence", f"persistent spines (%), {r.age}", f"not covered ({span})",
                                  r.describe(), r.source, r.tag))
    details["persistence"] = {"bins": bins, "fraction": fr}
    # ---- spine sizes
    sz = load_dataset("spine_size")
    volumes = rec.size_unit == "um3"
    iqr = [r for r in sz.select(quantity="spine volume") if r.statistic.startswith("interquartile")]
    shape = sz.select(quantity="spine size distribution shape")
    try:
        f = size_fits(rec.sizes, measured_range=iqr[0].interval if (volumes and iqr) else None)
        details["sizes"] = {**f, "source": rec.sizes_source}
        for r in shape:
            out.append(Comparison("spine_size", "better fit of live spine sizes (log-likelihood)",
                                  f"{f['better']} (LL {f['loglik_lognormal']:.4g} vs normal {f['loglik_normal']:.4g})",
                                  r.describe(), r.source, r.tag, value=f["loglik_lognormal"] - f["loglik_normal"],
                                  agrees=f["better"] == r.text, note=rec.size_label))
        for r in iqr:
            if volumes:
                out.append(Comparison("spine_size", "median live spine volume (log-normal fit), um3",
                                      f"{f['median']:.3g}", r.describe(), r.source, r.tag, value=f["median"],
                                      agrees=f["median_in_range"], note=f"measured: {r.statistic}, {r.area}"))
            else:
                out.append(Comparison("spine_size", f"median live spine size (log-normal fit), {rec.size_unit}",
                                      f"{f['median']:.3g}", r.describe(), r.source, r.tag, value=f["median"],
                                      note="not compared: the sizes are not volumes in um3"))
    except MeasureError as exc:
        out.append(Comparison("spine_size", "live spine sizes", f"n/a ({exc})", _NONE, _NONE, _NONE))
    # ---- neuron death
    try:
        nd = neuron_death(rec.alive, rec.alive_ages if rec.alive_ages is not None else rec.ages)
        details["neuron_death"] = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in nd.items()}
        v = 100 * nd["fraction_died"]
        for r in _death_rows():
            lo, hi = r.interval
            # a value: within a factor of two; an upper bound ("up to"): at most the bound
            agrees = _in(v, 0.5 * r.value, 2 * r.value) if r.value is not None else _in(v, 0, hi)
            out.append(Comparison("neuron_death", "neurons that died (%)", f"{v:.3g}",
                                  f"{r.describe()} ({r.species}, {r.area})", r.source, r.tag, value=v,
                                  agrees=agrees, note=f"{nd['n_died']} of {nd['n_neurons']} neurons; in range: "
                                  "within a factor of two of a value, or at most an upper bound"))
    except MeasureError as exc:
        out.append(Comparison("neuron_death", "neurons that died (%)", f"n/a ({exc})", _NONE, _NONE, _NONE))
    return out, details


def format_table(rows) -> str:
    """The comparison table as fixed-width text (quantity, simulated, measured, source, tag)."""
    head = ("quantity", "simulated", "measured", "source", "tag")
    cells = [head] + [(r.quantity, r.simulated, r.measured, r.source.split(",")[0] + (
        "," + r.source.split(",")[1] if "," in r.source else ""), r.tag) for r in rows]
    widths = [min(60, max(len(c[k]) for c in cells)) for k in range(5)]
    lines = []
    for k, c in enumerate(cells):
        lines.append("  ".join(s[:w].ljust(w) for s, w in zip(c, widths)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _md_cell(s) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _save(fig, path):
    """Lay out, save (110 dpi) and close a report figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _figures(rec, details, out: Path) -> dict:
    """Draw one figure per dataset into ``out``; ``{file name: caption}``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .plots import plot_density_overshoot, plot_neuron_death, plot_persistence, plot_size_fit, plot_turnover

    figs = {}
    dens = load_dataset("synapse_density")
    if "density" in details:
        h_peak = dens.select(quantity="peak synaptic density relative to adult")
        h_adult = dens.select(quantity="synaptic density", statistic="mean (SEM 0.41)")
        z_peak = dens.select(quantity="synaptic density", statistic="all-layer mean (peak)")
        z_adult = dens.select(quantity="synaptic density", statistic="all-layer mean (adult)")
        pts, cites = [], []
        for r in h_peak:
            pts.append((f"{r.species} {r.area.split(' layer')[0]} peak, {r.short_source}", *r.age_days, r.value))
            cites.append(r)
        for r in h_adult:
            pts.append((f"{r.species} adult, {r.short_source}", *r.age_days, 1.0))
        for p, a in zip(z_peak, z_adult):
            pts.append((f"{p.species.split(' (')[0]} {p.area.split(' (')[0]} peak, {p.short_source}", *p.age_days,
                        p.value / a.value))
            pts.append((f"{a.species.split(' (')[0]} {a.area.split(' (')[0]} adult, {a.short_source}", *a.age_days,
                        1.0))
            cites += [p]
        fig, ax = plt.subplots(figsize=(6.5, 4))
        plot_density_overshoot(rec.ages, rec.density, details["density"]["adult_level"], pts, axes=ax)
        _save(fig, out / "density.png")
        figs["density.png"] = (f"Synapse density (live synapses over the {rec.density_basis}) relative to the run's adult level "
                               f"(mean over {details['density']['adult_ages'][0]:g}-"
                               f"{details['density']['adult_ages'][1]:g} d), over age. Points: measured densities "
                               "relative to the same study's adult value (the macaque ratio is our division of the "
                               "two published means). Sources: " + "; ".join(
                                   sorted({f"{r.source} [{r.tag}]" for r in cites})) + ".")
    tw = [r for r in load_dataset("spine_turnover") if r.age_days is not None]
    t = details.get("turnover_14d")
    if t and len(t["age"]):
        fig, ax = plt.subplots(figsize=(6.5, 4))
        plot_turnover(t["age"], t["formation"], t["elimination"], rows=tw, axes=ax)
        _save(fig, out / "turnover.png")
        figs["turnover.png"] = ("Spines formed and eliminated between two looks 14 days apart, as % of the spines "
                                "present at the first look, over the age of the first look. Boxes: measured ranges, "
                                f"{tw[0].source} [{tw[0].tag}].")
    pr = load_dataset("spine_persistence")
    per = details["persistence"]
    if np.isfinite(per["fraction"]).any():
        fig, ax = plt.subplots(figsize=(6.5, 4))
        plot_persistence(per["bins"], per["fraction"], rows=list(pr), axes=ax)
        _save(fig, out / "persistence.png")
        figs["persistence.png"] = ("Fraction of all distinct spines seen in looks every 4 days over each age bin "
                                   "that lived at least 8 days (3 consecutive looks); a spine that reappears at a "
                                   f"site is a new spine. Squares: {pr.rows[0].source} [{pr.rows[0].tag}].")
    if "sizes" in details:
        sz = load_dataset("spine_size")
        iqr = [r for r in sz.select(quantity="spine volume") if r.statistic.startswith("interquartile")]
        vol = rec.size_unit == "um3"
        fig, ax = plt.subplots(figsize=(6.5, 4))
        plot_size_fit(rec.sizes, details["sizes"], unit=rec.size_unit,
                      measured_range=iqr[0].interval if (vol and iqr) else None,
                      range_label=f"measured IQR, {iqr[0].short_source}" if iqr else "", axes=ax)
        _save(fig, out / "sizes.png")
        shape = sz.select(quantity="spine size distribution shape")[0]
        cap = (f"Live spine sizes ({rec.size_label}) with a log-normal fit (scipy.stats.lognorm, floc=0) and a "
               f"normal fit. Measured shape: log-normal, {shape.source} [{shape.tag}].")
        if vol and iqr:
            cap += f" Band: measured interquartile range of spine volumes, {iqr[0].source} [{iqr[0].tag}]."
        figs["sizes.png"] = cap
    if "neuron_death" in details:
        rows = _death_rows()
        nd = details["neuron_death"]
        fig, ax = plt.subplots(figsize=(6.5, 4))
        plot_neuron_death(nd["ages"], nd["alive_fraction"], rows=rows, axes=ax)
        _save(fig, out / "neuron_death.png")
        figs["neuron_death.png"] = ("Fraction of the run's neurons alive over age (training runs: units of the "
                                    "pruned layers); dashed: surviving fraction if the measured fraction died. Sources: " +
                                    "; ".join(f"{r.source} [{r.tag}]" for r in rows) + ".")
    return figs


def write_report(rec: RunRecord, out, rows=None, details=None, title="Development compared with data") -> Path:
    """Write ``compare.md``, ``compare.json`` and the figures into the folder ``out``.

    Returns
    -------
    pathlib.Path
        The Markdown report.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if rows is None:
        rows, details = compare_record(rec)
    figs = _figures(rec, details, out)
    m = rec.mapping
    lines = [f"# {title}", ""]
    if rec.path is not None:
        lines += [f"Run folder: `{rec.path}`", ""]
    e = "(e + 1)" if m["offset"] else "e"
    n_neurons = rec.alive.shape[1] if rec.alive.ndim == 2 else int(np.max(rec.alive))
    lines += [f"Ages: period e is day {m['start_day']:g} + {e} x {m['days_per_period']:g} after birth "
              f"(source of the mapping: {m['source']}"
              + ("; a convention, not a calibration: one period is one 4-day imaging interval of Holtmaat et al. "
                 "2005, period 0 is P16" if m["source"] == "convention" else "") + f"). Records: "
              f"{rec.ages.size} looks, {rec.ages.min():g}-{rec.ages.max():g} d, {rec.presence.shape[1]} potential "
              f"synapse sites, {n_neurons} neurons.", "",
              f"Spine sizes: {rec.size_label} ({rec.size_unit}) at the last look, read from the "
              f"{rec.sizes_source or 'history'}.", "",
              "| quantity | simulated | measured | source | tag | in range | note |",
              "|---|---|---|---|---|---|---|"]
    for r in rows:
        ok = "" if r.agrees is None else ("yes" if r.agrees else "no")
        lines.append("| " + " | ".join(_md_cell(x) for x in (r.quantity, r.simulated, r.measured, r.source, r.tag,
                                                                ok, r.note)) + " |")
    lines += ["", "Tags: VERIFIED = read in the primary paper's own text; SECONDARY = read in a secondary source "
              "(see docs/neuro.md).", ""]
    for name, cap in figs.items():
        lines += [f"![{name}]({name})", "", f"*{cap}*", ""]
    path = out / "compare.md"
    path.write_text("\n".join(lines))

    def clean(x):
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if isinstance(x, np.ndarray):
            return clean(x.tolist())
        if isinstance(x, (np.floating, float)):
            return None if not np.isfinite(x) else float(x)
        if isinstance(x, np.integer):
            return int(x)
        return x

    (out / "compare.json").write_text(json.dumps({"mapping": clean(m), "rows": [asdict(r) for r in rows],
                                                  "details": clean(details), "figures": figs}, indent=1))
    return path


def compare_run(run_dir, out=None, days_per_period=None, start_day=None) -> dict:
    """Compare a run folder with every dataset and write the report.

    Parameters
    ----------
    run_dir : path
    out : path, optional
        Folder of the report (default ``RUN_DIR/compare``).
    days_per_period, start_day : float, optional
        Period-to-age mapping (default: the run's own, else the convention; see
        :func:`~sdsnn_bio.neuro.runs.time_axis`).

    Returns
    -------
    dict
        ``rows`` (list of Comparison), ``details``, ``report`` (path of compare.md), ``record``.
    """
    rec = run_record(run_dir, days_per_period=days_per_period, start_day=start_day)
    rows, details = compare_record(rec)
    out = Path(out) if out is not None else rec.path / "compare"
    report = write_report(rec, out, rows, details)
    return {"rows": rows, "details": details, "report": report, "record": rec}
