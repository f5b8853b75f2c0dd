// How fast one multiprocessor pulls memory into shared memory through the TMA engine, by the
// shape of its copies (Google Benchmark, manual time from CUDA events). Every CTA streams 4
// units of 512 KB through a ring of stages (a consumer warp only waits for each stage and frees
// it), one, two or three CTAs a multiprocessor, the whole GPU at once. Copies:
//   mode 0: 2D boxes of 64 bf16 columns (128 bytes, 128-byte swizzle) x `box_rows` rows of a
//           [rows][4096] bf16 matrix, a unit being 64 rows x all columns: the layout of a GEMM's
//           weights, rows 8 KB apart, as the TMA GEMM kernels read them.
//   mode 1: 1D bulk copies of `box_rows` x 128 contiguous bytes.
//   mode 2: 2D boxes as mode 0, of the same buffer seen as [rows][64] (each box contiguous).
//   mode 3, 4: as mode 0, a copy being 2 or 4 neighbouring 64-column spans (a chunked 3D map).
// `issuers` producer lanes issue the copies, lane l those of stages l, l + issuers, ...
// The question it answers: whether the per-multiprocessor rate (not the memory) bounds the
// TMA-fed kernels (NOTES.md).
#include <benchmark/benchmark.h>
#include <cuda.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/tensor_map.h"
#include "backend/cuda/tma.cuh"

namespace {

using namespace wedlm::cuda;

constexpr int kUnitsPerCta = 4;
constexpr std::int64_t kUnitBytes = 512 * 1024;
constexpr int kColumns = 4096;  // bf16 columns of the mode-0 matrix

__device__ __forceinline__ void bulk_load(unsigned dst, const void* src, unsigned bytes, unsigned bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(dst),
               "l"(src), "r"(bytes), "r"(bar)
               : "memory");
}

template <int MODE>
__global__ void stream_kernel(const __grid_constant__ CUtensorMap map, const unsigned char* src, int box_rows,
                              int stages, int issuers) {
  constexpr int kChunks = MODE == 3 ? 2 : MODE == 4 ? 4 : 1;
  extern __shared__ unsigned char smem[];
  unsigned char* ring = align_1024(smem);
  __shared__ __align__(8) std::uint64_t full[16], empty[16];
  mbar_init_ring(full, empty, stages, 1);
  __syncthreads();
  const unsigned base = shared_address(ring), box_bytes = static_cast<unsigned>(box_rows) * 128 * kChunks;
  const int boxes_per_unit = static_cast<int>(kUnitBytes / box_bytes);
  const int total = kUnitsPerCta * boxes_per_unit;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (warp == 1) {
    if (lane >= issuers) return;
    // Rounds in step (every lane's previous copy issued), so that no lane runs a lap ahead.
    for (int i0 = 0; i0 < total; i0 += issuers) {
      __syncwarp((1u << issuers) - 1);
      const int i = i0 + lane;
      if (i >= total) continue;
      const int s = i % stages;
      if (i >= stages) mbar_wait(shared_address(&empty[s]), static_cast<unsigned>((i / stages - 1) & 1));
      const unsigned bar = shared_address(&full[s]), dst = base + static_cast<unsigned>(s) * box_bytes;
      mbar_arrive_expect_tx(bar, box_bytes);
      const std::int64_t unit = static_cast<std::int64_t>(blockIdx.x) * kUnitsPerCta + i / boxes_per_unit;
      const int b = i % boxes_per_unit;
      if constexpr (MODE == 0) {
        // A unit: 64 matrix rows; boxes walk the columns, then the next box_rows rows.
        const int per_column_step = 64 / box_rows;
        const int column = (b / per_column_step) * 64, row = static_cast<int>(unit * 64) + (b % per_column_step) * box_rows;
        tma_load(dst, map, column, row, bar);
      } else if constexpr (MODE >= 3) {
        const int per_column_step = 64 / box_rows;
        const int chunk = (b / per_column_step) * kChunks, row = static_cast<int>(unit * 64) + (b % per_column_step) * box_rows;
        tma_load_chunks(dst, map, row, chunk, bar);
      } else if constexpr (MODE == 1) {
        bulk_load(dst, src + unit * kUnitBytes + static_cast<std::int64_t>(b) * box_bytes, box_bytes, bar);
      } else {
        tma_load(dst, map, 0, static_cast<int>(unit * (kUnitBytes / 128)) + b * box_rows, bar);
      }
    }
  } else if (warp == 0) {
    for (int i = 0; i < total; ++i) {
      const int s = i % stages;
      mbar_wait(shared_address(&full[s]), static_cast<unsigned>((i / stages) & 1));
      __syncwarp();
      if (lane == 0) mbar_arrive(shared_address(&empty[s]));
    }
  }
}

