"""Pictures of structural development (sdsnn_bio.viz) on synthetic arrays: what is drawn is the data."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import LineCollection

from sdsnn_bio import viz
from sdsnn_bio.viz import table as viz_table
from sdsnn_bio.errors import FigureError, SdsnnError
from sdsnn_bio.geometry import connectivity


@pytest.fixture(autouse=True)
def _close_figures():
    """No figure from another file's test on this worker: a plot without ``axes`` draws on
    the current one (a fresh clone's run drew 400 bars of someone else's histogram here)."""
    plt.close("all")
    yield
    plt.close("all")


def _dense(n_pre, n_post):
    """Dense connectivity in the network's order (presynaptic-major)."""
    class Dense:
        type = "dense"
    return connectivity(Dense, (n_pre,), (n_post,))


def test_existing_plots_still_importable_from_viz():
    from sdsnn_bio.viz import plot_accuracy_compression, plot_alive, plot_spine_widths  # noqa: F401

    ax = viz.plot_spine_widths(np.array([0.1, 0.2, 0.3]), np.array([-0.1, 0.0, -0.3]),
                               connected=np.array([1, 0, 1]), bins=4)
    assert sum(p.get_height() for p in ax.patches) == 2


def test_field_mosaic_places_each_unit_in_its_tile():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(6 * 4, 7))            # 6x4 images, 7 units
    mosaic, origins = viz.field_mosaic(w, (6, 4), ncols=3)
    assert mosaic.shape == (3 * 7 - 1, 3 * 5 - 1)
    for u, (r, c) in enumerate(origins):
        np.testing.assert_array_equal(mosaic[r:r + 6, c:c + 4], w[:, u].reshape(6, 4))
    # gaps and the two empty tiles after the last unit are NaN: only the 7 tiles hold numbers
    assert np.isfinite(mosaic).sum() == 7 * 24
    # a (C, H, W) input: the mean over channels (channel-major order)
    w3 = rng.normal(size=(2 * 3 * 3, 2))
    m3, _ = viz.field_mosaic(w3, (2, 3, 3), ncols=2)
    np.testing.assert_allclose(m3[:3, :3], w3[:, 0].reshape(2, 3, 3).mean(0))
    with pytest.raises(ValueError, match="pixels"):
        viz.field_mosaic(w, (5, 5))


def test_receptive_fields_grey_out_pruned_units():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(28 * 28, 12))
    alive = np.ones(12, bool)
    alive[[2, 7]] = False
    w[:, 7] = 50.0                               # a pruned unit does not set the colour scale
    ax = viz.plot_receptive_fields(w, alive, (28, 28), ncols=4, colorbar=True)
    mosaic, origins = viz.field_mosaic(w, (28, 28), ncols=4)
    img = np.ma.filled(ax.images[0].get_array().astype(float), np.nan)
    np.testing.assert_array_equal(img, mosaic)
    vmax = np.abs(w[:, alive]).max()
    assert ax.images[0].get_clim() == pytest.approx((-vmax, vmax))
    grey = np.ma.filled(ax.images[1].get_array().astype(float), np.nan)
    covered = np.isfinite(grey)
    assert covered.sum() == 2 * 28 * 28
    for u in (2, 7):
        r, c = origins[u]
        assert covered[r:r + 28, c:c + 28].all()
    assert "10 alive" in ax.get_xlabel()
    # all alive: no grey layer
    ax2 = viz.plot_receptive_fields(w, np.ones(12, bool), axes=plt.figure().gca())
    assert len(ax2.images) == 1


def test_receptive_fields_over_periods_share_one_scale():
    rng = np.random.default_rng(2)
    ws = [rng.normal(scale=s, size=(16, 5)) for s in (1.0, 2.0, 3.0)]
    alive = [np.ones(5, bool), np.array([1, 1, 0, 1, 1], bool), np.array([1, 0, 0, 1, 1], bool)]
    fig = viz.plot_receptive_fields_periods(ws, alive, [0, 10, 20], (4, 4), exact=[True, True, 18])
    axs = [ax for ax in fig.axes if ax.images]
    assert len(axs) == 3
    vmax = max(np.abs(w[:, a]).max() for w, a in zip(ws, alive))
    for ax, w, a in zip(axs, ws, alive):
        assert ax.images[0].get_clim() == pytest.approx((-vmax, vmax))
        np.testing.assert_array_equal(np.ma.filled(ax.images[0].get_array().astype(float), np.nan),
                                      viz.field_mosaic(w, (4, 4))[0])
        assert len(ax.images) == (1 if a.all() else 2)
    assert [ax.get_title().split(":")[0] for ax in axs] == ["period 0", "period 10", "period 20"]
    assert "weights of period 18" in axs[2].get_title()


