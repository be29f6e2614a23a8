"""The notebooks and analysis scripts run and produce what they promise."""

import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sdsnn_bio.records import RunFolder

REPO = Path(__file__).resolve().parent.parent


def test_every_notebook_has_its_test():
    """Each notebook gets a test that checks what it computes (add one with a new notebook)."""
    assert sorted(p.stem for p in (REPO / "notebooks").glob("*.py")) == ["plasticity_dynamics"]


def line_data(fig, label):
    """``(x, y)`` of the line called ``label`` on any axes of a figure (twin axes included)."""
    lines = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_label() == label]
    assert len(lines) == 1, (label, [ln.get_label() for ax in fig.axes for ln in ax.get_lines()])
    return np.asarray(lines[0].get_xdata(), float), np.asarray(lines[0].get_ydata(), float)


@pytest.mark.slow
@pytest.mark.standalone
def test_plasticity_dynamics_notebook(tmp_path, monkeypatch, capsys):
    """The notebook trains tiny_dense for 10 periods; check what it computed and drew."""
    monkeypatch.setenv("NOTEBOOK_OUT", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    g = runpy.run_path(str(REPO / "notebooks" / "plasticity_dynamics.py"), run_name="__main__")
    printed = capsys.readouterr().out
    cfg, table, summary = g["cfg"], g["table"], g["summary"]
    periods, S = cfg.schedule.periods, cfg.schedule.structure_start
    assert periods == 10 and list(table["period"]) == list(range(periods))
    # the table it read: no compression before structure_start, some at the end
    assert np.all(table["compression"][table["period"] < S] == 0)
    assert table["compression"][-1] > 0.1
    # a plausible accuracy (10 classes: chance is 0.1), as the run's own records say
    run = RunFolder(tmp_path / "run")
    assert 0.2 < summary["final_test_accuracy"] <= 1.0
    assert summary == run.read_summary()
    # the live synapses it printed are those of the last snapshot
    snap = run.load_snapshot("last")
    assert snap.period == periods - 1
    conn = snap.arrays["fc1/syn/connected"]
    live = int(conn.sum())
    assert g["n_live"] == live and 0 < live < conn.size == 784 * 40
    assert f"period {periods - 1}: live synapses {live} of {conn.size}" in printed
    width = snap.arrays["fc1/syn/r_up"] + np.abs(snap.arrays["fc1/syn/r_lo"])
    np.testing.assert_array_equal(g["width"], width)
    # the figures show the table and the snapshot
    x, acc = line_data(g["fig_development"], "test accuracy")
    np.testing.assert_array_equal(x, table["period"])
    np.testing.assert_allclose(acc, 100 * table["test_accuracy"])
    x, comp = line_data(g["fig_development"], "compression")
    np.testing.assert_allclose(comp, 100 * table["compression"])
    alive = [ln for ln in g["ax_alive"].get_lines() if ln.get_label() == "fc1"]
    np.testing.assert_array_equal(alive[0].get_ydata(), table["alive_fc1"])
    heights = [patch.get_height() for patch in g["ax_spines"].patches]
    assert sum(heights) == live
    for name in ("development.png", "spine_widths.png"):
        assert (tmp_path / name).stat().st_size > 5000, name


def test_compare_runs_rejects_unfinished_folder(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "analysis" / "compare_runs.py"), str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "not a finished run folder" in r.stderr
