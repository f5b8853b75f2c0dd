#pragma once
// The named tensors of a checkpoint: memory-mapped safetensors files (one or sharded), or buffers
// built in memory (synthetic models). Tensors are views; the store owns what they point into.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/dtype.h"
#include "util/mapped_file.h"

namespace wedlm {

struct TensorInfo {
  std::string name;
  std::string dtype_name;     // as written in the file ("BF16", "I64", ...)
  std::optional<DType> dtype; // empty for element types the engine does not compute with
  std::vector<std::int64_t> shape;
  const std::uint8_t* data = nullptr;
  std::size_t bytes = 0;
  std::string file;  // where it came from, for error messages

  std::int64_t numel() const;
};

class TensorStore {
 public:
  // Opens `dir`/model.safetensors.index.json (sharded) or `dir`/model.safetensors.
  static TensorStore open_directory(const std::string& dir);
  // Parses one safetensors file and adds its tensors.
  void add_file(const std::string& path);
  // Adds a tensor whose bytes the store allocates and keeps (synthetic weights); the caller fills
  // the returned, uninitialised bytes.
  std::uint8_t* add_owned(std::string name, DType dtype, std::vector<std::int64_t> shape);

  const TensorInfo* find(const std::string& name) const;
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  std::size_t total_bytes() const;
  const std::vector<std::string>& files() const { return file_paths_; }

 private:
  std::map<std::string, TensorInfo> tensors_;
  std::vector<std::unique_ptr<MappedFile>> maps_;
  std::vector<std::unique_ptr<std::uint8_t[]>> owned_;
  std::vector<std::string> file_paths_;
};

// Writes tensors as one safetensors file (used by `wedlm synth`). Tensors are written in the
// order given.
void write_safetensors(const std::string& path, const std::vector<const TensorInfo*>& tensors);

}  // namespace wedlm
