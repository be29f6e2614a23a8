"""Generated code against numpy: the learning rule and every structural step.

Each test builds a small network on ``runtime`` and on single-threaded
``cpp_standalone``, runs one period and compares what the generated code did
with the same rule computed in numpy (``sdsnn_bio.structure`` for the
structural rules, a direct re-implementation of the rate-coupled readout for
learning). Both devices must agree with numpy to float tolerance.

``runtime`` is Brian2's numpy target here: the training network's ~90 code objects cost
~5 CPU-seconds each as Cython extensions (on a fresh clone the suite's largest cost), and its
Cython code, learning and structural steps, is checked against cpp_standalone, run for run,
by tests/test_reproducibility.py.
"""

import numpy as np
import pytest

from sdsnn_bio.config import config_from_dict
from sdsnn_bio.learning import numpy_period
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


def small_config(out_clip=True):
    sch = dict(SCHEDULE)
    return config_from_dict({
        "name": "small",
        "input_shape": [1, 4, 5],
        "layers": [
            {"name": "hid", "type": "dense", "units": 7, "spines": True, "clip": True, "prune": True,
             "rho0": 30.0, "theta_dead": 2.0, "regen_streak": 1, "neurotrophic": "last"},
            {"name": "out", "type": "dense", "units": 3, "clip": out_clip},
        ],
        "training": {"lr": 0.01, "batch": 2, "weight_init": 3.0},
        "schedule": sch,
    }, source="small.toml")


def build(cfg, device, tmp_path, n_test, n_train, monitor_input=False):
    """The network of ``cfg`` (the parallel form with ``training.parallel_windows``), on ``device``
    (set up through the module attribute, so that the ``numpy_runtime`` fixture applies)."""
    from sdsnn_bio import devices
    from sdsnn_bio.network import network_class

    devices.set_up_device(device, str(tmp_path / "build"))
    net = network_class(cfg)(cfg, n_test, n_train, device=device, directory=str(tmp_path / "build"), seed=3)
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
        # a pooling stage is a fixed linear map (weight 1/k^2) without bias or spikes;
        # a convolution is the matrix of its positions, each entry tied to a kernel weight
        pool = st.kind == "pool"
        P = st.positions
        n, pre, post = (P.n_neurons, P.pre_index, P.post_index) if P is not None else \
            (st.n_neurons, st.pre_index, st.post_index)
        W = np.zeros((n, int(np.prod(st.in_shape))))
        exists = np.zeros(W.shape, bool)
        exists[post, pre] = True
        lay = {"pool": pool, "exists": exists, "mb": np.zeros(n), "vb": np.zeros(n), "gb": np.zeros(n)}
        if P is not None:
            tie = np.full(W.shape, -1)
            tie[post, pre] = P.weight_index
            k, bc = st.extra["w_init"].copy(), st.extra["b_init"].copy()
            W[post, pre] = k[P.weight_index]
            lay.update(tie=tie, channel=P.channel, k=k, bc=bc, b=bc[P.channel], mk=np.zeros_like(k),
                       vk=np.zeros_like(k), mbc=np.zeros_like(bc), vbc=np.zeros_like(bc))
        else:
            W[post, pre] = st.extra["pool_weight"] if pool else st.extra["w_init"]
            lay["b"] = np.zeros(n) if pool else st.extra["b_init"].copy()
        lay.update(W=W, mW=np.zeros_like(W), vW=np.zeros_like(W), gW=np.zeros_like(W))
        layers.append(lay)
    return layers


def learned_arrays(st, lay) -> dict:
    """``{variable: (numpy value, Brian2 owner)}`` of a learnable stage's weights, their first
    Adam moment and its biases (a convolution's: kernel and channel biases)."""
    if st.positions is not None:
        return {"w": (lay["k"], st.synapses), "mt": (lay["mk"], st.synapses), "b": (lay["bc"], st.group)}
    return {"w": (lay["W"][st.post_index, st.pre_index], st.synapses),
            "mt": (lay["mW"][st.post_index, st.pre_index], st.synapses), "b": (lay["b"], st.group)}


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


