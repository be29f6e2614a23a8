"""Convolutions with shared weights (layer type ``conv``) in the sequential network.

A locally connected layer (``local``) gives every position of a channel its own
weights: the paper network's conv2 stands in for a convolution of 5,400 weights
with 960,000. A ``conv`` layer shares one kernel (``C_out x C_in x k x k``
weights) and one bias per channel over all positions, as the paper's
convolutions do. The kernel carries the learning and structural state (Adam
moments, spines, mask, regeneration streaks), so the spine constraint, the
channel's importance and the pruning act on the weights of the paper's layer.

Brian2 has no weight sharing; the kernel is shared through linked variables,
the construction of the parallel form (:mod:`sdsnn_bio.parallel`, where the
replicas of a window share one set of weights) with positions in place of
replicas. Objects of a convolution stage ``<layer>`` (``C`` channels, ``E``
kernel weights, ``n`` positions, ``S`` synapses of the positions)::

    <layer>            NeuronGroup(C): per channel the bias, its Adam state and
                       gradient sum, the pruning and importance state (``Stage.group``)
    <layer>_weights    NeuronGroup(E): the kernel weight w and its gradient sum g
    <layer>_in         NeuronGroup(C_in): silent input channels that emit the period
                       events on which the kernel's synapses run
    syn_<layer>        Synapses(E) from the input channels to the channels (``k*k`` per pair):
                       Adam, spines, constraint, mask, regeneration and importance, the
                       sequential form's code, with ``w`` and ``g`` linked to the weight
                       group (``Stage.synapses``)
    <layer>_pos        NeuronGroup(n): the spiking positions (membrane, window sums, delta);
                       the bias linked to the channel's
    syn_<layer>_pos    Synapses(S): forward delivery of every position, ``w`` linked to its
                       kernel element (index ``widx``)
    <layer>_grad       Synapses(S), the same synapses from the presynaptic neurons to the
                       kernel weight each reads: at a training window's end the backward
                       pass, the presynaptic error sum ``dacc_pre += w*delta`` and the kernel
                       gradient ``g += delta*rate_pre`` (``delta_r`` linked to the position's delta)
    <layer>_gbias      Synapses(n) from the positions to the channels: ``gb += delta``

The gradients are those of a convolution: a kernel weight's gradient is the sum
over the positions that read it of the local layer's per-synapse gradient
(``tests/test_conv.py`` checks it, the weights after Adam and the output spikes
against the numpy twin with tied weights, :func:`sdsnn_bio.learning.numpy_period`).
The sums add in presynaptic order, not a convolution library's, so the last bits
differ from any other implementation.

Runs on every device, in the sequential form and in the parallel form
(``training.parallel_windows``: the positions replicated for the ``B`` windows
of a batch, all reading the one kernel), and as copies in one build
(:mod:`sdsnn_bio.multi`: K kernels, each copy's positions reading its own), and split over
processes (``training.processes``: every process runs its share of a batch's windows on its
positions, and the kernel's and channels' gradient sums are added over the processes before
the Adam steps). On
Brian2's numpy target the kernel's Adam step is the event-driven pathway (the
numpy target cannot run a synapses' ``run_regularly`` that writes a linked
variable, see :class:`sdsnn_bio.parallel.ParallelSDSNNNetwork`).
"""

import numpy as np

from .learning import backprop_code, hidden_delta_code
from .network import EVENTS, delivery, instant_synapses
from .parallel import WINDOW_EVENTS, _quiet_linked_writes, _replicate, _when, bias_gradient_synapses, event_master, \
    master_group, spiking_replicas, weights_and_master_synapses

__all__ = ["build_conv_stage", "adam_on_clock"]


def adam_on_clock(b2, sequential_on_clock: bool) -> bool:
    """Whether a convolution's kernel takes its Adam step on the per-batch clock: where the
    sequential form's synapses do, except on Brian2's numpy target (module docstring)."""
    numpy_target = b2.get_device().__class__.__name__ == "RuntimeDevice" and b2.prefs.codegen.target == "numpy"
    return sequential_on_clock and not numpy_target


