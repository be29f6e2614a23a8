"""Hand-derived checks of the numpy reference SD-SNN structural rules (method §2.1-2.5)."""
import math

import numpy as np
import pytest

from sdsnn_bio.structure import (
    SpineState,
    clip_weights,
    dead_count,
    hidden_rate_update,
    init_regeneration,
    init_spines,
    last_rate_update,
    live_counts,
    n_to_prune,
    neuron_importance,
    normalise,
    regenerate,
    regeneration_percentile,
    regeneration_threshold,
    select_pruned,
    spine_width,
    unit_importance,
    update_spines,
)

# ---------------------------------------------------------------- spines (2.1)


def test_init_spines_uses_largest_signed_weight():
    w = np.array([0.3, -2.0, 0.7, -0.1])
    st = init_spines(w)
    # largest SIGNED weight is 0.7, not max|w| = 2.0
    np.testing.assert_array_equal(st.r_up, [0.7] * 4)
    np.testing.assert_array_equal(st.r_lo, [-0.7] * 4)
    np.testing.assert_array_equal(st.a_prev, [0.3, 2.0, 0.7, 0.1])
    for name in ("c_up", "s_up", "c_lo", "s_lo", "c_ret", "prev_up", "prev_lo", "prev_ret"):
        np.testing.assert_array_equal(getattr(st, name), np.zeros(4), err_msg=name)
        assert getattr(st, name).dtype == np.float64


def test_upper_expansion_on_19th_consecutive_update_by_mean_overshoot():
    # r_up = r_lo magnitude = 1.0 for all synapses; synapse 0 climbs 1.01, 1.02, ...
    st = init_spines(np.array([1.0, 0.2, -0.3]))
    for k in range(1, 19):  # updates 1..18: no expansion yet
        st = update_spines(st, np.array([1.0 + 0.01 * k, 0.2, -0.3]))
        assert st.r_up[0] == 1.0, f"expanded too early at update {k}"
    assert st.c_up[0] == 17  # update 1 only establishes prev_up
    # overshoots counted: updates 2..18 -> 0.01*(2+...+18) = 1.70
    assert st.s_up[0] == pytest.approx(1.70, abs=1e-12)
    st = update_spines(st, np.array([1.19, 0.2, -0.3]))  # update 19
    # s = 0.01*(2+...+19) = 1.89 ; mean over N=18 -> 0.105
    assert st.r_up[0] == pytest.approx(1.105, abs=1e-12)
    assert st.c_up[0] == 0 and st.s_up[0] == 0
    assert st.prev_up[0] == 1
    # other synapses and the lower bound are untouched
    np.testing.assert_array_equal(st.r_up[1:], [1.0, 1.0])
    np.testing.assert_array_equal(st.r_lo, [-1.0, -1.0, -1.0])
    # update 20: streak continues against the new bound
    st = update_spines(st, np.array([1.20, 0.2, -0.3]))
    assert st.c_up[0] == 1
    assert st.s_up[0] == pytest.approx(1.20 - 1.105, abs=1e-12)


def test_weight_equal_to_bound_counts_and_resets_counter():
    st = init_spines(np.array([1.0, 0.0]))
    for _ in range(19):
        st = update_spines(st, np.array([1.0, 0.0]))
    # w == r_up is in U: the streak completes with zero overshoot
    assert st.r_up[0] == 1.0
    assert st.c_up[0] == 0
    st = update_spines(st, np.array([1.0, 0.0]))
    assert st.c_up[0] == 1


def test_broken_upper_streak_restarts():
    st = init_spines(np.array([1.0, 0.0]))
    for _ in range(10):
        st = update_spines(st, np.array([1.5, 0.0]))
    assert st.c_up[0] == 9
    st = update_spines(st, np.array([0.9, 0.0]))  # leaves U
    assert st.c_up[0] == 0 and st.s_up[0] == 0 and st.prev_up[0] == 0
    for _ in range(18):
        st = update_spines(st, np.array([1.5, 0.0]))
    assert st.r_up[0] == 1.0  # 18 consecutive: not yet
    st = update_spines(st, np.array([1.5, 0.0]))
    assert st.r_up[0] == pytest.approx(1.5)  # mean overshoot 0.5


