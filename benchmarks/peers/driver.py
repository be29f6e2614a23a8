"""Side-by-side benchmarks of sdsnn-bio against its peers, its scaling and its CPU profile.

Called by ``benchmarks/run.py`` (``./dev bench peers``, ``./dev bench scaling``,
``./dev bench cpu``); every measurement is a subprocess printing one JSON line:

* :func:`peers_benchmark`: the 784-300-10 network, T = 20, trained on the 4000
  training digits of MNIST 5k for the same number of passes by snnTorch (its own
  virtual environment, :mod:`benchmarks.peers.venv`) at batch 10 and 100 and by
  sdsnn-bio (``mnist5k_fc``, its batch of 10; and split over two one-thread processes,
  ``training.processes``, at batch 10 and 20), and simulated without learning in
  plain Brian2 (the floor), at 1 and 2 threads. The settings run one after another
  in rounds, the order reversed in every other round, so that a load that rises
  or falls weighs on all alike; ratios are taken within a round. Every trained
  network is tested by the same numpy function on the 1000 test digits with the
  same input spikes (:func:`benchmarks.peers.common.evaluate`).
* :func:`scaling_benchmark`: time and peak memory per period as fc1 widens
  (10^4 .. 10^7 synapses) on cpp_standalone; the per-synapse bytes of the
  generated model beside what the spine state strictly needs.
* :func:`cpu_profile`: where a training pass's time goes (Brian2's per-code-object
  profile on cpp_standalone) at 1 and 2 OpenMP threads.
"""

import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from . import common
from .venv import ensure_venv

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

#: Width of fc1 for each scaling point: 794 synapses per fc1 neuron (784 in, 10 out).
SCALING_UNITS = (13, 126, 1260, 3780, 12600)

#: What the spine state of one synapse strictly needs: the five real-valued fields
#: (the bounds, the two accumulated overshoots, the previous magnitude) as float64,
#: the three streak counters (at most the spine streak N, 18 at most in the models)
#: as one byte each, and the three "previous update" flags with the mask as bits
#: (one byte). The generated model keeps all of them as float64.
SPINE_STRICT_BYTES = {"r_up": 8, "r_lo": 8, "s_up": 8, "s_lo": 8, "a_prev": 8,
                      "c_up": 1, "c_lo": 1, "c_ret": 1, "prev_up+prev_lo+prev_ret+connected": 1}
SPINE_MODEL_FIELDS = ("r_up", "r_lo", "c_up", "s_up", "c_lo", "s_lo", "c_ret", "a_prev", "prev_up", "prev_lo",
                      "prev_ret", "connected")


