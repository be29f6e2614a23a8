"""Runs stop cleanly on unhealthy networks and refuse networks that cannot fit in memory."""

import numpy as np
import pytest

from sdsnn_bio.config import config_from_dict, find_model, load_config
from sdsnn_bio.loop import Development
from sdsnn_bio.records import RunFolder
from sdsnn_bio.errors import ConfigError, RunError
from sdsnn_bio.geometry import check_memory, estimate_memory, synapse_counts


def test_oversized_network_is_refused_before_any_build(tmp_path):
    cfg = config_from_dict({"name": "huge", "layers": [
        {"name": "fc1", "type": "dense", "units": 400_000},
        {"name": "out", "type": "dense", "units": 10}]}, source="huge.toml")
    assert synapse_counts(cfg)[0] == 784 * 400_000
    with pytest.raises(ConfigError) as err:
        check_memory(cfg, 600)
    msg = str(err.value)
    assert msg.startswith("huge.toml") and "GiB" in msg and f"{sum(synapse_counts(cfg)):,} synapses" in msg
    with pytest.raises(ConfigError):
        Development(cfg, tmp_path / "run", device="cpp_standalone").run()
    assert not (tmp_path / "run" / "run.json").exists(), "nothing may be written for a refused network"


def test_memory_estimate_grows_with_the_network():
    small = load_config(find_model("tiny_dense"))
    big = load_config(find_model("mnist_paper"))
    assert estimate_memory(big, 600) > 10 * estimate_memory(small, 600)


@pytest.mark.slow
@pytest.mark.standalone
def test_exploding_weights_stop_the_run_and_keep_the_last_snapshot(tmp_path):
    cfg = load_config(find_model("tiny_dense")).replace(training={"lr": 1e6}, schedule={"periods": 3})
    with pytest.raises(RunError, match=r"period 0: weights of layer '(fc1|out)' exploded"):
        Development(cfg, tmp_path / "run", device="cpp_standalone").run()
    assert not list((tmp_path / "run" / "snapshots").glob("period_*.npz")), \
        "the unhealthy period must not be saved as a snapshot"


@pytest.mark.slow
@pytest.mark.standalone
def test_silent_network_stops_with_period_and_layers(tmp_path):
    cfg = load_config(find_model("tiny_dense")).replace(training={"weight_init": 1e-4, "lr": 1e-9},
                                                        schedule={"periods": 3})
    with pytest.raises(RunError, match=r"period 1: the network is silent \(no spike in layers .*out"):
        Development(cfg, tmp_path / "run", device="cpp_standalone").run()
    run = RunFolder(tmp_path / "run")
    assert run.snapshot_periods() == [0]
    snap = run.load_snapshot("last")
    assert snap.period == 0 and np.all(np.isfinite(snap.arrays["fc1/syn/w"]))
