"""A non-editable install works on its own: it lists and runs the shipped models.

The repository's sources are copied outside the repository and installed with
``pip install`` (not ``-e``) into a fresh virtual environment. Offline and fast:
no build isolation and no dependencies are installed; a ``.pth`` file makes the
project environment's packages (brian2, numpy, setuptools, mlxtend ...)
visible to the new environment, after its own site-packages, so the package
itself can only come from the install. Everything then runs from another
folder without ``PYTHONPATH``.
"""

import csv
import math
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.standalone]

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = "Scripts" if os.name == "nt" else "bin"


def _source_files() -> list[Path]:
    """The repository's files as a checkout has them: tracked and untracked, not ignored."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=REPO, capture_output=True, check=True, timeout=60).stdout
        files = [Path(p) for p in out.decode().split("\0") if p]
    except (OSError, subprocess.SubprocessError):   # no git: what a build reads
        files = [Path(p) for p in ("pyproject.toml", "README.md", "LICENSE")]
        files += [p.relative_to(REPO) for p in (REPO / "sdsnn_bio").rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts]
    return files


def _copy_sources(dst: Path) -> Path:
    for rel in _source_files():
        src = REPO / rel
        if src.is_symlink() or not src.is_file():   # the models/ link, files deleted in the tree
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst / rel)
    return dst


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH")
           and not k.startswith("PIP_")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PIP_NO_INDEX="1")
    return env


def _run(cmd, cwd, env, timeout=600):
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert res.returncode == 0, f"{cmd} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python, sdsnn-bio script, folder to run in, environment) of a fresh non-editable install."""
    root = tmp_path_factory.mktemp("install")
    assert REPO not in root.parents and root != REPO
    env = _clean_env()
    src = _copy_sources(root / "src")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=root, env=env, timeout=120)
    py = venv / VENV_BIN / "python"
    purelib = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        cwd=root, env=env).strip())
    # the project environment's packages, after the new environment's own site-packages; a path
    # in a .pth file is not a site folder, so its own .pth files (the editable install of the
    # repository among them) stay inactive, but for setuptools' distutils shim, which brian2
    # needs on Python >= 3.12 and which an install with dependencies would have
    deps = Path(sysconfig.get_paths()["purelib"])
    lines = [str(deps)]
    shim = deps / "distutils-precedence.pth"
    if shim.is_file():
        lines += [line for line in shim.read_text().splitlines() if line.startswith("import")]
    (purelib / "_sdsnn_test_deps.pth").write_text("\n".join(lines) + "\n")
    _run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-build-isolation",
          "--no-index", "--ignore-installed", "--quiet", src], cwd=root, env=env)
    work = root / "elsewhere"
    work.mkdir()
    return py, venv / VENV_BIN / "sdsnn-bio", work, env


def test_the_installed_copy_is_imported(installed):
    py, _, work, env = installed
    out = _run([py, "-c", "import sdsnn_bio, sdsnn_bio.config as c; print(sdsnn_bio.__file__); "
                          "print(c.models_dir())"], cwd=work, env=env)
    pkg_file, models = (Path(line) for line in out.splitlines()[-2:])
    venv = py.parent.parent
    assert venv in pkg_file.parents, f"imported {pkg_file}, not the installed copy"
    assert REPO not in pkg_file.resolve().parents
    assert venv in models.parents and models.is_dir() and not models.is_symlink()
    shipped = sorted(p.name for p in (REPO / "sdsnn_bio" / "models").glob("*.toml"))
    assert shipped and sorted(p.name for p in models.glob("*.toml")) == shipped


def test_installed_cli_lists_and_runs_the_models(installed, tmp_path):
    py, script, work, env = installed
    listing = _run([script, "list"], cwd=work, env=env)
    names = {line.split()[0] for line in listing.splitlines() if line.strip()}
    shipped = {p.stem for p in (REPO / "sdsnn_bio" / "models").glob("*.toml")}
    assert {"tiny_dense", "mnist5k_main"} <= shipped and shipped <= names, listing

    out = tmp_path / "run"
    log = _run([script, "run", "tiny_dense", "--periods", "1", "--device", "cpp_standalone", "--out", out],
               cwd=work, env=env)
    assert "tiny_dense" in log
    with open(out / "periods.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1, rows
    row = rows[0]
    assert int(row["period"]) == 0
    for key in ("train_accuracy", "test_accuracy"):
        value = float(row[key])
        assert math.isfinite(value) and 0.0 <= value <= 1.0, (key, row[key])
    assert (out / "config.toml").is_file() and (out / "run.json").is_file()
    assert not (work / "runs").exists() or not any((work / "runs").iterdir())
