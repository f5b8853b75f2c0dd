#pragma once
// Continuous batching: many requests decode together, one forward per step over the rows of
// every running sequence (each with its own WeDLM window or AR state, parameters, seed and
// stops), their K/V in a shared pool of blocks. A scheduler thread admits waiting requests
// (prefill, chunked), steps running ones, and preempts (frees, later recomputes) when KV blocks
// run out. Full blocks of committed tokens are kept in a prefix cache keyed by every token up to
// the block's end, so a request that shares a prefix with an earlier one skips that prefill.
// Greedy results never depend on what else is batched.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "wedlm/engine.h"

namespace wedlm {

struct BatchOptions {
  std::int32_t max_sequences = 32;     // sequences stepping at once
  std::int64_t block_size = 16;        // cache slots per KV block
  std::int64_t kv_blocks = 0;          // 0: enough for max_sequences full contexts, within kv_memory_bytes
  std::int64_t kv_memory_bytes = std::int64_t{4} << 30;  // cap for the derived kv_blocks
  std::int64_t max_batch_rows = 512;   // rows per forward; longer prefills are chunked
  bool prefix_cache = true;
};

// Callbacks of one request. They run on the scheduler thread: keep them short, never block.
struct RequestEvents {
  // Tokens committed by one step. Return false to end the request now (a stop string was found,
  // or the client is gone); it then finishes with FinishReason::stop.
  std::function<bool(std::span<const std::int32_t> committed)> on_tokens;
  // Exactly once per accepted request: when it finishes, or when it is cancelled (then
  // finish_reason is FinishReason::none and `output` holds what had been committed).
  std::function<void(const GenerateResult& result)> on_done;
};

struct EngineStats {
  std::int64_t requests_total = 0;      // accepted since start
  std::int64_t requests_running = 0;
  std::int64_t requests_waiting = 0;
  std::int64_t prompt_tokens_total = 0;
  std::int64_t completion_tokens_total = 0;
  std::int64_t forwards_total = 0;      // decode steps (batched forwards), prefill not counted
  std::int64_t prefill_tokens_computed = 0;  // prompt tokens actually run (cache hits excluded)
  std::int64_t prefix_cache_hit_tokens = 0;
  std::int64_t kv_blocks_used = 0;      // held by running sequences or the prefix cache
  std::int64_t kv_blocks_in_sequences = 0;  // held by running sequences only (0 when idle)
  std::int64_t kv_blocks_total = 0;
  std::int64_t preemptions = 0;
};

class BatchEngine {
 public:
  BatchEngine(const EngineOptions& engine, const BatchOptions& batch);
  // Cancels whatever is still queued or running (each gets its on_done) and stops the thread.
  ~BatchEngine();
  BatchEngine(const BatchEngine&) = delete;
  BatchEngine& operator=(const BatchEngine&) = delete;

  const ModelInfo& info() const;
  // Thread-safe. Validates (wedlm::Error for bad parameters or a prompt that does not fit the
  // context; no callback is called then) and queues the request; returns its id.
  std::uint64_t submit(GenerateRequest request, RequestEvents events);
  // Thread-safe; unknown or finished ids are ignored. Frees the request's KV blocks.
  void cancel(std::uint64_t id);
  EngineStats stats() const;
  // Stops admitting new requests (submit throws) and returns once every accepted request is done.
  void drain();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wedlm
