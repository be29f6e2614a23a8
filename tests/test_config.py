"""Configuration validation: every error names the file, the key and what was expected."""

import pytest

from sdsnn_bio.config import config_from_dict, find_model, list_models, load_config
from sdsnn_bio.errors import ConfigError


def base():
    return {"name": "t", "input_shape": [1, 28, 28],
            "layers": [{"name": "fc1", "type": "dense", "units": 20, "prune": True, "spines": True},
                       {"name": "out", "type": "dense", "units": 10}]}


def test_every_shipped_model_loads():
    names = list_models()
    assert {"mnist5k_main", "mnist5k_fc", "mnist_dense", "mnist_paper", "tiny_dense"} <= set(names)
    for name in names:
        cfg = load_config(find_model(name))
        assert cfg.name == name


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d.update(typo=1), ["unknown key 'typo'"]),
    (lambda d: d["layers"][0].update(unitz=3), ["layers[0].unitz"]),
    (lambda d: d["layers"][0].update(units="20"), ["layers[0].units", "an integer"]),
    (lambda d: d["layers"][0].update(rho0=150.0), ["layers[0].rho0", "[0, 100]"]),
    (lambda d: d["layers"][0].update(regen_q0=-1.0), ["regen_q0", "percentile"]),
    (lambda d: d["layers"][0].update(units=0), ["layers[0].units", ">= 1"]),
    (lambda d: d.update(layers=[]), ["layers", "non-empty"]),
    (lambda d: d["layers"].insert(0, {"name": "p", "type": "pool"}), ["pooling must follow a spiking layer"]),
    (lambda d: d["layers"].insert(0, {"name": "c", "type": "local", "channels": 2, "kernel": 40}),
     ["kernel 40 does not fit"]),
    (lambda d: d.update(training={"batch": 7}), ["train_per_period", "multiple of training.batch"]),
    (lambda d: d.update(training={"lr": -1.0}), ["training.lr", "> 0"]),
    (lambda d: d.update(data={"dataset": "cifar"}), ["data.dataset"]),
    (lambda d: d.update(structure={"masks": "soft-ish"}), ["structure.masks"]),
    (lambda d: d.update(neuron={"surrogate": "sigmoid"}), ["neuron.surrogate"]),
    (lambda d: d["layers"][1].update(prune=True), ["output layer"]),
    (lambda d: d.update(schedule={"spine_streak": 20, "structure_start": 10}), ["structure_start"]),
    (lambda d: d.update(schedule={"seed": -1}), ["schedule.seed", "[0, 2**32)"]),
    (lambda d: d.update(data={"split_seed": 2**32}), ["data.split_seed", "[0, 2**32)"]),
])
def test_bad_configs_are_rejected_with_file_and_key(mutate, words):
    d = base()
    mutate(d)
    with pytest.raises(ConfigError) as err:
        config_from_dict(d, source="models/x.toml")
    msg = str(err.value)
    assert msg.startswith("models/x.toml") and "\n" not in msg
    for w in words:
        assert w in msg


def test_good_config_and_overrides():
    cfg = config_from_dict(base(), source="x.toml")
    assert cfg.n_classes == 10 and cfg.layers[0].rho0 == 0.0
    cfg2 = cfg.replace(schedule={"periods": 3})
    assert cfg2.schedule.periods == 3 and cfg.schedule.periods == 100


def test_malformed_toml_file(tmp_path):
    p = tmp_path / "m.toml"
    p.write_text("name = \n")
    with pytest.raises(ConfigError, match="m.toml: not valid TOML"):
        load_config(p)
    with pytest.raises(ConfigError, match="no such model file"):
        load_config(tmp_path / "missing.toml")
