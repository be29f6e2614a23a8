"""Running one Brian2 network period after period on any device, with state handed over.

A network that develops is run many times: one Brian2 run per structural
period, with values changed between runs (flags, decisions, inputs). On
``runtime`` that is ordinary: set the variables, call ``Network.run``. A
standalone project (``cpp_standalone``, ``cuda_standalone``) is built once and
its binary re-run with ``run_args``; the state that carries over is handed
from one run to the next as the previous run's result files, never through
Python. :class:`PeriodRunner` hides the difference:

* :meth:`~PeriodRunner.set_next` -- a value for the next run only (arrays or
  scalars of a group or synapses; ``TimedArray`` values);
* :meth:`~PeriodRunner.set_shared` -- a shared variable that keeps its value
  in the following runs (re-sent to every standalone run);
* :meth:`~PeriodRunner.get` -- a variable's value after the last run;
* :meth:`~PeriodRunner.run` -- build on first use (standalone), then run.

Standalone results alternate between two folders (``results_a``,
``results_b``): a run reads the carried state from the previous run's
folder while writing its own.
"""

import logging
import os

import numpy as np

__all__ = ["PeriodRunner", "BuildFolder", "reset_monitor", "RESULTS_DIRS"]

#: The result folders a standalone build alternates between: a run reads the carried state
#: from the previous run's folder while writing its own.
RESULTS_DIRS = ("results_a", "results_b")

logger = logging.getLogger(__name__)


class PeriodRunner:
    """Re-run a Brian2 ``Network`` for periods of ``duration`` on one device.

    Parameters
    ----------
    net : brian2.Network
    duration : brian2 Quantity
        Length of every run.
    standalone : bool
        ``True`` for ``cpp_standalone`` / ``cuda_standalone`` (the device must
        already be set up with :func:`sdsnn_bio.devices.set_up_device`).
    directory : str
        Project folder of a standalone build.
    carry : sequence of (owner, variable names)
        State handed from one standalone run to the next.
    seed : int
        Brian2 seed of every run (a standalone binary restarts its stream from
        the build's seed each run; runtime is re-seeded the same way, so both
        devices draw the same random numbers).
    profile : bool
        Collect Brian2's per-code-object timings (:attr:`last_profile`).
    """

    def __init__(self, net, duration, standalone: bool, directory: str, carry=(), seed: int = 0,
                 profile: bool = False):
        self.net = net
        self.duration = duration
        self.standalone = standalone
        self.directory = os.path.abspath(directory)
        self.carry = list(carry)
        self.seed = seed
        self.profile = profile
        self.last_profile = {}
        self._built = False
        self._run_count = 0
        self._pending = {}           # (owner name, var) -> (owner, value) for the next run only
        self._shared = {}            # (owner name, var) -> (owner, shared value), re-sent every run
        self._results_dirs = RESULTS_DIRS
        self._last_results = None

    # ------------------------------------------------------------ state I/O
    @staticmethod
    def get(owner, var: str) -> np.ndarray:
        """Current value (numpy copy) of a variable of a group or synapses object."""
        return np.array(owner.variables[var].get_value(), copy=True)

    def set_next(self, owner, var: str, value):
        """Set a variable for the next run (applied before that run starts).

        ``var = "values"`` with a ``TimedArray`` owner replaces its values.
        """
        if not self.standalone:
            if var == "values":
                owner.values[:] = value
            elif np.ndim(value):
                owner.variables[var].set_value(value)
            else:
                setattr(owner, var, value)
            return
        self._pending[(owner.name, var)] = (owner, value)

    def set_shared(self, owner, var: str, value: float):
        """A shared (scalar) variable that keeps its value in the following runs."""
        if self.standalone:
            self._shared[(owner.name, var)] = (owner, value)
        else:
            setattr(owner, var, value)

    @property
    def standalone_runs(self) -> int:
        """Runs of the standalone binary so far (after the first, carried state comes from the
        last run's results rather than from the build)."""
        return self._run_count

    def pending(self) -> dict:
        """Values waiting for the next standalone run: ``{(owner name, var): value}``."""
        return {key: value for key, (owner, value) in self._pending.items()}

    # -------------------------------------------------------------------- run
    def run(self):
        """Run the network once for :attr:`duration`."""
        b2 = _brian2()
        if not self.standalone:
            b2.seed(self.seed)
            # a binary's run starts at t = 0, and so does this one
            self.net.t_ = 0.0
            self.net.run(self.duration, profile=self.profile)
            self._read_profile()
            return
        self.build()
        args = self._run_args()
        results = self._results_dirs[self._run_count % len(self._results_dirs)]
        b2.device.run(directory=self.directory, results_directory=results, with_output=False,
                      run_args=args)
        self._last_results = b2.device.results_dir
        self._run_count += 1
        self._read_profile()

    def build(self, compile: bool = True):
        """Generate (and compile) the standalone project without running it."""
        from .errors import RunError

        if not self.standalone:
            raise RunError("build() is for standalone devices; runtime compiles on the first run")
        if self._built:
            return
        b2 = _brian2()
        self.net.run(self.duration, profile=self.profile)
        os.makedirs(self.directory, exist_ok=True)
        with _redirect_stdout(os.path.join(self.directory, "build.log")):
            b2.device.build(directory=self.directory, compile=compile, run=False, with_output=False)
        self._built = True

    def _run_args(self) -> list:
        b2 = _brian2()
        args = []
        inputs_dir = os.path.join(self.directory, "period_inputs")
        os.makedirs(inputs_dir, exist_ok=True)
        for f in os.listdir(inputs_dir):
            os.remove(os.path.join(inputs_dir, f))
        given = set()
        for (owner_name, var), (owner, value) in list(self._shared.items()) + list(self._pending.items()):
            name = f"{owner_name}.{var}"
            given.add(name)
            args.append(value_arg(owner, var, value, inputs_dir))
        self._pending.clear()
        if self._last_results is not None:
            for owner, names in self.carry:
                for var in names:
                    name = f"{owner.name}.{var}"
                    if name in given:
                        continue
                    path = os.path.join(self._last_results, b2.device.get_array_filename(owner.variables[var]))
                    args.append(f"{name}={path}")
        return args

    def _read_profile(self):
        """Seconds per code object of the last run (only with ``profile=True``)."""
        if not self.profile:
            return
        if self.standalone:
            # Brian2 looks for it in "results/" only; each run here has its own results folder
            self.last_profile = {}
            with open(os.path.join(self._last_results, "profiling_info.txt")) as f:
                for line in f:
                    name, seconds = line.split()
                    self.last_profile[name] = float(seconds)
        else:
            self.last_profile = {name: float(t) for name, t in self.net.profiling_info}


