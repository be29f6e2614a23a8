"""The SD-SNN training network: a Brian2 network built from a model configuration.

One structural period is one Brian2 run of ``n_test_win + n_train_win`` sample
windows of ``T`` steps and one *settle* step: first the structural decisions of
the previous period are applied (regeneration, pruning, mask; generated code at
the first step), then the test windows measure accuracy on the masked network,
then the training windows learn; in the settle step (no input) the last
mini-batch's Adam step, then the spine update, the synaptic constraint and the
importance sums run (generated code). Layer-wide decisions (percentiles,
ranking, rates) are taken in numpy between runs (:mod:`sdsnn_bio.structure.step`).
Time ``t`` counts from 0 in every period's run, on every device.

Schedule within one time step (all layers of a step are updated in that step,
as in the reference code's layer-by-layer loop over time); the ``when`` slot and
``order`` of every operation are in :data:`SLOTS`::

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
period re-runs the binary with ``run_args`` (:class:`sdsnn_bio.runner.PeriodRunner`).
The state that carries over (weights, Adam moments, biases, masks, spines) is
handed from one run to the next as the previous run's result files.
"""

import os
import re
from dataclasses import dataclass, field

import numpy as np

from .data import registry as datasets
from .errors import ConfigError, RunError
from .geometry import StageGeometry, stage_geometry
from .interface import PeriodSettings, StructuralState
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
from .runner import PeriodRunner, reset_monitor
from .spines import SPINE_VARIABLES, SYNAPSE_EQS, structural_pathways
from .structure.constraint import spine_namespace
from .structure.pruning import bias_mask_code, neuron_prune_code
from .structure.regeneration import neuron_regeneration_reset

__all__ = ["SLOTS", "slot", "EVENTS", "NEURON_CARRY", "SYNAPSE_CARRY", "SYNAPSE_FLAGS", "SCHEDULE_FLAGS", "Stage", "SDSNNNetwork",
           "network_class", "build_network", "network_namespace", "initial_weights", "per_copy_equations",
           "carried_state", "delivery"]

#: ``(when, base, per stage, per backward position)`` of every operation in a
#: time step: its order is ``base + per_stage*k + per_back*b`` for the stage at
#: position ``k`` (1 = first layer, 0 = the input) and ``b = L - k`` in the
#: backward pass (0 = the output layer).
SLOTS = {
    "time_events":        ("start", -100, 0, 0),   # window/batch/period events of every group
    "adam_clock":         ("start", -60, 0, 0),    # synapses' Adam step, one tick per batch
    "period_start_group": ("start", -50, 0, 0),    # neurons: pruning recorded, period sums cleared
    "period_start_syn":   ("start", -40, 0, 0),    # regeneration, pruning, mask
    "period_end_syn":     ("start", -30, 0, 0),    # spine update, constraint, importance
    "input_spikes":       ("thresholds", 0, 0, 0),
    "delivery":           ("thresholds", 1, 10, 0),
    "membrane":           ("thresholds", 2, 10, 0),
    "threshold":          ("thresholds", 3, 10, 0),
    "pool_activity":      ("after_resets", 0, 0, 0),
    "input_backward":     ("end", 0, 0, 10),       # input spiked in the window (b of layer 1)
    "delta":              ("end", 1, 0, 10),
    "backward":           ("end", 2, 0, 10),
    "adam_event":         ("end", 800, 1, 0),      # where the test windows do not fill batches
    "adam_bias":          ("end", 850, 1, 0),
    "output_counts":      ("end", 900, 0, 0),
    "window_clear":       ("end", 950, 1, 0),
}


def slot(name: str, k: int = 0, back: int = 0) -> tuple:
    """``(when, order)`` of operation ``name`` for stage position ``k`` and backward position ``back``."""
    when, base, per_k, per_b = SLOTS[name]
    return when, base + per_k * k + per_b * back


def _place(obj, name, k=0, back=0):
    obj.when, obj.order = slot(name, k, back)


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
#: Per-period switches of a learnable stage's synapses (:meth:`SDSNNNetwork.set_stage_flags`).
SYNAPSE_FLAGS = ("clip_on", "regen_on", "regen_threshold", "mask_on")
#: Switches that follow the schedule alone (which the copies of one build share): they stay
#: shared variables in the fused form, where the Adam step hoists their powers out of its loop.
SCHEDULE_FLAGS = ("adam_k0", "learn_on", "struct_on")


