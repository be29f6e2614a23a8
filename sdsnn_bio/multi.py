"""Several networks in one build: ``K`` copies of a model's network, one binary run per period for all.

A sweep over seeds or run-time parameters (learning rate, pruning rates, the
neurotrophic constants, masks) trains ``K`` networks of one shape. Built one by
one, each compiles the same code; here they live side by side in one Brian2
``Network``, one standalone project, and every period is one run of its binary
for all of them (issue 10, "Several networks in one build").

Each copy has its own objects (names end in ``_copy<k>``): its input group with
its own random input spikes, its layers, synapses, weights, Adam moments, masks
and spine state, its own stimulus and target ``TimedArray`` and output monitor.
The copies share no variable; they differ only in the values of *run-time keys*
(:data:`RUNTIME_KEYS`): keys that reach the network as initial values, shared
flags sent with every run, or the Python rules between periods. Any other
difference (a shape, a constant of the generated code, the data, the schedule
the copies run in step) is refused with a :class:`~sdsnn_bio.errors.ConfigError`
naming the key (:func:`check_copies`).

The period loop of every copy is :class:`sdsnn_bio.loop.Development`'s own, run
in one thread per copy: a copy's structural decisions are the existing Python
rules on that copy's state, and each copy writes a complete run folder (config,
``run.json`` with its copy index and the shared build, ``periods.csv``,
snapshots, structural history, ``summary.json``) that ``sdsnn-bio report`` and
``sdsnn-bio table`` read as any run folder. Only the run itself is shared: a
copy's ``run()`` waits until every copy still running has asked for the next
run (:class:`Lockstep`), then one binary run serves all of them.

Random numbers: the build has one Brian2 seed (copy 0's ``schedule.seed``); the
copies draw their input spikes from its stream one after another in every time
step, so each copy sees its own spikes. A copy's numbers are reproducible for the
same copies in the same order on one device, and stay the same when only the
*learning* parameters of the other copies change (how many numbers a copy draws
depends only on its stimulus); a copy is not bit-identical to a single run of
its configuration (that run draws from the stream alone). Each copy's weights
are drawn from its own ``schedule.seed`` exactly as a single run draws them, and
its data order follows its own seed.

A copy that fails its health check (NaN or exploding weights, a silent network)
stops with its last good snapshot, as a single run does; the others go on, and
:meth:`MultiDevelopment.run` raises a :class:`~sdsnn_bio.errors.RunError` naming
it at the end. Resume (``run(resume=True)``) restarts every copy from the last
period that all copies have a snapshot of (two snapshots are kept per copy, so
that a kill between two copies' snapshot writes loses at most one period).

Kernel launches: each copy has its own code objects, so a step runs ``K`` times
the code objects of one network (on ``cuda_standalone``, ``K`` times the kernel
launches). The saving is one compilation, one binary start and one state
hand-over per period for all copies; fusing the copies' kernels (one group of
``K n`` neurons with per-copy parameters as variables) is not done here.
"""

import dataclasses
import re
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
    """A copy's view of the shared :class:`~sdsnn_bio.runner.PeriodRunner`: values go to the shared
    runner, :meth:`run` waits for the shared run (:class:`Lockstep`), :meth:`pending` and
    :attr:`last_profile` hold only this copy's objects."""

    def __init__(self, runner, lockstep, suffix: str):
        self._runner = runner
        self._lockstep = lockstep
        self._own = re.compile(rf".*{re.escape(suffix)}(_|\.|$)")

    @staticmethod
    def get(owner, var: str) -> np.ndarray:
        from .runner import PeriodRunner

        return PeriodRunner.get(owner, var)

    def set_next(self, owner, var, value):
        self._runner.set_next(owner, var, value)

    def set_shared(self, owner, var, value):
        self._runner.set_shared(owner, var, value)

    def pending(self) -> dict:
        return {key: v for key, v in self._runner.pending().items() if self._own.match(key[0])}

    @property
    def last_profile(self) -> dict:
        return {name: t for name, t in self._runner.last_profile.items() if self._own.match(name)}

    def build(self, compile: bool = True):
        """Built once for all copies by :class:`MultiSDSNNNetwork`."""

    def run(self):
        self._lockstep.wait()


