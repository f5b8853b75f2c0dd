#pragma once
// Small parsers for flag values shared by several commands.
#include <cstdint>
#include <string>
#include <vector>

namespace wedlm::cli {

// "1,2,3" -> {1,2,3}; rejects empty items, signs where not allowed and non-digits with a message
// naming the flag.
std::vector<std::int32_t> parse_id_list(const std::string& text, const std::string& flag);

}  // namespace wedlm::cli