def carried_state(stages) -> list:
    """``(owner, variables)`` of the state a learnable stage carries from one period's run to the
    next (:data:`NEURON_CARRY`, :data:`SYNAPSE_CARRY`); weights read through linked variables (a
    convolution's kernel, the parallel form's master synapses) are carried by their weight group."""
    carry = []
    for st in stages:
        if "weights" in st.extra:
            carry += [(st.group, NEURON_CARRY), (st.synapses, tuple(v for v in SYNAPSE_CARRY if v != "w")),
                      (st.extra["weights"], ("w",))]
        else:
            carry += [(st.group, NEURON_CARRY), (st.synapses, SYNAPSE_CARRY)]
    return carry


def per_copy_equations(eqs: str, synapses: bool = False, afferent_flags: bool = False) -> str:
    """Equations of the fused form (:mod:`sdsnn_bio.multi`), where one group holds the neurons of
    ``K`` copies of the network: every ``(shared)`` flag but the :data:`SCHEDULE_FLAGS` becomes a
    per-element variable (each copy's elements hold the copy's value). A synapse's flags become subexpressions of
    per-neuron variables of its postsynaptic group (``clip_on = syn_clip_on_post``: eight bytes
    a neuron instead of a synapse); a fused spiking group declares them (``afferent_flags``: the
    ``syn_*`` variables added to a spiking layer's equations)."""
    out = []
    for line in eqs.splitlines():
        m = re.match(r"^(\w+) : 1 \(shared\)(.*)$", line)
        if m is None or m.group(1) in SCHEDULE_FLAGS:
            out.append(line)
        elif synapses:
            out.append(f"{m.group(1)} = syn_{m.group(1)}_post : 1{m.group(2)}")
        else:
            out.append(f"{m.group(1)} : 1{m.group(2)}")
    if afferent_flags:
        out += [f"syn_{flag} : 1  # flag {flag} of the afferent synapses" for flag in SYNAPSE_FLAGS]
    return "\n".join(out) + "\n"


def network_namespace(cfg, batch: int, n_test_win: int, n_steps_run: int) -> dict:
    """Constants of the generated code: window length, mini-batch, schedule, Adam, spine streak."""
    return {"T_steps": cfg.schedule.n_steps, "B_size": batch, "n_test_win": n_test_win, "n_steps_run": n_steps_run,
            "n_classes": cfg.n_classes, "beta1": cfg.training.beta1, "beta2": cfg.training.beta2,
            "adam_eps": cfg.training.eps, **spine_namespace(cfg.schedule.spine_streak, cfg.structure.shrink)}


def initial_weights(cfg, st, rng, n_synapses=None) -> tuple:
    """Initial weights and biases of a learnable stage: PyTorch's default initialisation of
    Linear/Conv2d, U(+-1/sqrt(fan_in)) (the weights' bound scaled by ``training.weight_init``),
    weights drawn first. ``n_synapses``: the count to draw (the stage's by default)."""
    bound = cfg.training.weight_init / np.sqrt(st.fan_in)
    w0 = rng.uniform(-bound, bound, size=st.n_synapses if n_synapses is None else n_synapses)
    b0 = rng.uniform(-1 / np.sqrt(st.fan_in), 1 / np.sqrt(st.fan_in), size=st.n_neurons)
    return w0, b0


@dataclass
class Stage(StageGeometry):
    """A stage of the built network: its geometry and its Brian2 objects."""

    group: object = None
    synapses: object = None
    extra: dict = field(default_factory=dict)   # initial weights and biases, pool weight


def _connect(syn, st, pre_group, copies):
    """Connect a stage's synapses; fused copies (``copies``: K) block by block, copy k's
    synapses (in the stage's order) at ``k*S .. (k+1)*S - 1``."""
    if copies is None:
        syn.connect(i=st.pre_index, j=st.post_index)
        return
    n_pre = len(pre_group) // copies
    syn.connect(i=np.concatenate([st.pre_index + k * n_pre for k in range(copies)]),
                j=np.concatenate([st.post_index + k * st.n_neurons for k in range(copies)]))


def _time_events(group):
    """Time-only events are detected at the start of the step, before their consumers."""
    for name in EVENTS:
        _place(group.thresholder[name], "time_events")


