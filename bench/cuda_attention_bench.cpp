// GPU time of the decode attention kernels alone (Google Benchmark, manual time from CUDA
// events): the 8B model's shape (32 heads, 8 KV heads, head_dim 128, cache blocks of 16 slots)
// for a step of `rows` rows after `context` cached keys, one sequence. Each iteration launches
// the step's kernels 20 times back to back (no programmatic overlap with anything else), so the
// numbers are what a kernel costs in a replayed graph less the overlap with its neighbours.
//   part 0: tiles + combine, 1: the tiles kernel, 2: the combine kernel
//   kernel 0: register-tiled (mma.sync), 1: warpgroup MMA where the plan takes it
// Kernel variants chosen by environment variables (WEDLM_CUDA_WGMMA_OVERLAP, WEDLM_CUDA_COMBINE,
// WEDLM_CUDA_ATTN_MAX_SPLITS, WEDLM_CUDA_ATTN_CLUSTER) apply to the whole process.
#include <benchmark/benchmark.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "backend/cuda/attention.h"
#include "backend/cuda/attention_mma.h"
#include "backend/cuda/attention_plan.h"
#include "backend/cuda/attention_wgmma.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/sm90a.h"

namespace {

using wedlm::cuda::AttentionArgs;
using wedlm::cuda::AttentionPlan;


void* device_random_bf16(std::size_t n, std::uint32_t seed) {
  std::vector<__nv_bfloat16> host(n);
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (auto& v : host) v = __float2bfloat16(dist(rng));
  void* d = nullptr;
  WEDLM_CUDA_CHECK(cudaMalloc(&d, n * sizeof(__nv_bfloat16)));
  WEDLM_CUDA_CHECK(cudaMemcpy(d, host.data(), n * sizeof(__nv_bfloat16), cudaMemcpyHostToDevice));
  return d;
}

void BM_DecodeAttention(benchmark::State& state) {
  const std::int64_t rows = state.range(0), context = state.range(1);
  const int part = static_cast<int>(state.range(2));
  const bool wgmma = state.range(3) != 0;
  int device_count = 0;
  if (cudaGetDeviceCount(&device_count) != cudaSuccess || device_count == 0) {
    state.SkipWithError("no CUDA device");
    return;
  }
  cudaDeviceProp prop{};
  WEDLM_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  if (wgmma && !wedlm::cuda::sm90a_kernels_run()) {
    state.SkipWithError("the warpgroup-MMA kernel does not run here");
    return;
  }
  const wedlm::AttentionShape shape{32, 8, 128};
  const std::int64_t block_size = 16, qkv_cols = (32 + 2 * 8) * 128;
  const std::int64_t blocks = (context + rows + block_size - 1) / block_size;
  wedlm::KvCacheShape cache;
  cache.num_layers = 1;
  cache.num_kv_heads = 8;
  cache.head_dim = 128;
  cache.block_size = block_size;
  cache.num_blocks = blocks;
  std::vector<std::int32_t> table(static_cast<std::size_t>(blocks));
  for (std::int64_t b = 0; b < blocks; ++b) table[static_cast<std::size_t>(b)] = static_cast<std::int32_t>(b);
  const std::vector<wedlm::AttentionSequence> sequences = {{0, rows, context, table}};
  const wedlm::cuda::WgmmaAttention capacity{wedlm::cuda::attention_wgmma_cluster_capacity(64),
                                             wedlm::cuda::attention_wgmma_cluster_capacity(128)};
  const AttentionPlan plan = wedlm::cuda::plan_attention(sequences, rows, shape, cache, prop.multiProcessorCount,
                                                         wedlm::cuda::attention_cluster_capacity(128),
                                                         wgmma ? &capacity : nullptr);

  const std::size_t cache_elements = static_cast<std::size_t>(blocks * 8 * block_size * 128);
  void* qkv = device_random_bf16(static_cast<std::size_t>(rows * qkv_cols), 1);
  void* k_cache = device_random_bf16(cache_elements, 2);
  void* v_cache = device_random_bf16(cache_elements, 3);
  void *packed = nullptr, *out = nullptr, *partial_o = nullptr, *partial_ml = nullptr;
  WEDLM_CUDA_CHECK(cudaMalloc(&packed, plan.packed.size() * sizeof(std::int32_t)));
  WEDLM_CUDA_CHECK(cudaMemcpy(packed, plan.packed.data(), plan.packed.size() * sizeof(std::int32_t), cudaMemcpyHostToDevice));
  WEDLM_CUDA_CHECK(cudaMalloc(&out, static_cast<std::size_t>(rows * 32 * 128) * sizeof(__nv_bfloat16)));
  const std::size_t slots = static_cast<std::size_t>(std::max(plan.partial_slots, 1) * plan.m_tile);
  WEDLM_CUDA_CHECK(cudaMalloc(&partial_o, slots * 128 * sizeof(float)));
  WEDLM_CUDA_CHECK(cudaMalloc(&partial_ml, slots * 2 * sizeof(float)));

  const auto* p = static_cast<const std::int32_t*>(packed);
  AttentionArgs a;
  a.qkv = static_cast<const wedlm::cuda::bf16*>(qkv);
  a.qkv_stride = qkv_cols;
  a.k_cache = static_cast<const wedlm::cuda::bf16*>(k_cache);
  a.v_cache = static_cast<const wedlm::cuda::bf16*>(v_cache);
  a.cache_rows = blocks * 8 * block_size;
  a.num_heads = 32;
  a.num_kv_heads = 8;
  a.head_dim = 128;
  a.block_size = static_cast<int>(block_size);
  a.sequences = reinterpret_cast<const wedlm::cuda::AttnSequence*>(p + plan.sequences_at);
  a.tables = p + plan.tables_at;
  a.work = reinterpret_cast<const wedlm::cuda::AttnWork*>(p + plan.work_at);
  a.work_count = plan.work_count;
  a.combine = reinterpret_cast<const wedlm::cuda::AttnCombine*>(p + plan.combine_at);
  a.combine_count = plan.combine_count;
  a.combine_units = plan.combine_units;
  a.partial_o = static_cast<float*>(partial_o);
  a.partial_ml = static_cast<float*>(partial_ml);
  a.out = static_cast<wedlm::cuda::bf16*>(out);
  a.out_stride = 32 * 128;
  a.m_tile = plan.m_tile;
  a.cluster = plan.cluster;
  a.wgmma = plan.wgmma;

  cudaStream_t stream = nullptr;
  WEDLM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaEvent_t start = nullptr, stop = nullptr;
  WEDLM_CUDA_CHECK(cudaEventCreate(&start));
  WEDLM_CUDA_CHECK(cudaEventCreate(&stop));
  constexpr int kLaunches = 20;
  auto launch = [&] {
    if (part != 2) wedlm::cuda::launch_attention_tiles(a, stream);
    if (part != 1) wedlm::cuda::launch_attention_combine(a, stream);
  };
  launch();  // configures the kernels
  WEDLM_CUDA_CHECK(cudaStreamSynchronize(stream));
  for (auto _ : state) {
    WEDLM_CUDA_CHECK(cudaEventRecord(start, stream));
    for (int i = 0; i < kLaunches; ++i) launch();
    WEDLM_CUDA_CHECK(cudaEventRecord(stop, stream));
    WEDLM_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    WEDLM_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    state.SetIterationTime(ms / 1e3 / kLaunches);
  }
  // One more launch with clock stamps (WEDLM_ATTN_TRACE=1, warpgroup-MMA kernel): where a CTA's
  // time goes, in thousands of cycles from its start (min / median / max over the CTAs).
  const char* trace_env = std::getenv("WEDLM_ATTN_TRACE");
  if (plan.wgmma && part == 1 && trace_env != nullptr && *trace_env == '1') {
    const std::size_t n = static_cast<std::size_t>(plan.work_count) * wedlm::cuda::kAttentionTraceSlots;
    void* trace = nullptr;
    WEDLM_CUDA_CHECK(cudaMalloc(&trace, n * sizeof(unsigned long long)));
    WEDLM_CUDA_CHECK(cudaMemset(trace, 0, n * sizeof(unsigned long long)));
    a.trace = static_cast<unsigned long long*>(trace);
    wedlm::cuda::launch_attention_tiles(a, stream);
    WEDLM_CUDA_CHECK(cudaStreamSynchronize(stream));
    a.trace = nullptr;
    std::vector<unsigned long long> host(n);
    WEDLM_CUDA_CHECK(cudaMemcpy(host.data(), trace, n * sizeof(unsigned long long), cudaMemcpyDeviceToHost));
    cudaFree(trace);
    const char* names[] = {"start", "q ready", "tile 0", "tile 1", "tile 2", "tile 3", "tile 4", "tile 5",
                           "tile 6", "tile 7", "loop done", "written", "first copy", "last copy"};
    std::fprintf(stderr, "trace rows %ld context %ld (%d CTAs), kcycles from each CTA's start:\n", static_cast<long>(rows),
                 static_cast<long>(context), plan.work_count);
    for (int slot = 1; slot < 14; ++slot) {
      std::vector<double> v;
      for (int c = 0; c < plan.work_count; ++c) {
        const unsigned long long* t = host.data() + static_cast<std::size_t>(c) * wedlm::cuda::kAttentionTraceSlots;
        if (t[slot] != 0) v.push_back(static_cast<double>(t[slot] - t[0]) / 1e3);
      }
      if (v.empty()) continue;
      std::sort(v.begin(), v.end());
      std::fprintf(stderr, "  %-10s %8.2f %8.2f %8.2f\n", names[slot], v.front(), v[v.size() / 2], v.back());
    }
    unsigned long long first = ~0ull, last = 0;
    for (int c = 0; c < plan.work_count; ++c) {
      const unsigned long long g = host[static_cast<std::size_t>(c) * wedlm::cuda::kAttentionTraceSlots + 15];
      first = std::min(first, g);
      last = std::max(last, g);
    }
    std::fprintf(stderr, "  CTA starts spread over %.2f us\n", static_cast<double>(last - first) / 1e3);
  }
  state.counters["ctas"] = plan.work_count;
  state.counters["cluster"] = plan.cluster;
  state.counters["m_tile"] = plan.m_tile;
  state.counters["wgmma"] = plan.wgmma ? 1 : 0;
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaStreamDestroy(stream);
  for (void* ptr : {qkv, k_cache, v_cache, packed, out, partial_o, partial_ml}) cudaFree(ptr);
}

BENCHMARK(BM_DecodeAttention)
    ->ArgNames({"rows", "context", "part", "wgmma"})
    ->ArgsProduct({{16, 32}, {512, 4096}, {0, 1, 2}, {0, 1}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
