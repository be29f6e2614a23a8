"""Event-camera (DVS) data: N-MNIST ``.bin`` and tonic's DVS-Gesture ``.npy`` files.

Formats (see ``shared/reference/datasets.md`` section 2, matching tonic 1.7.0):

* **N-MNIST** ``.bin``: 5 bytes per record. byte0 = x, byte1 = y, bit 7 of byte2 =
  polarity, bits 6..0 of byte2 then byte3, byte4 = a 23-bit big-endian timestamp in µs.
  A record with ``y == 240`` is a timestamp-overflow marker: it is dropped and
  ``2**13`` µs is added to every later event (as tonic does).
* **DVS-Gesture** ``.npy`` (tonic's preprocessed release): a 2-D ``(N, 4)`` array
  with columns x, y, p, t where t is in **milliseconds** (int or float).

Both readers return a structured array of :data:`EVENT_DTYPE` (``x, y, t, p``, all
int64, t in microseconds), sorted by time. Sensors are given tonic-style as
``(width, height)``: x lies in ``0..width-1`` and y in ``0..height-1``.

Every malformed input raises :class:`sdsnn_bio.errors.DataError` with a one-line
message that names the file and says what was expected and what was found.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from sdsnn_bio.errors import DataError

__all__ = [
    "EVENT_DTYPE", "NMNIST_SENSOR", "DVSGESTURE_SENSOR", "NMNIST_OVERFLOW_Y",
    "NMNIST_OVERFLOW_US", "read_nmnist_bin", "write_nmnist_bin",
    "read_dvsgesture_npy", "write_dvsgesture_npy", "to_frames",
]

#: One event: pixel x, pixel y, time t in microseconds, polarity p (0 or 1).
EVENT_DTYPE = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])

NMNIST_SENSOR: tuple[int, int] = (34, 34)
DVSGESTURE_SENSOR: tuple[int, int] = (128, 128)
#: y value that marks an N-MNIST timestamp-overflow record
NMNIST_OVERFLOW_Y = 240
#: microseconds added to every event after an overflow marker (tonic 1.7.0)
NMNIST_OVERFLOW_US = 2**13
_NMNIST_T_LIMIT = 2**23          # the timestamp field has 23 bits
_NPY_T_LIMIT_MS = 2.0**53 / 1000  # larger times lose µs precision in float64 / overflow int64


# --------------------------------------------------------------------------- helpers
def _sensor(sensor, where) -> tuple[int, int]:
    """Validate a ``(width, height)`` (or tonic ``(width, height, 2)``) sensor size."""
    try:
        dims = tuple(sensor)
    except TypeError:
        dims = ()
    ok = len(dims) in (2, 3) and all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in dims)
    if ok and len(dims) == 3 and dims[2] != 2:
        ok = False
    if not ok:
        raise DataError(f"{where}: sensor must be (width, height) of positive integers, "
                        f"found {sensor!r}")
    return int(dims[0]), int(dims[1])


def _first(mask: np.ndarray) -> int:
    """Index of the first True entry of a boolean array."""
    return int(np.argmax(mask))


def _check_events(events, where, sensor, *, t_limit=None) -> np.ndarray:
    """Validate an event array (fields x, y, t, p) and return it as :data:`EVENT_DTYPE`.

    Checks coordinates inside the sensor, polarity in {0, 1}, times >= 0 (and below
    ``t_limit`` when given) and non-decreasing; every failure is a DataError naming
    ``where`` and the first offending event index.
    """
    width, height = _sensor(sensor, where)
    arr = np.asarray(events)
    names = arr.dtype.names or ()
    if arr.ndim != 1 or not {"x", "y", "t", "p"} <= set(names):
        raise DataError(f"{where}: expected a 1-D structured array with fields x, y, t, p, "
                        f"found shape {arr.shape} with fields {names or 'none'}")
    for name in ("x", "y", "t", "p"):
        kind = arr.dtype[name].kind
        if kind not in "iub":
            raise DataError(f"{where}: field {name!r} must be integer, found dtype {arr.dtype[name]}")
    out = np.empty(arr.shape[0], EVENT_DTYPE)
    for name in ("x", "y", "t", "p"):
        col = arr[name]
        big = col > np.iinfo(np.int64).max if col.dtype.kind == "u" else None
        if big is not None and big.any():
            raise DataError(f"{where}: field {name!r} exceeds int64 at event {_first(big)}")
        out[name] = col
    for name, hi in (("x", width), ("y", height)):
        bad = (out[name] < 0) | (out[name] >= hi)
        if bad.any():
            i = _first(bad)
            raise DataError(f"{where}: expected {name} in 0..{hi - 1}, found {out[name][i]} "
                            f"at event {i}")
    bad = (out["p"] != 0) & (out["p"] != 1)
    if bad.any():
        i = _first(bad)
        raise DataError(f"{where}: expected polarity 0 or 1, found {out['p'][i]} at event {i}")
    bad = out["t"] < 0 if t_limit is None else (out["t"] < 0) | (out["t"] >= t_limit)
    if bad.any():
        i = _first(bad)
        lim = "t >= 0" if t_limit is None else f"t in 0..{t_limit - 1} µs"
        raise DataError(f"{where}: expected {lim}, found {out['t'][i]} at event {i}")
    back = np.diff(out["t"]) < 0
    if back.any():
        i = _first(back) + 1
        raise DataError(f"{where}: expected non-decreasing times, found t={out['t'][i]} after "
                        f"t={out['t'][i - 1]} at event {i}")
    return out


def _read_bytes(path) -> tuple[Path, bytes]:
    path = Path(path)
    if not path.is_file():
        found = "a directory" if path.is_dir() else "nothing"
        raise DataError(f"{path}: expected an event file, found {found}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not data:
        raise DataError(f"{path}: expected event records, found an empty file")
    return path, data


# --------------------------------------------------------------------------- N-MNIST
def read_nmnist_bin(path, sensor=NMNIST_SENSOR) -> np.ndarray:
    """Read one N-MNIST ``.bin`` sample.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.bin`` file (5 bytes per record, see the module docstring).
    sensor : tuple of int, optional
        ``(width, height)``; every x must lie in ``0..width-1`` and y in ``0..height-1``.

    Returns
    -------
    numpy.ndarray
        Structured array of :data:`EVENT_DTYPE`, t in µs, overflow markers removed and
        their ``2**13`` µs added to every later event.

    Raises
    ------
    DataError
        The file is missing or empty, its length is not a multiple of 5 (truncated),
        a coordinate lies off the sensor, or time goes backwards (after the overflow
        correction). The message names the file and the first offending record.
    """
    path, data = _read_bytes(path)
    width, height = _sensor(sensor, path)
    if len(data) % 5:
        raise DataError(f"{path}: truncated: expected a length that is a multiple of 5 bytes, "
                        f"found {len(data)} ({len(data) // 5} records + {len(data) % 5} bytes)")
    raw = np.frombuffer(data, np.uint8).reshape(-1, 5).astype(np.int64)
    x, y = raw[:, 0], raw[:, 1]
    p = raw[:, 2] >> 7
    t = ((raw[:, 2] & 0x7F) << 16) | (raw[:, 3] << 8) | raw[:, 4]
    marker = y == NMNIST_OVERFLOW_Y
    t = t + NMNIST_OVERFLOW_US * np.cumsum(marker)   # a marker shifts itself and every later record
    record = np.flatnonzero(~marker)                  # file record index of each event
    x, y, t, p = x[record], y[record], t[record], p[record]
    for name, col, hi in (("x", x, width), ("y", y, height)):
        bad = col >= hi
        if bad.any():
            i = _first(bad)
            raise DataError(f"{path}: expected {name} in 0..{hi - 1}, found {col[i]} at record "
                            f"{record[i]} (event {i})")
    back = np.diff(t) < 0
    if back.any():
        i = _first(back) + 1
        raise DataError(f"{path}: expected non-decreasing timestamps, found t={t[i]} µs after "
                        f"t={t[i - 1]} µs at record {record[i]} (event {i})")
    out = np.empty(x.size, EVENT_DTYPE)
    out["x"], out["y"], out["t"], out["p"] = x, y, t, p
    return out


def write_nmnist_bin(path, events, sensor=NMNIST_SENSOR) -> Path:
    """Write events as an N-MNIST ``.bin`` file (the inverse of :func:`read_nmnist_bin`).

    Parameters
    ----------
    path : str or os.PathLike
        Output file; its parent folder must exist.
    events : numpy.ndarray
        Structured array with integer fields x, y, t (µs), p; t must be non-decreasing
        and below ``2**23`` (no overflow markers are written).
    sensor : tuple of int, optional
        ``(width, height)`` the coordinates must fit; at most ``(256, 240)``.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    DataError
        The events are malformed or off the sensor, or the file cannot be written.
    """
    path = Path(path)
    width, height = _sensor(sensor, path)
    if width > 256 or height > NMNIST_OVERFLOW_Y:
        raise DataError(f"{path}: N-MNIST sensor must be at most (256, 240), found {sensor!r}")
    ev = _check_events(events, path, (width, height), t_limit=_NMNIST_T_LIMIT)
    out = np.empty((ev.size, 5), np.uint8)
    t = ev["t"]
    out[:, 0] = ev["x"]
    out[:, 1] = ev["y"]
    out[:, 2] = (ev["p"] << 7) | ((t >> 16) & 0x7F)
    out[:, 3] = (t >> 8) & 0xFF
    out[:, 4] = t & 0xFF
    try:
        path.write_bytes(out.tobytes())
    except OSError as exc:
        raise DataError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return path


# --------------------------------------------------------------------------- DVS-Gesture
def _npy_header(path: Path, data: bytes):
    """Check the ``.npy`` header of ``data``, the bytes of ``path``; return (shape, dtype)."""
    size = len(data)
    try:
        with io.BytesIO(data) as f:
            version = np.lib.format.read_magic(f)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                else:
                    raise ValueError(f"unsupported .npy version {version}")
            offset = f.tell()
    except Exception as exc:  # numpy raises ValueError, EOFError, SyntaxError, ... on bad headers
        raise DataError(f"{path}: expected a .npy array file, found unreadable data "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if len(shape) != 2 or shape[1] != 4:
        raise DataError(f"{path}: expected a 2-D (N, 4) array of x, y, p, t, found shape {shape}")
    if dtype.names is not None or dtype.kind not in "iuf":
        raise DataError(f"{path}: expected an integer or float array, found dtype {dtype}")
    if offset + shape[0] * 4 * dtype.itemsize > size:
        raise DataError(f"{path}: truncated: header announces {shape[0]} rows "
                        f"({shape[0] * 4 * dtype.itemsize} bytes), file holds {size - offset}")
    return shape, dtype


def read_dvsgesture_npy(path, sensor=DVSGESTURE_SENSOR) -> np.ndarray:
    """Read one tonic DVS-Gesture ``.npy`` sample.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npy`` file holding an ``(N, 4)`` int or float array with columns
        x, y, p, t where t is in milliseconds.
    sensor : tuple of int, optional
        ``(width, height)``; every x must lie in ``0..width-1`` and y in ``0..height-1``.

    Returns
    -------
    numpy.ndarray
        Structured array of :data:`EVENT_DTYPE` with t converted to µs (rounded).

    Raises
    ------
    DataError
        The file is missing, empty or not a loadable ``.npy`` (``allow_pickle=False``);
        the array is not 2-D with 4 columns, holds non-finite values, non-integral or
        off-sensor coordinates, a polarity other than 0/1, or times that are negative
        or go backwards. The message names the file and the first offending row.
    """
    path, data = _read_bytes(path)
    width, height = _sensor(sensor, path)
    _npy_header(path, data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:
        raise DataError(f"{path}: expected a loadable .npy array, found unreadable data "
                        f"({type(exc).__name__})") from None
    if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.shape[1] != 4:
        raise DataError(f"{path}: expected a 2-D (N, 4) array of x, y, p, t, "
                        f"found {getattr(arr, 'shape', type(arr).__name__)}")
    a = arr.astype(np.float64) if arr.dtype.kind == "f" else arr
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a).all(axis=1)
        if bad.any():
            i = _first(bad)
            raise DataError(f"{path}: expected finite numbers, found {a[i].tolist()} at row {i}")
    for col, name, hi in ((0, "x", width), (1, "y", height)):
        v = a[:, col]
        bad = (v < 0) | (v > hi - 1)
        if a.dtype.kind == "f":
            bad |= v != np.floor(v)
        if bad.any():
            i = _first(bad)
            raise DataError(f"{path}: expected integral {name} in 0..{hi - 1}, found {v[i]} at row {i}")
    p = a[:, 2]
    bad = (p != 0) & (p != 1)
    if bad.any():
        i = _first(bad)
        raise DataError(f"{path}: expected polarity 0 or 1, found {p[i]} at row {i}")
    t_ms = a[:, 3]
    bad = (t_ms < 0) | (t_ms >= _NPY_T_LIMIT_MS)
    if bad.any():
        i = _first(bad)
        raise DataError(f"{path}: expected t in 0..{_NPY_T_LIMIT_MS:.0f} ms, found {t_ms[i]} at row {i}")
    if a.dtype.kind == "f":
        t_us = np.rint(t_ms * 1000.0).astype(np.int64)
    else:
        t_us = t_ms.astype(np.int64) * 1000
    back = np.diff(t_us) < 0
    if back.any():
        i = _first(back) + 1
        raise DataError(f"{path}: expected non-decreasing times, found t={t_ms[i]} ms after "
                        f"t={t_ms[i - 1]} ms at row {i}")
    out = np.empty(a.shape[0], EVENT_DTYPE)
    out["x"], out["y"], out["p"] = a[:, 0], a[:, 1], a[:, 2]
    out["t"] = t_us
    return out


def write_dvsgesture_npy(path, events, sensor=DVSGESTURE_SENSOR) -> Path:
    """Write events as a tonic DVS-Gesture ``.npy`` file (inverse of :func:`read_dvsgesture_npy`).

    The array is ``(N, 4)`` with columns x, y, p, t_ms. It is int64 when every time is
    a whole millisecond and float64 otherwise (tonic multiplies the time column by
    1000 in place, so narrower integer types would overflow there).

    Parameters
    ----------
    path : str or os.PathLike
        Output file (written exactly there; no ``.npy`` suffix is added).
    events : numpy.ndarray
        Structured array with integer fields x, y, t (µs), p; t non-decreasing and >= 0.
    sensor : tuple of int, optional
        ``(width, height)`` the coordinates must fit.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    DataError
        The events are malformed or off the sensor, or the file cannot be written.
    """
    path = Path(path)
    ev = _check_events(events, path, sensor, t_limit=int(_NPY_T_LIMIT_MS) * 1000)
    if np.all(ev["t"] % 1000 == 0):
        arr = np.stack([ev["x"], ev["y"], ev["p"], ev["t"] // 1000], axis=1).astype(np.int64)
    else:
        arr = np.stack([ev["x"], ev["y"], ev["p"], ev["t"] / 1000.0], axis=1).astype(np.float64)
    try:
        with open(path, "wb") as f:
            np.save(f, arr, allow_pickle=False)
    except OSError as exc:
        raise DataError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return path


# --------------------------------------------------------------------------- frames
def to_frames(events, sensor, n_frames) -> np.ndarray:
    """Bin events into ``n_frames`` frames of equal event count.

    This is the SD-SNN reference preprocessing for N-MNIST / DVS-Gesture ("equal event
    counts per frame; pixel = event count per polarity"), split as spikingjelly's
    ``split_by='number'``: with ``N`` events and ``k = N // n_frames``, frame ``i`` holds
    events ``i*k .. (i+1)*k - 1`` in array order and the last frame also takes the
    remaining ``N % n_frames`` events, so every event is counted exactly once.

    Parameters
    ----------
    events : numpy.ndarray
        Structured array with fields x, y, t, p (e.g. from a reader), sorted by time.
    sensor : tuple of int
        ``(width, height)`` or tonic's ``(width, height, 2)``.
    n_frames : int
        Number of frames, at least 1.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(n_frames, 2, height, width)``;
        ``frames[i, p, y, x]`` = number of events of polarity p at (x, y) in frame i.
        An empty event array gives all-zero frames.

    Raises
    ------
    DataError
        ``n_frames < 1``, a bad sensor, or events that are malformed or off the sensor.
    """
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 1:
        raise DataError(f"to_frames: n_frames must be an integer >= 1, found {n_frames!r}")
    width, height = _sensor(sensor, "to_frames")
    ev = _check_events(events, "to_frames events", (width, height))
    n = ev.size
    frames = np.zeros((int(n_frames), 2, height, width), np.float64)
    if n == 0:
        return frames
    k = n // n_frames
    frame_of = np.minimum(np.arange(n) // k, n_frames - 1) if k else np.full(n, n_frames - 1)
    np.add.at(frames, (frame_of, ev["p"], ev["y"], ev["x"]), 1.0)
    return frames
