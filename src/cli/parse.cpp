#include "cli/parse.h"

#include <charconv>

#include "util/error.h"

namespace wedlm::cli {

std::vector<std::int32_t> parse_id_list(const std::string& text, const std::string& flag) {
  std::vector<std::int32_t> ids;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    std::int32_t value = 0;
    auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size()) {
      fail("{}: '{}' is not a list of integers (bad item '{}')", flag, text, item);
    }
    ids.push_back(value);
    start = end + 1;
  }
  return ids;
}

}  // namespace wedlm::cli
