"""Event recordings as network input: binning to spikes, tonic's folder layout, and a
network that learns generated recordings whose classes differ by their event statistics.

The end-to-end run uses Brian2's runtime device with the numpy target (a tiny network,
no compilation: about 10 s); the per-step input it drives is the same TimedArray that
a standalone build takes through ``run_args``.
"""

import numpy as np
import pytest

from sdsnn_bio.config import config_from_dict
from sdsnn_bio.data import registry
from sdsnn_bio.data.event_input import (
    EventDataset, codes_to_stimulus, encode_dataset, frame_codes, input_sensor, load_dvsgesture_folder,
    load_nmnist_folder, preprocess, spike_codes, synthetic_recordings, write_dvsgesture_folder,
    write_nmnist_folder,
)
from sdsnn_bio.data.events import EVENT_DTYPE
from sdsnn_bio.errors import ConfigError, DataError


def events(rows):
    ev = np.empty(len(rows), EVENT_DTYPE)
    for k, (x, y, t, p) in enumerate(rows):
        ev[k] = (x, y, t, p)
    return ev


def test_spike_codes_bin_the_span_into_steps():
    # sensor 3 x 2 (w x h): 12 inputs; span 0..999 µs into 4 steps of 250 µs
    ev = events([(0, 0, 0, 0), (2, 1, 249, 1), (2, 1, 250, 1), (2, 1, 260, 1), (1, 0, 999, 0)])
    codes = spike_codes(ev, (3, 2), 4)
    n_in = 12
    want = sorted([0 * n_in + 0,                      # x0 y0 p0 at step 0
                   0 * n_in + (1 * 2 + 1) * 3 + 2,     # x2 y1 p1 at step 0
                   1 * n_in + (1 * 2 + 1) * 3 + 2,     # two events of one pixel in step 1: one spike
                   3 * n_in + 1])                      # x1 y0 p0 at the last step
    np.testing.assert_array_equal(codes, want)
    stim = codes_to_stimulus([codes, codes[:1]], n_in, 4)
    assert stim.shape == (8, n_in) and stim.sum() == 5
    assert stim[1, 11] == 1 and stim[3, 1] == 1 and stim[4, 0] == 1
    with pytest.raises(DataError, match="window 0"):
        codes_to_stimulus([np.array([48])], n_in, 4)


def test_frame_codes_follow_equal_event_counts():
    # 4 events, 2 frames of 2 events each, whatever their times
    ev = events([(0, 0, 0, 0), (1, 0, 1, 0), (1, 0, 2, 0), (0, 1, 900, 1)])
    codes = frame_codes(ev, (2, 2), 2)
    np.testing.assert_array_equal(codes, [0, 1, 8 + 1, 8 + 4 + 2])
    # a pixel's events in one frame: its count, the current the network receives
    ev = events([(1, 1, 0, 1), (1, 1, 5, 1), (0, 0, 6, 0), (1, 1, 9, 1)])
    codes = frame_codes(ev, (2, 2), 1)
    np.testing.assert_array_equal(codes, [0, 7, 7, 7])
    np.testing.assert_array_equal(codes_to_stimulus([codes], 8, 1), [[1, 0, 0, 0, 0, 0, 0, 3]])


def test_preprocess_crop_downsample_denoise():
    ev = events([(0, 5, 0, 0), (1, 1, 10, 1), (5, 6, 20, 0), (33, 2, 30, 1), (32, 32, 40, 0)])
    out = preprocess(ev, (34, 34), crop=1, downsample=4)
    # x 0 and 33 are cut by the 1-pixel border crop; the rest shift by one and divide by 4
    np.testing.assert_array_equal(out["x"], [0, 1, 7])
    np.testing.assert_array_equal(out["y"], [0, 1, 7])
    np.testing.assert_array_equal(out["t"], [10, 20, 40])
    assert input_sensor((34, 34), 1, 4) == (8, 8)
    # Denoise keeps an event only with a neighbour's event within denoise_us before it
    # (tonic lets every event of the first denoise_us through)
    close = events([(5, 5, 1000, 0), (6, 5, 1005, 0), (20, 20, 1010, 0)])
    np.testing.assert_array_equal(preprocess(close, (34, 34), denoise_us=100)["x"], [6])


