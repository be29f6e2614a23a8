"""SD-SNN's layer-wide decisions between runs, for every layer of a network (method §2.5).

Period ``e`` (0-based) is one run of the network plus these decisions:

* after period 0: the spines are initialised (``r+ = max w``, ``r- = -max w``;
  :func:`sdsnn_bio.structure.constraint.init_spines`);
* the constraint clips from period ``N + 1`` on;
* from period ``S = structure_start`` on, for the pruned layers in forward
  order (the ablations of ``[structure]`` change what ranks the units, whether
  the constraint clips and whether the rate moves): the pruning decision (:func:`~sdsnn_bio.structure.pruning.prune_decision`),
  the dead-unit count and the neurotrophic rate update
  (:func:`~sdsnn_bio.structure.neurotrophic.next_rate`), and the regeneration
  threshold (:func:`~sdsnn_bio.structure.regeneration.regeneration_decision`).

The next run applies these decisions at its first step (regeneration, pruning,
mask) and its test windows measure period ``e``'s accuracy on the masked
network.

Deviation from the reference code's order (method §2.5), forced by running the
per-synapse rules as generated code in one run per period: the neuron ranking
and the dead counts of period ``e`` use the masks *before* that period's
regeneration, which is applied together with the pruning at the start of the
next run (the regeneration candidates are still tested on the masks and
weights of period ``e``, as in the reference code). A pruned neuron's
regenerated synapses therefore count in its importance and liveness one period
later than in the reference code.

This module talks to a network only through
:class:`sdsnn_bio.interface.DevelopingNetwork` and knows no Brian2 names.
"""

from dataclasses import dataclass, field

import numpy as np

from ..interface import PeriodSettings, StageSettings
from ..learning import adam_steps_before, learning_rate
from ..metrics import compression
from .constraint import constraint_active, init_spines
from .neurotrophic import next_rate
from .pruning import alive_units, importance_quantity, prune_decision
from .regeneration import regeneration_decision

__all__ = ["LayerState", "StructuralDevelopment"]


@dataclass
class LayerState:
    """Numpy-side structural state of one pruned layer."""

    rho: float
    history: np.ndarray           # bool per unit: pruned at some period (H)
    prune_now: np.ndarray = None  # bool per unit: pruned at the end of this period
    dead: int = 0
    extra: dict = field(default_factory=dict)


