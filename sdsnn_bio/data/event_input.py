"""Event-camera recordings as network input: N-MNIST / DVS-Gesture events as spikes.

A recording drives the network as what it is, events. Each sample is first
preprocessed with tonic's transforms (:func:`preprocess`: border crop, spatial
downsampling, denoising), then binned to the simulation step
(:func:`spike_codes`): the recording's time span is cut into ``T`` equal bins,
one per time step of the sample window, and an input neuron (one per polarity
channel and pixel, in ``(p, y, x)`` order like the ``(C, H, W)`` images) spikes
in a step when at least one event of its channel and pixel falls in that bin.
A sample is stored as the sorted unique codes ``step * n_inputs + input``
(int32, a few kB per N-MNIST sample).

How the spikes reach a standalone build: Brian2's ``SpikeGeneratorGroup``
keeps its spikes in read-only dynamic arrays (``neuron_index``, ``spike_time``,
``_timebins``), and ``run_args`` can neither set read-only variables nor change
a dynamic array's size (brian2 2.10.1, ``devices/cpp_standalone/templates/objects.cpp``,
``set_variable_by_name``), so ``set_spikes`` between runs of one build would
mean a new build per period. The network therefore drives its input
``NeuronGroup`` from a per-step ``TimedArray`` whose values ``run_args`` replaces
without recompiling (:meth:`sdsnn_bio.network.SDSNNNetwork.set_inputs`), with the
spikes packed as bits (:func:`pack_codes`): a float64 holds every integer below
2**53 exactly, so column ``j`` of a step's row carries the 0/1 spikes of inputs
``STIM_BITS*j .. STIM_BITS*j + STIM_BITS - 1`` as ``sum(2**b)`` over those that spike,
and input ``i`` spikes where ``stim(t, stim_col) % (2 * stim_bit) >= stim_bit``
(``stim_col = i // STIM_BITS``, ``stim_bit = 2**(i % STIM_BITS)``; the remainder of an
integer below 2**52 by a power of two is exact in floating point, and no integer cast
is made: Brian2's numpy ``floor`` returns int32). A period's input costs
8 bytes per ``STIM_BITS`` inputs and step: 2*128*128 inputs x 64 steps x 120 windows =
39 MB per period for DVS-Gesture's full sensor (2.0 GB as one float64 per input and
step). Frames (``frames``, input current) stay one float64 per input and step.

Memory: a folder's recordings are not held in memory. :func:`load_nmnist_folder` reads and
validates every file once (a malformed one is an error at load time, naming it) and keeps only
the paths (:class:`Recordings`, a lazy sequence that reads, validates and preprocesses
recording ``i`` when it is asked for); :func:`encode_dataset` then streams through a split one
recording at a time and keeps only the spike codes, in one contiguous int32 array per split
(:class:`SpikeCodes`; 4 bytes per (step, input) spike instead of 32 bytes per event).

Real recordings are listed by tonic's dataset classes (``tonic.datasets.NMNIST``,
``tonic.datasets.DVSGesture``: tonic's folder layout, its labels, its sample
order) and read by the project's validating readers
(:mod:`sdsnn_bio.data.events`), so a malformed file is a
:class:`~sdsnn_bio.errors.DataError` naming it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np

from sdsnn_bio.data.events import (
    DVSGESTURE_SENSOR, EVENT_DTYPE, NMNIST_SENSOR, read_dvsgesture_npy, read_nmnist_bin, to_frames,
    write_dvsgesture_npy, write_nmnist_bin,
)
from sdsnn_bio.errors import DataError

__all__ = ["EventDataset", "Recordings", "SpikeCodes", "input_sensor", "preprocess", "spike_codes", "frame_codes",
           "codes_to_stimulus", "STIM_BITS", "stim_words", "stimulus_columns", "pack_codes", "encode_dataset", "event_subset",
           "load_nmnist_folder", "load_dvsgesture_folder", "synthetic_recordings", "write_nmnist_folder",
           "write_dvsgesture_folder"]


class Recordings(Sequence):
    """Event recordings read from their files when asked for, never all at once.

    Item ``i`` is file ``paths[i]`` read by ``reader`` (which validates it: a malformed file is
    a :class:`~sdsnn_bio.errors.DataError` naming it) and preprocessed by :func:`preprocess` with
    ``sensor``, ``crop``, ``downsample`` and ``denoise_us``: an :data:`EVENT_DTYPE` array on the
    input grid. Indexing with a slice or an array of indices gives the sub-sequence (still lazy).

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        One file per recording.
    reader : callable
        ``reader(path)`` -> :data:`EVENT_DTYPE` events on ``sensor`` (module-level, so that a
        dataset can be pickled to a worker).
    sensor : tuple of int
        ``(width, height)`` of the raw sensor.
    crop, downsample, denoise_us : int
        As :func:`preprocess`.
    """

    def __init__(self, paths, reader, sensor, crop: int = 0, downsample: int = 1, denoise_us: int = 0):
        self.paths = tuple(str(p) for p in paths)
        self.reader = reader
        self.sensor = (int(sensor[0]), int(sensor[1]))
        self.crop, self.downsample, self.denoise_us = int(crop), int(downsample), int(denoise_us)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            raw = self.reader(self.paths[index])
            return preprocess(raw, self.sensor, self.crop, self.downsample, self.denoise_us)
        picked = self.paths[index] if isinstance(index, slice) else [self.paths[int(i)] for i in np.asarray(index)]
        return Recordings(picked, self.reader, self.sensor, self.crop, self.downsample, self.denoise_us)

    def __iter__(self):
        return (self[i] for i in range(len(self)))


class SpikeCodes:
    """The spike codes of a split's windows in one contiguous int32 array.

    Window ``k``'s codes (:func:`spike_codes` or :func:`frame_codes`) are
    ``codes[offsets[k]:offsets[k + 1]]``. ``x[k]`` is that view; ``x[indices]`` (an index array
    or a slice) is an object array of views, as a period's stimulus is taken
    (:meth:`sdsnn_bio.loop.Development._set_inputs`), so nothing is copied per window.

    Parameters
    ----------
    codes : numpy.ndarray
        int32, every window's codes one after the other.
    offsets : numpy.ndarray
        int64, ``len(windows) + 1`` non-decreasing positions into ``codes``, from 0 to ``len(codes)``.
    """

    def __init__(self, codes, offsets):
        self.codes = np.asarray(codes, np.int32)
        self.offsets = np.asarray(offsets, np.int64)
        if (self.offsets.ndim != 1 or self.offsets.size < 1 or self.offsets[0] != 0
                or self.offsets[-1] != self.codes.size or (np.diff(self.offsets) < 0).any()):
            raise DataError(f"spike codes: offsets must rise from 0 to {self.codes.size} (the number of codes), "
                            f"found {self.offsets[:3].tolist()}...{self.offsets[-3:].tolist()}")

    @classmethod
    def from_windows(cls, windows) -> "SpikeCodes":
        """Pack an iterable of per-window code arrays, consuming it one window at a time."""
        buf, offsets, n = np.empty(1 << 16, np.int32), [0], 0
        for c in windows:
            c = np.asarray(c, np.int32)
            if n + c.size > buf.size:   # grown in place where the allocator can (mremap)
                buf.resize(max(2 * buf.size, n + c.size), refcheck=False)
            buf[n:n + c.size] = c
            n += c.size
            offsets.append(n)
        buf.resize(n, refcheck=False)
        return cls(buf, np.asarray(offsets, np.int64))

    @property
    def nbytes(self) -> int:
        """Bytes held: the codes and the offsets."""
        return int(self.codes.nbytes + self.offsets.nbytes)

    def __len__(self) -> int:
        return self.offsets.size - 1

    def _window(self, k: int) -> np.ndarray:
        n = len(self)
        if not -n <= k < n:
            raise IndexError(f"window {k} out of range 0..{n - 1}")
        k %= n
        return self.codes[self.offsets[k]:self.offsets[k + 1]]

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            return self._window(int(index))
        ks = np.arange(len(self))[index] if isinstance(index, slice) else np.asarray(index, np.int64).reshape(-1)
        out = np.empty(ks.size, dtype=object)
        for j, k in enumerate(ks):
            out[j] = self._window(int(k))
        return out

    def __iter__(self):
        return (self._window(k) for k in range(len(self)))


@dataclass(frozen=True, eq=False)
class EventDataset:
    """A train/test split of event recordings with integer labels.

    ``train``/``test``: sequences of event arrays (:data:`~sdsnn_bio.data.events.EVENT_DTYPE`)
    on a ``sensor`` of ``(width, height)``: tuples held in memory, or :class:`Recordings` read
    from their files when asked for; ``y_*``: int64 labels; ``classes``: names.
    """

    train: tuple
    y_train: np.ndarray
    test: tuple
    y_test: np.ndarray
    sensor: tuple[int, int]
    name: str
    classes: tuple[str, ...]

    def __post_init__(self):
        for split in ("train", "test"):
            ev, y = getattr(self, split), np.asarray(getattr(self, f"y_{split}"))
            if len(ev) != len(y):
                raise DataError(f"dataset {self.name!r}: {len(ev)} {split} recordings but {len(y)} labels")
            if y.size and (y.min() < 0 or y.max() >= len(self.classes)):
                raise DataError(f"dataset {self.name!r}: {split} labels must lie in 0..{len(self.classes) - 1}, "
                                f"found {int(y.min())}..{int(y.max())}")

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of the input: two polarity channels."""
        return (2, int(self.sensor[1]), int(self.sensor[0]))


