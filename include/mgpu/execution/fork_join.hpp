// mgpu/execution/fork_join.hpp — the one place that fans work out to devices.
//
// fork_join(policy, f) runs f(context, i) for every device i of the policy's set, each
// as a task on that device's own stream, so the devices work concurrently; then it
// joins: it waits until every one of its tasks has run and rethrows the error of the
// lowest-numbered device that failed. All of the devices finish (or fail) before it
// returns, so `f` may capture locals by reference. Algorithms never loop over devices
// by hand.
//
// Each call owns its completion and its errors (a per-call join state, not the
// streams' sticky errors), so one set may serve several user threads at once: a task
// that throws fails only the call that submitted it, every other call's tasks still
// run and its results are its own, and the device's queue takes the next task at once.
//
// A task that calls fork_join on the set it runs on would wait for its own queue and
// never return; that nesting is detected and reported as `invalid_argument` before
// anything is submitted. fork_join on another set from inside a task is allowed.
//
// The steps are the ones a collective library would provide (broadcast the inputs,
// run per shard, gather the results), so a set spanning processes can replace them.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <vector>

#include "mgpu/core/error.hpp"
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

/// Completion of one fork_join call: how many of its tasks are still to run, and the
/// error each device's task ended with. Shared with the tasks, so it outlives a caller
/// that stops waiting only if the tasks are done anyway.
class fork_join_state {
 public:
  explicit fork_join_state(std::size_t devices) : pending_(devices), errors_(devices) {}

  void finish(std::size_t device, std::exception_ptr error) noexcept {
    std::lock_guard lock(mutex_);
    errors_[device] = std::move(error);
    if (--pending_ == 0) done_.notify_all();
  }

  /// Blocks until every task has finished; rethrows the lowest-numbered device's error.
  void join() {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return pending_ == 0; });
    for (auto const& e : errors_) {
      if (e) std::rethrow_exception(e);
    }
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_;
  std::size_t pending_;
  std::vector<std::exception_ptr> errors_;
};

template <class Kind, class F>
void fork_join(execution_policy<Kind> const& policy, F&& f) {
  using worker = device_worker<Kind>;
  auto& set = policy.devices();
  for (std::size_t i = 0; i < set.size(); ++i) {
    if (worker::queue(set[i]).runs_on_this_thread()) {
      throw invalid_argument(message(
          "fork_join was called from inside a task of device ", i, " of the same device set (",
          set.to_string(), "); a device runs one task at a time, so the nested call would wait "
          "for itself. Run the inner work inline, or on another device set"));
    }
  }
  auto const state = std::make_shared<fork_join_state>(set.size());
  std::size_t submitted = 0;
  try {
    for (; submitted < set.size(); ++submitted) {
      auto& ctx = set[submitted];
      worker::queue(ctx).submit([&f, &ctx, state, i = submitted]() noexcept {
        std::exception_ptr error;
        try {
          worker::run(ctx, f);
        } catch (...) {
          error = std::current_exception();
        }
        state->finish(i, std::move(error));
      });
    }
  } catch (...) {
    // Submitting ran out of memory: the tasks already queued still reference `f`.
    for (std::size_t i = submitted; i < set.size(); ++i) state->finish(i, nullptr);
    try {
      state->join();
    } catch (...) {
    }
    throw;
  }
  state->join();
}

}  // namespace mgpu::detail
