// Tokenizer speed: encoding throughput (single thread) on English prose and on C++ code, and the
// time to load the Qwen3 tokenizer.json. BM_Encode* run with a warm piece cache, as in a
// long-running server (the first iteration fills it); the ColdCache variant does not.
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

#include <benchmark/benchmark.h>

#include "wedlm/tokenizer.h"

namespace {

namespace fs = std::filesystem;

const fs::path kTokenizerJson = fs::path(WEDLM_QWEN3_TOKENIZER_DIR) / "tokenizer.json";

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

const wedlm::Tokenizer& tokenizer() {
  static const wedlm::Tokenizer tok = wedlm::Tokenizer::from_file(kTokenizerJson);
  return tok;
}

// English prose: the GPL version 3 text (35 KB) that Debian ships.
const std::string& prose() {
  static const std::string text = read_file("/usr/share/common-licenses/GPL-3");
  return text;
}

// Code: this project's own C++ sources under src/.
const std::string& code() {
  static const std::string text = [] {
    std::string all;
    for (const auto& entry : fs::recursive_directory_iterator(fs::path(WEDLM_SOURCE_DIR) / "src"))
      if (entry.path().extension() == ".cpp" || entry.path().extension() == ".h") all += read_file(entry.path());
    return all;
  }();
  return text;
}

void encode_benchmark(benchmark::State& state, const std::string& text) {
  const wedlm::Tokenizer& tok = tokenizer();
  std::size_t tokens = 0;
  for (auto _ : state) {
    const auto ids = tok.encode(text);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
  state.counters["input_bytes"] = static_cast<double>(text.size());
  state.counters["tokens"] = static_cast<double>(tokens);
}

void BM_EncodeEnglishProse(benchmark::State& state) { encode_benchmark(state, prose()); }
void BM_EncodeCode(benchmark::State& state) { encode_benchmark(state, code()); }

// The first encode after loading, when every piece still has to go through BPE.
void BM_EncodeEnglishProseColdCache(benchmark::State& state) {
  for (auto _ : state) {
    state.PauseTiming();
    auto tok = std::make_unique<wedlm::Tokenizer>(wedlm::Tokenizer::from_file(kTokenizerJson));
    state.ResumeTiming();
    benchmark::DoNotOptimize(tok->encode(prose()).data());
    state.PauseTiming();
    tok.reset();
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * prose().size()));
}

void BM_LoadTokenizerJson(benchmark::State& state) {
  for (auto _ : state) {
    auto tok = std::make_unique<wedlm::Tokenizer>(wedlm::Tokenizer::from_file(kTokenizerJson));
    benchmark::DoNotOptimize(tok->vocab_size());
    state.PauseTiming();  // freeing the tables is not part of loading
    tok.reset();
    state.ResumeTiming();
  }
}

BENCHMARK(BM_EncodeEnglishProse)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeCode)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncodeEnglishProseColdCache)->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_LoadTokenizerJson)->Unit(benchmark::kMillisecond)->Iterations(5);

}  // namespace

BENCHMARK_MAIN();
