"""Choosing and preparing the Brian2 device a network is built for.

Three devices are supported:

``runtime``
    Brian2's runtime mode with the Cython code-generation target. Compiled
    extensions are cached under the project cache folder (see
    :func:`cache_root`), so only the first build of a model pays the
    Cython compile time (about 20 s).
``cpp_standalone``
    A C++ project is generated, compiled and run as one binary. With one
    thread it gives the same spike trains as ``runtime`` for the same
    ``seed()``.
``cuda_standalone``
    The brian2cuda device (optional extra ``sdsnn-bio[cuda]``). The code can be
    generated and compiled with ``nvcc`` on a machine without a GPU (see
    :func:`configure_cuda`); running it needs a GPU with a CUDA-13 capable
    driver.

Typical use::

    reset_brian()
    directory = set_up_device("cpp_standalone", "build/net")
    ...  # build the network, call net.run(...)
    if is_standalone("cpp_standalone"):
        device.build(directory=directory, compile=True, run=True)

Notes
-----
``set_device(..., build_on_run=False, directory=...)`` does **not** use the
directory: Brian2 only keeps it for the automatic build that a ``run()`` call
triggers when ``build_on_run=True``. With an explicit ``device.build()`` the
caller must pass ``directory=`` again, otherwise Brian2 writes to ``./output``.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys

from sdsnn_bio.errors import DeviceError

__all__ = [
    "DEVICES",
    "MIN_COMPUTE_CAPABILITY",
    "DEFAULT_COMPUTE_CAPABILITY",
    "check_device",
    "is_standalone",
    "cache_root",
    "quiet_brian",
    "reset_brian",
    "cuda_root",
    "nvcc_path",
    "gpu_available",
    "curand_paths",
    "cuda_build_unavailable",
    "configure_cuda",
    "use_compiler_cache",
    "set_up_device",
]

#: Names of the Brian2 devices this package can build a network for.
DEVICES = ("runtime", "cpp_standalone", "cuda_standalone")

#: Lowest compute capability that CUDA 13's nvcc can still target (sm_75).
MIN_COMPUTE_CAPABILITY = 7.5

#: Compute capability used when no GPU can be detected: H100 and H200 (sm_90).
DEFAULT_COMPUTE_CAPABILITY = 9.0

_STANDALONE = ("cpp_standalone", "cuda_standalone")

# Host-compiler language standards that CUDA 13's Thrust/CUB/libcu++ reject.
_OLD_CXX_STD = {
    "-std=c++98", "-std=c++03", "-std=c++0x", "-std=c++11", "-std=c++14", "-std=c++1y",
    "-std=gnu++98", "-std=gnu++03", "-std=gnu++0x", "-std=gnu++11", "-std=gnu++14",
    "-std=gnu++1y",
}
# Host flags that tie a binary to the CPU it was compiled on.
_NATIVE_FLAGS = {"-march=native", "-mtune=native", "-mcpu=native"}


# --------------------------------------------------------------------------- names


def check_device(name):
    """Check that ``name`` is one of the supported devices.

    Parameters
    ----------
    name : str
        Device name to check.

    Returns
    -------
    str
        ``name`` unchanged.

    Raises
    ------
    DeviceError
        If ``name`` is not in :data:`DEVICES`; the message names it and lists
        the valid devices.
    """
    if not isinstance(name, str) or name not in DEVICES:
        raise DeviceError(
            f"unknown device {name!r}: valid devices are {', '.join(DEVICES)}"
        )
    return name


def is_standalone(name):
    """Tell whether a device generates a standalone project.

    Parameters
    ----------
    name : str
        A device name from :data:`DEVICES`.

    Returns
    -------
    bool
        ``True`` for ``cpp_standalone`` and ``cuda_standalone``: after
        ``Network.run`` the caller must call ``device.build(directory=...)``.

    Raises
    ------
    DeviceError
        If ``name`` is not a known device.
    """
    return check_device(name) in _STANDALONE


# --------------------------------------------------------------------------- Brian2 state


def cache_root():
    """Return the project cache folder, creating it if needed.

    Returns
    -------
    str
        ``$SDSNN_CACHE`` if that variable is set and not empty, else
        ``~/.cache/sdsnn-bio``.
    """
    root = os.environ.get("SDSNN_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "sdsnn-bio"
    )
    root = os.path.abspath(os.path.expanduser(root))
    os.makedirs(root, exist_ok=True)
    return root


def quiet_brian():
    """Stop Brian2 from writing log and script copies, and cache Cython code.

    Sets ``prefs.logging.file_log``, ``prefs.logging.save_script`` and
    ``prefs.logging.std_redirection`` to ``False`` and points
    ``prefs.codegen.runtime.cython.cache_dir`` at ``<cache_root()>/cython``.

    Notes
    -----
    Brian2 opens its debug log file when it is imported; this function only
    stops later writes that depend on the preferences.
    """
    from brian2 import prefs

    prefs.logging.file_log = False
    prefs.logging.save_script = False
    prefs.logging.std_redirection = False
    cython_dir = os.path.join(cache_root(), "cython")
    os.makedirs(cython_dir, exist_ok=True)
    prefs.codegen.runtime.cython.cache_dir = cython_dir


def reset_brian():
    """Return Brian2 to a clean state before the next network is built.

    Re-initialises every Brian2 device (a standalone device forgets the
    project it collected), makes ``runtime`` the active device, resets all
    preferences to their defaults (brian2cuda's too, and its cached CUDA/GPU
    detection), applies :func:`quiet_brian` and sets ``defaultclock.dt`` to
    0.1 ms.

    Notes
    -----
    Safe to call any number of times, also after a ``cpp_standalone`` or
    ``cuda_standalone`` build. Existing Brian2 objects from earlier builds
    must not be used afterwards.
    """
    from brian2 import BrianObject, defaultclock, ms, prefs, set_device
    from brian2.devices.device import all_devices, previous_devices

    for dev in list(all_devices.values()):
        dev.reinit()
    set_device("runtime")
    # set_device pushes the previous device on a stack; keep it from growing.
    del previous_devices[:]
    prefs.reset_to_defaults()
    if "brian2cuda" in sys.modules:
        from brian2cuda.utils import gputools

        gputools.reset_cuda_installation()
        gputools.reset_gpu_selection()
    from . import unity

    unity.reset()
    quiet_brian()
    BrianObject._scope_current_key = 0
    defaultclock.dt = 0.1 * ms


# --------------------------------------------------------------------------- CUDA discovery


def _is_script(path):
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == b"#!"
    except OSError:
        return False


def _is_cuda_root(path):
    """A toolkit root holds the real nvcc (not a wrapper) and the CUDA headers."""
    if not path:
        return False
    nvcc = os.path.join(path, "bin", "nvcc")
    return (
        os.path.isfile(nvcc)
        and os.access(nvcc, os.X_OK)
        and not _is_script(nvcc)
        and os.path.isfile(os.path.join(path, "include", "cuda_runtime.h"))
    )


def _root_from_nvcc(exe):
    """Toolkit root of an ``nvcc`` found on PATH (symlink or wrapper script)."""
    real = os.path.realpath(exe)
    root = os.path.dirname(os.path.dirname(real))
    if _is_cuda_root(root):
        return root
    # A wrapper script such as ``exec /usr/local/cuda-13.0/bin/nvcc "$@"``.
    try:
        with open(real, "rb") as fh:
            head = fh.read(65536)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    text = head.decode("utf-8", "replace")
    for match in re.finditer(r"""(/[^\s"'`;|&$()]*/bin/nvcc)(?![\w.-])""", text):
        target = os.path.realpath(match.group(1))
        if target == real:
            continue
        root = os.path.dirname(os.path.dirname(target))
        if _is_cuda_root(root):
            return root
    return None


def cuda_root():
    """Find the CUDA toolkit root (the folder holding ``bin/nvcc`` and ``include/``).

    Looks, in order, at ``$CUDA_PATH``, ``$CUDA_HOME`` and ``$CUDA_ROOT``, then
    at ``nvcc`` on ``PATH`` (following symlinks and simple wrapper scripts that
    ``exec`` the real compiler), then at ``/usr/local/cuda`` and ``/opt/cuda``.

    Returns
    -------
    str or None
        The real (symlink-free) toolkit root, or ``None`` if no toolkit is found.
    """
    for var in ("CUDA_PATH", "CUDA_HOME", "CUDA_ROOT"):
        path = os.environ.get(var)
        if path and _is_cuda_root(path):
            return os.path.realpath(path)
    exe = shutil.which("nvcc")
    if exe:
        root = _root_from_nvcc(exe)
        if root:
            return os.path.realpath(root)
    for path in ("/usr/local/cuda", "/opt/cuda"):
        if _is_cuda_root(path):
            return os.path.realpath(path)
    return None


def nvcc_path():
    """Return the path of the real ``nvcc`` binary, or ``None``.

    Returns
    -------
    str or None
        ``<cuda_root()>/bin/nvcc`` (wrappers and symlinks resolved), or
        ``None`` when no CUDA toolkit is installed.
    """
    root = cuda_root()
    return os.path.join(root, "bin", "nvcc") if root else None


def gpu_available():
    """Tell whether an NVIDIA GPU can be used on this machine.

    Returns
    -------
    bool
        ``True`` when ``nvidia-smi`` is on ``PATH`` and ``nvidia-smi -L`` lists
        at least one GPU; ``False`` otherwise (no driver, no GPU, or a failure).
    """
    smi = shutil.which("nvidia-smi")
    if not smi:
        return False
    try:
        out = subprocess.run(
            [smi, "-L"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    if out.returncode != 0:
        return False
    return any(line.startswith("GPU ") for line in out.stdout.splitlines())


def cuda_build_unavailable():
    """Why a ``cuda_standalone`` build cannot be made here (a sentence), or ``None`` if it can."""
    import importlib.util

    if importlib.util.find_spec("brian2cuda") is None:
        return "brian2cuda is not installed (pip install 'sdsnn-bio[cuda]')"
    if nvcc_path() is None:
        return "no CUDA toolkit (nvcc) found"
    try:
        curand_paths()
    except DeviceError as err:
        return str(err)
    return None


def curand_paths():
    """Locate the cuRAND headers and library of the ``nvidia-curand`` wheel.

    Returns
    -------
    tuple of (str, str, str)
        ``(include_dir, lib_dir, library_file)``: ``nvidia/cu13/include``,
        ``nvidia/cu13/lib`` and the versioned ``libcurand.so.N`` in it.

    Raises
    ------
    DeviceError
        If the ``nvidia`` namespace package or its cuRAND files are missing;
        the message says what to install.
    """
    hint = (
        "cuda_standalone needs cuRAND: install it with `pip install nvidia-curand` "
        "(or `pip install 'sdsnn-bio[cuda]'`)"
    )
    try:
        import nvidia  # namespace package of NVIDIA's pip wheels
    except ImportError as err:
        raise DeviceError(f"the `nvidia` package is not installed; {hint}") from err
    searched = []
    for base in list(getattr(nvidia, "__path__", [])):
        inc = os.path.join(base, "cu13", "include")
        lib = os.path.join(base, "cu13", "lib")
        searched.append(os.path.join(base, "cu13"))
        if not os.path.isfile(os.path.join(inc, "curand.h")) or not os.path.isdir(lib):
            continue
        preferred = os.path.join(lib, "libcurand.so.10")
        if os.path.isfile(preferred):
            return inc, lib, preferred
        libs = sorted(
            f for f in os.listdir(lib) if re.fullmatch(r"libcurand\.so\.\d+(\.\d+)*", f)
        )
        if libs:
            return inc, lib, os.path.join(lib, libs[0])
    raise DeviceError(
        f"no cuRAND headers and library found in {searched or 'the nvidia package'}; {hint}"
    )


def _validate_compute_capability(value):
    try:
        cc = float(value)
    except (TypeError, ValueError) as err:
        raise DeviceError(
            f"compute_capability must be a number such as 9.0, got {value!r}"
        ) from err
    if not math.isfinite(cc) or cc < MIN_COMPUTE_CAPABILITY:
        raise DeviceError(
            f"compute_capability {value!r} is not supported: CUDA 13's nvcc targets "
            f"sm_75 and newer, so it must be >= {MIN_COMPUTE_CAPABILITY} "
            f"(H100 and H200 are {DEFAULT_COMPUTE_CAPABILITY})"
        )
    return cc


def _append_once(values, new):
    values = list(values)
    for item in new:
        if item not in values:
            values.append(item)
    return values


def _link_dir(cache_dir, library_file):
    """A private folder with ``libcurand.so`` -> ``library_file`` for ``-lcurand``."""
    link_dir = os.path.join(cache_dir, "curand-link")
    os.makedirs(link_dir, exist_ok=True)
    link = os.path.join(link_dir, "libcurand.so")
    if os.path.islink(link) and os.readlink(link) == library_file:
        return link_dir
    tmp = f"{link}.{os.getpid()}.tmp"
    if os.path.lexists(tmp):
        os.remove(tmp)
    os.symlink(library_file, tmp)
    os.replace(tmp, link)  # atomic, also when several processes race
    return link_dir


def configure_cuda(compute_capability=None, gpu_id=0, cache_dir=None, portable=False):
    """Set Brian2/brian2cuda preferences so that ``cuda_standalone`` builds here.

    Works with CUDA 13's ``nvcc`` with or without a GPU on this machine.

    Parameters
    ----------
    compute_capability : float, optional
        GPU architecture to compile for (``9.0`` gives ``-arch=sm_90``). If a GPU
        is available and this is ``None``, brian2cuda detects it; without a GPU
        it defaults to :data:`DEFAULT_COMPUTE_CAPABILITY` (H100/H200). Must be
        at least :data:`MIN_COMPUTE_CAPABILITY`.
    gpu_id : int, optional
        GPU the binary will run on. With GPU detection, ``None`` lets
        brian2cuda pick the GPU with the highest compute capability.
    cache_dir : str, optional
        Folder for the private ``libcurand.so`` link; default
        ``<cache_root()>/cuda``.
    portable : bool, optional
        Remove ``-march=native`` (and ``-mtune``/``-mcpu=native``) from the
        host-compiler flags, for a binary built on one machine and run on
        another.

    Returns
    -------
    dict
        What was set: ``cuda_path``, ``nvcc``, ``detect_gpus``, ``gpu_id``,
        ``compute_capability``, ``curand_include``, ``curand_lib`` and
        ``link_dir``.

    Raises
    ------
    DeviceError
        If brian2cuda, ``nvcc`` or ``nvidia-curand`` is missing, or the
        compute capability is invalid or below 7.5.

    Notes
    -----
    The settings (see the project's Brian2 feasibility report, section 2):

    - GPU detection runs ``nvidia-smi``; without a GPU it is switched off and
      ``gpu_id`` and ``compute_capability`` are set by hand.
    - ``cuda_path`` is the real toolkit root (brian2cuda would otherwise take
      the folder above a wrapper script).
    - the ``nvidia-curand`` wheel's ``cu13/include`` goes to nvcc with ``-I``;
      a ``libcurand.so`` link to its ``libcurand.so.10`` is put in a private
      folder added to ``library_dirs``, and its ``cu13/lib`` to
      ``runtime_library_dirs`` (rpath).
    - ``-std=c++17`` for nvcc (brian2cuda's makefile hard-codes ``-std=c++11``,
      which CUDA 13's Thrust rejects) and in place of ``-std=c++11`` in the
      host flags.
    The preferences are only added to, never duplicated: calling this twice is
    harmless. :func:`reset_brian` undoes everything.
    """
    try:
        import brian2cuda  # noqa: F401  (registers the device and its preferences)
        from brian2cuda.utils import gputools
    except ImportError as err:
        raise DeviceError(
            "cuda_standalone needs brian2cuda: install it with "
            "`pip install brian2cuda==1.0b1 nvidia-curand` (or `pip install 'sdsnn-bio[cuda]'`)"
        ) from err
    from brian2 import prefs

    root = cuda_root()
    if root is None:
        raise DeviceError(
            "cuda_standalone needs the CUDA 13 toolkit's nvcc, which was not found "
            "(looked at $CUDA_PATH, $CUDA_HOME, nvcc on PATH, /usr/local/cuda, /opt/cuda): "
            "install the CUDA toolkit (e.g. `apt-get install cuda-toolkit-13-0`) and put "
            "its bin/ on PATH or set CUDA_HOME"
        )
    inc, lib, library_file = curand_paths()

    if compute_capability is not None:
        compute_capability = _validate_compute_capability(compute_capability)
    if gpu_id is not None and (not isinstance(gpu_id, int) or gpu_id < 0):
        raise DeviceError(f"gpu_id must be a non-negative integer or None, got {gpu_id!r}")

    cb = prefs.devices.cuda_standalone.cuda_backend
    detect = gpu_available() and compute_capability is None
    if detect:
        cb.detect_gpus = True
        cb.gpu_id = gpu_id
        cb.compute_capability = None
    else:
        cb.detect_gpus = False
        cb.gpu_id = 0 if gpu_id is None else gpu_id
        cb.compute_capability = (
            DEFAULT_COMPUTE_CAPABILITY if compute_capability is None else compute_capability
        )
    cb.cuda_path = root
    cb.extra_compile_args_nvcc = _append_once(
        cb.extra_compile_args_nvcc, ["-std=c++17", "-I" + inc]
    )

    def host_flags(flags):
        flags = ["-std=c++17" if f in _OLD_CXX_STD else f for f in flags]
        if portable:
            flags = [f for f in flags if f not in _NATIVE_FLAGS]
        return flags

    prefs.codegen.cpp.extra_compile_args_gcc = host_flags(
        prefs.codegen.cpp.extra_compile_args_gcc
    )
    if prefs.codegen.cpp.extra_compile_args is not None:  # overrides the _gcc list
        prefs.codegen.cpp.extra_compile_args = host_flags(prefs.codegen.cpp.extra_compile_args)

    if cache_dir is None:
        cache_dir = os.path.join(cache_root(), "cuda")
    link_dir = _link_dir(os.path.abspath(cache_dir), library_file)
    prefs.codegen.cpp.library_dirs = _append_once(prefs.codegen.cpp.library_dirs, [link_dir])
    prefs.codegen.cpp.runtime_library_dirs = _append_once(
        prefs.codegen.cpp.runtime_library_dirs, [lib]
    )
    # brian2cuda caches the toolkit and GPU it found: make it look again.
    gputools.reset_cuda_installation()
    gputools.reset_gpu_selection()
    return {
        "cuda_path": root,
        "nvcc": os.path.join(root, "bin", "nvcc"),
        "detect_gpus": bool(cb.detect_gpus),
        "gpu_id": cb.gpu_id,
        "compute_capability": cb.compute_capability,
        "curand_include": inc,
        "curand_lib": lib,
        "link_dir": link_dir,
    }


#: Whether a device compiles its code objects as unity files when neither ``unity_build`` nor
#: ``$SDSNN_UNITY_BUILD`` says (``cuda_standalone``'s unity build has not run on a GPU yet).
UNITY_DEFAULT = {"cpp_standalone": True, "cuda_standalone": False}


def unity_files(device, unity_build=None):
    """How many unity files a build of ``device`` makes (:mod:`sdsnn_bio.unity`), ``None``: one
    file per code object, as Brian2 does.

    ``unity_build`` ``True`` means one file per CPU core, an integer that many, ``False`` none;
    ``None`` reads ``$SDSNN_UNITY_BUILD`` (``0``, ``1`` or a number; for every standalone
    device) and, when that is unset, :data:`UNITY_DEFAULT`.
    """
    source = "unity_build"
    if unity_build is None:
        env = os.environ.get("SDSNN_UNITY_BUILD", "").strip().lower()
        source = "$SDSNN_UNITY_BUILD"
        if env == "":
            unity_build = UNITY_DEFAULT.get(device, False)
        elif env in ("0", "false", "no", "off"):
            unity_build = False
        elif env in ("1", "true", "yes", "on"):
            unity_build = True
        else:
            unity_build = int(env) if env.isdigit() else env
    if unity_build is False:
        return None
    if unity_build is True:
        return max(1, os.cpu_count() or 1)
    if isinstance(unity_build, int) and unity_build >= 1:
        return unity_build
    raise DeviceError(f"{source} must be true, false or a number of files >= 1, got {unity_build!r}")


# --------------------------------------------------------------------------- compiler cache


def use_compiler_cache():
    """Route C and C++ compiles through ``ccache`` when it is installed.

    ``cpp_standalone`` compiles with ``make`` (which takes ``$CXX``) and
    ``runtime`` compiles Cython extensions (which take ``$CC``): with ``CC`` and
    ``CXX`` set to ``ccache gcc`` / ``ccache g++``, a code object that was
    compiled before -- the same network built again by a resumed run, the main
    job's second run, the many small builds of the test suite -- is taken from
    the cache in a fraction of the time. The compiler and its flags are the
    same, so are the binaries.

    Does nothing when ``ccache`` is not on ``PATH``, when ``SDSNN_CCACHE=0``, or
    for a variable the user has set. Returns the ``ccache`` path or ``None``.
    brian2cuda passes ``$CXX`` to nvcc's ``-ccbin``, which takes one program:
    :func:`set_up_device` takes the variables set here back for ``cuda_standalone``.
    """
    if os.environ.get("SDSNN_CCACHE", "1") == "0":
        return None
    exe = shutil.which("ccache")
    if exe is None:
        return None
    for var, compiler in (("CC", "gcc"), ("CXX", "g++")):
        if var not in os.environ and shutil.which(compiler):
            os.environ[var] = _CCACHE_SET[var] = f"{exe} {compiler}"
    return exe


_CCACHE_SET = {}


def _drop_compiler_cache():
    """Take back the ``CC``/``CXX`` that :func:`use_compiler_cache` set."""
    for var, value in list(_CCACHE_SET.items()):
        if os.environ.get(var) == value:
            del os.environ[var]
        del _CCACHE_SET[var]


# --------------------------------------------------------------------------- selection


def set_up_device(name, directory, threads=1, build_on_run=False, unity_build=None, **cuda_kw):
    """Make ``name`` the active Brian2 device.

    Does not reset Brian2 first; call :func:`reset_brian` before if the
    previous build must be forgotten.

    Parameters
    ----------
    name : str
        One of :data:`DEVICES`.
    directory : str or None
        Project folder of a standalone build (ignored by ``runtime``).
    threads : int, optional
        OpenMP threads for ``cpp_standalone`` (``1`` = no OpenMP, which keeps
        results identical to ``runtime``). Ignored by the other devices.
    build_on_run : bool, optional
        Passed to ``set_device``. Keep ``False`` and call
        ``device.build(directory=directory)`` yourself for several ``run``
        calls or for ``run_args`` re-runs.
    unity_build : bool or int, optional
        Compile a standalone project's code objects as a few unity files
        (:mod:`sdsnn_bio.unity`; the same program with a fraction of the compile work); see
        :func:`unity_files` for the values and the defaults (on for ``cpp_standalone``, off
        for ``cuda_standalone``). Ignored by ``runtime``.
    **cuda_kw
        Keyword arguments of :func:`configure_cuda` (``compute_capability``,
        ``gpu_id``, ``cache_dir``, ``portable``); only for ``cuda_standalone``.

    Returns
    -------
    str or None
        ``directory``, to be passed to ``device.build(directory=...)``:
        with ``build_on_run=False`` Brian2 ignores the ``directory`` given to
        ``set_device`` and would build into ``./output``.

    Raises
    ------
    DeviceError
        For an unknown device, bad ``threads``, CUDA keywords given to another
        device, or a CUDA set-up that cannot work here (see
        :func:`configure_cuda`).
    """
    from brian2 import prefs, set_device

    check_device(name)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise DeviceError(f"threads must be an integer >= 1, got {threads!r}")
    if cuda_kw and name != "cuda_standalone":
        raise DeviceError(
            f"options {sorted(cuda_kw)} are only for cuda_standalone, not {name!r}"
        )
    quiet_brian()
    if name == "cuda_standalone":
        _drop_compiler_cache()
    else:
        use_compiler_cache()
    if name == "runtime":
        prefs.codegen.target = "cython"
        # Python's own CFLAGS carry -g, which distutils passes to every Cython extension:
        # debug information nobody reads, a sixth of the compile time (tiny_dense's 80
        # extensions: 190 instead of 230 s). -g0 last turns it off; the machine code is the
        # same (GCC does not let -g change code generation).
        prefs.codegen.cpp.extra_compile_args_gcc = _append_once(
            prefs.codegen.cpp.extra_compile_args_gcc, ["-g0"]
        )
        set_device("runtime")
        return directory
    if directory is None:
        raise DeviceError(f"{name} needs a project directory, got None")
    directory = os.fspath(directory)
    n_unity = unity_files(name, unity_build)
    if name == "cpp_standalone":
        prefs.devices.cpp_standalone.openmp_threads = threads if threads > 1 else 0
        set_device("cpp_standalone", build_on_run=build_on_run, directory=directory)
    else:
        configure_cuda(**cuda_kw)
        set_device("cuda_standalone", build_on_run=build_on_run, directory=directory)
    from . import unity

    unity.install(name, n_unity)
    return directory