def _run_json(cmd, timeout=None, log=print) -> dict:
    """Run one benchmark subprocess and return its JSON line (with ``load`` before and after)."""
    load0 = os.getloadavg()[0]
    t0 = time.time()
    p = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout, cwd=str(REPO))
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd[:3]))} ... failed (exit {p.returncode}):\n{p.stdout[-3000:]}")
    result = common.parse_result(p.stdout)
    result["process_s"] = round(time.time() - t0, 1)
    result["load"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    log(f"  {result}")
    return result


#: sdsnn-bio's split form (``training.processes``): both cores as two one-thread processes,
#: at the model's batch and at twice it
SPLIT_SETTINGS = ((2, 10), (2, 20))


def peer_settings(threads=(1, 2), snn_batches=(10, 100), split=SPLIT_SETTINGS) -> list:
    """The settings of one round: ``[(key, kind, threads, batch, processes)]``, in their forward
    order; ``threads`` per process. The split form's settings (``sdsnn_p{P}_b{B}``) run one
    thread per process, after the one-thread settings."""
    out = []
    for th in threads:
        for b in snn_batches:
            out.append((f"snntorch_b{b}_t{th}", "snntorch", th, b, 1))
        out.append((f"sdsnn_t{th}", "sdsnn", th, 10, 1))
        out.append((f"floor_t{th}", "floor", th, None, 1))
        if th == 1:
            out += [(f"sdsnn_p{P}_b{b}", "sdsnn", 1, b, P) for P, b in split]
    return out


def round_order(settings: list, k: int) -> list:
    """Round ``k``'s order: forward in even rounds, reversed in odd ones."""
    return list(settings) if k % 2 == 0 else list(reversed(settings))


def summarise_peers(rows: list) -> dict:
    """Medians per setting and the ratios within each round (pure; see :func:`peers_benchmark`).

    Parameters
    ----------
    rows : list of dict
        One per measurement: ``key``, ``kind``, ``threads``, ``batch``, ``round``,
        ``ms_per_sample`` and, for trainers, ``accuracy``.

    Returns
    -------
    dict
        ``settings``: per key the median ms per sample, samples per second, the
        accuracies; ``ratios``: per round and as medians over rounds, sdsnn-bio's
        best throughput over snnTorch's best, sdsnn-bio over snnTorch at equal batch
        (10) and threads, and sdsnn-bio's time over the floor's at equal threads.
    """
    settings = {}
    for r in rows:
        s = settings.setdefault(r["key"], {"kind": r["kind"], "threads": r["threads"], "batch": r["batch"],
                                           "processes": r.get("processes", 1), "ms_per_sample": [],
                                           "accuracy": []})
        if r["ms_per_sample"] is not None:
            s["ms_per_sample"].append(r["ms_per_sample"])
        else:
            s["why"] = r.get("why")
        if r.get("accuracy") is not None:
            s["accuracy"].append(r["accuracy"])
    for s in settings.values():
        med = statistics.median(s["ms_per_sample"]) if s["ms_per_sample"] else None
        s["ms_per_sample_median"] = None if med is None else round(med, 4)
        s["samples_per_s"] = None if med is None else round(common.samples_per_s(1000, med), 1)
    per_round = []
    for k in sorted({r["round"] for r in rows}):
        ms = {r["key"]: r["ms_per_sample"] for r in rows if r["round"] == k and r["ms_per_sample"] is not None}
        best = {kind: min(((v, key) for key, v in ms.items() if key.startswith(kind)), default=(None, None))
                for kind in ("sdsnn", "snntorch", "floor")}
        ratio = {"round": k,
                 "best_sdsnn": best["sdsnn"][1], "best_snntorch": best["snntorch"][1],
                 # throughput ratio = inverse time ratio
                 "sdsnn_best_over_snntorch_best": common.ratio(best["snntorch"][0], best["sdsnn"][0])}
        for th in (1, 2):
            ratio[f"sdsnn_over_snntorch_b10_t{th}"] = common.ratio(ms.get(f"snntorch_b10_t{th}"), ms.get(f"sdsnn_t{th}"))
            ratio[f"sdsnn_time_over_floor_t{th}"] = common.ratio(ms.get(f"sdsnn_t{th}"), ms.get(f"floor_t{th}"))
        ratio["sdsnn_t2_over_t1"] = common.ratio(ms.get("sdsnn_t1"), ms.get("sdsnn_t2"))
        # the split form over one process at the same batch (both cores against one)
        ratio["sdsnn_p2_over_t1"] = common.ratio(ms.get("sdsnn_t1"), ms.get("sdsnn_p2_b10"))
        per_round.append(ratio)
    medians = {}
    for key in per_round[0] if per_round else ():
        vals = [p[key] for p in per_round if isinstance(p[key], float) and not math.isnan(p[key])]
        if key != "round" and vals:
            medians[key] = round(statistics.median(vals), 3)
    return {"settings": settings, "ratios_per_round": per_round, "ratios": medians}


def peers_benchmark(workdir: Path, passes: int = 2, rounds: int = 2, n_train: int = 0, n_train_t2: int = 500,
                    timeout_s: int = 900, log=print) -> dict:
    """Train and time every peer setting side by side (module docstring); returns the results.

    At 1 thread every trainer makes ``passes`` passes over the training digits
    (``n_train`` > 0: only the first ``n_train``) and is tested; at 2 threads each
    is timed on one pass over the first ``n_train_t2`` digits only (on the shared
    2-core machine a 2-thread run can be tens of times slower than a 1-thread one,
    see README), and a run that does not finish in ``timeout_s`` (build included)
    is recorded as such.
    """
    import platform

    from sdsnn_bio.data.mnist import load_mnist5k

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    snn_python = ensure_venv(log=log)
    ds = load_mnist5k()
    data = workdir / "mnist5k.npz"
    common.save_data(data, ds.x_train, ds.y_train, ds.x_test, ds.y_test)
    d = common.load_data(data)
    log("peers: checking snnTorch's neuron against the SD-SNN LIF")
    neuron = _run_json([snn_python, HERE / "snntorch_train.py", data, "--check-neuron"], log=log)
    if not neuron["neuron_check_identical"]:
        raise RuntimeError(f"snnTorch's Leaky neuron does not spike as the SD-SNN LIF: {neuron}")
    rows = []
    settings = peer_settings()
    for k in range(rounds):
        for key, kind, th, batch, procs in round_order(settings, k):
            wfile = workdir / f"{key}_r{k}.npz"
            n, n_pass = (n_train, passes) if th == 1 else (n_train_t2, 1)
            n_windows = n or len(ds.y_train)
            if kind == "snntorch":
                cmd = [snn_python, HERE / "snntorch_train.py", data, "--batch", batch, "--threads", th,
                       "--passes", n_pass, "--n-train", n, "--out", wfile]
            elif kind == "sdsnn":
                cmd = [sys.executable, HERE / "sdsnn_train.py", data, "--threads", th, "--passes", n_pass,
                       "--n-train", n, "--out", wfile, "--processes", procs, "--batch", batch]
            else:
                cmd = [sys.executable, HERE / "brian2_floor.py", data, "--threads", th, "--windows", n_windows,
                       "--repeats", 2]
            log(f"peers: round {k + 1}/{rounds}, {key}")
            try:
                r = _run_json(cmd, timeout=timeout_s, log=log)
            except subprocess.TimeoutExpired:
                r = {"ms_per_sample": None, "why": f"did not finish within {timeout_s} s"}
                log(f"  {key}: {r['why']}")
            r.update(key=key, kind=kind, threads=th, batch=batch, processes=procs, round=k,
                     train_samples=n_windows, train_passes=n_pass)
            if kind != "floor" and th == 1 and r["ms_per_sample"] is not None:
                w = dict(np.load(wfile))
                r["accuracy"] = round(common.evaluate(w, d["x_test"], d["y_test"]), 4)
            rows.append(r)
    summary = summarise_peers(rows)
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.platform(),
            "processor": _cpu_name(), "cores": len(os.sched_getaffinity(0)), "passes": passes,
            "train_samples": n_train or len(ds.y_train), "train_samples_t2": n_train_t2,
            "test_samples": len(ds.y_test), "rounds": rounds,
            "snntorch_versions": {k: next((r.get(k) for r in rows if r.get(k)), None) for k in ("torch", "snntorch")},
            "snntorch_neuron_check": {k: neuron[k] for k in ("neuron_check_identical", "neuron_check_spikes")},
            "rows": rows, **summary}


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


