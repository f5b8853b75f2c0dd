#include "wedlm/batch_engine.h"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <numeric>
#include <optional>
#include <thread>

#include "engine/loaded_model.h"
#include "engine/sequence_decoder.h"
#include "kv/block_allocator.h"
#include "kv/prefix_cache.h"
#include "util/error.h"
#include "util/timer.h"

namespace wedlm {

namespace {

struct Request {
  Request(RequestEvents e, SequenceDecoder s, std::int32_t w) : events(std::move(e)), seq(std::move(s)), window(w) {}
  std::uint64_t id = 0;
  RequestEvents events;
  SequenceDecoder seq;
  std::int32_t window;  // WeDLM window: bounds the rows of one step
  std::vector<std::int32_t> blocks;  // block table; K/V of tokens[0, kv_valid) is in them
  std::int64_t kv_valid = 0;
  bool stopped_by_caller = false;
  GenerateResult result;
  Stopwatch decode_clock;
  StepRows rows;
};

}  // namespace

struct BatchEngine::Impl {
  LoadedModel model;
  BatchOptions options;
  std::unique_ptr<KvCache> pool;
  ForwardOutput forward_output;  // every forward's, reused (forward_rows keeps its storage)
  std::unique_ptr<BlockAllocator> allocator;
  std::unique_ptr<PrefixCache> prefix;

  std::mutex mutex;
  std::condition_variable wake, idle;
  std::deque<std::unique_ptr<Request>> waiting;  // guarded by mutex
  std::vector<std::uint64_t> cancels;            // guarded by mutex
  bool stopping = false, draining = false;       // guarded by mutex
  EngineStats stats;                             // guarded by mutex
  std::uint64_t next_id = 1;                     // guarded by mutex
  std::int64_t unfinished = 0;                   // accepted, on_done not yet returned; guarded by mutex
  std::vector<std::unique_ptr<Request>> running; // scheduler thread only
  std::thread thread;

