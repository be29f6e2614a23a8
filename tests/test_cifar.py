"""CIFAR-10: python-pickle batches written here in the original format and read back
through the registry pixel by pixel, their validation, foolbox's 20 test images, and a
small network with direct (analog) input coding trained on those 20 images.

The network runs on Brian2's runtime device with the numpy target (no compilation).
"""

import pickle

import numpy as np
import pytest

from sdsnn_bio.config import DataSpec, config_from_dict
from sdsnn_bio.data import registry
from sdsnn_bio.data.cifar import (
    TEST_BATCH, TRAIN_BATCHES, foolbox_cifar10_dir, load_cifar10_sample, read_cifar_batch, write_cifar_batch,
)
from sdsnn_bio.errors import ConfigError, DataError


def images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)


def write_folder(root, n=3):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for k, name in enumerate(TRAIN_BATCHES + (TEST_BATCH,)):
        x, y = images(n, k), (np.arange(n) + k) % 10
        write_cifar_batch(folder / name, x, y)
        batches[name] = (x, y)
    return folder, batches


def test_batches_read_pixel_by_pixel(tmp_path):
    folder, batches = write_folder(tmp_path)
    # the file holds what the original format says: a protocol-2 pickle of a dict with
    # bytes keys, 'data' rows of 1024 red, 1024 green, 1024 blue values
    with open(folder / "data_batch_2", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    assert set(raw) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert raw[b"data"].shape == (3, 3072) and raw[b"data"].dtype == np.uint8
    ds = registry.load(DataSpec(dataset="cifar10", directory=str(tmp_path)), "m.toml")
    assert ds.x_train.shape == (15, 3, 32, 32) and ds.x_test.shape == (3, 3, 32, 32)
    for b, name in enumerate(TRAIN_BATCHES):
        x, y = batches[name]
        rows = x.reshape(3, -1)
        for k in range(3):
            img = ds.x_train[3 * b + k]
            for c, yy, xx in ((0, 0, 0), (1, 5, 7), (2, 31, 30), (0, 17, 3)):
                assert img[c, yy, xx] == rows[k, c * 1024 + yy * 32 + xx] / 255.0
            np.testing.assert_array_equal(img, x[k] / 255.0)
        np.testing.assert_array_equal(ds.y_train[3 * b:3 * b + 3], y)
    np.testing.assert_array_equal(ds.x_test, batches[TEST_BATCH][0] / 255.0)
    # the folder itself or its parent
    same = registry.load(DataSpec(dataset="cifar10", directory=str(folder)), "m.toml")
    np.testing.assert_array_equal(same.y_test, ds.y_test)


def _dump(path, d):
    with open(path, "wb") as f:
        pickle.dump(d, f, protocol=2)
    return path


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("content, words", [
    ({b"labels": [1]}, ["no key 'data'"]),
    ({b"data": np.zeros((1, 3072), np.uint8)}, ["no key 'labels'"]),
    ({b"data": np.zeros((2, 3000), np.uint8), b"labels": [1, 2]}, ["uint8 array of shape (n, 3072)", "(2, 3000)"]),
    ({b"data": np.zeros((2, 3072), np.float32), b"labels": [1, 2]}, ["uint8", "float32"]),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}, ["2 images but 1 labels"]),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 10]}, ["0..9", "found 10 at index 1"]),
    ([1, 2], ["pickled dict", "list"]),
    ({b"data": _Evil(), b"labels": []}, ["refusing to build", "system"]),
])
def test_bad_batches_are_named(tmp_path, content, words):
    path = _dump(tmp_path / "data_batch_3", content)
    with pytest.raises(DataError) as info:
        read_cifar_batch(path)
    msg = str(info.value)
    assert "data_batch_3" in msg and all(w in msg for w in words), msg


