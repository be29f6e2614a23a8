"""Run records: the layout of a run folder and every read and write of it.

A run folder holds::

    config.toml        the configuration (reloads with sdsnn_bio.config.load_config)
    run.json           versions, code (git revision, dirty flag, source digest), device, seed, network size
                       (written at the start)
    periods.csv        one row per structural period
    summary.json       final figures (written at the end)
    snapshots/         period_NNNN.npz (the newest, for resume) and best.npz
    history/           the structural history (sdsnn_bio.history): period_NNNN.npz for every
                       period (mask changes, alive units, histograms, per-unit summaries)
                       and keyframe_NNNN.npz (quantised weights and spine bounds) for a
                       bounded set of periods
    figures/           PNG files drawn by sdsnn_bio.report

Every file is written atomically (temporary name, fsync, ``os.replace``), so a
run killed at any moment leaves either the old or the new version of a file,
and at most a ``*.tmp`` leftover that :meth:`RunFolder.clean_temporary`
removes and that is never read as a record. History files follow the same
rule, and a resumed run first removes the history of the periods after its
snapshot (:meth:`RunFolder.clear_history`), so that it writes them again.

Snapshots store each array in the smallest exact form (see :func:`encode_array`):
bit-packed 0/1 masks, small integers for counters, sparse indices and values for
mostly-zero arrays, a palette for arrays with few distinct values, zlib where
it pays for the small-integer forms, otherwise the raw array. Each encoding is
checked bit for bit (``-0.0`` and NaN payloads included) before it is used, so
a restored snapshot equals the saved arrays exactly. This module knows no
variable names of the network and does not import Brian2.
"""

import csv
import io
import json
import math
import os
import re
import shutil
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["RUN_FILES", "HISTORY_KINDS", "RunFolder", "Snapshot", "atomic_write", "encode_array", "decode_array",
           "read_table", "format_cell"]

#: File and folder names inside a run folder.
RUN_FILES = {"config": "config.toml", "table": "periods.csv", "meta": "run.json",
             "summary": "summary.json", "snapshots": "snapshots", "history": "history",
             "figures": "figures"}

_SNAP_RE = re.compile(r"^period_(\d{4,})\.npz$")
#: Kinds of history file: the record of every period and the keyframes.
HISTORY_KINDS = ("period", "keyframe")
_HIST_RE = re.compile(r"^(period|keyframe)_(\d{4,})\.npz$")
_BEST = "best.npz"
_META = "__meta__"          # the caller's JSON meta data
_RECORDS = "__records__"    # period, format and the per-array encodings
_FORMAT = 1
# parts of an encoded array besides its values (stored as f"{key}{suffix}")
_INDEX = "#index"
# a part of a small type larger than this is tried with zlib; kept if it saves a quarter
_ZLIB_MIN_BYTES = 4096
_ZLIB_GAIN = 0.75
_SAMPLE = 4096


