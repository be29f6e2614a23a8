"""Structure over development: synapse masks, per-unit images over periods, value
distributions over periods and rasters of pruning and regeneration events."""

import numpy as np

from ._common import axes_or_current as _axes
from ._common import colorbar as _colorbar
from ._common import period_edges

__all__ = ["EVENT_KINDS", "EVENT_COLORS", "synapse_image", "plot_synapse_matrix", "kernel_mosaic", "plot_kernels",
           "plot_unit_periods", "plot_alive_units", "plot_live_synapses", "plot_distribution_periods", "plot_events"]

#: The kinds of structural events, in drawing order.
EVENT_KINDS = ("unit_pruned", "unit_revived", "synapse_pruned", "synapse_regenerated")
#: One colour per event kind.
EVENT_COLORS = {"unit_pruned": "C3", "unit_revived": "C2", "synapse_pruned": "C1",
                "synapse_regenerated": "C0"}


def synapse_image(values, i, j, n_pre=None, n_post=None, pre_group=None, post_group=None,
                  max_pixels=4_000_000):
    """A per-synapse quantity as a presynaptic x postsynaptic image.

    Parameters
    ----------
    values : array, shape (n_synapses,)
        What to show per synapse (``connected``, ``w``, a spine width ...).
    i, j : int arrays, shape (n_synapses,)
        Presynaptic and postsynaptic neuron of each synapse.
    n_pre, n_post : int, optional
        Neuron counts (default: ``max(i) + 1``, ``max(j) + 1``).
    pre_group, post_group : int arrays, optional
        A group per presynaptic / postsynaptic neuron (e.g. its channel); when given, the
        image has one pixel per pair of groups holding the mean over its synapses.
    max_pixels : int
        Refuse larger images (give groups instead).

    Returns
    -------
    ndarray, shape (n_pre or n_pre_groups, n_post or n_post_groups)
        NaN where no synapse exists.
    """
    values = np.asarray(values, dtype=float)
    i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
    if not (values.shape == i.shape == j.shape) or values.ndim != 1:
        raise ValueError(f"values, i and j must be 1-D of one length, got {values.shape}, {i.shape}, {j.shape}")
    if n_pre is None:
        n_pre = int(i.max()) + 1 if len(i) else 0
    if n_post is None:
        n_post = int(j.max()) + 1 if len(j) else 0
    n_pre, n_post = int(n_pre), int(n_post)
    if pre_group is not None:
        i = np.asarray(pre_group, np.int64)[i]
        n_pre = int(np.max(pre_group)) + 1
    if post_group is not None:
        j = np.asarray(post_group, np.int64)[j]
        n_post = int(np.max(post_group)) + 1
    if n_pre * n_post > max_pixels:
        raise ValueError(f"a {n_pre} x {n_post} image is over {max_pixels} pixels; give pre_group/post_group")
    flat = i * n_post + j
    total = np.bincount(flat, weights=values, minlength=n_pre * n_post)
    count = np.bincount(flat, minlength=n_pre * n_post)
    with np.errstate(invalid="ignore", divide="ignore"):
        img = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return img.reshape(n_pre, n_post)


def plot_synapse_matrix(values, i, j, n_pre=None, n_post=None, pre_group=None, post_group=None,
                        axes=None, label="connected", pre_label="presynaptic neuron",
                        post_label="postsynaptic unit", colorbar=True, **kwds):
    """A per-synapse quantity (mask, weight, spine width) as an image: pre on y, post on x.

    Parameters are those of :func:`synapse_image`, plus ``axes``, ``label`` (colour bar:
    the quantity and its unit), ``pre_label``/``post_label`` (axis labels) and ``**kwds``
    passed to ``imshow``.

    Returns
    -------
    matplotlib.axes.Axes
        ``axes.images[0].get_array()`` is the :func:`synapse_image`.
    """
    ax = _axes(axes)
    img = synapse_image(values, i, j, n_pre, n_post, pre_group, post_group)
    kw = dict(aspect="auto", interpolation="nearest", cmap="viridis")
    kw.update(kwds)
    im = ax.imshow(img, extent=(-0.5, img.shape[1] - 0.5, img.shape[0] - 0.5, -0.5), **kw)
    ax.set_xlabel(post_label)
    ax.set_ylabel(pre_label)
    if colorbar:
        _colorbar(im, ax, label if pre_group is None and post_group is None else f"{label} (mean per block)")
    return ax


