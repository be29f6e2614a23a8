"""Convolution layers (``type = "conv"``, :mod:`sdsnn_bio.conv`) without a simulation: the
positions compute a convolution, the kernel's synapses, the counts that follow from them, and
the forms that refuse them. (Learning and the structural steps against numpy, on every device:
tests/test_equivalence.py.)"""

import numpy as np
import pytest

from sdsnn_bio.config import config_from_dict, find_model, load_config
from sdsnn_bio.errors import ConfigError
from sdsnn_bio.geometry import stage_geometry


def conv_config(stride=1, padding=1, kernel=3, **training):
    return config_from_dict({
        "name": "conv_geo",
        "input_shape": [2, 7, 6],
        "layers": [
            {"name": "cv", "type": "conv", "channels": 3, "kernel": kernel, "padding": padding, "stride": stride},
            {"name": "out", "type": "dense", "units": 4},
        ],
        "training": training,
    }, source="conv_geo.toml")


def correlate(x, kernel, stride, padding):
    """PyTorch's Conv2d (a cross-correlation) without bias, written out: x (C_in, H, W),
    kernel (C_out, C_in, k, k)."""
    c_out, c_in, k, _ = kernel.shape
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    ho = (x.shape[1] + 2 * padding - k) // stride + 1
    wo = (x.shape[2] + 2 * padding - k) // stride + 1
    y = np.zeros((c_out, ho, wo))
    for o in range(c_out):
        for r in range(ho):
            for c in range(wo):
                y[o, r, c] = np.sum(xp[:, r * stride:r * stride + k, c * stride:c * stride + k] * kernel[o])
    return y


