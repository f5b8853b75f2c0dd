#include "server/routes.h"

#include "server/api_error.h"
#include "server/generation.h"
#include "server/openai_format.h"
#include "server/prompt_builder.h"
#include "server/request_parser.h"
#include "server/sse_stream.h"

namespace wedlm::server {

namespace {

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

ApiError shutting_down() {
  return ApiError(503, "the server is shutting down", std::nullopt, "server_shutting_down", "server_error");
}

// Runs a handler and turns whatever it throws into an OpenAI error object, so no fault in one
// request reaches httplib (or another request).
template <typename Handler>
httplib::Server::Handler guarded(Handler handler) {
  return [handler](const httplib::Request& req, httplib::Response& res) {
    try {
      handler(req, res);
    } catch (const ApiError& e) {
      send_json(res, e.status(), e.body());
    } catch (const Error& e) {
      send_json(res, 400, error_body(e.what(), "invalid_request_error", std::nullopt, std::nullopt));
    } catch (const std::exception& e) {
      send_json(res, 500, error_body(std::string("internal error: ") + e.what(), "server_error", std::nullopt, std::nullopt));
    }
  };
}

void handle_generation(ServerState& s, const httplib::Request& req, httplib::Response& res, Endpoint endpoint) {
  ParsedRequest parsed = parse_request(req.body, endpoint);
  if (!s.model.accepts_name(parsed.model)) {
    throw ApiError(404, "the model '" + parsed.model + "' does not exist; this server serves '" + s.model.id + "'", "model",
                   "model_not_found");
  }
  GenerateRequest request = build_generate_request(parsed, s.model);
  if (s.draining.load()) throw shutting_down();
  const Tokenizer* tokenizer = s.model.tokenizer ? &*s.model.tokenizer : nullptr;
  std::shared_ptr<Generation> generation;
  try {
    generation = Generation::start(s.engine, std::move(request), tokenizer, parsed.stop_strings);
  } catch (const Error& e) {
    // The engine refuses after drain() began too; that is the server's state, not the request's.
    if (s.draining.load()) throw shutting_down();
    throw ApiError(400, e.what());
  }
  ResponseHeader header{make_response_id(endpoint), unix_seconds(), s.model.id, endpoint};

  if (!parsed.stream) {
    Generation::Update u = generation->wait_all();
    send_json(res, 200, full_response(header, u.text, parsed.return_token_ids ? &u.token_ids : nullptr, u.finish_reason, u.usage));
    return;
  }
  auto stream = std::make_shared<SseStream>(generation, header, parsed.include_usage, parsed.return_token_ids,
                                            [&s] { s.counters.client_disconnects.fetch_add(1); }, s.streams,
                                            s.sse_heartbeat);
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream", [stream](std::size_t, httplib::DataSink& sink) { return stream->pump(sink); },
      [stream](bool success) { stream->release(success); });
}

// Bearer-token check for /v1/*; /health and /metrics stay open for probes and scrapers.
httplib::Server::HandlerResponse check_auth(const ServerState& s, const httplib::Request& req, httplib::Response& res) {
  if (s.api_key.empty() || req.path.rfind("/v1/", 0) != 0) return httplib::Server::HandlerResponse::Unhandled;
  if (req.get_header_value("Authorization") == "Bearer " + s.api_key) return httplib::Server::HandlerResponse::Unhandled;
  const bool missing = !req.has_header("Authorization");
  send_json(res, 401,
            error_body(missing ? "missing API key: send 'Authorization: Bearer KEY'" : "incorrect API key provided",
                       "invalid_request_error", std::nullopt, "invalid_api_key"));
  return httplib::Server::HandlerResponse::Handled;
}

// Responses httplib makes on its own (unknown route, body too large, unparsable HTTP) get an
// OpenAI error object too.
httplib::Server::HandlerResponse error_page(const httplib::Request& req, httplib::Response& res) {
  if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
  std::string message, code;
  switch (res.status) {
    case 404: message = "no route for " + req.method + " " + req.path; code = "not_found"; break;
    case 413: message = "the request body is too large"; code = "payload_too_large"; break;
    default: message = "HTTP error " + std::to_string(res.status); code = "http_" + std::to_string(res.status); break;
  }
  send_json(res, res.status, error_body(message, res.status >= 500 ? "server_error" : "invalid_request_error", std::nullopt, code));
  return httplib::Server::HandlerResponse::Handled;
}

}  // namespace

void register_routes(httplib::Server& http, ServerState& s) {
  http.set_pre_routing_handler([&s](const httplib::Request& req, httplib::Response& res) { return check_auth(s, req, res); });
  http.set_error_handler(httplib::Server::HandlerWithResponse(error_page));
  http.set_logger([&s](const httplib::Request&, const httplib::Response& res) {
    s.counters.responses.fetch_add(1);
    if (res.status >= 500) {
      s.counters.server_errors.fetch_add(1);
    } else if (res.status >= 400) {
      s.counters.client_errors.fetch_add(1);
    }
  });

  http.Post("/v1/completions", guarded([&s](const httplib::Request& req, httplib::Response& res) {
              handle_generation(s, req, res, Endpoint::completions);
            }));
  http.Post("/v1/chat/completions", guarded([&s](const httplib::Request& req, httplib::Response& res) {
              handle_generation(s, req, res, Endpoint::chat);
            }));
  http.Get("/v1/models", guarded([&s](const httplib::Request&, httplib::Response& res) {
             const std::string ids[] = {s.model.id};
             send_json(res, 200, models_list(ids, s.created, s.model.info.context));
           }));
  http.Get("/health", guarded([&s](const httplib::Request&, httplib::Response& res) {
             if (s.draining.load()) {
               send_json(res, 503, {{"status", "draining"}});
             } else {
               send_json(res, 200, {{"status", "ok"}});
             }
           }));
  http.Get("/metrics", guarded([&s](const httplib::Request&, httplib::Response& res) {
             res.set_content(prometheus_text(s.engine.stats(), s.counters), "text/plain; version=0.0.4");
           }));
}

}  // namespace wedlm::server
