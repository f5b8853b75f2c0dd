#pragma once
// Server-sent events for a streamed completion: each chunk `data: {json}\n\n`, a usage chunk
// (OpenAI's stream_options.include_usage), then `data: [DONE]\n\n`.
//
// httplib calls pump() repeatedly on the request's HTTP thread (chunked content provider). Each
// call waits briefly for news from the engine and writes it. A failed write means the client
// left: the sequence is cancelled so its KV blocks go back to the pool.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "server/generation.h"
#include "server/openai_format.h"

namespace wedlm::server {

std::string sse_event(const nlohmann::json& payload);
inline constexpr const char* kSseDone = "data: [DONE]\n\n";

// Streams whose response is still being written. Shutdown waits for them after the engine has
// drained: stopping httplib earlier would cut the tail ([DONE]) off a finished stream.
class OpenStreams {
 public:
  void add();
  void remove();
  // True when none is open; false if `timeout` passed first.
  bool wait_idle(std::chrono::milliseconds timeout);

 private:
  std::mutex mutex_;
  std::condition_variable idle_;
  int open_ = 0;
};

class SseStream {
 public:
  // `on_disconnect` runs once if the client leaves before the end and the request was still
  // running. The stream counts in `open` until httplib releases it.
  SseStream(std::shared_ptr<Generation> generation, ResponseHeader header, bool include_usage, bool return_token_ids,
            std::function<void()> on_disconnect, OpenStreams& open, std::chrono::milliseconds heartbeat);
  ~SseStream();

  // One round of the content provider: false aborts the response (client gone).
  bool pump(httplib::DataSink& sink);
  // httplib's resource releaser: `success` false when the response did not complete.
  void release(bool success);

 private:
  bool write(httplib::DataSink& sink, const std::string& bytes);
  void abandon();

  std::shared_ptr<Generation> generation_;
  ResponseHeader header_;
  bool include_usage_;
  bool return_token_ids_;
  std::function<void()> on_disconnect_;
  bool first_ = true;
  bool finished_ = false;
  OpenStreams& open_;
  bool released_ = false;
  std::chrono::milliseconds heartbeat_;
  std::chrono::steady_clock::time_point last_write_;
};

}  // namespace wedlm::server
