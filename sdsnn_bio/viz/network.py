"""The surviving network as a diagram: layers as columns, alive units as nodes, live synapses as edges."""

import numpy as np

from ._common import axes_or_current as _axes
from ._common import colorbar as _colorbar

__all__ = ["group_units", "plot_network"]


def group_units(n_units: int, max_groups: int) -> np.ndarray:
    """Contiguous groups of at most ``max_groups`` for ``n_units`` units: the group of each unit.

    Every unit is its own group when ``n_units <= max_groups``.
    """
    g = min(int(n_units), int(max_groups))
    return (np.arange(n_units) * g) // max(int(n_units), 1)


def _aggregate(links, g_pre, g_post):
    m = np.asarray(links, dtype=float)
    n_pre, n_post = int(g_pre.max()) + 1, int(g_post.max()) + 1
    starts_pre = np.searchsorted(g_pre, np.arange(n_pre))
    starts_post = np.searchsorted(g_post, np.arange(n_post))
    return np.add.reduceat(np.add.reduceat(m, starts_pre, axis=0), starts_post, axis=1)


def plot_network(names, alive, links, axes=None, max_groups=16, max_linewidth=2.0, cmap="viridis",
                 node_size=None, dead_color="0.8", **kwds):
    """The surviving network: one column per layer, a node per unit, edges weighted by live synapses.

    Parameters
    ----------
    names : sequence of str
        Column (layer) names, input first.
    alive : sequence of bool arrays
        Per column, which units are alive (``np.ones(n, bool)`` for the input).
    links : sequence of arrays
        Per pair of neighbouring columns ``k, k+1``: live synapses from each unit of column
        ``k`` to each unit of column ``k+1``, shape ``(n_k, n_{k+1})``.
    axes : matplotlib.axes.Axes, optional
    max_groups : int
        Units of a column are drawn one node each, but edges join contiguous groups of at most
        ``max_groups`` units per column (each unit its own group in smaller layers): an edge's
        width and colour is the number of live synapses between two groups.
    max_linewidth : float
        Width (points) of the edge with the most synapses.
    cmap : str
        Colour map of the edges (colour: live synapses per edge over the strongest edge between
        the same two layers).
    node_size : float, optional
        Marker area of a node (default shrinks with the largest column).
    dead_color : colour of the dead units' nodes (hollow).
    **kwds
        Passed to the ``LineCollection`` of the edges.

    Returns
    -------
    matplotlib.axes.Axes
        First one ``LineCollection`` of edges per pair of neighbouring columns (labelled
        ``"<name> -> <name>"``; one segment per pair of groups with a live synapse, weakest
        first; its array holds their synapse counts; width and colour relative to the pair's
        strongest edge, since fan-ins differ between layers), then one scatter of alive and one
        of dead units per column (labelled ``"<name> alive"``/``"<name> dead"``).
    """
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize

    ax = _axes(axes)
    names = list(names)
    alive = [np.asarray(a, bool) for a in alive]
    links = list(links)
    if len(alive) != len(names) or len(links) != len(names) - 1:
        raise ValueError(f"{len(names)} columns need {len(names)} alive arrays and {len(names) - 1} link "
                         f"matrices, got {len(alive)} and {len(links)}")
    for k, m in enumerate(links):
        if np.shape(m) != (len(alive[k]), len(alive[k + 1])):
            raise ValueError(f"links[{k}] ({names[k]} -> {names[k + 1]}) has shape {np.shape(m)}, "
                             f"expected {(len(alive[k]), len(alive[k + 1]))}")
    # node heights: units spread over [0, 1] top to bottom
    ys = [np.linspace(1, 0, len(a)) if len(a) > 1 else np.array([0.5]) for a in alive]
    groups = [group_units(len(a), max_groups) for a in alive]
    import matplotlib as mpl

    for k, m in enumerate(links):
        agg = _aggregate(m, groups[k], groups[k + 1])
        yk = np.bincount(groups[k], weights=ys[k]) / np.bincount(groups[k])
        yk1 = np.bincount(groups[k + 1], weights=ys[k + 1]) / np.bincount(groups[k + 1])
        a, b = np.nonzero(agg > 0)
        counts = agg[a, b]
        order = np.argsort(counts, kind="stable")       # the strongest edges drawn last, on top
        a, b, counts = a[order], b[order], counts[order]
        segs = np.stack([np.stack([np.full(len(a), k), yk[a]], 1),
                         np.stack([np.full(len(b), k + 1), yk1[b]], 1)], 1).reshape(-1, 2, 2)
        top = counts.max() if len(counts) else 1.0
        kw = dict(cmap=cmap, norm=Normalize(0, top), zorder=1, alpha=0.6)
        kw.update(kwds)
        lc = LineCollection(segs, linewidths=0.3 + max_linewidth * counts / top,
                            label=f"{names[k]} -> {names[k + 1]}", **kw)
        lc.set_array(counts)
        ax.add_collection(lc)
        ax.text(k + 0.5, 1.08, f"{int(counts.sum())} live synapses\nedge: up to {int(top)}",
                ha="center", va="bottom", fontsize="small")
    size = node_size or max(2.0, 400.0 / max(len(a) for a in alive))
    for k, (name, a, y) in enumerate(zip(names, alive, ys)):
        ax.scatter(np.full(a.sum(), k), y[a], s=size, color=f"C{k % 10}", zorder=2, label=f"{name} alive")
        ax.scatter(np.full((~a).sum(), k), y[~a], s=size, facecolors="none", edgecolors=dead_color,
                   linewidths=0.5, zorder=2, label=f"{name} dead")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([f"{n}\n{int(a.sum())}/{len(a)} alive" for n, a in zip(names, alive)])
    ax.set_xlim(-0.5, len(names) - 0.5)
    ax.set_ylim(-0.05, 1.2)
    ax.set_yticks([])
    ax.set_xlabel("layer (alive units / units)")
    ax.set_ylabel("units, in index order")
    if links:
        sm = mpl.cm.ScalarMappable(norm=Normalize(0, 1), cmap=cmap)
        _colorbar(sm, ax, f"live synapses per edge / strongest edge of the layer\n"
                          f"(edges join groups of up to {max_groups} units)")
    return ax
