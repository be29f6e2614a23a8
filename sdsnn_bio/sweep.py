"""Sweeps: a grid of ``sdsnn-bio run`` jobs on Dask's distributed scheduler.

A sweep file is data (TOML)::

    name = "seeds"                 # default: the file's stem
    description = "..."            # optional
    [grid]                         # every combination is one job
    model = ["tiny_dense"]
    seed = [0, 1, 2, 3]
    masks = ["soft", "hard"]
    training.lr = [1e-3, 3e-3]     # a configuration key as a dotted path
    [options]                      # fixed for every job
    periods = 4
    train_per_period = 50
    device = "cpp_standalone"

Keys of ``[grid]`` and ``[options]`` are the ``run`` command's options
(``periods``, ``train_per_period``, ``dense``, ``masks``, ``no_regeneration``,
``dataset``, ``n_train``, ...: the ``sdsnn-bio run`` parser is the one list of
them, see :func:`run_options`), ``model`` and ``device``, and configuration
keys as dotted paths (``training.lr``, ``structure.shrink``,
``layers.fc1.rho0``). The whole file is checked before any job starts
(:func:`load_sweep`): each job's configuration is built here and validated as a
model file is (:func:`sdsnn_bio.config.config_from_dict`), its data are loaded
once per distinct ``[data]`` table, and any fault is one
:class:`~sdsnn_bio.errors.ConfigError` naming the sweep file and the key.

A job is one ``python -m sdsnn_bio run OUT/JOB/job.toml --out OUT/JOB/run``
process started by a Dask task (:func:`run_job`); the task holds a lock on the
job folder (passed on to the run, so that two attempts never write one folder),
and the run dies with its worker (``PR_SET_PDEATHSIG``). A worker that dies
mid-job has the job started again by the scheduler; the new attempt continues
from the run's last snapshot (``--resume``). Jobs whose run folder holds a
``summary.json`` are not run again.

Several networks in one build (``copies_per_build`` K > 1, ``--copies-per-build``): jobs that
may be copies of one build (:func:`copies_key`: the same configuration but for the run-time
keys of :data:`sdsnn_bio.multi.RUNTIME_KEYS`, the same device) are dealt in grid order into
builds of at most K copies, as even as possible (:func:`plan_builds`). A build is one Dask task
(:func:`run_group`) running ``python -m sdsnn_bio.sweep JOB_DIR...``: one
:class:`sdsnn_bio.multi.MultiDevelopment` with each job's configuration and run folder; its
output goes to every member's ``job.log``, its attempts to every member's ``job.json``. A
worker that dies mid-build has the build run again, resumed from the last period all its
copies hold a snapshot of. The plan is written to ``OUT/builds.json``; a resumed sweep must
plan the same builds.

The output folder::

    OUT/sweep.toml      the sweep file as given
    OUT/jobs.json       the jobs: id, grid values, model, device
    OUT/builds.json     with copies_per_build > 1: the jobs of each build, copy 0 first
    OUT/JOB/job.toml    the job's validated configuration (what the run reads)
    OUT/JOB/job.log     the run's output, all attempts, each opened by a line of this module
    OUT/JOB/job.json    status, attempts (worker, pid, resumed from period), wall time
    OUT/JOB/run/        the run folder (sdsnn_bio.records.RunFolder)
    OUT/results.csv     one row per job (sweep_row)
    OUT/seeds.csv       mean and standard deviation over seeds
    OUT/results.txt     both tables as printed
"""

import argparse
import csv
import io
import itertools
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from .errors import ConfigError, RunError, SdsnnError
from .records import RunFolder, atomic_write, format_cell

__all__ = ["Job", "Sweep", "SWEEP_KEYS", "run_options", "load_sweep", "job_config", "build_key", "data_cache_key", "run_row",
           "sweep_row", "seed_rows",
           "format_table", "write_csv", "make_security", "local_cluster", "run_job", "run_sweep",
           "copies_key", "plan_builds", "run_group", "default_workers"]

#: Top-level keys of a sweep file.
SWEEP_KEYS = ("name", "description", "grid", "options")
#: Sections of a model configuration that a dotted key may name (``section.key``);
#: ``layers.NAME.key`` names a key of the layer called NAME.
_SECTIONS = ("neuron", "data", "training", "schedule", "structure")
#: Options of ``sdsnn-bio run`` that a sweep does not take (the sweep sets them per job).
_NOT_SWEPT = {"help", "model", "out", "resume", "json", "threads", "copies", "set"}
_SEED_KEYS = ("seed", "schedule.seed")
_BUILT = "sdsnn-bio: network built"
_LOCK_WAIT_S = 60.0


# ------------------------------------------------------------------ the sweep file
@dataclass
class Job:
    """One run of a sweep: its grid values and its validated configuration."""

    id: str
    values: dict
    model: str
    device: str
    config: object   # ModelConfig

    def to_dict(self, out) -> dict:
        """What a worker needs to run the job (plain data, sent to the worker)."""
        return {"id": self.id, "values": self.values, "model": self.model, "device": self.device,
                "dir": str(Path(out) / self.id), "config": self.config.to_dict(),
                "build_key": build_key(self.config, self.device),
                "copies_key": copies_key(self.config, self.device)}


@dataclass
class Sweep:
    """A validated sweep file: its grid, fixed options and jobs (in grid order)."""

    path: Path
    name: str
    description: str
    grid: dict
    options: dict
    jobs: list = field(default_factory=list)

    @property
    def seed_key(self):
        """The grid key that holds the seed, or None."""
        return next((k for k in self.grid if k in _SEED_KEYS), None)


