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
                    "v_min": 0.03, "sigma_t": 0.8, "eta_act": 0.5, "eta_comp": 0.7, "vol_per_site": 0.02,
                    "formation_end_days": 2.4, "formation_end_width_days": 0.3,    # formation halves in the period
                    "formation_aging_days": 1.5}}                                  # adult formation falls with age
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
        f = rules.formation_rate([2.0, 2.75], cfg.spines)
        assert f[0] > 1.5 * f[1] and f[1] > cfg.spines.f_adult / (1 + 2.75 / 1.5)   # spinogenesis ends here
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
          "k_cons": 0.0, "f_birth": 0.0, "f_adult": 0.0, "tau_f": 1.0, "age_f": 1e9, "w_f": 1.0, "tau_age": 1e9, "eta_act": 0.0, "eta_comp": 0.0, "a_norm": 1.0,
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
    (lambda d: d.update(sdsnn={"neurotrophic_rate": True}), ["sdsnn.neurotrophic_rate", "importance_pruning"]),
    (lambda d: d.update(sdsnn={"constraint_shrink": 1.5}), ["sdsnn.constraint_shrink", "(0, 1]"]),
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


def test_formation_rate_ends_with_spinogenesis_and_falls_with_age():
    """The shipped formation rate: f_birth at birth, a drop around formation_end_days, then
    adult formation halved at formation_aging_days (benchmarks/cortex_calibration.md)."""
    sp = load_config(find_model("cortex_development")).spines
    assert sp.formation_aging_days == 392.0 and sp.formation_end_days == 19.4
    ages = np.arange(0.0, 231.0)
    f = rules.formation_rate(ages, sp)
    assert f[0] == pytest.approx(sp.f_birth, rel=1e-2)
    assert np.all(np.diff(f) < 0)
    end = int(sp.formation_end_days)
    assert f[end - 3] > 2 * f[end + 3]           # the end of spinogenesis
    assert rules.formation_rate([sp.formation_aging_days], sp)[0] == pytest.approx(sp.f_adult / 2, rel=1e-9)
    assert f[200] == pytest.approx(sp.f_adult / (1 + 200 / sp.formation_aging_days), rel=1e-9)


def test_shipped_developmental_models_and_time_axis():
    cfg = load_config(find_model("cortex_small"))
    assert cfg.kind == "development" and cfg.n_neurons <= 1000
    ax = cfg.time_axis()
    assert ax["final_age_days"] == cfg.age_at_end(cfg.schedule.periods - 1) == \
        cfg.time.age_start_days + cfg.schedule.periods * cfg.time.days_per_period
    assert ax["compression"] == pytest.approx(cfg.time.days_per_period * 86400 / cfg.time.activity_s)
    again = config_from_dict(cfg.to_dict(), source="x")
    assert again.to_dict() == cfg.to_dict()
    # cortex_sdsnn is cortex_development with SD-SNN's four rules on, every other value the same
    dev, sd = load_config(find_model("cortex_development")).to_dict(), load_config(find_model("cortex_sdsnn")).to_dict()
    assert all(sd["sdsnn"][k] for k in ("spine_constraint", "regeneration", "importance_pruning", "neurotrophic_rate"))
    assert not any(dev["sdsnn"][k] for k in ("spine_constraint", "regeneration", "importance_pruning",
                                             "neurotrophic_rate"))
    for k in dev:
        if k not in ("sdsnn", "name", "description"):
            assert sd[k] == dev[k], k


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


# ------------------------------------------------- SD-SNN's rules in biological time
def _silent_net(tmp_path, sdsnn):
    """A tiny developmental network without drive (no spike: the pairing counts stay as set)."""
    from sdsnn_bio.cortex import build_cortex

    cfg = config_from_dict({**TINY, "drive": {"n_ext": 0}, "trophic": {"enabled": False},
                            "spines": {"f_birth": 2.0, "f_adult": 0.5, "sigma_t": 0.8, "v_min": 0.03},
                            "sdsnn": sdsnn})
    return cfg, build_cortex(cfg, "runtime", tmp_path)


def _random_spines(net, rng):
    n_syn = len(net.e_pre)
    state = {"vol": np.exp(rng.normal(-3.0, 0.6, n_syn)), "connected": (rng.random(n_syn) < 0.5) * 1.0,
             "stable": (rng.random(n_syn) < 0.3) * 1.0, "rs": rng.integers(1, 2 ** 31 - 1, n_syn) * 1.0,
             "xc": rng.random(n_syn) * 0.05}
    state["stable"] *= state["connected"]
    return state


