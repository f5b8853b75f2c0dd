#include "backend/cuda/gemm.h"

#include <cuda_profiler_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemv.h"
#include "util/error.h"

namespace wedlm::cuda {

namespace {

constexpr std::size_t kWorkspaceBytes = std::size_t{32} << 20;
constexpr int kCandidates = 8;
constexpr int kTimedRuns = 10;
constexpr int kRounds = 3;
// What each fusion saves: the separate silu_mul or add_rmsnorm kernel of a decode step (3-5 us
// measured, with its kernel boundary).
constexpr float kFusionCreditMs = 0.003f;

// The separate kernels GEMV variant `variant` saves when `fused` asks for both fusions: both
// where it runs `fused` whole; the SiLU epilogue alone where it takes only that (the backend then
// runs add_rmsnorm apart and the GEMM with the epilogue: cuda_backend.cpp).
int fusions_saved(const GemmArgs& fused, int variant) {
  if (gemv_supported(fused, variant)) return (fused.silu_mul ? 1 : 0) + (fused.in_norm != nullptr ? 1 : 0);
  if (!fused.silu_mul || fused.in_norm == nullptr) return 0;
  GemmArgs silu_only = fused;
  silu_only.in_norm = nullptr;  // no prologue: the other in_* fields are not read
  return gemv_supported(silu_only, variant) ? 1 : 0;
}

}  // namespace

Gemm::Gemm(cudaStream_t stream) : stream_(stream) {
  WEDLM_CUBLAS_CHECK(cublasLtCreate(&handle_));
  WEDLM_CUDA_CHECK(cudaMalloc(&workspace_, kWorkspaceBytes));
  workspace_bytes_ = kWorkspaceBytes;
  // WEDLM_CUDA_FORCE_GEMV=v or v@n: as force_gemv_variant(v), for every shape or for those of n
  // output features, for A/B timing of a variant in whole forwards; `lt` or `lt@n`: cuBLASLt
  // (its candidates timed) rather than any GEMV variant.
  if (const char* env = std::getenv("WEDLM_CUDA_FORCE_GEMV"); env != nullptr && *env != '\0') {
    char* end = nullptr;
    const bool lt = std::strncmp(env, "lt", 2) == 0;
    const long variant = lt ? kCublasLtOnly : std::strtol(env, &end, 10);
    if (lt) end = const_cast<char*>(env + 2);
    long long features = 0;
    bool valid = end != env && (lt || (variant >= 0 && variant < kGemvVariants));
    if (valid && *end == '@') {
      const char* at = end + 1;
      features = std::strtoll(at, &end, 10);
      valid = end != at && features > 0;
    }
    if (!valid || *end != '\0') {
      fail("WEDLM_CUDA_FORCE_GEMV must be a GEMV variant 0..{} or lt, optionally @outputs, got '{}'", kGemvVariants - 1,
           env);
    }
    forced_variant_ = static_cast<int>(variant);
    forced_features_ = features;
  }
}

Gemm::~Gemm() {
  for (auto& [key, p] : plans_) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.desc);
  }
  cudaFree(workspace_);
  cublasLtDestroy(handle_);
}