def run_options() -> dict:
    """The ``sdsnn-bio run`` options a sweep can set: ``{name: (type, choices)}``.

    Read from the ``run`` parser of :func:`sdsnn_bio.cli.build_parser` (flags
    become ``bool``), so that a new option of ``run`` is a sweep key as well.
    """
    from .cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = {}
    for action in sub.choices["run"]._actions:
        if action.dest in _NOT_SWEPT:
            continue
        if isinstance(action, argparse._StoreTrueAction):
            kind = bool
        else:
            kind = action.type or str
        out[action.dest] = (kind, tuple(action.choices) if action.choices else None)
    out["model"] = (str, None)
    return out


def _flatten(table: dict, prefix: str = "") -> dict:
    """``{"training": {"lr": x}}`` (TOML's dotted keys) -> ``{"training.lr": x}``."""
    out = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _kind_name(kind) -> str:
    return {bool: "a boolean", int: "an integer", str: "a string"}.get(kind, kind.__name__)


def _check_run_value(path, where: str, value, kind, choices):
    ok = isinstance(value, bool) if kind is bool else \
        isinstance(value, kind) and not isinstance(value, bool)
    if not ok:
        raise ConfigError(f"{path}: key '{where}' must be {_kind_name(kind)}, got {value!r}")
    if choices and value not in choices:
        raise ConfigError(f"{path}: key '{where}' must be one of {', '.join(map(str, choices))}, got {value!r}")


def _check_key(path, where: str, key: str, options: dict):
    if key in options:
        return
    parts = key.split(".")
    if (len(parts) == 2 and parts[0] in _SECTIONS) or (len(parts) == 3 and parts[0] == "layers"):
        return
    raise ConfigError(
        f"{path}: unknown key '{where}' (a run option: {', '.join(sorted(options))}; or a configuration "
        f"key as a dotted path: {'.KEY, '.join(_SECTIONS)}.KEY or layers.NAME.KEY)")


def _strip_source(msg: str, source: str) -> str:
    return msg[len(source) + 2:] if msg.startswith(source + ": ") else msg


def job_config(model: str, values: dict):
    """The validated configuration of one job: ``model`` with the run options and dotted keys
    of ``values`` applied (as ``sdsnn-bio run`` applies its options). Raises ConfigError."""
    from .cli import _overrides
    from .config import config_from_dict, find_model, load_config

    path = find_model(model)
    base = load_config(path)
    run_values = {k: v for k, v in values.items() if "." not in k and k not in ("model", "device")}
    d = base.to_dict()
    for section, table in _overrides(SimpleNamespace(**run_values)).items():
        d[section].update(table)
    for key, value in values.items():
        parts = key.split(".")
        if len(parts) == 2:
            d[parts[0]][parts[1]] = value
        elif len(parts) == 3:
            layer = next((lt for lt in d["layers"] if lt["name"] == parts[1]), None)
            if layer is None:
                raise ConfigError(f"{path}: no layer named {parts[1]!r} for key '{key}' "
                                  f"(layers: {', '.join(lt['name'] for lt in d['layers'])})")
            layer[parts[2]] = value
    return config_from_dict(d, source=str(path), check_data=True)


def _named(path, model: str, exc: ConfigError, context: dict, candidates, what: str) -> ConfigError:
    """The error of a configuration that failed, naming the sweep key that alone (on top of
    ``context``) makes it fail, else ``what`` (the options, or the job and its values)."""
    from .config import find_model

    source = str(find_model(model))
    for where, key, value in candidates:
        try:
            job_config(model, {**context, key: value})
        except ConfigError as alone:
            return ConfigError(f"{path}: key '{where}' = {value!r} (model {model}): "
                               f"{_strip_source(str(alone), source)}")
    return ConfigError(f"{path}: {what}: {_strip_source(str(exc), source)}")


def _job_id(values: dict, grid_keys) -> str:
    parts = []
    for key in grid_keys:
        v = values[key]
        v = str(v).lower() if isinstance(v, bool) else repr(v) if isinstance(v, float) else str(v)
        parts.append(v if key == "model" else f"{key}-{v}")
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", "_".join(parts)) or "job"


#: ``[data]`` keys that change only how loaded data are encoded as spikes, not what is loaded
_ENCODING_ONLY_KEYS = frozenset({"coding", "event_coding"})


def data_cache_key(data) -> tuple:
    """The key under which a sweep loads a job's ``[data]`` table once.

    Every key of :class:`sdsnn_bio.config.DataSpec` that can change what
    :func:`sdsnn_bio.data.registry.load` returns is part of it (dataset, directory,
    split, subset sizes, and the event recordings' ``crop``, ``downsample`` and
    ``denoise_us``); only the keys in ``_ENCODING_ONLY_KEYS`` (how the loaded data are
    turned into spikes) are left out. A data key added later is in the key by default.

    Parameters
    ----------
    data : sdsnn_bio.config.DataSpec
        A job's ``[data]`` table.

    Returns
    -------
    tuple
        ``(name, value)`` pairs in the order of the dataclass's fields.
    """
    from dataclasses import fields

    return tuple((f.name, getattr(data, f.name)) for f in fields(data) if f.name not in _ENCODING_ONLY_KEYS)


def _check_data(path, jobs):
    """Load each distinct ``[data]`` table once (:func:`data_cache_key`): missing files, too
    large subsets, a network that does not fit in memory are errors here, before any job starts."""
    from .data import registry
    from .geometry import check_memory

    loaded = {}
    for job in jobs:
        d = job.config.data
        key = data_cache_key(d)
        where = f"job {job.id}"
        try:
            if key not in loaded:
                loaded[key] = registry.load(d, job.config.source)
            n_test = len(loaded[key].y_test)
            sch = job.config.schedule
            check_memory(job.config, min(sch.test_per_period or n_test, n_test) + sch.train_per_period)
        except SdsnnError as exc:
            raise ConfigError(f"{path}: {where}: its data or size ([data] {d.dataset}, n_train {d.n_train}, "
                              f"n_test {d.n_test}): {exc}") from None


