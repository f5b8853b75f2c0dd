#!/usr/bin/env bash
# Nsight Compute on the GPU machine (from the checkout root, .devcuda carried), at the GPU's own
# clocks: (1) the duration of every kernel of a synthetic 8B run of one forward of $1 rows at
# context $2 (CSV, $OUT/timeline.csv; the tuner's launches come first), (2) a full report of the
# first launch matching $3 in it, with per-SASS-instruction stall samples ($OUT/kernel_*.txt;
# skipped when $3 is -).
# Development aid only.
set -uo pipefail
cd .devcuda
export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/lib64 WEDLM_FIXTURES_DIR=$PWD/fixtures
# The GEMM tuner pauses the profiler while it times candidates (else ncu would pick them).
export WEDLM_CUDA_TUNE_UNPROFILED=1
rows=${1:-32} context=${2:-4096} regex=${3:-attention_mma_kernel<.int.4}
out=${OUT:-/tmp}
ncu=/usr/local/cuda/bin/ncu
bench=(./wedlm bench --synthetic 8b --device cuda --contexts "$context" --rows "$rows" --prefill "$context" --repeats 1 --ar-tokens 1)
$ncu --clock-control none --kernel-name-base demangled --metrics gpu__time_duration.sum --csv --print-units base \
  "${bench[@]}" 2>/dev/null | grep '^"' > "$out/timeline.csv"
wc -l "$out/timeline.csv"
[ "$regex" = - ] && exit 0
$ncu --clock-control none --kernel-name-base demangled -k "regex:$regex" -c 1 --set full --import-source no \
  -o "$out/kernel" "${bench[@]}" > /dev/null 2>&1
$ncu -i "$out/kernel.ncu-rep" --page details > "$out/kernel_details.txt" 2>&1
$ncu -i "$out/kernel.ncu-rep" --page source --csv --print-source sass > "$out/kernel_sass.txt" 2>&1
rm -f "$out/kernel.ncu-rep"
wc -l "$out"/kernel_*.txt
grep -E "Duration|DRAM Throughput|Registers Per|Achieved Occupancy|Warp Cycles Per Issued|Issued Ipc" "$out/kernel_details.txt" | head
