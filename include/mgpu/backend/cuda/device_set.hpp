// mgpu/backend/cuda/device_set.hpp — a set of CUDA devices, their streams, library
// handles and peer access; the fork_join hook for GPUs.
//
// Each device of a `device_set<gpu>` has
//   work    its non-blocking CUDA stream: every kernel, copy and allocation of mgpu
//           for that device is ordered on it;
//   host    a host worker thread (a stream<cpu>) that issues the device's work, so
//           several GPUs are fed concurrently and a task may block on its own GPU;
//   cusparse / cublas / cusolver
//           handles created once, bound to `work`.
//   pool    its own stream-ordered memory pool (backend/cuda/buffer.hpp), which keeps
//           its reserve between batches; the memory budget counts that reserve;
//   scratch grow-only pinned host arrays reused by its batches and tiles.
// Building the set probes peer access for every ordered pair of its devices and
// enables it where the hardware allows (for ordinary and pool memory); a pair whose
// enabling fails is not an error: `staged_pairs()` lists the pairs without peer access,
// whose copies are staged through the set's pinned staging buffer (backend/cuda/copy.hpp).
// `transfers()` is the set's transfer_counter (core/device_set.hpp): the copies of
// backend/cuda/copy.hpp's broadcast, backend/cuda/transfer.hpp and the collectives add the
// bytes they move per (source, destination) pair of set positions, the host as
// host_endpoint.
// Every handle, stream and buffer is destroyed with its own device current.
//
// Testing only: with MGPU_CUDA_SHARED_DEVICES=1 in the environment, a device spec may
// repeat an ordinal (a spec with ordinals {0, 0}) to make several logical devices on one
// GPU, each with its own stream, pool, worker and handles, so the multi-device paths
// (copies between devices, replication, the exact merge) run on a single card. Copies
// between two logical devices of one GPU are plain device-to-device copies.
//
// Host-compilable: this header needs the CUDA Toolkit's headers, not nvcc.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mgpu/backend/cuda/buffer.hpp"
#include "mgpu/backend/cuda/runtime.hpp"
#include "mgpu/backend/cuda/stream.hpp"
#include "mgpu/core/device.hpp"
#include "mgpu/core/device_set.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/execution/fork_join.hpp"

namespace mgpu {

namespace backend::cuda {

/// cuSPARSE, cuBLAS and cuSOLVER handles of one device, bound to one stream.
class library_handles {
 public:
  explicit library_handles(stream<gpu> const& s) : ordinal_(s.ordinal()) {
    device_guard guard(s.ordinal());
    try {
      MGPU_CUSPARSE_TRY(cusparseCreate(&cusparse_));
      MGPU_CUSPARSE_TRY(cusparseSetStream(cusparse_, s.handle()));
      MGPU_CUBLAS_TRY(cublasCreate(&cublas_));
      MGPU_CUBLAS_TRY(cublasSetStream(cublas_, s.handle()));
      MGPU_CUSOLVER_TRY(cusolverDnCreate(&cusolver_));
      MGPU_CUSOLVER_TRY(cusolverDnSetStream(cusolver_, s.handle()));
    } catch (...) {
      release();
      throw;
    }
  }
  library_handles(library_handles const&) = delete;
  library_handles& operator=(library_handles const&) = delete;
  ~library_handles() { release(); }

  [[nodiscard]] cusparseHandle_t cusparse() const noexcept { return cusparse_; }
  [[nodiscard]] cublasHandle_t cublas() const noexcept { return cublas_; }
  [[nodiscard]] cusolverDnHandle_t cusolver() const noexcept { return cusolver_; }

 private:
  void release() noexcept {
    device_guard guard(ordinal_, std::nothrow);  // a handle is destroyed on its own device
    if (cusolver_ != nullptr) MGPU_CUSOLVER_TRY_NOTHROW(cusolverDnDestroy(cusolver_));
    if (cublas_ != nullptr) MGPU_CUBLAS_TRY_NOTHROW(cublasDestroy(cublas_));
    if (cusparse_ != nullptr) MGPU_CUSPARSE_TRY_NOTHROW(cusparseDestroy(cusparse_));
    cusolver_ = nullptr;
    cublas_ = nullptr;
    cusparse_ = nullptr;
  }