def load_sweep(path) -> Sweep:
    """Read and validate a sweep file; every job's configuration is built and checked.

    Parameters
    ----------
    path : path-like
        The TOML sweep file (see the module documentation).

    Returns
    -------
    Sweep

    Raises
    ------
    ConfigError
        For anything wrong in the file: unknown or misspelt keys, wrong types,
        unknown models or datasets, values a model file would reject, an empty
        grid, a key both in ``[grid]`` and ``[options]``, repeated grid values,
        or data a job cannot load. The message names the file and the key.
    """
    from .devices import DEVICES

    from .config import read_toml

    path = Path(path)
    raw = read_toml(path, "sweep file")
    for key in raw:
        if key not in SWEEP_KEYS:
            raise ConfigError(f"{path}: unknown key {key!r} (known: {', '.join(SWEEP_KEYS)})")
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise ConfigError(f"{path}: key 'name' must be a non-empty string of letters, digits, '.', '_', '-', "
                          f"got {name!r}")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{path}: key 'description' must be a string, got {description!r}")
    for table in ("grid", "options"):
        if not isinstance(raw.get(table, {}), dict):
            raise ConfigError(f"{path}: key '{table}' must be a table, got {raw[table]!r}")
    if "grid" not in raw:
        raise ConfigError(f"{path}: key 'grid' is missing (a table of arrays: every combination is one job)")
    grid, options = _flatten(raw["grid"]), _flatten(raw.get("options", {}))
    if not grid:
        raise ConfigError(f"{path}: key 'grid' is empty (give at least one key with an array of values)")
    known = run_options()
    known["device"] = (str, tuple(DEVICES))
    for key, value in grid.items():
        where = f"grid.{key}"
        _check_key(path, where, key, known)
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{path}: key '{where}' must be a non-empty array of values, got {value!r}")
        if len({json.dumps(v) for v in value}) != len(value):
            raise ConfigError(f"{path}: key '{where}' repeats a value: {value!r}")
        if key in options:
            raise ConfigError(f"{path}: key '{key}' is both in [grid] and in [options]")
    for key, value in options.items():
        _check_key(path, f"options.{key}", key, known)
    # types and choices of the run options, value by value
    for where, key, value in [(f"grid.{k}", k, v) for k, vs in grid.items() for v in vs] + \
            [(f"options.{k}", k, v) for k, v in options.items()]:
        if key in known:
            _check_run_value(path, where, value, *known[key])
    models = grid.get("model", [options["model"]] if "model" in options else None)
    if models is None:
        raise ConfigError(f"{path}: key 'model' is missing (in [grid] or [options])")
    from .config import find_model

    for m in models:
        where = "grid.model" if "model" in grid else "options.model"
        try:
            find_model(m)
        except ConfigError as exc:
            raise ConfigError(f"{path}: key '{where}': {exc}") from None
    # the options on each model, then every combination; an error names the key that causes it
    fixed = {k: v for k, v in options.items() if k not in ("model", "device")}
    for m in models:
        try:
            job_config(m, fixed)
        except ConfigError as exc:
            raise _named(path, m, exc, {}, [(f"options.{k}", k, v) for k, v in fixed.items()],
                         f"[options] (model {m})") from None
    jobs, ids = [], set()
    keys = list(grid)
    for combo in itertools.product(*(grid[k] for k in keys)):
        values = dict(zip(keys, combo))
        full = {**options, **values}
        model = full["model"]
        job_id = _job_id(values, keys)
        if job_id in ids:
            raise ConfigError(f"{path}: two jobs would share the folder name {job_id!r}; use values that "
                              "differ in letters or digits")
        ids.add(job_id)
        try:
            cfg = job_config(model, full)
        except ConfigError as exc:
            shown = ", ".join(f"{k} = {v!r}" for k, v in values.items())
            raise _named(path, model, exc, fixed,
                         [(f"grid.{k}", k, v) for k, v in values.items() if k not in ("model", "device")],
                         f"job {job_id} ({shown})") from None
        jobs.append(Job(job_id, values, model, full.get("device", "cpp_standalone"), cfg))
    _check_data(path, jobs)
    return Sweep(path, name, description, grid, options, jobs)


def build_key(cfg, device: str) -> str:
    """Jobs with one key compile the same code objects: the configuration without the seed,
    the structural switches and the number of periods (run-time values of one build).

    Used only to order the builds (:func:`run_sweep`'s ``stagger``); a key that is too
    fine costs a parallel compile, never a wrong result.
    """
    d = cfg.to_dict()
    d["schedule"] = {k: v for k, v in d["schedule"].items() if k not in ("seed", "periods")}
    d.pop("structure")
    d.pop("name")
    d.pop("description")
    return json.dumps([device, d], sort_keys=True)


def copies_key(cfg, device: str):
    """Jobs with one key can run as copies of one build (:class:`sdsnn_bio.multi.MultiDevelopment`):
    the configuration without :data:`sdsnn_bio.multi.RUNTIME_KEYS`, and the device. ``None``
    for a job that cannot be a copy (a developmental model, ``training.parallel_windows``,
    ``training.processes`` above 1)."""
    from .multi import _flat, _is_runtime

    if getattr(cfg, "kind", "training") != "training" or cfg.training.parallel_windows \
            or cfg.training.processes > 1:
        return None
    flat = {k: v for k, v in _flat(cfg).items() if not _is_runtime(k)}
    return json.dumps([device, flat], sort_keys=True, default=str)


