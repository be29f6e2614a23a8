"""Several networks in one build: ``K`` copies of a model's network, one binary run per period for all.

A sweep over seeds or run-time parameters (learning rate, pruning rates, the
neurotrophic constants, masks) trains ``K`` networks of one shape. Built one by
one, each compiles the same code; here they live side by side in one Brian2
``Network``, one standalone project, and every period is one run of its binary
for all of them (issue 10, "Several networks in one build").

The copies are fused (:class:`MultiSDSNNNetwork`): every group and synapses
object of the network holds all copies' elements, copy ``k``'s in block ``k``
(its neurons after copy ``k-1``'s; its synapses connected within its block), so
a time step runs each code object once for all copies -- on
``cuda_standalone`` one kernel launch per operation, whatever ``K``. The copies
share no variable: weights, Adam moments, masks, spine state and input spikes
are per element; the stimulus and target ``TimedArray`` have a column block per
copy. They differ only in the values of *run-time keys* (:data:`RUNTIME_KEYS`):
keys that reach the network as initial values, flags sent with every run, or
the Python rules between periods. The flags that a single network holds as
shared variables are per-neuron variables here (a synapse reads its flags from
its postsynaptic neuron), each copy's block holding the copy's value (see
:func:`sdsnn_bio.network.per_copy_equations`), except those that follow the
shared schedule (:data:`sdsnn_bio.network.SCHEDULE_FLAGS`), which stay shared. Any other difference (a shape, a
constant of the generated code, the data, the schedule the copies run in step)
is refused with a :class:`~sdsnn_bio.errors.ConfigError` naming the key
(:func:`check_copies`).

The period loop of every copy is :class:`sdsnn_bio.loop.Development`'s own, run
in one thread per copy: a copy's structural decisions are the existing Python
rules on that copy's state, and each copy writes a complete run folder (config,
``run.json`` with its copy index and the shared build, ``periods.csv``,
snapshots, structural history, ``summary.json``) that ``sdsnn-bio report`` and
``sdsnn-bio table`` read as any run folder. Only the run itself is shared: a
copy's ``run()`` waits until every copy still running has asked for the next
run (:class:`Lockstep`), then one binary run serves all of them.

Random numbers: the build has one Brian2 seed (copy 0's ``schedule.seed``); in
every time step the input group draws its random numbers neuron after neuron,
copy 0's block first, so each copy sees its own spikes. A copy's numbers are
reproducible for the same copies in the same order on one device, and stay the
same when only the *learning* parameters of the other copies change (how many
numbers a copy draws depends only on its stimulus); a copy is not bit-identical
to a single run of its configuration (that run draws from the stream alone),
except where nothing is random: under direct (analog) input coding each copy is
its single run (tested, to round-off: the flags as per-element variables change
Brian2's loop-invariant hoisting, 1e-17 in the weights). Each copy's weights are
drawn from its own ``schedule.seed`` exactly as a single run draws them, and its
data order follows its own seed.

A copy that fails its health check (NaN or exploding weights, a silent network)
stops with its last good snapshot, as a single run does; the others go on, and
:meth:`MultiDevelopment.run` raises a :class:`~sdsnn_bio.errors.RunError` naming
it at the end. Resume (``run(resume=True)``) restarts every copy from the last
period that all copies have a snapshot of (two snapshots are kept per copy, so
that a kill between two copies' snapshot writes loses at most one period).

A convolution (:mod:`sdsnn_bio.conv`) is fused the same way: ``K`` kernels in
its weight group and master synapses, ``K`` blocks of channels, input channels
and positions, copy ``k``'s positions reading copy ``k``'s kernel.

Memory: the fused objects hold ``K`` times one network's arrays, plus one
8-byte variable per neuron and flag; a synapse holds nothing more than in a
single network.
"""

import threading
import time
from pathlib import Path

import numpy as np

from .errors import ConfigError, RunError
from .loop import Development, PeriodPlan
from .network import SDSNNNetwork

__all__ = ["RUNTIME_KEYS", "check_copies", "Lockstep", "MultiSDSNNNetwork", "NetworkCopy", "MultiDevelopment",
           "copy_dirs", "expand_sets"]

