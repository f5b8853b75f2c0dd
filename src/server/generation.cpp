#include "server/generation.h"

namespace wedlm::server {

Generation::Generation(BatchEngine& engine, const Tokenizer* tokenizer, std::vector<std::string> stop_strings)
    : engine_(engine) {
  if (tokenizer) stream_.emplace(*tokenizer, std::move(stop_strings));
}

std::shared_ptr<Generation> Generation::start(BatchEngine& engine, GenerateRequest request, const Tokenizer* tokenizer,
                                              std::vector<std::string> stop_strings) {
  std::shared_ptr<Generation> self(new Generation(engine, tokenizer, std::move(stop_strings)));
  RequestEvents events;
  // The callbacks own a reference, so the object outlives a client that left early.
  events.on_tokens = [self](std::span<const std::int32_t> ids) { return self->on_tokens(ids); };
  events.on_done = [self](const GenerateResult& result) { self->on_done(result); };
  self->id_ = engine.submit(std::move(request), std::move(events));
  return self;
}

bool Generation::on_tokens(std::span<const std::int32_t> ids) {
  if (abandoned_.load()) return false;
  std::string text = stream_ ? stream_->push(ids) : std::string();
  {
    std::lock_guard lock(mutex_);
    pending_.text += text;
    pending_.token_ids.insert(pending_.token_ids.end(), ids.begin(), ids.end());
  }
  changed_.notify_one();
  return !(stream_ && stream_->stopped());
}

void Generation::on_done(const GenerateResult& result) {
  std::string rest = stream_ ? stream_->finish() : std::string();
  // A stop string ends the request through on_tokens returning false, which the engine reports
  // as `stop`; a cancelled request (FinishReason::none) has no reason to report.
  const bool stopped = stream_ && stream_->stopped();
  {
    std::lock_guard lock(mutex_);
    pending_.text += rest;
    pending_.done = true;
    pending_.finish_reason = stopped ? "stop" : result.finish_reason == FinishReason::none ? "" : to_string(result.finish_reason);
    pending_.usage = {result.prompt_tokens, static_cast<std::int64_t>(result.output.size())};
  }
  changed_.notify_one();
}

Generation::Update Generation::take() {
  Update out;
  std::swap(out, pending_);
  // `done` and the totals stay visible to later calls.
  pending_.done = out.done;
  pending_.finish_reason = out.finish_reason;
  pending_.usage = out.usage;
  return out;
}

Generation::Update Generation::next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return pending_.done || !pending_.text.empty() || !pending_.token_ids.empty(); });
  return take();
}

Generation::Update Generation::wait_all() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return pending_.done; });
  return take();
}

bool Generation::abandon() {
  if (abandoned_.exchange(true)) return false;
  {
    std::lock_guard lock(mutex_);
    if (pending_.done) return false;
  }
  engine_.cancel(id_);
  return true;
}

}  // namespace wedlm::server
