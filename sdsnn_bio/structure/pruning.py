"""Neuronal pruning: importance, selection and dead-unit counts (spec sections 2.2 and 2.4).

Pure numpy reference implementation over flat per-synapse arrays.  A layer's
synapses are 1-D arrays; ``post[j]`` is the postsynaptic neuron of synapse
``j``.  Pruning acts on *units*: a unit is one neuron of a fully connected
layer, or a channel (many neurons) of a locally connected / conv layer.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = [
    "normalise",
    "neuron_importance",
    "unit_importance",
    "n_to_prune",
    "select_pruned",
    "live_counts",
    "dead_count",
]


def normalise(x) -> np.ndarray:
    """Min-max normalisation over all entries (spec 2.2, ``norm_l``).

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
    """Importance of each postsynaptic neuron (spec 2.2).

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
    """Sum neuron scores per pruning unit (spec 2.2, conv: one unit = one channel).

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
    """Cumulative number of units to prune, ``floor(N * rho / 100)`` (spec 2.2, "Selection").

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
    """Units newly pruned this period (spec 2.2, "Selection").

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
    """Number of live synapses (``connected == 1``) of each neuron (spec 2.4, ``sum_j m_ij``).

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
    """Number of effectively dead units, ``#{i : live_i < theta}`` (spec 2.4, P_l).

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