class _Renamed:
    """Brian2 as :mod:`sdsnn_bio.network`'s builders see it, with ``suffix`` appended to every
    name given to a ``NeuronGroup`` or ``Synapses`` (the input group is named ``"input"`` there)."""

    def __init__(self, b2, suffix: str):
        self._b2 = b2
        self._suffix = suffix

    def __getattr__(self, name):
        return getattr(self._b2, name)

    def _name(self, name):
        return name if name.endswith(self._suffix) else name + self._suffix

    def NeuronGroup(self, *args, name, **kwargs):
        return self._b2.NeuronGroup(*args, name=self._name(name), **kwargs)

    def Synapses(self, *args, name, **kwargs):
        return self._b2.Synapses(*args, name=self._name(name), **kwargs)


def _suffix(k: int) -> str:
    return f"_copy{k}"


class NetworkCopy(SDSNNNetwork):
    """One copy of a :class:`MultiSDSNNNetwork`: the :class:`~sdsnn_bio.network.SDSNNNetwork`
    interface (what the period loop, the structural rules and the records use) on this copy's
    objects. Built by :class:`MultiSDSNNNetwork`, not by its own constructor. Stage names are the
    configuration's; the Brian2 objects' names end in ``_copy<k>``. Snapshots hold the
    configuration's names, as a single run's do."""

    def compile(self):
        """The shared project is built by :class:`MultiSDSNNNetwork`."""

    def close(self):
        """The shared build folder is removed by :class:`MultiDevelopment`."""

    def state_arrays(self) -> dict:
        out = {}
        for key, value in super().state_arrays().items():
            parts = key.split("/")
            if parts[0] == "pending" and parts[1].endswith(self.suffix):
                parts[1] = parts[1][:-len(self.suffix)]
            out["/".join(parts)] = value
        return out

    def restore_state(self, arrays: dict):
        mapped = {}
        for key, value in arrays.items():
            parts = key.split("/")
            if parts[0] == "pending":
                parts[1] = parts[1] + self.suffix
            mapped["/".join(parts)] = value
        super().restore_state(mapped)


