"""Shared pure logic of the peer benchmarks: the data file, the evaluator, parsing, ratios.

Imports only numpy, so that every peer script (the snnTorch one runs in its own
virtual environment) and the benchmark driver use the same code.

The network of every peer is 784-300-10 with the SD-SNN LIF of
:mod:`sdsnn_bio.neurons` (``v <- 0.2 v + I + b``, spike when ``v > 0.5``, reset to 0
in the same step), Bernoulli rate coding (a pixel spikes when a fresh U(0, 1) draw
is below its intensity), ``T = 20`` steps of ``dt = 1 ms`` per sample window, and
the rate readout (most active output neuron, first maximum wins, as
:func:`sdsnn_bio.metrics.accuracy`).
"""

import json
import math

import numpy as np

__all__ = ["DECAY", "THRESHOLD", "T_STEPS", "init_weights", "evaluate", "lif_layer_spikes", "save_data", "load_data",
           "parse_result", "ratio", "samples_per_s", "emit"]

DECAY = 0.2
THRESHOLD = 0.5
T_STEPS = 20


def init_weights(sizes=(784, 300, 10), seed: int = 0) -> dict:
    """PyTorch's default ``Linear`` initialisation, U(+-1/sqrt(fan_in)) for weights and biases.

    Returns ``{"W1": (300, 784), "b1": (300,), "W2": (10, 300), "b2": (10,)}`` (float64).
    """
    rng = np.random.default_rng(seed)
    out = {}
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        bound = 1.0 / math.sqrt(n_in)
        out[f"W{k}"] = rng.uniform(-bound, bound, size=(n_out, n_in))
        out[f"b{k}"] = rng.uniform(-bound, bound, size=n_out)
    return out


def evaluate(weights: dict, x: np.ndarray, y: np.ndarray, n_steps: int = T_STEPS, seed: int = 12345,
             chunk: int = 500) -> float:
    """Test accuracy of a two-layer LIF network with the given weights (numpy, float64).

    Every peer's trained weights go through this same function, with the same
    input spikes (``seed``), so that accuracies can be compared.

    Parameters
    ----------
    weights : dict
        ``W1`` (hidden x inputs), ``b1``, ``W2`` (outputs x hidden), ``b2``.
    x : ndarray
        Pixel intensities in [0, 1], samples x inputs.
    y : ndarray
        Labels.
    """
    rng = np.random.default_rng(seed)
    W1, b1, W2, b2 = (np.asarray(weights[k], dtype=np.float64) for k in ("W1", "b1", "W2", "b2"))
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    counts = np.zeros((len(x), W2.shape[0]))
    for lo in range(0, len(x), chunk):
        xb = x[lo:lo + chunk]
        v1 = np.zeros((len(xb), W1.shape[0]))
        v2 = np.zeros((len(xb), W2.shape[0]))
        for _ in range(n_steps):
            s0 = (rng.random(xb.shape) < xb).astype(np.float64)
            v1 = DECAY * v1 + s0 @ W1.T + b1
            s1 = v1 > THRESHOLD
            v1[s1] = 0.0
            v2 = DECAY * v2 + s1.astype(np.float64) @ W2.T + b2
            s2 = v2 > THRESHOLD
            v2[s2] = 0.0
            counts[lo:lo + chunk] += s2
    return float(np.mean(np.argmax(counts, axis=1) == np.asarray(y)))


def lif_layer_spikes(W, b, spikes_in) -> np.ndarray:
    """Spikes of one layer of the SD-SNN LIF driven by ``spikes_in`` (steps x batch x inputs), numpy.

    ``v <- DECAY v + s W^T + b``, spike where ``v > THRESHOLD``, then ``v = 0`` there;
    the reference the snnTorch neuron is checked against (``snntorch_train.py --check-neuron``).
    """
    W, b = np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)
    v = np.zeros((spikes_in.shape[1], len(b)))
    out = np.zeros((spikes_in.shape[0], spikes_in.shape[1], len(b)))
    for t, s in enumerate(np.asarray(spikes_in, dtype=np.float64)):
        v = DECAY * v + s @ W.T + b
        out[t] = v > THRESHOLD
        v[out[t] > 0] = 0.0
    return out


def save_data(path, x_train, y_train, x_test, y_test):
    """The data every peer trains and tests on, as one ``.npz`` (inputs flattened to [0, 1])."""
    np.savez(path, x_train=np.asarray(x_train, np.float32).reshape(len(x_train), -1), y_train=np.asarray(y_train),
             x_test=np.asarray(x_test, np.float32).reshape(len(x_test), -1), y_test=np.asarray(y_test))


def load_data(path) -> dict:
    """The arrays written by :func:`save_data`."""
    with np.load(path) as f:
        return {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}


def emit(result: dict):
    """Print a peer's result as its one JSON line (the driver reads the last line)."""
    print(json.dumps(result, sort_keys=True), flush=True)


def parse_result(output: str) -> dict:
    """The result of a peer script: the last line of its output that is a JSON object.

    Raises
    ------
    ValueError
        When no line of ``output`` is a JSON object (the script failed before its
        result); the message holds the output's end.
    """
    for line in reversed(output.strip().splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    raise ValueError(f"no JSON result line in the peer's output; it ended with:\n{output[-2000:]}")


def samples_per_s(samples: int, seconds: float) -> float:
    """Throughput, samples per second (``nan`` for a non-positive time)."""
    return samples / seconds if seconds > 0 else float("nan")


def ratio(a: float, b: float) -> float:
    """``a / b`` rounded to 3 decimals, ``nan`` where either is missing or ``b`` is 0."""
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return float("nan")
    return round(a / b, 3)
