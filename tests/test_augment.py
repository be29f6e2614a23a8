"""Shifted training images (``data.augment_shift``): the shift itself, its validation, and what
the development loop presents."""

import numpy as np
import pytest

from sdsnn_bio.config import config_from_dict, find_model, load_config
from sdsnn_bio.data.encoding import shift_images
from sdsnn_bio.errors import ConfigError, DataError


def test_shift_moves_pixels_and_fills_zeros():
    x = np.arange(1, 41, dtype=float).reshape(2, 20)           # two 1 x 4 x 5 images
    rng = np.random.default_rng(0)
    assert rng.integers(-1, 2, size=(2, 2)).tolist() == [[1, 0], [0, -1]]   # the offsets drawn below
    y = shift_images(x, (1, 4, 5), 1, np.random.default_rng(0)).reshape(2, 4, 5)
    img = x.reshape(2, 4, 5)
    # image 0 one row down, image 1 one column left
    np.testing.assert_array_equal(y[0, 1:], img[0, :3])
    np.testing.assert_array_equal(y[0, 0], 0)
    np.testing.assert_array_equal(y[1, :, :4], img[1, :, 1:])
    np.testing.assert_array_equal(y[1, :, 4], 0)
    # values are moved, never mixed; channels move together
    x3 = np.random.default_rng(1).uniform(size=(50, 2 * 6 * 6))
    y3 = shift_images(x3, (2, 6, 6), 2, np.random.default_rng(2))
    assert set(np.round(y3[y3 > 0], 12)) <= set(np.round(x3.ravel(), 12))
    offs = np.random.default_rng(2).integers(-2, 3, size=(50, 2))
    for k in range(50):
        dy, dx = offs[k]
        back = np.roll(np.roll(y3[k].reshape(2, 6, 6), -dy, axis=1), -dx, axis=2)
        inner = (slice(None), slice(2, 4), slice(2, 4))        # never shifted out by 2 pixels
        np.testing.assert_array_equal(back[inner], x3[k].reshape(2, 6, 6)[inner])
    assert (offs != 0).any(axis=1).sum() > 30
    with pytest.raises(DataError, match="expected images of 20 values"):
        shift_images(np.zeros((3, 19)), (1, 4, 5), 1, rng)


def _with(**data):
    base = load_config(find_model("tiny_dense")).to_dict()
    return config_from_dict({**base, "data": {**base["data"], **data}}, source="aug.toml")


def test_augment_shift_is_validated():
    assert _with(augment_shift=2).data.augment_shift == 2
    for bad in (-1, 14, 1.5, True):
        with pytest.raises(ConfigError, match=r"data\.augment_shift"):
            _with(augment_shift=bad)
    with pytest.raises(ConfigError, match=r"data\.augment_shift.*direct coding"):
        _with(augment_shift=1, coding="direct")


def test_the_loop_shifts_training_images_only_and_by_the_period(tmp_path):
    """What `Development` hands the network: test images as they are, training images shifted
    by offsets drawn from the seed and the period (so a resumed run shifts as the first did)."""
    from sdsnn_bio.data.registry import prepare_inputs
    from sdsnn_bio.loop import AUGMENT_STREAM, Development

    cfg = _with(augment_shift=2)
    dev = Development(cfg, tmp_path / "run", device="runtime")
    dev.data = prepare_inputs(cfg)
    seen = []

    class Net:
        def set_inputs(self, stim, target):
            seen.append((np.array(stim), np.array(target)))

    dev.net = Net()
    test_idx, train_idx = np.arange(5), np.arange(10, 30)
    for period in (3, 3, 4):
        dev._set_inputs(test_idx, train_idx, period=period)
    (a, ta), (b, _), (c, _) = seen
    np.testing.assert_array_equal(a[:5], dev.data.x_test[test_idx])
    want = shift_images(dev.data.x_train[train_idx], cfg.input_shape, 2,
                        np.random.default_rng([cfg.schedule.seed, AUGMENT_STREAM, 3]))
    np.testing.assert_array_equal(a[5:], want)
    assert not np.array_equal(a[5:], dev.data.x_train[train_idx])
    np.testing.assert_array_equal(a, b)                  # the same period: the same shifts
    assert not np.array_equal(a[5:], c[5:])              # another period: others
    np.testing.assert_array_equal(ta.argmax(1)[5:], dev.data.y_train[train_idx])
    # without the option the images are untouched
    dev.cfg = _with()
    dev._set_inputs(test_idx, train_idx, period=3)
    np.testing.assert_array_equal(seen[-1][0][5:], dev.data.x_train[train_idx])
