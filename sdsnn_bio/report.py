"""Reading run folders: the per-period table, text summaries and figures.

Every file of a run folder is read through :class:`sdsnn_bio.records.RunFolder`,
and its structural history through :class:`sdsnn_bio.history.History`.
"""

from pathlib import Path

import numpy as np

from .energy import energy_lines
from .errors import FigureError, SdsnnError
from .metrics import rolling_mean, slice_rotation
from .records import RunFolder, atomic_write, read_table

__all__ = ["read_table", "text_report", "draw_figures", "make_figures", "main_job_table",
           "load_history", "draw_structure_figures", "animate_layer", "make_structure_figures",
           "network_columns", "live_synapse_counts", "main_job_figure", "make_main_job_figure",
           "class_accuracy"]


def _summary(run_dir) -> dict:
    return RunFolder(run_dir).read_summary()


def class_accuracy(confusion: dict) -> tuple:
    """Per class of a summary's ``confusion`` (rows: label, columns: prediction): the class
    names, the test windows of each class, the fraction of them predicted right and, for each
    class, the class most often predicted in its place (None where it is never mistaken)."""
    counts = np.asarray(confusion["counts"], np.int64)
    n = counts.sum(1)
    right = np.diag(counts)
    wrong = counts - np.diag(right)
    confused = [int(np.argmax(row)) if row.any() else None for row in wrong]
    return list(confusion["classes"]), n, np.where(n > 0, right / np.maximum(n, 1), np.nan), confused


def _class_lines(confusion) -> list:
    """The final evaluation's accuracy per class, worst first (runs from before the
    confusion matrix was recorded have none)."""
    if not confusion:
        return []
    names, n, acc, confused = class_accuracy(confusion)
    order = sorted(range(len(names)), key=lambda k: (np.nan_to_num(acc[k], nan=2.0), k))
    cells = [f"{names[k]} {100 * acc[k]:.1f}" + (f" (as {names[confused[k]]})" if confused[k] is not None else "")
             for k in order if n[k]]
    return ["  per class, worst first: " + ", ".join(cells)]


def _structural(run_dir) -> bool:
    """Whether the run developed its structure (a dense twin's pruning rate is never applied)."""
    import tomllib

    folder = RunFolder(run_dir)
    if not folder.config.is_file():
        return True
    with open(folder.config, "rb") as f:
        return bool(tomllib.load(f).get("structure", {}).get("enabled", True))


def _best_test_line(t: dict, rotation: int, finished: bool = False) -> str | None:
    """The best per-period test accuracy; where the periods test rotating slices of the test
    set (``rotation`` > 1), the best mean over one full pass of them, since a single slice's
    figure says more about the slice than about the network. ``finished``: the last row is
    the final evaluation's (stated on its own line) and is left out. None where no period's
    accuracy is left (a one-period run) or none is a number."""
    acc = np.asarray(t["test_accuracy"], float)[:len(t["test_accuracy"]) - int(finished)]
    if not np.isfinite(acc).any():
        return None
    idx, mean = rolling_mean(acc, rotation) if rotation > 1 else ([], [])
    if np.isfinite(mean).any():
        k = int(np.nanargmax(mean))
        first, last = int(t["period"][idx[k] - rotation + 1]), int(t["period"][idx[k]])
        return (f"  best test accuracy   {100 * mean[k]:.2f}% (mean of periods {first}-{last}, "
                f"one pass over the {rotation} rotating test slices)")
    best = int(np.nanargmax(acc))
    slices = f"; one of {rotation} rotating test slices" if rotation > 1 else ""
    return f"  best period test accuracy {100 * acc[best]:.2f}% (period {int(t['period'][best])}{slices})"