def conv_pool_config(structural=False):
    """Convolution (from the input), pooling, convolution (from the pool), output: the paper
    network's shape with shared kernels; ``structural``: conv1 and the output clipped, conv2
    with spines, clipping and pruning."""
    extra = {"spines": True, "clip": True, "prune": True, "rho0": 30.0, "theta_dead": 2.0, "regen_streak": 1,
             "neurotrophic": "last"} if structural else {}
    return config_from_dict({
        "name": "small_conv",
        "input_shape": [1, 4, 6],
        "layers": [
            {"name": "cv1", "type": "conv", "channels": 2, "kernel": 3, "padding": 1, "clip": structural},
            {"name": "pool", "type": "pool", "size": 2},
            {"name": "cv2", "type": "conv", "channels": 3, "kernel": 3, "padding": 1, **extra},
            {"name": "out", "type": "dense", "units": 3, "clip": structural},
        ],
        "training": {"lr": 0.01, "batch": 2, "weight_init": 3.0},
        "schedule": dict(SCHEDULE, n_steps=8),
    }, source="small_conv.toml")


@pytest.mark.parametrize("network,n_test", [("dense", N_TEST), ("local_pool", N_TEST), ("dense", N_TEST - 1),
                                            ("conv_pool", N_TEST)],
                         ids=["dense", "local_pool", "dense-test_not_whole_batches", "conv_pool"])
@pytest.mark.parametrize("device", DEVICES)
def test_learning_matches_numpy(device, network, n_test, tmp_path, request):
    """Two periods of learning (Adam's step count and the state carried over) against numpy.

    With ``N_TEST`` test windows (whole mini-batches) the synapses' Adam step
    runs on the per-batch clock; with one window fewer it is the event-driven
    pathway at the batch's last step. ``runtime`` on Brian2's numpy target (module docstring).
    A convolution's kernel takes the event-driven step on the numpy target and the clocked one
    on ``cpp_standalone`` (:func:`sdsnn_bio.conv.adam_on_clock`), so ``conv_pool`` covers both.
    """
    if device == "runtime":
        request.getfixturevalue("numpy_runtime")
    cfg = {"dense": small_config, "local_pool": local_pool_config, "conv_pool": conv_pool_config}[network]()
    n_train = N_TRAIN
    net, mon = build(cfg, device, tmp_path, n_test, n_train, monitor_input=True)
    assert net.adam_on_clock == (n_test % cfg.training.batch == 0)
    for st in net.learnable_stages:
        if st.positions is not None:     # the kernel's Adam step: event-driven on the numpy target only
            assert hasattr(st.synapses, "adam") == (device == "runtime")
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
            want = learned_arrays(st, lay)
            w = net.get(st.synapses, "w")
            assert np.abs(w - st.extra["w_init"]).max() > 1e-4, "the rule must change the weights"
            for var, (value, owner) in want.items():
                np.testing.assert_allclose(net.get(owner, var), value, rtol=1e-9,
                                           atol=1e-14 if var == "mt" else 1e-11,
                                           err_msg=f"{st.name}.{var}, period {period}")


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


@pytest.mark.parametrize("network", ["dense", "conv"])
@pytest.mark.parametrize("device", DEVICES)
def test_structural_steps_match_numpy(device, network, tmp_path, request):
    """Regeneration, pruning, mask, spine update, constraint and importance of one period against
    numpy; for a convolution on its kernel (the structural state is the kernel's, its units the
    channels)."""
    if device == "runtime":    # Brian2's numpy target (module docstring)
        request.getfixturevalue("numpy_runtime")
    cfg = small_config() if network == "dense" else conv_pool_config(structural=True)
    net, _ = build(cfg, device, tmp_path, N_TEST, N_TRAIN)
    rng = np.random.default_rng(7)
    state = random_structural_state(net, rng)
    for st in net.learnable_stages:
        s = state[st.spec.name]
        if st.spec.prune and not s["prune_now"].any():    # a pruned layer prunes a unit (conv2: a channel)
            s["prune_now"][0] = 1.0
        set_synapse_state(net, st, s)
        net.set_next(st.synapses, "regen_k", s["regen"].streak)
        net.set_next(st.synapses, "regen_prev", s["regen"].cand_prev)
        net.set_next(st.group, "prune_now", s["prune_now"])
        net.set_stage_flags(st, regen_on=1, regen_threshold=s["threshold"], mask_on=1, clip_on=1)
    net.set_inputs(np.zeros((N_TEST + N_TRAIN, int(np.prod(cfg.input_shape)))), np.zeros((N_TEST + N_TRAIN, 3)))
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


