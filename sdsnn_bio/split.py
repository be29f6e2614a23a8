"""A mini-batch's windows split over several processes (``training.processes``).

Within a mini-batch the weights do not change, so its ``B`` windows can run
anywhere at once as long as their gradients are summed before the Adam step.
On a CPU with ``P`` cores the sequential form uses one of them (Brian2's OpenMP
threads synchronise some 40 times a time step, which costs more than the work
of a 784-300-10 network's step: issue 10, README). This form runs ``P`` copies
of the same compiled binary, one per core: process ``r`` presents ``B/P``
windows of every mini-batch (and ``1/P`` of the test windows) and, at the
per-batch clock's tick, before the Adam step, the processes sum their gradients
through shared memory. Every process then takes the same Adam step on the same
sums (added in rank order, so the sums are the same bits in each) and carries
the same weights, Adam moments, biases, spines and masks: the structural code
that runs inside the binary at the period's start and end reads only those.

The reduction is Brian2 generated code calling two C++ functions defined by a
header this module writes into the project (:func:`write_header`,
:func:`reduction_functions`), on the per-batch clock before the Adam steps:
``put_done = sdsnn_put(g, a)``, whose first call in a batch copies the whole
``a``-th reduced array (Brian2's own array, named in the header) into this
process's slot of a buffer the processes share, and ``g = sdsnn_get(g, a)`` at
the top of the Adam step, whose first call in a batch waits at a barrier for
every process's copies and which returns each element's sum over the
processes. Two buffers alternate between batches, so one barrier per batch
suffices. The arrays are every learnable synapse's ``g`` (a convolution's: its
kernel's, in the weight group) and every learnable neuron's ``gb``; the bias
Adam step moves onto the same clock (the sequential form takes it at the batch's last step; nothing reads a bias in between, so it
is the same step). The windows of each batch are dealt to the processes by
their expected work (:func:`window_split`), so that they wait less for each
other.

A process waiting at the barrier gives up, with a message naming why, when
the driver marks the shared buffer as aborted (another process failed), when
its parent process is gone, or after :data:`BARRIER_TIMEOUT_S`.

The mini-batch's loss is still that of ``B`` windows (``B_loss`` in the output
error); the clock, the batch events and the Adam step count use the process's
own ``B/P`` windows per batch (``B_size``). Input noise: process 0 draws from the
build's seed as the sequential form does, process ``r`` from a stream seeded
with ``seed + 7919 r``; with inputs that spike for sure or never the split form
computes the sequential form's weights to round-off (the sums are taken in
another order), which tests/test_split.py checks against the numpy twin.

``cpp_standalone`` only, one thread per process (the reduction walks each
array in order): the GPU has the parallel-windows form
(:mod:`sdsnn_bio.parallel`), and ``runtime`` is for checking, not speed.
"""

import contextlib
import mmap
import os
import subprocess
import threading

import numpy as np

from .errors import ConfigError, RunError
from .network import SDSNNNetwork
from .runner import PeriodRunner, _brian2, value_arg

__all__ = ["SplitSDSNNNetwork", "check_split", "SplitPeriodRunner", "reduction_functions", "write_header", "window_split",
           "window_mass", "BARRIER_TIMEOUT_S", "HEADER_BYTES"]

#: Seconds a process waits at the barrier for the others before it gives up.
BARRIER_TIMEOUT_S = 600
#: Bytes before the data in the shared file: an abort word, then one epoch per process.
HEADER_BYTES = 4096
#: Environment of each process: its rank, the process count and the shared file.
ENV_RANK, ENV_NPROC, ENV_SHM = "SDSNN_SPLIT_RANK", "SDSNN_SPLIT_NPROC", "SDSNN_SPLIT_SHM"
#: Stream of process r: the build's seed + RANK_SEED_STEP * r.
RANK_SEED_STEP = 7919

#: Name of the header, written into the project folder (the makefile compiles with -I.).
HEADER_NAME = "sdsnn_split.h"