def text_report(run_dir) -> str:
    """A short text summary: final accuracy, compression, alive units, per-period extremes."""
    run_dir = Path(run_dir)
    t = read_table(run_dir)
    s = _summary(run_dir)
    lines = [f"run {run_dir}"]
    if s:
        lines.append(f"  model {s.get('model')} on {s.get('device')}, {s.get('periods')} periods")
        if "final_test_accuracy" in s:
            lines.append(f"  final test accuracy  {100 * s['final_test_accuracy']:.2f}% "
                         f"({s.get('test_windows')} test windows)")
        lines += _class_lines(s.get("confusion"))
    if "age_days" in t and len(t["age_days"]):    # a developmental run (sdsnn_bio.cortex)
        peak = int(np.nanargmax(t["spines"]))
        lines.append(f"  age {t['age_days'][0]:g}-{t['age_days'][-1]:g} days; living neurons "
                     f"{int(t['n_alive'][-1])} ({int(np.nansum(t['died']))} died, "
                     f"{int(np.nansum(t['pruned']))} pruned)")
        lines.append(f"  spines {int(t['spines'][-1])} at the end, peak {int(t['spines'][peak])} at "
                     f"{t['age_days'][peak]:g} days; median volume {t['vol_median_um3'][-1]:.3g} um^3")
    if "compression" in t and len(t["compression"]):
        lines.append(f"  compression          {100 * t['compression'][-1]:.2f}% "
                     f"(synapse sparsity {100 * t['synapse_sparsity'][-1]:.2f}%)")
    structural = _structural(run_dir)
    for c in t:
        if c.startswith("alive_"):
            lines.append(f"  alive {c[6:]:14s} {int(t[c][-1])}")
        if c.startswith("rho_") and structural:
            lines.append(f"  pruning rate {c[4:]:7s} {t[c][-1]:.2f}%")
    if "test_accuracy" in t and len(t["test_accuracy"]):
        # a finished run's last row is the final evaluation's, over the whole test set
        best = _best_test_line(t, test_rotation(run_dir), finished="final_test_accuracy" in s)
        lines += [best] if best else []
    if "wall_s" in t:
        lines.append(f"  wall time of the periods {np.nansum(t['wall_s']):.1f} s "
                     f"(structural decisions {np.nansum(t['struct_s']):.2f} s)")
    lines += energy_lines(s)
    return "\n".join(lines)


def draw_figures(run_dir) -> dict:
    """The standard figures of a run (matplotlib ``Figure`` objects, not saved) by file name.

    ``accuracy_compression.png`` (test accuracy and compression per period),
    ``alive.png`` (alive units per pruned layer, when the run prunes) and
    ``spine_widths.png`` (spine widths of the live synapses in the last
    snapshot, once the spines are initialised).
    """
    import matplotlib.pyplot as plt

    from .viz import plot_accuracy_compression, plot_alive, plot_spine_widths

    run = RunFolder(run_dir)
    t = run.read_table()
    if "age_days" in t:     # a developmental run: its own figures over age
        from .cortex.plots import draw_development_figures

        return draw_development_figures(t, run)
    figs = {}
    fig, ax = plt.subplots(figsize=(6, 3.5))
    plot_accuracy_compression(t, axes=ax)
    figs["accuracy_compression.png"] = fig
    if any(c.startswith("alive_") for c in t):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        plot_alive(t, axes=ax)
        figs["alive.png"] = fig
    if run.snapshot_periods():
        layers = sorted({k.split("/")[0] for k in run.snapshot_names("last") if k.endswith("/syn/r_up")})
        keys = [f"{name}/syn/{var}" for name in layers for var in ("r_up", "r_lo", "connected")]
        arrays = run.load_snapshot("last", keys=keys).arrays if layers else {}
        if layers and np.any(arrays[f"{layers[0]}/syn/r_up"]):
            fig, axs = plt.subplots(1, len(layers), figsize=(4 * len(layers), 3), squeeze=False)
            for ax, name in zip(axs[0], layers):
                plot_spine_widths(arrays[f"{name}/syn/r_up"], arrays[f"{name}/syn/r_lo"],
                                  arrays[f"{name}/syn/connected"], axes=ax, title=name)
            figs["spine_widths.png"] = fig
    return figs


