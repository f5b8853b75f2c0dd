// Each CUDA op against the CPU backend on identical bf16-exact random inputs. The CPU backend is
// fp32 throughout; the CUDA one rounds its outputs (and attention's probabilities) to bf16, whose
// unit roundoff is 2^-9 ~ 2e-3, so relative L2 errors land near 1e-3..5e-3; the bounds below
// leave about 2x room over that and fail on any indexing or masking mistake (errors ~ 1).
#include <numeric>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/gemv.h"
#include "cuda_test_support.h"

namespace wedlm {
namespace {

using test::compare;
using test::Errors;

std::vector<float> download(Backend& b, DeviceMatrix m) {
  std::vector<float> out(static_cast<std::size_t>(m.rows * m.cols));
  b.download(m, out.data());
  return out;
}

// Twice: GEMV kernel or cuBLASLt as timing picks, then the GEMV kernel wherever it applies
// (<= 32 rows; the variant alternates with the row count), which timing alone might never
// choose on a given card.
class CudaLinear : public ::testing::TestWithParam<cuda::GemvMode> {};

TEST_P(CudaLinear, MatchesCpuForSkinnyAndLargeShapes) {
  WEDLM_REQUIRE_CUDA_DEVICE();
  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend();
  cuda::set_gemv_mode(*gpu, GetParam());
  const std::int64_t k = 2048, n1 = 768, n2 = 256;
  auto w1 = test::random_bf16(static_cast<std::size_t>(n1 * k), 1, 0.03f);
  auto w2 = test::random_bf16(static_cast<std::size_t>(n2 * k), 2, 0.03f);
  auto b1 = test::random_bf16(static_cast<std::size_t>(n1), 3), b2 = test::random_bf16(static_cast<std::size_t>(n2), 4);
  TensorInfo tw1 = test::bf16_tensor("w1", w1, n1, k), tw2 = test::bf16_tensor("w2", w2, n2, k);
  TensorInfo tb1 = test::bf16_tensor("b1", b1, n1, 1), tb2 = test::bf16_tensor("b2", b2, n2, 1);
  tb1.shape = {n1};
  tb2.shape = {n2};
  const TensorInfo* parts[] = {&tw1, &tw2};
  const TensorInfo* biases[] = {&tb1, &tb2};
  for (bool with_bias : {false, true}) {
    for (std::int64_t rows : {1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 27, 32, 33, 64, 300}) {
      SCOPED_TRACE(testing::Message() << rows << " rows, bias " << with_bias);
      auto x = test::random_bf16(static_cast<std::size_t>(rows * k), static_cast<std::uint32_t>(rows));
      TensorInfo tx = test::bf16_tensor("x", x, rows, k);
      // Plain, and as [gate | up] with the activation (fused into the GEMV where it runs).
      const std::int64_t half = (n1 + n2) / 2;
      std::vector<float> results[2], activated[2];
      int i = 0;
      for (Backend* b : {cpu.get(), gpu.get()}) {
        auto w = b->make_linear(parts, with_bias ? std::span<const TensorInfo* const>(biases)
                                                 : std::span<const TensorInfo* const>());
        auto in = test::upload_rows(*b, tx, rows, k);
        auto out = b->alloc(rows, n1 + n2);
        b->linear(in.matrix, *w, out->view(rows, n1 + n2));
        results[i] = download(*b, out->view(rows, n1 + n2));
        auto scratch = b->alloc(rows, n1 + n2);
        auto hidden = b->alloc(rows, half);
        b->linear_silu_mul(in.matrix, *w, scratch->view(rows, n1 + n2), hidden->view(rows, half));
        activated[i++] = download(*b, hidden->view(rows, half));
      }
      Errors e = compare(results[1], results[0]);
      EXPECT_LT(e.rel_l2, 5e-3);
      Errors ea = compare(activated[1], activated[0]);
      EXPECT_LT(ea.rel_l2, 1e-2) << "linear_silu_mul";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(GemvModes, CudaLinear, ::testing::Values(cuda::GemvMode::Timed, cuda::GemvMode::Always),
                         [](const auto& info) { return info.param == cuda::GemvMode::Always ? "GemvAlways" : "Timed"; });

// Every GEMV variant, forced, through the GEMM ops a layer issues (plain; with the SiLU activation
// fused; with the residual add + RMSNorm fused in front), against the CPU backend's unfused ops. A variant that does not take a shape (or a fusion) falls back to cuBLASLt + the separate
// kernel, which must agree as well.
TEST(CudaOps, EveryGemvVariantMatchesCpu) {
  WEDLM_REQUIRE_CUDA_DEVICE();
  auto cpu = make_cpu_backend();
  const std::int64_t k = 2048, n = 1024;
  auto w = test::random_bf16(static_cast<std::size_t>(n * k), 21, 0.03f);
  auto gain = test::random_bf16(static_cast<std::size_t>(k), 22);
  TensorInfo tw = test::bf16_tensor("w", w, n, k), tg = test::bf16_tensor("g", gain, k, 1);
  tg.shape = {k};
  const TensorInfo* parts[] = {&tw};
  for (int variant = 0; variant < cuda::kGemvVariants; ++variant) {
    auto gpu = make_cuda_backend();
    cuda::force_gemv_variant(*gpu, variant);
    for (std::int64_t rows : {1, 2, 5, 16, 23, 32}) {
      SCOPED_TRACE(testing::Message() << "variant " << variant << ", " << rows << " rows");
      auto x = test::random_bf16(static_cast<std::size_t>(rows * k), static_cast<std::uint32_t>(100 + rows));
      auto dx = test::random_bf16(static_cast<std::size_t>(rows * k), static_cast<std::uint32_t>(200 + rows), 0.5f);
      TensorInfo tx = test::bf16_tensor("x", x, rows, k), td = test::bf16_tensor("d", dx, rows, k);
      std::vector<std::vector<float>> got[2];
      int i = 0;
      for (Backend* b : {cpu.get(), gpu.get()}) {
        auto weight = b->make_linear(parts, {});
        auto in = test::upload_rows(*b, tx, rows, k);
        auto out = b->alloc(rows, n), hidden = b->alloc(rows, n / 2);
        auto& r = got[i++];
        b->linear(in.matrix, *weight, out->view(rows, n));
        r.push_back(download(*b, out->view(rows, n)));
        b->linear_silu_mul(in.matrix, *weight, out->view(rows, n), hidden->view(rows, n / 2));
        r.push_back(download(*b, hidden->view(rows, n / 2)));
        // The same GEMMs opening a sublayer: the add_rmsnorm of x + delta (or of x alone) fused
        // into the GEMV's prologue where it runs, the new residual written aside.
        auto delta = test::upload_rows(*b, td, rows, k);
        auto normed = b->alloc(rows, k), residual_out = b->alloc(rows, k);
        auto norm = b->make_vector(tg);
        const NormedInput with_delta{in.matrix, delta.matrix, residual_out->view(rows, k), normed->view(rows, k),
                                     norm.get(), 1e-6f};
        b->normed_linear(with_delta, *weight, out->view(rows, n));
        r.push_back(download(*b, out->view(rows, n)));
        r.push_back(download(*b, residual_out->view(rows, k)));
        const NormedInput alone{in.matrix, DeviceMatrix{delta.matrix.data, 0, k, k}, residual_out->view(rows, k),
                                normed->view(rows, k), norm.get(), 1e-6f};
        b->normed_linear_silu_mul(alone, *weight, out->view(rows, n), hidden->view(rows, n / 2));
        r.push_back(download(*b, hidden->view(rows, n / 2)));
        r.push_back(download(*b, residual_out->view(rows, k)));
      }
      const char* names[] = {"linear", "linear_silu_mul", "normed_linear", "its residual", "normed_linear_silu_mul",
                             "its residual"};
      for (std::size_t j = 0; j < got[0].size(); ++j) {
        EXPECT_LT(compare(got[1][j], got[0][j]).rel_l2, 1e-2) << names[j];
      }
    }
  }
}

TEST(CudaOps, NormsActivationAndRopeMatchCpu) {
  WEDLM_REQUIRE_CUDA_DEVICE();
  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend();
  const std::int64_t rows = 37, hidden = 512, heads = 8, kv_heads = 2, d = 64;
  const std::int64_t qkv_cols = (heads + 2 * kv_heads) * d;
  auto x = test::random_bf16(static_cast<std::size_t>(rows * hidden), 11, 2.0f);
  auto delta = test::random_bf16(static_cast<std::size_t>(rows * hidden), 12, 0.5f);
  auto gain = test::random_bf16(static_cast<std::size_t>(hidden), 13);
  auto qkv = test::random_bf16(static_cast<std::size_t>(rows * qkv_cols), 14, 3.0f);
  auto qn = test::random_bf16(static_cast<std::size_t>(d), 15), kn = test::random_bf16(static_cast<std::size_t>(d), 16);
  TensorInfo tx = test::bf16_tensor("x", x, rows, hidden), td = test::bf16_tensor("d", delta, rows, hidden);
  TensorInfo tg = test::bf16_tensor("g", gain, hidden, 1), tqkv = test::bf16_tensor("qkv", qkv, rows, qkv_cols);
  TensorInfo tqn = test::bf16_tensor("qn", qn, d, 1), tkn = test::bf16_tensor("kn", kn, d, 1);
  tg.shape = {hidden};
  tqn.shape = {d};
  tkn.shape = {d};
  std::vector<std::int32_t> positions(static_cast<std::size_t>(rows));
  for (std::size_t i = 0; i < positions.size(); ++i) positions[i] = static_cast<std::int32_t>(i * 997 % 40000);
  const AttentionShape shape{heads, kv_heads, d};
  std::vector<std::vector<float>> results[2];
  int i = 0;
  for (Backend* b : {cpu.get(), gpu.get()}) {
    auto g = b->make_vector(tg);
    auto qnorm = b->make_vector(tqn), knorm = b->make_vector(tkn);
    auto in = test::upload_rows(*b, tx, rows, hidden), dl = test::upload_rows(*b, td, rows, hidden);
    auto out = b->alloc(rows, hidden);
    auto& r = results[i++];
    b->rmsnorm(in.matrix, *g, 1e-6f, out->view(rows, hidden));
    r.push_back(download(*b, out->view(rows, hidden)));
    b->add_rmsnorm(in.matrix, dl.matrix, *g, 1e-6f, out->view(rows, hidden));
    r.push_back(download(*b, out->view(rows, hidden)));
    r.push_back(download(*b, in.matrix));  // the updated residual
    b->add(in.matrix, dl.matrix);
    r.push_back(download(*b, in.matrix));
    auto half = b->alloc(rows, hidden / 2);
    b->silu_mul(in.matrix, half->view(rows, hidden / 2));
    r.push_back(download(*b, half->view(rows, hidden / 2)));
    const std::int32_t pick[] = {5, 0, 36, 5};
    auto picked = b->alloc(4, hidden);
    b->gather_rows(in.matrix, pick, picked->view(4, hidden));
    r.push_back(download(*b, picked->view(4, hidden)));
    auto q = test::upload_rows(*b, tqkv, rows, qkv_cols);
    b->qk_norm_rope(q.matrix, shape, qnorm.get(), knorm.get(), 1e-6f, positions, 1e6);
    r.push_back(download(*b, q.matrix));
    auto q2 = test::upload_rows(*b, tqkv, rows, qkv_cols);
    b->qk_norm_rope(q2.matrix, shape, nullptr, nullptr, 1e-6f, positions, 1e4);
    r.push_back(download(*b, q2.matrix));
  }
  const char* names[] = {"rmsnorm", "add_rmsnorm", "residual", "add", "silu_mul", "gather_rows", "qk_norm_rope", "rope"};
  for (std::size_t k = 0; k < results[0].size(); ++k) {
    Errors e = compare(results[1][k], results[0][k]);
    // rope at positions up to 40000: fp32 angles agree, but cos/sin of large arguments differ in
    // the last ulps between libm and CUDA, and the inputs went through bf16 norm rounding.
    EXPECT_LT(e.rel_l2, 8e-3) << names[k];
  }
}

// Attention over a paged pool: a long history written by a prefill-like call, then decode-like
// steps of several sequences in one call, including splits along the keys.
struct AttentionCase {
  std::int64_t heads, kv_heads, d, history, step_rows, sequences;
  // KV cache slots a block: multiples of a CTA thread group's run of keys (8 for head_dim 128)
  // take the kernel's per-run staging, others its key-by-key path.
  std::int64_t block = 16;
};

class CudaAttention : public ::testing::TestWithParam<AttentionCase> {};

TEST_P(CudaAttention, MatchesCpu) {
  WEDLM_REQUIRE_CUDA_DEVICE();
  const AttentionCase c = GetParam();
  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend();
  const std::int64_t block = c.block, qkv_cols = (c.heads + 2 * c.kv_heads) * c.d;
  const std::int64_t per_seq_blocks = (c.history + c.step_rows + block - 1) / block;
  const std::int64_t pool = per_seq_blocks * c.sequences + 3;
  // Scattered block tables: sequence s takes every sequences-th block of a shuffled pool.
  std::vector<std::int32_t> order(static_cast<std::size_t>(pool));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(5));
  std::vector<std::vector<std::int32_t>> tables(static_cast<std::size_t>(c.sequences));
  for (std::int64_t b = 0; b < per_seq_blocks * c.sequences; ++b) {
    tables[static_cast<std::size_t>(b % c.sequences)].push_back(order[static_cast<std::size_t>(b)]);
  }
  const std::int64_t hist_rows = c.history * c.sequences, step_rows = c.step_rows * c.sequences;
  auto hist = test::random_bf16(static_cast<std::size_t>(hist_rows * qkv_cols), 21);
  auto step = test::random_bf16(static_cast<std::size_t>(step_rows * qkv_cols), 22);
  TensorInfo th = test::bf16_tensor("h", hist, hist_rows, qkv_cols), ts = test::bf16_tensor("s", step, step_rows, qkv_cols);
  std::vector<AttentionSequence> hist_seqs, step_seqs;
  for (std::int64_t s = 0; s < c.sequences; ++s) {
    hist_seqs.push_back({s * c.history, c.history, 0, tables[static_cast<std::size_t>(s)]});
    // Sequences step from different lengths: the later ones rewind a few slots (WeDLM overwrites).
    const std::int64_t start = c.history - std::min<std::int64_t>(s * 3, c.history - 1);
    step_seqs.push_back({s * c.step_rows, c.step_rows, start, tables[static_cast<std::size_t>(s)]});
  }
  const AttentionShape shape{c.heads, c.kv_heads, c.d};
  std::vector<float> results[2][2];
  int i = 0;
  for (Backend* b : {cpu.get(), gpu.get()}) {
    auto cache = b->make_kv_cache({2, c.kv_heads, c.d, block, pool});
    auto h = test::upload_rows(*b, th, hist_rows, qkv_cols);
    auto hout = b->alloc(hist_rows, c.heads * c.d);
    b->attention(h.matrix, shape, *cache, 1, hist_seqs, hout->view(hist_rows, c.heads * c.d));
    results[i][0] = download(*b, hout->view(hist_rows, c.heads * c.d));
    auto st = test::upload_rows(*b, ts, step_rows, qkv_cols);
    auto sout = b->alloc(step_rows, c.heads * c.d);
    b->attention(st.matrix, shape, *cache, 1, step_seqs, sout->view(step_rows, c.heads * c.d));
    results[i][1] = download(*b, sout->view(step_rows, c.heads * c.d));
    ++i;
  }
  for (int k = 0; k < 2; ++k) {
    Errors e = compare(results[1][k], results[0][k]);
    EXPECT_LT(e.rel_l2, 1e-2) << (k == 0 ? "history" : "step");
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaAttention,
    ::testing::Values(AttentionCase{8, 2, 128, 2048, 1, 1},    // one decode row, key splits, 16-unit tiles
                      AttentionCase{8, 2, 128, 2048, 32, 1},   // a WeDLM window, 64-unit tiles, splits
                      AttentionCase{28, 4, 128, 300, 20, 3},   // Qwen2.5 group of 7, three sequences
                      AttentionCase{4, 4, 24, 100, 9, 2},      // MHA, head_dim 24 (padded to 32)
                      AttentionCase{4, 2, 64, 130, 130, 1},    // prefill-like step
                      AttentionCase{8, 2, 128, 2048, 32, 2, 5},   // blocks of 5 slots: key-by-key staging
                      AttentionCase{8, 2, 128, 700, 32, 1, 24},   // runs of 8 keys inside blocks of 24
                      // The 8B model's 32-row step at short contexts: on a 132-SM GPU its splits
                      // merge in a cluster of 8 (also with key-by-key staging, and head_dim 64),
                      // or of 4 (240 keys).
                      AttentionCase{32, 8, 128, 500, 32, 1}, AttentionCase{32, 8, 128, 500, 32, 1, 5},
                      AttentionCase{32, 8, 64, 500, 32, 1}, AttentionCase{32, 8, 128, 240, 32, 1},
                      // Where an sm_90a build runs the warpgroup-MMA kernel (33-256 units a KV
                      // head): the 8B model's 32-row step at 4096 keys (16 splits and the combine
                      // kernel on the H200) and its 16-row step at 1000 keys (64-unit tiles; on
                      // the H200 clusters of 9, units shared unevenly), two sequences whose
                      // splits differ (5 and 4 key tiles: the combine kernel), blocks of 64 slots
                      // (one TMA box a key tile) with two unit tiles of two sequences, blocks of
                      // 32 with 96 units.
                      AttentionCase{32, 8, 128, 4096, 32, 1}, AttentionCase{32, 8, 128, 1000, 16, 1},
                      AttentionCase{8, 2, 128, 288, 32, 2},
                      AttentionCase{8, 2, 128, 1000, 40, 2, 64}, AttentionCase{8, 2, 128, 1000, 24, 1, 32},
                      // ... and its 64-unit tiles merged in a cluster of 8 (16 rows at 516 keys),
                      // a step short enough for one split (direct output), blocks of 8 slots
                      // (eight TMA boxes a key tile) and of 128 (boxes starting mid-block).
                      AttentionCase{32, 8, 128, 500, 16, 1}, AttentionCase{8, 2, 128, 40, 32, 1},
                      AttentionCase{8, 2, 128, 1000, 32, 1, 8}, AttentionCase{8, 2, 128, 1000, 32, 1, 128}),
    [](const auto& info) {
      const AttentionCase& c = info.param;
      return "h" + std::to_string(c.heads) + "kv" + std::to_string(c.kv_heads) + "d" + std::to_string(c.d) + "ctx" +
             std::to_string(c.history) + "rows" + std::to_string(c.step_rows) + "seq" + std::to_string(c.sequences) +
             "block" + std::to_string(c.block);
    });

}  // namespace
}  // namespace wedlm

namespace wedlm {
namespace {

// Entropy and argmax of vocab-sized rows on the GPU against the CPU backend (the decoder's own
// definitions), on bf16-exact logits: both read the same values, so the argmax must agree
// exactly and the entropy to fp32 summation-order rounding.
TEST(CudaOps, SummarizeLogitsMatchesCpu) {
  WEDLM_REQUIRE_CUDA_DEVICE();
  auto cpu = make_cpu_backend();
  auto gpu = make_cuda_backend();
  const std::int64_t rows = 37, vocab = 151936;
  for (float scale : {0.5f, 4.0f, 40.0f}) {  // flat, medium and peaked distributions
    SCOPED_TRACE(testing::Message() << "scale " << scale);
    auto values = test::random_bf16(static_cast<std::size_t>(rows * vocab), 9, scale);
    TensorInfo t = test::bf16_tensor("logits", values, rows, vocab);
    std::vector<float> entropy[2];
    std::vector<std::int32_t> argmax[2];
    int i = 0;
    for (Backend* b : {cpu.get(), gpu.get()}) {
      auto in = test::upload_rows(*b, t, rows, vocab);
      entropy[i].resize(static_cast<std::size_t>(rows));
      argmax[i].resize(static_cast<std::size_t>(rows));
      b->summarize_logits(in.matrix, entropy[i].data(), argmax[i].data());
      ++i;
    }
    for (std::int64_t r = 0; r < rows; ++r) {
      EXPECT_EQ(argmax[1][static_cast<std::size_t>(r)], argmax[0][static_cast<std::size_t>(r)]) << "row " << r;
      EXPECT_NEAR(entropy[1][static_cast<std::size_t>(r)], entropy[0][static_cast<std::size_t>(r)],
                  1e-4 + 1e-4 * entropy[0][static_cast<std::size_t>(r)])
          << "row " << r;
    }
  }
}

}  // namespace
}  // namespace wedlm
