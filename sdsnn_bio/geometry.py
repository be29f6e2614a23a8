"""Layer geometry: shapes, connectivity, synapse counts and the memory estimate.

Everything here follows from a configuration alone, without Brian2: the
validator uses it to reject stacks that do not chain, the network builder to
connect the synapses, and the period loop to map neurons to the units it
prunes (a neuron of a dense layer, a channel of a locally connected one).
This module imports no other part of the package but its errors, so that the
configuration can use it without an import cycle.
"""

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError

__all__ = ["layer_shapes", "connectivity", "conv_connectivity", "synapse_counts", "estimate_memory", "available_memory",
           "check_memory", "estimate_results", "StageGeometry", "stage_geometry"]

def layer_shapes(cfg) -> list:
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
        elif layer.type in ("local", "conv"):
            if len(s) != 3:
                raise ConfigError(f"{where}: a {'locally connected' if layer.type == 'local' else 'convolution'} layer needs a [C, H, W] input, got {s}")
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


def connectivity(layer, in_shape: tuple, out_shape: tuple):
    """Presynaptic and postsynaptic indices of a layer's synapses, sorted by presynaptic neuron.

    Neurons are indexed channel-major, ``c*H*W + y*W + x``, the order of
    PyTorch's ``flatten``, so that a dense layer after a map sees the same
    input order as the reference network. Synapses are stored presynaptic-major:
    the forward pathway runs every step and then reads each spiking neuron's
    synapses contiguously (the paper network's pool-to-conv2 delivery took 2.4x
    longer with postsynaptic-major order); the backward pathway runs once a window.
    """
    i, j = _connectivity(layer, in_shape, out_shape)[:2]
    order = np.lexsort((j, i))
    return i[order], j[order]


def conv_connectivity(layer, in_shape: tuple, out_shape: tuple):
    """The synapses of a convolution's positions and the kernel weight each one reads.

    Returns ``(i, j, e)``: presynaptic and postsynaptic neuron (as :func:`connectivity`
    returns them for a locally connected layer of the same geometry, in the same order) and
    the kernel element ``e = ((c_in*C_out + c_out)*k + ky)*k + kx`` of each synapse. The
    kernel's elements are ordered input-channel-major, as the kernel's own synapses from the
    input channels to the output channels are stored (presynaptic-major,
    :func:`stage_geometry`).
    """
    i, j, e = _connectivity(layer, in_shape, out_shape)
    order = np.lexsort((j, i))
    return i[order], j[order], e[order]


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
    e = (((ic * cout + oc) * k + ky) * k + kx)[ok]
    return i.astype(np.int32), j.astype(np.int32), e.astype(np.int32)


#: Bytes per synapse and per neuron of a built network (the state variables,
#: Brian2's index arrays and spike-queue lists of five pathways, and the
#: copies taken between periods), measured-order estimates used to refuse a
#: network that cannot fit before anything is built.
BYTES_PER_SYNAPSE = 240
BYTES_PER_POOL_SYNAPSE = 48
BYTES_PER_NEURON = 400
#: The parallel form (``training.parallel_windows``, :mod:`sdsnn_bio.parallel`): per synapse and
#: replica, a replica synapse and a gradient synapse (indices, spike-queue entries; no learning
#: state); measured-order, see docs/method.md section 13.
BYTES_PER_REPLICA_SYNAPSE = 64
#: A convolution (:mod:`sdsnn_bio.conv`): per synapse of its positions, a forward synapse and
#: a gradient synapse with their indices and queue entries (the learning state is the kernel's).
BYTES_PER_POSITION_SYNAPSE = 2 * BYTES_PER_REPLICA_SYNAPSE
#: The parallel form: what the Python process that builds the network still holds per replicated
#: synapse (every replica's) while the binary runs (the connection and index arrays). Measured on
#: the paper's MNIST network, cpp_standalone, B = 10 and 20 (docs/method.md section 13): 1.39 GB
#: for 10 replicas of 1.67 M synapses.
BYTES_PER_BUILT_REPLICA_SYNAPSE = 84


