"""Surrogate-gradient learning through a coupled rate-based readout, as Brian2 code.

Within a sample window of ``T`` steps the spiking network runs normally. Each
neuron counts its spikes (``nwin``) and sums the surrogate derivative of its
membrane potential (``sg_acc``, see :mod:`sdsnn_bio.neurons`). The readout is
rate based: with ``r = nwin/T`` and ``y`` the one-hot label, the loss of a
mini-batch of ``B`` windows is the reference code's mean squared error
``L = 1/(B K) sum_b sum_k (r_k - y_k)**2``. At the window's last step the error
is propagated back layer by layer through the forward weights, with each
neuron's mean surrogate derivative ``sbar = sg_acc/T`` as the gain of its rate:

.. math::

    \\delta_k = \\frac{2}{BK} (r_k - y_k)\\, \\bar s_k, \\qquad
    \\delta_j = \\bar s_j \\sum_k w_{kj} \\delta_k, \\qquad
    \\frac{\\partial L}{\\partial w_{kj}} \\mathrel{+}= \\delta_k\\, r_j,
    \\quad \\frac{\\partial L}{\\partial b_k} \\mathrel{+}= \\delta_k .

An average-pooling stage is linear: it passes ``sum_k w_kj delta_k / (k*k)``
to each afferent neuron. The gradients are summed over the ``B`` windows of a
mini-batch; at the end of the mini-batch every synapse and bias takes one Adam
step (``beta1 = 0.9``, ``beta2 = 0.999``, ``eps = 1e-8``, the PyTorch defaults
the reference code used) with the state kept per synapse.

How it runs in Brian2 (all generated code, no Python per sample): the backward
sum ``sum_k w_kj delta_k`` is computed by a synaptic pathway triggered by a
window-end event of the postsynaptic neuron that adds ``w*delta_post`` into
``dacc_pre``. It is the same reduction a ``(summed)`` variable would compute,
but a summed variable is re-evaluated over every synapse at every time step,
whereas the event-driven pathway runs once per window.

The synapses' Adam step touches every synapse and nothing else, so it runs as
a plain loop over the synapse arrays (a ``run_regularly`` operation, which the
compiler vectorises: about half the time of the same code in an event-driven
pathway, which reaches each synapse through an index list). Its clock ticks
once per mini-batch of ``B*T`` steps, at the *first* step after a mini-batch,
before anything else in that step -- the same point in the computation as the
batch's last step's end. The last batch of a period is closed in one extra
*settle* step at the end of each run (no input). Ticks that close no training
batch (at the run's start and in its test windows) are gated off exactly. The
clock can line up with the batches only when the test windows fill whole
batches (``n_test % B == 0``); otherwise the Adam step stays an event-driven
pathway at the batch's last step (:func:`adam_synapse_code` with ``tick=False``).
"""

import numpy as np

__all__ = [
    "learning_rate",
    "adam_steps_before",
    "LEARNING_SYNAPSE_EQS",
    "numpy_period",
    "ADAM_DEFAULTS",
    "output_delta_code",
    "hidden_delta_code",
    "backprop_code",
    "adam_synapse_code",
    "adam_bias_code",
    "adam_step_expression",
    "WINDOW_CLEAR_LIF",
    "WINDOW_CLEAR_POOL",
]

ADAM_DEFAULTS = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}

def learning_rate(period: int, lr: float, decay: float, every: int) -> float:
    """Adam learning rate of a period: ``lr * decay**(period // every)`` (``every = 0``: constant)."""
    decay_steps = period // every if every else 0
    return lr * decay ** decay_steps


