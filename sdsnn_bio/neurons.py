"""Spiking neuron models of SD-SNN as Brian2 code, with their surrogate derivatives.

The networks of the reference code (method section 3) are discrete-time. With
``u`` the membrane potential (dimensionless, one unit = one unit of synaptic
weight), ``I_t`` the summed synaptic input of step ``t`` and ``b`` the bias:

* **LIF** (MNIST, N-MNIST, DVS-Gesture networks; method §3.1)::

      u_t = decay * u_{t-1} * (1 - s_{t-1}) + I_t + b,   s_t = H(u_t - V_th)

  with ``decay = 0.2`` and ``V_th = 0.5``; the factor ``(1 - s_{t-1})`` is a
  hard reset to 0, which Brian2 expresses as the reset ``v = 0``.
* **LIF with time constant** (the FC layers of the CIFAR network; method §3.2)::

      u_t = u_{t-1} + (I_t + b - u_{t-1}) / tau,  V_th = 0.5, tau = 2, hard reset.

* **PLIF** (the conv layers of the CIFAR network): the same update with
  ``1/tau = sigmoid(w_tau)``, ``V_th = 1``. In sdsnn-bio ``w_tau`` is a parameter
  set at build time (``sigmoid(w_tau) = 0.5`` by default); the rate-coupled
  learning rule does not train it.

The surrogate derivative ``ds/du`` of the spike function is what the learning
rule needs. Each model accumulates it per time step in ``sg_acc`` (a variable a
user can monitor); the mean over a sample window is the gain of the
rate-coupled readout (see :mod:`sdsnn_bio.learning`). The three shapes of the
reference code are:

* ``rectangular``: ``1`` where ``|u - V_th| < width`` (width 0.5), else 0;
* ``atan``: ``(alpha/2) / (1 + (pi*alpha*(u - V_th)/2)**2)`` with alpha = 2;
* ``quadratic_gate``: ``max(0, alpha - alpha**2 * |u - V_th|)`` with alpha = 2.
"""

from dataclasses import dataclass

from .errors import ConfigError
from .structure.pruning import BIAS_MASK_FLAG_EQS, PRUNING_NEURON_EQS
from .structure.regeneration import REGENERATION_NEURON_EQS

__all__ = [
    "LIF_EQS",
    "POOL_EQS",
    "INPUT_EQS",
    "SURROGATES",
    "NeuronParams",
    "membrane_update_code",
    "surrogate_expression",
]

#: State of one spiking layer. ``I`` collects the synaptic input of the current
#: step; the window accumulators feed the learning rule; the structural
#: variables are read and written between structural periods.
LIF_EQS = ("""
v : 1                      # membrane potential u (units of synaptic weight)
I : 1                      # synaptic input collected during the current step
b : 1                      # bias, added every step
nwin : 1                   # spikes in the current sample window
sg_acc : 1                 # surrogate derivative ds/du summed over the window
dacc : 1                   # back-propagated error summed over targets (sum_k w_kj delta_k)
delta : 1                  # error signal of the neuron in the last window
gb : 1                     # accumulated loss gradient of the bias
mb : 1                     # Adam first moment of the bias
vb : 1                     # Adam second moment of the bias
spike_total : 1            # spikes in the current structural period
""" + PRUNING_NEURON_EQS.lstrip("\n") + REGENERATION_NEURON_EQS.lstrip("\n") + """\
lr : 1 (shared)            # learning rate of this period
adam_k0 : 1 (shared)       # Adam steps taken before this period
learn_on : 1 (shared)      # 1 while training, 0 in evaluation-only runs
struct_on : 1 (shared)     # 1 when the end-of-period structural step runs
""" + BIAS_MASK_FLAG_EQS.lstrip("\n") + """\
hard_mask : 1 (shared)     # 1 to keep pruned weights at zero within a period
""")