def test_tonic_layout_read_through_tonic_and_validated(tmp_path):
    rec, y = synthetic_recordings(2, 3, (34, 34), 0, n_events=50)
    write_nmnist_folder(tmp_path, rec, y, rec[:3], y[:3])
    ds = load_nmnist_folder(tmp_path)
    assert ds.sensor == (34, 34) and ds.image_shape == (2, 34, 34)
    # tonic's order: folders 0, 1, 2 sorted, files sorted; labels from the folder name
    np.testing.assert_array_equal(ds.y_train, y)
    for got, want in zip(ds.train, rec):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(ds.y_test, y[:3])
    # DVS-Gesture: tonic's user folders, label from the file name, t in ms on disk
    recs = [r.copy() for r in rec[:3]]
    for r in recs:
        r["t"] = r["t"] // 1000 * 1000
    write_dvsgesture_folder(tmp_path, recs, np.array([4, 10, 7]), recs[:1], np.array([2]))
    g = load_dvsgesture_folder(tmp_path)
    assert sorted(g.y_train.tolist()) == [4, 7, 10] and g.n_classes == 11
    for lab, ev in zip(g.y_train, g.train):
        np.testing.assert_array_equal(ev, recs[[4, 10, 7].index(lab)])
    # a malformed file is the project's error naming it
    bad = tmp_path / "NMNIST" / "Train" / "1" / "00009.bin"
    bad.write_bytes(b"\x00\x01\x02")
    with pytest.raises(DataError, match="00009.bin"):
        load_nmnist_folder(tmp_path)
    with pytest.raises(DataError, match="no NMNIST/ folder"):
        load_nmnist_folder(tmp_path / "nowhere")


