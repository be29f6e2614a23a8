"""The structural history of a run: what it records, how it reads back, its size and its errors.

One tiny_dense run (784-40-10, 8 periods, pruning decided from period 4 on)
is shared with tests/test_export.py (tests/_shared_tiny_run.py); its ground
truth is the synapse state the recorder was given at every period.
"""

import shutil

import numpy as np
import pytest
from _shared_tiny_run import P, tiny_run

from sdsnn_bio.config import find_model, load_config
from sdsnn_bio.errors import RunError, SdsnnError
from sdsnn_bio.geometry import stage_geometry
from sdsnn_bio.history import (History, HistoryError, HistoryRecorder, bin_edges, dequantise, fixed_keyframes,
                               quantise)
from sdsnn_bio.records import RunFolder

pytestmark = [pytest.mark.standalone]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory)


@pytest.fixture(scope="module")
def hist(run):
    return History(run[0])


def test_periods_layers_and_keyframes(run, hist):
    run_dir, truth = run
    assert hist.periods.tolist() == list(range(P + 1))     # 0..P-1 and the final structure P
    assert hist.final_period == P
    assert hist.layers == ["fc1"]
    assert sorted(truth) == list(range(P + 1))
    fixed = set(fixed_keyframes(P))
    assert fixed <= set(hist.keyframes.tolist())
    assert len(hist.keyframes) <= len(fixed) + 3


def test_masks_equal_the_state_of_every_period(run, hist):
    run_dir, truth = run
    for e in hist.periods:
        s = hist.structure_at(e)
        for name in ("fc1", "out"):
            np.testing.assert_array_equal(s[name].connected, truth[e][f"{name}/connected"] != 0,
                                          err_msg=f"{name} period {e}")
    # and the snapshots the run kept (the last period and the best one)
    folder = RunFolder(run_dir)
    assert folder.snapshot_periods() == [P - 1] and folder.has_best()
    for which in (P - 1, "best"):
        snap = folder.load_snapshot(which, keys=["fc1/syn/connected"])
        np.testing.assert_array_equal(hist.mask("fc1", snap.period), snap.arrays["fc1/syn/connected"] != 0)
    # the run pruned and regenerated: the masks did change
    assert len(hist.events(layer="fc1")["period"]) > 0


def test_alive_and_zeros_match_the_table(run, hist):
    """The table's row e describes the structure after period e's decisions: the history's period e + 1."""
    table = RunFolder(run[0]).read_table()
    periods, alive = hist.alive("fc1")
    assert alive.shape == (P + 1, 40)
    np.testing.assert_array_equal(alive.sum(1)[1:], table["alive_fc1"])
    zeros = [int(np.sum(~hist.mask("fc1", e))) for e in periods]
    np.testing.assert_array_equal(zeros[1:], table["zeros_fc1"])
    assert alive[0].all() and zeros[0] == 0
    assert table["alive_fc1"].min() < 40, "no unit was pruned: the test checks nothing"


def test_events_are_the_differences(run, hist):
    _, truth = run
    ev = hist.events()
    assert set(ev) == {"period", "layer", "kind", "index"}
    st = {s.name: s for s in stage_geometry(load_config(find_model("tiny_dense")))}["fc1"]
    expected = []
    for e in range(1, P + 1):
        before, now = truth[e - 1]["fc1/connected"] != 0, truth[e]["fc1/connected"] != 0
        a0 = np.bincount(st.post_index, weights=before, minlength=40) >= st.spec.theta_dead
        a1 = np.bincount(st.post_index, weights=now, minlength=40) >= st.spec.theta_dead
        for kind, idx in (("unit_pruned", np.flatnonzero(a0 & ~a1)), ("unit_revived", np.flatnonzero(~a0 & a1)),
                          ("synapse_pruned", np.flatnonzero(before & ~now)),
                          ("synapse_regenerated", np.flatnonzero(~before & now))):
            expected += [(e, "fc1", kind, int(i)) for i in idx]
    got = list(zip(ev["period"].tolist(), ev["layer"].tolist(), ev["kind"].tolist(), ev["index"].tolist()))
    assert got == expected
    kinds = set(ev["kind"].tolist())
    assert {"synapse_pruned", "unit_pruned"} <= kinds
    one = hist.events("fc1")
    assert len(one["period"]) == len(ev["period"])
    assert len(hist.events("out")["period"]) == 0


def test_histograms_count_the_live_synapses_exactly(run, hist):
    _, truth = run
    for var in ("w", "width"):
        periods, edges, counts = hist.histogram("fc1", var)
        assert counts.shape == (P + 1, len(edges) - 1)
        for k, e in enumerate(periods):
            live = truth[e]["fc1/connected"] != 0
            assert counts[k].sum() == live.sum()
            x = truth[e]["fc1/w"] if var == "w" else truth[e]["fc1/r_up"] + np.abs(truth[e]["fc1/r_lo"])
            ref, _ = np.histogram(np.clip(x[live], edges[0], edges[-1]), bins=edges)
            np.testing.assert_array_equal(counts[k], ref, err_msg=f"{var} period {e}")
    _, below, above = hist.histogram_outside("fc1", "w")
    assert below.shape == above.shape == (P + 1,)
    with pytest.raises(HistoryError, match="histogram variable"):
        hist.histogram("fc1", "volume")


