"""The notebooks and analysis scripts run and produce what they promise."""

import runpy
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.standalone
@pytest.mark.parametrize("notebook", sorted((REPO / "notebooks").glob("*.py")), ids=lambda p: p.stem)
def test_notebook_runs(notebook, tmp_path, monkeypatch):
    monkeypatch.setenv("NOTEBOOK_OUT", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    runpy.run_path(str(notebook), run_name="__main__")
    pngs = list(tmp_path.glob("*.png"))
    assert pngs and all(p.stat().st_size > 5000 for p in pngs)


def test_compare_runs_rejects_unfinished_folder(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "analysis" / "compare_runs.py"), str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "not a finished run folder" in r.stderr
