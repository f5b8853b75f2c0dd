#!/usr/bin/env bash
# Runs on the GPU machine from the checkout root, with .devcuda carried (tools/pack_cuda_device.sh):
# the CUDA tests, then the synthetic 8B benchmark. Output also goes to $OUT.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${OUT:-/tmp}
export LD_LIBRARY_PATH="$here/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export WEDLM_FIXTURES_DIR="$here/fixtures"
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv
what=${1:-all}
if [[ $what == all || $what == tests ]]; then
  "$here/cuda_tests" ${GTEST_ARGS:-} 2>&1 | tee "$out/tests.txt" | grep -v "^\[       OK\|^\[ RUN" | tail -n 80
fi
if [[ $what == all || $what == bench ]]; then
  "$here/wedlm" bench --synthetic 8b --device cuda --repeats 20 ${BENCH_ARGS:-} 2>&1 | tee "$out/bench.txt"
fi
