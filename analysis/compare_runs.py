"""Compare run folders: one markdown row per run (final accuracy, compression, structure).

Usage: ``python analysis/compare_runs.py RUN_DIR [RUN_DIR ...]``
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _runs_cli import main_over_runs  # noqa: E402
from sdsnn_bio.records import RunFolder  # noqa: E402


def row(run_dir: Path) -> dict:
    """Final figures of one run folder."""
    run = RunFolder(run_dir)
    meta, summary, t = run.read_meta(), run.read_summary(), run.read_table()
    alive = {c[6:]: int(t[c][-1]) for c in t if c.startswith("alive_")}
    return {
        "run": run_dir.name, "model": meta["model"], "device": meta["device"], "seed": meta["seed"],
        "periods": summary["periods"], "accuracy": summary["final_test_accuracy"],
        "compression": float(t["compression"][-1]) if "compression" in t else 0.0,
        "alive": alive, "date": meta["started"][:10],
    }


def markdown(rows) -> str:
    lines = ["| run | model | device | seed | periods | test accuracy | compression | alive |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        alive = ", ".join(f"{k} {v}" for k, v in r["alive"].items()) or "-"
        lines.append(f"| {r['run']} | {r['model']} | {r['device']} | {r['seed']} | {r['periods']} | "
                     f"{100 * r['accuracy']:.2f}% | {100 * r['compression']:.2f}% | {alive} |")
    return "\n".join(lines)


def main(argv=None):
    return main_over_runs(argv, __doc__, "compare_runs", lambda d: RunFolder(d).is_finished(),
                          "a finished run folder (no summary.json)",
                          lambda dirs: markdown([row(d) for d in dirs]))


if __name__ == "__main__":
    sys.exit(main())