def atomic_write(path, data) -> None:
    """Write ``data`` (bytes or str) to ``path``: temporary file, fsync, ``os.replace``."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def format_cell(v) -> str:
    """A table cell: floats with 6 significant digits, NaN empty, anything else ``str``."""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return str(v)


def read_table(run_dir) -> dict:
    """The per-period table of a run folder as a dict of numpy arrays (one per column)."""
    return RunFolder(run_dir).read_table()


# --------------------------------------------------------------- encodings
def _bits(x: np.ndarray) -> np.ndarray:
    """The bit patterns of a contiguous 1-D array (unsigned integers of its item size)."""
    return x.view(f"u{x.dtype.itemsize}")


def _int_form(x: np.ndarray):
    """``(kind, values)`` if every value is an integer that a small type holds, else None."""
    if x.dtype.kind == "f":
        s = x[:: max(1, x.size // _SAMPLE)]
        if not np.all(s == np.trunc(s)):
            return None
    # as Python numbers: compared in a float16 array's own type, 65535 overflows (a warning)
    lo, hi = x.min().item(), x.max().item()
    if not (lo >= -32768 and hi <= 65535):      # also False for NaN
        return None
    if lo >= 0 and hi <= 1:
        return "bits", np.packbits(x != 0)
    if lo >= 0:
        t = np.uint8 if hi <= 255 else np.uint16
    else:
        t = np.int8 if (lo >= -128 and hi <= 127) else np.int16 if hi <= 32767 else None
    if t is None or np.dtype(t).itemsize >= x.dtype.itemsize:
        return None
    return "int", x.astype(t)


def _sparse_form(x: np.ndarray, bits: np.ndarray):
    """``(values, indices)`` of the elements whose bit pattern is not 0 (so -0.0 is kept)."""
    if x.size >= 2 ** 32:
        return None
    s = bits[:: max(1, x.size // _SAMPLE)]
    if np.count_nonzero(s) > s.size // 2:
        return None
    idx = np.flatnonzero(bits).astype(np.uint32)
    return x[idx], idx


def _palette_form(x: np.ndarray, bits: np.ndarray):
    """``(distinct values, index)`` when the array holds at most 65536 distinct bit patterns."""
    s = bits[:: max(1, x.size // _SAMPLE)]
    if len(np.unique(s)) > s.size // 4:
        return None
    u = np.unique(bits)
    if len(u) > 65536:
        return None
    idx = np.searchsorted(u, bits)
    idx = np.packbits(idx.astype(bool)) if len(u) <= 2 else idx.astype(np.uint8 if len(u) <= 256 else np.uint16)
    return u.view(x.dtype), idx


def encode_array(a: np.ndarray):
    """The smallest exact form of an array: ``(parts, spec)``.

    ``parts`` maps a suffix (``""`` for the values, ``"#index"``) to an array;
    ``spec`` (JSON) names the encoding (``raw``, ``bits``, ``int``, ``sparse``,
    ``palette``), the original dtype and shape, and which parts are
    zlib-compressed. A form is used only if it decodes to the same bit
    patterns; :func:`decode_array` inverts it.
    """
    a = np.asarray(a)
    spec = {"enc": "raw", "dtype": a.dtype.str, "shape": list(a.shape)}
    if a.size == 0 or a.ndim == 0 or a.dtype.kind not in "biuf" or a.dtype.itemsize not in (1, 2, 4, 8):
        return {"": a}, spec
    x = np.ascontiguousarray(a).reshape(-1)
    bits = _bits(x)
    n = x.size
    best, best_bytes = ("raw", {"": a}, {}), a.nbytes

    def consider(kind, parts):
        nonlocal best, best_bytes
        stored, zipped = _zip(parts)
        nbytes = sum(p.nbytes for p in stored.values())
        if nbytes < best_bytes:
            back = _decode_parts(dict(spec, enc=kind), parts)
            if back.dtype == a.dtype and back.shape == a.shape and \
                    np.array_equal(_bits(back.reshape(-1)), bits):
                best, best_bytes = (kind, stored, zipped), nbytes

    found = _int_form(x)
    if found is not None:
        consider(found[0], {"": found[1]})
    if best_bytes > n / 8 + 64:
        found = _sparse_form(x, bits)
        if found is not None:
            consider("sparse", {"": found[0], _INDEX: found[1]})
    if best_bytes > n:
        found = _palette_form(x, bits)
        if found is not None:
            consider("palette", {"": found[0], _INDEX: found[1]})
    if best[0] == "raw":
        return best[1], spec
    spec["enc"] = best[0]
    if best[2]:
        spec["zlib"] = best[2]
    return best[1], spec


def _zip(parts: dict):
    """Parts of a small type compressed with zlib where that saves a quarter: ``(parts, zipped)``."""
    out, zipped = dict(parts), {}
    for suffix, part in parts.items():
        if part.dtype.itemsize <= 2 and part.nbytes >= _ZLIB_MIN_BYTES:
            packed = zlib.compress(part.tobytes(), 1)
            if len(packed) <= _ZLIB_GAIN * part.nbytes:
                zipped[suffix] = [part.dtype.str, part.size]
                out[suffix] = np.frombuffer(packed, np.uint8)
    return out, zipped


def _decode_parts(spec: dict, parts: dict) -> np.ndarray:
    kind, values = spec["enc"], parts[""]
    if kind == "raw":
        return values
    dtype, shape = np.dtype(spec["dtype"]), tuple(spec["shape"])
    n = math.prod(shape)
    if kind == "bits":
        out = np.unpackbits(values, count=n).astype(dtype)
    elif kind == "int":
        out = values.astype(dtype)
    elif kind == "sparse":
        out = np.zeros(n, dtype)
        out[parts[_INDEX]] = values
    elif kind == "palette":
        idx = parts[_INDEX]
        if len(values) <= 2:
            idx = np.unpackbits(idx, count=n)
        out = values[idx]
    else:
        raise ValueError(f"unknown snapshot encoding {kind!r}")
    return out.reshape(shape)


def decode_array(spec: dict, parts: dict) -> np.ndarray:
    """The array that :func:`encode_array` encoded into ``parts`` (zlib parts included)."""
    parts = dict(parts)
    for suffix, (dtype, count) in spec.get("zlib", {}).items():
        parts[suffix] = np.frombuffer(zlib.decompress(parts[suffix].tobytes()), dtype=dtype, count=count)
    return _decode_parts(spec, parts)


# ----------------------------------------------------------------- folders
@dataclass
class Snapshot:
    """One saved state: the period it follows, its arrays (exact) and the caller's meta data."""

    period: int
    arrays: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)