def _build_input(b2, n_in, ns, n_layers, per_step=False, direct=False, copies=None):
    """The input group (``n_in`` neurons, per copy of a fused build). Event spikes (``per_step``
    and not ``direct``) read the packed stimulus (:func:`sdsnn_bio.data.event_input.pack_codes`):
    neuron ``i`` of copy ``c`` reads bit ``i % STIM_BITS`` (``stim_bit`` = its value) of column
    ``c * stim_words(n_in) + i // STIM_BITS`` (``stim_col``)."""
    # The input's window-end backward event fires only for inputs that spiked in the
    # window: its one consumer, the gradient ``g += delta_post*nwin_pre/T``, adds exactly
    # zero for a silent input (about 80% of MNIST pixels are blank). It is detected once
    # the window's last spikes are counted, before the first layer's backward pathway.
    # Under direct coding the input is standardised (signed): any non-zero window sum counts.
    events = dict(EVENTS, bwd=f"({EVENTS['bwd']}) and nwin != 0" if direct else f"({EVENTS['bwd']}) and nwin > 0")
    # A blank pixel (probability 0) never spikes: testing it first skips its random
    # number (``and`` short-circuits in the generated code).
    # Event recordings (``per_step``): ``stim`` holds one row per time step, the input spikes
    # where its bit is set (no random number; see :mod:`sdsnn_bio.data.event_input`).
    # Direct (analog) coding (``direct``): the standardised pixel value x (signed; see
    # :func:`sdsnn_bio.data.registry.prepare_inputs`) is an event every step where it is not
    # zero, and the first layer receives w*x from it (:func:`_build_spiking`); ``nwin`` sums
    # x over the window, so the gradient's rate nwin/T is x.
    # Event frames (``per_step`` and ``direct``): the frame's event count is the current.
    packed = per_step and not direct
    threshold = "stim(t, i) != 0" if direct else "stim(t, stim_col) % (2 * stim_bit) >= stim_bit" if packed else \
        "stim(t, i) > 0 and rand() < stim(t, i)"
    reset = "nwin += stim(t, i)\nspike_total += 1" if direct else "nwin += 1\nspike_total += 1"
    eqs = INPUT_EQS if copies is None else per_copy_equations(INPUT_EQS)
    if packed:
        eqs += "stim_col : integer (constant)  # column of the packed stimulus\n" \
               "stim_bit : 1 (constant)        # value of this input's bit in it\n"
    inp = b2.NeuronGroup(n_in * (copies or 1), eqs, threshold=threshold,
                         reset=reset, events=events, namespace=ns, name="input")
    if packed:
        from .data.event_input import STIM_BITS, stim_words

        copy, i = np.divmod(np.arange(n_in * (copies or 1)), n_in)
        inp.stim_col = copy * stim_words(n_in) + i // STIM_BITS
        inp.stim_bit = np.ldexp(1.0, i % STIM_BITS)
    _time_events(inp)
    _place(inp.thresholder["bwd"], "input_backward", back=n_layers - 1)
    _place(inp.thresholder["spike"], "input_spikes")
    inp.run_on_event("wend", "nwin = 0", *slot("window_clear"))
    inp.run_on_event("pstart", "spike_total = 0", *slot("period_start_group"))
    return inp


def _build_pool(b2, st, pre_group, ns, back, copies=None):
    k = st.index
    eqs = POOL_EQS if copies is None else per_copy_equations(POOL_EQS)
    group = b2.NeuronGroup(st.n_neurons * (copies or 1), eqs, events=dict(EVENTS, graded="a > 0"), namespace=ns,
                           name=st.name)
    _time_events(group)
    _place(group.thresholder["graded"], "threshold", k)
    group.run_on_event("graded", "a_sum += a\nspike_total += 1\na = 0", when=slot("pool_activity")[0])
    group.run_on_event("bwd", hidden_delta_code(pool=True), *slot("delta", k, back))
    group.run_on_event("wend", WINDOW_CLEAR_POOL, *slot("window_clear", k))
    # the settle step may leave activity behind (runtime keeps it between runs)
    group.run_on_event("pstart", "spike_total = 0\n" + WINDOW_CLEAR_POOL, *slot("period_start_group"))
    pw = 1.0 / (st.spec.size * st.spec.size)
    syn = instant_synapses(b2, pre_group, group,
                           on_pre={"pre": f"a_post += {pw!r}", "bp": backprop_code("spiking", pool_weight=pw)},
                           on_event={"pre": "spike", "bp": "bwd"}, namespace=ns, name=f"syn_{st.name}")
    _connect(syn, st, pre_group, copies)
    _place(syn.pre, "delivery", k)
    _place(syn.bp, "backward", back=back)
    st.extra["pool_weight"] = pw
    return group, syn


def delivery(pre_kind: str, input_current: bool = False) -> tuple:
    """A learnable stage's forward delivery: ``(code, event)``, the weight times the pooled
    activity of a pooling stage (its ``graded`` event), times the input's value under direct
    coding (``input_current``: the first layer reads the stimulus), or the weight of a spike."""
    if pre_kind == "pool":
        return "I_post += w*a_pre", "graded"
    return ("I_post += w*stim(t, i_pre)" if input_current else "I_post += w"), "spike"


