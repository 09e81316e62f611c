// mgpu/execution/fork_join.hpp — the one place that fans work out to devices.
//
// fork_join(policy, f) runs f(context, i) for every device i of the policy's set, each
// as a task on that device's own work queue, so the devices work concurrently; then it
// joins: it waits until every one of its tasks has completed and rethrows the error of
// the lowest-numbered device that failed. Everything completes (or fails) before it
// returns, so `f` may capture locals by reference. Algorithms never loop over devices
// by hand.
//
// fork_join_async(policy, f) submits the same tasks and returns at once with a
// move-only fork_join_handle; `h.wait()` is the join (it rethrows that call's error),
// and the handle's destructor joins too (errors dropped, never thrown). The caller
// keeps what `f` references alive until then; `f` itself is moved into the call. This
// is how a batched algorithm issues batch i+1 while the host merges batch i.
//
// Join by completions, not by blocked threads. A task "completes" when
//   host devices  its function has returned;
//   GPUs          its function has returned after *issuing* its work onto the device's
//                 stream, and the CUDA event recorded after that work has completed.
// The device's host worker does not wait for the stream (device_worker<gpu>), so it
// is free for the next task; the join waits on the events.
//
// Each call owns its completion and its errors (a per-call join state, not the
// streams' sticky errors), so one set may serve several user threads at once: a task
// that throws fails only the call that submitted it, every other call's tasks still
// run and its results are its own, and the device's queue takes the next task at once.
//
// A task that calls fork_join (or fork_join_async) on the set it runs on would wait for
// its own queue and never return; that nesting is detected and reported as
// `invalid_argument` before anything is submitted. Another set from inside a task is
// allowed.
//
// The steps are the ones a collective library would provide (broadcast the inputs,
// run per shard, gather the results), so a set spanning processes can replace them.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>
#include <vector>

#include "mgpu/core/error.hpp"
#include "mgpu/execution/policy.hpp"

namespace mgpu::detail {

/// How fork_join runs a task on one device of kind `Kind`:
///
///   static stream<cpu>& queue(device_context<Kind>&);   // the host queue running its tasks
///   using completion = ...;                              // default-constructible, movable
///   static completion run(device_context<Kind>&, F& f);  // runs f(ctx, ctx.index)
///   static void wait(completion&);                        // blocks; throws the device's error
///
/// `run` returns once the task's host part is done; `wait` returns once its device part
/// is. Host devices have nothing left after `run`; the CUDA backend (mgpu/cuda.hpp)
/// returns an event recorded on the device's stream.
template <class Kind>
struct device_worker;

template <>
struct device_worker<cpu> {
  struct completion {};
  static stream<cpu>& queue(device_context<cpu>& ctx) noexcept { return ctx.work; }
  template <class F>
  static completion run(device_context<cpu>& ctx, F& f) {
    f(ctx, ctx.index);
    return {};
  }
  static void wait(completion&) noexcept {}
};

/// Completion of one fork_join call: how many of its tasks are still to run, each
/// device's completion and the error each device's task ended with. Shared with the
/// tasks, so it outlives a caller that stops waiting; it also owns the call's function.
template <class Kind>
class fork_join_state {
 public:
  using completion = typename device_worker<Kind>::completion;

  explicit fork_join_state(std::size_t devices) : pending_(devices), completions_(devices), errors_(devices) {}

  void finish(std::size_t device, completion done, std::exception_ptr error) noexcept {
    std::lock_guard lock(mutex_);
    completions_[device] = std::move(done);
    errors_[device] = std::move(error);
    if (--pending_ == 0) done_.notify_all();
  }

  /// Blocks until every task has run and its device work has completed; rethrows the
  /// lowest-numbered device's error. Call once.
  void join() {
    {
      std::unique_lock lock(mutex_);
      done_.wait(lock, [&] { return pending_ == 0; });
    }
    // Every task has finished: the slots are no longer written.
    for (std::size_t i = 0; i < errors_.size(); ++i) {
      if (errors_[i]) continue;
      try {
        device_worker<Kind>::wait(completions_[i]);
      } catch (...) {
        errors_[i] = std::current_exception();
      }
    }
    for (auto const& e : errors_) {
      if (e) std::rethrow_exception(e);
    }
  }

