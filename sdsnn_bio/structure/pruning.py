"""Neuron pruning: importance, selection, dead-unit counts (method sections 2.2 and 2.4).

Everything about neuron pruning is in this module:

* the neuron-side state and the generated code (strings, no Brian2 import):
  :data:`PRUNING_NEURON_EQS`, :func:`importance_code` (per-neuron sums of the
  live spine widths, at the end of a period), :func:`neuron_prune_code` and
  :func:`prune_apply_code` (the period's decision applied to the neuron and
  its afferent synapses at the start of the next period);
* the layer-wide decision taken between runs, :func:`prune_decision`;
* the numpy twin over flat per-synapse arrays (:func:`neuron_importance`,
  :func:`select_pruned`, :func:`live_counts`, :func:`dead_count` ...).

The rule (method §2.2): with ``width_ij = r+_ij + |r-_ij|`` and the min-max
normalisation over all synapses of the layer,

    S_i = sum_j m_ij (width_ij - min width) / (max width - min width)

(0.5 per live synapse if all widths are equal), summed over the positions of
a channel for a locally connected layer. The ablation ``structure.importance =
"weight"`` puts the weight magnitude ``|w_ij|`` in place of ``width_ij``, with
the same normalisation and sum (:func:`importance_quantity`), so that only the
quantity that ranks the units changes. Units are ranked by ``S`` (stable,
ascending); the first ``floor(N rho / 100)`` are the cumulative target, and
those not pruned before (the history set H) are pruned now: their neurons'
afferent synapses are masked (``m = 0``). A unit with fewer than
``theta_dead`` live afferent synapses (per position) counts as dead (method §2.4).

Pure numpy over flat per-synapse arrays: a layer's synapses are 1-D arrays;
``post[j]`` is the postsynaptic neuron of synapse ``j``. Pruning acts on
*units*: one neuron of a fully connected layer, or a channel (many neurons)
of a locally connected / conv layer.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = [
    "PRUNING_NEURON_EQS",
    "BIAS_MASK_FLAG_EQS",
    "bias_mask_code",
    "importance_code",
    "importance_quantity",
    "neuron_prune_code",
    "prune_apply_code",
    "prune_decision",
    "alive_units",
    "normalise",
    "neuron_importance",
    "unit_importance",
    "n_to_prune",
    "select_pruned",
    "live_counts",
    "dead_count",
]


def normalise(x) -> np.ndarray:
    """Min-max normalisation over all entries (method §2.2, ``norm_l``).

    ``(x - min) / (max - min)``; if ``max == min`` every value becomes 0.5.
    An empty array is returned as is.

    Parameters
    ----------
    x : array_like
        Values to normalise (any shape).

    Returns
    -------
    numpy.ndarray
        Float64 array of the same shape with values in [0, 1].
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return x
    lo = np.min(x)
    hi = np.max(x)
    if hi == lo:
        return np.full(x.shape, 0.5)
    return (x - lo) / (hi - lo)


def _check_post(post, n_post: int, n_syn: int, what: str) -> np.ndarray:
    post = np.asarray(post)
    if post.ndim != 1 or post.shape[0] != n_syn:
        raise ValueError(
            f"index array must be 1-D with one entry per element ({n_syn}), "
            f"got shape {post.shape} (in {what})"
        )
    if post.size and (post.min() < 0 or post.max() >= n_post):
        raise ValueError(
            f"indices must lie in [0, {n_post}), got range "
            f"[{post.min()}, {post.max()}] (in {what})"
        )
    return post.astype(np.intp, copy=False)


def neuron_importance(width, connected, post, n_post: int) -> np.ndarray:
    """Importance of each postsynaptic neuron (method §2.2).

    ``S_i = sum_j connected_ij * normalise(width)_ij``, where the min-max
    normalisation runs over *all* synapses of the layer (pruned included) and
    the sum over the synapses ``j`` whose ``post`` is ``i``.

    Parameters
    ----------
    width : array_like, shape (n_syn,)
        Spine width ``r_up + |r_lo|`` per synapse.
    connected : array_like, shape (n_syn,)
        Mask m per synapse (0/1).
    post : array_like of int, shape (n_syn,)
        Postsynaptic neuron index of each synapse, in ``[0, n_post)``.
    n_post : int
        Number of postsynaptic neurons.

    Returns
    -------
    numpy.ndarray, shape (n_post,)
        Importance S per neuron (0 for a neuron without live synapses).
    """
    width = np.asarray(width, dtype=np.float64)
    connected = np.asarray(connected, dtype=np.float64)
    if width.ndim != 1 or connected.shape != width.shape:
        raise ValueError(
            f"width and connected must be 1-D arrays of equal length, got "
            f"{width.shape} and {connected.shape}"
        )
    post = _check_post(post, n_post, width.shape[0], "neuron_importance")
    return np.bincount(post, weights=connected * normalise(width), minlength=n_post).astype(
        np.float64
    )


