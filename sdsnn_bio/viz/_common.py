"""Helpers shared by the plot modules: the axes to draw on, period edges, colour bars."""

import numpy as np


def axes_or_current(axes):
    """``axes`` itself, or the current pyplot Axes when it is None."""
    if axes is None:
        import matplotlib.pyplot as plt

        axes = plt.gca()
    return axes


def period_edges(periods) -> np.ndarray:
    """Cell edges around integer-like period numbers (each period one unit wide at its number).

    Gaps between recorded periods stay gaps only in the labels: a cell spans from halfway to
    the previous period to halfway to the next, so every recorded period has a cell.
    """
    p = np.asarray(periods, dtype=float)
    if p.ndim != 1 or len(p) == 0:
        raise ValueError(f"periods must be a non-empty 1-D array, got shape {p.shape}")
    if len(p) == 1:
        return np.array([p[0] - 0.5, p[0] + 0.5])
    mid = (p[1:] + p[:-1]) / 2
    return np.concatenate([[p[0] - (mid[0] - p[0])], mid, [p[-1] + (p[-1] - mid[-1])]])


def colorbar(mappable, axes, label):
    """A colour bar beside ``axes`` for ``mappable``, labelled."""
    cb = axes.figure.colorbar(mappable, ax=axes)
    cb.set_label(label)
    return cb