class MultiSDSNNNetwork:
    """``K`` copies of a training network in one Brian2 ``Network`` and one standalone build.

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
        import brian2 as b2

        from .geometry import stage_geometry
        from .network import NEURON_CARRY, SYNAPSE_CARRY
        from .runner import PeriodRunner

        check_copies(cfgs)
        self.cfgs = list(cfgs)
        self.K = len(self.cfgs)
        cfg0 = self.cfgs[0]
        self.device_name = device
        self.standalone = device != "runtime"
        B = cfg0.training.batch
        if int(n_train_win) % B:
            raise ConfigError(f"{cfg0.source}: training windows per run ({n_train_win}) must be a "
                              f"multiple of training.batch ({B})")
        self.seed = cfg0.schedule.seed
        dt = cfg0.schedule.dt_ms * b2.ms
        b2.defaultclock.dt = dt
        b2.seed(self.seed)
        self.copies, objects, carry = [], [], []
        for k, cfg in enumerate(self.cfgs):
            # the same shapes for every copy (check_copies), each with its own layer keys (rho0, ...)
            view = self._build_copy(b2, cfg, k, stage_geometry(cfg), device, int(n_test_win), int(n_train_win))
            self.copies.append(view)
            objects += [view.input_group] + [o for st in view.stages for o in (st.group, st.synapses)] + \
                [view.out_monitor]
            carry += [(owner, names) for st in view.learnable_stages
                      for owner, names in ((st.group, NEURON_CARRY), (st.synapses, SYNAPSE_CARRY))]
        self.net = b2.Network(objects)
        v0 = self.copies[0]
        self.n_windows = v0.n_windows
        self.runner = PeriodRunner(self.net, (v0.n_steps_run + 1) * dt, self.standalone, directory, carry=carry,
                                   seed=self.seed, profile=profile)
        self.lockstep = Lockstep(self.K, self.runner.run)
        for k, view in enumerate(self.copies):
            view.runner = _CopyRunner(self.runner, self.lockstep, view.suffix)

    @staticmethod
    def _build_copy(b2, cfg, k, geo, device, n_test_win, n_train_win):
        """Copy ``k``'s objects: :class:`sdsnn_bio.network.SDSNNNetwork`'s construction with names
        ending in ``_copy<k>`` and the copy's own weight generator (its ``schedule.seed``)."""
        from .data import registry as datasets
        from .network import Stage, _build_input, _build_pool, _build_spiking, _place
        from .structure.constraint import spine_namespace

        view = NetworkCopy.__new__(NetworkCopy)
        suffix = _suffix(k)
        view.copy_index, view.suffix = k, suffix
        view.cfg = cfg
        view.device_name = device
        view.standalone = device != "runtime"
        view.n_test_win, view.n_train_win = n_test_win, n_train_win
        view.n_windows = view.n_run_windows = n_test_win + n_train_win
        B = cfg.training.batch
        view.T = cfg.schedule.n_steps
        view.dt = cfg.schedule.dt_ms * b2.ms
        view.n_steps_run = view.n_windows * view.T
        view.adam_on_clock = n_test_win % B == 0
        view._states = {}
        rng = np.random.default_rng(cfg.schedule.seed)
        ns = {"T_steps": view.T, "B_size": B, "n_test_win": n_test_win, "n_steps_run": view.n_steps_run,
              "n_classes": cfg.n_classes, "beta1": cfg.training.beta1, "beta2": cfg.training.beta2,
              "adam_eps": cfg.training.eps, **spine_namespace(cfg.schedule.spine_streak, cfg.structure.shrink)}
        n_in = int(np.prod(cfg.input_shape))
        view.per_step = datasets.get(cfg.data.dataset).events
        view.direct = cfg.data.event_coding == "frames" if view.per_step else cfg.data.coding == "direct"
        if view.per_step:
            view.stim = b2.TimedArray(np.zeros((view.n_steps_run + 1, n_in)), dt=view.dt, name=f"stim{suffix}")
        else:
            view.stim = b2.TimedArray(np.zeros((view.n_windows + 1, n_in)), dt=view.T * view.dt,
                                      name=f"stim{suffix}")
        view.target = b2.TimedArray(np.zeros((view.n_windows + 1, cfg.n_classes)), dt=view.T * view.dt,
                                    name=f"target{suffix}")
        renamed = _Renamed(b2, suffix)
        view.input_group = _build_input(renamed, n_in, dict(ns, stim=view.stim), len(geo), per_step=view.per_step,
                                        direct=view.direct)
        view.stages = []
        pre = view.input_group
        for g in geo:
            fields = {f: getattr(g, f) for f in g.__dataclass_fields__}
            fields["spec"] = dataclasses.replace(g.spec, name=g.spec.name + suffix)
            st = Stage(**fields)
            back = len(geo) - st.index
            if st.kind == "pool":
                st.group, st.synapses = _build_pool(renamed, st, pre, ns, back)
            else:
                st.group, st.synapses = _build_spiking(renamed, st, pre, cfg, ns, back, view.target,
                                                       view.adam_on_clock, B * view.T * view.dt, rng,
                                                       input_current=view.stim if view.direct and st.index == 1
                                                       else None)
            # the stage is the configuration's layer again (stage names, snapshots, history)
            st.spec = g.spec
            view.stages.append(st)
            pre = st.group
        view.out_monitor = b2.EventMonitor(view.stages[-1].group, "wend", variables=["nwin"],
                                           name=f"out_counts{suffix}")
        _place(view.out_monitor, "output_counts")
        return view

    def compile(self):
        """Generate and compile the standalone project (runtime compiles as it runs)."""
        if self.standalone:
            self.runner.build()

    def close(self):
        """Remove the temporary build folder (set by :class:`MultiDevelopment`)."""
        if getattr(self, "build_folder", None) is not None:
            self.build_folder.remove()


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
        from .geometry import available_memory, estimate_memory
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
        folder = BuildFolder(self.device, self.run_dirs[0].parent / f"build-{self.run_dirs[0].name}")
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
