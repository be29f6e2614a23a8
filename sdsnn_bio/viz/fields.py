"""Receptive fields of a dense layer's units over its input image, pruned units greyed."""

import math

import numpy as np

from ._common import axes_or_current as _axes
from ._common import colorbar as _colorbar

__all__ = ["field_mosaic", "field_rgba", "plot_receptive_fields", "plot_receptive_fields_periods"]


def _fields(w, image_shape):
    """Weights ``[n_pre, n_units]`` as images ``[n_units, H, W]`` (mean over input channels)."""
    w = np.asarray(w, dtype=float)
    shape = tuple(int(s) for s in image_shape)
    if w.ndim != 2:
        raise ValueError(f"w must be a [n_pre, n_units] weight matrix, got shape {w.shape}")
    if int(np.prod(shape)) != w.shape[0]:
        raise ValueError(f"image_shape {shape} has {int(np.prod(shape))} pixels, "
                         f"but w has {w.shape[0]} presynaptic neurons")
    if len(shape) == 3:          # (C, H, W): channel-major input order, as the network's
        c, h, wd = shape
        return w.T.reshape(w.shape[1], c, h, wd).mean(axis=1)
    if len(shape) != 2:
        raise ValueError(f"image_shape must be (H, W) or (C, H, W), got {shape}")
    return w.T.reshape(w.shape[1], *shape)