def make_figures(run_dir) -> list:
    """Draw the standard figures of a run (:func:`draw_figures`) into its figures folder;
    returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = RunFolder(run_dir)
    run.figures.mkdir(exist_ok=True)
    paths = []
    for name, fig in draw_figures(run_dir).items():
        fig.tight_layout()
        paths.append(run.figures / name)
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths


def main_job_table(dense_dir, sdsnn_dir, wall_s=None) -> str:
    """The main job's final table: dense baseline, SD-SNN, compression."""
    d, s = _summary(dense_dir), _summary(sdsnn_dir)
    t = read_table(sdsnn_dir)
    comp = t["compression"][-1] if "compression" in t else float("nan")
    sparsity = t["synapse_sparsity"][-1] if "synapse_sparsity" in t else float("nan")
    da, sa = d["final_test_accuracy"], s["final_test_accuracy"]
    rows = [
        ("dense baseline accuracy", f"{100 * da:.2f}%"),
        ("SD-SNN accuracy", f"{100 * sa:.2f}%  ({100 * (sa - da):+.2f} points)"),
        ("SD-SNN compression", f"{100 * comp:.2f}%  (synapse sparsity {100 * sparsity:.2f}%)"),
    ]
    for c in t:
        if c.startswith("alive_"):
            rows.append((f"alive units {c[6:]}", f"{int(t[c][-1])}"))
    if wall_s is not None:
        rows.append(("wall time", f"{wall_s / 60:.1f} min"))
    width = max(len(r[0]) for r in rows)
    bar = "-" * (width + 40)
    return "\n".join([bar] + [f"{a:{width}s}  {b}" for a, b in rows] + [bar])


# ----------------------------------------------------------------- structure figures
#: Receptive fields drawn side by side in ``fields_<layer>_periods.png``.
FIELD_PERIODS = 4
#: Frames of an animation at most (periods evenly spaced over the run).
MAX_FRAMES = 50


def load_history(run_dir, history=None):
    """The structural history of a run folder (:class:`sdsnn_bio.history.History`).

    ``history``, when given, is returned as it is (any object with ``History``'s reading
    interface). Raises :class:`~sdsnn_bio.errors.SdsnnError` naming the folder when it has
    no history.
    """
    if history is not None:
        return history
    try:
        from .history import History
    except ImportError as exc:  # pragma: no cover - an install without the history module
        raise FigureError(f"{run_dir}: structural figures need sdsnn_bio.history, which this "
                          f"installation lacks ({exc})") from exc
    return History(run_dir)


def _check_period(run_dir, h, period) -> int:
    periods = [int(p) for p in h.periods]
    try:
        e = int(period)
    except (TypeError, ValueError):
        raise FigureError(f"{run_dir}: period must be an integer, got {period!r}") from None
    if e != period or e not in periods:
        raise FigureError(f"{run_dir}: period {period} is out of range: the structural history holds "
                          f"periods {periods[0]}..{periods[-1]}")
    return e


def _is_image_dense(ls) -> bool:
    """A dense layer whose input is a map (C, H, W): its units' fields can be drawn as images."""
    n_pre, n_post = int(np.prod(ls.pre_shape)), int(np.prod(ls.post_shape))
    return (getattr(ls, "layer_type", "dense") in ("dense", "") and len(ls.post_shape) == 1
            and len(ls.pre_shape) == 3 and len(ls.i) == n_pre * n_post)


def _live_weights(ls) -> np.ndarray:
    """The weight matrix ``[n_pre, n_post]`` of a dense layer, 0 where no live synapse
    (or no recorded value: a synapse not live in ``values_period``)."""
    n_pre, n_post = int(np.prod(ls.pre_shape)), int(np.prod(ls.post_shape))
    w = np.asarray(ls.w, dtype=float)
    w = np.where(np.asarray(ls.connected, bool) & np.isfinite(w), w, 0.0)
    # presynaptic-major order: synapse s joins pre s // n_post to post s % n_post
    return w.reshape(n_pre, n_post)


def _values_note(ls) -> str:
    if getattr(ls, "exact", True) and ls.values_period == ls.period:
        return ""
    kind = "exact" if ls.exact else "8-bit"
    return f" (weights: period {ls.values_period}, {kind})"


def _channel_groups(ls):
    """Presynaptic channel of each presynaptic neuron and unit of each postsynaptic neuron."""
    pre = tuple(ls.pre_shape)
    positions = int(np.prod(pre[1:])) if len(pre) == 3 else 1
    return np.arange(int(np.prod(pre))) // positions, np.asarray(ls.unit_of_post)


