"""The developmental network kind (sdsnn_bio.cortex): spine step in generated code against its
numpy twin, trophic competition, time axis, resume after a kill, configuration errors.

Everything runs on the runtime device with the numpy target (no compilation), on networks of
a few dozen neurons."""

import numpy as np
import pytest

from sdsnn_bio.config import config_from_dict, find_model, load_config
from sdsnn_bio.cortex import rules
from sdsnn_bio.errors import ConfigError

TINY = {"kind": "development", "name": "cortex_tiny",
        "network": {"n_exc": 24, "n_inh": 6, "p_exc": 0.3, "p_inh": 0.3},
        "drive": {"n_ext": 100, "rate_hz": 5.0, "g_ext_ns": 1.5},
        "time": {"activity_s": 0.02, "struct_steps": 4, "days_per_period": 1.0, "dt_ms": 0.1},
        "trophic": {"threshold": 0.3, "window_days": 2.0, "end_days": 10.0},
        "schedule": {"periods": 4, "seed": 3}}


@pytest.mark.parametrize("device", ["runtime", pytest.param("cpp_standalone", marks=pytest.mark.standalone)])
def test_spine_step_in_generated_code_matches_numpy_twin(device, tmp_path, request):
    """Four structural steps of every potential synapse on a silent network (no drive), from a
    random state with dead neurons, against rules.spine_step applied four times (runtime's numpy
    target; the C++ of cpp_standalone, one build of a 30-neuron project)."""
    if device == "runtime":
        request.getfixturevalue("numpy_runtime")
    from sdsnn_bio.cortex import build_cortex

    d = {**TINY, "drive": {"n_ext": 0},
         "spines": {"f_birth": 2.0, "f_adult": 0.5, "k_consolidate": 2.0, "v_consolidate": 0.05,
                    "v_min": 0.03, "sigma_t": 0.8, "eta_act": 0.5, "eta_comp": 0.7, "vol_per_site": 0.02}}
    cfg = config_from_dict(d)
    net = build_cortex(cfg, device, tmp_path)
    try:
        net.compile()
        rng = np.random.default_rng(11)
        n_syn = len(net.e_pre)
        state = {"vol": np.exp(rng.normal(-3.0, 0.6, n_syn)), "connected": (rng.random(n_syn) < 0.5) * 1.0,
                 "stable": (rng.random(n_syn) < 0.3) * 1.0, "rs": rng.integers(1, 2 ** 31 - 1, n_syn) * 1.0,
                 "xc": rng.random(n_syn) * 0.05}
        state["stable"] *= state["connected"]
        alive = np.ones(net.n)
        alive[[1, 7, 26]] = 0.0
        for k, v in state.items():
            net.runner.set_next(net.S, k, v)
        net.runner.set_next(net.G, "alive", alive)
        net.begin_period(2)
        crowd = rules.crowding(state["vol"], state["connected"], net.e_post, np.bincount(net.e_post, minlength=net.n),
                               0.02, net.n)
        assert crowd.min() < 0.8 and crowd.max() > 1.2
        counts = net.run()
        assert counts.sum() == 0        # silent: the pairing counts stay as set, then 0
        ns = net.step_namespace()
        step_s = cfg.time.activity_s / cfg.time.struct_steps
        twin = dict(state)
        for k in range(cfg.time.struct_steps):
            twin = rules.spine_step(twin, alive[net.e_pre], alive[net.e_post], k * step_s, 2.0, ns,
                                    crowd[net.e_post])
        got = {k: net.get(net.S, k) for k in twin}
        for k in ("connected", "stable", "rs", "xc"):
            np.testing.assert_array_equal(got[k], twin[k], err_msg=k)
        np.testing.assert_allclose(got["vol"], twin["vol"], rtol=1e-12)
        # the step did something of each kind
        c0, c1 = state["connected"] > 0, got["connected"] > 0
        assert (c1 & ~c0).any() and (c0 & ~c1).any() and (got["stable"] > state["stable"]).any()
        dead_site = (alive[net.e_pre] == 0) | (alive[net.e_post] == 0)
        assert not (c1 & ~c0 & dead_site).any()       # no spine forms on a dead neuron
        moved = c0 & c1
        assert np.all(got["vol"][moved] != state["vol"][moved])
    finally:
        net.close()


