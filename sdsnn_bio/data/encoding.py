"""Input encodings: pixel images -> spike rates / spike trains, labels -> one-hot.

``bernoulli_encode`` is the NumPy reference of the SD-SNN reference code's rate coding
(a pixel spikes in a step when its intensity exceeds a fresh U(0, 1) draw); the Brian2
networks produce the same statistics on the device and tests compare against this.
"""
from __future__ import annotations

import numpy as np

from sdsnn_bio.errors import DataError

__all__ = ["bernoulli_encode", "stimulus_matrix", "one_hot"]


def _as_images(images, what: str) -> np.ndarray:
    try:
        arr = np.asarray(images)
    except Exception as exc:  # ragged lists and the like
        raise DataError(f"{what}: cannot convert input to an array ({exc})") from None
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{what}: expected a numeric image array, found dtype {arr.dtype}")
    return arr


def stimulus_matrix(images) -> np.ndarray:
    """Flatten (n, C, H, W) images to float64 (n, C*H*W) in C, H, W order, clipped to [0, 1]."""
    arr = _as_images(images, "stimulus_matrix")
    if arr.ndim != 4:
        raise DataError(f"stimulus_matrix: expected images of shape (n, C, H, W), "
                        f"found shape {arr.shape}")
    out = np.array(arr, dtype=np.float64, order="C").reshape(arr.shape[0], -1)
    if not np.isfinite(out).all():
        raise DataError("stimulus_matrix: images contain NaN or infinite values")
    np.clip(out, 0.0, 1.0, out=out)
    return out


def bernoulli_encode(images, n_steps: int, rng) -> np.ndarray:
    """Rate-code images as Bernoulli spike trains.

    ``images``: (n, C, H, W) (or already flat (n, n_pixels)) intensities in [0, 1].
    Returns uint8 spikes of shape (n, n_steps, n_pixels): ``spike = pixel > U(0, 1)``
    with an independent draw per sample, step and pixel (``rng.random`` of that shape).
    ``rng`` is a ``numpy.random.Generator`` or an integer seed.
    """
    arr = _as_images(images, "bernoulli_encode")
    if arr.ndim == 4:
        flat = stimulus_matrix(arr)
    elif arr.ndim == 2:
        flat = np.clip(arr.astype(np.float64), 0.0, 1.0)
        if not np.isfinite(flat).all():
            raise DataError("bernoulli_encode: images contain NaN or infinite values")
    else:
        raise DataError(f"bernoulli_encode: expected images of shape (n, C, H, W) or "
                        f"(n, n_pixels), found shape {arr.shape}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise DataError(f"bernoulli_encode: n_steps must be a positive integer, found {n_steps!r}")
    if not isinstance(rng, np.random.Generator):
        if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
            rng = np.random.default_rng(rng)
        else:
            raise DataError(f"bernoulli_encode: rng must be a numpy.random.Generator or an int "
                            f"seed, found {type(rng).__name__}")
    n, n_pix = flat.shape
    u = rng.random((n, int(n_steps), n_pix))
    return (flat[:, None, :] > u).astype(np.uint8)


def one_hot(labels, n_classes: int) -> np.ndarray:
    """float64 (n, n_classes) one-hot rows for integer ``labels`` in 0..n_classes-1."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) \
            or n_classes < 1:
        raise DataError(f"one_hot: n_classes must be a positive integer, found {n_classes!r}")
    lab = np.asarray(labels)
    if lab.ndim != 1:
        raise DataError(f"one_hot: expected a 1-D label array, found shape {lab.shape}")
    if lab.dtype.kind == "f":
        if not np.isfinite(lab).all() or not np.all(lab == np.round(lab)):
            raise DataError("one_hot: labels must be integers, found non-integral values")
        lab = lab.astype(np.int64)
    elif lab.size == 0:
        lab = lab.astype(np.int64)
    elif lab.dtype.kind not in "iu":
        raise DataError(f"one_hot: labels must be integers, found dtype {lab.dtype}")
    if lab.size and (lab.min() < 0 or lab.max() >= n_classes):
        bad = int(np.flatnonzero((lab < 0) | (lab >= n_classes))[0])
        raise DataError(f"one_hot: labels must lie in 0..{n_classes - 1}, found {int(lab[bad])} "
                        f"at index {bad}")
    out = np.zeros((lab.size, int(n_classes)), dtype=np.float64)
    out[np.arange(lab.size), lab.astype(np.intp)] = 1.0
    return out


def shift_images(x, shape, max_shift: int, rng) -> np.ndarray:
    """Each image of ``x`` (n x C*H*W, rows of images of ``shape`` (C, H, W)) moved by a random
    whole number of pixels in ``[-max_shift, max_shift]`` along each axis (drawn from ``rng``,
    the vertical offset then the horizontal for each image in turn), zeros shifted in. Returns
    a new array; the images' values are only moved, never interpolated."""
    x = np.asarray(x)
    n = len(x)
    C, H, W = (int(v) for v in shape)
    if x.ndim != 2 or x.shape[1] != C * H * W:
        raise DataError(f"shift_images: expected images of {C * H * W} values, got shape {x.shape}")
    offsets = rng.integers(-max_shift, max_shift + 1, size=(n, 2))
    img = x.reshape(n, C, H, W)
    out = np.zeros_like(img)
    for dy, dx in {(int(a), int(b)) for a, b in offsets}:
        k = np.flatnonzero((offsets[:, 0] == dy) & (offsets[:, 1] == dx))
        out[k, :, max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = \
            img[k, :, max(-dy, 0):H + min(-dy, 0), max(-dx, 0):W + min(-dx, 0)]
    return out.reshape(n, C * H * W)
