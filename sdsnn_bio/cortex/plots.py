"""Pictures of a developmental run over age (brian2tools manner: arrays in, optional
``axes``, axis labels with units, ``**kwds`` to matplotlib, the Axes back)."""

import numpy as np

__all__ = ["plot_spine_density", "plot_neurons_alive", "plot_spine_volumes", "draw_development_figures"]


def _axes(axes):
    if axes is None:
        import matplotlib.pyplot as plt

        axes = plt.gca()
    return axes


def plot_spine_density(table: dict, axes=None, **kwds):
    """Live spines as a fraction of the potential sites (%) over age (days)."""
    ax = _axes(axes)
    ax.plot(table["age_days"], 100 * np.asarray(table["spine_density"]), **kwds)
    ax.set_xlabel("age (days)")
    ax.set_ylabel("sites holding a spine (%)")
    return ax


def plot_neurons_alive(table: dict, axes=None, **kwds):
    """Living excitatory and inhibitory neurons over age (days)."""
    ax = _axes(axes)
    ax.step(table["age_days"], table["n_alive_exc"], where="post", label="excitatory", **kwds)
    ax.step(table["age_days"], table["n_alive_inh"], where="post", label="inhibitory", **kwds)
    ax.set_xlabel("age (days)")
    ax.set_ylabel("living neurons")
    ax.legend()
    return ax


def plot_spine_volumes(vol, axes=None, bins=40, **kwds):
    """Histogram of spine volumes (um^3) on logarithmic bins."""
    ax = _axes(axes)
    vol = np.asarray(vol, float)
    vol = vol[vol > 0]
    if vol.size:
        edges = np.geomspace(vol.min(), vol.max() * 1.0001, bins + 1)
        ax.hist(vol, bins=edges, **kwds)
        ax.set_xscale("log")
    ax.set_xlabel("spine volume (µm³)")
    ax.set_ylabel("spines")
    return ax


def draw_development_figures(table: dict, run) -> dict:
    """The standard figures of a developmental run folder (``run``: a RunFolder), by file name."""
    import matplotlib.pyplot as plt

    figs = {}
    fig, axs = plt.subplots(1, 2, figsize=(10, 3.5))
    plot_spine_density(table, axes=axs[0])
    plot_neurons_alive(table, axes=axs[1])
    figs["development.png"] = fig
    if run.snapshot_periods():
        a = run.load_snapshot("last", keys=["exc/syn/vol", "exc/syn/connected"]).arrays
        fig, ax = plt.subplots(figsize=(5, 3.5))
        plot_spine_volumes(a["exc/syn/vol"][a["exc/syn/connected"] > 0], axes=ax)
        figs["spine_volumes.png"] = fig
    return figs