def plan_builds(jobs: list, copies_per_build: int) -> list:
    """The builds of a sweep: lists of job dicts (:meth:`Job.to_dict`), in grid order.

    Jobs with one :func:`copies_key` are cut, in grid order, into ``ceil(n / K)`` builds of
    as even sizes as possible (at most ``K`` copies each); every other job is a build of one.
    With ``copies_per_build = 1`` every job is its own build (one process, one network).
    """
    if isinstance(copies_per_build, bool) or not isinstance(copies_per_build, int) or copies_per_build < 1:
        raise SdsnnError(f"sweep: copies_per_build must be an integer >= 1, got {copies_per_build!r}")
    if copies_per_build == 1:
        return [[j] for j in jobs]
    by_key, order = {}, []
    for j in jobs:
        key = j.get("copies_key")
        if key is None:
            order.append([j])
            continue
        if key not in by_key:
            by_key[key] = []
            order.append(by_key[key])
        by_key[key].append(j)
    builds = []
    for members in order:
        n = len(members)
        parts = -(-n // copies_per_build)
        sizes = [n // parts + (1 if i < n % parts else 0) for i in range(parts)]
        start = 0
        for size in sizes:
            builds.append(members[start:start + size])
            start += size
    return builds


def _source_digest() -> str:
    """A digest of this package's code and Brian2's version: what the generated code depends
    on besides the configuration."""
    import hashlib
    from importlib.metadata import version

    h = hashlib.sha256(version("brian2").encode())
    root = Path(__file__).resolve().parent
    for p in sorted(root.rglob("*.py")):
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _build_marker(key: str, digest: str) -> Path:
    """The file that says this machine has built ``key`` with this code (compiler cache warm)."""
    import hashlib

    from .devices import cache_root

    return Path(cache_root()) / "sweep-builds" / hashlib.sha256(f"{digest}\n{key}".encode()).hexdigest()[:32]


def _mark_built(key: str, digest: str) -> None:
    marker = _build_marker(key, digest)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


# ------------------------------------------------------------------ results
def run_row(run_dir) -> dict:
    """The final figures of one run folder: final test accuracy, compression, synapse
    sparsity and alive units per layer (from its ``summary.json``); empty if the run has
    not finished. For tables of many runs (sweeps, papers)."""
    s = RunFolder(run_dir).read_summary()
    if not s:
        return {}
    row = {k: s[k] for k in ("final_test_accuracy", "compression", "synapse_sparsity") if k in s}
    row.update({k: s[k] for k in s if k.startswith("alive_")})
    return row


def _read_job_record(job_dir) -> dict:
    p = Path(job_dir) / "job.json"
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError:
        return {}


def sweep_row(job: dict) -> dict:
    """One row of a sweep's table: the job, its grid values, status, attempts, the run's
    final figures (:func:`run_row`) and the wall time of its attempts."""
    jdir = Path(job["dir"])
    rec = _read_job_record(jdir)
    row = {"job": job["id"], **job["values"], "status": rec.get("status", "not run"),
           "attempts": len(rec.get("attempts", [])),
           "resumed": sum(1 for a in rec.get("attempts", []) if a.get("resume_from") is not None)}
    row.update(run_row(jdir / "run"))
    row["wall_s"] = rec.get("wall_s", float("nan"))
    return row


def seed_rows(rows: list, grid_keys, seed_key) -> list:
    """Mean and standard deviation (``ddof = 1``) over the jobs that differ only in the seed.

    Rows that have not finished are left out; ``n`` counts the seeds averaged.
    """
    import numpy as np

    if seed_key is None:
        return []
    rest = [k for k in grid_keys if k != seed_key]
    groups = {}
    for r in rows:
        if r.get("status") in ("done", "kept") and "final_test_accuracy" in r:
            groups.setdefault(tuple(json.dumps(r[k]) for k in rest), []).append(r)
    out = []
    for members in groups.values():
        agg = {k: members[0][k] for k in rest}
        agg["n"] = len(members)
        for col in ["final_test_accuracy", "compression", "synapse_sparsity"] + \
                [c for c in members[0] if c.startswith("alive_")] + ["wall_s"]:
            vals = np.array([m.get(col, np.nan) for m in members], float)
            agg[f"{col}_mean"] = float(np.mean(vals))
            agg[f"{col}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan")
        out.append(agg)
    return out


def _columns(rows):
    cols = []
    for r in rows:
        cols.extend(k for k in r if k not in cols)
    return cols


def write_csv(path, rows: list) -> None:
    """Rows (dicts) as CSV, columns in first-seen order (atomic)."""
    buf = io.StringIO()
    cols = _columns(rows)
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    w.writerows([format_cell(r.get(c, "")) for c in cols] for r in rows)
    atomic_write(path, buf.getvalue())


def _show(col: str, v) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "-"
    if isinstance(v, float) and col.startswith(("final_test_accuracy", "compression", "synapse_sparsity")):
        return f"{100 * v:.2f}%"
    if isinstance(v, float) and col.startswith(("wall_s", "alive_")):
        return f"{v:.1f}"
    return str(v).lower() if isinstance(v, bool) else str(v)


def format_table(rows: list, seeds: list = ()) -> str:
    """The per-job table, and the mean +- std over seeds if any, as aligned text."""
    def block(rows, pairs=False):
        cols = _columns(rows)
        if pairs:   # "x_mean", "x_std" -> one column "x"
            shown = [c for c in cols if not c.endswith(("_mean", "_std"))] + \
                    [c[:-5] for c in cols if c.endswith("_mean")]
            cells = [[str(r[c]) if c in r else f"{_show(c, r[c + '_mean'])} +- {_show(c, r[c + '_std'])}"
                      for c in shown] for r in rows]
        else:
            shown = cols
            cells = [[_show(c, r.get(c, float("nan"))) for c in cols] for r in rows]
        head = [c.replace("final_test_accuracy", "accuracy") for c in shown]
        widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(head)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
        return lines

    lines = block(rows)
    if seeds:
        lines += ["", "mean +- std over seeds (n = seeds that finished):"] + block(seeds, pairs=True)
    return "\n".join(lines)


# ------------------------------------------------------------------ worker side
def _die_with_parent(parent_pid: int):
    """A ``preexec_fn``: the child gets SIGKILL when the thread that started it dies
    (``prctl(PR_SET_PDEATHSIG)``, Linux); if the parent already died, exit at once."""
    def preexec():
        import ctypes

        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)    # 1 = PR_SET_PDEATHSIG
        except OSError:
            pass
        if os.getppid() != parent_pid:
            os._exit(1)
    return preexec


def _lock(jdir: Path):
    """An exclusive lock on the job folder (``job.lock``, ``flock``): returns its descriptor.

    Waits for an earlier attempt's run to end (it dies with its worker); raises
    RunError if another process still holds the folder after a minute.
    """
    import fcntl

    fd = os.open(jdir / "job.lock", os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.time() + _LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.time() > deadline:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
                os.close(fd)
                raise RunError(f"{jdir}: the job folder is locked by another process ({holder}); "
                               "is another sweep running on this folder?") from None
            time.sleep(0.2)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {os.uname().nodename}\n".encode(), 0)
    return fd


class JobKilled(RuntimeError):
    """The job's run was killed by a signal (the task is tried again; the run resumes)."""


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "local"


def _set_event(name):
    if name:
        from distributed import Event

        Event(name).set()


def _finished_row(job: dict, rec: dict) -> dict:
    """The row of a job whose run folder holds its summary."""
    if rec.get("status") == "done":     # finished by an earlier sweep: kept as it is
        return dict(sweep_row(job), status="kept")
    # the run wrote its summary, then its attempt died (drawing figures): finished
    rec["status"] = "done"
    atomic_write(Path(job["dir"]) / "job.json", json.dumps(rec, indent=2))
    return sweep_row(job)


def _write_job_toml(job: dict) -> Path:
    import tomli_w

    toml_path = Path(job["dir"]) / "job.toml"
    if not toml_path.is_file():
        atomic_write(toml_path, tomli_w.dumps(job["config"]))
    return toml_path


def _close_lost_attempt(rec: dict, log_path: Path) -> float:
    """An earlier attempt that died with its worker: its time runs until its last output.
    Returns the wall time of the job's attempts so far."""
    attempts = rec.setdefault("attempts", [])
    wall = rec.get("wall_s", 0.0)
    if attempts and "end" not in attempts[-1] and log_path.is_file():
        attempts[-1]["end"] = max(attempts[-1]["start"], log_path.stat().st_mtime)
        attempts[-1]["returncode"] = "lost"
        wall += attempts[-1]["end"] - attempts[-1]["start"]
    return wall


def _attempt_start(resume_from) -> str:
    """How an attempt starts, for the line that opens it in ``job.log``."""
    if resume_from is None:
        return "starting"
    if resume_from >= 0:
        return f"resuming from the snapshot of period {resume_from}"
    return "resuming a run that saved no snapshot (from the start)"


def run_job(job: dict, built_event=None, poll_s: float = 0.2) -> dict:
    """Run one job in its folder (a Dask task; also callable directly) and return its row.

    Starts ``python -m sdsnn_bio run JOB/job.toml --out JOB/run`` (with
    ``--resume`` when the run folder holds the run of an earlier attempt), its
    output appended to ``JOB/job.log``. The run holds the folder's lock with
    the task and dies with the task's worker. A finished run (``summary.json``)
    is not run again (status ``kept``).

    Parameters
    ----------
    job : dict
        :meth:`Job.to_dict`.
    built_event : str, optional
        Name of a ``distributed.Event`` set once the run's network is built (or the
        run ended), so that runs of the same build can wait for the compiler cache.

    Returns
    -------
    dict
        :func:`sweep_row`.

    Raises
    ------
    JobKilled
        The run died of a signal; the scheduler tries again (``retries``).
    """
    jdir = Path(job["dir"])
    jdir.mkdir(parents=True, exist_ok=True)
    fd = _lock(jdir)
    try:
        run = RunFolder(jdir / "run")
        rec = _read_job_record(jdir)
        if run.is_finished():
            _set_event(built_event)
            return _finished_row(job, rec)
        toml_path = _write_job_toml(job)
        resume_from = None
        if run.has_meta():
            periods = run.snapshot_periods()
            resume_from = periods[-1] if periods else -1
        elif run.path.exists():     # an attempt killed before its run started: nothing to keep
            shutil.rmtree(run.path)
        attempts = rec.setdefault("attempts", [])
        log_path = jdir / "job.log"
        wall = _close_lost_attempt(rec, log_path)
        cmd = [sys.executable, "-m", "sdsnn_bio", "run", str(toml_path), "--out", str(run.path),
               "--device", job["device"]]
        if resume_from is not None:
            cmd.append("--resume")
        t0 = time.time()
        attempt = {"start": t0, "worker": _worker_address(), "worker_pid": os.getpid(),
                   "resume_from": resume_from}
        attempts.append(attempt)
        rec.update(status="running", wall_s=wall)
        atomic_write(jdir / "job.json", json.dumps(rec, indent=2))
        with open(log_path, "ab") as log:
            log.write(f"sdsnn-bio sweep: attempt {len(attempts)} of job {job['id']} on worker "
                      f"{attempt['worker']} (pid {os.getpid()}): {_attempt_start(resume_from)}\n".encode())
            log.flush()
            offset = log.tell()
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            # the run dies with this thread (PR_SET_PDEATHSIG), which waits for it below
            p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 pass_fds=(fd,), env=env, preexec_fn=_die_with_parent(os.getpid()))
            attempt["pid"] = p.pid
            atomic_write(jdir / "job.json", json.dumps(rec, indent=2))
            seen = built_event is None
            while True:
                try:
                    rc = p.wait(timeout=poll_s)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if not seen:
                    with open(log_path, "rb") as f:
                        f.seek(offset)
                        seen = _BUILT.encode() in f.read()
                    if seen:
                        _set_event(built_event)
        attempt.update(end=time.time(), returncode=rc)
        rec["wall_s"] = wall + attempt["end"] - t0
        if rc < 0:
            rec["status"] = "killed"
            atomic_write(jdir / "job.json", json.dumps(rec, indent=2))
            _set_event(built_event)
            raise JobKilled(f"job {job['id']}: the run died of signal {-rc}; see {log_path}")
        rec["status"] = "done" if rc == 0 and run.is_finished() else "failed"
        atomic_write(jdir / "job.json", json.dumps(rec, indent=2))
        _set_event(built_event)
        return sweep_row(job)
    finally:
        os.close(fd)


def run_group(group: list, built_event=None) -> list:
    """Run the jobs of one build as copies of one network (a Dask task) and return their rows.

    Starts ``python -m sdsnn_bio.sweep [--resume] --device DEVICE JOB_DIR...`` (copy ``k`` is
    ``group[k]``: its ``job.toml`` and run folder), its output appended to every member's
    ``job.log``. It holds every member's lock (in grid order, as every task does) and dies
    with the task's worker. If every member has a run folder, the build resumes from the
    last period all of them hold a snapshot of (:class:`sdsnn_bio.multi.MultiDevelopment`);
    if some have none (an attempt killed before its copies started), every member starts
    afresh. Members that all finished are kept.

    Returns
    -------
    list of dict
        :func:`sweep_row` of each member, in ``group``'s order.

    Raises
    ------
    JobKilled
        The build's run died of a signal; the scheduler tries again (``retries``).
    """
    import threading

    dirs = [Path(j["dir"]) for j in group]
    fds = []
    try:
        for d in dirs:
            d.mkdir(parents=True, exist_ok=True)
            fds.append(_lock(d))
        runs = [RunFolder(d / "run") for d in dirs]
        recs = [_read_job_record(d) for d in dirs]
        if all(r.is_finished() for r in runs):
            _set_event(built_event)
            return [_finished_row(j, rec) for j, rec in zip(group, recs)]
        for j in group:
            _write_job_toml(j)
        resume = all(r.has_meta() for r in runs)
        resume_from = None
        if resume:
            common = set.intersection(*(set(r.snapshot_periods()) for r in runs))
            resume_from = max(common) if common else -1
        else:
            for r in runs:
                if r.path.exists():
                    shutil.rmtree(r.path)
        cmd = [sys.executable, "-m", "sdsnn_bio.sweep", "--device", group[0]["device"]]
        cmd += (["--resume"] if resume else []) + [str(d) for d in dirs]
        t0 = time.time()
        ids = [j["id"] for j in group]
        walls, logs = [], []
        for k, (d, rec) in enumerate(zip(dirs, recs)):
            walls.append(_close_lost_attempt(rec, d / "job.log"))
            rec["attempts"].append({"start": t0, "worker": _worker_address(), "worker_pid": os.getpid(),
                                    "resume_from": resume_from, "build": ids, "copy": k})
            rec.update(status="running", wall_s=walls[-1])
            atomic_write(d / "job.json", json.dumps(rec, indent=2))
            log = open(d / "job.log", "ab")
            logs.append(log)
            log.write(f"sdsnn-bio sweep: attempt {len(rec['attempts'])} of job {group[k]['id']} on worker "
                      f"{_worker_address()} (pid {os.getpid()}): copy {k} of a build of {len(group)} "
                      f"({', '.join(ids)}): {_attempt_start(resume_from)}\n".encode())
            log.flush()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             pass_fds=tuple(fds), env=env, preexec_fn=_die_with_parent(os.getpid()))
        for d, rec in zip(dirs, recs):
            rec["attempts"][-1]["pid"] = p.pid
            atomic_write(d / "job.json", json.dumps(rec, indent=2))

        def tee():
            seen = built_event is None
            for line in iter(p.stdout.readline, b""):
                for log in logs:
                    log.write(line)
                    log.flush()
                if not seen and line.startswith(_BUILT.encode()):
                    seen = True
                    _set_event(built_event)

        reader = threading.Thread(target=tee, daemon=True)
        reader.start()
        rc = p.wait()
        reader.join()
        end = time.time()
        for log in logs:
            log.close()
        rows = []
        for d, rec, run, wall, job in zip(dirs, recs, runs, walls, group):
            rec["attempts"][-1].update(end=end, returncode=rc)
            rec["wall_s"] = wall + end - t0
            rec["status"] = "killed" if rc < 0 else "done" if run.is_finished() else "failed"
            atomic_write(d / "job.json", json.dumps(rec, indent=2))
            rows.append(sweep_row(job))
        _set_event(built_event)
        if rc < 0:
            raise JobKilled(f"build of jobs {', '.join(ids)}: the run died of signal {-rc}; see "
                            f"{dirs[0] / 'job.log'}")
        return rows
    finally:
        for fd in fds:
            os.close(fd)


