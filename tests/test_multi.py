"""Several networks in one build (sdsnn_bio.multi): per-copy decisions, parameters, records, refusals.

Two cpp_standalone builds of three tiny_dense copies (6 periods, pruning from period 3), shared by
the module: the first runs uninterrupted; the second changes one copy's learning rate, is stopped
by an error in one copy at period 3 and resumed from the copies' snapshots.
"""

import json

import numpy as np
import pytest

from sdsnn_bio.config import find_model, load_config
from sdsnn_bio.errors import ConfigError, RunError
from sdsnn_bio.multi import RUNTIME_KEYS, MultiDevelopment, check_copies, copy_dirs, expand_sets
from sdsnn_bio.records import RunFolder, read_table

P, S = 6, 3
LR = (3e-3, 1e-3, 3e-3)
SEEDS = (0, 0, 1)
RHO0 = (35.0, 50.0, 35.0)
_TINY = load_config(find_model("tiny_dense"))
UNITS, N_IN = _TINY.layers[0].units, int(np.prod(_TINY.input_shape))


def tiny(**schedule):
    return load_config(find_model("tiny_dense")).replace(schedule={"periods": P, "structure_start": S, **schedule})


def copies(lr=LR):
    base = tiny()
    return expand_sets(base, 3, [f"training.lr={','.join(map(str, lr))}",
                                 f"schedule.seed={','.join(map(str, SEEDS))}",
                                 f"layers.fc1.rho0={','.join(map(str, RHO0))}"])


class _Stop(Exception):
    """A copy's failure that stops the whole build (not a health check)."""


def _recorder(store, md_box, stop_at=None):
    """on_period: the decisions copy k took at period e, and every copy's own state read back
    from the fused Brian2 objects (copy j's block: its synapses and neurons, one copy's count
    each, after copy j-1's), not through the copy's view."""
    from sdsnn_bio.runner import PeriodRunner

    def on_period(k, e, dev):
        if stop_at is not None and (k, e) == stop_at:
            raise _Stop(f"stopped copy {k} at period {e}")
        net = md_box[0].network.net
        syn, grp = net["syn_fc1"], net["fc1"]
        K = len(md_box[0].cfgs)
        assert len(syn) == K * UNITS * N_IN and len(grp) == K * UNITS
        state = {}
        for j in range(K):
            block = slice(j * UNITS * N_IN, (j + 1) * UNITS * N_IN)
            state[j] = {v: PeriodRunner.get(syn, v)[block] for v in ("w", "r_up", "r_lo")}
            state[j].update({v: PeriodRunner.get(grp, v)[j * UNITS:(j + 1) * UNITS] for v in ("imp", "live")})
        ls = dev.structure.layers["fc1"]
        store[(k, e)] = {"state": state, "prune_now": None if ls.prune_now is None else ls.prune_now.copy(),
                         "history": ls.history.copy(), "rho": ls.rho, "rho_used": ls.extra.get("rho_used"),
                         "regen_threshold": ls.extra.get("regen_threshold"), "dead": ls.dead}
    return on_period


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    from sdsnn_bio.devices import reset_brian

    root = tmp_path_factory.mktemp("multi")
    first_store, box = {}, [None]
    reset_brian()
    box[0] = md = MultiDevelopment(copies(), copy_dirs(root / "first", 3), device="cpp_standalone",
                                   on_period=_recorder(first_store, box))
    first = md.run()
    # the second build: copy 1 with another learning rate; stopped at period 3, then resumed
    lr2 = (LR[0], 2e-3, LR[2])
    second_store, box2 = {}, [None]
    reset_brian()
    box2[0] = md2 = MultiDevelopment(copies(lr2), copy_dirs(root / "second", 3), device="cpp_standalone",
                                     on_period=_recorder(second_store, box2, stop_at=(1, 3)))
    with pytest.raises(_Stop):
        md2.run()
    stopped = {k: RunFolder(d).snapshot_periods() for k, d in enumerate(md2.run_dirs)}
    resumed_store = {}
    reset_brian()
    box2[0] = md3 = MultiDevelopment(copies(lr2), md2.run_dirs, device="cpp_standalone",
                                     on_period=_recorder(resumed_store, box2))
    second = md3.run(resume=True)
    reset_brian()
    return {"root": root, "first": (md, first, first_store), "second": (md3, second, resumed_store),
            "stopped": stopped}


