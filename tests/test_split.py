"""The split form (``training.processes``): a mini-batch's windows over several processes.

With inputs that spike for sure or never (pixel values 0 and 1: no random number decides),
every process sees the spikes the sequential form would: the split form must then compute
the numpy twin's counts, weights, Adam moments and biases (to round-off: the gradient sums
are added in another order), every process must carry the same bits, and a whole run with
structural development must take the sequential run's decisions.
"""

import os
import signal
import subprocess

import numpy as np
import pytest

from sdsnn_bio.config import config_from_dict
from sdsnn_bio.errors import ConfigError, RunError
from sdsnn_bio.learning import numpy_period
from sdsnn_bio.network import NEURON_CARRY, SYNAPSE_CARRY
from sdsnn_bio.split import window_mass, window_split

from test_equivalence import conv_pool_config, learned_arrays, local_pool_config, numpy_layers

pytestmark = pytest.mark.standalone

N_TEST, N_TRAIN, BATCH = 4, 8, 4


def split_config(processes=2, network="local_pool"):
    """test_equivalence's locally connected + pooling network, its hidden layer with spines
    (``conv_pool``: its network of two convolutions, the second with spines), batches of 4
    (two windows a process)."""
    if network == "conv_pool":
        d = conv_pool_config(structural=True).to_dict()
    else:
        d = local_pool_config().to_dict()
        hid = next(layer for layer in d["layers"] if layer["name"] == "hid")
        hid.update(spines=True, clip=True, prune=True, rho0=30.0, theta_dead=2.0, regen_streak=1,
                   neurotrophic="last")
    d["training"].update(batch=BATCH, processes=processes)
    d["schedule"].update(train_per_period=N_TRAIN, test_per_period=N_TEST)
    return config_from_dict(d, source="small_split.toml")


def build_split(cfg, tmp_path):
    from sdsnn_bio import devices
    from sdsnn_bio.network import network_class

    devices.set_up_device("cpp_standalone", str(tmp_path / "build"))
    return network_class(cfg)(cfg, N_TEST, N_TRAIN, device="cpp_standalone", directory=str(tmp_path / "build"),
                              seed=3)


