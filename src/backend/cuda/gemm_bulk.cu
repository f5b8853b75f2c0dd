#include "backend/cuda/gemm_bulk.h"

#include <cooperative_groups.h>
#include <cuda_bf16.h>

#include <cstdint>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemm_stage.cuh"
#include "backend/cuda/launch_tiers.h"
#include "backend/cuda/mma_sync.cuh"
#include "backend/cuda/pdl.h"
#include "backend/cuda/shared_staging.cuh"
#include "backend/cuda/sm90a.h"

namespace wedlm::cuda {

namespace {

// Variants 8-13 (WeDLM steps, <= 32 rows): 64 output features a block, weights and x staged in
// shared memory by the TMA engine (boxes 128-byte swizzled as ldmatrix and wgmma read them;
// nothing is held in registers while they are in flight) through a ring of 128-k stages, the
// first stages' weights loaded before pdl_wait(). A stage is two copies (16 KB of weights, x),
// five with the SiLU epilogue (its gate and up rows are apart), issued from as many producer lanes
// at once: a copy costs a thread ~150-300 ns whatever its size up to ~8 KB
// (bench/cuda_stream_bench.cu, one CTA a multiprocessor: 4 KB boxes from one lane 13 GB/s, from
// four 25 GB/s; 16 KB boxes from one lane 28 GB/s). Consumers: 4 or 8 warps with ldmatrix +
// mma.sync, three blocks a multiprocessor (3 stages: the 384 gate/up tiles run in one wave),
// or one warpgroup with wgmma reading both operands from the stage, one or two blocks a
// multiprocessor with a deeper ring (variants 12-13: one 6-stage block streams ~28 GB/s). k may be split 2 or 4 ways:
// the splits of a feature tile run as a thread block cluster and rank r adds up 1/splits of the
// tile's outputs over the ranks in rank order, so every run gives the same sums. H200 tuner
// times (after the tuner's spacer kernel: gemm.cpp), 32 rows, best TMA variant (cuBLASLt's best
// in brackets; NOTES.md "The eighth session"): o 8.0 (11.5), down 27.2 (29.0), gate_up 50.9
// (50.8, and the SiLU epilogue fused), qkv 15.3 (13.9).
constexpr int kBulkStages = 3;  // the mma.sync variants': three blocks a multiprocessor
template <int TILES, int STAGES = kBulkStages>
__host__ __device__ constexpr int bulk_shared_bytes() {
  return STAGES * bulk_stage_bytes<TILES>() + 1024;  // + alignment of the swizzled stages
}

// KGROUPS: 4 consumer warps (16 features each) per group; groups split a stage's k (more warps to
// hide the multiply's latency without more x traffic) and add their sums at the end.
// WGMMA: the 4 consumer warps (KGROUPS 1) multiply as one warpgroup (sm_90a). STAGES: the ring's
// depth (with 32 rows 3 stages let three blocks share a multiprocessor, 4 two, 6 one).
template <int TILES, int KGROUPS, bool SILU, bool CLUSTER, bool WGMMA, int STAGES>
__global__ void __launch_bounds__((4 * KGROUPS + 1) * 32) gemm_bulk_kernel(GemmArgs g, const __grid_constant__ CUtensorMap w_map,
                                                                 const __grid_constant__ CUtensorMap x_map) {
  pdl_launch_dependents();
  constexpr int kStages = STAGES;
  namespace cg = cooperative_groups;
  static_assert(TILES % 2 == 0, "x fragments are loaded for two 8-row tiles at once");
  constexpr int kRows = TILES * 8, kFeatures = 64, kOutputs = SILU ? kFeatures / 2 : kFeatures;
  constexpr int kConsumers = 4 * KGROUPS, kThreads = (kConsumers + 1) * 32;
  constexpr int kStage = bulk_stage_bytes<TILES>(), kXHalf = kRows * 128, kWeightBytes = kBulkWeightBytes;
  static_assert(kStages * kStage >= static_cast<int>(sizeof(float)) * kFeatures * kRows, "the sums fit");
  extern __shared__ unsigned char bulk_smem[];
  unsigned char* stages = align_1024(bulk_smem);
  __shared__ __align__(8) std::uint64_t full[kStages], empty[kStages];
  const int splits = CLUSTER ? static_cast<int>(cg::this_cluster().num_blocks()) : 1;
  const int rank = CLUSTER ? static_cast<int>(cg::this_cluster().block_rank()) : 0;
  const std::int64_t tile = blockIdx.x / splits;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int chunks = static_cast<int>(g.k / kBulkChunk) / splits, chunk0 = rank * chunks;
  const int rows = static_cast<int>(g.rows);
  const unsigned base = shared_address(stages);
  auto full_bar = [&](int s) { return shared_address(&full[s]); };
  auto empty_bar = [&](int s) { return shared_address(&empty[s]); };
  mbar_init_ring(full, empty, kStages, kConsumers);
  __syncthreads();

  float acc[TILES][4];
#pragma unroll
  for (int j = 0; j < TILES; ++j) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.0f;
  if (warp == kConsumers) {
    constexpr int kWeightCopies = stage_weight_copies<SILU>(), kCopies = kWeightCopies + 1;
    auto issue = [&](int c, int copy) {
      const unsigned stage = base + static_cast<unsigned>((c % kStages) * kStage);
      issue_stage_copy<SILU, TILES>(g, w_map, x_map, stage, full_bar(c % kStages), tile, (chunk0 + c) * kBulkChunk, copy);
    };
    // Weights depend on no earlier kernel: the first stages' are in flight before pdl_wait(). A
    // stage completes on its one arrival (made with x's bytes) and all its bytes.
    const int early = chunks < kStages ? chunks : kStages;
    if (lane < kWeightCopies * early) {
      if (lane % kWeightCopies == 0) mbar_expect_tx(full_bar(lane / kWeightCopies), kWeightBytes);
      issue(lane / kWeightCopies, lane % kWeightCopies);
    }
    pdl_wait();
    if (lane < early) {
      mbar_arrive_expect_tx(full_bar(lane), 2 * kXHalf);
      issue(lane, kWeightCopies);
    }
    for (int c = early; c < chunks; ++c) {
      const int s = c % kStages;
      if (lane == 0) {
        mbar_wait(empty_bar(s), static_cast<unsigned>((c / kStages - 1) & 1));
        mbar_arrive_expect_tx(full_bar(s), kWeightBytes + 2 * kXHalf);
      }
      __syncwarp();
      if (lane < kCopies) issue(c, lane);
    }
  } else if constexpr (WGMMA) {
#ifdef WEDLM_WGMMA_DEVICE
    // One warpgroup: D (64 local features x the rows) += W (64 x 16, stage) x^T (x: rows x 16,
    // stage) per 16-k step; D's registers are acc's (wgmma.cuh).
    static_assert(KGROUPS == 1, "one consumer warpgroup");
    float(&d)[TILES * 4] = reinterpret_cast<float(&)[TILES * 4]>(acc);
    for (int c = 0; c < chunks; ++c) {
      const int s = c % kStages;
      mbar_wait(full_bar(s), static_cast<unsigned>((c / kStages) & 1));
      multiply_stage<TILES>(d, base + static_cast<unsigned>(s * kStage));
      __syncwarp();
      if (lane == 0) mbar_arrive(empty_bar(s));
    }
#else
    __trap();  // built without sm_90a: sm90a_kernels_run() is false and gemm_bulk_supported() refuses it
#endif
  } else {
    // Consumers: warp w multiplies local weight rows (w % 4) * 16 .. + 15 by every x row, over
    // its group's share of each stage's k.
    constexpr int kSteps = kBulkChunk / 16 / KGROUPS;
    const int group = warp / 4;
    const int a_row = (warp % 4) * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, a_chunk = lane >> 4;
    const int b_row = (lane >> 4) * 8 + (lane & 7), b_chunk = (lane >> 3) & 1;
    for (int c = 0; c < chunks; ++c) {
      const int s = c % kStages;
      mbar_wait(full_bar(s), static_cast<unsigned>((c / kStages) & 1));
      const unsigned stage = base + static_cast<unsigned>(s * kStage);
#pragma unroll
      for (int q = 0; q < kSteps; ++q) {
        const int ks = group * kSteps + q, h = ks / 4, c0 = (ks % 4) * 2;
        unsigned a[4];
        ldmatrix_x4(a, stage + h * (kWeightBytes / 2) + swizzled(a_row, c0 + a_chunk));
#pragma unroll
        for (int j = 0; j < TILES; j += 2) {
          unsigned b[4];
          ldmatrix_x4(b, stage + kWeightBytes + h * kXHalf + swizzled(j * 8 + b_row, c0 + b_chunk));
          mma16816(acc[j], a[0], a[1], a[2], a[3], b[0], b[1]);
          mma16816(acc[j + 1], a[0], a[1], a[2], a[3], b[2], b[3]);
        }
      }
      __syncwarp();
      if (lane == 0) mbar_arrive(empty_bar(s));
    }
  }
  pdl_wait();  // (long done by now) before this thread's first write
  __syncthreads();  // every stage consumed: the stage memory takes the sums
  // Sums by local feature (warp * 16 + fragment row; SILU: gate f, its up f + 32) x row.
  float* sums = reinterpret_cast<float*>(stages);
  const int gi = lane / 4, t = lane % 4;
  auto sum_index = [&](int j, int e) { return ((warp % 4) * 16 + gi + (e >= 2 ? 8 : 0)) * kRows + j * 8 + 2 * t + (e & 1); };
  if (warp < 4) {
#pragma unroll
    for (int j = 0; j < TILES; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) sums[sum_index(j, e)] = acc[j][e];
    }
  }
  if constexpr (KGROUPS == 2) {
    __syncthreads();
    if (warp >= 4 && warp < 8) {
#pragma unroll
      for (int j = 0; j < TILES; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) sums[sum_index(j, e)] += acc[j][e];
      }
    }
  }
  if constexpr (CLUSTER) {
    cg::this_cluster().sync();
  } else {
    __syncthreads();
  }
  // A thread takes 4 consecutive rows of one feature: a 16-byte load from every rank, all issued
  // before the first is added (a distributed shared memory load answers ~1k cycles late; one
  // scalar load after another made this merge a large part of a short GEMM). Ranks are added in
  // rank order, so every run gives the same sums.
  constexpr int kMaxSplits = 4;
  const int per = kOutputs / splits;
  for (int i = static_cast<int>(threadIdx.x); i < per * (kRows / 4); i += kThreads) {
    const int f = rank * per + i % per, r0 = (i / per) * 4;
    if (r0 >= rows) continue;
    float4 part[kMaxSplits], part_up[kMaxSplits];
#pragma unroll
    for (int k = 0; k < kMaxSplits; ++k) {
      if (k < splits) {
        const float* other = CLUSTER ? cg::this_cluster().map_shared_rank(sums, k) : sums;
        part[k] = *reinterpret_cast<const float4*>(other + f * kRows + r0);
        if constexpr (SILU) part_up[k] = *reinterpret_cast<const float4*>(other + (f + kOutputs) * kRows + r0);
      }
    }
    float v[4] = {0.0f, 0.0f, 0.0f, 0.0f}, up[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int k = 0; k < kMaxSplits; ++k) {
      if (k < splits) {
        v[0] += part[k].x;
        v[1] += part[k].y;
        v[2] += part[k].z;
        v[3] += part[k].w;
        if constexpr (SILU) {
          up[0] += part_up[k].x;
          up[1] += part_up[k].y;
          up[2] += part_up[k].z;
          up[3] += part_up[k].w;
        }
      }
    }
    store_outputs<SILU>(g, tile, f, r0, rows, v, up);
  }
  if constexpr (CLUSTER) cg::this_cluster().sync();  // no block leaves while another reads its memory
}

