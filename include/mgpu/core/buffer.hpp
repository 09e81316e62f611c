// mgpu/core/buffer.hpp — an owning, uninitialised, fixed-size array on one device.
//
// `buffer<T, Kind>` is move-only. The host specialisation takes 64-byte aligned memory
// from the CPU backend's host memory resource (backend/cpu/host_memory_resource.hpp, which
// decides how blocks are placed) and leaves elements uninitialised (T must be trivially
// copyable, as every element type in mgpu is). A host buffer may instead adopt a
// std::vector's storage (moved in, no copy): it then keeps the vector's own alignment
// (that of operator new, 16 bytes on x86-64 Linux), and frees it as the vector would.
// Nothing in mgpu needs more than the element's alignment; 64 bytes only keeps rows on
// cache lines. The GPU specialisation lives in the CUDA backend. Allocation failures
// report the memory the process can still get (the resource's available_bytes()).
// Thread safety: none beyond that of the memory it owns.
#pragma once

#include <cstddef>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "mgpu/backend/cpu/host_memory_resource.hpp"
#include "mgpu/core/device.hpp"
#include "mgpu/core/error.hpp"

namespace mgpu {

template <class T, class Kind>
class buffer;

namespace detail {

inline constexpr std::size_t host_alignment = backend::cpu::host_memory_resource::alignment;

}  // namespace detail

/// Host memory: `size()` elements of T, 64-byte aligned (or a std::vector's, adopted),
/// uninitialised.
template <class T>
class buffer<T, cpu> {
  static_assert(std::is_trivially_copyable_v<T>, "buffer elements must be trivially copyable");

 public:
  using value_type = T;
  using kind = cpu;

  buffer() = default;
  buffer(buffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)),
        adopted_(std::move(other.adopted_)) {}
  buffer& operator=(buffer&& other) noexcept {
    buffer(std::move(other)).swap(*this);
    return *this;
  }
  buffer(buffer const&) = delete;
  buffer& operator=(buffer const&) = delete;
  ~buffer() {
    if (adopted_.capacity() == 0) host_memory::deallocate(data_, size_ * sizeof(T));
  }

  /// @throws out_of_memory with the requested and free bytes when allocation fails.
  explicit buffer(std::size_t size) : size_(size) {
    if (size == 0) return;
    if (size > std::numeric_limits<std::size_t>::max() / sizeof(T)) {
      throw out_of_memory(std::numeric_limits<std::size_t>::max(), host_memory::available_bytes(),
                          "mgpu::buffer<cpu>");
    }
    std::size_t const bytes = size * sizeof(T);
    static_assert(host_memory::alignment == 64, "host buffers are 64-byte aligned");
    data_ = host_memory::allocate(bytes);
    if (data_ == nullptr) {
      size_ = 0;
      throw out_of_memory(bytes, host_memory::available_bytes(), "mgpu::buffer<cpu>");
    }
  }

  /// A buffer holding a copy of `values`.
  explicit buffer(std::span<T const> values) : buffer(values.size()) {
    if (!values.empty()) std::memcpy(data(), values.data(), values.size_bytes());
  }

  /// A buffer that takes over `values`' storage: no allocation, no copy, data() ==
  /// the vector's data() before the move; `values` is left empty. Unused capacity stays
  /// allocated until the buffer is destroyed. O(1).
  explicit buffer(std::vector<T>&& values) noexcept
    requires(!std::is_same_v<T, bool>)
      : size_(values.size()), adopted_(std::move(values)) {
    if (size_ > 0) data_ = adopted_.data();
  }

  [[nodiscard]] T* data() noexcept { return static_cast<T*>(data_); }
  [[nodiscard]] T const* data() const noexcept { return static_cast<T const*>(data_); }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::span<T> span() noexcept { return {data(), size_}; }
  [[nodiscard]] std::span<T const> span() const noexcept { return {data(), size_}; }
  T& operator[](std::size_t i) noexcept { return data()[i]; }
  T const& operator[](std::size_t i) const noexcept { return data()[i]; }

 private:
  using host_memory = backend::cpu::host_memory_resource;

  void swap(buffer& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    adopted_.swap(other.adopted_);
  }

  void* data_ = nullptr;  // host_memory::allocate(size_ * sizeof(T)) bytes, or adopted_'s storage
  std::size_t size_ = 0;
  std::vector<T> adopted_;  // owns data_ when it has capacity; without storage otherwise
};

}  // namespace mgpu