def field_mosaic(w, image_shape=(28, 28), ncols=None, gap=1):
    """The receptive fields of all units tiled into one image.

    Parameters
    ----------
    w : array, shape (n_pre, n_units)
        Weight matrix, presynaptic neuron by postsynaptic unit (a dense layer's
        ``w.reshape(n_pre, n_post)``).
    image_shape : tuple
        ``(H, W)`` of the input image, or ``(C, H, W)``: then each tile shows the mean weight
        over the ``C`` input channels at that position.
    ncols : int, optional
        Tiles per row (default ``ceil(sqrt(n_units))``).
    gap : int
        Pixels of NaN between tiles.

    Returns
    -------
    mosaic : ndarray, shape (rows * (H + gap) - gap, ncols * (W + gap) - gap)
        Unit ``u`` occupies the tile at row ``u // ncols``, column ``u % ncols``; NaN between
        tiles and after the last unit.
    origins : ndarray, shape (n_units, 2)
        Top-left pixel (row, column) of each unit's tile.
    """
    f = _fields(w, image_shape)
    n, h, wd = f.shape
    ncols = int(ncols or max(1, math.ceil(math.sqrt(n))))
    rows = max(1, math.ceil(n / ncols))
    mosaic = np.full((rows * (h + gap) - gap, ncols * (wd + gap) - gap), np.nan)
    u = np.arange(n)
    origins = np.stack([(u // ncols) * (h + gap), (u % ncols) * (wd + gap)], axis=1)
    # place all tiles at once: a [rows, ncols, H, W] block, then interleave the gaps
    full = np.full((rows * ncols, h + gap, wd + gap), np.nan)
    full[:n, :h, :wd] = f
    full = full.reshape(rows, ncols, h + gap, wd + gap).transpose(0, 2, 1, 3)
    mosaic[:] = full.reshape(rows * (h + gap), ncols * (wd + gap))[:mosaic.shape[0], :mosaic.shape[1]]
    return mosaic, origins


def _tile_mask(origins, units, tile_shape, mosaic_shape):
    mask = np.zeros(mosaic_shape, bool)
    h, wd = tile_shape
    for r, c in origins[units]:
        mask[r:r + h, c:c + wd] = True
    return mask


def _vmax(w, alive):
    w = np.asarray(w, dtype=float)
    if alive is not None and np.any(alive):
        w = w[:, np.asarray(alive, bool)]
    v = float(np.nanmax(np.abs(w))) if w.size else 0.0
    return v if v > 0 else 1.0


def field_rgba(w, alive=None, image_shape=(28, 28), vmax=None, cmap="RdBu_r", ncols=None,
               pruned_color=(0.55, 0.55, 0.55), pruned_alpha=0.85):
    """The receptive-field mosaic as an RGBA image, pruned units' tiles blended to grey.

    Parameters are those of :func:`plot_receptive_fields`; gaps between tiles are white.

    Returns
    -------
    ndarray, shape (rows, cols, 4)
        Colours of the mosaic of :func:`field_mosaic`.
    """
    import matplotlib as mpl

    mosaic, origins = field_mosaic(w, image_shape, ncols)
    vmax = _vmax(w, alive) if vmax is None else vmax
    rgba = mpl.colormaps[cmap](np.clip((mosaic + vmax) / (2 * vmax), 0, 1))
    rgba[np.isnan(mosaic)] = 1.0
    if alive is not None:
        dead = np.flatnonzero(~np.asarray(alive, bool))
        if len(dead):
            tile = tuple(_fields(w[:, :1], image_shape).shape[1:])
            m = _tile_mask(origins, dead, tile, mosaic.shape)
            rgba[m, :3] = (1 - pruned_alpha) * rgba[m, :3] + pruned_alpha * np.asarray(pruned_color)
    return rgba


def plot_receptive_fields(w, alive=None, image_shape=(28, 28), axes=None, ncols=None, vmax=None,
                          cmap="RdBu_r", pruned_color="0.55", pruned_alpha=0.85, colorbar=False,
                          title=None, **kwds):
    """Receptive fields of a dense layer's units: one weight image per unit, pruned units greyed.

    Parameters
    ----------
    w : array, shape (n_pre, n_units)
        Weight matrix, presynaptic neuron by unit (``LayerStructure.w.reshape(n_pre, n_post)``);
        multiply by the ``connected`` mask first to show only live synapses.
    alive : array of bool, shape (n_units,), optional
        Units alive; the tiles of the others are covered by a grey layer.
    image_shape : tuple
        ``(H, W)`` or ``(C, H, W)`` of the input (``C > 1``: mean over channels).
    axes : matplotlib.axes.Axes, optional
        Where to draw (default: the current Axes).
    ncols : int, optional
        Tiles per row (default ``ceil(sqrt(n_units))``).
    vmax : float, optional
        Colour scale ``[-vmax, vmax]`` (default: largest ``|w|`` of the alive units).
    cmap, pruned_color, pruned_alpha : matplotlib colour settings.
    colorbar : bool
        Add a colour bar labelled with the weight.
    title : str, optional
    **kwds
        Passed to ``imshow`` of the weight mosaic.

    Returns
    -------
    matplotlib.axes.Axes
        ``axes.images[0]`` is the mosaic of :func:`field_mosaic`; ``axes.images[1]`` (when a
        unit is pruned) the grey layer, 1 over the pruned units' tiles and NaN elsewhere.
    """
    from matplotlib.colors import ListedColormap

    ax = _axes(axes)
    mosaic, origins = field_mosaic(w, image_shape, ncols)
    vmax = _vmax(w, alive) if vmax is None else float(vmax)
    n_units = np.asarray(w).shape[1]
    im = ax.imshow(mosaic, cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest", **kwds)
    n_dead = 0
    if alive is not None:
        alive = np.asarray(alive, bool)
        if alive.shape != (n_units,):
            raise ValueError(f"alive has shape {alive.shape}, expected ({n_units},)")
        dead = np.flatnonzero(~alive)
        n_dead = len(dead)
        if n_dead:
            tile = _fields(np.asarray(w)[:, :1], image_shape).shape[1:]
            grey = np.where(_tile_mask(origins, dead, tile, mosaic.shape), 1.0, np.nan)
            ax.imshow(grey, cmap=ListedColormap([pruned_color]), alpha=pruned_alpha,
                      interpolation="nearest")
    h, wd = np.asarray(image_shape)[-2:]
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"{n_units} units ({n_units - n_dead} alive, pruned grey); "
                  f"tile: {h}x{wd} input pixels")
    if title:
        ax.set_title(title)
    if colorbar:
        _colorbar(im, ax, "weight w (dimensionless)")
    return ax


def plot_receptive_fields_periods(weights, alive, periods, image_shape=(28, 28), fig=None, ncols=None,
                                  vmax=None, cmap="RdBu_r", exact=None, **kwds):
    """Receptive fields at several periods side by side, on one colour scale.

    Parameters
    ----------
    weights : sequence of arrays, shape (n_pre, n_units) each
        The weight matrix at each period.
    alive : sequence of bool arrays, shape (n_units,) each
    periods : sequence of int
        The period of each matrix (titles).
    image_shape, ncols, cmap : see :func:`plot_receptive_fields`.
    fig : matplotlib.figure.Figure, optional
        Figure to draw into (one Axes per period is added).
    vmax : float, optional
        Shared colour scale (default: largest ``|w|`` of alive units over all periods).
    exact : sequence of (bool or int), optional
        Per period, ``True`` when the weights are that period's; otherwise the period the
        weights were recorded at (said in the title).
    **kwds
        Passed to :func:`plot_receptive_fields`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    weights, alive, periods = list(weights), list(alive), list(periods)
    if not (len(weights) == len(alive) == len(periods)) or not periods:
        raise ValueError(f"need as many weight matrices ({len(weights)}), alive arrays ({len(alive)}) "
                         f"and periods ({len(periods)}), at least one")
    if vmax is None:
        vmax = max(_vmax(w, a) for w, a in zip(weights, alive))
    if fig is None:
        fig = plt.figure(figsize=(3.6 * len(periods) + 1, 4))
    axs = fig.subplots(1, len(periods), squeeze=False)[0]
    for k, (ax, w, a, p) in enumerate(zip(axs, weights, alive, periods)):
        title = f"period {p}: {int(np.sum(a))} alive"
        if exact is not None and exact[k] is not True:
            title += f"\n(weights of period {exact[k]})"
        plot_receptive_fields(w, a, image_shape, axes=ax, ncols=ncols, vmax=vmax, cmap=cmap,
                              title=title, **kwds)
        ax.set_xlabel(f"tile: {np.asarray(image_shape)[-2]}x{np.asarray(image_shape)[-1]} px")
    _colorbar(axs[-1].images[0], axs[-1], "weight w (dimensionless)")
    return fig
