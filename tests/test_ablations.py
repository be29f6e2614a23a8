"""Ablations as model options: each new code path against its numpy twin.

* generated code (runtime device, one small build): without the constraint the
  spines still update and the weights are not clipped; with ``importance =
  "weight"`` the per-neuron sums are the live weight magnitudes;
* between-runs decisions (numpy only, a fake network): a fixed pruning rate stays
  at ``rho0``; units ranked by weight magnitude; no clip when the constraint is off;
* the default configuration's generated code is the one it was before the options
  (the strings, compared with the literal code of the paper's rule);
* the ``ablate`` command's job expansion (no run) and its table on known rows.
"""

import re
import tomllib

import numpy as np
import pytest

from sdsnn_bio import ablation
from sdsnn_bio.config import config_from_dict, find_model, load_config
from sdsnn_bio.errors import ConfigError
from sdsnn_bio.geometry import stage_geometry
from sdsnn_bio.interface import StructuralState
from sdsnn_bio.spines import structural_pathways
from sdsnn_bio.structure import (
    clip_weights,
    neuron_importance,
    select_pruned,
    unit_importance,
    update_spines,
)
from sdsnn_bio.structure.neurotrophic import last_rate_update, next_rate
from sdsnn_bio.structure.pruning import importance_code, importance_quantity
from sdsnn_bio.structure.step import StructuralDevelopment

from test_equivalence import N_TEST, N_TRAIN, build, random_structural_state, set_synapse_state, small_config


def ablated(cfg, **structure):
    return cfg.replace(structure=structure)


# ------------------------------------------------------------------ configuration
def test_config_validates_the_ablation_keys():
    base = small_config().to_dict()
    for key, bad, msg in (("importance", "width", "'spine' (spine widths, the paper) or 'weight' (weight magnitudes, an ablation), got 'width'"),
                          ("constraint", "no", "must be a boolean"), ("neurotrophic", 0, "must be a boolean"),
                          ("fixed_clip", 1, "must be a boolean")):
        d = {**base, "structure": {**base["structure"], key: bad}}
        with pytest.raises(ConfigError, match=re.escape(f"small.toml: key 'structure.{key}' ") + "must be " + re.escape(msg.replace("must be ", ""))):
            config_from_dict(d, source="small.toml")
    cfg = ablated(small_config(), constraint=False, neurotrophic=False, importance="weight")
    assert (cfg.structure.constraint, cfg.structure.neurotrophic, cfg.structure.importance) == \
        (False, False, "weight")


def test_default_generated_code_is_the_papers_rule():
    """The default strings are exactly the code the paper's rules had before the options."""
    assert importance_code() == "\nimp_post += connected*(r_up + abs(r_lo))\nlive_post += connected\n"
    assert importance_code("weight") == "\nimp_post += connected*(abs(w))\nlive_post += connected\n"
    for spines in (True, False):
        for clip in (True, False):
            assert structural_pathways(spines, clip, True) == \
                structural_pathways(spines, clip, True, importance="spine")
            assert structural_pathways(spines, clip, True)["pend"].endswith(importance_code())
    with pytest.raises(ValueError, match="importance must be one of spine, weight"):
        importance_code("width")


