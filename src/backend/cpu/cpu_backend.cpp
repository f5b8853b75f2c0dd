#include "backend/cpu/cpu_backend.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <cmath>
#include <vector>

#include "backend/cpu/attention.h"
#include "backend/cpu/matmul.h"
#include "backend/cpu/parallel.h"
#include "decode/sampler.h"
#include "util/error.h"

namespace wedlm {

namespace {

struct CpuLinear : LinearWeight {
  struct Part {
    const void* data;
    DType dtype;
    std::int64_t rows;
  };
  std::vector<Part> parts;
  std::vector<float> bias;  // fused, fp32; empty when there is none
};

struct CpuVector : VectorWeight {
  std::vector<float> values;
};

struct CpuBuffer : DeviceBuffer {
  std::vector<float> storage;
  std::int64_t rows, cols;
  CpuBuffer(std::int64_t r, std::int64_t c) : storage(static_cast<std::size_t>(r * c)), rows(r), cols(c) {}
  DeviceMatrix view(std::int64_t r, std::int64_t c) override {
    if (r > rows || c > cols) fail("internal: buffer view {}x{} exceeds {}x{}", r, c, rows, cols);
    return DeviceMatrix{storage.data(), r, c, c};
  }
};

float* f32(DeviceMatrix m) { return static_cast<float*>(m.data); }

std::vector<float> to_float_vector(const TensorInfo& t) {
  std::vector<float> v(static_cast<std::size_t>(t.numel()));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = load_as_float(t.data, *t.dtype, i);
  return v;
}

void rmsnorm_row(const float* x, const float* w, float eps, std::int64_t n, float* out) {
  float sum = 0.0f;
  for (std::int64_t i = 0; i < n; ++i) sum += x[i] * x[i];
  const float scale = 1.0f / std::sqrt(sum / static_cast<float>(n) + eps);
  for (std::int64_t i = 0; i < n; ++i) out[i] = x[i] * scale * w[i];
}

class CpuBackend final : public Backend {
 public:
  std::string name() const override { return "cpu"; }

  std::unique_ptr<LinearWeight> make_linear(std::span<const TensorInfo* const> parts,
                                            std::span<const TensorInfo* const> biases) override {
    auto w = std::make_unique<CpuLinear>();
    w->in_features = parts.front()->shape[1];
    for (const TensorInfo* p : parts) {
      w->parts.push_back({p->data, *p->dtype, p->shape[0]});
      w->out_features += p->shape[0];
    }
    for (const TensorInfo* b : biases) {
      std::vector<float> v = to_float_vector(*b);
      w->bias.insert(w->bias.end(), v.begin(), v.end());
    }
    return w;
  }

  std::unique_ptr<VectorWeight> make_vector(const TensorInfo& t) override {
    auto v = std::make_unique<CpuVector>();
    v->values = to_float_vector(t);
    v->size = static_cast<std::int64_t>(v->values.size());
    return v;
  }

  std::unique_ptr<DeviceBuffer> alloc(std::int64_t rows, std::int64_t cols) override {
    return std::make_unique<CpuBuffer>(rows, cols);
  }

  std::unique_ptr<KvCache> make_kv_cache(const KvCacheShape& shape) override {
    return cpu::make_cpu_kv_cache(shape);
  }

  void embed(const LinearWeight& table, std::span<const std::int32_t> ids, DeviceMatrix out) override {
    const auto& t = static_cast<const CpuLinear&>(table);
    const auto& part = t.parts.front();
    for (std::size_t r = 0; r < ids.size(); ++r) {
      if (ids[r] < 0 || ids[r] >= part.rows) fail("token id {} is outside the vocabulary (size {})", ids[r], part.rows);
    }
#pragma omp parallel for if (cpu::worth_parallel(static_cast<std::int64_t>(ids.size()) * t.in_features))
    for (std::int64_t r = 0; r < static_cast<std::int64_t>(ids.size()); ++r) {
      float* o = f32(out) + r * out.stride;
      std::size_t base = static_cast<std::size_t>(ids[r]) * static_cast<std::size_t>(t.in_features);
      for (std::int64_t i = 0; i < t.in_features; ++i) o[i] = load_as_float(part.data, part.dtype, base + i);
    }
  }

