"""Speed of the developmental network kind (sdsnn_bio.cortex): simulated biological time per
wall-clock second for 10^4 neurons and 10^6 potential synapses on single-threaded cpp_standalone.

The network is ``cortex_development``'s with 8000 excitatory and 2000 inhibitory neurons and
p_exc = 10^6 / (8000 x 9999), so that the excitatory neurons have 10^6 potential spine sites
(each with its spine variables and its structural step); ``--periods`` periods (days) are run
through :class:`sdsnn_bio.loop.Development`, as ``sdsnn-bio run`` does, including the history and
snapshot writes. Results: ``benchmarks/cortex_results.json`` and a line in ``benchmarks/cortex_results.md``.

Usage: ``python benchmarks/cortex_speed.py [--periods 5] [--neurons 10000] [--sites 1000000]``
"""

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sdsnn_bio.config import find_model, load_config  # noqa: E402
from sdsnn_bio.loop import Development  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--periods", type=int, default=5)
    ap.add_argument("--neurons", type=int, default=10000)
    ap.add_argument("--sites", type=int, default=1_000_000)
    ap.add_argument("--device", default="cpp_standalone")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "cortex_results.json"))
    args = ap.parse_args(argv)
    n_exc = args.neurons * 4 // 5
    n_inh = args.neurons - n_exc
    p_exc = args.sites / (n_exc * (args.neurons - 1))
    cfg = load_config(find_model("cortex_development"))
    # the inhibitory in-degree of the documented model (p_inh x n_inh) is kept, so that the
    # balance, and with it the firing rates, stay comparable
    p_inh = min(1.0, cfg.network.p_inh * cfg.network.n_inh / n_inh)
    cfg = cfg.replace(network={"n_exc": n_exc, "n_inh": n_inh, "p_exc": p_exc, "p_inh": p_inh},
                      schedule={"periods": args.periods})
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        dev = Development(cfg, Path(tmp) / "run", device=args.device, progress=print)
        summary = dev.run()
        total = time.time() - t0
        rows = dev.folder.read_table()
        n_sites = int(dev.folder.read_meta()["n_synapses"]["exc"])
    period_wall = [float(x) for x in rows["wall_s"]]
    # wall_s of a row: the run and the decisions; the median is the steady state. The whole loop
    # per period (history and snapshot writes included) is period_wall_with_records_s
    steady = sorted(period_wall)[len(period_wall) // 2]
    res = {"neurons": args.neurons, "n_exc": n_exc, "n_inh": n_inh, "potential_spine_sites": n_sites,
           "device": args.device, "threads": 1, "periods": args.periods,
           "days_per_period": cfg.time.days_per_period, "activity_s_per_period": cfg.time.activity_s,
           "dt_ms": cfg.time.dt_ms, "struct_steps_per_period": cfg.time.struct_steps,
           "build_s": summary["timings"]["build_s"], "period_wall_s": period_wall,
           "median_period_wall_s": steady,
           "period_wall_with_records_s": (total - summary["timings"]["build_s"]) / args.periods,
           "rate_exc_hz": [float(x) for x in rows["rate_exc_hz"]],
           "bio_days_per_wall_s": cfg.time.days_per_period / steady,
           "activity_s_per_wall_s": cfg.time.activity_s / steady,
           "total_wall_s": total, "machine": platform.platform(), "python": platform.python_version(),
           "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
    Path(args.out).write_text(json.dumps(res, indent=2))
    md = Path(args.out).with_suffix(".md")
    line = (f"| {res['measured']} | {args.neurons} | {n_sites} | {args.device} (1 thread) | "
            f"{res['build_s']:.0f} s | {steady:.2f} s | {res['bio_days_per_wall_s']:.3f} | "
            f"{res['activity_s_per_wall_s']:.3f} | {res['period_wall_with_records_s']:.2f} s |\n")
    if not md.is_file():
        md.write_text("# Developmental kind: speed (benchmarks/cortex_speed.py)\n\n"
                      "One period = one day of development = "
                      f"{cfg.time.activity_s:g} s of activity at dt {cfg.time.dt_ms:g} ms with "
                      f"{cfg.time.struct_steps} structural steps.\n\n"
                      "| measured | neurons | potential spine sites | device | build | median period wall | "
                      "biological days per wall s | simulated activity s per wall s | period with records |\n"
                      "|---|---|---|---|---|---|---|---|---|\n")
    with open(md, "a") as f:
        f.write(line)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