def _mask_figure(ls, plt):
    """Connection mask and spine widths of a layer at one period (dense: per synapse;
    locally connected and convolution: mean per pair of input channel and output channel)."""
    from .viz import plot_synapse_matrix

    n_pre, n_post = int(np.prod(ls.pre_shape)), int(np.prod(ls.post_shape))
    dense = len(ls.post_shape) == 1 and n_pre * n_post <= 4_000_000
    groups = {} if dense else dict(zip(("pre_group", "post_group"), _channel_groups(ls)))
    labels = (dict(pre_label="presynaptic neuron", post_label="postsynaptic unit") if dense else
              dict(pre_label="presynaptic channel", post_label="postsynaptic channel"))
    fig, axs = plt.subplots(1, 2, figsize=(11, 5))
    conn = np.asarray(ls.connected, bool)
    plot_synapse_matrix(conn.astype(float), ls.i, ls.j, n_pre, n_post, axes=axs[0],
                        label="connected (1 = live synapse)", vmin=0, vmax=1, **groups, **labels)
    if getattr(ls, "kernel_index", None) is not None:     # a convolution: count its kernel's weights
        kernel = ls.kernel_values(conn)
        live = f"{int(np.nansum(kernel))} live of {int(np.isfinite(kernel).sum())} kernel weights"
    else:
        live = f"{int(conn.sum())} live of {len(conn)}"
    axs[0].set_title(f"{ls.name}: mask at period {ls.period} ({live})")
    width = np.asarray(ls.r_up, float) + np.abs(np.asarray(ls.r_lo, float))
    ok = conn & np.isfinite(width)
    plot_synapse_matrix(width[ok], np.asarray(ls.i)[ok], np.asarray(ls.j)[ok], n_pre, n_post, axes=axs[1],
                        label="spine width r+ + |r-| (weight units)", cmap="magma", **groups, **labels)
    axs[1].set_title(f"spine widths of the live synapses{_values_note(ls)}")
    return fig


def _kernel_figure(ls, plt):
    """A convolution's kernel at one period: which weights are live and their spine widths,
    one ``k x k`` tile per pair of output and input channel, pruned channels grey."""
    from .viz import plot_kernels

    conn = ls.kernel_values(ls.connected)
    width = ls.kernel_values(np.asarray(ls.r_up, float) + np.abs(np.asarray(ls.r_lo, float)))
    width[~(conn > 0)] = np.nan
    c_out, c_in = conn.shape[:2]
    fig, axs = plt.subplots(2, 1, figsize=(min(3 + 0.28 * c_out, 16), 2 * min(1.6 + 0.28 * c_in, 7)))
    alive = np.asarray(ls.alive, bool)
    plot_kernels(conn, alive=alive, axes=axs[0], label="connected (1 = live)", vmin=0, vmax=1)
    axs[0].set_title(f"{ls.name} kernel at period {ls.period}: {int(np.nansum(conn))} live of "
                     f"{int(np.isfinite(conn).sum())} weights, {int(alive.sum())} of {c_out} channels alive",
                     fontsize=9)
    if np.isfinite(width).any():
        plot_kernels(width, alive=alive, axes=axs[1], label="r+ + |r-| (weight units)", cmap="magma")
        axs[1].set_title(f"spine widths of the live weights{_values_note(ls)}", fontsize=9)
    else:
        axs[1].set_axis_off()
        axs[1].set_title("no spine bounds in this layer", fontsize=9)
    fig.tight_layout()
    return fig


def _fields_title(ls, alive):
    c = ls.pre_shape[0]
    mean = f", mean over {c} input channels" if c > 1 else ""
    return f"{ls.name} at period {ls.period}: {int(np.sum(alive))} of {len(alive)} units alive{mean}" \
           f"{_values_note(ls)}"