class RunFolder:
    """The files of one run folder (see the module documentation)."""

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self):
        return f"RunFolder({str(self.path)!r})"

    # paths
    @property
    def config(self) -> Path:
        return self.path / RUN_FILES["config"]

    @property
    def table(self) -> Path:
        return self.path / RUN_FILES["table"]

    @property
    def meta(self) -> Path:
        return self.path / RUN_FILES["meta"]

    @property
    def summary(self) -> Path:
        return self.path / RUN_FILES["summary"]

    @property
    def snapshots(self) -> Path:
        return self.path / RUN_FILES["snapshots"]

    @property
    def history(self) -> Path:
        return self.path / RUN_FILES["history"]

    @property
    def figures(self) -> Path:
        return self.path / RUN_FILES["figures"]

    def snapshot_path(self, which="last") -> Path:
        """File of a snapshot: ``"last"``, ``"best"`` or a period number."""
        if which == "best":
            return self.snapshots / _BEST
        if which == "last":
            periods = self.snapshot_periods()
            if not periods:
                raise FileNotFoundError(f"{self.snapshots}: no snapshot")
            which = periods[-1]
        return self.snapshots / f"period_{int(which):04d}.npz"

    # state of the folder
    def create(self) -> None:
        """Create the folder and its snapshot folder."""
        self.snapshots.mkdir(parents=True, exist_ok=True)

    def is_run_folder(self) -> bool:
        """True once the run has written its table."""
        return self.table.is_file()

    def has_meta(self) -> bool:
        """True once a run has started here (what a resume needs)."""
        return self.meta.is_file()

    def is_finished(self) -> bool:
        """True once the run has written its summary."""
        return self.summary.is_file()

    def clean_temporary(self) -> list:
        """Remove ``*.tmp`` files left by a killed writer; returns the removed paths."""
        removed = []
        for d in (self.path, self.snapshots, self.history):
            if d.is_dir():
                for p in sorted(d.iterdir()):
                    if p.name.endswith(".tmp") and p.is_file():
                        p.unlink(missing_ok=True)
                        removed.append(p)
        return removed

    # configuration, meta data, summary
    def write_config(self, d: dict) -> None:
        """The configuration dictionary as TOML (``ModelConfig.to_dict()``)."""
        import tomli_w

        atomic_write(self.config, tomli_w.dumps(d))

    def write_meta(self, d: dict) -> None:
        """``run.json``: versions, device, seed, network size (JSON)."""
        atomic_write(self.meta, json.dumps(d, indent=2))

    def read_meta(self) -> dict:
        """The dictionary of :meth:`write_meta`."""
        return json.loads(self.meta.read_text())

    def write_summary(self, d: dict) -> None:
        """``summary.json``: the final figures of a finished run (JSON)."""
        atomic_write(self.summary, json.dumps(d, indent=2))

    def read_summary(self) -> dict:
        """The summary, or an empty dict while the run has not finished."""
        return json.loads(self.summary.read_text()) if self.summary.is_file() else {}

    # the per-period table
    def write_table(self, rows: list, base_columns) -> None:
        """One line per row: ``base_columns``, then other keys in first-seen order."""
        cols = list(base_columns)
        for row in rows:
            cols.extend(k for k in row if k not in cols)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        w.writerows([format_cell(row.get(c, "")) for c in cols] for row in rows)
        atomic_write(self.table, buf.getvalue())

    def read_table(self) -> dict:
        """The table as a dict of numpy arrays; empty cells are NaN, text columns stay text."""
        with open(self.table, newline="") as f:
            rows = list(csv.DictReader(f))
        out = {}
        for c in (rows[0].keys() if rows else []):
            vals = [r[c] for r in rows]
            try:
                out[c] = np.array([float(v) if v != "" else np.nan for v in vals])
            except ValueError:
                out[c] = np.array(vals)
        return out

    # snapshots
    def snapshot_periods(self) -> list:
        """Periods with a snapshot file, ascending (``best.npz`` and temporary files excluded)."""
        if not self.snapshots.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.snapshots.iterdir() if (m := _SNAP_RE.match(p.name)))

    def has_best(self) -> bool:
        """True once a period has been marked best (:meth:`mark_best`)."""
        return (self.snapshots / _BEST).is_file()

    def save_snapshot(self, period: int, arrays: dict, meta: dict, keep: int = 1) -> Path:
        """Write ``snapshots/period_NNNN.npz`` atomically, then keep only the newest ``keep``.

        ``arrays`` (any names but ``__*`` and ``*#*``) are stored in their compact
        exact forms (:func:`encode_array`), ``meta`` as JSON. Older period files
        are deleted only once the new one is in place; ``best.npz`` is kept.
        """
        self.create()
        path = self.snapshot_path(period)
        _write_records(path, period, arrays, meta)
        for old in self.snapshot_periods()[:-max(1, keep)]:
            if old != period:
                self.snapshot_path(old).unlink(missing_ok=True)
        return path

    def snapshot_names(self, which="last") -> list:
        """Names of the arrays in a snapshot (nothing is decoded)."""
        with np.load(self.snapshot_path(which), allow_pickle=False) as z:
            if _RECORDS in z.files:
                return list(json.loads(bytes(z[_RECORDS]).decode())["arrays"])
            return [k for k in z.files if k != _META]

    def load_snapshot(self, which="last", keys=None) -> Snapshot:
        """A snapshot (``"last"``, ``"best"`` or a period) with its arrays decoded exactly.

        ``keys`` limits the arrays that are read. Snapshots written before the
        compact format (all arrays raw, no encoding record) load as well.
        """
        return _read_records(self.snapshot_path(which), keys)

    def mark_best(self, period: int) -> None:
        """Make ``best.npz`` the snapshot of ``period``: a hard link (a copy where links fail)."""
        src, best = self.snapshot_path(period), self.snapshots / _BEST
        if not src.is_file():
            raise FileNotFoundError(f"{src}: no snapshot of period {period}")
        if best.exists() and os.path.samefile(src, best):
            return
        tmp = self.snapshots / f".{_BEST}.tmp"
        tmp.unlink(missing_ok=True)
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, best)
        _fsync_dir(self.snapshots)

    # structural history
    def history_path(self, period: int, kind: str = "period") -> Path:
        """File of the history record of ``period``: ``kind`` ``"period"`` or ``"keyframe"``."""
        if kind not in HISTORY_KINDS:
            raise ValueError(f"history kind must be one of {HISTORY_KINDS}, got {kind!r}")
        return self.history / f"{kind}_{int(period):04d}.npz"

    def history_periods(self, kind: str = "period") -> list:
        """Periods with a history file of ``kind``, ascending (temporary files excluded)."""
        if kind not in HISTORY_KINDS:
            raise ValueError(f"history kind must be one of {HISTORY_KINDS}, got {kind!r}")
        if not self.history.is_dir():
            return []
        return sorted(int(m.group(2)) for p in self.history.iterdir()
                      if (m := _HIST_RE.match(p.name)) and m.group(1) == kind)

    def save_history(self, period: int, arrays: dict, meta: dict, kind: str = "period") -> Path:
        """Write one history file atomically (arrays in their compact exact forms, ``meta`` as JSON,
        the zip members deflated)."""
        path = self.history_path(period, kind)
        self.history.mkdir(parents=True, exist_ok=True)
        _write_records(path, period, arrays, meta, compress=True)
        return path

    def load_history(self, period: int, kind: str = "period", keys=None) -> Snapshot:
        """One history file, decoded exactly (``keys`` limits the arrays read)."""
        return _read_records(self.history_path(period, kind), keys)

    def remove_history(self, period: int, kind: str = "period") -> None:
        """Delete one history file (a keyframe given up for a better one)."""
        self.history_path(period, kind).unlink(missing_ok=True)
        _fsync_dir(self.history)

    def clear_history(self, after: int = -1) -> list:
        """Delete the history files of the periods after ``after`` (all with -1); returns them.

        A resumed run calls this with the period of its snapshot: what a killed
        run wrote after that snapshot is written again, identically.
        """
        removed = []
        for kind in HISTORY_KINDS:
            for e in self.history_periods(kind):
                if e > after:
                    path = self.history_path(e, kind)
                    path.unlink(missing_ok=True)
                    removed.append(path)
        if removed:
            _fsync_dir(self.history)
        return removed

    def history_bytes(self) -> int:
        """Bytes of all history files."""
        if not self.history.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.history.iterdir() if _HIST_RE.match(p.name))

