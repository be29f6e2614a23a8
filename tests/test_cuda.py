"""cuda_standalone: code generation and nvcc compilation of a full training network; a GPU run
checked against cpp_standalone."""


import os
import re
import sys

import numpy as np
import pytest

from sdsnn_bio.config import find_model, load_config
from sdsnn_bio.devices import cuda_build_unavailable, gpu_available, set_up_device


def _assert_binary(build):
    """nvcc linked the project into an executable ``main``."""
    assert (build / "main").is_file() and os.access(build / "main", os.X_OK), "nvcc produced no binary"


@pytest.fixture
def compile_at_O0(at_O0):
    """The compile-only tests check the generated CUDA code, which must compile at any
    optimisation level: nvcc's device assembler (``-Xptxas -O0``) and the host compiler (``-O0``)
    skip their optimisations here (0.67x the compile time). A run on a GPU keeps Brian2's and
    brian2cuda's flags."""
    levels = at_O0("cuda_standalone", sys.modules[__name__])
    yield levels
    assert ("cuda_standalone", ["-O0"]) in levels, f"no cuda_standalone set-up went through the -O0 flags: {levels}"


def _assert_O0(build):
    """The makefile compiles the device code and the host code at -O0."""
    flags = (build / "makefile").read_text().split("NVCCFLAGS = ", 1)[1].split("\n", 1)[0]
    assert "-Xptxas -O0" in flags and "-O0" in flags.split("-Xcompiler", 1)[1] and "-O3" not in flags, flags


def tiny_dense_behind_a_convolution(**training):
    """tiny_dense behind a structural convolution and pooling (sdsnn_bio/conv.py: the kernel read
    through linked variables, its gradient summed from the positions), so one build covers both."""
    from sdsnn_bio.config import config_from_dict

    d = load_config(find_model("tiny_dense")).to_dict()
    d["layers"] = [{"name": "conv1", "type": "conv", "channels": 2, "kernel": 3, "padding": 1, "spines": True,
                    "clip": True, "prune": True, "rho0": 10.0, "theta_dead": 2.0, "neurotrophic": "hidden"},
                   {"name": "pool1", "type": "pool", "size": 2}] + d["layers"]
    d["training"].update(training)
    return config_from_dict(d, source="tiny_dense behind a convolution")


@pytest.mark.cuda
@pytest.mark.slow
def test_training_network_generates_and_compiles(tmp_path, compile_at_O0):
    why = cuda_build_unavailable()
    if why:
        pytest.skip(why)
    from sdsnn_bio.devices import reset_brian
    from sdsnn_bio.network import SDSNNNetwork

    cfg = tiny_dense_behind_a_convolution()
    build = tmp_path / "cuda_build"
    # compiled for an H100/H200 whether or not this machine has a GPU; the code objects as
    # two unity files (sdsnn_bio.unity: ~19x less nvcc work than one call per file)
    set_up_device("cuda_standalone", str(build), unity_build=2, compute_capability=9.0)
    net = SDSNNNetwork(cfg, 4, 10, device="cuda_standalone", directory=str(build))
    net.build(compile=True)
    _assert_binary(build)
    _assert_O0(build)
    makefile = (build / "makefile").read_text()
    assert "-arch=sm_90" in makefile and "-std=c++17" in makefile
    # every code object was compiled, each exactly once, inside a unity file; the network's
    # own files (main, objects, network, rand, run, synapses_classes) in one more
    srcs = makefile.split("SRCS = ", 1)[1].split("\n", 1)[0].split()
    assert sorted(srcs) == ["unity_0.cu", "unity_1.cu", "unity_main.cu"]
    folded = [line.split('"')[1] for line in (build / "unity_main.cu").read_text().splitlines()
              if line.startswith("#include")]
    assert {"main.cu", "objects.cu", "network.cu", "rand.cu", "run.cu"} <= set(folded)
    assert all((build / f).is_file() for f in folded)
    included = [
        line.split('"')[1]
        for u in ("unity_0.cu", "unity_1.cu")
        for line in (build / u).read_text().splitlines()
        if line.startswith('#include "code_objects/') and line.endswith('.cu"')
    ]
    generated = sorted(p.relative_to(build).as_posix() for p in (build / "code_objects").glob("*.cu"))
    assert len(generated) > 50 and sorted(included) == generated
    # Brian2 numbers a code object whose name an earlier build in this process used
    # (``syn_fc1_bp_codeobject_1.cu``)
    code = "\n".join(p.read_text() for p in (build / "code_objects").glob("syn_fc1_*codeobject*.cu"))
    # the learning and structural pathways are GPU kernels
    for pathway in ("bp", "adam", "pend", "pstart"):
        assert f"syn_fc1_{pathway}" in code
    # and the convolution's: the kernel's Adam and structural pathways, the positions' delivery
    # and the backward pass into the kernel
    names = {p.name for p in (build / "code_objects").glob("*.cu")}
    for stem in ("syn_conv1_adam", "syn_conv1_pend", "syn_conv1_pstart", "syn_conv1_pos_pre", "conv1_grad_pre",
                 "conv1_gbias_pre", "conv1_pos_membrane"):
        assert any(n.startswith(stem) for n in names), stem
    reset_brian()  # must be safe after a cuda build
    reset_brian()