#: Keys (dotted paths; ``layers.*.key`` for every layer) in which the copies of one build may
#: differ, and how each reaches the network: none of them changes a shape or the generated code.
RUNTIME_KEYS = {
    "name": "recorded only",
    "description": "recorded only",
    "training.lr": "shared flag lr, sent with every run",
    "training.lr_decay": "shared flag lr, sent with every run",
    "training.lr_decay_every": "shared flag lr, sent with every run",
    "training.weight_init": "initial weights (values set before the first run)",
    "schedule.seed": "initial weights and data order (the build's Brian2 seed is copy 0's)",
    "structure.masks": "shared flag hard_mask",
    "structure.mask_biases": "shared flag bias_mask_on",
    "structure.regeneration": "per-stage flag regen_on and the Python decisions",
    "structure.constraint": "per-stage flag clip_on",
    "structure.fixed_clip": "per-stage flag clip_on",
    "structure.neurotrophic": "Python decisions (neurotrophic rate update)",
    "structure.rate_tau": "Python decisions (neurotrophic rate update)",
    "structure.rate_a": "Python decisions (neurotrophic rate update)",
    "structure.rate_c": "Python decisions (neurotrophic rate update)",
    "structure.rate_switch": "Python decisions (neurotrophic rate update)",
    "structure.regen_growth": "Python decisions (regeneration percentile)",
    "structure.regen_cap": "Python decisions (regeneration percentile)",
    "layers.*.rho0": "Python decisions (initial pruning rate)",
    "layers.*.theta_dead": "Python decisions (dead-unit count)",
    "layers.*.regen_q0": "Python decisions (regeneration percentile)",
}

_MISSING = object()


def _flat(cfg) -> dict:
    """A configuration as ``{dotted key: value}`` (layers as ``layers.NAME.key``)."""
    out = {}
    for key, value in cfg.to_dict().items():
        if key == "layers":
            for i, layer in enumerate(value):
                out[f"layers[{i}]"] = layer["name"]
                for k, v in layer.items():
                    out[f"layers.{layer['name']}.{k}"] = v
        elif isinstance(value, dict):
            for k, v in value.items():
                out[f"{key}.{k}"] = v
        else:
            out[key] = value
    return out


def _is_runtime(key: str) -> bool:
    if key in RUNTIME_KEYS:
        return True
    parts = key.split(".")
    return len(parts) == 3 and parts[0] == "layers" and f"layers.*.{parts[2]}" in RUNTIME_KEYS


def check_copies(cfgs) -> None:
    """Refuse copies that cannot share one build.

    Parameters
    ----------
    cfgs : sequence of ModelConfig
        The copies' configurations, copy 0 first.

    Raises
    ------
    ConfigError
        No copies; a developmental (``kind``) model; ``training.parallel_windows``;
        ``training.processes`` above 1;
        or a key other than :data:`RUNTIME_KEYS` whose value differs from copy 0's
        (the message names the key, both values and both sources).
    """
    cfgs = list(cfgs)
    if not cfgs:
        raise ConfigError("several networks in one build: no copies given")
    for k, cfg in enumerate(cfgs):
        kind = getattr(cfg, "kind", "training")
        if kind != "training":
            raise ConfigError(f"copy {k} ({cfg.source}): kind '{kind}': only training models run as copies "
                              "in one build")
        if cfg.training.parallel_windows:
            raise ConfigError(f"copy {k} ({cfg.source}): key 'training.parallel_windows' is true: copies in one "
                              "build use the sequential network (sdsnn_bio.network.SDSNNNetwork)")
        if cfg.training.processes > 1:
            raise ConfigError(f"copy {k} ({cfg.source}): key 'training.processes' is {cfg.training.processes}: "
                              "copies in one build run in one process (each copy one window at a time)")
    base = _flat(cfgs[0])
    for k, cfg in enumerate(cfgs[1:], 1):
        flat = _flat(cfg)
        for key in sorted(set(base) | set(flat)):
            a, b = base.get(key, _MISSING), flat.get(key, _MISSING)
            if a != b and not _is_runtime(key):
                show = (lambda v: "(absent)" if v is _MISSING else repr(v))
                raise ConfigError(
                    f"copy {k} ({cfg.source}): key '{key}' is {show(b)} but {show(a)} in copy 0 "
                    f"({cfgs[0].source}); copies of one build may differ only in run-time keys "
                    f"({', '.join(RUNTIME_KEYS)}): '{key}' changes the generated code, the shapes, the data "
                    "or the schedule that the copies share")


class Lockstep:
    """One shared action (the binary run) for the copies still running, once all have asked for it.

    A copy calls :meth:`wait` where a single network would run; the last of the
    active copies to arrive runs ``action`` (holding the lock), then all of them
    return. :meth:`leave` takes a copy out (finished or failed): the others no
    longer wait for it. :meth:`abort` makes every present and future
    :meth:`wait` raise.
    """

    def __init__(self, parties: int, action):
        self._cond = threading.Condition()
        self._action = action
        self.active = int(parties)
        self._arrived = 0
        self._generation = 0
        self.error = None
        self.runs = 0
        self.action_s = 0.0      # seconds spent in the action (the binary runs)

    def wait(self):
        with self._cond:
            self._raise_if_failed()
            generation = self._generation
            self._arrived += 1
            if self._arrived >= self.active:
                self._release()
            else:
                while generation == self._generation and self.error is None:
                    self._cond.wait()
            self._raise_if_failed()

    def leave(self):
        with self._cond:
            self.active -= 1
            if self.active > 0 and self._arrived >= self.active and self.error is None:
                self._release()

    def abort(self, exc: BaseException):
        with self._cond:
            if self.error is None:
                self.error = exc
            self._cond.notify_all()

    def _release(self):
        t = time.perf_counter()
        try:
            self._action()
            self.runs += 1
            self.action_s += time.perf_counter() - t
        except BaseException as exc:   # every waiting copy raises it as a RunError
            self.error = exc
        self._arrived = 0
        self._generation += 1
        self._cond.notify_all()

    def _raise_if_failed(self):
        if self.error is not None:
            raise RunError(f"the shared run of the copies failed: {self.error!r}") from self.error


