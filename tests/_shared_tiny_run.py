"""One tiny_dense run (cpp_standalone, one thread, seed 0, its 8 periods) shared by every test
that needs the uninterrupted run of that model: the history and export tests, the development
loop's records/figures/resume tests (test_develop), the one-thread side of the OpenMP test
(test_reproducibility) and the reference of the SIGKILL tests (test_kill_resume). Each of
them used to make the same run itself (a build and eight periods each).

Tests must not write into the run folder: copy it first (``copy_run``).

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


def copy_run(tmp_path_factory, dest):
    """A private copy of the shared run folder (without its build), to write into."""
    import shutil

    shutil.copytree(tiny_run(tmp_path_factory)[0], dest, ignore=shutil.ignore_patterns("build"))
    return dest


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