def value_arg(owner, var: str, value, inputs_dir: str, prefix: str = "") -> str:
    """The ``run_args`` entry that sets ``owner.var`` to ``value`` in a standalone run: a scalar
    inline, an array as a file of the variable's dtype in ``inputs_dir`` (named ``prefix`` +
    the variable's name; ``var = "values"`` for a ``TimedArray``)."""
    name = f"{owner.name}.{var}"
    arr = np.asarray(value)
    if arr.ndim == 0:
        return f"{name}={float(arr)!r}"
    dtype = owner.values.dtype if var == "values" else owner.variables[var].dtype
    path = os.path.join(inputs_dir, f"{prefix}{name}.dat")
    np.ascontiguousarray(arr, dtype=dtype).tofile(path)
    return f"{name}={path}"


class BuildFolder:
    """Folder of a standalone project and of its per-period result files.

    A standalone binary writes its whole state at the end of every period (tens
    of MB for the MNIST networks). On a memory file system (``/dev/shm``) this costs
    nothing; on this machine kind's disk it tripled the period time when two runs
    wrote in parallel. So a standalone build goes to a fresh folder in ``/dev/shm``
    (removed by :meth:`remove`; folders of killed runs are removed by the next one)
    where it exists and can hold its result folders (:data:`RESULTS_DIRS`, ``results``
    bytes each: :func:`sdsnn_bio.geometry.estimate_results`) beside the ``need`` bytes the
    network's processes take, with a tenth of the available memory to spare; else
    to ``fallback`` on disk (``on_disk_because`` says why). A network with millions of
    synapses writes gigabytes a period, which in ``/dev/shm`` would be held in memory
    twice beside the binary (the DVS-Gesture network was killed for memory so).
    Runtime builds nothing.
    """

    def __init__(self, device: str, fallback, results: int = 0, need: int = 0):
        from pathlib import Path

        self.temporary = None
        shm = Path("/dev/shm")
        usable = device != "runtime" and shm.is_dir() and os.access(shm, os.W_OK)
        self.on_disk_because = _why_not_in_memory(shm, len(RESULTS_DIRS) * results, need) if usable else None
        if usable and self.on_disk_because is None:
            import tempfile

            _remove_stale_builds(shm)
            self.temporary = Path(tempfile.mkdtemp(prefix="sdsnn-build-", dir=shm))
            (self.temporary / "owner.pid").write_text(str(os.getpid()))
            self.path = self.temporary
        else:
            self.path = Path(fallback)
            if self.on_disk_because:
                logger.info("build folder on disk (%s): %s", self.path, self.on_disk_because)

    def remove(self):
        """Remove a temporary build folder (the results a run keeps are elsewhere)."""
        import shutil

        if self.temporary is not None:
            shutil.rmtree(self.temporary, ignore_errors=True)
            self.temporary = None


def _why_not_in_memory(shm, in_memory: int, need: int) -> str | None:
    """Why ``in_memory`` bytes of result files should not go to ``shm`` (a usable memory file
    system) beside ``need`` bytes of processes (None where they fit)."""
    from .geometry import available_memory

    have, room = available_memory(), _free_bytes(shm)
    if have is not None and need + in_memory > 0.9 * have:
        return (f"its result files (about {in_memory / 2**30:.1f} GiB) would not fit in memory beside the "
                f"network ({need / 2**30:.1f} GiB of {have / 2**30:.1f} GiB available)")
    if room is not None and in_memory > 0.9 * room:
        return f"/dev/shm has {room / 2**30:.2f} GiB free, its result files need about {in_memory / 2**30:.2f} GiB"
    return None


def _free_bytes(path) -> int | None:
    """Bytes free on the file system of ``path`` (None where unknown)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _remove_stale_builds(shm):
    """Remove build folders in ``/dev/shm`` left by runs that were killed."""
    import shutil

    for d in shm.glob("sdsnn-build-*"):
        try:
            pid = int((d / "owner.pid").read_text())
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except (OSError, ValueError):
            continue


def reset_monitor(mon):
    """Empty a runtime monitor between runs so that memory stays bounded."""
    mon.resize(0)
    mon.variables["N"].set_value(0)


def _brian2():
    import brian2

    return brian2


class _redirect_stdout:
    """Send the compiler's output (written by child processes to fd 1) to a log file."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        import sys

        sys.stdout.flush()
        self.saved = os.dup(1)
        self.log = open(self.path, "w")
        os.dup2(self.log.fileno(), 1)
        return self

    def __exit__(self, *exc):
        os.dup2(self.saved, 1)
        os.close(self.saved)
        self.log.close()
        if exc[0] is not None:
            logger.error("build failed, compiler output in %s", self.path)
        return False
