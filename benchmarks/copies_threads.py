"""K networks in one build on several cores: OpenMP threads, or one build per core.

A sweep of ``K`` networks of 784-300-10 (``mnist5k_fc``, seeds 0..K-1) on a machine of ``P``
cores can run as one build of ``K`` copies (:class:`sdsnn_bio.multi.MultiSDSNNNetwork`) with
``P`` OpenMP threads, or as ``P`` builds of ``K/P`` copies side by side, one thread each (what
``sdsnn-bio sweep --copies-per-build K/P`` does). With one network a time step's work per code
object is too small for OpenMP's barrier after it (README, Speed: two threads 2.4 times slower
than one); a build of ``K`` copies does ``K`` times the work per code object, so the question is
whether that is enough. Variants, each in a process of its own (``cpp_standalone``, training
windows only, the copies' lockstep run by hand as in :mod:`benchmarks.gpu_targets`):

* ``1 network``: one copy, one thread (the reference);
* ``K copies, 1 thread``: one build, one core;
* ``K copies, P threads``: one build, OpenMP, GCC's default wait policy (spinning at barriers);
* ``K copies, P threads, passive``: the same with ``OMP_WAIT_POLICY=PASSIVE`` (threads sleep
  at a barrier);
* ``P x K/P copies``: ``P`` builds side by side, one thread each; they meet at a barrier file
  before timing, so that their timed runs overlap;
* ``P x 1 network``: ``P`` single networks side by side (what ``sdsnn-bio sweep`` does without
  ``--copies-per-build``), met at a barrier as above.

Each variant is built, run once, then its binary re-run ``--repeats`` times; reported: the
median of Brian2's simulation time of the binary, as training samples per second of all its
networks together (for ``P x K/P``, the sum over the processes) and over the ``1 network``
variant of the same round. The variants run in turn, ``--rounds`` times, every other round in
reverse order, so that a load that rises or falls weighs on all alike.

Usage: ``python benchmarks/copies_threads.py [--copies 8] [--cores 2] [--n-train 200]
[--rounds 2] [--out FILE.json]``; ``python benchmarks/run.py copies`` runs it and records the
result with the others.
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

MODEL = "mnist5k_fc"


def one_variant(K: int, threads: int, n_train: int, repeats: int, workdir: Path, offset: int = 0,
                barrier=None) -> dict:
    """Build ``K`` copies with ``threads`` OpenMP threads and time their binary (in this process).

    ``barrier``: ``(own ready file, other ready files)``: written after the untimed first run;
    timing starts once every other file exists."""
    from benchmarks.gpu_targets import _timed, build_copies

    run, n_train, build_s = build_copies(MODEL, "cpp_standalone", K, n_train, workdir, threads=threads, seed0=offset)
    if barrier:
        own, others = barrier
        Path(own).write_text("ready")
        while not all(Path(o).exists() for o in others):
            time.sleep(0.05)
    sim, wall = _timed(run, repeats)
    return {"copies": K, "threads": threads, "samples": K * n_train, "build_and_first_run_s": round(build_s, 1),
            "sim_s": round(sim, 4), "wall_s": round(wall, 4), "samples_per_s": round(K * n_train / sim, 1)}


def _spawn(K, threads, n_train, repeats, workdir, offset=0, env=None, barrier=None):
    cmd = [sys.executable, __file__, "--one", str(K), "--threads", str(threads), "--n-train", str(n_train),
           "--repeats", str(repeats), "--workdir", str(workdir), "--offset", str(offset)]
    if barrier:
        cmd += ["--barrier", barrier[0], *barrier[1]]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, **(env or {})))


def _result(p) -> dict:
    out, err = p.communicate()
    if p.returncode != 0:
        raise RuntimeError(f"a benchmark process failed ({p.returncode}):\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def copies_threads_benchmark(workdir: Path, K: int = 8, cores: int = 2, n_train: int = 200, repeats: int = 3,
                             rounds: int = 2, progress=print) -> dict:
    """Every variant of the module docstring, ``rounds`` times; see there."""
    if K % cores:
        raise ValueError(f"K = {K} copies do not divide over {cores} cores")
    variants = [("1 network", 1, 1, 1, None), (f"{K} copies, 1 thread", K, 1, 1, None),
                (f"{K} copies, {cores} threads", K, cores, 1, None),
                (f"{K} copies, {cores} threads, passive", K, cores, 1, {"OMP_WAIT_POLICY": "PASSIVE"}),
                (f"{cores} x {K // cores} copies", K // cores, 1, cores, None),
                (f"{cores} x 1 network", 1, 1, cores, None)]
    got = {v[0]: [] for v in variants}
    loads = [os.getloadavg()[0]]
    for r in range(rounds):
        order = variants if r % 2 == 0 else variants[::-1]
        for name, k, threads, procs, env in order:
            wd = workdir / f"r{r}"
            wd.mkdir(parents=True, exist_ok=True)
            if procs == 1:
                rows = [_result(_spawn(k, threads, n_train, repeats, wd, env=env))]
            else:
                ready = [str(wd / f"ready{i}") for i in range(procs)]
                ps = [_spawn(k, threads, n_train, repeats, wd, offset=i * k, env=env,
                             barrier=(ready[i], [f for j, f in enumerate(ready) if j != i]))
                      for i in range(procs)]
                rows = [_result(p) for p in ps]
            got[name].append({"samples_per_s": round(sum(x["samples_per_s"] for x in rows), 1),
                              "build_and_first_run_s": max(x["build_and_first_run_s"] for x in rows),
                              "processes": rows})
            loads.append(os.getloadavg()[0])
            progress(f"round {r + 1}: {name}: {got[name][-1]['samples_per_s']} samples/s")
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.platform(), "cores": os.cpu_count(),
            "model": MODEL, "T": 20, "K": K, "n_train": n_train, "repeats": repeats, "rounds": rounds,
            "load_min": round(min(loads), 2), "load_max": round(max(loads), 2), "rows": summarise(variants, got)}


def summarise(variants, got: dict) -> list:
    """A row per variant: its throughput (median over the rounds) and its ratio to the first
    variant's (one network), each ratio taken within a round, then the median."""
    ref = got[variants[0][0]]
    rows = []
    for name, k, threads, procs, env in variants:
        ratios = [g["samples_per_s"] / s["samples_per_s"] for g, s in zip(got[name], ref)]
        rows.append({"variant": name, "networks": k * procs, "copies_per_build": k, "threads": threads,
                     "processes": procs, "omp_wait_policy": (env or {}).get("OMP_WAIT_POLICY", "default"),
                     "samples_per_s": round(statistics.median(g["samples_per_s"] for g in got[name]), 1),
                     "samples_per_s_rounds": [g["samples_per_s"] for g in got[name]],
                     "over_one_network": round(statistics.median(ratios), 2),
                     "over_one_network_rounds": [round(x, 2) for x in ratios],
                     "build_and_first_run_s": [g["build_and_first_run_s"] for g in got[name]]})
    return rows