// A bulk variant's shape: consumer warp groups, k splits (a cluster), warpgroup MMA, ring depth.
struct BulkShape {
  int kgroups = 1, splits = 1;
  bool wgmma = false;
  int stages = kBulkStages;
};

BulkShape shape_of(int variant) {
  switch (variant) {
    case 8: return {1, 1, false, 3};
    case 9: return {1, 2, false, 3};
    case 10: return {1, 4, false, 3};
    case 11: return {2, 2, false, 3};
    case 12: return {1, 2, true, 6};
    default: return {1, 2, true, 4};
  }
}

template <int TILES, int KGROUPS, bool SILU, bool CLUSTER, bool WGMMA, int STAGES>
void launch_bulk_tier(const GemmArgs& g, int splits, cudaStream_t stream) {
  auto kernel = gemm_bulk_kernel<TILES, KGROUPS, SILU, CLUSTER, WGMMA, STAGES>;
  constexpr int bytes = bulk_shared_bytes<TILES, STAGES>();
  static bool configured = false;
  if (!configured) {
    WEDLM_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    configured = true;
  }
  // Remembered: encoding costs the host microseconds, as much as some of these GEMMs take.
  const CUtensorMap w_map = stage_weight_map<SILU>(g);
  const CUtensorMap x_map = stage_x_map<TILES>(g);
  const unsigned blocks = static_cast<unsigned>(g.n / 64 * splits);
  launch_clustered(kernel, blocks, (4 * KGROUPS + 1) * 32, bytes, static_cast<unsigned>(splits), stream, g, w_map, x_map);
}