class StructuralDevelopment:
    """The SD-SNN schedule and decisions of a configured network.

    Parameters
    ----------
    cfg : ModelConfig
    stages : list of StageGeometry
        The network's stages (forward order).
    """

    def __init__(self, cfg, stages):
        self.cfg = cfg
        self.stages = list(stages)
        self.structural = [s for s in self.stages if s.structural]
        self.pruned = [s for s in self.stages if s.pruned]
        self.layers = {s.name: LayerState(rho=s.spec.rho0, history=np.zeros(s.n_units, bool))
                       for s in self.pruned}

    # ----------------------------------------------------------- settings
    def period_settings(self, e: int, learn: bool = True) -> PeriodSettings:
        cfg = self.cfg
        tr, sch, stc = cfg.training, cfg.schedule, cfg.structure
        return PeriodSettings(lr=learning_rate(e, tr.lr, tr.lr_decay, tr.lr_decay_every),
                              adam_steps_before=adam_steps_before(e, sch.train_per_period, tr.batch), learn=learn,
                              structural_step=stc.enabled and learn and e >= 1,
                              hard_masks=stc.masks == "hard", mask_biases=stc.mask_biases)

    def stage_settings(self, e: int, decisions_of=None, repeat: bool = False) -> dict:
        """Each structural stage's settings of period ``e``'s run.

        ``decisions_of``: the period whose decisions this run applies at its
        start (``e - 1``; ``None`` for the first run, which applies none).
        ``repeat``: a further run on the same structure (evaluation passes):
        no regeneration and no new pruning, the mask and threshold as they are.
        """
        cfg = self.cfg
        clip_on = cfg.structure.enabled and constraint_active(e, cfg.schedule.spine_streak,
                                                              enabled=cfg.structure.constraint)
        out = {}
        for st in self.structural:
            # a layer without spines that clips holds to its period-0 range (the reference
            # code's output layer) unless the fixed_clip ablation leaves it free
            clip = clip_on and (cfg.structure.fixed_clip or not st.spec.fixed_range_clip)
            if repeat:
                out[st.name] = StageSettings(clip=clip, regenerate=False,
                                             prune_units=np.zeros(st.n_units, bool) if st.pruned else None)
                continue
            if decisions_of is None:
                out[st.name] = StageSettings(clip=clip)
                continue
            active = cfg.structure.enabled and decisions_of >= cfg.schedule.structure_start
            ls = self.layers.get(st.name)
            regen = active and ls is not None and cfg.structure.regeneration
            prune = None
            if ls is not None:
                prune = ls.prune_now if (active and ls.prune_now is not None) else np.zeros(st.n_units, bool)
            out[st.name] = StageSettings(clip=clip, regenerate=regen,
                                         regen_threshold=ls.extra.get("regen_threshold", 0.0) if regen else 0.0,
                                         apply_mask=active, prune_units=prune)
        return out

    # ---------------------------------------------------------- decisions
    def decide(self, e: int, net):
        """Layer-wide decisions of period ``e`` from the network's state after its run."""
        cfg = self.cfg
        stc = cfg.structure
        if not stc.enabled:
            return
        if e == 0:
            for st in self.structural:
                net.initialise_spines(st.name, init_spines(net.weights(st.name)))
        S = cfg.schedule.structure_start
        if e < S:
            return
        for idx, st in enumerate(self.pruned):
            ls = self.layers[st.name]
            state = net.structural_state(st.name)
            width = importance_quantity(stc.importance, state.weights, state.upper, state.lower)
            new, ls.dead = prune_decision(state.importance, state.live, float(width.min()), float(width.max()),
                                          st.unit_of_neuron, st.n_units, ls.rho, ls.history, st.spec.theta_dead,
                                          st.positions_per_unit)
            ls.prune_now = new
            ls.history = ls.history | new
            ls.extra["rho_used"] = ls.rho
            # neurotrophic update (method §2.4), after this layer's pruning; a hidden layer's
            # target has not been pruned yet in this period: its previous count
            target_alive = 0.0
            if st.spec.neurotrophic == "hidden":
                nxt = self.pruned[idx + 1]
                target_alive = nxt.n_units - self.layers[nxt.name].dead
            kind = st.spec.neurotrophic if stc.neurotrophic else "fixed"
            ls.rho = next_rate(kind, ls.rho, e, st.n_units - ls.dead, start=S,
                               alive_target=target_alive, n_classes=cfg.n_classes, tau=stc.rate_tau,
                               a=stc.rate_a, c=stc.rate_c, switch=stc.rate_switch)
            if stc.regeneration:
                q, thr = regeneration_decision(e, state.weights, st.spec.regen_q0, S, growth=stc.regen_growth,
                                               cap=stc.regen_cap)
                ls.extra["regen_q"], ls.extra["regen_threshold"] = q, thr

    # ------------------------------------------------------------ records
    def summary(self, net) -> dict:
        """Per-layer alive units, zeros, regenerations and rates, and the compression."""
        out = {}
        zeros, sizes, refs = {}, {}, {}
        for st in (s for s in self.stages if s.learnable):
            state = net.structural_state(st.name)
            zeros[st.name] = int(np.sum(state.connected == 0))
            sizes[st.name] = st.n_synapses
            refs[st.name] = st.reference_params
            out[f"zeros_{st.name}"] = zeros[st.name]
            if st.pruned:
                out[f"alive_{st.name}"] = alive_units(state.connected, st.post_index, st.n_neurons,
                                                      st.unit_of_neuron, st.n_units, st.spec.theta_dead,
                                                      st.positions_per_unit)
                out[f"regenerated_{st.name}"] = int(state.regenerated.sum())
                ls = self.layers[st.name]
                out[f"rho_{st.name}"] = round(ls.extra.get("rho_used", ls.rho), 6)
        out["compression"], out["synapse_sparsity"] = compression(zeros, sizes, refs)
        return out

    def to_dict(self) -> dict:
        return {name: {"rho": ls.rho, "history": ls.history.tolist(),
                       "prune_now": None if ls.prune_now is None else ls.prune_now.tolist(),
                       "dead": ls.dead, "extra": ls.extra}
                for name, ls in self.layers.items()}

    def load_dict(self, d: dict):
        for name, s in d.items():
            ls = self.layers[name]
            ls.rho = s["rho"]
            ls.history = np.array(s["history"], bool)
            ls.prune_now = None if s["prune_now"] is None else np.array(s["prune_now"], bool)
            ls.dead = s["dead"]
            ls.extra = s["extra"]
