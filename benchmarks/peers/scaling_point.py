"""One point of the scaling benchmark: ``mnist5k_fc`` with fc1 widened, a few periods, time and memory.

Run by the benchmark driver with the project's Python, one process per point (so
that each point's peak memory is its own); prints one JSON line. The model is
``mnist5k_fc`` (784-H-10, every layer dense) with fc1's width ``H`` changed in the
configuration; a period is ``--test`` test windows and ``--train`` training windows
(T = 20) plus the settle step with the structural step on (spine update, constraint,
importance; the regeneration and mask at the period's start), on ``cpp_standalone``
(one thread). Per period: the wall time of the run (writing the inputs, the binary,
reading back) plus reading the structural state back as the period loop does, and
the binary's own time. Peak memory: the binary's peak resident set (``/usr/bin/time``
around it) and this process's (Python: the network's arrays, generating the
project). The per-synapse variables of the generated model are counted with their
dtypes.

Usage: ``python scaling_point.py --units 300 --periods 3 --train 20 --test 10``
"""

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402

from common import emit  # noqa: E402


def synapse_variables(syn) -> dict:
    """``{name: bytes per synapse}`` of the per-synapse arrays of a Brian2 ``Synapses`` object.

    The dynamic arrays the object owns (one entry per synapse), each array once (``i``
    and ``j`` are other names of ``_synaptic_pre`` and ``_synaptic_post``), without the
    per-neuron counts ``N_incoming`` and ``N_outgoing``.
    """
    from brian2.core.variables import DynamicArrayVariable

    out, seen = {}, set()
    for name, var in syn.variables.items():
        if not isinstance(var, DynamicArrayVariable) or var.scalar or var.owner is None:
            continue
        if var.owner.name != syn.name or name in ("N_incoming", "N_outgoing") or id(var) in seen:
            continue
        seen.add(id(var))
        out[name] = int(np.dtype(var.dtype).itemsize)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mnist5k_fc")
    ap.add_argument("--units", type=int, required=True, help="width of fc1")
    ap.add_argument("--periods", type=int, default=3)
    ap.add_argument("--train", type=int, default=20)
    ap.add_argument("--test", type=int, default=10)
    args = ap.parse_args(argv)

    import brian2

    from sdsnn_bio.config import find_model, load_config
    from sdsnn_bio.data.encoding import stimulus_matrix
    from sdsnn_bio.data.mnist import load_mnist5k
    from sdsnn_bio.devices import reset_brian, set_up_device
    from sdsnn_bio.network import SDSNNNetwork

    cfg = load_config(find_model(args.model))
    layers = [dict(layer) for layer in cfg.to_dict()["layers"]]
    layers[0]["units"] = args.units
    cfg = cfg.replace(layers=layers)
    ds = load_mnist5k()
    n_win = args.test + args.train
    x = stimulus_matrix(np.concatenate([ds.x_test[:args.test], ds.x_train[:args.train]]))
    y = np.concatenate([ds.y_test[:args.test], ds.y_train[:args.train]])
    tg = np.zeros((n_win, cfg.n_classes))
    tg[np.arange(n_win), y] = 1.0
    root = "/dev/shm" if os.path.isdir("/dev/shm") else None
    tmp = tempfile.mkdtemp(prefix="sdsnn-scale-", dir=root)
    maxrss_file = os.path.join(tmp, "binary_maxrss_kb.txt")
    try:
        reset_brian()
        set_up_device("cpp_standalone", tmp, threads=1)
        brian2.prefs.devices.cpp_standalone.run_cmd_unix = ["/usr/bin/time", "-f", "%M", "-o", maxrss_file,
                                                            "./main"]
        t0 = time.perf_counter()
        net = SDSNNNetwork(cfg, args.test, args.train, device="cpp_standalone", directory=tmp, seed=0)
        net.build()
        build_s = time.perf_counter() - t0
        py_rss_after_build = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        fc1 = net.stage("fc1")
        per_syn = synapse_variables(fc1.synapses)
        wall, binary, binary_rss = [], [], []
        for p in range(args.periods):
            net.set_shared(lr=cfg.training.lr, adam_k0=p * (args.train // cfg.training.batch), learn_on=1,
                           struct_on=1, hard_mask=1, bias_mask_on=0)
            for st in net.learnable_stages:
                net.set_stage_flags(st, clip_on=1, regen_on=0, mask_on=1)
            net.set_inputs(x, tg)
            t0 = time.perf_counter()
            net.run()
            for st in net.learnable_stages:
                net.structural_state(st.name)
            wall.append(time.perf_counter() - t0)
            binary.append(float(brian2.device._last_run_time))
            with open(maxrss_file) as f:
                binary_rss.append(int(f.read().split()[-1]))
        n_syn = sum(s.n_synapses for s in net.stages)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    py_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    emit({"units": args.units, "synapses": n_syn, "fc1_synapses": int(fc1.n_synapses), "periods": args.periods,
          "windows_per_period": n_win, "build_s": round(build_s, 2),
          "period_wall_s": [round(s, 4) for s in wall], "period_binary_s": [round(s, 4) for s in binary],
          "binary_peak_rss_mb": round(max(binary_rss) / 1024, 1),
          "python_peak_rss_mb": round(py_rss / 1024, 1),
          "python_peak_rss_after_build_mb": round(py_rss_after_build / 1024, 1),
          "fc1_bytes_per_synapse_by_variable": per_syn})


if __name__ == "__main__":
    main()
