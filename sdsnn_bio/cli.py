"""Command line: ``sdsnn-bio run MODEL``, ``list``, ``report RUN_DIR``, ``export RUN_DIR``, ``main``,
``sweep SWEEP.toml``, ``compare RUN_DIR``, ``ablate MODEL``, ``table RUN_DIR...``.

Also reachable as ``python -m sdsnn_bio``.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .errors import SdsnnError

__all__ = ["main", "build_parser"]


def _progress(prefix=""):
    def emit(line):
        print(f"{prefix}{line}", flush=True)
    return emit


def _overrides(args) -> dict:
    sch, data, stc = {}, {}, {}
    for key in ("periods", "train_per_period", "test_per_period", "seed"):
        v = getattr(args, key, None)
        if v is not None:
            sch[key] = v
    if getattr(args, "structure_start", None) is not None:
        sch["structure_start"] = args.structure_start
    if getattr(args, "spine_streak", None) is not None:
        sch["spine_streak"] = args.spine_streak
    if getattr(args, "dataset", None):
        data["dataset"] = args.dataset
    if getattr(args, "data_dir", None):
        data["directory"] = args.data_dir
    if getattr(args, "n_train", None) is not None:
        data["n_train"] = args.n_train
    if getattr(args, "n_test", None) is not None:
        data["n_test"] = args.n_test
    if getattr(args, "dense", False):
        stc["enabled"] = False
    if getattr(args, "masks", None):
        stc["masks"] = args.masks
    if getattr(args, "no_regeneration", False):
        stc["regeneration"] = False
    if getattr(args, "ablation", None):
        from .ablation import apply_ablation

        stc.update(apply_ablation(args.ablation))
    out = {}
    if getattr(args, "parallel_windows", False):
        out["training"] = {"parallel_windows": True}
    if getattr(args, "processes", None):
        out.setdefault("training", {})["processes"] = args.processes
    if sch:
        out["schedule"] = sch
    if data:
        out["data"] = data
    if stc:
        out["structure"] = stc
    return out


def cmd_run(args) -> int:
    from .config import find_model, load_config
    from .loop import Development
    from .report import make_figures, text_report

    cfg = load_config(find_model(args.model))
    over = _overrides(args)
    if over:
        cfg = cfg.replace(**over)
    out = Path(args.out or os.path.join("runs", f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"))
    if out.exists() and any(out.iterdir()) and not args.resume:
        raise SdsnnError(f"{out}: run folder exists and is not empty (use --resume or another --out)")
    if args.copies is not None or args.set:
        return _run_copies(args, cfg, out)
    from .split import check_split

    check_split(cfg, args.device, args.threads)
    print(f"sdsnn-bio: {cfg.name} on {args.device}, {cfg.schedule.periods} periods -> {out}", flush=True)
    dev = Development(cfg, out, device=args.device, progress=_progress(), threads=args.threads)
    summary = dev.run(resume=args.resume)
    make_figures(out)
    print(text_report(out))
    if args.json:
        print(json.dumps(summary))
    return 0


def _run_copies(args, cfg, out) -> int:
    """``run --copies K [--set KEY=V1,...]``: K networks in one build (:mod:`sdsnn_bio.multi`),
    run folders OUT/copy0 .. OUT/copy<K-1>."""
    from .multi import MultiDevelopment, copy_dirs, expand_sets
    from .report import make_figures

    if args.copies is None:
        raise SdsnnError("--set needs --copies K (the number of networks in the build)")
    cfgs = expand_sets(cfg, args.copies, args.set or ())
    dirs = copy_dirs(out, len(cfgs))
    print(f"sdsnn-bio: {len(cfgs)} copies of {cfg.name} in one build on {args.device}, "
          f"{cfg.schedule.periods} periods -> {out}/copy0..copy{len(cfgs) - 1}", flush=True)
    md = MultiDevelopment(cfgs, dirs, device=args.device, progress=_progress(), threads=args.threads)
    summaries = md.run(resume=args.resume)
    for k, (d, s) in enumerate(zip(dirs, summaries)):
        make_figures(d)
        print(f"copy {k}: {d} | test accuracy {100 * s['final_test_accuracy']:.2f}% | compression "
              f"{100 * s.get('compression', 0.0):.2f}%")
    if args.json:
        print(json.dumps(summaries))
    return 0


def cmd_list(args) -> int:
    from .config import find_model, list_models, load_config

    for name in list_models():
        cfg = load_config(find_model(name))
        print(f"{name:20s} {cfg.description}")
    return 0


def cmd_report(args) -> int:
    from .records import RunFolder
    from .report import load_history, make_figures, make_structure_figures, text_report

    run_dir = Path(args.run_dir)
    folder = RunFolder(run_dir)
    if not folder.is_run_folder():
        raise SdsnnError(f"{run_dir}: not a run folder (no {folder.table.name})")
    if args.figures:
        for path in make_figures(run_dir):
            print(f"wrote {path}")
        try:
            history = load_history(run_dir)
        except SdsnnError as exc:
            print(f"no structural figures: {exc}")
        else:
            for path in make_structure_figures(run_dir, history=history):
                print(f"wrote {path}")
    if args.period is not None:
        for path in make_structure_figures(run_dir, period=args.period, over_periods=False, animations=False):
            print(f"wrote {path}")
    print(text_report(run_dir))
    return 0


def cmd_export(args) -> int:
    """The structure of a run at one period as GraphML or npz (:mod:`sdsnn_bio.export`)."""
    from .export import export_run

    t0 = time.time()
    path = export_run(args.run_dir, period=args.period, fmt=args.format, out=args.out,
                      live_only=not args.all_synapses)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {time.time() - t0:.1f} s)")
    return 0


def cmd_main(args) -> int:
    """The main job: dense baseline and SD-SNN side by side on MNIST 5k, then the final table."""
    from .config import find_model, load_config
    from .report import main_job_table, make_main_job_figure

    model = args.model
    cfg = load_config(find_model(model))
    root = Path(args.out or os.path.join("runs", f"main-{time.strftime('%Y%m%d-%H%M%S')}"))
    root.mkdir(parents=True, exist_ok=True)
    jobs = {"dense": root / "dense", "sdsnn": root / "sdsnn"}
    procs = {}
    t0 = time.time()
    seed = cfg.schedule.seed if args.seed is None else args.seed
    print(f"sdsnn-bio main job: {cfg.name} ({cfg.description}), {cfg.schedule.periods} periods of "
          f"{cfg.schedule.train_per_period} training samples, device {args.device}, seed {seed}", flush=True)
    # Both runs compile the same C++ project (a dense run differs only in run-time flags).
    # With the compiler cache, the SD-SNN run starts once the dense run has built: its
    # build then takes every object file from the cache instead of compiling it again.
    from .devices import use_compiler_cache

    sequential = use_compiler_cache() is not None and args.device == "cpp_standalone"
    import threading

    lock = threading.Lock()
    built = threading.Event()

    def pump(name, stream, log):
        for line in stream:
            log.write(line)
            log.flush()
            if line.startswith("sdsnn-bio: network built"):
                built.set()
            if line.startswith(("period", "sdsnn-bio")):
                with lock:
                    print(f"[{name:5s}] {line}", end="", flush=True)
        built.set()   # the run ended (or failed) without building: do not wait for it

    threads = []
    for name, out in jobs.items():
        cmd = [sys.executable, "-m", "sdsnn_bio", "run", model, "--device", args.device, "--out", str(out)]
        if args.seed is not None:
            cmd += ["--seed", str(args.seed)]
        if name == "dense":
            cmd.append("--dense")
        elif sequential:
            built.wait()
        log = open(root / f"{name}.log", "w")
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs[name] = (p, log)
        threads.append(threading.Thread(target=pump, args=(name, p.stdout, log), daemon=True))
        threads[-1].start()
    for t in threads:
        t.join()
    failed = []
    for name, (p, log) in procs.items():
        if p.wait() != 0:
            failed.append(name)
        log.close()
    if failed:
        for name in failed:
            print(f"main job: the {name} run failed; its log is {root / (name + '.log')}", file=sys.stderr)
        return 1
    print(main_job_table(jobs["dense"], jobs["sdsnn"], wall_s=time.time() - t0))
    print(f"figure: {make_main_job_figure(jobs['dense'], jobs['sdsnn'], root / 'main.png')}")
    return 0


def cmd_sweep(args) -> int:
    """A grid of runs on Dask (:mod:`sdsnn_bio.sweep`); the table of their results."""
    from .sweep import make_security, run_sweep

    security = make_security(args.tls_ca_file, args.tls_cert, args.tls_key)
    rows = run_sweep(args.sweep_file, out=args.out, resume=args.resume, scheduler=args.scheduler,
                     security=security, n_workers=args.workers, retries=args.retries,
                     stagger={"auto": None, "always": True, "never": False}[args.stagger],
                     copies_per_build=args.copies_per_build)
    return 0 if all(r["status"] in ("done", "kept") for r in rows) else 1


def cmd_ablate(args) -> int:
    """The model, each ablation and its dense twin over seeds on Dask; the ablation table."""
    from .ablation import run_ablation

    options = {"periods": args.periods, "train_per_period": args.train_per_period,
               "test_per_period": args.test_per_period, "n_train": args.n_train, "n_test": args.n_test,
               "device": args.device}
    table, text = run_ablation(args.model, seeds=args.seeds, out=args.out, options=options,
                               variants=args.variants, resume=args.resume, n_workers=args.workers,
                               copies_per_build=args.copies_per_build)
    print(text)
    return 0 if all(r["n"] == args.seeds for r in table) else 1


def cmd_compare(args) -> int:
    """A run beside the neuroscience reference data (:mod:`sdsnn_bio.neuro`): table and report."""
    from .neuro.compare import compare_run, format_table

    res = compare_run(args.run_dir, out=args.out, days_per_period=args.days_per_period, start_day=args.start_day)
    m = res["record"].mapping
    e = "(e + 1)" if m["offset"] else "e"
    print(f"ages: period e = day {m['start_day']:g} + {e} x {m['days_per_period']:g} after birth "
          f"(mapping: {m['source']})")
    print(format_table(res["rows"]))
    print(f"report: {res['report']}")
    return 0


def cmd_table(args) -> int:
    """The paper's table from run folders (:mod:`sdsnn_bio.paper_table`); figures with --out."""
    from .paper_table import PAPER_FIGURES, find_runs, format_paper_table, paper_table, read_run, \
        write_table_outputs

    records = [read_run(p) for p in find_runs(args.run_dirs)]
    rows = paper_table(records)
    print(format_paper_table(rows))
    print("the paper (arXiv 2211.12219 v2 abstract): " + "; ".join(
        f"{d} {a:.2f}% at {c:.2f}% compression, {dd:+.2f} points over dense" for d, (a, c, dd) in
        PAPER_FIGURES.items()))
    if args.out:
        for path in write_table_outputs(records, rows, args.out):
            print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .ablation import ABLATIONS
    from .data import registry
    from .devices import DEVICES

    p = argparse.ArgumentParser(prog="sdsnn-bio", description="SD-SNN: spiking networks that learn while their "
                                "structure develops (spine plasticity, neuron pruning, regeneration, "
                                "neurotrophic pruning rates), on Brian2. Also `python -m sdsnn_bio`.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train a model while its structure develops")
    r.add_argument("model", help="name of a shipped model (see `list`) or a TOML file")
    r.add_argument("--device", default="cpp_standalone", choices=DEVICES)
    r.add_argument("--periods", type=int, help="number of structural periods")
    r.add_argument("--train-per-period", type=int, help="training samples per period")
    r.add_argument("--test-per-period", type=int, help="test samples per period (0 = all)")
    r.add_argument("--structure-start", type=int, help="first period of pruning/regeneration (2N+1)")
    r.add_argument("--spine-streak", type=int, help="spine streak N")
    r.add_argument("--seed", type=int)
    r.add_argument("--dataset", choices=registry.names(),
                   help="the data instead of the model's data.dataset: " + "; ".join(
                       f"{e.name}: {e.description}" for e in registry.REGISTRY.values()))
    r.add_argument("--data-dir", help="folder of the data files (" + ", ".join(
        f"{e.name}: {'required' if e.needs_directory else 'optional'}"
        for e in registry.REGISTRY.values() if e.uses_directory) + ")")
    r.add_argument("--n-train", type=int, help="class-balanced training subset size")
    r.add_argument("--n-test", type=int, help="class-balanced test subset size")
    r.add_argument("--dense", action="store_true", help="no structural development (dense baseline)")
    r.add_argument("--masks", choices=("soft", "hard"))
    r.add_argument("--no-regeneration", action="store_true")
    r.add_argument("--ablation", choices=tuple(ABLATIONS),
                   help="switch one mechanism off (sdsnn_bio.ablation): " + ", ".join(ABLATIONS))
    r.add_argument("--threads", type=int, default=1, help="OpenMP threads (cpp_standalone)")
    r.add_argument("--parallel-windows", action="store_true",
                   help="run the windows of a mini-batch at once (training.parallel_windows; sdsnn_bio.parallel)")
    r.add_argument("--processes", type=int, metavar="P",
                   help="split every mini-batch's windows over P processes, one core each "
                        "(training.processes; cpp_standalone; sdsnn_bio.split)")
    r.add_argument("--copies", type=int, metavar="K",
                   help="K networks of the model in one build, run folders OUT/copy0..copyK-1 (sdsnn_bio.multi)")
    r.add_argument("--set", action="append", metavar="KEY=V1,V2,...",
                   help="with --copies: a run-time key (training.lr, schedule.seed, layers.NAME.rho0, "
                        "structure.masks, ...; sdsnn_bio.multi.RUNTIME_KEYS), one value for all copies or one "
                        "per copy; repeatable")
    r.add_argument("--out", help="run folder (default runs/<model>-<time>)")
    r.add_argument("--resume", action="store_true", help="continue the run in --out from its last snapshot")
    r.add_argument("--json", action="store_true", help="also print the summary as JSON")
    r.set_defaults(func=cmd_run)
    ls = sub.add_parser("list", help="list the shipped models")
    ls.set_defaults(func=cmd_list)
    rep = sub.add_parser("report", help="summarise a run folder")
    rep.add_argument("run_dir")
    rep.add_argument("--figures", action="store_true",
                     help="(re)draw the figures into RUN_DIR/figures: the table's, and the structure's "
                          "from the run's structural history (at the last period, over periods, animations)")
    rep.add_argument("--period", type=int, metavar="E",
                     help="draw the structure at period E (receptive fields, masks, network diagram)")
    rep.set_defaults(func=cmd_report)
    ex = sub.add_parser("export", help="the structure of a run at one period as GraphML or npz")
    ex.add_argument("run_dir")
    ex.add_argument("--period", type=int, help="period to export (default: the last recorded, the final structure)")
    ex.add_argument("--format", default="graphml", choices=("graphml", "npz"))
    ex.add_argument("--out", help="output file (default <run folder name>_period_NNNN.<format> here)")
    ex.add_argument("--all-synapses", action="store_true",
                    help="GraphML: every synapse of the pool with an attribute 'connected' (default: live ones)")
    ex.set_defaults(func=cmd_export)
    m = sub.add_parser("main", help="the main job: dense baseline and SD-SNN on MNIST 5k")
    m.add_argument("--model", default="mnist5k_main")
    m.add_argument("--device", default="cpp_standalone", choices=DEVICES)
    m.add_argument("--seed", type=int, help="seed of both runs (default: the model's)")
    m.add_argument("--out")
    m.set_defaults(func=cmd_main)
    cp = sub.add_parser("compare", help="a run beside neuroscience data (synapse density, spine turnover and "
                        "persistence, spine sizes, neuron death): a table and a report with figures")
    cp.add_argument("run_dir")
    cp.add_argument("--out", help="report folder (default RUN_DIR/compare)")
    cp.add_argument("--days-per-period", type=float,
                    help="days of development per period (default: the run's time axis, else 4, a convention: "
                         "one 4-day imaging interval of Holtmaat et al. 2005 per period)")
    cp.add_argument("--start-day", type=float,
                    help="postnatal day of period 0 (default: the run's time axis, else 16, a convention: "
                         "the first age Holtmaat et al. 2005 imaged)")
    cp.set_defaults(func=cmd_compare)
    sw = sub.add_parser("sweep", help="a grid of runs (models, seeds, options) on Dask; a table of results")
    sw.add_argument("sweep_file", help="TOML file: [grid] of values, [options] fixed for every job")
    sw.add_argument("--out", help="output folder (default runs/<sweep name>)")
    sw.add_argument("--resume", action="store_true",
                    help="continue the sweep in --out: finished jobs kept, unfinished ones resumed")
    sw.add_argument("--scheduler", help="address of a Dask scheduler (default: a local cluster on 127.0.0.1, "
                    "one single-threaded worker per core)")
    sw.add_argument("--workers", type=int, help="workers of the local cluster (default: one per core)")
    sw.add_argument("--retries", type=int, default=3, help="attempts after the first for a job whose run died")
    sw.add_argument("--stagger", choices=("auto", "always", "never"), default="auto",
                    help="jobs that compile the same code wait until the first of them has built, so that "
                    "they take its objects from the compiler cache (auto: when ccache is in use and this "
                    "machine has not built that code before)")
    sw.add_argument("--copies-per-build", type=int, default=1, metavar="K",
                    help="run up to K jobs that differ only in run-time keys (seed, learning rate, rho0, masks, "
                    "...: sdsnn_bio.multi.RUNTIME_KEYS) as copies of one network in one build and one process "
                    "(default 1: every job its own build)")
    sw.add_argument("--tls-ca-file", help="TLS: certificate authority of the scheduler")
    sw.add_argument("--tls-cert", help="TLS: this client's certificate")
    sw.add_argument("--tls-key", help="TLS: this client's private key")
    sw.set_defaults(func=cmd_sweep)
    ab = sub.add_parser("ablate", help="the model, each ablation and its dense twin over seeds; the ablation table")
    ab.add_argument("model", help="name of a shipped model or a TOML file")
    ab.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1 (default 3)")
    ab.add_argument("--variants", nargs="+", choices=tuple(ABLATIONS),
                    help="ablations to run (default: every one that changes the model, and dense)")
    ab.add_argument("--periods", type=int, help="number of structural periods (default: the model's)")
    ab.add_argument("--train-per-period", type=int)
    ab.add_argument("--test-per-period", type=int)
    ab.add_argument("--n-train", type=int)
    ab.add_argument("--n-test", type=int)
    ab.add_argument("--device", default="cpp_standalone", choices=DEVICES)
    ab.add_argument("--workers", type=int, help="workers of the local Dask cluster (default: one per core)")
    ab.add_argument("--out", help="output folder (default runs/ablate-<model>)")
    ab.add_argument("--resume", action="store_true", help="continue the ablation sweep in --out")
    ab.add_argument("--copies-per-build", type=int, default=1, metavar="K",
                    help="run up to K jobs that differ only in run-time keys (seeds, no_regeneration, fixed_rate, "
                    "masks) as copies of one build (sweep --copies-per-build)")
    ab.set_defaults(func=cmd_ablate)
    tb = sub.add_parser("table", help="the paper's table (SD-SNN beside its dense twin, over seeds) from run folders")
    tb.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                    help="run folders, or folders holding run folders (a sweep's, an ablation's)")
    tb.add_argument("--out", help="also write table.txt, table.csv and a figure per dataset into this folder")
    tb.set_defaults(func=cmd_table)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SdsnnError as exc:
        print(f"sdsnn-bio: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sdsnn-bio: interrupted (resume with --resume)", file=sys.stderr)
        return 130