def test_field_rgba_blends_pruned_tiles_to_grey():
    w = np.ones((4, 2))
    rgba = viz.field_rgba(w, np.array([True, False]), (2, 2), vmax=1.0, cmap="gray", ncols=2,
                          pruned_color=(0.5, 0.5, 0.5), pruned_alpha=1.0)
    np.testing.assert_allclose(rgba[:2, :2, :3], 1.0)          # alive: top of the grey map
    np.testing.assert_allclose(rgba[:2, 3:5, :3], 0.5)         # pruned: grey
    np.testing.assert_allclose(rgba[:, 2, :3], 1.0)            # the gap: white


def test_synapse_matrix_dense_and_grouped():
    i, j = _dense(6, 4)
    vals = np.arange(24, dtype=float)
    img = viz.synapse_image(vals, i, j)
    # the network's order: w.reshape(n_pre, n_post) is the matrix
    np.testing.assert_array_equal(img, vals.reshape(6, 4))
    ax = viz.plot_synapse_matrix(vals, i, j, label="weight w")
    np.testing.assert_array_equal(ax.images[0].get_array(), vals.reshape(6, 4))
    assert ax.get_xlabel() == "postsynaptic unit" and ax.get_ylabel() == "presynaptic neuron"
    # a locally connected layer: mean live fraction per pair of channels
    class Local:
        type, kernel, padding, stride = "local", 3, 1, 1
    i, j = connectivity(Local, (2, 5, 5), (3, 5, 5))
    connected = (np.arange(len(i)) % 3 == 0).astype(float)
    img = viz.synapse_image(connected, i, j, pre_group=np.arange(50) // 25, post_group=np.arange(75) // 25)
    assert img.shape == (2, 3)
    for a in range(2):
        for b in range(3):
            m = (i // 25 == a) & (j // 25 == b)
            assert img[a, b] == pytest.approx(connected[m].mean())
    with pytest.raises(ValueError, match="pre_group"):
        viz.synapse_image(np.ones(3), [0, 1, 2], [0, 1, 2], n_pre=3000, n_post=3000)
    # no synapse between a pair: NaN, not 0
    img = viz.synapse_image(np.ones(2), [0, 1], [0, 0], n_pre=2, n_post=2)
    assert np.isnan(img[:, 1]).all() and (img[:, 0] == 1).all()


def test_kernel_mosaic_tiles_output_by_input_channel():
    kernel = np.arange(3 * 2 * 3 * 3, dtype=float).reshape(3, 2, 3, 3)
    img = viz.kernel_mosaic(kernel)
    assert img.shape == (3 * 4 - 1, 2 * 4 - 1)
    for o in range(3):
        for c in range(2):
            np.testing.assert_array_equal(img[4 * o:4 * o + 3, 4 * c:4 * c + 3], kernel[o, c])
    assert np.isnan(img[3]).all() and np.isnan(img[:, 3]).all() and np.isnan(img[7]).all()
    assert np.isfinite(img).sum() == kernel.size
    # drawn with the output channels across: tile (row c, column o) is kernel[o, c]
    ax = viz.plot_kernels(kernel, alive=[True, False, True], label="weight w")
    np.testing.assert_array_equal(ax.images[0].get_array().filled(np.nan)[0:3, 4:7], kernel[1, 0])
    np.testing.assert_array_equal(ax.images[0].get_array().filled(np.nan)[4:7, 8:11], kernel[2, 1])
    grey = ax.images[1].get_array()             # the pruned channel's columns, and only those, greyed
    assert not grey.mask[:, 4:7].any() and grey.mask[:, :4].all() and grey.mask[:, 7:].all()
    assert ax.get_xlabel() == "output channel" and ax.get_ylabel() == "input channel"
    with pytest.raises(ValueError, match=r"\(C_out, C_in, k, k\)"):
        viz.kernel_mosaic(np.zeros((2, 3, 3)))


def test_unit_images_over_periods():
    periods = np.arange(5, 10)
    alive = np.ones((5, 4), bool)
    alive[2:, 1] = False
    alive[4:, 3] = False
    ax = viz.plot_alive_units(periods, alive, ylabel="channel")
    mesh = ax.collections[0]
    np.testing.assert_array_equal(np.asarray(mesh.get_array()).reshape(4, 5), alive.T.astype(float))
    assert ax.get_xlabel() == "structural period" and ax.get_ylabel() == "channel"
    assert "2 of 4" in ax.get_title()
    np.testing.assert_allclose(mesh.get_coordinates()[0, :, 0], np.arange(4.5, 10.5))
    counts = np.arange(20).reshape(5, 4)
    ax = viz.plot_live_synapses(periods, counts, axes=plt.figure().gca())
    np.testing.assert_array_equal(np.asarray(ax.collections[0].get_array()).reshape(4, 5), counts.T)
    with pytest.raises(ValueError, match="n_periods"):
        viz.plot_live_synapses(periods, counts.T)


def test_distribution_heat_map():
    periods = np.array([0, 1, 2])
    edges = np.linspace(-1, 1, 5)
    counts = np.array([[0, 3, 5, 0], [1, 2, 2, 1], [10, 0, 0, 7]])
    ax = viz.plot_distribution_periods(periods, edges, counts, label="weight w")
    arr = ax.collections[0].get_array()
    np.testing.assert_array_equal(np.ma.filled(arr, 0).reshape(4, 3), counts.T)
    assert np.ma.getmaskarray(arr).sum() == 4               # empty bins blank on the log scale
    np.testing.assert_allclose(ax.collections[0].get_coordinates()[:, 0, 1], edges)
    assert ax.get_ylabel() == "weight w"
    ax = viz.plot_distribution_periods(periods, edges, counts, log=False, axes=plt.figure().gca())
    np.testing.assert_array_equal(np.asarray(ax.collections[0].get_array()).reshape(4, 3), counts.T)
    with pytest.raises(ValueError, match="n_bins"):
        viz.plot_distribution_periods(periods, edges[:-1], counts)


def test_event_rasters():
    ev = {"period": np.array([3, 3, 4, 5, 5, 6, 7]),
          "layer": np.array(["fc1", "fc1", "fc1", "conv2", "fc1", "fc1", "fc1"]),
          "kind": np.array([b"unit_pruned", b"synapse_pruned", b"synapse_pruned", b"unit_pruned",
                            b"synapse_regenerated", b"unit_revived", b"unit_pruned"]),
          "index": np.array([9, 100, 101, 2, 100, 9, 4])}
    ax = viz.plot_events(ev, layer="fc1")
    lines = {ln.get_label().split(" ")[0]: ln for ln in ax.get_lines()}
    assert sorted(lines) == sorted(["unit_pruned", "unit_revived", "synapse_pruned", "synapse_regenerated"])
    np.testing.assert_array_equal(lines["unit_pruned"].get_xdata(), [3, 7])
    np.testing.assert_array_equal(lines["unit_pruned"].get_ydata(), [9, 4])
    np.testing.assert_array_equal(lines["synapse_pruned"].get_ydata(), [100, 101])
    assert lines["unit_pruned"].get_color() != lines["synapse_pruned"].get_color()
    assert lines["unit_pruned"].get_label() == "unit_pruned (2)"
    ax = viz.plot_events(ev, kinds=("unit_pruned", "unit_revived"), axes=plt.figure().gca())
    assert ax.get_ylabel() == "unit index"
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), [9, 2, 4])     # both layers
    bad = dict(ev, kind=np.array(["unit_pruned"] * 6 + ["unit_exploded"]))
    with pytest.raises(ValueError, match="unit_exploded"):
        viz.plot_events(bad)