def instant_synapses(b2, source, target, **kwds):
    """``brian2.Synapses`` whose every pathway delivers in the time step of its event: a scalar
    zero delay for each pathway of ``on_pre``. Without it Brian2 keeps, for every pathway, a
    per-synapse delay array (8 bytes a synapse and pathway, in the binary's memory and in every
    period's result files, though every value is 0). The spike queue already pushes equal
    delays as one block, so the synapses run in the same order and the results are the same
    bits."""
    on_pre = kwds.get("on_pre")
    pathways = list(on_pre) if isinstance(on_pre, dict) else (["pre"] if on_pre else [])
    return b2.Synapses(source, target, delay={name: 0 * b2.ms for name in pathways}, **kwds)


def add_adam_and_structural_pathways(on_pre: dict, on_event: dict, st, cfg, adam_on_clock: bool):
    """Add a learnable stage's Adam step (as the event-driven pathway at the batch's last step
    when it is not on its own clock) and, for a structural stage, the spine, clipping, pruning
    and importance pathways, to a Synapses' ``on_pre``/``on_event`` (the sequential network's
    synapses and the parallel form's master synapses)."""
    spec = st.spec
    if not adam_on_clock:
        on_pre["adam"], on_event["adam"] = adam_synapse_code(), "bend"
    if st.structural:
        frozen = cfg.structure.frozen_conv_spines and spec.type in ("local", "conv")
        on_pre.update(structural_pathways(spines=spec.spines and not frozen, clip=spec.clipped,
                                          prune=spec.prune, importance=cfg.structure.importance))
        on_event.update(pend="pend", pstart="pstart")


def bias_adam(group, name: str, k: int, batch_dt, reduce_id=None):
    """The biases' Adam step of stage ``k``'s group: at the batch's last step (event ``bend``), or,
    in the split form (``reduce_id``: the number of ``gb`` in the reduction over processes,
    :mod:`sdsnn_bio.split`), on the per-batch clock beside the synapses' (nothing reads a bias
    between the two points), starting from the sums over the processes."""
    if reduce_id is None:
        group.run_on_event("bend", adam_bias_code(), *slot("adam_bias", k))
        return
    when, order = slot("adam_clock")
    group.run_regularly(f"put_done = sdsnn_put(gb, {reduce_id})", dt=batch_dt, when=when, order=order - 20,
                        name=f"{name}_put_gb")
    group.run_regularly(f"gb = sdsnn_get(gb, {reduce_id})\n" + adam_bias_code(tick=True), dt=batch_dt,
                        when=when, order=order, name=f"{name}_adam")


def clocked_synapse_adam(syn, name: str, batch_dt, reduce_id=None):
    """The synapses' Adam step on the per-batch clock (``syn_<name>_adam``); in the split form
    (``reduce_id``: the number of ``g`` in the reduction) from the sums over the processes, each
    process's ``g`` put into the shared buffer first (``syn_<name>_put_g``)."""
    when, order = slot("adam_clock")
    adam = adam_synapse_code(tick=True)
    if reduce_id is not None:
        syn.run_regularly(f"put_done = sdsnn_put(g, {reduce_id})", dt=batch_dt, when=when, order=order - 20,
                          name=f"syn_{name}_put_g")
        adam = f"g = sdsnn_get(g, {reduce_id})\n" + adam
    syn.run_regularly(adam, dt=batch_dt, when=when, order=order, name=f"syn_{name}_adam")