def network_columns(structure: dict):
    """Columns, alive units and live-synapse links of the network diagram at one period.

    Parameters
    ----------
    structure : dict of LayerStructure
        Every stage with synapses at one period, in network order
        (:meth:`sdsnn_bio.history.History.structure_at`); pooling relays pass their
        input channels on unchanged.

    Returns
    -------
    names, alive, links
        For :func:`sdsnn_bio.viz.plot_network`: the input (one unit per input neuron), then each
        layer with learnable synapses; ``links[k]`` counts the live synapses from each unit of
        column ``k`` to each unit of column ``k + 1`` whose two units are both alive.
    """
    stages = list(structure.values())
    if not stages:
        raise FigureError("no layers to draw")
    n_in = int(np.prod(stages[0].pre_shape))
    names, alive, links = ["input"], [np.ones(n_in, bool)], []
    unit_of = np.arange(n_in)          # neuron of the stage's input -> unit of the last column
    for ls in stages:
        i, j = np.asarray(ls.i), np.asarray(ls.j)
        post_unit = np.asarray(ls.unit_of_post)
        if getattr(ls, "layer_type", "") == "pool":
            # a relay: its output channel is the channel of the layer before
            relay = np.zeros(int(np.prod(ls.post_shape)), dtype=int)
            relay[j] = unit_of[i]
            unit_of = relay
            continue
        a = np.asarray(ls.alive, bool)
        pre_u, post_u = unit_of[i], post_unit[j]
        keep = np.asarray(ls.connected, bool) & alive[-1][pre_u] & a[post_u]
        m = np.bincount(pre_u[keep] * len(a) + post_u[keep], minlength=len(alive[-1]) * len(a))
        names.append(ls.name)
        alive.append(a)
        links.append(m.reshape(len(alive[-2]), len(a)))
        unit_of = post_unit
    return names, alive, links


def _network_figure(structure: dict, period, plt):
    from .viz import plot_network

    names, alive, links = network_columns(structure)
    fig, ax = plt.subplots(figsize=(3 + 2.2 * len(names), 6))
    plot_network(names, alive, links, axes=ax)
    ax.set_title(f"surviving network at period {period}", pad=30)
    return fig


def live_synapse_counts(h, layer: str):
    """``(periods, counts[n_periods, n_units])``: live synapses onto each unit, period by period.

    Read from the history's per-unit summaries where it has them, else counted from
    :meth:`structure_at` of every period.
    """
    summary = getattr(h, "unit_summary", None)
    if summary is not None:
        return np.asarray(h.periods), np.asarray(summary(layer)["live"])
    rows = []
    for e in h.periods:
        ls = h.structure_at(int(e))[layer]
        post_unit = np.asarray(ls.unit_of_post)[np.asarray(ls.j)]
        rows.append(np.bincount(post_unit[np.asarray(ls.connected, bool)], minlength=len(ls.alive)))
    return np.asarray(h.periods), np.stack(rows)


def _field_periods(h) -> list:
    """Up to :data:`FIELD_PERIODS` periods with stored weights, evenly spread over the run."""
    periods = [int(p) for p in h.periods]
    keys = sorted({int(k) for k in h.keyframes} & set(periods)) or periods
    pick = np.unique(np.rint(np.linspace(0, len(keys) - 1, min(FIELD_PERIODS, len(keys)))).astype(int))
    return [keys[k] for k in pick]