  Impl(const EngineOptions& engine, const BatchOptions& batch);
  void loop();
  void admit();
  bool prefill(Request& r);
  void step();
  std::optional<std::int32_t> allocate_block();
  bool ensure_blocks(Request& r, std::int64_t slots);
  void release_blocks(Request& r);
  void offer_to_prefix_cache(Request& r);
  void preempt(std::size_t index);
  void finish(std::unique_ptr<Request> r, std::optional<FinishReason> forced);
  bool deliver(Request& r, const StepResult& step);
  void publish_stats();
};

BatchEngine::Impl::Impl(const EngineOptions& engine, const BatchOptions& batch)
    : model(engine, batch.max_batch_rows), options(batch) {
  if (options.max_sequences < 1) fail("max_sequences must be >= 1, got {}", options.max_sequences);
  if (options.block_size < 1) fail("block size must be >= 1, got {}", options.block_size);
  if (options.max_batch_rows < 1) fail("max_batch_rows must be >= 1, got {}", options.max_batch_rows);
  const ModelConfig& c = model.checkpoint->config;
  std::int64_t blocks = options.kv_blocks;
  if (blocks <= 0) {
    // Enough for every sequence's full context, within the memory cap (fp32 K and V).
    const std::int64_t per_sequence = (model.info.context + options.block_size - 1) / options.block_size + 1;
    const std::int64_t bytes_per_block = 2 * 4 * c.num_layers * c.num_kv_heads * c.head_dim * options.block_size;
    blocks = std::min(per_sequence * options.max_sequences, std::max<std::int64_t>(1, options.kv_memory_bytes / bytes_per_block));
  }
  pool = model.transformer->make_kv_cache(blocks * options.block_size, options.block_size);
  allocator = std::make_unique<BlockAllocator>(static_cast<std::int32_t>(blocks));
  if (options.prefix_cache) prefix = std::make_unique<PrefixCache>(*allocator, options.block_size);
  stats.kv_blocks_total = blocks;
  thread = std::thread([this] { loop(); });
}

std::optional<std::int32_t> BatchEngine::Impl::allocate_block() {
  while (true) {
    if (auto b = allocator->allocate()) return b;
    if (!prefix || !prefix->evict_one()) return std::nullopt;
  }
}

bool BatchEngine::Impl::ensure_blocks(Request& r, std::int64_t slots) {
  while (static_cast<std::int64_t>(r.blocks.size()) * options.block_size < slots) {
    auto b = allocate_block();
    if (!b) return false;
    r.blocks.push_back(*b);
  }
  return true;
}

void BatchEngine::Impl::release_blocks(Request& r) {
  for (std::int32_t b : r.blocks) allocator->release(b);
  r.blocks.clear();
  r.kv_valid = 0;
}

void BatchEngine::Impl::offer_to_prefix_cache(Request& r) {
  if (prefix) prefix->insert(r.seq.tokens(), r.blocks, r.kv_valid / options.block_size);
}

bool BatchEngine::Impl::deliver(Request& r, const StepResult& step) {
  if (step.committed.empty() || !r.events.on_tokens || r.seq.finished()) {
    if (!step.committed.empty() && r.events.on_tokens) r.events.on_tokens(step.committed);
    return true;
  }
  if (!r.events.on_tokens(step.committed)) r.stopped_by_caller = true;
  return !r.stopped_by_caller;
}

// Computes the K/V of the request's tokens that are not in the cache (all of them after a
// preemption), reusing cached prefix blocks. False when the pool has no room.
bool BatchEngine::Impl::prefill(Request& r) {
  const std::int64_t n = r.seq.kv_length();
  const auto& tokens = r.seq.tokens();
  const std::int64_t bs = options.block_size;
  r.blocks = prefix ? prefix->match(tokens, (n - 1) / bs) : std::vector<std::int32_t>{};  // keep one row to run
  r.kv_valid = static_cast<std::int64_t>(r.blocks.size()) * bs;
  if (!ensure_blocks(r, n)) {
    release_blocks(r);
    return false;
  }
  Stopwatch clock;
  std::span<const std::int32_t> ids(tokens.data() + r.kv_valid, static_cast<std::size_t>(n - r.kv_valid));
  std::vector<std::int32_t> positions(ids.size());
  std::iota(positions.begin(), positions.end(), static_cast<std::int32_t>(r.kv_valid));
  std::vector<std::int32_t> logit_rows;
  if (r.seq.needs_prefill_logits()) logit_rows.push_back(static_cast<std::int32_t>(ids.size() - 1));
  ForwardRequest request{ids, positions, r.kv_valid, logit_rows, r.blocks};
  request.full_logits = false;
  const std::vector<RowDraw> draws = r.seq.prefill_draws();
  request.draws = draws;
  ForwardOutput& out = forward_output;
  model.transformer->forward_rows(*pool, std::span<const ForwardRequest>(&request, 1), out);
  {
    std::lock_guard lock(mutex);
    stats.prefill_tokens_computed += static_cast<std::int64_t>(ids.size());
    stats.prefix_cache_hit_tokens += r.kv_valid;
  }
  r.kv_valid = n;
  r.result.prefill_ms += clock.millis();
  offer_to_prefix_cache(r);
  if (!logit_rows.empty()) {
    StepResult first = r.seq.accept_prefill_logits(logit_rows_of(out, 0, 1)[0]);
    r.kv_valid = r.seq.kv_length();
    deliver(r, first);
  }
  return true;
}

void BatchEngine::Impl::admit() {
  while (static_cast<std::int32_t>(running.size()) < options.max_sequences) {
    std::unique_ptr<Request> r;
    {
      std::lock_guard lock(mutex);
      if (waiting.empty()) return;
      r = std::move(waiting.front());
      waiting.pop_front();
    }
    bool admitted = false;
    try {
      admitted = prefill(*r);
    } catch (const std::exception& e) {
      // Its own prefill failed (a first token that cannot be sampled, say): end this request
      // alone, as a failed step ends the running ones.
      std::fprintf(stderr, "wedlm: request %llu failed in its prefill: %s; ending it\n",
                   static_cast<unsigned long long>(r->id), e.what());
      finish(std::move(r), FinishReason::none);
      continue;
    }
    if (!admitted) {
      if (running.empty()) {
        // Nothing will ever free blocks for it: the pool is smaller than this one request.
        std::fprintf(stderr, "wedlm: request %llu does not fit the KV pool (%lld blocks); ending it\n",
                     static_cast<unsigned long long>(r->id), static_cast<long long>(stats.kv_blocks_total));
        finish(std::move(r), FinishReason::length);
        continue;
      }
      std::lock_guard lock(mutex);
      waiting.push_front(std::move(r));
      return;
    }
    if (r->seq.finished() || r->stopped_by_caller) {
      finish(std::move(r), std::nullopt);
      continue;
    }
    r->decode_clock.reset();
    running.push_back(std::move(r));
  }
}

void BatchEngine::Impl::preempt(std::size_t index) {
  std::unique_ptr<Request> r = std::move(running[index]);
  running.erase(running.begin() + static_cast<std::ptrdiff_t>(index));
  release_blocks(*r);
  std::lock_guard lock(mutex);
  ++stats.preemptions;
  waiting.push_front(std::move(r));
}

void BatchEngine::Impl::step() {
  // Room for every sequence's next rows first (a WeDLM step has at most 2W rows); when the pool
  // is full, the most recently admitted sequence gives its blocks back and waits.
  for (std::size_t i = 0; i < running.size();) {
    Request& r = *running[i];
    const std::int64_t rows = r.seq.mode() == DecodeMode::wedlm ? 2 * static_cast<std::int64_t>(r.window) : 1;
    const std::int64_t slots = std::min<std::int64_t>(r.seq.kv_length() + rows, model.info.context);
    if (ensure_blocks(r, slots)) {
      ++i;
      continue;
    }
    preempt(running.size() - 1);
  }
  if (running.empty()) return;

  std::vector<ForwardRequest> batch;
  for (auto& r : running) {
    r->seq.plan(r->rows);
    if (!r->rows.ids.empty()) {
      batch.push_back({r->rows.ids, r->rows.positions, r->rows.cache_start, r->rows.logit_rows, r->blocks});
      batch.back().full_logits = false;
      batch.back().draws = r->rows.draws;
    }
  }
  ForwardOutput& out = forward_output;
  if (batch.empty()) {
    out = ForwardOutput{};
  } else {
    model.transformer->forward_rows(*pool, batch, out);
  }
  std::size_t offset = 0;
  std::vector<std::unique_ptr<Request>> still_running;
  for (auto& r : running) {
    const std::size_t count = r->rows.ids.empty() ? 0 : r->rows.logit_rows.size();
    const std::vector<LogitRow> rows = logit_rows_of(out, offset, count);
    offset += count;
    ++r->result.forwards;
    StepResult step = r->seq.apply(rows);
    r->kv_valid = r->seq.kv_length();
    offer_to_prefix_cache(*r);
    deliver(*r, step);
    if (r->seq.finished() || r->stopped_by_caller) {
      finish(std::move(r), std::nullopt);
    } else {
      still_running.push_back(std::move(r));
    }
  }
  running = std::move(still_running);
  std::lock_guard lock(mutex);
  ++stats.forwards_total;
}

void BatchEngine::Impl::finish(std::unique_ptr<Request> r, std::optional<FinishReason> forced) {
  release_blocks(*r);
  r->result.output.assign(r->seq.output().begin(), r->seq.output().end());
  r->result.prompt_tokens = r->seq.prompt_length();
  r->result.finish_reason = forced ? *forced : (r->stopped_by_caller ? FinishReason::stop : r->seq.finish_reason());
  r->result.decode_ms = r->decode_clock.millis();
  {
    std::lock_guard lock(mutex);
    stats.completion_tokens_total += static_cast<std::int64_t>(r->result.output.size());
  }
  // Whoever learns of the end from on_done sees statistics that already exclude this request.
  publish_stats();
  if (r->events.on_done) r->events.on_done(r->result);
  // Only now may drain() return: its caller may destroy what on_done used.
  std::lock_guard lock(mutex);
  if (--unfinished == 0) idle.notify_all();
}

void BatchEngine::Impl::publish_stats() {
  // Mid-step, finished requests have already left their slot in `running` (null).
  std::int64_t in_sequences = 0, running_now = 0;
  for (const auto& r : running) {
    if (!r) continue;
    in_sequences += static_cast<std::int64_t>(r->blocks.size());
    ++running_now;
  }
  std::lock_guard lock(mutex);
  stats.requests_running = running_now;
  stats.requests_waiting = static_cast<std::int64_t>(waiting.size());
  stats.kv_blocks_used = allocator->used_blocks();
  stats.kv_blocks_in_sequences = in_sequences;
}

void BatchEngine::Impl::loop() {
  while (true) {
    std::vector<std::uint64_t> cancel_ids;
    std::vector<std::unique_ptr<Request>> cancelled;
    bool stop = false;
    {
      std::unique_lock lock(mutex);
      wake.wait(lock, [&] { return stopping || !waiting.empty() || !running.empty() || !cancels.empty(); });
      stop = stopping;
      cancel_ids.swap(cancels);
      for (auto it = waiting.begin(); it != waiting.end();) {
        if (stop || std::find(cancel_ids.begin(), cancel_ids.end(), (*it)->id) != cancel_ids.end()) {
          cancelled.push_back(std::move(*it));
          it = waiting.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (std::size_t i = 0; i < running.size();) {
      if (stop || std::find(cancel_ids.begin(), cancel_ids.end(), running[i]->id) != cancel_ids.end()) {
        cancelled.push_back(std::move(running[i]));
        running.erase(running.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        ++i;
      }
    }
    for (auto& r : cancelled) finish(std::move(r), FinishReason::none);
    if (stop) {
      publish_stats();
      return;
    }
    try {
      admit();
      if (!running.empty()) step();
    } catch (const std::exception& e) {
      // A failed forward must not take the server down: end the affected requests, keep serving.
      std::fprintf(stderr, "wedlm: batch step failed: %s; ending %zu running request(s)\n", e.what(), running.size());
      for (auto& r : running) {
        if (r) finish(std::move(r), FinishReason::none);
      }
      running.clear();
    }
    publish_stats();
  }
}

BatchEngine::BatchEngine(const EngineOptions& engine, const BatchOptions& batch)
    : impl_(std::make_unique<Impl>(engine, batch)) {}

BatchEngine::~BatchEngine() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  impl_->thread.join();
}

const ModelInfo& BatchEngine::info() const { return impl_->model.info; }

std::uint64_t BatchEngine::submit(GenerateRequest request, RequestEvents events) {
  auto r = std::make_unique<Request>(std::move(events), SequenceDecoder(request, impl_->model.info),
                                     request.wedlm.window);
  std::uint64_t id;
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->draining || impl_->stopping) fail("the engine is shutting down and accepts no new requests");
    id = r->id = impl_->next_id++;
    ++impl_->unfinished;
    ++impl_->stats.requests_total;
    impl_->stats.prompt_tokens_total += r->seq.prompt_length();
    impl_->waiting.push_back(std::move(r));
    impl_->stats.requests_waiting = static_cast<std::int64_t>(impl_->waiting.size());
  }
  impl_->wake.notify_all();
  return id;
}

void BatchEngine::cancel(std::uint64_t id) {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->cancels.push_back(id);
  }
  impl_->wake.notify_all();
}

EngineStats BatchEngine::stats() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->stats;
}

void BatchEngine::drain() {
  std::unique_lock lock(impl_->mutex);
  impl_->draining = true;
  impl_->idle.wait(lock, [&] { return impl_->unfinished == 0; });
}

}  // namespace wedlm
