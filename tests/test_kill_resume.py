"""A run killed with SIGKILL at a random moment and resumed ends exactly as an uninterrupted run."""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from _shared_tiny_run import tiny_run

from sdsnn_bio.history import History
from sdsnn_bio.records import HISTORY_KINDS, RunFolder

pytestmark = [pytest.mark.slow, pytest.mark.standalone]

P = 8
ARGS = ["tiny_dense", "--periods", str(P)]


def cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "sdsnn_bio", "run", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, **kw)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run: the session's shared tiny_dense run, made through the Python API
    (tests/_shared_tiny_run.py); the killed runs go through the command line, so the test also
    holds that both give the same run."""
    out = tiny_run(tmp_path_factory)[0]
    assert RunFolder(out).read_table()["period"].size == P
    return out


def final_state(run_dir):
    run = RunFolder(run_dir)
    snap = run.load_snapshot("last")
    return snap.period, snap.arrays, run.read_summary()


def history_contents(run):
    """Every history file's meta data and arrays (dtype, shape, bytes), by kind and period
    (zip members carry their writing time, so files are compared by content)."""
    out = {}
    for kind in HISTORY_KINDS:
        for e in run.history_periods(kind):
            rec = run.load_history(e, kind)
            out[(kind, e)] = (rec.meta, {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in rec.arrays.items()})
    return out


def kill_after_snapshot(p, run, k, delay):
    """SIGKILL the run ``delay`` seconds after the snapshot of period ``k`` appears.

    ``k`` leaves at least two periods, the final evaluation and the report to
    run, and ``delay`` is shorter than one period: the run is still going when
    it is killed, which the assertions check.
    """
    deadline = time.time() + 600
    while not any(e >= k for e in run.snapshot_periods()):
        assert p.poll() is None, f"the run ended before its snapshot {k}: {p.stderr.read()[-2000:]}"
        assert time.time() < deadline, f"no snapshot {k} after 600 s"
        time.sleep(0.005)
    time.sleep(delay)
    assert p.poll() is None, f"the run finished before the kill after snapshot {k}"
    os.kill(p.pid, signal.SIGKILL)
    assert p.wait(timeout=60) == -signal.SIGKILL


@pytest.mark.parametrize("kill_seed", [0, 1, 2])
def test_sigkill_then_resume(reference, tmp_path, kill_seed):
    """Kill points chosen by the seed (seed 1 kills the resumed run once more), each while the run goes on."""
    rng = random.Random(kill_seed)
    ref_run = RunFolder(reference)
    # one period's compute (the run and the decisions), without the snapshot and the binary start
    period_s = float(np.min(ref_run.read_table()["wall_s"][1:]))
    out = tmp_path / "run"
    run = RunFolder(out)
    kills = sorted(rng.sample(range(P - 3), 1 + kill_seed % 2))
    p = cli(*ARGS, "--out", str(out))
    for i, k in enumerate(kills):
        if i > 0:
            p = cli(*ARGS, "--out", str(out), "--resume")
            k = max(k, run.snapshot_periods()[-1] + 1)
        assert k <= P - 3
        kill_after_snapshot(p, run, k, rng.uniform(0.0, period_s))
        saved = run.snapshot_periods()
        assert saved, "no snapshot was written before the kill"
        assert saved[-1] >= k
        # a partial write never replaces a snapshot: every snapshot that exists is complete
        for e in saved:
            snap = run.load_snapshot(e)
            assert snap.period == e and snap.meta["period"] == e
            assert snap.arrays["fc1/syn/w"].shape == (784 * 40,)
        if run.has_best():
            run.load_snapshot("best")
        # the history is complete up to the snapshot (files are atomic too)
        assert History(out).periods[-1] >= saved[-1]
    r = cli(*ARGS, "--out", str(out), "--resume")
    assert r.wait(timeout=900) == 0, r.stderr.read()
    assert not [f for f in out.rglob("*") if f.name.endswith(".tmp")], "a temporary file was left"
    period_ref, ref, sum_ref = final_state(reference)
    period, got, summ = final_state(out)
    assert period == period_ref == P - 1
    assert run.snapshot_periods() == [P - 1]
    assert sorted(got) == sorted(ref)
    for k in ref:
        np.testing.assert_array_equal(got[k], ref[k], err_msg=k)
        assert got[k].tobytes() == ref[k].tobytes(), k
    assert summ["final_test_accuracy"] == sum_ref["final_test_accuracy"]
    t_ref, t = ref_run.read_table(), run.read_table()
    for col in ("period", "test_accuracy", "compression", "alive_fc1"):
        np.testing.assert_array_equal(t[col], t_ref[col], err_msg=col)
    assert run.table.read_bytes().count(b"\n") == ref_run.table.read_bytes().count(b"\n") == P + 1
    # the structural history is the uninterrupted run's, file by file
    hist_ref, hist = history_contents(ref_run), history_contents(run)
    assert sorted(hist) == sorted(hist_ref)
    assert ("period", P) in hist and ("keyframe", P) in hist
    for key in hist_ref:
        assert hist[key] == hist_ref[key], key
