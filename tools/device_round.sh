#!/usr/bin/env bash
# One measurement round on the GPU machine, from the checkout root with .devcuda carried
# (tools/pack_cuda_device.sh): CUDA tests, the synthetic 8B bench with every GEMM candidate's
# time logged, and a per-op profile of one-row and 32-row forwards at context 4096.
set -uo pipefail
cd .devcuda
out=${OUT:-/tmp}
export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/lib64 WEDLM_FIXTURES_DIR=$PWD/fixtures
nvidia-smi --query-gpu=name --format=csv,noheader
./cuda_tests 2>&1 | tee "$out/tests.txt" | grep -v "^\[       OK\|^\[ RUN\|bf16-fragile" | tail -4
WEDLM_CUDA_GEMM_LOG=1 ./wedlm bench --synthetic 8b --device cuda --repeats 10 > "$out/bench.txt" 2> "$out/gemmlog.txt"
tail -13 "$out/bench.txt"; grep prefill "$out/bench.txt"
grep -E "^gemm (1|16|32) rows x (24576|4096|6144) " "$out/gemmlog.txt" | sort -t: -k1,1 -s |
  awk -F': ' '{a[$1]=a[$1]" | "$2} END{for(k in a) print k a[k]}' | sort
WEDLM_CUDA_PROFILE=1 ./wedlm bench --synthetic 8b --device cuda --contexts 4096 --rows 1,32 --prefill 1 --repeats 10 \
  --ar-tokens 8 > /dev/null 2> "$out/profile.txt"
head -24 "$out/profile.txt"
