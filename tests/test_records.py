"""Run records (sdsnn_bio.records): exact compact snapshots, retention, atomic files, table, TOML."""

import os
import tomllib

import numpy as np
import pytest

from sdsnn_bio.config import find_model, load_config
from sdsnn_bio.records import RunFolder, decode_array, encode_array


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return (a.dtype == b.dtype and a.shape == b.shape
            and np.ascontiguousarray(a).view(np.uint8).tobytes() == np.ascontiguousarray(b).view(np.uint8).tobytes())


def round_trip(a):
    parts, spec = encode_array(a)
    return decode_array(spec, parts), spec, sum(p.nbytes for p in parts.values())


rng = np.random.default_rng(1)
N = 50_000
CASES = {
    "mask_f8": ((rng.random(N) < 0.7).astype(float), "bits"),
    "all_zero": (np.zeros(N), "bits"),
    "all_one": (np.ones(N), "bits"),
    "counter_f8": (np.where(rng.random(N) < 0.2, rng.integers(1, 19, N), 0).astype(float), "int"),
    "counter_wide": (rng.integers(0, 1000, N).astype(float), "int"),
    "negative_int": (rng.integers(-5, 6, N).astype(float), "int"),
    "int32": (rng.integers(-300, 300, N).astype(np.int32), "int"),
    "bool": (rng.random(N) < 0.5, "bits"),
    "sparse_f8": (np.where(rng.random(N) < 0.01, rng.normal(size=N), 0.0), "sparse"),
    "palette_f8": (rng.choice(rng.normal(size=300), N), "palette"),
    "two_values": (rng.choice([0.25, -1.5], N), "palette"),
    "dense_f8": (rng.normal(size=N), "raw"),
    "float32": (rng.normal(size=N).astype(np.float32), "raw"),
    "2d_mask": ((rng.random((200, 250)) < 0.3).astype(float), "bits"),
    "2d_dense": (rng.normal(size=(200, 250)), "raw"),
    "empty": (np.zeros(0), "raw"),
    "empty_2d": (np.zeros((0, 3), np.int32), "raw"),
    "scalar": (np.array(3.5), "raw"),
    "short": (np.array([0.0, 1.0, 1.0]), None),
    "uint64_big": (np.array([0, 2 ** 63, 5], np.uint64), None),
    "float16_int": (rng.integers(0, 200, N).astype(np.float16), "int"),   # the history's unit summaries
    "float16": (rng.normal(size=N).astype(np.float16), None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_encoding_round_trips_bit_exactly(name):
    a, kind = CASES[name]
    back, spec, nbytes = round_trip(a)
    assert same_bits(back, a), name
    if kind is not None:
        assert spec["enc"] == kind
    if kind not in ("raw", None):
        assert nbytes < a.nbytes


def test_float16_arrays_encode_without_overflow_warnings():
    """Checking whether a float16 array's values fit a small integer type compared them in
    float16, where 65535 overflows: every run that recorded a history warned."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for a in (CASES["float16"][0], CASES["float16_int"][0], np.array([np.inf, 1.0], np.float16)):
            assert same_bits(round_trip(a)[0], a)


def test_negative_zero_and_nan_payloads_are_kept():
    a = np.zeros(20_000)
    a[5] = -0.0
    a[7] = 1.0
    back, spec, _ = round_trip(a)                    # not a 0/1 mask: -0.0 is no +0.0
    assert same_bits(back, a) and np.signbit(back[5]) and spec["enc"] != "bits"
    weird_nan = np.frombuffer(np.uint64(0x7FF8_0000_0000_0123).tobytes(), np.float64)[0]
    b = np.zeros(20_000)
    b[[3, 9]] = [weird_nan, -np.inf]
    back, spec, _ = round_trip(b)
    assert same_bits(back, b) and spec["enc"] == "sparse"
    c = rng.choice([0.0, -0.0, 1.0, 2.0], 20_000)    # integer-valued but for the sign of zero
    back, spec, _ = round_trip(c)
    assert same_bits(back, c) and spec["enc"] == "palette"
    d = np.where(rng.random(20_000) < 0.5, weird_nan, 0.5)
    back, spec, _ = round_trip(d)
    assert same_bits(back, d)


def test_fortran_and_strided_arrays():
    a = np.asfortranarray((rng.random((300, 200)) < 0.5).astype(float))
    back, _, _ = round_trip(a)
    assert np.array_equal(back, a) and back.shape == a.shape and back.dtype == a.dtype
    s = rng.normal(size=(1000,))[::3]
    back, _, _ = round_trip(s)
    assert np.array_equal(back, s)


def synapse_state(n, seed=0):
    """A realistic SD-SNN synapse state (all float64 as the network holds it)."""
    r = np.random.default_rng(seed)
    conn = (r.random(n) < 0.7).astype(float)
    w = r.normal(0, 0.03, n) * conn

    def counter(p, k):
        return np.where(r.random(n) < p, r.integers(1, k, n), 0).astype(float)

    def flag(p):
        return (r.random(n) < p).astype(float)

    s_up = np.where(r.random(n) < 0.01, r.random(n) * 0.01, 0.0)
    s_up[r.random(n) < 0.002] = -0.0          # (s + w - r) * 0 gives -0.0 in the network
    s_lo = np.where(r.random(n) < 0.01, -r.random(n) * 0.01, 0.0)
    return {
        "w": w, "mt": r.normal(0, 1e-3, n) * conn, "vt": r.random(n) * 1e-6 * conn,
        "r_up": 0.05 + r.random(n) * 0.02, "r_lo": -0.05 - r.random(n) * 0.02, "a_prev": np.abs(w),
        "s_up": s_up, "s_lo": s_lo,
        "c_up": counter(0.05, 19), "c_lo": counter(0.05, 19), "c_ret": counter(0.2, 19),
        "regen_k": counter(0.05, 11),
        "connected": conn, "prev_up": flag(0.05), "prev_lo": flag(0.05), "prev_ret": flag(0.3),
        "regen_prev": flag(0.1),
    }


def test_synapse_state_snapshot_is_compact_and_exact(tmp_path):
    n = 200_000
    state = {f"fc1/syn/{k}": v for k, v in synapse_state(n).items()}
    assert len(state) == 17
    run = RunFolder(tmp_path)
    path = run.save_snapshot(0, state, {"period": 0, "note": "x"})
    assert path.stat().st_size <= 70 * n, path.stat().st_size / n
    snap = run.load_snapshot("last")
    assert snap.period == 0 and snap.meta == {"period": 0, "note": "x"}
    assert set(snap.arrays) == set(state)
    for k, v in state.items():
        assert same_bits(snap.arrays[k], v), k
    part = run.load_snapshot(0, keys=["fc1/syn/connected"])
    assert list(part.arrays) == ["fc1/syn/connected"]


def test_retention_keeps_the_newest_and_the_best(tmp_path):
    run = RunFolder(tmp_path / "run")
    arrays = {"a/syn/w": rng.normal(size=1000), "a/syn/connected": np.ones(1000)}
    for e in range(5):
        run.save_snapshot(e, dict(arrays, **{"a/syn/c": np.full(1000, float(e))}), {"period": e})
        if e == 1:
            run.mark_best(1)
    assert run.snapshot_periods() == [4]
    assert sorted(p.name for p in run.snapshots.iterdir()) == ["best.npz", "period_0004.npz"]
    best = run.load_snapshot("best")
    assert best.period == 1 and np.all(best.arrays["a/syn/c"] == 1.0)
    # keep=2 keeps two period snapshots
    run.save_snapshot(5, arrays, {}, keep=2)
    assert run.snapshot_periods() == [4, 5]


def test_best_is_a_hard_link_and_is_replaced_atomically(tmp_path):
    run = RunFolder(tmp_path)
    run.save_snapshot(3, {"x": np.arange(10.0)}, {"period": 3})
    run.mark_best(3)
    assert os.path.samefile(run.snapshot_path(3), run.snapshot_path("best"))
    run.mark_best(3)                        # again: nothing changes, no temporary file stays
    run.save_snapshot(4, {"x": np.arange(10.0) + 1}, {"period": 4})
    run.mark_best(4)
    assert os.path.samefile(run.snapshot_path(4), run.snapshot_path("best"))
    assert sorted(p.name for p in run.snapshots.iterdir()) == ["best.npz", "period_0004.npz"]
    with pytest.raises(FileNotFoundError):
        run.mark_best(2)


def test_best_is_copied_where_links_fail(tmp_path, monkeypatch):
    run = RunFolder(tmp_path)
    run.save_snapshot(1, {"x": np.arange(10.0)}, {"period": 1})

    def no_link(src, dst):
        raise OSError("links not supported")

    monkeypatch.setattr(os, "link", no_link)
    run.mark_best(1)
    assert not os.path.samefile(run.snapshot_path(1), run.snapshot_path("best"))
    assert run.snapshot_path(1).read_bytes() == run.snapshot_path("best").read_bytes()
    assert run.load_snapshot("best").period == 1
    assert sorted(p.name for p in run.snapshots.iterdir()) == ["best.npz", "period_0001.npz"]


def test_leftover_temporary_files_are_never_snapshots_and_are_cleaned(tmp_path):
    run = RunFolder(tmp_path)
    run.save_snapshot(2, {"x": np.ones(5)}, {"period": 2})
    # what a writer killed mid-way leaves behind
    (run.snapshots / ".period_0003.npz.tmp").write_bytes(b"PK\x03\x04 partial")
    (run.snapshots / ".best.npz.tmp").write_bytes(b"")
    (run.path / "periods.csv.tmp").write_text("period,test")
    assert run.snapshot_periods() == [2]
    assert run.load_snapshot("last").period == 2
    removed = run.clean_temporary()
    assert sorted(p.name for p in removed) == [".best.npz.tmp", ".period_0003.npz.tmp", "periods.csv.tmp"]
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert run.snapshot_periods() == [2]


def test_old_raw_snapshots_still_load(tmp_path):
    """A snapshot written before the compact format (np.savez of raw arrays and __meta__)."""
    run = RunFolder(tmp_path)
    run.create()
    w = rng.normal(size=100)
    meta = np.frombuffer(b'{"period": 7, "rows": []}', np.uint8)
    np.savez(run.snapshot_path(7), __meta__=meta, **{"fc1/syn/w": w})
    snap = run.load_snapshot("last")
    assert snap.period == 7 and same_bits(snap.arrays["fc1/syn/w"], w)


def test_table_bytes(tmp_path):
    run = RunFolder(tmp_path)
    rows = [{"period": 0, "test_accuracy": 0.3, "compression": 0.0, "spikes": 112181.0, "lr": 0.003,
             "alive_fc1": 40, "wall_s": 39.779123},
            {"period": 1, "test_accuracy": float("nan"), "compression": 0.3455921, "spikes": 4.40788e6,
             "lr": 0.003, "alive_fc1": 26, "rho_fc1": 37.6, "wall_s": 6.19888e-06}]
    run.write_table(rows, ["period", "test_accuracy", "train_accuracy", "compression", "spikes", "lr", "wall_s"])
    assert run.table.read_bytes() == (
        b"period,test_accuracy,train_accuracy,compression,spikes,lr,wall_s,alive_fc1,rho_fc1\n"
        b"0,0.3,,0,112181,0.003,39.7791,40,\n"
        b"1,,,0.345592,4.40788e+06,0.003,6.19888e-06,26,37.6\n")
    t = run.read_table()
    assert list(t["period"]) == [0, 1] and np.isnan(t["test_accuracy"][1]) and t["rho_fc1"][1] == 37.6
    assert not list(tmp_path.glob("*.tmp"))


def test_config_toml_reloads_to_the_same_config(tmp_path):
    cfg = load_config(find_model("tiny_dense"))
    run = RunFolder(tmp_path)
    run.create()
    run.write_config(cfg.to_dict())
    with open(run.config, "rb") as f:
        tomllib.load(f)
    assert load_config(run.config).to_dict() == cfg.to_dict()


def test_meta_and_summary(tmp_path):
    run = RunFolder(tmp_path)
    assert not run.has_meta() and not run.is_finished() and run.read_summary() == {}
    run.write_meta({"model": "m", "n_synapses": {"fc1": 3}})
    run.write_summary({"final_test_accuracy": 0.5})
    assert run.has_meta() and run.is_finished() and not run.is_run_folder()
    assert run.read_meta()["n_synapses"] == {"fc1": 3} and run.read_summary()["final_test_accuracy"] == 0.5
    assert run.summary.read_text().startswith("{\n  ")