def _group_main(argv=None) -> int:
    """``python -m sdsnn_bio.sweep [--resume] --device D JOB_DIR...``: the jobs' configurations
    (``JOB_DIR/job.toml``) as copies of one build, run folders ``JOB_DIR/run`` (:func:`run_group`)."""
    from .config import load_config
    from .multi import MultiDevelopment
    from .report import make_figures

    ap = argparse.ArgumentParser(prog="python -m sdsnn_bio.sweep",
                                 description="the jobs of one sweep build as copies of one network")
    ap.add_argument("--device", required=True)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("job_dirs", nargs="+")
    args = ap.parse_args(argv)
    dirs = [Path(d) for d in args.job_dirs]
    try:
        cfgs = [load_config(d / "job.toml") for d in dirs]
        md = MultiDevelopment(cfgs, [d / "run" for d in dirs], device=args.device,
                              progress=lambda line: print(line, flush=True))
        try:
            summaries = md.run(resume=args.resume)
        finally:
            for d in dirs:
                if RunFolder(d / "run").is_finished():
                    make_figures(d / "run")
    except SdsnnError as exc:
        print(f"sdsnn-bio: error: {exc}", flush=True)
        return 2 if isinstance(exc, ConfigError) else 1
    for d, s in zip(dirs, summaries):
        print(f"{d.name}: test accuracy {100 * s['final_test_accuracy']:.2f}%, compression "
              f"{100 * s.get('compression', 0.0):.2f}%", flush=True)
    return 0