# ------------------------------------------------------------------ scaling

def scaling_plan(units=SCALING_UNITS, available_bytes=None, windows: int = 30, time_limit_s: float = 900.0,
                 ms_per_window_per_synapse: float = 0.6e-3 / 238_200) -> list:
    """Which scaling points to run: ``[(units, synapses, run?, why not)]`` (pure).

    A point is left out when its estimated peak memory (:func:`sdsnn_bio.geometry.estimate_memory`
    of ``mnist5k_fc`` with that width, times 2 for the Python process and the binary
    holding the arrays at once) exceeds ``available_bytes``.
    """
    from sdsnn_bio.config import find_model, load_config
    from sdsnn_bio.geometry import estimate_memory, synapse_counts

    cfg = load_config(find_model("mnist5k_fc"))
    plan = []
    for h in units:
        layers = [dict(layer) for layer in cfg.to_dict()["layers"]]
        layers[0]["units"] = h
        c = cfg.replace(layers=layers)
        n_syn = sum(synapse_counts(c))
        need = 2 * estimate_memory(c, windows)
        why = None
        if available_bytes is not None and need > available_bytes:
            why = (f"estimated peak {need / 2**30:.1f} GiB (Python and binary) > {available_bytes / 2**30:.1f} "
                   "GiB available")
        plan.append((h, n_syn, why is None, why))
    return plan


