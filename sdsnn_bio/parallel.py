"""Mini-batch-parallel training (``training.parallel_windows``): the B windows of a batch at once.

Within a mini-batch the weights do not change (the Adam step comes at the
batch's end), so the ``B`` windows of a batch can run at the same time and
give exactly the gradients that running them one after another gives. This
module builds that form of :class:`sdsnn_bio.network.SDSNNNetwork`: one Brian2
network with ``B`` replicas of every layer's neurons, each replica presented a
different sample of the batch, all reading one set of weights.

Objects of a learnable stage (``n`` neurons, ``S`` synapses), with names::

    <layer>_weights   NeuronGroup(S): the weight w and its gradient sum g, one element per synapse
    syn_<layer>       Synapses (master): the rest of the synaptic state (Adam moments, mask,
                      spines, regeneration), w and g read through linked variables; the Adam
                      step on a clock of one tick per batch and the structural pathways,
                      exactly the code of the sequential form
    <layer>           NeuronGroup(n) (master): bias, its Adam state, pruning state and flags;
                      its bias Adam step and period-start code are the sequential form's
    <layer>_rep       NeuronGroup(B*n): the replicas' membranes and window sums (neuron r*n + k
                      is neuron k of replica r); the bias is linked to the master's
    syn_<layer>_rep   Synapses(B*S): the replicas' forward delivery and backward error sum,
                      ``w : 1 (linked)`` to the weight group through the index ``widx``
    <layer>_grad      Synapses(B*S) from the presynaptic replicas to the weight group: at a
                      training window's end ``g_post += delta*rate_pre``, the replica's
                      contribution to the gradient (``delta_r`` linked to the replica's delta)
    <layer>_gbias     Synapses(B*n) from the replicas to the master group: ``gb_post += delta_pre``

The input is ``input_rep`` (B*n_in Bernoulli neurons, replica r reading column
block r of the stimulus) and ``input`` (a master of ``n_in`` silent neurons
that only emits the period events the first layer's master synapses run on).
A pooling stage has no weights: it is simply replicated (with a silent master
group of period events when a learnable layer follows it). A convolution
(:mod:`sdsnn_bio.conv`) already reads its kernel through linked variables: its
positions, their synapses and its backward pass are replicated
(``build_conv_stage(..., replicas=B)``), the kernel, its master synapses and the
channels are one, and a silent master of period events stands for its positions
before the next stage.

Time: one *slot* of ``T`` steps holds ``B`` windows; the test windows fill
``ceil(n_test/B)`` slots (the last one padded with blank windows whose output
is dropped), every training slot is one mini-batch. The master objects see
slots where the sequential form sees windows, with a batch of one slot
(``B_size = 1`` in their namespace): the Adam clock ticks once per slot, at
the first step after it, and its step count is the batch count of the
sequential form. The output error keeps the loss's ``1/(B K)`` factor
(``B_size = B`` in the replicas' namespace).

Why the weights change exactly as in the sequential form: within a batch the
sequential form adds, window by window, ``delta*rate`` to ``g`` and ``delta``
to ``gb``; here the same products are added to the same sums in the same
order (the gradient pathways process their events in presynaptic-index order,
which is replica order r = 0..B-1, the windows' order within the batch), so
given the same input spikes the sums are bit-identical; the Adam, structural
and mask code is the sequential form's, on the same state. The input spikes
themselves differ: ``rand()`` is drawn per replica neuron in another order.
"""

import numpy as np

from .errors import RunError
from .geometry import stage_geometry
from .learning import WINDOW_CLEAR_LIF, WINDOW_CLEAR_POOL, backprop_code, \
    hidden_delta_code, output_delta_code
from .network import EVENTS, SDSNNNetwork, Stage, add_adam_and_structural_pathways, carried_state, delivery, \
    initial_weights, instant_synapses, network_namespace, slot
from .neurons import INPUT_EQS, LIF_EQS, POOL_EQS, membrane_update_code
from .runner import PeriodRunner
from .spines import SYNAPSE_EQS
from .structure.pruning import bias_mask_code, neuron_prune_code
from .structure.regeneration import neuron_regeneration_reset