def _valid_taps(n_in: int, n_out: int, k: int, pad: int, stride: int) -> int:
    """Kernel taps that fall inside the input, summed over output positions along one axis."""
    total = 0
    for o in range(n_out):
        lo = o * stride - pad
        total += sum(1 for t in range(k) if 0 <= lo + t < n_in)
    return total


def _local_synapses(layer, s_in, s_out) -> int:
    """Synapses of a locally connected layer (or of a convolution's positions)."""
    ty = _valid_taps(s_in[1], s_out[1], layer.kernel, layer.padding, layer.stride)
    tx = _valid_taps(s_in[2], s_out[2], layer.kernel, layer.padding, layer.stride)
    return s_in[0] * layer.channels * ty * tx


def synapse_counts(cfg) -> list:
    """Synapses of every stage, computed from the shapes without building anything (for a
    convolution: its kernel's weights, the synapses that carry learning and spine state)."""
    shapes = layer_shapes(cfg)
    counts = []
    for k, layer in enumerate(cfg.layers, start=1):
        s_in, s_out = shapes[k - 1], shapes[k]
        if layer.type == "dense":
            counts.append(int(np.prod(s_in)) * layer.units)
        elif layer.type == "pool":
            counts.append(int(np.prod(s_in)))
        elif layer.type == "conv":
            counts.append(layer.channels * s_in[0] * layer.kernel * layer.kernel)
        else:
            counts.append(_local_synapses(layer, s_in, s_out))
    return counts


def _layer_sizes(cfg):
    """What the memory and result estimates count: per layer ``(layer, synapses, neurons,
    position synapses)`` (:func:`synapse_counts`; the neurons of its output; a convolution's
    positions' synapses, else 0); whether the form is parallel and its replica count ``B``
    (1 without it)."""
    shapes = layer_shapes(cfg)
    parallel = getattr(cfg.training, "parallel_windows", False)
    sizes = [(layer, n_syn, int(np.prod(shapes[k])),
              _local_synapses(layer, shapes[k - 1], shapes[k]) if layer.type == "conv" else 0)
             for k, (layer, n_syn) in enumerate(zip(cfg.layers, synapse_counts(cfg)), start=1)]
    return sizes, parallel, cfg.training.batch if parallel else 1


def estimate_memory(cfg, n_windows: int) -> int:
    """Estimated peak memory (bytes) of building and running ``cfg`` with ``n_windows`` per period."""
    sizes, parallel, B = _layer_sizes(cfg)
    total = 0
    for layer, n_syn, n, positions in sizes:
        pool = layer.type == "pool"
        total += n_syn * (BYTES_PER_POOL_SYNAPSE if pool else BYTES_PER_SYNAPSE) + n * BYTES_PER_NEURON
        if layer.type == "conv":
            # the positions' synapses for every replica (the kernel is one), B - 1 more sets of
            # positions beside the one counted above
            replicated = positions
            total += B * positions * BYTES_PER_POSITION_SYNAPSE + (B - 1) * n * BYTES_PER_NEURON
        else:
            replicated = n_syn
            if parallel:
                per_syn = BYTES_PER_POOL_SYNAPSE if pool else BYTES_PER_REPLICA_SYNAPSE
                total += B * (n_syn * per_syn + n * BYTES_PER_NEURON)
        if parallel:     # what the building Python process holds of every replica's synapses
            total += B * replicated * BYTES_PER_BUILT_REPLICA_SYNAPSE
    P = getattr(cfg.training, "processes", 1)
    if P > 1:
        # the split form (sdsnn_bio/split.py): every process holds the whole network, and the
        # shared buffer two gradient sums (alternating buffers) per process and learnable synapse
        learnable = sum(n for layer, n in zip(cfg.layers, synapse_counts(cfg)) if layer.type != "pool")
        total = P * total + 2 * 8 * P * learnable
    n_in = int(np.prod(cfg.input_shape))
    # event recordings: one stimulus row per time step, not per window, and spikes packed as
    # bits, STIM_BITS inputs a column (data/event_input.py)
    from .data.event_input import stimulus_columns
    from .data.registry import get

    rows = 1
    if get(cfg.data.dataset).events:
        rows, n_in = cfg.schedule.n_steps, stimulus_columns(n_in, cfg.data.event_coding)
    total += 3 * 8 * n_windows * (n_in * rows + cfg.n_classes)   # stimulus and targets, with copies
    return total