# ------------------------------------------------------------------ client side
def make_security(tls_ca_file=None, tls_cert=None, tls_key=None):
    """A ``distributed.security.Security`` for a remote scheduler from the user's TLS files,
    or None when none is given (then Dask's configuration, ``distributed.comm.tls``, applies).

    All three files are needed together; a missing file is a ConfigError.
    """
    given = {"--tls-ca-file": tls_ca_file, "--tls-cert": tls_cert, "--tls-key": tls_key}
    if not any(given.values()):
        return None
    for flag, value in given.items():
        if not value:
            raise ConfigError(f"{flag} is missing (TLS needs --tls-ca-file, --tls-cert and --tls-key)")
        if not Path(value).is_file():
            raise ConfigError(f"{flag} {value}: no such file")
    from distributed.security import Security

    return Security(tls_ca_file=str(tls_ca_file), tls_client_cert=str(tls_cert), tls_client_key=str(tls_key),
                    require_encryption=True)


def default_workers(jobs: list, cores: int | None = None) -> int:
    """Workers of a local cluster for ``jobs`` (:meth:`Job.to_dict`): one per core, or one per
    ``P`` cores where a job splits its batches over ``P`` processes (``training.processes``)."""
    cores = cores or len(os.sched_getaffinity(0))
    per_job = max((int(j["config"].get("training", {}).get("processes", 1)) for j in jobs), default=1)
    return max(1, cores // per_job)


def local_cluster(n_workers=None, security=None, allowed_failures: int = 3):
    """The embedded cluster: one single-threaded worker process per core, on the loopback
    interface only (``127.0.0.1``; no dashboard). ``security`` (TLS) is optional.

    Worker deaths a task survives: ``allowed_failures``
    (``distributed.scheduler.allowed-failures``; the scheduler runs in this process).
    """
    import dask
    from distributed import LocalCluster

    n = n_workers or len(os.sched_getaffinity(0))
    # the workers' statistical profiler samples their threads all the time: 0.30 s of CPU per
    # worker in 10 s of a waiting job, 0.16 s without it (measured 2026-12-01, 2 workers)
    with dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures,
                          "distributed.worker.profile.enabled": False}):
        return LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                            dashboard_address=None, memory_limit=0, security=security,
                            protocol="tls://" if security is not None else None)


