"""cuda_standalone: code generation and nvcc compilation of a full training network; a run on a GPU."""


import numpy as np
import pytest

from sdsnn_bio.config import find_model, load_config
from sdsnn_bio.devices import cuda_build_unavailable, gpu_available, set_up_device


@pytest.mark.cuda
@pytest.mark.slow
def test_training_network_generates_and_compiles(tmp_path):
    why = cuda_build_unavailable()
    if why:
        pytest.skip(why)
    from sdsnn_bio.network import SDSNNNetwork

    cfg = load_config(find_model("tiny_dense"))
    build = tmp_path / "cuda_build"
    set_up_device("cuda_standalone", str(build))
    net = SDSNNNetwork(cfg, 4, 10, device="cuda_standalone", directory=str(build))
    net.build(compile=True)
    assert (build / "main").is_file(), "nvcc produced no binary"
    code = "\n".join(p.read_text() for p in (build / "code_objects").glob("syn_fc1_*codeobject.cu"))
    # the learning and structural pathways are GPU kernels
    for pathway in ("bp", "adam", "pend", "pstart"):
        assert f"syn_fc1_{pathway}" in code


@pytest.mark.cuda
@pytest.mark.gpu
def test_training_runs_on_gpu(tmp_path):
    why = cuda_build_unavailable() or (None if gpu_available() else "no NVIDIA GPU on this machine")
    if why:
        pytest.skip(why)
    from sdsnn_bio.develop import Development

    cfg = load_config(find_model("tiny_dense"))
    dev = Development(cfg, tmp_path / "run", device="cuda_standalone")
    summary = dev.run()
    assert summary["final_test_accuracy"] > 0.3   # chance is 0.1
    from sdsnn_bio.report import read_table

    t = read_table(tmp_path / "run")
    assert np.nanmax(t["compression"]) > 0.1