def scaling_benchmark(workdir: Path, units=SCALING_UNITS, periods: int = 3, train: int = 20, test: int = 10,
                      timeout_s: int = 1200, log=print) -> dict:
    """Time and peak memory per period against the synapse count (module docstring)."""
    from sdsnn_bio.geometry import available_memory

    points = []
    for h, n_syn, run, why in scaling_plan(units, available_memory(), windows=train + test):
        if not run:
            log(f"scaling: {n_syn:,} synapses (fc1 width {h}) not run: {why}")
            points.append({"units": h, "synapses": n_syn, "run": False, "why": why})
            continue
        log(f"scaling: {n_syn:,} synapses (fc1 width {h})")
        cmd = [sys.executable, HERE / "scaling_point.py", "--units", h, "--periods", periods, "--train", train,
               "--test", test]
        try:
            r = _run_json(cmd, timeout=timeout_s, log=log)
        except subprocess.TimeoutExpired:
            points.append({"units": h, "synapses": n_syn, "run": False,
                           "why": f"did not finish within {timeout_s} s (build and {periods} periods)"})
            continue
        except RuntimeError as exc:
            points.append({"units": h, "synapses": n_syn, "run": False, "why": f"failed: {str(exc)[-300:]}"})
            continue
        r["run"] = True
        r["period_wall_s_median"] = round(statistics.median(r["period_wall_s"]), 4)
        r["period_binary_s_median"] = round(statistics.median(r["period_binary_s"]), 4)
        r["binary_bytes_per_synapse"] = round(r["binary_peak_rss_mb"] * 2**20 / r["synapses"], 1)
        r["python_bytes_per_synapse"] = round(r["python_peak_rss_mb"] * 2**20 / r["synapses"], 1)
        points.append(r)
    gpu = shutil.which("nvidia-smi")
    cuda = {"device": "cuda_standalone", "run": False,
            "why": "no GPU on this machine (no nvidia-smi, no NVIDIA driver)" if gpu is None else
            "not run by this benchmark (use benchmarks/gpu_speed.py on a GPU machine)"}
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "processor": _cpu_name(), "periods": periods,
            "windows_per_period": f"{test} test + {train} training", "device": "cpp_standalone (1 thread)",
            "points": points, "cuda_standalone": cuda, "spine_bytes": spine_bytes(points)}


def marginal_bytes_per_synapse(points: list) -> list:
    """Growth of the binary's peak memory per added synapse between consecutive points that ran (pure).

    Returns ``[(synapses, bytes per added synapse)]`` for every point after the first
    that ran: ``(rss - rss_prev) / (synapses - synapses_prev)``, the per-synapse cost
    without the fixed cost of the process.
    """
    ran = [p for p in points if p.get("run")]
    return [(b["synapses"], round((b["binary_peak_rss_mb"] - a["binary_peak_rss_mb"]) * 2**20
                                  / (b["synapses"] - a["synapses"]), 1))
            for a, b in zip(ran, ran[1:])]


def spine_bytes(points: list) -> dict:
    """Bytes per fc1 synapse in the generated model, by role, beside what the spine state strictly needs."""
    per_var = next((p["fc1_bytes_per_synapse_by_variable"] for p in points if p.get("run")), None)
    if not per_var:
        return {}
    spine_model = sum(per_var.get(v, 0) for v in SPINE_MODEL_FIELDS)
    return {"model_total": sum(per_var.values()), "model_spine_and_mask": spine_model,
            "strict_spine_and_mask": sum(SPINE_STRICT_BYTES.values()), "variables": per_var,
            "strict": SPINE_STRICT_BYTES}


