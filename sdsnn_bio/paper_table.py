"""The paper's table from run folders: SD-SNN beside its dense twin, per dataset and network.

``sdsnn-bio table RUN_DIR...`` reads each finished run folder (its ``config.toml``,
``run.json`` and ``summary.json``, through :class:`sdsnn_bio.records.RunFolder`; the
final figures through :func:`sdsnn_bio.sweep.run_row`), sorts the runs into
SD-SNN runs (``structure.enabled``; an ablated run is its own row, named after
its ablation against the model file named in ``run.json``) and dense twins (``structure.enabled = false``), and pairs each
SD-SNN run with the dense twin of the same dataset, network, periods, samples per
period and seed. A folder may also be a sweep or ablation folder: every run
folder below it is taken.

Per row (dataset, network, periods, variant), mean +- standard deviation over the
seeds (``ddof = 1``; one seed: no spread): dense accuracy, SD-SNN accuracy, their
difference (paired by seed), compression, synaptic operations per sample of the
final network over the test set, and their ratio to the dense twin's, and the
estimated energy of the SD-SNN against the same-shape non-spiking network
(:mod:`sdsnn_bio.energy`). An SD-SNN run without a dense twin has no dense
columns (``-``).
"""

import tomllib
from pathlib import Path

import numpy as np

from .ablation import ABLATIONS
from .errors import ConfigError, SdsnnError
from .records import RunFolder, atomic_write

__all__ = ["RunRecord", "find_runs", "read_run", "network_name", "paper_table", "format_paper_table",
           "table_figure", "write_table_outputs", "PAPER_FIGURES"]

#: The paper's published figures (arXiv 2211.12219 v2 abstract; /work/shared/reference/sdsnn_spec.md §4.1):
#: dataset -> (SD-SNN accuracy %, compression %, difference to the dense network in points).
PAPER_FIGURES = {"MNIST": (99.51, 49.83, 0.05), "DVS-Gesture": (98.20, 55.50, 1.09)}

#: The ``[structure]`` keys that name an ablation (``enabled`` names the dense twin).
_ABLATION_KEYS = tuple(dict.fromkeys(k for keys in ABLATIONS.values() for k in keys if k != "enabled"))


#: Keys that do not set a run apart in the table: names, where the data lie, the seed (the
#: spread over seeds) and the periods (a column of their own).
_SAME_SETTING = {"name", "description", "schedule.seed", "schedule.periods", "data.directory"}
#: Layer keys that the network's name shows (``network_name``) or that name the layer.
_NAME_KEYS = {"name", "type", "units", "channels", "kernel", "size"}
#: Layer keys of the structural development (a dense twin ignores them).
_STRUCTURAL_LAYER_KEYS = {"spines", "clip", "prune", "rho0", "theta_dead", "regen_q0", "regen_streak",
                          "neurotrophic"}


def _setting(cfg, model_cfg) -> tuple:
    """What sets a run apart from its model's file beyond the seed and the ablation keys, as two
    labels: the keys a dense twin shares (training, neuron, schedule, data, layer padding ...)
    and those of the structural development (``[structure]`` constants, per-layer ``rho0`` ...).
    Runs that differ in either are different rows of the table (an ``--copies`` sweep over
    learning rates is not a spread over seeds); a dense twin pairs only with the runs that share
    its first label."""
    from .multi import _flat

    if model_cfg is None:
        return "", ""
    run, model = _flat(cfg), _flat(model_cfg)
    shared, structural = [], []
    for key in sorted(set(run) | set(model)):
        a, b = run.get(key), model.get(key)
        if a == b or key in _SAME_SETTING or key.startswith("layers["):
            continue
        parts = key.split(".")
        if parts[0] == "layers":
            if parts[2] in _NAME_KEYS:
                continue
            (structural if parts[2] in _STRUCTURAL_LAYER_KEYS else shared).append(f"{key}={a}")
        elif parts[0] == "structure":
            if parts[1] not in _ABLATION_KEYS and parts[1] != "enabled":
                structural.append(f"{key}={a}")
        else:
            shared.append(f"{key}={a}")
    return ", ".join(shared), ", ".join(structural)


