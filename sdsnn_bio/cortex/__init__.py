"""The developmental network kind: an E/I network in physical units whose excitatory synapses
carry spines with volumes, developing in biological time (``kind = "development"``).

:mod:`~sdsnn_bio.cortex.config` (the model file's keys and the time axis),
:mod:`~sdsnn_bio.cortex.rules` (connectivity, the spine step and its numpy twin,
trophic competition, importance pruning), :mod:`~sdsnn_bio.cortex.model`
(:class:`CortexNetwork`, the Brian2 network). :class:`sdsnn_bio.loop.Development`
runs it period after period like a training network.
"""

from .config import KIND, CortexConfig, cortex_config_from_dict
from .model import COLUMNS, CortexNetwork, build_cortex, cortex_stages

__all__ = ["KIND", "CortexConfig", "cortex_config_from_dict", "COLUMNS", "CortexNetwork", "build_cortex",
           "cortex_stages"]