def kernel_mosaic(kernel, gap: int = 1) -> np.ndarray:
    """A convolution's kernel ``(C_out, C_in, k, k)`` as one image: output channels down,
    input channels across, each ``k x k`` tile at row ``o*(k+gap)``, column ``c*(k+gap)``,
    the gaps NaN (``kernel.transpose(1, 0, 2, 3)`` puts the input channels down)."""
    kernel = np.asarray(kernel, float)
    if kernel.ndim != 4 or kernel.shape[2] != kernel.shape[3]:
        raise ValueError(f"a kernel is (C_out, C_in, k, k), got shape {kernel.shape}")
    c_out, c_in, k, _ = kernel.shape
    out = np.full((c_out * (k + gap) - gap, c_in * (k + gap) - gap), np.nan)
    for o in range(c_out):
        for c in range(c_in):
            out[o * (k + gap):o * (k + gap) + k, c * (k + gap):c * (k + gap) + k] = kernel[o, c]
    return out


def plot_kernels(kernel, alive=None, axes=None, label="", colorbar=True, gap: int = 1, **kwds):
    """A convolution's kernel ``(C_out, C_in, k, k)`` as a mosaic of ``k x k`` tiles: output
    channel across (x), input channel down (y), each tile as the kernel slice ``[o, c]`` is
    stored (row ``ky``, column ``kx``). ``alive`` (one flag per output channel): the columns of
    pruned channels are drawn grey. ``**kwds`` go to ``imshow``.

    Returns
    -------
    matplotlib.axes.Axes
        ``axes.images[0].get_array()`` is ``kernel_mosaic(kernel.transpose(1, 0, 2, 3))``
        (masked where NaN).
    """
    ax = _axes(axes)
    c_out, c_in, k, _ = np.shape(kernel)
    img = kernel_mosaic(np.asarray(kernel, float).transpose(1, 0, 2, 3), gap)
    kw = dict(interpolation="nearest", cmap="viridis")
    kw.update(kwds)
    im = ax.imshow(np.ma.masked_invalid(img), **kw)
    if alive is not None:
        dead = np.zeros(img.shape)
        for o in np.flatnonzero(~np.asarray(alive, bool)):
            dead[:, o * (k + gap):o * (k + gap) + k] = 1
        ax.imshow(np.ma.masked_equal(dead, 0), cmap="Greys", vmin=0, vmax=2.5, alpha=0.85,
                  interpolation="nearest")
    step = max(1, int(np.ceil(max(c_in, c_out) / 20)))
    ax.set_xticks(np.arange(0, c_out, step) * (k + gap) + (k - 1) / 2, [str(o) for o in range(0, c_out, step)])
    ax.set_yticks(np.arange(0, c_in, step) * (k + gap) + (k - 1) / 2, [str(c) for c in range(0, c_in, step)])
    ax.tick_params(labelsize=7)
    ax.set_xlabel("output channel")
    ax.set_ylabel("input channel")
    if colorbar:
        cb = ax.figure.colorbar(im, ax=ax, shrink=0.8, pad=0.01)
        cb.set_label(label, fontsize=8)
    return ax


def plot_unit_periods(periods, values, axes=None, label="", ylabel="unit", colorbar=True, **kwds):
    """A per-unit quantity over periods as an image: period on x, unit on y, colour = value.

    Parameters
    ----------
    periods : array, shape (n_periods,)
    values : array, shape (n_periods, n_units)
    axes : matplotlib.axes.Axes, optional
    label : str
        Colour-bar label (the quantity and its unit).
    ylabel : str
        ``"unit"`` (neuron of a dense layer) or ``"channel"`` (locally connected layer).
    **kwds
        Passed to ``pcolormesh``.

    Returns
    -------
    matplotlib.axes.Axes
        ``axes.collections[0].get_array()`` is ``values.T`` flattened.
    """
    ax = _axes(axes)
    values = np.asarray(values)
    periods = np.asarray(periods)
    if values.ndim != 2 or values.shape[0] != len(periods):
        raise ValueError(f"values must be [n_periods={len(periods)}, n_units], got shape {values.shape}")
    y = np.arange(values.shape[1] + 1) - 0.5
    kw = dict(shading="flat", rasterized=True)
    kw.update(kwds)
    mesh = ax.pcolormesh(period_edges(periods), y, values.T.astype(float), **kw)
    ax.set_xlabel("structural period")
    ax.set_ylabel(ylabel)
    ax.set_ylim(y[-1], y[0])
    if colorbar:
        _colorbar(mesh, ax, label)
    return ax


