// mgpu/backend/cuda/stream.hpp — CUDA streams and events as RAII, move-only types.
//
// `stream<gpu>` is a non-blocking stream (cudaStreamNonBlocking): it never synchronises
// with the legacy null stream, and nothing in mgpu uses the null stream. `event<gpu>` is
// a timing-free event. Every call selects the object's own device first (device_guard),
// so a thread that never chose a device never gets a context on device 0 from them.
// Their interface mirrors the host kind's (core/stream.hpp):
// record / wait / synchronize.
//
// Host-compilable: this header needs the CUDA Toolkit's headers, not nvcc.
#pragma once

#include <new>
#include <utility>

#include "mgpu/backend/cuda/runtime.hpp"
#include "mgpu/core/device.hpp"
#include "mgpu/core/stream.hpp"

namespace mgpu {

/// A non-blocking CUDA stream on one device.
template <>
class stream<gpu> {
 public:
  /// Creates a stream on device `ordinal`; buffers allocated on it come from `pool`
  /// (a cudaMemPool_t of that device; null: the device's default pool). @throws cuda_error.
  explicit stream(int ordinal, cudaMemPool_t pool = nullptr) : ordinal_(ordinal), pool_(pool) {
    backend::cuda::device_guard guard(ordinal);
    MGPU_CUDA_TRY(cudaStreamCreateWithFlags(&handle_, cudaStreamNonBlocking));
  }
  stream(stream&& other) noexcept
      : handle_(std::exchange(other.handle_, nullptr)), ordinal_(other.ordinal_), pool_(other.pool_) {}
  stream& operator=(stream&& other) noexcept {
    if (this != &other) {
      release();
      handle_ = std::exchange(other.handle_, nullptr);
      ordinal_ = other.ordinal_;
      pool_ = other.pool_;
    }
    return *this;
  }
  stream(stream const&) = delete;
  stream& operator=(stream const&) = delete;
  // cudaStreamDestroy returns at once; work already queued still completes.
  ~stream() { release(); }

  [[nodiscard]] cudaStream_t handle() const noexcept { return handle_; }
  [[nodiscard]] int ordinal() const noexcept { return ordinal_; }
  /// The memory pool buffers on this stream allocate from (null: the device's default).
  [[nodiscard]] cudaMemPool_t pool() const noexcept { return pool_; }

  /// Blocks the calling thread until the stream is drained. @throws cuda_error with the
  /// first asynchronous error of the work queued on it.
  void synchronize() const {
    backend::cuda::device_guard guard(ordinal_);  // never let the runtime pick device 0
    MGPU_CUDA_TRY(cudaStreamSynchronize(handle_));
  }

  /// Work queued after this call starts only once `e`'s latest recording has completed.
  void wait(event<gpu> const& e) const;

 private:
  void release() noexcept {
    if (handle_ != nullptr) {
      backend::cuda::device_guard guard(ordinal_, std::nothrow);
      MGPU_CUDA_TRY_NOTHROW(cudaStreamDestroy(handle_));
    }
    handle_ = nullptr;
  }

  cudaStream_t handle_ = nullptr;
  int ordinal_ = 0;
  cudaMemPool_t pool_ = nullptr;
};

/// A CUDA event without timing. A never-recorded event counts as complete.
template <>
class event<gpu> {
 public:
  event() = default;
  event(event&& other) noexcept
      : handle_(std::exchange(other.handle_, nullptr)), ordinal_(other.ordinal_) {}
  event& operator=(event&& other) noexcept {
    if (this != &other) {
      release();
      handle_ = std::exchange(other.handle_, nullptr);
      ordinal_ = other.ordinal_;
    }
    return *this;
  }
  event(event const&) = delete;
  event& operator=(event const&) = delete;
  ~event() { release(); }

  /// The event completes when `s` has run everything queued on it before this call.
  void record(stream<gpu> const& s) {
    // An event is recorded on streams of the device it was created on.
    if (handle_ == nullptr || ordinal_ != s.ordinal()) release();
    backend::cuda::device_guard guard(s.ordinal());
    if (handle_ == nullptr) {
      MGPU_CUDA_TRY(cudaEventCreateWithFlags(&handle_, cudaEventDisableTiming));
      ordinal_ = s.ordinal();
    }
    MGPU_CUDA_TRY(cudaEventRecord(handle_, s.handle()));
  }

  /// Blocks until the latest recording completes. @throws cuda_error.
  void synchronize() const {
    if (handle_ == nullptr) return;
    backend::cuda::device_guard guard(ordinal_);
    MGPU_CUDA_TRY(cudaEventSynchronize(handle_));
  }

  /// True if the latest recording has completed. @throws cuda_error.
  [[nodiscard]] bool query() const {
    if (handle_ == nullptr) return true;
    backend::cuda::device_guard guard(ordinal_);
    cudaError_t const s = cudaEventQuery(handle_);
    if (s == cudaErrorNotReady) return false;
    if (s != cudaSuccess) backend::cuda::detail::throw_cuda(s, "cudaEventQuery(handle_)", __FILE__, __LINE__);
    return true;
  }

  [[nodiscard]] cudaEvent_t handle() const noexcept { return handle_; }

 private:
  void release() noexcept {
    if (handle_ != nullptr) {
      backend::cuda::device_guard guard(ordinal_, std::nothrow);
      MGPU_CUDA_TRY_NOTHROW(cudaEventDestroy(handle_));
    }
    handle_ = nullptr;
  }

  cudaEvent_t handle_ = nullptr;
  int ordinal_ = 0;
};

inline void stream<gpu>::wait(event<gpu> const& e) const {
  if (e.handle() == nullptr) return;
  backend::cuda::device_guard guard(ordinal_);
  MGPU_CUDA_TRY(cudaStreamWaitEvent(handle_, e.handle(), 0));
}

}  // namespace mgpu