@pytest.mark.cuda
@pytest.mark.slow
def test_parallel_windows_network_generates_and_compiles(tmp_path, compile_at_O0):
    """The mini-batch-parallel form (training.parallel_windows, sdsnn_bio/parallel.py): B
    replicas reading one weight group through linked variables, the replicas' gradient sums
    as synaptic pathways into it; the GPU form the option is meant for. Behind a convolution,
    whose positions are replicated and whose kernel all replicas read."""
    why = cuda_build_unavailable()
    if why:
        pytest.skip(why)
    from sdsnn_bio.parallel import ParallelSDSNNNetwork

    cfg = tiny_dense_behind_a_convolution(parallel_windows=True)
    build = tmp_path / "cuda_parallel"
    set_up_device("cuda_standalone", str(build), unity_build=2, compute_capability=9.0)
    net = ParallelSDSNNNetwork(cfg, 4, 10, device="cuda_standalone", directory=str(build))
    net.build(compile=True)
    _assert_binary(build)
    _assert_O0(build)
    code = "\n".join(p.read_text() for p in (build / "code_objects").glob("*.cu"))
    # the master's Adam and structural pathways, the replicas' delivery and backward sums,
    # and the gradient reductions into the weight and bias groups are GPU kernels
    for kernel in ("syn_fc1_adam", "syn_fc1_pend", "syn_fc1_pstart", "syn_fc1_rep_pre",
                   "fc1_grad_pre", "fc1_gbias_pre", "syn_out_rep_bp",
                   # the convolution: the kernel's pathways, the replicated positions' delivery,
                   # the backward pass into the kernel and the channel biases
                   "syn_conv1_adam", "syn_conv1_pend", "syn_conv1_pos_pre", "conv1_grad_pre", "conv1_gbias_pre"):
        assert f"kernel_{kernel}" in code, kernel
    assert len(net.stage("conv1").extra["positions"]) == net.B * net.stage("conv1").positions.n_neurons