__all__ = ["ParallelSDSNNNetwork", "replica_layout", "weights_and_master_synapses", "without_bias_gradient",
           "spiking_replicas", "event_master", "master_group", "bias_gradient_synapses", "WINDOW_EVENTS",
           "MASTER_SYNAPSE_EQS", "REPLICA_LIF_EQS", "WEIGHT_EQS"]

#: One element per synapse: the weight (which the master and replica synapses read and write
#: through linked variables) and the batch's gradient sum (the replicas add into it).
WEIGHT_EQS = """
w : 1                       # synaptic weight, shared by all replicas
g : 1                       # loss gradient summed over the windows of the current mini-batch
"""


def _linked(eqs: str, names) -> str:
    """``eqs`` with the variables ``names`` made ``(linked)`` (their comment kept)."""
    out = []
    for line in eqs.splitlines():
        head, sep, comment = line.partition("#")
        parts = head.split(":")
        if len(parts) == 2 and parts[0].strip() in names:
            line = f"{parts[0].strip()} : {parts[1].strip()} (linked)  {sep}{comment}".rstrip()
        out.append(line)
    return "\n".join(out) + "\n"


#: The master synapses: :data:`sdsnn_bio.spines.SYNAPSE_EQS` with ``w`` and ``g`` linked to the
#: weight group (element ``widx``).
MASTER_SYNAPSE_EQS = _linked(SYNAPSE_EQS, ("w", "g")) + "widx : integer (constant)\n"

#: A replica of a spiking layer: the window state of :data:`sdsnn_bio.neurons.LIF_EQS`, the
#: bias linked to the master group's.
REPLICA_LIF_EQS = """
v : 1
I : 1
b : 1 (linked)
nwin : 1
sg_acc : 1
dacc : 1
delta : 1
spike_total : 1
learn_on : 1 (shared)
struct_on : 1 (shared)
"""

#: A silent master of period events (the input's, or a pooling stage's).
EVENT_EQS = INPUT_EQS


class _LinkedWriteWarnings:
    """Drop Brian2's warning that a code block "may not be well-defined" (the outcome may depend on
    the order of execution). The master synapses write ``w`` and ``g`` through linked variables
    whose index ``widx`` is a one-to-one map (every synapse its own element), which Brian2 cannot
    see, so it warns at every build about the Adam and structural code; the order cannot matter
    there. The sequential form's code raises no such warning."""

    PHRASE = "Came across an abstract code block that may not be well-defined"

    def filter(self, record):
        return self.PHRASE not in record.getMessage()


def _quiet_linked_writes():
    import logging

    logger = logging.getLogger("brian2.codegen.generators.base")
    if not any(isinstance(f, _LinkedWriteWarnings) for f in logger.filters):
        logger.addFilter(_LinkedWriteWarnings())


def without_bias_gradient(delta_code: str) -> str:
    """A layer's delta code without its bias-gradient line ``gb += delta``: where the spiking
    neurons are replicas or positions, synapses sum their deltas into the group with the bias."""
    return "\n".join(line for line in delta_code.splitlines() if line.strip() != "gb += delta")


#: The events of replicated spiking neurons: their window's end, its backward pass and the
#: period's start (the Adam and structural events come from master groups).
WINDOW_EVENTS = ("wend", "bwd", "pstart")