class _CopyRunner:
    """Copy ``k``'s view of the fused network's :class:`~sdsnn_bio.runner.PeriodRunner`: a variable
    is the copy's block of the fused array; values set go to the copy's block of the next run's;
    :meth:`run` waits for the shared run (:class:`Lockstep`); :meth:`pending` holds the copy's own
    values (the configuration's object names, as a single run's)."""

    def __init__(self, fused, k: int):
        self._fused, self._k = fused, k

    def get(self, owner, var: str) -> np.ndarray:
        return self._fused.get_block(self._k, owner, var)

    def set_next(self, owner, var, value):
        self._fused.set_block(self._k, owner, var, value)

    def set_shared(self, owner, var, value):
        self._fused.set_flag(self._k, owner, var, value)

    def pending(self) -> dict:
        return self._fused.pending_of(self._k)

    @property
    def last_profile(self) -> dict:
        """The shared run's code objects (every copy's work is in each of them)."""
        return self._fused.runner.last_profile

    def build(self, compile: bool = True):
        """Built once for all copies by :class:`MultiSDSNNNetwork`."""

    def run(self):
        self._fused.lockstep.wait()


class NetworkCopy(SDSNNNetwork):
    """Copy ``k`` of a :class:`MultiSDSNNNetwork`: the :class:`~sdsnn_bio.network.SDSNNNetwork`
    interface (what the period loop, the structural rules and the records use) on the copy's
    blocks of the fused objects. Its stages have one copy's geometry and the fused Brian2 objects
    (names as in a single run: ``syn_fc1`` ...); ``stage.extra`` holds the copy's own initial
    weights. Built by :class:`MultiSDSNNNetwork`, not by its own constructor."""

    def compile(self):
        """The shared project is built by :class:`MultiSDSNNNetwork`."""

    def close(self):
        """The shared build folder is removed by :class:`MultiDevelopment`."""

    def structural_code_time(self) -> float:
        """This copy's share of the shared run's structural code time: the time divided by the
        copies (its code objects walk every copy's elements alike)."""
        return super().structural_code_time() / self._fused.K

    def run(self) -> np.ndarray:
        """Wait for the shared run; the output counts of this copy's output neurons."""
        self._states.clear()
        self.runner.run()
        return self._fused.output_counts(self.copy_index)


