"""Shared pytest set-up: a clean Brian2 for every test, caches kept across runs."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# Cython extensions and the cuRAND link folder persist across test runs here
# (ignored by git); an SDSNN_CACHE set by the caller wins.
os.environ.setdefault("SDSNN_CACHE", str(REPO_ROOT / ".cache"))


@pytest.fixture(autouse=True)
def _clean_brian():
    """Reset Brian2 (device, preferences, defaultclock) before and after each test."""
    from sdsnn_bio.devices import reset_brian

    reset_brian()
    yield
    reset_brian()


@pytest.fixture
def numpy_runtime(monkeypatch):
    """The ``runtime`` device on Brian2's ``numpy`` target for this test: nothing is compiled, which
    is what a small network's test wants (a Cython build of one costs minutes on a fresh clone).
    Cython and C++ code of the same networks are checked by the equivalence tests."""
    import sdsnn_bio.devices as devices

    set_up = devices.set_up_device

    def numpy_target(*args, **kwargs):
        out = set_up(*args, **kwargs)
        from brian2 import prefs

        prefs.codegen.target = "numpy"
        return out

    monkeypatch.setattr(devices, "set_up_device", numpy_target)


@pytest.fixture
def at_O0(monkeypatch):
    """``at_O0(device, *modules)``: every later set-up of ``device`` compiles at ``-O0`` (the host
    compiler's flags; for ``cuda_standalone`` also nvcc's device assembler, ``-Xptxas -O0``), for
    tests that check generated code, which must hold at any optimisation level. Wraps
    :func:`sdsnn_bio.devices.set_up_device` (and the name in each of ``modules`` that imported
    it); returns the list of ``(device, host -O flags)`` of every set-up, whichever device."""
    import sdsnn_bio.devices as devices

    set_up, levels = devices.set_up_device, []

    def lower(device, *modules):
        def set_up_at_O0(name, *args, **kwargs):
            out = set_up(name, *args, **kwargs)
            from brian2 import prefs

            if name == device:
                flags = prefs.codegen.cpp.extra_compile_args_gcc
                prefs.codegen.cpp.extra_compile_args_gcc = [f for f in flags if not f.startswith("-O")] + ["-O0"]
                # cuda_standalone's preferences exist only once brian2cuda is imported: read them
                # for that device alone (a worker that never built for CUDA has none)
                if name == "cuda_standalone":
                    cb = prefs.devices.cuda_standalone.cuda_backend
                    if "-Xptxas" not in cb.extra_compile_args_nvcc:
                        cb.extra_compile_args_nvcc = list(cb.extra_compile_args_nvcc) + ["-Xptxas", "-O0"]
            levels.append((name, [f for f in prefs.codegen.cpp.extra_compile_args_gcc if f.startswith("-O")]))
            return out

        for module in (devices, *modules):
            monkeypatch.setattr(module, "set_up_device", set_up_at_O0)
        return levels

    return lower


# Property-based tests explore new random cases on every local run; in CI they
# replay a fixed (derandomized) set of the same size, so a landing never depends on luck.
try:
    from hypothesis import settings as _hyp_settings

    _hyp_settings.register_profile("ci", derandomize=True, print_blob=True)
    if os.environ.get("CI"):
        _hyp_settings.load_profile("ci")
except ImportError:  # hypothesis is a test dependency; without it the fuzz tests are not collected
    pass


# ------------------------------------------------------------------ scheduling on workers
# `./dev test` runs the suite on two pytest-xdist workers. By default xdist hands out whole
# files, the files with the most tests first, so the single slowest test (the CUDA compile)
# started last and one worker idled while the other finished it. Here the suite is cut into
# units (a file, or for files whose tests share no module-level build, a test with its
# device and network) and the units start longest first. The costs are rough seconds on two
# idle cores with empty caches (2026-12-01, re-estimated for the unity builds on 2026-12-02);
# they only order the units (a unit not listed costs 1), so a wrong figure costs time, never a
# result.
UNIT_COSTS = {
    # four nvcc builds (the training network with a convolution, its parallel-windows form with
    # the convolution too, the developmental network, fused copies), unity files: 378 worker-s
    # on the fresh clone of 2026-12-03 00:41
    "test_cuda.py": 380,
    # the first unit that asks for the shared tiny_dense run (tests/_shared_tiny_run.py) makes
    # it; test_history asks at once and is started early, so the other users find it made
    "test_history.py": 130,
    "test_reproducibility.py::test_runtime_and_cpp_standalone_develop_identically": 120,
    "test_notebooks.py": 120,
    "test_develop.py": 70,
    "test_event_input.py": 60,
    "test_sweep.py": 60,
    "test_cortex.py": 60,
    "test_equivalence.py::test_learning_matches_numpy[cpp_standalone-dense]": 60,
    "test_equivalence.py::test_learning_matches_numpy[cpp_standalone-local_pool]": 60,
    "test_equivalence.py::test_learning_matches_numpy[cpp_standalone-conv_pool]": 60,
    # a convolutional run, and the same stopped and resumed (two builds, the second cached), in
    # the sequential and in the parallel form: 106 + 59 worker-s (2026-12-03)
    "test_conv.py": 165,
    "test_equivalence.py::test_parallel_windows_cpp_standalone_learn_like_numpy[dense]": 30,
    "test_equivalence.py::test_parallel_windows_cpp_standalone_learn_like_numpy[conv_pool]": 30,
    "test_reproducibility.py::test_openmp_runs_agree_within_tolerance": 50,
    "test_cifar.py": 50,
    "test_kill_resume.py": 45,
    # split builds (the small network twice, tiny_dense, an event network) and three CLI runs
    # for the kill/resume check: 109 worker-s on the fresh clone of 2026-12-02 06:40
    "test_split.py": 110,
    "test_equivalence.py::test_structural_steps_match_numpy[cpp_standalone-dense]": 40,
    "test_equivalence.py::test_structural_steps_match_numpy[cpp_standalone-conv]": 40,
    # three fused builds of three copies (shared), single-run comparisons of a dense and of a
    # convolutional network: 154 worker-s on the fresh clone of 2026-12-03 00:41 before the
    # convolutional comparison (about 45 worker-s more)
    "test_multi.py": 200,
    "test_devices.py::test_a_second_build_of_a_network_comes_from_the_cache": 25,
    "test_unity.py": 25,
    "test_energy_table.py": 20,
    "test_devices.py::test_cpp_standalone_matches_runtime": 20,
    "test_health.py::test_silent_network_stops_with_period_and_layers": 20,
    "test_fuzz_build.py": 20,
    "test_install.py": 15,
    "test_health.py::test_exploding_weights_stop_the_run_and_keep_the_last_snapshot": 10,
}
#: Files whose tests each build their own network: their tests are scheduled one by one.
PER_TEST_FILES = {"test_equivalence.py", "test_reproducibility.py", "test_devices.py", "test_health.py"}


def work_unit(nodeid: str) -> str:
    """The unit a test is scheduled in: its file, or (files in :data:`PER_TEST_FILES`) the test
    with its first two parameters, so that tests that compile the same code (``[runtime-dense]``
    and ``[runtime-dense-test_not_whole_batches]``) run one after the other on one worker and
    the second takes the first's compiled code."""
    path, _, test = nodeid.partition("::")
    name = Path(path).name
    if name not in PER_TEST_FILES or not test:
        return path
    func, _, params = test.partition("[")
    if params:
        func += "[" + "-".join(params.rstrip("]").split("-")[:2]) + "]"
    return f"{path}::{func}"


def unit_cost(unit: str) -> float:
    return UNIT_COSTS.get(unit.split("/")[-1], 1)


def pytest_collection_modifyitems(session, config, items):
    """Longest units first (stable: the order inside a unit and among equals is kept)."""
    first = {}
    for i, item in enumerate(items):
        first.setdefault(work_unit(item.nodeid), i)
    items.sort(key=lambda item: (-unit_cost(work_unit(item.nodeid)), first[work_unit(item.nodeid)]))


def pytest_xdist_make_scheduler(config, log):
    """With ``--dist loadfile``: the work units above, handed out in collection order."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class LongestFirst(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return work_unit(nodeid)

    config.option.loadscopereorder = False
    return LongestFirst(config, log)