def _expected(cfg, e, st, own, history, rho):
    """The numpy/Python rules of sdsnn_bio.structure.step on one copy's state."""
    from sdsnn_bio.structure.neurotrophic import next_rate
    from sdsnn_bio.structure.pruning import importance_quantity, prune_decision
    from sdsnn_bio.structure.regeneration import regeneration_decision

    stc = cfg.structure
    width = importance_quantity(stc.importance, own["w"], own["r_up"], own["r_lo"])
    new, dead = prune_decision(own["imp"], own["live"], float(width.min()), float(width.max()), st.unit_of_neuron,
                               st.n_units, rho, history, st.spec.theta_dead, st.positions_per_unit)
    nxt = next_rate("last", rho, e, st.n_units - dead, start=S, n_classes=cfg.n_classes, tau=stc.rate_tau,
                    a=stc.rate_a, c=stc.rate_c, switch=stc.rate_switch)
    _, thr = regeneration_decision(e, own["w"], st.spec.regen_q0, S, growth=stc.regen_growth, cap=stc.regen_cap)
    return new, dead, nxt, thr


@pytest.mark.standalone
def test_each_copy_decides_on_its_own_state(builds):
    from sdsnn_bio.geometry import stage_geometry

    md, _, store = builds["first"]
    st = stage_geometry(md.cfgs[0])[0]
    differs = 0
    for k, cfg in enumerate(md.cfgs):
        history, rho = np.zeros(st.n_units, bool), cfg.layers[0].rho0
        for e in range(S, P):
            rec = store[(k, e)]
            new, dead, nxt, thr = _expected(cfg, e, st, rec["state"][k], history, rho)
            assert rec["rho_used"] == rho
            np.testing.assert_array_equal(rec["prune_now"], new, err_msg=f"copy {k} period {e}")
            assert rec["dead"] == dead and rec["rho"] == pytest.approx(nxt, rel=1e-12)
            assert rec["regen_threshold"] == thr
            # the same rules on another copy's state give other decisions (the check can fail)
            other = rec["state"][(k + 1) % 3]
            o_new, _, _, o_thr = _expected(cfg, e, st, other, history, rho)
            differs += int(o_thr != thr or not np.array_equal(o_new, new))
            history, rho = history | new, nxt
        # the copy's pruning rate is its own rho0 at the first structural period (periods.csv)
        t = read_table(md.run_dirs[k])
        assert t["rho_fc1"][list(t["period"]).index(S)] == pytest.approx(RHO0[k])
    assert differs >= 3 * (P - S) - 1


def _final(run_dir):
    return RunFolder(run_dir).load_snapshot("last").arrays


@pytest.mark.standalone
def test_parameters_seeds_and_reproducibility(builds):
    md, _, _ = builds["first"]
    w = [_final(d)["fc1/syn/w"] for d in md.run_dirs]
    # copies 0 and 1: same seed (same initial weights), other learning rate
    np.testing.assert_array_equal(md.network.copies[0].stages[0].extra["w_init"],
                                  md.network.copies[1].stages[0].extra["w_init"])
    assert not np.array_equal(w[0], w[1])
    # copies 0 and 2: same parameters, other seed: other initial and final weights
    assert not np.array_equal(md.network.copies[0].stages[0].extra["w_init"],
                              md.network.copies[2].stages[0].extra["w_init"])
    assert not np.array_equal(w[0], w[2])
    # copies 0 and 2 again in another build, where copy 1 has another learning rate and the run
    # was stopped and resumed: identical weights, spines, masks and table
    md2, _, _ = builds["second"]
    for k in (0, 2):
        a, b = _final(md.run_dirs[k]), _final(md2.run_dirs[k])
        assert sorted(a) == sorted(b)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"copy {k}: {key}")
        ta, tb = read_table(md.run_dirs[k]), read_table(md2.run_dirs[k])
        for col in ta:
            if col not in ("wall_s", "struct_s"):
                np.testing.assert_array_equal(ta[col], tb[col], err_msg=f"copy {k}: {col}")
        assert RunFolder(md.run_dirs[k]).read_summary()["final_test_accuracy"] == \
            RunFolder(md2.run_dirs[k]).read_summary()["final_test_accuracy"]
    assert not np.array_equal(_final(md.run_dirs[1])["fc1/syn/w"], _final(md2.run_dirs[1])["fc1/syn/w"])


