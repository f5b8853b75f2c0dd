#pragma once
// L2 eviction priority on loads (sm_80+). A decode step's plan (work items, sequences, block
// tables) is a few KB read by every layer's attention, but the GEMMs between two layers stream
// hundreds of MB through the L2: loaded plainly, every layer's attention CTA starts with a chain
// of dependent DRAM misses (work item, then sequence, then block table, then K/V).
#include <cstdint>

namespace wedlm::cuda {

__device__ __forceinline__ std::uint64_t l2_evict_last_policy() {
  std::uint64_t policy = 0;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;" : "=l"(policy));
#endif
  return policy;
}

// *p, its lines kept in the L2 ahead of ordinary data.
__device__ __forceinline__ std::int32_t load_kept(const std::int32_t* p, std::uint64_t policy) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  std::int32_t v;
  asm volatile("ld.global.L2::cache_hint.b32 %0, [%1], %2;" : "=r"(v) : "l"(p), "l"(policy));
  return v;
#else
  (void)policy;
  return *p;
#endif
}

// A struct of int32 fields, each loaded as load_kept (all issued before any is used).
template <typename T>
__device__ __forceinline__ T load_kept(const T* p, std::uint64_t policy) {
  static_assert(sizeof(T) % sizeof(std::int32_t) == 0);
  T out;
  auto* words = reinterpret_cast<std::int32_t*>(&out);
  const auto* src = reinterpret_cast<const std::int32_t*>(p);
#pragma unroll
  for (unsigned i = 0; i < sizeof(T) / sizeof(std::int32_t); ++i) words[i] = load_kept(src + i, policy);
  return out;
}

}  // namespace wedlm::cuda
