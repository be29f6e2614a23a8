"""Mini-batch-parallel training (``training.parallel_windows``) against the sequential form, per sample.

784-300-10 (``mnist5k_fc``), T = 20, ``cpp_standalone``: the sequential form at
batch 10 and the parallel form at B = 10 and B = 100 (``training.batch``), each
at 1 and 2 OpenMP threads. Every variant is built once; then the binaries run
in turn, ``rounds`` times round-robin, so that the load of a shared machine
falls on all of them alike. Each run is one period of ``n_train`` training
windows (no test windows) on the first MNIST training digits. Reported per
variant: the median over the rounds of the binary's simulation time per
training sample (Brian2's ``last_run_info.txt``, without start-up and file
I/O), the same for the whole binary run, and the binary's peak resident memory.

Usage: ``python benchmarks/parallel_windows.py [--rounds 3] [--n-train 1000] [--out FILE.json]``;
``python benchmarks/run.py parallel`` runs it and records the result with the others.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
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

MODEL = "mnist5k_fc"
#: (form, batch) of every variant
VARIANTS = (("sequential", 10), ("parallel", 10), ("parallel", 100))


def build_variant(form: str, batch: int, threads: int, n_train: int, workdir: Path) -> dict:
    """Build one variant, run it once through its :class:`~sdsnn_bio.runner.PeriodRunner`, and
    return what re-running its binary by hand needs (project folder, run arguments)."""
    from sdsnn_bio.network import network_class

    reset_brian()
    cfg = load_config(find_model(MODEL))
    cfg = cfg.replace(training={"batch": batch, "parallel_windows": form == "parallel"})
    build = workdir / f"{form}_b{batch}_t{threads}"
    set_up_device("cpp_standalone", str(build), threads=threads)
    t = time.time()
    net = network_class(cfg)(cfg, 0, n_train, device="cpp_standalone", directory=str(build), seed=0)
    ds = load_mnist5k()
    x = stimulus_matrix(ds.x_train[:n_train])
    tg = np.zeros((n_train, cfg.n_classes))
    tg[np.arange(n_train), ds.y_train[:n_train]] = 1
    net.set_shared(lr=cfg.training.lr, adam_k0=0, learn_on=1, struct_on=0, hard_mask=0, bias_mask_on=0)
    net.set_inputs(x, tg)
    net.run()
    build_s = time.time() - t
    net.set_inputs(x, tg)
    args = net.runner._run_args()        # the next period's arguments: inputs and the carried state
    n_syn = sum(s.n_synapses for s in net.stages)
    return {"form": form, "batch": batch, "threads": threads, "directory": str(build), "args": args,
            "synapses": n_syn, "build_and_first_run_s": round(build_s, 1), "n_train": n_train}


def run_binary(v: dict, results: Path) -> tuple:
    """Run a variant's binary once: (simulation seconds, wall seconds, peak RSS in MiB)."""
    results.mkdir(parents=True, exist_ok=True)
    t = time.time()
    # the binary appends file names to --results_dir as given: it must end with a slash
    p = subprocess.Popen(["./main", "--results_dir", f"{results}/"] + v["args"], cwd=v["directory"],
                         stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.time() - t
    if status:
        raise RuntimeError(f"{v['directory']}: the binary failed (status {status})")
    run_s = float((results / "last_run_info.txt").read_text().split()[0])
    return run_s, wall, usage.ru_maxrss / 1024


def parallel_windows_benchmark(workdir: Path, n_train: int = 1000, rounds: int = 3, threads=(1, 2),
                               variants=VARIANTS, progress=print) -> dict:
    """Build every variant, then time the binaries round-robin (see the module docstring)."""
    built = []
    for th in threads:
        for form, batch in variants:
            built.append(build_variant(form, batch, th, n_train, workdir))
            progress(f"built {form} B={batch} threads={th} in {built[-1]['build_and_first_run_s']} s")
    times = {i: [] for i in range(len(built))}
    for r in range(rounds):
        for i, v in enumerate(built):
            times[i].append(run_binary(v, workdir / "results" / str(i)))
        progress(f"round {r + 1}/{rounds} done")
    rows = []
    for i, v in enumerate(built):
        run_s = [t[0] for t in times[i]]
        wall_s = [t[1] for t in times[i]]
        rows.append({k: v[k] for k in ("form", "batch", "threads", "synapses", "n_train", "build_and_first_run_s")}
                    | {"ms_per_sample": round(1000 * statistics.median(run_s) / n_train, 3),
                       "ms_per_sample_runs": [round(1000 * s / n_train, 3) for s in run_s],
                       "ms_per_sample_wall": round(1000 * statistics.median(wall_s) / n_train, 3),
                       "peak_rss_mib": round(max(t[2] for t in times[i]), 1)})
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.platform(), "cores": os.cpu_count(),
            "load_1min_at_end": load, "model": MODEL, "T": 20, "rounds": rounds, "rows": rows}


def markdown(result: dict) -> list:
    """Table lines of a :func:`parallel_windows_benchmark` result."""
    if not result:
        return []
    lines = ["", f"Mini-batch-parallel training (`training.parallel_windows`), {result['model']} (784-300-10), "
             f"T = {result['T']}, cpp_standalone, {result['rows'][0]['n_train']} training windows per run, "
             f"median of {result['rounds']} runs taken round-robin ({result['date']}, {result['cores']} cores, "
             f"load {result['load_1min_at_end']}):", "",
             "| form | batch | threads | ms/sample (simulation) | ms/sample (binary run) | peak RSS (MiB) |",
             "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['form']} | {r['batch']} | {r['threads']} | **{r['ms_per_sample']}** | "
                     f"{r['ms_per_sample_wall']} | {r['peak_rss_mib']} |")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", help="write the result as JSON here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as tmp:
        result = parallel_windows_benchmark(Path(tmp), n_train=args.n_train, rounds=args.rounds,
                                            threads=tuple(args.threads))
    print("\n".join(markdown(result)))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
