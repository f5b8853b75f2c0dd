// The vectorised matmul against a float64 loop, for every weight dtype and for row/column/k
// counts that exercise each tile size and the masked tails.
#include <random>

#include <gtest/gtest.h>

#include "backend/cpu/matmul.h"

namespace wedlm::cpu {
namespace {

struct Shape {
  std::int64_t rows, n, k;
};

class Matmul : public ::testing::TestWithParam<std::tuple<DType, Shape>> {};

TEST_P(Matmul, MatchesFloat64) {
  auto [dtype, shape] = GetParam();
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  const std::int64_t x_stride = shape.k + 3, out_stride = shape.n + 5;
  std::vector<float> x(static_cast<std::size_t>(shape.rows * x_stride)), bias(static_cast<std::size_t>(shape.n));
  for (auto& v : x) v = uni(rng);
  for (auto& v : bias) v = uni(rng);
  std::vector<std::uint8_t> w(static_cast<std::size_t>(shape.n * shape.k) * dtype_size(dtype));
  std::vector<double> w_exact(static_cast<std::size_t>(shape.n * shape.k));
  for (std::size_t i = 0; i < w_exact.size(); ++i) {
    float v = uni(rng);
    switch (dtype) {
      case DType::F32: reinterpret_cast<float*>(w.data())[i] = v; break;
      case DType::BF16: reinterpret_cast<std::uint16_t*>(w.data())[i] = float_to_bf16(v); break;
      case DType::F16: reinterpret_cast<std::uint16_t*>(w.data())[i] = float_to_f16(v); break;
    }
    w_exact[i] = load_as_float(w.data(), dtype, i);
  }
  std::vector<float> out(static_cast<std::size_t>(shape.rows * out_stride), -12345.0f);
  MatmulArgs a;
  a.x = x.data();
  a.x_stride = x_stride;
  a.w = w.data();
  a.w_dtype = dtype;
  a.bias = bias.data();
  a.out = out.data();
  a.out_stride = out_stride;
  a.rows = shape.rows;
  a.n = shape.n;
  a.k = shape.k;
  matmul(a);
  for (std::int64_t m = 0; m < shape.rows; ++m) {
    for (std::int64_t n = 0; n < shape.n; ++n) {
      double ref = bias[static_cast<std::size_t>(n)];
      for (std::int64_t k = 0; k < shape.k; ++k) {
        ref += static_cast<double>(x[static_cast<std::size_t>(m * x_stride + k)]) * w_exact[static_cast<std::size_t>(n * shape.k + k)];
      }
      ASSERT_NEAR(out[static_cast<std::size_t>(m * out_stride + n)], ref, 1e-4 * (1 + std::sqrt(shape.k)))
          << "row " << m << " col " << n;
    }
    for (std::int64_t n = shape.n; n < out_stride; ++n) {
      ASSERT_EQ(out[static_cast<std::size_t>(m * out_stride + n)], -12345.0f) << "wrote outside the output";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, Matmul,
    ::testing::Combine(::testing::Values(DType::F32, DType::BF16, DType::F16),
                       ::testing::Values(Shape{1, 37, 16}, Shape{1, 64, 100}, Shape{3, 17, 33}, Shape{6, 40, 64},
                                         Shape{7, 9, 5}, Shape{13, 70, 130}, Shape{70, 21, 48})),
    [](const auto& info) {
      const Shape& s = std::get<1>(info.param);
      return std::string(dtype_name(std::get<0>(info.param))) + "_rows" + std::to_string(s.rows) + "_n" +
             std::to_string(s.n) + "_k" + std::to_string(s.k);
    });

}  // namespace
}  // namespace wedlm::cpu
