"""Issue 10's GPU targets, measured side by side on one machine (prepared for a lent GPU).

1. ``paper``: the paper's MNIST network (``mnist_paper``), training windows only, per training
   sample: the sequential form on ``cpp_standalone`` (one thread, the CPU reference) against
   the mini-batch-parallel form (``training.parallel_windows``, B = the model's mini-batch) on
   the GPU device. Target: the GPU at least 10 times faster per sample.
2. ``copies``: ``K`` networks of 784-300-10 (``mnist5k_fc``) in one build
   (:class:`sdsnn_bio.multi.MultiSDSNNNetwork`, seeds 0..K-1) on the GPU device against one such
   network on ``cpp_standalone`` (one thread): training samples per second of all copies
   together over the single network's. Target (K = 32): at least 20.

Every variant is built, run once (which fills the carried state), then its binary re-run
``--repeats`` times through its :class:`~sdsnn_bio.runner.PeriodRunner`; the time is Brian2's
own simulation time of the binary (``device._last_run_time``), the median over the repeats,
and the wall time of the whole re-run beside it. Without a GPU the GPU side is reported as not
run (with the reason) and only the CPU side is measured, unless ``--gpu-device`` names a CPU
device (a dry run of the script's code paths, as the test suite does).

Usage: ``python benchmarks/gpu_targets.py [--parts paper copies] [--copies 32] [--out FILE.json]``
(``benchmarks/gpu_check.sh`` runs it on a lent GPU machine).
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sdsnn_bio.config import find_model, load_config  # noqa: E402
from sdsnn_bio.data.encoding import stimulus_matrix  # noqa: E402
from sdsnn_bio.data.mnist import load_mnist5k  # noqa: E402
from sdsnn_bio.devices import gpu_available, reset_brian, set_up_device  # noqa: E402

from benchmarks.run import per_sample  # noqa: E402

FLAGS = dict(adam_k0=0, learn_on=1, struct_on=0, hard_mask=0, bias_mask_on=0)


def _inputs(cfg, n: int, offset: int = 0):
    ds = load_mnist5k()
    idx = (offset + np.arange(n)) % len(ds.y_train)
    tg = np.zeros((n, cfg.n_classes))
    tg[np.arange(n), ds.y_train[idx]] = 1
    return stimulus_matrix(ds.x_train[idx]), tg


def _timed(run, repeats: int):
    """Median simulation and wall seconds of ``repeats`` calls of ``run`` (after one untimed)."""
    import brian2

    run()
    sim, wall = [], []
    for _ in range(repeats):
        t = time.time()
        run()
        wall.append(time.time() - t)
        sim.append(brian2.device._last_run_time)
    return statistics.median(sim), statistics.median(wall)


def _unity(device: str):
    # the GPU build as unity files, one per core (nvcc parses Thrust/cuRAND once a file)
    return max(1, os.cpu_count() or 1) if device == "cuda_standalone" else None


def single(model: str, device: str, n_train: int, repeats: int, workdir: Path, parallel: bool = False,
           batch=None) -> dict:
    """One network of ``model`` (sequential or parallel-windows form) on ``device``: per sample
    (:func:`benchmarks.run.per_sample`, training windows only)."""
    r = per_sample(model, n_train, repeats, workdir, device=device, parallel=parallel, batch=batch,
                   unity_build=_unity(device))
    return {"part": "paper" if model == "mnist_paper" else "copies", "model": model, "device": device,
            "form": "parallel windows" if parallel else "sequential", "batch": r["batch"], "copies": 1,
            "samples": r["windows"], "build_and_first_run_s": r["build_and_first_run_s"],
            "ms_per_sample": r["ms_per_window_binary"], "ms_per_sample_wall": r["ms_per_window_wall"],
            "samples_per_s": round(1000 / r["ms_per_window_binary"], 1)}


def build_copies(model: str, device: str, K: int, n_train: int, workdir: Path, threads: int = 1,
                 seed0: int = 0):
    """``K`` networks of ``model`` (seeds ``seed0 ..``) in one build on ``device``, run once.

    Returns ``(run, n_train, build_s)``: ``run()`` presents each copy its own ``n_train``
    training digits (whole mini-batches) and runs the binary once for all (the copies' lockstep,
    by hand); ``build_s`` is the build and first run."""
    from sdsnn_bio.multi import MultiSDSNNNetwork

    reset_brian()
    base = load_config(find_model(model))
    B = base.training.batch
    n_train = max(B, n_train // B * B)
    cfgs = [base.replace(schedule={"seed": seed0 + k}) for k in range(K)]
    build = workdir / f"{model}_{device}_copies{K}_t{threads}_s{seed0}"
    set_up_device(device, str(build), threads=threads, unity_build=_unity(device))
    t = time.time()
    net = MultiSDSNNNetwork(cfgs, 0, n_train, device, str(build))
    inputs = [_inputs(cfg, n_train, offset=(seed0 + k) * n_train) for k, cfg in enumerate(cfgs)]
    for view, cfg in zip(net.copies, cfgs):
        view.set_shared(lr=cfg.training.lr, **FLAGS)

    def run():
        for view, (x, tg) in zip(net.copies, inputs):
            view.set_inputs(x, tg)
        net.run_all()

    run()
    return run, n_train, time.time() - t


def copies(model: str, device: str, K: int, n_train: int, repeats: int, workdir: Path) -> dict:
    """``K`` networks of ``model`` in one build on ``device``: samples per second of all together."""
    run, n_train, build_s = build_copies(model, device, K, n_train, workdir)
    sim, wall = _timed(run, repeats)
    B = load_config(find_model(model)).training.batch
    return {"part": "copies", "model": model, "device": device, "form": "sequential", "batch": B, "copies": K,
            "samples": K * n_train, "build_and_first_run_s": round(build_s, 1),
            "ms_per_sample": round(1000 * sim / (K * n_train), 4),
            "ms_per_sample_wall": round(1000 * wall / (K * n_train), 4),
            "samples_per_s": round(K * n_train / sim, 1)}


def measure(parts=("paper", "copies"), K: int = 32, gpu_device: str = "cuda_standalone", repeats: int = 3,
            n_paper: int = 200, n_fc: int = 1000, paper_batch=None, workdir=None, progress=print) -> dict:
    """Both parts (see the module docstring); returns rows and the two ratios against the targets."""
    gpu_here = gpu_device != "cuda_standalone" or gpu_available()
    why = None if gpu_here else "no NVIDIA GPU on this machine (nvidia-smi lists none): the GPU side was not run"
    rows, ratios = [], {}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        tmp = Path(tmp)
        if "paper" in parts:
            cpu = single("mnist_paper", "cpp_standalone", n_paper, repeats, tmp, batch=paper_batch)
            rows.append(cpu)
            progress(json.dumps(cpu))
            if gpu_here:
                gpu = single("mnist_paper", gpu_device, n_paper, repeats, tmp, parallel=True, batch=paper_batch)
                rows.append(gpu)
                progress(json.dumps(gpu))
                ratios["paper_speedup"] = {"value": round(cpu["ms_per_sample"] / gpu["ms_per_sample"], 2),
                                           "target": 10}
        if "copies" in parts:
            cpu = single("mnist5k_fc", "cpp_standalone", n_fc, repeats, tmp)
            rows.append(cpu)
            progress(json.dumps(cpu))
            if gpu_here:
                gpu = copies("mnist5k_fc", gpu_device, K, n_fc, repeats, tmp)
                rows.append(gpu)
                progress(json.dumps(gpu))
                ratios[f"copies_{K}_throughput"] = {"value": round(gpu["samples_per_s"] / cpu["samples_per_s"], 2),
                                                    "target": 20 if K == 32 else None}
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.platform(), "cores": os.cpu_count(),
            "gpu_device": gpu_device, "not_run": why, "rows": rows, "ratios": ratios}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", nargs="+", default=["paper", "copies"], choices=["paper", "copies"])
    ap.add_argument("--copies", type=int, default=32, help="K networks in one build (issue 10: 32)")
    ap.add_argument("--gpu-device", default="cuda_standalone",
                    help="the device of the GPU side (cpp_standalone: a dry run of the code paths)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--n-paper", type=int, default=200, help="training windows of the paper network per run")
    ap.add_argument("--n-fc", type=int, default=1000, help="training windows of each 784-300-10 network per run")
    ap.add_argument("--paper-batch", type=int,
                    help="mini-batch (and replicas) of the paper network (default: the model's; smaller for a dry run)")
    ap.add_argument("--out", help="write the result as JSON here")
    args = ap.parse_args(argv)
    result = measure(tuple(args.parts), K=args.copies, gpu_device=args.gpu_device, repeats=args.repeats,
                     n_paper=args.n_paper, n_fc=args.n_fc, paper_batch=args.paper_batch)
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