class MultiSDSNNNetwork(SDSNNNetwork):
    """``K`` copies of a training network fused into one Brian2 network and one standalone build.

    Every group and synapses object holds the elements of all copies, copy ``k``'s in block
    ``k`` (neurons ``k n .. (k+1) n - 1``, synapses ``k S .. (k+1) S - 1`` connected within the
    block), so that a time step runs each code object once for all copies: one loop (on
    ``cuda_standalone`` one kernel launch) per operation, as for one network. What the copies may
    set apart (:data:`RUNTIME_KEYS`) reaches the network as per-element variables
    (:func:`sdsnn_bio.network.per_copy_equations`): the flags that a single network holds as shared
    variables (learning rate, masks, regeneration threshold ...) have one value per neuron here,
    each copy's block its own (a synapse's flags are read from its postsynaptic neuron); initial
    weights come from each copy's own seed; the stimulus and target ``TimedArray`` have one column
    block per copy. The Python side of copy ``k`` is :attr:`copies` ``[k]`` (a
    :class:`NetworkCopy`), which reads and writes its blocks.

    Parameters
    ----------
    cfgs : sequence of ModelConfig
        One configuration per copy; they may differ only in :data:`RUNTIME_KEYS`.
    n_test_win, n_train_win : int
        Test and training windows of one period's run (every copy).
    device : str
        ``runtime``, ``cpp_standalone`` or ``cuda_standalone``, already set up with
        :func:`sdsnn_bio.devices.set_up_device`.
    directory : str
        Build folder of the standalone project.
    profile : bool
        Collect Brian2's per-code-object timings.

    Attributes
    ----------
    copies : list of NetworkCopy
        Copy ``k``'s view (the :class:`~sdsnn_bio.network.SDSNNNetwork` interface).
    lockstep : Lockstep
        Runs the binary once every active copy has asked for its run.
    """

    def __init__(self, cfgs, n_test_win: int, n_train_win: int, device: str, directory: str,
                 profile: bool = False):
        check_copies(cfgs)
        self.cfgs = list(cfgs)
        self.K = self.fused_copies = len(self.cfgs)
        self.seed = self.cfgs[0].schedule.seed
        # each copy's weights from its own seed, drawn stage after stage as a single run draws them
        self._rngs = [np.random.default_rng(c.schedule.seed) for c in self.cfgs]
        self._lock = threading.Lock()
        self._flags = {}        # (owner name, var) -> (owner, K values): re-sent with every run
        self._pending = {}      # (owner name, var) -> (owner, {copy: value}): the next run's only
        self._cache = {}        # (owner name, var) -> the fused array after the last run
        self._schedule_flags = {}   # (owner name, var) -> {copy: value} set since the last run
        self._counts = None     # output counts of the last run, all copies (windows x K classes)
        super().__init__(self.cfgs[0], n_test_win, n_train_win, device, directory, seed=self.seed,
                         profile=profile)
        self._carried = {owner.name: set(names) for owner, names in self.runner.carry}
        self._initial = {}
        for st in self.learnable_stages:
            # a convolution's kernel weights live in its weight group (SDSNNNetwork._redirect)
            self._initial[(st.extra.get("weights", st.synapses).name, "w")] = st.extra["w_init"]
            self._initial[(st.synapses.name, "connected")] = np.ones(self.K * st.n_synapses)
            self._initial[(st.group.name, "b")] = st.extra["b_init"]
        self.lockstep = Lockstep(self.K, self.run_all)
        self.copies = [self._view(k) for k in range(self.K)]

    def _initial_weights(self, st, rng) -> tuple:
        from .network import initial_weights

        drawn = [initial_weights(cfg, st, r) for cfg, r in zip(self.cfgs, self._rngs)]
        return np.concatenate([w for w, _ in drawn]), np.concatenate([b for _, b in drawn])

    def _view(self, k: int) -> NetworkCopy:
        from .geometry import stage_geometry
        from .network import Stage

        view = NetworkCopy.__new__(NetworkCopy)
        view.__dict__.update({key: value for key, value in self.__dict__.items() if key in (
            "device_name", "standalone", "n_test_win", "n_train_win", "n_windows", "n_run_windows", "T", "dt",
            "n_steps_run", "adam_on_clock", "per_step", "direct", "n_in", "stim", "target", "input_group",
            "out_monitor", "net")})
        view.cfg, view.copy_index, view._fused = self.cfgs[k], k, self
        view._states = {}
        view.stages = []
        for st, own in zip(self.stages, stage_geometry(self.cfgs[k])):
            # the copy's own layer keys (rho0, theta_dead, regen_q0) with the fused objects
            fields = {f: getattr(st, f) for f in st.__dataclass_fields__ if f != "extra"}
            fields["spec"] = own.spec
            # the fused objects (a convolution's weight group, positions and flag groups) as they
            # are; the initial weights the copy's own
            extra = dict(st.extra)
            if st.learnable:
                extra.update(w_init=st.extra["w_init"][k * st.n_synapses:(k + 1) * st.n_synapses],
                             b_init=st.extra["b_init"][k * st.n_neurons:(k + 1) * st.n_neurons])
            view.stages.append(Stage(**fields, extra=extra))
        view.runner = _CopyRunner(self, k)
        return view

    # ------------------------------------------------------------ blocks
    def _size(self, owner) -> int:
        """Elements of one copy in ``owner`` (a group or synapses object)."""
        return len(owner) // self.K

    def get_block(self, k: int, owner, var: str) -> np.ndarray:
        """Copy ``k``'s block of ``owner.var`` after the last run (a scalar as it is)."""
        from .runner import PeriodRunner

        key = (owner.name, var)
        with self._lock:
            full = self._cache.get(key) if self.standalone else None
            if full is None:
                full = PeriodRunner.get(owner, var)
                if self.standalone:
                    self._cache[key] = full
        if owner.variables[var].scalar:
            return full.copy()
        n = self._size(owner)
        return full[k * n:(k + 1) * n].copy()

    def set_block(self, k: int, owner, var: str, value):
        """A value of copy ``k``'s block for the next run (``var = "values"``: the copy's columns of
        a ``TimedArray``). On ``runtime`` it is applied at once, as a single network's is."""
        with self._lock:
            if not self.standalone:
                self._apply({k: value}, owner, var)
                return
            self._pending.setdefault((owner.name, var), (owner, {}))[1][k] = value

    def set_flag(self, k: int, owner, var: str, value: float):
        """Copy ``k``'s value of a flag (a shared variable of a single network), kept for the
        following runs; a synapses object's flag is its postsynaptic group's ``syn_<flag>``. A
        flag of the schedule (:data:`sdsnn_bio.network.SCHEDULE_FLAGS`) stays one shared value:
        the copies that set it before a run must agree."""
        from .network import SCHEDULE_FLAGS, SYNAPSE_FLAGS

        if var in SCHEDULE_FLAGS:
            with self._lock:
                given = self._schedule_flags.setdefault((owner.name, var), {})
                given[k] = float(value)
                if len(set(given.values())) > 1:
                    raise RunError(f"copies of one build disagree on '{var}' of {owner.name} (a flag of the "
                                   f"schedule they share): {given}")
                self.runner.set_shared(owner, var, float(value))
            return
        if var in SYNAPSE_FLAGS and hasattr(owner, "target"):
            owner, var = owner.target, f"syn_{var}"
        with self._lock:
            values = self._flags.setdefault((owner.name, var), (owner, np.zeros(self.K)))[1]
            values[k] = float(value)
            if not self.standalone:
                self._apply(dict(enumerate(values)), owner, var)

    def pending_of(self, k: int) -> dict:
        """Copy ``k``'s values waiting for the next run: ``{(owner name, var): value}``."""
        with self._lock:
            return {key: blocks[k] for key, (owner, blocks) in self._pending.items() if k in blocks}

    def _apply(self, blocks: dict, owner, var: str):
        """Set the copies' blocks ``{k: value}`` of ``owner.var`` in the fused array of the next
        run (the other copies' blocks keep what the next run would start from)."""
        from .runner import PeriodRunner

        if var == "values":            # a TimedArray: one column block per copy
            cols = owner.values.shape[1] // self.K
            full = np.zeros_like(owner.values) if self.standalone else owner.values.copy()
            for k, value in blocks.items():
                full[:, k * cols:(k + 1) * cols] = value
        else:
            n = self._size(owner)
            if not self.standalone or (self.runner.standalone_runs and var in self._carried.get(owner.name, ())):
                full = PeriodRunner.get(owner, var)
            else:   # a standalone run starts from the build's values
                full = self._initial.get((owner.name, var), np.zeros(self.K * n)).copy()
            for k, value in blocks.items():
                full[k * n:(k + 1) * n] = value
        self.runner.set_next(owner, var, full)

    def run_all(self):
        """The one run for all copies (the :class:`Lockstep` action): the copies' flags and blocks
        assembled into the fused arrays, then the run."""
        from .runner import reset_monitor

        with self._lock:
            if self.standalone:
                for (_, var), (owner, values) in self._flags.items():
                    self._apply(dict(enumerate(values)), owner, var)
                for (name, var), (owner, blocks) in self._pending.items():
                    self._apply(blocks, owner, var)
                self._pending.clear()
            else:
                reset_monitor(self.out_monitor)
            self._schedule_flags.clear()
            self._cache.clear()
            self.runner.run()
            # the monitor is read once for all copies (each takes its columns)
            self._counts = self._output_counts()

    def output_counts(self, k: int) -> np.ndarray:
        """Copy ``k``'s output spike counts per window of the last run (windows x classes)."""
        C = self.cfg.n_classes
        return self._counts[:, k * C:(k + 1) * C].copy()

    # the fused network is run through its copies
    def run(self):
        raise RunError("a fused network of copies runs through its copies (MultiDevelopment)")

    def compile(self):
        """Generate and compile the standalone project (runtime compiles as it runs)."""
        if self.standalone:
            self.runner.build()