class RunRecord(dict):
    """One finished run: ``dir``, ``dataset``, ``network``, ``periods``, ``seed``, ``dense``,
    ``ablation`` (``SD-SNN``, ``dense`` or ``SD-SNN <ablation>``), ``variant`` (the ablation and
    what else sets the run apart from its model's file, in brackets),
    ``setting`` (the part of that a dense twin shares), ``model``, ``pair_key`` and the final
    figures."""


def network_name(cfg) -> str:
    """The network's shape: input size, then each layer (``300`` dense units, ``16c3`` a
    convolution of 16 channels with 3 x 3 kernels, ``16l3`` a locally connected layer of 16
    channels with 3 x 3 fields, ``p2`` 2 x 2 pooling)."""
    parts = [str(int(np.prod(cfg.input_shape)))]
    for layer in cfg.layers:
        parts.append({"dense": lambda: str(layer.units), "conv": lambda: f"{layer.channels}c{layer.kernel}",
                      "local": lambda: f"{layer.channels}l{layer.kernel}",
                      "pool": lambda: f"p{layer.size}"}[layer.type]())
    return "-".join(parts)


def _variant(cfg, default) -> str:
    if not cfg.structure.enabled:
        return "dense"
    changed = {k: getattr(cfg.structure, k) for k in _ABLATION_KEYS
               if getattr(cfg.structure, k) != getattr(default, k)}
    if not changed:
        return "SD-SNN"
    for name, keys in ABLATIONS.items():
        if keys == changed:
            return f"SD-SNN {name}"
    return "SD-SNN " + ",".join(f"{k}={v}" for k, v in changed.items())


def read_run(run_dir) -> RunRecord:
    """The record of one finished run folder; SdsnnError naming the folder and the file
    when it is missing, unfinished or malformed."""
    from .config import StructureSpec, config_from_dict, find_model, load_config
    from .energy import read_energy
    from .sweep import run_row

    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    if not run_dir.is_dir():
        raise SdsnnError(f"{run_dir}: no such run folder")
    for path, what in ((folder.config, "its configuration"), (folder.summary, "its summary (not finished?)")):
        if not path.is_file():
            raise SdsnnError(f"{run_dir}: not a finished run folder (no {path.name}: {what})")
    try:
        with open(folder.config, "rb") as f:
            cfg = config_from_dict(tomllib.load(f), source=str(folder.config))
        summary = folder.read_summary()
        meta = folder.read_meta() if folder.meta.is_file() else {}
    except (tomllib.TOMLDecodeError, ValueError, ConfigError) as exc:
        raise SdsnnError(f"{run_dir}: malformed run folder: {exc}") from None
    row = run_row(run_dir)
    if "final_test_accuracy" not in row:
        raise SdsnnError(f"{folder.summary}: no final_test_accuracy")
    try:
        energy = read_energy(summary, folder.summary)
    except SdsnnError:
        energy = {}
    d = cfg.data
    try:    # variants are named against the model's own file (mnist5k_fc uses hard masks)
        model_cfg = load_config(find_model(meta.get("model", cfg.name)))
        base = model_cfg.structure
    except ConfigError:
        model_cfg, base = None, StructureSpec()
    # a run of another network than its model file's now (a record kept from before the model
    # changed) is not a setting of it: the network column tells them apart
    same_network = model_cfg is not None and network_name(model_cfg) == network_name(cfg)
    shared, structural = _setting(cfg, model_cfg if same_network else None)
    ablation = variant = _variant(cfg, base)
    extra = ", ".join(x for x in (shared, structural if cfg.structure.enabled else "") if x)
    if extra:
        variant += f" ({extra})"
    rec = RunRecord(
        dir=str(run_dir), model=meta.get("model", cfg.name), dataset=d.dataset, network=network_name(cfg),
        periods=int(summary.get("periods", cfg.schedule.periods)), seed=int(meta.get("seed", cfg.schedule.seed)),
        dense=not cfg.structure.enabled, variant=variant, ablation=ablation, setting=shared,
        accuracy=float(row["final_test_accuracy"]),
        compression=float(row.get("compression", 0.0)),
        sops=float(energy.get("sops_per_sample", np.nan)),
        snn_energy_pj=float(energy.get("snn_energy_pj", np.nan)),
        ann_energy_pj=float(energy.get("ann_energy_pj", np.nan)))
    rec["pair_key"] = (d.dataset, d.n_train, d.n_test, rec["network"], rec["periods"],
                       cfg.schedule.train_per_period, rec["seed"], shared)
    return rec