def _build_spiking(b2, st, pre_group, cfg, ns, back, target, adam_on_clock, batch_dt, init, input_current=None,
                   reduce_ids=None, copies=None):
    """A learnable spiking stage with initial weights and biases ``init`` (:func:`initial_weights`).
    ``reduce_ids``: in the split form (:mod:`sdsnn_bio.split`), the array numbers of its synapses'
    ``g`` and its neurons' ``gb`` in the reduction over processes. ``copies``: K copies fused
    (:mod:`sdsnn_bio.multi`), ``init`` the copies' values one after another."""
    spec, k = st.spec, st.index
    split = reduce_ids is not None
    group = b2.NeuronGroup(st.n_neurons * (copies or 1), LIF_EQS if copies is None else
                           per_copy_equations(LIF_EQS, afferent_flags=True),
                           threshold="v > v_th", reset="v = 0\nnwin += 1\nspike_total += 1",
                           events=dict(EVENTS), namespace=dict(ns, v_th=cfg.neuron.threshold, target=target),
                           name=spec.name)
    _time_events(group)
    _place(group.thresholder["spike"], "threshold", k)
    when, order = slot("membrane", k)
    group.run_regularly(membrane_update_code(cfg.neuron), when=when, order=order, name=f"{spec.name}_membrane")
    delta = output_delta_code(loss_batch="B_loss" if split else "B_size") if back == 0 else hidden_delta_code()
    group.run_on_event("bwd", delta, *slot("delta", k, back))
    bias_adam(group, spec.name, k, batch_dt, reduce_ids[1] if split else None)
    group.run_on_event("wend", WINDOW_CLEAR_LIF, *slot("window_clear", k))
    group.run_on_event("pstart", neuron_prune_code() + neuron_regeneration_reset() + "spike_total = 0\n"
                       + bias_mask_code() + WINDOW_CLEAR_LIF, *slot("period_start_group"))
    # Every pathway is triggered by events of the presynaptic group (all its neurons emit
    # the window/batch/period events), so that each one walks the presynaptic-major
    # synapse arrays contiguously.
    # the first layer under direct coding: the pixel value times the weight (``input_current``
    # is the stimulus TimedArray)
    fwd, fwd_event = delivery(st.pre_kind, input_current is not None)
    on_pre = {"pre": fwd, "bp": backprop_code(st.pre_kind)}
    on_event = {"pre": fwd_event, "bp": "bwd"}
    add_adam_and_structural_pathways(on_pre, on_event, st, cfg, adam_on_clock)
    syn_ns = dict(ns, regen_M=float(spec.regen_streak))
    if input_current is not None:
        syn_ns["stim"] = input_current
    syn = instant_synapses(b2, pre_group, group, model=SYNAPSE_EQS if copies is None else
                           per_copy_equations(SYNAPSE_EQS, synapses=True), on_pre=on_pre, on_event=on_event,
                           namespace=syn_ns, name=f"syn_{spec.name}")
    _connect(syn, st, pre_group, copies)
    _place(syn.pre, "delivery", k)
    _place(syn.bp, "backward", back=back)
    if adam_on_clock:
        clocked_synapse_adam(syn, spec.name, batch_dt, reduce_ids[0] if split else None)
    else:
        _place(syn.adam, "adam_event", k)
    if st.structural:
        _place(syn.pend, "period_end_syn")
        _place(syn.pstart, "period_start_syn")
    w0, b0 = init
    syn.w = w0
    syn.connected = 1.0
    group.b = b0
    st.extra["w_init"], st.extra["b_init"] = w0, b0
    return group, syn


