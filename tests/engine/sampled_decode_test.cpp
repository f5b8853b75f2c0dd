// Sampled decoding end to end on the CPU: the engine takes each step's uniforms from the
// request's generator before the forward and has the backend draw every logit row with them.
// The reference here runs the decoding rules by hand, recomputing the whole sequence every step
// (a fresh cache each forward), and samples each logit row with Sampler::sample after the
// forward, in row order: the order the engine's uniforms must reproduce.
#include <numeric>

#include <gtest/gtest.h>

#include "backend/cpu/cpu_backend.h"
#include "decode/ar_decoder.h"
#include "decode/sampler.h"
#include "decode/window.h"
#include "model/checkpoint.h"
#include "model/transformer.h"
#include "support/test_support.h"
#include "wedlm/engine.h"

namespace wedlm {
namespace {

std::vector<std::int32_t> reference_decode(const Checkpoint& ck, const GenerateRequest& req, std::int64_t context) {
  auto backend = make_cpu_backend();
  Transformer t(ck, *backend);
  Sampler sampler(req.sampling);
  const std::size_t vocab = static_cast<std::size_t>(ck.config.vocab_size);
  const DecodeLimits limits{req.max_tokens, {}, context - static_cast<std::int64_t>(req.prompt.size())};
  // Logits of `logit_rows` of the sequence `ids` at `positions`, computed from scratch.
  auto forward = [&](const std::vector<std::int32_t>& ids, const std::vector<std::int32_t>& positions,
                     const std::vector<std::int32_t>& logit_rows) {
    auto cache = t.make_kv_cache(static_cast<std::int64_t>(ids.size()));
    return t.forward(*cache, {ids, positions, 0, logit_rows});
  };
  std::vector<std::int32_t> tokens = req.prompt;
  if (req.mode == DecodeMode::ar) {
    ArDecoder ar(limits);
    while (!ar.finished()) {
      std::vector<std::int32_t> positions(tokens.size());
      std::iota(positions.begin(), positions.end(), 0);
      const std::vector<float> logits =
          forward(tokens, positions, {static_cast<std::int32_t>(tokens.size() - 1)});
      const std::int32_t token = sampler.sample(logits.data(), vocab);
      ar.accept(token);
      tokens.push_back(token);
    }
    return ar.committed();
  }
  WedlmWindow window(req.wedlm, static_cast<std::int32_t>(ck.config.mask_token_id), limits);
  while (!window.finished()) {
    const StepPlan plan = window.plan();
    const std::int32_t n = static_cast<std::int32_t>(tokens.size());
    std::vector<std::int32_t> ids = tokens, positions(tokens.size()), logit_rows;
    std::iota(positions.begin(), positions.end(), 0);
    for (std::size_t k = 0; k < plan.rows.size(); ++k) {
      ids.push_back(plan.rows[k].token);
      positions.push_back(n + plan.rows[k].window_index);
      if (static_cast<std::int32_t>(k) >= plan.first_mask_row) logit_rows.push_back(n + static_cast<std::int32_t>(k));
    }
    const std::vector<float> logits = forward(ids, positions, logit_rows);
    std::vector<MaskRowResult> results;
    for (std::size_t i = 0; i < logit_rows.size(); ++i) {
      const float* row = logits.data() + i * vocab;
      results.push_back({entropy_of_logits(row, vocab), sampler.sample(row, vocab)});
    }
    window.apply(results);
    tokens = req.prompt;
    tokens.insert(tokens.end(), window.committed().begin(), window.committed().end());
  }
  return window.committed();
}

TEST(SampledDecode, EngineTokensAreTheSamplersDrawsInRowOrder) {
  const std::string model = test::fixtures_dir() + "/decode_models/qwen3_tiny";
  auto ck = open_checkpoint(model);
  const std::int64_t context = 96;
  Engine engine({model, "cpu", context, false});
  int sampled_differently = 0;
  for (DecodeMode mode : {DecodeMode::wedlm, DecodeMode::ar}) {
    for (const SamplingParams& sampling :
         {SamplingParams{1.5, 0, 1.0, 7}, SamplingParams{1.2, 20, 0.9, 8}, SamplingParams{0.8, 0, 0.7, 9}}) {
      SCOPED_TRACE(testing::Message() << (mode == DecodeMode::ar ? "ar" : "wedlm") << " temperature "
                                      << sampling.temperature << " top_k " << sampling.top_k << " top_p "
                                      << sampling.top_p);
      GenerateRequest req;
      req.prompt = {11, 42, 7, 99, 5};
      req.mode = mode;
      req.sampling = sampling;
      req.max_tokens = 20;
      req.ignore_eos = true;
      req.wedlm.window = 8;
      const std::vector<std::int32_t> want = reference_decode(*ck, req, context);
      EXPECT_EQ(engine.generate(req).output, want);
      GenerateRequest greedy = req;
      greedy.sampling.temperature = 0;
      if (engine.generate(greedy).output != want) ++sampled_differently;
    }
  }
  EXPECT_GT(sampled_differently, 0);  // the draws mattered: this compared sampling, not argmaxes
}

}  // namespace
}  // namespace wedlm