def adam_steps_before(period: int, train_per_period: int, batch: int) -> int:
    """Adam steps taken in the periods before ``period`` (one per mini-batch)."""
    return period * (train_per_period // batch)


#: Learning state of a synapse (Brian2 equations). The learning rate, Adam
#: step count, mask mode and run start time are those of the postsynaptic
#: group (``lr_post``, ``adam_k0_post`` ...).
LEARNING_SYNAPSE_EQS = """
w : 1                       # synaptic weight
g : 1                       # loss gradient accumulated over the current mini-batch
mt : 1                      # Adam first moment
vt : 1                      # Adam second moment
"""

def adam_step_expression(suffix: str = "", tick: bool = False) -> str:
    """Adam step count of the mini-batch closed by the current step (1-based).

    ``suffix`` is ``"_post"`` in synapse code, where the counters are those of
    the postsynaptic group. With ``tick`` the code runs at the first step
    after the batch (the per-batch clock); otherwise at the batch's last step.
    """
    win = "timestep(t, dt)//T_steps - n_test_win"
    count = f"({win})//B_size" if tick else f"({win} + 1)//B_size"
    # Clipped at 1: Brian2 hoists this loop-invariant expression out of the
    # per-neuron loop, so it is also evaluated in steps without a batch end,
    # where the unclipped count can be 0 (and 1 - beta**0 = 0 would divide by 0).
    return f"clip(adam_k0{suffix} + {count}, 1, 1e18)"


def output_delta_code(loss_batch: str = "B_size") -> str:
    """Error signal of the output layer at the end of a training window.

    ``loss_batch`` names the constant with the mini-batch's window count of the
    loss (``B_loss`` in the split form, where ``B_size`` is one process's share).
    """
    return (
        f"delta = (2.0/({loss_batch}*n_classes))*(nwin/T_steps - target(t, i))*sg_acc/T_steps\n"
        "gb += delta"
    )


def hidden_delta_code(pool: bool = False) -> str:
    """Error signal of a hidden spiking layer (or of a linear pooling stage)."""
    if pool:
        return "delta = dacc"
    return "delta = dacc*sg_acc/T_steps\ngb += delta"


def backprop_code(pre_kind: str, pool_weight: float | None = None) -> str:
    """Synapse code of the backward pass, run once per training window.

    Parameters
    ----------
    pre_kind : {"input", "spiking", "pool"}
        What the presynaptic group is: the input layer has no error to receive;
        a pooling stage's rate is its mean pooled activity.
    pool_weight : float, optional
        For the fixed synapses into a pooling stage: only the error is passed.
    """
    if pool_weight is not None:
        return f"dacc_pre += {pool_weight!r}*delta_post"
    rate = "a_sum_pre/T_steps" if pre_kind == "pool" else "nwin_pre/T_steps"
    lines = [] if pre_kind == "input" else ["dacc_pre += w*delta_post"]
    lines.append(f"g += delta_post*{rate}")
    return "\n".join(lines)


def _adam_step(param: str, m: str, v: str, g: str, lr: str, keep: str, k: str) -> list:
    """The three assignments of one Adam step: ``[(m, new m), (v, new v), (param, new param)]``.

    ``keep`` is the factor that holds masked parameters at zero, ``k`` the step count.
    """
    return [
        (m, f"beta1*{m} + (1 - beta1)*{g}"),
        (v, f"beta2*{v} + (1 - beta2)*{g}*{g}"),
        (param, f"({param} - {lr}*({m}/(1 - beta1**{k}))/(sqrt({v}/(1 - beta2**{k})) + adam_eps))*{keep}"),
    ]


def adam_synapse_code(tick: bool = False) -> str:
    """One Adam step of every synapse at the end of a mini-batch.

    With hard masks (``hard_mask = 1``) a pruned synapse keeps ``w = 0``.

    With ``tick`` the code is that of the per-batch clock (module docstring):
    ``adam_now`` is 1 at a tick that closes a training batch (the update is
    then the same expression as without ``tick``) and 0 at the others, where
    every variable keeps its value exactly.
    """
    step = _adam_step("w", "mt", "vt", "g", "lr_post", "(1 - hard_mask_post*(1 - connected))",
                      adam_step_expression("_post", tick=tick))
    return _adam_code(step, "g", "_post", tick)


def adam_bias_code(tick: bool = False) -> str:
    """One Adam step of every bias at the end of a mini-batch (with ``tick``: on the
    per-batch clock, gated as in :func:`adam_synapse_code`)."""
    step = _adam_step("b", "mb", "vb", "gb", "lr", "(1 - hard_mask*bias_mask_on*pruned)",
                      adam_step_expression(tick=tick))
    return _adam_code(step, "gb", "", tick)


def _adam_code(step: list, grad: str, suffix: str, tick: bool) -> str:
    """The assignments of an Adam ``step`` (:func:`_adam_step`) and the gradient sum ``grad``
    cleared; with ``tick`` gated by ``adam_now`` (the flags of the group, ``suffix``)."""
    if not tick:
        return "\n".join(f"{var} = {expr}" for var, expr in step) + f"\n{grad} = 0"
    return (
        f"adam_now = int(timestep(t, dt) >= (n_test_win + B_size)*T_steps)*learn_on{suffix}\n"
        + "\n".join(f"{var} = adam_now*({expr}) + (1 - adam_now)*{var}" for var, expr in step)
        + f"\n{grad} = {grad}*(1 - adam_now)"
    )


#: Window end: the network is reset for the next sample (the reference code
#: starts every batch from zero membrane state).
WINDOW_CLEAR_LIF = "v = 0\nI = 0\nnwin = 0\nsg_acc = 0\ndacc = 0"
WINDOW_CLEAR_POOL = "a = 0\na_sum = 0\ndacc = 0"


# ---------------------------------------------------------------- numpy twin

def numpy_period(cfg, layers, spikes_in, labels, n_test, lr, k=0):
    """The numpy twin of one period of learning: the LIF network (rectangular
    surrogate), the rate-coupled readout and Adam, driven by given input spikes.

    ``layers`` is a list (forward order) of dicts of dense matrices, updated in
    place: ``W`` (neurons x inputs; a locally connected layer is a dense matrix
    with zeros off its receptive fields), ``exists`` (which entries are
    synapses), ``b``, the Adam state ``mW``, ``vW``, ``mb``, ``vb``, the
    gradient sums ``gW``, ``gb`` and ``pool`` (a fixed average-pooling map).
    A convolution (tied weights) adds ``tie`` (the kernel element each entry of
    ``W`` reads, -1 where none) and ``channel`` (each neuron's), and learns the
    kernel ``k`` and channel biases ``bc`` (Adam state ``mk``, ``vk``, ``mbc``,
    ``vbc``) from the sums of ``gW`` and ``gb`` over the entries that share them;
    ``W`` and ``b`` are then read from them.
    ``spikes_in`` is windows x steps x inputs; the first ``n_test`` windows do
    not learn; ``k`` is the number of Adam steps taken before this period.
    Returns the output spike counts per window. The tests compare the
    generated code of every device with it.
    """
    T = cfg.schedule.n_steps
    B = cfg.training.batch
    K = cfg.n_classes
    tr = cfg.training
    n_windows = spikes_in.shape[0]
    counts_out = np.zeros((n_windows, K))
    for win in range(n_windows):
        v = [np.zeros(len(lay["b"])) for lay in layers]
        sg = [np.zeros(len(lay["b"])) for lay in layers]
        cnt = [np.zeros(len(lay["b"])) for lay in layers]
        cnt_in = np.zeros(spikes_in.shape[2])
        for t in range(T):
            s = spikes_in[win, t].astype(float)
            cnt_in += s
            for li, lay in enumerate(layers):
                if lay["pool"]:
                    s = lay["W"] @ s          # graded activity: mean of the afferent spikes
                    cnt[li] += s
                    continue
                v[li] = cfg.neuron.decay * v[li] + lay["W"] @ s + lay["b"]
                sg[li] += (np.abs(v[li] - cfg.neuron.threshold) < cfg.neuron.surrogate_width)
                s = (v[li] > cfg.neuron.threshold).astype(float)
                v[li][s > 0] = 0.0
                cnt[li] += s
        counts_out[win] = cnt[-1]
        if win < n_test:
            continue
        y = np.zeros(K)
        y[labels[win]] = 1.0
        delta = 2.0 / (B * K) * (cnt[-1] / T - y) * sg[-1] / T
        for li in range(len(layers) - 1, -1, -1):
            lay = layers[li]
            rate_pre = (cnt[li - 1] if li > 0 else cnt_in) / T
            if not lay["pool"]:
                lay["gb"] += delta
                lay["gW"] += np.outer(delta, rate_pre) * lay["exists"]   # only synapses that exist learn
            if li > 0:
                delta = lay["W"].T @ delta
                if not layers[li - 1]["pool"]:   # a pooling stage is linear: no surrogate gain
                    delta = delta * sg[li - 1] / T
        if (win - n_test) % B == B - 1:
            k += 1
            for lay in (lay for lay in layers if not lay["pool"]):
                if "tie" in lay:     # a convolution: the sums over the entries that share a parameter
                    ok = lay["tie"] >= 0
                    lay["gk"] = np.bincount(lay["tie"][ok], weights=lay["gW"][ok], minlength=len(lay["k"]))
                    lay["gbc"] = np.bincount(lay["channel"], weights=lay["gb"], minlength=len(lay["bc"]))
                    lay["gW"][:] = lay["gb"][:] = 0.0
                    params = (("k", "gk", "mk", "vk"), ("bc", "gbc", "mbc", "vbc"))
                else:
                    params = (("W", "gW", "mW", "vW"), ("b", "gb", "mb", "vb"))
                for p, g, m, vv in params:
                    lay[m] = tr.beta1 * lay[m] + (1 - tr.beta1) * lay[g]
                    lay[vv] = tr.beta2 * lay[vv] + (1 - tr.beta2) * lay[g] ** 2
                    mhat = lay[m] / (1 - tr.beta1 ** k)
                    vhat = lay[vv] / (1 - tr.beta2 ** k)
                    lay[p] = lay[p] - lr * mhat / (np.sqrt(vhat) + tr.eps)
                    lay[g][:] = 0.0
                if "tie" in lay:
                    lay["W"] = np.where(lay["tie"] >= 0, lay["k"][lay["tie"]], 0.0)
                    lay["b"] = lay["bc"][lay["channel"]]
    return counts_out
