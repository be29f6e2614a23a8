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
3. ``sweep``: 8 small jobs (``tiny_dense``, 4 seeds x 2 mask kinds) run one after
   another with ``sdsnn-bio run``, then through ``sdsnn-bio sweep`` on the local
   Dask cluster (one worker per core), side by side; the ratio of the two wall
   times (target: at most 0.6 on 2 cores).

4. ``peers``, ``scaling``, ``cpu`` (:mod:`benchmarks.peers.driver`): sdsnn-bio beside
   snnTorch (its own virtual environment) and plain Brian2 on 784-300-10; time and
   memory per period from 10^4 to 10^7 synapses; where a training pass's time goes
   at 1 and 2 OpenMP threads. Run one with ``./dev bench peers`` (or ``scaling``,
   ``cpu``); its result joins those recorded.

5. ``parallel`` (:mod:`benchmarks.parallel_windows`): ms per training sample of 784-300-10 in the
   sequential form (batch 10) and with ``training.parallel_windows`` (B = 10, 100), at 1 and 2
   OpenMP threads, the binaries timed round-robin (``./dev bench parallel``).

Usage: ``python benchmarks/run.py [peers|scaling|cpu|parallel] [--quick] [--only sweep] [--out benchmarks/results.md]``
(``--only sweep`` adds its rows to the recorded sweep results and keeps the others).
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
               n_test: int = 0, parallel: bool = False, batch=None, unity_build=None) -> dict:
    """Median wall time per window of the binary (and of the whole re-run).

    ``n_test`` test windows (forward pass only) come before the ``n_windows``
    training windows, as in a period; with ``n_test = 0`` only training windows
    are timed. ``parallel``: the mini-batch-parallel form (``training.parallel_windows``);
    ``batch``: another mini-batch than the model's; ``unity_build``: as
    :func:`sdsnn_bio.devices.set_up_device` takes it.
    """
    from sdsnn_bio.network import network_class

    reset_brian()
    cfg = load_config(find_model(model)).replace(training={"parallel_windows": parallel})
    if batch:
        cfg = cfg.replace(training={"batch": batch})
    batch = cfg.training.batch
    n_windows = max(batch, n_windows // batch * batch)
    build = workdir / f"build_{model}_{device}_{n_test}{'_parallel' if parallel else ''}"
    set_up_device(device, str(build), unity_build=unity_build)
    net = network_class(cfg)(cfg, n_test, n_windows, device=device, directory=str(build), seed=0)
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
        "model": model, "device": device, "batch": batch, "windows": n_windows, "test_windows": n_test,
        # the synapses simulated (a convolution's positions' synapses) and the weights learnt
        # (a convolution's kernel)
        "synapses": sum(s.n_simulated_synapses for s in net.stages),
        "weights": sum(s.n_synapses for s in net.stages if s.learnable),
        "neurons": sum(s.n_simulated_neurons for s in net.stages), "build_and_first_run_s": round(build_s, 2),
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


SWEEP_FILE = """name = "bench"
[grid]
model = ["tiny_dense"]
seed = [{seeds}]
masks = ["soft", "hard"]
"""


def _job_summaries(root: Path, ids) -> dict:
    from sdsnn_bio.records import RunFolder

    return {i: {k: v for k, v in RunFolder(root / i).read_summary().items() if k != "timings"} for i in ids}


def sweep_speed(workdir: Path, cache: str = "warm", n_seeds: int = 4) -> dict:
    """Wall time of the same jobs one after another and through ``sdsnn-bio sweep``.

    The jobs are the sweep's own (``job.toml`` of each job folder). ``sequential``
    runs each with ``python -m sdsnn_bio run`` (a build takes both cores,
    ``make -j2``); ``sweep`` runs the sweep on the local cluster (a worker per
    core); the control ``plain`` runs the same commands a core's number at a time
    from a thread pool, without Dask: what the cores gave in parallel at that
    moment of the shared machine. Every side's results must be equal.

    ``cache="warm"``: the compiler cache holds the jobs' code (one untimed run
    fills it), as when a sweep is run again or extended; the sweep starts all jobs
    at once (``--stagger never``, what ``auto`` does for a build made before). The
    sides run in the order sequential, sweep, plain, plain, sweep, sequential and
    each side's two times are added, so that a load that rises or falls steadily
    weighs on all sides alike. ``cache="cold"``: each side starts with an empty
    compiler cache and project cache of its own, as for the first sweep of a new
    network (the sweep builds the first job alone, ``--stagger auto``, then its
    twins take the objects from the cache); sequential, then sweep.
    """
    import os
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    import tomli_w

    from sdsnn_bio.sweep import load_sweep

    workdir.mkdir(parents=True, exist_ok=True)
    sweep_path = workdir / "bench_sweep.toml"
    sweep_path.write_text(SWEEP_FILE.format(seeds=", ".join(map(str, range(n_seeds)))))
    jobs = load_sweep(sweep_path).jobs
    ids = [j.id for j in jobs]
    cores = len(os.sched_getaffinity(0))
    cfgs = workdir / "bench_configs"
    cfgs.mkdir(exist_ok=True)
    for job in jobs:
        (cfgs / f"{job.id}.toml").write_text(tomli_w.dumps(job.config.to_dict()))

    def cli(*args, side):
        env = None if cache == "warm" else dict(os.environ, CCACHE_DIR=str(workdir / f"ccache_{side}"),
                                                SDSNN_CACHE=str(workdir / f"cache_{side}"))
        p = subprocess.run([sys.executable, "-m", "sdsnn_bio", *map(str, args)], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"sdsnn-bio {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stdout[-3000:]}")
        return p.stdout

    def sequential(out):
        for job in jobs:
            cli("run", cfgs / f"{job.id}.toml", "--out", out / job.id, side="sequential")
        return _job_summaries(out, ids)

    def plain(out):
        with ThreadPoolExecutor(cores) as ex:
            list(ex.map(lambda job: cli("run", cfgs / f"{job.id}.toml", "--out", out / job.id, side="plain"), jobs))
        return _job_summaries(out, ids)

    def sweep(out):
        stagger = "never" if cache == "warm" else "auto"
        printed = cli("sweep", sweep_path, "--out", out, "--stagger", stagger, side="sweep")
        staggered.append("to build the code they share" in printed)
        return _job_summaries(out, [f"{i}/run" for i in ids])

    def shared(out):
        # the jobs as copies, one build per worker (ceil(8 / 2) = 4 copies each); a copy draws
        # its input spikes from the build's stream, so its numbers are not a single run's
        k = -(-len(jobs) // cores)
        cli("sweep", sweep_path, "--out", out, "--stagger", "never", "--copies-per-build", k, side="shared")
        got = _job_summaries(out, [f"{i}/run" for i in ids])
        assert len(got) == len(ids) and all("final_test_accuracy" in v for v in got.values())
        return got

    staggered = []
    if cache == "warm":
        cli("run", cfgs / f"{ids[0]}.toml", "--out", workdir / "warmup", side="warmup")   # not timed
        shared(workdir / "warmup_shared")                                                  # not timed
        order = [sequential, sweep, shared, plain, plain, shared, sweep, sequential]
    else:
        order = [sequential, sweep]
    loads, times, first = [os.getloadavg()[0]], {}, None
    for i, side in enumerate(order):
        t = time.time()
        got = side(workdir / f"{i}_{side.__name__}")
        times[side.__name__] = times.get(side.__name__, 0.0) + time.time() - t
        loads.append(os.getloadavg()[0])
        first = first or got
        if side is not shared:
            assert list(got.values()) == list(first.values()), f"{side.__name__}: results differ from the first side's"
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "jobs": len(jobs), "model": "tiny_dense",
            "grid": f"seed 0..{n_seeds - 1} x masks soft/hard", "periods": jobs[0].config.schedule.periods,
            "cores": cores, "workers": cores, "compiler_cache": cache,
            "order": [side.__name__ for side in order], "staggered": any(staggered),
            "load_min": round(min(loads), 2), "load_max": round(max(loads), 2),
            "sequential_s": round(times["sequential"], 1), "sweep_s": round(times["sweep"], 1),
            "ratio": round(times["sweep"] / times["sequential"], 3),
            "plain_parallel_s": round(times["plain"], 1) if "plain" in times else None,
            "plain_parallel_ratio": round(times["plain"] / times["sequential"], 3) if "plain" in times else None,
            "shared_s": round(times["shared"], 1) if "shared" in times else None,
            "shared_ratio": round(times["shared"] / times["sequential"], 3) if "shared" in times else None,
            "copies_per_build": -(-len(jobs) // cores)}


# parallel: benchmarks/parallel_windows.py; copies: benchmarks/copies_threads.py
PEER_BENCHMARKS = ("peers", "scaling", "cpu", "parallel", "copies")


def run_peer_benchmark(what: str, out: Path, quick: bool = False):
    """Run one of :data:`PEER_BENCHMARKS`; its result is appended to those recorded in ``out``'s .json."""
    from benchmarks.peers import driver

    path = out.with_suffix(".json")

    def recorded():   # read when the result is in, so that a result written meanwhile is kept
        return json.loads(path.read_text()) if path.exists() else {
            "date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.platform(),
            "processor": platform.processor() or platform.machine()}

    with tempfile.TemporaryDirectory() as tmp:
        if what == "peers":
            key, result = "peers", driver.peers_benchmark(Path(tmp), passes=1 if quick else 2,
                                                          rounds=1 if quick else 2, n_train=1000 if quick else 0)
        elif what == "scaling":
            key, result = "scaling", driver.scaling_benchmark(Path(tmp), units=driver.SCALING_UNITS[:2] if quick
                                                              else driver.SCALING_UNITS)
            driver.save_scaling_plot(result, REPO / "benchmarks" / "scaling.png")
        elif what == "parallel":
            from benchmarks.parallel_windows import parallel_windows_benchmark

            key, result = None, parallel_windows_benchmark(Path(tmp), n_train=400 if quick else 1000,
                                                           rounds=2 if quick else 3)
        elif what == "copies":
            from benchmarks.copies_threads import copies_threads_benchmark

            key, result = "copies_threads", copies_threads_benchmark(Path(tmp), n_train=50 if quick else 200,
                                                                     rounds=1 if quick else 2)
        else:
            key, result = "cpu_profile", driver.cpu_profile(Path(tmp), n_train=500 if quick else 1000,
                                                            rounds=1 if quick else 2)
    results = recorded()
    if key is None:
        results["parallel_windows"] = result
    else:
        driver.append_result(results, key, result)
    path.write_text(json.dumps(results, indent=2))
    out.write_text(_markdown(results))
    print(_markdown(results))


def _markdown(results: dict) -> str:
    lines = [f"# Benchmark results ({results['date']}, {results['machine']}, {results['processor']})", ""]
    if results.get("per_sample"):
        lines += ["Wall time per sample window (T = 20 steps), cpp_standalone, 1 thread. A run of only "
                  "training windows, and one of test + training windows (the prototype's pass over the "
                  "MNIST 5k split: 0.86 ms per window, `shared/reference/brian2_learning_notes.md`):", "",
                  "| model | synapses | neurons | windows (test + train) | ms/window (binary) "
                  "| ms/window (re-run incl. I/O) |",
                  "|---|---|---|---|---|---|"]
        for r in results["per_sample"]:
            n_test = r.get("test_windows", 0)
            lines.append(f"| {r['model']} | {r['synapses']} | {r['neurons']} | {n_test} + {r['windows'] - n_test} | "
                         f"{r['ms_per_window_binary']} | {r['ms_per_window_wall']} |")
    if results.get("structural_cost"):
        lines += ["", "Structural step during structural periods (median over the periods measured):", "",
                  "| model | windows a period | generated structural code (s) | numpy decisions (s) "
                  "| period wall time (s) | structural fraction |", "|---|---|---|---|---|---|"]
        for sc in results["structural_cost"]:
            lines.append(f"| {sc['model']} | {sc['windows_per_period']} | {sc['structural_code_s_per_period']} | "
                         f"{sc['numpy_decisions_s_per_period']} | {sc['period_wall_s']} | "
                         f"**{100 * sc['structural_fraction']:.2f}%** |")
    sweeps = results.get("sweep", [])
    if sweeps:
        lines += ["", "Sweep of small jobs: one after another (`sdsnn-bio run`) against `sdsnn-bio sweep` on the "
                  "local Dask cluster, measured side by side (target ratio <= 0.6 with the jobs' code in the "
                  "compiler cache; with an empty cache both sides compile once, the sweep before the first "
                  "job's twins start). The machine is shared: load average (1 min) lowest and highest "
                  "between the sides. The control: the same runs a core's number at a time without Dask (a "
                  "thread pool of subprocesses), what the cores gave in parallel at that moment. Warm: "
                  "sides run twice, in the order sequential, sweep, control, control, sweep, sequential, "
                  "times added (from 2026-12-02 also `sweep --copies-per-build K`, the jobs as copies in one "
                  "build per worker, between sweep and control):",
                  "", "| date | jobs | workers (cores) | compiler cache | load | sequential (s) | sweep (s) "
                  "| ratio | control (s) | control ratio | copies per build: sweep (s) | ratio |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for sw in sweeps:
            lines.append(f"| {sw['date']} | {sw['jobs']} x {sw['model']} ({sw['grid']}, {sw['periods']} periods) | "
                         f"{sw['workers']} ({sw['cores']}) | {sw['compiler_cache']}"
                         f"{', first build alone' if sw['staggered'] else ''} | "
                         f"{sw['load_min']}-{sw['load_max']} | {sw['sequential_s']} | {sw['sweep_s']} "
                         f"| **{sw['ratio']}** | {sw.get('plain_parallel_s') or '-'} "
                         f"| {sw.get('plain_parallel_ratio') or '-'} "
                         + (f"| {sw['copies_per_build']}: {sw['shared_s']} | **{sw['shared_ratio']}** |"
                            if sw.get("shared_s") else "| - | - |"))
    from benchmarks.peers.driver import markdown as peers_markdown

    lines += peers_markdown(results)
    from benchmarks.parallel_windows import markdown as parallel_markdown

    lines += parallel_markdown(results.get("parallel_windows"))
    from benchmarks.copies_threads import markdown as copies_markdown

    for result in results.get("copies_threads", []):
        lines += copies_markdown(result)
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("benchmark", nargs="?", choices=PEER_BENCHMARKS,
                    help="run only this benchmark of benchmarks/peers; its result joins those recorded")
    ap.add_argument("--quick", action="store_true", help="fewer windows and repeats")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results.md"))
    ap.add_argument("--skip-paper", action="store_true", help="skip the paper network (large build)")
    ap.add_argument("--only", choices=("sweep",),
                    help="run only this benchmark; its result joins those recorded in --out's .json")
    ap.add_argument("--sweep-cache", default="warm,cold", choices=("warm,cold", "warm", "cold"),
                    help="compiler cache cases of the sweep benchmark")
    args = ap.parse_args(argv)
    repeats = 2 if args.quick else 3
    out = Path(args.out)
    if args.benchmark:
        run_peer_benchmark(args.benchmark, out, quick=args.quick)
        return
    if args.only == "sweep":
        results = json.loads(out.with_suffix(".json").read_text())
        with tempfile.TemporaryDirectory() as tmp:
            for cache in args.sweep_cache.split(","):   # added to the sweep rows recorded before
                results.setdefault("sweep", []).append(sweep_speed(Path(tmp) / cache, cache=cache))
                print(json.dumps(results["sweep"][-1]), flush=True)
        out.with_suffix(".json").write_text(json.dumps(results, indent=2))
        out.write_text(_markdown(results))
        print(_markdown(results))
        return
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
        results["sweep"] = []
        for cache in ("warm", "cold"):
            results["sweep"].append(sweep_speed(tmp / f"sweep_{cache}", cache=cache))
            print(json.dumps(results["sweep"][-1]), flush=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    out.write_text(_markdown(results))
    print(_markdown(results))


if __name__ == "__main__":
    main()
