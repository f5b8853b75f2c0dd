#include "server/metrics.h"

#include <fmt/format.h>

namespace wedlm::server {

namespace {

template <typename T>
void metric(std::string& out, const char* name, const char* type, const char* help, T value) {
  out += fmt::format("# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", name, help, type, value);
}

}  // namespace

std::string prometheus_text(const EngineStats& s, const HttpCounters& http) {
  std::string out;
  metric(out, "wedlm_requests_total", "counter", "Requests accepted by the engine.", s.requests_total);
  metric(out, "wedlm_requests_running", "gauge", "Sequences decoding now.", s.requests_running);
  metric(out, "wedlm_requests_waiting", "gauge", "Requests queued for admission.", s.requests_waiting);
  metric(out, "wedlm_prompt_tokens_total", "counter", "Prompt tokens of accepted requests.", s.prompt_tokens_total);
  metric(out, "wedlm_completion_tokens_total", "counter", "Completion tokens committed.", s.completion_tokens_total);
  metric(out, "wedlm_forwards_total", "counter", "Batched decode forwards (prefill not counted).", s.forwards_total);
  // Completion tokens per batched forward: with B sequences stepping together this is about B
  // times the per-sequence WeDLM speed-up.
  const double per_forward =
      s.forwards_total ? static_cast<double>(s.completion_tokens_total) / static_cast<double>(s.forwards_total) : 0.0;
  metric(out, "wedlm_tokens_per_forward", "gauge", "Completion tokens per batched decode forward since start.", per_forward);
  metric(out, "wedlm_prefill_tokens_computed_total", "counter", "Prompt tokens run through the model (cache hits excluded).",
         s.prefill_tokens_computed);
  metric(out, "wedlm_prefix_cache_hit_tokens_total", "counter", "Prompt tokens served from the prefix cache.",
         s.prefix_cache_hit_tokens);
  metric(out, "wedlm_kv_blocks_used", "gauge", "KV blocks held by sequences or the prefix cache.", s.kv_blocks_used);
  metric(out, "wedlm_kv_blocks_in_sequences", "gauge", "KV blocks held by running sequences.", s.kv_blocks_in_sequences);
  metric(out, "wedlm_kv_blocks_total", "gauge", "KV blocks in the pool.", s.kv_blocks_total);
  metric(out, "wedlm_preemptions_total", "counter", "Sequences preempted for KV space (recomputed later).", s.preemptions);
  metric(out, "wedlm_http_responses_total", "counter", "HTTP responses written.", http.responses.load());
  metric(out, "wedlm_http_client_errors_total", "counter", "HTTP 4xx responses.", http.client_errors.load());
  metric(out, "wedlm_http_server_errors_total", "counter", "HTTP 5xx responses.", http.server_errors.load());
  metric(out, "wedlm_client_disconnects_total", "counter", "Streams cancelled because the client went away.",
         http.client_disconnects.load());
  return out;
}

}  // namespace wedlm::server
