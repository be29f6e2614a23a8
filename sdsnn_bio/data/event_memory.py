"""Peak memory of loading and encoding event recordings (``python -m sdsnn_bio.data.event_memory``).

Writes generated recordings of N-MNIST's size (:func:`~sdsnn_bio.data.event_input.synthetic_recordings`,
``--events`` events over 300 ms on the 34 x 34 sensor) as ``.bin`` files in tonic's layout, then,
in a fresh interpreter, loads them through the registry (``nmnist``, the 1-pixel border cropped as
``nmnist_main``) and encodes them as spike codes for T = 20 steps, and prints the peak resident
set size (``ru_maxrss``) after the imports and after the encoding, with the number of events and
the bytes of the codes. The README's memory figures come from this command.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

__all__ = ["write_recordings", "measure", "main"]

_CHILD = r"""
import json, resource, sys
import numpy as np
from sdsnn_bio.config import DataSpec
from sdsnn_bio.data import registry
from sdsnn_bio.data.event_input import encode_dataset
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
base = rss()
ds = registry.load(DataSpec(dataset="nmnist", directory=sys.argv[1], crop=1), "event_memory")
x_train, x_test = encode_dataset(ds, 20)
print(json.dumps({"baseline_rss": base, "peak_rss": rss(), "codes_bytes": x_train.nbytes + x_test.nbytes,
                  "recordings": len(x_train) + len(x_test)}))
"""


#: Generated recordings of each event dataset's real size: (classes, sensor, duration in µs, time
#: resolution of its files in µs, writer).
REAL_SIZES = {"nmnist": (10, (34, 34), 300_000, 1, "write_nmnist_folder"),
              "dvsgesture": (11, (128, 128), 6_000_000, 1000, "write_dvsgesture_folder")}


def write_recordings(root, n_train: int, n_test: int, n_events: int = 4000, seed: int = 0,
                     dataset: str = "nmnist") -> int:
    """Write ``n_train`` + ``n_test`` generated recordings of ``dataset``'s real size
    (:data:`REAL_SIZES`: N-MNIST's 10 classes over 300 ms on 34 x 34 as ``.bin`` files under
    ``root/NMNIST``; DVS-Gesture's 11 over 6 s on 128 x 128 as ``.npy`` files under
    ``root/DVSGesture``, times in whole milliseconds as its files hold them), ``n_events`` events
    each, in tonic's layout; returns the number of events written."""
    from . import event_input

    n_classes, sensor, duration_us, resolution_us, writer = REAL_SIZES[dataset]
    per = lambda n: -(-int(n) // n_classes)  # noqa: E731
    rec, y = event_input.synthetic_recordings(per(n_train), n_classes, sensor, seed, n_events=n_events,
                                              duration_us=duration_us)
    rt, yt = event_input.synthetic_recordings(per(n_test), n_classes, sensor, seed + 1, n_events=n_events,
                                              duration_us=duration_us)
    for r in rec + rt:
        r["t"] = r["t"] // resolution_us * resolution_us
    getattr(event_input, writer)(root, rec, y, rt, yt)
    return int(sum(r.size for r in rec) + sum(r.size for r in rt))


def measure(root) -> dict:
    """Load and encode the recordings under ``root`` in a fresh interpreter; its memory figures."""
    out = subprocess.run([sys.executable, "-c", _CHILD, str(root)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="python -m sdsnn_bio.data.event_memory", description=__doc__.splitlines()[0])
    p.add_argument("folder", help="where the recordings are written (reused when NMNIST/ is there)")
    p.add_argument("--train", type=int, default=2000)
    p.add_argument("--test", type=int, default=500)
    p.add_argument("--events", type=int, default=4000)
    a = p.parse_args(argv)
    root = Path(a.folder)
    if not (root / "NMNIST").is_dir():
        write_recordings(root, a.train, a.test, a.events)
    res = measure(root)
    mb = 1 << 20
    print(f"{res['recordings']} recordings: peak RSS {res['peak_rss'] / mb:.0f} MB "
          f"({res['baseline_rss'] / mb:.0f} MB after the imports); spike codes {res['codes_bytes'] / mb:.1f} MB")
    return res


if __name__ == "__main__":
    main()
