"""Measures of a developing network: accuracy, loss, compression, synaptic operations."""

import numpy as np

__all__ = ["accuracy", "rate_mse", "compression", "synaptic_operations"]


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
        size (spec section 5: zeros / weights over the conv and linear
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