# ------------------------------------------------------------------ generated code
def test_ablated_structural_code_matches_numpy(tmp_path, numpy_runtime):
    """No constraint (clip_on stays 0, as the schedule sets it) and weight importance, on runtime
    (Brian2's numpy target: a Cython build of the network costs minutes on a fresh clone)."""
    cfg = ablated(small_config(), constraint=False, importance="weight")
    net, _ = build(cfg, "runtime", tmp_path, N_TEST, N_TRAIN)
    rng = np.random.default_rng(11)
    state = random_structural_state(net, rng)
    dev = StructuralDevelopment(cfg, net.stages)
    settings = dev.stage_settings(cfg.schedule.spine_streak + 5, decisions_of=None)
    assert all(s.clip is False for s in settings.values())
    for st in net.learnable_stages:
        s = state[st.spec.name]
        set_synapse_state(net, st, s)
        net.set_next(st.group, "prune_now", np.zeros(st.n_neurons))
        net.set_stage_flags(st, regen_on=0, regen_threshold=0.0, mask_on=1,
                            clip_on=float(settings[st.name].clip))
    net.set_inputs(np.zeros((N_TEST + N_TRAIN, 20)), np.zeros((N_TEST + N_TRAIN, 3)))
    net.set_shared(lr=0.0, adam_k0=0, learn_on=0, struct_on=1, hard_mask=0, bias_mask_on=0)
    net.run()
    clipped_in_full = 0
    for st in net.learnable_stages:
        s = state[st.spec.name]
        conn = s["connected"]
        w = s["w"] * conn
        sp = update_spines(s["sp"], w, n_streak=2, shrink=cfg.structure.shrink) if st.spec.spines else s["sp"]
        # the spines moved as in the full model, the weights were not clipped
        for name in ("r_up", "r_lo", "c_up", "c_lo", "c_ret", "a_prev"):
            np.testing.assert_allclose(net.get(st.synapses, name), getattr(sp, name), rtol=0, atol=1e-12)
        np.testing.assert_allclose(net.get(st.synapses, "w"), w, rtol=0, atol=1e-12)
        clipped_in_full += int(np.sum(clip_weights(w, sp) != w))
        if st.spec.prune:
            q = importance_quantity("weight", w, sp.r_up, sp.r_lo)
            lo, hi = q.min(), q.max()
            imp, live = net.get(st.group, "imp"), net.get(st.group, "live")
            np.testing.assert_allclose(imp, np.bincount(st.post_index, weights=conn * np.abs(w),
                                                        minlength=st.n_neurons), rtol=0, atol=1e-12)
            np.testing.assert_allclose((imp - lo * live) / (hi - lo),
                                       neuron_importance(q, conn, st.post_index, st.n_neurons),
                                       rtol=0, atol=1e-10)
    assert clipped_in_full > 0, "the full model would have clipped some of these weights"


# ------------------------------------------------------------------ between runs
class FakeNet:
    """The structural state of every pruned stage as numpy arrays (no simulation)."""

    def __init__(self, stages, rng):
        self.states = {}
        for st in stages:
            if not st.learnable:
                continue
            n = st.n_synapses
            w = rng.normal(0, 0.3, n)
            up, lo = rng.uniform(0.1, 0.5, n), -rng.uniform(0.1, 0.5, n)
            conn = (rng.uniform(size=n) > 0.2).astype(float)
            self.states[st.name] = (w, up, lo, conn, st)

    def structural_state(self, name):
        w, up, lo, conn, st = self.states[name]
        return StructuralState(weights=w, upper=up, lower=lo, connected=conn,
                               importance=np.bincount(st.post_index, weights=conn * (up + np.abs(lo)),
                                                      minlength=st.n_neurons),
                               live=np.bincount(st.post_index, weights=conn, minlength=st.n_neurons),
                               regenerated=np.zeros(st.n_neurons))


def weight_sums(net, st):
    """What the 'weight' importance code sums per neuron."""
    w, up, lo, conn, _ = net.states[st.name]
    return np.bincount(st.post_index, weights=conn * np.abs(w), minlength=st.n_neurons)


@pytest.mark.parametrize("neurotrophic", [True, False])
def test_fixed_rate_keeps_rho0(neurotrophic):
    cfg = ablated(small_config(), neurotrophic=neurotrophic)
    stages = stage_geometry(cfg)
    net = FakeNet(stages, np.random.default_rng(2))
    dev = StructuralDevelopment(cfg, stages)
    S = cfg.schedule.structure_start
    rho0 = cfg.layers[0].rho0
    expect = rho0
    for e in range(S, S + 4):
        dev.decide(e, net)
        ls = dev.layers["hid"]
        assert ls.extra["rho_used"] == expect
        alive = 7 - ls.dead
        expect = last_rate_update(expect, e, alive, 3, a=cfg.structure.rate_a, c=cfg.structure.rate_c,
                                  switch=cfg.structure.rate_switch, start=S) if neurotrophic else rho0
        assert ls.rho == pytest.approx(expect, rel=0, abs=1e-12)
    assert (ls.rho > rho0) == neurotrophic
    assert next_rate("fixed", 12.5, 50, 3, start=S) == 12.5