class SDSNNNetwork:
    """A Brian2 network built from a :class:`ModelConfig` for fixed-size periods.

    This is the sequential form (one sample window after another);
    :class:`sdsnn_bio.parallel.ParallelSDSNNNetwork` runs the windows of a
    mini-batch at once (``training.parallel_windows``).

    Implements :class:`sdsnn_bio.interface.DevelopingNetwork` for the period
    loop; tests and benchmarks may also use the Brian2-level methods
    (:meth:`get`, :meth:`set_next`, :meth:`set_shared`, :meth:`set_stage_flags`).

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

    #: windows run one after another (see :mod:`sdsnn_bio.parallel` for the other form)
    parallel = False
    #: processes sharing each mini-batch's windows (:class:`sdsnn_bio.split.SplitSDSNNNetwork`)
    processes = 1
    #: copies of the network fused into each group and synapses object
    #: (:class:`sdsnn_bio.multi.MultiSDSNNNetwork`); None: one network, its flags shared variables
    fused_copies = None

    def _set_run_shape(self, cfg, n_test_win: int, n_train_win: int, device: str) -> int:
        """The configuration, device, windows per run, steps per window and ``dt``; returns the
        mini-batch size (the training windows must fill whole mini-batches)."""
        import brian2 as b2

        self.cfg = cfg
        self.device_name = device
        self.standalone = device != "runtime"
        self.n_test_win, self.n_train_win = int(n_test_win), int(n_train_win)
        # windows of one run of this network (the split form's processes each run a share of
        # the period's ``n_windows``)
        self.n_windows = self.n_run_windows = self.n_test_win + self.n_train_win
        B = cfg.training.batch // self.processes      # windows of a mini-batch in this run
        if self.n_train_win % B:
            share = f" / training.processes ({self.processes})" if self.processes > 1 else ""
            raise ConfigError(f"{cfg.source}: training windows per run ({n_train_win}) must be a "
                              f"multiple of training.batch{share} ({B})")
        self.T = cfg.schedule.n_steps
        self.dt = cfg.schedule.dt_ms * b2.ms
        return B

    def __init__(self, cfg, n_test_win: int, n_train_win: int, device: str, directory: str,
                 seed: int = 0, profile: bool = False):
        import brian2 as b2

        B = self._set_run_shape(cfg, n_test_win, n_train_win, device)
        self.n_steps_run = self.n_windows * self.T          # steps of the sample windows
        # The synapses' Adam step runs on a clock of one tick per mini-batch when the test
        # windows fill whole batches (see :mod:`sdsnn_bio.learning`)
        self.adam_on_clock = self.n_test_win % B == 0
        b2.defaultclock.dt = self.dt
        b2.seed(seed)
        rng = np.random.default_rng(seed)
        ns = network_namespace(cfg, B, self.n_test_win, self.n_steps_run)
        geo = stage_geometry(cfg)
        split = self.processes > 1
        if split:   # the loss is that of the whole mini-batch; B_size is this process's share
            ns.update(B_loss=cfg.training.batch, **self._reduction_namespace())
        n_reduced = 0
        K = self.fused_copies or 1       # copies of the network in these objects (sdsnn_bio.multi)
        self.n_in = n_in = int(np.prod(cfg.input_shape))
        # one row per window and a last row of zeros for the settle step; event
        # recordings (``per_step``): one row per time step of the windows
        self.per_step = datasets.get(cfg.data.dataset).events
        # input current: images under direct coding, event recordings as frames
        self.direct = cfg.data.event_coding == "frames" if self.per_step else cfg.data.coding == "direct"
        if self.per_step:       # spikes packed as bits (data/event_input.py), frames one value each
            from .data.event_input import stimulus_columns

            width = stimulus_columns(n_in, cfg.data.event_coding)
            self.stim = b2.TimedArray(np.zeros((self.n_steps_run + 1, K * width)), dt=self.dt, name="stim")
        else:
            self.stim = b2.TimedArray(np.zeros((self.n_windows + 1, K * n_in)), dt=self.T * self.dt, name="stim")
        self.target = b2.TimedArray(np.zeros((self.n_windows + 1, K * cfg.n_classes)), dt=self.T * self.dt,
                                    name="target")
        self.input_group = _build_input(b2, n_in, dict(ns, stim=self.stim), len(geo), per_step=self.per_step,
                                        direct=self.direct, copies=self.fused_copies)
        objects = [self.input_group]
        self.stages = []
        pre = self.input_group
        for g in geo:
            st = Stage(**{f: getattr(g, f) for f in g.__dataclass_fields__})
            back = len(geo) - st.index
            if st.kind == "pool":
                st.group, st.synapses = _build_pool(b2, st, pre, ns, back, copies=self.fused_copies)
            elif st.positions is not None:        # a convolution (sdsnn_bio.conv)
                from . import conv

                objects += conv.build_conv_stage(
                    b2, st, pre, cfg, ns, back, self.target, conv.adam_on_clock(b2, self.adam_on_clock),
                    B * self.T * self.dt, self._initial_weights(st, rng),
                    input_current=self.stim if self.direct and st.index == 1 else None, copies=self.fused_copies,
                    reduce_ids=(n_reduced, n_reduced + 1) if split else None)
                n_reduced += 2
                self.stages.append(st)
                pre = st.extra["positions"]
                continue
            else:
                st.group, st.synapses = _build_spiking(b2, st, pre, cfg, ns, back, self.target, self.adam_on_clock,
                                                       B * self.T * self.dt, self._initial_weights(st, rng),
                                                       input_current=self.stim if self.direct and st.index == 1
                                                       else None,
                                                       reduce_ids=(n_reduced, n_reduced + 1) if split else None,
                                                       copies=self.fused_copies)
                n_reduced += 2
            objects += [st.group, st.synapses]
            self.stages.append(st)
            pre = st.group
        self.out_monitor = b2.EventMonitor(self.stages[-1].group, "wend", variables=["nwin"], name="out_counts")
        _place(self.out_monitor, "output_counts")
        self.net = b2.Network(objects + [self.out_monitor])
        carry = carried_state(self.learnable_stages)
        self._states = {}            # structural_state() of the last run, read once per stage
        self.runner = PeriodRunner(self.net, (self.n_steps_run + 1) * self.dt, self.standalone, directory,
                                   carry=carry, seed=seed, profile=profile)

    def _initial_weights(self, st, rng) -> tuple:
        """Initial weights and biases of a learnable stage, drawn from the network's generator."""
        return initial_weights(self.cfg, st, rng)

    # ------------------------------------------------------- Brian2 level
    @property
    def learnable_stages(self) -> list:
        return [s for s in self.stages if s.learnable]

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    def _redirect(self, owner, var):
        """``(owner, var)`` of the array that holds ``var``: the ``w`` and ``g`` of synapses that
        read their weights through linked variables (a convolution's kernel, the parallel form's
        master synapses) live in the stage's weight group (standalone ``run_args`` name that group)."""
        if var in ("w", "g"):
            for st in self.learnable_stages:
                if owner is st.synapses and "weights" in st.extra:
                    return st.extra["weights"], var
        return owner, var

    def get(self, owner, var: str) -> np.ndarray:
        return self.runner.get(*self._redirect(owner, var))

    def set_next(self, owner, var: str, value):
        self._states.clear()   # runtime applies the value at once
        self.runner.set_next(*self._redirect(owner, var), value)

    def set_shared(self, **flags):
        """Per-period shared flags of every stage (``lr``, ``adam_k0``, ``learn_on``, ``struct_on``,
        ``hard_mask``, ``bias_mask_on``); ``learn_on``/``struct_on`` also of the input and pooling."""
        grp_flags = {"lr", "adam_k0", "learn_on", "struct_on", "bias_mask_on", "hard_mask"}
        for name in flags:
            if name not in grp_flags:
                raise KeyError(name)
        for name in ("learn_on", "struct_on"):
            if name in flags:
                for group in [self.input_group] + [g for st in self.stages for g in st.extra.get("flag_groups", ())]:
                    self.runner.set_shared(group, name, float(flags[name]))
        for st in self.stages:
            for name, value in flags.items():
                if st.kind == "spiking" or name in ("learn_on", "struct_on"):
                    self.runner.set_shared(st.group, name, float(value))

    def set_stage_flags(self, stage: Stage, **flags):
        """Shared synapse flags of one stage (``clip_on``, ``regen_on``, ``regen_threshold``, ``mask_on``)."""
        for name, value in flags.items():
            if name not in ("regen_on", "regen_threshold", "mask_on", "clip_on"):
                raise KeyError(name)
            self.runner.set_shared(stage.synapses, name, float(value))

    def build(self, compile: bool = True):
        """Generate (and compile) the standalone project without running it."""
        self.runner.build(compile=compile)

    # ------------------------------------------------- DevelopingNetwork
    def compile(self):
        """Generate and compile the standalone project (runtime compiles as it runs)."""
        if self.standalone:
            self.runner.build()

    def configure(self, period: PeriodSettings, stages: dict):
        self.set_shared(lr=period.lr, adam_k0=period.adam_steps_before, learn_on=float(period.learn),
                        struct_on=float(period.structural_step), hard_mask=float(period.hard_masks),
                        bias_mask_on=float(period.mask_biases))
        for name, s in stages.items():
            st = self.stage(name)
            flags = {"clip_on": s.clip, "regen_on": s.regenerate, "regen_threshold": s.regen_threshold,
                     "mask_on": s.apply_mask}
            self.set_stage_flags(st, **{k: v for k, v in flags.items() if v is not None})
            if s.prune_units is not None:
                self.set_next(st.group, "prune_now", np.asarray(s.prune_units)[st.unit_of_neuron].astype(float))

    def set_inputs(self, stimulus, target: np.ndarray):
        """Stimulus (windows x inputs, spike probability per step) and targets (windows x classes).

        For event recordings (``per_step``) the stimulus is one array of spike codes per
        window (:func:`sdsnn_bio.data.event_input.spike_codes`), made here into the
        per-step rows of ``stim``: packed bits (spikes) or counts (frames).
        """
        if self.per_step:
            from .data.event_input import codes_to_stimulus, pack_codes

            if len(stimulus) != self.n_run_windows:
                raise RunError(f"stimulus has {len(stimulus)} windows != expected {self.n_run_windows}")
            stimulus = (codes_to_stimulus if self.direct else pack_codes)(stimulus, self.n_in, self.T)
            self.runner.set_next(self.stim, "values",
                                 np.concatenate([stimulus, np.zeros((1, stimulus.shape[1]))]))
            stimulus = None
        else:
            stimulus = np.asarray(stimulus, dtype=np.float64)
        target = np.asarray(target, dtype=np.float64)
        for what, arr, ta, width in (("stimulus", stimulus, self.stim, self.n_in),
                                     ("target", target, self.target, self.cfg.n_classes)):
            if arr is None:
                continue
            want = (self.n_run_windows, width)
            if arr.shape != want:
                raise RunError(f"{what} shape {arr.shape} != expected {want}")
            # the settle step's row: no input
            self.runner.set_next(ta, "values", np.concatenate([arr, np.zeros((1, want[1]))]))

    def run(self) -> np.ndarray:
        """Run one period; returns the output spike counts per window (windows x classes)."""
        self._states.clear()
        self.runner.run()
        counts = self._output_counts()
        if not self.standalone:
            reset_monitor(self.out_monitor)
        return counts

    def _windows_of(self, t) -> np.ndarray:
        """The window (or slot) of a run in which each event time ``t`` (seconds) falls."""
        return np.floor(np.asarray(t) / float(self.T * self.dt) + 1e-9).astype(int)

    def _output_counts(self) -> np.ndarray:
        """The output monitor's counts of the last run: windows x output neurons."""
        mon = self.out_monitor
        counts = np.zeros((self.n_windows, len(mon.source)))
        counts[self._windows_of(mon.t_), np.asarray(mon.i)] = np.asarray(mon.nwin)
        return counts

    def structural_code_time(self) -> float:
        """Seconds the last run spent in the structural code (period start and end; ``profile``)."""
        return sum(t for name, t in self.runner.last_profile.items() if "pstart" in name or "pend" in name)

    def weights(self, stage: str) -> np.ndarray:
        return self.structural_state(stage).weights

    def structural_state(self, stage: str) -> StructuralState:
        """The stage's state after the last run, read once (the records, the activity count
        and the decisions all ask for it); kept until the next run or ``set_next``."""
        if stage not in self._states:
            self._states[stage] = self._read_structural_state(stage)
        return self._states[stage]

    def _read_structural_state(self, stage: str) -> StructuralState:
        st = self.stage(stage)
        syn, grp = st.synapses, st.group
        per_neuron = {v: self.get(grp, v) if st.structural else np.zeros(st.n_neurons)
                      for v in ("imp", "live", "regrown")}
        return StructuralState(weights=self.get(syn, "w"), upper=self.get(syn, "r_up"), lower=self.get(syn, "r_lo"),
                               connected=self.get(syn, "connected"), importance=per_neuron["imp"],
                               live=per_neuron["live"], regenerated=per_neuron["regrown"])

    def initialise_spines(self, stage: str, spines):
        syn = self.stage(stage).synapses
        for name in SPINE_VARIABLES:
            self.set_next(syn, name, getattr(spines, name))

    def events(self) -> tuple:
        """Events per neuron in the last run: the input's and every stage's (a convolution's
        positions)."""
        return (self.get(self.input_group, "spike_total"),
                [self.get(st.extra.get("positions", st.group), "spike_total") for st in self.stages])

    def state_arrays(self) -> dict:
        arrays = {}
        for st in self.learnable_stages:
            for var in NEURON_CARRY:
                arrays[f"{st.name}/group/{var}"] = self.get(st.group, var)
            for var in SYNAPSE_CARRY:
                arrays[f"{st.name}/syn/{var}"] = self.get(st.synapses, var)
        # a weight group's pending values under the name of the synapses that read them (as
        # set_next was given them; restore_state redirects them again)
        synapses_of = {st.extra["weights"].name: st.synapses.name for st in self.learnable_stages
                       if "weights" in st.extra}
        for (owner_name, var), value in self.runner.pending().items():
            if owner_name not in ("stim", "target"):
                arrays[f"pending/{synapses_of.get(owner_name, owner_name)}/{var}"] = np.asarray(value)
        return arrays

    def _named_owners(self) -> dict:
        """The Brian2 objects whose variables a snapshot may hold, by name."""
        return {o.name: o for st in self.stages for o in (st.group, st.synapses, st.extra.get("weights"))
                if o is not None}

    def restore_state(self, arrays: dict):
        owners = self._named_owners()
        for key, value in arrays.items():
            parts = key.split("/")
            if parts[0] == "pending":
                self.set_next(owners[parts[1]], parts[2], value)
            else:
                st = self.stage(parts[0])
                self.set_next(st.group if parts[1] == "group" else st.synapses, parts[2], value)

    def close(self):
        """Remove the temporary build folder of :func:`build_network` (results are in the run folder)."""
        if getattr(self, "build_folder", None) is not None:
            self.build_folder.remove()


