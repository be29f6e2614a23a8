#!/usr/bin/env bash
# The GPU check, run on a lent GPU machine (see the README): installs the carried
# wheels (brian2 2.10.1, brian2cuda 1.0b1, mlxtend 0.25.0 in .whl/), then runs the
# main job's network for a few periods on cuda_standalone and on cpp_standalone
# side by side, and times the paper network's training windows on the GPU.
# Results go to $OUT (or ./gpu_check_out).
set -uo pipefail
OUT="${OUT:-gpu_check_out}"
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheel install failed"; exit 1; }
export PYTHONPATH="/tmp/site:$PWD" SDSNN_CACHE=/tmp/sdsnn-cache PYTHONUNBUFFERED=1
nvidia-smi -L | tee "$OUT/gpu.txt"
P="${PERIODS:-4}"
( time python3 -m sdsnn_bio run mnist5k_main --device cuda_standalone --periods "$P" --out /tmp/r_cuda ) \
    > "$OUT/cuda.log" 2>&1; echo "cuda rc=$?"
( time python3 -m sdsnn_bio run mnist5k_main --device cpp_standalone --periods "$P" --out /tmp/r_cpp ) \
    > "$OUT/cpp.log" 2>&1; echo "cpp rc=$?"
for d in cuda cpp; do
    cp /tmp/r_$d/periods.csv "$OUT/periods_$d.csv" 2>/dev/null
    cp /tmp/r_$d/summary.json "$OUT/summary_$d.json" 2>/dev/null
    tail -n 12 "$OUT/$d.log"
done
python3 benchmarks/gpu_speed.py > "$OUT/gpu_speed.txt" 2>&1; echo "gpu_speed rc=$?"
tail -n 20 "$OUT/gpu_speed.txt"