  std::shared_ptr<void> function;  // the call's `f`, owned until the state dies

 private:
  std::mutex mutex_;
  std::condition_variable done_;
  std::size_t pending_;
  std::vector<completion> completions_;
  std::vector<std::exception_ptr> errors_;
};

/// The join of one fork_join_async call (see the file comment). Move-only.
template <class Kind>
class fork_join_handle {
 public:
  fork_join_handle() = default;
  explicit fork_join_handle(std::shared_ptr<fork_join_state<Kind>> state) noexcept : state_(std::move(state)) {}
  fork_join_handle(fork_join_handle&&) noexcept = default;
  fork_join_handle& operator=(fork_join_handle&& other) noexcept {
    if (this != &other) {
      join_quietly();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  fork_join_handle(fork_join_handle const&) = delete;
  fork_join_handle& operator=(fork_join_handle const&) = delete;
  /// Waits for the call's tasks; their errors are dropped (wait() reports them).
  ~fork_join_handle() { join_quietly(); }

  /// True until wait() (or a move) takes the call.
  [[nodiscard]] bool valid() const noexcept { return state_ != nullptr; }

  /// Blocks until every task of the call has completed (device work included); rethrows
  /// the lowest-numbered device's error. Afterwards the handle is empty.
  /// @throws invalid_argument if the handle is empty; else the call's error.
  void wait() {
    MGPU_EXPECTS(state_ != nullptr, "fork_join_handle::wait: the handle holds no call (waited on or moved from)");
    auto const state = std::move(state_);
    state->join();
  }

 private:
  void join_quietly() noexcept {
    if (!state_) return;
    try {
      wait();
    } catch (...) {
    }
  }

  std::shared_ptr<fork_join_state<Kind>> state_;
};

/// Submits f(context, i) to every device of the policy's set and returns its join
/// handle (see the file comment). `f` is moved (or copied) into the call and lives until
/// its tasks are done; what it references must outlive the handle's wait.
/// @throws invalid_argument when called from a task of the same set (nothing is
///         submitted then); std::bad_alloc (the tasks already submitted are joined).
template <class Kind, class F>
[[nodiscard]] fork_join_handle<Kind> fork_join_async(execution_policy<Kind> const& policy, F&& f) {
  using worker = device_worker<Kind>;
  using function = std::decay_t<F>;
  auto& set = policy.devices();
  for (std::size_t i = 0; i < set.size(); ++i) {
    if (worker::queue(set[i]).runs_on_this_thread()) {
      throw invalid_argument(message(
          "fork_join was called from inside a task of device ", i, " of the same device set (",
          set.to_string(), "); a device runs one task at a time, so the nested call would wait "
          "for itself. Run the inner work inline, or on another device set"));
    }
  }
  auto const state = std::make_shared<fork_join_state<Kind>>(set.size());
  auto const fn = std::make_shared<function>(std::forward<F>(f));
  state->function = fn;
  std::size_t submitted = 0;
  try {
    for (; submitted < set.size(); ++submitted) {
      auto& ctx = set[submitted];
      worker::queue(ctx).submit([fp = fn.get(), &ctx, state, i = submitted]() noexcept {
        typename worker::completion done{};
        std::exception_ptr error;
        try {
          done = worker::run(ctx, *fp);
        } catch (...) {
          error = std::current_exception();
        }
        state->finish(i, std::move(done), std::move(error));
      });
    }
  } catch (...) {
    // Submitting ran out of memory: the tasks already queued still reference `f`.
    for (std::size_t i = submitted; i < set.size(); ++i) state->finish(i, {}, nullptr);
    fork_join_handle<Kind> queued(state);
    throw;
  }
  return fork_join_handle<Kind>(state);
}

/// Runs f(context, i) on every device of the policy's set and joins (see the file
/// comment). @throws invalid_argument for a nested call on the same set; else the
/// lowest-numbered failing device's error.
template <class Kind, class F>
void fork_join(execution_policy<Kind> const& policy, F&& f) {
  fork_join_async(policy, std::ref(f)).wait();
}

}  // namespace mgpu::detail
