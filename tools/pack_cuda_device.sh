#!/usr/bin/env bash
# Packs what the GPU machine needs to run the CUDA tests and benchmark into DEST (default
# /work/main/.devcuda): binaries built here (the CLI, the CUDA tests, the attention and TMA-stream benchmarks;
# sm_90a, portable x86-64 flags), the non-system shared libraries they load (the GPU image
# lacks fmt, pcre2, utf8proc, ...), the test fixtures, and tools/run_cuda_device.sh. cuBLASLt
# and the driver come from the GPU machine's CUDA install.
set -euo pipefail
build=${1:-build/rel}
dest=${2:-/work/main/.devcuda}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rm -rf "$dest"
mkdir -p "$dest/lib"
cp "$build/src/cli/wedlm" "$build/tests/cuda/cuda_tests" "$dest/"
# The attention and TMA-stream benchmarks where they were built (ninja ... cuda_attention_bench
# cuda_stream_bench).
for bench in cuda_attention_bench cuda_stream_bench; do
  if [[ -x "$build/bench/$bench" ]]; then cp "$build/bench/$bench" "$dest/"; fi
done
cp tools/run_cuda_device.sh "$dest/"
for bin in "$dest"/wedlm "$dest"/cuda_tests "$dest"/cuda_attention_bench "$dest"/cuda_stream_bench; do
  [[ -e "$bin" ]] || continue
  ldd "$bin" | awk '/=> \//{print $3}' | while read -r lib; do
    case "$(basename "$lib")" in
      libc.so*|libm.so*|libstdc++.so*|libgcc_s.so*|ld-linux*|libpthread*|libdl*|librt*|libcublas*|libcudart*) ;;
      *) cp -L "$lib" "$dest/lib/" ;;
    esac
  done
done
cp -r tests/fixtures "$dest/fixtures"
du -sh "$dest"
