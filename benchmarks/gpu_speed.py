"""Wall time per training window on cuda_standalone vs cpp_standalone (one machine, side by side).

Used by benchmarks/gpu_check.sh on a lent GPU machine.
"""
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.run import per_sample  # noqa: E402

if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        for model, n in (("mnist_dense", 1000), ("mnist_paper", 200)):
            for device in ("cuda_standalone", "cpp_standalone"):
                try:
                    r = per_sample(model, n, 2, Path(tmp), device=device)
                except Exception as exc:  # report and go on with the next measurement
                    r = {"model": model, "device": device, "error": repr(exc)[:500]}
                print(json.dumps(r), flush=True)