# The state lives in inline functions' static locals: one instance in the whole program
# however many code objects (or unity files) include the header.
_HEADER = r"""// sdsnn-bio split form: gradient sums over processes (sdsnn_bio/split.py)
#ifndef SDSNN_SPLIT_H
#define SDSNN_SPLIT_H
#include "objects.h"
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
#include <sched.h>
#include <cstdlib>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <emmintrin.h>
struct SdsnnSplit {
    int64_t n_total = %(n_total)d;
    int64_t sizes[%(n_arrays)d] = {%(sizes)s};
    int64_t offsets[%(n_arrays)d] = {%(offsets)s};
    const double* get_at[%(n_arrays)d] = {nullptr};
    int put_done[%(n_arrays)d] = {0};
    double* data = nullptr;
    int64_t* head = nullptr;
    int rank = 0, nproc = 1, parity = 0, getting = 1;
    int64_t epoch = 0;
    pid_t parent = 0;
};
inline SdsnnSplit& sdsnn_split_state() { static SdsnnSplit s; return s; }
// the a-th reduced array of this process (Brian2's arrays, objects.h)
inline const double* sdsnn_split_source(int a) {
    switch (a) {
%(sources)s
    }
    return nullptr;
}
inline void sdsnn_split_fail(const char* why) {
    SdsnnSplit& s = sdsnn_split_state();
    // on stdout: Brian2 keeps process 0's in its results folder
    fprintf(stdout, "sdsnn-bio split process %%d of %%d: %%s\n", s.rank, s.nproc, why);
    fflush(stdout);
    if (s.head) __atomic_store_n(&s.head[0], (int64_t)1, __ATOMIC_RELEASE);
    _exit(3);
}
inline void sdsnn_split_open() {
    SdsnnSplit& s = sdsnn_split_state();
    const char* r = getenv("%(env_rank)s");
    const char* n = getenv("%(env_nproc)s");
    const char* path = getenv("%(env_shm)s");
    if (!r || !n || !path) sdsnn_split_fail("needs %(env_rank)s, %(env_nproc)s and %(env_shm)s");
    s.rank = atoi(r);
    s.nproc = atoi(n);
    if (s.nproc < 1 || s.rank < 0 || s.rank >= s.nproc) sdsnn_split_fail("bad rank or process count");
    int fd = open(path, O_RDWR);
    if (fd < 0) sdsnn_split_fail("cannot open the shared buffer");
    size_t bytes = %(header)d + sizeof(double) * (size_t)(2 * s.nproc) * (size_t)s.n_total;
    struct stat st;
    if (fstat(fd, &st) != 0 || (size_t)st.st_size < bytes) sdsnn_split_fail("the shared buffer is smaller than this build needs");
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) sdsnn_split_fail("cannot map the shared buffer");
    s.head = (int64_t*)p;
    s.data = (double*)((char*)p + %(header)d);
    s.parent = getppid();
    s.parity = 1;   // flipped to 0 by the first batch
}
inline void sdsnn_split_barrier() {
    SdsnnSplit& s = sdsnn_split_state();
    s.epoch++;
    _mm_sfence();   // the puts' streaming stores are visible before the epoch is
    __atomic_store_n(&s.head[1 + s.rank], s.epoch, __ATOMIC_RELEASE);
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int q = 0; q < s.nproc; q++) {
        long spins = 0;
        while (__atomic_load_n(&s.head[1 + q], __ATOMIC_ACQUIRE) < s.epoch) {
            if (++spins < 4000) { __builtin_ia32_pause(); continue; }
            if (__atomic_load_n(&s.head[0], __ATOMIC_ACQUIRE)) sdsnn_split_fail("another process failed (aborted)");
            if (getppid() != s.parent) sdsnn_split_fail("the driver process is gone");
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec - t0.tv_sec > %(timeout)d) sdsnn_split_fail("timed out at the gradient barrier");
            sched_yield();
        }
    }
}
// put_done = sdsnn_put(x, a), once per element of the a-th reduced array: its first call in a
// batch copies the whole array into this process's slot of the batch's buffer (streaming
// stores: the other processes read the lines from memory, so this core need not own them)
inline double sdsnn_put(double x, int a) {
    SdsnnSplit& s = sdsnn_split_state();
    if (__builtin_expect(s.getting, 0)) {   // the first put of a batch: the other buffer
        if (!s.data) sdsnn_split_open();
        s.parity ^= 1;
        s.getting = 0;
        for (int k = 0; k < %(n_arrays)d; k++) s.put_done[k] = 0;
    }
    if (__builtin_expect(!s.put_done[a], 0)) {
        s.put_done[a] = 1;
        double* dst = s.data + (int64_t)(s.parity * s.nproc + s.rank) * s.n_total + s.offsets[a];
        const double* src = sdsnn_split_source(a);
        int64_t k = 0;
        for (; k < s.sizes[a] && ((uintptr_t)(dst + k) & 15); k++) dst[k] = src[k];
        for (; k + 2 <= s.sizes[a]; k += 2) _mm_stream_pd(dst + k, _mm_loadu_pd(src + k));
        for (; k < s.sizes[a]; k++) dst[k] = src[k];
    }
    return x;
}
// x = sdsnn_get(x, a), after every put, element after element: the element's sum over the
// processes in rank order (with two, x + the other's: addition commutes, the same bits in both)
inline double sdsnn_get(double x, int a) {
    SdsnnSplit& s = sdsnn_split_state();
    if (__builtin_expect(!s.getting, 0)) {  // the first get of a batch: wait for every process's puts
        sdsnn_split_barrier();
        s.getting = 1;
        for (int k = 0; k < %(n_arrays)d; k++)
            s.get_at[k] = s.data + (int64_t)s.parity * s.nproc * s.n_total + s.offsets[k];
    }
    const double* p = s.get_at[a]++;
    if (s.nproc == 2) return x + p[(1 - s.rank) * s.n_total];
    double sum = 0.0;
    for (int q = 0; q < s.nproc; q++) sum += p[q * s.n_total];
    return sum;
}
#endif
"""