def unit_importance(neuron_scores, unit_of_neuron, n_units: int) -> np.ndarray:
    """Sum neuron scores per pruning unit (method §2.2, conv: one unit = one channel).

    Parameters
    ----------
    neuron_scores : array_like, shape (n_post,)
        Per-neuron values (importance, or live counts).
    unit_of_neuron : array_like of int, shape (n_post,)
        Unit index of each neuron, in ``[0, n_units)``.
    n_units : int
        Number of units.

    Returns
    -------
    numpy.ndarray, shape (n_units,)
        Per-unit sums (float64).
    """
    s = np.asarray(neuron_scores, dtype=np.float64)
    if s.ndim != 1:
        raise ValueError(f"neuron_scores must be 1-D, got shape {s.shape}")
    u = _check_post(unit_of_neuron, n_units, s.shape[0], "unit_importance")
    return np.bincount(u, weights=s, minlength=n_units).astype(np.float64)


def n_to_prune(n_units: int, rho_percent: float) -> int:
    """Cumulative number of units to prune, ``floor(N * rho / 100)`` (method §2.2, "Selection").

    The product ``n_units * rho_percent`` is formed before dividing by 100
    (``300 * 35 / 100 == 105`` whereas ``0.35 * 300 < 105`` in floating
    point).  The result is clamped to ``[0, n_units]``.

    Parameters
    ----------
    n_units : int
        Units of the layer (neurons or channels).
    rho_percent : float
        Pruning rate rho in percent.

    Returns
    -------
    int
    """
    n = math.floor(n_units * float(rho_percent) / 100.0)
    return int(min(max(n, 0), n_units))


def select_pruned(importance, rho_percent: float, history) -> np.ndarray:
    """Units newly pruned this period (method §2.2, "Selection").

    Units are sorted by importance in ascending order with a *stable* sort
    (ties keep index order), the first ``n_to_prune(len, rho)`` are taken, and
    only those not already in ``history`` are returned.  Previously pruned
    units score 0 and so fill the front of the order: the count acts as a
    cumulative target.

    Parameters
    ----------
    importance : array_like, shape (n_units,)
        Importance per unit.
    rho_percent : float
        Pruning rate rho in percent.
    history : array_like of bool, shape (n_units,)
        Units pruned at any earlier period (the set H_l).

    Returns
    -------
    numpy.ndarray of bool, shape (n_units,)
        True for units to prune now (never one already in ``history``).
    """
    imp = np.asarray(importance, dtype=np.float64)
    hist = np.asarray(history, dtype=bool)
    if imp.ndim != 1 or hist.shape != imp.shape:
        raise ValueError(
            f"importance and history must be 1-D arrays of equal length, got "
            f"{imp.shape} and {hist.shape}"
        )
    k = n_to_prune(imp.shape[0], rho_percent)
    order = np.argsort(imp, kind="stable")
    chosen = np.zeros(imp.shape[0], dtype=bool)
    chosen[order[:k]] = True
    return chosen & ~hist


def live_counts(connected, post, n_post: int) -> np.ndarray:
    """Number of live synapses (``connected == 1``) of each neuron (method §2.4, ``sum_j m_ij``).

    Parameters
    ----------
    connected : array_like, shape (n_syn,)
        Mask per synapse.
    post : array_like of int, shape (n_syn,)
        Postsynaptic neuron of each synapse.
    n_post : int
        Number of postsynaptic neurons.

    Returns
    -------
    numpy.ndarray of int64, shape (n_post,)
    """
    connected = np.asarray(connected)
    if connected.ndim != 1:
        raise ValueError(f"connected must be 1-D, got shape {connected.shape}")
    post = _check_post(post, n_post, connected.shape[0], "live_counts")
    return np.bincount(post, weights=(connected == 1).astype(np.float64), minlength=n_post).astype(
        np.int64
    )


def dead_count(live_per_unit, theta: float) -> int:
    """Number of effectively dead units, ``#{i : live_i < theta}`` (method §2.4, P_l).

    Parameters
    ----------
    live_per_unit : array_like, shape (n_units,)
        Live synapses per unit (see :func:`live_counts`, :func:`unit_importance`).
    theta : float
        Dead threshold theta_dead (10, 20 or 50 in the reference code).

    Returns
    -------
    int
    """
    return int(np.count_nonzero(np.asarray(live_per_unit) < theta))


# ------------------------------------------------------------- generated code

#: Per-neuron pruning state of a pruned layer's neurons (Brian2 equations).
PRUNING_NEURON_EQS = """
pruned : 1                 # 1 once the neuron has been pruned (history set H)
prune_now : 1              # 1 if the neuron is pruned at the start of this period
imp : 1                    # sum over live synapses of the spine width (importance)
live : 1                   # number of live (connected) afferent synapses
"""

#: The switch of the biases of pruned neurons (shared, per group).
BIAS_MASK_FLAG_EQS = """
bias_mask_on : 1 (shared)  # 1 to zero the bias of pruned neurons
"""


