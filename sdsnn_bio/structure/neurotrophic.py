"""Neurotrophic adaptive pruning rate (method section 2.4).

Neurons compete for the neurotrophic factor supplied by their target layer:
the more surviving presynaptic units per surviving target unit, the larger
the increase of the pruning rate, and the increase fades with time so the
structure becomes stable. With ``A_l = N_l - P_l`` the alive units of layer
``l`` after its pruning in period ``e`` (``P_l`` the dead units, fewer than
``theta_dead`` live synapses per position) and ``S = 2N + 1``:

    hidden layer, target l+1 pruned too:  rho_l <- rho_l + exp(-(e - S)/tau) * A_l / A_{l+1}
    last pruned layer, target the output: rho_l <- rho_l + alpha(e) * A_l / K
        alpha(e) = a * exp(-(e - S)) while e <= switch, then c

(tau = 5, a = 1, c = 0.00075, switch = 60 in the reference code; K classes).
The rule has no generated code: it is a layer-wide decision between runs
(:func:`next_rate`), taken after the layer's pruning decision. The ablation
``structure.neurotrophic = false`` (kind ``"fixed"``) keeps ``rho_l = rho0``.
"""
from __future__ import annotations

import math

__all__ = ["hidden_rate_update", "last_rate_update", "next_rate"]


def hidden_rate_update(
    rho: float,
    period: int,
    alive_here: float,
    alive_target: float,
    start: int = 37,
    tau: float = 5.0,
) -> float:
    """Pruning-rate update of a hidden layer whose target is also prunable (method §2.4).

    ``rho(e+1) = rho(e) + exp(-(e - start) / tau) * (N_l - P_l) / (N_{l+1} - P_{l+1})``.
    ``alive_target`` is the target layer's alive count as it stands when
    layer l is updated (its previous-period value, since l+1 is pruned after l).

    Parameters
    ----------
    rho : float
        Current rate rho_l(e) in percent.
    period : int
        Period index e.
    alive_here : float
        Alive units of this layer after this period's pruning, N_l - P_l(e).
    alive_target : float
        Alive units of the target layer, N_{l+1} - P_{l+1}.
    start : int, optional
        First pruning period 2N+1, default 37.
    tau : float, optional
        Decay constant, default 5.

    Returns
    -------
    float
        rho_l(e+1).

    Raises
    ------
    ValueError
        If ``alive_target <= 0`` (the ratio is undefined when the target
        layer has no alive unit).
    """
    if not alive_target > 0:
        raise ValueError(
            f"alive_target must be > 0 (alive units of the target layer), got {alive_target}; "
            "the neurotrophic ratio is undefined when the target layer is fully pruned"
        )
    return float(rho + math.exp(-(period - start) / tau) * alive_here / alive_target)


def last_rate_update(
    rho: float,
    period: int,
    alive_here: float,
    n_classes: int,
    a: float = 1.0,
    c: float = 0.00075,
    switch: int = 60,
    start: int = 37,
) -> float:
    """Pruning-rate update of the last pruned layer, whose target is the output (method §2.4).

    ``rho(e+1) = rho(e) + alpha(e) * (N - P(e)) / K`` with
    ``alpha(e) = a * exp(-(e - start))`` for ``e <= switch`` and ``c`` after.

    Parameters
    ----------
    rho : float
        Current rate in percent.
    period : int
        Period index e.
    alive_here : float
        Alive units after this period's pruning, N - P(e).
    n_classes : int
        Output classes K.
    a, c : float, optional
        Early factor and late constant (1 and 0.00075 MNIST/DVS; 0.5 and 0.0005 CIFAR).
    switch : int, optional
        Last period of the exponential factor, default 60.
    start : int, optional
        First pruning period, default 37.

    Returns
    -------
    float
        rho(e+1).

    Raises
    ------
    ValueError
        If ``n_classes <= 0``.
    """
    if not n_classes > 0:
        raise ValueError(f"n_classes must be > 0, got {n_classes}")
    alpha = a * math.exp(-(period - start)) if period <= switch else c
    return float(rho + alpha * alive_here / n_classes)


def next_rate(kind: str, rho: float, period: int, alive_here: float, *, start: int,
              alive_target: float = 0.0, n_classes: int = 10, tau: float = 5.0, a: float = 1.0,
              c: float = 0.00075, switch: int = 60) -> float:
    """The layer's pruning rate for the next period (method §2.4), after this period's pruning.

    ``kind`` is ``"hidden"`` when the layer's target is the next pruned layer
    (:func:`hidden_rate_update`, with that layer's alive count as it stood
    before its own pruning in this period) or ``"last"`` when the target is the
    output layer (:func:`last_rate_update`); ``"fixed"`` is the ablation without
    the neurotrophic update: ``rho`` is returned unchanged.
    """
    if kind == "fixed":
        return float(rho)
    if kind == "hidden":
        return hidden_rate_update(rho, period, alive_here, alive_target, start=start, tau=tau)
    return last_rate_update(rho, period, alive_here, n_classes, a=a, c=c, switch=switch, start=start)
