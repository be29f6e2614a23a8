"""Plots of structural development, in the brian2tools shape.

Each function takes plain arrays (or a run table), an optional ``axes``, passes
``**kwds`` to matplotlib, labels its axes and returns the ``Axes``.
"""

import numpy as np

__all__ = ["plot_accuracy_compression", "plot_alive", "plot_spine_widths"]


def _axes(axes):
    if axes is None:
        import matplotlib.pyplot as plt

        axes = plt.gca()
    return axes


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
    for c in table:
        if c.startswith("alive_"):
            ax.step(table["period"], table[c], where="post", label=c[6:], **kwds)
    ax.set_xlabel("structural period")
    ax.set_ylabel("alive units")
    ax.legend()
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
