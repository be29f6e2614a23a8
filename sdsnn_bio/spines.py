"""The SD-SNN synapse as a Brian2 library: a weight with an explicit dendritic-spine state.

Every synapse of a learnable layer carries the state of the spine it sits on
(method section 2.1): the interval ``[r_lo, r_up]`` that the weight is allowed to
take, the growth / lower-growth / retraction streak counters with their
accumulated overshoots, the magnitude it had at the previous structural update,
the regeneration streak (method §2.3) and the ``connected`` mask. All of them are
Brian2 synaptic variables that a user can monitor with a ``StateMonitor``.

Each rule lives in its mechanism's module, with its equations, generated code,
numpy twin and between-runs decision: :mod:`sdsnn_bio.structure.constraint`
(spines and the constraint), :mod:`~sdsnn_bio.structure.pruning`,
:mod:`~sdsnn_bio.structure.regeneration`,
:mod:`~sdsnn_bio.structure.neurotrophic` and :mod:`sdsnn_bio.learning`. This
module puts them together for Brian2:

* :data:`SYNAPSE_EQS` -- the synaptic state of a learnable SD-SNN connection;
* :func:`structural_pathways` -- the per-period structural code as two
  event-driven pathways (period start, period end), as the training network
  uses them;
* :func:`spine_synapses` -- a ``Synapses`` object between a user's own groups
  with the spine state and the structural rules on a clock of one tick per
  structural period, for notebooks and other networks; with
  :func:`initialise_spines`, :func:`decide_pruning` and
  :func:`decide_regeneration`, the between-runs decisions as functions of its
  arrays (``runtime`` device).
"""

from .learning import LEARNING_SYNAPSE_EQS
from .structure import constraint, pruning, regeneration

__all__ = [
    "MASK_EQS",
    "SYNAPSE_EQS",
    "SPINE_VARIABLES",
    "structural_pathways",
    "spine_synapses",
    "initialise_spines",
    "decide_pruning",
    "decide_regeneration",
]

#: The mask of a synapse of the fixed pool, and its shared switch.
MASK_EQS = """
connected : 1               # 1: the spine holds a synapse; 0: pruned (masked out)
"""
MASK_FLAG_EQS = """
mask_on : 1 (shared)        # 1 when the mask is multiplied into the weights
"""

#: Synaptic state of a learnable SD-SNN connection (weights dimensionless, in
#: units of the postsynaptic membrane potential): learning, mask, spine,
#: regeneration and the shared switches of the structural rules.
SYNAPSE_EQS = (LEARNING_SYNAPSE_EQS + MASK_EQS.lstrip("\n") + constraint.SPINE_EQS.lstrip("\n")
               + regeneration.REGENERATION_EQS.lstrip("\n") + constraint.CLIP_FLAG_EQS.lstrip("\n")
               + regeneration.REGENERATION_FLAG_EQS.lstrip("\n") + MASK_FLAG_EQS.lstrip("\n"))

#: Names of the per-synapse spine variables (snapshots, run_args, tests).
SPINE_VARIABLES = constraint.SPINE_FIELDS


def structural_pathways(spines: bool = True, clip: bool = True, prune: bool = True,
                        importance: str = "spine") -> dict:
    """Code of the two structural pathways of a connection: ``{"pend": ..., "pstart": ...}``.

    ``pend`` runs at the end of a period (spine update, constraint, importance
    sums), ``pstart`` at the start of the next (regeneration, then the pruning
    decision and the mask). ``spines=False`` leaves the spines as they are (a
    fixed clip at their range), ``clip`` applies the constraint, ``prune``
    adds the importance sums of the neuron ranking, over the spine widths or,
    with ``importance = "weight"`` (an ablation), the weight magnitudes
    (:func:`sdsnn_bio.structure.pruning.importance_code`).
    """
    pend = ""
    if spines:
        pend += constraint.spine_update_code()
    if clip or spines:
        pend += constraint.clip_code()
    if prune:
        pend += pruning.importance_code(importance)
    return {"pend": pend, "pstart": regeneration.regeneration_code() + pruning.prune_apply_code()}