def plot_alive_units(periods, alive, axes=None, ylabel="unit", alive_color="C0", dead_color="0.88",
                     **kwds):
    """Alive units over periods: one row per unit (or channel), coloured while alive.

    Parameters
    ----------
    periods : array, shape (n_periods,)
    alive : bool array, shape (n_periods, n_units)
    ylabel : str
        ``"unit"`` or ``"channel"``.
    **kwds
        Passed to :func:`plot_unit_periods`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    from matplotlib.colors import ListedColormap

    alive = np.asarray(alive, bool)
    ax = plot_unit_periods(periods, alive, axes=axes, ylabel=ylabel, colorbar=False,
                           cmap=ListedColormap([dead_color, alive_color]), vmin=0, vmax=1, **kwds)
    last = int(alive[-1].sum()) if len(alive) else 0
    ax.set_title(f"alive {ylabel}s ({last} of {alive.shape[1]} at the last period)")
    return ax


def plot_live_synapses(periods, counts, axes=None, ylabel="unit", **kwds):
    """Live (connected) synapses onto each unit over periods, as an image.

    Parameters
    ----------
    periods : array, shape (n_periods,)
    counts : int array, shape (n_periods, n_units)
    **kwds
        Passed to :func:`plot_unit_periods`.

    Returns
    -------
    matplotlib.axes.Axes
    """
    kw = dict(cmap="viridis")
    kw.update(kwds)
    return plot_unit_periods(periods, counts, axes=axes, ylabel=ylabel,
                             label=f"live synapses onto the {ylabel}", **kw)


def plot_distribution_periods(periods, bin_edges, counts, axes=None, label="weight w (dimensionless)",
                              log=True, cmap="magma", **kwds):
    """A distribution over development: period on x, value on y, colour = count.

    Parameters
    ----------
    periods : array, shape (n_periods,)
    bin_edges : array, shape (n_bins + 1,)
        Value bins (the quantity's unit, as ``label`` says).
    counts : array, shape (n_periods, n_bins)
        Synapses per bin and period (``History.histogram``).
    label : str
        y-axis label: the quantity and its unit.
    log : bool
        Logarithmic colour scale (empty bins blank).
    **kwds
        Passed to ``pcolormesh``.

    Returns
    -------
    matplotlib.axes.Axes
        ``axes.collections[0].get_array()`` is ``counts.T`` (masked where 0 when ``log``).
    """
    from matplotlib.colors import LogNorm

    ax = _axes(axes)
    counts = np.asarray(counts, float)
    edges = np.asarray(bin_edges, float)
    if counts.shape != (len(periods), len(edges) - 1):
        raise ValueError(f"counts must be [n_periods={len(periods)}, n_bins={len(edges) - 1}], "
                         f"got shape {counts.shape}")
    c = counts.T
    kw = dict(cmap=cmap, shading="flat", rasterized=True)
    if log:
        c = np.ma.masked_less_equal(c, 0)
        top = float(c.max()) if c.count() else 1.0
        kw["norm"] = LogNorm(vmin=1, vmax=max(top, 1.0))
    kw.update(kwds)
    mesh = ax.pcolormesh(period_edges(periods), edges, c, **kw)
    ax.set_xlabel("structural period")
    ax.set_ylabel(label)
    _colorbar(mesh, ax, "live synapses per bin")
    return ax


def _kinds(kind):
    k = np.asarray(kind)
    if k.dtype.kind == "S":
        k = k.astype(str)
    return k


def plot_events(events, kinds=EVENT_KINDS, layer=None, axes=None, markersize=3, ylabel=None, **kwds):
    """Structural events as a raster: period on x, unit or synapse index on y, a colour per kind.

    Parameters
    ----------
    events : dict of arrays
        ``"period"``, ``"kind"`` (one of :data:`EVENT_KINDS`), ``"index"`` (unit index for unit
        events, synapse index for synapse events) and optionally ``"layer"``
        (``History.events``).
    kinds : sequence of str
        The kinds to draw (e.g. only the unit events).
    layer : str, optional
        Draw only this layer's events (needs ``events["layer"]``).
    ylabel : str, optional
        Default: "unit index", "synapse index" or "unit or synapse index" from ``kinds``.
    **kwds
        Passed to ``plot`` (one line of markers per kind).

    Returns
    -------
    matplotlib.axes.Axes
        One line per kind that occurs, labelled ``"<kind> (<count>)"``.
    """
    ax = _axes(axes)
    period = np.asarray(events["period"])
    index = np.asarray(events["index"])
    kind = _kinds(events["kind"])
    sel = np.ones(len(period), bool)
    if layer is not None:
        sel &= _kinds(events["layer"]) == layer
    unknown = set(np.unique(kind[sel])) - set(EVENT_KINDS)
    if unknown:
        raise ValueError(f"unknown event kinds {sorted(unknown)}; expected {EVENT_KINDS}")
    for k in kinds:
        m = sel & (kind == k)
        if m.any():
            ax.plot(period[m], index[m], ls="none", marker="s", markersize=markersize,
                    markeredgewidth=0, color=EVENT_COLORS[k], label=f"{k} ({int(m.sum())})",
                    rasterized=True, **kwds)
    units = all(k.startswith("unit") for k in kinds)
    syns = all(k.startswith("synapse") for k in kinds)
    ax.set_xlabel("structural period")
    ax.set_ylabel(ylabel or ("unit index" if units else "synapse index" if syns else "unit or synapse index"))
    if ax.get_lines():
        ax.legend(loc="upper left", fontsize="small", markerscale=2)
    return ax