#: An average-pooling stage: a graded (non-spiking) relay whose activity ``a``
#: is the mean of the spikes of its ``k x k`` afferent neurons in a step, as
#: ``avg_pool2d`` of the spike tensor in the reference code.
POOL_EQS = """
a : 1                      # pooled activity of the current step (mean of afferent spikes)
a_sum : 1                  # pooled activity summed over the window
dacc : 1                   # back-propagated error collected from the next layer
delta : 1                  # error signal (linear unit: delta = dacc)
spike_total : 1            # graded events in the current period (for synaptic-operation counts)
learn_on : 1 (shared)
struct_on : 1 (shared)
"""

#: Rate-coded input: Bernoulli spikes, ``s = 1`` when the pixel exceeds a
#: uniform random number (the reference code's ``x > rand``), every step.
INPUT_EQS = """
nwin : 1                   # spikes in the current sample window
spike_total : 1            # spikes in the current structural period
learn_on : 1 (shared)
struct_on : 1 (shared)
"""

SURROGATES = ("rectangular", "atan", "quadratic_gate")


@dataclass(frozen=True)
class NeuronParams:
    """Parameters of one layer's neuron model.

    Parameters
    ----------
    model : {"lif", "lif_tau", "plif"}
        ``lif``: ``u = decay*u + I + b``; ``lif_tau``/``plif``: ``u += (I + b - u)/tau``.
    decay : float
        Leak factor per step of ``lif`` (0.2 in the reference code).
    tau : float
        Time constant in steps of ``lif_tau``/``plif`` (2 in the reference code).
    threshold : float
        Firing threshold ``V_th`` (0.5; 1.0 for PLIF in the CIFAR network).
    surrogate : str
        One of :data:`SURROGATES`.
    surrogate_width : float
        Half width of the rectangular surrogate (0.5).
    surrogate_alpha : float
        ``alpha`` of the atan and quadratic-gate surrogates (2).
    """

    model: str = "lif"
    decay: float = 0.2
    tau: float = 2.0
    threshold: float = 0.5
    surrogate: str = "rectangular"
    surrogate_width: float = 0.5
    surrogate_alpha: float = 2.0

    def __post_init__(self):
        if self.model not in ("lif", "lif_tau", "plif"):
            raise ConfigError(f"neuron.model: expected 'lif', 'lif_tau' or 'plif', got {self.model!r}")
        if self.surrogate not in SURROGATES:
            raise ConfigError(f"neuron.surrogate: expected one of {SURROGATES}, got {self.surrogate!r}")
        if not 0.0 <= self.decay < 1.0:
            raise ConfigError(f"neuron.decay: expected 0 <= decay < 1, got {self.decay}")
        if not self.tau >= 1.0:
            raise ConfigError(f"neuron.tau: expected tau >= 1 step, got {self.tau}")
        if not self.threshold > 0:
            raise ConfigError(f"neuron.threshold: expected > 0, got {self.threshold}")
        if not self.surrogate_width > 0 or not self.surrogate_alpha > 0:
            raise ConfigError("neuron.surrogate_width and surrogate_alpha must be > 0")


def surrogate_expression(p: NeuronParams, u: str = "v") -> str:
    """Brian2 expression of the surrogate derivative ``ds/du`` evaluated at ``u``."""
    th = repr(float(p.threshold))
    if p.surrogate == "rectangular":
        return f"int(abs({u} - {th}) < {float(p.surrogate_width)!r})"
    a = float(p.surrogate_alpha)
    if p.surrogate == "atan":
        return f"({a / 2!r})/(1 + ({3.141592653589793 * a / 2!r}*({u} - {th}))**2)"
    return f"clip({a!r} - {a * a!r}*abs({u} - {th}), 0, {a!r})"


def membrane_update_code(p: NeuronParams) -> str:
    """Per-step update of one layer: integrate the step's input, then record ``ds/du``.

    Runs after the step's synaptic input has been delivered into ``I`` and
    before the threshold test; the reset (``v = 0``) of a spike in the previous
    step has already happened, which is the reference code's ``(1 - s_{t-1})``.
    """
    if p.model == "lif":
        integrate = f"v = {float(p.decay)!r}*v + I + b"
    else:
        integrate = f"v = v + (I + b - v)/{float(p.tau)!r}"
    return "\n".join([integrate, "I = 0", f"sg_acc += {surrogate_expression(p)}"])