def copy_dirs(out, n: int) -> list:
    """Run folders of ``n`` copies under ``out``: ``out/copy0``, ``out/copy1``, ..."""
    return [Path(out) / f"copy{k}" for k in range(n)]


def _toml_value(text: str):
    """``text`` read as a TOML value (``0.001``, ``true``, ``3``), else the string itself (``hard``)."""
    import tomllib

    try:
        return tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return text.strip()


def expand_sets(cfg, copies: int, sets=()) -> list:
    """The copies' configurations from ``--set KEY=V1,V2,...`` options.

    Parameters
    ----------
    cfg : ModelConfig
        The configuration every copy starts from.
    copies : int
        Number of copies ``K`` (``>= 1``).
    sets : sequence of str
        ``"section.key=v"`` (every copy) or ``"section.key=v0,v1,...,v(K-1)"`` (one value per
        copy); ``layers.NAME.key`` names a layer's key. Values are read as TOML values.

    Returns
    -------
    list of ModelConfig
        ``K`` validated configurations (not yet checked against each other:
        :func:`check_copies`).
    """
    from .config import config_from_dict

    if copies < 1:
        raise ConfigError(f"--copies must be >= 1, got {copies}")
    base = cfg.to_dict()
    dicts = [cfg.to_dict() for _ in range(copies)]
    for item in sets:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE or KEY=V1,V2,... (e.g. training.lr=0.001,0.003)")
        values = [_toml_value(v) for v in text.split(",")]
        if len(values) == 1:
            values = values * copies
        if len(values) != copies:
            raise ConfigError(f"--set {key}: {len(values)} values for {copies} copies (give one, or one per copy)")
        parts = key.split(".")
        for d, v in zip(dicts, values):
            if len(parts) == 2 and isinstance(base.get(parts[0]), dict):
                if parts[1] not in base[parts[0]]:
                    raise ConfigError(f"--set {key}: no key '{parts[1]}' in [{parts[0]}] "
                                      f"(keys: {', '.join(base[parts[0]])})")
                d[parts[0]][parts[1]] = v
            elif len(parts) == 3 and parts[0] == "layers":
                layer = next((lt for lt in d["layers"] if lt["name"] == parts[1]), None)
                if layer is None:
                    raise ConfigError(f"--set {key}: no layer named {parts[1]!r} "
                                      f"(layers: {', '.join(lt['name'] for lt in d['layers'])})")
                layer[parts[2]] = v
            else:
                raise ConfigError(f"--set {key}: expected 'section.key' or 'layers.NAME.key'")
    return [config_from_dict(d, source=f"{cfg.source} (copy {k})") for k, d in enumerate(dicts)]