# ------------------------------------------------- mini-batch-parallel form (training.parallel_windows)

def parallel_config(network):
    """``small_config``/``local_pool_config`` with the windows of a mini-batch run at once."""
    cfg = {"dense": small_config, "plain_out": lambda: small_config(out_clip=False),
           "local_pool": local_pool_config, "conv_pool": conv_pool_config}[network]()
    return cfg.replace(training={"parallel_windows": True})


def replica_input_spikes(net, mon, n_win, seen=0):
    """Input spikes per window (windows x steps x inputs) from a monitor of the replicated input."""
    T, B = net.T, net.B
    n_in = len(net.input_group)
    t_in, i_in = np.asarray(mon.t_)[seen:], np.asarray(mon.i)[seen:]
    step = np.round(t_in / float(net.dt)).astype(int)
    assert step.max() < net.n_slots * T, "no input spike in the settle step"
    window_of = np.full((net.n_slots, B), -1)
    window_of[net.slot_of, net.replica_of] = np.arange(n_win)
    win = window_of[step // T, i_in // n_in]
    assert (win >= 0).all(), "no spike in a padding window"
    spikes = np.zeros((n_win, T, n_in), dtype=np.uint8)
    spikes[win, step % T, i_in % n_in] = 1
    return spikes


def run_parallel_periods(net, mon, cfg, periods=2, seed=1):
    """Run ``periods`` learning periods on random inputs; per period the counts, the input spikes
    and the state after it."""
    rng = np.random.default_rng(seed)
    n_win = net.n_windows
    n_in = int(np.prod(cfg.input_shape))
    batches = net.n_train_win // cfg.training.batch
    seen, out = 0, []
    for period in range(periods):
        stim = rng.uniform(0.2, 0.9, (n_win, n_in))
        labels = rng.integers(0, 3, n_win)
        target = np.zeros((n_win, 3))
        target[np.arange(n_win), labels] = 1
        net.set_inputs(stim, target)
        net.set_shared(lr=0.01, adam_k0=period * batches, learn_on=1, struct_on=0, hard_mask=0, bias_mask_on=0)
        counts = net.run()
        spikes = replica_input_spikes(net, mon, n_win, seen if net.device_name == "runtime" else 0)
        seen = len(mon.t_)
        state = {st.name: {v: net.get(st.synapses, v) for v in ("w", "mt", "vt")} | {"b": net.get(st.group, "b")}
                 for st in net.learnable_stages}
        out.append((labels, counts, spikes, state))
    return out


@pytest.mark.parametrize("network,n_test", [("dense", N_TEST), ("dense", N_TEST - 1), ("local_pool", N_TEST),
                                             ("plain_out", N_TEST), ("conv_pool", N_TEST)],
                         ids=["dense", "dense-test_padded", "local_pool", "plain_out", "conv_pool"])
def test_parallel_windows_learn_like_numpy(numpy_runtime, network, n_test, tmp_path):
    """The parallel form (B replicas, numpy target) against the sequential form's numpy twin,
    given the replicas' input spikes: the same output counts, and the same weights, Adam moments
    and biases to round-off after two periods. ``N_TEST - 1`` test windows leave a blank padding
    window in the last test slot. ``conv_pool``: the convolutions' positions are replicated, the
    kernels and channel biases shared (the kernel's gradient sums over positions and replicas)."""
    cfg = parallel_config(network)
    net, _ = build(cfg, "runtime", tmp_path, n_test, N_TRAIN)
    assert net.parallel and net.B == cfg.training.batch == 2
    import brian2 as b2

    mon = b2.SpikeMonitor(net.input_replica, name="input_spikes")
    net.net.add(mon)
    layers = numpy_layers(net)
    batches = N_TRAIN // cfg.training.batch
    for period, (labels, counts, spikes, state) in enumerate(run_parallel_periods(net, mon, cfg)):
        assert spikes.sum() > 0
        counts_np = numpy_period(cfg, layers, spikes, labels, n_test, 0.01, k=period * batches)
        np.testing.assert_array_equal(counts, counts_np)
        for st, lay in zip(net.stages, layers):
            if st.kind == "pool":
                continue
            s = state[st.name]
            assert np.abs(s["w"] - st.extra["w_init"]).max() > 1e-4, "the rule must change the weights"
            # the sequential form's tolerances (test_learning_matches_numpy); the first moments
            # of near-cancelling gradients (|mt| ~ 1e-4) differ from the twin's by up to 2e-13
            # (the sequential form's code gives the same bits: test_parallel_windows_equal_the_sequential_form)
            for var, (value, _) in learned_arrays(st, lay).items():
                np.testing.assert_allclose(s[var], value, rtol=1e-9, atol=1e-12 if var == "mt" else 1e-11,
                                           err_msg=f"{st.name}.{var}, period {period}")


@pytest.mark.standalone
def test_parallel_windows_build_a_layer_without_structural_pathways(tmp_path):
    """A learnable layer without spines, clipping or pruning whose Adam step runs on its clock
    (every device but the numpy target) has no pathway on its master synapses: the parallel
    form must still build it (it failed for the paper's MNIST network, whose conv1 is such a
    layer). Constructing the objects for cpp_standalone is enough to check it."""
    from sdsnn_bio.devices import reset_brian

    reset_brian()
    cfg = parallel_config("plain_out")
    net, _ = build(cfg, "cpp_standalone", tmp_path, N_TEST, N_TRAIN)
    assert net.adam_on_clock
    out = net.net["syn_out"]
    assert not out._pathways and not out.events
    assert "syn_out_adam" in [o.name for o in out.contained_objects]
    assert net.net["syn_hid"]._pathways        # the structural layer keeps its pathways
    reset_brian()


def test_parallel_windows_are_reproducible(numpy_runtime, tmp_path):
    """The same seed gives the same spikes and weights twice (two builds in one process)."""
    from sdsnn_bio.devices import reset_brian

    results = []
    for attempt in range(2):
        reset_brian()
        cfg = parallel_config("dense")
        net, _ = build(cfg, "runtime", tmp_path / str(attempt), N_TEST, N_TRAIN)
        import brian2 as b2

        mon = b2.SpikeMonitor(net.input_replica, name="input_spikes")
        net.net.add(mon)
        results.append(run_parallel_periods(net, mon, cfg, periods=1))
    (_, c0, s0, st0), = results[0]
    (_, c1, s1, st1), = results[1]
    np.testing.assert_array_equal(s0, s1)
    np.testing.assert_array_equal(c0, c1)
    for name in st0:
        for var in st0[name]:
            np.testing.assert_array_equal(st0[name][var], st1[name][var])


@pytest.mark.standalone
@pytest.mark.parametrize("network", ["dense", "conv_pool"])
def test_parallel_windows_cpp_standalone_learn_like_numpy(network, tmp_path):
    """The parallel form's C++ (Adam on the per-batch clock, run_args hand-over of the weight
    group between periods) against the numpy twin, as on the numpy target; ``conv_pool``: the
    kernels' Adam step on that clock too (event-driven on the numpy target)."""
    cfg = parallel_config(network)
    net, _ = build(cfg, "cpp_standalone", tmp_path, N_TEST, N_TRAIN)
    assert net.adam_on_clock
    import brian2 as b2

    mon = b2.SpikeMonitor(net.input_replica, name="input_spikes")
    net.net.add(mon)
    layers = numpy_layers(net)
    for period, (labels, counts, spikes, state) in enumerate(run_parallel_periods(net, mon, cfg)):
        counts_np = numpy_period(cfg, layers, spikes, labels, N_TEST, 0.01, k=period * 2)
        np.testing.assert_array_equal(counts, counts_np)
        for st, lay in zip(net.stages, layers):
            if st.kind == "pool":
                continue
            for var, (value, _) in learned_arrays(st, lay).items():
                np.testing.assert_allclose(state[st.name][var], value, rtol=1e-9,
                                           atol=1e-12 if var == "mt" else 1e-11,
                                           err_msg=f"{st.name}.{var}, period {period}")


@pytest.mark.parametrize("network,n_test", [("dense", N_TEST), ("dense", N_TEST - 1), ("conv", N_TEST)],
                         ids=["whole_slots", "test_padded", "conv"])
def test_parallel_windows_equal_the_sequential_form(numpy_runtime, network, n_test, tmp_path):
    """With inputs that spike for sure or never (pixel values 0 and 1: no random number decides),
    both forms see the same spikes: the parallel form's counts, weights, Adam moments and biases
    equal the sequential form's bit for bit after two periods with structure on (the constraint
    clips, the spines move). With ``N_TEST - 1`` test windows the sequential form's Adam step is
    the event-driven pathway and the parallel form pads its last test slot. ``conv``: kernels
    shared by positions and replicas, their gradients summed in the same order in both forms."""
    from sdsnn_bio.devices import reset_brian

    make = small_config if network == "dense" else lambda: conv_pool_config(structural=True)
    lr = 0.05 if network == "dense" else 0.01      # 0.05 silences the small convolutional network
    rng = np.random.default_rng(5)
    n_win, n_in = n_test + N_TRAIN, int(np.prod(make().input_shape))
    inputs = [((rng.uniform(size=(n_win, n_in)) < 0.5).astype(float), rng.integers(0, 3, n_win)) for _ in range(2)]
    results = {}
    for parallel in (False, True):
        reset_brian()
        cfg = make().replace(training={"parallel_windows": parallel})
        net, _ = build(cfg, "runtime", tmp_path / str(parallel), n_test, N_TRAIN)
        out = []
        for period, (stim, labels) in enumerate(inputs):
            target = np.zeros((n_win, 3))
            target[np.arange(n_win), labels] = 1
            net.set_inputs(stim, target)
            net.set_shared(lr=lr, adam_k0=period * 2, learn_on=1, struct_on=1, hard_mask=0, bias_mask_on=0)
            for st in net.learnable_stages:
                net.set_stage_flags(st, clip_on=float(period), regen_on=0, regen_threshold=0, mask_on=0)
            counts = net.run()
            assert all(e.sum() > 0 for e in net.events()[1]), "every stage must spike"
            state = {f"{st.name}.{v}": net.get(st.synapses, v) for st in net.learnable_stages
                     for v in ("w", "mt", "vt", "r_up", "r_lo", "c_up")}
            state.update({f"{st.name}.b": net.get(st.group, "b") for st in net.learnable_stages})
            state.update({f"{st.name}.events": e for st, e in zip(net.stages, net.events()[1])})
            out.append((counts, state))
        results[parallel] = out
    for period, ((c_seq, s_seq), (c_par, s_par)) in enumerate(zip(results[False], results[True])):
        assert c_seq.sum() > 0
        np.testing.assert_array_equal(c_par, c_seq)
        for key in s_seq:
            np.testing.assert_array_equal(s_par[key], s_seq[key], err_msg=f"{key}, period {period}")
    names = [key[:-2] for key in results[True][0][1] if key.endswith(".w")]
    assert all(np.abs(results[True][1][1][f"{st}.w"] - results[True][0][1][f"{st}.w"]).max() > 1e-4
               for st in names), "the rule must change every layer's weights"
    if network == "conv":      # the structural convolution's spine counters moved
        assert np.abs(results[True][1][1]["cv2.c_up"] - results[True][0][1]["cv2.c_up"]).max() > 0