  int ordinal_ = 0;
  cusparseHandle_t cusparse_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  cusolverDnHandle_t cusolver_ = nullptr;
};

/// Runs `f`, which queues work on `s`; if it throws, waits for `s` to drain before
/// rethrowing, so that host memory a retry reuses (pinned scratch) or the caller frees
/// is no longer read or written by a copy queued before the failure.
template <class F>
void drain_on_error(stream<gpu> const& s, F&& f) {
  try {
    f();
  } catch (...) {
    static_cast<void>(cudaStreamSynchronize(s.handle()));
    throw;
  }
}

/// Checks the ordinals of a CUDA device spec against `visible` devices.
/// @throws invalid_argument quoting `text` for an ordinal that does not exist, or one
/// listed twice unless `allow_shared`.
inline void check_ordinals(std::string_view text, std::vector<int> const& ordinals, int visible,
                           bool allow_shared) {
  for (std::size_t a = 0; a < ordinals.size(); ++a) {
    if (ordinals[a] < 0 || ordinals[a] >= visible) {
      throw invalid_argument(mgpu::detail::message("device string \"", text, "\": CUDA device ", ordinals[a],
                                                   " does not exist (devices found: ",
                                                   describe_visible_devices(), ")"));
    }
    for (std::size_t b = 0; b < a && !allow_shared; ++b) {
      if (ordinals[a] == ordinals[b]) {
        throw invalid_argument(mgpu::detail::message(
            "device string \"", text, "\": CUDA device ", ordinals[a],
            " is listed twice (devices found: ", describe_visible_devices(),
            "; MGPU_CUDA_SHARED_DEVICES=1 allows it for testing)"));
      }
    }
  }
}

/// Whether an ordered pair of distinct GPUs gets direct peer copies: the hardware allows
/// it (`can`), enabling it succeeded or was already done, and the destination was
/// granted access to the source's memory pool. Anything else stages the pair's copies.
constexpr bool peer_pair_usable(int can, cudaError_t enable, cudaError_t pool_access) noexcept {
  return can != 0 && (enable == cudaSuccess || enable == cudaErrorPeerAccessAlreadyEnabled) &&
         pool_access == cudaSuccess;
}

}  // namespace backend::cuda

/// One CUDA device of a set and the resources the set keeps for it (file comment).
template <>
struct device_context<gpu> {
  device_context(int ordinal, std::size_t position)
      : dev{ordinal}, index(position), pool(ordinal), work(ordinal, pool.handle()), host(1), libraries(work) {}
  device_context(device_context const&) = delete;
  device_context& operator=(device_context const&) = delete;

  device<gpu> dev;
  /// Position of the device in its set (0-based).
  std::size_t index = 0;
  backend::cuda::memory_pool pool;
  stream<gpu> work;
  stream<cpu> host;
  backend::cuda::library_handles libraries;
  /// Pinned host arrays for the device's batches; only its host worker's tasks use them.
  backend::cuda::pinned_scratch scratch;

  /// Bytes an algorithm may use on this device: `requested` when nonzero (the policy's
  /// budget), else the free memory plus this context's unused pool reserve minus a
  /// margin (backend::cuda::budget_from).
  [[nodiscard]] std::size_t memory_budget(std::size_t requested) const {
    if (requested != 0) return requested;
    return backend::cuda::memory_budget(dev.ordinal, 0, pool.unused_bytes());
  }
};

/// An ordered set of CUDA devices (file comment).
template <>
class device_set<gpu> {
 public:
  /// The devices a parsed device string names: "cuda" is every visible device, "cuda:I,J"
  /// those ordinals in that order (the runtime's ordinals, so CUDA_VISIBLE_DEVICES
  /// applies). @throws invalid_argument quoting the string and listing the devices
  /// found, for a host spec, a missing or repeated ordinal, or when no GPU is visible;
  /// cuda_error / cusparse_error / ... if a stream or handle cannot be created.
  explicit device_set(device_spec const& spec) {
    MGPU_EXPECTS(spec.kind == device_spec::kind_id::cuda, "device string \"", spec.text,
                 "\" does not name CUDA devices");
    int const visible = backend::cuda::visible_device_count();
    if (visible == 0) {
      throw invalid_argument(detail::message("device string \"", spec.text,
                                             "\" names CUDA devices, but no CUDA device is visible "
                                             "(devices found: none)"));
    }
    std::vector<int> ordinals = spec.ordinals;
    if (ordinals.empty()) {
      for (int i = 0; i < visible; ++i) ordinals.push_back(i);
    }
    backend::cuda::check_ordinals(spec.text, ordinals, visible, mgpu::detail::shared_cuda_devices_allowed());
    contexts_.reserve(ordinals.size());
    for (std::size_t i = 0; i < ordinals.size(); ++i) {
      contexts_.push_back(std::make_unique<device_context<gpu>>(ordinals[i], i));
    }
    enable_peer_access();
    transfers_ = std::make_unique<transfer_counter>(contexts_.size());
  }

  [[nodiscard]] std::size_t size() const noexcept { return contexts_.size(); }
  [[nodiscard]] device_context<gpu>& operator[](std::size_t i) const { return *contexts_[i]; }
  [[nodiscard]] device<gpu> device_at(std::size_t i) const { return contexts_[i]->dev; }

  /// The string that builds an equal set, e.g. "cuda:0,1".
  [[nodiscard]] std::string to_string() const {
    std::string s = "cuda:";
    for (std::size_t i = 0; i < size(); ++i) {
      if (i > 0) s += ',';
      s += std::to_string(contexts_[i]->dev.ordinal);
    }
    return s;
  }

