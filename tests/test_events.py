"""Event-camera readers/writers (N-MNIST .bin, DVS-Gesture .npy) and equal-count framing.

Every malformed file must give a DataError naming the file; two hypothesis fuzz tests
mutate valid files and check that nothing else ever escapes the readers.
"""

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdsnn_bio.data.events import (
    EVENT_DTYPE, read_dvsgesture_npy, read_nmnist_bin, to_frames, write_dvsgesture_npy,
    write_nmnist_bin,
)
from sdsnn_bio.errors import DataError


def make_events(n, sensor=(34, 34), seed=0, t_max=300_000, whole_ms=False):
    """n random, time-sorted events on a (width, height) sensor."""
    rng = np.random.default_rng(seed)
    ev = np.empty(n, EVENT_DTYPE)
    ev["x"] = rng.integers(0, sensor[0], n)
    ev["y"] = rng.integers(0, sensor[1], n)
    ev["p"] = rng.integers(0, 2, n)
    t = np.sort(rng.integers(0, t_max, n))
    ev["t"] = t // 1000 * 1000 if whole_ms else t
    return ev


def record(x, y, p, t):
    """One raw 5-byte N-MNIST record."""
    return bytes([x, y, (p << 7) | ((t >> 16) & 0x7F), (t >> 8) & 0xFF, t & 0xFF])


def assert_raises_naming(fn, path, match=None):
    with pytest.raises(DataError, match=match) as info:
        fn(path)
    msg = str(info.value)
    assert Path(path).name in msg, msg
    assert "\n" not in msg, msg
    return msg


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("n", [0, 1, 500])
def test_nmnist_round_trip(tmp_path, n):
    ev = make_events(n)
    p = write_nmnist_bin(tmp_path / "s.bin", ev)
    assert p.stat().st_size == 5 * n
    if n == 0:  # an empty file is rejected by the reader (a sample always has events)
        assert_raises_naming(read_nmnist_bin, p, "empty")
        return
    back = read_nmnist_bin(p)
    assert back.dtype == EVENT_DTYPE
    np.testing.assert_array_equal(back, ev)


def test_nmnist_extreme_values_round_trip(tmp_path):
    ev = np.array([(0, 0, 0, 0), (33, 33, 2**23 - 1, 1)], EVENT_DTYPE)
    np.testing.assert_array_equal(read_nmnist_bin(write_nmnist_bin(tmp_path / "e.bin", ev)), ev)


def test_nmnist_matches_tonic(tmp_path):
    tonic_io = pytest.importorskip("tonic.io")
    ev = make_events(300, seed=3)
    p = tmp_path / "s.bin"
    p.write_bytes(write_nmnist_bin(p, ev).read_bytes()[:5 * 150] + record(0, 240, 0, 0)
                  + p.read_bytes()[5 * 150:])
    ours = read_nmnist_bin(p)
    theirs = tonic_io.read_mnist_file(str(p), dtype=EVENT_DTYPE)
    for f in "xytp":
        np.testing.assert_array_equal(ours[f], theirs[f].astype(np.int64))


@pytest.mark.parametrize("whole_ms", [True, False])
def test_dvsgesture_round_trip(tmp_path, whole_ms):
    ev = make_events(1000, sensor=(128, 128), seed=1, t_max=6_000_000, whole_ms=whole_ms)
    p = write_dvsgesture_npy(tmp_path / "0.npy", ev)
    raw = np.load(p)
    assert raw.shape == (1000, 4)
    assert raw.dtype == (np.int64 if whole_ms else np.float64)
    np.testing.assert_array_equal(raw[:, 3] * 1000 if whole_ms else np.rint(raw[:, 3] * 1000), ev["t"])
    np.testing.assert_array_equal(read_dvsgesture_npy(p), ev)


def test_dvsgesture_reads_float_ms_and_empty(tmp_path):
    p = tmp_path / "f.npy"
    np.save(p, np.array([[1.0, 2.0, 0.0, 0.0015], [127.0, 0.0, 1.0, 2.5]]))
    ev = read_dvsgesture_npy(p)
    assert ev.tolist() == [(1, 2, 2, 0), (127, 0, 2500, 1)]
    np.save(p, np.zeros((0, 4), np.int64))
    assert read_dvsgesture_npy(p).shape == (0,)


