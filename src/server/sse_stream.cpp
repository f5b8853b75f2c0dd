#include "server/sse_stream.h"

#include <algorithm>

namespace wedlm::server {

namespace {

constexpr auto kPoll = std::chrono::milliseconds(100);

}  // namespace

std::string sse_event(const nlohmann::json& payload) {
  // `replace`: a stray invalid byte must not throw in the middle of a stream.
  return "data: " + payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n\n";
}

void OpenStreams::add() {
  std::lock_guard lock(mutex_);
  ++open_;
}

void OpenStreams::remove() {
  {
    std::lock_guard lock(mutex_);
    --open_;
  }
  idle_.notify_all();
}

bool OpenStreams::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return idle_.wait_for(lock, timeout, [&] { return open_ == 0; });
}

SseStream::SseStream(std::shared_ptr<Generation> generation, ResponseHeader header, bool include_usage,
                     bool return_token_ids, std::function<void()> on_disconnect, OpenStreams& open,
                     std::chrono::milliseconds heartbeat)
    : generation_(std::move(generation)), header_(std::move(header)), include_usage_(include_usage),
      return_token_ids_(return_token_ids), on_disconnect_(std::move(on_disconnect)), open_(open),
      heartbeat_(heartbeat), last_write_(std::chrono::steady_clock::now()) {
  open_.add();
}

// Normally release() has run; this covers a response httplib dropped without releasing it.
SseStream::~SseStream() {
  if (!released_) open_.remove();
}

bool SseStream::write(httplib::DataSink& sink, const std::string& bytes) {
  if (!sink.write(bytes.data(), bytes.size())) {
    abandon();
    return false;
  }
  last_write_ = std::chrono::steady_clock::now();
  return true;
}

void SseStream::abandon() {
  if (generation_->abandon() && on_disconnect_) on_disconnect_();
}

bool SseStream::pump(httplib::DataSink& sink) {
  if (finished_) {
    sink.done();
    return true;
  }
  const std::vector<std::int32_t> no_ids;
  if (first_ && header_.endpoint == Endpoint::chat) {
    // OpenAI opens a chat stream with the assistant role and empty content; it also tells the
    // client at once that the request was accepted.
    first_ = false;
    return write(sink, sse_event(stream_chunk(header_, "", return_token_ids_ ? &no_ids : nullptr, "", true)));
  }
  first_ = false;
  Generation::Update u = generation_->next(std::min<std::chrono::milliseconds>(kPoll, heartbeat_));
  if (!u.text.empty() || (!u.token_ids.empty() && return_token_ids_)) {
    if (!write(sink, sse_event(stream_chunk(header_, u.text, return_token_ids_ ? &u.token_ids : nullptr, "", false)))) {
      return false;
    }
  }
  if (u.done) {
    std::string tail = sse_event(stream_chunk(header_, "", return_token_ids_ ? &no_ids : nullptr, u.finish_reason, false));
    if (include_usage_) tail += sse_event(usage_chunk(header_, u.usage));
    tail += kSseDone;
    if (!write(sink, tail)) return false;
    finished_ = true;
    sink.done();
    return true;
  }
  if (std::chrono::steady_clock::now() - last_write_ > heartbeat_) {
    // An SSE comment: clients ignore it; a write that fails tells us the client left.
    return write(sink, ": keep-alive\n\n");
  }
  return true;
}

void SseStream::release(bool success) {
  if (!success) abandon();
  if (!released_) {
    released_ = true;
    open_.remove();
  }
}

}  // namespace wedlm::server