#: Bytes a standalone binary writes per period into its results folder (Brian2 writes every array
#: of the network after each run), per element: a learnable synapse's 18 per-synapse variables
#: (:data:`sdsnn_bio.spines.SYNAPSE_EQS` less its 4 shared flags, 8 bytes each) and four 4-byte
#: integers (its neurons' indices and Brian2's per-synapse in- and out-degree); a convolution's
#: position synapse (the forward and the gradient synapse: those four and the kernel index each);
#: a pooling synapse (five 4-byte arrays); a neuron (at most 16 variables). Measured on the
#: paper's MNIST network: 141.1 MB written (fc1 160 bytes a synapse, conv2's positions 40, pool1
#: 21), the estimate 141.5 MB.
RESULT_BYTES_PER_SYNAPSE = 18 * 8 + 4 * 4
RESULT_BYTES_PER_POSITION_SYNAPSE = 2 * 5 * 4
RESULT_BYTES_PER_POOL_SYNAPSE = 5 * 4
RESULT_BYTES_PER_NEURON = 16 * 8


def estimate_results(cfg) -> int:
    """Bytes of one result folder of ``cfg``'s network (one period's result files; a standalone
    build keeps :data:`sdsnn_bio.runner.RESULTS_DIRS` of them: the last run's carried state and
    the run writing its own); every process of a split (``training.processes``) writes its own.
    The parallel form's replicas add their index arrays (counted as position synapses)."""
    sizes, parallel, B = _layer_sizes(cfg)
    total = 0
    for layer, n_syn, n, positions in sizes:
        if layer.type == "pool":
            total += B * n_syn * RESULT_BYTES_PER_POOL_SYNAPSE + B * n * RESULT_BYTES_PER_NEURON
            continue
        total += n_syn * RESULT_BYTES_PER_SYNAPSE + B * n * RESULT_BYTES_PER_NEURON
        if layer.type == "conv":
            total += B * positions * RESULT_BYTES_PER_POSITION_SYNAPSE
        elif parallel:
            total += B * n_syn * RESULT_BYTES_PER_POSITION_SYNAPSE
    return total * getattr(cfg.training, "processes", 1)


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


def check_memory(cfg, n_windows: int):
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
class Positions:
    """The positions of a convolution stage (:mod:`sdsnn_bio.conv`): its spiking neurons
    (channel-major, ``c*H*W + y*W + x``) and their synapses, each of which reads one weight of
    the stage's kernel."""

    n_neurons: int
    pre_index: np.ndarray        # presynaptic neuron of each synapse (presynaptic-major order)
    post_index: np.ndarray       # postsynaptic position of each synapse
    weight_index: np.ndarray     # kernel element (synapse of the stage) each synapse reads
    channel: np.ndarray          # channel (neuron of the stage) of each position

    @property
    def n_synapses(self) -> int:
        return len(self.pre_index)


