// CUDA graphs of whole chunks: a backend that records and replays chunks must give the same
// bits as one that runs every op eagerly, over steps that reuse a recording with new data
// (positions, contexts, block tables), and across the things that must not reuse one (another
// cache, another model on the same backend).
#include <cstring>
#include <numeric>

#include "cuda_test_support.h"
#include "model/checkpoint.h"
#include "model/synthetic.h"
#include "model/transformer.h"
#include "support/test_support.h"

namespace wedlm {
namespace {

struct StepOutputs {
  std::vector<float> logits;
  std::vector<float> entropy;
  std::vector<std::int32_t> argmax;
  void add(const ForwardOutput& out) {
    logits.insert(logits.end(), out.logits.begin(), out.logits.end());
    entropy.insert(entropy.end(), out.entropy.begin(), out.entropy.end());
    argmax.insert(argmax.end(), out.argmax.begin(), out.argmax.end());
  }
};

std::vector<std::int32_t> iota_from(std::size_t n, std::int32_t first) {
  std::vector<std::int32_t> v(n);
  std::iota(v.begin(), v.end(), first);
  return v;
}

// A prefill in chunks, then decode steps of 1 and 4 rows at growing contexts (each row count
// three times or more, so that it is run, recorded and replayed), then a batch of two sequences
// in scattered blocks of a second cache.
StepOutputs run_steps(const Checkpoint& ck, Backend& backend) {
  Transformer t(ck, backend, 8);
  const std::int32_t vocab = static_cast<std::int32_t>(ck.config.vocab_size);
  std::mt19937 rng(11);
  std::uniform_int_distribution<std::int32_t> token(0, vocab - 1);
  auto ids = [&](std::size_t n) {
    std::vector<std::int32_t> v(n);
    for (auto& x : v) x = token(rng);
    return v;
  };
  StepOutputs run;
  auto cache = t.make_kv_cache(128);
  std::int32_t at = 0;
  auto step = [&](std::size_t rows) {
    const auto step_ids = ids(rows);
    const auto positions = iota_from(rows, at);
    const auto all = iota_from(rows, 0);
    ForwardRequest r{step_ids, positions, at, all};
    r.full_logits = true;
    run.add(t.forward_rows(*cache, std::span<const ForwardRequest>(&r, 1)));
    at += static_cast<std::int32_t>(rows);
  };
  step(19);  // chunks of 8, 8, 3 rows
  for (int i = 0; i < 5; ++i) step(1);
  for (int i = 0; i < 4; ++i) step(4);
  for (int i = 0; i < 3; ++i) step(8);

  auto paged = t.make_kv_cache(64, 4);
  const std::vector<std::int32_t> table_a = {5, 2, 7, 0, 9, 11}, table_b = {1, 6, 3, 4, 8, 10};
  std::int32_t at_a = 0, at_b = 0;
  for (int i = 0; i < 4; ++i) {
    const std::size_t rows_a = i == 0 ? 6 : 2, rows_b = i == 0 ? 5 : 3;
    const auto ids_a = ids(rows_a), ids_b = ids(rows_b);
    const auto pos_a = iota_from(rows_a, at_a), pos_b = iota_from(rows_b, at_b);
    const auto all_a = iota_from(rows_a, 0), all_b = iota_from(rows_b, 0);
    ForwardRequest batch[] = {{ids_a, pos_a, at_a, all_a, table_a}, {ids_b, pos_b, at_b, all_b, table_b}};
    batch[0].full_logits = batch[1].full_logits = true;
    run.add(t.forward_rows(*paged, batch));
    at_a += static_cast<std::int32_t>(rows_a);
    at_b += static_cast<std::int32_t>(rows_b);
  }
  return run;
}

void expect_same_bits(const StepOutputs& got, const StepOutputs& want) {
  ASSERT_EQ(got.logits.size(), want.logits.size());
  ASSERT_EQ(got.entropy.size(), want.entropy.size());
  EXPECT_EQ(0, std::memcmp(got.logits.data(), want.logits.data(), got.logits.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(got.entropy.data(), want.entropy.data(), got.entropy.size() * sizeof(float)));
  EXPECT_EQ(got.argmax, want.argmax);
}

TEST(CudaGraphs, ReplayedChunksEqualEagerOnesBitForBit) {
  WEDLM_REQUIRE_CUDA_DEVICE();
  // One backend for both runs: its GEMM algorithms are chosen by timing, once per shape, so a
  // second backend could pick others and differ in the last bits for that reason alone.
  auto gpu = make_cuda_backend();
  long recorded = 0;
  // Two models one after the other on the same backend: the second must not replay the
  // first's recordings (its transformer may even sit at the same address).
  for (const char* name : {"qwen3_f16_untied_gqa", "qwen2_bf16_untied_gqa_hd24"}) {
    SCOPED_TRACE(name);
    auto ck = open_checkpoint(test::fixture_model(name));
    cuda::set_graphs_enabled(*gpu, false);
    const StepOutputs want = run_steps(*ck, *gpu);
    EXPECT_EQ(cuda::graph_stats(*gpu).recorded, recorded);
    cuda::set_graphs_enabled(*gpu, true);
    const cuda::GraphStats before = cuda::graph_stats(*gpu);
    const StepOutputs got = run_steps(*ck, *gpu);
    const cuda::GraphStats after = cuda::graph_stats(*gpu);
    expect_same_bits(got, want);
    for (float v : got.logits) ASSERT_TRUE(std::isfinite(v));
    // Rows 1, 4, 8 and 5 (the paged batch) are recorded; each is replayed at least once.
    EXPECT_GE(after.recorded - before.recorded, 4);
    EXPECT_GE(after.replayed - before.replayed, 4);
    recorded = after.recorded;
  }
}

// The tiny synthetic model (a 512-token vocabulary) with this attention shape.
ModelConfig tiny_with_attention(std::int64_t heads, std::int64_t kv_heads, std::int64_t head_dim) {
  ModelConfig config = synthetic_config("tiny");
  config.vocab_size = 512;
  config.num_heads = heads;
  config.num_kv_heads = kv_heads;
  config.head_dim = head_dim;
  return config;
}

// A prompt of `prompt` tokens, then 32-row WeDLM-like steps (each rewrites the slots after a
// slightly longer committed prefix), eagerly and replayed from CUDA graphs: the logits must be
// the same bits.
void expect_steps_replay_bit_for_bit(const ModelConfig& config, const char* name, std::int32_t prompt) {
  auto ck = make_checkpoint(name, config, make_random_weights(config, DType::BF16, 3));
  auto gpu = make_cuda_backend();
  auto run = [&] {
    Transformer t(*ck, *gpu, 64);
    auto cache = t.make_kv_cache(prompt + 140);
    std::mt19937 rng(4);
    std::uniform_int_distribution<std::int32_t> token(0, config.vocab_size - 1);
    auto ids = [&](std::size_t n) {
      std::vector<std::int32_t> v(n);
      for (auto& x : v) x = token(rng);
      return v;
    };
    StepOutputs out;
    const auto prompt_ids = ids(static_cast<std::size_t>(prompt));
    const auto prompt_positions = iota_from(prompt, 0);
    t.forward(*cache, {prompt_ids, prompt_positions, 0, {}});
    for (std::int32_t at = prompt; at <= prompt + 15; at += 5) {
      const auto step_ids = ids(32);
      const auto positions = iota_from(32, at);
      const auto all = iota_from(32, 0);
      ForwardRequest r{step_ids, positions, at, all};
      r.full_logits = true;
      out.add(t.forward_rows(*cache, std::span<const ForwardRequest>(&r, 1)));
    }
    return out;
  };
  cuda::set_graphs_enabled(*gpu, false);
  const StepOutputs want = run();
  cuda::set_graphs_enabled(*gpu, true);
  const cuda::GraphStats before = cuda::graph_stats(*gpu);
  const StepOutputs got = run();
  const cuda::GraphStats after = cuda::graph_stats(*gpu);
  expect_same_bits(got, want);
  EXPECT_GE(after.replayed - before.replayed, 2);  // the 32-row step, replayed from its third run
}

// Steps whose attention merges its key splits inside a thread block cluster (attention_plan.h):
// 16 KV heads x one 64-unit tile of a 32-row step, split 8 ways at 516-547 keys on a 132-SM
// GPU. Replayed, they must equal eager runs bit for bit like every other step (the graph's grid
// is a capacity rounded up to whole clusters, and the blocks past the step's work exit).
TEST(CudaGraphs, ClusterMergedStepsReplayBitForBit) {
  WEDLM_REQUIRE_CUDA_DEVICE();
  expect_steps_replay_bit_for_bit(tiny_with_attention(32, 16, 16), "cluster-steps", 500);
}

// The 8B model's attention shape (32 heads, 8 KV heads of 128): on an H100/H200 its 32-row steps
// run the warpgroup-MMA kernel (TMA copies through tensor maps baked into the graph), at ~1500
// keys split 16 ways and merged by the combine kernel, at ~500 keys in clusters.
TEST(CudaGraphs, WgmmaStepsReplayBitForBit) {
  WEDLM_REQUIRE_CUDA_DEVICE();
  const ModelConfig config = tiny_with_attention(32, 8, 128);
  expect_steps_replay_bit_for_bit(config, "wgmma-steps", 1500);
  // At ~500 keys the splits merge in clusters of 8, and the graph's spare blocks exit as whole
  // clusters.
  expect_steps_replay_bit_for_bit(config, "wgmma-cluster-steps", 500);
}

}  // namespace
}  // namespace wedlm