#: The per-synapse quantity that ranks the units, as generated code, per ``structure.importance``.
_IMPORTANCE_EXPR = {"spine": "r_up + abs(r_lo)", "weight": "abs(w)"}


def importance_code(by: str = "spine") -> str:
    """Synapse code: per-neuron sums for the ranking, run at the end of a period.

    ``by``: ``"spine"`` sums the live spine widths ``r_up + |r_lo|`` (the
    paper), ``"weight"`` the live weight magnitudes ``|w|`` (the ablation).
    The layer-wide min-max normalisation is applied between runs
    (:func:`prune_decision`): ``S_i = (imp_i - min*live_i) / (max - min)``.
    """
    if by not in _IMPORTANCE_EXPR:
        raise ValueError(f"importance must be one of {', '.join(_IMPORTANCE_EXPR)}, got {by!r}")
    return f"\nimp_post += connected*({_IMPORTANCE_EXPR[by]})\nlive_post += connected\n"


def importance_quantity(by: str, weights, upper, lower) -> np.ndarray:
    """Per-synapse quantity whose normalised live sum ranks the units (numpy twin of
    :func:`importance_code`): the spine width ``r_up + |r_lo|`` (``by = "spine"``)
    or the weight magnitude ``|w|`` (``by = "weight"``).

    Parameters
    ----------
    by : {"spine", "weight"}
    weights, upper, lower : array_like, shape (n_syn,)
        Weights and spine bounds r+ and r- of the layer's synapses.

    Returns
    -------
    numpy.ndarray, shape (n_syn,)
    """
    if by == "spine":
        return np.asarray(upper, dtype=np.float64) + np.abs(np.asarray(lower, dtype=np.float64))
    if by == "weight":
        return np.abs(np.asarray(weights, dtype=np.float64))
    raise ValueError(f"importance must be one of {', '.join(_IMPORTANCE_EXPR)}, got {by!r}")


def neuron_prune_code() -> str:
    """Neuron code at the start of a period: record the decision, clear the sums."""
    return "pruned = clip(pruned + prune_now, 0, 1)\nimp = 0\nlive = 0\n"


def bias_mask_code() -> str:
    """Neuron code at the start of a period: zero the bias of pruned neurons while
    ``bias_mask_on`` is 1 (the reference code leaves it: method §7.4)."""
    return "b = b*(1 - bias_mask_on*pruned)\n"


def prune_apply_code(decision: str = "prune_now_post", mask_flag: str = "mask_on") -> str:
    """Synapse code at the start of a period: mask the afferent synapses of the
    neurons pruned now (``decision``), then multiply the mask into the weights
    while ``mask_flag`` is 1 (method §2.2, step 6)."""
    return (f"\nconnected = connected*(1 - {decision})\n"
            f"w = w*(1 - {mask_flag}*(1 - connected))\n")


# ------------------------------------------------------ decision between runs

def prune_decision(imp, live, width_min: float, width_max: float, unit_of_neuron, n_units: int,
                   rho_percent: float, history, theta_dead: float, positions_per_unit: int = 1):
    """The layer's pruning decision of one period, from the per-neuron sums.

    Parameters
    ----------
    imp, live : array_like, shape (n_neurons,)
        Per-neuron sums of the live spine widths (or weight magnitudes, see
        :func:`importance_quantity`) and of the live synapses (what
        :func:`importance_code` computes).
    width_min, width_max : float
        Smallest and largest of that quantity over all synapses of the layer.
    unit_of_neuron : array_like of int, shape (n_neurons,)
    n_units : int
    rho_percent : float
        The layer's pruning rate rho (percent).
    history : array_like of bool, shape (n_units,)
        Units pruned before (H).
    theta_dead : float
        Live synapses per position below which a unit is dead.
    positions_per_unit : int
        Neurons per unit (positions of a channel; 1 for a dense layer).

    Returns
    -------
    (numpy.ndarray of bool, int)
        Units pruned now, and the dead-unit count after this pruning.
    """
    imp = np.asarray(imp, dtype=np.float64)
    live = np.asarray(live, dtype=np.float64)
    lo, hi = float(width_min), float(width_max)
    neuron_score = (imp - lo * live) / (hi - lo) if hi > lo else 0.5 * live
    score = unit_importance(neuron_score, unit_of_neuron, n_units)
    new = select_pruned(score, rho_percent, history)
    live_unit = unit_importance(live, unit_of_neuron, n_units)
    live_unit = np.where(new, 0.0, live_unit)
    return new, dead_count(live_unit / positions_per_unit, theta_dead)


def alive_units(connected, post, n_neurons: int, unit_of_neuron, n_units: int, theta_dead: float,
                positions_per_unit: int = 1) -> int:
    """Units of a layer that are alive (at least ``theta_dead`` live synapses per position)."""
    live = live_counts(connected, post, n_neurons)
    live_unit = unit_importance(live, unit_of_neuron, n_units)
    return n_units - dead_count(live_unit / positions_per_unit, theta_dead)