# --------------------------------------------------------------------------- overflow
def test_nmnist_overflow_marker(tmp_path):
    p = tmp_path / "o.bin"
    p.write_bytes(record(1, 2, 1, 100) + record(0, 240, 0, 0) + record(3, 4, 0, 100)
                  + record(0, 240, 0, 0) + record(5, 6, 1, 50))
    ev = read_nmnist_bin(p)
    assert ev.tolist() == [(1, 2, 100, 1), (3, 4, 100 + 8192, 0), (5, 6, 50 + 2 * 8192, 1)]


def test_nmnist_overflow_marker_only(tmp_path):
    p = tmp_path / "m.bin"
    p.write_bytes(record(0, 240, 0, 0))
    assert read_nmnist_bin(p).shape == (0,)


# --------------------------------------------------------------------------- malformations
def test_missing_files(tmp_path):
    assert_raises_naming(read_nmnist_bin, tmp_path / "nope.bin", "nothing")
    assert_raises_naming(read_dvsgesture_npy, tmp_path / "nope.npy", "nothing")
    assert_raises_naming(read_nmnist_bin, tmp_path, "directory")


def test_empty_files(tmp_path):
    for name, reader in (("e.bin", read_nmnist_bin), ("e.npy", read_dvsgesture_npy)):
        (tmp_path / name).write_bytes(b"")
        assert_raises_naming(reader, tmp_path / name, "empty")


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
def test_nmnist_truncated(tmp_path, cut):
    p = write_nmnist_bin(tmp_path / "t.bin", make_events(10))
    p.write_bytes(p.read_bytes()[:-cut])
    assert_raises_naming(read_nmnist_bin, p, "truncated")


@pytest.mark.parametrize("rec, match", [
    (record(34, 0, 0, 10), r"x in 0\.\.33, found 34 at record 2"),
    (record(0, 34, 0, 10), r"y in 0\.\.33, found 34 at record 2"),
    (record(0, 255, 0, 10), r"y in 0\.\.33, found 255"),
    (record(0, 0, 0, 4), r"non-decreasing.*record 2"),
])
def test_nmnist_bad_records(tmp_path, rec, match):
    p = tmp_path / "b.bin"
    p.write_bytes(record(1, 1, 0, 5) + record(2, 2, 1, 5) + rec)
    assert_raises_naming(read_nmnist_bin, p, match)


def test_nmnist_smaller_sensor(tmp_path):
    p = write_nmnist_bin(tmp_path / "s.bin", np.array([(20, 3, 0, 0)], EVENT_DTYPE))
    assert_raises_naming(lambda q: read_nmnist_bin(q, sensor=(16, 16)), p, "x in 0..15")


def _npy(tmp_path, arr, name="d.npy"):
    p = tmp_path / name
    np.save(p, arr)
    return p


GOOD = np.array([[1, 2, 0, 10], [3, 4, 1, 20], [5, 6, 0, 30]], np.float64)


@pytest.mark.parametrize("mutate, match", [
    (lambda a: a[:, :3], r"\(N, 4\).*shape \(3, 3\)"),
    (lambda a: np.hstack([a, a[:, :1]]), r"\(N, 4\).*shape \(3, 5\)"),
    (lambda a: a.ravel(), r"\(N, 4\)"),
    (lambda a: a[None], r"\(N, 4\)"),
    (lambda a: _set(a, 1, 3, np.nan), r"finite.*row 1"),
    (lambda a: _set(a, 2, 0, np.inf), r"finite.*row 2"),
    (lambda a: _set(a, 1, 2, 2), r"polarity 0 or 1, found 2.0 at row 1"),
    (lambda a: _set(a, 1, 2, -1), r"polarity"),
    (lambda a: _set(a, 0, 0, 128), r"x in 0\.\.127, found 128.0 at row 0"),
    (lambda a: _set(a, 0, 1, -1), r"y in 0\.\.127"),
    (lambda a: _set(a, 2, 0, 1.5), r"integral x.*row 2"),
    (lambda a: _set(a, 2, 3, 5), r"non-decreasing.*row 2"),
    (lambda a: _set(a, 0, 3, -1), r"t in 0\.\..*row 0"),
    (lambda a: a.astype(np.complex128), r"integer or float"),
    (lambda a: a.astype(bool), r"integer or float"),
    (lambda a: a.astype("U8"), r"integer or float"),
])
def test_dvsgesture_bad_arrays(tmp_path, mutate, match):
    assert read_dvsgesture_npy(_npy(tmp_path, GOOD)).shape == (3,)
    assert_raises_naming(read_dvsgesture_npy, _npy(tmp_path, mutate(GOOD.copy())), match)


