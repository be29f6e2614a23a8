"""Reading run folders: the per-period table, text summaries and figures."""

import csv
import json
from pathlib import Path

import numpy as np

__all__ = ["read_table", "text_report", "make_figures", "main_job_table"]


def read_table(run_dir) -> dict:
    """The ``periods.csv`` of a run as a dict of numpy arrays (one per column)."""
    path = Path(run_dir) / "periods.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    cols = rows[0].keys() if rows else []
    out = {}
    for c in cols:
        vals = [r[c] for r in rows]
        try:
            out[c] = np.array([float(v) if v != "" else np.nan for v in vals])
        except ValueError:
            out[c] = np.array(vals)
    return out


def _summary(run_dir) -> dict:
    path = Path(run_dir) / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else {}


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


def make_figures(run_dir) -> list:
    """Draw the standard figures of a run into ``<run_dir>/figures``; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .viz import plot_accuracy_compression, plot_alive, plot_spine_widths

    run_dir = Path(run_dir)
    fig_dir = run_dir / "figures"
    fig_dir.mkdir(exist_ok=True)
    t = read_table(run_dir)
    paths = []

    def save(fig, name):
        fig.tight_layout()
        paths.append(fig_dir / name)
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    plot_accuracy_compression(t, axes=ax)
    save(fig, "accuracy_compression.png")
    if any(c.startswith("alive_") for c in t):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        plot_alive(t, axes=ax)
        save(fig, "alive.png")
    snaps = sorted((run_dir / "snapshots").glob("period_*.npz"))
    if snaps:
        with np.load(snaps[-1]) as z:
            layers = sorted({k.split("/")[0] for k in z.files if k.endswith("/syn/r_up")})
            if layers and np.any(z[f"{layers[0]}/syn/r_up"]):
                fig, axs = plt.subplots(1, len(layers), figsize=(4 * len(layers), 3), squeeze=False)
                for ax, name in zip(axs[0], layers):
                    plot_spine_widths(z[f"{name}/syn/r_up"], z[f"{name}/syn/r_lo"],
                                      z[f"{name}/syn/connected"], axes=ax, title=name)
                save(fig, "spine_widths.png")
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