@pytest.mark.parametrize("network", ["local_pool", "conv_pool"])
def test_split_learns_like_numpy_and_processes_share_one_state(network, tmp_path):
    """Two learning periods of 0/1 inputs against the numpy twin; every carried array of
    process 1 equal, bit for bit, to process 0's; then a period of p = 0.5 inputs shows that
    process 1 draws its input noise from its own stream. ``conv_pool``: the kernels' and the
    channels' gradients summed over the processes (each process's positions see its windows)."""
    cfg = split_config(network=network)
    net = build_split(cfg, tmp_path)
    assert type(net).__name__ == "SplitSDSNNNetwork" and net.processes == 2
    assert net.n_windows == N_TEST + N_TRAIN and net.n_run_windows == (N_TEST + N_TRAIN) // 2
    layers = numpy_layers(net)
    rng = np.random.default_rng(1)
    n_win, n_in, T = N_TEST + N_TRAIN, int(np.prod(cfg.input_shape)), cfg.schedule.n_steps
    batches = N_TRAIN // BATCH
    for period in range(2):
        stim = (rng.uniform(size=(n_win, n_in)) < 0.5).astype(float)
        labels = rng.integers(0, 3, n_win)
        target = np.eye(3)[labels]
        net.set_inputs(stim, target)
        net.set_shared(lr=0.01, adam_k0=period * batches, learn_on=1, struct_on=0, hard_mask=0, bias_mask_on=0)
        counts = net.run()
        # each process ran half of the test windows and of every mini-batch
        for block in [range(N_TEST)] + [range(N_TEST + k, N_TEST + k + BATCH) for k in range(0, N_TRAIN, BATCH)]:
            owners = [sum(w in set(block) for w in idx) for idx in net.rank_windows]
            assert owners == [len(block) // 2] * 2
        spikes = np.repeat(stim[:, None, :], T, axis=1).astype(np.uint8)
        counts_np = numpy_period(cfg, layers, spikes, labels, N_TEST, 0.01, k=period * batches)
        np.testing.assert_array_equal(counts, counts_np)
        assert counts.sum() > 0
        for st, lay in zip(net.stages, layers):
            if st.kind == "pool":
                continue
            w = net.get(st.synapses, "w")
            assert np.abs(w - st.extra["w_init"]).max() > 1e-4, "the rule must change the weights"
            for var, (value, owner) in learned_arrays(st, lay).items():
                np.testing.assert_allclose(net.get(owner, var), value, rtol=1e-9,
                                           atol=1e-14 if var == "mt" else 1e-11,
                                           err_msg=f"{st.name}.{var}, period {period}")
            for owner, names in ((st.group, NEURON_CARRY), (st.synapses, SYNAPSE_CARRY)):
                for var in names:
                    np.testing.assert_array_equal(net.read(owner, var, 1), net.get(owner, var),
                                                  err_msg=f"{owner.name}.{var}: process 1 differs from 0")
    # the same image in every window, spiking with probability 0.5: the processes' input
    # spikes differ only if their random streams do
    net.set_inputs(np.full((n_win, n_in), 0.5), np.eye(3)[np.zeros(n_win, int)])
    net.set_shared(lr=0.01, adam_k0=2 * batches, learn_on=0, struct_on=0, hard_mask=0, bias_mask_on=0)
    net.run()
    per_rank = [net.read(net.input_group, "spike_total", r) for r in (0, 1)]
    assert per_rank[0].sum() > 0 and per_rank[1].sum() > 0
    assert not np.array_equal(per_rank[0], per_rank[1]), "process 1 must draw other input noise"
    spikes_in, per_stage = net.events()
    np.testing.assert_array_equal(spikes_in, per_rank[0] + per_rank[1])
    # every stage's events are its spiking neurons' (a convolution's positions), summed over the processes
    for st, events in zip(net.stages, per_stage):
        spiking = st.extra.get("positions", st.group)
        assert len(events) == len(spiking)
        np.testing.assert_array_equal(events, sum(net.read(spiking, "spike_total", r) for r in (0, 1)))
    assert all(events.sum() > 0 for events in per_stage[:1])


def binarised_tiny(processes, model="tiny_dense"):
    """tiny_dense (or test_conv's ``tiny_conv``) on 0/1 images (MNIST 5k pixels above 0.5), with
    ``processes``."""
    from dataclasses import replace

    from sdsnn_bio.config import find_model, load_config
    from sdsnn_bio.data.mnist import subset
    from sdsnn_bio.data.registry import load

    from test_conv import tiny_conv

    cfg = load_config(find_model("tiny_dense")) if model == "tiny_dense" else tiny_conv()
    cfg = cfg.replace(training={"processes": processes}, schedule={"periods": 7})
    ds = subset(load(cfg.data, cfg.source), n_train=cfg.data.n_train, n_test=cfg.data.n_test)
    return cfg, replace(ds, x_train=(ds.x_train > 0.5).astype(float), x_test=(ds.x_test > 0.5).astype(float))


@pytest.mark.parametrize("model", ["tiny_dense", "tiny_conv"])
def test_split_development_takes_the_sequential_decisions(model, tmp_path):
    """tiny_dense on 0/1 images, 7 periods (pruning from period 4), through the development
    loop: one process and two give the same per-period table (accuracies, compression, alive
    units, spikes, synaptic operations), the same masks and the weights to round-off.
    ``tiny_conv``: two convolutions, conv2 pruned by channel on its kernel's spine state."""
    from sdsnn_bio.devices import reset_brian
    from sdsnn_bio.loop import Development
    from sdsnn_bio.records import RunFolder

    pruned = "alive_fc1" if model == "tiny_dense" else "alive_conv2"
    out = {}
    for P in (1, 2):
        reset_brian()
        cfg, ds = binarised_tiny(P, model)
        dev = Development(cfg, tmp_path / f"p{P}", device="cpp_standalone", dataset=ds)
        summary = dev.run()
        out[P] = (summary, list(dev.rows), RunFolder(tmp_path / f"p{P}").load_snapshot("last").arrays)
    (s1, rows1, arr1), (s2, rows2, arr2) = out[1], out[2]
    assert len(rows1) == len(rows2) == 7
    keys = ("test_accuracy", "train_accuracy", "compression", "synapse_sparsity", pruned, "spikes", "sops")
    for r1, r2 in zip(rows1, rows2):
        assert {k: r1[k] for k in keys} == {k: r2[k] for k in keys}, r1["period"]
    assert rows1[-1]["compression"] > 0, "the run must prune"
    assert s1["final_test_accuracy"] == s2["final_test_accuracy"]
    assert sorted(arr1) == sorted(arr2)
    checked = 0
    for k in arr1:
        if k.endswith(("/w", "/b", "/mt", "/r_up", "/r_lo")):
            np.testing.assert_allclose(arr2[k], arr1[k], rtol=1e-7, atol=1e-10, err_msg=k)
            checked += 1
        elif k.endswith(("/connected", "/pruned")):
            np.testing.assert_array_equal(arr2[k], arr1[k], err_msg=k)
            checked += 1
    assert checked >= 8


def test_a_failed_process_stops_the_others_with_a_clear_error(tmp_path, monkeypatch):
    """Process 1 killed (SIGKILL) as it starts: process 0, which would wait for it at the first
    barrier, is stopped, and the run raises a RunError naming process 1 and the signal."""
    from sdsnn_bio import split

    real = subprocess.Popen

    def popen_and_kill(*args, **kw):
        # (Brian2 starts process 0 through the same module: only process 1 is killed)
        p = real(*args, **kw)
        if (kw.get("env") or {}).get(split.ENV_RANK) == "1":
            os.kill(p.pid, signal.SIGKILL)
        return p

    cfg = split_config()
    net = build_split(cfg, tmp_path)
    monkeypatch.setattr(split.subprocess, "Popen", popen_and_kill)
    rng = np.random.default_rng(0)
    net.set_inputs((rng.uniform(size=(N_TEST + N_TRAIN, 16)) < 0.5).astype(float),
                   np.eye(3)[rng.integers(0, 3, N_TEST + N_TRAIN)])
    net.set_shared(lr=0.01, adam_k0=0, learn_on=1, struct_on=0, hard_mask=0, bias_mask_on=0)
    with pytest.raises(RunError, match=r"process 1 exited with -9 \(killed by signal 9\)") as exc:
        net.run()
    assert "process 0" in str(exc.value)
    assert "another process failed" in str(exc.value)


@pytest.mark.parametrize("change,key", [
    ({"training": {"processes": 3}}, "training.processes"),           # 3 does not divide batch 4
    ({"training": {"processes": 0}}, "training.processes"),
    ({"training": {"processes": 2, "parallel_windows": True}}, "training.processes"),
])
def test_bad_split_settings_are_refused_by_the_config(change, key):
    cfg = split_config(1)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config_from_dict({**cfg.to_dict(), **{k: {**cfg.to_dict()[k], **v} for k, v in change.items()}},
                         source="bad.toml")


def test_split_refuses_other_devices_threads_and_uneven_test_windows(tmp_path, numpy_runtime):
    from sdsnn_bio import devices
    from sdsnn_bio.split import SplitSDSNNNetwork

    cfg = split_config()
    devices.set_up_device("runtime", None)
    with pytest.raises(ConfigError, match="cpp_standalone only, not 'runtime'"):
        SplitSDSNNNetwork(cfg, N_TEST, N_TRAIN, device="runtime", directory=str(tmp_path))
    devices.set_up_device("cpp_standalone", str(tmp_path / "b"), threads=2)
    with pytest.raises(ConfigError, match="one thread per process"):
        SplitSDSNNNetwork(cfg, N_TEST, N_TRAIN, device="cpp_standalone", directory=str(tmp_path / "b"))
    devices.set_up_device("cpp_standalone", str(tmp_path / "c"))
    with pytest.raises(ConfigError, match=r"test windows of a run \(6\) must fill whole mini-batches"):
        SplitSDSNNNetwork(cfg, 6, N_TRAIN, device="cpp_standalone", directory=str(tmp_path / "c"))


def test_window_split_deals_each_batch_evenly():
    rng = np.random.default_rng(4)
    n_test, n_train, B, P = 20, 40, 10, 2
    mass = rng.gamma(2.0, 50.0, n_test + n_train)
    plain = window_split(n_test, n_train, B, P)
    even = window_split(n_test, n_train, B, P, mass)
    for parts in (plain, even):
        assert sorted(np.concatenate(parts)) == list(range(n_test + n_train))
        for idx in parts:
            assert len(idx) == (n_test + n_train) // P
            # every batch contributes B/P windows to every process, in their order
            train = idx[idx >= n_test]
            assert all(np.sum((train - n_test) // B == b) == B // P for b in range(n_train // B))
            assert np.all(np.diff(idx) > 0)
    assert [list(x) for x in plain] == [list(range(0, 10)) + [20, 21, 22, 23, 24, 30, 31, 32, 33, 34,
                                                                 40, 41, 42, 43, 44, 50, 51, 52, 53, 54],
                                        list(range(10, 20)) + [25, 26, 27, 28, 29, 35, 36, 37, 38, 39,
                                                               45, 46, 47, 48, 49, 55, 56, 57, 58, 59]]

    def worst_gap(parts):
        gaps = []
        for block in [np.arange(n_test)] + [n_test + np.arange(k, k + B) for k in range(0, n_train, B)]:
            loads = [mass[np.intersect1d(idx, block)].sum() for idx in parts]
            gaps.append(abs(loads[0] - loads[1]))
        return max(gaps)
    assert worst_gap(even) < 0.5 * worst_gap(plain)
    assert [list(x) for x in window_split(n_test, n_train, B, P, mass)] == [list(x) for x in even]


def test_window_mass():
    x = np.array([[0.0, 0.5, 1.0], [0.2, 0.0, 0.0]])
    np.testing.assert_allclose(window_mass(x, per_step=False), [1.5, 0.2])
    np.testing.assert_allclose(window_mass(np.array([[-1.0, 0.0, 2.0]]), per_step=False, direct=True), [2])
    np.testing.assert_allclose(window_mass([np.arange(7), np.arange(2)], per_step=True), [7, 2])


def test_split_event_recordings_run_like_one_process(tmp_path):
    """Event recordings (one stimulus row per step, no random number) split over two processes:
    every window's output counts are one process's, in the window's place, and the input
    spikes summed over the processes are the windows' codes."""
    from sdsnn_bio.data.event_input import spike_codes, synthetic_recordings
    from sdsnn_bio.devices import reset_brian
    from sdsnn_bio.network import build_network

    from test_event_input import _cfg

    rec, _ = synthetic_recordings(2, 10, (8, 8), 3, n_events=200)
    codes = [spike_codes(r, (8, 8), 10) for r in rec]
    out = {}
    for P in (1, 2):
        reset_brian()
        cfg = _cfg(tmp_path).replace(training={"processes": P, "weight_init": 4.0})   # outputs that spike
        net = build_network(cfg, 10, 10, "cpp_standalone", str(tmp_path / f"run{P}"))
        try:
            assert net.processes == P and net.per_step
            net.set_shared(lr=0.0, adam_k0=0, learn_on=0, struct_on=0, hard_mask=0, bias_mask_on=0)
            net.set_inputs(codes, np.eye(10)[np.arange(20) % 10])
            out[P] = net.run(), net.events()[0]
        finally:
            net.close()
    assert len({tuple(c) for c in out[1][0]}) >= 10, "the windows must differ in their output"
    np.testing.assert_array_equal(out[2][0], out[1][0])
    want = np.bincount(np.concatenate(codes) % 128, minlength=128)
    np.testing.assert_array_equal(out[2][1], want)
    np.testing.assert_array_equal(out[1][1], want)


@pytest.mark.slow
def test_split_run_killed_and_resumed_ends_as_the_uninterrupted_one(tmp_path):
    """tiny_dense split over two processes through the command line: killed (SIGKILL of the
    driver) after a snapshot and resumed, it ends with the uninterrupted split run's snapshot
    arrays (bit for bit), table and accuracy."""
    from test_kill_resume import ARGS, P, cli, final_state, kill_after_snapshot

    from sdsnn_bio.records import RunFolder

    ref = tmp_path / "ref"
    r = cli(*ARGS, "--processes", "2", "--out", str(ref))
    assert r.wait(timeout=900) == 0, r.stderr.read()
    out = tmp_path / "run"
    run = RunFolder(out)
    period_s = float(np.min(RunFolder(ref).read_table()["wall_s"][1:]))
    p = cli(*ARGS, "--processes", "2", "--out", str(out))
    kill_after_snapshot(p, run, 2, 0.5 * period_s)
    assert run.snapshot_periods() and run.snapshot_periods()[-1] < P - 1
    r = cli(*ARGS, "--processes", "2", "--out", str(out), "--resume")
    assert r.wait(timeout=900) == 0, r.stderr.read()
    (period_ref, arr_ref, sum_ref), (period, arr, summ) = final_state(ref), final_state(out)
    assert period == period_ref == P - 1 and sorted(arr) == sorted(arr_ref)
    for k in arr_ref:
        assert arr[k].tobytes() == arr_ref[k].tobytes(), k
    assert summ["final_test_accuracy"] == sum_ref["final_test_accuracy"]
    t_ref, t = RunFolder(ref).read_table(), run.read_table()
    for col in ("period", "test_accuracy", "train_accuracy", "compression", "alive_fc1", "sops"):
        np.testing.assert_array_equal(t[col], t_ref[col], err_msg=col)


def test_memory_estimate_counts_every_process_and_the_shared_buffer():
    from sdsnn_bio.config import find_model, load_config
    from sdsnn_bio.geometry import estimate_memory, synapse_counts

    cfg = load_config(find_model("mnist5k_fc"))
    one, two = estimate_memory(cfg, 0), estimate_memory(cfg.replace(training={"processes": 2}), 0)
    assert two == 2 * one + 2 * 8 * 2 * sum(synapse_counts(cfg))


def test_cli_refuses_a_split_before_announcing_the_run(tmp_path, capsys):
    from sdsnn_bio.cli import main

    for extra, message in ((["--device", "runtime"], "cpp_standalone only, not 'runtime'"),
                           (["--threads", "2"], "one thread per process, not 2")):
        rc = main(["run", "tiny_dense", "--processes", "2", *extra, "--out", str(tmp_path / "o")])
        captured = capsys.readouterr()
        assert rc == 2 and message in captured.err and "training.processes = 2" in captured.err
        assert "periods ->" not in captured.out
        assert not (tmp_path / "o").exists()