def find_runs(paths) -> list:
    """Run folders named by ``paths``: a run folder itself, or every run folder below a
    folder (a sweep's or an ablation's). SdsnnError for a path that holds none."""
    out = []
    for p in map(Path, paths):
        if not p.exists():
            raise SdsnnError(f"{p}: no such run folder")
        if RunFolder(p).summary.is_file() or RunFolder(p).config.is_file():
            out.append(p)
            continue
        found = sorted(s.parent for s in p.rglob(RunFolder(p).summary.name))
        if not found:
            raise SdsnnError(f"{p}: neither a run folder nor a folder of finished runs (no summary.json in it)")
        out.extend(found)
    return out


def _stat(values) -> tuple:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if not len(v):
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else float("nan")


def paper_table(records: list) -> list:
    """Rows of the paper's table from run records (:func:`read_run`), one per dataset,
    network, periods and SD-SNN variant; dense twins paired by seed."""
    dense = {}
    for r in records:
        if r["dense"]:
            if r["pair_key"] in dense:
                raise SdsnnError(f"two dense runs for one SD-SNN pairing: {dense[r['pair_key']]['dir']} and "
                                 f"{r['dir']} (same dataset, network, periods and seed)")
            dense[r["pair_key"]] = r
    groups = {}
    for r in records:
        if not r["dense"]:
            groups.setdefault((r["dataset"], r["network"], r["periods"], r["variant"]), []).append(r)
    rows = []
    for (dataset, network, periods, variant), runs in groups.items():
        twins = [dense.get(r["pair_key"]) for r in runs]
        paired = [(r, t) for r, t in zip(runs, twins) if t is not None]
        row = {"dataset": dataset, "network": network, "periods": periods, "variant": variant,
               "seeds": len(runs), "dense_seeds": len(paired)}
        stats = {
            "dense_accuracy": [t["accuracy"] for _, t in paired],
            "accuracy": [r["accuracy"] for r in runs],
            "difference": [r["accuracy"] - t["accuracy"] for r, t in paired],
            "compression": [r["compression"] for r in runs],
            "sops": [r["sops"] for r in runs],
            "dense_sops": [t["sops"] for _, t in paired],
            "sops_ratio": [r["sops"] / t["sops"] for r, t in paired],
            "energy_ratio_ann": [r["snn_energy_pj"] / r["ann_energy_pj"] for r in runs],
        }
        for key, vals in stats.items():
            row[f"{key}_mean"], row[f"{key}_std"] = _stat(vals)
        rows.append(row)
    rows.sort(key=lambda r: (r["dataset"], r["network"], r["periods"], r["variant"].split(" (")[0] != "SD-SNN",
                             r["variant"]))
    return rows


def _ms(mean, std, scale=100.0, fmt=".2f", signed=False) -> str:
    if not np.isfinite(mean):
        return "-"
    s = f"{scale * mean:{'+' if signed else ''}{fmt}}"
    return s + (f" +- {scale * std:{fmt}}" if np.isfinite(std) else "")


COLUMNS = ("dataset", "network", "periods", "variant", "seeds", "dense acc %", "SD-SNN acc %", "diff (pt)",
           "compression %", "SOPs/sample", "SOPs vs dense", "energy vs ANN")


