#pragma once
// Helpers for the HTTP server tests: an in-process server on a free port, SSE parsing, a metric
// from /metrics, and a raw socket client for reading a stream piece by piece and dropping it.
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "server/server.h"

namespace wedlm::test {

// A wedlm::server::Server on 127.0.0.1:<free port>, serving on its own thread.
class RunningServer {
 public:
  explicit RunningServer(server::ServerOptions options);
  ~RunningServer();  // shuts down and joins
  int port() const { return server_->port(); }
  server::Server& server() { return *server_; }
  // A client with generous timeouts (CPU decoding on a busy machine).
  httplib::Client client() const;

 private:
  std::unique_ptr<server::Server> server_;
  std::thread thread_;
};

struct SseBody {
  std::vector<nlohmann::json> events;  // every `data: {json}` payload, in order
  bool done = false;                   // ended with `data: [DONE]`
  bool well_formed = true;             // every event was `data: ...\n\n` (comments allowed)
};
SseBody parse_sse(const std::string& body);

// Text and token ids concatenated over the chunks of a stream (chat deltas or completion text).
std::string sse_text(const SseBody& sse);
std::vector<int> sse_token_ids(const SseBody& sse);

// The value of an unlabelled metric in Prometheus text; fails the test when it is missing.
double metric_value(const std::string& metrics_text, const std::string& name);
double fetch_metric(httplib::Client& client, const std::string& name);

// Polls `name` until `predicate` holds or `seconds` pass; returns the last value seen.
template <typename Predicate>
double wait_for_metric(httplib::Client& client, const std::string& name, Predicate predicate, double seconds = 20) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  double v = fetch_metric(client, name);
  while (!predicate(v) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    v = fetch_metric(client, name);
  }
  return v;
}

// A plain TCP connection that sends one HTTP/1.1 request and reads the response as it comes.
class RawConnection {
 public:
  explicit RawConnection(int port);
  ~RawConnection();
  void send_post(const std::string& path, const std::string& body, const std::string& extra_headers = "");
  // Reads until `needle` appears in what was received (or `seconds` pass); returns everything so far.
  std::string read_until(const std::string& needle, double seconds = 20);
  void close();

 private:
  int fd_ = -1;
  std::string received_;
};

}  // namespace wedlm::test