def spiking_replicas(b2, n, cfg, ns, target, name, k, back, delta, bias_group, bias_index, events=WINDOW_EVENTS):
    """``n`` LIF neurons whose bias and learning state live in another group (the parallel form's
    replicas, a convolution's positions): membranes and window sums, the bias linked to
    ``bias_group`` at ``bias_index``, the layer's ``delta`` code without its bias-gradient line
    (synapses sum the deltas into ``bias_group``), emitting ``events`` (names of
    :data:`sdsnn_bio.network.EVENTS`)."""
    group = b2.NeuronGroup(n, REPLICA_LIF_EQS, threshold="v > v_th", reset="v = 0\nnwin += 1\nspike_total += 1",
                           events=_events(events, EVENTS), namespace=dict(ns, v_th=cfg.neuron.threshold, target=target),
                           name=name)
    for event in events:
        _when(group.thresholder[event], "time_events")
    _when(group.thresholder["spike"], "threshold", k)
    group.b = b2.linked_var(bias_group, "b", index=bias_index)
    when, order = slot("membrane", k)
    group.run_regularly(membrane_update_code(cfg.neuron), when=when, order=order, name=f"{name}_membrane")
    group.run_on_event("bwd", without_bias_gradient(delta), *slot("delta", k, back))
    group.run_on_event("wend", WINDOW_CLEAR_LIF, *slot("window_clear", k))
    group.run_on_event("pstart", "spike_total = 0\n" + WINDOW_CLEAR_LIF, *slot("period_start_group"))
    return group


def weights_and_master_synapses(b2, st, pre_master, group, cfg, ns, on_clock: bool, adam_dt, copies=None,
                                reduce_id=None):
    """A learnable stage's weights in a group of their own and the synapses holding the rest of
    their state: ``<layer>_weights`` (``w`` and its gradient sum ``g``, one element a synapse)
    and ``syn_<layer>`` from ``pre_master`` to ``group`` (Adam, mask, spines, regeneration and
    importance: the sequential form's code, with ``w`` and ``g`` linked to the weight group).
    ``on_clock``: the Adam step on a clock of period ``adam_dt``, else the event-driven
    pathway. ``copies``: K networks fused (:mod:`sdsnn_bio.multi`), copy k's weights and
    synapses in block k, its flags read from its block of ``group``. ``reduce_id``: the split
    form's number of the weight group's ``g`` in the reduction over processes (a convolution's
    kernel, :mod:`sdsnn_bio.split`; on the clock only). Shared by the parallel form and
    convolutions (:mod:`sdsnn_bio.conv`)."""
    from .network import _connect, clocked_synapse_adam, per_copy_equations

    spec, k, n_syn = st.spec, st.index, st.n_synapses * (copies or 1)
    weights = b2.NeuronGroup(n_syn, WEIGHT_EQS, name=f"{spec.name}_weights")
    on_pre, on_event = {}, {}
    add_adam_and_structural_pathways(on_pre, on_event, st, cfg, on_clock)
    # a layer without spines or clipping whose Adam step runs on its own clock has no pathway
    # here (Brian2 takes no on_event without an on_pre)
    paths = {"on_pre": on_pre, "on_event": on_event} if on_pre else {}
    model = MASTER_SYNAPSE_EQS if copies is None else per_copy_equations(MASTER_SYNAPSE_EQS, synapses=True)
    syn = instant_synapses(b2, pre_master, group, model=model, namespace=dict(ns, regen_M=float(spec.regen_streak)),
                               name=f"syn_{spec.name}", **paths)
    _connect(syn, st, pre_master, copies)
    syn.widx = np.arange(n_syn)
    syn.w = b2.linked_var(weights, "w", index="widx")
    syn.g = b2.linked_var(weights, "g", index="widx")
    if on_clock:
        clocked_synapse_adam(syn, spec.name, adam_dt, reduce_id)
    else:
        assert reduce_id is None, "the split form takes the Adam step on the per-batch clock"
        _when(syn.adam, "adam_event", k)
    if st.structural:
        _when(syn.pend, "period_end_syn")
        _when(syn.pstart, "period_start_syn")
    return weights, syn


def event_master(b2, n, ns, name, on_clock: bool, copies=None):
    """Silent neurons that only emit the period events (and, where the Adam step is not on its
    clock, the batch's end): the presynaptic group of master synapses (``copies``: of K fused
    networks, ``n`` for each; their only flags follow the shared schedule)."""
    names = ("pstart", "pend") if on_clock else ("pstart", "pend", "bend")
    group = b2.NeuronGroup(n * (copies or 1), EVENT_EQS, events=_events(names, EVENTS), namespace=ns, name=name)
    for event in names:
        _when(group.thresholder[event], "time_events")
    return group