@pytest.mark.cuda
@pytest.mark.gpu
def test_gpu_run_agrees_with_cpp_standalone_within_tolerance(tmp_path, monkeypatch):
    """A full SD-SNN development (pruning and regeneration) on the GPU, against the CPU run.

    Not bit-equal: curand draws other input spikes than the CPU
    stream, so the runs differ by design; they must agree within the band the
    README states for other random streams (15 points of final accuracy, 10 of
    compression, on this small network), and both must learn and prune. The same
    program compiled as unity files (sdsnn_bio.unity) must give the per-file
    build's results exactly.
    """
    why = cuda_build_unavailable() or (None if gpu_available() else "no NVIDIA GPU on this machine")
    if why:
        pytest.skip(why)
    from sdsnn_bio.loop import Development
    from sdsnn_bio.devices import reset_brian
    from sdsnn_bio.report import read_table

    cfg = load_config(find_model("tiny_dense"))
    runs = {}
    for name, device, unity in (("cuda_standalone", "cuda_standalone", "0"),
                                ("cuda_unity", "cuda_standalone", "2"),
                                ("cpp_standalone", "cpp_standalone", "0")):
        monkeypatch.setenv("SDSNN_UNITY_BUILD", unity)
        reset_brian()
        d = tmp_path / name
        runs[name] = (Development(cfg, d, device=device).run(), read_table(d))
    assert any((tmp_path / "cuda_unity").rglob("unity_1.cu"))
    (s_gpu, t_gpu), (s_uni, t_uni), (s_cpu, t_cpu) = (
        runs["cuda_standalone"], runs["cuda_unity"], runs["cpp_standalone"]
    )
    assert s_uni["final_test_accuracy"] == s_gpu["final_test_accuracy"]
    for key in ("test_accuracy", "compression"):
        np.testing.assert_array_equal(t_uni[key], t_gpu[key])
    for s, t in runs.values():
        assert s["final_test_accuracy"] > 0.3      # chance is 0.1
        assert t["compression"][-1] > 0.1
        assert np.all(np.isfinite(t["test_accuracy"]))
    assert abs(s_gpu["final_test_accuracy"] - s_cpu["final_test_accuracy"]) <= 0.15
    assert abs(t_gpu["compression"][-1] - t_cpu["compression"][-1]) <= 0.10
    # the structural schedule does not depend on the random stream
    np.testing.assert_array_equal(t_gpu["period"], t_cpu["period"])


@pytest.mark.cuda
@pytest.mark.slow
def test_developmental_network_generates_and_compiles(tmp_path, monkeypatch, compile_at_O0):
    """The developmental kind (sdsnn_bio.cortex) on cuda_standalone: cortex_sdsnn at 30 neurons,
    every rule on (the spine step with formation end and ageing, trophic competition, patterned
    input, SD-SNN's four rules), compiled by nvcc as unity files."""
    why = cuda_build_unavailable()
    if why:
        pytest.skip(why)
    from sdsnn_bio.config import config_from_dict
    from sdsnn_bio.cortex import build_cortex
    from sdsnn_bio.devices import reset_brian

    monkeypatch.setenv("SDSNN_UNITY_BUILD", "2")
    d = load_config(find_model("cortex_sdsnn")).to_dict()
    d["network"].update(n_exc=24, n_inh=6, p_exc=0.3, p_inh=0.3)
    d["drive"]["n_ext"] = 20
    cfg = config_from_dict(d, source="cortex_sdsnn (30 neurons)")
    assert all(d["sdsnn"][k] for k in ("spine_constraint", "importance_pruning", "neurotrophic_rate", "regeneration"))
    reset_brian()
    net = build_cortex(cfg, "cuda_standalone", tmp_path / "run")
    try:
        net.compile()
        build = net.build_folder.path
        _assert_binary(build)
        _assert_O0(build)
        srcs = (build / "makefile").read_text().split("SRCS = ", 1)[1].split("\n", 1)[0].split()
        assert sorted(srcs) == ["unity_0.cu", "unity_1.cu", "unity_main.cu"]
        code = "\n".join(p.read_text() for p in (build / "code_objects").glob("*.cu"))
        # the spine step (its formation rate with the end of spinogenesis and the ageing term)
        # runs as a GPU kernel
        assert "tau_age" in code and "age_f" in code and "__global__" in code
    finally:
        net.close()
        reset_brian()


