#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace wedlm::test {

std::string fixtures_dir();
std::string fixture_model(const std::string& name);  // tests/fixtures/models/<name>
std::vector<std::string> fixture_model_names();
// The real Qwen3 tokenizer fetched by scripts/setup.sh (tokenizer.json, tokenizer_config.json).
std::string qwen3_tokenizer_dir();

// A fresh directory under the system temp folder, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::vector<float> read_f32_file(const std::string& path);
std::string read_text(const std::string& path);
void write_text(const std::string& path, const std::string& text);

// Writes a tiny random-weight checkpoint with the real Qwen3 tokenizer (`wedlm synth`) into
// `dir`/`name` and returns its path; fails the test when the command fails.
std::string synth_tiny_with_tokenizer(const TempDir& dir, const std::string& name = "m");

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs the wedlm CLI with `args` (shell-quoted by the caller when needed); `input` goes to stdin.
CommandResult run_cli(const std::string& args, const std::string& input = "");

}  // namespace wedlm::test