@dataclass
class StageGeometry:
    """One stage of a configured network, as shapes and index arrays (no Brian2).

    A *stage* is a layer of the configuration: ``spiking`` (dense, locally
    connected or convolution LIF neurons with learnable synapses) or ``pool`` (a
    fixed average-pooling relay). Its *units* are what neuron pruning removes: one
    neuron of a dense layer, or one channel (all its positions) of a locally
    connected layer or a convolution.

    A convolution's neurons and synapses are its channels and its kernel (from
    input channel to output channel, ``k x k`` synapses a pair), which hold the
    learning and structural state; ``positions`` holds the spiking neurons and
    the synapses that read the kernel (:class:`Positions`).
    """

    spec: object                 # the LayerSpec of the configuration
    index: int                   # 1 = first layer after the input
    in_shape: tuple
    out_shape: tuple
    kind: str                    # "spiking" or "pool"
    pre_kind: str                # "input", "spiking" or "pool"
    n_neurons: int
    pre_index: np.ndarray        # presynaptic neuron of each synapse (presynaptic-major order)
    post_index: np.ndarray       # postsynaptic neuron of each synapse
    unit_of_neuron: np.ndarray = None
    n_units: int = 0
    fan_in: int = 0              # inputs of one neuron of the layer it stands in for
    reference_params: int = 0    # weights of the layer it stands in for (conv or linear)
    positions: Positions = None  # a convolution's spiking positions (None for other stages)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def n_synapses(self) -> int:
        return len(self.pre_index)

    @property
    def n_simulated_synapses(self) -> int:
        """Synapses that deliver spikes: a convolution's positions' synapses, else
        :attr:`n_synapses`."""
        return self.positions.n_synapses if self.positions is not None else self.n_synapses

    @property
    def n_simulated_neurons(self) -> int:
        """Neurons that spike: a convolution's positions, else :attr:`n_neurons`."""
        return self.positions.n_neurons if self.positions is not None else self.n_neurons

    @property
    def learnable(self) -> bool:
        return self.kind == "spiking"

    @property
    def structural(self) -> bool:
        """Has spines, the synaptic constraint or neuron pruning."""
        return self.learnable and bool(self.spec.clipped or self.spec.prune)

    @property
    def pruned(self) -> bool:
        return self.learnable and bool(self.spec.prune)

    @property
    def positions_per_unit(self) -> int:
        return self.n_neurons // self.n_units if self.n_units else 0


def stage_geometry(cfg) -> list:
    """The :class:`StageGeometry` of every stage of ``cfg``, in forward order (for a
    developmental configuration, its recorded stage :func:`sdsnn_bio.cortex.cortex_stages`)."""
    if getattr(cfg, "kind", "training") != "training":
        from .cortex.model import cortex_stages

        return cortex_stages(cfg)
    shapes = layer_shapes(cfg)
    out = []
    prev_kind = "input"
    for k, spec in enumerate(cfg.layers, start=1):
        in_shape, out_shape = shapes[k - 1], shapes[k]
        n = int(np.prod(out_shape))
        kind = "pool" if spec.type == "pool" else "spiking"
        if spec.type == "conv":
            out.append(_conv_stage(spec, k, in_shape, out_shape, prev_kind))
            prev_kind = kind
            continue
        i, j = connectivity(spec, in_shape, out_shape)
        g = StageGeometry(spec=spec, index=k, in_shape=in_shape, out_shape=out_shape, kind=kind,
                          pre_kind=prev_kind, n_neurons=n, pre_index=i, post_index=j)
        if kind == "spiking":
            if spec.type == "dense":
                g.fan_in = int(np.prod(in_shape))
                g.reference_params = g.fan_in * n
                g.unit_of_neuron = np.arange(n)
                g.n_units = n
            else:
                g.fan_in = in_shape[0] * spec.kernel * spec.kernel
                g.reference_params = spec.channels * g.fan_in
                g.unit_of_neuron = np.arange(n) // (out_shape[1] * out_shape[2])
                g.n_units = out_shape[0]
        out.append(g)
        prev_kind = kind
    return out


def _conv_stage(spec, k: int, in_shape: tuple, out_shape: tuple, prev_kind: str) -> StageGeometry:
    """A convolution's stage: channels, kernel synapses (input channel -> output channel,
    ``k*k`` a pair, in the element order of :func:`conv_connectivity`) and its positions."""
    cin, cout, kk = in_shape[0], out_shape[0], spec.kernel * spec.kernel
    pre = np.repeat(np.arange(cin), cout * kk).astype(np.int32)
    post = np.tile(np.repeat(np.arange(cout), kk), cin).astype(np.int32)
    i, j, e = conv_connectivity(spec, in_shape, out_shape)
    n_pos = int(np.prod(out_shape))
    positions = Positions(n_neurons=n_pos, pre_index=i, post_index=j, weight_index=e,
                          channel=np.arange(n_pos) // (out_shape[1] * out_shape[2]))
    fan_in = cin * kk
    return StageGeometry(spec=spec, index=k, in_shape=in_shape, out_shape=out_shape, kind="spiking",
                         pre_kind=prev_kind, n_neurons=cout, pre_index=pre, post_index=post,
                         unit_of_neuron=np.arange(cout), n_units=cout, fan_in=fan_in,
                         reference_params=cout * fan_in, positions=positions)
