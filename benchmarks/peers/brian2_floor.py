"""Peer: the floor -- the same 784-300-10 network simulated in plain Brian2, no spines, no learning.

Run by the benchmark driver with the project's Python; prints one JSON line. The
network is what a Brian2 user would write for sdsnn-bio's forward pass and nothing
more: Bernoulli rate coding from a ``TimedArray`` (``stim > 0 and rand() < stim``,
as sdsnn-bio's input), two layers of the SD-SNN LIF (``v <- 0.2 v + I + b``, spike
when ``v > 0.5``, reset to 0), dense synapses ``I_post += w``, the membranes cleared
at every window's start, a ``SpikeMonitor`` on the output; ``T = 20`` steps of
``dt = 1 ms`` per window. As in sdsnn-bio, a spike crosses all layers in its step
(every operation in the ``thresholds`` slot with explicit ``order``). Built once on
cpp_standalone (with ``--threads`` OpenMP threads), then re-run; the time per window
is the median of the binary's own run times.

Usage: ``python brian2_floor.py DATA.npz --threads 1 --windows 4000 --repeats 3 [--weights W.npz]``
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DECAY, T_STEPS, THRESHOLD, emit, init_weights, load_data  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--windows", type=int, default=4000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weights", help="weights (.npz of W1, b1, W2, b2); default: PyTorch's initialisation")
    args = ap.parse_args(argv)

    import brian2 as b2
    import numpy as np

    from sdsnn_bio.devices import reset_brian, set_up_device

    d = load_data(args.data)
    x = d["x_train"][:args.windows].astype(np.float64)
    n_win = len(x)
    W = dict(np.load(args.weights)) if args.weights else init_weights(seed=args.seed)
    root = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="b2floor-", dir=root) as tmp:
        reset_brian()
        set_up_device("cpp_standalone", tmp, threads=args.threads)
        b2.defaultclock.dt = 1 * b2.ms
        b2.seed(args.seed)
        T = T_STEPS
        stim = b2.TimedArray(np.concatenate([x, np.zeros((1, x.shape[1]))]), dt=T * b2.ms)
        inp = b2.NeuronGroup(x.shape[1], "", threshold="stim(t, i) > 0 and rand() < stim(t, i)",
                             namespace={"stim": stim}, name="inp")
        inp.thresholder["spike"].order = 0
        groups, syns, pre = [], [], inp
        for k in (1, 2):
            Wk, bk = W[f"W{k}"], W[f"b{k}"]
            g = b2.NeuronGroup(len(bk), "v : 1\nI : 1\nb : 1", threshold=f"v > {THRESHOLD!r}", reset="v = 0",
                               name=f"layer{k}")
            g.b = bk
            g.run_regularly(f"v = {DECAY!r}*v + I + b\nI = 0", when="thresholds", order=10 * k + 2)
            g.thresholder["spike"].order = 10 * k + 3
            g.run_regularly("v = 0\nI = 0", dt=T * b2.ms, when="start")      # a new window
            s = b2.Synapses(pre, g, "w : 1", on_pre="I_post += w", name=f"syn{k}")
            s.connect()                                                     # presynaptic-major
            s.pre.when, s.pre.order = "thresholds", 10 * k + 1
            s.w = Wk.T.ravel()                                              # (pre, post) order
            groups.append(g)
            syns.append(s)
            pre = g
        mon = b2.SpikeMonitor(groups[-1], name="out_spikes")
        hid = b2.SpikeMonitor(groups[0], record=False, name="hid_spikes")
        net = b2.Network(inp, *groups, *syns, mon, hid)
        t0 = time.perf_counter()
        net.run(n_win * T * b2.ms)
        b2.device.build(directory=tmp, compile=True, run=True, with_output=False)
        build_s = time.perf_counter() - t0
        binary = [float(b2.device._last_run_time)]
        for _ in range(args.repeats - 1):
            b2.device.run(directory=tmp, with_output=False)
            binary.append(float(b2.device._last_run_time))
        out_spikes = int(mon.num_spikes)
        hid_spikes = int(hid.num_spikes)
    med = statistics.median(binary)
    emit({"peer": "brian2-floor", "threads": args.threads, "windows": n_win, "repeats": len(binary),
          "build_and_first_run_s": round(build_s, 2), "run_s": [round(s, 4) for s in binary],
          "ms_per_sample": round(1000 * med / n_win, 4),
          "hidden_spikes_per_window": round(hid_spikes / n_win, 2),
          "output_spikes_per_window": round(out_spikes / n_win, 2),
          "weights": "given" if args.weights else "initial"})


if __name__ == "__main__":
    main()
