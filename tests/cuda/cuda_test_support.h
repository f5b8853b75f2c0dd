#pragma once
// Shared helpers for the CUDA tests: skipping without a device, and moving host data in and out
// of either backend through the Backend interface alone.
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "util/dtype.h"

#define WEDLM_REQUIRE_CUDA_DEVICE() \
  do {                               \
    if (!::wedlm::cuda_device_available()) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

namespace wedlm::test {

// Random values that bf16 represents exactly, so both backends start from identical inputs.
inline std::vector<std::uint16_t> random_bf16(std::size_t n, std::uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<std::uint16_t> v(n);
  for (auto& x : v) x = float_to_bf16(dist(rng));
  return v;
}

inline TensorInfo bf16_tensor(const std::string& name, std::vector<std::uint16_t>& data, std::int64_t rows,
                              std::int64_t cols) {
  TensorInfo t;
  t.name = name;
  t.dtype_name = "BF16";
  t.dtype = DType::BF16;
  t.shape = {rows, cols};
  t.data = reinterpret_cast<const std::uint8_t*>(data.data());
  t.bytes = data.size() * 2;
  return t;
}

// Places the rows of `table` (rows x cols, bf16) into a fresh device matrix via `embed`.
struct DeviceInput {
  std::unique_ptr<LinearWeight> table;
  std::unique_ptr<DeviceBuffer> buffer;
  DeviceMatrix matrix;
};

inline DeviceInput upload_rows(Backend& backend, TensorInfo& table, std::int64_t rows, std::int64_t cols) {
  DeviceInput in;
  const TensorInfo* parts[] = {&table};
  in.table = backend.make_linear(parts, {});
  in.buffer = backend.alloc(rows, cols);
  in.matrix = in.buffer->view(rows, cols);
  std::vector<std::int32_t> ids(static_cast<std::size_t>(rows));
  for (std::int64_t i = 0; i < rows; ++i) ids[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i);
  backend.embed(*in.table, ids, in.matrix);
  return in;
}

struct Errors {
  double rel_l2 = 0;  // ||got - ref|| / ||ref||
  double max_abs = 0;
  double max_ref = 0;  // max |ref|
};

inline Errors compare(const std::vector<float>& got, const std::vector<float>& ref) {
  Errors e;
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double d = static_cast<double>(got[i]) - ref[i];
    if (!std::isfinite(got[i])) return {INFINITY, INFINITY, 0};
    diff += d * d;
    norm += static_cast<double>(ref[i]) * ref[i];
    e.max_abs = std::max(e.max_abs, std::fabs(d));
    e.max_ref = std::max(e.max_ref, std::fabs(static_cast<double>(ref[i])));
  }
  e.rel_l2 = std::sqrt(diff / norm);
  return e;
}

}  // namespace wedlm::test