def input_sensor(sensor, crop: int = 0, downsample: int = 1) -> tuple[int, int]:
    """``(width, height)`` of the input grid after removing ``crop`` pixels at every
    border and downsampling by an integer ``downsample``."""
    w, h = int(sensor[0]) - 2 * int(crop), int(sensor[1]) - 2 * int(crop)
    if w < 1 or h < 1 or downsample < 1:
        raise DataError(f"crop {crop} / downsample {downsample} leave no pixels of sensor {tuple(sensor)}")
    return -(-w // int(downsample)), -(-h // int(downsample))


def preprocess(events, sensor, crop: int = 0, downsample: int = 1, denoise_us: int = 0) -> np.ndarray:
    """Crop, downsample and denoise one recording with tonic's transforms.

    ``tonic.transforms.CenterCrop`` removes ``crop`` pixels at each border (the
    reference code's 34 -> 32 for N-MNIST is ``crop = 1``);
    ``tonic.transforms.Downsample(spatial_factor=1/downsample)`` maps pixels onto the
    coarser grid (integer coordinates floored); ``tonic.transforms.Denoise(filter_time=denoise_us)``
    drops events with no event in a neighbouring pixel within ``denoise_us`` µs
    (0 = off). Returns :data:`EVENT_DTYPE` events on :func:`input_sensor`'s grid.
    """
    import tonic.transforms as T

    ev = np.asarray(events).astype(EVENT_DTYPE)
    w, h = int(sensor[0]), int(sensor[1])
    if denoise_us:
        ev = T.Denoise(filter_time=int(denoise_us))(ev)
    if crop:
        ev = T.CenterCrop(sensor_size=(w, h, 2), size=(w - 2 * crop, h - 2 * crop))(ev)
    if downsample > 1:
        ev = T.Downsample(spatial_factor=1.0 / downsample)(ev)
    return np.asarray(ev).astype(EVENT_DTYPE)


def _span_bins(t: np.ndarray, n_steps: int) -> np.ndarray:
    """Step of each event: the recording's time span cut into ``n_steps`` equal bins."""
    t = t - t[0]
    span = int(t[-1]) + 1
    return (t * n_steps) // span


def spike_codes(events, sensor, n_steps: int) -> np.ndarray:
    """Sorted unique int32 codes ``step * n_inputs + (p*H + y)*W + x`` of one recording.

    At most one spike per input and step (several events of a pixel in one step are one spike).
    """
    ev = np.asarray(events)
    w, h = int(sensor[0]), int(sensor[1])
    n_in = 2 * w * h
    if ev.size == 0:
        return np.zeros(0, np.int32)
    step = _span_bins(ev["t"].astype(np.int64), int(n_steps))
    codes = step * n_in + (ev["p"] * h + ev["y"]) * w + ev["x"]
    return np.unique(codes).astype(np.int32)


def frame_codes(events, sensor, n_steps: int) -> np.ndarray:
    """The reference code's equal-event-count frames (:func:`~sdsnn_bio.data.events.to_frames`),
    frame ``k`` in step ``k``, as codes ``step * n_inputs + input`` repeated once per event:
    :func:`codes_to_stimulus` turns them into the frames' event counts, which the network
    presents as input current (``data.event_coding = "frames"``)."""
    w, h = int(sensor[0]), int(sensor[1])
    frames = to_frames(events, (w, h), int(n_steps)).reshape(int(n_steps), -1)
    step, idx = np.nonzero(frames > 0)
    codes = step * frames.shape[1] + idx
    return np.repeat(codes, frames[step, idx].astype(np.int64)).astype(np.int32)


def codes_to_stimulus(codes, n_inputs: int, n_steps: int) -> np.ndarray:
    """Per-step stimulus of shape (len(codes) * n_steps, n_inputs) for a sequence of windows:
    the number of times each (step, input) code occurs (0/1 for :func:`spike_codes`)."""
    out = np.zeros((len(codes) * int(n_steps), int(n_inputs)), np.float64)
    flat = out.reshape(-1)
    window = int(n_steps) * int(n_inputs)
    for k, c in enumerate(codes):
        np.add.at(flat, k * window + _checked_codes(k, c, window), 1.0)
    return out


#: Inputs whose per-step spikes one float64 of the packed stimulus carries (:func:`pack_codes`):
#: bits 0..51 of an integer below 2**52, exact in a float64 (53-bit significand).
STIM_BITS = 52


def stim_words(n_inputs: int) -> int:
    """Columns of the packed stimulus (:func:`pack_codes`) for ``n_inputs`` inputs."""
    return -(-int(n_inputs) // STIM_BITS)


def stimulus_columns(n_inputs: int, coding: str) -> int:
    """Columns of a network's per-step event stimulus: packed bits for ``"spikes"``
    (:func:`stim_words`), one value an input for ``"frames"`` (input current)."""
    return int(n_inputs) if coding == "frames" else stim_words(n_inputs)


def _checked_codes(k: int, c, window: int) -> np.ndarray:
    c = np.asarray(c, np.int64)
    if c.size and (c.min() < 0 or c.max() >= window):
        raise DataError(f"window {k}: spike codes must lie in 0..{window - 1}, found {c.min()}..{c.max()}")
    return c


def pack_codes(codes, n_inputs: int, n_steps: int) -> np.ndarray:
    """The spikes of a sequence of windows as the packed per-step stimulus of shape
    (len(codes) * n_steps, :func:`stim_words` (n_inputs)): input ``i`` spikes in a step where
    bit ``i % STIM_BITS`` of column ``i // STIM_BITS`` is set (a code given twice is one
    spike, as in :func:`codes_to_stimulus` under the ``> 0.5`` threshold)."""
    n_inputs, n_steps = int(n_inputs), int(n_steps)
    words = stim_words(n_inputs)
    window = n_steps * n_inputs
    rows, cols, bits = [], [], []
    for k, c in enumerate(codes):
        c = np.unique(_checked_codes(k, c, window))
        step, i = np.divmod(c, n_inputs)
        rows.append(k * n_steps + step)
        cols.append(i // STIM_BITS)
        bits.append(i % STIM_BITS)
    n_rows = len(rows) * n_steps
    if not rows:
        return np.zeros((0, words))
    flat = np.concatenate(rows) * words + np.concatenate(cols)
    # distinct bits of one word: the float64 sum is exact (every partial sum is below 2**52)
    out = np.bincount(flat, weights=np.ldexp(1.0, np.concatenate(bits)), minlength=n_rows * words)
    return out.reshape(n_rows, words)


def encode_dataset(ds: EventDataset, n_steps: int, coding: str = "spikes"):
    """Both splits as per-sample spike codes (``coding`` ``"spikes"`` or ``"frames"``).

    Returns two :class:`SpikeCodes` (``x[k]`` is sample ``k``'s int32 codes). The recordings
    are taken one at a time, so a :class:`Recordings` split is never in memory as events.
    """
    if coding not in ("spikes", "frames"):
        raise DataError(f"event coding must be 'spikes' or 'frames', got {coding!r}")
    fn = spike_codes if coding == "spikes" else frame_codes

    def enc(split):
        return SpikeCodes.from_windows(fn(ev, ds.sensor, n_steps) for ev in split)

    return enc(ds.train), enc(ds.test)


def event_subset(ds: EventDataset, n_train: int | None = None, n_test: int | None = None) -> EventDataset:
    """Class-balanced first-n selection (as :func:`sdsnn_bio.data.mnist.subset`)."""
    from sdsnn_bio.data.mnist import _round_robin

    tr = np.arange(len(ds.y_train)) if n_train is None else _round_robin(ds.y_train, n_train, "train", ds.name)
    te = np.arange(len(ds.y_test)) if n_test is None else _round_robin(ds.y_test, n_test, "test", ds.name)
    return EventDataset(train=_take(ds.train, tr), y_train=np.asarray(ds.y_train)[tr],
                        test=_take(ds.test, te), y_test=np.asarray(ds.y_test)[te],
                        sensor=ds.sensor, name=ds.name, classes=ds.classes)


def _take(split, idx):
    """Items ``idx`` of a split: a lazy :class:`Recordings` stays lazy, anything else becomes a tuple."""
    return split[idx] if isinstance(split, Recordings) else tuple(split[int(i)] for i in idx)


# --------------------------------------------------------------------------- real data
def _tonic_split(cls, root: Path, train: bool):
    """Paths and labels of one split as tonic's dataset class lists them.

    tonic's constructor downloads when its existence check fails (an archive next
    to the extracted files and a minimum file count); the project reads only what
    is on disk, so the check is bypassed here as tonic's own tests do, and an empty
    or missing folder is an error naming it.
    """
    with mock.patch.object(cls, "_check_exists", return_value=True):
        ds = cls(save_to=str(root), train=train)
    paths, labels = list(ds.data), np.asarray(ds.targets, dtype=np.int64)
    if not paths:
        raise DataError(f"{Path(root) / cls.__name__}: no {'train' if train else 'test'} recordings in tonic's "
                        f"layout for {cls.__name__}")
    return paths, labels


def _load_folder(cls, reader, sensor, directory, name, n_classes, crop, downsample, denoise_us):
    root = Path(directory)
    if not (root / cls.__name__).is_dir():
        raise DataError(f"{root}: no {cls.__name__}/ folder (tonic's layout: {root}/{cls.__name__}/...)")
    splits = {}
    for train in (True, False):
        paths, labels = _tonic_split(cls, root, train)
        for p in paths:   # every file read and validated now (an error names it); none kept
            reader(p)
        splits[train] = (Recordings(paths, reader, sensor, crop, downsample, denoise_us), labels)
    return EventDataset(train=splits[True][0], y_train=splits[True][1], test=splits[False][0],
                        y_test=splits[False][1], sensor=input_sensor(sensor, crop, downsample), name=name,
                        classes=tuple(str(i) for i in range(n_classes)))


def load_nmnist_folder(directory, crop: int = 0, downsample: int = 1, denoise_us: int = 0) -> EventDataset:
    """N-MNIST from ``directory/NMNIST/{Train,Test}/<digit>/*.bin`` (tonic's layout).

    Every file is read and validated here; the splits are :class:`Recordings` that read them
    again when a recording is asked for (no events are held)."""
    from tonic.datasets import NMNIST

    return _load_folder(NMNIST, read_nmnist_bin, NMNIST_SENSOR, directory, "nmnist", 10, crop, downsample,
                        denoise_us)


def load_dvsgesture_folder(directory, crop: int = 0, downsample: int = 1, denoise_us: int = 0) -> EventDataset:
    """DVS-Gesture from ``directory/DVSGesture/ibmGesture{Train,Test}/userNN_<light>/<label>.npy``
    (validated and held as :class:`Recordings`, as :func:`load_nmnist_folder`)."""
    from tonic.datasets import DVSGesture

    return _load_folder(DVSGesture, read_dvsgesture_npy, DVSGESTURE_SENSOR, directory, "dvsgesture", 11, crop,
                        downsample, denoise_us)


# --------------------------------------------------------------------------- generated data
def synthetic_recordings(n_per_class: int, n_classes: int, sensor, rng, n_events: int = 400,
                         duration_us: int = 300_000) -> tuple[list, np.ndarray]:
    """Recordings whose classes differ by their event statistics.

    Class ``k`` puts its events around its own centre (on a ring around the sensor's
    centre, radius a quarter of the sensor, spread an eighth), mostly of polarity
    ``k % 2`` (80 %), at uniform times over ``duration_us``; 20 % of the events are
    uniform noise. Returns (list of :data:`EVENT_DTYPE` arrays, int64 labels).
    """
    w, h = int(sensor[0]), int(sensor[1])
    rng = np.random.default_rng(rng)
    recs, labels = [], []
    for k in range(n_classes):
        ang = 2 * np.pi * k / n_classes
        cx, cy = w / 2 + w / 4 * np.cos(ang), h / 2 + h / 4 * np.sin(ang)
        for _ in range(n_per_class):
            n = int(n_events)
            noise = rng.random(n) < 0.2
            x = np.where(noise, rng.integers(0, w, n), np.round(rng.normal(cx, w / 8, n)))
            y = np.where(noise, rng.integers(0, h, n), np.round(rng.normal(cy, h / 8, n)))
            ev = np.empty(n, EVENT_DTYPE)
            ev["x"], ev["y"] = np.clip(x, 0, w - 1), np.clip(y, 0, h - 1)
            ev["p"] = np.where(rng.random(n) < 0.8, k % 2, 1 - k % 2)
            ev["t"] = np.sort(rng.integers(0, duration_us, n))
            recs.append(ev)
            labels.append(k)
    return recs, np.asarray(labels, np.int64)


def write_nmnist_folder(root, train, y_train, test, y_test) -> Path:
    """Write recordings as N-MNIST ``.bin`` files in tonic's layout under ``root/NMNIST``."""
    root = Path(root)
    for split, recs, labels in (("Train", train, y_train), ("Test", test, y_test)):
        for k, (ev, lab) in enumerate(zip(recs, labels)):
            path = root / "NMNIST" / split / str(int(lab)) / f"{k:05d}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_nmnist_bin(path, ev)
    return root / "NMNIST"


def write_dvsgesture_folder(root, train, y_train, test, y_test) -> Path:
    """Write recordings as tonic's DVS-Gesture ``.npy`` files (one user folder per split)."""
    root = Path(root)
    for split, user, recs, labels in (("ibmGestureTrain", "user01_led", train, y_train),
                                      ("ibmGestureTest", "user24_led", test, y_test)):
        for k, (ev, lab) in enumerate(zip(recs, labels)):
            path = root / "DVSGesture" / split / f"{user}{k}" / f"{int(lab)}.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_dvsgesture_npy(path, ev)
    return root / "DVSGesture"