@pytest.mark.parametrize("by", ["spine", "weight"])
def test_pruning_decision_ranks_by_the_configured_quantity(by):
    cfg = ablated(small_config(), importance=by)
    stages = stage_geometry(cfg)
    rng = np.random.default_rng(5)
    net = FakeNet(stages, rng)
    st = next(s for s in stages if s.pruned)
    if by == "weight":   # the weight code's sums (the fake's 'importance' is the spine one)
        net.structural_state = (lambda orig: lambda name: _with_importance(orig(name), weight_sums(net, st)))(
            net.structural_state)
    dev = StructuralDevelopment(cfg, stages)
    dev.decide(cfg.schedule.structure_start, net)
    w, up, lo, conn, _ = net.states[st.name]
    q = importance_quantity(by, w, up, lo)
    expect = select_pruned(unit_importance(neuron_importance(q, conn, st.post_index, st.n_neurons),
                                           st.unit_of_neuron, st.n_units), cfg.layers[0].rho0,
                           np.zeros(st.n_units, bool))
    np.testing.assert_array_equal(dev.layers[st.name].prune_now, expect)
    assert expect.sum() == 2   # floor(7 * 30 / 100)


def test_weight_and_spine_rankings_differ_on_the_same_state():
    cfg = small_config()
    stages = stage_geometry(cfg)
    st = next(s for s in stages if s.pruned)
    net = FakeNet(stages, np.random.default_rng(5))
    w, up, lo, conn, _ = net.states[st.name]
    ranks = {by: np.argsort(neuron_importance(importance_quantity(by, w, up, lo), conn, st.post_index,
                                              st.n_neurons), kind="stable") for by in ("spine", "weight")}
    assert not np.array_equal(ranks["spine"], ranks["weight"])


def _with_importance(state, imp):
    state.importance = imp
    return state


@pytest.mark.parametrize("constraint", [True, False])
@pytest.mark.parametrize("fixed_clip", [True, False])
def test_constraint_switch_in_the_schedule(constraint, fixed_clip):
    """The constraint clips from period N + 1; ``fixed_clip = false`` frees the layer that clips
    without spines (``out``) and keeps the spine-bearing layer's (``hid``) clip."""
    cfg = ablated(small_config(), constraint=constraint, fixed_clip=fixed_clip)
    dev = StructuralDevelopment(cfg, stage_geometry(cfg))
    N = cfg.schedule.spine_streak
    for e in (N, N + 1, N + 5):
        for kw in ({"decisions_of": None}, {"decisions_of": e - 1}, {"repeat": True}):
            clips = {name: s.clip for name, s in dev.stage_settings(e, **kw).items()}
            on = constraint and e > N
            assert clips == {"hid": on, "out": on and fixed_clip}, (e, kw)


