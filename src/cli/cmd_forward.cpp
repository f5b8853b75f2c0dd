// `wedlm forward`: one forward pass over given ids at given positions, printing top-k logits.
// For debugging and for tests against the reference.
#include <algorithm>
#include <cstdio>
#include <numeric>

#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "cli/commands.h"
#include "cli/parse.h"
#include "model/checkpoint.h"
#include "model/transformer.h"
#include "util/error.h"

namespace wedlm::cli {

void add_forward_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("forward", "Run one forward pass and print the top-k logits");
  static std::string model, ids_text, positions_text, device = "cpu";
  static int top_k = 5;
  static bool all_rows = false, as_json = false;
  cmd->add_option("-m,--model", model, "Model directory or Hugging Face id")->required();
  cmd->add_option("--ids", ids_text, "Comma-separated token ids")->required();
  cmd->add_option("--positions", positions_text, "Comma-separated logical positions (default 0..n-1)");
  cmd->add_option("--top-k", top_k, "How many logits to print per row")->check(CLI::Range(1, 1000));
  cmd->add_flag("--all-rows", all_rows, "Print every row, not only the last");
  cmd->add_flag("--json", as_json, "Print JSON");
  cmd->add_option("--device", device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->callback([] {
    std::vector<std::int32_t> ids = parse_id_list(ids_text, "--ids");
    std::vector<std::int32_t> positions(ids.size());
    std::iota(positions.begin(), positions.end(), 0);
    if (!positions_text.empty()) {
      positions = parse_id_list(positions_text, "--positions");
      if (positions.size() != ids.size()) {
        fail("--positions has {} entries but --ids has {}", positions.size(), ids.size());
      }
    }
    auto ck = open_checkpoint(model);
    for (std::int32_t id : ids) {
      if (id < 0 || id >= ck->config.vocab_size) {
        fail("--ids: token id {} is outside the vocabulary (size {})", id, ck->config.vocab_size);
      }
    }
    auto backend = make_backend(parse_device(device));
    Transformer transformer(*ck, *backend);
    auto cache = transformer.make_kv_cache(static_cast<std::int64_t>(ids.size()));
    std::vector<std::int32_t> rows;
    if (all_rows) {
      rows.resize(ids.size());
      std::iota(rows.begin(), rows.end(), 0);
    } else {
      rows.push_back(static_cast<std::int32_t>(ids.size() - 1));
    }
    std::vector<float> logits = transformer.forward(*cache, {ids, positions, 0, rows});
    const std::int64_t vocab = ck->config.vocab_size;
    const std::int64_t k = std::min<std::int64_t>(top_k, vocab);
    nlohmann::json out = nlohmann::json::array();
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const float* row = logits.data() + static_cast<std::int64_t>(i) * vocab;
      std::vector<std::int32_t> order(static_cast<std::size_t>(vocab));
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + k, order.end(),
                        [&](std::int32_t a, std::int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
      nlohmann::json top = nlohmann::json::array();
      for (std::int64_t j = 0; j < k; ++j) top.push_back({{"id", order[static_cast<std::size_t>(j)]}, {"logit", row[order[static_cast<std::size_t>(j)]]}});
      out.push_back({{"row", rows[i]}, {"position", positions[static_cast<std::size_t>(rows[i])]}, {"top", top}});
    }
    if (as_json) {
      std::printf("%s\n", out.dump().c_str());
      return;
    }
    for (const auto& r : out) {
      std::printf("row %d (position %d):", r["row"].get<int>(), r["position"].get<int>());
      for (const auto& t : r["top"]) std::printf(" %d:%.5f", t["id"].get<int>(), t["logit"].get<double>());
      std::printf("\n");
    }
  });
}

}  // namespace wedlm::cli
