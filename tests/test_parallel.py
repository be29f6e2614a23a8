"""training.parallel_windows without a simulation: the option's validation, the window layout,
the memory estimate and the command line (the learning itself: tests/test_equivalence.py)."""

import numpy as np
import pytest

from sdsnn_bio.config import config_from_dict, find_model, load_config
from sdsnn_bio.errors import ConfigError
from sdsnn_bio.parallel import replica_layout


def tiny(**training):
    d = load_config(find_model("tiny_dense")).to_dict()
    d["training"].update(training)
    return d


def test_option_defaults_to_the_sequential_form():
    assert load_config(find_model("tiny_dense")).training.parallel_windows is False
    assert config_from_dict(tiny(parallel_windows=True), source="x.toml").training.parallel_windows is True


@pytest.mark.parametrize("value", ["true", 1, 0.0])
def test_non_boolean_is_rejected_with_file_and_key(value):
    with pytest.raises(ConfigError) as err:
        config_from_dict(tiny(parallel_windows=value), source="models/x.toml")
    assert str(err.value).startswith("models/x.toml") and "training.parallel_windows" in str(err.value)
    assert "a boolean" in str(err.value)


def test_event_recordings_are_refused():
    d = load_config(find_model("nmnist_main")).to_dict()
    d["training"]["parallel_windows"] = True
    with pytest.raises(ConfigError) as err:
        config_from_dict(d, source="models/nm.toml")
    msg = str(err.value)
    assert msg.startswith("models/nm.toml") and "training.parallel_windows" in msg and "event recordings" in msg
    d["training"]["parallel_windows"] = False
    config_from_dict(d, source="models/nm.toml")


def test_windows_go_to_slots_and_replicas_in_order():
    slot, rep, n_test_slots, n_slots = replica_layout(5, 6, 3)
    # test windows 0-4 fill slots 0 (0, 1, 2) and 1 (3, 4, padding); training windows a batch a slot
    assert (n_test_slots, n_slots) == (2, 4)
    np.testing.assert_array_equal(slot, [0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 3])
    np.testing.assert_array_equal(rep, [0, 1, 2, 0, 1, 0, 1, 2, 0, 1, 2])
    slot, rep, n_test_slots, n_slots = replica_layout(0, 4, 2)
    assert (n_test_slots, n_slots) == (0, 2)
    np.testing.assert_array_equal(slot * 2 + rep, np.arange(4))


def test_memory_estimate_counts_the_replicas():
    from sdsnn_bio.geometry import BYTES_PER_BUILT_REPLICA_SYNAPSE, BYTES_PER_REPLICA_SYNAPSE, estimate_memory, \
        synapse_counts

    seq = config_from_dict(tiny(), source="x.toml")
    par = config_from_dict(tiny(parallel_windows=True), source="x.toml")
    extra = estimate_memory(par, 100) - estimate_memory(seq, 100)
    B = seq.training.batch
    # the binary's replicas, and what the building Python process holds of them meanwhile
    assert extra == B * (sum(synapse_counts(seq)) * (BYTES_PER_REPLICA_SYNAPSE + BYTES_PER_BUILT_REPLICA_SYNAPSE)
                         + (40 + 10) * 400)


def test_command_line_switch():
    from sdsnn_bio.cli import _overrides, build_parser

    args = build_parser().parse_args(["run", "tiny_dense", "--parallel-windows"])
    assert _overrides(args) == {"training": {"parallel_windows": True}}
    args = build_parser().parse_args(["run", "tiny_dense"])
    assert "training" not in _overrides(args)