  void rmsnorm(DeviceMatrix x, const VectorWeight& w, float eps, DeviceMatrix out) override {
    const float* gain = static_cast<const CpuVector&>(w).values.data();
#pragma omp parallel for if (cpu::worth_parallel(x.rows * x.cols))
    for (std::int64_t r = 0; r < x.rows; ++r) {
      rmsnorm_row(f32(x) + r * x.stride, gain, eps, x.cols, f32(out) + r * out.stride);
    }
  }

  void add_rmsnorm(DeviceMatrix residual, DeviceMatrix delta, const VectorWeight& w, float eps,
                   DeviceMatrix out) override {
    const float* gain = static_cast<const CpuVector&>(w).values.data();
#pragma omp parallel for if (cpu::worth_parallel(residual.rows * residual.cols))
    for (std::int64_t r = 0; r < residual.rows; ++r) {
      float* res = f32(residual) + r * residual.stride;
      const float* d = f32(delta) + r * delta.stride;
      for (std::int64_t i = 0; i < residual.cols; ++i) res[i] += d[i];
      rmsnorm_row(res, gain, eps, residual.cols, f32(out) + r * out.stride);
    }
  }

  void add(DeviceMatrix residual, DeviceMatrix delta) override {
#pragma omp parallel for if (cpu::worth_parallel(residual.rows * residual.cols))
    for (std::int64_t r = 0; r < residual.rows; ++r) {
      float* res = f32(residual) + r * residual.stride;
      const float* d = f32(delta) + r * delta.stride;
      for (std::int64_t i = 0; i < residual.cols; ++i) res[i] += d[i];
    }
  }

  void copy(DeviceMatrix from, DeviceMatrix to) override {
    for (std::int64_t r = 0; r < from.rows; ++r) {
      std::memcpy(f32(to) + r * to.stride, f32(from) + r * from.stride, static_cast<std::size_t>(from.cols) * sizeof(float));
    }
  }

  void linear(DeviceMatrix x, const LinearWeight& weight, DeviceMatrix out) override {
    const auto& w = static_cast<const CpuLinear&>(weight);
    std::int64_t col = 0;
    for (const auto& part : w.parts) {
      cpu::MatmulArgs args;
      args.x = f32(x);
      args.x_stride = x.stride;
      args.w = part.data;
      args.w_dtype = part.dtype;
      args.bias = w.bias.empty() ? nullptr : w.bias.data() + col;
      args.out = f32(out) + col;
      args.out_stride = out.stride;
      args.rows = x.rows;
      args.n = part.rows;
      args.k = w.in_features;
      cpu::matmul(args);
      col += part.rows;
    }
  }

  void qk_norm_rope(DeviceMatrix qkv, const AttentionShape& s, const VectorWeight* q_norm,
                    const VectorWeight* k_norm, float eps, std::span<const std::int32_t> positions,
                    double rope_theta) override {
    const std::int64_t d = s.head_dim, half = d / 2;
    const std::vector<float>& inv_freq = inverse_frequencies(rope_theta, d);
    const float* qn = q_norm ? static_cast<const CpuVector*>(q_norm)->values.data() : nullptr;
    const float* kn = k_norm ? static_cast<const CpuVector*>(k_norm)->values.data() : nullptr;
    const std::int64_t heads = s.num_heads + s.num_kv_heads;  // q heads then k heads; v untouched
#pragma omp parallel for if (cpu::worth_parallel(qkv.rows * qkv.cols * 4))
    for (std::int64_t r = 0; r < qkv.rows; ++r) {
      std::vector<float> cos_v(static_cast<std::size_t>(half)), sin_v(static_cast<std::size_t>(half));
      const float position = static_cast<float>(positions[static_cast<std::size_t>(r)]);
      for (std::int64_t i = 0; i < half; ++i) {
        const float angle = position * inv_freq[static_cast<std::size_t>(i)];
        cos_v[static_cast<std::size_t>(i)] = std::cos(angle);
        sin_v[static_cast<std::size_t>(i)] = std::sin(angle);
      }
      float* row = f32(qkv) + r * qkv.stride;
      for (std::int64_t h = 0; h < heads; ++h) {
        float* x = row + h * d;
        const float* gain = h < s.num_heads ? qn : kn;
        if (gain != nullptr) rmsnorm_row(x, gain, eps, d, x);
        for (std::int64_t i = 0; i < half; ++i) {
          const float x1 = x[i], x2 = x[i + half];
          const float c = cos_v[static_cast<std::size_t>(i)], sn = sin_v[static_cast<std::size_t>(i)];
          x[i] = x1 * c - x2 * sn;
          x[i + half] = x2 * c + x1 * sn;
        }
      }
    }
  }

