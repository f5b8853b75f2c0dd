#!/usr/bin/env bash
# Nsight Compute on the GPU machine (from the checkout root, .devcuda carried): profiles the
# kernels whose demangled names match $1 (a regex) during a synthetic 8B forward of $2 rows at
# context $3 and prints throughput, occupancy and warp-stall sections. Development aid only.
set -uo pipefail
cd .devcuda
export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/lib64 WEDLM_FIXTURES_DIR=$PWD/fixtures
regex=$1 rows=${2:-32} context=${3:-4096} count=${4:-4} skip=${5:-0}
/usr/local/cuda/bin/ncu --kernel-name-base demangled -k "regex:$regex" -c "$count" --launch-skip "$skip" \
  --section SpeedOfLight --section LaunchStats --section Occupancy --section WarpStateStats \
  --section MemoryWorkloadAnalysis \
  ./wedlm bench --synthetic 8b --device cuda --contexts "$context" --rows "$rows" --prefill "$context" --repeats 1 --ar-tokens 1 2>&1 |
  grep -v "^    ---\|^  *$\|^==PROF==" > "${OUT:-/tmp}/ncu.txt"
grep -E "^  [a-z<].*\(|Duration|DRAM Throughput|Registers Per|Achieved Occupancy|Warp Cycles Per Issued|Grid Size|represents about" "${OUT:-/tmp}/ncu.txt" | cut -c1-150