  /// True when device `dst` (set position) can read and write device `src`'s memory
  /// directly, so copies between them are single peer copies.
  [[nodiscard]] bool peer_access(std::size_t dst, std::size_t src) const noexcept {
    return dst == src || peer_[dst * size() + src] != 0;
  }

  /// The set's pinned staging buffer for copies between staged pairs, at least `bytes`
  /// long, with the lock that reserves it for the caller until the lock is released.
  /// @throws out_of_memory or cuda_error.
  [[nodiscard]] std::pair<std::unique_lock<std::mutex>, std::byte*> staging(std::size_t bytes) {
    std::unique_lock<std::mutex> lock(staging_mutex_);
    if (staging_.size() < bytes) {
      staging_ = pinned_buffer<std::byte>();
      staging_ = pinned_buffer<std::byte>(bytes);
    }
    return {std::move(lock), staging_.data()};
  }

  /// The bytes the copy and collective layer moved between this set's devices and the
  /// host (core/device_set.hpp's transfer_counter).
  [[nodiscard]] transfer_counter& transfers() const noexcept { return *transfers_; }

  /// The ordered pairs (dst ordinal, src ordinal) of CUDA devices without peer access:
  /// copies between them go through pinned host memory.
  [[nodiscard]] std::vector<std::pair<int, int>> staged_pairs() const {
    std::vector<std::pair<int, int>> pairs;
    for (std::size_t d = 0; d < size(); ++d) {
      for (std::size_t s = 0; s < size(); ++s) {
        if (!peer_access(d, s)) pairs.emplace_back(device_at(d).ordinal, device_at(s).ordinal);
      }
    }
    return pairs;
  }

 private:
  // Peer access for ordinary memory (cudaDeviceEnablePeerAccess, from the destination)
  // and for the source's pool (cudaMemPoolSetAccess); a pair where either fails is staged.
  // Two logical devices on one GPU share its memory: a plain copy, never staged.
  void enable_peer_access() {
    std::size_t const n = size();
    peer_.assign(n * n, 0);
    for (std::size_t d = 0; d < n; ++d) {
      int const dst = device_at(d).ordinal;
      backend::cuda::device_guard guard(dst);
      for (std::size_t s = 0; s < n; ++s) {
        if (s == d) continue;
        int const src = device_at(s).ordinal;
        if (src == dst) {
          peer_[d * n + s] = 1;
          continue;
        }
        int can = 0;
        MGPU_CUDA_TRY(cudaDeviceCanAccessPeer(&can, dst, src));
        if (can == 0) continue;
        cudaError_t const enable = cudaDeviceEnablePeerAccess(src, 0);
        static_cast<void>(cudaGetLastError());  // a refusal only stages this pair
        cudaError_t const pool = contexts_[s]->pool.grant_access(dst);
        static_cast<void>(cudaGetLastError());
        peer_[d * n + s] = backend::cuda::peer_pair_usable(can, enable, pool) ? 1 : 0;
      }
    }
  }

  // unique_ptr: contexts stay put, so tasks may keep references to them.
  std::vector<std::unique_ptr<device_context<gpu>>> contexts_;
  std::vector<unsigned char> peer_;  // peer_[dst * size() + src]
  std::mutex staging_mutex_;
  pinned_buffer<std::byte> staging_;
  std::unique_ptr<transfer_counter> transfers_;
};

namespace detail {

/// fork_join on GPUs: the task runs on the device's host worker with the device
/// current and issues its work onto ctx.work; the worker then records an event on that
/// stream and moves on to its next task without waiting. The join waits on the event,
/// which also reports the work's asynchronous errors.
///
/// Host memory a task hands to an asynchronous copy must live until its event
/// completes. The device's pinned scratch (ctx.scratch) is reused by the next task, so
/// before running a task the worker waits until the stream has finished the work issued
/// before it (the previous task's); that wait's errors belong to the earlier call, whose
/// event reports them.
template <>
struct device_worker<gpu> {
  using completion = event<gpu>;

  static stream<cpu>& queue(device_context<gpu>& ctx) noexcept { return ctx.host; }

  template <class F>
  static completion run(device_context<gpu>& ctx, F& f) {
    backend::cuda::device_guard guard(ctx.dev.ordinal);
    static_cast<void>(cudaStreamSynchronize(ctx.work.handle()));
    try {
      f(ctx, ctx.index);
    } catch (...) {
      // Host memory the failed task owned may still be read by queued copies.
      static_cast<void>(cudaStreamSynchronize(ctx.work.handle()));
      throw;
    }
    completion done;
    done.record(ctx.work);
    return done;
  }

  static void wait(completion& done) { done.synchronize(); }
};

}  // namespace detail
}  // namespace mgpu