def test_network_diagram_small_is_exact():
    alive = [np.ones(3, bool), np.array([1, 0, 1, 1], bool), np.ones(2, bool)]
    links = [np.array([[1, 0, 2, 0], [0, 0, 1, 1], [3, 0, 0, 1]]), np.array([[1, 1], [0, 0], [2, 0], [0, 4]])]
    ax = viz.plot_network(["in", "h", "out"], alive, links)
    edges = {c.get_label(): c for c in ax.collections if isinstance(c, LineCollection)}
    assert sorted(edges) == ["h -> out", "in -> h"]
    for lc, m in zip((edges["in -> h"], edges["h -> out"]), links):
        counts = np.asarray(lc.get_array())
        assert sorted(counts) == sorted(m[m > 0])
        lw = np.asarray(lc.get_linewidths())
        assert lw[np.argmax(counts)] == lw.max() and lw[np.argmin(counts)] == lw.min()
    # each segment joins the nodes of the two units: in 0 (y=1) -> h 0 (y=1) carries 1
    counts = np.asarray(edges["in -> h"].get_array())
    segs = edges["in -> h"].get_segments()
    k = [n for n, s in enumerate(segs) if np.allclose(s, [[0, 1], [1, 1]])]
    assert len(k) == 1 and counts[k[0]] == 1
    k = [n for n, s in enumerate(segs) if np.allclose(s, [[0, 0], [1, 1]])]       # in 2 -> h 0: 3
    assert len(k) == 1 and counts[k[0]] == 3
    nodes = {c.get_label(): len(c.get_offsets()) for c in ax.collections if not isinstance(c, LineCollection)}
    assert nodes == {"in alive": 3, "in dead": 0, "h alive": 3, "h dead": 1, "out alive": 2, "out dead": 0}
    assert "3/4 alive" in ax.get_xticklabels()[1].get_text()
    with pytest.raises(ValueError, match="links\\[1\\]"):
        viz.plot_network(["in", "h", "out"], alive, [links[0], links[1].T])


