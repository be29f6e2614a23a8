# %% [markdown]
# # Plasticity dynamics of a developing network
#
# A notebook in the *percent* format (open it in Jupyter with jupytext, or run it as a
# script: `.venv/bin/python notebooks/plasticity_dynamics.py`). It trains the small
# `tiny_dense` model (784-40-10, compressed schedule) while its structure develops, then
# looks at what the structural rules did: the pruning wave, regeneration, the neurotrophic
# pruning rate, and the spine-width distribution of the surviving synapses.
#
# The test suite runs it (tests/test_notebooks.py) and checks what it computes.

# %%
import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
import matplotlib.pyplot as plt
import numpy as np

from sdsnn_bio.config import find_model, load_config
from sdsnn_bio.loop import Development
from sdsnn_bio.records import RunFolder
from sdsnn_bio.viz import plot_accuracy_compression, plot_alive, plot_spine_widths

out = Path(os.environ.get("NOTEBOOK_OUT", tempfile.mkdtemp(prefix="sdsnn-notebook-")))
cfg = load_config(find_model("tiny_dense")).replace(schedule={"periods": 10})
print(f"{cfg.name}: {cfg.description}")

# %% [markdown]
# ## Train while the structure develops
# One period is one Brian2 run; the structural decisions are taken between runs.

# %%
run = RunFolder(out / "run")
summary = Development(cfg, run.path, device="cpp_standalone", progress=print).run()
table = run.read_table()
print(f"final accuracy {100 * summary['final_test_accuracy']:.1f}%")

# %% [markdown]
# ## The pruning wave and the neurotrophic rate
# Pruning starts at `structure_start`; the rate rho of fc1 jumps by alpha*(alive)/K, then
# settles as alpha decays (spec 2.4). Regenerated synapses are pruned synapses whose
# soft-trained weight stayed in the layer's top percentile long enough (spec 2.3).

# %%
S = cfg.schedule.structure_start
for e, rho, alive, regen, comp in zip(table["period"], table["rho_fc1"], table["alive_fc1"],
                                      table["regenerated_fc1"], table["compression"]):
    print(f"period {int(e):2d}  rho {rho:6.2f}%  alive {int(alive):3d}  regenerated {int(regen):4d}  "
          f"compression {100 * comp:5.1f}%")
print(f"compression before period {S}: {100 * table['compression'][table['period'] < S].max():.1f}%, "
      f"at the end: {100 * table['compression'][-1]:.1f}%")

fig_development, axs = plt.subplots(1, 2, figsize=(10, 3.5))
ax_accuracy = plot_accuracy_compression(table, axes=axs[0])
ax_alive = plot_alive(table, axes=axs[1])
fig_development.tight_layout()
fig_development.savefig(out / "development.png", dpi=100)

# %% [markdown]
# ## Spine widths of the surviving synapses
# The spine state is an explicit per-synapse variable; a snapshot holds all of it.

# %%
snap = run.load_snapshot("last", keys=["fc1/syn/r_up", "fc1/syn/r_lo", "fc1/syn/connected"])
r_up, r_lo, conn = (snap.arrays[f"fc1/syn/{v}"] for v in ("r_up", "r_lo", "connected"))
width = r_up + np.abs(r_lo)
n_live = int(conn.sum())
print(f"period {snap.period}: live synapses {n_live} of {conn.size}; "
      f"spine width median {np.median(width[conn > 0]):.4f}")
fig_spines, ax_spines = plt.subplots(figsize=(5, 3.5))
plot_spine_widths(r_up, r_lo, conn, axes=ax_spines, title="fc1")
fig_spines.tight_layout()
fig_spines.savefig(out / "spine_widths.png", dpi=100)
print(f"figures in {out}")
