#!/usr/bin/env bash
# The GPU check, run on a lent GPU machine (see the README): installs the carried
# wheels (brian2 2.10.1, brian2cuda 1.0b1, mlxtend 0.25.0 in .whl/; pytest in
# .gpusite/ where carried), then
#   1. the GPU tests (tests/test_cuda.py: CUDA compile; a tiny_dense SD-SNN development on
#      cuda_standalone against cpp_standalone within the stated band), and, beside them,
#   2. mnist5k_fc for PERIODS periods (default 4; 0 skips it) on cuda_standalone and on cpp_standalone,
#   3. the per-window speed of the SPEED_MODELS networks (default: mnist_dense mnist_paper) on the
#      GPU and the CPU (benchmarks/gpu_speed.py), while the tests of 1. run beside them,
#   4. with TARGETS=1 (the default), issue 10's GPU targets (benchmarks/gpu_targets.py: the paper
#      network's parallel-windows form on the GPU against its sequential form on one core; K = 32
#      784-300-10 networks in one GPU build against one on one core) into $OUT/gpu_targets.json.
# Results go to $OUT (or ./gpu_check_out).
set -uo pipefail
OUT="${OUT:-gpu_check_out}"
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheel install failed"; exit 1; }
export PYTHONPATH="/tmp/site:$PWD:$PWD/.gpusite" SDSNN_CACHE=/tmp/sdsnn-cache PYTHONUNBUFFERED=1
nvidia-smi -L | tee "$OUT/gpu.txt"
python3 --version | tee -a "$OUT/gpu.txt"
P="${PERIODS:-4}"                                   # 0: skip the mnist5k_fc comparison
SPEED_MODELS="${SPEED_MODELS:-mnist_dense mnist_paper}"
( python3 -m pytest -q -p no:cacheprovider -rs tests/test_cuda.py > "$OUT/pytest_cuda.log" 2>&1;
  echo "pytest rc=$?" >> "$OUT/pytest_cuda.log" ) &
tests=$!
if [ "$P" -gt 0 ]; then
    ( time python3 -m sdsnn_bio run mnist5k_fc --device cuda_standalone --periods "$P" --out /tmp/r_cuda ) \
        > "$OUT/cuda.log" 2>&1; echo "cuda rc=$?"
    ( time python3 -m sdsnn_bio run mnist5k_fc --device cpp_standalone --periods "$P" --out /tmp/r_cpp ) \
        > "$OUT/cpp.log" 2>&1; echo "cpp rc=$?"
    for d in cuda cpp; do
        cp /tmp/r_$d/periods.csv "$OUT/periods_$d.csv" 2>/dev/null
        cp /tmp/r_$d/summary.json "$OUT/summary_$d.json" 2>/dev/null
        tail -n 12 "$OUT/$d.log"
    done
fi
# shellcheck disable=SC2086
python3 benchmarks/gpu_speed.py --models $SPEED_MODELS > "$OUT/gpu_speed.txt" 2>&1; echo "gpu_speed rc=$?"
tail -n 20 "$OUT/gpu_speed.txt"
if [ "${TARGETS:-1}" = 1 ]; then
    python3 benchmarks/gpu_targets.py --out "$OUT/gpu_targets.json" > "$OUT/gpu_targets.log" 2>&1
    echo "gpu_targets rc=$?"; tail -n 12 "$OUT/gpu_targets.log"
fi
wait "$tests"
tail -n 15 "$OUT/pytest_cuda.log"