def markdown(result: dict) -> list:
    """Table lines of a :func:`copies_threads_benchmark` result."""
    if not result:
        return []
    lines = ["", f"{result['K']} networks of {result['model']} (784-300-10, T = {result['T']}) on "
             f"{result['cores']} cores, cpp_standalone, {result['n_train']} training windows per network and "
             f"binary run, median of {result['repeats']} runs, {result['rounds']} rounds in alternating order "
             f"({result['date']}, load {result['load_min']}-{result['load_max']}):", "",
             "| variant | builds x copies | threads | OMP_WAIT_POLICY | samples/s (all networks) "
             "| over one network (median of rounds) |",
             "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['variant']} | {r['processes']} x {r['copies_per_build']} | {r['threads']} | "
                     f"{r['omp_wait_policy']} | {r['samples_per_s']} | **{r['over_one_network']}** "
                     f"({', '.join(map(str, r['over_one_network_rounds']))}) |")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=8, help="K networks (default 8)")
    ap.add_argument("--cores", type=int, default=2, help="P: threads of one build, or builds side by side")
    ap.add_argument("--n-train", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", help="write the result as JSON here")
    # one variant in this process (the benchmark's own subprocesses)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    ap.add_argument("--offset", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--barrier", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        barrier = (args.barrier[0], args.barrier[1:]) if args.barrier else None
        print(json.dumps(one_variant(args.one, args.threads, args.n_train, args.repeats, Path(args.workdir),
                                     offset=args.offset, barrier=barrier)))
        return None
    with tempfile.TemporaryDirectory() as tmp:
        result = copies_threads_benchmark(Path(tmp), K=args.copies, cores=args.cores, n_train=args.n_train,
                                          repeats=args.repeats, rounds=args.rounds)
    print("\n".join(markdown(result)))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
