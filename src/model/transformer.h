#pragma once
// The Qwen2/Qwen3 decoder stack, written once against the Backend interface. It knows nothing
// about WeDLM: it runs rows with explicit logical positions into explicit cache slots.
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "model/checkpoint.h"

namespace wedlm {

struct ForwardRequest {
  std::span<const std::int32_t> ids;        // one token per row
  std::span<const std::int32_t> positions;  // logical (RoPE) position per row
  std::int64_t cache_start = 0;             // row r's K/V goes to logical cache slot cache_start + r
  std::span<const std::int32_t> logit_rows; // rows whose logits are wanted, any order
  // The sequence's KV blocks; empty means the whole pool in order (one sequence owns the cache).
  std::span<const std::int32_t> block_table = {};
  // Whether the logit rows come back whole (vocab floats each) or only summarised (entropy and
  // argmax), which is all a greedy decoder reads.
  bool full_logits = true;
  // Empty, or one per logit row: each row is sampled where the logits are (Backend::
  // sample_logits) and only its token comes back.
  std::span<const RowDraw> draws = {};
};

// What a forward returns for the wanted rows of every sequence, sequence after sequence.
struct ForwardOutput {
  std::vector<float> entropy;          // per wanted row
  std::vector<std::int32_t> argmax;    // per wanted row
  std::vector<float> logits;           // whole rows of the sequences that asked, in order
  std::vector<std::int64_t> full_row;  // per wanted row: its row in `logits`, or -1
  std::vector<std::int32_t> token;     // per wanted row: its sampled token (draws), else its argmax
};

class Transformer {
 public:
  // `max_rows` bounds the rows of one pass; longer requests run in chunks (prefill).
  Transformer(const Checkpoint& checkpoint, Backend& backend, std::int64_t max_rows = 512);
  ~Transformer();

  const ModelConfig& config() const { return config_; }
  Backend& backend() { return backend_; }
  // A pool of at least `capacity` cache slots in blocks of `block_size`.
  std::unique_ptr<KvCache> make_kv_cache(std::int64_t capacity, std::int64_t block_size = 16);

  // Returns logits [logit_rows.size(), vocab] in the order of `logit_rows`.
  std::vector<float> forward(KvCache& cache, const ForwardRequest& request);
  // Several sequences in one pass, their rows packed in order. Returns the logits of every
  // sequence's logit rows, sequence after sequence.
  std::vector<float> forward_batch(KvCache& cache, std::span<const ForwardRequest> sequences);
  // The same pass, returning entropy, argmax and token (sampled with the request's draws, else the
  // argmax) of every wanted row, and whole rows only for the sequences that ask (the lm_head
  // output never leaves the device otherwise).
  ForwardOutput forward_rows(KvCache& cache, std::span<const ForwardRequest> sequences);
  // The same into `output`, reusing its storage: a loop that keeps one ForwardOutput pays for
  // its buffers (whole rows: vocab floats each, 19 MB for 32) once, not with fresh pages every
  // forward.
  void forward_rows(KvCache& cache, std::span<const ForwardRequest> sequences, ForwardOutput& output);

 private:
  struct Layer;
  void run_chunk(KvCache& cache, std::span<const std::int32_t> ids, std::span<const std::int32_t> positions,
                 std::span<const AttentionSequence> sequences);
  // The ops of one chunk, between the backend's begin_chunk and end_chunk.
  void run_layers(KvCache& cache, std::span<const std::int32_t> ids, std::span<const std::int32_t> positions,
                  std::span<const AttentionSequence> sequences);
  void validate(const KvCache& cache, const ForwardRequest& request) const;
  // Rows `rows` (increasing) of `all`: `all` itself when that is every row, else gathered into
  // `buffer` (grown to at least rows.size() rows; `capacity` tracks it).
  DeviceMatrix select_rows(DeviceMatrix all, std::span<const std::int32_t> rows, std::unique_ptr<DeviceBuffer>& buffer,
                           std::int64_t& capacity);

  ModelConfig config_;
  Backend& backend_;
  std::int64_t max_rows_;
  AttentionShape attention_shape_;
  std::unique_ptr<LinearWeight> embed_, lm_head_;
  std::unique_ptr<VectorWeight> final_norm_;
  std::vector<std::unique_ptr<Layer>> layers_;
  // Activations for one chunk of rows.
  std::unique_ptr<DeviceBuffer> residual_, residual_other_, normed_, qkv_, attn_out_, proj_out_, gate_up_, mlp_hidden_;
  std::unique_ptr<DeviceBuffer> selected_, logits_, full_logits_;  // grown on demand
  std::int64_t selected_capacity_ = 0, full_capacity_ = 0;
  std::vector<std::int32_t> whole_pool_;  // identity block table for single-sequence forwards
  std::vector<float> host_rows_;          // whole rows on their way to scattered output rows
  std::unique_ptr<DeviceBuffer> sampled_logits_;  // sampled rows gathered, when not all are
  std::int64_t sampled_capacity_ = 0;
};

}  // namespace wedlm
