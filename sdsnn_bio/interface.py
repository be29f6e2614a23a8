"""What the period loop needs of a network: a small, typed interface.

The loop (:mod:`sdsnn_bio.loop`) trains, decides, evaluates and records
without knowing how a network is built or which Brian2 variables hold its
state. A network kind (the SD-SNN training network of
:mod:`sdsnn_bio.network`, or another) implements :class:`DevelopingNetwork`:
it takes the period's settings and each stage's structural settings, runs a
period, and hands back arrays: output counts, per-neuron activity and a
stage's structural state. Stages are described by
:class:`sdsnn_bio.geometry.StageGeometry`.
"""

from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = ["PeriodSettings", "StageSettings", "StructuralState", "DevelopingNetwork", "SelfDrivenNetwork"]


@dataclass(frozen=True)
class PeriodSettings:
    """Settings of one run that hold for every stage."""

    lr: float                    # Adam learning rate of this period
    adam_steps_before: int       # Adam steps taken in earlier periods
    learn: bool                  # train on the training windows (False: evaluation only)
    structural_step: bool        # run the end-of-period structural code (spine update, sums)
    hard_masks: bool             # keep pruned weights at zero within a period
    mask_biases: bool            # zero the biases of pruned neurons


@dataclass(frozen=True)
class StageSettings:
    """Structural settings of one stage for the next run; ``None`` leaves a value as it is."""

    clip: bool | None = None               # apply the synaptic constraint
    regenerate: bool | None = None         # run regeneration at the run's start
    regen_threshold: float | None = None   # the layer threshold g(e)
    apply_mask: bool | None = None         # multiply the mask into the weights at the start
    prune_units: np.ndarray | None = None  # bool per unit: pruned at the start of the next run


@dataclass
class StructuralState:
    """A stage's structural state after a run (arrays per synapse or per neuron)."""

    weights: np.ndarray          # per synapse
    upper: np.ndarray            # spine upper bound r+
    lower: np.ndarray            # spine lower bound r-
    connected: np.ndarray        # mask, 1 = live
    importance: np.ndarray       # per neuron: sum of live spine widths (end of the period)
    live: np.ndarray             # per neuron: live afferent synapses (end of the period)
    regenerated: np.ndarray      # per neuron: synapses regenerated at the run's start


class DevelopingNetwork(Protocol):
    """A network the period loop can develop (see the module docstring)."""

    stages: list                 # StageGeometry of every stage, forward order
    n_windows: int               # sample windows of one run (test + training)

    def compile(self) -> None:
        """Build whatever is built once (a standalone project) before the first run."""

    def configure(self, period: PeriodSettings, stages: dict) -> None:
        """Settings of the next run; ``stages`` maps stage names to :class:`StageSettings`."""

    def set_inputs(self, stimulus: np.ndarray, target: np.ndarray) -> None:
        """Inputs of the next run: windows x inputs, and windows x classes."""

    def run(self) -> np.ndarray:
        """Run one period; the output spike counts per window (windows x classes)."""

    def weights(self, stage: str) -> np.ndarray:
        """Current weights of a stage's synapses."""

    def structural_state(self, stage: str) -> StructuralState:
        """Current structural state of a stage."""

    def initialise_spines(self, stage: str, spines) -> None:
        """Spine state (a :class:`sdsnn_bio.structure.SpineState`) of the next run."""

    def events(self) -> tuple:
        """Events per neuron in the last run: ``(input events, [events of each stage])``."""

    def state_arrays(self) -> dict:
        """Everything needed to continue: ``{name: array}`` (snapshots)."""

    def restore_state(self, arrays: dict) -> None:
        """Continue from :meth:`state_arrays` of an earlier run."""

    def close(self) -> None:
        """Release what the network holds (build folders)."""


class SelfDrivenNetwork(Protocol):
    """A network that develops on its own activity, without inputs, labels or accuracy
    (the developmental kind, :class:`sdsnn_bio.cortex.CortexNetwork`).

    It shares :class:`DevelopingNetwork`'s state interface (``stages``,
    ``compile``, ``run``, ``weights``, ``structural_state``, ``events``,
    ``state_arrays``, ``restore_state``, ``close``), through which the loop
    records its structural history, snapshots and resumes it; instead of being
    configured and fed by the loop it sets up each period itself and takes its
    own decisions between periods.
    """

    stages: list

    def compile(self) -> None:
        """Build whatever is built once before the first run."""

    def begin_period(self, e: int) -> None:
        """Settings of period ``e``'s run (its age, its drive)."""

    def run(self) -> np.ndarray:
        """Run one period; spike counts per neuron."""

    def decide(self, e: int) -> dict:
        """Decisions after period ``e`` (applied at the next run's start)."""

    def period_row(self, e: int) -> dict:
        """The table row of period ``e``, after its decisions."""

    def time_axis(self) -> dict:
        """How simulated time maps to age (written to ``run.json``)."""

    def structural_state(self, stage: str) -> StructuralState:
        """Current structural state of a stage."""

    def state_arrays(self) -> dict:
        """Everything needed to continue: ``{name: array}`` (snapshots)."""

    def restore_state(self, arrays: dict) -> None:
        """Continue from :meth:`state_arrays` of an earlier run."""

    def close(self) -> None:
        """Release what the network holds (build folders)."""