@pytest.mark.cuda
@pytest.mark.gpu
def test_fused_copies_run_on_the_gpu_like_on_the_cpu(tmp_path):
    """Two fused tiny_dense copies (other learning rates, masks and seeds) under direct input
    coding (no random numbers) on the GPU and on cpp_standalone: each copy must develop as on
    the CPU within a narrow band (the GPU's atomic sums add in another order), and apart from
    the other copy."""
    why = cuda_build_unavailable() or (None if gpu_available() else "no NVIDIA GPU on this machine")
    if why:
        pytest.skip(why)
    from sdsnn_bio.devices import reset_brian
    from sdsnn_bio.multi import MultiDevelopment, copy_dirs, expand_sets
    from sdsnn_bio.report import read_table

    base = load_config(find_model("tiny_dense")).replace(data={"coding": "direct"})
    cfgs = expand_sets(base, 2, ["training.lr=0.003,0.001", "structure.masks=hard,soft", "schedule.seed=0,1"])
    tables = {}
    for device in ("cuda_standalone", "cpp_standalone"):
        reset_brian()
        dirs = copy_dirs(tmp_path / device, 2)
        MultiDevelopment(cfgs, dirs, device=device).run()
        tables[device] = [read_table(d) for d in dirs]
    reset_brian()
    for k in (0, 1):
        gpu, cpu = tables["cuda_standalone"][k], tables["cpp_standalone"][k]
        np.testing.assert_array_equal(gpu["period"], cpu["period"])
        assert np.max(np.abs(gpu["test_accuracy"] - cpu["test_accuracy"])) <= 0.10, k
        assert abs(gpu["compression"][-1] - cpu["compression"][-1]) <= 0.05, k
        assert gpu["compression"][-1] > 0.1
    assert not np.array_equal(tables["cuda_standalone"][0]["test_accuracy"],
                              tables["cuda_standalone"][1]["test_accuracy"])


@pytest.mark.cuda
@pytest.mark.slow
def test_copies_in_one_build_generate_and_compile(tmp_path, compile_at_O0):
    """Several networks in one build (sdsnn_bio.multi, issue 10's K networks per build) on
    cuda_standalone: two copies of a small event-input network (two polarity channels of 8 x 8
    pixels, 30 - 10) with their own learning rates and seeds, fused: one kernel per operation for
    both copies, the copies' flags per-neuron arrays, the input reading its spikes from the packed
    stimulus (sdsnn_bio.data.event_input.pack_codes) in the copy's columns."""
    why = cuda_build_unavailable()
    if why:
        pytest.skip(why)
    from sdsnn_bio.devices import reset_brian
    from sdsnn_bio.multi import MultiSDSNNNetwork, expand_sets

    from test_event_input import _cfg

    cfgs = expand_sets(_cfg(tmp_path), 2, ["training.lr=0.001,0.003", "schedule.seed=0,1"])
    build = tmp_path / "cuda_multi"
    reset_brian()
    set_up_device("cuda_standalone", str(build), unity_build=2, compute_capability=9.0)
    net = MultiSDSNNNetwork(cfgs, 4, 10, "cuda_standalone", str(build))
    net.compile()
    _assert_binary(build)
    _assert_O0(build)
    code = "\n".join(p.read_text() for p in (build / "code_objects").glob("*.cu"))
    kernels = re.findall(r"__global__\s+void\s+(\w+)", code)
    for pathway in ("pre", "bp", "adam", "pend", "pstart"):
        # one kernel per pathway (Brian2 numbers a code object's name by what the process built before)
        assert len([k for k in kernels if re.fullmatch(rf"_run_kernel_syn_fc1_{pathway}_codeobject(_\d+)?", k)]) == 1, \
            pathway
    assert not [k for k in kernels if "copy" in k]
    assert len(net.copies) == 2 and len(net.net["syn_fc1"]) == 2 * net.stage("fc1").n_synapses
    # the flags that one network shares are per-neuron arrays here, each copy's block its own
    objects = (build / "objects.cu").read_text()
    for name in ("_array_fc1_lr", "_array_fc1_hard_mask", "_array_fc1_syn_regen_threshold"):
        assert name in objects, name
    # the input's spikes: a bit of the packed stimulus, tested by a remainder in floating point
    # (named, as the kernels, by what the worker process built before: ..._codeobject_1.cu after another build)
    found = [p for p in (build / "code_objects").glob("input_spike_thresholder_codeobject*.cu")
             if re.fullmatch(r"input_spike_thresholder_codeobject(_\d+)?\.cu", p.name)]
    assert len(found) == 1, sorted(p.name for p in (build / "code_objects").iterdir())
    thresholder = found[0].read_text()
    assert re.search(r"_brian_mod\(.*stim_col.*stim_bit", thresholder.replace("\n", " ")), thresholder
    reset_brian()
