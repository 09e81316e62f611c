// mgpu/backend/cuda/buffer.hpp — device memory on the stream-ordered allocator, and
// pinned host memory for staging.
//
// `buffer<T, gpu>` allocates with cudaMallocAsync on a stream and frees with
// cudaFreeAsync on the same stream, so allocation and release are ordered with the
// work that uses the memory, and the pool of the device's default memory pool recycles
// it without device-wide synchronisation. The stream must outlive the buffer (the
// device_set that owns the stream does, in every algorithm). Elements are left
// uninitialised. `pinned_buffer<T>` is page-locked host memory (cudaMallocHost), the
// only kind of host memory that asynchronous copies can use without a hidden staging
// copy.
//
// Host-compilable: this header needs the CUDA Toolkit's headers, not nvcc.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <new>
#include <span>
#include <type_traits>
#include <utility>

#include "mgpu/backend/cuda/runtime.hpp"
#include "mgpu/backend/cuda/stream.hpp"
#include "mgpu/core/buffer.hpp"
#include "mgpu/detail/host_memory.hpp"  // host_free_bytes
#include "mgpu/core/error.hpp"

namespace mgpu {

namespace backend::cuda::detail {

/// Turns an allocation failure into out_of_memory (requested and free bytes) and any
/// other failure into cuda_error.
inline void check_allocation(cudaError_t s, std::size_t bytes, int ordinal, char const* call,
                             char const* where) {
  if (s == cudaSuccess) return;
  if (s == cudaErrorMemoryAllocation) {
    static_cast<void>(cudaGetLastError());  // allocation failures are not sticky
    std::size_t free = 0;
    std::size_t total = 0;
    {
      device_guard guard(ordinal);
      if (cudaMemGetInfo(&free, &total) != cudaSuccess) free = 0;
    }
    throw out_of_memory(bytes, free, where);
  }
  throw_cuda(s, call, __FILE__, __LINE__);
}

template <class T>
std::size_t checked_bytes(std::size_t size, char const* where) {
  if (size > std::numeric_limits<std::size_t>::max() / sizeof(T)) {
    throw out_of_memory(std::numeric_limits<std::size_t>::max(), 0, where);
  }
  return size * sizeof(T);
}

}  // namespace backend::cuda::detail

/// `size()` elements of T in device memory, allocated and freed in order on a stream.
template <class T>
class buffer<T, gpu> {
  static_assert(std::is_trivially_copyable_v<T>, "buffer elements must be trivially copyable");

 public:
  using value_type = T;
  using kind = gpu;

  buffer() = default;

  /// Allocates `size` elements on `s`'s device, ordered on `s`.
  /// @throws out_of_memory (requested and free bytes) or cuda_error.
  buffer(std::size_t size, stream<gpu> const& s)
      : size_(size), stream_(s.handle()), ordinal_(s.ordinal()) {
    if (size == 0) return;
    std::size_t const bytes = backend::cuda::detail::checked_bytes<T>(size, "mgpu::buffer<gpu>");
    void* p = nullptr;
    backend::cuda::device_guard guard(ordinal_);
    if (s.pool() != nullptr) {
      backend::cuda::detail::check_allocation(cudaMallocFromPoolAsync(&p, bytes, s.pool(), stream_), bytes,
                                              ordinal_, "cudaMallocFromPoolAsync(&p, bytes, s.pool(), stream_)",
                                              "mgpu::buffer<gpu>");
    } else {
      backend::cuda::detail::check_allocation(cudaMallocAsync(&p, bytes, stream_), bytes, ordinal_,
                                              "cudaMallocAsync(&p, bytes, stream_)", "mgpu::buffer<gpu>");
    }
    data_ = static_cast<T*>(p);
  }

  buffer(buffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)),
        stream_(other.stream_),
        ordinal_(other.ordinal_) {}
  buffer& operator=(buffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
      stream_ = other.stream_;
      ordinal_ = other.ordinal_;
    }
    return *this;
  }
  buffer(buffer const&) = delete;
  buffer& operator=(buffer const&) = delete;
  ~buffer() { release(); }

  [[nodiscard]] T* data() noexcept { return data_; }
  [[nodiscard]] T const* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  /// The CUDA device the memory lives on.
  [[nodiscard]] int ordinal() const noexcept { return ordinal_; }
  /// The stream the buffer is allocated and freed on.
  [[nodiscard]] cudaStream_t stream_handle() const noexcept { return stream_; }

 private:
  void release() noexcept {
    if (data_ != nullptr) {
      backend::cuda::device_guard guard(ordinal_, std::nothrow);
      MGPU_CUDA_TRY_NOTHROW(cudaFreeAsync(data_, stream_));
    }
    data_ = nullptr;
    size_ = 0;
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
  cudaStream_t stream_ = nullptr;
  int ordinal_ = 0;
};

/// Page-locked host memory for asynchronous copies (cudaMallocHost). Freeing it
/// (cudaFreeHost) waits for the device work that may still use it.
template <class T>
class pinned_buffer {
  static_assert(std::is_trivially_copyable_v<T>, "buffer elements must be trivially copyable");

