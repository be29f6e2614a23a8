"""Plots of a run's per-period table: accuracy, compression, alive units, spine widths, main job."""

import numpy as np

from ..metrics import rolling_mean
from ._common import axes_or_current as _axes

__all__ = ["plot_accuracy_compression", "plot_alive", "plot_spine_widths", "plot_main_job", "plot_pruning_rate",
           "plot_accuracy_runs"]


def plot_accuracy_compression(table: dict, axes=None, **kwds):
    """Test accuracy (left axis, %) and compression (right axis, %) over structural periods."""
    ax = _axes(axes)
    p = table["period"]
    ax.plot(p, 100 * table["test_accuracy"], label="test accuracy", color="C0", **kwds)
    ax.set_xlabel("structural period")
    ax.set_ylabel("test accuracy (%)", color="C0")
    ax2 = ax.twinx()
    ax2.plot(p, 100 * table["compression"], color="C3", label="compression", **kwds)
    ax2.set_ylabel("compression (%)", color="C3")
    return ax


def plot_alive(table: dict, axes=None, **kwds):
    """Units (neurons, or channels of a locally connected layer) alive per pruned layer."""
    ax = _axes(axes)
    _step_layers(ax, table, "alive_", **kwds)
    ax.set_xlabel("structural period")
    ax.set_ylabel("alive units")
    return ax


def _step_layers(ax, table: dict, prefix: str, **kwds):
    """One step line per column ``<prefix><layer>`` of a run table over its periods, labelled by
    the layer; a legend when there is any."""
    for c in table:
        if c.startswith(prefix):
            ax.step(table["period"], np.asarray(table[c], float), where="post", label=c[len(prefix):], **kwds)
    if ax.get_lines():
        ax.legend()


def plot_pruning_rate(table: dict, axes=None, **kwds):
    """Pruning rate rho (%) of each pruned layer over structural periods (columns ``rho_<layer>``).

    Parameters
    ----------
    table : dict
        A run's per-period table (:func:`sdsnn_bio.records.read_table`).
    axes : matplotlib.axes.Axes, optional
    **kwds
        Passed to every ``step`` call.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(axes)
    _step_layers(ax, table, "rho_", **kwds)
    ax.set_xlabel("structural period")
    ax.set_ylabel("pruning rate rho (%)")
    ax.set_title("pruning rate per layer")
    return ax


def plot_spine_widths(r_up, r_lo, connected=None, axes=None, bins=50, title=None, **kwds):
    """Histogram of spine widths ``r+ + |r-|`` (live synapses only when ``connected`` is given)."""
    ax = _axes(axes)
    width = np.asarray(r_up) + np.abs(np.asarray(r_lo))
    if connected is not None:
        width = width[np.asarray(connected) > 0]
    ax.hist(width, bins=bins, **kwds)
    ax.set_xlabel("spine width r+ + |r-| (weight units)")
    ax.set_ylabel("synapses")
    if title:
        ax.set_title(title)
    return ax


def plot_main_job(dense: dict, sdsnn: dict, fig=None, rotation: int = 1, **kwds):
    """The main job side by side: SD-SNN and its dense twin, period by period.

    Parameters
    ----------
    dense, sdsnn : dict
        The per-period tables (``periods.csv`` read by :func:`sdsnn_bio.records.read_table`)
        of the dense baseline and of the SD-SNN run.
    fig : matplotlib.figure.Figure, optional
        The figure to draw into (three axes are added); a new one when None.
    rotation : int, optional
        Periods in which the rotating test slices cover the whole test set once
        (:func:`sdsnn_bio.report.test_rotation`). Above 1, each run's accuracy is drawn
        thin and, over it, its trailing mean over ``rotation`` periods (the slices of one
        period differ in difficulty, which makes the raw curve a sawtooth).
    **kwds
        Passed to every ``plot``/``step`` call.

    Returns
    -------
    matplotlib.figure.Figure
        Three axes: test accuracy (%) of both runs, compression and synapse sparsity (%) of
        the SD-SNN run, and alive units of each pruned layer of the SD-SNN run.
    """
    import matplotlib.pyplot as plt

    if fig is None:
        fig = plt.figure(figsize=(13, 3.6))
    ax_acc, ax_comp, ax_alive = fig.subplots(1, 3)
    # the dense twin's mean line wider than SD-SNN's, drawn first: where the two coincide it
    # shows as a grey edge around the blue
    for t, label, color, width in ((dense, "dense", "0.4", 3.0), (sdsnn, "SD-SNN", "C0", 1.5)):
        acc = 100 * np.asarray(t["test_accuracy"], float)
        if rotation > 1:
            ax_acc.plot(t["period"], acc, color=color, alpha=0.35, linewidth=0.8, **kwds)
            idx, mean = rolling_mean(acc, rotation)
            ax_acc.plot(np.asarray(t["period"])[idx], mean, color=color, linewidth=width,
                        label=f"{label} (mean of {rotation} periods)", **kwds)
        else:
            ax_acc.plot(t["period"], acc, label=label, color=color, **kwds)
    ax_acc.set_xlabel("structural period")
    ax_acc.set_ylabel("test accuracy (%)")
    ax_acc.set_title("test accuracy")
    ax_acc.legend()
    ax_comp.plot(sdsnn["period"], 100 * np.asarray(sdsnn["compression"], float),
                 label="compression", color="C3", **kwds)
    if "synapse_sparsity" in sdsnn:
        ax_comp.plot(sdsnn["period"], 100 * np.asarray(sdsnn["synapse_sparsity"], float),
                     label="synapse sparsity", color="C1", linestyle="--", **kwds)
    ax_comp.set_xlabel("structural period")
    ax_comp.set_ylabel("SD-SNN (%)")
    ax_comp.set_title("compression")
    ax_comp.legend()
    plot_alive(sdsnn, axes=ax_alive, **kwds)
    ax_alive.set_title("SD-SNN alive units")
    return fig


def plot_accuracy_runs(tables, labels, window: int = 1, axes=None, **kwds):
    """Test accuracy (%) of several runs over structural periods in one axes, each as its
    trailing mean over ``window`` periods.

    Parameters
    ----------
    tables : sequence of dict
        The runs' per-period tables (:func:`sdsnn_bio.records.read_table`).
    labels : sequence of str
        One legend entry per run.
    window : int, optional
        Periods per mean; a multiple of the periods in which the rotating test slices cover
        the test set once (:func:`sdsnn_bio.report.test_rotation`) compares runs on the same
        samples. Each line starts at the first period with a full window.
    axes : matplotlib.axes.Axes, optional
    **kwds
        Passed to every ``plot`` call.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(axes)
    if len(tables) != len(labels):
        raise ValueError(f"plot_accuracy_runs: {len(tables)} tables but {len(labels)} labels")
    for t, label in zip(tables, labels):
        idx, mean = rolling_mean(100 * np.asarray(t["test_accuracy"], float), window)
        ax.plot(np.asarray(t["period"])[idx], mean, label=label, **kwds)
    ax.set_xlabel("structural period")
    ax.set_ylabel("test accuracy (%)" + (f", mean of {window} periods" if window > 1 else ""))
    ax.legend()
    return ax
