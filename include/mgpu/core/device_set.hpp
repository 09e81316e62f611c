// mgpu/core/device_set.hpp — an ordered set of devices of one kind, with their streams.
//
// `device_set<cpu>` built from "cpu:N" owns N logical host devices. Each has its own
// stream (a worker thread) and a share of the threads: with H threads (OpenMP's
// omp_get_max_threads(), so OMP_NUM_THREADS as usual, by default every hardware
// thread), device i gets H/N threads, the first H%N devices one more, and never fewer
// than one. `OMP_NUM_THREADS=N` with "cpu:N" thus gives one thread per device, which is
// how the multi-device scaling of the benchmarks is measured. The set is shared by the policies that name it; its streams are
// thread-safe, so one set may serve several user threads.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <omp.h>

#include "mgpu/core/device.hpp"
#include "mgpu/core/stream.hpp"

namespace mgpu {

template <class Kind>
class device_set;

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

 private:
  static int checked_count(device_spec const& spec) {
    MGPU_EXPECTS(spec.kind == device_spec::kind_id::cpu, "device string \"", spec.text,
                 "\" does not name host devices");
    return spec.count;
  }

  // unique_ptr: contexts stay put, so tasks may keep references to them.
  std::vector<std::unique_ptr<device_context<cpu>>> contexts_;
};

}  // namespace mgpu
