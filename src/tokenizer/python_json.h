#pragma once
// JSON text as Python's json.dumps(x, ensure_ascii=False) writes it (", " and ": " separators,
// keys in insertion order): the `tojson` filter of Hugging Face chat templates.
#include <string>

#include <nlohmann/json.hpp>

namespace wedlm::tokenizer {

std::string python_json_dumps(const nlohmann::ordered_json& value);

}  // namespace wedlm::tokenizer
