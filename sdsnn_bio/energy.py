"""Energy estimate per sample: synaptic operations of the spiking network against the
multiply-accumulates of a non-spiking network of the same shape.

Definitions (the convention of most SNN papers):

* **Synaptic operations (SOPs)** of the spiking network, per sample and per layer:
  every event of the layer's presynaptic group (an input spike, a hidden spike, a
  pooling stage's graded event) times its *live* fan-out into the layer (the
  synapses whose mask is 1), summed over the sample's ``T`` time steps. They are
  counted from the simulation (:func:`sdsnn_bio.metrics.layer_operations`): in
  ``summary.json`` from the final evaluation on the final structure over the whole
  test set (no learning); in ``periods.csv`` (column ``sops_per_sample``) from each
  period's run, training windows included. Each SOP is one accumulate (AC).
* **Multiply-accumulates (MACs)** of the same-shape non-spiking network: every
  synapse of every weighted layer once per sample (not once per time step), with
  all synapses present (a dense twin of the architecture). A pooling stage's
  synapses are additions (ACs) in both networks.
* **Per-operation costs**: Horowitz, "1.1 Computing's energy problem (and what we
  can do about it)", ISSCC 2014, pp. 10-14, doi:10.1109/ISSCC.2014.6757323, the
  table of 45 nm, 0.9 V: 32-bit float add 0.9 pJ, 32-bit float multiply 3.7 pJ,
  so an AC costs 0.9 pJ and a MAC 3.7 + 0.9 = 4.6 pJ (figures checked against the
  table that cites them, https://pmc.ncbi.nlm.nih.gov/articles/PMC8934428/table/T3/).
  Memory traffic, neuron updates and the spike encoding are not counted.
"""

import numpy as np

from .errors import SdsnnError

__all__ = ["E_AC_PJ", "E_MAC_PJ", "COST_SOURCE", "dense_operations", "energy_summary", "read_energy",
           "energy_lines"]

#: Energy of one 32-bit float accumulate (add), pJ (Horowitz, ISSCC 2014, 45 nm).
E_AC_PJ = 0.9
#: Energy of one 32-bit float multiply-accumulate (3.7 pJ multiply + 0.9 pJ add), pJ.
E_MAC_PJ = 4.6
#: Where the per-operation costs come from.
COST_SOURCE = ("M. Horowitz, '1.1 Computing's energy problem (and what we can do about it)', ISSCC 2014, "
               "pp. 10-14, doi:10.1109/ISSCC.2014.6757323: 45 nm, 0.9 V, 32-bit float add 0.9 pJ, "
               "multiply 3.7 pJ")


def dense_operations(stages) -> tuple:
    """MACs and ACs per sample of the same-shape non-spiking network: ``(macs, acs)``,
    each a dict by stage name (all synapses of a weighted stage are MACs, a pooling
    stage's are ACs; once per sample)."""
    macs, acs = {}, {}
    for st in stages:
        # a convolution multiplies at every synapse of its positions, not once per kernel weight
        (macs if st.learnable else acs)[st.name] = float(st.n_simulated_synapses)
    return macs, acs


def energy_summary(stages, sops_per_sample) -> dict:
    """The energy block of ``summary.json``.

    Parameters
    ----------
    stages : list of StageGeometry
        The network's stages (forward order).
    sops_per_sample : array_like, shape (n_stages,)
        Synaptic operations per sample into each stage.

    Returns
    -------
    dict
        ``sops_per_sample`` (total), ``sops_per_layer``, ``ann_macs_per_sample``,
        ``ann_acs_per_sample``, ``snn_energy_pj``, ``ann_energy_pj``,
        ``energy_ratio_snn_to_ann``, the costs ``e_ac_pj``, ``e_mac_pj`` and their ``source``.
    """
    sops = np.asarray(sops_per_sample, float)
    if sops.shape != (len(stages),):
        raise SdsnnError(f"energy: {sops.shape[0] if sops.ndim else 0} operation counts for "
                         f"{len(stages)} stages")
    macs, acs = dense_operations(stages)
    snn = float(sops.sum()) * E_AC_PJ
    ann = sum(macs.values()) * E_MAC_PJ + sum(acs.values()) * E_AC_PJ
    return {"sops_per_sample": float(sops.sum()),
            "sops_per_layer": {st.name: float(v) for st, v in zip(stages, sops)},
            "ann_macs_per_sample": sum(macs.values()), "ann_acs_per_sample": sum(acs.values()),
            "snn_energy_pj": snn, "ann_energy_pj": ann,
            "energy_ratio_snn_to_ann": snn / ann if ann else float("nan"),
            "e_ac_pj": E_AC_PJ, "e_mac_pj": E_MAC_PJ, "source": COST_SOURCE}


def read_energy(summary: dict, where="") -> dict:
    """The energy block of a run's summary; SdsnnError naming the folder if it has none
    (a run made before energy was recorded) or if it is malformed."""
    e = summary.get("energy")
    keys = ("sops_per_sample", "snn_energy_pj", "ann_energy_pj")
    if not isinstance(e, dict) or not all(isinstance(e.get(k), (int, float)) for k in keys):
        raise SdsnnError(f"{where}: summary.json has no energy block with {', '.join(keys)} "
                         "(a run made before energy was recorded, or not a finished run)")
    return e


def energy_lines(summary: dict) -> list:
    """Lines of ``sdsnn-bio report`` for a summary's energy block (none without one)."""
    e = summary.get("energy")
    if not isinstance(e, dict) or "sops_per_sample" not in e:
        return []
    per_layer = ", ".join(f"{k} {v:.4g}" for k, v in e.get("sops_per_layer", {}).items())
    return [f"  synaptic ops/sample  {e['sops_per_sample']:.4g} (final network, test set; {per_layer})",
            f"  energy/sample        {e['snn_energy_pj'] / 1e3:.4g} nJ (ACs x {e['e_ac_pj']:g} pJ) against "
            f"{e['ann_energy_pj'] / 1e3:.4g} nJ for the same-shape non-spiking network "
            f"({e['ann_macs_per_sample']:.4g} MACs x {e['e_mac_pj']:g} pJ): ratio "
            f"{e['energy_ratio_snn_to_ann']:.3f} (costs: Horowitz, ISSCC 2014, 45 nm)"]