// range(0): mode, range(1): box rows (128 bytes a 64-column span), range(2): stages, range(3): CTAs
// a multiprocessor, range(4): issuing lanes.
void BM_TmaStream(benchmark::State& state) {
  const int mode = static_cast<int>(state.range(0)), box_rows = static_cast<int>(state.range(1));
  const int stages = static_cast<int>(state.range(2)), per_sm = static_cast<int>(state.range(3));
  const int issuers = static_cast<int>(state.range(4)), chunks = mode == 3 ? 2 : mode == 4 ? 4 : 1;
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    state.SkipWithError("no CUDA device");
    return;
  }
  if (!tensor_maps_available()) {
    state.SkipWithError("no tensor map encoder");
    return;
  }
  cudaDeviceProp prop{};
  WEDLM_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  const int ctas = prop.multiProcessorCount * per_sm;
  const std::int64_t bytes = static_cast<std::int64_t>(ctas) * kUnitsPerCta * kUnitBytes;
  unsigned char* buffer = nullptr;
  WEDLM_CUDA_CHECK(cudaMalloc(&buffer, static_cast<std::size_t>(bytes)));
  WEDLM_CUDA_CHECK(cudaMemset(buffer, 1, static_cast<std::size_t>(bytes)));
  const std::int64_t matrix_rows = bytes / (kColumns * 2);
  const CUtensorMap map =
      mode == 1 || mode == 2 ? bf16_tensor_map(buffer, bytes / 128, 64, 64, static_cast<unsigned>(box_rows))
                             : bf16_tensor_map(buffer, matrix_rows, kColumns, kColumns, static_cast<unsigned>(box_rows),
                                               static_cast<unsigned>(chunks));
  // Shared memory sized so that exactly per_sm CTAs fit a multiprocessor.
  const int ring = stages * box_rows * 128 * chunks + 1024;
  const int shared = std::max(ring, static_cast<int>(prop.sharedMemPerMultiprocessor) / per_sm - 2048);
  auto kernel = mode == 0   ? stream_kernel<0>
                : mode == 1 ? stream_kernel<1>
                : mode == 2 ? stream_kernel<2>
                : mode == 3 ? stream_kernel<3>
                            : stream_kernel<4>;
  WEDLM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, shared));
  cudaEvent_t start, stop;
  WEDLM_CUDA_CHECK(cudaEventCreate(&start));
  WEDLM_CUDA_CHECK(cudaEventCreate(&stop));
  kernel<<<ctas, 64, shared>>>(map, buffer, box_rows, stages, issuers);
  WEDLM_CUDA_CHECK(cudaGetLastError());
  for (auto _ : state) {
    WEDLM_CUDA_CHECK(cudaEventRecord(start));
    kernel<<<ctas, 64, shared>>>(map, buffer, box_rows, stages, issuers);
    WEDLM_CUDA_CHECK(cudaEventRecord(stop));
    WEDLM_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    WEDLM_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    state.SetIterationTime(ms / 1e3);
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(bytes), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GB/s/SM"] = benchmark::Counter(static_cast<double>(bytes) / prop.multiProcessorCount,
                                                 benchmark::Counter::kIsIterationInvariantRate);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaFree(buffer);
}

void Shapes(benchmark::internal::Benchmark* b) {
  // {mode, box rows, stages}: 4 KB and 8 KB 2D boxes, 2 KB and 4 KB 1D copies, 8-32 KB chunked.
  const int shapes[][3] = {{0, 32, 8}, {0, 64, 8}, {1, 16, 8}, {1, 32, 8}, {3, 32, 8},
                           {3, 64, 6}, {4, 32, 6}, {4, 64, 3}};
  for (int per_sm : {1, 2}) {
    for (const auto& shape : shapes) {
      for (int issuers : {1, 4}) {
        const int chunks = shape[0] == 3 ? 2 : shape[0] == 4 ? 4 : 1;
        if (shape[2] * shape[1] * 128 * chunks + 1024 > 220 * 1024 / per_sm || issuers > shape[2]) continue;
        b->Args({shape[0], shape[1], shape[2], per_sm, issuers});
      }
    }
  }
}
BENCHMARK(BM_TmaStream)->Apply(Shapes)->UseManualTime()->Iterations(20)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
