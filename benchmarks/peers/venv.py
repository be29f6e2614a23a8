"""The snnTorch peer's own virtual environment, created and installed on first use.

It lives in the project cache (:func:`sdsnn_bio.devices.cache_root`, ``$SDSNN_CACHE``
or ``~/.cache/sdsnn-bio``) under ``peers/snntorch-venv`` and is reused while its
stamp (the requirements it was installed with) is unchanged. Only PyPI is reachable
from the project's machines, so torch comes from PyPI (its Linux wheel runs on the
CPU; the benchmark sets no GPU) and snntorch with it.
"""

import os
import subprocess
import sys
from pathlib import Path

#: What the peer's environment holds (pip requirement strings).
REQUIREMENTS = ("torch", "snntorch", "numpy")
STAMP = ".sdsnn-peer-stamp"


def venv_path(cache: str | os.PathLike | None = None) -> Path:
    """Folder of the snnTorch virtual environment.

    Parameters
    ----------
    cache : path-like, optional
        The project cache folder; by default ``$SDSNN_CACHE`` if set and not
        empty, else ``~/.cache/sdsnn-bio`` (as :func:`sdsnn_bio.devices.cache_root`).

    Returns
    -------
    Path
        ``<cache>/peers/snntorch-venv``.
    """
    if cache is None:
        cache = os.environ.get("SDSNN_CACHE") or Path.home() / ".cache" / "sdsnn-bio"
    return Path(cache).expanduser().resolve() / "peers" / "snntorch-venv"


def venv_python(venv: Path) -> Path:
    """The Python interpreter of ``venv``."""
    return Path(venv) / "bin" / "python"


def stamp_text(requirements=REQUIREMENTS) -> str:
    """What the stamp file of an installed environment holds."""
    return "\n".join(sorted(requirements)) + "\n"


def is_ready(venv: Path, requirements=REQUIREMENTS) -> bool:
    """Whether ``venv`` has an interpreter and was installed with ``requirements``."""
    stamp = Path(venv) / STAMP
    return venv_python(venv).exists() and stamp.exists() and stamp.read_text() == stamp_text(requirements)


def ensure_venv(venv: Path | None = None, requirements=REQUIREMENTS, log=print) -> Path:
    """Create and install the snnTorch environment unless it is ready; return its Python.

    Prints what it does (the first install downloads torch: several minutes).

    Raises
    ------
    RuntimeError
        When ``venv`` or ``pip install`` fails, with pip's last output.
    """
    venv = venv_path() if venv is None else Path(venv)
    if is_ready(venv, requirements):
        return venv_python(venv)
    base = getattr(sys, "_base_executable", None) or sys.executable
    if not venv_python(venv).exists():
        log(f"peers: creating the snnTorch environment {venv} (with {base})")
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
    log(f"peers: installing {' '.join(requirements)} from PyPI into {venv} "
        "(torch's wheel and its libraries: a few GB, several minutes on first use; reused after)")
    p = subprocess.run([str(venv_python(venv)), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        *requirements], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"installing {' '.join(requirements)} into {venv} failed "
                           f"(pip exit {p.returncode}):\n{p.stdout[-3000:]}")
    (venv / STAMP).write_text(stamp_text(requirements))
    log(f"peers: snnTorch environment ready ({venv})")
    return venv_python(venv)
