"""Tests of sdsnn_bio.devices: device names, Brian2 reset, and builds on each device."""

import importlib.util
import os

import numpy as np
import pytest

from sdsnn_bio.devices import (
    cuda_build_unavailable,
    DEVICES,
    check_device,
    configure_cuda,
    gpu_available,
    is_standalone,
    reset_brian,
    set_up_device,
)
from sdsnn_bio.errors import DeviceError

SEED = 4321


def _run_small(stochastic=True, duration_ms=100):
    """Build and run (or, in standalone, collect) a 10-neuron LIF network.

    The network has a ``run_regularly`` on the synapses (every 10 ms) and a
    summed variable into the postsynaptic neurons. ``coin`` always draws
    ``rand()``; with ``stochastic`` it also gates transmission, otherwise the
    gate switches off at 50 ms and the dynamics are deterministic.
    """
    from brian2 import Network, NeuronGroup, SpikeMonitor, Synapses, ms, seed

    seed(SEED)
    G = NeuronGroup(
        10,
        """dv/dt = (I + 0.2*syn_in - v) / (10*ms) : 1 (unless refractory)
           I : 1 (constant)
           syn_in : 1""",
        threshold="v > 1",
        reset="v = 0",
        refractory=2 * ms,
        method="euler",
    )
    G.I = "1.05 + 0.03*i"
    G.v = "rand()" if stochastic else "0.1*i"
    S = Synapses(
        G,
        G,
        """w : 1
           enabled : 1
           coin : 1
           syn_in_post = w*enabled : 1 (summed)""",
        on_pre="v_post += 0.05*w*enabled",
    )
    S.connect(condition="i != j")
    S.w = "0.3 + 0.04*j"
    S.enabled = 1
    gate = "enabled = coin" if stochastic else "enabled = int(t < 50*ms)"
    S.run_regularly("coin = int(rand() < 0.7)\n" + gate, dt=10 * ms)
    M = SpikeMonitor(G)
    net = Network(G, S, M)
    net.run(duration_ms * ms)
    return G, S, M


def _results(G, S, M):
    return {
        "count": int(M.num_spikes),
        "i": np.asarray(M.i[:]).copy(),
        "t": np.asarray(M.t_[:]).copy() * 1e3,  # ms
        "enabled": np.asarray(S.enabled[:]).copy(),
        "coin": np.asarray(S.coin[:]).copy(),
        "syn_in": np.asarray(G.syn_in[:]).copy(),
    }


def _run_on(device_name, directory, stochastic=True, run=True, **cuda_kw):
    from brian2 import device

    reset_brian()
    directory = set_up_device(device_name, directory, **cuda_kw)
    G, S, M = _run_small(stochastic=stochastic)
    if is_standalone(device_name):
        device.build(directory=directory, compile=True, run=run)
        if not run:
            return None
    return _results(G, S, M)


# --------------------------------------------------------------------------- names


def test_devices_tuple():
    assert DEVICES == ("runtime", "cpp_standalone", "cuda_standalone")
    assert [is_standalone(d) for d in DEVICES] == [False, True, True]


def test_unknown_device_error_names_it_and_lists_valid():
    with pytest.raises(DeviceError) as info:
        check_device("cuda")
    msg = str(info.value)
    assert "'cuda'" in msg
    for name in DEVICES:
        assert name in msg
    with pytest.raises(DeviceError, match="unknown device"):
        set_up_device("genn", None)
    with pytest.raises(DeviceError):
        is_standalone("gpu")


def test_set_up_device_rejects_bad_arguments(tmp_path):
    with pytest.raises(DeviceError, match="threads"):
        set_up_device("cpp_standalone", tmp_path, threads=0)
    with pytest.raises(DeviceError, match="only for cuda_standalone"):
        set_up_device("cpp_standalone", tmp_path, compute_capability=9.0)


# --------------------------------------------------------------------------- reset


def test_reset_brian_idempotent(tmp_path):
    from brian2 import defaultclock, get_device, ms, prefs, set_device

    # Dirty the state: another device, dt and preferences.
    set_device("cpp_standalone", build_on_run=False, directory=str(tmp_path))
    defaultclock.dt = 0.05 * ms
    prefs.codegen.cpp.extra_compile_args_gcc = ["-O0"]
    prefs.logging.file_log = True
    for _ in range(3):
        reset_brian()
        assert type(get_device()).__name__ == "RuntimeDevice"
        assert float(defaultclock.dt / ms) == pytest.approx(0.1)
        assert "-O0" not in prefs.codegen.cpp.extra_compile_args_gcc
        assert prefs.logging.file_log is False
        assert prefs.logging.save_script is False
        assert prefs.logging.std_redirection is False
        cache = prefs.codegen.runtime.cython.cache_dir
        assert cache is not None and cache.endswith(os.path.join("", "cython"))
        assert os.path.isdir(cache)


