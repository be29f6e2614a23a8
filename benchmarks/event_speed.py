"""Time per sample of the event-camera models on generated recordings of the real size.

No PyPI or Debian package ships N-MNIST or DVS-Gesture, so the models' real runs cannot be
made here; this measures what a period costs. It writes generated recordings
(:func:`sdsnn_bio.data.event_memory.write_recordings`) of the model's dataset in tonic's layout
at its real size: N-MNIST's (10 classes, 34 x 34 sensor, 300 ms; 4000 events by default, about
what an N-MNIST saccade recording holds) or DVS-Gesture's (11 classes, 128 x 128, 6 s;
``--events`` a recording), trains ``--model`` (``nmnist_main`` or ``dvsgesture_main``) on them
for ``--periods`` periods of its own size through :class:`sdsnn_bio.loop.Development` on
``cpp_standalone`` (one thread), and reports the build, the building process's peak resident
memory, and per period the wall time of the simulation and the structural step per window
(training + test windows), from the run's ``periods.csv``.

    python benchmarks/event_speed.py [--model nmnist_main] [--periods 3] [--events 4000]
                                     [--out benchmarks/event_speed.json]

The first period includes the compilation; the later ones are the steady cost. Results are
written as JSON (``--out``) and printed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def measure(model: str, periods: int, workdir: Path, n_events: int = 4000) -> dict:
    from sdsnn_bio.config import find_model, load_config
    from sdsnn_bio.data.event_memory import REAL_SIZES, write_recordings
    from sdsnn_bio.geometry import estimate_memory, stage_geometry
    from sdsnn_bio.loop import Development

    cfg = load_config(find_model(model))
    if cfg.data.dataset not in REAL_SIZES:
        raise SystemExit(f"{model}: generated recordings are written for event models only "
                         f"({', '.join(REAL_SIZES)}), not data.dataset = {cfg.data.dataset!r}")
    sch = cfg.schedule
    data = workdir / "data"
    n_events_total = write_recordings(data, sch.train_per_period, sch.test_per_period, n_events=n_events,
                                      dataset=cfg.data.dataset)
    cfg = cfg.replace(data={"directory": str(data)}, schedule={"periods": periods})
    t0 = time.time()
    Development(cfg, workdir / "run", device="cpp_standalone").run()
    total_s = time.time() - t0
    # this process's peak (the build; the binary's cannot be read from RUSAGE_CHILDREN: a child
    # forked from this process starts its peak at this process's size)
    python_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with open(workdir / "run" / "periods.csv") as f:
        rows = list(csv.DictReader(f))
    windows = sch.train_per_period + sch.test_per_period
    stages = stage_geometry(cfg)
    return {
        "model": model, "device": "cpp_standalone", "threads": 1, "periods": periods,
        "windows_per_period": windows, "n_steps": sch.n_steps, "events_per_recording": n_events,
        "events_written": n_events_total,
        "synapses_simulated": sum(s.n_simulated_synapses for s in stages),
        "weights_learnt": sum(s.n_synapses for s in stages if s.learnable),
        "memory_estimate_gb": round(estimate_memory(cfg, windows) / 1e9, 2),
        "python_peak_rss_gb": round(python_peak / 1e9, 2),
        "total_s": round(total_s, 1),
        "ms_per_sample": [round(1000 * float(r["wall_s"]) / windows, 2) for r in rows],
        "test_accuracy": [round(float(r["test_accuracy"]), 4) for r in rows],
        "machine": platform.platform(), "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(), "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="nmnist_main")
    ap.add_argument("--periods", type=int, default=3)
    ap.add_argument("--events", type=int, default=4000, help="events per recording")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "event_speed.json"))
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="event_speed") as tmp:
        result = measure(a.model, a.periods, Path(tmp), n_events=a.events)
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
