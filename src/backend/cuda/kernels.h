#pragma once
// Launchers for the CUDA backend's elementwise, normalization and RoPE kernels. Activations are
// bf16 matrices with a row stride; norm gains and RoPE tables are fp32; arithmetic is fp32.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace wedlm::cuda {

using bf16 = __nv_bfloat16;

struct Mat {
  bf16* data = nullptr;
  std::int64_t rows = 0, cols = 0, stride = 0;
};

// out[r] = table[ids[r]] (table rows `out.cols` wide, contiguous).
void launch_embed(const bf16* table, const std::int32_t* ids, Mat out, cudaStream_t stream);
// out = rmsnorm(x) * w, fp32 statistics.
void launch_rmsnorm(Mat x, const float* w, float eps, Mat out, cudaStream_t stream);
// residual += delta (rounded to bf16, as the residual stream is stored); out = rmsnorm(residual) * w.
void launch_add_rmsnorm(Mat residual, Mat delta, const float* w, float eps, Mat out, cudaStream_t stream);
// residual_out = residual + delta (delta.rows == 0: no delta); out = rmsnorm(residual_out) * w.
void launch_add_rmsnorm_into(Mat residual, Mat delta, Mat residual_out, const float* w, float eps, Mat out,
                             cudaStream_t stream);
void launch_add(Mat residual, Mat delta, cudaStream_t stream);
// gate_up = [gate | up]; out = silu(gate) * up, out.cols wide.
void launch_silu_mul(Mat gate_up, Mat out, cudaStream_t stream);
// out[i] = x[rows[i]] for i < out.rows.
void launch_gather_rows(Mat x, const std::int32_t* rows, Mat out, cudaStream_t stream);
// Per row: entropy of softmax (natural log; fp32 math, max subtracted) and argmax (lowest index
// among equal maxima), to device arrays of x.rows entries.
void launch_summarize_logits(Mat x, float* entropy, std::int32_t* argmax, cudaStream_t stream);
// Dense fp32 copy [x.rows][x.cols] of a bf16 matrix.
void launch_to_float(Mat x, float* out, cudaStream_t stream);
// Checkpoint element types to bf16 at upload (round to nearest even, as torch casts).
void launch_f32_to_bf16(const float* in, std::int64_t n, bf16* out, cudaStream_t stream);
void launch_f16_to_bf16(const std::uint16_t* in, std::int64_t n, bf16* out, cudaStream_t stream);

struct QkNormRopeArgs {
  Mat qkv;                       // rows [q heads | k heads | v heads]
  int num_heads = 0, num_kv_heads = 0, head_dim = 0;
  const float* q_norm = nullptr;  // head_dim gains or null (no q/k norm)
  const float* k_norm = nullptr;
  float eps = 0;
  const std::int32_t* positions = nullptr;  // one per row
  const float* inv_freq = nullptr;          // head_dim / 2 entries, computed on the host as the CPU backend does
  // When set, the rotated k heads and the v heads of row r also go to the paged cache at
  // row_slot[r] (skipped where < 0), laid out [block][kv_head][slot in block][head_dim]: the
  // K/V scatter fused in, one kernel fewer a layer.
  bf16* k_cache = nullptr;
  bf16* v_cache = nullptr;
  const std::int32_t* row_slot = nullptr;
  int block_size = 0;
};
void launch_qk_norm_rope(const QkNormRopeArgs& args, cudaStream_t stream);

}  // namespace wedlm::cuda