def write_header(directory, arrays) -> str:
    """Write the reduction's header into the project folder; returns its path.

    ``arrays``: ``[(C++ name, kind, size)]`` of the reduced arrays in the order of their
    numbers, ``kind`` ``"dynamic"`` (a ``std::vector``, Brian2's synaptic arrays) or
    ``"static"`` (a pointer, a group's arrays)."""
    sizes = [n for _, _, n in arrays]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
    sources = "\n".join(f"        case {a}: return " + (f"&brian::{name}[0];" if kind == "dynamic" else f"brian::{name};")
                        for a, (name, kind, _) in enumerate(arrays))
    text = _HEADER % {"n_total": int(np.sum(sizes)), "n_arrays": len(sizes),
                      "sizes": ", ".join(str(int(n)) for n in sizes),
                      "offsets": ", ".join(str(int(o)) for o in offsets), "header": HEADER_BYTES,
                      "timeout": BARRIER_TIMEOUT_S, "env_rank": ENV_RANK, "env_nproc": ENV_NPROC,
                      "env_shm": ENV_SHM, "sources": sources}
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, HEADER_NAME)
    with open(path, "w") as f:
        f.write(text)
    return path


def reduction_functions():
    """The Brian2 functions ``sdsnn_put`` and ``sdsnn_get``, defined in C++ by the header of
    :func:`write_header` (not stateless: Brian2 must call them once per element, in order)."""
    import brian2 as b2

    functions = []
    for name in ("sdsnn_put", "sdsnn_get"):
        def never(x, a, _name=name):
            raise RunError(f"{_name} exists only in a split cpp_standalone binary")
        f = b2.Function(never, arg_units=[1, 1], return_unit=1, stateless=False, auto_vectorise=False)
        f.implementations.add_implementation("cpp", code=None, name=name,
                                             compiler_kwds={"headers": [f'"{HEADER_NAME}"']})
        functions.append(f)
    return functions


_RESEED = """
{   // sdsnn-bio split form: process r > 0 draws its input noise from its own stream
    const char* _rank = std::getenv("%(env_rank)s");
    if (_rank && std::atoi(_rank) > 0)
        brian::_random_generators[0].seed(%(seed)dL + %(step)dL*std::atoi(_rank));
}
"""