def test_park_miller_stream_and_lognormal_volumes():
    """The per-synapse generator is the minimal standard one (10000th value from seed 1 is
    1043618065, Park & Miller 1988), and the volume process alone settles to a log-normal size
    distribution with the transient pool's mean log-volume."""
    rs = np.array([1.0])
    for _ in range(10000):
        rs, _u = rules._pm(rs)
    assert rs[0] == 1043618065.0
    cfg = config_from_dict({**TINY, "spines": {"f_birth": 0.0, "f_adult": 0.0, "v_min": 1e-9,
                                               "k_consolidate": 0.0, "eta_act": 0.0}})
    sp = cfg.spines
    ns = {"mu_t": sp.mu_t, "mu_s": sp.mu_s, "theta_t": sp.theta_t, "theta_s": sp.theta_s, "sigma_t": sp.sigma_t,
          "sigma_s": sp.sigma_s, "v_min": sp.v_min, "v_new": sp.v_new, "v_cons": sp.v_consolidate,
          "k_cons": 0.0, "f_birth": 0.0, "f_adult": 0.0, "tau_f": 1.0, "eta_act": 0.0, "eta_comp": 0.0, "a_norm": 1.0,
          "a_cap": 3.0, "dd": 0.25, "sqrt_dd": 0.5, "days_per_s": 1.0}
    n = 20000
    rng = np.random.default_rng(0)
    st = {"vol": np.full(n, 0.04), "connected": np.ones(n), "stable": np.zeros(n),
          "rs": rng.integers(1, 2 ** 31 - 1, n) * 1.0, "xc": np.ones(n)}
    for k in range(200):                 # 50 days, 25 relaxation times
        st = rules.spine_step(st, np.ones(n), np.ones(n), 0.0, 0.0, ns)
    lv = np.log(st["vol"])
    # stationary OU (Euler, step h = theta*dd): mean mu, variance sigma^2 dd / (1 - (1 - h)^2)
    h = sp.theta_t * 0.25
    assert abs(lv.mean() - sp.mu_t) < 0.02
    assert abs(lv.var() - sp.sigma_t ** 2 * 0.25 / (1 - (1 - h) ** 2)) < 0.03
    from scipy import stats

    assert stats.kstest((lv - lv.mean()) / lv.std(), "norm").pvalue > 0.01


def test_trophic_uptake_and_deaths_by_hand():
    """Two targets share their supply among their afferents in proportion to the conductance;
    a neuron below the threshold share for the window dies, and only in the age window."""
    # neurons 0, 1, 2 excitatory, 3 inhibitory; synapses (pre, post, g)
    pre = np.array([0, 1, 2, 3, 0])
    post = np.array([2, 2, 0, 2, 3])
    g = np.array([1.0, 3.0, 2.0, 4.0, 0.0])     # the last one is not live
    rate = np.array([5.0, 0.0, 10.0, 1.0])
    up = rules.trophic_uptake(rate, np.ones(4), pre, post, g, 4)
    # target 2 supplies 10 to 0, 1, 3 in parts 1/8, 3/8, 4/8; target 0 supplies 5 to 2
    np.testing.assert_allclose(up, [1.25, 3.75, 5.0, 5.0])
    is_inh = np.array([False, False, False, True])
    low, dies = rules.trophic_deaths(up, np.ones(4), is_inh, np.zeros(4), 1.0, 0.5, 2.0, True)
    # excitatory mean 10/3: neuron 0's share 0.375 < 0.5; the inhibitory one is its kind's mean
    np.testing.assert_allclose(low, [1.0, 0.0, 0.0, 0.0])
    assert not dies.any()
    low, dies = rules.trophic_deaths(up, np.ones(4), is_inh, low, 1.0, 0.5, 2.0, True)
    assert list(dies) == [True, False, False, False]
    _, dies = rules.trophic_deaths(up, np.ones(4), is_inh, np.array([1.0, 0, 0, 0]), 1.0, 0.5, 2.0, False)
    assert not dies.any()
    # a dead target supplies nothing; importance pruning ranks by live afferent volume
    up = rules.trophic_uptake(rate, np.array([1, 1, 0, 1]), pre, post, g, 4)
    np.testing.assert_allclose(up, [0.0, 0.0, 5.0, 0.0])
    pruned = rules.importance_prune(np.array([0.1, 0.2, 0.3, 0.4, 0.5]), np.array([1, 1, 1, 1, 0]),
                                    post, np.ones(4), is_inh, 50.0)
    assert list(np.flatnonzero(pruned)) == [1]   # importance: neuron 0 0.3, 1 0, 2 0.7 (3 inhibitory)


def _run(cfg, out, stop_after=None):
    """A run on runtime's numpy target (the caller's ``numpy_runtime`` fixture)."""
    from sdsnn_bio.devices import reset_brian
    from sdsnn_bio.loop import Development

    reset_brian()

    class Killed(Exception):
        pass

    def progress(line):
        if stop_after is not None and line.startswith(f"period {stop_after}/"):
            raise Killed(line)

    dev = Development(cfg, out, device="runtime", progress=progress)
    if stop_after is None:
        return dev.run()
    with pytest.raises(Killed):
        dev.run()
    reset_brian()
    return Development(cfg, out, device="runtime").run(resume=True)


