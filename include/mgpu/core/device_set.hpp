// mgpu/core/device_set.hpp — an ordered set of devices of one kind, with their streams.
//
// `device_set<cpu>` built from "cpu:N" owns N logical host devices. Each has its own
// stream (a worker thread) and a share of the threads: with H threads (OpenMP's
// omp_get_max_threads(), so OMP_NUM_THREADS as usual, by default every hardware
// thread), device i gets H/N threads, the first H%N devices one more, and never fewer
// than one. `OMP_NUM_THREADS=N` with "cpu:N" thus gives one thread per device, which is
// how the multi-device scaling of the benchmarks is measured. The set is shared by the policies that name it; its streams are
// thread-safe, so one set may serve several user threads.
//
// `transfer_counter` (one per set, `set.transfers()`) counts the bytes that the copy and
// collective layer (execution/transfer.hpp, execution/collectives.hpp and their CUDA
// overloads) moves between endpoints: the set's devices by position, and the host's user
// memory as `host_endpoint`. A kernel reading a view in place moves nothing and counts
// nothing; a copy within one device is not a transfer either.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <omp.h>

#include "mgpu/core/device.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/core/stream.hpp"

namespace mgpu {

template <class Kind>
class device_set;

/// The endpoint that stands for the host's user memory (the caller's arrays) in a
/// transfer_counter; devices are their positions in the set (0-based).
inline constexpr int host_endpoint = -1;

/// Bytes moved per ordered (source, destination) pair of endpoints of one device set
/// (see the file comment). Every member is thread-safe (relaxed atomics: the counts are
/// exact once the transfers that add to them have been joined).
class transfer_counter {
 public:
  /// A counter for `devices` devices plus the host endpoint, all counts zero.
  explicit transfer_counter(std::size_t devices)
      : endpoints_(devices + 1), counts_(new std::atomic<std::uint64_t>[(devices + 1) * (devices + 1)]) {
    reset();
  }

  /// Adds `bytes` to the pair (from, to). For the copy layer; O(1).
  /// @throws invalid_argument if an endpoint is outside [host_endpoint, devices).
  void add(int from, int to, std::uint64_t bytes) {
    counts_[slot(from, to)].fetch_add(bytes, std::memory_order_relaxed);
  }

  /// Bytes moved from endpoint `from` to endpoint `to` since the last reset.
  /// @throws invalid_argument if an endpoint is outside [host_endpoint, devices).
  [[nodiscard]] std::uint64_t bytes(int from, int to) const {
    return counts_[slot(from, to)].load(std::memory_order_relaxed);
  }
  /// Bytes `endpoint` sent to any other endpoint.
  [[nodiscard]] std::uint64_t sent(int endpoint) const {
    std::uint64_t sum = 0;
    for (int to = host_endpoint; to + 1 < static_cast<int>(endpoints_); ++to) sum += bytes(endpoint, to);
    return sum;
  }
  /// Bytes `endpoint` received from any other endpoint.
  [[nodiscard]] std::uint64_t received(int endpoint) const {
    std::uint64_t sum = 0;
    for (int from = host_endpoint; from + 1 < static_cast<int>(endpoints_); ++from) sum += bytes(from, endpoint);
    return sum;
  }
  /// Bytes moved between all pairs.
  [[nodiscard]] std::uint64_t total() const noexcept {
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < endpoints_ * endpoints_; ++i) sum += counts_[i].load(std::memory_order_relaxed);
    return sum;
  }
  /// Sets every count to zero.
  void reset() noexcept {
    for (std::size_t i = 0; i < endpoints_ * endpoints_; ++i) counts_[i].store(0, std::memory_order_relaxed);
  }

 private:
  [[nodiscard]] std::size_t slot(int from, int to) const {
    auto const n = static_cast<int>(endpoints_) - 1;
    MGPU_EXPECTS(from >= host_endpoint && from < n && to >= host_endpoint && to < n,
                 "transfer endpoints must be in [host_endpoint = -1, ", n, "), got ", from, " -> ", to);
    return static_cast<std::size_t>(from + 1) * endpoints_ + static_cast<std::size_t>(to + 1);
  }

  std::size_t endpoints_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
};

/// One device of a set and the resources the set keeps for it.
template <class Kind>
struct device_context {
  device<Kind> dev;
  /// Position of the device in its set (0-based).
  std::size_t index = 0;
  stream<Kind> work;
};

/// N logical host devices (see the file comment).
template <>
class device_set<cpu> {
 public:
  /// `count` logical host devices sharing `hardware_threads` threads (0: OpenMP's
  /// omp_get_max_threads() at construction). @throws invalid_argument if count is outside [1, max_host_devices].
  explicit device_set(int count = 1, unsigned hardware_threads = 0) {
    MGPU_EXPECTS(count >= 1 && count <= max_host_devices, "the number of host devices must be in [1, ",
                 max_host_devices, "], got ", count);
    unsigned const h = hardware_threads != 0
                           ? hardware_threads
                           : static_cast<unsigned>(std::max(1, omp_get_max_threads()));
    auto const n = static_cast<unsigned>(count);
    contexts_.reserve(n);
    for (unsigned i = 0; i < n; ++i) {
      int const threads = static_cast<int>(std::max(1u, h / n + (i < h % n ? 1u : 0u)));
      contexts_.push_back(std::make_unique<device_context<cpu>>(
          device_context<cpu>{device<cpu>{static_cast<int>(i)}, i, stream<cpu>(threads)}));
    }
    transfers_ = std::make_unique<transfer_counter>(n);
  }

  /// The set a parsed device string asks for. @throws invalid_argument if `spec` is
  /// not a host spec.
  explicit device_set(device_spec const& spec) : device_set(checked_count(spec)) {}

  [[nodiscard]] std::size_t size() const noexcept { return contexts_.size(); }
  [[nodiscard]] device_context<cpu>& operator[](std::size_t i) const { return *contexts_[i]; }
  [[nodiscard]] device<cpu> device_at(std::size_t i) const { return contexts_[i]->dev; }

  /// The string that builds an equal set, e.g. "cpu:3".
  [[nodiscard]] std::string to_string() const {
    return size() == 1 ? std::string("cpu") : "cpu:" + std::to_string(size());
  }

  /// Host devices share one memory: every pair has direct access, none is staged.
  [[nodiscard]] std::vector<std::pair<int, int>> staged_pairs() const { return {}; }

  /// The bytes the copy and collective layer moved between this set's devices and the
  /// host (see transfer_counter). Shared by every policy naming the set.
  [[nodiscard]] transfer_counter& transfers() const noexcept { return *transfers_; }

 private:
  static int checked_count(device_spec const& spec) {
    MGPU_EXPECTS(spec.kind == device_spec::kind_id::cpu, "device string \"", spec.text,
                 "\" does not name host devices");
    return spec.count;
  }

  // unique_ptr: contexts stay put, so tasks may keep references to them.
  std::vector<std::unique_ptr<device_context<cpu>>> contexts_;
  std::unique_ptr<transfer_counter> transfers_;
};

}  // namespace mgpu
