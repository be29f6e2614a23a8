"""SD-SNN structural rules: pure numpy reference implementation (method sections 2.1-2.5).

Functions over flat per-synapse arrays; they specify what the Brian2
generated code must compute and make the layer-wide decisions between runs.
"""
from .constraint import (
    SPINE_FIELDS,
    SpineState,
    clip_weights,
    init_spines,
    spine_width,
    update_spines,
)
from .neurotrophic import hidden_rate_update, last_rate_update
from .pruning import (
    dead_count,
    live_counts,
    n_to_prune,
    neuron_importance,
    normalise,
    select_pruned,
    unit_importance,
)
from .regeneration import (
    RegenerationState,
    init_regeneration,
    regenerate,
    regeneration_percentile,
    regeneration_threshold,
)

__all__ = [
    "SPINE_FIELDS",
    "SpineState",
    "init_spines",
    "update_spines",
    "clip_weights",
    "spine_width",
    "normalise",
    "neuron_importance",
    "unit_importance",
    "n_to_prune",
    "select_pruned",
    "live_counts",
    "dead_count",
    "regeneration_percentile",
    "regeneration_threshold",
    "RegenerationState",
    "init_regeneration",
    "regenerate",
    "hidden_rate_update",
    "last_rate_update",
]
