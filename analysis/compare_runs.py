"""Compare run folders: one markdown row per run (final accuracy, compression, structure).

Usage: ``python analysis/compare_runs.py RUN_DIR [RUN_DIR ...]``
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sdsnn_bio.report import read_table  # noqa: E402


def row(run_dir: Path) -> dict:
    """Final figures of one run folder."""
    meta = json.loads((run_dir / "run.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    t = read_table(run_dir)
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
    dirs = [Path(a) for a in (argv if argv is not None else sys.argv[1:])]
    if not dirs:
        print(__doc__)
        return 2
    for d in dirs:
        if not (d / "summary.json").is_file():
            print(f"compare_runs: {d} is not a finished run folder (no summary.json)", file=sys.stderr)
            return 2
    print(markdown([row(d) for d in dirs]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
