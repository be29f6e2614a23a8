"""Ablations of SD-SNN: each mechanism switched off in turn, over seeds, as one table.

An ablation is a named set of ``[structure]`` keys (:data:`ABLATIONS`), also the
``--ablation`` option of ``sdsnn-bio run`` (and so a key a sweep can vary):

``full``               the model as configured (every mechanism on)
``no_constraint``      ``structure.constraint = false``: the weights are never clipped
                       into their spine bounds (the spines are still tracked: the
                       importance ranking reads their widths)
``no_fixed_clip``      ``structure.fixed_clip = false``: the layers that clip without
                       spines (the output layer) are not held to their period-0 range;
                       the spine-bearing layers keep their constraint
``no_regeneration``    ``structure.regeneration = false``
``fixed_rate``         ``structure.neurotrophic = false``: every pruned layer keeps
                       ``rho = rho0`` (no neurotrophic update)
``weight_importance``  ``structure.importance = "weight"``: units ranked by the
                       normalised magnitude of their live afferent weights
``soft_masks`` / ``hard_masks``  ``structure.masks``
``dense``              ``structure.enabled = false``: the dense twin

``sdsnn-bio ablate MODEL`` (:func:`ablation_sweep`, :func:`run_ablation`) runs the
model, each ablation that changes it (the masks the model does not use) and its
dense twin over seeds through :mod:`sdsnn_bio.sweep`, then
:func:`ablation_table` gives each variant's accuracy and compression and its
difference from the full SD-SNN, paired by seed (variant minus full of the same
seed), as mean +- standard deviation over the seeds.
"""

import json
from pathlib import Path

import numpy as np

from .errors import ConfigError

__all__ = ["ABLATIONS", "apply_ablation", "model_variants", "ablation_sweep", "ablation_table",
           "format_ablation_table", "run_ablation"]

#: Ablation name -> the ``[structure]`` keys it sets.
ABLATIONS = {
    "full": {},
    "no_constraint": {"constraint": False},
    "no_fixed_clip": {"fixed_clip": False},
    "no_regeneration": {"regeneration": False},
    "fixed_rate": {"neurotrophic": False},
    "weight_importance": {"importance": "weight"},
    "soft_masks": {"masks": "soft"},
    "hard_masks": {"masks": "hard"},
    "dense": {"enabled": False},
}


def apply_ablation(name: str) -> dict:
    """The ``[structure]`` overrides of the ablation ``name`` (a copy); ConfigError if unknown."""
    if name not in ABLATIONS:
        raise ConfigError(f"unknown ablation {name!r} (known: {', '.join(ABLATIONS)})")
    return dict(ABLATIONS[name])


#: ``[structure]`` key -> whether a model has anything that key acts on: the constraint
#: needs a clipped layer, the fixed clip a layer clipped without spines (and the constraint
#: on), the pruning keys a pruned layer. An ablation of a key with nothing to act on would
#: run the full model again.
def _prunes(cfg) -> bool:
    return any(layer.prune for layer in cfg.layers)


_ACTS_ON = {
    "constraint": lambda cfg: any(layer.clipped for layer in cfg.layers),
    "fixed_clip": lambda cfg: cfg.structure.constraint and any(layer.fixed_range_clip for layer in cfg.layers),
    "regeneration": _prunes,
    "neurotrophic": _prunes,
    "importance": _prunes,
    "masks": _prunes,
}


def model_variants(cfg) -> list:
    """The ablations that change ``cfg``, in table order: ``full`` first, the masks the
    model does not use, ``dense`` last. An ablation is left out where the model already has
    its keys (a model without regeneration) or has nothing they act on (``no_fixed_clip``
    where no layer clips without spines, the pruning ablations where no layer prunes)."""
    stc = cfg.structure
    out = ["full"]
    for name, keys in ABLATIONS.items():
        if name in ("full", "dense"):
            continue
        if all(getattr(stc, k) == v for k, v in keys.items()):
            continue
        if not all(_ACTS_ON[k](cfg) for k in keys):
            continue
        out.append(name)
    out.append("dense")
    return out