@pytest.mark.standalone
def test_resume_from_the_period_all_copies_have(builds):
    # copy 1 stopped in period 3 before its snapshot; the others may have written theirs
    stopped = builds["stopped"]
    assert stopped[1][-1] == S - 1
    assert all(p[-1] in (S - 1, S) for p in stopped.values())
    md2, _, store = builds["second"]
    # the resumed build ran periods 3.. only, every copy
    assert sorted(store) == [(k, e) for k in range(3) for e in range(S, P)]
    for d in md2.run_dirs:
        assert RunFolder(d).snapshot_periods()[-1] == P - 1
        assert list(read_table(d)["period"]) == list(range(P))


@pytest.mark.standalone
def test_copy_folders_complete_and_tabulated(builds):
    from sdsnn_bio.config import load_config as load
    from sdsnn_bio.paper_table import find_runs, paper_table, read_run
    from sdsnn_bio.report import text_report

    md, summaries, _ = builds["first"]
    for k, (d, cfg) in enumerate(zip(md.run_dirs, md.cfgs)):
        folder = RunFolder(d)
        assert load(folder.config).to_dict() == cfg.to_dict()
        meta = json.loads(folder.meta.read_text())
        assert meta["copy"] == k and meta["seed"] == SEEDS[k]
        assert meta["shared_build"]["copies"] == 3
        assert meta["shared_build"]["run_dirs"] == [str(p) for p in md.run_dirs]
        assert meta["shared_build"]["runtime_keys"]["training.lr"] == list(LR)
        t = read_table(d)
        assert list(t["period"]) == list(range(P))
        np.testing.assert_allclose(t["lr"], LR[k])
        assert folder.history_periods() == list(range(P + 1))
        assert folder.read_summary() == summaries[k]
        assert 0.1 < summaries[k]["final_test_accuracy"] <= 1.0
        assert f"{100 * summaries[k]['final_test_accuracy']:.2f}" in text_report(d)
    records = [read_run(p) for p in find_runs([builds["root"] / "first"])]
    assert sorted(r["dir"] for r in records) == sorted(str(d) for d in md.run_dirs)
    # copies 0 and 2 share their learning rate and rho0 (seeds 0 and 1: one row, two seeds);
    # copy 1 has its own (a row of its own, named by what sets it apart)
    # (all three differ from the model file in the structural start of this test's schedule)
    rows = {r["variant"]: r for r in paper_table(records)}
    same = f"schedule.structure_start={S}"
    assert sorted(rows) == [f"SD-SNN ({same})", f"SD-SNN ({same}, training.lr={LR[1]}, layers.fc1.rho0={RHO0[1]})"]
    assert rows[f"SD-SNN ({same})"]["seeds"] == 2
    assert rows[f"SD-SNN ({same})"]["accuracy_mean"] == pytest.approx(
        np.mean([summaries[k]["final_test_accuracy"] for k in (0, 2)]))


# ------------------------------------------------------------------ refusals (no build)
@pytest.mark.parametrize("key, value", [
    ("neuron.threshold", 0.6),            # a constant of the generated code
    ("training.batch", 5),                # the event schedule
    ("schedule.periods", 7),              # the number of runs the copies share
    ("layers.fc1.units", 30),             # a shape
    ("layers.fc1.regen_streak", 3),       # the regeneration streak M (generated code)
    ("data.n_train", 150),                # the data
])
def test_refused_keys_name_the_key(key, value):
    cfg = tiny()
    other = expand_sets(cfg, 1, [f"{key}={value}"])[0]
    with pytest.raises(ConfigError, match=rf"copy 1 .*key '{key}' is {value!r}"):
        check_copies([cfg, other])
    with pytest.raises(ConfigError, match=key):
        MultiDevelopment([cfg, other], ["a", "b"])