class _CopyDevelopment(Development):
    """:class:`~sdsnn_bio.loop.Development` of one copy: the loop as it is; the network is the
    copy's view, built with the others; resume from the period all copies share."""

    def __init__(self, cfg, run_dir, *, view, data, build_s, meta, resume_period, on_period, **kwargs):
        super().__init__(cfg, run_dir, **kwargs)
        self._view, self._data, self._build_s, self._meta = view, data, build_s, meta
        self._resume_period = resume_period
        self._on_period = on_period

    def _prepare(self, resume: bool):
        from .structure.step import StructuralDevelopment

        if resume and not self.folder.has_meta():
            raise RunError(f"{self.run_dir}: nothing to resume (no {self.folder.meta.name})")
        self.data = self._data
        sch = self.cfg.schedule
        n_test = min(sch.test_per_period or len(self.data.y_test), len(self.data.y_test))
        self.plan = PeriodPlan(len(self.data.y_train), len(self.data.y_test), sch.train_per_period, n_test,
                               sch.seed)
        self.net = self._view
        self.timings["build_s"] += self._build_s
        self.structure = StructuralDevelopment(self.cfg, self.net.stages)
        self._open_folder(resume, **self._meta)

    def _restore(self) -> bool:
        """Restore the snapshot of the period every copy has (not necessarily this copy's last)."""
        self.folder.clean_temporary()
        e = self._resume_period
        if e is None:
            return False
        for later in self.folder.snapshot_periods():
            if later > e:
                self.folder.snapshot_path(later).unlink()
        snap = self.folder.load_snapshot(e)
        self.net.restore_state(snap.arrays)
        self.structure.load_dict(snap.meta["state"])
        self.rows = snap.meta["rows"]
        self.start_period = e + 1
        self.history.resume(e)
        return True

    def _snapshot(self, e: int, pending_row: dict):
        if self._on_period is not None:
            self._on_period(self._view.copy_index, e, self)
        super()._snapshot(e, pending_row)


