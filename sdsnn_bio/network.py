"""Build a Brian2 network from a model configuration, and run it period by period.

One structural period is one Brian2 run of ``n_test_win + n_train_win`` sample
windows of ``T`` steps and one *settle* step: first the structural decisions of
the previous period are applied (regeneration, pruning, mask; generated code at
the first step), then the test windows measure accuracy on the masked network,
then the training windows learn; in the settle step (no input) the last
mini-batch's Adam step, then the spine update, the synaptic constraint and the
importance sums run (generated code). Layer-wide decisions (percentiles,
ranking, rates) are taken in numpy between runs by :mod:`sdsnn_bio.develop`.
Time ``t`` counts from 0 in every period's run, on every device.

Schedule within one time step (all layers of a step are updated in that step,
as in the reference code's layer-by-layer loop over time)::

    start       custom events (window end, batch end, period start/end); at the
                first step after a mini-batch: the synapses' Adam step (a loop
                over all synapses on a clock of one tick per batch); at the
                first step: per-neuron and per-synapse structural application;
                at the settle step: spine update, constraint and importance
    thresholds  input spikes; for each stage in order: synaptic delivery into I,
                membrane update + surrogate, threshold (or pooled activity)
    resets      hard reset v = 0 and spike counting
    end         at a training window's last step: output error, then layer by
                layer delta and the backward pathway (gradient + error sums; from
                the input only the synapses of inputs that spiked in the window);
                at a mini-batch's last window: Adam of the biases (and of the
                synapses where the test windows do not fill whole batches);
                then the window is cleared

In ``cpp_standalone``/``cuda_standalone`` the project is built once; every
period re-runs the binary with ``run_args``. The network state that carries
over (weights, Adam moments, biases, masks, spines) is handed from one run to
the next as the previous run's result files, never through Python.
"""

import logging
import os
from dataclasses import dataclass, field

import numpy as np

from .config import LayerSpec, ModelConfig
from .errors import ConfigError, RunError
from .learning import (
    WINDOW_CLEAR_LIF,
    WINDOW_CLEAR_POOL,
    adam_bias_code,
    adam_synapse_code,
    backprop_code,
    hidden_delta_code,
    output_delta_code,
)
from .neurons import INPUT_EQS, LIF_EQS, POOL_EQS, membrane_update_code
from .spines import (
    CLIP_CODE,
    IMPORTANCE_CODE,
    PRUNE_APPLY_CODE,
    REGENERATION_CODE,
    SPINE_UPDATE_CODE,
    SPINE_VARIABLES,
    SYNAPSE_EQS,
)

__all__ = ["layer_shapes", "connectivity", "synapse_counts", "estimate_memory", "check_memory",
           "StageInfo", "SDSNNNetwork"]

logger = logging.getLogger(__name__)

STEP = "timestep(t, dt)"
EVENTS = {
    "wend": f"{STEP} % T_steps == T_steps - 1",
    "bwd": f"{STEP} % T_steps == T_steps - 1 and {STEP}//T_steps >= n_test_win and learn_on > 0.5",
    "bend": (f"{STEP} % T_steps == T_steps - 1 and {STEP}//T_steps >= n_test_win and learn_on > 0.5"
             f" and ({STEP}//T_steps - n_test_win) % B_size == B_size - 1"),
    "pstart": f"{STEP} == 0",
    "pend": f"{STEP} == n_steps_run and struct_on > 0.5",   # the settle step
}

#: State carried from one period's run to the next.
NEURON_CARRY = ("b", "mb", "vb", "pruned")
SYNAPSE_CARRY = ("w", "mt", "vt", "connected", "regen_k", "regen_prev") + SPINE_VARIABLES


