"""Same seed, same network: runtime (Cython) and single-threaded cpp_standalone agree."""

import numpy as np
import pytest

from _shared_tiny_run import tiny_run

from sdsnn_bio.config import find_model, load_config
from sdsnn_bio.loop import Development
from sdsnn_bio.devices import reset_brian
from sdsnn_bio.records import RunFolder
from sdsnn_bio.report import read_table

pytestmark = [pytest.mark.slow, pytest.mark.standalone]


def test_runtime_and_cpp_standalone_develop_identically(tmp_path, at_O0):
    cfg = load_config(find_model("tiny_dense")).replace(schedule={"periods": 6, "structure_start": 3,
                                                                  "spine_streak": 1})
    # The check is of the generated Cython code, which must hold at any optimisation level: the
    # suite compiles its ~80 extensions at -O0 (130 instead of 190 CPU-s); cpp_standalone keeps
    # Brian2's -O3 -ffast-math.
    levels = at_O0("runtime")
    runs = {}
    for device in ("runtime", "cpp_standalone"):
        reset_brian()
        out = tmp_path / device
        runs[device] = (Development(cfg, out, device=device).run(), read_table(out), out)
    assert levels == [("runtime", ["-O0"]), ("cpp_standalone", ["-O3"])]
    (s_rt, t_rt, d_rt), (s_cpp, t_cpp, d_cpp) = runs["runtime"], runs["cpp_standalone"]
    assert t_rt["compression"][-1] > 0
    for col in ("test_accuracy", "train_accuracy", "compression", "alive_fc1", "zeros_fc1", "regenerated_fc1"):
        np.testing.assert_array_equal(t_rt[col], t_cpp[col], err_msg=col)
    assert s_rt["final_test_accuracy"] == s_cpp["final_test_accuracy"]
    a, b = RunFolder(d_rt).load_snapshot("last"), RunFolder(d_cpp).load_snapshot("last")
    assert a.period == b.period == cfg.schedule.periods - 1
    a, b = a.arrays, b.arrays
    np.testing.assert_array_equal(a["fc1/syn/connected"], b["fc1/syn/connected"])
    for key in ("fc1/syn/w", "out/syn/w", "fc1/syn/r_up"):
        # -ffast-math (cpp) and Cython may round the last bits differently
        np.testing.assert_allclose(a[key], b[key], rtol=1e-9, atol=1e-12, err_msg=key)


def test_openmp_runs_agree_within_tolerance(tmp_path, tmp_path_factory):
    """Two OpenMP threads use other random streams: the run differs, within a stated tolerance.
    The one-thread run is the session's shared tiny_dense run (tests/_shared_tiny_run.py)."""
    cfg = load_config(find_model("tiny_dense"))
    d2 = tmp_path / "t2"
    s2 = Development(cfg, d2, device="cpp_standalone", threads=2).run()
    t2 = read_table(d2)
    d1 = tiny_run(tmp_path_factory)[0]
    s1, t1 = RunFolder(d1).read_summary(), read_table(d1)
    assert RunFolder(d1).read_meta()["threads"] == 1 and RunFolder(d2).read_meta()["threads"] == 2
    assert abs(s1["final_test_accuracy"] - s2["final_test_accuracy"]) <= 0.15
    assert abs(t1["compression"][-1] - t2["compression"][-1]) <= 0.10
    assert t2["compression"][-1] > 0.1 and s2["final_test_accuracy"] > 0.3