def test_cython_extensions_are_built_without_debug_information(tmp_path, monkeypatch):
    """Python's CFLAGS carry -g; set_up_device('runtime') adds -g0 (a sixth of the compile
    time, the same code). Checked on a compiled extension: no DWARF sections in it."""
    monkeypatch.setenv("SDSNN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SDSNN_CCACHE", "0")
    reset_brian()
    from brian2 import NeuronGroup, Network, ms, prefs

    set_up_device("runtime", None)
    assert prefs.codegen.cpp.extra_compile_args_gcc[-1] == "-g0"
    group = NeuronGroup(3, "dv/dt = -v / (10*ms) : 1", name="g0_probe")
    group.v = 1
    Network(group).run(0.2 * ms)
    assert group.v[0] < 1
    built = list((tmp_path / "cache" / "cython").rglob("*.so"))
    assert built, "no Cython extension was compiled"
    for so in built:
        assert b".debug_info" not in so.read_bytes(), so
    reset_brian()


def test_set_up_device_returns_directory(tmp_path):
    from brian2 import get_device, prefs

    assert set_up_device("runtime", None) is None
    assert prefs.codegen.target == "cython"
    d = set_up_device("cpp_standalone", tmp_path / "p", threads=2)
    assert d == str(tmp_path / "p")
    assert type(get_device()).__name__ == "CPPStandaloneDevice"
    assert prefs.devices.cpp_standalone.openmp_threads == 2
    reset_brian()
    set_up_device("cpp_standalone", tmp_path / "p", threads=1)
    assert prefs.devices.cpp_standalone.openmp_threads == 0


def test_configure_cuda_rejects_old_architecture():
    if importlib.util.find_spec("brian2cuda") is None:
        pytest.skip("brian2cuda is not installed")
    with pytest.raises(DeviceError, match="7.5"):
        configure_cuda(compute_capability=7.0)
    with pytest.raises(DeviceError, match="number"):
        configure_cuda(compute_capability="sm_90")


# --------------------------------------------------------------------------- builds


@pytest.mark.standalone
def test_cpp_standalone_matches_runtime(tmp_path):
    rt = _run_on("runtime", None)
    cpp = _run_on("cpp_standalone", tmp_path / "cpp")
    assert rt["count"] > 20  # the network is active
    assert 0 < rt["enabled"].sum() < rt["enabled"].size  # rand() gated some synapses
    assert cpp["count"] == rt["count"]
    np.testing.assert_array_equal(cpp["i"], rt["i"])
    np.testing.assert_allclose(cpp["t"], rt["t"])
    np.testing.assert_array_equal(cpp["enabled"], rt["enabled"])
    np.testing.assert_allclose(cpp["syn_in"], rt["syn_in"])
    reset_brian()  # after a standalone build too


@pytest.mark.cuda
@pytest.mark.gpu
def test_cuda_standalone_runs_on_gpu(tmp_path):
    why = cuda_build_unavailable()
    if why:
        pytest.skip(f"cannot build cuda_standalone here: {why}")
    if not gpu_available():
        pytest.skip("no NVIDIA GPU here (nvidia-smi -L lists none)")
    ref = _run_on("cpp_standalone", tmp_path / "cpp", stochastic=False)
    gpu = _run_on("cuda_standalone", tmp_path / "cuda", stochastic=False)
    assert ref["count"] > 20
    # Deterministic dynamics: float rounding (fast math, FMA) may move a spike.
    assert abs(gpu["count"] - ref["count"]) <= max(2, 0.05 * ref["count"])
    np.testing.assert_array_equal(gpu["enabled"], ref["enabled"])
    np.testing.assert_allclose(gpu["syn_in"], ref["syn_in"], rtol=1e-6)
    # rand() on the GPU (cuRAND): about 70 % of the coins are 1.
    assert set(np.unique(gpu["coin"])) <= {0.0, 1.0}
    assert 0.45 < gpu["coin"].mean() < 0.9
    reset_brian()