class MultiDevelopment:
    """Train ``K`` copies of a network in one build, each recording its own run folder.

    Parameters
    ----------
    cfgs : sequence of ModelConfig
        One configuration per copy; they may differ only in :data:`RUNTIME_KEYS`
        (else :class:`~sdsnn_bio.errors.ConfigError`, before anything is built).
    run_dirs : sequence of path
        One run folder per copy (see :func:`copy_dirs`).
    device : str
        ``runtime``, ``cpp_standalone`` or ``cuda_standalone``.
    dataset : Dataset, optional
        Data to use instead of loading ``cfgs[0].data`` (every copy sees the same data).
    progress : callable, optional
        Called with one line of text per copy and period (prefixed ``[copy k]``).
    threads : int
        OpenMP threads (``cpp_standalone``).
    keep_snapshots : int
        Period snapshots kept per copy besides the best (2: a resume after a kill between
        two copies' snapshot writes finds a period that all copies have).
    profile : bool
        Per-code-object timings.
    on_period : callable, optional
        ``on_period(k, e, development)``, called in copy ``k``'s thread after period
        ``e``'s structural decisions, before its snapshot (tests read the state there).

    Examples
    --------
    >>> from sdsnn_bio.config import find_model, load_config
    >>> cfg = load_config(find_model("tiny_dense"))
    >>> cfgs = expand_sets(cfg, 2, ["training.lr=0.001,0.003"])
    >>> [c.training.lr for c in cfgs]
    [0.001, 0.003]
    >>> md = MultiDevelopment(cfgs, copy_dirs("runs/lr", 2))   # doctest: +SKIP
    >>> summaries = md.run()                                    # doctest: +SKIP
    """

    def __init__(self, cfgs, run_dirs, device: str = "cpp_standalone", dataset=None, progress=None,
                 threads: int = 1, keep_snapshots: int = 2, profile: bool = False, on_period=None):
        from .devices import check_device

        check_device(device)
        self.cfgs = list(cfgs)
        check_copies(self.cfgs)
        self.run_dirs = [Path(p) for p in run_dirs]
        if len(self.run_dirs) != len(self.cfgs):
            raise ConfigError(f"{len(self.cfgs)} copies but {len(self.run_dirs)} run folders")
        if len({p.resolve() for p in self.run_dirs}) != len(self.run_dirs):
            raise ConfigError("two copies were given the same run folder")
        self.K = len(self.cfgs)
        self.device = device
        self.dataset = dataset
        self.progress = progress or (lambda line: None)
        self.threads = threads
        self.keep_snapshots = keep_snapshots
        self.profile = profile
        self.on_period = on_period
        self.network = None
        self.timings = {}

    def _resume_period(self):
        """The last period whose snapshot every copy holds (None: start every copy afresh)."""
        from .records import RunFolder

        have = None
        for run_dir in self.run_dirs:
            folder = RunFolder(run_dir)
            if not folder.has_meta():
                raise RunError(f"{run_dir}: nothing to resume (no {folder.meta.name})")
            periods = set(folder.snapshot_periods())
            have = periods if have is None else have & periods
        return max(have) if have else None

    def run(self, resume: bool = False) -> list:
        """Run all copies to the end (or the rest of their periods with ``resume``).

        Returns
        -------
        list of dict
            Each copy's summary (what ``summary.json`` holds).

        Raises
        ------
        RunError
            Once every other copy has finished, if a copy failed (its folder keeps its
            last good snapshot); the message names the copy and its error.
        """
        from .data.registry import prepare_inputs
        from .devices import set_up_device
        from .geometry import available_memory, estimate_memory, estimate_results
        from .runner import BuildFolder

        cfg0, K = self.cfgs[0], self.K
        resume_period = self._resume_period() if resume else None
        data = prepare_inputs(cfg0, self.dataset)
        sch = cfg0.schedule
        n_test = min(sch.test_per_period or len(data.y_test), len(data.y_test))
        need, have = K * estimate_memory(cfg0, n_test + sch.train_per_period), available_memory()
        if have is not None and need > have:
            raise ConfigError(f"{cfg0.source}: {K} copies need about {need / 2**30:.1f} GiB but only "
                              f"{have / 2**30:.1f} GiB are available; run fewer copies per build")
        folder = BuildFolder(self.device, self.run_dirs[0].parent / f"build-{self.run_dirs[0].name}",
                             results=K * estimate_results(cfg0), need=need)
        t0 = time.time()
        try:
            set_up_device(self.device, str(folder.path), threads=self.threads)
            self.network = MultiSDSNNNetwork(self.cfgs, n_test, sch.train_per_period, self.device,
                                             str(folder.path), profile=self.profile)
            self.network.build_folder = folder
            self.network.compile()
        except BaseException:
            folder.remove()
            raise
        build_s = time.time() - t0
        self.timings["build_s"] = build_s
        self.progress(f"sdsnn-bio: network built in {build_s:.1f} s ({K} copies in one build)")
        shared = {"copies": K, "run_dirs": [str(p) for p in self.run_dirs], "brian2_seed": self.network.seed,
                  "device": self.device, "build_s": round(build_s, 3),
                  "runtime_keys": {k: [_flat(c).get(k) for c in self.cfgs] for k in sorted(
                      {k for c in self.cfgs for k, v in _flat(c).items() if _is_runtime(k)
                       and v != _flat(cfg0).get(k)})}}
        devs = [_CopyDevelopment(cfg, run_dir, view=view, data=data, build_s=build_s,
                                 meta={"copy": k, "shared_build": shared}, resume_period=resume_period,
                                 on_period=self.on_period, device=self.device,
                                 progress=(lambda line, k=k: self.progress(f"[copy {k}] {line}")),
                                 threads=self.threads, keep_snapshots=self.keep_snapshots, profile=self.profile)
                for k, (cfg, run_dir, view) in enumerate(zip(self.cfgs, self.run_dirs, self.network.copies))]
        self.developments = devs
        results, errors = [None] * K, [None] * K
        lockstep = self.network.lockstep

        def work(k):
            try:
                results[k] = devs[k].run(resume=resume)
            except RunError as exc:
                errors[k] = exc        # this copy stops (its last good snapshot is kept); the others go on
            except BaseException as exc:
                errors[k] = exc
                lockstep.abort(exc)
            finally:
                lockstep.leave()

        t1 = time.time()
        workers = [threading.Thread(target=work, args=(k,), name=f"sdsnn-copy{k}", daemon=True) for k in range(K)]
        try:
            for w in workers:
                w.start()
            for w in workers:
                while w.is_alive():
                    w.join(0.5)
        except BaseException as exc:     # KeyboardInterrupt in the main thread
            lockstep.abort(exc)
            for w in workers:
                w.join()
            raise
        finally:
            self.network.close()
        self.timings.update(loop_s=time.time() - t1, runs=lockstep.runs, binary_s=lockstep.action_s)
        failed = [(k, e) for k, e in enumerate(errors) if e is not None]
        if failed:
            first = next((e for _, e in failed if not isinstance(e, RunError)), None)
            if first is not None:
                raise first
            raise RunError("; ".join(f"copy {k} ({self.run_dirs[k]}): {e}" for k, e in failed))
        return results