def plot_scaling(synapses, period_s, peak_mb, axes=None, **kwds):
    """Time and peak memory per period against the synapse count (log-log), on two Axes.

    Parameters
    ----------
    synapses, period_s, peak_mb : array-like
        Synapse count, wall time per period (s) and peak resident memory (MB) of each point.
    axes : sequence of two matplotlib Axes, optional
        Where to draw; a new figure with two panels side by side by default.
    **kwds
        Passed to ``Axes.plot``.

    Returns
    -------
    (Axes, Axes)
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    kw = dict(marker="o")
    kw.update(kwds)
    ax_t, ax_m = axes
    ax_t.loglog(synapses, period_s, **kw)
    ax_t.set_xlabel("synapses")
    ax_t.set_ylabel("wall time per period (s)")
    ax_m.loglog(synapses, peak_mb, **kw)
    ax_m.set_xlabel("synapses")
    ax_m.set_ylabel("peak resident memory of the binary (MB)")
    return ax_t, ax_m


def save_scaling_plot(scaling: dict, path: Path):
    """Draw :func:`plot_scaling` of the points that ran into ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [p for p in scaling["points"] if p.get("run")]
    if not pts:
        return None
    ax_t, ax_m = plot_scaling([p["synapses"] for p in pts], [p["period_wall_s_median"] for p in pts],
                              [p["binary_peak_rss_mb"] for p in pts])
    fig = ax_t.figure
    fig.suptitle(f"mnist5k_fc with fc1 widened, cpp_standalone, 1 thread, {scaling['windows_per_period']} "
                 f"windows a period ({scaling['date']})", fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ------------------------------------------------------------------ CPU profile

def cpu_profile(workdir: Path, n_train: int = 1000, rounds: int = 2, log=print) -> dict:
    """Per-code-object time of a training pass of ``mnist5k_fc`` at 1 and 2 OpenMP threads.

    Both thread counts alternate for ``rounds`` rounds; the profile of each is its
    last pass's (Brian2 ``profile=True`` on cpp_standalone).
    """
    from sdsnn_bio.data.mnist import load_mnist5k

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "mnist5k.npz"
    ds = load_mnist5k()
    common.save_data(data, ds.x_train, ds.y_train, ds.x_test, ds.y_test)
    rows = []
    for k in range(rounds):
        for th in ((1, 2) if k % 2 == 0 else (2, 1)):
            log(f"cpu profile: round {k + 1}/{rounds}, {th} thread(s)")
            r = _run_json([sys.executable, HERE / "sdsnn_train.py", data, "--threads", th, "--passes", 1,
                           "--n-train", n_train, "--profile"], log=log)
            r["round"] = k
            rows.append(r)
    out = {"date": time.strftime("%Y-%m-%d %H:%M"), "processor": _cpu_name(), "samples": n_train, "rows": rows}
    for th in (1, 2):
        mine = [r for r in rows if r["threads"] == th]
        out[f"ms_per_sample_t{th}"] = round(statistics.median(r["ms_per_sample"] for r in mine), 4)
        names = mine[0]["profile_s"]
        out[f"profile_ms_per_sample_t{th}"] = {
            n: round(1000 * statistics.median(r["profile_s"].get(n, 0.0) for r in mine) / n_train, 5) for n in names}
    out["t2_speedup"] = common.ratio(out["ms_per_sample_t1"], out["ms_per_sample_t2"])
    return out


# ------------------------------------------------------------------ markdown

def append_result(results: dict, key: str, result: dict):
    """Append ``result`` to the runs recorded under ``key`` (a single earlier run becomes a list)."""
    runs = results.get(key)
    if runs is None:
        runs = []
    elif isinstance(runs, dict):
        runs = [runs]
    results[key] = runs + [result]


def _latest(results: dict, key: str):
    """The latest run under ``key`` and the earlier ones."""
    runs = results.get(key)
    if not runs:
        return None, []
    if isinstance(runs, dict):
        return runs, []
    return runs[-1], runs[:-1]


def markdown(results: dict) -> list:
    """Lines of results.md for the peers, scaling and CPU-profile results present in ``results``."""
    lines = []
    p, earlier = _latest(results, "peers")
    if p:
        lines += ["", f"Peers side by side ({p['date']}, {p['processor']}, {p['cores']} cores, shared machine; "
                  f"load average {_load_range(p['rows'])}): 784-300-10, T = 20, {p['passes']} passes over "
                  f"{p['train_samples']} MNIST 5k training digits, then the same numpy test on the "
                  f"{p['test_samples']} test digits (same input spikes) for every trained network; "
                  f"snnTorch {p['snntorch_versions'].get('snntorch')} with torch "
                  f"{p['snntorch_versions'].get('torch')} (PyPI wheel, CPU), surrogate-gradient BPTT"
                  + (f" (its `snn.Leaky` spikes exactly as the SD-SNN LIF: {p['snntorch_neuron_check']['neuron_check_spikes']} "
                     "spikes on random input, checked before the run)" if p.get("snntorch_neuron_check") else "")
                  + "; "
                  f"sdsnn-bio `mnist5k_fc` (cpp_standalone, learning only); the floor: the same network in "
                  f"plain Brian2 without spines or learning. At 2 threads, timing only: one pass over the first "
                  f"{p['train_samples_t2']} digits. {p['rounds']} rounds, the order reversed in "
                  "every other; medians over rounds; ms per sample of the training passes (the floor: per "
                  "forward window):", "",
                  "| setting | processes x threads | batch | ms per sample | samples/s | test accuracy |",
                  "|---|---|---|---|---|---|"]
        for key, s in p["settings"].items():
            acc = ", ".join(f"{100 * a:.1f}%" for a in s["accuracy"]) or "-"
            ms = s["ms_per_sample_median"] if s["ms_per_sample_median"] is not None else f"not measured: {s.get('why')}"
            lines.append(f"| {key} | {s.get('processes', 1)} x {s['threads']} | {s['batch'] or '-'} | {ms} | "
                         f"{s['samples_per_s'] or '-'} | {acc} |")
        r = p["ratios"]
        lines += ["", "Ratios within a round (median over rounds): "
                  f"sdsnn-bio's best throughput / snnTorch's best **{r.get('sdsnn_best_over_snntorch_best')}**; "
                  f"sdsnn-bio / snnTorch at batch 10: {r.get('sdsnn_over_snntorch_b10_t1')} (1 thread), "
                  f"{r.get('sdsnn_over_snntorch_b10_t2')} (2 threads); sdsnn-bio's time / the floor's: "
                  f"{r.get('sdsnn_time_over_floor_t1')} (1 thread), {r.get('sdsnn_time_over_floor_t2')} "
                  f"(2 threads); sdsnn-bio 2 threads over 1: {r.get('sdsnn_t2_over_t1')}x; two processes "
                  f"(`training.processes`, batch 10) over one: {r.get('sdsnn_p2_over_t1')}x."]
        for e in earlier:
            lines.append(f"Earlier run {e['date']}: sdsnn-bio's best / snnTorch's best "
                         f"{e['ratios'].get('sdsnn_best_over_snntorch_best')}, sdsnn-bio's time / the floor's (1 "
                         f"thread) {e['ratios'].get('sdsnn_time_over_floor_t1')}.")
    s, _ = _latest(results, "scaling")
    if s:
        lines += ["", f"Scaling ({s['date']}, {s['device']}, {s['periods']} periods of "
                  f"{s['windows_per_period']} windows, structural step on; `mnist5k_fc` with fc1 widened):", "",
                  "| fc1 width | synapses | build (s) | period wall (s) | binary per period (s) | binary peak RSS (MB) "
                  "| bytes/synapse (binary) | Python peak RSS (MB) |", "|---|---|---|---|---|---|---|---|"]
        for pt in s["points"]:
            if pt.get("run"):
                lines.append(f"| {pt['units']} | {pt['synapses']:,} | {pt['build_s']} | {pt['period_wall_s_median']} | "
                             f"{pt['period_binary_s_median']} | {pt['binary_peak_rss_mb']} | "
                             f"{pt['binary_bytes_per_synapse']} | {pt['python_peak_rss_mb']} |")
            else:
                lines.append(f"| {pt['units']} | {pt['synapses']:,} | not run: {pt['why']} | | | | | |")
        lines.append(f"| cuda_standalone | | not run: {s['cuda_standalone']['why']} | | | | | |")
        marg = marginal_bytes_per_synapse(s["points"])
        if marg:
            lines += ["", "Peak memory of the binary per added synapse, from one point to the next: "
                      + ", ".join(f"{b} bytes (to {n:,} synapses)" for n, b in marg) + "."]
        sb = s.get("spine_bytes")
        if sb:
            lines += ["", f"Per fc1 synapse the generated model holds {sb['model_total']} bytes in its arrays "
                      f"({', '.join(f'{k} {v}' for k, v in sb['variables'].items())}); the spine state and mask "
                      f"take {sb['model_spine_and_mask']} of them (12 float64), where they strictly need "
                      f"{sb['strict_spine_and_mask']} (5 reals as float64, 3 streak counters as bytes, 4 flags "
                      "as bits)."]
    c, _ = _latest(results, "cpu_profile")
    if c:
        lines += ["", f"Where a training pass goes ({c['date']}, mnist5k_fc, {c['samples']} training windows, "
                  f"cpp_standalone with Brian2's profiling): {c['ms_per_sample_t1']} ms per sample on 1 thread, "
                  f"{c['ms_per_sample_t2']} on 2 OpenMP threads ({c['t2_speedup']}x). Code objects, ms per sample:",
                  "", "| code object | 1 thread | 2 threads |", "|---|---|---|"]
        p1, p2 = c["profile_ms_per_sample_t1"], c["profile_ms_per_sample_t2"]
        for name in sorted(p1, key=lambda n: -p1[n])[:15]:
            lines.append(f"| {name} | {p1[name]} | {p2.get(name, '-')} |")
    return lines


def _load_range(rows) -> str:
    loads = [v for r in rows for v in r.get("load", [])]
    return f"{min(loads)}-{max(loads)}" if loads else "?"
