#include "tokenizer/python_json.h"

namespace wedlm::tokenizer {
namespace {

void dump(const nlohmann::ordered_json& value, std::string& out) {
  if (value.is_object()) {
    out += '{';
    bool first = true;
    for (const auto& [key, item] : value.items()) {
      if (!first) out += ", ";
      first = false;
      // nlohmann escapes strings as Python does: \" \\ \b \f \n \r \t, other controls as \u00xx.
      out += nlohmann::ordered_json(key).dump();
      out += ": ";
      dump(item, out);
    }
    out += '}';
  } else if (value.is_array()) {
    out += '[';
    bool first = true;
    for (const auto& item : value) {
      if (!first) out += ", ";
      first = false;
      dump(item, out);
    }
    out += ']';
  } else {
    // Scalars: nlohmann writes floats in the shortest round-trip form with Python's exponent
    // thresholds (1e+16, 1e-05), and true/false/null as Python's json does.
    out += value.dump();
  }
}

}  // namespace

std::string python_json_dumps(const nlohmann::ordered_json& value) {
  std::string out;
  dump(value, out);
  return out;
}

}  // namespace wedlm::tokenizer
