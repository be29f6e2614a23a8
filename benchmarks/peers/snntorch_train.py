"""Peer: the 784-300-10 network trained in snnTorch on the CPU (surrogate-gradient BPTT).

Run inside the peer's own virtual environment (:mod:`benchmarks.peers.venv`) by the
benchmark driver; prints one JSON line. The network and rule match sdsnn-bio's
``mnist5k_fc`` as far as snnTorch expresses them: ``snn.Leaky`` with ``beta = 0.2``,
threshold 0.5, reset to zero in the same step (``reset_mechanism="zero"``,
``reset_delay=False``: ``v <- 0.2 v + W s + b``, then 0 where it spiked), a rectangular
surrogate (derivative 1 where ``|v - 0.5| < 0.5``), Bernoulli rate coding drawn per
step, ``T = 20``, the mean squared error between output rates and one-hot labels,
Adam (lr 1e-3, PyTorch defaults), PyTorch's default initialisation. The gradient is
backpropagation through time (autograd through the 20 steps), which is what an
snnTorch user would run; sdsnn-bio's rule is its rate-coupled approximation
(:mod:`sdsnn_bio.learning`).

Usage: ``python snntorch_train.py DATA.npz --batch 100 --threads 2 --passes 2 --out W.npz``
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import T_STEPS, emit, lif_layer_spikes, load_data  # noqa: E402


def check_neuron(snn, torch, seed: int = 1) -> dict:
    """Whether ``snn.Leaky`` as configured here spikes exactly as the SD-SNN LIF (numpy), on random input."""
    import numpy as np

    rng = np.random.default_rng(seed)
    W, b = rng.normal(0, 0.4, (30, 50)), rng.normal(0, 0.1, 30)
    s_in = (rng.random((20, 8, 50)) < 0.3).astype(float)
    fc = torch.nn.Linear(50, 30).double()
    with torch.no_grad():
        fc.weight[:] = torch.tensor(W)
        fc.bias[:] = torch.tensor(b)
    lif = snn.Leaky(beta=0.2, threshold=0.5, reset_mechanism="zero", reset_delay=False)
    mem, out = lif.init_leaky(), []
    for s in s_in:
        spk, mem = lif(fc(torch.tensor(s)), mem)
        out.append(spk.detach().numpy())
    ref = lif_layer_spikes(W, b, s_in)
    return {"neuron_check_identical": bool(np.array_equal(np.array(out), ref)), "neuron_check_spikes": int(ref.sum())}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--steps", type=int, default=T_STEPS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-train", type=int, default=0, help="first N training samples (0: all)")
    ap.add_argument("--out", help="write the trained weights here (.npz)")
    ap.add_argument("--check-neuron", action="store_true",
                    help="only check snn.Leaky against the numpy LIF and print the result")
    args = ap.parse_args(argv)

    import numpy as np
    import snntorch as snn
    import torch

    if args.check_neuron:
        emit({"peer": "snntorch", **check_neuron(snn, torch), "torch": torch.__version__,
              "snntorch": snn.__version__})
        return

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)

    class Rectangular(torch.autograd.Function):
        """Heaviside spike with the rectangular surrogate of sdsnn-bio (half width 0.5)."""

        @staticmethod
        def forward(ctx, u):
            ctx.save_for_backward(u)
            return (u > 0).to(u.dtype)

        @staticmethod
        def backward(ctx, grad):
            (u,) = ctx.saved_tensors
            return grad * (u.abs() < 0.5).to(u.dtype)

    d = load_data(args.data)
    n = args.n_train or len(d["y_train"])
    x_train = torch.from_numpy(d["x_train"][:n]).float()
    y_train = torch.from_numpy(d["y_train"][:n]).long()
    x_test = torch.from_numpy(d["x_test"]).float()
    y_test = torch.from_numpy(d["y_test"]).long()
    n = (n // args.batch) * args.batch

    fc1, fc2 = torch.nn.Linear(784, 300), torch.nn.Linear(300, 10)
    lif_kw = dict(beta=0.2, threshold=0.5, spike_grad=Rectangular.apply, reset_mechanism="zero",
                  reset_delay=False)
    lif1, lif2 = snn.Leaky(**lif_kw), snn.Leaky(**lif_kw)
    params = list(fc1.parameters()) + list(fc2.parameters())
    opt = torch.optim.Adam(params, lr=args.lr)

    def forward(xb):
        mem1, mem2 = lif1.init_leaky(), lif2.init_leaky()
        count = 0
        for _ in range(args.steps):
            s0 = (torch.rand_like(xb) < xb).to(xb.dtype)
            spk1, mem1 = lif1(fc1(s0), mem1)
            spk2, mem2 = lif2(fc2(spk1), mem2)
            count = count + spk2
        return count / args.steps

    gen = torch.Generator().manual_seed(args.seed)
    pass_s = []
    for _ in range(args.passes):
        order = torch.randperm(len(y_train), generator=gen)[:n]
        t0 = time.perf_counter()
        for lo in range(0, n, args.batch):
            idx = order[lo:lo + args.batch]
            rate = forward(x_train[idx])
            target = torch.nn.functional.one_hot(y_train[idx], 10).to(rate.dtype)
            loss = torch.mean((rate - target) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        pass_s.append(time.perf_counter() - t0)
    with torch.no_grad():
        t0 = time.perf_counter()
        pred = torch.cat([forward(x_test[lo:lo + 500]).argmax(1) for lo in range(0, len(y_test), 500)])
        test_s = time.perf_counter() - t0
    own_acc = float((pred == y_test).float().mean())
    if args.out:
        np.savez(args.out, W1=fc1.weight.detach().double().numpy(), b1=fc1.bias.detach().double().numpy(),
                 W2=fc2.weight.detach().double().numpy(), b2=fc2.bias.detach().double().numpy())
    train_s = sum(pass_s)
    emit({"peer": "snntorch", "batch": args.batch, "threads": args.threads, "passes": args.passes,
          "samples": n * args.passes, "train_s": round(train_s, 4), "pass_s": [round(s, 4) for s in pass_s],
          "ms_per_sample": round(1000 * train_s / (n * args.passes), 4),
          "own_test_accuracy": round(own_acc, 4), "test_ms_per_sample": round(1000 * test_s / len(y_test), 4),
          "torch": torch.__version__, "snntorch": snn.__version__, "torch_threads": torch.get_num_threads()})


if __name__ == "__main__":
    main()
