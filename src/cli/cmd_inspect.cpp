// `wedlm inspect`: what a checkpoint is, and whether every tensor the model needs is there.
#include <cstdio>
#include <map>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "model/checkpoint.h"

namespace wedlm::cli {

void add_inspect_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Print a checkpoint's config, size and dtype; check every tensor");
  static std::string model;
  static bool as_json = false;
  cmd->add_option("-m,--model", model, "Model directory or Hugging Face id")->required();
  cmd->add_flag("--json", as_json, "Print one JSON object");
  cmd->callback([] {
    auto ck = open_checkpoint(model);  // binding validates presence, shape and dtype
    std::map<std::string, std::size_t> bytes_by_dtype;
    for (const auto& [name, info] : ck->store.tensors()) bytes_by_dtype[info.dtype_name] += info.bytes;
    const ModelConfig& c = ck->config;
    nlohmann::json out = {{"directory", ck->dir},
                          {"config", model_config_to_json(c)},
                          {"parameters", c.parameter_count()},
                          {"weight_bytes", ck->weight_bytes()},
                          {"files", ck->store.files()},
                          {"tensors", ck->store.tensors().size()},
                          {"bytes_by_dtype", bytes_by_dtype},
                          {"check", "all tensors present with the expected shapes"}};
    if (as_json) {
      std::printf("%s\n", out.dump(2).c_str());
      return;
    }
    std::printf("model        %s\n", ck->dir.c_str());
    std::printf("architecture %s (%s)\n", c.architecture.c_str(),
                c.qk_norm ? "q/k norm" : (c.attention_bias ? "q/k/v bias" : "plain attention"));
    std::printf("layers       %lld, hidden %lld, intermediate %lld\n", static_cast<long long>(c.num_layers),
                static_cast<long long>(c.hidden_size), static_cast<long long>(c.intermediate_size));
    std::printf("attention    %lld q heads, %lld kv heads, head_dim %lld, rope_theta %g\n",
                static_cast<long long>(c.num_heads), static_cast<long long>(c.num_kv_heads),
                static_cast<long long>(c.head_dim), c.rope_theta);
    std::printf("vocab        %lld, lm_head %s, mask id %lld\n", static_cast<long long>(c.vocab_size),
                c.tie_word_embeddings ? "tied" : "untied", static_cast<long long>(c.mask_token_id));
    std::printf("parameters   %.3f B\n", static_cast<double>(c.parameter_count()) / 1e9);
    for (const auto& [dtype, bytes] : bytes_by_dtype) {
      std::printf("dtype        %s: %.3f GB\n", dtype.c_str(), static_cast<double>(bytes) / 1e9);
    }
    std::printf("weights      %.3f GB in %zu tensors, %zu file(s)\n", static_cast<double>(ck->weight_bytes()) / 1e9,
                ck->store.tensors().size(), ck->store.files().size());
    std::printf("check        ok: all tensors present with the expected shapes\n");
  });
}

}  // namespace wedlm::cli
