"""The SD-SNN synapse: a weight with an explicit dendritic-spine state.

Every synapse of a learnable layer carries the state of the spine it sits on
(spec section 2.1): the interval ``[r_lo, r_up]`` that the weight is allowed to
take, the growth / lower-growth / retraction streak counters with their
accumulated overshoots, the magnitude it had at the previous structural update,
the regeneration streak (spec 2.3) and the ``connected`` mask. All of them are
Brian2 synaptic variables that a user can monitor with a ``StateMonitor``.

The per-synapse structural rules are Brian2 code run on every device:

* :data:`SPINE_UPDATE_CODE` -- growth, lower growth and retraction of the spine
  (spec 2.1), applied to the masked weight ``w * connected`` at the end of a
  structural period;
* :data:`CLIP_CODE` -- the synaptic constraint ``w <- clip(w, r_lo, r_up)``;
* :data:`IMPORTANCE_CODE` -- per-neuron sums of live spine widths and live
  synapses (inputs of the neuron ranking, spec 2.2);
* :data:`REGENERATION_CODE` and :data:`PRUNE_APPLY_CODE` -- regeneration streaks
  against the layer threshold computed between runs (spec 2.3), then the
  pruning decision of the period and the mask applied to the weights.

The numpy statements of the same rules are in :mod:`sdsnn_bio.structure`; the
tests check that both give identical arrays.
"""

__all__ = [
    "SYNAPSE_EQS",
    "SPINE_UPDATE_CODE",
    "CLIP_CODE",
    "IMPORTANCE_CODE",
    "REGENERATION_CODE",
    "PRUNE_APPLY_CODE",
    "SPINE_VARIABLES",
]

#: Synaptic state of a learnable connection (weights dimensionless, in units
#: of the postsynaptic membrane potential).
#: The learning rate, Adam step count, mask mode and run start time are those
#: of the postsynaptic group (``lr_post``, ``adam_k0_post`` ...).
SYNAPSE_EQS = """
w : 1                       # synaptic weight
g : 1                       # loss gradient accumulated over the current mini-batch
mt : 1                      # Adam first moment
vt : 1                      # Adam second moment
connected : 1               # 1: the spine holds a synapse; 0: pruned (masked out)
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
regen_k : 1                 # regeneration streak of a pruned synapse
regen_prev : 1              # 1 if the synapse was a regeneration candidate last period
clip_on : 1 (shared)        # 1 once the synaptic constraint is active (period > N)
regen_on : 1 (shared)       # 1 when regeneration runs at the start of this period
regen_threshold : 1 (shared)  # layer threshold g(e) of the regeneration candidates
mask_on : 1 (shared)        # 1 when the mask is multiplied into the weights
"""

#: Names of the per-synapse spine variables (snapshots, run_args, tests).
SPINE_VARIABLES = (
    "r_up", "r_lo", "c_up", "s_up", "c_lo", "s_lo", "c_ret", "a_prev",
    "prev_up", "prev_lo", "prev_ret",
)

#: Spine growth, lower growth and retraction (spec 2.1, reference
#: ``get_range_weight``). ``n_streak`` (N = 18) and ``shrink`` (0.75) come from
#: the namespace. A streak counts updates in which the synapse is in the set
#: *and* was in it at the previous update, so a bound moves after N + 1
#: consecutive updates.
SPINE_UPDATE_CODE = """
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

#: The synaptic constraint (spec 2.1): active once ``clip_on`` is 1.
CLIP_CODE = """
w = clip_on*clip(w, r_lo, r_up) + (1 - clip_on)*w
"""

#: Per-neuron sums for the importance ranking (spec 2.2). The layer-wide
#: min-max normalisation of the widths is applied between runs:
#: ``S_i = (imp_i - min*live_i) / (max - min)``.
IMPORTANCE_CODE = """
imp_post += connected*(r_up + abs(r_lo))
live_post += connected
"""

#: Regeneration (spec 2.3, reference ``do_growth_ww``): a pruned synapse whose
#: weight exceeds the layer threshold in more than ``regen_M`` consecutive
#: periods is reconnected, keeping the weight soft training gave it.
REGENERATION_CODE = """
cand = (1 - connected)*int(w > regen_threshold)*regen_on
regen_k = (regen_k + 1)*cand*regen_prev
regrow = int(regen_k > regen_M)
connected = connected + regrow*(1 - connected)
regen_k = regen_k*(1 - regrow)
regen_prev = cand
regrown_post += regrow
"""

#: Neuron pruning decided between runs (``prune_now`` of the postsynaptic
#: neuron), then the mask multiplied into the weights (spec 2.2, step 6).
PRUNE_APPLY_CODE = """
connected = connected*(1 - prune_now_post)
w = w*(1 - mask_on*(1 - connected))
"""