def spine_synapses(source, target, on_pre: str = "v_post += w", *, structural_dt, connect=True, model: str = "",
                   n_streak: int = 18, shrink: float = 0.75, regen_streak: int = 10,
                   name: str = "spine_synapses*", namespace: dict | None = None, **kwds):
    """Synapses from ``source`` to ``target`` whose weights sit on spines.

    Returns a Brian2 ``Synapses`` object with
    :data:`SYNAPSE_EQS` plus ``model``, the given ``on_pre`` and two operations
    on a clock of one tick per structural period (``structural_dt``), at the
    start of the time step:

    ``<name>_spines``
        the spine update and the synaptic constraint (method §2.1), on the masked
        weights of the period that just ended;
    ``<name>_rewire``
        regeneration of pruned synapses (method §2.3), then the pruning decision
        of the target's neurons (``prune_now``) and the mask (method §2.2).

    ``target`` must have a ``prune_now : 1`` variable (see
    :data:`sdsnn_bio.structure.pruning.PRUNING_NEURON_EQS`). The switches
    ``clip_on``, ``regen_on``, ``mask_on`` and ``regen_threshold`` start at 0;
    :func:`initialise_spines`, :func:`decide_pruning` and
    :func:`decide_regeneration` take the layer-wide decisions between runs.
    ``n_streak`` (N), ``shrink`` and ``regen_streak`` (M) are the rules'
    constants. ``connect`` is what ``Synapses.connect`` gets: ``True`` (all to
    all), a condition string or a dict of keywords; every synapse then starts
    connected (``connected = 1``). With ``connect=None`` call ``connect``
    yourself and set ``connected = 1`` after it. Other keywords go to ``Synapses``.
    """
    import brian2 as b2

    ns = dict(constraint.spine_namespace(n_streak, shrink), regen_M=float(regen_streak))
    ns.update(namespace or {})
    syn = b2.Synapses(source, target, model=SYNAPSE_EQS + model, on_pre=on_pre, namespace=ns,
                      name=name, **kwds)
    if connect is not None:
        syn.connect(**connect) if isinstance(connect, dict) else syn.connect(connect)
        syn.connected = 1.0
    base = syn.name
    syn.run_regularly(constraint.spine_update_code() + constraint.clip_code(), dt=structural_dt,
                      when="start", order=0, name=f"{base}_spines")
    syn.run_regularly(regeneration.regeneration_code(count="") + pruning.prune_apply_code(),
                      dt=structural_dt, when="start", order=1, name=f"{base}_rewire")
    return syn


def initialise_spines(syn):
    """Give every synapse the spine ``[-max w, max w]`` of its layer (method §2.1; after period 0)."""
    state = constraint.init_spines(syn.w[:])
    for var in constraint.SPINE_FIELDS:
        setattr(syn, var, getattr(state, var))
    return state


def decide_pruning(syn, rho_percent: float, history, theta_dead: float = 1.0):
    """Choose the target neurons pruned at the next tick (method §2.2) from the synapses' arrays.

    Writes ``prune_now`` of the target group and switches the mask on; returns
    ``(pruned_now, dead)``: a boolean array over the target's neurons and the
    dead-neuron count after this pruning (a neuron with fewer than
    ``theta_dead`` live afferent synapses is dead; by default one with none).
    """
    import numpy as np

    n = len(syn.target)
    connected = np.asarray(syn.connected[:])
    post = np.asarray(syn.j[:])
    width = constraint.spine_width(_spine_state(syn))
    live = pruning.live_counts(connected, post, n).astype(float)
    imp = np.bincount(post, weights=connected * width, minlength=n)
    new, dead = pruning.prune_decision(imp, live, width.min(), width.max(), np.arange(n), n,
                                       rho_percent, np.asarray(history, bool), theta_dead)
    syn.target.prune_now = new.astype(float)
    syn.mask_on = 1.0
    return new, dead


def decide_regeneration(syn, period: int, q0: float, start: int, growth: float = 1.1, cap: float = 99.0):
    """Set the regeneration threshold of the next tick (method §2.3); returns ``(q, threshold)``."""
    q, thr = regeneration.regeneration_decision(period, syn.w[:], q0, start, growth=growth, cap=cap)
    syn.regen_threshold = thr
    syn.regen_on = 1.0
    return q, thr


def _spine_state(syn):
    return constraint.SpineState(**{var: syn.variables[var].get_value().copy()
                                    for var in constraint.SPINE_FIELDS})