def _set(a, i, j, v):
    a[i, j] = v
    return a


def test_dvsgesture_structured_and_pickled(tmp_path):
    assert_raises_naming(read_dvsgesture_npy, _npy(tmp_path, make_events(5)), r"\(N, 4\)")
    p = tmp_path / "o.npy"
    np.save(p, np.array([[1, 2, 0, {}]], dtype=object), allow_pickle=True)
    assert_raises_naming(read_dvsgesture_npy, p, "integer or float")


@pytest.mark.parametrize("corrupt", [
    lambda b: b"not an npy file at all",
    lambda b: b[:20],                       # header cut
    lambda b: b[:-9],                       # data cut
    lambda b: b[:8] + b"{'descr': garbage" + b[24:],
    lambda b: b"\x93NUMPY\x03\x00" + b[8:],  # unknown version
])
def test_dvsgesture_corrupt_bytes(tmp_path, corrupt):
    p = _npy(tmp_path, GOOD)
    p.write_bytes(corrupt(p.read_bytes()))
    assert_raises_naming(read_dvsgesture_npy, p)


def test_writers_validate(tmp_path):
    ev = make_events(5)
    bad_t = ev.copy()
    bad_t["t"][3] = bad_t["t"][2] - 1
    cases = [
        (write_nmnist_bin, "w.bin", bad_t, "non-decreasing"),
        (write_nmnist_bin, "w.bin", _with(ev, "x", 1, 34), r"x in 0\.\.33"),
        (write_nmnist_bin, "w.bin", _with(ev, "p", 0, 2), "polarity"),
        (write_nmnist_bin, "w.bin", _with(ev, "t", 4, 2**23), "t in 0"),
        (write_nmnist_bin, "w.bin", np.zeros((3, 4), np.int64), "fields x, y, t, p"),
        (write_dvsgesture_npy, "w.npy", _with(ev, "y", 2, -1), r"y in 0\.\.127"),
        (write_dvsgesture_npy, "w.npy", bad_t, "non-decreasing"),
    ]
    for writer, name, events, match in cases:
        with pytest.raises(DataError, match=match) as info:
            writer(tmp_path / name, events)
        assert name in str(info.value)
        assert not (tmp_path / name).exists()


def _with(ev, field, i, v):
    out = ev.copy()
    out[field][i] = v
    return out


# --------------------------------------------------------------------------- frames
def test_to_frames_conserves_counts_and_equal_event_boundaries():
    ev = make_events(1003, sensor=(34, 34), seed=5)
    frames = to_frames(ev, (34, 34), 10)
    assert frames.shape == (10, 2, 34, 34) and frames.dtype == np.float64
    for pol in (0, 1):
        assert frames[:, pol].sum() == np.sum(ev["p"] == pol)
    per_frame = frames.sum(axis=(1, 2, 3))
    np.testing.assert_array_equal(per_frame, [100] * 9 + [103])
    # frame i holds exactly events i*100 .. i*100+99 (the last also the remainder)
    for i, (lo, hi) in enumerate([(k * 100, k * 100 + 100) for k in range(9)] + [(900, 1003)]):
        expect = np.zeros((2, 34, 34))
        np.add.at(expect, (ev["p"][lo:hi], ev["y"][lo:hi], ev["x"][lo:hi]), 1)
        np.testing.assert_array_equal(frames[i], expect)


def test_to_frames_pixel_layout_and_edge_cases():
    ev = np.array([(3, 1, 0, 1), (3, 1, 5, 1), (0, 4, 9, 0)], EVENT_DTYPE)
    f = to_frames(ev, (5, 6, 2), 1)             # width 5, height 6
    assert f.shape == (1, 2, 6, 5)
    assert f[0, 1, 1, 3] == 2 and f[0, 0, 4, 0] == 1 and f.sum() == 3
    f = to_frames(ev, (5, 6), 5)                 # fewer events than frames: all in the last
    assert f[:4].sum() == 0 and f[4].sum() == 3
    assert not to_frames(np.empty(0, EVENT_DTYPE), (34, 34), 4).any()
    assert to_frames(np.empty(0, EVENT_DTYPE), (34, 34), 4).shape == (4, 2, 34, 34)
    for n in (0, -1, 2.5, True):
        with pytest.raises(DataError, match="n_frames"):
            to_frames(ev, (5, 6), n)
    with pytest.raises(DataError, match="x in 0..1"):
        to_frames(ev, (2, 6), 2)