def test_network_diagram_mnist5k_fc_size_aggregates_edges_fast():
    import time

    rng = np.random.default_rng(3)
    alive_h = rng.random(300) < 0.6
    connected = (rng.random((784, 300)) < 0.5) & alive_h[None, :]
    out = np.repeat(alive_h[:, None], 10, axis=1).astype(int)
    t0 = time.perf_counter()
    fig = plt.figure(figsize=(8, 6))
    ax = viz.plot_network(["input", "fc1", "out"], [np.ones(784, bool), alive_h, np.ones(10, bool)],
                          [connected.astype(int), out], axes=fig.gca(), max_groups=32)
    fig.savefig(__import__("io").BytesIO(), format="png", dpi=100)
    elapsed = time.perf_counter() - t0
    assert elapsed < 10, f"{elapsed:.1f} s"
    edges = [c for c in ax.collections if isinstance(c, LineCollection)]
    counts = [np.asarray(c.get_array()) for c in edges]
    assert counts[0].sum() == connected.sum() and counts[1].sum() == out.sum()   # every live synapse
    assert len(counts[0]) <= 32 * 32 and len(counts[1]) <= 32 * 10
    nodes = {c.get_label(): len(c.get_offsets()) for c in ax.collections if not isinstance(c, LineCollection)}
    assert nodes["input alive"] == 784 and nodes["fc1 alive"] == alive_h.sum()
    assert nodes["fc1 dead"] == 300 - alive_h.sum()


def test_group_units():
    np.testing.assert_array_equal(viz.group_units(5, 8), np.arange(5))
    g = viz.group_units(784, 32)
    assert g[0] == 0 and g[-1] == 31 and np.all(np.diff(g) >= 0)
    assert np.bincount(g).min() >= 24


def test_animation_gif_frames_show_each_period(tmp_path):
    from PIL import Image

    periods = [0, 1, 2]
    w = np.ones((4, 2))
    frames = {0: (w, np.array([True, True])), 1: (w, np.array([True, False])),
              2: (-w, np.array([False, False]))}
    fig = plt.figure(figsize=(2, 2))
    anim = viz.animate_receptive_fields(frames.__getitem__, periods, (2, 2), axes=fig.gca(), cmap="gray")
    path = viz.save_animation(anim, tmp_path / "fields.gif", fps=2, dpi=50)
    img = Image.open(path)
    assert img.n_frames == 3
    # the image shown after saving is the last period's, and the title follows the period
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), viz.field_rgba(-w, frames[2][1], (2, 2), vmax=1.0,
                                                                        cmap="gray"))
    assert ax.get_title() == "period 2"
    # frames differ: a unit is pruned in period 1
    f0 = np.asarray(img.convert("RGB"))
    img.seek(1)
    f1 = np.asarray(img.convert("RGB"))
    assert np.abs(f0.astype(int) - f1.astype(int)).sum() > 0
    with pytest.raises(FigureError, match=".avi"):
        viz.save_animation(anim, tmp_path / "fields.avi")


def test_animation_mp4_only_with_ffmpeg(tmp_path):
    from matplotlib import animation

    anim = viz.animate_images([np.eye(3), np.zeros((3, 3))], [0, 1], axes=plt.figure().gca())
    if animation.writers.is_available("ffmpeg"):
        path = viz.save_animation(anim, tmp_path / "a.mp4")
        assert path.read_bytes()[4:8] == b"ftyp"
    else:
        with pytest.raises(SdsnnError, match="ffmpeg"):
            viz.save_animation(anim, tmp_path / "a.mp4")
        assert not (tmp_path / "a.mp4").exists()
        # the same animation still saves as a GIF, two frames
        from PIL import Image

        assert Image.open(viz.save_animation(anim, tmp_path / "a.gif")).n_frames == 2


def test_main_job_figure():
    dense = {"period": np.arange(4), "test_accuracy": np.array([0.5, 0.6, 0.7, 0.8]),
             "compression": np.zeros(4)}
    sdsnn = {"period": np.arange(4), "test_accuracy": np.array([0.4, 0.6, 0.75, 0.82]),
             "compression": np.array([0, 0.1, 0.3, 0.4]), "synapse_sparsity": np.array([0, 0.1, 0.2, 0.3]),
             "alive_conv2": np.array([40, 40, 38, 35]), "alive_fc1": np.array([300, 280, 250, 240])}
    fig = viz.plot_main_job(dense, sdsnn)
    ax_acc, ax_comp, ax_alive = fig.axes

    def ydata(ax, label):
        (ln,) = [ln for ln in ax.get_lines() if ln.get_label() == label]
        return np.asarray(ln.get_ydata(), float)

    np.testing.assert_allclose(ydata(ax_acc, "dense"), 100 * dense["test_accuracy"])
    np.testing.assert_allclose(ydata(ax_acc, "SD-SNN"), 100 * sdsnn["test_accuracy"])
    np.testing.assert_allclose(ydata(ax_comp, "compression"), 100 * sdsnn["compression"])
    np.testing.assert_array_equal(ydata(ax_alive, "fc1"), sdsnn["alive_fc1"])
    np.testing.assert_array_equal(ydata(ax_alive, "conv2"), sdsnn["alive_conv2"])
    assert ax_acc.get_ylabel() == "test accuracy (%)"


