#include "backend/cuda/gemm_pipe.h"

#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/mma_fragments.cuh"
#include "backend/cuda/pdl.h"

namespace wedlm::cuda {

namespace {

// A tile shape: WARPS warps of 16 output features each, k staged CHUNK at a time, STAGES deep.
template <int WARPS, int CHUNK, int STAGES>
struct Shape {
  static constexpr int kWarps = WARPS, kThreads = WARPS * 32, kFeatures = WARPS * 16, kChunk = CHUNK, kStages = STAGES;
  // Row pitch of a staged chunk: 16 bytes past a multiple of 128, so that the 8 rows an ldmatrix
  // reads hit distinct banks.
  static constexpr int kLd = CHUNK + 8;
  static constexpr int kStageElems = (kFeatures + static_cast<int>(kPipeMaxRows)) * kLd;
  static constexpr int kSmemBytes = STAGES * kStageElems * 2;
  // Staging: a thread copies 16-byte column (tid % kVecs) of rows tid / kVecs + kRowStep q.
  static constexpr int kVecs = CHUNK / 8, kRowStep = kThreads / kVecs;
  static_assert(kFeatures % kRowStep == 0 && kFeatures <= kPipeMaxFeatures);
};

__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], unsigned addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// Iterations: tile-major (tile * chunks + chunk). Block b owns [b * I / G, (b + 1) * I / G).
struct Split {
  std::int64_t iterations, grid;
  int chunks;
  __device__ std::int64_t start(std::int64_t block) const { return block * iterations / grid; }
  // The block whose range holds iteration `it`.
  __device__ std::int64_t owner(std::int64_t it) const { return ((it + 1) * grid - 1) / iterations; }
  // A block's partial slot for tile `tile`: 2b for the tile it starts in, 2b + 1 for the one it ends in.
  __device__ std::int64_t slot(std::int64_t block, std::int64_t tile) const {
    return 2 * block + (start(block) / chunks == tile ? 0 : 1);
  }
};

// The tile's weight row r is output feature feature(tile, r): F consecutive features, or with
// SILU F / 2 gate features and the matching F / 2 up features (rows F / 2 ..).
template <int F, bool SILU>
__device__ __forceinline__ std::int64_t feature(const GemmArgs& g, std::int64_t tile, int r) {
  if constexpr (SILU) return (r < F / 2 ? 0 : g.n / 2 - F / 2) + tile * (F / 2) + r;
  return tile * F + r;
}

// A warp's accumulators in a partial slot: [warp][tile j][element e][lane], coalesced.
template <int TILES>
__device__ __forceinline__ float* slot_values(const GemmArgs& g, std::int64_t slot) {
  return g.split_partials + slot * kPipeSlotFloats + static_cast<std::int64_t>(threadIdx.x / 32) * TILES * 4 * 32 +
         threadIdx.x % 32;
}

template <int WARPS, int TILES, bool SILU>
__device__ __forceinline__ void store_tile(const GemmArgs& g, const float (&acc)[TILES][4], std::int64_t tile) {
  constexpr int kHalf = WARPS / 2;
  const int warp = threadIdx.x / 32;
  const std::int64_t o0 = feature<WARPS * 16, SILU>(g, tile, warp * 16);
  if constexpr (SILU) {
    __shared__ float up[kHalf][TILES][32][4];
    if (warp >= kHalf) stash_fragments<TILES>(g, acc, o0, up[warp - kHalf]);
    __syncthreads();
    if (warp < kHalf) store_fragments<TILES>(g, acc, o0, up[warp]);
    __syncthreads();  // `up` is free for the next tile
  } else {
    store_fragments<TILES>(g, acc, o0, nullptr);
  }
}

template <typename S, int TILES, bool SILU>
__global__ void __launch_bounds__(S::kThreads) gemm_pipe_kernel(GemmArgs g) {
  pdl_launch_dependents();
  constexpr int kFeatures = S::kFeatures, kLd = S::kLd, kStages = S::kStages, kStageElems = S::kStageElems;
  constexpr int kChunk = S::kChunk, kRowStep = S::kRowStep;
  extern __shared__ __align__(128) unsigned char smem_raw[];
  bf16* smem = reinterpret_cast<bf16*>(smem_raw);
  constexpr int kRows = TILES * 8;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int chunks = static_cast<int>(g.k / kChunk);
  const Split split{g.n / kFeatures * chunks, gridDim.x, chunks};
  const int begin = static_cast<int>(split.start(blockIdx.x)), end = static_cast<int>(split.start(blockIdx.x + 1));

  // Staging (Shape): positions advance by addition, not division.
  const int row0 = tid / S::kVecs, col = (tid % S::kVecs) * 8;
  int w_left = end - begin, w_tile = begin / chunks, w_chunk = begin % chunks, w_stage = 0;
  const bf16* w_src[kFeatures / kRowStep];
  auto point_w = [&] {
#pragma unroll
    for (int q = 0; q < kFeatures / kRowStep; ++q) {
      w_src[q] = g.w + feature<kFeatures, SILU>(g, w_tile, row0 + kRowStep * q) * g.k +
                 static_cast<std::int64_t>(w_chunk) * kChunk + col;
    }
  };
  point_w();
  auto stage_w = [&] {
    if (w_left == 0) return;
    bf16* dst = smem + w_stage * kStageElems + row0 * kLd + col;
#pragma unroll
    for (int q = 0; q < kFeatures / kRowStep; ++q) {
      cp_async16(dst + kRowStep * q * kLd, w_src[q], true);
      w_src[q] += kChunk;
    }
    --w_left;
    w_stage = w_stage == kStages - 1 ? 0 : w_stage + 1;
    if (++w_chunk == chunks) {
      w_chunk = 0;
      ++w_tile;
      if (w_left > 0) point_w();
    }
  };
  int x_left = end - begin, x_chunk = begin % chunks, x_stage = 0;
  auto stage_x = [&] {
    if (x_left == 0) return;
    bf16* dst = smem + x_stage * kStageElems + (kFeatures + row0) * kLd + col;
#pragma unroll
    for (int q = 0; q < (kRows + kRowStep - 1) / kRowStep; ++q) {
      const int r = row0 + kRowStep * q;
      if (kRows % kRowStep != 0 && r >= kRows) break;
      const bool valid = r < g.rows;
      cp_async16(dst + kRowStep * q * kLd, valid ? g.x + r * g.ldx + x_chunk * kChunk + col : g.x, valid);
    }
    --x_left;
    x_stage = x_stage == kStages - 1 ? 0 : x_stage + 1;
    x_chunk = x_chunk == chunks - 1 ? 0 : x_chunk + 1;
  };
  auto commit = [] { asm volatile("cp.async.commit_group;\n" ::); };  // empty groups keep counts uniform

  // Weights depend on no kernel: their first stages are in flight before pdl_wait().
  for (int s = 0; s < kStages - 1; ++s) {
    stage_w();
    commit();
  }
  pdl_wait();
  for (int s = 0; s < kStages - 1; ++s) {
    stage_x();
    commit();
  }

  // ldmatrix row addresses of this lane: W (features 0-7 | 8-15 of the warp x k 0-7 | 8-15) and
  // x (rows 0-7 x k 0-7 | 8-15, then rows 8-15 likewise).
  const unsigned smem_base = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const unsigned w_lane = smem_base + static_cast<unsigned>(((warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kLd +
                                                             (lane >> 4) * 8) * 2);
  const unsigned x_lane = smem_base + static_cast<unsigned>(((kFeatures + (lane >> 4) * 8 + (lane & 7)) * kLd +
                                                             ((lane >> 3) & 1) * 8) * 2);
  __shared__ bool finisher;
  float acc[TILES][4];
#pragma unroll
  for (int j = 0; j < TILES; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
  int tile = begin / chunks, chunk = begin % chunks, stage_index = 0;
  for (int it = begin; it < end; ++it) {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(kStages - 2));
    __syncthreads();  // stage `it` is in shared memory; every warp is done with stage it - 1
    stage_w();  // iteration it + kStages - 1, into stage it - 1's buffer
    stage_x();
    commit();
    const unsigned stage = static_cast<unsigned>(stage_index * kStageElems * 2);
    stage_index = stage_index == kStages - 1 ? 0 : stage_index + 1;
#pragma unroll
    for (int ks = 0; ks < kChunk / 16; ++ks) {
      unsigned a[4];
      ldmatrix_x4(a, w_lane + stage + ks * 32);
#pragma unroll
      for (int jp = 0; jp < TILES / 2; ++jp) {
        unsigned b[4];
        ldmatrix_x4(b, x_lane + stage + static_cast<unsigned>(jp * 16 * kLd * 2 + ks * 32));
        mma16816(acc[2 * jp], a[0], a[1], a[2], a[3], b[0], b[1]);
        mma16816(acc[2 * jp + 1], a[0], a[1], a[2], a[3], b[2], b[3]);
      }
    }
    const bool tile_done = chunk == chunks - 1;
    if (tile_done) {
      chunk = 0;
      ++tile;
    } else {
      ++chunk;
    }
    if (!tile_done && it != end - 1) continue;
    const std::int64_t done_tile = tile_done ? tile - 1 : tile;

    // This block's part of `tile` is summed.
    const std::int64_t first = done_tile * chunks, last = first + chunks - 1;
    if (first >= begin && last < end) {
      store_tile<S::kWarps, TILES, SILU>(g, acc, done_tile);
    } else {
      float* mine = slot_values<TILES>(g, split.slot(blockIdx.x, done_tile));
#pragma unroll
      for (int j = 0; j < TILES; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) mine[(j * 4 + e) * 32] = acc[j][e];
      }
      __threadfence();  // the partial is visible before the ticket says so
      __syncthreads();
      const std::int64_t owner_first = split.owner(first), owner_last = split.owner(last);
      if (tid == 0) {
        const int arrived = atomicAdd(&g.split_tickets[done_tile], 1);
        finisher = arrived == owner_last - owner_first;
      }
      __syncthreads();
      if (finisher) {
        __threadfence();
#pragma unroll
        for (int j = 0; j < TILES; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
        // In k order, whoever finishes: the sums do not depend on which block arrived last.
        for (std::int64_t b = owner_first; b <= owner_last; ++b) {
          const float* part = slot_values<TILES>(g, split.slot(b, done_tile));
#pragma unroll
          for (int j = 0; j < TILES; ++j) {
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[j][e] += __ldcg(part + (j * 4 + e) * 32);
          }
        }
        if (tid == 0) g.split_tickets[done_tile] = 0;  // every contributor has arrived: ready for the next launch
        store_tile<S::kWarps, TILES, SILU>(g, acc, done_tile);
      }
    }
#pragma unroll
    for (int j = 0; j < TILES; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
  }
  asm volatile("cp.async.wait_group 0;\n" ::);
}

template <typename S, int TILES, bool SILU>
int resident_blocks() {
  static const int blocks = [] {
    auto* kernel = gemm_pipe_kernel<S, TILES, SILU>;
    WEDLM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, S::kSmemBytes));
    int per_sm = 0, device = 0, sms = 0;
    WEDLM_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, S::kThreads, S::kSmemBytes));
    WEDLM_CUDA_CHECK(cudaGetDevice(&device));
    WEDLM_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    return (per_sm > 0 ? per_sm : 1) * sms;
  }();
  return blocks;
}

