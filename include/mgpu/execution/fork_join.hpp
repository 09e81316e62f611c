// mgpu/execution/fork_join.hpp — the one place that fans work out to devices.
//
// fork_join(policy, f) runs f(context, i) for every device i of the policy's set, each
// as a task on that device's own stream, so the devices work concurrently; then it
// joins: it waits for every device's completion event and rethrows the first error.
// All of the devices finish (or fail) before it returns, so `f` may capture locals by
// reference. Algorithms never loop over devices by hand.
//
// The steps are the ones a collective library would provide (broadcast the inputs,
// run per shard, gather the results), so a set spanning processes can replace them.
// Work must not call fork_join from inside `f` on the same set: a device's stream runs
// one task at a time.
#pragma once

#include <cstddef>
#include <exception>
#include <vector>

#include "mgpu/execution/policy.hpp"

namespace mgpu::detail {

/// How fork_join runs a task on one device of kind `Kind`: `queue(ctx)` is the host
/// work queue that runs the device's tasks in order, and `run(ctx, f)` runs one task
/// there. Host devices run `f` directly; the CUDA backend (mgpu/cuda.hpp) specialises
/// this to select the device, run `f` (which issues work onto the device's stream)
/// and wait for that stream, so that the task ends when its device work does.
template <class Kind>
struct device_worker;

template <>
struct device_worker<cpu> {
  static stream<cpu>& queue(device_context<cpu>& ctx) noexcept { return ctx.work; }
  template <class F>
  static void run(device_context<cpu>& ctx, F& f) {
    f(ctx, ctx.index);
  }
};

template <class Kind, class F>
void fork_join(execution_policy<Kind> const& policy, F&& f) {
  using worker = device_worker<Kind>;
  auto& set = policy.devices();
  std::vector<event<cpu>> done(set.size());
  for (std::size_t i = 0; i < set.size(); ++i) {
    auto& ctx = set[i];
    worker::queue(ctx).enqueue([&f, &ctx] { worker::run(ctx, f); });
    done[i].record(worker::queue(ctx));
  }
  std::exception_ptr first;
  for (auto& e : done) {
    try {
      e.synchronize();
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
  if (first) {
    // The failed task left its error in its queue; clear it so the set stays usable.
    for (std::size_t i = 0; i < set.size(); ++i) {
      try {
        worker::queue(set[i]).synchronize();
      } catch (...) {
      }
    }
    std::rethrow_exception(first);
  }
}

}  // namespace mgpu::detail