def test_folder_is_read_lazily_and_encoded_compactly(tmp_path):
    """The loader keeps paths, not events; encoding streams one recording at a time into one
    int32 array per split: its peak allocation is a fraction of the events' 32 bytes each."""
    import tracemalloc

    from sdsnn_bio.data.event_input import Recordings, SpikeCodes, event_subset
    from sdsnn_bio.data.events import read_nmnist_bin

    rec, y = synthetic_recordings(6, 10, (34, 34), 7, n_events=4000)
    rt, yt = synthetic_recordings(1, 10, (34, 34), 8, n_events=4000)
    write_nmnist_folder(tmp_path, rec, y, rt, yt)
    n_events = sum(r.size for r in rec) + sum(r.size for r in rt)
    load_nmnist_folder(tmp_path, crop=1).train[0]   # tonic's modules imported outside the trace
    tracemalloc.start()
    try:   # loading and encoding together: under half of the events at 32 bytes each (codes: 4 bytes)
        ds = load_nmnist_folder(tmp_path, crop=1)
        x_train, x_test = encode_dataset(ds, 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.5 * 32 * n_events, (peak, n_events)
    assert isinstance(ds.train, Recordings) and isinstance(ds.test, Recordings)
    assert len(ds.train) == 60 and ds.sensor == (32, 32)
    # item i is the file read and preprocessed now, event by event what the eager reader gave
    np.testing.assert_array_equal(ds.train[5], preprocess(read_nmnist_bin(ds.train.paths[5]), (34, 34), crop=1))
    sub = event_subset(ds, n_train=20, n_test=10)
    assert isinstance(sub.train, Recordings) and len(sub.train) == 20
    first = ds.train.paths.index(sub.train.paths[0])
    np.testing.assert_array_equal(sub.train[0], ds.train[first])
    np.testing.assert_array_equal(sub.y_train, ds.y_train[[ds.train.paths.index(p) for p in sub.train.paths]])
    assert isinstance(x_train, SpikeCodes) and len(x_train) == 60 and len(x_test) == 10
    assert x_train.codes.dtype == np.int32 and x_train.nbytes == 4 * x_train.codes.size + 8 * 61
    # window k is spike_codes of recording k; an index array gives an object array of windows
    for k in (0, 17, 59):
        np.testing.assert_array_equal(x_train[k], spike_codes(ds.train[k], (32, 32), 20))
    picked = x_train[np.array([3, 0, 3])]
    assert picked.dtype == object and len(picked) == 3
    np.testing.assert_array_equal(picked[0], x_train[3])
    both = np.concatenate([x_test[np.arange(2)], x_train[np.arange(1)]])
    np.testing.assert_array_equal(both[2], x_train[0])
    with pytest.raises(DataError, match="offsets"):
        SpikeCodes(np.zeros(3, np.int32), np.array([0, 2]))


def _cfg(root, **data):
    return config_from_dict({
        "name": "nmnist_tiny", "input_shape": [2, 8, 8],
        "data": {"dataset": "nmnist", "directory": str(root), "crop": 1, "downsample": 4, **data},
        "layers": [{"name": "fc1", "type": "dense", "units": 30, "spines": True, "clip": True, "prune": True,
                    "rho0": 35.0, "theta_dead": 20.0, "regen_q0": 60.0, "regen_streak": 1,
                    "neurotrophic": "last"},
                   {"name": "out", "type": "dense", "units": 10, "clip": True}],
        "training": {"lr": 3e-3, "batch": 10},
        "schedule": {"periods": 8, "train_per_period": 40, "test_per_period": 40, "n_steps": 10,
                     "spine_streak": 2, "structure_start": 4},
        "structure": {"rate_switch": 6},
    }, source="nmnist_tiny.toml", check_data=True)


def test_event_config_checks_the_input_grid(tmp_path):
    with pytest.raises(ConfigError, match=r"must be \[2, 8, 8\].*crop and data.downsample"):
        config_from_dict({**_cfg(tmp_path).to_dict(), "input_shape": [2, 32, 32]}, source="m.toml",
                         check_data=True)
    with pytest.raises(ConfigError, match="data.event_coding"):
        _cfg(tmp_path, event_coding="voxels")


def test_network_learns_generated_recordings(tmp_path, numpy_runtime):
    from sdsnn_bio.loop import Development

    # 4 classes that differ by where their events fall and by their polarity
    rec, y = synthetic_recordings(20, 4, (34, 34), 0, n_events=300)
    rt, yt = synthetic_recordings(10, 4, (34, 34), 1, n_events=300)
    write_nmnist_folder(tmp_path / "data", rec, y, rt, yt)
    cfg = _cfg(tmp_path / "data")
    # the registry reads them through tonic's layout onto the 8 x 8 grid
    ds = registry.load(cfg.data, cfg.source)
    assert isinstance(ds, EventDataset) and ds.image_shape == (2, 8, 8) and len(ds.train) == 80
    x_train, _ = encode_dataset(ds, 10)
    # what the network receives is what the events say: sample 0's first code
    first = preprocess(rec[0], (34, 34), crop=1, downsample=4)
    np.testing.assert_array_equal(x_train[0], spike_codes(first, (8, 8), 10))

    summary = Development(cfg, tmp_path / "run", device="runtime").run()
    # chance is 25 %: the network tells the classes apart from their events
    assert summary["final_test_accuracy"] >= 0.75, summary
    # pruning happened on the event network
    assert summary["compression"] > 0.1


def test_scaled_nmnist_network_stays_active_after_the_first_period(tmp_path, numpy_runtime, monkeypatch):
    """nmnist_main's layer sequence (conv - pool - conv - pool - dense - dense, T = 20, its
    constants and no regeneration), scaled down (8 and 20 channels, 30 units, the 32 x 32 input
    downsampled to 16 x 16), on generated recordings of N-MNIST's size (4000 events over 300 ms
    on the 34 x 34 sensor, the 1-pixel border cropped). With the spec's initialisation the
    layers behind conv1 start almost silent on event input and wake up through the Adam steps
    of the first period; with nmnist_main's 50 steps a period (here 50 windows of batch 1) every
    layer spikes in every period from period 1 on (README, event input). About 25 s."""
    from sdsnn_bio.config import find_model, load_config
    from sdsnn_bio.loop import Development

    main = load_config(find_model("nmnist_main"))
    sch = main.schedule
    assert sch.train_per_period // main.training.batch == 50 and sch.n_steps == 20
    d = main.to_dict()
    d.update(name="nmnist_scaled", input_shape=[2, 16, 16])
    d["data"].update(directory="unused", downsample=2)
    size = {"conv1": 8, "conv2": 20, "fc1": 30}
    for layer in d["layers"]:
        if layer["name"] in size:
            layer["channels" if layer["type"] in ("local", "conv") else "units"] = size[layer["name"]]
    d["training"]["batch"] = 1
    d["schedule"].update(periods=3, train_per_period=50, test_per_period=10, spine_streak=1, structure_start=2)
    cfg = config_from_dict(d, source="nmnist_scaled.toml")
    assert [lay.type for lay in cfg.layers] == [lay.type for lay in main.layers]

    def recordings(seed, n):
        rec, y = synthetic_recordings(n, 4, (34, 34), seed, n_events=4000, duration_us=300_000)
        return tuple(preprocess(r, (34, 34), crop=1, downsample=2) for r in rec), y

    (train, y_train), (test, y_test) = recordings(0, 13), recordings(1, 3)
    ds = EventDataset(train=train, y_train=y_train, test=test, y_test=y_test, sensor=(16, 16), name="nmnist",
                      classes=tuple(str(i) for i in range(10)))
    per_period = []
    check = Development._check_health

    def record(self, e):
        _, events = self.net.events()
        per_period.append({st.name: int(ev.sum()) for st, ev in zip(self.net.stages, events)
                           if st.kind == "spiking"})
        return check(self, e)

    monkeypatch.setattr(Development, "_check_health", record)
    summary = Development(cfg, tmp_path / "run", device="runtime", dataset=ds).run()
    assert len(per_period) == 3 and set(per_period[0]) == {"conv1", "conv2", "fc1", "fc2"}
    for e, counts in enumerate(per_period[1:], start=1):
        silent = [name for name, n in counts.items() if n == 0]
        assert not silent, f"period {e}: layers {silent} silent ({per_period})"
    assert summary["periods"] == 3


def test_network_learns_generated_dvsgesture_recordings(tmp_path, numpy_runtime):
    """The same through tonic's DVS-Gesture layout: 128x128 recordings of 6 s (whole ms, as
    tonic's .npy files store ms), downsampled by 16 onto 8 x 8, 11 output units."""
    from sdsnn_bio.loop import Development

    def whole_ms(recs):
        for r in recs:
            r["t"] = r["t"] // 1000 * 1000
        return recs

    rec, y = synthetic_recordings(20, 4, (128, 128), 5, n_events=300, duration_us=6_000_000)
    rt, yt = synthetic_recordings(10, 4, (128, 128), 6, n_events=300, duration_us=6_000_000)
    write_dvsgesture_folder(tmp_path / "data", whole_ms(rec), y, whole_ms(rt), yt)
    d = _cfg(tmp_path / "data").to_dict()
    d["data"].update(dataset="dvsgesture", crop=0, downsample=16)
    d["layers"][-1]["units"] = 11
    cfg = config_from_dict(d, source="dvs_tiny.toml", check_data=True)
    summary = Development(cfg, tmp_path / "run", device="runtime").run()
    assert summary["final_test_accuracy"] >= 0.75, summary


def test_input_spikes_are_the_codes(tmp_path, numpy_runtime):
    """One period: every input neuron spikes exactly where the windows' codes say."""
    from sdsnn_bio.network import build_network

    cfg = _cfg(tmp_path)
    rec, _ = synthetic_recordings(2, 10, (8, 8), 3, n_events=200)
    codes = [spike_codes(r, (8, 8), 10) for r in rec]
    net = build_network(cfg, 10, 10, "runtime", str(tmp_path / "run"))
    try:
        net.set_shared(lr=0.0, adam_k0=0, learn_on=0, struct_on=0, hard_mask=0, bias_mask_on=0)
        net.set_inputs(codes, np.eye(10)[np.arange(20) % 10])
        net.run()
        per_input = net.events()[0]
    finally:
        net.close()
    want = np.bincount(np.concatenate(codes) % 128, minlength=128)
    np.testing.assert_array_equal(per_input, want)


def test_frames_drive_the_input_as_current(tmp_path, numpy_runtime):
    """event_coding = "frames": a pixel with events in a frame is an input event in that step,
    and its window sum (the gradient's rate) is its event count."""
    from sdsnn_bio.network import build_network

    cfg = _cfg(tmp_path, event_coding="frames")
    rec, _ = synthetic_recordings(2, 10, (8, 8), 4, n_events=200)
    codes = [frame_codes(r, (8, 8), 10) for r in rec]
    net = build_network(cfg, 10, 10, "runtime", str(tmp_path / "run"))
    try:
        assert net.direct and net.per_step
        net.set_shared(lr=0.0, adam_k0=0, learn_on=0, struct_on=0, hard_mask=0, bias_mask_on=0)
        net.set_inputs(codes, np.eye(10)[np.arange(20) % 10])
        net.run()
        per_input = net.events()[0]
    finally:
        net.close()
    # events: one per (frame, pixel) with a count; the counts sum to the recordings' events
    want = np.bincount(np.concatenate([np.unique(c) for c in codes]) % 128, minlength=128)
    np.testing.assert_array_equal(per_input, want)
    assert sum(len(c) for c in codes) == 20 * 200


@pytest.mark.parametrize("name, shape, T, fc1_in, classes, rho0, regen", [
    ("nmnist_main", [2, 32, 32], 20, 40 * 8 * 8, 10, (5.0, 45.0), False),
    ("dvsgesture_main", [2, 128, 128], 64, 40 * 32 * 32, 11, (5.0, 60.0), True),
])
def test_shipped_event_models_have_the_paper_shapes(name, shape, T, fc1_in, classes, rho0, regen):
    """Spec section 3.1: conv 15 - pool - conv 40 - pool - 300 - K, its T, rates and regeneration."""
    from sdsnn_bio.config import find_model, load_config
    from sdsnn_bio.geometry import layer_shapes

    cfg = load_config(find_model(name))
    assert list(cfg.input_shape) == shape and cfg.schedule.n_steps == T
    assert registry.get(cfg.data.dataset).events
    shapes = layer_shapes(cfg)
    assert int(np.prod(shapes[4])) == fc1_in and shapes[-1] == (classes,)
    assert [lay.channels or lay.units for lay in cfg.layers if lay.type != "pool"] == [15, 40, 300, classes]
    assert tuple(lay.rho0 for lay in cfg.layers if lay.prune) == rho0
    assert cfg.structure.regeneration is regen


def test_memory_estimate_counts_the_per_step_input(tmp_path):
    """An event model's stimulus has one row per time step (T times an image model's rows), of
    packed bits for spikes (128 inputs: 3 columns of 52 bits) and of one value an input for frames."""
    from sdsnn_bio.geometry import estimate_memory

    cfg = _cfg(tmp_path)
    frames = _cfg(tmp_path, event_coding="frames")
    as_images = config_from_dict({**cfg.to_dict(), "data": {"dataset": "mnist5k"}, "input_shape": [1, 28, 28]},
                                 source="m.toml")
    shapes_only = estimate_memory(cfg, 0)
    assert shapes_only == estimate_memory(frames, 0)
    assert estimate_memory(cfg, 1000) - shapes_only == 1000 * 3 * 8 * (3 * 10 + 10)
    assert estimate_memory(frames, 1000) - shapes_only == 1000 * 3 * 8 * (128 * 10 + 10)
    assert estimate_memory(as_images, 1000) - estimate_memory(as_images, 0) == 3 * 8 * 1000 * (784 + 10)


@pytest.mark.parametrize("n_inputs", [1, 52, 53, 2 * 34 * 34, 2 * 128 * 128])
def test_packed_stimulus_holds_every_spike_and_no_other(n_inputs):
    """pack_codes: decoded with the input group's own test (``v % (2 * bit) >= bit`` in float64),
    every (step, input) of every window is a spike exactly where codes_to_stimulus has one (a code
    given twice is one spike), whatever the input's bit (0 to 51) and column; every value is an
    integer below 2**52."""
    from sdsnn_bio.data.event_input import STIM_BITS, pack_codes, stim_words

    T = 6
    rng = np.random.default_rng(n_inputs)
    windows = [rng.integers(0, T * n_inputs, size=rng.integers(0, 3 * n_inputs)) for _ in range(4)]
    windows.append(np.arange(T * n_inputs))                    # every input in every step
    windows.append(np.array([], np.int64))                     # a silent window
    packed = pack_codes(windows, n_inputs, T)
    assert packed.shape == (len(windows) * T, stim_words(n_inputs)) == (len(windows) * T, -(-n_inputs // 52))
    assert packed.dtype == np.float64 and np.all(packed == np.floor(packed)) and packed.max() < 2.0 ** 52
    i = np.arange(n_inputs)
    bit = np.ldexp(1.0, i % STIM_BITS)
    decoded = packed[:, i // STIM_BITS] % (2 * bit) >= bit
    np.testing.assert_array_equal(decoded, codes_to_stimulus(windows, n_inputs, T) > 0.5)
    assert decoded[-2 * T:-T].all() and not decoded[-T:].any()
    with pytest.raises(DataError, match=f"window 1: spike codes must lie in 0..{T * n_inputs - 1}"):
        pack_codes([np.array([0]), np.array([T * n_inputs])], n_inputs, T)


def test_event_memory_command_measures_the_real_load(tmp_path):
    """python -m sdsnn_bio.data.event_memory (the README's memory figures): it loads the
    recordings it wrote through the registry in a fresh interpreter; its counts are those of
    the same load done here."""
    from sdsnn_bio.config import DataSpec
    from sdsnn_bio.data.event_memory import main, write_recordings

    assert write_recordings(tmp_path, 20, 10, n_events=300) == 30 * 300
    res = main([str(tmp_path)])
    x_train, x_test = encode_dataset(registry.load(DataSpec(dataset="nmnist", directory=str(tmp_path), crop=1)), 20)
    assert res["recordings"] == 30 == len(x_train) + len(x_test)
    assert res["codes_bytes"] == x_train.nbytes + x_test.nbytes
    assert res["peak_rss"] >= res["baseline_rss"] > 0


def test_copies_in_one_build_each_get_their_own_events(tmp_path, numpy_runtime):
    """Fused copies (sdsnn_bio.multi) of an event model: the per-step stimulus has a column block
    per copy, and every copy's input spikes exactly where its own codes say (runtime device: the
    copies' values are applied to their blocks at once)."""
    from sdsnn_bio import devices
    from sdsnn_bio.multi import MultiSDSNNNetwork, expand_sets

    cfgs = expand_sets(_cfg(tmp_path), 2, ["training.lr=0.001,0.002"])
    devices.set_up_device("runtime", str(tmp_path / "b"))
    net = MultiSDSNNNetwork(cfgs, 10, 10, "runtime", str(tmp_path / "b"))
    codes = {}
    for k, view in enumerate(net.copies):
        rec, _ = synthetic_recordings(2, 10, (8, 8), 10 + k, n_events=150 + 50 * k)
        codes[k] = [spike_codes(r, (8, 8), 10) for r in rec]
        view.set_shared(lr=0.0, adam_k0=0, learn_on=0, struct_on=0, hard_mask=0, bias_mask_on=0)
        view.set_inputs(codes[k], np.eye(10)[np.arange(20) % 10])
    net.run_all()
    for k, view in enumerate(net.copies):
        want = np.bincount(np.concatenate(codes[k]) % 128, minlength=128)
        np.testing.assert_array_equal(view.events()[0], want, err_msg=f"copy {k}")
    assert not np.array_equal(net.copies[0].events()[0], net.copies[1].events()[0])
    devices.reset_brian()


def test_generated_recordings_of_dvsgesture_size_read_back(tmp_path):
    """The benchmark's DVS-Gesture recordings (benchmarks/event_speed.py): tonic's layout, 11
    classes over 6 s on the 128 x 128 sensor, whole-millisecond times, read back through the
    registry with every event."""
    from sdsnn_bio.config import DataSpec
    from sdsnn_bio.data.event_memory import write_recordings

    assert write_recordings(tmp_path, 22, 11, n_events=200, dataset="dvsgesture") == 33 * 200
    ds = registry.load(DataSpec(dataset="dvsgesture", directory=str(tmp_path)), "dvs.toml")
    assert len(ds.train) == 22 and len(ds.test) == 11 and ds.sensor == (128, 128)
    assert sorted(ds.y_train) == sorted(list(range(11)) * 2) and sorted(ds.y_test) == list(range(11))
    for rec in list(ds.train) + list(ds.test):
        assert rec.size == 200
        assert np.all(rec["t"] % 1000 == 0) and 0 <= rec["t"].min() and rec["t"].max() < 6_000_000
        assert rec["x"].max() < 128 and rec["y"].max() < 128
