"""Both cores for one network: the split form (``training.processes``) against one process.

A mini-batch's windows split over ``P`` one-thread processes of the same binary, the gradient
sums added through shared memory before each Adam step (:mod:`sdsnn_bio.split`), against the
sequential form on one thread, on the same windows. Default: the paper's MNIST network with its
shared-weight convolutions (``mnist_paper``, batch 100) on ``cpp_standalone``. Each setting is
built once (the first run compiles it, not timed); then the settings are timed round-robin,
``--rounds`` times, each time ``--windows`` training windows of MNIST 5k digits (learning on, no
structural step), so that both see the same machine load. Reported per setting: the wall time
per window of each round (the split's includes starting its second process) and its median, and
per round the ratio of the one-process time to the split's (the speed-up).

    python benchmarks/split_form.py [--model mnist_paper] [--windows 400] [--rounds 3]
                                    [--processes 2] [--out benchmarks/split_form.json]
"""

from __future__ import annotations

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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def build(model: str, processes: int, n_windows: int, workdir: Path):
    """The network of ``model`` with ``processes``, built in its own project folder and run once
    (the compilation), with its inputs set."""
    from sdsnn_bio.config import find_model, load_config
    from sdsnn_bio.data.encoding import stimulus_matrix
    from sdsnn_bio.data.mnist import load_mnist5k
    from sdsnn_bio.devices import reset_brian, set_up_device
    from sdsnn_bio.network import network_class

    reset_brian()
    cfg = load_config(find_model(model)).replace(training={"processes": processes})
    B = cfg.training.batch
    n_windows = max(B, n_windows // B * B)
    folder = workdir / f"{model}_p{processes}"
    set_up_device("cpp_standalone", str(folder))
    net = network_class(cfg)(cfg, 0, n_windows, device="cpp_standalone", directory=str(folder), seed=0)
    ds = load_mnist5k()
    x = stimulus_matrix(ds.x_train[:n_windows])
    target = np.eye(cfg.n_classes)[ds.y_train[:n_windows]]
    net.set_shared(lr=cfg.training.lr, adam_k0=0, learn_on=1, struct_on=0, hard_mask=0, bias_mask_on=0)
    net.set_inputs(x, target)
    t = time.time()
    net.run()
    return net, x, target, time.time() - t


def time_run(net, x, target) -> float:
    net.set_inputs(x, target)
    t = time.time()
    net.run()
    return time.time() - t


def measure(model: str, n_windows: int, rounds: int, processes: int, workdir: Path) -> dict:
    import brian2

    settings = {}
    for P in (1, processes):
        # Brian2 holds one standalone device at a time: each setting is rebuilt (into its own
        # folder, so the second build of a setting reuses its compiled objects) before its runs
        net, x, target, first_s = build(model, P, n_windows, workdir)
        settings[P] = {"processes": P, "batch": net.cfg.training.batch, "windows": len(x),
                       "synapses_simulated": sum(s.n_simulated_synapses for s in net.stages),
                       "weights_learnt": sum(s.n_synapses for s in net.stages if s.learnable),
                       "build_and_first_run_s": round(first_s, 1), "ms_per_window": []}
    for _ in range(rounds):
        for P in (1, processes):
            net, x, target, _ = build(model, P, n_windows, workdir)
            s = time_run(net, x, target)
            settings[P]["ms_per_window"].append(round(1000 * s / len(x), 2))
    one, split = settings[1]["ms_per_window"], settings[processes]["ms_per_window"]
    for s in settings.values():
        s["median_ms_per_window"] = statistics.median(s["ms_per_window"])
    return {
        "model": model, "device": "cpp_standalone", "threads_per_process": 1, "rounds": rounds,
        "settings": list(settings.values()),
        "speedup_per_round": [round(a / b, 3) for a, b in zip(one, split)],
        "brian2": brian2.__version__, "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mnist_paper")
    ap.add_argument("--windows", type=int, default=400, help="training windows per timed run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "split_form.json"))
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="split_form") as tmp:
        result = measure(a.model, a.windows, a.rounds, a.processes, Path(tmp))
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