def test_unit_summaries(run, hist):
    _, truth = run
    s = hist.unit_summary("fc1")
    for e in hist.periods:
        live = truth[e]["fc1/connected"] != 0
        j = np.tile(np.arange(40), 784)          # post index in synapse order (pre-major)
        np.testing.assert_array_equal(s["live"][e], np.bincount(j[live], minlength=40))
        with np.errstate(invalid="ignore"):
            mean = np.bincount(j[live], weights=truth[e]["fc1/w"][live], minlength=40) / s["live"][e]
        np.testing.assert_allclose(s["w_mean"][e], mean, rtol=2e-3, atol=1e-6)


def test_keyframe_values_within_the_stated_error(run, hist):
    _, truth = run
    checked = 0
    for k in hist.keyframes:
        for name in ("fc1", "out"):
            live = truth[k][f"{name}/connected"] != 0
            for var in ("w", "r_up", "r_lo"):
                values = hist._values(int(k), exact=False)[name][var]
                err = hist.quantisation_error(k, name, var)
                x = truth[k][f"{name}/{var}"]
                assert np.all(np.isnan(values[~live]))
                bound = err + 1e-6 * np.abs(x[live]).max()
                assert np.abs(values[live] - x[live]).max() <= bound, (k, name, var)
                assert err <= (x[live].max() - x[live].min()) / 510 * (1 + 1e-12)
                checked += 1
    assert checked >= 3 * 2 * 6


def test_values_exact_from_snapshots(run, hist):
    """The last period's values come from its snapshot, exactly; a keyframe's are quantised."""
    _, truth = run
    s = hist.structure_at(P - 1)["fc1"]
    assert s.exact and s.values_period == P - 1
    for var in ("w", "r_up", "r_lo"):
        np.testing.assert_array_equal(getattr(s, var), truth[P - 1][f"fc1/{var}"].astype(np.float32))
    final = hist.structure_at(P)["fc1"]
    assert not final.exact and final.values_period == P
    # a period that is neither keyframe nor snapshot takes the nearest one's values
    for e in hist.periods:
        vp, exact = hist.values_source(e)
        others = [int(k) for k in hist.keyframes] + list(hist._snapshot_periods())
        assert abs(vp - e) == min(abs(k - e) for k in others)


def test_layer_structure_geometry(hist):
    s = hist.structure_at(0)
    assert list(s) == ["fc1", "out"]
    fc1 = s["fc1"]
    assert fc1.pre_shape == (1, 28, 28) and fc1.post_shape == (40,)
    assert len(fc1.i) == len(fc1.j) == len(fc1.w) == 784 * 40
    np.testing.assert_array_equal(fc1.i, np.repeat(np.arange(784), 40))
    np.testing.assert_array_equal(fc1.j, np.tile(np.arange(40), 784))
    w = fc1.w.reshape(784, 40)
    np.testing.assert_array_equal(w[:, 7], fc1.w[fc1.j == 7])
    assert fc1.w[fc1.j == 7].reshape(fc1.pre_shape).shape == (1, 28, 28)
    np.testing.assert_array_equal(fc1.unit_of_post, np.arange(40))
    assert s["out"].alive.all() and s["out"].pre_shape == (40,)
    for bad in (P + 1, -1, 2.5, "x"):
        with pytest.raises(HistoryError, match="period"):
            hist.structure_at(bad)
    with pytest.raises(HistoryError, match="no recorded layer 'fc9'"):
        hist.alive("fc9")


def test_history_smaller_than_a_snapshot(run, hist):
    folder = RunFolder(run[0])
    snapshot = folder.snapshot_path(P - 1).stat().st_size
    assert 0 < hist.size_bytes <= snapshot, (hist.size_bytes, snapshot)


# ------------------------------------------------------------------ bad input
@pytest.fixture
def copy(run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(run[0], out, ignore=shutil.ignore_patterns("build", "figures"))
    return out


def test_not_a_run_folder(tmp_path):
    with pytest.raises(HistoryError, match="no such run folder"):
        History(tmp_path / "missing")
    with pytest.raises(HistoryError, match="not a run folder"):
        History(tmp_path)


def test_no_history(copy):
    shutil.rmtree(copy / "history")
    with pytest.raises(HistoryError, match="no structural history"):
        History(copy)


def test_missing_period_file(copy):
    (copy / "history" / "period_0003.npz").unlink()
    with pytest.raises(HistoryError, match=r"periods \[3\] are missing"):
        History(copy)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_period_file(copy, damage):
    f = copy / "history" / "period_0002.npz"
    data = f.read_bytes()
    f.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"not a zip file" * 10, "empty": b""}[damage])
    with pytest.raises(HistoryError, match="period_0002.npz: malformed history file"):
        History(copy)