def test_spine_constraint_in_generated_code_matches_training_rules(tmp_path, numpy_runtime):
    """sdsnn.spine_constraint: after period 0 the intervals are init_spines of the volumes; at a
    period's start the generated update equals structure.constraint.update_spines on vol x connected,
    and from period N + 1 on every structural step clips a live spine's volume into [r_lo, r_up]
    (rules.spine_step with clip), all to the last bit on runtime's numpy target."""
    from sdsnn_bio.structure.constraint import SPINE_FIELDS, SpineState, init_spines, update_spines

    n_streak = 2
    cfg, net = _silent_net(tmp_path, {"spine_constraint": True, "constraint_n_streak": n_streak,
                                      "constraint_shrink": 0.75})   # the paper's (binary-exact: 1 - (1 - 0.75) = 0.75)
    try:
        # the intervals after the first period: init_spines on the volumes of the live spines
        net.begin_period(0)
        net.run()
        w0 = net.get(net.S, "vol") * net.get(net.S, "connected")
        net.decide(0)
        s = net.state_arrays()
        ref = init_spines(w0)
        for f in SPINE_FIELDS:
            np.testing.assert_array_equal(s[f"exc/constraint/{f}"], getattr(ref, f), err_msg=f)
        # a later period from a random state: streaks near N, bounds near the volumes
        rng = np.random.default_rng(5)
        state = _random_spines(net, rng)
        n_syn = len(net.e_pre)
        vm = state["vol"] * state["connected"]
        sc = {"r_up": vm * rng.uniform(0.5, 1.5, n_syn) + 0.01, "r_lo": -rng.uniform(0.0, 0.1, n_syn),
              "c_up": rng.integers(0, n_streak, n_syn) * 1.0, "s_up": rng.random(n_syn) * 0.01,
              "c_lo": np.zeros(n_syn), "s_lo": np.zeros(n_syn), "c_ret": rng.integers(0, n_streak, n_syn) * 1.0,
              "a_prev": vm * rng.uniform(0.5, 1.5, n_syn), "prev_up": (rng.random(n_syn) < 0.7) * 1.0,
              "prev_lo": np.zeros(n_syn), "prev_ret": (rng.random(n_syn) < 0.7) * 1.0}
        for k, v in {**state, **sc}.items():
            net.runner.set_next(net.S, k, v)
        alive = np.ones(net.n)
        net.runner.set_next(net.G, "alive", alive)
        net.begin_period(n_streak + 1)          # the constraint clips from period N + 1 on
        net.run()
        upd = update_spines(SpineState(**sc), vm, n_streak=n_streak, shrink=0.75)
        ns = net.step_namespace()
        step_s = cfg.time.activity_s / cfg.time.struct_steps
        twin = dict(state)
        for k in range(cfg.time.struct_steps):
            twin = rules.spine_step(twin, alive[net.e_pre], alive[net.e_post], k * step_s, 3.0, ns,
                                    clip=(upd.r_lo, upd.r_up))
        for f in SPINE_FIELDS:      # the sums are associated differently ((s + wm) - r vs s + (wm - r))
            if f in ("r_up", "r_lo", "s_up", "s_lo"):
                np.testing.assert_allclose(net.get(net.S, f), getattr(upd, f), rtol=1e-14, atol=1e-17, err_msg=f)
            else:
                np.testing.assert_array_equal(net.get(net.S, f), getattr(upd, f), err_msg=f)
        for k in ("connected", "stable", "rs", "xc"):
            np.testing.assert_array_equal(net.get(net.S, k), twin[k], err_msg=k)
        np.testing.assert_allclose(net.get(net.S, "vol"), twin["vol"], rtol=1e-12)
        # the rule acted: bounds grew and shrank, live volumes sit at their bound
        upd.r_up = net.get(net.S, "r_up")
        assert (upd.r_up > sc["r_up"]).any() and (upd.r_up < sc["r_up"]).any()
        live = net.get(net.S, "connected") > 0
        assert np.all(net.get(net.S, "vol")[live] <= upd.r_up[live])
        assert np.any(net.get(net.S, "vol")[live] == upd.r_up[live])
    finally:
        net.close()