  void attention(DeviceMatrix qkv, const AttentionShape& shape, KvCache& cache, std::int64_t layer,
                 std::span<const AttentionSequence> sequences, DeviceMatrix out) override {
    cpu::attention(f32(qkv), qkv.stride, shape, cache, layer, sequences, f32(out), out.stride);
  }

  void silu_mul(DeviceMatrix gate_up, DeviceMatrix out) override {
    const std::int64_t n = out.cols;
#pragma omp parallel for if (cpu::worth_parallel(gate_up.rows * n * 8))
    for (std::int64_t r = 0; r < gate_up.rows; ++r) {
      const float* g = f32(gate_up) + r * gate_up.stride;
      const float* u = g + n;
      float* o = f32(out) + r * out.stride;
      for (std::int64_t i = 0; i < n; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
    }
  }

  void gather_rows(DeviceMatrix x, std::span<const std::int32_t> rows, DeviceMatrix out) override {
    for (std::size_t i = 0; i < rows.size(); ++i) {
      std::copy_n(f32(x) + rows[i] * x.stride, x.cols, f32(out) + static_cast<std::int64_t>(i) * out.stride);
    }
  }

  void download(DeviceMatrix x, float* host) override {
    for (std::int64_t r = 0; r < x.rows; ++r) std::copy_n(f32(x) + r * x.stride, x.cols, host + r * x.cols);
  }

  // The decoder's own definitions, so CPU results are exactly what a host-side decoder computes.
  void summarize_logits(DeviceMatrix logits, float* entropy, std::int32_t* argmax_out) override {
#pragma omp parallel for if (cpu::worth_parallel(logits.rows * logits.cols * 16))
    for (std::int64_t r = 0; r < logits.rows; ++r) {
      const float* row = f32(logits) + r * logits.stride;
      entropy[r] = entropy_of_logits(row, static_cast<std::size_t>(logits.cols));
      argmax_out[r] = argmax(row, static_cast<std::size_t>(logits.cols));
    }
  }

  void sample_logits(DeviceMatrix logits, std::span<const RowDraw> draws, std::int32_t* tokens) override {
    sample_rows_on_host(f32(logits), logits.rows, logits.cols, logits.stride, draws, tokens);
  }

 private:
  // inv_freq[i] = theta^(-2i/d), computed as the reference does: fp32 of 1 / theta^(2i/d).
  const std::vector<float>& inverse_frequencies(double theta, std::int64_t d) {
    if (theta != inv_freq_theta_ || d != static_cast<std::int64_t>(inv_freq_.size()) * 2) {
      inv_freq_.resize(static_cast<std::size_t>(d / 2));
      for (std::int64_t i = 0; i < d / 2; ++i) {
        const float exponent = static_cast<float>(2 * i) / static_cast<float>(d);
        inv_freq_[static_cast<std::size_t>(i)] = 1.0f / std::pow(static_cast<float>(theta), exponent);
      }
      inv_freq_theta_ = theta;
    }
    return inv_freq_;
  }

  std::vector<float> inv_freq_;
  double inv_freq_theta_ = 0.0;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace wedlm
