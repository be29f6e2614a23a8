"""How far a run's weights lie outside the ranges the synaptic constraint clips them to.

For every layer that clips (``spines = true``: each synapse's spine range ``[r-, r+]``;
``clip = true`` alone: the range the layer had after period 0, the same for every
synapse) the last snapshot of a run folder gives: its live synapses, the clip range
(the median ``r+`` and ``r-`` over them), the share of live weights outside it, the
largest live ``|w|``, and the share of the layer's weight norm (L2, live synapses) that
one clip would remove. In a run with the constraint on, every clipped weight lies in
its range at the end of a period (0 outside); a run without it (``--ablation
no_constraint``) shows what the constraint holds the network away from.

For a spine layer whose first range is in the run's structural history (every spine starts
at ``+-max(w)`` of the layer after period 0), the shares of its live synapses whose range is
still that first one, narrower on both sides (shrunk more than widened), or wider on a side.

Usage: ``python analysis/clip_ranges.py RUN_DIR [RUN_DIR ...]``
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _runs_cli import main_over_runs  # noqa: E402
from sdsnn_bio.config import load_config  # noqa: E402
from sdsnn_bio.records import RunFolder  # noqa: E402


def first_ranges(run_dir) -> dict:
    """``{layer: (r+, error bound)}``: each spine layer's first range, the one value every
    synapse's ``r+`` has at period 0, from the run's structural history; ``{}`` without one."""
    from sdsnn_bio.errors import SdsnnError
    from sdsnn_bio.history import History

    try:
        history = History(run_dir)
        structure = history.structure_at(0)
    except (SdsnnError, OSError):
        return {}
    out = {}
    for name, st in structure.items():
        up = np.asarray(st.r_up, float)
        if len(up) and np.all(np.isfinite(up)) and np.all(up == up[0]) and up[0] > 0:
            out[name] = (float(up[0]), history.quantisation_error(0, name, "r_up"))
    return out


def range_changes(up, lo, first: float, err: float = 0.0) -> dict:
    """Shares of synapses whose range ``[lo, up]`` is still ``[-first, first]``, narrower on
    both sides, or wider on a side (values within ``err`` plus float32 rounding count as equal)."""
    tol = err + 1e-6 * first
    same_up, same_lo = np.abs(up - first) <= tol, np.abs(lo + first) <= tol
    unchanged = same_up & same_lo
    wider = (up > first + tol) | (lo < -first - tol)
    return {"unchanged": float(np.mean(unchanged)), "narrower": float(np.mean(~unchanged & ~wider)),
            "wider": float(np.mean(wider))}


def clip_ranges(run_dir) -> list:
    """One dict per clipped layer of the run's last snapshot (see the module's doc)."""
    run = RunFolder(run_dir)
    cfg = load_config(run.path / "config.toml")
    snap = run.load_snapshot("last")
    a, rows = snap.arrays, []
    first = first_ranges(run.path)
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
        if layer.spines and layer.name in first:
            rows[-1].update(first_r_up=first[layer.name][0], **range_changes(up, lo, *first[layer.name]))
    return rows


def markdown(runs: dict) -> str:
    lines = ["| run | layer | range | period | live synapses | median r- .. r+ | outside | max abs w | "
             "norm one clip removes | first r+ | ranges unchanged / narrower / wider |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, rows in runs.items():
        for r in rows:
            changes = "-", "-"
            if "first_r_up" in r:
                changes = (f"{r['first_r_up']:.4f}",
                           " / ".join(f"{100 * r[k]:.1f}%" for k in ("unchanged", "narrower", "wider")))
            lines.append(f"| {name} | {r['layer']} | {r['kind']} | {r['period']} | {r['live']} | "
                         f"{r['r_lo']:.4f} .. {r['r_up']:.4f} | {100 * r['outside']:.1f}% | "
                         f"{r['max_abs_w']:.3f} | {100 * r['norm_removed']:.1f}% | {changes[0]} | {changes[1]} |")
    return "\n".join(lines)


def main(argv=None):
    return main_over_runs(argv, __doc__, "clip_ranges",
                          lambda d: (d / "config.toml").is_file() and RunFolder(d).snapshot_path("last").is_file(),
                          "a run folder with a snapshot (config.toml, snapshots/)",
                          lambda dirs: markdown({d.name: clip_ranges(d) for d in dirs}))


if __name__ == "__main__":
    sys.exit(main())