# --------------------------------------------------------------------------- fuzz
FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))


def _check_valid(ev, sensor):
    assert isinstance(ev, np.ndarray) and ev.dtype == EVENT_DTYPE and ev.ndim == 1
    if ev.size:
        assert ev["x"].min() >= 0 and ev["x"].max() < sensor[0]
        assert ev["y"].min() >= 0 and ev["y"].max() < sensor[1]
        assert set(np.unique(ev["p"])) <= {0, 1}
        assert ev["t"].min() >= 0 and np.all(np.diff(ev["t"]) >= 0)


def _read_or_dataerror(reader, path, sensor):
    try:
        ev = reader(path)
    except DataError as exc:
        assert os.path.basename(path) in str(exc), str(exc)
        assert "\n" not in str(exc)
        return None
    _check_valid(ev, sensor)
    return ev


@FUZZ
@given(n=st.integers(0, 40), seed=st.integers(0, 2**16),
       edits=st.lists(st.tuples(st.integers(0, 10**6),
                                st.one_of(st.integers(0, 255), st.sampled_from([240, 0, 33, 34, 128]))),
                      max_size=6),
       cut=st.one_of(st.none(), st.none(), st.integers(0, 40).map(lambda r: 5 * r), st.integers(0, 300)),
       extra=st.one_of(st.just(b""), st.just(b""), st.binary(max_size=12)))
def test_fuzz_nmnist_bin(n, seed, edits, cut, extra):
    data = bytearray()
    for e in make_events(n, seed=seed):
        data += record(int(e["x"]), int(e["y"]), int(e["p"]), int(e["t"]))
    for pos, val in edits:
        if data:
            data[pos % len(data)] = val
    if cut is not None:
        data = data[:cut]
    data += extra
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "fuzz_sample.bin")
        with open(path, "wb") as f:
            f.write(bytes(data))
        ev = _read_or_dataerror(read_nmnist_bin, path, (34, 34))
        if ev is not None and ev.size:
            # whatever was accepted is written back and read identically
            back = read_nmnist_bin(write_nmnist_bin(os.path.join(d, "again.bin"), ev)) \
                if ev["t"].max() < 2**23 else ev
            np.testing.assert_array_equal(back, ev)


npy_values = st.one_of(
    st.integers(-3, 200), st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-2, 130), st.sampled_from([0, 1, 0.5, 1e300, -0.0, 2**62]))


@FUZZ
@given(n=st.integers(0, 30), seed=st.integers(0, 2**16),
       as_float=st.booleans(),
       edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 3), npy_values), max_size=5),
       reshape=st.sampled_from([None, "drop_col", "add_col", "ravel", "3d", "transpose", "int16",
                                "uint64", "float32", "bytes"]),
       byte_edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=3))
def test_fuzz_dvsgesture_npy(n, seed, as_float, edits, reshape, byte_edits):
    ev = make_events(n, sensor=(128, 128), seed=seed, t_max=5_000_000)
    arr = np.stack([ev["x"], ev["y"], ev["p"], ev["t"]], axis=1)
    arr = arr / np.array([1, 1, 1, 1000.0]) if as_float else arr // np.array([1, 1, 1, 1000])
    arr = arr.astype(np.float64)
    for i, j, v in edits:
        if arr.size:
            arr[i % arr.shape[0], j] = v
    if not as_float:
        with np.errstate(invalid="ignore", over="ignore"):
            arr = np.nan_to_num(arr).astype(np.int64)
    if reshape == "drop_col":
        arr = arr[:, :3]
    elif reshape == "add_col":
        arr = np.hstack([arr, arr[:, :1]])
    elif reshape == "ravel":
        arr = arr.ravel()
    elif reshape == "3d":
        arr = arr[None]
    elif reshape == "transpose":
        arr = arr.T
    elif reshape in ("int16", "uint64", "float32"):
        with np.errstate(invalid="ignore", over="ignore"):
            arr = np.nan_to_num(arr).astype(reshape) if reshape != "float32" else arr.astype(np.float32)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "fuzz_sample.npy")
        np.save(path, arr)
        if reshape == "bytes" or byte_edits:
            data = bytearray(open(path, "rb").read())
            for pos, val in byte_edits:
                data[pos % len(data)] = val
            if reshape == "bytes":
                data = data[: max(1, seed % len(data))]
            with open(path, "wb") as f:
                f.write(bytes(data))
        _read_or_dataerror(read_dvsgesture_npy, path, (128, 128))
