#pragma once
// Where the tests find the Qwen3 tokenizer and the reference cases (set by CMake).
#include <filesystem>

#include <gtest/gtest.h>

#include "wedlm/tokenizer.h"

namespace wedlm::test {

inline std::filesystem::path qwen3_tokenizer_dir() { return WEDLM_QWEN3_TOKENIZER_DIR; }
inline std::filesystem::path tokenizer_fixtures_dir() { return WEDLM_TOKENIZER_FIXTURES_DIR; }

// Loaded once per test program; a missing tokenizer is a failure, not a skip.
inline const Tokenizer& qwen3_tokenizer() {
  static const Tokenizer tokenizer = [] {
    const auto file = qwen3_tokenizer_dir() / "tokenizer.json";
    if (!std::filesystem::exists(file))
      throw std::runtime_error(file.string() + " is missing: run scripts/fetch_tokenizer.sh");
    return Tokenizer::from_file(file);
  }();
  return tokenizer;
}

}  // namespace wedlm::test
