// `wedlm synth`: a random-weight checkpoint in Hugging Face layout, for demos and benchmarks.
#include <cstdio>

#include "cli/commands.h"
#include "model/synthetic.h"
#include "util/error.h"
#include "util/timer.h"

namespace wedlm::cli {

DType parse_dtype_flag(const std::string& name) {
  if (name == "bf16") return DType::BF16;
  if (name == "f16") return DType::F16;
  if (name == "f32") return DType::F32;
  fail("unknown dtype '{}' (expected bf16, f16 or f32)", name);
}

void add_synth_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("synth", "Write a random-weight checkpoint of a real shape");
  static std::string shape = "tiny", out_dir, tokenizer_dir, dtype = "bf16";
  static std::uint64_t seed = 0;
  cmd->add_option("--shape", shape, "tiny, 7b, 8b, or a path to a config.json")->required();
  cmd->add_option("--out", out_dir, "Output directory")->required();
  cmd->add_option("--tokenizer-dir", tokenizer_dir, "Copy tokenizer.json and tokenizer_config.json from here");
  cmd->add_option("--dtype", dtype, "bf16, f16 or f32")->check(CLI::IsMember({"bf16", "f16", "f32"}));
  cmd->add_option("--seed", seed, "Random seed");
  cmd->callback([] {
    Stopwatch clock;
    ModelConfig config = synthetic_config(shape);
    DType type = parse_dtype_flag(dtype);
    config.torch_dtype = type == DType::BF16 ? "bfloat16" : (type == DType::F16 ? "float16" : "float32");
    TensorStore store = make_random_weights(config, type, seed);
    write_checkpoint(out_dir, config, store, tokenizer_dir);
    std::fprintf(stderr, "wrote %s: random weights (%.3f GB, shape %s) in %.1f s\n", out_dir.c_str(),
                 static_cast<double>(store.total_bytes()) / 1e9, shape.c_str(), clock.seconds());
  });
}

}  // namespace wedlm::cli
