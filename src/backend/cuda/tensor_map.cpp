#include "backend/cuda/tensor_map.h"

#include <cuda_runtime.h>

#include <map>
#include <mutex>
#include <tuple>

#include "util/error.h"

namespace wedlm::cuda {

namespace {

using EncodeTiled = decltype(&cuTensorMapEncodeTiled);

EncodeTiled encoder() {
  static const EncodeTiled encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult status{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &status) != cudaSuccess ||
        status != cudaDriverEntryPointSuccess) {
      (void)cudaGetLastError();
      fn = nullptr;
    }
    return reinterpret_cast<EncodeTiled>(fn);
  }();
  return encode;
}

}  // namespace

bool tensor_maps_available() { return encoder() != nullptr; }

CUtensorMap bf16_tensor_map(const void* data, std::int64_t rows, std::int64_t cols, std::int64_t stride,
                            unsigned box_rows, unsigned box_chunks) {
  if (!tensor_maps_available()) fail("internal: this CUDA driver cannot encode TMA tensor maps");
  if (box_chunks > 1 && cols % 64 != 0) {
    fail("internal: a {} x {} matrix cannot be read in 64-column chunks", rows, cols);
  }
  CUtensorMap map{};
  // 2D: [rows][cols]. Chunked: [cols / 64][rows][64], so that one box holds box_chunks
  // consecutive 64-column spans of box_rows rows, each span a 128-byte swizzled [rows][128 B].
  const cuuint64_t dims2[2] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows)};
  const cuuint64_t dims3[3] = {64, static_cast<cuuint64_t>(rows), static_cast<cuuint64_t>(cols / 64)};
  const cuuint64_t strides[2] = {static_cast<cuuint64_t>(stride) * 2, 128};
  const cuuint32_t box[3] = {64, box_rows, box_chunks}, element_strides[3] = {1, 1, 1};
  const bool chunked = box_chunks > 1;
  const CUresult r = encoder()(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, chunked ? 3 : 2, const_cast<void*>(data),
                               chunked ? dims3 : dims2, strides, box, element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                               CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                               CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    fail("cannot describe a {} x {} bf16 matrix (row stride {}) for the TMA engine (CUresult {})", rows, cols, stride,
         static_cast<int>(r));
  }
  return map;
}

CUtensorMap cached_bf16_tensor_map(const void* data, std::int64_t rows, std::int64_t cols, std::int64_t stride,
                                   unsigned box_rows, unsigned box_chunks) {
  using Key = std::tuple<const void*, std::int64_t, std::int64_t, std::int64_t, unsigned, unsigned>;
  static std::mutex mutex;
  static std::map<Key, CUtensorMap> maps;
  constexpr std::size_t kMaxMaps = 4096;  // a few KV caches of layers x {K, V}; then start over
  const Key key{data, rows, cols, stride, box_rows, box_chunks};
  std::lock_guard<std::mutex> lock(mutex);
  if (const auto found = maps.find(key); found != maps.end()) return found->second;
  if (maps.size() >= kMaxMaps) maps.clear();
  return maps.emplace(key, bf16_tensor_map(data, rows, cols, stride, box_rows, box_chunks)).first->second;
}

}  // namespace wedlm::cuda