def test_run_time_axis_deaths_and_resume(tmp_path, numpy_runtime):
    """A tiny developmental run through loop.Development: every row carries its age, run.json the
    mapping, trophic deaths are recorded with their age and remove every synapse of the dead;
    a run killed after period 2 and resumed ends in the same state and table."""
    from sdsnn_bio.history import History
    from sdsnn_bio.records import RunFolder

    cfg = config_from_dict(TINY)
    a = _run(cfg, tmp_path / "a")
    b = _run(cfg, tmp_path / "b", stop_after=2)
    fa, fb = RunFolder(tmp_path / "a"), RunFolder(tmp_path / "b")
    ta, tb = fa.read_table(), fb.read_table()
    np.testing.assert_array_equal(ta["age_days"], [1.0, 2.0, 3.0, 4.0])
    for c in ta:
        if c not in ("wall_s", "struct_s"):
            np.testing.assert_array_equal(ta[c], tb[c], err_msg=c)
    sa, sb = fa.load_snapshot("last"), fb.load_snapshot("last")
    assert sa.period == sb.period == 3
    for k in sa.arrays:
        np.testing.assert_array_equal(sa.arrays[k], sb.arrays[k], err_msg=k)
    meta = fa.read_meta()
    assert meta["kind"] == "development"
    assert meta["time_axis"]["compression"] == pytest.approx(86400 / 0.02)
    assert a["final_age_days"] == 4.0 and b["final_age_days"] == 4.0
    # deaths: recorded with the age, all synapses of the dead removed, rows count them
    death_age = sa.arrays["trophic/death_age"]
    dead = np.isfinite(death_age)
    assert dead.sum() == ta["died"].sum() == cfg.n_neurons - ta["n_alive"][-1] > 0
    assert set(death_age[dead]) <= set(ta["age_days"])
    pre, post = History(tmp_path / "a").stages[0].pre_index, History(tmp_path / "a").stages[0].post_index
    conn = sa.arrays["exc/syn/connected"] > 0
    assert not (conn & (dead[pre] | dead[post])).any()
    assert np.all(sa.arrays["cortex/alive"][dead] == 0)
    # the history holds the spine mask of every period, equal to the snapshot's
    h = History(tmp_path / "a")
    assert list(h.periods) == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(h.mask("exc", 3), conn)
    assert int(h.mask("exc", 3).sum()) == ta["spines"][-1]


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d.update(kind="growth"), ["key 'kind'", "'development'"]),
    (lambda d: d.update(layers=[]), ["unknown key 'layers'", "development"]),
    (lambda d: d["network"].update(n_exc=1), ["network.n_exc", ">= 2"]),
    (lambda d: d["network"].update(p_exc=0.0), ["network.p_exc"]),
    (lambda d: d["time"].update(struct_steps=3), ["time.struct_steps", "divisor"]),
    (lambda d: d["time"].update(activity_s="1"), ["time.activity_s", "a finite number"]),
    (lambda d: d.update(spines={"v_new": 0.01, "v_min": 0.02}), ["spines.v_new"]),
    (lambda d: d.update(trophic={"end_days": -1.0}), ["trophic.end_days"]),
    (lambda d: d.update(sdsnn={"regeneration": True}), ["sdsnn.regeneration", "importance_pruning"]),
    (lambda d: d.update(spines={"typo": 1.0}), ["spines.typo"]),
])
def test_config_errors_name_the_key(mutate, words):
    d = {k: (dict(v) if isinstance(v, dict) else v) for k, v in TINY.items()}
    mutate(d)
    with pytest.raises(ConfigError) as exc:
        config_from_dict(d, source="m.toml")
    for w in words:
        assert w in str(exc.value), str(exc.value)
    assert "m.toml" in str(exc.value)


def test_shipped_developmental_models_and_time_axis():
    cfg = load_config(find_model("cortex_small"))
    assert cfg.kind == "development" and cfg.n_neurons <= 1000
    ax = cfg.time_axis()
    assert ax["final_age_days"] == cfg.age_at_end(cfg.schedule.periods - 1) == \
        cfg.time.age_start_days + cfg.schedule.periods * cfg.time.days_per_period
    assert ax["compression"] == pytest.approx(cfg.time.days_per_period * 86400 / cfg.time.activity_s)
    again = config_from_dict(cfg.to_dict(), source="x")
    assert again.to_dict() == cfg.to_dict()


def test_importance_pruning_removes_the_least_important(tmp_path, numpy_runtime):
    """sdsnn.importance_pruning: after each period the prune_rate percent of the living excitatory
    neurons with the smallest live afferent spine volume are removed with all their synapses."""
    from sdsnn_bio.cortex import build_cortex

    cfg = config_from_dict({**TINY, "trophic": {"enabled": False},
                            "sdsnn": {"importance_pruning": True, "prune_rate": 25.0}})
    net = build_cortex(cfg, "runtime", tmp_path)
    try:
        net.begin_period(0)
        net.run()
        vol, conn = net.get(net.S, "vol"), net.get(net.S, "connected")
        imp = np.bincount(net.e_post, weights=vol * conn, minlength=net.n)
        out = net.decide(0)
        assert len(out["died"]) == 0 and len(out["pruned"]) == 24 // 4
        pruned = out["pruned"]
        kept = np.setdiff1d(np.arange(24), pruned)
        assert imp[pruned].max() <= imp[kept].min()
        s = net.state_arrays()
        assert np.all(s["cortex/alive"][pruned] == 0) and np.all(s["trophic/death_cause"][pruned] == 2)
        gone = np.isin(net.e_pre, pruned) | np.isin(net.e_post, pruned)
        assert not s["exc/syn/connected"][gone].any() and s["exc/syn/connected"][~gone].sum() == conn[~gone].sum()
    finally:
        net.close()
