#include "support/test_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

namespace wedlm::test {

namespace fs = std::filesystem;

// WEDLM_FIXTURES_DIR in the environment overrides the compiled-in path, so that test binaries
// built here can run from a copy of the checkout elsewhere (the GPU machine).
std::string fixtures_dir() {
  const char* env = std::getenv("WEDLM_FIXTURES_DIR");
  return env != nullptr && *env != '\0' ? std::string(env) : std::string(WEDLM_FIXTURES_DIR);
}

std::string fixture_model(const std::string& name) { return fixtures_dir() + "/models/" + name; }

std::string qwen3_tokenizer_dir() { return WEDLM_QWEN3_TOKENIZER_DIR; }

std::vector<std::string> fixture_model_names() {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(fixtures_dir() + "/models")) {
    if (entry.is_directory()) names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

TempDir::TempDir() {
  std::string pattern = (fs::temp_directory_path() / "wedlm-test-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::vector<float> read_f32_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  in.seekg(0, std::ios::end);
  std::vector<float> data(static_cast<std::size_t>(in.tellg()) / sizeof(float));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(data.size() * sizeof(float)));
  return data;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string synth_tiny_with_tokenizer(const TempDir& dir, const std::string& name) {
  const std::string path = dir.file(name);
  CommandResult r = run_cli("synth --shape tiny --seed 5 --out " + path + " --tokenizer-dir " + qwen3_tokenizer_dir());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return path;
}

CommandResult run_cli(const std::string& args, const std::string& input) {
  TempDir dir;
  write_text(dir.file("stdin"), input);
  std::string command = std::string("'") + WEDLM_CLI_PATH + "' " + args + " <'" + dir.file("stdin") + "' >'" +
                        dir.file("stdout") + "' 2>'" + dir.file("stderr") + "'";
  int status = std::system(command.c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = read_text(dir.file("stdout"));
  result.err = read_text(dir.file("stderr"));
  return result;
}

}  // namespace wedlm::test