template <typename S, int TILES, bool SILU>
void launch_tiles(const GemmArgs& g, cudaStream_t stream) {
  const std::int64_t iterations = g.n / S::kFeatures * (g.k / S::kChunk);
  std::int64_t grid = resident_blocks<S, TILES, SILU>();
  if (grid > iterations) grid = iterations;
  if (2 * grid > g.split_slots) grid = g.split_slots / 2;
  launch(gemm_pipe_kernel<S, TILES, SILU>, static_cast<unsigned>(grid), S::kThreads, S::kSmemBytes, stream, g);
}

template <typename S>
void launch_shape(const GemmArgs& g, cudaStream_t stream) {
  const bool large = g.rows > 16;
  if (g.silu_mul) {
    large ? launch_tiles<S, 4, true>(g, stream) : launch_tiles<S, 2, true>(g, stream);
  } else {
    large ? launch_tiles<S, 4, false>(g, stream) : launch_tiles<S, 2, false>(g, stream);
  }
}

// The shapes the tuner chooses between (kPipeShapes).
using Shape0 = Shape<4, 64, 5>;
using Shape1 = Shape<4, 128, 4>;
using Shape2 = Shape<8, 64, 4>;

int shape_features(int shape) { return shape == 2 ? Shape2::kFeatures : Shape0::kFeatures; }
int shape_chunk(int shape) { return shape == 1 ? Shape1::kChunk : Shape0::kChunk; }

bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

}  // namespace

std::int64_t pipe_slots_needed() {
  // Two slots a block; at most 4 blocks a multiprocessor for any shape (shared memory).
  int device = 0, sms = 0;
  WEDLM_CUDA_CHECK(cudaGetDevice(&device));
  WEDLM_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return 2 * 4 * static_cast<std::int64_t>(sms);
}

std::int64_t pipe_tickets_needed(std::int64_t n) { return n / 64; }

bool pipe_supported(const GemmArgs& g, int shape) {
  const int features = shape_features(shape), chunk = shape_chunk(shape);
  return g.rows >= 1 && g.rows <= kPipeMaxRows && g.n % features == 0 && g.k % chunk == 0 && g.ldx % 8 == 0 &&
         aligned16(g.x) && aligned16(g.w) && g.in_norm == nullptr && g.split_partials != nullptr &&
         g.split_slots >= 2 && g.split_tickets != nullptr && pipe_tickets_needed(g.n) <= g.split_tickets_count &&
         g.n / features * (g.k / chunk) < (std::int64_t{1} << 31);
}

void launch_pipe(const GemmArgs& g, int shape, cudaStream_t stream) {
  if (shape == 0) {
    launch_shape<Shape0>(g, stream);
  } else if (shape == 1) {
    launch_shape<Shape1>(g, stream);
  } else {
    launch_shape<Shape2>(g, stream);
  }
}

}  // namespace wedlm::cuda