def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_records(path: Path, period: int, arrays: dict, meta: dict, compress: bool = False) -> None:
    """Write an ``.npz`` of compact exact arrays and JSON meta data atomically (then fsync the folder).

    ``compress`` deflates the members of the zip file (small files of many
    arrays, such as the history's, lose their headers' weight)."""
    entries, specs = {}, {}
    for key, value in arrays.items():
        if key.startswith("__") or "#" in key:
            raise ValueError(f"record array name {key!r} is reserved")
        parts, specs[key] = encode_array(value)
        entries.update({key + suffix: part for suffix, part in parts.items()})
    header = {"format": _FORMAT, "period": int(period), "arrays": specs}
    entries[_META] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    entries[_RECORDS] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        (np.savez_compressed if compress else np.savez)(f, **entries)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _read_records(path: Path, keys=None) -> Snapshot:
    """The arrays and meta data of an ``.npz`` written by :func:`_write_records` (or a raw one)."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(bytes(z[_META]).decode()) if _META in z.files else {}
        if _RECORDS in z.files:
            header = json.loads(bytes(z[_RECORDS]).decode())
            specs, period = header["arrays"], header["period"]
        else:
            specs = {k: {"enc": "raw"} for k in z.files if k != _META}
            period = meta.get("period", -1)
        arrays = {}
        for key in (specs if keys is None else keys):
            spec = specs[key]
            parts = {s: z[key + s] for s in ("", _INDEX) if s == "" or key + s in z.files}
            arrays[key] = decode_array(spec, parts)
    return Snapshot(period=int(period), arrays=arrays, meta=meta)
