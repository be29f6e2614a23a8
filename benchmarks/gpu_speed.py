"""Wall time per training window on cuda_standalone vs cpp_standalone (one machine, side by side).

Used by benchmarks/gpu_check.sh on a lent GPU machine. Usage:
``python benchmarks/gpu_speed.py [--models mnist_dense mnist_paper] [--devices cuda_standalone cpp_standalone]``
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.run import per_sample  # noqa: E402

WINDOWS = {"mnist_dense": 1000, "mnist_paper": 200}

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(WINDOWS), choices=list(WINDOWS))
    ap.add_argument("--devices", nargs="+", default=["cuda_standalone", "cpp_standalone"],
                    choices=["cuda_standalone", "cpp_standalone"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            for device in args.devices:
                try:
                    r = per_sample(model, WINDOWS[model], 2, Path(tmp), device=device)
                except Exception as exc:  # report and go on with the next measurement
                    r = {"model": model, "device": device, "error": repr(exc)[:500]}
                print(json.dumps(r), flush=True)
