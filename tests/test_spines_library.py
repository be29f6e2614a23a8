"""The spine-bearing synapse as a Brian2 library, on a user's own groups (runtime).

Each structural rule that :func:`sdsnn_bio.spines.spine_synapses` runs as
generated code is compared with its numpy twin in :mod:`sdsnn_bio.structure`.
The code runs on Brian2's ``numpy`` target, which a user without a C compiler
gets: it compiles nothing (about 100 s less on a fresh clone than the Cython
target); the same rules as Cython and C++ code are checked against the twins by
``tests/test_equivalence.py``.
"""

import numpy as np
import pytest

from sdsnn_bio.spines import decide_pruning, decide_regeneration, initialise_spines, spine_synapses
from sdsnn_bio.structure import (
    RegenerationState,
    clip_weights,
    neuron_importance,
    regenerate,
    select_pruned,
    spine_width,
    update_spines,
)
from sdsnn_bio.structure.constraint import SPINE_FIELDS, SpineState

N_PRE, N_POST = 12, 6


def _state(syn):
    return SpineState(**{v: np.asarray(syn.variables[v].get_value()).copy() for v in SPINE_FIELDS})


@pytest.fixture
def network():
    import brian2 as b2

    b2.prefs.codegen.target = "numpy"   # reset to the default after the test (conftest)
    b2.defaultclock.dt = 0.1 * b2.ms
    src = b2.NeuronGroup(N_PRE, "v : 1", threshold="v > 1", reset="v = 0", name="src")
    tgt = b2.NeuronGroup(N_POST, "v : 1\nprune_now : 1", name="tgt")
    syn = spine_synapses(src, tgt, structural_dt=10 * b2.ms, n_streak=2, regen_streak=0, name="syn")
    rng = np.random.default_rng(4)
    syn.w = rng.normal(0, 0.5, len(syn))
    net = b2.Network(src, tgt, syn)
    return b2, net, syn, rng


def test_spine_rules_on_a_users_groups_match_numpy(network):
    b2, net, syn, rng = network
    net.run(5 * b2.ms)                      # tick at t = 0 (spines not yet initialised, clip off)
    spines = initialise_spines(syn)
    w0 = np.asarray(syn.w[:]).copy()
    assert np.all(syn.r_up[:] == w0.max()) and np.all(syn.r_lo[:] == -w0.max())
    syn.clip_on = 1.0
    net.run(10 * b2.ms)                     # tick at t = 10 ms: spine update, then the constraint
    expected = update_spines(spines, w0 * 1.0, n_streak=2, shrink=0.75)
    got = _state(syn)
    for name in SPINE_FIELDS:
        np.testing.assert_allclose(getattr(got, name), getattr(expected, name), rtol=0, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(syn.w[:], clip_weights(w0, expected), rtol=0, atol=1e-12)

    # pruning: the neurons chosen from the arrays lose all their afferent synapses at the next tick
    history = np.zeros(N_POST, bool)
    width = spine_width(_state(syn))
    imp = neuron_importance(width, np.asarray(syn.connected[:]), np.asarray(syn.j[:]), N_POST)
    chosen, dead = decide_pruning(syn, 50.0, history)
    np.testing.assert_array_equal(chosen, select_pruned(imp, 50.0, history))
    assert chosen.sum() == 3 and dead == 3
    net.run(10 * b2.ms)                     # tick at t = 20 ms
    post = np.asarray(syn.j[:])
    assert np.all(syn.connected[:][chosen[post]] == 0) and np.all(syn.w[:][chosen[post]] == 0)
    assert np.all(syn.connected[:][~chosen[post]] == 1)


def test_regeneration_on_a_users_groups_matches_numpy(network):
    b2, net, syn, rng = network
    n = len(syn)
    connected = (rng.uniform(size=n) > 0.5).astype(float)
    syn.connected = connected
    syn.target.prune_now = 0.0
    w = np.asarray(syn.w[:]).copy()
    state = RegenerationState(streak=np.zeros(n), cand_prev=np.zeros(n))
    q, thr = decide_regeneration(syn, period=5, q0=40.0, start=5)
    assert q == pytest.approx(41.0) and thr == pytest.approx(np.percentile(w, 41.0))
    syn.mask_on = 0.0
    conn = connected
    for _ in range(2):                      # a candidate twice in a row regrows (M = 0)
        net.run(10 * b2.ms)
        conn, state, regrown = regenerate(conn, w, thr, state, 0)
        np.testing.assert_array_equal(syn.connected[:], conn)
        np.testing.assert_array_equal(syn.regen_k[:], state.streak)
    assert regrown.sum() > 0, "the test must regrow synapses"
