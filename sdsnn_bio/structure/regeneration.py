"""Synaptic regeneration (method sections 2.3 and 2.5).

Everything about regeneration is in this module: the per-synapse streak
state and its generated code (:data:`REGENERATION_EQS`,
:func:`regeneration_code`, strings only), the layer-wide decision between
runs (:func:`regeneration_decision`: the percentile schedule and the
threshold) and the numpy twin (:func:`regenerate`).

The rule (method §2.3): a pruned synapse (``m = 0``) whose weight, still trained
under soft masks, exceeds the layer threshold ``g(e) = percentile(w, q(e))``
with ``q(e) = min(q0 + 1.1**(e - 2N - 1), 99)`` in more than ``M``
consecutive periods is reconnected (``m = 1``) with the weight it has.

Pure numpy over flat per-connection arrays.  A "connection" is one synapse of
a fully connected layer, or one (out, in) kernel of a conv layer whose value
is the signed kernel sum; the caller forms those values.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "REGENERATION_EQS",
    "REGENERATION_FLAG_EQS",
    "REGENERATION_NEURON_EQS",
    "neuron_regeneration_reset",
    "regeneration_code",
    "regeneration_decision",
    "regeneration_percentile",
    "regeneration_threshold",
    "RegenerationState",
    "init_regeneration",
    "regenerate",
]


def regeneration_percentile(
    period: int, q0: float, start: int = 37, growth: float = 1.1, cap: float = 99.0
) -> float:
    """Percentile q(e) of the regeneration threshold (method §2.3, step 2).

    ``q(e) = min(q0 + growth ** (e - start), cap)``; so ``q(start) = q0 + 1``
    and the eligible fraction ``100 - q`` shrinks exponentially until it is
    clamped at ``100 - cap`` percent.

    Parameters
    ----------
    period : int
        Period (epoch) index e.
    q0 : float
        Base percentile (65 conv, 60 fc, 55 DVS fc in the reference code).
    start : int, optional
        First regeneration period 2N+1, default 37.
    growth : float, optional
        Base of the exponential, default 1.1.
    cap : float, optional
        Upper limit of q, default 99.

    Returns
    -------
    float
    """
    return float(min(q0 + growth ** (period - start), cap))


def regeneration_threshold(values, q: float) -> float:
    """Threshold g(e): the q-th percentile of all connection values (method §2.3, step 2).

    Taken over *all* connections of the layer, pruned ones included, with
    numpy's default linear interpolation.

    Parameters
    ----------
    values : array_like
        Connection values v (signed).
    q : float
        Percentile in [0, 100].

    Returns
    -------
    float
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError("regeneration_threshold needs at least one value (values is empty)")
    return float(np.percentile(values, q))


@dataclass
class RegenerationState:
    """Per-connection regeneration streak state (method §2.3, step 4).

    Attributes
    ----------
    streak : numpy.ndarray
        Streak counter k per connection (float64).
    cand_prev : numpy.ndarray
        0/1 membership of the previous period's candidate set G.
    """

    streak: np.ndarray
    cand_prev: np.ndarray

    def __post_init__(self) -> None:
        self.streak = np.asarray(self.streak, dtype=np.float64)
        self.cand_prev = np.asarray(self.cand_prev, dtype=np.float64)
        if self.streak.ndim != 1 or self.cand_prev.shape != self.streak.shape:
            raise ValueError(
                f"streak and cand_prev must be 1-D arrays of equal length, got "
                f"{self.streak.shape} and {self.cand_prev.shape}"
            )

    def __len__(self) -> int:
        return int(self.streak.shape[0])

    def copy(self) -> "RegenerationState":
        """Return a deep copy."""
        return RegenerationState(self.streak.copy(), self.cand_prev.copy())


def init_regeneration(n: int) -> RegenerationState:
    """Fresh regeneration state for ``n`` connections (all zeros)."""
    return RegenerationState(np.zeros(n), np.zeros(n))


def regenerate(connected, values, threshold: float, state: RegenerationState, max_streak: int):
    """One regeneration step, run before the period's pruning (method §2.3, steps 3-5).

    ``cand = (connected == 0) & (values > threshold)`` (signed comparison);
    ``k = k + 1`` where the connection is a candidate now and was one at the
    previous period, else 0; connections with ``k > max_streak`` regrow
    (mask back to 1, weight kept as trained) and their ``k`` resets to 0;
    ``cand_prev = cand``.  With the first candidate period only establishing
    ``cand_prev``, a connection regrows on its ``max_streak + 2``-th
    consecutive candidate period.

    Parameters
    ----------
    connected : array_like, shape (n,)
        Mask per connection (0/1); not modified.
    values : array_like, shape (n,)
        Connection values v.
    threshold : float
        g(e) from :func:`regeneration_threshold`.
    state : RegenerationState
        State before this step; not modified.
    max_streak : int
        M (18 conv and CIFAR fc, 10 for fc1 of the small networks).

    Returns
    -------
    new_connected : numpy.ndarray
        Mask after regrowth (same dtype as ``connected``).
    new_state : RegenerationState
    regrown : numpy.ndarray of bool
        True where a connection regrew now.
    """
    conn = np.array(connected, copy=True)
    values = np.asarray(values, dtype=np.float64)
    if conn.ndim != 1 or values.shape != conn.shape or len(state) != conn.shape[0]:
        raise ValueError(
            f"connected {conn.shape}, values {values.shape} and state ({len(state)}) "
            f"must all have one entry per connection"
        )
    cand = (conn == 0) & (values > threshold)
    k = np.where(cand & (state.cand_prev != 0), state.streak + 1.0, 0.0)
    regrow = k > max_streak
    conn[regrow] = 1
    k[regrow] = 0.0
    return conn, RegenerationState(k, cand.astype(np.float64)), regrow


# ------------------------------------------------------------- generated code

#: Per-synapse regeneration state (Brian2 equations).
REGENERATION_EQS = """
regen_k : 1                 # regeneration streak of a pruned synapse
regen_prev : 1              # 1 if the synapse was a regeneration candidate last period
"""

#: Per-neuron count of regenerated afferent synapses.
REGENERATION_NEURON_EQS = """
regrown : 1                # afferent synapses regenerated at the start of this period
"""


def neuron_regeneration_reset() -> str:
    """Neuron code at the start of a period, before the synapses regenerate: clear the count."""
    return "regrown = 0\n"


#: Shared switches of one layer's regeneration.
REGENERATION_FLAG_EQS = """
regen_on : 1 (shared)       # 1 when regeneration runs at the start of this period
regen_threshold : 1 (shared)  # layer threshold g(e) of the regeneration candidates
"""


def regeneration_code(count: str = "regrown_post") -> str:
    """Synapse code at the start of a period (reference ``do_growth_ww``).

    ``regen_M`` (M) comes from the namespace; each regenerated synapse adds 1
    to ``count`` (a variable of the postsynaptic neuron; ``""`` for none).
    """
    code = """
cand = (1 - connected)*int(w > regen_threshold)*regen_on
regen_k = (regen_k + 1)*cand*regen_prev
regrow = int(regen_k > regen_M)
connected = connected + regrow*(1 - connected)
regen_k = regen_k*(1 - regrow)
regen_prev = cand
"""
    return code + (f"{count} += regrow\n" if count else "")


def regeneration_decision(period: int, w, q0: float, start: int, growth: float = 1.1,
                          cap: float = 99.0) -> tuple:
    """The layer's regeneration percentile q(e) and threshold g(e) for the next period."""
    q = regeneration_percentile(period, q0, start=start, growth=growth, cap=cap)
    return q, regeneration_threshold(w, q)