// Column-major view of the row-major problem: D (n x rows, ld ldout) = op(A) B with A = W stored
// k x n (ld k) and transposed, B = x stored k x rows (ld ldx).
Gemm::Plan& Gemm::plan_for(const GemmArgs& g, const GemmArgs* fused) {
  const Key key{g.rows, g.n, g.k, g.ldx, g.ldout, g.bias != nullptr};
  auto found = plans_.find(key);
  if (found != plans_.end()) return found->second;
  Plan p;
  WEDLM_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t trans = CUBLAS_OP_T, none = CUBLAS_OP_N;
  WEDLM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &trans, sizeof trans));
  WEDLM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &none, sizeof none));
  if (g.bias != nullptr) {
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    WEDLM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue));
    WEDLM_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof g.bias));
  }
  WEDLM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, static_cast<std::uint64_t>(g.k),
                                                static_cast<std::uint64_t>(g.n), g.k));
  WEDLM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, static_cast<std::uint64_t>(g.k),
                                                static_cast<std::uint64_t>(g.rows), g.ldx));
  WEDLM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.c, CUDA_R_16BF, static_cast<std::uint64_t>(g.n),
                                                static_cast<std::uint64_t>(g.rows), g.ldout));
  cublasLtMatmulPreference_t pref = nullptr;
  WEDLM_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  WEDLM_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                          &workspace_bytes_, sizeof workspace_bytes_));
  cublasLtMatmulHeuristicResult_t results[kCandidates] = {};
  int count = 0;
  const cublasStatus_t status =
      cublasLtMatmulAlgoGetHeuristic(handle_, p.desc, p.a, p.b, p.c, p.c, pref, kCandidates, results, &count);
  cublasLtMatmulPreferenceDestroy(pref);
  if (status != CUBLAS_STATUS_SUCCESS || count == 0) {
    fail("cuBLASLt has no algorithm for a bf16 GEMM of {} rows x {} outputs x {} inputs (status {})", g.rows, g.n, g.k,
         static_cast<int>(status));
  }
  p.algo = results[0].algo;
  bool gemv_applies = false;
  for (int v = 0; v < kGemvVariants; ++v) gemv_applies = gemv_applies || gemv_supported(g, v);
  gemv_applies = gemv_applies && gemv_mode_ != GemvMode::Never;
  const bool forced = forced_features_ == 0 || forced_features_ == g.n;
  if (forced_variant_ == kCublasLtOnly && forced) gemv_applies = false;
  if (forced_variant_ >= 0 && forced) {
    if (gemv_supported(g, forced_variant_)) p.gemv = forced_variant_;
    return plans_.emplace(key, p).first->second;
  }
  if (gemv_applies && gemv_mode_ == GemvMode::Always) {
    // Forced (tests): the variant alternates with the row count, so that every variant runs.
    for (int i = 0; i < kGemvVariants && p.gemv < 0; ++i) {
      const int v = static_cast<int>((g.rows + i) % kGemvVariants);
      if (gemv_supported(g, v)) p.gemv = v;
    }
  }
  // WEDLM_CUDA_GEMM_LOG=1: every candidate's time, for tuning the GEMV kernels.
  static const bool log = [] {
    const char* env = std::getenv("WEDLM_CUDA_GEMM_LOG");
    return env != nullptr && *env == '1';
  }();
  auto report = [&](const char* what, int index, float ms) {
    if (log) {
      std::fprintf(stderr, "gemm %ld rows x %ld x %ld: %s %d %.1f us\n", static_cast<long>(g.rows), static_cast<long>(g.n),
                   static_cast<long>(g.k), what, index, 1e3 * ms / kTimedRuns);
    }
  };
  if (tuning_ && p.gemv < 0 && (count > 1 || gemv_applies)) {
    // Time every candidate on the real operands (the output is rewritten by the caller's run),
    // in kRounds passes over all of them, keeping each one's best pass: a single pass ranked
    // candidates by when they ran (clock ramps, other work) as much as by speed.
    struct Candidate {
      int lt = -1, gemv = -1;
      float ms = 1e30f;
    };
    std::vector<Candidate> candidates;
    for (int i = 0; i < count; ++i) candidates.push_back({i, -1});
    for (int v = 0; gemv_applies && v < kGemvVariants; ++v) {
      if (gemv_supported(g, v) && gemv_timed(v)) candidates.push_back({-1, v});
    }
    cudaEvent_t start, stop;
    WEDLM_CUDA_CHECK(cudaEventCreate(&start));
    WEDLM_CUDA_CHECK(cudaEventCreate(&stop));
    auto run_candidate = [&](const Candidate& c) {
      if (c.lt >= 0) {
        launch(p, g, results[c.lt].algo);
      } else {
        launch_gemv(g, c.gemv, stream_);
      }
    };
    // WEDLM_CUDA_TUNE_UNPROFILED=1: a profiler (Nsight Compute) is paused while candidates are
    // timed, so that its per-kernel serialization does not decide which one wins
    // (tools/ncu_timeline.sh).
    static const bool unprofiled = [] {
      const char* env = std::getenv("WEDLM_CUDA_TUNE_UNPROFILED");
      return env != nullptr && *env == '1';
    }();
    if (unprofiled) WEDLM_CUDA_CHECK(cudaProfilerStop());
    // Each timed run follows a spacer kernel, as a GEMM follows a light kernel in a forward
    // (gemv.h); the spacers' own time (timed alone) is taken off, which ranks nothing differently.
    auto timed = [&](auto&& run) {
      run();  // warm-up
      WEDLM_CUDA_CHECK(cudaEventRecord(start, stream_));
      for (int r = 0; r < kTimedRuns; ++r) {
        launch_tuning_spacer(stream_);
        run();
      }
      WEDLM_CUDA_CHECK(cudaEventRecord(stop, stream_));
      WEDLM_CUDA_CHECK(cudaEventSynchronize(stop));
      float ms = 0;
      WEDLM_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
      return ms;
    };
    float spacers = 1e30f;
    for (int round = 0; round < kRounds; ++round) {
      spacers = std::min(spacers, timed([] {}));
      for (Candidate& c : candidates) c.ms = std::min(c.ms, timed([&] { run_candidate(c); }));
    }
    for (Candidate& c : candidates) c.ms -= spacers;
    if (unprofiled) WEDLM_CUDA_CHECK(cudaProfilerStart());
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    float best = 1e30f;
    for (const Candidate& c : candidates) {
      float ms = c.ms;
      report(c.lt >= 0 ? "lt" : gemv_variant_name(c.gemv), c.lt >= 0 ? c.lt : c.gemv, ms);
      if (c.gemv >= 0 && fused != nullptr) {
        ms -= kFusionCreditMs * kTimedRuns * static_cast<float>(fusions_saved(*fused, c.gemv));
      }
      if (ms < best) {
        best = ms;
        p.gemv = c.gemv;
        if (c.lt >= 0) p.algo = results[c.lt].algo;
      }
    }
    if (log) {
      std::fprintf(stderr, "gemm %ld rows x %ld x %ld: picked %s\n", static_cast<long>(g.rows), static_cast<long>(g.n),
                   static_cast<long>(g.k), p.gemv >= 0 ? gemv_variant_name(p.gemv) : "lt");
    }
  }
  return plans_.emplace(key, p).first->second;
}

