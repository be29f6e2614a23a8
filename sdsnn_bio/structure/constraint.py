"""Dendritic-spine state and the synaptic constraint (method sections 2.1 and 2.5).

Everything about the spine constraint is in this module: the per-synapse spine
variables as Brian2 equations (:data:`SPINE_EQS`), the generated code of the
spine update and of the clip (:func:`spine_update_code`, :func:`clip_code`),
its namespace (:func:`spine_namespace`), the layer-wide steps taken between
runs (:func:`init_spines` after period 0, :func:`constraint_active`) and the
numpy twin the generated code is tested against (:func:`update_spines`,
:func:`clip_weights`). No Brian2 import: the code is strings.

The rule, per synapse with masked weight ``wm = w*m`` at the end of a period::

    growth:      wm >= r+ now and at the previous update: c+ += 1, s+ += wm - r+
                 when c+ reaches N:  r+ <- r+ + s+/N, c+ = s+ = 0
    lower growth: the same with wm <= r-, c-, s- and r- (r- <- r- + s-/N)
    retraction:  |wm| < |wm| of the previous update, now and before: cr += 1
                 when cr reaches N:  r+ <- shrink*r+, r- <- shrink*r-, cr = 0
    constraint (from period N + 1 on):  w <- clip(w, r-, r+)

so a bound moves after N + 1 consecutive updates (N = 18, shrink = 0.75).
Pure numpy functions work over flat per-synapse arrays: entry ``j``
of every array belongs to synapse ``j`` of one layer.

Each synapse carries an allowed weight interval ``[r_lo, r_up]`` (its
"dendritic spine").  The interval widens when the weight keeps pushing past a
bound for ``n_streak + 1`` consecutive updates, and shrinks by ``shrink`` when
the weight magnitude keeps falling for ``n_streak + 1`` consecutive updates.
From period ``N + 1`` on the weights are clipped into the interval.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

__all__ = [
    "SPINE_EQS",
    "CLIP_FLAG_EQS",
    "spine_update_code",
    "clip_code",
    "spine_namespace",
    "constraint_active",
    "SPINE_FIELDS",
    "SpineState",
    "init_spines",
    "update_spines",
    "clip_weights",
    "spine_width",
]

#: Names of the per-synapse arrays of :class:`SpineState`, in declaration order.
SPINE_FIELDS = (
    "r_up",
    "r_lo",
    "c_up",
    "s_up",
    "c_lo",
    "s_lo",
    "c_ret",
    "a_prev",
    "prev_up",
    "prev_lo",
    "prev_ret",
)


@dataclass
class SpineState:
    """Per-synapse dendritic-spine state of one layer (method §2.1).

    Every attribute is a 1-D float64 array with one entry per synapse; all
    have the same length.

    Attributes
    ----------
    r_up, r_lo : numpy.ndarray
        Upper bound r+ and lower bound r- of the allowed weight interval.
        ``r_lo < 0 < r_up`` whenever the layer's largest weight is positive.
    c_up, s_up : numpy.ndarray
        Upper-growth streak count c+ and accumulated overshoot s+
        (sum of ``w~ - r_up`` over the streak, >= 0).
    c_lo, s_lo : numpy.ndarray
        Lower-growth streak count c- and accumulated undershoot s-
        (sum of ``w~ - r_lo`` over the streak, <= 0).
    c_ret : numpy.ndarray
        Retraction (shrink) streak count c°.
    a_prev : numpy.ndarray
        Weight magnitude ``|w~|`` at the last update (a_ij in the spec).
    prev_up, prev_lo, prev_ret : numpy.ndarray
        0/1 membership of the previous update's sets U, L and D.
    """

    r_up: np.ndarray
    r_lo: np.ndarray
    c_up: np.ndarray
    s_up: np.ndarray
    c_lo: np.ndarray
    s_lo: np.ndarray
    c_ret: np.ndarray
    a_prev: np.ndarray
    prev_up: np.ndarray
    prev_lo: np.ndarray
    prev_ret: np.ndarray

    def __post_init__(self) -> None:
        n = None
        for f in fields(self):
            arr = np.asarray(getattr(self, f.name), dtype=np.float64)
            if arr.ndim != 1:
                raise ValueError(
                    f"SpineState.{f.name} must be a 1-D per-synapse array, "
                    f"got shape {arr.shape}"
                )
            if n is None:
                n = arr.shape[0]
            elif arr.shape[0] != n:
                raise ValueError(
                    f"SpineState.{f.name} has {arr.shape[0]} entries, "
                    f"expected {n} (same as r_up)"
                )
            setattr(self, f.name, arr)

    def __len__(self) -> int:
        return int(self.r_up.shape[0])

    def copy(self) -> "SpineState":
        """Return a deep copy (every array copied)."""
        return SpineState(**{f.name: getattr(self, f.name).copy() for f in fields(self)})


def _as_weights(w, name: str = "w") -> np.ndarray:
    arr = np.asarray(w, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D per-synapse array, got shape {arr.shape}")
    return arr


def init_spines(w) -> SpineState:
    """Initialise the spine state of a layer (method §2.1, "Initialisation"; 2.5 period 0).

    Models the end of period 0: every synapse gets the same symmetric interval
    ``[-max(w), max(w)]`` where ``max(w)`` is the largest *signed* weight of
    the layer; all streak counters, sums and previous-set flags are 0 and
    ``a_prev = |w|``.

    Parameters
    ----------
    w : array_like, shape (n_syn,)
        Weights of all synapses of the layer after the first period.

    Returns
    -------
    SpineState
        Fresh state with one entry per synapse.

    Raises
    ------
    ValueError
        If ``w`` is empty or not 1-D.
    """
    w = _as_weights(w)
    if w.size == 0:
        raise ValueError("init_spines needs at least one synapse (w is empty)")
    m = float(np.max(w))
    n = w.shape[0]
    zeros = lambda: np.zeros(n, dtype=np.float64)  # noqa: E731
    return SpineState(
        r_up=np.full(n, m),
        r_lo=np.full(n, -m),
        c_up=zeros(),
        s_up=zeros(),
        c_lo=zeros(),
        s_lo=zeros(),
        c_ret=zeros(),
        a_prev=np.abs(w),
        prev_up=zeros(),
        prev_lo=zeros(),
        prev_ret=zeros(),
    )


def update_spines(
    state: SpineState, w_masked, n_streak: int = 18, shrink: float = 0.75
) -> SpineState:
    """One spine update at the end of a period (method §2.1, "Update"; 2.5 periods >= 1).

    Applied to the masked weights ``w~ = w * m``.  Elementwise, in this order:

    1. Upper expansion: ``U = w~ >= r_up`` (bound before this update).  If the
       synapse is in U now and was in U at the previous update, ``c_up += 1``
       and ``s_up += w~ - r_up``, otherwise both are reset to 0.  When
       ``c_up >= n_streak``: ``r_up += s_up / n_streak`` (mean overshoot) and
       ``c_up = s_up = 0``.
    2. Lower expansion: same with ``L = w~ <= r_lo`` (bound before this
       update), ``s_lo += w~ - r_lo`` (negative) and ``r_lo += s_lo / n_streak``.
    3. Retraction: ``D = |w~| < a_prev``.  In D now and before: ``c_ret += 1``,
       otherwise 0.  When ``c_ret >= n_streak`` both bounds (already expanded
       in steps 1-2) are multiplied by ``shrink`` and ``c_ret = 0``.
       Finally ``a_prev = |w~|``.

    Because each streak needs membership in the previous update's set too,
    a bound changes only after ``n_streak + 1`` consecutive updates.

    Parameters
    ----------
    state : SpineState
        State before the update; not modified.
    w_masked : array_like, shape (n_syn,)
        Masked weights ``w * m`` of the layer.
    n_streak : int, optional
        Streak length N (``count_thre`` / ``spines_num``), default 18.
    shrink : float, optional
        Retraction factor, default 0.75.

    Returns
    -------
    SpineState
        New state.
    """
    wm = _as_weights(w_masked, "w_masked")
    if wm.shape[0] != len(state):
        raise ValueError(
            f"w_masked has {wm.shape[0]} entries but the spine state has {len(state)}"
        )
    if n_streak < 1:
        raise ValueError(f"n_streak must be >= 1, got {n_streak}")
    if not shrink > 0:
        raise ValueError(f"shrink must be > 0, got {shrink}")
    n = float(n_streak)

    # 1. upper expansion (inU uses r_up before this update)
    r_up = state.r_up.copy()
    in_u = wm >= r_up
    both = in_u & (state.prev_up != 0)
    c_up = np.where(both, state.c_up + 1.0, 0.0)
    s_up = np.where(both, state.s_up + (wm - r_up), 0.0)
    grow = c_up >= n
    r_up = np.where(grow, r_up + s_up / n, r_up)
    c_up[grow] = 0.0
    s_up[grow] = 0.0
    prev_up = in_u.astype(np.float64)

    # 2. lower expansion (inL uses r_lo before its own update)
    r_lo = state.r_lo.copy()
    in_l = wm <= r_lo
    both_l = in_l & (state.prev_lo != 0)
    c_lo = np.where(both_l, state.c_lo + 1.0, 0.0)
    s_lo = np.where(both_l, state.s_lo + (wm - r_lo), 0.0)
    grow_l = c_lo >= n
    r_lo = np.where(grow_l, r_lo + s_lo / n, r_lo)
    c_lo[grow_l] = 0.0
    s_lo[grow_l] = 0.0
    prev_lo = in_l.astype(np.float64)

    # 3. retraction (multiplies the already-expanded bounds)
    a = np.abs(wm)
    in_d = a < state.a_prev
    both_d = in_d & (state.prev_ret != 0)
    c_ret = np.where(both_d, state.c_ret + 1.0, 0.0)
    shr = c_ret >= n
    r_up[shr] *= shrink
    r_lo[shr] *= shrink
    c_ret[shr] = 0.0
    prev_ret = in_d.astype(np.float64)

    return SpineState(
        r_up=r_up,
        r_lo=r_lo,
        c_up=c_up,
        s_up=s_up,
        c_lo=c_lo,
        s_lo=s_lo,
        c_ret=c_ret,
        a_prev=a.copy(),
        prev_up=prev_up,
        prev_lo=prev_lo,
        prev_ret=prev_ret,
    )


def clip_weights(w, state: SpineState) -> np.ndarray:
    """Synaptic constraint: clip each weight into its spine interval (method §2.1, "Constraint").

    Applied from period N+1 (19) on, after that period's spine update.
    Computes ``min(max(w, r_lo), r_up)``; it never creates zeros while
    ``r_lo < 0 < r_up``.

    Parameters
    ----------
    w : array_like, shape (n_syn,)
        Weights (unmasked) of the layer.
    state : SpineState
        Current spine state.

    Returns
    -------
    numpy.ndarray
        Clipped weights (new array).
    """
    w = _as_weights(w)
    if w.shape[0] != len(state):
        raise ValueError(f"w has {w.shape[0]} entries but the spine state has {len(state)}")
    return np.minimum(np.maximum(w, state.r_lo), state.r_up)


def spine_width(state: SpineState) -> np.ndarray:
    """Spine width ``r_up + |r_lo|`` of every synapse (method §2.2, importance input).

    Parameters
    ----------
    state : SpineState
        Current spine state.

    Returns
    -------
    numpy.ndarray
        Width per synapse (new array).
    """
    return state.r_up + np.abs(state.r_lo)


# ------------------------------------------------------------- generated code

#: Per-synapse spine state (Brian2 equations; dimensionless, in weight units).
SPINE_EQS = """
r_up : 1                    # spine upper bound r+ of the allowed weight
r_lo : 1                    # spine lower bound r- of the allowed weight (negative)
c_up : 1                    # growth streak: consecutive updates with w >= r+
s_up : 1                    # summed overshoot w - r+ over the growth streak
c_lo : 1                    # lower-growth streak: consecutive updates with w <= r-
s_lo : 1                    # summed undershoot w - r- over the lower-growth streak
c_ret : 1                   # retraction streak: consecutive updates with |w| falling
a_prev : 1                  # |w| at the previous structural update
prev_up : 1                 # 1 if w >= r+ at the previous update
prev_lo : 1                 # 1 if w <= r- at the previous update
prev_ret : 1                # 1 if |w| fell at the previous update
"""

#: The switch of the constraint (a shared synaptic variable).
CLIP_FLAG_EQS = """
clip_on : 1 (shared)        # 1 once the synaptic constraint is active (period > N)
"""

_SPINE_UPDATE = """
wm = w*connected
in_up = int(wm >= r_up)
both_up = in_up*prev_up
c_up = (c_up + 1)*both_up
s_up = (s_up + wm - r_up)*both_up
grow_up = int(c_up >= n_streak)
r_up = r_up + grow_up*s_up/n_streak
c_up = c_up*(1 - grow_up)
s_up = s_up*(1 - grow_up)
prev_up = in_up
in_lo = int(wm <= r_lo)
both_lo = in_lo*prev_lo
c_lo = (c_lo + 1)*both_lo
s_lo = (s_lo + wm - r_lo)*both_lo
grow_lo = int(c_lo >= n_streak)
r_lo = r_lo + grow_lo*s_lo/n_streak
c_lo = c_lo*(1 - grow_lo)
s_lo = s_lo*(1 - grow_lo)
prev_lo = in_lo
in_ret = int(abs(wm) < a_prev)
both_ret = in_ret*prev_ret
c_ret = (c_ret + 1)*both_ret
retract = int(c_ret >= n_streak)
r_up = r_up*(1 - (1 - shrink)*retract)
r_lo = r_lo*(1 - (1 - shrink)*retract)
c_ret = c_ret*(1 - retract)
prev_ret = in_ret
a_prev = abs(wm)
"""


def spine_update_code(mask: str = "connected") -> str:
    """Generated code of the spine update (method §2.1, reference ``get_range_weight``).

    Run once per structural period on every synapse. ``mask`` is the name of
    the synaptic mask variable (1 = connected); ``n_streak`` (N) and ``shrink``
    are names in the namespace (see :func:`spine_namespace`).
    """
    return _SPINE_UPDATE.replace("wm = w*connected", f"wm = w*{mask}")


def clip_code() -> str:
    """Generated code of the synaptic constraint ``w <- clip(w, r-, r+)`` while ``clip_on`` is 1."""
    return "\nw = clip_on*clip(w, r_lo, r_up) + (1 - clip_on)*w\n"


def spine_namespace(n_streak: int = 18, shrink: float = 0.75) -> dict:
    """Namespace of :func:`spine_update_code`: streak length N and retraction factor."""
    return {"n_streak": float(n_streak), "shrink": shrink}


def constraint_active(period: int, n_streak: int, enabled: bool = True) -> bool:
    """The synaptic constraint clips the weights from period ``N + 1`` on (method §2.1).

    ``enabled = False`` is the ablation without the constraint (``structure.constraint
    = false``): it never clips, while the spine update still runs (the clip code stays
    in the generated code with its switch ``clip_on`` at 0, so the ablation shares the
    full model's build).
    """
    return enabled and period > n_streak
