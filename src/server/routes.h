#pragma once
// The HTTP routes and the policies around them (auth, JSON errors, counters), registered on an
// httplib::Server. Everything a handler needs lives in ServerState.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include <httplib.h>

#include "server/metrics.h"
#include "server/served_model.h"
#include "server/sse_stream.h"
#include "wedlm/batch_engine.h"

namespace wedlm::server {

struct ServerState {
  ServerState(BatchEngine& e, ServedModel m, std::string key)
      : engine(e), model(std::move(m)), api_key(std::move(key)) {}
  BatchEngine& engine;
  ServedModel model;
  std::string api_key;
  std::int64_t created = 0;  // unix seconds at start, for /v1/models
  HttpCounters counters;
  std::atomic<bool> draining{false};
  OpenStreams streams;
  std::chrono::milliseconds sse_heartbeat{2000};
};

void register_routes(httplib::Server& http, ServerState& state);

}  // namespace wedlm::server