@pytest.mark.parametrize("stride,padding,kernel", [(1, 1, 3), (2, 1, 3), (1, 0, 3), (2, 2, 5)])
def test_positions_compute_the_convolution(stride, padding, kernel):
    cfg = conv_config(stride=stride, padding=padding, kernel=kernel)
    st = stage_geometry(cfg)[0]
    P = st.positions
    rng = np.random.default_rng(0)
    K = rng.normal(size=(3, 2, kernel, kernel))
    x = rng.normal(size=(2, 7, 6))
    # the kernel's synapses run input channel -> output channel, k*k a pair, input-channel-major
    w = K.transpose(1, 0, 2, 3).ravel()
    y = np.bincount(P.post_index, weights=w[P.weight_index] * x.ravel()[P.pre_index], minlength=P.n_neurons)
    want = correlate(x, K, stride, padding)
    assert P.n_neurons == want.size and st.out_shape == want.shape
    np.testing.assert_allclose(y, want.ravel(), rtol=1e-12, atol=1e-12)
    # every position's synapse reads a weight of its own channel from its input's channel
    n_map = st.out_shape[1] * st.out_shape[2]
    np.testing.assert_array_equal(st.post_index[P.weight_index], P.channel[P.post_index])
    np.testing.assert_array_equal(st.pre_index[P.weight_index], P.pre_index // (7 * 6))
    np.testing.assert_array_equal(P.channel, np.arange(P.n_neurons) // n_map)
    assert np.all(np.diff(P.pre_index) >= 0), "presynaptic-major, as the forward pathway walks them"


def test_kernel_is_the_stage_s_synapses_and_channels_its_units():
    from sdsnn_bio.energy import dense_operations
    from sdsnn_bio.geometry import connectivity, estimate_memory, synapse_counts, BYTES_PER_POSITION_SYNAPSE

    cfg = conv_config()
    st = stage_geometry(cfg)[0]
    assert (st.n_synapses, st.n_neurons, st.n_units, st.fan_in) == (3 * 2 * 9, 3, 3, 18)
    assert st.reference_params == st.n_synapses and st.positions_per_unit == 1
    np.testing.assert_array_equal(np.bincount(st.post_index), [18, 18, 18])
    assert synapse_counts(cfg)[0] == 54
    # the same geometry as a locally connected layer: its synapses are the positions'
    d = cfg.to_dict()
    d["layers"][0]["type"] = "local"
    local = config_from_dict(d, source="x.toml")
    i, j = connectivity(local.layers[0], (2, 7, 6), (3, 7, 6))
    np.testing.assert_array_equal(st.positions.pre_index, i)
    np.testing.assert_array_equal(st.positions.post_index, j)
    # a same-shape non-spiking network multiplies at every position's synapse
    macs, _ = dense_operations(stage_geometry(cfg))
    assert macs["cv"] == len(i)
    # memory: the kernel's synapses plus the positions' forward and gradient synapses
    extra = estimate_memory(cfg, 10) - estimate_memory(local, 10)
    from sdsnn_bio.geometry import BYTES_PER_SYNAPSE
    assert extra == 54 * BYTES_PER_SYNAPSE + len(i) * (BYTES_PER_POSITION_SYNAPSE - BYTES_PER_SYNAPSE)


def test_live_out_degree_counts_the_positions_of_connected_kernel_weights():
    from sdsnn_bio.metrics import layer_operations, live_out_degree

    stages = stage_geometry(conv_config())
    st = stages[0]
    rng = np.random.default_rng(1)
    connected = (rng.uniform(size=st.n_synapses) > 0.4).astype(float)
    deg = live_out_degree(st, lambda name: connected, 2 * 7 * 6)
    P = st.positions
    want = np.zeros(2 * 7 * 6)
    for i, e in zip(P.pre_index, P.weight_index):
        want[i] += connected[e]
    np.testing.assert_array_equal(deg, want)
    events = rng.integers(0, 5, 2 * 7 * 6).astype(float)
    out_events = [rng.integers(0, 5, P.n_neurons).astype(float), np.zeros(4)]
    conn_out = np.ones(stages[1].n_synapses)
    ops = layer_operations(stages, events, out_events, lambda name: connected if name == "cv" else conn_out)
    assert ops[0] == pytest.approx(float(events @ want))
    assert ops[1] == pytest.approx(out_events[0].sum() * 4)


def test_the_split_form_shares_a_kernel_sized_gradient_buffer():
    """Split over processes (``training.processes``; learning checked against numpy in
    tests/test_split.py), every process holds the whole network, and the shared buffer two
    gradient sums per process of every kernel weight, not of every position's synapse."""
    from sdsnn_bio.geometry import estimate_memory, synapse_counts

    one, two = conv_config(batch=10), conv_config(processes=2, batch=10)
    assert two.training.processes == 2
    assert synapse_counts(two) == [3 * 2 * 3 * 3, 3 * 7 * 6 * 4]
    assert estimate_memory(two, 0) == 2 * estimate_memory(one, 0) + 2 * 8 * 2 * (54 + 504)


def test_the_parallel_form_counts_replicated_positions_in_its_memory_estimate():
    """A convolution in the parallel form repeats its positions (neurons and synapses) for the B
    replicas, not its kernel: the estimate grows by (B - 1) times the positions' share."""
    from sdsnn_bio.geometry import BYTES_PER_BUILT_REPLICA_SYNAPSE, BYTES_PER_NEURON, BYTES_PER_POSITION_SYNAPSE, \
        BYTES_PER_REPLICA_SYNAPSE, estimate_memory

    seq = conv_config(batch=4)
    par = conv_config(batch=4, parallel_windows=True)
    st = stage_geometry(seq)[0]
    P = st.positions
    positions = P.n_synapses * BYTES_PER_POSITION_SYNAPSE + P.n_neurons * BYTES_PER_NEURON
    out = stage_geometry(seq)[1]
    dense_rep = out.n_synapses * BYTES_PER_REPLICA_SYNAPSE + out.n_neurons * BYTES_PER_NEURON
    # and what the building Python process holds of every replica's synapses while the binary runs
    built = 4 * (P.n_synapses + out.n_synapses) * BYTES_PER_BUILT_REPLICA_SYNAPSE
    assert estimate_memory(par, 10) - estimate_memory(seq, 10) == 3 * positions + 4 * dense_rep + built


def test_copies_in_one_build_take_a_convolution():
    """Copies of a convolutional model may share one build (tests/test_multi.py runs them against
    their single runs); a sweep keys them by what is not a run-time key."""
    from sdsnn_bio.multi import check_copies
    from sdsnn_bio.sweep import copies_key

    cfg = conv_config()
    check_copies([cfg, cfg.replace(training={"lr": 0.01})])
    assert copies_key(cfg, "cpp_standalone") == copies_key(cfg.replace(training={"lr": 0.01}), "cpp_standalone")
    assert copies_key(cfg, "cpp_standalone") != copies_key(cfg, "runtime")
    # a convolution's shape is not a run-time key
    with pytest.raises(ConfigError, match=r"key 'layers\.0\.channels'|key 'layers\.cv\.channels'"):
        d = cfg.to_dict()
        d["layers"][0]["channels"] = 5
        check_copies([cfg, config_from_dict(d, source="other.toml")])


def test_conv_keys_are_validated_like_local_ones():
    d = conv_config().to_dict()
    d["layers"][0]["padding"] = 3
    with pytest.raises(ConfigError, match=r"layers\[0\]\.padding.*between 0 and kernel - 1"):
        config_from_dict(d, source="x.toml")
    d["layers"][0].update(padding=1, channels=0)
    with pytest.raises(ConfigError, match=r"layers\[0\]\.channels"):
        config_from_dict(d, source="x.toml")
    d = conv_config().to_dict()
    d["layers"].insert(0, {"name": "d", "type": "dense", "units": 8})     # a vector into the convolution
    with pytest.raises(ConfigError, match=r"a convolution layer needs a \[C, H, W\] input"):
        config_from_dict(d, source="x.toml")


# ------------------------------------------------------------------ a run end to end

def tiny_conv(**schedule):
    """tiny_dense's data and schedule on a small convolutional network, conv2 pruned by channel."""
    d = load_config(find_model("tiny_dense")).to_dict()
    d["name"] = "tiny_conv"
    d["layers"] = [
        {"name": "conv1", "type": "conv", "channels": 4, "kernel": 3, "padding": 1, "clip": True},
        {"name": "pool1", "type": "pool", "size": 2},
        {"name": "conv2", "type": "conv", "channels": 6, "kernel": 3, "padding": 1, "spines": True, "clip": True,
         "prune": True, "rho0": 35.0, "theta_dead": 5.0, "regen_streak": 1, "neurotrophic": "last"},
        {"name": "pool2", "type": "pool", "size": 2},
        {"name": "out", "type": "dense", "units": 10, "clip": True},
    ]
    d["schedule"].update(schedule)
    return config_from_dict(d, source="tiny_conv.toml")


@pytest.fixture(scope="module")
def conv_run(tmp_path_factory):
    from sdsnn_bio.loop import Development

    out = tmp_path_factory.mktemp("conv") / "full"
    summary = Development(tiny_conv(), out, device="cpp_standalone").run()
    return out, summary


@pytest.mark.standalone
@pytest.mark.slow
def test_a_convolutional_run_prunes_channels_and_records_its_kernel(conv_run):
    from sdsnn_bio.history import History
    from sdsnn_bio.records import RunFolder, read_table

    out, summary = conv_run
    t = read_table(out)
    cfg = tiny_conv()
    st = {s.name: s for s in stage_geometry(cfg)}
    snap = RunFolder(out).load_snapshot("last").arrays
    conn = snap["conv2/syn/connected"]
    # the kernel's state is what the run carries: one value per kernel weight
    assert conn.shape == (6 * 4 * 9,) and snap["conv2/syn/w"].shape == (6 * 4 * 9,)
    assert snap["conv2/group/b"].shape == (6,) and snap["conv1/syn/w"].shape == (4 * 9,)
    pruned = snap["conv2/group/pruned"] > 0
    assert 0 < pruned.sum() < 6, "the run must prune some of conv2's channels, not all"
    # a pruned channel's kernel weights are masked (input channel x channel x 3 x 3)
    np.testing.assert_array_equal(conn.reshape(4, 6, 9)[:, pruned], 0)
    # alive channels and compression, as the records state them, from the kernel
    alive = np.bincount(st["conv2"].post_index, weights=conn, minlength=6) >= 5.0
    assert t["alive_conv2"][-1] == alive.sum() == summary["alive_conv2"]
    weights = {n: snap[f"{n}/syn/connected"] for n in ("conv1", "conv2", "out")}
    zeros = sum((w == 0).sum() for w in weights.values())
    assert t["compression"][-1] == pytest.approx(zeros / sum(len(w) for w in weights.values()), rel=1e-6)
    # the history shows the positions' synapses, each with its kernel weight's values
    h = History(out)
    ls = h.structure_at(h.periods[-1])["conv2"]
    P = st["conv2"].positions
    np.testing.assert_array_equal(ls.i, P.pre_index)
    np.testing.assert_array_equal(ls.kernel_index, P.weight_index)
    np.testing.assert_array_equal(ls.connected, conn[P.weight_index] > 0)
    np.testing.assert_array_equal(ls.unit_of_post, P.channel)
    # ... and the kernel itself, (C_out, C_in, k, k), as the report draws it
    kernel = conn.reshape(4, 6, 3, 3).transpose(1, 0, 2, 3)
    assert ls.kernel_shape == (6, 4, 3, 3)
    np.testing.assert_array_equal(ls.kernel_values(ls.connected), kernel)
    # every synapse shows the value of the kernel element it reads
    w_kernel = ls.kernel_values(ls.w)
    np.testing.assert_array_equal(w_kernel.transpose(1, 0, 2, 3).ravel()[ls.kernel_index], ls.w)
    assert np.isfinite(w_kernel[alive]).all()
    from sdsnn_bio.report import draw_structure_figures

    figs = draw_structure_figures(out, over_periods=False)
    fig = figs[f"kernels_conv2_p{int(h.periods[-1]):04d}.png"]
    mosaic = fig.axes[0].images[0].get_array()
    assert mosaic.shape == (4 * 4 - 1, 6 * 4 - 1)                            # input channels down
    np.testing.assert_array_equal(mosaic[8:11, 4:7], kernel[1, 2])        # channel 1, input channel 2
    assert mosaic.mask[3, :].all() and mosaic.mask[:, 3].all()             # the gaps between tiles
    assert f"{int(conn.sum())} live of {conn.size} weights, {int(alive.sum())} of 6 channels alive" in \
        fig.axes[0].get_title()
    mask_title = figs[f"mask_conv2_p{int(h.periods[-1]):04d}.png"].axes[0].get_title()
    assert f"({int(conn.sum())} live of {conn.size} kernel weights)" in mask_title
    assert "kernels_out_p" not in " ".join(figs) and "kernels_conv1_p" not in " ".join(figs)   # not pruned: no history


@pytest.mark.standalone
@pytest.mark.slow
def test_a_convolutional_run_resumes_bit_for_bit(conv_run, tmp_path):
    from sdsnn_bio.devices import reset_brian
    from sdsnn_bio.loop import Development

    out, summary = conv_run
    part = tmp_path / "part"
    Development(tiny_conv(periods=5), part, device="cpp_standalone").run()
    reset_brian()
    resumed = Development(tiny_conv(), part, device="cpp_standalone").run(resume=True)
    assert_resumed_equals_uninterrupted(out, summary, part, resumed)


def assert_resumed_equals_uninterrupted(full, summary, part, resumed):
    """A run stopped and resumed (``part``) ended as the uninterrupted one (``full``): the
    per-period records, the final score and every array of the last snapshot, bit for bit."""
    from sdsnn_bio.records import RunFolder, read_table

    t_full, t_part = read_table(full), read_table(part)
    for col in ("test_accuracy", "train_loss", "compression", "alive_conv2", "rho_conv2", "sops"):
        np.testing.assert_array_equal(t_part[col], t_full[col], err_msg=col)
    assert resumed["final_test_accuracy"] == summary["final_test_accuracy"]
    a, b = RunFolder(full).load_snapshot("last"), RunFolder(part).load_snapshot("last")
    assert sorted(a.arrays) == sorted(b.arrays)
    for key in a.arrays:
        assert a.arrays[key].tobytes() == b.arrays[key].tobytes(), key


@pytest.mark.standalone
@pytest.mark.slow
def test_a_convolutional_run_in_the_parallel_form_prunes_and_resumes_bit_for_bit(tmp_path):
    """The same network with the windows of a batch at once (``training.parallel_windows``): the
    whole loop (structural decisions on the kernel, records, snapshots of the weight group)
    runs, prunes conv2's channels, and a run stopped after period 5 and resumed ends as the
    uninterrupted one, bit for bit."""
    from sdsnn_bio.devices import reset_brian
    from sdsnn_bio.loop import Development
    from sdsnn_bio.records import RunFolder, read_table

    def cfg(**schedule):
        return tiny_conv(**schedule).replace(training={"parallel_windows": True})

    full, part = tmp_path / "full", tmp_path / "part"
    summary = Development(cfg(), full, device="cpp_standalone").run()
    reset_brian()
    Development(cfg(periods=5), part, device="cpp_standalone").run()
    reset_brian()
    resumed = Development(cfg(), part, device="cpp_standalone").run(resume=True)
    t_full = read_table(full)
    assert len(t_full["period"]) == 8
    snap = RunFolder(full).load_snapshot("last").arrays
    conn = snap["conv2/syn/connected"]
    assert conn.shape == (6 * 4 * 9,)                        # the kernel, not the positions
    pruned = snap["conv2/group/pruned"] > 0
    assert 0 < pruned.sum() < 6 and t_full["alive_conv2"][-1] == 6 - pruned.sum() == summary["alive_conv2"]
    np.testing.assert_array_equal(conn.reshape(4, 6, 9)[:, pruned], 0)
    # it learns: the last period's test accuracy well above chance (10 classes)
    assert t_full["test_accuracy"][-1] >= 0.3
    assert_resumed_equals_uninterrupted(full, summary, part, resumed)


@pytest.mark.standalone
def test_result_files_are_what_the_estimate_says_and_delays_take_no_array(tmp_path):
    """A period's result files of a convolutional network (tiny_conv, cpp_standalone) against
    :func:`~sdsnn_bio.geometry.estimate_results` (the build folder's choice of memory or disk
    rests on it), and no synapses object carries a per-synapse delay array (every pathway has
    one scalar zero delay)."""
    import os

    from sdsnn_bio.geometry import estimate_results
    from sdsnn_bio.network import build_network

    cfg = tiny_conv()
    net = build_network(cfg, 0, 10, "cpp_standalone", tmp_path / "run")
    try:
        x = np.random.default_rng(0).uniform(0, 1, (10, 784))
        net.set_inputs(x, np.eye(10)[np.arange(10)])
        net.set_shared(lr=1e-3, adam_k0=0, learn_on=1, struct_on=0, hard_mask=0, bias_mask_on=0)
        net.run()
        results = net.runner._last_results
        written = sum(os.path.getsize(os.path.join(results, f)) for f in os.listdir(results))
        want = estimate_results(cfg)
        assert want > 2_000_000
        assert abs(written - want) < 0.05 * want, (written, want)
        delays = {f: os.path.getsize(os.path.join(results, f)) for f in os.listdir(results) if "_delay" in f}
        assert len(delays) >= 10 and max(delays.values()) <= 8, delays     # one value per pathway
        for obj in net.net.objects:
            for pathway in getattr(obj, "_pathways", ()):
                assert pathway.variables["delay"].size == 1, f"{obj.name}.{pathway.objname}"
    finally:
        net.close()
