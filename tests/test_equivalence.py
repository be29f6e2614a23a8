"""Generated code against numpy: the learning rule and every structural step.

Each test builds a small network on ``runtime`` (Cython) and on single-threaded
``cpp_standalone``, runs one period and compares what the generated code did
with the same rule computed in numpy (``sdsnn_bio.structure`` for the
structural rules, a direct re-implementation of the rate-coupled readout for
learning). Both devices must agree with numpy to float tolerance.
"""

import numpy as np
import pytest

from sdsnn_bio.config import config_from_dict
from sdsnn_bio.devices import set_up_device
from sdsnn_bio.learning import numpy_period
from sdsnn_bio.network import SDSNNNetwork
from sdsnn_bio.structure import (
    SpineState,
    clip_weights,
    neuron_importance,
    regenerate,
    RegenerationState,
    update_spines,
)
from sdsnn_bio.structure.constraint import SPINE_FIELDS

DEVICES = ["runtime", pytest.param("cpp_standalone", marks=pytest.mark.standalone)]


#: One network and run shape for every test here: Brian2 inlines these
#: constants into the generated code, so sharing them lets the runtime (Cython)
#: tests reuse each other's compiled code objects.
N_TEST, N_TRAIN = 2, 4


SCHEDULE = {"periods": 1, "train_per_period": N_TRAIN, "test_per_period": N_TEST, "n_steps": 6,
            "spine_streak": 2}


def small_config():
    sch = dict(SCHEDULE)
    return config_from_dict({
        "name": "small",
        "input_shape": [1, 4, 5],
        "layers": [
            {"name": "hid", "type": "dense", "units": 7, "spines": True, "clip": True, "prune": True,
             "rho0": 30.0, "theta_dead": 2.0, "regen_streak": 1, "neurotrophic": "last"},
            {"name": "out", "type": "dense", "units": 3, "clip": True},
        ],
        "training": {"lr": 0.01, "batch": 2, "weight_init": 3.0},
        "schedule": sch,
    }, source="small.toml")


def build(cfg, device, tmp_path, n_test, n_train, monitor_input=False):
    set_up_device(device, str(tmp_path / "build"))
    net = SDSNNNetwork(cfg, n_test, n_train, device=device, directory=str(tmp_path / "build"), seed=3)
    mon = None
    if monitor_input:
        import brian2 as b2

        mon = b2.SpikeMonitor(net.input_group, name="input_spikes")
        net.net.add(mon)
    return net, mon


def numpy_layers(net):
    """The network's initial weights and zero Adam state, as dense numpy matrices."""
    layers = []
    for st in net.stages:
        # a locally connected layer is a dense matrix with zeros off its receptive fields;
        # a pooling stage is a fixed linear map (weight 1/k^2) without bias or spikes
        pool = st.kind == "pool"
        W = np.zeros((st.n_neurons, int(np.prod(st.in_shape))))
        W[st.post_index, st.pre_index] = st.extra["pool_weight"] if pool else st.extra["w_init"]
        b = np.zeros(st.n_neurons) if pool else st.extra["b_init"].copy()
        exists = np.zeros(W.shape, bool)
        exists[st.post_index, st.pre_index] = True
        layers.append({"W": W, "b": b, "mW": np.zeros_like(W), "vW": np.zeros_like(W), "pool": pool,
                       "exists": exists,
                       "mb": np.zeros(st.n_neurons), "vb": np.zeros(st.n_neurons),
                       "gW": np.zeros_like(W), "gb": np.zeros(st.n_neurons)})
    return layers


def local_pool_config():
    """Locally connected layer, average pooling, dense hidden layer, output: the paper network's shape."""
    return config_from_dict({
        "name": "small_local",
        "input_shape": [1, 4, 4],
        "layers": [
            {"name": "loc", "type": "local", "channels": 2, "kernel": 3, "padding": 1},
            {"name": "pool", "type": "pool", "size": 2},
            {"name": "hid", "type": "dense", "units": 5},
            {"name": "out", "type": "dense", "units": 3},
        ],
        "training": {"lr": 0.01, "batch": 2, "weight_init": 3.0},
        "schedule": dict(SCHEDULE),
    }, source="small_local.toml")


@pytest.mark.parametrize("network,n_test", [("dense", N_TEST), ("local_pool", N_TEST), ("dense", N_TEST - 1)],
                         ids=["dense", "local_pool", "dense-test_not_whole_batches"])
