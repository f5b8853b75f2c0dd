#pragma once
// out = x W^T (+ bias) through cuBLASLt, bf16 operands and output with fp32 accumulation. Each
// distinct shape is planned once: the heuristic's candidates are timed on the real operands and
// the fastest kept, which matters most for the skinny (1..64 row) GEMMs of decoding, where the
// heuristic's first pick is often not the one that streams the weights fastest.
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <tuple>

#include "backend/cuda/gemv_mode.h"
#include "backend/cuda/kernels.h"

namespace wedlm::cuda {

struct GemmArgs {
  const bf16* x = nullptr;  // [rows][k], row stride ldx
  std::int64_t ldx = 0;
  const bf16* w = nullptr;  // [n][k], contiguous
  const bf16* bias = nullptr;  // [n] or null
  bf16* out = nullptr;  // [rows][n], row stride ldout
  std::int64_t ldout = 0;
  std::int64_t rows = 0, n = 0, k = 0;
  // Instead of the n outputs, out[r][j] = silu(x W_j) * x W_{n/2 + j} for j < n/2 (W = [gate | up]):
  // the MLP activation in the GEMV's epilogue.
  bool silu_mul = false;
  // When in_norm is set, x is not read: every block computes x = rmsnorm(in_residual + in_delta)
  // * in_norm itself (in_delta null: no delta; bf16 roundings as add_rmsnorm's), and block 0
  // writes in_residual + in_delta to in_residual_out, which must not alias either input: the
  // layer's add_rmsnorm in the GEMV's prologue.
  const bf16* in_residual = nullptr;
  std::int64_t in_residual_stride = 0;
  const bf16* in_delta = nullptr;
  std::int64_t in_delta_stride = 0;
  bf16* in_residual_out = nullptr;
  std::int64_t in_residual_out_stride = 0;
  const float* in_norm = nullptr;
  float in_eps = 0;
};

class Gemm {
 public:
  explicit Gemm(cudaStream_t stream);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  void run(const GemmArgs& args);
  // `args` the plain GEMM, `fused` the same with an epilogue (silu_mul) and/or a prologue (the
  // in_* fields) fused: runs `fused` in one kernel and returns true when the shape's planned
  // GEMV takes it; otherwise returns false having run nothing.
  bool run_fused(const GemmArgs& args, const GemmArgs& fused);
  // Plans (and, when tuning, times) the shape of `args` now, so that a later run only launches.
  // `fused`, when given, is the same GEMM with an epilogue fused (run_fused_*): the variants
  // that can run it are credited with the separate kernel they save.
  void prepare(const GemmArgs& args, const GemmArgs* fused = nullptr) {
    if (args.rows > 0) plan_for(args, fused);
  }
  // Plans may time candidates; turn that off (e.g. while a CUDA graph is being captured).
  void set_tuning(bool on) { tuning_ = on; }
  // Applies to shapes planned from now on.
  void set_gemv_mode(GemvMode mode) { gemv_mode_ = mode; }
  // Tests: shapes planned from now on run GEMV variant `variant` wherever it applies (cuBLASLt's
  // first candidate elsewhere, untimed); -1 restores the mode above.
  void force_gemv_variant(int variant) {
    forced_variant_ = variant;
    forced_features_ = 0;
  }
  // What runs this shape ("lt", "gemv4", ...), for the per-op profile; plans it if needed.
  const char* path(const GemmArgs& args);

 private:
  using Key = std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, bool>;
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
    int gemv = -1;  // our kernel's variant instead of cuBLASLt, or -1
  };
  Plan& plan_for(const GemmArgs& args, const GemmArgs* fused = nullptr);
  void launch(const Plan& plan, const GemmArgs& args, const cublasLtMatmulAlgo_t& algo);

  cudaStream_t stream_;
  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  std::size_t workspace_bytes_ = 0;
  bool tuning_ = true;
  GemvMode gemv_mode_ = GemvMode::Timed;
  static constexpr int kCublasLtOnly = -2;  // forced_variant_: cuBLASLt's candidates only
  int forced_variant_ = -1;
  std::int64_t forced_features_ = 0;  // forced_variant_ applies to shapes of this n (0: all)
  std::map<Key, Plan> plans_;
};

}  // namespace wedlm::cuda
