#pragma once
// The OpenAI-compatible HTTP server: one model behind a BatchEngine, served with cpp-httplib.
//   POST /v1/completions, POST /v1/chat/completions (stream: true -> server-sent events)
//   GET /v1/models, GET /health, GET /metrics
// Usable in-process (tests) and by `wedlm serve`.
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "wedlm/batch_engine.h"

namespace wedlm::server {

struct ServerOptions {
  EngineOptions engine;
  BatchOptions batch;
  std::string host = "127.0.0.1";
  int port = 8080;                      // 0: any free port (see port())
  std::string api_key;                  // non-empty: /v1/* need "Authorization: Bearer KEY"
  std::string served_model_name;        // empty: the --model argument
  std::size_t max_body_bytes = 8 << 20; // larger bodies get 413
  int http_threads = 0;                 // 0: enough for every sequence to stream, at least 64
  // A stream with nothing to send (queued behind others) writes an SSE comment this often, so a
  // client that left is noticed and its request cancelled before it ever runs.
  std::chrono::milliseconds sse_heartbeat{2000};
};

class Server {
 public:
  // Loads the model, starts the engine and binds the port; throws wedlm::Error on failure.
  explicit Server(const ServerOptions& options);
  // Shuts down if still running.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const;
  // Serves until shutdown(); call once.
  void run();
  // Thread-safe and idempotent: refuses new requests (503), lets accepted ones finish and
  // their streams end, then stops listening so run() returns.
  void shutdown();
  BatchEngine& engine();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wedlm::server