def test_lower_expansion_on_19th_update():
    st = init_spines(np.array([1.0, 0.0, -1.0]))
    for k in range(1, 19):
        st = update_spines(st, np.array([0.5, 0.0, -1.0 - 0.02 * k]))
        assert st.r_lo[2] == -1.0
    st = update_spines(st, np.array([0.5, 0.0, -1.38]))
    # s_lo = -0.02*(2+...+19) = -3.78 -> r_lo = -1 - 3.78/18 = -1.21
    assert st.r_lo[2] == pytest.approx(-1.21, abs=1e-12)
    assert st.c_lo[2] == 0 and st.s_lo[2] == 0
    assert st.r_up[2] == 1.0


def test_retraction_after_19_decreasing_updates():
    st = init_spines(np.array([2.0, 0.5, -0.3]))
    for k in range(1, 19):
        st = update_spines(st, np.array([2.0, 0.5 - 0.01 * k, -0.3]))
        assert st.r_up[1] == 2.0, f"shrank too early at update {k}"
    assert st.c_ret[1] == 17
    st = update_spines(st, np.array([2.0, 0.31, -0.3]))
    assert st.r_up[1] == pytest.approx(1.5)
    assert st.r_lo[1] == pytest.approx(-1.5)
    assert st.c_ret[1] == 0
    np.testing.assert_allclose(st.a_prev, [2.0, 0.31, 0.3])
    # synapses whose magnitude did not fall keep their interval
    assert st.r_up[0] == 2.0 and st.r_up[2] == 2.0


def test_shrink_multiplies_already_expanded_bounds():
    one = lambda v: np.array([v], dtype=float)  # noqa: E731
    st = SpineState(
        r_up=one(1.0), r_lo=one(-1.0),
        c_up=one(17), s_up=one(0.9), c_lo=one(0), s_lo=one(0),
        c_ret=one(17), a_prev=one(5.0),
        prev_up=one(1), prev_lo=one(0), prev_ret=one(1),
    )
    new = update_spines(st, np.array([1.9]))
    # expand: s = 0.9 + 0.9 = 1.8 -> r_up = 1 + 1.8/18 = 1.1 ; then shrink x0.75
    assert new.r_up[0] == pytest.approx(0.825, abs=1e-12)
    assert new.r_lo[0] == pytest.approx(-0.75, abs=1e-12)
    assert new.c_up[0] == 0 and new.c_ret[0] == 0
    assert new.a_prev[0] == pytest.approx(1.9)


def test_update_spines_leaves_input_untouched_and_copy_is_deep():
    st = init_spines(np.array([1.0, -0.5, 0.2]))
    before = st.copy()
    update_spines(st, np.array([3.0, -3.0, 0.0]))
    update_spines(st, np.array([3.0, -3.0, 0.0]))
    for name in ("r_up", "r_lo", "a_prev", "prev_up", "prev_lo", "prev_ret"):
        np.testing.assert_array_equal(getattr(st, name), getattr(before, name), err_msg=name)
    c = st.copy()
    c.r_up[0] = 99.0
    assert st.r_up[0] == 1.0


def test_update_spines_rejects_length_mismatch():
    st = init_spines(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="entries"):
        update_spines(st, np.array([1.0, 2.0, 3.0]))


def test_clip_and_width():
    st = init_spines(np.array([2.0, 0.0, 0.0, 0.0]))
    st.r_lo[:] = [-1.0, -1.0, -0.5, -0.5]
    w = np.array([-3.0, -0.5, 0.4, 3.0])
    np.testing.assert_array_equal(clip_weights(w, st), [-1.0, -0.5, 0.4, 2.0])
    np.testing.assert_array_equal(w, [-3.0, -0.5, 0.4, 3.0])
    np.testing.assert_array_equal(spine_width(st), [3.0, 3.0, 2.5, 2.5])


# --------------------------------------------------------------- pruning (2.2)


