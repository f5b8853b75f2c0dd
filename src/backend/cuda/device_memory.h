#pragma once
// Owning device allocations and a small uploader for per-forward host data (ids, positions,
// attention plans) that skips the copy when the contents did not change.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <span>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "util/error.h"

namespace wedlm::cuda {

class DeviceMemory {
 public:
  DeviceMemory() = default;
  explicit DeviceMemory(std::size_t bytes) : bytes_(bytes) {
    if (bytes > 0) {
      const cudaError_t e = cudaMalloc(&ptr_, bytes);
      if (e != cudaSuccess) {
        std::size_t free_bytes = 0, total = 0;
        cudaMemGetInfo(&free_bytes, &total);
        fail("cannot allocate {:.1f} MB on the GPU ({:.1f} MB free of {:.1f} MB): {}", bytes / 1e6, free_bytes / 1e6,
             total / 1e6, cudaGetErrorString(e));
      }
    }
  }
  ~DeviceMemory() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  DeviceMemory(DeviceMemory&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  DeviceMemory& operator=(DeviceMemory&& o) noexcept {
    if (this != &o) {
      if (ptr_ != nullptr) cudaFree(ptr_);
      ptr_ = std::exchange(o.ptr_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;

  void* get() const { return ptr_; }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }
  std::size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

// Page-locked host memory, grown on demand (contents are not kept): copies to and from it run
// at full PCIe speed and truly asynchronously, where pageable memory goes through the driver's
// staging buffers.
class PinnedMemory {
 public:
  PinnedMemory() = default;
  ~PinnedMemory() {
    if (ptr_ != nullptr) cudaFreeHost(ptr_);
  }
  PinnedMemory(const PinnedMemory&) = delete;
  PinnedMemory& operator=(const PinnedMemory&) = delete;

  template <typename T>
  T* ensure(std::size_t count) {
    const std::size_t bytes = count * sizeof(T);
    if (bytes > bytes_) {
      if (ptr_ != nullptr) WEDLM_CUDA_CHECK(cudaFreeHost(ptr_));
      ptr_ = nullptr;
      bytes_ = 0;
      WEDLM_CUDA_CHECK(cudaMallocHost(&ptr_, bytes));
      bytes_ = bytes;
    }
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

// A device copy of a small host array, refreshed only when the contents change: within one
// forward every layer passes the same positions and attention plan.
template <typename T>
class DeviceArray {
 public:
  const T* upload(std::span<const T> host, cudaStream_t stream) {
    if (valid_ && host.size() == last_.size() && std::memcmp(host.data(), last_.data(), host.size_bytes()) == 0) {
      return memory_.as<T>();
    }
    if (host.size_bytes() > memory_.bytes()) memory_ = DeviceMemory(std::max<std::size_t>(host.size_bytes() * 2, 256));
    last_.assign(host.begin(), host.end());
    // Copies from the owned host copy, which stays unchanged until the next upload; the stream
    // orders the copy after kernels that still read the previous contents.
    if (!last_.empty()) {
      WEDLM_CUDA_CHECK(cudaMemcpyAsync(memory_.get(), last_.data(), host.size_bytes(), cudaMemcpyHostToDevice, stream));
    }
    valid_ = true;
    return memory_.as<T>();
  }

 private:
  DeviceMemory memory_;
  std::vector<T> last_;
  bool valid_ = false;
};

}  // namespace wedlm::cuda