def network_class(cfg) -> type:
    """The network class of ``cfg``: :class:`SDSNNNetwork`, or with ``training.parallel_windows``
    :class:`sdsnn_bio.parallel.ParallelSDSNNNetwork` (same constructor and interface)."""
    if cfg.training.parallel_windows:
        from .parallel import ParallelSDSNNNetwork

        return ParallelSDSNNNetwork
    if cfg.training.processes > 1:
        from .split import SplitSDSNNNetwork

        return SplitSDSNNNetwork
    return SDSNNNetwork


def build_network(cfg, n_test_win: int, n_train_win: int, device: str, run_dir, threads: int = 1,
                  profile: bool = False) -> SDSNNNetwork:
    """Set up ``device`` and build the training network of ``cfg`` for a run in ``run_dir``.

    Refuses, before anything is built, a network that would not fit in memory.
    A standalone project goes to a :class:`~sdsnn_bio.runner.BuildFolder`,
    removed by :meth:`SDSNNNetwork.close`.
    """
    from .devices import set_up_device
    from .geometry import check_memory, estimate_results
    from .runner import BuildFolder

    need = check_memory(cfg, n_test_win + n_train_win)
    folder = BuildFolder(device, os.path.join(run_dir, "build"), results=estimate_results(cfg), need=need)
    try:
        set_up_device(device, str(folder.path), threads=threads)
        net = network_class(cfg)(cfg, n_test_win, n_train_win, device=device, directory=str(folder.path),
                                 seed=cfg.schedule.seed, profile=profile)
    except BaseException:
        folder.remove()
        raise
    net.build_folder = folder
    return net