def test_normalise():
    np.testing.assert_allclose(normalise([1.0, 3.0, 2.0, 5.0]), [0.0, 0.5, 0.25, 1.0])
    np.testing.assert_array_equal(normalise([4.0, 4.0, 4.0]), [0.5, 0.5, 0.5])
    e = normalise(np.array([]))
    assert e.size == 0


def test_importance_constant_width_gives_half_per_live_synapse():
    width = np.full(6, 1.75)
    connected = np.array([1, 0, 1, 1, 1, 0], dtype=float)
    post = np.array([0, 0, 1, 1, 2, 2])
    s = neuron_importance(width, connected, post, 4)
    np.testing.assert_array_equal(s, [0.5, 1.0, 0.5, 0.0])


def test_importance_normalises_over_all_synapses_including_pruned():
    width = np.array([1.0, 3.0, 2.0, 5.0])  # -> 0, .5, .25, 1 (5.0 is pruned but sets max)
    connected = np.array([1, 1, 1, 0], dtype=float)
    s = neuron_importance(width, connected, np.array([0, 0, 1, 1]), 2)
    np.testing.assert_allclose(s, [0.5, 0.25])


def test_unit_importance_sums_channels():
    scores = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    unit = np.array([0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(unit_importance(scores, unit, 3), [3.0, 7.0, 11.0])


def test_n_to_prune():
    assert n_to_prune(300, 35) == 105  # 0.35*300 == 104.999... in floating point
    assert n_to_prune(100, 29) == 29  # 0.29*100 == 28.999... in floating point
    assert n_to_prune(300, 54.5) == 163
    assert n_to_prune(40, 5) == 2
    assert n_to_prune(10, 150) == 10
    assert n_to_prune(10, -5) == 0
    assert isinstance(n_to_prune(40, 5.0), int)


def test_select_pruned_respects_history_and_cumulative_target():
    imp = np.array([0.0, 0.0, 3.0, 1.0, 2.0])
    hist = np.array([True, True, False, False, False])
    # 60% of 5 -> 3 lowest = {0, 1, 3}; 0 and 1 already pruned
    np.testing.assert_array_equal(select_pruned(imp, 60, hist), [False, False, False, True, False])
    # target 2 is already met by the history: nothing new
    np.testing.assert_array_equal(select_pruned(imp, 40, hist), [False] * 5)
    np.testing.assert_array_equal(
        select_pruned(imp, 100, hist), [False, False, True, True, True]
    )


def test_select_pruned_stable_ties():
    imp = np.full(6, 0.5)
    got = select_pruned(imp, 50, np.zeros(6, dtype=bool))
    np.testing.assert_array_equal(got, [True, True, True, False, False, False])
    # larger layer with interleaved ties: the lowest 20 of 40 are the even indices in
    # index order, so 30% (12 units) must be indices 0, 2, ..., 22
    imp = np.tile([0.0, 1.0], 20)
    got = select_pruned(imp, 30, np.zeros(40, dtype=bool))
    assert np.flatnonzero(got).tolist() == list(range(0, 24, 2))


def test_live_and_dead_counts():
    connected = np.array([1, 1, 0, 1, 0, 0, 1], dtype=float)
    post = np.array([0, 0, 0, 1, 1, 2, 3])
    live = live_counts(connected, post, 5)
    np.testing.assert_array_equal(live, [2, 1, 0, 1, 0])
    assert dead_count(live, 1) == 2
    assert dead_count(live, 2) == 4
    assert dead_count(unit_importance(live, np.array([0, 0, 1, 1, 1]), 2), 2) == 1


# ---------------------------------------------------------- regeneration (2.3)


def test_percentile_schedule():
    assert regeneration_percentile(37, 60) == pytest.approx(61.0)
    assert regeneration_percentile(37, 65) == pytest.approx(66.0)
    assert regeneration_percentile(38, 60) == pytest.approx(61.1)
    # fc, q0=60: 60 + 1.1**38 = 97.404 < 99 at period 75; 1.1**39 = 41.14 -> capped at 76
    assert regeneration_percentile(75, 60) == pytest.approx(97.4043, abs=1e-3)
    assert regeneration_percentile(76, 60) == 99.0
    # conv, q0=65: 1.1**36 = 30.91 -> 95.91 at 73; 1.1**37 = 34.004 -> capped at 74
    assert regeneration_percentile(73, 65) == pytest.approx(95.9127, abs=1e-3)
    assert regeneration_percentile(74, 65) == 99.0
    # DVS fc, q0=55: 1.1**39 = 41.14 -> 96.14 at 76; capped at 77
    assert regeneration_percentile(76, 55) == pytest.approx(96.1448, abs=1e-3)
    assert regeneration_percentile(77, 55) == 99.0


def test_threshold_over_all_values_linear():
    # positions 0..4, q=62.5 -> index 2.5 -> 2.5
    assert regeneration_threshold(np.array([4.0, 0.0, 3.0, 1.0, 2.0]), 62.5) == pytest.approx(2.5)
    assert regeneration_threshold(np.array([0.0, 10.0]), 25) == pytest.approx(2.5)


def test_regeneration_needs_more_than_M_consecutive_periods():
    # connection 0 pruned and above threshold every period from 37 on;
    # connection 1 live (never a candidate); connection 2 pruned, below threshold
    conn = np.array([0.0, 1.0, 0.0])
    vals = np.array([1.0, 1.0, -1.0])
    st = init_regeneration(3)
    regrow_period = None
    for period in range(37, 60):
        conn, st, regrown = regenerate(conn, vals, 0.0, st, max_streak=10)
        if regrown.any():
            assert regrown.tolist() == [True, False, False]
            regrow_period = period
            break
        assert conn[0] == 0
    # first candidate period (37) sets cand_prev, k = 1 at 38 ... k = 11 > 10 at 48
    assert regrow_period == 48
    assert conn.tolist() == [1.0, 1.0, 0.0]
    assert st.streak.tolist() == [0.0, 0.0, 0.0]
    # regrown connection is no longer a candidate
    conn, st, regrown = regenerate(conn, vals, 0.0, st, max_streak=10)
    assert not regrown.any() and st.cand_prev.tolist() == [0.0, 0.0, 0.0]


def test_regeneration_streak_broken_restarts_and_inputs_untouched():
    conn = np.array([0.0])
    st = init_regeneration(1)
    for _ in range(11):  # k reaches 10, not > 10
        conn, st, r = regenerate(conn, np.array([1.0]), 0.0, st, max_streak=10)
        assert not r.any()
    assert st.streak[0] == 10
    snap_conn, snap_st = conn.copy(), st.copy()
    conn2, st2, _ = regenerate(conn, np.array([-1.0]), 0.0, st, max_streak=10)  # below threshold
    np.testing.assert_array_equal(conn, snap_conn)
    np.testing.assert_array_equal(st.streak, snap_st.streak)
    np.testing.assert_array_equal(st.cand_prev, snap_st.cand_prev)
    assert st2.streak[0] == 0 and st2.cand_prev[0] == 0
    conn, st = conn2, st2
    n = 0
    while True:
        n += 1
        conn, st, r = regenerate(conn, np.array([1.0]), 0.0, st, max_streak=10)
        if r.any():
            break
    assert n == 12
    # strict comparison: a value equal to the threshold is not a candidate
    _, st3, _ = regenerate(np.array([0.0]), np.array([0.0]), 0.0, init_regeneration(1), 10)
    assert st3.cand_prev[0] == 0


# ---------------------------------------------------------- neurotrophic (2.4)


def _prune_fc1_period(rho, history, n_units=300, fan_in=25, theta=20, rng=None):
    """One period of fc1 pruning with the library's pieces; returns (history, alive)."""
    post = np.repeat(np.arange(n_units), fan_in)
    connected = np.repeat((~history).astype(float), fan_in)
    width = rng.uniform(0.5, 2.0, size=post.size)
    imp = neuron_importance(width, connected, post, n_units)
    new = select_pruned(imp, rho, history)
    history = history | new
    connected = np.repeat((~history).astype(float), fan_in)
    alive = n_units - dead_count(live_counts(connected, post, n_units), theta)
    return history, alive


def test_mnist_fc1_rate_sequence_hand_derived():
    # Hand derivation (N=300, K=10, rho(37)=35, no regeneration, P = pruned):
    #  37: floor(300*35/100)=105     alive 195  rho = 35      + e^0 *19.5 = 54.5
    #  38: floor(300*54.5/100)=163   alive 137  rho = 54.5    + e^-1*13.7 = 59.539948
    #  39: floor(300*.59539948)=178  alive 122  rho = 59.5399 + e^-2*12.2 = 61.191038
    #  40: floor(300*.61191038)=183  alive 117  rho = 61.1910 + e^-3*11.7 = 61.773547
    #  41: floor(300*.61773547)=185  alive 115  rho = 61.7735 + e^-4*11.5 = 61.984177
    #  42: floor(300*.61984177)=185  alive 115  rho = 61.9842 + e^-5*11.5 = 62.061663
    expected_pruned = [105, 163, 178, 183, 185, 185]
    expected_rho = [54.5, 59.539948, 61.191038, 61.773547, 61.984177, 62.061663]
    rng = np.random.default_rng(0)
    rho = 35.0
    history = np.zeros(300, dtype=bool)
    for i, period in enumerate(range(37, 43)):
        history, alive = _prune_fc1_period(rho, history, rng=rng)
        assert int(history.sum()) == expected_pruned[i], period
        assert alive == 300 - expected_pruned[i]
        rho = last_rate_update(rho, period, alive, 10)
        assert rho == pytest.approx(expected_rho[i], abs=1e-5), period
    # prototype notes: 35 -> 54.5 -> 59.54 -> 61.19 -> 61.77 -> 61.98
    assert [round(r, 2) for r in expected_rho[:5]] == [54.5, 59.54, 61.19, 61.77, 61.98]


def test_last_rate_switches_to_constant_after_period_60():
    assert last_rate_update(50.0, 60, 115, 10) == pytest.approx(50.0 + math.exp(-23) * 11.5)
    assert last_rate_update(50.0, 61, 115, 10) == pytest.approx(50.008625, abs=1e-12)
    # CIFAR constants: a=0.5, c=5e-4, K=10
    assert last_rate_update(2.0, 37, 500, 10, a=0.5, c=5e-4) == pytest.approx(27.0)
    assert last_rate_update(2.0, 70, 500, 10, a=0.5, c=5e-4) == pytest.approx(2.025)
    with pytest.raises(ValueError, match="n_classes"):
        last_rate_update(2.0, 40, 10, 0)


def test_conv2_hidden_rate_sequence_hand_derived():
    # conv2: 40 channels, rho(37)=5; pruned before fc1 in each period, so the target's
    # alive count is fc1's previous-period value (300, 195, 137, 122).
    #  37: floor(40*5/100)=2 alive 38: rho = 5        + e^0    *38/300 = 5.126667
    #  38: floor(2.0507)=2   alive 38: rho = 5.126667 + 0.818731*0.194872 = 5.286214
    #  39: floor(2.1145)=2   alive 38: rho = 5.286214 + 0.670320*0.277372 = 5.472142
    #  40: floor(2.1889)=2   alive 38: rho = 5.472142 + 0.548812*0.311475 = 5.643084
    fc1_alive_prev = [300, 195, 137, 122]
    expected = [5.126667, 5.286214, 5.472142, 5.643084]
    rho = 5.0
    hist = np.zeros(40, dtype=bool)
    imp = np.arange(40, dtype=float) + 1.0
    for i, period in enumerate(range(37, 41)):
        hist = hist | select_pruned(np.where(hist, 0.0, imp), rho, hist)
        alive = 40 - int(hist.sum())
        assert alive == 38
        rho = hidden_rate_update(rho, period, alive, fc1_alive_prev[i])
        assert rho == pytest.approx(expected[i], abs=2e-6), period
    with pytest.raises(ValueError, match="alive_target"):
        hidden_rate_update(5.0, 37, 38, 0)
