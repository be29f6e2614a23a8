"""CIFAR-10: the standard python-pickle batches of a user's folder, and the 20 test images
that the PyPI package foolbox ships.

The python version of CIFAR-10 (``cifar-10-python.tar.gz``, extracted to
``cifar-10-batches-py/``) holds ``data_batch_1`` .. ``data_batch_5`` (10000
images each) and ``test_batch`` (10000): each a pickled dict (Python 2, so its
keys read back as bytes) with ``data`` a uint8 array of shape (10000, 3072), one
row per image in channel-major order (1024 red, 1024 green, 1024 blue values of
the 32 x 32 image, row by row), ``labels`` a list of ints 0..9, plus
``batch_label`` and ``filenames``. Every batch is validated (keys, shapes, dtype,
label range) and a bad one is a :class:`~sdsnn_bio.errors.DataError` naming the
file. The pickles are read with an unpickler that builds only numpy arrays and
plain containers, so a foreign file cannot run code.

The embedded sample: foolbox 3.3.4 ships the first 20 CIFAR-10 test images as
``foolbox/data/cifar10_<idx:02d>_<label>.png`` (MIT licence;
``shared/reference/datasets.md`` section 1). They are read with Pillow from the
installed package's folder, without importing foolbox (its import needs
eagerpy, GitPython and requests); foolbox is the optional extra ``cifar-sample``
(``pip install --no-deps foolbox==3.3.4`` is enough).
"""
from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import numpy as np

from sdsnn_bio.data.dataset import Dataset
from sdsnn_bio.errors import DataError

__all__ = ["CIFAR10_CLASSES", "TRAIN_BATCHES", "TEST_BATCH", "read_cifar_batch", "write_cifar_batch",
           "find_batches_dir", "load_cifar10", "foolbox_cifar10_dir", "load_cifar10_sample"]

CIFAR10_CLASSES: tuple[str, ...] = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                                    "ship", "truck")
TRAIN_BATCHES = tuple(f"data_batch_{k}" for k in range(1, 6))
TEST_BATCH = "test_batch"
_PIXELS = 3 * 32 * 32

# what a CIFAR pickle may build: numpy arrays, their dtypes, and nothing else
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to build {module}.{name}")


def _key(d: dict, name: str):
    for k in (name.encode(), name):
        if k in d:
            return d[k]
    raise KeyError(name)