def ablation_sweep(model: str, seeds: int = 3, options=None, variants=None) -> str:
    """The sweep file (TOML text) of an ablation study: ``model`` x variants x seeds.

    Parameters
    ----------
    model : str
        A shipped model's name or a model file.
    seeds : int
        Seeds 0 .. seeds - 1.
    options : dict, optional
        Run options fixed for every job (``periods``, ``device``, ``n_train`` ...).
    variants : list of str, optional
        Ablations to run (default :func:`model_variants`); ``full`` is always added.
    """
    from .config import find_model, load_config

    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"ablate: --seeds must be an integer >= 1, got {seeds!r}")
    cfg = load_config(find_model(model))
    chosen = list(variants) if variants else model_variants(cfg)
    for v in chosen:
        apply_ablation(v)
    if "full" not in chosen:
        chosen.insert(0, "full")
    lines = [f'name = "ablate-{cfg.name}"',
             f'description = "ablations of {cfg.name}: {", ".join(chosen)}, {seeds} seeds"',
             "", "[grid]", f"model = {json.dumps([model])}",
             f"ablation = {json.dumps(chosen)}", f"seed = {json.dumps(list(range(seeds)))}", "", "[options]"]
    for key, value in (options or {}).items():
        if value is not None:
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def _stat(vals) -> tuple:
    vals = np.asarray(vals, float)
    vals = vals[np.isfinite(vals)]
    if not len(vals):
        return float("nan"), float("nan")
    return float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan")


def ablation_table(rows: list) -> list:
    """Per variant: seeds, accuracy and compression (mean, std) and their differences from
    ``full`` paired by seed (mean, std of variant minus full over the seeds both finished).

    ``rows`` are sweep rows (:func:`sdsnn_bio.sweep.sweep_row`) with keys ``ablation``,
    ``seed``, ``final_test_accuracy`` and ``compression``; unfinished rows are left out.
    """
    done = [r for r in rows if "final_test_accuracy" in r and r.get("status", "done") in ("done", "kept")]
    by = {}
    for r in done:
        by.setdefault(r["ablation"], {})[r["seed"]] = r
    full = by.get("full", {})
    order = [r["ablation"] for r in rows]
    out = []
    for name in dict.fromkeys(order):
        runs = by.get(name, {})
        row = {"ablation": name, "n": len(runs)}
        for col, key in (("accuracy", "final_test_accuracy"), ("compression", "compression")):
            row[f"{col}_mean"], row[f"{col}_std"] = _stat([r.get(key, np.nan) for r in runs.values()])
            paired = [runs[s].get(key, np.nan) - full[s].get(key, np.nan) for s in runs if s in full]
            row[f"d_{col}_mean"], row[f"d_{col}_std"] = _stat(paired) if name != "full" else (0.0, 0.0)
        out.append(row)
    return out


def _pct(mean, std, signed=False) -> str:
    if not np.isfinite(mean):
        return "-"
    m = f"{100 * mean:+.2f}" if signed else f"{100 * mean:.2f}"
    return m + (f" +- {100 * std:.2f}" if np.isfinite(std) else "")


def format_ablation_table(table: list) -> str:
    """The ablation table as aligned text (percent; differences in percentage points)."""
    head = ["ablation", "seeds", "accuracy %", "d accuracy (pt)", "compression %", "d compression (pt)"]
    cells = [[r["ablation"], str(r["n"]), _pct(r["accuracy_mean"], r["accuracy_std"]),
              _pct(r["d_accuracy_mean"], r["d_accuracy_std"], True) if r["ablation"] != "full" else "0 (reference)",
              _pct(r["compression_mean"], r["compression_std"]),
              _pct(r["d_compression_mean"], r["d_compression_std"], True) if r["ablation"] != "full"
              else "0 (reference)"] for r in table]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    lines.append("mean +- std over seeds; d = variant minus the full SD-SNN of the same seed")
    return "\n".join(lines)


def run_ablation(model: str, seeds: int = 3, out=None, options=None, variants=None, resume: bool = False,
                 n_workers=None, progress=None, copies_per_build: int = 1) -> tuple:
    """Write the ablation sweep into ``out`` and run it (:func:`sdsnn_bio.sweep.run_sweep`;
    ``copies_per_build`` > 1: the variants and seeds that differ only in run-time keys, such as
    ``no_regeneration``, ``fixed_rate`` and the masks, as copies of shared builds).

    Returns ``(table, text)``: :func:`ablation_table` of the sweep's rows and its text, also
    written to ``out/ablation.txt`` and ``out/ablation.csv``.
    """
    from .records import atomic_write
    from .sweep import run_sweep, write_csv

    text = ablation_sweep(model, seeds, options, variants)
    out = Path(out or Path("runs") / f"ablate-{Path(model).stem}")
    sweep_file = out.parent / f"{out.name}.sweep.toml"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(sweep_file, text)
    rows = run_sweep(sweep_file, out=out, resume=resume, n_workers=n_workers, progress=progress,
                     copies_per_build=copies_per_build)
    table = ablation_table(rows)
    shown = format_ablation_table(table)
    write_csv(out / "ablation.csv", table)
    atomic_write(out / "ablation.txt", shown + "\n")
    return table, shown