def test_runtime_keys_pass_and_other_refusals(tmp_path):
    cfg = tiny()
    ok = expand_sets(cfg, 4, ["training.lr=0.001,0.002,0.003,0.004", "schedule.seed=0,1,2,3",
                              "structure.masks=soft,hard,soft,hard", "layers.fc1.rho0=10,20,30,40",
                              "structure.rate_c=0.001", "structure.neurotrophic=true,false,true,false"])
    check_copies(ok)
    assert [c.structure.masks for c in ok] == ["soft", "hard", "soft", "hard"]
    assert [c.layers[0].rho0 for c in ok] == [10.0, 20.0, 30.0, 40.0]
    assert "training.lr" in RUNTIME_KEYS and "layers.*.rho0" in RUNTIME_KEYS
    with pytest.raises(ConfigError, match="training.parallel_windows"):
        check_copies([cfg.replace(training={"parallel_windows": True})])
    with pytest.raises(ConfigError, match="3 values for 2 copies"):
        expand_sets(cfg, 2, ["training.lr=1,2,3"])
    with pytest.raises(ConfigError, match="no layer named 'fc9'"):
        expand_sets(cfg, 2, ["layers.fc9.rho0=1"])
    with pytest.raises(ConfigError, match="no key 'lrr'"):
        expand_sets(cfg, 2, ["training.lrr=1"])
    with pytest.raises(ConfigError, match="same run folder"):
        MultiDevelopment([cfg, cfg], [tmp_path / "a", tmp_path / "a"])
    with pytest.raises(RunError, match="nothing to resume"):
        MultiDevelopment([cfg, cfg], copy_dirs(tmp_path, 2)).run(resume=True)