def bench_copies(model: str = "mnist5k_fc", ks=(1, 2, 4, 8), periods: int = 3, train_per_period: int = 100,
                 test_per_period: int = 100, out="runs/bench-copies", device: str = "cpp_standalone",
                 progress=print) -> list:
    """Wall time per binary run of ``K`` copies in one build against ``K`` separate runs.

    For each ``K`` (in the order given), one single run of the model and then one
    build of ``K`` copies (seeds ``0..K-1``), alternated so that the load of a shared
    machine falls on both. A run's time per binary run is its wall time less its
    build time, over its binary runs (``periods`` plus the final evaluation's); ``K``
    separate runs take ``K`` times the single run's. The binary's own share (the
    calls of :meth:`sdsnn_bio.runner.PeriodRunner.run`) is timed apart.

    Returns
    -------
    list of dict
        Per ``K``: ``single_run_s`` and ``copies_run_s`` (per binary run, all included),
        ``ratio`` (``copies_run_s / (K single_run_s)``: below 1, one build of ``K`` copies
        is faster per period than ``K`` separate runs), the binary's share of both
        (``*_binary_s``, ``binary_ratio``) and both build times.
    """
    import json
    import shutil

    from .config import find_model, load_config
    from .devices import reset_brian
    from .runner import PeriodRunner

    base = load_config(find_model(model)).replace(schedule={
        "periods": periods, "train_per_period": train_per_period, "test_per_period": test_per_period,
        "eval_passes": 1})
    out = Path(out)
    clock = {"s": 0.0}
    plain_run = PeriodRunner.run

    def timed_run(self):
        t = time.perf_counter()
        try:
            return plain_run(self)
        finally:
            clock["s"] += time.perf_counter() - t

    rows = []
    PeriodRunner.run = timed_run
    try:
        for K in ks:
            shutil.rmtree(out, ignore_errors=True)
            reset_brian()
            clock["s"] = 0.0
            t = time.time()
            single = Development(base, out / "single", device=device)
            single.run()
            wall = time.time() - t
            n_runs = periods + int(np.ceil(len(single.data.y_test) / single.net.n_windows))
            single_run, single_bin = (wall - single.timings["build_s"]) / n_runs, clock["s"] / n_runs
            reset_brian()
            clock["s"] = 0.0
            cfgs = [base.replace(schedule={"seed": k}) for k in range(K)]
            t = time.time()
            md = MultiDevelopment(cfgs, copy_dirs(out / "copies", K), device=device)
            md.run()
            wall = time.time() - t
            runs = md.timings["runs"]
            copies_run, copies_bin = (wall - md.timings["build_s"]) / runs, clock["s"] / runs
            row = {"K": K, "single_run_s": round(single_run, 4), "copies_run_s": round(copies_run, 4),
                   "ratio": round(copies_run / (K * single_run), 3),
                   "single_binary_s": round(single_bin, 4), "copies_binary_s": round(copies_bin, 4),
                   "binary_ratio": round(copies_bin / (K * single_bin), 3), "runs": runs,
                   "single_build_s": round(single.timings["build_s"], 1),
                   "copies_build_s": round(md.timings["build_s"], 1)}
            progress(json.dumps(row))
            rows.append(row)
    finally:
        PeriodRunner.run = plain_run
    shutil.rmtree(out, ignore_errors=True)
    return rows


if __name__ == "__main__":   # python -m sdsnn_bio.multi [K ...]: the measurement of the README
    import json
    import sys

    ks = tuple(int(a) for a in sys.argv[1:]) or (1, 2, 4, 8)
    print(json.dumps(bench_copies(ks=ks), indent=1))
