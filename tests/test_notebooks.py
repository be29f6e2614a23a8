"""The notebooks and analysis scripts run and produce what they promise.

Each notebook in ``notebooks/`` is executed with nbclient in a Jupyter kernel that
runs this interpreter (``sys.executable``: the project's virtual environment, also on
a fresh clone). The kernel is kept alive after the last cell; the tests then read the
notebook's variables and the data of its figures back as JSON and check them against
values computed here, independently: the numpy twins of the rules
(``sdsnn_bio/structure/*.py``), hand recurrences, or the run folder's own records.
"""

import json
import math
import os
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import nbclient
import nbformat
import numpy as np
import pytest

from sdsnn_bio.structure import constraint, regeneration

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"

#: Name of the kernel spec written for the tests (it runs ``sys.executable``).
KERNEL = "sdsnn-bio-test"

#: Seconds a notebook cell may take.
CELL_TIMEOUT = 600


# ----------------------------------------------------------------- the kernel

@pytest.fixture(scope="session")
def kernel_dir(tmp_path_factory):
    """A kernel-spec folder with one spec whose kernel is this interpreter.

    Written per session (nothing is installed into the venv or the user's
    Jupyter folders), so a fresh clone needs no manual step.
    """
    from ipykernel.kernelspec import write_kernel_spec

    root = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(root / KERNEL, overrides={"display_name": "sdsnn-bio tests"})
    spec = json.loads((root / KERNEL / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable, spec["argv"]
    return root


class Kernel:
    """The live kernel of an executed notebook: read values back as JSON."""

    def __init__(self, client):
        self.client = client
        self.get("None")  # defines the converter in the kernel

    def run(self, code: str) -> str:
        """Run ``code`` in the kernel; return what it printed (an error fails the test)."""
        out, errors = [], []

        def hook(msg):
            kind, content = msg["header"]["msg_type"], msg["content"]
            if kind == "stream" and content["name"] == "stdout":
                out.append(content["text"])
            elif kind == "error":
                errors.append(re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(content["traceback"])))

        reply = self.client.kc.execute_interactive(code, output_hook=hook, timeout=120)
        if errors or reply["content"]["status"] != "ok":
            pytest.fail(f"inspection code failed in the notebook's kernel:\n{code}\n" + "\n".join(errors))
        return "".join(out)

    def get(self, expr: str):
        """The value of the Python expression ``expr`` in the kernel (arrays as lists)."""
        text = self.run(_JSON_HELPER + f"print(__nbtest_json({expr}))\n")
        return json.loads(text)

    def figure(self, name: str, arrays: bool = False) -> list:
        """The data of figure ``name``, drawn once: per axes, its labels, title, texts, lines,
        rectangles, step patches, collections and images (the arrays of collections and images
        too with ``arrays``)."""
        return self.get(f"__nbtest_figure({name}, arrays={arrays})")


_JSON_HELPER = '''
def __nbtest_json(obj):
    import json
    import numpy
    def convert(o):
        if isinstance(o, numpy.ndarray):
            return numpy.asarray(o, dtype=float).tolist() if o.dtype.kind not in "b" else o.tolist()
        if isinstance(o, numpy.generic):
            return o.item()
        if hasattr(o, "__array__"):   # Brian2 quantities and variable views
            return convert(numpy.asarray(o))
        raise TypeError(f"cannot convert {type(o)}")
    return json.dumps(obj, default=convert)

def __nbtest_figure(fig, arrays=False):
    import io
    import numpy
    from matplotlib.collections import PathCollection
    from matplotlib.patches import Rectangle, StepPatch
    fig.savefig(io.BytesIO(), format="png", dpi=30)   # it draws
    def values(a):
        return numpy.ma.filled(numpy.ma.asarray(a, dtype=float), numpy.nan).tolist()
    axes = []
    for ax in fig.axes:
        lines = {}
        for ln in ax.get_lines():
            lines.setdefault(ln.get_label(), []).append(
                [numpy.asarray(ln.get_xdata(), float).tolist(), numpy.asarray(ln.get_ydata(), float).tolist()])
        spans = [[p.get_label(), p.get_x(), p.get_x() + p.get_width()]
                 for p in ax.patches if isinstance(p, Rectangle)]
        stairs = {p.get_label(): [values(p.get_data().values), values(p.get_data().edges)]
                  for p in ax.patches if isinstance(p, StepPatch)}
        collections = []
        for c in ax.collections:
            entry = {"label": c.get_label(), "points": len(c.get_offsets()) if isinstance(c, PathCollection) else None}
            if arrays and c.get_array() is not None:
                entry["array"] = values(c.get_array())
            collections.append(entry)
        images = [values(im.get_array()) for im in ax.images] if arrays else len(ax.images)
        axes.append({"xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(), "title": ax.get_title(),
                     "texts": [t.get_text() for t in ax.texts], "lines": lines, "rectangles": spans,
                     "stairs": stairs, "collections": collections, "images": images})
    return axes
'''


@contextmanager
def executed(notebook: Path, kernel_dir: Path, env: dict | None = None):
    """Execute every cell of ``notebook``; yield a :class:`Kernel` on its still-running kernel."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    nb = nbformat.read(notebook, as_version=4)
    km = KernelManager(kernel_name=KERNEL, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir)]))
    client = nbclient.NotebookClient(nb, km=km, timeout=CELL_TIMEOUT, kernel_name=KERNEL,
                                     resources={"metadata": {"path": str(notebook.parent)}})
    kernel_env = dict(os.environ, MPLBACKEND="Agg", **(env or {}))
    try:
        with client.setup_kernel(env=kernel_env):
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
            yield Kernel(client)
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=True)


def titled(fig: list, start: str) -> dict:
    """The one axes of a figure from :meth:`Kernel.figure` whose title starts with ``start``."""
    found = [a for a in fig if a["title"].startswith(start)]
    assert len(found) == 1, (start, [a["title"] for a in fig])
    return found[0]


def lines_of(axes: dict, label: str):
    """``(x, y)`` of the one line called ``label`` on an axes from :meth:`Kernel.figure`."""
    found = axes["lines"].get(label, [])
    assert len(found) == 1, (label, sorted(axes["lines"]))
    return np.array(found[0][0]), np.array(found[0][1])


# -------------------------------------------------------------- the registry

#: Every notebook and the test that checks what it computes.
NOTEBOOK_TESTS = {
    "plasticity_dynamics": "test_plasticity_dynamics_synapse",
    "structure_development": "test_structure_development_history",
    "development_vs_data": "test_development_vs_data",
}


def test_every_notebook_has_its_test():
    """Each notebook gets a test that checks what it computes (add one with a new notebook)."""
    shipped = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
    assert shipped == sorted(NOTEBOOK_TESTS), "a notebook without a test, or a test without a notebook"
    for test in NOTEBOOK_TESTS.values():
        assert callable(globals().get(test)), test
    # the notebooks are the .ipynb files: no percent-format scripts beside them
    assert not list(NOTEBOOKS.glob("*.py"))


@pytest.mark.parametrize("name", sorted(NOTEBOOK_TESTS))
def test_notebook_committed_without_outputs(name):
    """Notebooks are stored without outputs (readable diffs; the tests execute them)."""
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (name, cell.source[:60])
    assert nb.metadata["kernelspec"]["name"] == "python3"


# ---------------------------------------------------- notebook 1: plasticity

@pytest.fixture(scope="module")
def plasticity(kernel_dir):
    with executed(NOTEBOOKS / "plasticity_dynamics.ipynb", kernel_dir) as kernel:
        yield kernel


def spine_twin(seen_w, N, M, start, rho, q0, periods):
    """The numpy twin of the notebook's layer: the state after every structural tick.

    ``seen_w[:, k]`` are the weights the tick ``k`` found (what the period before it
    left). Tick ``k`` runs the spine update and the constraint (method §2.1), then the
    regeneration (§2.3) and the pruning decision taken after period ``k - 1`` (§2.2),
    and zeroes pruned weights once pruning has started.
    """
    n = seen_w.shape[0]
    state = constraint.init_spines(seen_w[:, 1])   # after period 0, on its weights
    conn = np.ones(n)
    regen = regeneration.init_regeneration(n)
    history = np.zeros(n, bool)
    out = {key: np.full((n, periods + 1), np.nan) for key in
           ("w", "r_up", "r_lo", "c_up", "c_ret", "connected", "regen_k")}
    for k in range(1, periods + 1):
        decided = k - 1 >= start            # decisions were taken after period k - 1
        new = np.zeros(n, bool)
        if decided:                          # ranking on the spines as the last tick left them
            width = state.r_up + np.abs(state.r_lo)
            lo, hi = width.min(), width.max()
            score = conn * ((width - lo) / (hi - lo) if hi > lo else 0.5)
            order = np.argsort(score, kind="stable")[: math.floor(n * rho / 100)]
            new[order] = True
            new &= ~history
            history |= new
            q = min(q0 + 1.1 ** (k - 1 - start), 99.0)
            threshold = np.percentile(seen_w[:, k], q)
        state = constraint.update_spines(state, seen_w[:, k] * conn, n_streak=N)
        w = seen_w[:, k].copy()
        if k - 1 > N:
            w = np.minimum(np.maximum(w, state.r_lo), state.r_up)
        if decided:
            cand = (conn == 0) & (w > threshold)
            streak = np.where(cand & (regen.cand_prev != 0), regen.streak + 1, 0.0)
            regrow = streak > M
            conn = np.where(regrow, 1.0, conn)
            regen = regeneration.RegenerationState(np.where(regrow, 0.0, streak), cand.astype(float))
            conn = conn * (1 - new)
        if k - 1 >= start:
            w = w * conn
        for key, value in (("w", w), ("r_up", state.r_up), ("r_lo", state.r_lo), ("c_up", state.c_up),
                           ("c_ret", state.c_ret), ("connected", conn), ("regen_k", regen.streak)):
            out[key][:, k] = value
    return out, history


def test_plasticity_dynamics_synapse(plasticity):
    """The recorded spine state is the numpy twin's, tick for tick, and tells the story told."""
    k = plasticity
    c = k.get('dict(N=N_STREAK, M=REGEN_M, start=START, rho=RHO, q0=Q0, periods=PERIODS, steps=steps, '
              'T=float(T), dt=float(b2.defaultclock.dt), change=change, history=history, '
              'threshold=threshold, events=events)')
    P, N, M, S = c["periods"], c["N"], c["M"], c["start"]
    mon = k.get('{v: getattr(spine, v) for v in ("w", "r_up", "r_lo", "c_up", "c_ret", "connected", "regen_k")}')
    mon = {v: np.array(a) for v, a in mon.items()}
    seen = np.array(k.get("seen.w"))
    fine_t, fine_w = np.array(k.get("weight.t")), np.array(k.get("weight.w"))
    assert seen.shape == (5, P + 1) and mon["r_up"].shape == (5, P + 1)
    assert fine_w.shape == (5, (P + 1) * c["steps"])

    # the drive: each period adds its change (one increment per step) to what the tick left
    change = np.array(c["change"])
    np.testing.assert_allclose(seen[:, 1:], mon["w"][:, :-1] + change[:P].T, atol=1e-12)
    step = np.arange(1, fine_w.shape[1])
    inside = step % c["steps"] != 0                                  # steps without a tick
    np.testing.assert_allclose(np.diff(fine_w, axis=1)[:, inside],
                               change[step[inside] // c["steps"]].T / c["steps"], atol=1e-12)

    # tick for tick, the generated code agrees with the numpy twin of the rules
    twin, history = spine_twin(seen, N, M, S, c["rho"], c["q0"], P)
    for var, expected in twin.items():
        np.testing.assert_allclose(mon[var][:, 1:], expected[:, 1:], rtol=1e-12, atol=1e-12, err_msg=var)
    assert np.array_equal(history, c["history"])
    # the thresholds it set: the q(e)-th percentile of the weights after period e
    thr = np.array(c["threshold"], float)
    for e in range(P):
        if e < S:
            assert np.isnan(thr[e])
        else:
            q = min(c["q0"] + 1.1 ** (e - S), 99.0)
            assert thr[e] == pytest.approx(np.percentile(seen[:, e + 1], q), rel=1e-12)

    # the story the notebook tells happened: growth, constraint, retraction, pruning, regrowth
    r_up, conn = mon["r_up"][0], mon["connected"][0]
    ev = c["events"]
    grew = [t for t in range(2, P + 1) if r_up[t] > r_up[t - 1]]
    shrank = [t for t in range(2, P + 1) if r_up[t] < r_up[t - 1]]
    assert ev["grew"] == grew and ev["retracted"] == shrank
    assert grew[0] == 5          # above the bound at the ends of periods 2, 3, 4: N + 1 updates
    assert 4 in ev["clipped"]    # the constraint clips from the end of period N + 1 = 3
    assert ev["clipped"] == [t for t in range(1, P + 1) if conn[t] == conn[t - 1] == 1 and mon["w"][0][t] < seen[0][t]]
    assert max(grew[:3]) < min(shrank)
    assert ev["pruned"] == [S + 1] and list(np.flatnonzero(history)) == [0]
    (regrown,) = ev["regrown"]
    assert (conn[S + 1:regrown] == 0).all() and (conn[regrown:] == 1).all()
    # regrowth at the (M + 2)-th consecutive candidate period, with the weight it has
    clipped = np.minimum(np.maximum(seen[0], mon["r_lo"][0]), mon["r_up"][0])
    candidate = [t for t in range(S + 2, regrown + 1) if clipped[t] > thr[t - 1]]
    assert candidate == list(range(regrown - M - 1, regrown + 1))
    assert mon["w"][0][regrown] == clipped[regrown] > 0

    # the picture shows these arrays
    ax_w, ax_c, ax_width = k.figure("fig_synapse")
    ticks = np.arange(1, P + 1)
    for label, expected in (("r+", mon["r_up"][0]), ("r-", mon["r_lo"][0]),
                            ("w seen by the update", seen[0])):
        x, y = lines_of(ax_w, label)
        np.testing.assert_array_equal(x, ticks)
        np.testing.assert_array_equal(y, expected[1:])
    x, y = lines_of(ax_w, "w")
    np.testing.assert_allclose(x, fine_t / c["T"])
    np.testing.assert_array_equal(y, fine_w[0])
    x, y = lines_of(ax_w, "regeneration threshold g(e)")
    np.testing.assert_array_equal(x, np.arange(1, P + 1))
    np.testing.assert_array_equal(y, thr)
    assert [r[1:] for r in ax_w["rectangles"] if r[0] == "pruned"] == [[S + 1, regrown]]
    for label, var in (("growth streak c+", "c_up"), ("retraction streak c0", "c_ret"),
                       ("regeneration streak k", "regen_k")):
        np.testing.assert_array_equal(lines_of(ax_c, label)[1], mon[var][0][1:])
    for s in range(5):
        np.testing.assert_allclose(lines_of(ax_width, f"synapse {s}")[1],
                                   mon["r_up"][s][1:] + np.abs(mon["r_lo"][s][1:]))
    assert "periods" in ax_width["xlabel"] and ax_w["ylabel"].startswith("weight")


def test_plasticity_dynamics_rate(plasticity):
    """The neurotrophic rates follow the recurrences of method §2.4 and the numbers of §4.4."""
    k = plasticity
    got = k.get("dict(periods=periods, rates=rates, alive=alive, S=S)")
    periods = np.array(got["periods"])
    S = got["S"]
    assert periods[0] == S == 37 and periods[-1] == 299
    # independent recurrence: pruned units = max(before, floor(N rho / 100)), no regeneration
    units = {"conv2": 40, "fc1": 300}
    rho = {"conv2": 5.0, "fc1": 35.0}
    pruned = {"conv2": 0, "fc1": 0}
    want = {name: ([], []) for name in units}
    fc1_alive_before = 300
    for e in periods:
        for name in ("conv2", "fc1"):
            want[name][0].append(rho[name])
            pruned[name] = max(pruned[name], math.floor(units[name] * rho[name] / 100))
            a = units[name] - pruned[name]
            want[name][1].append(a)
            if name == "conv2":
                rho[name] += math.exp(-(e - S) / 5) * a / fc1_alive_before
            else:
                alpha = math.exp(-(e - S)) if e <= 60 else 0.00075
                rho[name] += alpha * a / 10
                fc1_alive_before = a
    for name in units:
        np.testing.assert_allclose(got["rates"][name], want[name][0], rtol=1e-12)
        np.testing.assert_array_equal(got["alive"][name], want[name][1])
    # method §4.4: fc1 35, 54.5, 59.54, 61.19, 61.77, 61.98 ... 64.09 at epoch 299; 192 and 2 pruned
    assert np.round(got["rates"]["fc1"][:6], 2).tolist() == [35, 54.5, 59.54, 61.19, 61.77, 61.98]
    assert round(got["rates"]["fc1"][-1], 2) == 64.09
    assert 300 - got["alive"]["fc1"][-1] == 192 and 40 - got["alive"]["conv2"][-1] == 2

    ax_rho, ax_alive, ax_factor = k.figure("fig_rate")
    for name in units:
        x, y = lines_of(ax_rho, name)
        np.testing.assert_array_equal(x, periods)
        np.testing.assert_allclose(y, got["rates"][name])
        np.testing.assert_allclose(lines_of(ax_alive, name)[1], 100 * np.array(want[name][1]) / units[name])
    np.testing.assert_allclose(lines_of(ax_factor, "hidden: exp(-(e - S)/5)")[1], np.exp(-(periods - S) / 5))
    alpha = np.where(periods <= 60, np.exp(-(periods - S).astype(float)), 0.00075)
    np.testing.assert_allclose(lines_of(ax_factor, "last: alpha(e)")[1], alpha)
    assert ax_rho["ylabel"] == "pruning rate rho (%)"


# ---------------------------------------------- notebook 2: structure over development

@pytest.fixture(scope="module")
def development(kernel_dir, tmp_path_factory):
    """The executed notebook, its output folder, and the run folder's own records."""
    from sdsnn_bio.records import RunFolder

    out = tmp_path_factory.mktemp("structure_development")
    with executed(NOTEBOOKS / "structure_development.ipynb", kernel_dir,
                  env={"SDSNN_NOTEBOOK_OUT": str(out)}) as kernel:
        run = RunFolder(out / "run")
        snap = run.load_snapshot("last")
        yield kernel, out, run, snap


def _snapshot_structure(snap, theta_dead=20.0):
    """fc1's live synapses as the last snapshot holds them: mask, live weights, live counts, alive units."""
    conn = snap.arrays["fc1/syn/connected"] != 0
    assert conn.size == 784 * 40
    pre, post = np.divmod(np.arange(conn.size), 40)       # all to all, presynaptic-major
    live = np.bincount(post[conn], minlength=40)
    return conn, pre, post, live, live >= theta_dead


@pytest.mark.slow
@pytest.mark.standalone
def test_structure_development_history(development):
    """The run, its history and every picture agree with the run folder's table and last snapshot."""
    k, out, run, snap = development
    table = run.read_table()
    got = k.get("dict(summary=summary, periods=periods, alive=alive, live=live, S=S, P=P, "
                "table={c: table[c] for c in table}, theta=cfg.layers[0].theta_dead, "
                "events={c: events[c].tolist() for c in events})")
    P, S = got["P"], got["S"]
    assert (P, S) == (16, 4) and list(table["period"]) == list(range(P))
    # the run's own records
    assert got["summary"] == run.read_summary() and 0.2 < got["summary"]["final_test_accuracy"] <= 1
    for c in table:
        np.testing.assert_array_equal(got["table"][c], table[c], err_msg=c)
    assert snap.period == P - 1

    # the history against the table: period e + 1 is the structure after period e's decisions
    periods, alive, live = np.array(got["periods"]), np.array(got["alive"], bool), np.array(got["live"])
    assert periods.tolist() == list(range(P + 1)) and alive.shape == (P + 1, 40)
    assert alive[0].all() and (live[0] == 784).all()
    np.testing.assert_array_equal(alive.sum(1)[1:], table["alive_fc1"])
    np.testing.assert_array_equal(live.sum(1)[1:], 784 * 40 - table["zeros_fc1"])
    ev = {c: np.array(v) for c, v in got["events"].items()}
    regen = [int(np.sum((ev["kind"] == "synapse_regenerated") & (ev["period"] == e + 1))) for e in range(P)]
    assert regen == table["regenerated_fc1"].astype(int).tolist()
    assert ev["period"][ev["kind"] == "unit_pruned"].min() == S + 1          # the pruning wave
    # dense before S, sparse after, and stable at the end (the notebook says so)
    assert (table["compression"][:S] == 0).all() and table["compression"][-1] > 0.2
    assert ev["period"].max() <= P - 4 and len(set(table["compression"][-4:])) == 1
    # the last snapshot (exact) is the structure of period P - 1, and (stable) of P
    conn, pre, post, n_live, alive_snap = _snapshot_structure(snap, got["theta"])
    np.testing.assert_array_equal(live[P - 1], n_live)
    np.testing.assert_array_equal(live[P], n_live)
    np.testing.assert_array_equal(alive[P], alive_snap)
    w = np.where(conn, snap.arrays["fc1/syn/w"], 0.0)
    width = snap.arrays["fc1/syn/r_up"] + np.abs(snap.arrays["fc1/syn/r_lo"])

    # the table's picture
    fig = k.figure("fig_table")
    for label, expected in (("test accuracy", 100 * table["test_accuracy"]),
                            ("compression", 100 * table["compression"]), ("fc1", table["alive_fc1"])):
        (ax,) = [a for a in fig if label in a["lines"]]
        x, y = lines_of(ax, label)
        np.testing.assert_array_equal(x, table["period"])
        np.testing.assert_allclose(y, expected)

    # units and events
    ax_units, ax_live, *rest = k.figure("fig_units", arrays=True)
    ax_events = next(a for a in rest if a["lines"])
    np.testing.assert_array_equal(np.ravel(ax_units["collections"][0]["array"]), alive.T.ravel().astype(float))
    np.testing.assert_array_equal(np.ravel(ax_live["collections"][0]["array"]), live.T.ravel())
    for kind in ("unit_pruned", "unit_revived", "synapse_pruned", "synapse_regenerated"):
        sel = ev["kind"] == kind
        (x, y), = ax_events["lines"][f"{kind} ({int(sel.sum())})"]
        np.testing.assert_array_equal(x, ev["period"][sel])
        np.testing.assert_array_equal(y, ev["index"][sel])

    # distributions: the histogram of period P - 1 is the snapshot's, counted here
    hist = k.get('dict(w=[edges_w, counts_w], width=[edges_width, counts_width])')
    fig = k.figure("fig_dist", arrays=True)
    ax_w, ax_width = titled(fig, "fc1: weights"), titled(fig, "fc1: spine widths")
    for var, values, ax in (("w", w[conn], ax_w), ("width", width[conn], ax_width)):
        edges, counts = (np.array(a) for a in hist[var])
        assert counts.shape == (P + 1, len(edges) - 1)
        np.testing.assert_array_equal(counts.sum(1), live.sum(1))
        mine = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)[0]
        np.testing.assert_array_equal(counts[P - 1], mine)
        shown = np.where(counts.T > 0, counts.T, np.nan)                 # log scale: empty bins blank
        np.testing.assert_array_equal(np.ravel(ax["collections"][0]["array"]), shown.ravel())

    # receptive fields: period P's tiles are the snapshot's live weights within the keyframe's error
    from sdsnn_bio.viz import field_mosaic

    fp = k.get("dict(periods=field_periods, err=h.quantisation_error(P, 'fc1', 'w'), "
               "values=[structures[e].values_period for e in field_periods])")
    assert fp["periods"] == [0, S + 1, S + 4, P]
    fields = [a for a in k.figure("fig_fields", arrays=True) if a["title"].startswith("period")]
    assert [a["title"].split(":")[0] for a in fields] == [f"period {e}" for e in fp["periods"]]
    for a, e in zip(fields, fp["periods"]):
        assert a["title"].split("\n")[0] == f"period {e}: {int(alive[e].sum())} alive"
        assert len(a["images"]) == (1 if alive[e].all() else 2)      # pruned units greyed
    mosaic, _ = field_mosaic(w.reshape(784, 40))
    np.testing.assert_allclose(np.array(fields[-1]["images"][0]), mosaic, atol=fp["err"] * 1.001 + 1e-7)
    assert fp["err"] > 0 and fp["values"][-1] == P

    # the mask and the spine widths of the final structure
    fig = k.figure("fig_mask", arrays=True)
    ax_mask, ax_spine = titled(fig, "fc1 mask at period"), titled(fig, "spine widths")
    np.testing.assert_array_equal(np.array(ax_mask["images"][0]), conn.reshape(784, 40).astype(float))
    wmax = k.get("h.quantisation_error(P, 'fc1', 'r_up') + h.quantisation_error(P, 'fc1', 'r_lo')")
    spine = np.array(ax_spine["images"][0])
    np.testing.assert_allclose(spine[conn.reshape(784, 40)], width[conn], atol=wmax * 1.001 + 1e-6)
    assert np.isnan(spine[~conn.reshape(784, 40)]).all()

    # the surviving network: edges carry the live synapses between alive units
    out_conn = snap.arrays["out/syn/connected"] != 0
    fig = k.figure("fig_network", arrays=True)
    for a, e in ((titled(fig, "period 0"), 0), (titled(fig, f"period {P}"), P)):
        lc = {c["label"]: np.sum(c["array"]) for c in a["collections"] if "->" in c["label"]}
        nodes = {c["label"]: c["points"] for c in a["collections"] if c["points"] is not None}
        if e == 0:
            assert lc == {"input -> fc1": 784 * 40, "fc1 -> out": 400}
            assert nodes["fc1 alive"] == 40 and nodes["fc1 dead"] == 0
        else:
            assert lc == {"input -> fc1": n_live[alive_snap].sum(),
                          "fc1 -> out": int(out_conn.reshape(40, 10)[alive_snap].sum())}
            assert nodes["fc1 alive"] == alive_snap.sum() and nodes["fc1 dead"] == 40 - alive_snap.sum()

    # the animation: one frame per period; the frame of P - 1 is the snapshot's (exact)
    from PIL import Image

    with Image.open(out / "fc1_fields.gif") as gif:
        assert gif.n_frames == P + 1
    frame = k.get(f"[live_matrix(h.structure_at({P - 1})['fc1']), frame({P - 1})[1]]")
    np.testing.assert_array_equal(np.array(frame[0]), w.reshape(784, 40).astype(np.float32))
    np.testing.assert_array_equal(frame[1], alive_snap)

    # NetworkX: degrees before and after pruning, from the snapshot's mask
    deg = k.get("{e: {k: v for k, v in d.items()} for e, d in degrees.items()}")
    assert set(deg["0"]["fc1 in"]) == {784} and set(deg["0"]["input out"]) == {40}
    np.testing.assert_array_equal(deg[str(P)]["fc1 in"], n_live)
    np.testing.assert_array_equal(deg[str(P)]["input out"], np.bincount(pre[conn], minlength=784))
    ax_in, ax_out = k.figure("fig_degrees")
    for e in (0, P):
        np.testing.assert_array_equal(ax_in["stairs"][f"period {e}"][0],
                                      np.histogram(deg[str(e)]["fc1 in"], bins=np.arange(0, 834, 49))[0])
        np.testing.assert_array_equal(ax_out["stairs"][f"period {e}"][0],
                                      np.histogram(deg[str(e)]["input out"], bins=np.arange(42) - 0.5)[0])
    import networkx as nx

    g = nx.read_graphml(out / f"structure_period_{P:04d}.graphml")
    assert g.number_of_edges() == conn.sum() + out_conn.sum() and g.number_of_nodes() == 784 + 40 + 10


# ------------------------------------------- notebook 3: development compared with data

@pytest.fixture(scope="module")
def development_data(kernel_dir, tmp_path_factory):
    """The executed notebook and its run folder."""
    out = tmp_path_factory.mktemp("development_vs_data")
    with executed(NOTEBOOKS / "development_vs_data.ipynb", kernel_dir,
                  env={"SDSNN_NOTEBOOK_OUT": str(out)}) as kernel:
        yield kernel, out / "run"


@pytest.mark.slow
@pytest.mark.standalone
def test_development_vs_data(development_data):
    """The notebook's ages are the model's time axis, its comparisons are those of
    ``sdsnn_bio.neuro`` run here on its run folder, and its figures show the folder's records."""
    from dataclasses import asdict

    from scipy import stats

    from sdsnn_bio.config import find_model, load_config
    from sdsnn_bio.history import History
    from sdsnn_bio.neuro import run_record
    from sdsnn_bio.neuro.compare import compare_record
    from sdsnn_bio.records import RunFolder

    k, run_dir = development_data
    run = RunFolder(run_dir)
    table = run.read_table()
    P = len(table["period"])

    # ---- the ages: the model's time axis, in the table, run.json, the notebook and the record
    t = load_config(find_model("cortex_small")).time
    want = t.age_start_days + (np.arange(P) + 1) * t.days_per_period
    got = k.get("dict(P=P, ages=ages, axis=axis, rec_ages=rec.ages, alive_ages=rec.alive_ages, "
                "periods=cfg.schedule.periods)")
    assert P == got["P"] == got["periods"] == 230
    np.testing.assert_array_equal(table["period"], np.arange(P))
    np.testing.assert_array_equal(table["age_days"], want)
    np.testing.assert_array_equal(got["ages"], want)
    assert want[0] == 1 and want[-1] == 230 == got["axis"]["final_age_days"]
    assert got["axis"]["compression"] == t.days_per_period * 86400 / t.activity_s == 172800
    rec = run_record(run_dir)
    # history period e is the structure at the end of day e, one look per period: the finished
    # run's final record (period P, the same structure as P - 1) is not a look of its own
    np.testing.assert_array_equal(rec.periods, np.arange(P))
    np.testing.assert_array_equal(rec.ages, want)
    np.testing.assert_array_equal(got["rec_ages"], rec.ages)
    np.testing.assert_array_equal(got["alive_ages"], np.concatenate([[t.age_start_days], want]))
    # the density is the surviving tissue's (sites between living neurons); all sites beside it
    np.testing.assert_allclose(rec.density, table["spine_density_alive"], atol=1e-6)
    np.testing.assert_allclose(rec.density_all_sites, table["spine_density"], atol=1e-6)

    # ---- every comparison: the notebook's equal sdsnn_bio.neuro's, run here on its folder
    rows, details = compare_record(rec)
    mine = json.loads(json.dumps([asdict(r) for r in rows]))
    theirs = k.get("[__import__('dataclasses').asdict(r) for r in rows]")
    assert theirs == mine
    assert k.get("details['persistence']") == json.loads(json.dumps(details["persistence"]))
    assert k.get("details['density']") == json.loads(json.dumps(details["density"], default=float))
    assert {r.dataset for r in rows} == {"synapse_density", "spine_turnover", "spine_persistence", "spine_size",
                                         "neuron_death"}
    # 230 days cover every measured age: no comparison is missing
    assert not [r.quantity for r in rows if r.simulated.startswith(("not covered", "n/a"))]
    persistent = [r for r in rows if r.dataset == "spine_persistence"]
    zuo = [r for r in rows if r.dataset == "spine_turnover" and "2 weeks" in r.quantity]
    assert len(persistent) == 4 and len(zuo) == 4
    # the report written beside the run holds the same rows
    report = json.loads((run_dir.parent / "compare" / "compare.json").read_text())
    assert report["rows"] == mine
    # values checked against the table: neuron death and the live volumes
    died = [r for r in rows if r.dataset == "neuron_death"]
    assert died and all(r.value == pytest.approx(100 * (1 - table["n_alive"][-1] / 400), rel=1e-12) for r in died)
    snap = run.load_snapshot("last")
    assert snap.period == P - 1
    a = snap.arrays
    live = a["exc/syn/connected"] != 0
    # the sizes are the last snapshot's exact volumes of the live spines (not the 8-bit keyframe)
    assert rec.sizes_source == f"snapshot of period {P - 1} (exact)"
    np.testing.assert_array_equal(rec.sizes, a["exc/syn/vol"][live])
    np.testing.assert_array_equal(rec.presence[P - 1], live)

    # ---- figures: structure over age
    fig = k.figure("fig_structure")
    ax = titled(fig, "spine density")
    for label, col in (("all sites", "spine_density"), ("between living neurons", "spine_density_alive")):
        x, y = lines_of(ax, label)
        np.testing.assert_array_equal(x, table["age_days"])
        np.testing.assert_allclose(y, 100 * table[col])
    ax = titled(fig, "neurons alive")
    for label, col in (("excitatory", "n_alive_exc"), ("inhibitory", "n_alive_inh")):
        x, y = lines_of(ax, label)
        np.testing.assert_array_equal(x, table["age_days"])
        np.testing.assert_array_equal(y, table[col])
    death_age = a["trophic/death_age"]
    dead = np.flatnonzero(np.isfinite(death_age))
    ax = titled(fig, f"neuron deaths: {dead.size} of 400")
    points = {}
    for kind, sel in (("excitatory", dead < 320), ("inhibitory", dead >= 320)):
        x, y = lines_of(ax, f"{kind} ({int(sel.sum())})")
        np.testing.assert_array_equal(y, dead[sel])
        np.testing.assert_array_equal(x, death_age[dead[sel]])
        points[kind] = x
    # each death at its age: the table's died column, day by day
    deaths = np.concatenate(list(points.values()))
    np.testing.assert_array_equal([np.sum(deaths == age) for age in table["age_days"]], table["died"])
    assert dead.size == 400 - table["n_alive"][-1]

    # the volume heat map and the event raster: the structural history's
    h = History(run_dir)
    periods, edges, counts = h.histogram("exc", "width")
    np.testing.assert_array_equal(periods, np.arange(P + 1))
    fig = k.figure("fig_history", arrays=True)
    ax = titled(fig, "volumes of the live spines")
    shown = np.where(counts[:P].T > 0, counts[:P].T, np.nan)
    np.testing.assert_array_equal(np.ravel(ax["collections"][0]["array"]), shown.ravel())
    np.testing.assert_array_equal(counts[:P].sum(1), table["spines"])
    vol = a["exc/syn/vol"][live]
    np.testing.assert_array_equal(counts[P - 1], np.histogram(np.clip(vol, edges[0], edges[-1]), bins=edges)[0])
    ev = h.events("exc")
    ax = titled(fig, "spines formed")
    per_day = {}
    for kind, col in (("synapse_regenerated", "formed"), ("synapse_pruned", "eliminated")):
        sel = ev["kind"] == kind
        (x, y), = ax["lines"][f"{kind} ({int(sel.sum())})"]
        np.testing.assert_array_equal(y, ev["index"][sel])
        np.testing.assert_array_equal(x, want[np.minimum(ev["period"][sel], P - 1)])
        # history period e's events are the changes of the mask from the end of day e - 1 to the end
        # of day e: the table's formed / eliminated of day e, on every day no neuron died (the
        # table counts from the mask after the deaths' removals)
        per_day[kind] = np.bincount(ev["period"][sel], minlength=P + 1)
        quiet = table["died"][1:] == 0
        assert quiet.sum() >= P - 1 - 10
        np.testing.assert_array_equal(per_day[kind][1:P][quiet], table[col][1:][quiet])
        assert per_day[kind][P] == 0
    np.testing.assert_array_equal(per_day["synapse_regenerated"][1:P] - per_day["synapse_pruned"][1:P],
                                  np.diff(table["spines"]))

    # ---- figures: every comparison, the run's curves from the record
    fig = k.figure("fig_compare")
    ax = titled(fig, "synapse density overshoot")
    x, y = lines_of(ax, "simulated")
    np.testing.assert_array_equal(x, rec.ages)
    np.testing.assert_allclose(y, rec.density / details["density"]["adult_level"], rtol=1e-12)
    assert max(y) == pytest.approx(details["density"]["peak_ratio"], rel=1e-12)
    ax = titled(fig, "spine turnover per two weeks")
    t14 = details["turnover_14d"]
    for label, key in (("simulated formation", "formation"), ("simulated elimination", "elimination")):
        x, y = lines_of(ax, label)
        np.testing.assert_array_equal(x, t14["age"])
        np.testing.assert_allclose(y, 100 * np.array(t14[key]), rtol=1e-12)
    ax = titled(fig, "persistent spines")
    x, y = lines_of(ax, "simulated")
    np.testing.assert_allclose(y, [100 * f for f in details["persistence"]["fraction"]], rtol=1e-12)
    np.testing.assert_allclose(y, [r.value for r in persistent], rtol=1e-12)
    ax = titled(fig, "live spine volumes")
    f = details["sizes"]
    (fit_label,) = [s for s in ax["lines"] if s.startswith("log-normal fit")]
    x, y = lines_of(ax, fit_label)
    np.testing.assert_allclose(y, stats.lognorm.pdf(x, f["shape"], scale=f["scale"]), rtol=1e-9)
    assert x[0] == pytest.approx(vol.min(), rel=1e-6) and x[-1] == pytest.approx(vol.max(), rel=1e-6)
    ax = titled(fig, "neuron death")
    x, y = lines_of(ax, "simulated")
    np.testing.assert_array_equal(x, np.concatenate([[0.0], want]))
    np.testing.assert_allclose(y, np.concatenate([[400], table["n_alive"]]) / 400, rtol=1e-12)
    # the captions printed under the figures carry every dataset's sources
    caps = k.get("captions")
    assert sorted(caps) == sorted(report["figures"]) == sorted(
        ["density.png", "turnover.png", "persistence.png", "sizes.png", "neuron_death.png"])
    for r in rows:
        if r.source != "-":
            name = {"synapse_density": "density.png", "spine_turnover": "turnover.png",
                    "spine_persistence": "persistence.png", "spine_size": "sizes.png",
                    "neuron_death": "neuron_death.png"}[r.dataset]
            assert r.source.split(",")[0].split(";")[0] in caps[name], (r.source, name)


# ------------------------------------------------------------------ analysis

def test_compare_runs_rejects_unfinished_folder(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "analysis" / "compare_runs.py"), str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "not a finished run folder" in r.stderr