def test_truncated_missing_and_absent(tmp_path):
    folder, _ = write_folder(tmp_path)
    blob = (folder / "data_batch_1").read_bytes()
    (folder / "data_batch_1").write_bytes(blob[:200])
    with pytest.raises(DataError, match="data_batch_1: not a CIFAR-10 python batch"):
        registry.load(DataSpec(dataset="cifar10", directory=str(tmp_path)), "m.toml")
    (folder / "data_batch_4").unlink()
    with pytest.raises(DataError, match="missing: data_batch_4"):
        registry.load(DataSpec(dataset="cifar10", directory=str(tmp_path)), "m.toml")
    with pytest.raises(DataError, match="no CIFAR-10 python batches"):
        registry.load(DataSpec(dataset="cifar10", directory=str(tmp_path / "empty")), "m.toml")
    with pytest.raises(ConfigError, match="data.directory"):
        registry.load(DataSpec(dataset="cifar10"), "m.toml")


def test_foolbox_sample_is_the_first_20_test_images():
    from PIL import Image

    ds = registry.load(DataSpec(dataset="cifar10_sample"), "m.toml")
    assert ds.x_train.shape == (20, 3, 32, 32)
    # the first CIFAR-10 test labels (shared/reference/datasets.md)
    np.testing.assert_array_equal(ds.y_test[:10], [3, 8, 8, 0, 6, 6, 1, 6, 3, 1])
    first = sorted(foolbox_cifar10_dir().glob("cifar10_00_*.png"))[0]
    rgb = np.asarray(Image.open(first))
    np.testing.assert_array_equal(ds.x_test[0], rgb.transpose(2, 0, 1) / 255.0)
    assert ds.x_test[0, 2, 4, 9] == rgb[4, 9, 2] / 255.0


def test_sample_folder_errors(tmp_path):
    with pytest.raises(DataError, match="expected foolbox's 20 files"):
        load_cifar10_sample(tmp_path)


def _cfg(**data):
    """The shipped cifar10_sample model (3072-30-10, direct coding), ``data`` keys replaced."""
    from sdsnn_bio.config import find_model, load_config

    cfg = load_config(find_model("cifar10_sample"))
    return config_from_dict({**cfg.to_dict(), "data": {**cfg.to_dict()["data"], **data}}, source=cfg.source,
                            check_data=True)


def test_direct_coding_presents_the_pixel_every_step(tmp_path, numpy_runtime):
    """Every non-zero input value is an event in each of the T steps of its window; the
    run's inputs are standardised per channel on the training split."""
    from sdsnn_bio.network import build_network

    cfg = _cfg()
    ds = registry.load(cfg.data, cfg.source)
    x = ds.x_train[:10].reshape(10, -1)
    net = build_network(cfg, 8, 12, "runtime", str(tmp_path / "run"))
    try:
        net.set_shared(lr=0.0, adam_k0=0, learn_on=0, struct_on=0, hard_mask=0, bias_mask_on=0)
        net.set_inputs(np.concatenate([x, x]), np.eye(10)[np.arange(20) % 10])
        net.run()
        per_input = net.events()[0]
    finally:
        net.close()
    want = 2 * cfg.schedule.n_steps * (x != 0).sum(axis=0)
    np.testing.assert_array_equal(per_input, want)
    with pytest.raises(ConfigError, match="data.coding"):
        _cfg(coding="analog")
    inp = registry.prepare_inputs(cfg)
    per_channel = inp.x_train.reshape(20, 3, -1)
    np.testing.assert_allclose(per_channel.mean(axis=(0, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(per_channel.std(axis=(0, 2)), 1, rtol=1e-12)
    raw = ds.x_test[3, 1, 7, 9]
    g = ds.x_train[:, 1]
    assert inp.x_test.reshape(20, 3, 32, 32)[3, 1, 7, 9] == pytest.approx((raw - g.mean()) / g.std())
    # rate coding keeps the probabilities
    np.testing.assert_array_equal(registry.prepare_inputs(_cfg(coding="rate")).x_test[3], ds.x_test[3].ravel())


def test_network_fits_the_20_images(tmp_path, numpy_runtime):
    from sdsnn_bio.loop import Development
    from sdsnn_bio.records import RunFolder

    cfg = _cfg()
    summary = Development(cfg, tmp_path / "run", device="runtime").run()
    train = RunFolder(tmp_path / "run").read_table()["train_accuracy"]
    # train = test = the 20 images: the network fits them (chance 10 %; 0.5 measured)
    assert max(train) >= 0.3 and summary["final_test_accuracy"] >= 0.3, (train, summary)
    assert summary["compression"] > 0.05