def master_group(b2, st, ns, copies=None, reduce_id=None, batch_dt=None):
    """The group of a stage whose spiking neurons live elsewhere (replicas, a convolution's
    positions): per neuron the bias and its Adam step, the pruning and importance state, no
    membrane; the sequential form's bias and period-start code. ``copies``: K networks fused
    (:mod:`sdsnn_bio.multi`): the flags per neuron, each copy's block its own, with the flags of
    the afferent synapses (:func:`sdsnn_bio.network.per_copy_equations`). ``reduce_id``,
    ``batch_dt``: the split form's bias step (:func:`sdsnn_bio.network.bias_adam`)."""
    from .network import bias_adam, per_copy_equations

    names = ("bend", "pstart", "pend")
    eqs = LIF_EQS if copies is None else per_copy_equations(LIF_EQS, afferent_flags=True)
    group = b2.NeuronGroup(st.n_neurons * (copies or 1), eqs, events=_events(names, EVENTS), namespace=ns,
                           name=st.spec.name)
    for event in names:
        _when(group.thresholder[event], "time_events")
    bias_adam(group, st.spec.name, st.index, batch_dt, reduce_id)
    group.run_on_event("pstart", neuron_prune_code() + neuron_regeneration_reset() + "spike_total = 0\n"
                       + bias_mask_code() + WINDOW_CLEAR_LIF, *slot("period_start_group"))
    return group


def bias_gradient_synapses(b2, st, spiking, group, master_index, ns, back: int):
    """``<layer>_gbias``: at a training window's end every spiking neuron adds its delta to the
    bias gradient of its master neuron ``master_index``."""
    gbias = instant_synapses(b2, spiking, group, on_pre="gb_post += delta_pre", on_event="bwd", namespace=dict(ns),
                                 name=f"{st.spec.name}_gbias")
    gbias.connect(i=np.arange(len(spiking)), j=master_index)
    _when(gbias.pre, "backward", back=back)
    return gbias