def draw_structure_figures(run_dir, period=None, over_periods=True, history=None) -> dict:
    """The structural figures of a run (matplotlib ``Figure`` objects, not saved) by file name.

    At ``period`` (default: the last recorded one), with ``NNNN`` its number:
    ``fields_<layer>_pNNNN.png`` (receptive fields of a dense layer over its input map,
    pruned units greyed), ``mask_<layer>_pNNNN.png`` (connection mask and spine widths;
    per pair of channels for a locally connected layer or a convolution's positions),
    ``kernels_<layer>_pNNNN.png`` (a convolution's kernel: live weights and spine widths, one
    ``k x k`` tile per pair of channels), ``network_pNNNN.png`` (the
    surviving network). With ``over_periods``, also, per pruned layer:
    ``units_<layer>.png`` (alive units and live synapses per unit over periods),
    ``distributions_<layer>.png`` (weights and spine widths of the live synapses over
    periods), ``events_<layer>.png`` (pruning and regeneration rasters) and
    ``fields_<layer>_periods.png`` (receptive fields at up to four stored periods).

    Raises :class:`~sdsnn_bio.errors.FigureError` when ``period`` is not in the history.
    """
    import matplotlib.pyplot as plt

    from .viz import (plot_alive_units, plot_distribution_periods, plot_events, plot_live_synapses,
                      plot_receptive_fields, plot_receptive_fields_periods)

    h = load_history(run_dir, history)
    e = int(h.periods[-1]) if period is None else _check_period(run_dir, h, period)
    structure = h.structure_at(e)
    figs = {}
    for name in h.layers:
        ls = structure[name]
        if _is_image_dense(ls):
            fig, ax = plt.subplots(figsize=(8, 8))
            plot_receptive_fields(_live_weights(ls), ls.alive, ls.pre_shape, axes=ax, colorbar=True,
                                  title=_fields_title(ls, ls.alive))
            figs[f"fields_{name}_p{e:04d}.png"] = fig
        figs[f"mask_{name}_p{e:04d}.png"] = _mask_figure(ls, plt)
        if getattr(ls, "kernel_index", None) is not None:
            figs[f"kernels_{name}_p{e:04d}.png"] = _kernel_figure(ls, plt)
    figs[f"network_p{e:04d}.png"] = _network_figure(structure, e, plt)
    if not over_periods:
        return figs
    for name in h.layers:
        ls = structure[name]
        ylabel = "unit" if len(ls.post_shape) == 1 else "channel"
        fig, axs = plt.subplots(1, 2, figsize=(12, 4.5))
        periods, alive = h.alive(name)
        plot_alive_units(periods, alive, axes=axs[0], ylabel=ylabel)
        periods, counts = live_synapse_counts(h, name)
        plot_live_synapses(periods, counts, axes=axs[1], ylabel=ylabel)
        fig.suptitle(name)
        figs[f"units_{name}.png"] = fig
        fig, axs = plt.subplots(1, 2, figsize=(12, 4.5))
        p, edges, c = h.histogram(name, "w")
        plot_distribution_periods(p, edges, c, axes=axs[0], label="weight w (dimensionless)")
        axs[0].set_title(f"{name}: weights of the live synapses")
        try:
            p, edges, c = h.histogram(name, "width")
        except SdsnnError as exc:      # a layer without spine bounds
            axs[1].text(0.5, 0.5, str(exc), ha="center", va="center", wrap=True, transform=axs[1].transAxes)
            axs[1].set_axis_off()
        else:
            plot_distribution_periods(p, edges, c, axes=axs[1], label="spine width r+ + |r-| (weight units)")
            axs[1].set_title(f"{name}: spine widths of the live synapses")
        figs[f"distributions_{name}.png"] = fig
        ev = h.events(name)
        fig, axs = plt.subplots(1, 2, figsize=(12, 4.5))
        plot_events(ev, kinds=("unit_pruned", "unit_revived"), axes=axs[0],
                    ylabel=f"{ylabel} index")
        axs[0].set_title(f"{name}: {ylabel}s pruned and revived")
        plot_events(ev, kinds=("synapse_pruned", "synapse_regenerated"), axes=axs[1], markersize=1.5)
        axs[1].set_title(f"{name}: synapses pruned and regenerated")
        for ax in axs:
            ax.set_xlim(float(h.periods[0]) - 0.5, float(h.periods[-1]) + 0.5)
        figs[f"events_{name}.png"] = fig
        if _is_image_dense(ls):
            chosen = _field_periods(h)
            at = [h.structure_at(k)[name] for k in chosen]
            fig = plot_receptive_fields_periods(
                [_live_weights(s) for s in at], [s.alive for s in at], chosen, ls.pre_shape,
                exact=[True if s.values_period == s.period else s.values_period for s in at])
            fig.suptitle(f"{name}: receptive fields over development (pruned units grey)")
            figs[f"fields_{name}_periods.png"] = fig
    return figs


