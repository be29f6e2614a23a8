"""Speed benchmarks of sdsnn-bio (run with ``./dev bench``; results in benchmarks/results.md).

Measured side by side in one process on one machine, so that ratios are
meaningful on a shared, noisy machine:

1. ``per_sample``: wall time of the Brian2 binary per sample window (training
   windows, T = 20 steps) in single-threaded ``cpp_standalone``, for the small
   dense network (784-300-10) and the paper's MNIST network (locally connected
   15 and 40 channels, 300, 10). Median of ``--repeats`` runs of the same binary.
2. ``structural_cost``: during structural periods of ``mnist5k_fc`` (784-300-10)
   and of the main job's paper-shaped network, the time of the structural work -- the per-synapse and per-neuron code
   objects of the period start and end (Brian2 profiling) plus the numpy
   decisions between runs -- as a fraction of the period's wall time.

Usage: ``python benchmarks/run.py [--quick] [--out benchmarks/results.md]``
"""

import argparse
import json
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
from sdsnn_bio.devices import reset_brian, set_up_device  # noqa: E402


def per_sample(model: str, n_windows: int, repeats: int, workdir: Path, device: str = "cpp_standalone",
               n_test: int = 0) -> dict:
    """Median wall time per window of the binary (and of the whole re-run).

    ``n_test`` test windows (forward pass only) come before the ``n_windows``
    training windows, as in a period; with ``n_test = 0`` only training windows
    are timed.
    """
    from sdsnn_bio.network import SDSNNNetwork

    reset_brian()
    cfg = load_config(find_model(model))
    batch = cfg.training.batch
    n_windows = max(batch, n_windows // batch * batch)
    build = workdir / f"build_{model}_{device}_{n_test}"
    set_up_device(device, str(build))
    net = SDSNNNetwork(cfg, n_test, n_windows, device=device, directory=str(build), seed=0)
    ds = load_mnist5k()
    x = stimulus_matrix(np.concatenate([ds.x_test[:n_test], ds.x_train[:n_windows]]))
    y = np.concatenate([ds.y_test[:n_test], ds.y_train[:n_windows]])
    tg = np.zeros((n_test + n_windows, cfg.n_classes))
    tg[np.arange(n_test + n_windows), y] = 1
    net.set_shared(lr=cfg.training.lr, adam_k0=0, learn_on=1, struct_on=0, hard_mask=0, bias_mask_on=0)
    t = time.time()
    net.set_inputs(x, tg)
    net.run()
    build_s = time.time() - t
    binary, wall = [], []
    import brian2

    for _ in range(repeats):
        net.set_inputs(x, tg)
        t = time.time()
        net.run()
        wall.append(time.time() - t)
        binary.append(brian2.device._last_run_time)
    n_windows += n_test
    return {
        "model": model, "device": device, "windows": n_windows, "test_windows": n_test, "synapses": sum(s.n_synapses for s in net.stages),
        "neurons": sum(s.n_neurons for s in net.stages), "build_and_first_run_s": round(build_s, 2),
        "ms_per_window_binary": round(1000 * statistics.median(binary) / n_windows, 3),
        "ms_per_window_wall": round(1000 * statistics.median(wall) / n_windows, 3),
    }


def structural_cost(model: str, periods: int, workdir: Path) -> dict:
    """Fraction of a structural period's wall time spent on the structural step.

    Runs ``model`` (its own period size) through :class:`Development` with
    Brian2 profiling on, structure from period 3; each period row then holds the
    time of the structural code objects (``struct_code_s``) and of the numpy
    decisions (``struct_s``).
    """
    from sdsnn_bio.loop import Development
    from sdsnn_bio.report import read_table

    reset_brian()
    cfg = load_config(find_model(model))
    S = 3
    cfg = cfg.replace(schedule={"periods": S + periods, "spine_streak": 1, "structure_start": S})
    run_dir = workdir / f"structural_{model}"
    Development(cfg, run_dir, device="cpp_standalone", profile=True).run()
    t = read_table(run_dir)
    sel = t["period"] >= S
    struct = t["struct_code_s"][sel] + t["struct_s"][sel]
    wall = t["wall_s"][sel]
    return {
        "model": model, "windows_per_period": cfg.schedule.train_per_period + cfg.schedule.test_per_period,
        "periods_measured": int(sel.sum()),
        "structural_code_s_per_period": round(float(np.median(t["struct_code_s"][sel])), 5),
        "numpy_decisions_s_per_period": round(float(np.median(t["struct_s"][sel])), 5),
        "period_wall_s": round(float(np.median(wall)), 4),
        "structural_fraction": round(float(np.median(struct / wall)), 5),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer windows and repeats")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results.md"))
    ap.add_argument("--skip-paper", action="store_true", help="skip the paper network (large build)")
    args = ap.parse_args(argv)
    repeats = 2 if args.quick else 3
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.platform(),
               "processor": platform.processor() or platform.machine(), "per_sample": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        results["per_sample"].append(per_sample("mnist_dense", 200 if args.quick else 1000, repeats, tmp))
        print(json.dumps(results["per_sample"][-1]), flush=True)
        # the prototype's unit of measure: one pass of 4000 training + 1000 test windows
        results["per_sample"].append(per_sample("mnist_dense", 800 if args.quick else 4000, repeats, tmp,
                                                n_test=200 if args.quick else 1000))
        print(json.dumps(results["per_sample"][-1]), flush=True)
        if not args.skip_paper:
            results["per_sample"].append(per_sample("mnist_paper", 100 if args.quick else 200, repeats, tmp))
            print(json.dumps(results["per_sample"][-1]), flush=True)
        results["structural_cost"] = []
        for model in ("mnist5k_fc",) + (() if args.skip_paper else ("mnist5k_main",)):
            results["structural_cost"].append(structural_cost(model, 3 if args.quick else 6, tmp))
            print(json.dumps(results["structural_cost"][-1]), flush=True)
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    lines = [f"# Benchmark results ({results['date']}, {results['machine']}, {results['processor']})", "",
             "Wall time per sample window (T = 20 steps), cpp_standalone, 1 thread. A run of only "
             "training windows, and one of test + training windows (the prototype's pass over the "
             "MNIST 5k split: 0.86 ms per window, `shared/reference/brian2_learning_notes.md`):", "",
             "| model | synapses | neurons | windows (test + train) | ms/window (binary) "
             "| ms/window (re-run incl. I/O) |",
             "|---|---|---|---|---|---|"]
    for r in results["per_sample"]:
        n_test = r.get("test_windows", 0)
        lines.append(f"| {r['model']} | {r['synapses']} | {r['neurons']} | {n_test} + {r['windows'] - n_test} | "
                     f"{r['ms_per_window_binary']} | {r['ms_per_window_wall']} |")
    lines += ["", "Structural step during structural periods (median over the periods measured):", "",
              "| model | windows a period | generated structural code (s) | numpy decisions (s) "
              "| period wall time (s) | structural fraction |", "|---|---|---|---|---|---|"]
    for sc in results["structural_cost"]:
        lines.append(f"| {sc['model']} | {sc['windows_per_period']} | {sc['structural_code_s_per_period']} | "
                     f"{sc['numpy_decisions_s_per_period']} | {sc['period_wall_s']} | "
                     f"**{100 * sc['structural_fraction']:.2f}%** |")
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
