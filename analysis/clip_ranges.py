"""How far a run's weights lie outside the ranges the synaptic constraint clips them to.

For every layer that clips (``spines = true``: each synapse's spine range ``[r-, r+]``;
``clip = true`` alone: the range the layer had after period 0, the same for every
synapse) the last snapshot of a run folder gives: its live synapses, the clip range
(the median ``r+`` and ``r-`` over them), the share of live weights outside it, the
largest live ``|w|``, and the share of the layer's weight norm (L2, live synapses) that
one clip would remove. In a run with the constraint on, every clipped weight lies in
its range at the end of a period (0 outside); a run without it (``--ablation
no_constraint``) shows what the constraint holds the network away from.

Usage: ``python analysis/clip_ranges.py RUN_DIR [RUN_DIR ...]``
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _runs_cli import main_over_runs  # noqa: E402
from sdsnn_bio.config import load_config  # noqa: E402
from sdsnn_bio.records import RunFolder  # noqa: E402


def clip_ranges(run_dir) -> list:
    """One dict per clipped layer of the run's last snapshot (see the module's doc)."""
    run = RunFolder(run_dir)
    cfg = load_config(run.path / "config.toml")
    snap = run.load_snapshot("last")
    a, rows = snap.arrays, []
    for layer in cfg.layers:
        if not layer.clipped:
            continue
        key = f"{layer.name}/syn/"
        if key + "w" not in a:      # a convolution keeps its kernel's state in the kernel group
            key = f"{layer.name}/kernel/"
        w, up, lo = a[key + "w"], a[key + "r_up"], a[key + "r_lo"]
        live = a[key + "connected"] > 0 if key + "connected" in a else np.ones(len(w), bool)
        w, up, lo = w[live], up[live], lo[live]
        moved = np.clip(w, lo, up) - w
        norm = np.linalg.norm(w)
        rows.append({"layer": layer.name, "kind": "spines" if layer.spines else "fixed",
                     "period": snap.period, "live": int(live.sum()),
                     "r_up": float(np.median(up)), "r_lo": float(np.median(lo)),
                     "outside": float(np.mean(moved != 0)), "max_abs_w": float(np.max(np.abs(w))),
                     "norm_removed": float(np.linalg.norm(moved) / norm) if norm > 0 else 0.0})
    return rows


def markdown(runs: dict) -> str:
    lines = ["| run | layer | range | period | live synapses | median r- .. r+ | outside | max abs w | "
             "norm one clip removes |", "|---|---|---|---|---|---|---|---|---|"]
    for name, rows in runs.items():
        for r in rows:
            lines.append(f"| {name} | {r['layer']} | {r['kind']} | {r['period']} | {r['live']} | "
                         f"{r['r_lo']:.4f} .. {r['r_up']:.4f} | {100 * r['outside']:.1f}% | "
                         f"{r['max_abs_w']:.3f} | {100 * r['norm_removed']:.1f}% |")
    return "\n".join(lines)


def main(argv=None):
    return main_over_runs(argv, __doc__, "clip_ranges",
                          lambda d: (d / "config.toml").is_file() and RunFolder(d).snapshot_path("last").is_file(),
                          "a run folder with a snapshot (config.toml, snapshots/)",
                          lambda dirs: markdown({d.name: clip_ranges(d) for d in dirs}))


if __name__ == "__main__":
    sys.exit(main())