 public:
  pinned_buffer() = default;
  /// @throws out_of_memory or cuda_error.
  explicit pinned_buffer(std::size_t size) : size_(size) {
    if (size == 0) return;
    std::size_t const bytes = backend::cuda::detail::checked_bytes<T>(size, "mgpu::pinned_buffer");
    void* p = nullptr;
    cudaError_t const s = cudaMallocHost(&p, bytes);
    if (s == cudaErrorMemoryAllocation) {
      static_cast<void>(cudaGetLastError());
      throw out_of_memory(bytes, detail::host_free_bytes(), "mgpu::pinned_buffer");
    }
    if (s != cudaSuccess) backend::cuda::detail::throw_cuda(s, "cudaMallocHost(&p, bytes)", __FILE__, __LINE__);
    data_ = static_cast<T*>(p);
  }
  pinned_buffer(pinned_buffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  pinned_buffer& operator=(pinned_buffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  pinned_buffer(pinned_buffer const&) = delete;
  pinned_buffer& operator=(pinned_buffer const&) = delete;
  ~pinned_buffer() { release(); }

  [[nodiscard]] T* data() noexcept { return data_; }
  [[nodiscard]] T const* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::span<T> span() noexcept { return {data_, size_}; }
  [[nodiscard]] std::span<T const> span() const noexcept { return {data_, size_}; }
  T& operator[](std::size_t i) noexcept { return data_[i]; }
  T const& operator[](std::size_t i) const noexcept { return data_[i]; }

 private:
  void release() noexcept {
    if (data_ != nullptr) MGPU_CUDA_TRY_NOTHROW(cudaFreeHost(data_));
    data_ = nullptr;
    size_ = 0;
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
};


namespace backend::cuda {

/// mgpu's own stream-ordered memory pool on one device (one per device of a set, and one
/// per logical device where several share a GPU). Unlike the device's default pool, whose
/// release threshold 0 hands memory back to the driver at every synchronisation (so each
/// batch maps its memory again), this pool keeps what it has reserved until the set is
/// destroyed; memory_budget counts that reserve (unused_bytes) as available.
/// Peer devices are granted access with grant_access (cudaDeviceEnablePeerAccess does not
/// cover stream-ordered allocations).
class memory_pool {
 public:
  /// @throws cuda_error.
  explicit memory_pool(int ordinal) : ordinal_(ordinal) {
    device_guard guard(ordinal);
    cudaMemPoolProps props{};
    props.allocType = cudaMemAllocationTypePinned;
    props.handleTypes = cudaMemHandleTypeNone;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = ordinal;
    MGPU_CUDA_TRY(cudaMemPoolCreate(&pool_, &props));
    std::uint64_t keep = std::numeric_limits<std::uint64_t>::max();
    cudaError_t const s = cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &keep);
    if (s != cudaSuccess) {
      MGPU_CUDA_TRY_NOTHROW(cudaMemPoolDestroy(pool_));
      detail::throw_cuda(s, "cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &keep)",
                         __FILE__, __LINE__);
    }
  }
  memory_pool(memory_pool const&) = delete;
  memory_pool& operator=(memory_pool const&) = delete;
  // Outstanding allocations keep the pool's memory until they are freed (CUDA defers the
  // release), so destroying it before a buffer is safe.
  ~memory_pool() {
    device_guard guard(ordinal_, std::nothrow);
    MGPU_CUDA_TRY_NOTHROW(cudaMemPoolDestroy(pool_));
  }

  [[nodiscard]] cudaMemPool_t handle() const noexcept { return pool_; }

  /// Bytes the pool has reserved from the device but not handed out.
  [[nodiscard]] std::size_t unused_bytes() const {
    std::uint64_t reserved = 0;
    std::uint64_t used = 0;
    MGPU_CUDA_TRY(cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrReservedMemCurrent, &reserved));
    MGPU_CUDA_TRY(cudaMemPoolGetAttribute(pool_, cudaMemPoolAttrUsedMemCurrent, &used));
    return reserved > used ? static_cast<std::size_t>(reserved - used) : 0;
  }

  /// Lets device `peer` read and write this pool's allocations; returns the status.
  [[nodiscard]] cudaError_t grant_access(int peer) const noexcept {
    cudaMemAccessDesc desc{};
    desc.location.type = cudaMemLocationTypeDevice;
    desc.location.id = peer;
    desc.flags = cudaMemAccessFlagsProtReadWrite;
    return cudaMemPoolSetAccess(pool_, &desc, 1);
  }

 private:
  cudaMemPool_t pool_ = nullptr;
  int ordinal_ = 0;
};

/// Grow-only page-locked host arrays reused across the batches and tiles of one device
/// (allocating pinned memory per batch costs a driver call that synchronises the device
/// and pins pages anew). Used only by tasks on the device's host worker, one at a time.
class pinned_scratch {
 public:
  static constexpr std::size_t slots = 4;

  /// `n` elements of slot `slot` (< slots), valid until the next call for that slot.
  /// The contents are unspecified. @throws out_of_memory or cuda_error.
  template <class T>
  std::span<T> get(std::size_t slot, std::size_t n) {
    static_assert(std::is_trivially_copyable_v<T>);
    std::size_t const bytes = detail::checked_bytes<T>(n, "mgpu pinned scratch");
    auto& b = slots_[slot];
    if (b.size() < bytes) {
      std::size_t const grown = std::max(bytes, b.size() / 2 * 3);
      b = pinned_buffer<std::byte>();  // free first: the old and new need not both fit
      b = pinned_buffer<std::byte>(grown);
    }
    return {reinterpret_cast<T*>(b.data()), n};
  }

 private:
  std::array<pinned_buffer<std::byte>, slots> slots_;
};

}  // namespace backend::cuda

}  // namespace mgpu