def format_paper_table(rows: list) -> str:
    """The table as aligned text (accuracy and compression in percent, differences in
    points, SOPs per sample, ratios)."""
    cells = []
    partial = False
    for r in rows:
        seeds = str(r["seeds"])
        if 0 < r["dense_seeds"] < r["seeds"]:
            seeds += f" ({r['dense_seeds']} paired)"
            partial = True
        cells.append([r["dataset"], r["network"], str(r["periods"]), r["variant"], seeds,
                      _ms(r["dense_accuracy_mean"], r["dense_accuracy_std"]),
                      _ms(r["accuracy_mean"], r["accuracy_std"]),
                      _ms(r["difference_mean"], r["difference_std"], signed=True),
                      _ms(r["compression_mean"], r["compression_std"]),
                      _ms(r["sops_mean"], r["sops_std"], scale=1.0, fmt=".4g"),
                      _ms(r["sops_ratio_mean"], r["sops_ratio_std"], scale=1.0, fmt=".3f"),
                      _ms(r["energy_ratio_ann_mean"], r["energy_ratio_ann_std"], scale=1.0, fmt=".3f")])
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(COLUMNS)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(COLUMNS, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    lines.append("mean +- std over seeds; diff = SD-SNN minus its dense twin of the same seed; SOPs/sample of "
                 "the final network over the test set; SOPs vs dense = ratio to the dense twin's (= their "
                 "energy ratio, both ACs); energy vs ANN = SD-SNN ACs x 0.9 pJ / same-shape non-spiking MACs "
                 "x 4.6 pJ (Horowitz, ISSCC 2014)")
    if partial:
        lines.append("N (k paired): only k of the N seeds have a dense twin; the dense acc, diff and SOPs vs "
                     "dense columns are over those k")
    return "\n".join(lines)


def table_figure(records: list, dataset: str, fig=None):
    """Accuracy and compression over periods of the first seed's full SD-SNN run of
    ``dataset`` and its dense twin (:func:`sdsnn_bio.viz.plot_main_job`), and the pruning
    rate per layer (:func:`sdsnn_bio.viz.plot_pruning_rate`). Returns the Figure."""
    import matplotlib.pyplot as plt

    from .records import read_table
    from .report import test_rotation
    from .viz import plot_main_job, plot_pruning_rate

    # the full SD-SNN (no ablation), the model's own setting first
    runs = sorted((r for r in records if r["dataset"] == dataset and r["ablation"] == "SD-SNN"),
                  key=lambda r: (r["variant"] != "SD-SNN", r["network"], r["seed"]))
    if not runs:
        raise SdsnnError(f"table: no full SD-SNN run of dataset {dataset!r} to draw")
    sd = runs[0]
    twin = next((r for r in records if r["dense"] and r["pair_key"] == sd["pair_key"]), None)
    if twin is None:
        raise SdsnnError(f"table: {sd['dir']} has no dense twin (same dataset, network, periods, seed) to draw")
    # constrained layout spaces the two subfigures' panels evenly (the default margins of
    # the right subfigure left a gap before its panel)
    fig = fig or plt.figure(figsize=(17, 3.8), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[3, 1])
    sd_table = read_table(sd["dir"])
    plot_main_job(read_table(twin["dir"]), sd_table, fig=left, rotation=test_rotation(sd["dir"]))
    plot_pruning_rate(sd_table, axes=right.subplots())
    fig.suptitle(f"{dataset}, {sd['network']}, seed {sd['seed']}: SD-SNN and its dense twin")
    return fig


def write_table_outputs(records: list, rows: list, out) -> list:
    """``table.txt``, ``table.csv`` and one ``table_<dataset>.png`` per dataset into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .sweep import write_csv

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "table.txt", out / "table.csv"]
    atomic_write(paths[0], format_paper_table(rows) + "\n")
    write_csv(paths[1], rows)
    for dataset in sorted({r["dataset"] for r in records if r["ablation"] == "SD-SNN"}):
        try:
            fig = table_figure(records, dataset)
        except SdsnnError as exc:
            print(f"no figure for {dataset}: {exc}")
            continue
        path = out / f"table_{dataset}.png"
        tmp = path.with_suffix(".tmp.png")
        fig.savefig(tmp, dpi=100)
        plt.close(fig)
        tmp.replace(path)
        paths.append(path)
    return paths
