#pragma once
// GET /metrics: the engine's counters and gauges in Prometheus text format (version 0.0.4),
// plus the HTTP front end's own counters.
#include <atomic>
#include <cstdint>
#include <string>

#include "wedlm/batch_engine.h"

namespace wedlm::server {

// Updated by HTTP threads as responses go out.
struct HttpCounters {
  std::atomic<std::int64_t> responses{0};          // every response written
  std::atomic<std::int64_t> client_errors{0};      // 4xx
  std::atomic<std::int64_t> server_errors{0};      // 5xx
  std::atomic<std::int64_t> client_disconnects{0}; // streams whose client left before the end
};

std::string prometheus_text(const EngineStats& stats, const HttpCounters& http);

}  // namespace wedlm::server
