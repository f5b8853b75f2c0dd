// Bad checkpoints are refused with one message naming the file and the field or tensor.
#include <cstdlib>
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "backend/cpu/cpu_backend.h"
#include "model/checkpoint.h"
#include "model/transformer.h"
#include "support/test_support.h"
#include "util/error.h"

namespace wedlm {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const char* kModel = "qwen3_f32_untied_gqa_hd32";

// A writable copy of a fixture model.
struct ModelCopy {
  test::TempDir tmp;
  std::string dir;
  explicit ModelCopy(const std::string& name = kModel) : dir(tmp.file("model")) {
    fs::copy(test::fixture_model(name), dir);
  }
  json config() const { return json::parse(test::read_text(dir + "/config.json")); }
  void set_config(const json& j) const { test::write_text(dir + "/config.json", j.dump()); }
  // Rewrites model.safetensors with `edit` applied to the list of tensors.
  template <typename Edit>
  void rewrite_tensors(Edit edit) const {
    TensorStore original;
    original.add_file(dir + "/model.safetensors");
    std::vector<TensorInfo> tensors;
    for (const auto& [name, info] : original.tensors()) tensors.push_back(info);
    edit(tensors);
    std::vector<const TensorInfo*> pointers;
    for (const auto& t : tensors) pointers.push_back(&t);
    write_safetensors(dir + "/model.safetensors.tmp", pointers);
    fs::rename(dir + "/model.safetensors.tmp", dir + "/model.safetensors");
  }
};

// Expects open_checkpoint to throw a wedlm::Error whose message contains every fragment.
void expect_refused(const std::string& dir, std::initializer_list<std::string> fragments) {
  try {
    open_checkpoint(dir);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    for (const std::string& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
}

TEST(CheckpointErrors, MissingDirectory) { expect_refused("/nonexistent/model", {"/nonexistent/model"}); }

TEST(CheckpointErrors, MissingConfig) {
  ModelCopy m;
  fs::remove(m.dir + "/config.json");
  expect_refused(m.dir, {"config.json", "missing"});
}

TEST(CheckpointErrors, ConfigNotJson) {
  ModelCopy m;
  test::write_text(m.dir + "/config.json", "{\"hidden_size\": 64,");
  expect_refused(m.dir, {"config.json", "invalid JSON"});
}

TEST(CheckpointErrors, NonNumericField) {
  ModelCopy m;
  json j = m.config();
  j["hidden_size"] = "64";
  m.set_config(j);
  expect_refused(m.dir, {"config.json", "hidden_size", "integer"});
}

TEST(CheckpointErrors, NonNumericEps) {
  ModelCopy m;
  json j = m.config();
  j["rms_norm_eps"] = "small";
  m.set_config(j);
  expect_refused(m.dir, {"config.json", "rms_norm_eps", "number"});
}

TEST(CheckpointErrors, UnknownActivation) {
  ModelCopy m;
  json j = m.config();
  j["hidden_act"] = "gelu";
  m.set_config(j);
  expect_refused(m.dir, {"config.json", "hidden_act", "gelu"});
}

TEST(CheckpointErrors, RopeScalingSet) {
  ModelCopy m;
  json j = m.config();
  j["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}};
  m.set_config(j);
  expect_refused(m.dir, {"config.json", "rope_scaling", "not supported"});
}

TEST(CheckpointErrors, HeadsNotMultipleOfKvHeads) {
  ModelCopy m;
  json j = m.config();
  j["num_key_value_heads"] = 3;
  m.set_config(j);
  expect_refused(m.dir, {"config.json", "num_key_value_heads"});
}

TEST(CheckpointErrors, MissingWeights) {
  ModelCopy m;
  fs::remove(m.dir + "/model.safetensors");
  expect_refused(m.dir, {"no model.safetensors"});
}

TEST(CheckpointErrors, TruncatedFile) {
  ModelCopy m;
  const std::string path = m.dir + "/model.safetensors";
  fs::resize_file(path, fs::file_size(path) - 1000);
  expect_refused(m.dir, {"model.safetensors", "outside the data section"});
}

TEST(CheckpointErrors, TruncatedHeaderLength) {
  ModelCopy m;
  test::write_text(m.dir + "/model.safetensors", "abc");
  expect_refused(m.dir, {"model.safetensors", "truncated"});
}

TEST(CheckpointErrors, HeaderLengthBeyondFile) {
  ModelCopy m;
  std::string bytes = test::read_text(m.dir + "/model.safetensors");
  std::uint64_t huge = 1ull << 40;
  bytes.replace(0, 8, reinterpret_cast<const char*>(&huge), 8);
  test::write_text(m.dir + "/model.safetensors", bytes);
  expect_refused(m.dir, {"model.safetensors", "header length"});
}

TEST(CheckpointErrors, CorruptHeaderJson) {
  ModelCopy m;
  std::string bytes = test::read_text(m.dir + "/model.safetensors");
  bytes[8] = '#';  // the JSON header's opening brace
  test::write_text(m.dir + "/model.safetensors", bytes);
  expect_refused(m.dir, {"model.safetensors", "corrupt safetensors header"});
}

TEST(CheckpointErrors, MissingTensor) {
  ModelCopy m;
  m.rewrite_tensors([](std::vector<TensorInfo>& t) {
    std::erase_if(t, [](const TensorInfo& x) { return x.name == "model.layers.1.mlp.up_proj.weight"; });
  });
  expect_refused(m.dir, {"model.layers.1.mlp.up_proj.weight", "missing"});
}

TEST(CheckpointErrors, WrongShape) {
  ModelCopy m;
  m.rewrite_tensors([](std::vector<TensorInfo>& t) {
    for (auto& x : t) {
      if (x.name == "model.layers.0.self_attn.o_proj.weight") std::swap(x.shape[0], x.shape[1]);
    }
  });
  expect_refused(m.dir, {"model.layers.0.self_attn.o_proj.weight", "shape [128, 64]"});
}

TEST(CheckpointErrors, UnsupportedDtype) {
  ModelCopy m;
  m.rewrite_tensors([](std::vector<TensorInfo>& t) {
    for (auto& x : t) {
      if (x.name == "model.norm.weight") x.dtype_name = "I32";  // same size as F32
    }
  });
  expect_refused(m.dir, {"model.norm.weight", "I32"});
}

TEST(CheckpointErrors, BytesDoNotMatchShape) {
  ModelCopy m;
  m.rewrite_tensors([](std::vector<TensorInfo>& t) {
    for (auto& x : t) {
      if (x.name == "model.norm.weight") x.dtype_name = "F16";  // half the bytes the shape needs
    }
  });
  expect_refused(m.dir, {"model.norm.weight", "bytes"});
}

TEST(CheckpointErrors, TokenOutsideVocabulary) {
  auto ck = open_checkpoint(test::fixture_model(kModel));
  auto backend = make_cpu_backend();
  Transformer t(*ck, *backend);
  auto cache = t.make_kv_cache(4, 2);  // exactly 4 slots
  std::vector<std::int32_t> ids = {1, 100000}, pos = {0, 1}, rows = {1};
  EXPECT_THROW(t.forward(*cache, {ids, pos, 0, rows}), Error);
  std::vector<std::int32_t> long_ids = {1, 2, 3, 4, 5}, long_pos = {0, 1, 2, 3, 4};
  EXPECT_THROW(t.forward(*cache, {long_ids, long_pos, 0, rows}), Error);  // more rows than cache slots
}

// Sharded checkpoints (model.safetensors.index.json) load and compute the same logits.
TEST(Sharded, SameLogitsAsSingleFile) {
  ModelCopy m;
  TensorStore original;
  original.add_file(m.dir + "/model.safetensors");
  std::vector<const TensorInfo*> first, second;
  json weight_map = json::object();
  for (const auto& [name, info] : original.tensors()) {
    bool in_first = name.find("layers.1.") == std::string::npos;
    (in_first ? first : second).push_back(&info);
    weight_map[name] = in_first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  write_safetensors(m.dir + "/model-00001-of-00002.safetensors", first);
  write_safetensors(m.dir + "/model-00002-of-00002.safetensors", second);
  test::write_text(m.dir + "/model.safetensors.index.json", json{{"weight_map", weight_map}}.dump());
  fs::remove(m.dir + "/model.safetensors");

  auto single = open_checkpoint(test::fixture_model(kModel));
  auto sharded = open_checkpoint(m.dir);
  EXPECT_EQ(sharded->store.files().size(), 2u);
  auto backend = make_cpu_backend();
  Transformer a(*single, *backend), b(*sharded, *backend);
  auto ca = a.make_kv_cache(8), cb = b.make_kv_cache(8);
  std::vector<std::int32_t> ids = {5, 6, 7}, pos = {0, 1, 2}, rows = {0, 1, 2};
  EXPECT_EQ(a.forward(*ca, {ids, pos, 0, rows}), b.forward(*cb, {ids, pos, 0, rows}));

  // A shard the index names but that is missing.
  fs::remove(m.dir + "/model-00002-of-00002.safetensors");
  expect_refused(m.dir, {"model-00002-of-00002.safetensors", "cannot open"});
}

TEST(Sharded, IndexNamesTensorAbsentFromShard) {
  ModelCopy m;
  json weight_map = json::object();
  TensorStore original;
  original.add_file(m.dir + "/model.safetensors");
  for (const auto& [name, info] : original.tensors()) weight_map[name] = "model.safetensors";
  weight_map["model.layers.9.extra.weight"] = "model.safetensors";
  test::write_text(m.dir + "/model.safetensors.index.json", json{{"weight_map", weight_map}}.dump());
  expect_refused(m.dir, {"model.layers.9.extra.weight", "missing"});
}

// Hugging Face ids resolve in the local hub cache.
class HubCache : public ::testing::Test {
 protected:
  void SetUp() override {
    saved_ = std::getenv("HF_HUB_CACHE") ? std::getenv("HF_HUB_CACHE") : "";
    ::setenv("HF_HUB_CACHE", tmp_.path().c_str(), 1);
  }
  void TearDown() override {
    if (saved_.empty()) ::unsetenv("HF_HUB_CACHE"); else ::setenv("HF_HUB_CACHE", saved_.c_str(), 1);
  }
  test::TempDir tmp_;
  std::string saved_;
};

TEST_F(HubCache, ResolvesRefsMain) {
  const std::string repo = tmp_.file("models--tencent--WeDLM-8B-Instruct");
  fs::create_directories(repo + "/snapshots/abc123");
  fs::create_directories(repo + "/snapshots/old999");
  fs::create_directories(repo + "/refs");
  test::write_text(repo + "/refs/main", "abc123");
  EXPECT_EQ(resolve_model_dir("tencent/WeDLM-8B-Instruct"), repo + "/snapshots/abc123");
}

TEST_F(HubCache, MissingModelSaysHowToDownload) {
  try {
    resolve_model_dir("tencent/WeDLM-7B-Instruct");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("huggingface-cli download tencent/WeDLM-7B-Instruct"), std::string::npos);
  }
}

}  // namespace
}  // namespace wedlm