# ------------------------------------------------------------------ run-folder glue (report)
class _Structure:
    """A LayerStructure-like record (the fields of sdsnn_bio.history.LayerStructure)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


class FakeHistory:
    """History's reading interface over synthetic arrays: input 28x28 -> fc1 (12) -> out (3).

    fc1 loses units 2 (period 2) and 5 (period 4; its synapses go first), unit 2 comes back
    at period 5; synapses flip at random; weights are stored at keyframes 0, 3 and 6 only.
    """

    def __init__(self, n_periods=7, seed=0):
        rng = np.random.default_rng(seed)
        self.periods = np.arange(n_periods)
        self.layers = ["fc1"]
        self.keyframes = np.array([0, 3, n_periods - 1])
        self.i, self.j = _dense(784, 12)
        self.oi, self.oj = _dense(12, 3)
        conn = np.ones(len(self.i), bool)
        alive = np.ones(12, bool)
        self.conn, self.alive_ = [], []
        for e in self.periods:
            if e == 2:
                alive[2] = False
                conn[self.j == 2] = False
            if e == 4:
                alive[5] = False
                conn[self.j == 5] = False
            if e == 5:
                alive[2] = True
                conn[(self.j == 2) & (self.i < 300)] = True
            if e >= 1:
                flip = rng.random(len(conn)) < 0.01
                conn = np.where(flip & alive[self.j], ~conn, conn)
            self.conn.append(conn.copy())
            self.alive_.append(alive.copy())
        self.w = {int(k): rng.normal(scale=1 + k, size=len(self.i)).astype(np.float32) for k in self.keyframes}
        self.edges = np.linspace(-3, 3, 7)

    def _values_period(self, e):
        return int(self.keyframes[np.argmin(np.abs(self.keyframes - e))])

    def structure_at(self, e):
        e = int(e)
        vp = self._values_period(e)
        fc1 = _Structure(name="fc1", period=e, pre_shape=(1, 28, 28), post_shape=(12,), i=self.i, j=self.j,
                         connected=self.conn[e], alive=self.alive_[e], unit_of_post=np.arange(12),
                         w=self.w[vp], r_up=np.abs(self.w[vp]), r_lo=-0.5 * np.ones(len(self.i), np.float32),
                         values_period=vp, exact=False, layer_type="dense", pruned=True)
        out = _Structure(name="out", period=e, pre_shape=(12,), post_shape=(3,), i=self.oi, j=self.oj,
                         connected=np.ones(36, bool), alive=np.ones(3, bool), unit_of_post=np.arange(3),
                         w=np.ones(36, np.float32), r_up=np.full(36, np.nan), r_lo=np.full(36, np.nan),
                         values_period=vp, exact=False, layer_type="dense", pruned=False)
        return {"fc1": fc1, "out": out}

    def alive(self, layer):
        return self.periods.copy(), np.stack(self.alive_)

    def histogram(self, layer, var):
        counts = np.stack([np.histogram(self.w[self._values_period(e)][self.conn[e]], self.edges)[0]
                           for e in self.periods])
        if var == "width":
            counts = counts[:, ::-1]
        return self.periods.copy(), self.edges, counts

    def events(self, layer=None):
        p, k, ix = [], [], []
        for e in self.periods[1:]:
            for kind, idx in (("unit_pruned", np.flatnonzero(self.alive_[e - 1] & ~self.alive_[e])),
                              ("unit_revived", np.flatnonzero(~self.alive_[e - 1] & self.alive_[e])),
                              ("synapse_pruned", np.flatnonzero(self.conn[e - 1] & ~self.conn[e])),
                              ("synapse_regenerated", np.flatnonzero(~self.conn[e - 1] & self.conn[e]))):
                p += [e] * len(idx)
                k += [kind] * len(idx)
                ix += list(idx)
        return {"period": np.array(p), "layer": np.array(["fc1"] * len(p)), "kind": np.array(k),
                "index": np.array(ix)}


@pytest.fixture(scope="module")
def fake_history():
    return FakeHistory()


def _figure_images(fig):
    return [ax for ax in fig.axes if ax.images]


def test_structure_figures_at_a_period_draw_the_history(fake_history, tmp_path):
    from sdsnn_bio.report import draw_structure_figures

    h = fake_history
    figs = draw_structure_figures(tmp_path, period=4, over_periods=False, history=h)
    assert sorted(figs) == ["fields_fc1_p0004.png", "mask_fc1_p0004.png", "network_p0004.png"]
    s = h.structure_at(4)["fc1"]
    # receptive fields: live weights of the nearest keyframe (3), units 2 and 5 greyed
    (ax,) = _figure_images(figs["fields_fc1_p0004.png"])
    w = np.where(s.connected, s.w, 0).reshape(784, 12)
    np.testing.assert_array_equal(np.ma.filled(ax.images[0].get_array().astype(float), np.nan),
                                  viz.field_mosaic(w, (28, 28))[0])
    assert np.isfinite(np.ma.filled(ax.images[1].get_array().astype(float), np.nan)).sum() == 2 * 784
    assert "10 of 12 units alive" in ax.get_title() and "weights: period 3" in ax.get_title()
    # mask: the connection matrix; widths only where live
    ax_mask, ax_width = _figure_images(figs["mask_fc1_p0004.png"])
    np.testing.assert_array_equal(ax_mask.images[0].get_array(), h.conn[4].reshape(784, 12))
    width = np.ma.filled(ax_width.images[0].get_array().astype(float), np.nan)
    np.testing.assert_array_equal(np.isfinite(width), h.conn[4].reshape(784, 12))
    np.testing.assert_allclose(width[np.isfinite(width)],
                               (np.abs(s.w) + 0.5).reshape(784, 12)[h.conn[4].reshape(784, 12)], rtol=1e-6)
    # network: input -> fc1 -> out, edges count the live synapses between alive units
    ax = figs["network_p0004.png"].axes[0]
    edges = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert np.asarray(edges[0].get_array()).sum() == h.conn[4].sum()      # pruned units have no synapses
    assert np.asarray(edges[1].get_array()).sum() == 3 * 10               # from the 10 alive fc1 units
    nodes = {c.get_label(): len(c.get_offsets()) for c in ax.collections if not isinstance(c, LineCollection)}
    assert nodes["fc1 dead"] == 2 and nodes["input alive"] == 784 and nodes["out alive"] == 3


def test_structure_figures_over_periods(fake_history, tmp_path):
    from sdsnn_bio.report import draw_structure_figures, live_synapse_counts

    h = fake_history
    figs = draw_structure_figures(tmp_path, history=h)
    last = int(h.periods[-1])
    assert sorted(figs) == sorted([f"fields_fc1_p{last:04d}.png", f"mask_fc1_p{last:04d}.png",
                                   f"network_p{last:04d}.png", "units_fc1.png", "distributions_fc1.png",
                                   "events_fc1.png", "fields_fc1_periods.png"])
    ax_alive, ax_live = [ax for ax in figs["units_fc1.png"].axes if ax.collections][:2]
    np.testing.assert_array_equal(np.asarray(ax_alive.collections[0].get_array()).reshape(12, -1),
                                  np.stack(h.alive_).T)
    # live synapses per unit: counted from the structure of every period (no unit summaries here)
    periods, counts = live_synapse_counts(h, "fc1")
    np.testing.assert_array_equal(counts, [np.bincount(h.j[c], minlength=12) for c in h.conn])
    np.testing.assert_array_equal(np.asarray(ax_live.collections[0].get_array()).reshape(12, -1), counts.T)
    ax_w, ax_width = [ax for ax in figs["distributions_fc1.png"].axes if ax.collections][:2]
    _, _, cw = h.histogram("fc1", "w")
    _, _, cwidth = h.histogram("fc1", "width")
    np.testing.assert_array_equal(np.ma.filled(ax_w.collections[0].get_array(), 0).reshape(6, -1), cw.T)
    np.testing.assert_array_equal(np.ma.filled(ax_width.collections[0].get_array(), 0).reshape(6, -1), cwidth.T)
    ax_units, ax_syn = figs["events_fc1.png"].axes
    lines = {ln.get_label().split(" ")[0]: ln for ln in ax_units.get_lines()}
    np.testing.assert_array_equal(lines["unit_pruned"].get_xdata(), [2, 4])
    np.testing.assert_array_equal(lines["unit_pruned"].get_ydata(), [2, 5])
    np.testing.assert_array_equal(lines["unit_revived"].get_xdata(), [5])
    ev = h.events("fc1")
    n_syn = sum(len(ln.get_xdata()) for ln in ax_syn.get_lines())
    assert n_syn == np.isin(ev["kind"], ["synapse_pruned", "synapse_regenerated"]).sum() > 0
    # fields side by side at the stored periods
    axs = _figure_images(figs["fields_fc1_periods.png"])
    assert [ax.get_title().split(":")[0] for ax in axs] == ["period 0", "period 3", f"period {last}"]


def test_structure_period_out_of_range_is_a_clear_error(fake_history, tmp_path):
    from sdsnn_bio.report import draw_structure_figures

    for bad in (7, -1, 2.5):
        with pytest.raises(FigureError, match=r"period .* out of range: .* periods 0\.\.6"):
            draw_structure_figures(tmp_path, period=bad, history=fake_history)


def test_make_structure_figures_writes_pngs_and_an_animation(fake_history, tmp_path):
    from PIL import Image

    from sdsnn_bio.report import make_structure_figures

    paths = make_structure_figures(tmp_path, period=3, over_periods=False, history=fake_history, max_frames=4)
    names = sorted(p.name for p in paths)
    assert names == ["fc1.gif", "fields_fc1_p0003.png", "mask_fc1_p0003.png", "network_p0003.png"]
    assert all(p.parent == tmp_path / "figures" for p in paths)
    gif = Image.open(tmp_path / "figures" / "fc1.gif")
    assert gif.n_frames == 4                              # periods 0, 2, 4, 6
    png = Image.open(tmp_path / "figures" / "network_p0003.png")
    assert png.size[0] > 500 and png.size[1] > 400
    assert not list((tmp_path / "figures").glob("*.tmp*"))


def test_network_columns_through_a_pooling_relay():
    """input 1x4x4 -> local (2 channels, 4x4) -> pool 2 -> dense 3: channels feed the dense units."""
    from sdsnn_bio.report import network_columns

    class Local:
        type, kernel, padding, stride = "local", 3, 1, 1

    class Pool:
        type, size = "pool", 2

    class Dense:
        type = "dense"
    i1, j1 = connectivity(Local, (1, 4, 4), (2, 4, 4))
    ip, jp = connectivity(Pool, (2, 4, 4), (2, 2, 2))
    i2, j2 = connectivity(Dense, (8,), (3,))
    conn2 = np.ones(len(i2), bool)
    conn2[(i2 < 4) & (j2 == 0)] = False          # channel 0 -> unit 0 cut
    s = {"conv": _Structure(name="conv", pre_shape=(1, 4, 4), post_shape=(2, 4, 4), i=i1, j=j1,
                            connected=np.ones(len(i1), bool), alive=np.array([True, True]),
                            unit_of_post=np.arange(32) // 16, layer_type="local"),
         "pool": _Structure(name="pool", pre_shape=(2, 4, 4), post_shape=(2, 2, 2), i=ip, j=jp,
                            connected=np.ones(len(ip), bool), alive=np.ones(2, bool),
                            unit_of_post=np.arange(8) // 4, layer_type="pool"),
         "fc": _Structure(name="fc", pre_shape=(2, 2, 2), post_shape=(3,), i=i2, j=j2, connected=conn2,
                          alive=np.array([True, True, False]), unit_of_post=np.arange(3), layer_type="dense")}
    names, alive, links = network_columns(s)
    assert names == ["input", "conv", "fc"]
    assert links[0].shape == (16, 2) and links[0].sum() == 2 * len(i1) // 2
    np.testing.assert_array_equal(links[0][5], [9, 9])          # an inner pixel feeds 9 positions each
    np.testing.assert_array_equal(links[1], [[0, 4, 0], [4, 4, 0]])


def test_main_job_figure_from_run_folders(tmp_path):
    from sdsnn_bio.records import RunFolder
    from sdsnn_bio.report import main_job_figure, make_main_job_figure

    rows = {"dense": [{"period": e, "test_accuracy": 0.5 + 0.1 * e, "compression": 0.0} for e in range(3)],
            "sdsnn": [{"period": e, "test_accuracy": 0.45 + 0.12 * e, "compression": 0.2 * e,
                       "synapse_sparsity": 0.1 * e, "alive_fc1": 40 - 3 * e} for e in range(3)]}
    for name, r in rows.items():
        run = RunFolder(tmp_path / name)
        run.create()
        run.write_table(r, ["period"])
        run.write_summary({"final_test_accuracy": r[-1]["test_accuracy"]})
    fig = main_job_figure(tmp_path / "dense", tmp_path / "sdsnn")
    ax_acc, _, ax_alive = fig.axes
    (sd,) = [ln for ln in ax_acc.get_lines() if ln.get_label() == "SD-SNN"]
    np.testing.assert_allclose(sd.get_ydata(), [45, 57, 69])
    (fc1,) = ax_alive.get_lines()
    np.testing.assert_array_equal(fc1.get_ydata(), [40, 37, 34])
    assert "SD-SNN 69.00%" in fig._suptitle.get_text()
    path = make_main_job_figure(tmp_path / "dense", tmp_path / "sdsnn", tmp_path / "main.png")
    from PIL import Image

    assert Image.open(path).size[0] > 1000


# ------------------------------------------------------------- with the real History
def _recorded_run(folder, periods=10, seed=0):
    """A run folder with a table and a structural history written by HistoryRecorder for
    tiny_dense (784-40-10), the structure developed by hand (no simulation): from period 4
    on, unit 3 and then unit 7 lose all their synapses, and 1% of the synapses flip."""
    from sdsnn_bio.config import find_model, load_config
    from sdsnn_bio.geometry import stage_geometry
    from sdsnn_bio.history import HistoryRecorder
    from sdsnn_bio.records import RunFolder

    cfg = load_config(find_model("tiny_dense")).replace(schedule={"periods": periods})
    run = RunFolder(folder)
    run.create()
    run.write_config(cfg.to_dict())
    stages = stage_geometry(cfg)
    rec = HistoryRecorder(run, stages, periods)
    rec.start()
    rng = np.random.default_rng(seed)
    state = {st.name: {"connected": np.ones(st.n_synapses, np.uint8),
                       "w": rng.normal(0, 0.05, st.n_synapses).astype(np.float32),
                       "r_up": np.full(st.n_synapses, 0.1, np.float32),
                       "r_lo": np.full(st.n_synapses, -0.1, np.float32)} for st in stages}
    fc1 = stages[0]
    rows = []
    for e in range(periods + 1):
        s = state["fc1"]
        if e >= 4:
            s["connected"][rng.random(fc1.n_synapses) < 0.01] ^= 1
        for unit, start in ((3, 4), (7, 6)):
            if e >= start:
                s["connected"][fc1.post_index == unit] = 0
        s["w"] += rng.normal(0, 0.01, fc1.n_synapses).astype(np.float32)
        rec.record(e, {f"{k}/syn/{v}": a for k, d in state.items() for v, a in d.items()}, final=e == periods)
        if e < periods:
            rows.append({"period": e, "test_accuracy": 0.5, "compression": 0.0, "synapse_sparsity": 0.0,
                         "alive_fc1": 40})
    run.write_table(rows, ["period"])
    return run


def test_report_cli_draws_the_structure_from_a_recorded_history(tmp_path, capsys):
    from PIL import Image

    from sdsnn_bio.cli import main
    from sdsnn_bio.history import History

    run = _recorded_run(tmp_path / "run")
    h = History(run.path)
    assert main(["report", str(run.path), "--period", "5"]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in run.figures.iterdir()) == ["fields_fc1_p0005.png", "mask_fc1_p0005.png",
                                                             "network_p0005.png"]
    assert f"wrote {run.figures / 'network_p0005.png'}" in out
    # what the picture at period 5 shows is the history's structure of period 5
    from sdsnn_bio.report import draw_structure_figures

    figs = draw_structure_figures(run.path, period=5, over_periods=False)
    s = h.structure_at(5)["fc1"]
    assert not s.alive[3] and s.alive[7]
    ax = [a for a in figs["mask_fc1_p0005.png"].axes if a.images][0]
    np.testing.assert_array_equal(ax.images[0].get_array(), s.connected.reshape(784, 40))
    ax = [a for a in figs["fields_fc1_p0005.png"].axes if a.images][0]
    assert np.isfinite(np.ma.filled(ax.images[1].get_array().astype(float), np.nan)).sum() == 784
    # out of range: exit status 2 and the range in the message
    assert main(["report", str(run.path), "--period", "11"]) == 2
    assert "period 11 is out of range" in capsys.readouterr().err
    # --figures: the table's figures, then every structural one and the animation
    assert main(["report", str(run.path), "--figures"]) == 0
    names = {p.name for p in run.figures.iterdir()}
    assert {"accuracy_compression.png", "fields_fc1_p0010.png", "network_p0010.png", "units_fc1.png",
            "distributions_fc1.png", "events_fc1.png", "fields_fc1_periods.png", "fc1.gif"} <= names
    assert Image.open(run.figures / "fc1.gif").n_frames == 11
    # the history's events: unit 3 pruned at period 4, unit 7 at 6 (drawn as the fake's above)
    ev = h.events("fc1")
    unit = ev["kind"] == "unit_pruned"
    np.testing.assert_array_equal(ev["period"][unit], [4, 6])
    np.testing.assert_array_equal(ev["index"][unit], [3, 7])


def test_rolling_mean_is_the_trailing_mean():
    from sdsnn_bio.metrics import rolling_mean

    idx, m = rolling_mean([1.0, 2.0, 3.0, 4.0, 6.0], 2)
    np.testing.assert_array_equal(idx, [1, 2, 3, 4])
    np.testing.assert_allclose(m, [1.5, 2.5, 3.5, 5.0])
    idx, m = rolling_mean([1.0, 2.0], 3)
    assert len(idx) == 0 and len(m) == 0
    idx, m = rolling_mean([1.0, 2.0], 1)
    np.testing.assert_array_equal(idx, [0, 1])
    np.testing.assert_allclose(m, [1.0, 2.0])