def _prepare_out(sweep: Sweep, out: Path, resume: bool):
    """Check the output folder before anything is written: an existing sweep needs
    ``resume``; an existing job folder must hold the same configuration."""
    if out.exists() and any(out.iterdir()) and not resume:
        raise SdsnnError(f"{out}: sweep folder exists and is not empty (use --resume to continue it, "
                         "or another --out)")
    from .config import load_config

    for job in sweep.jobs:
        toml_path = out / job.id / "job.toml"
        if toml_path.is_file():
            # compared as validated configurations: a key added to the package since, with its
            # default, does not make an unfinished job a different one
            try:
                same = load_config(toml_path).to_dict() == job.config.to_dict()
            except ConfigError:
                same = False
            if not same:
                raise ConfigError(f"{sweep.path}: job {job.id}: its folder {toml_path.parent} holds another "
                                  "configuration (the sweep file changed); use another --out")


def run_sweep(path, out=None, resume: bool = False, scheduler=None, security=None, n_workers=None,
              retries: int = 3, stagger=None, progress=None, copies_per_build: int = 1) -> list:
    """Run a sweep file's jobs on Dask and write its tables.

    Parameters
    ----------
    path : path-like
        The sweep file (validated by :func:`load_sweep` before anything runs).
    out : path-like, optional
        Output folder (default ``runs/<name>``); on a real cluster, a folder the
        workers share.
    resume : bool
        Continue the sweep in ``out``: finished jobs are kept, the others resume.
    scheduler : str, optional
        Address of a running Dask scheduler; default: :func:`local_cluster`.
    security : distributed.security.Security, optional
        TLS for the scheduler (:func:`make_security`), or for the local cluster.
    n_workers : int, optional
        Workers of the local cluster (default: one per core, or one per P cores where a job
        splits its batches over P processes, ``training.processes``).
    retries : int
        Attempts after the first for a job whose run died (``retries=`` of the task,
        and the local scheduler's ``allowed-failures``).
    stagger : bool, optional
        Start the jobs of one build only once the first of them has built, so that
        they take its object files from the compiler cache. Default: when ``ccache``
        is in use and this machine has not built that code before (a marker in the
        project cache, :func:`sdsnn_bio.devices.cache_root`, written once a job of the
        build has built; the code of this package and Brian2's version are part of
        its name). With a warm cache the other workers would only wait.
    progress : callable, optional
        Called with one line of text per event (default: print).
    copies_per_build : int
        At most this many jobs that differ only in run-time keys run as copies of one build
        (:func:`plan_builds`, :func:`run_group`); 1: every job is its own process and build.

    Returns
    -------
    list of dict
        The rows of the table (:func:`sweep_row`), in grid order.
    """
    from distributed import Client, Event

    from .devices import use_compiler_cache

    emit = progress or (lambda line: print(line, flush=True))
    for name, value, low in (("n_workers", n_workers, 1), ("retries", retries, 0)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
            raise SdsnnError(f"sweep: {name} must be an integer >= {low}, got {value!r}")
    sweep = load_sweep(path)
    out = Path(out or Path("runs") / sweep.name)
    jobs = [j.to_dict(out.resolve()) for j in sweep.jobs]    # the workers may start elsewhere
    builds = plan_builds(jobs, copies_per_build)
    plan = [[j["id"] for j in b] for b in builds]
    _prepare_out(sweep, out, resume)
    before = None          # the builds this sweep folder ran, where it says
    if (out / "builds.json").is_file():
        before = json.loads((out / "builds.json").read_text())
    elif resume and copies_per_build > 1 and (out / "jobs.json").is_file():
        before = [[j["id"]] for j in json.loads((out / "jobs.json").read_text())]    # one job a build
    if before is not None and before != plan:
        raise SdsnnError(f"{out}: the sweep ran its jobs in other builds ({out / 'builds.json'}: "
                         f"{before}) than --copies-per-build {copies_per_build} gives ({plan}); resume "
                         "it with the copies per build it started with")
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "sweep.toml").is_file():
        shutil.copyfile(sweep.path, out / "sweep.toml")
    atomic_write(out / "jobs.json", json.dumps(
        [{k: j[k] for k in ("id", "values", "model", "device")} for j in jobs], indent=2))
    if copies_per_build > 1:
        atomic_write(out / "builds.json", json.dumps(plan, indent=2))
    cached = use_compiler_cache() is not None
    digest = _source_digest()
    token = f"{sweep.name}-{os.getpid()}-{time.time_ns()}"
    cluster = None
    t0 = time.time()
    if scheduler is None:
        cluster = local_cluster(n_workers or default_workers(jobs), security=security, allowed_failures=retries)
        client = Client(cluster, security=security)
    else:
        client = Client(scheduler, security=security)
    rows = {}
    try:
        n = len(client.scheduler_info().get("workers", {}))
        where = "local cluster" if cluster is not None else "scheduler"
        shared = sum(len(b) for b in builds if len(b) > 1)
        n_shared = sum(len(b) > 1 for b in builds)
        emit(f"sdsnn-bio sweep {sweep.name}: {len(jobs)} jobs on the {where} {client.scheduler.address} "
             f"({n} workers) -> {out}" + (f"; {shared} of them as copies in {n_shared} shared "
                                          f"build{'s' if n_shared > 1 else ''}" if shared else ""))
        # builds that compile the same code: one job, or the same number of copies of one network
        groups = {}
        for b in builds:
            groups.setdefault(b[0]["build_key"] if len(b) == 1 else f"{b[0]['build_key']}|copies={len(b)}",
                              []).append(b)
        futures, waiting, leads = {}, {}, {}

        def name(b):
            return b[0]["id"] if len(b) == 1 else "build of " + ", ".join(j["id"] for j in b)

        def submit(b, key, event=None):
            if len(b) == 1:
                f = client.submit(run_job, b[0], event, key=f"{token}-{b[0]['id']}", retries=retries, pure=False)
            else:
                f = client.submit(run_group, b, event, key=f"{token}-build-{b[0]['id']}", retries=retries,
                                  pure=False)
            futures[f] = b, key
            return f

        def finished(b):
            return all(RunFolder(Path(j["dir"]) / "run").is_finished() for j in b)

        for i, (key, members) in enumerate(groups.items()):
            todo = [b for b in members if not finished(b)]
            wait = stagger if stagger is not None else \
                cached and not _build_marker(key, digest).is_file()
            if not wait or len(todo) < 2:
                for b in members:
                    submit(b, key)
                continue
            for b in members:
                if b not in todo:         # finished: kept at once, they build nothing
                    submit(b, key)
            event = f"{token}-built-{i}"
            waiting[event], leads[event] = todo[1:], (submit(todo[0], key, event), key)
            n = len(todo) - 1
            emit(f"{n} {'job' if len(todo[0]) == 1 else 'build'}{'s' if n > 1 else ''} wait{'' if n > 1 else 's'} "
                 f"for {'job ' if len(todo[0]) == 1 else ''}{name(todo[0])} to build the code they share (compiler cache)")
        pending = set(futures)
        while pending or waiting:
            for event in list(waiting):
                # the first job built (or ended, whatever its outcome): start the others
                lead, key = leads[event]
                if lead.done() or Event(event, client=client).is_set():
                    if not lead.done():     # built while running (a finished one is marked below)
                        _mark_built(key, digest)
                    for b in waiting.pop(event):
                        pending.add(submit(b, key))
            for f in [f for f in pending if f.done()]:
                pending.discard(f)
                b, key = futures[f]
                try:
                    result = f.result()
                    got = [result] if len(b) == 1 else result
                except Exception as exc:      # a task that ran out of attempts, a lost worker
                    got = [dict(sweep_row(job), status="error") for job in b]
                    emit(f"{'job ' if len(b) == 1 else ''}{name(b)}: error: {type(exc).__name__}: {exc}")
                for job, row in zip(b, got):
                    rows[job["id"]] = row
                    if row["status"] == "done":
                        _mark_built(key, digest)
                    acc = row.get("final_test_accuracy")
                    emit(f"job {job['id']}: {row['status']}"
                         + (f", accuracy {100 * acc:.2f}%" if acc is not None else "")
                         + f" ({len(rows)}/{len(jobs)} jobs, {time.time() - t0:.0f} s)")
                _write_tables(out, sweep, [rows[j["id"]] for j in jobs if j["id"] in rows])
            time.sleep(0.2)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    table = [rows[j["id"]] for j in jobs]
    text = _write_tables(out, sweep, table)
    emit(text)
    emit(f"sweep {sweep.name}: {sum(r['status'] in ('done', 'kept') for r in table)}/{len(table)} jobs "
         f"finished in {time.time() - t0:.0f} s; tables in {out / 'results.csv'}, {out / 'seeds.csv'}")
    return table


def _write_tables(out: Path, sweep: Sweep, rows: list) -> str:
    seeds = seed_rows(rows, list(sweep.grid), sweep.seed_key)
    write_csv(out / "results.csv", rows)
    if seeds:
        write_csv(out / "seeds.csv", seeds)
    text = format_table(rows, seeds)
    atomic_write(out / "results.txt", text + "\n")
    return text


if __name__ == "__main__":
    sys.exit(_group_main())
