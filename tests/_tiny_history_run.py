"""One tiny_dense run (cpp_standalone, 8 periods) shared by the history and export tests.

The run is made once per test session, also across pytest-xdist workers (a
lock file in the session's shared temporary folder), and keeps, besides its
run folder, the ground truth: the synapse arrays that the history recorder
was given at every period (``truth/period_NNNN.npz``; the final structure is
period 8), so that the history can be checked at every period and not only
where a snapshot is kept.
"""

import fcntl
import os

import numpy as np

P = 8
LAYERS = ("fc1", "out")


def _shared_root(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    # under xdist every worker has its own basetemp inside the session's folder
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def tiny_run(tmp_path_factory):
    """``(run_dir, truth)``: the run folder and ``{period: {"<layer>/<var>": array}}``."""
    root = _shared_root(tmp_path_factory) / "tiny_history_run"
    root.mkdir(exist_ok=True)
    with open(root / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "done").is_file():
            _make(root)
            (root / "done").write_text("ok")
    truth = {}
    for f in sorted((root / "truth").iterdir()):
        with np.load(f) as z:
            truth[int(f.stem.split("_")[1])] = {k: z[k] for k in z.files}
    return root / "run", truth


def _make(root):
    from sdsnn_bio.config import find_model, load_config
    from sdsnn_bio.devices import reset_brian
    from sdsnn_bio.history import HistoryRecorder
    from sdsnn_bio.loop import Development

    cfg = load_config(find_model("tiny_dense"))
    assert cfg.schedule.periods == P
    (root / "truth").mkdir(exist_ok=True)
    original = HistoryRecorder.record

    def capture(self, period, arrays, final=False):
        kept = {}
        for name in LAYERS:
            lay = HistoryRecorder._layer_arrays(arrays, name)
            kept.update({f"{name}/{k}": np.array(v) for k, v in lay.items()})
        np.savez(root / "truth" / f"period_{period:04d}.npz", **kept)
        return original(self, period, arrays, final=final)

    HistoryRecorder.record = capture
    try:
        reset_brian()
        Development(cfg, root / "run", device="cpp_standalone").run()
    finally:
        HistoryRecorder.record = original
        reset_brian()