def window_split(n_test: int, n_train: int, batch: int, processes: int, mass=None) -> list:
    """The period's windows of each process, as indices into the period's window order.

    Process ``r`` runs ``1/processes`` of the test windows and of every mini-batch's
    windows. Without ``mass`` it takes the ``r``-th slice of each; with ``mass`` (the
    expected work of each window, e.g. its input spikes) the windows of each mini-batch
    (and the test windows) are dealt so that the processes' sums are even: largest first,
    each to the process with the least work that still has room (ties to the lower rank).
    A process runs its windows of a batch in their order. A mini-batch's gradient is the
    same sum whoever runs which window, and the processes wait less for each other at
    its end (MNIST digits differ by several times in their ink).
    """
    blocks = [np.arange(n_test)] + [n_test + np.arange(k, k + batch) for k in range(0, n_train, batch)]
    parts = [[] for _ in range(processes)]
    for block in blocks:
        size = len(block) // processes
        if mass is None:
            for r in range(processes):
                parts[r].append(block[r * size:(r + 1) * size])
            continue
        load, taken = np.zeros(processes), [[] for _ in range(processes)]
        for w in block[np.argsort(-np.asarray(mass, dtype=float)[block], kind="stable")]:
            room = [r for r in range(processes) if len(taken[r]) < size]
            r = min(room, key=lambda q: (load[q], q))
            taken[r].append(w)
            load[r] += mass[w]
        for r in range(processes):
            parts[r].append(np.sort(np.asarray(taken[r], dtype=int)))
    assert all(sum(len(x) for x in p) == n_test // processes + n_train // processes for p in parts)
    return [np.concatenate(p).astype(int) for p in parts]


def window_mass(stimulus, per_step: bool, direct: bool = False) -> np.ndarray:
    """Expected work of each window: its events (``per_step``: event recordings), the count
    of its non-zero pixels (``direct``: each is an input event every step) or the sum of its
    pixels' spike probabilities (rate coding: the expected input spikes per step)."""
    if per_step:
        return np.array([len(codes) for codes in stimulus], dtype=float)
    x = np.asarray(stimulus, dtype=float)
    return np.count_nonzero(x, axis=1).astype(float) if direct else x.sum(axis=1)


def check_split(cfg, device: str, threads: int) -> None:
    """Refuse a split (``training.processes`` above 1) on another device than ``cpp_standalone``
    or with OpenMP threads: a :class:`~sdsnn_bio.errors.ConfigError` naming the key (the command
    line checks before it announces the run; the network checks again when built)."""
    P = cfg.training.processes
    if P <= 1:
        return
    where = f"{cfg.source}: training.processes = {P}"
    if device != "cpp_standalone":
        raise ConfigError(f"{where} runs on cpp_standalone only, not {device!r} (the GPU has "
                          "training.parallel_windows; runtime is for checking)")
    if threads > 1:
        raise ConfigError(f"{where} runs one thread per process, not {threads} (set threads to 1)")


class SplitSDSNNNetwork(SDSNNNetwork):
    """The sequential network with each mini-batch's windows split over ``P`` processes.

    Same constructor and interface as :class:`~sdsnn_bio.network.SDSNNNetwork`:
    ``n_test_win`` and ``n_train_win`` are the period's totals (each process runs its
    share, :func:`window_split`); :meth:`set_inputs` takes the whole period's inputs,
    :meth:`run` returns the output counts of all its windows in their order and
    :meth:`events` the spikes of all processes. The state (weights, spines, masks) is
    process 0's, which every process shares.
    """

    def __init__(self, cfg, n_test_win: int, n_train_win: int, device: str, directory: str,
                 seed: int = 0, profile: bool = False):
        P, B = cfg.training.processes, cfg.training.batch
        where = f"{cfg.source}: training.processes = {P}"
        check_split(cfg, device, _brian2().prefs.devices.cpp_standalone.openmp_threads)
        if n_test_win % B:
            raise ConfigError(f"{where}: the test windows of a run ({n_test_win}) must fill whole "
                              f"mini-batches of training.batch = {B} (each process runs a share of every batch)")
        self.processes = P
        self.seed = seed
        self.total_test_win, self.total_train_win = int(n_test_win), int(n_train_win)
        self.rank_windows = window_split(n_test_win, n_train_win, B, P)
        super().__init__(cfg, n_test_win // P, n_train_win // P, device, directory, seed=seed, profile=profile)
        assert self.adam_on_clock
        self.n_windows = self.total_test_win + self.total_train_win
        arrays = self._reduced_arrays()
        write_header(directory, arrays)
        self.runner = SplitPeriodRunner(self.net, self.runner.duration, True, directory, carry=self.runner.carry,
                                        seed=seed, profile=profile, processes=P,
                                        sizes=[n for _, _, n in arrays])

    def _reduction_namespace(self) -> dict:
        """The reduction's functions for the base constructor's namespace (each learnable
        stage's synapses' ``g``, then its neurons' ``gb``, in stage order, are arrays 0, 1, ...:
        :meth:`_reduced_arrays`), and the processes' seeds."""
        _brian2().device.insert_code("main", _RESEED % {"env_rank": ENV_RANK, "step": RANK_SEED_STEP,
                                                        "seed": int(self.seed)})
        put, get = reduction_functions()
        return {"sdsnn_put": put, "sdsnn_get": get}

    def _reduced_arrays(self) -> list:
        """``[(C++ name, kind, size)]`` of the reduced arrays, in the order of their numbers."""
        device = _brian2().device
        arrays = []
        for st in self.learnable_stages:
            # a convolution's kernel gradient lives in its weight group (a group's static array)
            for owner, var in ((st.extra.get("weights", st.synapses), "g"), (st.group, "gb")):
                v = owner.variables[var]
                kind = "dynamic" if v.dynamic else "static"
                name = device.get_array_name(v, access_data=kind == "static")
                arrays.append((name, kind, v.size if kind == "static" else st.n_synapses))
        return arrays

    def read(self, owner, var: str, rank: int) -> np.ndarray:
        """A variable's value after the last run in process ``rank`` (a convolution's ``w`` and
        ``g`` from its weight group, as :meth:`get`)."""
        return self.runner.read(*self._redirect(owner, var), rank)

    def set_inputs(self, stimulus, target):
        n = self.n_windows
        if len(stimulus) != n or len(target) != n:
            raise RunError(f"stimulus and target must have one entry per window of the period ({n}), "
                           f"got {len(stimulus)} and {len(target)}")
        target = np.asarray(target)
        self.rank_windows = window_split(self.total_test_win, self.total_train_win, self.cfg.training.batch,
                                         self.processes, window_mass(stimulus, self.per_step, self.direct))
        for r, idx in enumerate(self.rank_windows):
            with self.runner.for_rank(r):
                part = [stimulus[i] for i in idx] if self.per_step else np.asarray(stimulus)[idx]
                super().set_inputs(part, target[idx])

    def run(self) -> np.ndarray:
        self._states.clear()
        self.runner.run()
        mon = self.out_monitor
        counts = np.zeros((self.n_windows, self.cfg.n_classes))
        for r, idx in enumerate(self.rank_windows):
            t, i, nwin = (self.runner.read(mon, v, r) for v in ("t", "i", "nwin"))
            counts[idx[self._windows_of(t)], i.astype(int)] = nwin
        return counts

    def events(self) -> tuple:
        spikes_in = sum(self.read(self.input_group, "spike_total", r) for r in range(self.processes))
        per_stage = [sum(self.read(st.extra.get("positions", st.group), "spike_total", r)
                         for r in range(self.processes)) for st in self.stages]
        return spikes_in, per_stage


class SplitPeriodRunner(PeriodRunner):
    """:class:`~sdsnn_bio.runner.PeriodRunner` for ``P`` processes of one binary.

    Process 0 runs through Brian2 (its results are the network's state, and the next
    run's carried state for every process); processes ``1..P-1`` are started beside it
    with their own inputs (:meth:`for_rank`) and results folders. A process that fails
    aborts the others at their next barrier, and :meth:`run` raises a
    :class:`~sdsnn_bio.errors.RunError` naming it with the end of its output.
    """

    def __init__(self, *args, processes: int, sizes, **kw):
        super().__init__(*args, **kw)
        self.processes = processes
        self.n_total = int(np.sum(sizes))
        self._rank = None
        self._ranked = [dict() for _ in range(processes)]
        self._rank_results = [None] * processes
        self.buffer_path = None

    @contextlib.contextmanager
    def for_rank(self, r: int):
        """Context: the ``set_next`` calls inside it are for process ``r`` only."""
        self._rank = r
        try:
            yield
        finally:
            self._rank = None

    def set_next(self, owner, var: str, value):
        if self._rank is None:
            return super().set_next(owner, var, value)
        self._ranked[self._rank][(owner.name, var)] = (owner, value)

    def build(self, compile: bool = True):
        super().build(compile=compile)
        if self.buffer_path is None:
            # in the project folder, which build_network puts in /dev/shm where it exists
            self.buffer_path = os.path.join(self.directory, "split_buffer")
            with open(self.buffer_path, "wb") as f:
                f.truncate(HEADER_BYTES + 8 * 2 * self.processes * self.n_total)

    def read(self, owner, var: str, rank: int) -> np.ndarray:
        """A variable's value after the last run in process ``rank``."""
        if rank == 0:
            return self.get(owner, var)
        v = owner.variables[var]
        path = os.path.join(self._rank_results[rank], _brian2().device.get_array_filename(v))
        return np.fromfile(path, dtype=v.dtype)

    def _header(self, abort: int | None = None):
        with open(self.buffer_path, "r+b") as f, mmap.mmap(f.fileno(), HEADER_BYTES) as m:
            if abort is None:
                m[:8 * (1 + self.processes)] = bytes(8 * (1 + self.processes))
            else:
                m[:8] = np.int64(abort).tobytes()

    def run(self):
        b2 = _brian2()
        self.build()
        ranked, self._ranked = self._ranked, [dict() for _ in range(self.processes)]
        common = self._run_args()
        inputs_dir = os.path.join(self.directory, "period_inputs")
        results = self._results_dirs[self._run_count % len(self._results_dirs)]
        env = {ENV_NPROC: str(self.processes), ENV_SHM: self.buffer_path}
        self._header()
        procs = []
        try:
            for r in range(self.processes):
                args = common + [value_arg(owner, var, value, inputs_dir, prefix=f"rank{r}.")
                                 for (_, var), (owner, value) in ranked[r].items()]
                if r == 0:
                    rank0_args = args
                    continue
                out = os.path.join(self.directory, f"{results}_rank{r}")
                os.makedirs(out, exist_ok=True)
                self._rank_results[r] = out
                log = open(os.path.join(out, "stdout.txt"), "w")
                try:
                    p = subprocess.Popen([os.path.join(self.directory, "main"), "--results_dir", out + os.sep]
                                         + args, cwd=self.directory, stdout=log, stderr=subprocess.STDOUT,
                                         env={**os.environ, **env, ENV_RANK: str(r)})
                except BaseException:
                    log.close()
                    raise
                procs.append((r, p, log))
            stop = threading.Event()
            watcher = threading.Thread(target=self._watch, args=(procs, stop), daemon=True)
            watcher.start()
            saved = {k: os.environ.get(k) for k in (*env, ENV_RANK)}
            os.environ.update(env, **{ENV_RANK: "0"})
            try:
                b2.device.run(directory=self.directory, results_directory=results, with_output=False,
                              run_args=rank0_args)
                failed0 = None
            except RuntimeError as exc:
                failed0 = exc
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
            if failed0 is not None:
                self._header(abort=1)
            stop.set()
            for r, p, log in procs:
                try:
                    p.wait(timeout=60 if failed0 is None else 10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            bad = [(r, p.returncode) for r, p, _ in procs if p.returncode != 0]
            if failed0 is not None or bad:
                raise RunError(self._failure(results, failed0, bad))
        finally:
            for r, p, log in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                log.close()
        self._last_results = b2.device.results_dir
        self._run_count += 1
        self._read_profile()

    def _watch(self, procs, stop):
        """Mark the shared buffer aborted as soon as a process other than 0 fails, so that the
        ones waiting at a barrier stop (process 0's failure is seen by :meth:`run` itself)."""
        while not stop.wait(0.05):
            if any(p.poll() not in (None, 0) for _, p, _ in procs):
                self._header(abort=1)
                return

    def _failure(self, results, failed0, bad) -> str:
        lines = [f"a split run of {self.processes} processes failed ({self.directory}):"]
        outs = [(0, os.path.join(self.directory, results, "stdout.txt"), failed0 is not None)]
        outs += [(r, os.path.join(self._rank_results[r], "stdout.txt"), True) for r, _ in bad]
        for r, code in bad:
            lines.append(f"  process {r} exited with {code}" + (" (killed by signal %d)" % -code if code < 0 else ""))
        if failed0 is not None:
            lines.append("  process 0 failed")
        for r, path, show in outs:
            if show and os.path.exists(path):
                with open(path, errors="replace") as f:
                    tail = f.read()[-800:].strip()
                if tail:
                    lines.append(f"  process {r}'s output ends: {tail}")
        return "\n".join(lines)