def animate_layer(run_dir, layer: str, max_frames: int = MAX_FRAMES, history=None, axes=None):
    """An animation of one pruned layer's structure across the run.

    A dense layer over an input map shows its receptive fields (pruned units grey); another
    layer its connection mask (the live fraction per pair of input and output channel).
    At most ``max_frames`` periods, evenly spread from the first to the last; drawn on
    ``axes`` (default: a new figure).

    Returns
    -------
    matplotlib.animation.FuncAnimation
    """
    import matplotlib.pyplot as plt

    from .viz import animate_images, animate_receptive_fields, synapse_image

    h = load_history(run_dir, history)
    if layer not in h.layers:
        raise FigureError(f"{run_dir}: no pruned layer {layer!r} in the history (layers: {', '.join(h.layers)})")
    periods = [int(p) for p in h.periods]
    pick = np.unique(np.rint(np.linspace(0, len(periods) - 1, min(max_frames, len(periods)))).astype(int))
    frames = [periods[k] for k in pick]
    first = h.structure_at(frames[0])[layer]
    ax = plt.subplots(figsize=(7, 7))[1] if axes is None else axes
    if _is_image_dense(first):
        def get(e):
            ls = h.structure_at(e)[layer]
            return _live_weights(ls), ls.alive

        w_max = max(float(np.nanmax(np.abs(_live_weights(h.structure_at(k)[layer])))) for k in
                    sorted({frames[0], frames[-1]}))
        return animate_receptive_fields(get, frames, first.pre_shape, axes=ax, vmax=w_max or 1.0,
                                        title=f"{layer}, period {{period}}")
    pre_group, post_group = _channel_groups(first)

    def mask(e):
        ls = h.structure_at(e)[layer]
        return synapse_image(np.asarray(ls.connected, float), ls.i, ls.j, pre_group=pre_group,
                             post_group=post_group)

    anim = animate_images(mask, frames, axes=ax, title=f"{layer}, period {{period}}", vmin=0, vmax=1,
                          aspect="auto", cmap="viridis", xlabel="postsynaptic channel",
                          ylabel="presynaptic channel")
    ax.figure.colorbar(ax.images[0], ax=ax).set_label("live fraction of the synapses")
    return anim


def _save(fig, path: Path, dpi=110):
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    atomic_write(path, buf.getvalue())
    return path


def make_structure_figures(run_dir, period=None, over_periods=True, animations=True, history=None,
                           max_frames: int = MAX_FRAMES) -> list:
    """Draw :func:`draw_structure_figures` (and, with ``animations``, one GIF per pruned layer,
    ``<layer>.gif``, from :func:`animate_layer`) into the run's figures folder; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .viz import save_animation

    run = RunFolder(run_dir)
    h = load_history(run_dir, history)
    figs = draw_structure_figures(run_dir, period=period, over_periods=over_periods, history=h)
    run.figures.mkdir(exist_ok=True)
    paths = []
    for name, fig in figs.items():
        fig.tight_layout()
        paths.append(_save(fig, run.figures / name))
    if animations:
        for layer in h.layers:
            fig, ax = plt.subplots(figsize=(7, 7))
            anim = animate_layer(run_dir, layer, max_frames=max_frames, history=h, axes=ax)
            tmp = run.figures / f".{layer}.tmp.gif"
            save_animation(anim, tmp, fps=5, dpi=80)
            plt.close(fig)
            path = run.figures / f"{layer}.gif"
            tmp.replace(path)
            paths.append(path)
    return paths


# ------------------------------------------------------------------------- main job
def test_rotation(run_dir) -> int:
    """Periods in which a finished run's rotating test slices cover its test set once:
    ``ceil(n_test / test_per_period)``, the test set's size being the final evaluation's windows
    over its passes; 1 where every period tests the whole set (or the run has no summary)."""
    import tomllib

    folder = RunFolder(run_dir)
    s = folder.read_summary()
    if not s or not folder.config.is_file():
        return 1
    with open(folder.config, "rb") as f:
        sch = tomllib.load(f).get("schedule", {})
    n_test = int(s.get("test_windows", 0)) // max(1, int(sch.get("eval_passes", 1)))
    per = int(sch.get("test_per_period", 0))
    return slice_rotation(n_test, per)


def main_job_figure(dense_dir, sdsnn_dir):
    """The main job's figure: SD-SNN beside its dense twin (:func:`sdsnn_bio.viz.plot_main_job`),
    the accuracy also as its mean over one pass of the rotating test slices."""
    import matplotlib.pyplot as plt

    from .viz import plot_main_job

    fig = plot_main_job(read_table(dense_dir), read_table(sdsnn_dir), fig=plt.figure(figsize=(14, 4)),
                        rotation=test_rotation(sdsnn_dir))
    d, s = _summary(dense_dir), _summary(sdsnn_dir)
    if d and s:
        fig.suptitle(f"final test accuracy: dense {100 * d['final_test_accuracy']:.2f}%, "
                     f"SD-SNN {100 * s['final_test_accuracy']:.2f}%")
    return fig


def make_main_job_figure(dense_dir, sdsnn_dir, path) -> Path:
    """Draw :func:`main_job_figure` into ``path`` (PNG, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    fig = main_job_figure(dense_dir, sdsnn_dir)
    fig.tight_layout()
    return _save(fig, Path(path))