void Gemm::launch(const Plan& p, const GemmArgs& g, const cublasLtMatmulAlgo_t& algo) {
  if (g.bias != nullptr) {
    WEDLM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof g.bias));
  }
  const float one = 1.0f, zero = 0.0f;
  WEDLM_CUBLAS_CHECK(cublasLtMatmul(handle_, p.desc, &one, g.w, p.a, g.x, p.b, &zero, g.out, p.c, g.out, p.c, &algo,
                                    workspace_, workspace_bytes_, stream_));
}

void Gemm::run(const GemmArgs& g) {
  if (g.rows == 0) return;
  const Plan& p = plan_for(g);
  if (p.gemv >= 0) {
    launch_gemv(g, p.gemv, stream_);
  } else {
    launch(p, g, p.algo);
  }
}

bool Gemm::run_fused(const GemmArgs& g, const GemmArgs& fused) {
  if (g.rows == 0) return false;
  const Plan& p = plan_for(g);
  if (p.gemv < 0 || !gemv_supported(fused, p.gemv)) return false;
  launch_gemv(fused, p.gemv, stream_);
  return true;
}

const char* Gemm::path(const GemmArgs& g) {
  if (g.rows == 0) return "none";
  const Plan& p = plan_for(g);
  return p.gemv >= 0 ? gemv_variant_name(p.gemv) : "lt";
}

}  // namespace wedlm::cuda