@pytest.mark.parametrize("device", DEVICES)
def test_learning_matches_numpy(device, network, n_test, tmp_path):
    """Two periods of learning (Adam's step count and the state carried over) against numpy.

    With ``N_TEST`` test windows (whole mini-batches) the synapses' Adam step
    runs on the per-batch clock; with one window fewer it is the event-driven
    pathway at the batch's last step.
    """
    cfg = small_config() if network == "dense" else local_pool_config()
    n_train = N_TRAIN
    net, mon = build(cfg, device, tmp_path, n_test, n_train, monitor_input=True)
    assert net.adam_on_clock == (n_test % cfg.training.batch == 0)
    rng = np.random.default_rng(1)
    n_win = n_test + n_train
    n_in = int(np.prod(cfg.input_shape))
    T = cfg.schedule.n_steps
    lr = 0.01
    layers = numpy_layers(net)
    batches = n_train // cfg.training.batch
    seen = 0
    for period in range(2):
        stim = rng.uniform(0.2, 0.9, (n_win, n_in))
        labels = rng.integers(0, 3, n_win)
        target = np.zeros((n_win, 3))
        target[np.arange(n_win), labels] = 1
        net.set_inputs(stim, target)
        net.set_shared(lr=lr, adam_k0=period * batches, learn_on=1, struct_on=0, hard_mask=0, bias_mask_on=0)
        counts = net.run()
        # every period's run starts at t = 0; the monitor holds this period's spikes only
        spikes = np.zeros((n_win, T, n_in), dtype=np.uint8)
        t_in, i_in = np.asarray(mon.t_), np.asarray(mon.i)
        if device == "runtime":   # a runtime monitor keeps the earlier periods' spikes
            t_in, i_in, seen = t_in[seen:], i_in[seen:], len(t_in)
        step = np.round(t_in / float(net.dt)).astype(int)
        assert step.max() < n_win * T, "no input spike in the settle step"
        spikes[step // T, step % T, i_in] = 1
        assert spikes.sum() > 0
        counts_np = numpy_period(cfg, layers, spikes, labels, n_test, lr, k=period * batches)
        np.testing.assert_array_equal(counts, counts_np)
        for st, lay in zip(net.stages, layers):
            if st.kind == "pool":
                continue
            w = net.get(st.synapses, "w")
            assert np.abs(w - st.extra["w_init"]).max() > 1e-4, "the rule must change the weights"
            np.testing.assert_allclose(w, lay["W"][st.post_index, st.pre_index], rtol=1e-9, atol=1e-11,
                                       err_msg=f"period {period}")
            np.testing.assert_allclose(net.get(st.synapses, "mt"), lay["mW"][st.post_index, st.pre_index],
                                       rtol=1e-9, atol=1e-14, err_msg=f"period {period}")
            np.testing.assert_allclose(net.get(st.group, "b"), lay["b"], rtol=1e-9, atol=1e-11)


def random_structural_state(net, rng):
    """Random weights, spine state, masks and regeneration streaks for every learnable stage."""
    state = {}
    for st in net.learnable_stages:
        n = st.n_synapses
        w = rng.normal(0, 0.4, n)
        r_up = rng.uniform(0.05, 0.5, n)
        r_lo = -rng.uniform(0.05, 0.5, n)
        # some synapses sit on their bounds so that streaks complete
        w[:n // 5] = r_up[:n // 5] + 0.1
        w[n // 5:2 * n // 5] = r_lo[n // 5:2 * n // 5] - 0.1
        sp = SpineState(
            r_up=r_up, r_lo=r_lo,
            c_up=rng.integers(0, 3, n).astype(float), s_up=rng.uniform(0, 0.3, n),
            c_lo=rng.integers(0, 3, n).astype(float), s_lo=-rng.uniform(0, 0.3, n),
            c_ret=rng.integers(0, 3, n).astype(float), a_prev=np.abs(w) + rng.uniform(-0.05, 0.2, n),
            prev_up=rng.integers(0, 2, n).astype(float), prev_lo=rng.integers(0, 2, n).astype(float),
            prev_ret=rng.integers(0, 2, n).astype(float))
        connected = (rng.uniform(size=n) > 0.3).astype(float)
        regen = RegenerationState(streak=rng.integers(0, 3, n).astype(float),
                                  cand_prev=rng.integers(0, 2, n).astype(float))
        prune_now = (rng.uniform(size=st.n_neurons) > 0.7).astype(float)
        state[st.spec.name] = dict(w=w, sp=sp, connected=connected, regen=regen, prune_now=prune_now,
                                   threshold=float(np.percentile(w, 40)))
    return state


def set_synapse_state(net, st, s):
    """Weights, spine state and mask of ``random_structural_state``'s stage entry ``s``, for the next run."""
    net.set_next(st.synapses, "w", s["w"])
    for name in SPINE_FIELDS:
        net.set_next(st.synapses, name, getattr(s["sp"], name))
    net.set_next(st.synapses, "connected", s["connected"])


@pytest.mark.parametrize("device", DEVICES)
def test_structural_steps_match_numpy(device, tmp_path):
    cfg = small_config()
    net, _ = build(cfg, device, tmp_path, N_TEST, N_TRAIN)
    rng = np.random.default_rng(7)
    state = random_structural_state(net, rng)
    for st in net.learnable_stages:
        s = state[st.spec.name]
        set_synapse_state(net, st, s)
        net.set_next(st.synapses, "regen_k", s["regen"].streak)
        net.set_next(st.synapses, "regen_prev", s["regen"].cand_prev)
        net.set_next(st.group, "prune_now", s["prune_now"])
        net.set_stage_flags(st, regen_on=1, regen_threshold=s["threshold"], mask_on=1, clip_on=1)
    net.set_inputs(np.zeros((N_TEST + N_TRAIN, 20)), np.zeros((N_TEST + N_TRAIN, 3)))
    # no learning (no training windows are back-propagated), structure on
    net.set_shared(lr=0.0, adam_k0=0, learn_on=0, struct_on=1, hard_mask=0, bias_mask_on=0)
    net.run()
    exercised = {"regrown": 0, "expanded": 0, "retracted": 0, "pruned": 0}
    for st in net.learnable_stages:
        s = state[st.spec.name]
        # start of the period: regeneration, then pruning and the mask
        conn, regen_state, regrown = regenerate(s["connected"], s["w"], s["threshold"], s["regen"],
                                                st.spec.regen_streak)
        conn = conn * (1 - s["prune_now"][st.post_index])
        w = s["w"] * conn
        # end of the period: spine update on the masked weights, constraint, importance
        if st.spec.spines:
            sp = update_spines(s["sp"], w * conn, n_streak=2, shrink=cfg.structure.shrink)
        else:  # a layer that is only clipped keeps its spine bounds
            sp = s["sp"]
        w = clip_weights(w, sp)
        exercised["regrown"] += int(regrown.sum())
        exercised["expanded"] += int((sp.r_up > s["sp"].r_up).sum() + (sp.r_lo < s["sp"].r_lo).sum())
        exercised["retracted"] += int((np.abs(sp.r_up) < 0.75 * np.abs(s["sp"].r_up) + 1e-12).sum())
        exercised["pruned"] += int(((s["connected"] > 0) & (conn == 0)).sum())
        np.testing.assert_array_equal(net.get(st.synapses, "connected"), conn)
        np.testing.assert_array_equal(net.get(st.synapses, "regen_k"), regen_state.streak)
        np.testing.assert_array_equal(net.get(st.synapses, "regen_prev"), regen_state.cand_prev)
        for name in ("r_up", "r_lo", "c_up", "s_up", "c_lo", "s_lo", "c_ret", "a_prev",
                     "prev_up", "prev_lo", "prev_ret"):
            np.testing.assert_allclose(net.get(st.synapses, name), getattr(sp, name), rtol=0, atol=1e-12,
                                       err_msg=name)
        np.testing.assert_allclose(net.get(st.synapses, "w"), w, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(net.get(st.group, "regrown"),
                                      np.bincount(st.post_index, weights=regrown.astype(float),
                                                  minlength=st.n_neurons))
        if st.spec.prune:
            width = sp.r_up + np.abs(sp.r_lo)
            lo, hi = width.min(), width.max()
            imp = net.get(st.group, "imp")
            live = net.get(st.group, "live")
            np.testing.assert_array_equal(live, np.bincount(st.post_index, weights=conn, minlength=st.n_neurons))
            np.testing.assert_allclose((imp - lo * live) / (hi - lo),
                                       neuron_importance(width, conn, st.post_index, st.n_neurons),
                                       rtol=0, atol=1e-10)
    assert all(v > 0 for v in exercised.values()), f"the test must exercise every rule: {exercised}"