def test_corrupt_keyframe_file(copy):
    h = History(copy)
    k = int(h.keyframes[1])
    (copy / "history" / f"keyframe_{k:04d}.npz").write_bytes(b"broken")
    for snap in (copy / "snapshots").iterdir():
        snap.unlink()
    with pytest.raises(HistoryError, match=f"keyframe_{k:04d}.npz: malformed"):
        History(copy).structure_at(k)


def test_errors_are_sdsnn_errors():
    assert issubclass(HistoryError, SdsnnError)


# -------------------------------------------------- recorder without Brian2
def test_quantise_error_bound():
    rng = np.random.default_rng(0)
    x = rng.normal(size=10_000) * 0.1
    codes, lo, hi = quantise(x)
    assert codes.dtype == np.uint8 and codes.min() == 0 and codes.max() == 255
    assert np.abs(dequantise(codes, lo, hi) - x).max() <= (hi - lo) / 510 + 1e-7
    codes, lo, hi = quantise(np.full(5, 0.3))
    np.testing.assert_array_equal(dequantise(codes, lo, hi), np.float32(0.3))
    edges = bin_edges(x)
    assert edges["w"][0] == -edges["w"][-1] and edges["width"][0] == 0


def _synthetic_arrays(stages, e, rng_seed=0):
    """A state of every learnable stage at period e: masks losing and regaining synapses."""
    out = {}
    for st in stages:
        if not st.learnable:
            continue
        rng = np.random.default_rng([rng_seed, e, st.index])
        n = st.n_synapses
        conn = np.ones(n)
        if e > 0 and st.pruned:
            conn[rng.random(n) < min(0.9, 0.05 * e + 0.1 * rng.random())] = 0
        w = rng.normal(size=n) * 0.05 * conn
        out[f"{st.name}/syn/connected"] = conn
        out[f"{st.name}/syn/w"] = w
        out[f"{st.name}/syn/r_up"] = np.abs(w) + 0.01
        out[f"{st.name}/syn/r_lo"] = -np.abs(w) - 0.02
    return out


def _history_files(folder):
    """Every history file's meta data and arrays (bytes and dtype), by file name (zip members
    carry their writing time, so files are compared by content)."""
    out = {}
    for kind in ("period", "keyframe"):
        for e in folder.history_periods(kind):
            rec = folder.load_history(e, kind)
            out[f"{kind}_{e}"] = (rec.meta, {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in rec.arrays.items()})
    return out


def test_resume_writes_the_same_history(tmp_path):
    """Kill after period k's history (before its snapshot), resume from k - 1: the same files
    as an uninterrupted run, although a change keyframe was given up in between."""
    cfg = load_config(find_model("tiny_dense"))
    stages = stage_geometry(cfg)
    periods = 12

    def recorder(path):
        f = RunFolder(path)
        f.create()
        f.write_config(cfg.to_dict())
        return f, HistoryRecorder(f, stages, periods, n_geometric=2, n_change=2, n_bins=16)

    ref_folder, ref = recorder(tmp_path / "ref")
    ref.start()
    evicted = []
    for e in range(periods):
        before = set(ref.change)
        ref.record(e, _synthetic_arrays(stages, e))
        evicted += sorted(before - set(ref.change))
    ref.record(periods, _synthetic_arrays(stages, periods), final=True)
    assert evicted, "no change keyframe was given up: the test would check nothing"
    for kill in range(1, periods):
        folder, rec = recorder(tmp_path / f"kill{kill}")
        rec.start()
        for e in range(kill + 1):
            rec.record(e, _synthetic_arrays(stages, e))
        # killed after the history of period `kill`, before its snapshot: resume from kill - 1
        rec = HistoryRecorder(folder, stages, periods, n_geometric=2, n_change=2, n_bins=16)
        rec.resume(kill - 1)
        for e in range(kill, periods):
            rec.record(e, _synthetic_arrays(stages, e))
        rec.record(periods, _synthetic_arrays(stages, periods), final=True)
        assert _history_files(folder) == _history_files(ref_folder), f"kill after period {kill}"
    h = History(ref_folder.path)
    assert len(h.keyframes) == len(fixed_keyframes(periods, 2)) + 2


def test_resume_refuses_a_history_with_a_gap(tmp_path):
    cfg = load_config(find_model("tiny_dense"))
    stages = stage_geometry(cfg)
    folder = RunFolder(tmp_path)
    folder.create()
    rec = HistoryRecorder(folder, stages, 6)
    rec.start()
    for e in range(4):
        rec.record(e, _synthetic_arrays(stages, e))
    folder.history_path(1).unlink()
    with pytest.raises(RunError, match=r"lacks the periods \[1\]"):
        HistoryRecorder(folder, stages, 6).resume(3)