def _fake_ccache(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "ccache"
    exe.write_text("#!/bin/sh\nexec \"$@\"\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    for var in ("CC", "CXX", "SDSNN_CCACHE"):
        monkeypatch.delenv(var, raising=False)
    return str(exe)


def test_compiler_cache_routes_compiles_through_ccache(tmp_path, monkeypatch):
    from sdsnn_bio import devices

    exe = _fake_ccache(tmp_path, monkeypatch)
    set_up_device("cpp_standalone", str(tmp_path / "build"))
    assert os.environ["CC"] == f"{exe} gcc" and os.environ["CXX"] == f"{exe} g++"
    # brian2cuda hands $CXX to nvcc -ccbin, which takes one program: taken back for CUDA
    devices._drop_compiler_cache()
    assert "CC" not in os.environ and "CXX" not in os.environ


def test_compiler_cache_respects_the_user(tmp_path, monkeypatch):
    from sdsnn_bio.devices import use_compiler_cache

    exe = _fake_ccache(tmp_path, monkeypatch)
    monkeypatch.setenv("SDSNN_CCACHE", "0")
    assert use_compiler_cache() is None and "CXX" not in os.environ
    monkeypatch.delenv("SDSNN_CCACHE")
    monkeypatch.setenv("CXX", "clang++")
    assert use_compiler_cache() == exe
    # the user's CXX is kept, the unset CC goes through the cache
    assert os.environ["CXX"] == "clang++" and os.environ["CC"] == f"{exe} gcc"
    from sdsnn_bio import devices

    devices._drop_compiler_cache()
    assert os.environ["CXX"] == "clang++" and "CC" not in os.environ


def test_a_second_build_of_a_network_comes_from_the_cache(tmp_path, monkeypatch):
    """Building the same network again (a resumed run, the main job's second run, another
    test) takes its object files from the compiler cache instead of compiling them."""
    import shutil
    import subprocess
    import sys

    if shutil.which("ccache") is None:
        pytest.skip("ccache is not installed (./dev installs it where apt-get can)")
    import re

    env = {k: v for k, v in os.environ.items() if k not in ("CC", "CXX", "SDSNN_CCACHE")}
    env["CCACHE_DIR"] = str(tmp_path / "ccache")

    def results(log):
        """ccache's result for each project source compiled (Brian2's compiler-flag probes
        in fresh temporary folders, the link and the dependency scan left out)."""
        source, result = {}, {}
        for line in log.read_text().splitlines():
            m = re.match(r"\[\S+ (\d+)\s*\] (Source file|Result): (.*)", line)
            if m:
                pid, what, value = m.groups()
                (source if what == "Source file" else result).setdefault(pid, value.strip())
        return {os.path.basename(source[p]): result[p] for p in source
                if p in result and "flag_test" not in source[p]}

    seen = []
    for attempt in ("cold", "warm"):
        env["CCACHE_LOGFILE"] = str(tmp_path / f"{attempt}.log")
        r = subprocess.run([sys.executable, "-m", "sdsnn_bio", "run", "tiny_dense", "--periods", "1",
                            "--out", str(tmp_path / attempt)], capture_output=True, text=True, env=env, timeout=900)
        assert r.returncode == 0, r.stderr[-2000:]
        seen.append(results(tmp_path / f"{attempt}.log"))
    cold, warm = seen
    # the network's own sources and its code objects in one unity file per core (sdsnn_bio.unity)
    assert {"main.cpp", "objects.cpp", "network.cpp", "unity_0.cpp"} <= set(cold), cold
    assert set(cold.values()) == {"cache_miss"}, cold
    assert set(warm) == set(cold)
    missed = sorted(f for f, res in warm.items() if res not in ("direct_cache_hit", "preprocessed_cache_hit"))
    # main.cpp names the build folder (a fresh one per run) and is compiled again
    assert missed in ([], ["main.cpp"]), f"the second build must take its objects from the cache: {warm}"


def test_a_build_whose_results_do_not_fit_in_memory_goes_to_disk(tmp_path, monkeypatch):
    """The build folder goes to /dev/shm only where its two result folders fit beside the
    network's memory (and in /dev/shm's free space); else to the run folder, saying why."""
    from sdsnn_bio import runner

    if not (os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK)):
        pytest.skip("no writable /dev/shm on this machine: every build goes to disk")
    GiB = 2**30
    monkeypatch.setattr("sdsnn_bio.geometry.available_memory", lambda: 20 * GiB)
    monkeypatch.setattr(runner, "_free_bytes", lambda path: 10 * GiB)
    small = runner.BuildFolder("cpp_standalone", tmp_path / "a", results=GiB // 2, need=5 * GiB)
    try:
        assert str(small.path).startswith("/dev/shm/") and small.on_disk_because is None
    finally:
        small.remove()
    big = runner.BuildFolder("cpp_standalone", tmp_path / "b", results=3 * GiB, need=13 * GiB)
    assert big.path == tmp_path / "b" and "would not fit in memory" in big.on_disk_because
    assert "6.0 GiB" in big.on_disk_because and "20.0 GiB available" in big.on_disk_because
    full = runner.BuildFolder("cpp_standalone", tmp_path / "c", results=4.75 * GiB, need=0)
    assert full.path == tmp_path / "c" and "/dev/shm has 10.00 GiB free" in full.on_disk_because
    assert runner.BuildFolder("runtime", tmp_path / "d").path == tmp_path / "d"