def replica_layout(n_test: int, n_train: int, B: int) -> tuple:
    """Slot and replica of every window: ``(slot, replica, n_test_slots, n_slots)``.

    Test window ``w`` sits in slot ``w // B``, replica ``w % B``; training
    window ``j`` (0-based after the test windows) in slot
    ``ceil(n_test/B) + j // B``, replica ``j % B``.
    """
    n_test_slots = -(-n_test // B)
    w = np.arange(n_test + n_train)
    test = w < n_test
    j = w - n_test
    slot = np.where(test, w // B, n_test_slots + j // B)
    replica = np.where(test, w % B, j % B)
    return slot, replica, n_test_slots, n_test_slots + n_train // B


def _when(obj, name, k=0, back=0):
    obj.when, obj.order = slot(name, k, back)


def _events(names, ns_events):
    return {n: ns_events[n] for n in names}


class ParallelSDSNNNetwork(SDSNNNetwork):
    """The training network with the ``B`` windows of a mini-batch run at once.

    Same interface and parameters as :class:`sdsnn_bio.network.SDSNNNetwork`
    (it is built by :func:`sdsnn_bio.network.build_network` when
    ``training.parallel_windows`` is true); :attr:`stages` hold the master
    objects (group and synapses with the state the structural rules and the
    records read), ``stage.extra["replica"]`` the replicas.
    """

    parallel = True

    def __init__(self, cfg, n_test_win: int, n_train_win: int, device: str, directory: str,
                 seed: int = 0, profile: bool = False):
        import brian2 as b2

        _quiet_linked_writes()
        self.B = B = self._set_run_shape(cfg, n_test_win, n_train_win, device)
        T = self.T
        self.slot_of, self.replica_of, self.n_test_slots, self.n_slots = replica_layout(
            self.n_test_win, self.n_train_win, B)
        self.n_steps_run = self.n_slots * T
        # The Adam step on a clock of one tick per slot (batch), as in the sequential form; on
        # Brian2's numpy target as the event-driven pathway at the batch's last step (the same
        # code as the sequential form's when its test windows do not fill whole batches): the
        # numpy target cannot run a synapses' run_regularly that writes a linked variable
        # (brian2 2.10.1 falls back to a Python loop that fails with NameError '_idx').
        self.adam_on_clock = b2.get_device().__class__.__name__ != "RuntimeDevice" or \
            b2.prefs.codegen.target != "numpy"
        self.per_step = False
        b2.defaultclock.dt = self.dt
        b2.seed(seed)
        rng = np.random.default_rng(seed)
        ns = network_namespace(cfg, 1, self.n_test_slots, self.n_steps_run)
        ns_rep = dict(ns, B_size=B)     # the loss's 1/(B K) in the output error
        geo = stage_geometry(cfg)
        n_in = int(np.prod(cfg.input_shape))
        self.direct = cfg.data.coding == "direct"
        slot_dt = T * self.dt
        self.stim = b2.TimedArray(np.zeros((self.n_slots + 1, B * n_in)), dt=slot_dt, name="stim")
        self.target = b2.TimedArray(np.zeros((self.n_slots + 1, B * cfg.n_classes)), dt=slot_dt, name="target")
        objects = []
        # --------------------------------------------------------------- input
        ev = dict(EVENTS)
        ev_in = dict(ev, bwd=f"({ev['bwd']}) and nwin != 0" if self.direct else f"({ev['bwd']}) and nwin > 0")
        threshold = "stim(t, i) != 0" if self.direct else "stim(t, i) > 0 and rand() < stim(t, i)"
        reset = "nwin += stim(t, i)\nspike_total += 1" if self.direct else "nwin += 1\nspike_total += 1"
        inp_rep = b2.NeuronGroup(B * n_in, INPUT_EQS, threshold=threshold, reset=reset,
                                 events=_events(("wend", "bwd", "pstart"), ev_in),
                                 namespace=dict(ns, stim=self.stim), name="input_rep")
        self._place_time_events(inp_rep, ("wend", "pstart"))
        _when(inp_rep.thresholder["bwd"], "input_backward", back=len(geo) - 1)
        _when(inp_rep.thresholder["spike"], "input_spikes")
        inp_rep.run_on_event("wend", "nwin = 0", *slot("window_clear"))
        inp_rep.run_on_event("pstart", "spike_total = 0", *slot("period_start_group"))
        self.input_group = self._event_master(b2, n_in, ns, "input")
        self.input_replica = inp_rep
        objects += [self.input_group, inp_rep]
        self._flag_groups = [self.input_group, inp_rep]
        self.stages = []
        pre_master, pre_rep = self.input_group, inp_rep
        for g in geo:
            st = Stage(**{f: getattr(g, f) for f in g.__dataclass_fields__})
            back = len(geo) - st.index
            if st.kind == "pool":
                made = self._build_pool(b2, st, pre_rep, ns, back)
                pre_rep = st.group
            elif st.positions is not None:        # a convolution: its positions replicated
                from . import conv

                made = conv.build_conv_stage(b2, st, pre_rep, cfg, ns, back, self.target, self.adam_on_clock,
                                             self.T * self.dt, initial_weights(cfg, st, rng),
                                             input_current=self.stim if self.direct and st.index == 1 else None,
                                             replicas=B)
                pre_rep = st.extra["replica"] = st.extra["positions"]
            else:
                made = self._build_spiking(b2, st, pre_master, pre_rep, cfg, ns, ns_rep, back, rng,
                                           input_current=self.stim if self.direct and st.index == 1 else None)
                pre_master, pre_rep = st.group, st.extra["replica"]
            if st.kind == "pool" or st.positions is not None:
                # a silent master of period events for the next stage's master synapses
                if st.index < len(geo):
                    master = self._event_master(b2, len(pre_rep) // B, ns, f"{st.name}_events")
                    made.append(master)
                    self._flag_groups.append(master)
                    pre_master = master
            objects += made
            self.stages.append(st)
        out_rep = self.stages[-1].extra["replica"]
        self.out_monitor = b2.EventMonitor(out_rep, "wend", variables=["nwin"], name="out_counts")
        _when(self.out_monitor, "output_counts")
        self.net = b2.Network(objects + [self.out_monitor])
        carry = carried_state(self.learnable_stages)
        self._states = {}
        self.runner = PeriodRunner(self.net, (self.n_steps_run + 1) * self.dt, self.standalone, directory,
                                   carry=carry, seed=seed, profile=profile)

    # ------------------------------------------------------------ building
    @staticmethod
    def _place_time_events(group, names):
        for name in names:
            _when(group.thresholder[name], "time_events")

    def _event_master(self, b2, n, ns, name):
        return event_master(b2, n, ns, name, self.adam_on_clock)

    def _build_pool(self, b2, st, pre_rep, ns, back):
        B, k, n, n_pre = self.B, st.index, st.n_neurons, int(np.prod(st.in_shape))
        group = b2.NeuronGroup(B * n, POOL_EQS, events=dict(_events(("wend", "bwd", "pstart"), EVENTS),
                                                            graded="a > 0"),
                               namespace=ns, name=st.name)
        self._place_time_events(group, ("wend", "bwd", "pstart"))
        _when(group.thresholder["graded"], "threshold", k)
        group.run_on_event("graded", "a_sum += a\nspike_total += 1\na = 0", when=slot("pool_activity")[0])
        group.run_on_event("bwd", hidden_delta_code(pool=True), *slot("delta", k, back))
        group.run_on_event("wend", WINDOW_CLEAR_POOL, *slot("window_clear", k))
        group.run_on_event("pstart", "spike_total = 0\n" + WINDOW_CLEAR_POOL, *slot("period_start_group"))
        pw = 1.0 / (st.spec.size * st.spec.size)
        syn = instant_synapses(b2, pre_rep, group, on_pre={"pre": f"a_post += {pw!r}",
                                                           "bp": backprop_code("spiking", pool_weight=pw)},
                                   on_event={"pre": "spike", "bp": "bwd"}, namespace=ns, name=f"syn_{st.name}")
        i, j = _replicate(st.pre_index, n_pre, B), _replicate(st.post_index, n, B)
        syn.connect(i=i, j=j)
        _when(syn.pre, "delivery", k)
        _when(syn.bp, "backward", back=back)
        st.group, st.synapses = group, syn
        st.extra["pool_weight"] = pw
        st.extra["replica"] = group
        self._flag_groups.append(group)
        return [group, syn]

    def _build_spiking(self, b2, st, pre_master, pre_rep, cfg, ns, ns_rep, back, rng, input_current=None):
        spec, k, B = st.spec, st.index, self.B
        n, n_syn, n_pre = st.n_neurons, st.n_synapses, int(np.prod(st.in_shape))
        group = master_group(b2, st, ns)
        # replicas: membranes and window sums
        rep = spiking_replicas(b2, B * n, cfg, ns_rep, self.target, f"{spec.name}_rep", k, back,
                               output_delta_code() if back == 0 else hidden_delta_code(), group,
                               np.tile(np.arange(n), B))
        weights, syn = weights_and_master_synapses(b2, st, pre_master, group, cfg, ns, self.adam_on_clock,
                                                   self.T * self.dt)
        # replica synapses: forward delivery and the backward error sum
        fwd, fwd_event = delivery(st.pre_kind, input_current is not None)
        rep_pre, rep_ev = {"pre": fwd}, {"pre": fwd_event}
        if st.pre_kind != "input":
            rep_pre["bp"], rep_ev["bp"] = "dacc_pre += w*delta_post", "bwd"
        rep_ns = dict(ns)
        if input_current is not None:
            rep_ns["stim"] = input_current
        rsyn = instant_synapses(b2, pre_rep, rep, model="w : 1 (linked)\nwidx : integer (constant)\n", on_pre=rep_pre,
                                    on_event=rep_ev, namespace=rep_ns, name=f"syn_{spec.name}_rep")
        rsyn.connect(i=_replicate(st.pre_index, n_pre, B), j=_replicate(st.post_index, n, B))
        rsyn.widx = np.tile(np.arange(n_syn), B)
        rsyn.w = b2.linked_var(weights, "w", index="widx")
        _when(rsyn.pre, "delivery", k)
        if "bp" in rep_pre:
            _when(rsyn.bp, "backward", back=back)
        # gradient sums: each replica's delta*rate into the weight's element, in replica order
        rate_line = backprop_code(st.pre_kind).splitlines()[-1]          # "g += delta_post*<rate>"
        grad = instant_synapses(b2, pre_rep, weights, model="delta_r : 1 (linked)\ndidx : integer (constant)\n",
                                    on_pre=rate_line.replace("g += delta_post", "g_post += delta_r"),
                                    on_event="bwd", namespace=dict(ns), name=f"{spec.name}_grad")
        grad.connect(i=_replicate(st.pre_index, n_pre, B), j=np.tile(np.arange(n_syn), B))
        grad.didx = _replicate(st.post_index, n, B)
        grad.delta_r = b2.linked_var(rep, "delta", index="didx")
        _when(grad.pre, "backward", back=back)
        gbias = bias_gradient_synapses(b2, st, rep, group, np.tile(np.arange(n), B), ns, back)
        w0, b0 = initial_weights(cfg, st, rng)      # drawn as in the sequential form
        weights.w = w0
        syn.connected = 1.0
        group.b = b0
        st.group, st.synapses = group, syn
        st.extra.update(w_init=w0, b_init=b0, replica=rep, replica_synapses=rsyn, weights=weights,
                        gradient=grad, bias_gradient=gbias)
        self._flag_groups.append(rep)
        return [group, rep, weights, syn, rsyn, grad, gbias]

    # ------------------------------------------------------- Brian2 level
    def set_shared(self, **flags):
        super().set_shared(**flags)
        for name in ("learn_on", "struct_on"):
            if name in flags:
                for group in self._flag_groups:
                    self.runner.set_shared(group, name, float(flags[name]))

    def set_inputs(self, stimulus, target: np.ndarray):
        """Stimulus (windows x inputs) and targets (windows x classes), in the sequential form's
        window order; each window goes to its slot and replica (:func:`replica_layout`)."""
        stimulus = np.asarray(stimulus, dtype=np.float64)
        target = np.asarray(target, dtype=np.float64)
        for what, arr, ta in (("stimulus", stimulus, self.stim), ("target", target, self.target)):
            width = ta.values.shape[1] // self.B
            want = (self.n_windows, width)
            if arr.shape != want:
                raise RunError(f"{what} shape {arr.shape} != expected {want}")
            values = np.zeros((self.n_slots + 1, self.B, width))    # blank padding and settle rows
            values[self.slot_of, self.replica_of] = arr
            self.runner.set_next(ta, "values", values.reshape(self.n_slots + 1, self.B * width))

    def run(self) -> np.ndarray:
        """Run one period; returns the output spike counts per window (windows x classes)."""
        from .runner import reset_monitor

        self._states.clear()
        self.runner.run()
        mon, K = self.out_monitor, self.cfg.n_classes
        at = self._windows_of(mon.t_)
        idx = np.asarray(mon.i)
        window_of = np.full((self.n_slots, self.B), -1)
        window_of[self.slot_of, self.replica_of] = np.arange(self.n_windows)
        win = window_of[at, idx // K]
        keep = win >= 0
        counts = np.zeros((self.n_windows, K))
        counts[win[keep], idx[keep] % K] = np.asarray(mon.nwin)[keep]
        if not self.standalone:
            reset_monitor(mon)
        return counts

    def events(self) -> tuple:
        """Events per neuron in the last run, summed over the replicas."""
        def total(group):
            return self.get(group, "spike_total").reshape(self.B, -1).sum(axis=0)

        return total(self.input_replica), [total(st.extra["replica"]) for st in self.stages]


def _replicate(index, n, B):
    """``index`` (of a group of ``n``) repeated for ``B`` replicas, replica-major: ``r*n + index``."""
    index = np.asarray(index, dtype=np.int64)
    return (np.arange(B)[:, None] * n + index[None, :]).ravel()