def test_regeneration_in_generated_code_matches_training_rules(tmp_path, numpy_runtime):
    """sdsnn.regeneration: after a period the threshold is the q(age) percentile of the sites'
    pairing counts (structure.regeneration.regeneration_decision); at the next period's start the
    generated code equals structure.regeneration.regenerate on the sites between living neurons;
    the new spines are transient of volume v_new; then the steps count the new period's pairings."""
    from sdsnn_bio.structure.regeneration import regeneration_percentile

    m = 1
    cfg, net = _silent_net(tmp_path, {"regeneration": True, "regen_start_days": 2.0, "regen_max_streak": m,
                                      "regen_q0": 50.0})
    try:
        rng = np.random.default_rng(8)
        n_syn = len(net.e_pre)
        state = _random_spines(net, rng)
        state["vol"] = np.where(state["connected"] > 0, state["vol"], cfg.spines.v_new)   # as the model keeps it
        xp = rng.random(n_syn) * (rng.random(n_syn) < 0.8)
        k0 = rng.integers(0, m + 2, n_syn) * 1.0
        prev0 = (rng.random(n_syn) < 0.6) * 1.0
        alive = np.ones(net.n)
        alive[[2, 9, 27]] = 0.0
        for k, v in {**state, "xp": xp, "regen_k": k0, "regen_prev": prev0}.items():
            net.runner.set_next(net.S, k, v)
        net.runner.set_next(net.G, "alive", alive)
        # before regen_start_days: no regeneration decided
        net.begin_period(0)
        net.run()
        net.decide(0)
        assert net.regen_next.tolist() == [0.0, 0.0]
        # a period at age 5 d with the regeneration decided for it: q(5) of the counts xp
        for k, v in {**state, "xp": xp, "regen_k": k0, "regen_prev": prev0}.items():
            net.runner.set_next(net.S, k, v)
        net.runner.set_next(net.G, "alive", alive)
        q = regeneration_percentile(5.0, 50.0, start=2.0)
        assert q == pytest.approx(50 + 1.1 ** 3)
        thr = float(np.percentile(xp, q))
        net.regen_next = np.array([1.0, thr])
        net.begin_period(5)
        net.run()
        conn, k1, prev1, regrown = rules.regenerate_sites(state["connected"], xp, alive[net.e_pre],
                                                          alive[net.e_post], thr, k0, prev0, m)
        ns = net.step_namespace()
        step_s = cfg.time.activity_s / cfg.time.struct_steps
        twin = {**state, "connected": conn, "stable": state["stable"] * conn, "xp": np.zeros(n_syn),
                "vol": state["vol"]}
        for k in range(cfg.time.struct_steps):
            twin = rules.spine_step(twin, alive[net.e_pre], alive[net.e_post], k * step_s, 5.0, ns)
        np.testing.assert_array_equal(net.get(net.S, "regen_k"), k1)
        np.testing.assert_array_equal(net.get(net.S, "regen_prev"), prev1)
        for k in ("connected", "stable", "rs", "xc", "xp"):
            np.testing.assert_array_equal(net.get(net.S, k), twin[k], err_msg=k)
        np.testing.assert_allclose(net.get(net.S, "vol"), twin["vol"], rtol=1e-12)
        np.testing.assert_array_equal(net.get(net.S, "xp"), state["xc"])   # silent: the first step's count
        dead = (alive[net.e_pre] == 0) | (alive[net.e_post] == 0)
        assert regrown.sum() >= 3 and not (regrown & dead).any()
        assert ((state["connected"] == 0) & (xp > thr) & dead).any()     # a dead site was a candidate by value
        # the decision after this period: the percentile of its counts
        net.decide(5)
        assert net.regen_next[0] == 1.0
        assert net.regen_next[1] == pytest.approx(np.percentile(state["xc"], regeneration_percentile(6.0, 50.0, 2.0)))
    finally:
        net.close()


def test_neurotrophic_rate_adapts_a_cumulative_pruning_target(tmp_path, numpy_runtime):
    """sdsnn.neurotrophic_rate: rho is the paper's cumulative target (floor(n_exc rho / 100)
    excitatory neurons pruned by importance in all), raised after each pruning by
    structure.neurotrophic.next_rate('hidden') with the alive excitatory over all alive neurons;
    it survives a resume (snapshot key sdsnn/rho)."""
    import math

    from sdsnn_bio.cortex import build_cortex

    cfg = config_from_dict({**TINY, "trophic": {"enabled": False},
                            "sdsnn": {"importance_pruning": True, "prune_rate": 12.0, "neurotrophic_rate": True,
                                      "prune_start_days": 1.0, "neuro_tau_days": 2.0}})
    net = build_cortex(cfg, "runtime", tmp_path)
    try:
        rho, pruned_total = 12.0, 0
        for e in range(4):
            net.begin_period(e)
            net.run()
            out = net.decide(e)
            age = e + 1.0
            want = max(0, math.floor(24 * rho / 100) - pruned_total)
            assert len(out["pruned"]) == want, e
            pruned_total += want
            alive = net.state_arrays()["cortex/alive"] > 0
            rho = rho + math.exp(-(age - 1.0) / 2.0) * alive[:24].sum() / alive.sum()
            assert net.rho == pytest.approx(rho, rel=1e-12)
        assert pruned_total == math.floor(24 * 12.0 / 100) + 1     # rho passed 12.5 %: one more
        assert net.state_arrays()["sdsnn/rho"][0] == net.rho
    finally:
        net.close()
    with pytest.raises(ConfigError, match="sdsnn.neurotrophic_rate"):
        config_from_dict({**TINY, "sdsnn": {"neurotrophic_rate": True}})
