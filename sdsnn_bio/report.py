"""Reading run folders: the per-period table, text summaries and figures.

Every file of a run folder is read through :class:`sdsnn_bio.records.RunFolder`.
"""

from pathlib import Path

import numpy as np

from .records import RunFolder, read_table

__all__ = ["read_table", "text_report", "draw_figures", "make_figures", "main_job_table"]


def _summary(run_dir) -> dict:
    return RunFolder(run_dir).read_summary()


def text_report(run_dir) -> str:
    """A short text summary: final accuracy, compression, alive units, per-period extremes."""
    run_dir = Path(run_dir)
    t = read_table(run_dir)
    s = _summary(run_dir)
    lines = [f"run {run_dir}"]
    if s:
        lines.append(f"  model {s.get('model')} on {s.get('device')}, {s.get('periods')} periods")
        lines.append(f"  final test accuracy  {100 * s['final_test_accuracy']:.2f}% "
                     f"({s.get('test_windows')} test windows)")
    if "compression" in t and len(t["compression"]):
        lines.append(f"  compression          {100 * t['compression'][-1]:.2f}% "
                     f"(synapse sparsity {100 * t['synapse_sparsity'][-1]:.2f}%)")
    for c in t:
        if c.startswith("alive_"):
            lines.append(f"  alive {c[6:]:14s} {int(t[c][-1])}")
        if c.startswith("rho_"):
            lines.append(f"  pruning rate {c[4:]:7s} {t[c][-1]:.2f}%")
    if "test_accuracy" in t and len(t["test_accuracy"]):
        best = int(np.nanargmax(t["test_accuracy"]))
        lines.append(f"  best period test accuracy {100 * t['test_accuracy'][best]:.2f}% "
                     f"(period {int(t['period'][best])})")
    if "wall_s" in t:
        lines.append(f"  wall time of the periods {np.nansum(t['wall_s']):.1f} s "
                     f"(structural decisions {np.nansum(t['struct_s']):.2f} s)")
    return "\n".join(lines)


def draw_figures(run_dir) -> dict:
    """The standard figures of a run (matplotlib ``Figure`` objects, not saved) by file name.

    ``accuracy_compression.png`` (test accuracy and compression per period),
    ``alive.png`` (alive units per pruned layer, when the run prunes) and
    ``spine_widths.png`` (spine widths of the live synapses in the last
    snapshot, once the spines are initialised).
    """
    import matplotlib.pyplot as plt

    from .viz import plot_accuracy_compression, plot_alive, plot_spine_widths

    run = RunFolder(run_dir)
    t = run.read_table()
    figs = {}
    fig, ax = plt.subplots(figsize=(6, 3.5))
    plot_accuracy_compression(t, axes=ax)
    figs["accuracy_compression.png"] = fig
    if any(c.startswith("alive_") for c in t):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        plot_alive(t, axes=ax)
        figs["alive.png"] = fig
    if run.snapshot_periods():
        layers = sorted({k.split("/")[0] for k in run.snapshot_names("last") if k.endswith("/syn/r_up")})
        keys = [f"{name}/syn/{var}" for name in layers for var in ("r_up", "r_lo", "connected")]
        arrays = run.load_snapshot("last", keys=keys).arrays if layers else {}
        if layers and np.any(arrays[f"{layers[0]}/syn/r_up"]):
            fig, axs = plt.subplots(1, len(layers), figsize=(4 * len(layers), 3), squeeze=False)
            for ax, name in zip(axs[0], layers):
                plot_spine_widths(arrays[f"{name}/syn/r_up"], arrays[f"{name}/syn/r_lo"],
                                  arrays[f"{name}/syn/connected"], axes=ax, title=name)
            figs["spine_widths.png"] = fig
    return figs


def make_figures(run_dir) -> list:
    """Draw the standard figures of a run (:func:`draw_figures`) into its figures folder;
    returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = RunFolder(run_dir)
    run.figures.mkdir(exist_ok=True)
    paths = []
    for name, fig in draw_figures(run_dir).items():
        fig.tight_layout()
        paths.append(run.figures / name)
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths


def main_job_table(dense_dir, sdsnn_dir, wall_s=None) -> str:
    """The main job's final table: dense baseline, SD-SNN, compression."""
    d, s = _summary(dense_dir), _summary(sdsnn_dir)
    t = read_table(sdsnn_dir)
    comp = t["compression"][-1] if "compression" in t else float("nan")
    sparsity = t["synapse_sparsity"][-1] if "synapse_sparsity" in t else float("nan")
    da, sa = d["final_test_accuracy"], s["final_test_accuracy"]
    rows = [
        ("dense baseline accuracy", f"{100 * da:.2f}%"),
        ("SD-SNN accuracy", f"{100 * sa:.2f}%  ({100 * (sa - da):+.2f} points)"),
        ("SD-SNN compression", f"{100 * comp:.2f}%  (synapse sparsity {100 * sparsity:.2f}%)"),
    ]
    for c in t:
        if c.startswith("alive_"):
            rows.append((f"alive units {c[6:]}", f"{int(t[c][-1])}"))
    if wall_s is not None:
        rows.append(("wall time", f"{wall_s / 60:.1f} min"))
    width = max(len(r[0]) for r in rows)
    bar = "-" * (width + 40)
    return "\n".join([bar] + [f"{a:{width}s}  {b}" for a, b in rows] + [bar])