template <int KGROUPS, bool WGMMA, int STAGES = kBulkStages>
void launch_bulk_groups(const GemmArgs& g, int splits, cudaStream_t stream) {
  by_flag(g.silu_mul, [&](auto silu) {
    by_rows<16, 32>(g.rows, [&](auto r) {
      constexpr int kTiles = decltype(r)::value / 8;
      if (splits > 1) {
        launch_bulk_tier<kTiles, KGROUPS, decltype(silu)::value, true, WGMMA, STAGES>(g, splits, stream);
      } else {
        launch_bulk_tier<kTiles, KGROUPS, decltype(silu)::value, false, WGMMA, STAGES>(g, 1, stream);
      }
    });
  });
}

// Whether the TMA path exists (the driver has the encoder) and clusters of `splits` gemm_bulk
// blocks fit this GPU (a small partition may take none); asked once per size.
template <int KGROUPS>
bool gemm_bulk_fits(int splits) {
  if (!tensor_maps_available()) return false;
  if (splits == 1) return true;
  static int fits[2] = {-1, -1};  // clusters of 2, 4
  int& known = fits[splits == 2 ? 0 : 1];
  if (known < 0) {
    known = max_active_clusters(gemm_bulk_kernel<4, KGROUPS, false, true, false, kBulkStages>, (4 * KGROUPS + 1) * 32,
                                bulk_shared_bytes<4>(), static_cast<unsigned>(splits)) > 0
                ? 1
                : 0;
  }
  return known == 1;
}

}  // namespace

bool gemm_bulk_supported(const GemmArgs& g, int variant) {
  if (variant < kFirstBulkVariant || variant >= kFirstBulkVariant + kBulkVariants) return false;
  const BulkShape shape = shape_of(variant);
  if (shape.wgmma && !sm90a_kernels_run()) return false;
  return g.n % 64 == 0 && g.k % (kBulkChunk * shape.splits) == 0 &&
         (shape.kgroups == 1 ? gemm_bulk_fits<1>(shape.splits) : gemm_bulk_fits<2>(shape.splits));
}

void launch_gemm_bulk(const GemmArgs& g, int variant, cudaStream_t stream) {
  const BulkShape shape = shape_of(variant);
  if (shape.wgmma && shape.stages == 6) return launch_bulk_groups<1, true, 6>(g, shape.splits, stream);
  if (shape.wgmma) return launch_bulk_groups<1, true, 4>(g, shape.splits, stream);
  if (shape.kgroups == 1) return launch_bulk_groups<1, false>(g, shape.splits, stream);
  launch_bulk_groups<2, false>(g, shape.splits, stream);
}

}  // namespace wedlm::cuda
