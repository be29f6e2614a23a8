"""Property-based: random layer stacks are accepted and build a Brian2 network, or are rejected cleanly.

``test_fuzz`` throws mutated configurations at the validator and checks the
geometry of those it accepts (500 cases, too many for a Brian2 build each).
Here random but plausible networks -- stacks of dense, locally connected and
pooling layers with random sizes, neuron models, surrogates and SD-SNN
switches -- go the whole way: an accepted configuration must build its Brian2
objects and generate the complete ``cpp_standalone`` project (every code object
of learning and structure; Brian2 checks units, names and namespaces there),
with the synapse counts the validator predicted.
"""

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sdsnn_bio.config import config_from_dict
from sdsnn_bio.devices import reset_brian, set_up_device
from sdsnn_bio.errors import ConfigError
from sdsnn_bio.neurons import SURROGATES
from sdsnn_bio.geometry import synapse_counts

pytestmark = [pytest.mark.slow, pytest.mark.standalone]


@st.composite
def layer(draw, index):
    kind = draw(st.sampled_from(["dense", "local", "pool"]))
    d = {"name": f"l{index}", "type": kind}
    if kind == "dense":
        d["units"] = draw(st.integers(1, 24))
    elif kind == "local":
        d.update(channels=draw(st.integers(1, 3)), kernel=draw(st.integers(1, 5)),
                 padding=draw(st.integers(0, 2)), stride=draw(st.integers(1, 3)))
    else:
        d["size"] = draw(st.integers(1, 3))
    if kind != "pool":
        prune = draw(st.booleans())
        d.update(spines=draw(st.booleans()), clip=draw(st.booleans()), prune=prune)
        if prune:
            d.update(rho0=draw(st.floats(0, 60)), theta_dead=draw(st.floats(0, 30)),
                     regen_q0=draw(st.floats(0, 100)), regen_streak=draw(st.integers(1, 20)),
                     neurotrophic=draw(st.sampled_from(["hidden", "last"])))
    return d


@st.composite
def networks(draw):
    if draw(st.integers(0, 3)) == 0:   # any stack: many of these are rejected
        layers = [draw(layer(k)) for k in range(draw(st.integers(0, 4)))]
    else:                              # maps (local, maybe pooled), then dense layers
        layers = []
        for _ in range(draw(st.integers(0, 2))):
            spec = draw(layer(len(layers)).filter(lambda x: x["type"] == "local"))
            layers.append(spec)
            if draw(st.booleans()):
                layers.append({"name": f"l{len(layers)}", "type": "pool", "size": draw(st.integers(1, 2))})
        for _ in range(draw(st.integers(0, 2))):
            layers.append(draw(layer(len(layers)).filter(lambda x: x["type"] == "dense")))
    layers.append({"name": "out", "type": "dense", "units": 10, "clip": draw(st.booleans())})
    side = draw(st.sampled_from([8, 12]))
    return {
        "name": "fuzz",
        "input_shape": [1, side, side],
        "data": {"dataset": "mnist5k"},
        "layers": layers,
        "neuron": {"model": draw(st.sampled_from(["lif", "lif_tau", "plif"])),
                   "surrogate": draw(st.sampled_from(SURROGATES))},
        "training": {"batch": draw(st.integers(1, 4))},
        "schedule": {"n_steps": draw(st.integers(2, 6)), "periods": 3},
        "structure": {"masks": draw(st.sampled_from(["soft", "hard"])), "regeneration": draw(st.booleans()),
                      "mask_biases": draw(st.booleans()), "frozen_conv_spines": draw(st.booleans())},
    }


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(d=networks())
def test_random_networks_build_or_are_rejected(d, tmp_path_factory):
    try:
        cfg = config_from_dict(d, source="fuzz.toml")
    except ConfigError as err:
        msg = str(err)
        assert msg.startswith("fuzz.toml") and "\n" not in msg
        event("rejected")
        return
    event("accepted and built")
    from sdsnn_bio.network import SDSNNNetwork

    reset_brian()
    build = tmp_path_factory.mktemp("fuzzbuild")
    set_up_device("cpp_standalone", str(build))
    batch = cfg.training.batch
    net = SDSNNNetwork(cfg, 1, batch, device="cpp_standalone", directory=str(build))
    assert [s.n_synapses for s in net.stages] == synapse_counts(cfg)
    net.build(compile=False)
    generated = [p.name for p in (build / "code_objects").glob("*.cpp")]

    def has(prefix):  # Brian2 may number a name that an earlier build in this process used
        return any(name.startswith(prefix) for name in generated)

    for st_ in net.learnable_stages:
        syn = st_.synapses.name
        for pathway in ("pre", "bp", "adam") + (("pend", "pstart") if st_.structural else ()):
            assert has(f"{syn}_{pathway}_codeobject"), f"no code for {syn}.{pathway}"
    reset_brian()
