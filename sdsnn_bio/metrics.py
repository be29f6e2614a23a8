"""Measures of a developing network: accuracy, loss, compression, synaptic operations."""

import numpy as np

__all__ = ["accuracy", "rate_mse", "compression", "synaptic_operations", "period_activity", "layer_operations", "live_out_degree",
           "rolling_mean", "slice_rotation"]


def accuracy(counts: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of windows whose most active output neuron is the label (first maximum wins)."""
    if len(labels) == 0:
        return float("nan")
    return float(np.mean(np.argmax(counts, axis=1) == labels))


def rate_mse(counts: np.ndarray, labels: np.ndarray, n_steps: int) -> float:
    """Mean squared error between output rates (spikes / T) and one-hot labels (the paper's loss)."""
    if len(labels) == 0:
        return float("nan")
    target = np.zeros_like(counts)
    target[np.arange(len(labels)), labels] = 1.0
    return float(np.mean((counts / n_steps - target) ** 2))


def compression(zero_counts: dict, sizes: dict, reference_params: dict) -> tuple:
    """Compression rate as the reference code counts it, and the raw synapse sparsity.

    Parameters
    ----------
    zero_counts, sizes : dict
        Per layer: masked-out synapses and all synapses of the Brian2 pool.
    reference_params : dict
        Per layer: weights of the layer it stands in for (a locally connected
        layer stands in for a convolution with ``C_out*C_in*k*k`` weights).

    Returns
    -------
    (compression, sparsity) : (float, float)
        ``compression`` weights each layer's zero fraction by its reference
        size (method section 5: zeros / weights over the conv and linear
        tensors); ``sparsity`` is masked synapses / all synapses of the pool.
    """
    layers = list(sizes)
    ref = np.array([reference_params[name] for name in layers], dtype=float)
    frac = np.array([zero_counts[name] / sizes[name] if sizes[name] else 0.0 for name in layers])
    comp = float(np.sum(frac * ref) / np.sum(ref)) if ref.sum() else 0.0
    sparsity = float(sum(zero_counts.values()) / max(1, sum(sizes.values())))
    return comp, sparsity


def synaptic_operations(events_per_neuron: np.ndarray, live_out_degree: np.ndarray) -> float:
    """Synaptic operations: each spike (or pooled event) times the live synapses it drives."""
    return float(np.dot(events_per_neuron, live_out_degree))


def period_activity(stages, input_events, stage_events, connected_of) -> tuple:
    """Spikes and synaptic operations of one period.

    ``stages`` are the network's :class:`~sdsnn_bio.geometry.StageGeometry`;
    ``input_events`` and ``stage_events[k]`` the events per neuron of the input
    and of each stage; ``connected_of(name)`` the mask of a learnable stage's
    synapses. Spikes count the input, every spiking stage that feeds another
    stage and the output (a pooling stage's graded events are not spikes);
    synaptic operations count every event times its live out-degree.
    """
    events = [np.asarray(input_events)] + [np.asarray(e) for e in stage_events]
    spikes = sops = 0.0
    for k, st in enumerate(stages):
        pre_events = events[k]
        sops += synaptic_operations(pre_events, live_out_degree(st, connected_of, len(pre_events)))
        if k == 0 or stages[k - 1].kind == "spiking":
            spikes += float(pre_events.sum())
    spikes += float(events[-1].sum())
    return spikes, sops


def layer_operations(stages, input_events, stage_events, connected_of) -> np.ndarray:
    """Synaptic operations of one run per stage: the events of the stage's presynaptic
    group (the input or the stage before) times their live out-degree into the stage.

    Same arguments as :func:`period_activity`, whose ``sops`` is the sum of this array
    (up to the order of the floating-point additions). Returns float64, one entry per stage.
    """
    events = [np.asarray(input_events)] + [np.asarray(e) for e in stage_events]
    out = np.zeros(len(stages))
    for k, st in enumerate(stages):
        out[k] = synaptic_operations(events[k], live_out_degree(st, connected_of, len(events[k])))
    return out


def live_out_degree(st, connected_of, n_pre: int) -> np.ndarray:
    """Live synapses from each presynaptic neuron into stage ``st`` (a pooling stage: all of
    them; a convolution: its positions' synapses whose kernel weight is connected)."""
    if not st.learnable:
        return np.bincount(st.pre_index, minlength=n_pre).astype(float)
    connected = np.asarray(connected_of(st.name), dtype=float)
    if getattr(st, "positions", None) is not None:
        P = st.positions
        return np.bincount(P.pre_index, weights=connected[P.weight_index], minlength=n_pre)
    return np.bincount(st.pre_index, weights=connected, minlength=n_pre)


def rolling_mean(values, n: int) -> tuple:
    """Trailing mean over ``n`` consecutive values: ``(index of each mean's last value, means)``;
    empty where there are fewer than ``n`` values."""
    values = np.asarray(values, float)
    if n <= 1:
        return np.arange(len(values)), values
    if len(values) < n:
        return np.arange(0), np.zeros(0)
    return np.arange(n - 1, len(values)), np.convolve(values, np.ones(n) / n, mode="valid")


def slice_rotation(n_test: int, per_period: int) -> int:
    """Periods in which rotating test slices of ``per_period`` samples cover a test set of
    ``n_test`` once: ``ceil(n_test / per_period)``; 1 where each period tests the whole set
    (``per_period`` 0 or at least ``n_test``)."""
    if per_period <= 0 or per_period >= n_test:
        return 1
    return -(-n_test // per_period)