def test_cli_refuses_before_building(tmp_path, capsys):
    from sdsnn_bio.cli import main

    rc = main(["run", "tiny_dense", "--copies", "2", "--set", "neuron.threshold=0.5,0.6", "--out", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "key 'neuron.threshold'" in err and "run-time keys" in err
    assert not (tmp_path / "o").exists()
    assert main(["run", "tiny_dense", "--set", "training.lr=0.1", "--out", str(tmp_path / "p")]) == 2
    assert "--set needs --copies" in capsys.readouterr().err


def _conv_copies():
    """Two copies of a small convolutional network (tests/test_conv.py's ``tiny_conv``, conv2
    pruned by channel) under direct coding, apart in every kind of run-time key."""
    from test_conv import tiny_conv

    # weights drawn 2x wider: under direct coding seed 1's output falls silent in period 1
    base = tiny_conv(periods=5).replace(data={"coding": "direct"}, training={"weight_init": 2.0})
    return expand_sets(base, 2, ["training.lr=0.003,0.002", "structure.masks=hard,soft",
                                 "structure.regeneration=true,false", "layers.conv2.rho0=35,60",
                                 "structure.constraint=true,false", "schedule.seed=0,1"]), "alive_conv2"


def _dense_copies():
    base = tiny(periods=5).replace(data={"coding": "direct"})
    return expand_sets(base, 2, ["training.lr=0.003,0.001", "structure.masks=hard,soft",
                                 "structure.regeneration=true,false", "layers.fc1.rho0=35,60",
                                 "structure.fixed_clip=true,false", "schedule.seed=0,1"]), "alive_fc1"


@pytest.mark.standalone
@pytest.mark.parametrize("network", ["dense", "conv"])
def test_each_copy_is_its_single_run(network, tmp_path):
    """Fused copies are independent networks: under direct (analog) input coding nothing is random
    in a run, so each copy of a build must be the single run of its configuration (every
    per-period record and decision exactly, the state to round-off). The copies differ in every
    kind of run-time key: the learning rate (a per-neuron flag), the masks (a flag read by the
    synapses through their postsynaptic neuron), the regeneration switch, the pruning rate (a
    Python decision), the constraint (``conv``) or the output layer's fixed clip (``dense``: a
    per-stage flag) and the seed (initial weights, data order). ``conv``: each copy's positions
    read its own kernel, whose state (weight group, master synapses, channels) is in the copy's
    block."""
    from sdsnn_bio.devices import reset_brian
    from sdsnn_bio.loop import Development

    cfgs, alive = {"dense": _dense_copies, "conv": _conv_copies}[network]()
    reset_brian()
    MultiDevelopment(cfgs, copy_dirs(tmp_path / "fused", 2), device="cpp_standalone").run()
    tables = []
    for k, cfg in enumerate(cfgs):
        reset_brian()
        Development(cfg, tmp_path / f"single{k}", device="cpp_standalone").run()
        single, fused = read_table(tmp_path / f"single{k}"), read_table(tmp_path / "fused" / f"copy{k}")
        assert sorted(single) == sorted(fused)
        for col in single:
            if col not in ("wall_s", "struct_s"):
                np.testing.assert_array_equal(fused[col], single[col], err_msg=f"copy {k}: {col}")
        a = RunFolder(tmp_path / f"single{k}").load_snapshot("last").arrays
        b = RunFolder(tmp_path / "fused" / f"copy{k}").load_snapshot("last").arrays
        assert sorted(a) == sorted(b)
        for key in a:
            np.testing.assert_allclose(b[key], a[key], rtol=0, atol=1e-12, err_msg=f"copy {k}: {key}")
        tables.append(single)
    reset_brian()
    if network == "dense":
        # copy 0 holds its output layer to its period-0 range, copy 1 (fixed_clip = false) does not
        out = [RunFolder(tmp_path / "fused" / f"copy{k}").load_snapshot("last").arrays for k in (0, 1)]
        outside = [np.sum(np.abs(a["out/syn/w"]) > a["out/syn/r_up"]) for a in out]
        assert outside[0] == 0 and outside[1] > 0, outside
    # the copies did develop apart (the comparison above could fail)
    assert list(tables[0][alive]) != list(tables[1][alive])
    assert not np.array_equal(tables[0]["test_accuracy"], tables[1]["test_accuracy"])


@pytest.mark.standalone
def test_one_copy_is_the_single_run(tmp_path):
    """With rate-coded (random) input a build of one copy draws the single run's random numbers:
    the same spikes, so the same records and decisions, the state to round-off."""
    from sdsnn_bio.devices import reset_brian
    from sdsnn_bio.loop import Development

    cfg = tiny(periods=4)
    reset_brian()
    MultiDevelopment([cfg], copy_dirs(tmp_path / "fused", 1), device="cpp_standalone").run()
    reset_brian()
    Development(cfg, tmp_path / "single", device="cpp_standalone").run()
    reset_brian()
    single, fused = read_table(tmp_path / "single"), read_table(tmp_path / "fused" / "copy0")
    for col in single:
        if col not in ("wall_s", "struct_s"):
            np.testing.assert_array_equal(fused[col], single[col], err_msg=col)
    a, b = _final(tmp_path / "single"), _final(tmp_path / "fused" / "copy0")
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=0, atol=1e-12, err_msg=key)
    assert single["spikes"][-1] > 0 and single["alive_fc1"][-1] < UNITS


def test_schedule_flags_stay_shared_and_must_agree(tmp_path):
    """The flags that follow the shared schedule (Adam step count, learning and structural
    switches) stay one shared value in the fused build; the others are per copy."""
    from sdsnn_bio.devices import reset_brian, set_up_device
    from sdsnn_bio.multi import MultiSDSNNNetwork

    reset_brian()
    set_up_device("cpp_standalone", str(tmp_path / "b"))
    cfgs = expand_sets(tiny(), 2, ["training.lr=0.001,0.003"])
    net = MultiSDSNNNetwork(cfgs, 4, 10, "cpp_standalone", str(tmp_path / "b"))
    fc1 = net.net["fc1"]
    assert fc1.variables["adam_k0"].scalar and fc1.variables["learn_on"].scalar
    assert not fc1.variables["lr"].scalar and not fc1.variables["hard_mask"].scalar
    syn = net.net["syn_fc1"]
    assert "regen_threshold" in syn.variables and "syn_regen_threshold" in fc1.variables
    net.copies[0].set_shared(adam_k0=40, lr=0.001)
    net.copies[1].set_shared(adam_k0=40, lr=0.003)
    with pytest.raises(RunError, match="disagree on 'adam_k0'"):
        net.copies[1].set_shared(adam_k0=41)
    reset_brian()
