#pragma once
// A parsed request + the served model -> the GenerateRequest the engine runs: the prompt
// (token ids as given, text tokenized, or messages rendered with the chat template), the stop
// tokens and the resolved max_tokens. Checks that need the model are made here (400s).
#include "server/request_parser.h"
#include "server/served_model.h"

namespace wedlm::server {

GenerateRequest build_generate_request(const ParsedRequest& request, const ServedModel& model);

}  // namespace wedlm::server
