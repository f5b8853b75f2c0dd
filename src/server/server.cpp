#include "server/server.h"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <mutex>
#include <thread>

#include <httplib.h>

#include "server/openai_format.h"
#include "server/routes.h"
#include "util/error.h"

namespace wedlm::server {

struct Server::Impl {
  ServerOptions options;
  BatchEngine engine;
  ServerState state;
  httplib::Server http;
  int port = 0;
  int listen_socket = -1;
  std::atomic<bool> run_entered{false};
  std::atomic<bool> run_returned{false};
  std::once_flag shutdown_once;

  Impl(const ServerOptions& o)
      : options(o), engine(o.engine, o.batch),
        state(engine, ServedModel::load(engine.info(), o.engine.model, o.served_model_name), o.api_key) {}
};

Server::Server(const ServerOptions& options) : impl_(std::make_unique<Impl>(options)) {
  // A client that closes its socket mid-stream must cost a failed write, not the process:
  // httplib sends without MSG_NOSIGNAL.
  std::signal(SIGPIPE, SIG_IGN);
  Impl& m = *impl_;
  m.state.created = unix_seconds();
  m.state.sse_heartbeat = options.sse_heartbeat;
  // One thread per open connection: every running sequence may be streaming, plus room for
  // queued requests, health checks and scrapes.
  const int threads = options.http_threads > 0 ? options.http_threads : std::max(64, 2 * options.batch.max_sequences) + 16;
  m.http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
  m.http.set_payload_max_length(options.max_body_bytes);
  m.http.set_socket_options([&m](socket_t sock) {
    // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let a second server
    // bind a port that is already serving instead of failing.
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    m.listen_socket = sock;
  });
  register_routes(m.http, m.state);

  if (options.port < 0 || options.port > 65535) fail("--port must be in [0, 65535], got {}", options.port);
  if (options.port == 0) {
    m.port = m.http.bind_to_any_port(options.host);
    if (m.port <= 0) fail("cannot bind {} on any port", options.host);
  } else {
    if (!m.http.bind_to_port(options.host, options.port)) fail("cannot bind {}:{} (in use, or not a local address?)", options.host, options.port);
    m.port = options.port;
  }
  // httplib listens with a backlog of 5; a burst of clients connecting at once would see
  // dropped SYNs and one-second retries. Linux lets listen() raise it on a bound socket.
  if (m.listen_socket >= 0) ::listen(m.listen_socket, 1024);
}

Server::~Server() { shutdown(); }

int Server::port() const { return impl_->port; }

BatchEngine& Server::engine() { return impl_->engine; }

void Server::run() {
  Impl& m = *impl_;
  m.run_entered.store(true);
  if (!m.state.draining.load()) m.http.listen_after_bind();
  m.run_returned.store(true);
}

void Server::shutdown() {
  Impl& m = *impl_;
  std::call_once(m.shutdown_once, [&m] {
    m.state.draining.store(true);
    // Accepted requests finish while the listener still serves their streams.
    m.engine.drain();
    // Their streams then write their last chunks; a client that stopped reading is cut off by
    // httplib's write timeout, so this wait is bounded in practice.
    if (!m.state.streams.wait_idle(std::chrono::seconds(30))) {
      std::fprintf(stderr, "shutdown: streams still open after 30 s; closing them\n");
    }
    // httplib's stop() only acts once the accept loop runs; wait for it if run() has begun.
    while (m.run_entered.load() && !m.run_returned.load()) {
      if (m.http.is_running()) {
        m.http.stop();
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
}

}  // namespace wedlm::server