def read_cifar_batch(path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch.

    Parameters
    ----------
    path : str or os.PathLike
        A ``data_batch_k`` or ``test_batch`` file.

    Returns
    -------
    images : numpy.ndarray
        uint8, shape (n, 3, 32, 32) (channels first).
    labels : numpy.ndarray
        int64, shape (n,), values 0..9.

    Raises
    ------
    DataError
        Missing or unreadable file, not a pickled dict, missing ``data``/``labels``,
        ``data`` not uint8 of shape (n, 3072), label count or range wrong.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            d = _ArrayUnpickler(f, encoding="bytes").load()
    except FileNotFoundError:
        raise DataError(f"{path}: no such CIFAR-10 batch file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except Exception as exc:  # truncated or foreign pickles raise many kinds of errors
        raise DataError(f"{path}: not a CIFAR-10 python batch (unpickling failed: {exc})") from None
    if not isinstance(d, dict):
        raise DataError(f"{path}: a CIFAR-10 batch is a pickled dict, found {type(d).__name__}")
    try:
        data, labels = _key(d, "data"), _key(d, "labels")
    except KeyError as exc:
        keys = sorted(k.decode() if isinstance(k, bytes) else str(k) for k in d)
        raise DataError(f"{path}: CIFAR-10 batch has no key {exc.args[0]!r} (keys: {keys})") from None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _PIXELS:
        what = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: 'data' must be a uint8 array of shape (n, {_PIXELS}), found {what}")
    try:
        lab = np.asarray(labels)
    except Exception:
        lab = np.asarray([None])
    if lab.ndim != 1 or lab.dtype.kind not in "iu":
        raise DataError(f"{path}: 'labels' must be a list of integers, found {type(labels).__name__}")
    if len(lab) != len(data):
        raise DataError(f"{path}: {len(data)} images but {len(lab)} labels")
    if lab.size and (lab.min() < 0 or lab.max() > 9):
        bad = int(np.flatnonzero((lab < 0) | (lab > 9))[0])
        raise DataError(f"{path}: labels must lie in 0..9, found {int(lab[bad])} at index {bad}")
    return data.reshape(-1, 3, 32, 32).copy(), lab.astype(np.int64)


def write_cifar_batch(path, images, labels, batch_label: str = "batch") -> Path:
    """Write a batch in the python format (protocol 2, bytes keys as the Python 2 originals).

    ``images``: uint8 (n, 3, 32, 32); ``labels``: ints 0..9.
    """
    path = Path(path)
    images = np.asarray(images, np.uint8)
    d = {b"batch_label": batch_label.encode(), b"labels": [int(v) for v in labels],
         b"data": images.reshape(len(images), _PIXELS),
         b"filenames": [f"img_{k:05d}.png".encode() for k in range(len(images))]}
    with open(path, "wb") as f:
        pickle.dump(d, f, protocol=2)
    return path


def find_batches_dir(directory) -> Path:
    """The folder holding the batches: ``directory`` itself or its ``cifar-10-batches-py``."""
    root = Path(directory)
    for cand in (root, root / "cifar-10-batches-py"):
        if (cand / TEST_BATCH).is_file() or (cand / TRAIN_BATCHES[0]).is_file():
            return cand
    raise DataError(f"{root}: no CIFAR-10 python batches ({', '.join(TRAIN_BATCHES)}, {TEST_BATCH}) "
                    f"there or in {root / 'cifar-10-batches-py'}")


def load_cifar10(directory) -> Dataset:
    """CIFAR-10 from its python batches: 50000 train (the five data batches in order)
    and 10000 test images as float64 in [0, 1], shape (n, 3, 32, 32)."""
    folder = find_batches_dir(directory)
    missing = [b for b in TRAIN_BATCHES + (TEST_BATCH,) if not (folder / b).is_file()]
    if missing:
        raise DataError(f"{folder}: CIFAR-10 batch files missing: {', '.join(missing)}")
    parts = [read_cifar_batch(folder / b) for b in TRAIN_BATCHES]
    x_test, y_test = read_cifar_batch(folder / TEST_BATCH)
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    return Dataset(x_train=x_train / 255.0, y_train=y_train, x_test=x_test / 255.0, y_test=y_test,
                   name="cifar10", classes=CIFAR10_CLASSES)


def foolbox_cifar10_dir() -> Path:
    """The folder of foolbox's sample images, found without importing foolbox."""
    spec = importlib.util.find_spec("foolbox")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("cifar10_sample: the 20 CIFAR-10 test images come from the PyPI package foolbox, "
                        "which is not installed; pip install 'sdsnn-bio[cifar-sample]' "
                        "(or pip install --no-deps foolbox==3.3.4)")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def load_cifar10_sample(directory=None) -> Dataset:
    """The first 20 CIFAR-10 test images (foolbox's PNGs) as both the train and the test split.

    With 20 images a run can only show that the network fits them (train = test);
    it says nothing about generalisation. ``directory`` overrides foolbox's data folder.
    """
    from PIL import Image

    folder = Path(directory) if directory else foolbox_cifar10_dir()
    files = sorted(folder.glob("cifar10_[0-9][0-9]_*.png"))
    if len(files) != 20:
        raise DataError(f"{folder}: expected foolbox's 20 files cifar10_NN_<label>.png, found {len(files)}")
    images, labels = [], []
    for f in files:
        try:
            with Image.open(f) as im:
                arr = np.asarray(im.convert("RGB") if im.mode != "RGB" else im)
            lab = int(f.stem.rsplit("_", 1)[1])
        except (OSError, ValueError) as exc:
            raise DataError(f"{f}: not a CIFAR-10 sample image ({exc})") from None
        if arr.shape != (32, 32, 3) or not 0 <= lab <= 9:
            raise DataError(f"{f}: expected a 32x32 RGB image with a label 0..9, found shape {arr.shape}, "
                            f"label {lab}")
        images.append(arr.transpose(2, 0, 1))
        labels.append(lab)
    x = np.stack(images) / 255.0
    y = np.asarray(labels, np.int64)
    return Dataset(x_train=x, y_train=y, x_test=x.copy(), y_test=y.copy(), name="cifar10_sample",
                   classes=CIFAR10_CLASSES)