# ------------------------------------------------------------------ the ablate command
def test_ablation_sweep_expands_to_variants_and_seeds(tmp_path):
    from sdsnn_bio.sweep import load_sweep

    text = ablation.ablation_sweep("tiny_dense", 2, {"periods": 3, "device": "runtime", "n_train": None})
    raw = tomllib.loads(text)
    variants = ["full", "no_constraint", "no_fixed_clip", "no_regeneration", "fixed_rate", "weight_importance",
                "hard_masks", "dense"]
    assert raw["grid"] == {"model": ["tiny_dense"], "ablation": variants, "seed": [0, 1]}
    assert raw["options"] == {"periods": 3, "device": "runtime"}
    path = tmp_path / "ablate.toml"
    path.write_text(text)
    sweep = load_sweep(path)
    assert len(sweep.jobs) == 16
    expect = {"full": {}, "no_constraint": {"constraint": False}, "no_fixed_clip": {"fixed_clip": False},
              "no_regeneration": {"regeneration": False},
              "fixed_rate": {"neurotrophic": False}, "weight_importance": {"importance": "weight"},
              "hard_masks": {"masks": "hard"}, "dense": {"enabled": False}}
    default = load_config(find_model("tiny_dense")).structure
    for job in sweep.jobs:
        stc = job.config.structure
        changed = {k: getattr(stc, k) for k in ("constraint", "fixed_clip", "regeneration", "neurotrophic",
                                                "importance", "masks", "enabled")
                   if getattr(stc, k) != getattr(default, k)}
        assert changed == expect[job.values["ablation"]], job.id
        assert job.config.schedule.seed == job.values["seed"] and job.config.schedule.periods == 3
    # with shared builds: the variants whose keys are run-time values (the constraint and the
    # fixed clip, regeneration, the neurotrophic update, the masks) and the seeds share the full
    # model's builds, 12 jobs cut into two of 6 copies (at most 8 a build); the importance
    # ranking and the dense twin change the generated code (sdsnn_bio.multi)
    from sdsnn_bio.sweep import plan_builds

    builds = plan_builds([j.to_dict(tmp_path / "out") for j in sweep.jobs], 8)
    shared = [sorted({j["values"]["ablation"] for j in b}) for b in builds]
    assert shared == [["full", "no_constraint", "no_fixed_clip"], ["fixed_rate", "hard_masks", "no_regeneration"],
                      ["weight_importance"], ["dense"]]
    assert [len(b) for b in builds] == [6, 6, 2, 2]
    # a model that already uses hard masks gets the soft ones as its ablation
    assert "soft_masks" in ablation.model_variants(load_config(find_model("mnist5k_fc")))
    # no_fixed_clip only where a layer clips without spines
    assert "no_fixed_clip" not in ablation.model_variants(small_config(out_clip=False))
    assert "no_fixed_clip" in ablation.model_variants(small_config())
    # an ablation with nothing to act on would run the full model again: none without a
    # pruned layer for the pruning keys, none of the clip for a model that clips nothing or
    # has the constraint off already
    base = small_config().to_dict()

    def variant_of(hid=None, **structure):
        d = {**base, "structure": {**base["structure"], **structure},
             "layers": [{**base["layers"][0], **(hid or {})}, base["layers"][1]]}
        return ablation.model_variants(config_from_dict(d, source="small.toml"))

    assert variant_of() == ["full", "no_constraint", "no_fixed_clip", "no_regeneration", "fixed_rate",
                            "weight_importance", "hard_masks", "dense"]
    assert variant_of(hid={"prune": False}) == ["full", "no_constraint", "no_fixed_clip", "dense"]
    assert variant_of(constraint=False) == ["full", "no_regeneration", "fixed_rate", "weight_importance",
                                            "hard_masks", "dense"]
    nothing_clipped = {**base, "layers": [{**base["layers"][0], "spines": False, "clip": False},
                                          {**base["layers"][1], "clip": False}]}
    assert ablation.model_variants(config_from_dict(nothing_clipped, source="small.toml")) == \
        ["full", "no_regeneration", "fixed_rate", "weight_importance", "hard_masks", "dense"]
    with pytest.raises(ConfigError, match="unknown ablation 'no_spines'"):
        ablation.ablation_sweep("tiny_dense", 2, variants=["no_spines"])
    with pytest.raises(ConfigError, match="--seeds must be an integer >= 1"):
        ablation.ablation_sweep("tiny_dense", 0)


def test_ablation_table_pairs_by_seed():
    rows = []
    acc = {"full": [0.90, 0.92, 0.94], "no_constraint": [0.88, 0.91, 0.90], "dense": [0.91, 0.93, 0.95]}
    comp = {"full": [0.5, 0.6, 0.7], "no_constraint": [0.5, 0.5, 0.5], "dense": [0.0, 0.0, 0.0]}
    for name in acc:
        for s in range(3):
            rows.append({"ablation": name, "seed": s, "status": "done", "final_test_accuracy": acc[name][s],
                         "compression": comp[name][s]})
    rows.append({"ablation": "no_constraint", "seed": 3, "status": "error"})
    table = {r["ablation"]: r for r in ablation.ablation_table(rows)}
    nc = table["no_constraint"]
    assert nc["n"] == 3
    assert nc["accuracy_mean"] == pytest.approx(np.mean(acc["no_constraint"]))
    d = np.subtract(acc["no_constraint"], acc["full"])
    assert nc["d_accuracy_mean"] == pytest.approx(d.mean())
    assert nc["d_accuracy_std"] == pytest.approx(np.std(d, ddof=1))
    assert nc["d_compression_mean"] == pytest.approx(-0.1)
    assert table["full"]["d_accuracy_mean"] == 0.0
    text = ablation.format_ablation_table(list(table.values()))
    assert "no_constraint  3      89.67 +- 1.53" in text
    assert f"{100 * d.mean():+.2f} +- {100 * np.std(d, ddof=1):.2f}" in text
