#pragma once
// One request running on the BatchEngine, seen from the HTTP thread that serves it.
//
// The engine calls back on its scheduler thread, which steps every sequence and must never
// wait on a client. So the callbacks only turn committed ids into text (TextStream: stop
// strings, UTF-8-safe pieces) and append it to this object under a short lock; the HTTP thread
// waits on a condition variable and takes whatever piled up since it last looked.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/text_stream.h"
#include "server/openai_format.h"
#include "wedlm/batch_engine.h"

namespace wedlm::server {

class Generation {
 public:
  struct Update {
    std::string text;                     // text that became safe to show
    std::vector<std::int32_t> token_ids;  // ids committed since the last update
    bool done = false;
    std::string finish_reason;  // when done: "stop" or "length" ("" if cancelled)
    Usage usage;                // when done
  };

  // Queues the request; throws wedlm::Error when the engine refuses it (bad parameters, prompt
  // too long, draining). `tokenizer` may be null (no text, ids only); it must outlive the
  // request, as must `engine`.
  static std::shared_ptr<Generation> start(BatchEngine& engine, GenerateRequest request, const Tokenizer* tokenizer,
                                           std::vector<std::string> stop_strings);

  // What arrived since the last call, waiting up to `timeout` when nothing has.
  Update next(std::chrono::milliseconds timeout);
  // Waits for the end and returns everything not yet taken.
  Update wait_all();
  // The client is gone: end the sequence now and free its KV blocks. Returns true when this
  // call cancelled a request that was still running (false when finished or already abandoned).
  bool abandon();

 private:
  Generation(BatchEngine& engine, const Tokenizer* tokenizer, std::vector<std::string> stop_strings);
  bool on_tokens(std::span<const std::int32_t> ids);  // scheduler thread
  void on_done(const GenerateResult& result);         // scheduler thread
  Update take();                                      // with mutex_ held

  BatchEngine& engine_;
  std::uint64_t id_ = 0;
  std::optional<TextStream> stream_;  // touched only on the scheduler thread until done
  std::atomic<bool> abandoned_{false};

  std::mutex mutex_;
  std::condition_variable changed_;
  Update pending_;
};

}  // namespace wedlm::server