def build_conv_stage(b2, st, pre_group, cfg, ns, back, target, on_clock, batch_dt, init, input_current=None,
                     replicas: int = 1, copies=None, reduce_ids=None):
    """Build a convolution stage after ``pre_group`` (the input, a pooling stage or a spiking
    stage's positions). Sets ``st.group`` (channels) and ``st.synapses`` (kernel), and in
    ``st.extra``: ``positions`` (the spiking group the next stage reads), ``weights``,
    ``flag_groups`` (groups whose ``learn_on``/``struct_on`` the network sets), ``w_init``,
    ``b_init``. Returns the Brian2 objects. ``on_clock``: :func:`adam_on_clock`.

    ``replicas``: the parallel form's ``B`` (:mod:`sdsnn_bio.parallel`): the positions, their
    synapses and the backward pass are repeated for every replica, replica-major (position
    ``r*n + p`` is position ``p`` of replica ``r``, ``pre_group`` the replicated previous stage),
    all reading the one kernel; the gradient and bias sums add the replicas in replica order,
    which is the windows' order within the batch.

    ``copies``: K independent networks fused into these objects (:mod:`sdsnn_bio.multi`): every
    object holds K blocks (copy k's positions, kernel, channels and input channels after copy
    k-1's), copy k's positions reading copy k's kernel; ``init`` the copies' values one after
    another. Not together with ``replicas``.

    ``reduce_ids``: the split form (:mod:`sdsnn_bio.split`): the numbers of the kernel's ``g``
    and the channels' ``gb`` in the reduction over processes; each process's kernel gradient
    sums its own windows, the Adam steps (on the per-batch clock) start from the sums.
    """
    _quiet_linked_writes()
    spec, k, P = st.spec, st.index, st.positions
    if copies is not None and replicas != 1:
        raise ValueError("a convolution is built with replicas (the parallel form) or copies, not both")
    B = copies or replicas                       # blocks of positions
    n_pre = len(pre_group) // B
    pre_index, post_index = _replicate(P.pre_index, n_pre, B), _replicate(P.post_index, P.n_neurons, B)
    if copies is None:     # every replica reads the one kernel
        weight_index, channel = np.tile(P.weight_index, B), np.tile(P.channel, B)
    else:                  # copy k reads its own kernel and channels
        weight_index = _replicate(P.weight_index, st.n_synapses, B)
        channel = _replicate(P.channel, st.n_neurons, B)
    # channels: the per-channel learning and structural state, no membrane
    split = reduce_ids is not None
    group = master_group(b2, st, ns, copies, reduce_ids[1] if split else None, batch_dt)
    # input channels: the kernel synapses' presynaptic group, period (and batch) events only
    chan_in = event_master(b2, st.in_shape[0], ns, f"{spec.name}_in", on_clock, copies)
    # the kernel: weights and gradient sums, and the synapses holding the rest of its state
    weights, syn = weights_and_master_synapses(b2, st, chan_in, group, cfg, ns, on_clock, batch_dt, copies,
                                               reduce_ids[0] if split else None)
    # positions: membranes and window sums, the channel's bias. In the sequential and fused forms
    # they emit all the events: the next stage's synapses run their Adam and structural
    # pathways on them; replicas only their window's (the next stage's master synapses run on an
    # event master, as after any replicated stage)
    pos = spiking_replicas(b2, B * P.n_neurons, cfg, ns, target, f"{spec.name}_pos", k, back, hidden_delta_code(),
                           group, channel, events=tuple(EVENTS) if replicas == 1 else WINDOW_EVENTS)
    # the positions' synapses: forward delivery
    fwd, fwd_event = delivery(st.pre_kind, input_current is not None)
    pos_ns = dict(ns)
    if input_current is not None:
        pos_ns["stim"] = input_current
    psyn = instant_synapses(b2, pre_group, pos, model="w : 1 (linked)\nwidx : integer (constant)\n", on_pre=fwd,
                                on_event=fwd_event, namespace=pos_ns,
                                name=f"syn_{spec.name}_pos")
    psyn.connect(i=pre_index, j=post_index)
    psyn.widx = weight_index
    psyn.w = b2.linked_var(weights, "w", index="widx")
    _when(psyn.pre, "delivery", k)
    # the backward pass of the same synapses, from the presynaptic neuron to the kernel weight
    # each reads: the error sum of the presynaptic neuron and every position's delta*rate into
    # the kernel weight's gradient (one pass over the synapses for both)
    code = backprop_code(st.pre_kind).replace("delta_post", "delta_r").replace("g +=", "g_post +=")
    code = code.replace("w*delta_r", "w_post*delta_r")
    grad = instant_synapses(b2, pre_group, weights, model="delta_r : 1 (linked)\ndidx : integer (constant)\n",
                                on_pre=code, on_event="bwd", namespace=dict(ns), name=f"{spec.name}_grad")
    grad.connect(i=pre_index, j=weight_index)
    grad.didx = post_index
    grad.delta_r = b2.linked_var(pos, "delta", index="didx")
    _when(grad.pre, "backward", back=back)
    gbias = bias_gradient_synapses(b2, st, pos, group, channel, ns, back)
    w0, b0 = init
    weights.w = w0
    syn.connected = 1.0
    group.b = b0
    st.group, st.synapses = group, syn
    st.extra.update(w_init=w0, b_init=b0, positions=pos, position_synapses=psyn, weights=weights, gradient=grad,
                    bias_gradient=gbias, flag_groups=[chan_in, pos])
    return [group, chan_in, weights, syn, pos, psyn, grad, gbias]