def layer_shapes(cfg: ModelConfig) -> list:
    """Output shape of the input and of every stage: ``(C, H, W)`` or ``(n,)``.

    Raises :class:`ConfigError` naming the layer whose shape does not chain.
    """
    shapes = [tuple(cfg.input_shape)]
    prev_kind = "input"
    for idx, layer in enumerate(cfg.layers):
        s = shapes[-1]
        where = f"{cfg.source}: layers[{idx}] ('{layer.name}')"
        if layer.type == "dense":
            shapes.append((layer.units,))
        elif layer.type == "local":
            if len(s) != 3:
                raise ConfigError(f"{where}: a locally connected layer needs a [C, H, W] input, got {s}")
            c, h, w = s
            ho = (h + 2 * layer.padding - layer.kernel) // layer.stride + 1
            wo = (w + 2 * layer.padding - layer.kernel) // layer.stride + 1
            if ho < 1 or wo < 1:
                raise ConfigError(f"{where}: kernel {layer.kernel} does not fit the input {s}")
            shapes.append((layer.channels, ho, wo))
        else:  # pool
            if len(s) != 3:
                raise ConfigError(f"{where}: pooling needs a [C, H, W] input, got {s}")
            if prev_kind in ("pool", "input"):
                raise ConfigError(f"{where}: pooling must follow a spiking layer, not '{prev_kind}'")
            c, h, w = s
            if h % layer.size or w % layer.size:
                raise ConfigError(f"{where}: pool size {layer.size} does not divide the input {h}x{w}")
            shapes.append((c, h // layer.size, w // layer.size))
        prev_kind = layer.type
    return shapes


def connectivity(layer: LayerSpec, in_shape: tuple, out_shape: tuple):
    """Presynaptic and postsynaptic indices of a layer's synapses, sorted by presynaptic neuron.

    Neurons are indexed channel-major, ``c*H*W + y*W + x``, the order of
    PyTorch's ``flatten``, so that a dense layer after a map sees the same
    input order as the reference network. Synapses are stored presynaptic-major:
    the forward pathway runs every step and then reads each spiking neuron's
    synapses contiguously (the paper network's pool-to-conv2 delivery took 2.4x
    longer with postsynaptic-major order); the backward pathway runs once a window.
    """
    i, j = _connectivity(layer, in_shape, out_shape)
    order = np.lexsort((j, i))
    return i[order], j[order]


def _connectivity(layer, in_shape, out_shape):
    n_in = int(np.prod(in_shape))
    n_out = int(np.prod(out_shape))
    if layer.type == "dense":
        j = np.repeat(np.arange(n_out), n_in)
        i = np.tile(np.arange(n_in), n_out)
        return i.astype(np.int32), j.astype(np.int32)
    if layer.type == "pool":
        c, h, w = in_shape
        cc, yy, xx = np.meshgrid(np.arange(c), np.arange(h), np.arange(w), indexing="ij")
        i = (cc * h * w + yy * w + xx).ravel()
        ho, wo = h // layer.size, w // layer.size
        j = (cc * ho * wo + (yy // layer.size) * wo + (xx // layer.size)).ravel()
        order = np.argsort(j, kind="stable")
        return i[order].astype(np.int32), j[order].astype(np.int32)
    # locally connected
    cin, h, w = in_shape
    cout, ho, wo = out_shape
    k, p, st = layer.kernel, layer.padding, layer.stride
    oc, oy, ox, ic, ky, kx = np.meshgrid(np.arange(cout), np.arange(ho), np.arange(wo),
                                         np.arange(cin), np.arange(k), np.arange(k), indexing="ij")
    y = oy * st + ky - p
    x = ox * st + kx - p
    ok = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    i = (ic * h * w + y * w + x)[ok]
    j = (oc * ho * wo + oy * wo + ox)[ok]
    return i.astype(np.int32), j.astype(np.int32)


#: Bytes per synapse and per neuron of a built network (the state variables,
#: Brian2's index arrays and spike-queue lists of five pathways, and the
#: copies taken between periods), measured-order estimates used to refuse a
#: network that cannot fit before anything is built.
BYTES_PER_SYNAPSE = 240
BYTES_PER_POOL_SYNAPSE = 48
BYTES_PER_NEURON = 400


def _valid_taps(n_in: int, n_out: int, k: int, pad: int, stride: int) -> int:
    """Kernel taps that fall inside the input, summed over output positions along one axis."""
    total = 0
    for o in range(n_out):
        lo = o * stride - pad
        total += sum(1 for t in range(k) if 0 <= lo + t < n_in)
    return total


def synapse_counts(cfg: ModelConfig) -> list:
    """Synapses of every stage, computed from the shapes without building anything."""
    shapes = layer_shapes(cfg)
    counts = []
    for k, layer in enumerate(cfg.layers, start=1):
        s_in, s_out = shapes[k - 1], shapes[k]
        if layer.type == "dense":
            counts.append(int(np.prod(s_in)) * layer.units)
        elif layer.type == "pool":
            counts.append(int(np.prod(s_in)))
        else:
            ty = _valid_taps(s_in[1], s_out[1], layer.kernel, layer.padding, layer.stride)
            tx = _valid_taps(s_in[2], s_out[2], layer.kernel, layer.padding, layer.stride)
            counts.append(s_in[0] * layer.channels * ty * tx)
    return counts


def estimate_memory(cfg: ModelConfig, n_windows: int) -> int:
    """Estimated peak memory (bytes) of building and running ``cfg`` with ``n_windows`` per period."""
    shapes = layer_shapes(cfg)
    total = 0
    for layer, n_syn, shape in zip(cfg.layers, synapse_counts(cfg), shapes[1:]):
        total += n_syn * (BYTES_PER_POOL_SYNAPSE if layer.type == "pool" else BYTES_PER_SYNAPSE)
        total += int(np.prod(shape)) * BYTES_PER_NEURON
    n_in = int(np.prod(shapes[0]))
    total += 3 * 8 * n_windows * (n_in + cfg.n_classes)   # stimulus and targets, with copies
    return total


def available_memory() -> int | None:
    """Memory available to a new process (bytes), from /proc/meminfo; None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_memory(cfg: ModelConfig, n_windows: int):
    """Refuse, before any build, a network that would not fit in this machine's memory."""
    need = estimate_memory(cfg, n_windows)
    have = available_memory()
    if have is not None and need > have:
        n_syn = sum(synapse_counts(cfg))
        raise ConfigError(
            f"{cfg.source}: the network needs about {need / 2**30:.1f} GiB ({n_syn:,} synapses, "
            f"{n_windows} windows a period) but only {have / 2**30:.1f} GiB are available; "
            "make it smaller or use a machine with more memory"
        )
    return need


@dataclass
class StageInfo:
    """One stage of the built network (the Brian2 objects and their geometry)."""

    spec: LayerSpec
    index: int
    in_shape: tuple
    out_shape: tuple
    kind: str                    # "spiking" or "pool"
    pre_kind: str                # "input", "spiking" or "pool"
    group: object = None
    synapses: object = None
    n_neurons: int = 0
    n_synapses: int = 0
    pre_index: np.ndarray = None
    post_index: np.ndarray = None
    unit_of_neuron: np.ndarray = None
    n_units: int = 0
    fan_in: int = 0
    reference_params: int = 0    # weights of the layer the stage stands in for (conv or linear)
    structural: bool = False     # has spines, clip or pruning
    extra: dict = field(default_factory=dict)

    @property
    def learnable(self) -> bool:
        return self.kind == "spiking"


class SDSNNNetwork:
    """A Brian2 network built from a :class:`ModelConfig` for fixed-size periods.

    Parameters
    ----------
    cfg : ModelConfig
    n_test_win, n_train_win : int
        Test and training windows of one period's run.
    device : str
        ``runtime``, ``cpp_standalone`` or ``cuda_standalone`` (already set up
        with :func:`sdsnn_bio.devices.set_up_device`).
    directory : str
        Build folder of the standalone project.
    seed : int
        Seed of the weight initialisation and of Brian2's random numbers.
    """

    def __init__(self, cfg: ModelConfig, n_test_win: int, n_train_win: int, device: str,
                 directory: str, seed: int = 0, profile: bool = False):
        import brian2 as b2

        self.b2 = b2
        self.cfg = cfg
        self.device_name = device
        self.standalone = device != "runtime"
        self.directory = os.path.abspath(directory)
        self.n_test_win = int(n_test_win)
        self.n_train_win = int(n_train_win)
        self.n_windows = self.n_test_win + self.n_train_win
        if self.n_train_win % cfg.training.batch:
            raise ConfigError(f"{cfg.source}: training windows per run ({n_train_win}) must be a "
                              f"multiple of training.batch ({cfg.training.batch})")
        self.T = cfg.schedule.n_steps
        self.dt = cfg.schedule.dt_ms * b2.ms
        self.n_steps_run = self.n_windows * self.T          # steps of the sample windows
        self.duration = (self.n_steps_run + 1) * self.dt    # and the settle step
        # The synapses' Adam step runs on a clock of one tick per mini-batch when the test
        # windows fill whole batches (see :mod:`sdsnn_bio.learning`)
        self.adam_on_clock = self.n_test_win % cfg.training.batch == 0
        self.seed = seed
        self.profile = profile
        self._built = False
        self._run_count = 0
        self._pending = {}           # (owner name, var) -> value for the next run only
        self._shared = {}            # (owner name, var) -> shared value, re-sent every run
        self._results_dirs = ("results_a", "results_b")
        self._last_results = None
        self.stages = []
        self._build()

    # ------------------------------------------------------------------ build
    def _namespace(self):
        tr = self.cfg.training
        return {
            "T_steps": self.T,
            "B_size": tr.batch,
            "n_test_win": self.n_test_win,
            "n_steps_run": self.n_steps_run,
            "n_classes": self.cfg.n_classes,
            "beta1": tr.beta1,
            "beta2": tr.beta2,
            "adam_eps": tr.eps,
            "n_streak": float(self.cfg.schedule.spine_streak),
            "shrink": self.cfg.structure.shrink,
        }

    def _build(self):
        b2 = self.b2
        cfg = self.cfg
        b2.defaultclock.dt = self.dt
        b2.seed(self.seed)
        rng = np.random.default_rng(self.seed)
        ns = self._namespace()
        shapes = layer_shapes(cfg)
        n_in = int(np.prod(shapes[0]))
        K = cfg.n_classes
        # one row per window and a last row of zeros for the settle step
        self.stim = b2.TimedArray(np.zeros((self.n_windows + 1, n_in)), dt=self.T * self.dt, name="stim")
        self.target = b2.TimedArray(np.zeros((self.n_windows + 1, K)), dt=self.T * self.dt, name="target")
        ns_in = dict(ns, stim=self.stim)
        L = len(cfg.layers)
        # The input's window-end backward event fires only for inputs that spiked in the
        # window: its one consumer, the gradient ``g += delta_post*nwin_pre/T``, adds exactly
        # zero for a silent input (about 80% of MNIST pixels are blank), so those synapses
        # are skipped -- the same result for a fifth of the work. It is detected in the
        # ``end`` slot, once the window's last spikes are counted, before the first layer's
        # backward pathway (order 10*(L-1) + 2).
        input_events = dict(EVENTS, bwd=f"({EVENTS['bwd']}) and nwin > 0")
        # A blank pixel (probability 0) never spikes: testing it first skips its random
        # number (``and`` short-circuits in the generated code), a fifth of the draws on MNIST.
        inp = b2.NeuronGroup(n_in, INPUT_EQS,
                             threshold="stim(t, i) > 0 and rand() < stim(t, i)",
                             reset="nwin += 1\nspike_total += 1", events=input_events,
                             namespace=ns_in, name="input")
        self._place_events(inp, tuple(EVENTS))
        inp.thresholder["bwd"].when, inp.thresholder["bwd"].order = "end", 10 * (L - 1)
        inp.thresholder["spike"].when = "thresholds"
        inp.thresholder["spike"].order = 0
        inp.run_on_event("wend", "nwin = 0", when="end", order=950)
        inp.run_on_event("pstart", "spike_total = 0", when="start", order=-50)
        self.input_group = inp
        objects = [inp]
        prev_group, prev_kind = inp, "input"
        for k, spec in enumerate(cfg.layers, start=1):
            in_shape, out_shape = shapes[k - 1], shapes[k]
            n = int(np.prod(out_shape))
            kind = "pool" if spec.type == "pool" else "spiking"
            st = StageInfo(spec=spec, index=k, in_shape=in_shape, out_shape=out_shape, kind=kind,
                           pre_kind=prev_kind, n_neurons=n)
            back = L - k  # position in the backward pass (output first)
            is_output = k == L
            if kind == "pool":
                group = b2.NeuronGroup(n, POOL_EQS, events=dict(EVENTS, graded="a > 0"),
                                       namespace=ns, name=spec.name)
                self._place_events(group, tuple(EVENTS))
                group.thresholder["graded"].when = "thresholds"
                group.thresholder["graded"].order = 10 * k + 3
                group.run_on_event("graded", "a_sum += a\nspike_total += 1\na = 0", when="after_resets")
                group.run_on_event("bwd", hidden_delta_code(pool=True), when="end", order=10 * back + 1)
                group.run_on_event("wend", WINDOW_CLEAR_POOL, when="end", order=950 + k)
                # the settle step may leave activity behind (runtime keeps it between runs)
                group.run_on_event("pstart", "spike_total = 0\n" + WINDOW_CLEAR_POOL, when="start", order=-50)
                pw = 1.0 / (spec.size * spec.size)
                i, j = connectivity(spec, in_shape, out_shape)
                syn = b2.Synapses(prev_group, group,
                                  on_pre={"pre": f"a_post += {pw!r}",
                                          "bp": backprop_code("spiking", pool_weight=pw)},
                                  on_event={"pre": "spike", "bp": "bwd"}, namespace=ns,
                                  name=f"syn_{spec.name}")
                syn.connect(i=i, j=j)
                syn.pre.when, syn.pre.order = "thresholds", 10 * k + 1
                syn.bp.when, syn.bp.order = "end", 10 * back + 2
                st.extra["pool_weight"] = pw
            else:
                events = dict(EVENTS)
                group = b2.NeuronGroup(n, LIF_EQS, threshold="v > v_th", reset="v = 0\nnwin += 1\nspike_total += 1",
                                       events=events, namespace=dict(ns, v_th=cfg.neuron.threshold, target=self.target),
                                       name=spec.name)
                self._place_events(group, tuple(events))
                group.thresholder["spike"].when = "thresholds"
                group.thresholder["spike"].order = 10 * k + 3
                group.run_regularly(membrane_update_code(cfg.neuron), when="thresholds", order=10 * k + 2,
                                    name=f"{spec.name}_membrane")
                delta = output_delta_code() if is_output else hidden_delta_code()
                group.run_on_event("bwd", delta, when="end", order=10 * back + 1)
                group.run_on_event("bend", adam_bias_code(), when="end", order=850 + k)
                group.run_on_event("wend", WINDOW_CLEAR_LIF, when="end", order=950 + k)
                group.run_on_event(
                    "pstart",
                    "pruned = clip(pruned + prune_now, 0, 1)\nimp = 0\nlive = 0\nregrown = 0\n"
                    "spike_total = 0\nb = b*(1 - bias_mask_on*pruned)\n" + WINDOW_CLEAR_LIF,
                    when="start", order=-50)
                i, j = connectivity(spec, in_shape, out_shape)
                on_pre = "I_post += w*a_pre" if prev_kind == "pool" else "I_post += w"
                st.structural = spec.spines or spec.clip or spec.prune
                # Every pathway is triggered by events of the presynaptic group (all its
                # neurons emit the window/batch/period events), so that each one walks
                # the presynaptic-major synapse arrays contiguously.
                on_pre = {"pre": on_pre, "bp": backprop_code(prev_kind)}
                on_event = {"pre": "graded" if prev_kind == "pool" else "spike", "bp": "bwd"}
                if not self.adam_on_clock:
                    on_pre["adam"], on_event["adam"] = adam_synapse_code(), "bend"
                if st.structural:
                    pend = ""
                    frozen = cfg.structure.frozen_conv_spines and spec.type == "local"
                    if spec.spines and not frozen:
                        pend += SPINE_UPDATE_CODE
                    if spec.clip or spec.spines:
                        pend += CLIP_CODE
                    if spec.prune:
                        pend += IMPORTANCE_CODE
                    on_pre["pend"] = pend
                    on_event["pend"] = "pend"
                    on_pre["pstart"] = REGENERATION_CODE + PRUNE_APPLY_CODE
                    on_event["pstart"] = "pstart"
                syn = b2.Synapses(prev_group, group, model=SYNAPSE_EQS, on_pre=on_pre, on_event=on_event,
                                  namespace=dict(ns, regen_M=float(spec.regen_streak)),
                                  name=f"syn_{spec.name}")
                syn.connect(i=i, j=j)
                syn.pre.when, syn.pre.order = "thresholds", 10 * k + 1
                syn.bp.when, syn.bp.order = "end", 10 * back + 2
                if self.adam_on_clock:
                    syn.run_regularly(adam_synapse_code(tick=True), dt=cfg.training.batch * self.T * self.dt,
                                      when="start", order=-60, name=f"syn_{spec.name}_adam")
                else:
                    syn.adam.when, syn.adam.order = "end", 800 + k
                if st.structural:
                    syn.pend.when, syn.pend.order = "start", -30   # after the last Adam step
                    syn.pstart.when, syn.pstart.order = "start", -40
                # PyTorch's default initialisation of Linear/Conv2d: U(+-1/sqrt(fan_in))
                if spec.type == "dense":
                    fan_in = int(np.prod(in_shape))
                    st.reference_params = fan_in * n
                else:
                    fan_in = in_shape[0] * spec.kernel * spec.kernel
                    st.reference_params = spec.channels * fan_in
                bound = cfg.training.weight_init / np.sqrt(fan_in)
                w0 = rng.uniform(-bound, bound, size=len(i))
                b0 = rng.uniform(-1 / np.sqrt(fan_in), 1 / np.sqrt(fan_in), size=n)
                syn.w = w0
                syn.connected = 1.0
                group.b = b0
                st.extra["w_init"], st.extra["b_init"] = w0, b0
                st.fan_in = fan_in
                if spec.type == "local":
                    hw = out_shape[1] * out_shape[2]
                    st.unit_of_neuron = np.arange(n) // hw
                    st.n_units = out_shape[0]
                else:
                    st.unit_of_neuron = np.arange(n)
                    st.n_units = n
            st.group, st.synapses = group, syn
            st.pre_index, st.post_index = i, j
            st.n_synapses = len(i)
            objects += [group, syn]
            self.stages.append(st)
            prev_group, prev_kind = group, kind
        out = self.stages[-1].group
        self.out_monitor = b2.EventMonitor(out, "wend", variables=["nwin"], name="out_counts")
        self.out_monitor.when, self.out_monitor.order = "end", 900
        objects.append(self.out_monitor)
        self.net = b2.Network(objects)

    def _place_events(self, group, names):
        """Time-only events are detected at the start of the step, before their consumers."""
        for name in names:
            group.thresholder[name].when = "start"
            group.thresholder[name].order = -100

    # ----------------------------------------------------------- structure
    @property
    def learnable_stages(self):
        return [s for s in self.stages if s.learnable]

    def stage(self, name: str) -> StageInfo:
        for s in self.stages:
            if s.spec.name == name:
                return s
        raise KeyError(name)

    # ------------------------------------------------------------ state I/O
    def get(self, owner, var: str) -> np.ndarray:
        """Current value (numpy copy) of a variable of a group or synapses object."""
        return np.array(owner.variables[var].get_value(), copy=True)

    def set_next(self, owner, var: str, value):
        """Set a variable for the next run (applied before that run starts)."""
        if not self.standalone:
            owner.variables[var].set_value(value) if np.ndim(value) else setattr(owner, var, value)
            return
        self._pending[(owner.name, var)] = (owner, value)

    def _set_shared(self, owner, var: str, value: float):
        """A shared (scalar) variable that keeps its value in the following runs."""
        if self.standalone:
            self._shared[(owner.name, var)] = (owner, value)
        else:
            setattr(owner, var, value)

    def set_inputs(self, stim: np.ndarray, target: np.ndarray):
        """Stimulus (windows x inputs, spike probability per step) and targets (windows x classes)."""
        stim = np.asarray(stim, dtype=np.float64)
        target = np.asarray(target, dtype=np.float64)
        want_stim = (self.n_windows, self.stim.values.shape[1])
        want_target = (self.n_windows, self.target.values.shape[1])
        if stim.shape != want_stim:
            raise RunError(f"stimulus shape {stim.shape} != expected {want_stim}")
        if target.shape != want_target:
            raise RunError(f"target shape {target.shape} != expected {want_target}")
        # the settle step's row: no input
        stim = np.concatenate([stim, np.zeros((1, want_stim[1]))])
        target = np.concatenate([target, np.zeros((1, want_target[1]))])
        if self.standalone:
            self._pending[("stim", "values")] = (self.stim, stim)
            self._pending[("target", "values")] = (self.target, target)
        else:
            self.stim.values[:] = stim
            self.target.values[:] = target

    def set_shared(self, **flags):
        """Per-period shared flags on every learnable stage (``lr``, ``clip_on`` ...)."""
        syn_flags = {"clip_on", "regen_on", "mask_on"}
        grp_flags = {"lr", "adam_k0", "learn_on", "struct_on", "bias_mask_on", "hard_mask"}
        for name, value in flags.items():
            if name in ("learn_on", "struct_on"):
                self._set_shared(self.input_group, name, float(value))
        for st in self.stages:
            for name, value in flags.items():
                if name not in syn_flags | grp_flags:
                    raise KeyError(name)
                if st.kind == "pool":
                    if name in ("learn_on", "struct_on"):
                        self._set_shared(st.group, name, float(value))
                    continue
                if name in grp_flags:
                    self._set_shared(st.group, name, float(value))
                if name in syn_flags:
                    self._set_shared(st.synapses, name, float(value))

    def set_stage_flags(self, stage: StageInfo, **flags):
        """Per-stage shared synapse flags (``regen_on``, ``regen_threshold``, ``mask_on``)."""
        for name, value in flags.items():
            if name not in ("regen_on", "regen_threshold", "mask_on", "clip_on"):
                raise KeyError(name)
            self._set_shared(stage.synapses, name, float(value))

    # -------------------------------------------------------------------- run
    def run(self):
        """Run one period; returns the output spike counts per window (windows x classes)."""
        b2 = self.b2
        if not self.standalone:
            # A standalone binary starts every period's run from the build's seed; restarting
            # the runtime stream the same way gives both devices the same input spikes.
            b2.seed(self.seed)
            # and the same time axis: a binary's run starts at t = 0, and so does this one
            # (the per-batch Adam clock ticks at multiples of its period from t = 0)
            self.net.t_ = 0.0
            self.net.run(self.duration, profile=self.profile)
            self._read_profile()
            return self._read_counts()
        self.build()
        args = self._run_args()
        results = self._results_dirs[self._run_count % 2]
        b2.device.run(directory=self.directory, results_directory=results, with_output=False,
                      run_args=args)
        self._last_results = b2.device.results_dir
        self._run_count += 1
        self._read_profile()
        return self._read_counts()

    def _read_profile(self):
        """Seconds per code object of the last run (only with ``profile=True``)."""
        if not self.profile:
            return
        if self.standalone:
            # Brian2 looks for it in "results/" only; each period here has its own results folder
            self.last_profile = {}
            with open(os.path.join(self._last_results, "profiling_info.txt")) as f:
                for line in f:
                    name, seconds = line.split()
                    self.last_profile[name] = float(seconds)
        else:
            self.last_profile = {name: float(t) for name, t in self.net.profiling_info}

    def structural_code_time(self) -> float:
        """Seconds the last run spent in the structural code (period start and end)."""
        return sum(t for name, t in getattr(self, "last_profile", {}).items()
                   if "pstart" in name or "pend" in name)

    def build(self, compile: bool = True):
        """Generate (and compile) the standalone project without running it."""
        if not self.standalone:
            raise RunError("build() is for standalone devices; runtime compiles on the first run")
        if self._built:
            return
        self.net.run(self.duration, profile=self.profile)
        os.makedirs(self.directory, exist_ok=True)
        with _redirect_stdout(os.path.join(self.directory, "build.log")):
            self.b2.device.build(directory=self.directory, compile=compile, run=False, with_output=False)
        self._built = True

    def _run_args(self):
        b2 = self.b2
        args = []
        inputs_dir = os.path.join(self.directory, "period_inputs")
        os.makedirs(inputs_dir, exist_ok=True)
        for f in os.listdir(inputs_dir):
            os.remove(os.path.join(inputs_dir, f))
        pending_names = set()
        for (owner_name, var), (owner, value) in list(self._shared.items()) + list(self._pending.items()):
            name = f"{owner_name}.{var}"
            pending_names.add(name)
            arr = np.asarray(value)
            if arr.ndim == 0:
                args.append(f"{name}={float(arr)!r}")
            else:
                dtype = owner.values.dtype if var == "values" else owner.variables[var].dtype
                path = os.path.join(inputs_dir, f"{name}.dat")
                np.ascontiguousarray(arr, dtype=dtype).tofile(path)
                args.append(f"{name}={path}")
        self._pending.clear()
        if self._last_results is not None:
            for st in self.learnable_stages:
                for owner, names in ((st.group, NEURON_CARRY), (st.synapses, SYNAPSE_CARRY)):
                    for var in names:
                        name = f"{owner.name}.{var}"
                        if name in pending_names:
                            continue
                        path = os.path.join(self._last_results,
                                            b2.device.get_array_filename(owner.variables[var]))
                        args.append(f"{name}={path}")
        return args

    def _read_counts(self) -> np.ndarray:
        mon = self.out_monitor
        t = np.asarray(mon.t_)
        i = np.asarray(mon.i)
        c = np.asarray(mon.nwin)
        win = np.floor(t / float(self.T * self.dt) + 1e-9).astype(int)
        counts = np.zeros((self.n_windows, self.cfg.n_classes))
        counts[win, i] = c
        if not self.standalone:
            _reset_monitor(mon)
        return counts


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


def _reset_monitor(mon):
    """Empty a runtime EventMonitor between periods so that memory stays bounded."""
    mon.resize(0)
    mon.variables["N"].set_value(0)
