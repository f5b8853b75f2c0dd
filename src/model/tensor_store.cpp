#include "model/tensor_store.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace wedlm {

namespace {

using json = nlohmann::json;

std::optional<DType> parse_dtype(const std::string& name) {
  if (name == "F32") return DType::F32;
  if (name == "F16") return DType::F16;
  if (name == "BF16") return DType::BF16;
  return std::nullopt;
}

std::size_t element_size(const std::string& name) {
  static const std::map<std::string, std::size_t> sizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
      {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"I64", 8},     {"U64", 8}, {"F64", 8}};
  auto it = sizes.find(name);
  return it == sizes.end() ? 0 : it->second;
}

}  // namespace

std::int64_t TensorInfo::numel() const {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}

void TensorStore::add_file(const std::string& path) {
  auto map = std::make_unique<MappedFile>(path);
  const std::size_t size = map->size();
  if (size < 8) fail("{}: truncated safetensors file ({} bytes; the 8-byte header length is missing)", path, size);
  std::uint64_t header_len = 0;
  std::memcpy(&header_len, map->data(), 8);  // little-endian on every machine we run on
  if (header_len > size - 8) {
    fail("{}: corrupt safetensors header: header length {} exceeds the file size {}", path, header_len, size);
  }
  const char* header_begin = reinterpret_cast<const char*>(map->data() + 8);
  json header;
  try {
    header = json::parse(header_begin, header_begin + header_len);
  } catch (const json::parse_error& e) {
    fail("{}: corrupt safetensors header (invalid JSON): {}", path, e.what());
  }
  if (!header.is_object()) fail("{}: corrupt safetensors header: expected a JSON object", path);
  const std::uint8_t* data_begin = map->data() + 8 + header_len;
  const std::size_t data_size = size - 8 - header_len;

  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    auto bad = [&](const std::string& why) { fail("{}: tensor '{}': {}", path, name, why); };
    if (!entry.is_object()) bad("entry is not an object");
    if (!entry.contains("dtype") || !entry["dtype"].is_string()) bad("missing or invalid 'dtype'");
    if (!entry.contains("shape") || !entry["shape"].is_array()) bad("missing or invalid 'shape'");
    if (!entry.contains("data_offsets") || !entry["data_offsets"].is_array() || entry["data_offsets"].size() != 2) {
      bad("missing or invalid 'data_offsets'");
    }
    TensorInfo info;
    info.name = name;
    info.file = path;
    info.dtype_name = entry["dtype"].get<std::string>();
    info.dtype = parse_dtype(info.dtype_name);
    std::size_t esize = element_size(info.dtype_name);
    if (esize == 0) bad("unknown dtype '" + info.dtype_name + "'");
    for (const json& d : entry["shape"]) {
      if (!d.is_number_unsigned()) bad("shape entries must be non-negative integers");
      info.shape.push_back(d.get<std::int64_t>());
    }
    const json& offsets = entry["data_offsets"];
    if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned()) bad("data_offsets must be integers");
    std::uint64_t begin = offsets[0].get<std::uint64_t>(), end = offsets[1].get<std::uint64_t>();
    if (begin > end || end > data_size) {
      bad(fmt::format("data_offsets [{}, {}] lie outside the data section of {} bytes (file truncated?)", begin, end,
                      data_size));
    }
    std::uint64_t expected = static_cast<std::uint64_t>(info.numel()) * esize;
    if (end - begin != expected) {
      bad(fmt::format("holds {} bytes but shape and dtype need {}", end - begin, expected));
    }
    info.data = data_begin + begin;
    info.bytes = static_cast<std::size_t>(end - begin);
    if (tensors_.count(name)) bad("appears in more than one file");
    tensors_.emplace(name, std::move(info));
  }
  file_paths_.push_back(path);
  maps_.push_back(std::move(map));
}

TensorStore TensorStore::open_directory(const std::string& dir) {
  namespace fs = std::filesystem;
  TensorStore store;
  fs::path index = fs::path(dir) / "model.safetensors.index.json";
  fs::path single = fs::path(dir) / "model.safetensors";
  if (fs::exists(index)) {
    std::ifstream in(index);
    if (!in) fail("{}: cannot open", index.string());
    json j;
    try {
      j = json::parse(in);
    } catch (const json::parse_error& e) {
      fail("{}: invalid JSON: {}", index.string(), e.what());
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
      fail("{}: missing 'weight_map' object", index.string());
    }
    std::set<std::string> shards;
    for (const auto& [tensor, file] : j["weight_map"].items()) {
      if (!file.is_string()) fail("{}: weight_map['{}'] must be a file name", index.string(), tensor);
      shards.insert(file.get<std::string>());
    }
    for (const std::string& shard : shards) store.add_file((fs::path(dir) / shard).string());
    for (const auto& [tensor, file] : j["weight_map"].items()) {
      const TensorInfo* info = store.find(tensor);
      if (info == nullptr) {
        fail("{}: tensor '{}' is listed in the index but missing from {}", index.string(), tensor,
             file.get<std::string>());
      }
    }
  } else if (fs::exists(single)) {
    store.add_file(single.string());
  } else {
    fail("{}: no model.safetensors or model.safetensors.index.json", dir);
  }
  return store;
}

std::uint8_t* TensorStore::add_owned(std::string name, DType dtype, std::vector<std::int64_t> shape) {
  TensorInfo info;
  info.name = name;
  info.dtype = dtype;
  info.dtype_name = std::string(dtype_name(dtype));
  info.shape = std::move(shape);
  info.bytes = static_cast<std::size_t>(info.numel()) * dtype_size(dtype);
  info.file = "<memory>";
  owned_.push_back(std::unique_ptr<std::uint8_t[]>(new std::uint8_t[info.bytes]));
  std::uint8_t* data = owned_.back().get();
  info.data = data;
  tensors_[name] = std::move(info);
  return data;
}

const TensorInfo* TensorStore::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

std::size_t TensorStore::total_bytes() const {
  std::size_t total = 0;
  for (const auto& [name, info] : tensors_) total += info.bytes;
  return total;
}

void write_safetensors(const std::string& path, const std::vector<const TensorInfo*>& tensors) {
  json header = json::object();
  std::uint64_t offset = 0;
  for (const TensorInfo* t : tensors) {
    header[t->name] = {{"dtype", t->dtype_name}, {"shape", t->shape}, {"data_offsets", {offset, offset + t->bytes}}};
    offset += t->bytes;
  }
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');  // keep the data section aligned
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail("{}: cannot create", path);
  std::uint64_t len = text.size();
  out.write(reinterpret_cast<const char*>(&len), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const TensorInfo* t : tensors) out.write(reinterpret_cast<const char*>(t->data), static_cast<std::streamsize>(t->bytes));
  if (!out) fail("{}: write failed (disk full?)", path);
}

}  // namespace wedlm
