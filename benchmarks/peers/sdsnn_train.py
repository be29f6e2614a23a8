"""sdsnn-bio's side of the peer benchmark: ``mnist5k_fc`` (784-300-10) trained on cpp_standalone.

Run by the benchmark driver with the project's Python; prints one JSON line. The
network is built once (not timed), then every pass over the training samples is
one run of the binary (the synapses' state carries over from run to run, as in
the period loop), with the learning rule only: no structural step, no masks,
no test windows (so that the time is the training samples' alone). Each pass
presents the samples in a fresh order; Adam's step count continues over passes.
The time per pass is the binary's own (Brian2's ``_last_run_time``) and the wall
time of the whole re-run (writing the inputs, starting the binary, reading back).
With ``--profile`` Brian2's per-code-object times of the last pass are printed too.

With ``--processes P`` (and one thread) each mini-batch's windows are split over P processes
of the binary (``training.processes``, :mod:`sdsnn_bio.split`); the binary time is then
process 0's, which waits for the others at every batch.

Usage: ``python sdsnn_train.py DATA.npz --threads 1 [--processes 2] --passes 2 --out W.npz [--profile]``
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import emit, load_data  # noqa: E402


def dense_matrix(n_post, n_pre, i, j, values):
    """Synapse values (one per synapse, pre index ``i``, post index ``j``) as a post x pre matrix."""
    import numpy as np

    m = np.zeros((n_post, n_pre))
    m[j, i] = values
    return m


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--model", default="mnist5k_fc")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--batch", type=int, default=0, help="mini-batch (0: the model's)")
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-train", type=int, default=0, help="first N training samples (0: all)")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--out", help="write the trained weights here (.npz)")
    args = ap.parse_args(argv)

    import brian2
    import numpy as np

    from sdsnn_bio.config import find_model, load_config
    from sdsnn_bio.devices import reset_brian, set_up_device
    from sdsnn_bio.network import network_class

    d = load_data(args.data)
    cfg = load_config(find_model(args.model))
    if args.processes > 1 or args.batch:
        cfg = cfg.replace(training={"processes": args.processes, "batch": args.batch or cfg.training.batch})
    B = cfg.training.batch
    n = args.n_train or len(d["y_train"])
    n = n // B * B
    x, y = d["x_train"][:n].astype(np.float64), d["y_train"][:n]
    root = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="sdsnn-peer-", dir=root) as tmp:
        reset_brian()
        set_up_device("cpp_standalone", tmp, threads=args.threads)
        t0 = time.perf_counter()
        net = network_class(cfg)(cfg, 0, n, device="cpp_standalone", directory=tmp, seed=args.seed,
                           profile=args.profile)
        net.build()
        build_s = time.perf_counter() - t0
        rng = np.random.default_rng(args.seed)
        binary_s, wall_s = [], []
        for p in range(args.passes):
            order = rng.permutation(n)
            tg = np.zeros((n, cfg.n_classes))
            tg[np.arange(n), y[order]] = 1.0
            net.set_shared(lr=cfg.training.lr, adam_k0=p * (n // B), learn_on=1, struct_on=0, hard_mask=0,
                           bias_mask_on=0)
            net.set_inputs(x[order], tg)
            t0 = time.perf_counter()
            net.run()
            wall_s.append(time.perf_counter() - t0)
            binary_s.append(float(brian2.device._last_run_time))
        fc1, out = net.stage("fc1"), net.stage("out")
        weights = {}
        for k, st in ((1, fc1), (2, out)):
            weights[f"W{k}"] = dense_matrix(st.n_neurons, int(np.prod(st.in_shape)), st.pre_index, st.post_index,
                                            net.get(st.synapses, "w"))
            weights[f"b{k}"] = net.get(st.group, "b")
        profile = dict(net.runner.last_profile) if args.profile else None
        n_syn = sum(s.n_synapses for s in net.stages)
    if args.out:
        np.savez(args.out, **weights)
    result = {"peer": "sdsnn-bio", "model": args.model, "batch": B, "threads": args.threads,
              "processes": args.processes, "passes": args.passes,
              "samples": n * args.passes, "synapses": n_syn, "build_s": round(build_s, 2),
              "train_s": round(sum(binary_s), 4), "pass_s": [round(s, 4) for s in binary_s],
              "wall_pass_s": [round(s, 4) for s in wall_s],
              "ms_per_sample": round(1000 * sum(binary_s) / (n * args.passes), 4),
              "ms_per_sample_wall": round(1000 * sum(wall_s) / (n * args.passes), 4)}
    if profile is not None:
        result["profile_s"] = {k: round(v, 5) for k, v in sorted(profile.items(), key=lambda kv: -kv[1])}
    emit(result)


if __name__ == "__main__":
    main()
