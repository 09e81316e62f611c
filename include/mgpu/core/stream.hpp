// mgpu/core/stream.hpp — in-order work queues (streams) and events, host kind.
//
// A `stream<cpu>` is a worker thread that runs the tasks enqueued on it one after
// another, in order, with its own OpenMP thread count (its share of the cores). It is
// the host analogue of a CUDA stream, and `event<cpu>` the analogue of a CUDA event:
//
//   stream.enqueue(task)     runs `task` after everything enqueued before it
//   event.record(stream)     the event completes when the stream reaches this point
//   stream.wait(event)       later tasks of the stream start after the event completes
//   event.synchronize()      the calling thread blocks until the event completes
//   stream.synchronize()     the calling thread blocks until the stream is drained
//
// Errors: an exception thrown by a task is stored in the stream (as CUDA's sticky
// errors are); the stream skips its later tasks, completes its later events with that
// exception, and `synchronize` on the stream or on such an event rethrows it. The
// stream's error is cleared when `stream.synchronize()` reports it.
//
// Tasks that own their errors: `stream.submit(task)` runs `task` in order like
// `enqueue`, but whatever the stream's error state, and the task must report its own
// failure (it catches its exceptions). fork_join submits its tasks this way, so that a
// stream shared by several calls never carries one call's error into another's tasks:
// the sticky error belongs to the code that enqueues with `enqueue` and synchronises the
// stream itself.
//
// Thread safety: a stream's member functions may be called from any thread; an event
// object is recorded by one thread at a time (waiting on it from many is fine). Both
// types are move-only; destroying a stream waits for its queued tasks to finish.
// `runs_on_this_thread()` tells whether the caller is the stream's worker (a task of
// this stream), which is how fork_join detects a nested call that would deadlock.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include <omp.h>

#include "mgpu/core/device.hpp"
#include "mgpu/core/error.hpp"

namespace mgpu {

template <class Kind>
class stream;
template <class Kind>
class event;

namespace detail {

/// Completion state of one recording of an event.
struct host_event_state {
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  std::exception_ptr error;

  void complete(std::exception_ptr e) {
    {
      std::lock_guard lock(mutex);
      done = true;
      error = std::move(e);
    }
    done_cv.notify_all();
  }
  /// Blocks until complete; returns the error it completed with (null if none).
  std::exception_ptr wait() {
    std::unique_lock lock(mutex);
    done_cv.wait(lock, [&] { return done; });
    return error;
  }
};

}  // namespace detail

/// An in-order host work queue served by one worker thread (see the file comment).
template <>
class stream<cpu> {
 public:
  /// Starts the worker thread. OpenMP parallel regions run by its tasks use `threads`
  /// threads. @throws invalid_argument if threads < 1.
  explicit stream(int threads = 1) : state_(std::make_unique<state>()) {
    MGPU_EXPECTS(threads >= 1, "a host stream needs at least one thread, got ", threads);
    state_->threads = threads;
    state_->worker = std::thread([s = state_.get()] { s->run(); });
  }
  stream(stream&&) noexcept = default;
  stream& operator=(stream&& other) noexcept {
    if (this != &other) {
      shut_down();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  stream(stream const&) = delete;
  stream& operator=(stream const&) = delete;
  ~stream() { shut_down(); }

  /// Number of OpenMP threads this stream's tasks use.
  [[nodiscard]] int threads() const noexcept { return state_->threads; }

  /// Runs `task` on the worker after all previously enqueued work.
  void enqueue(std::function<void()> task) { state_->push({std::move(task), false}); }

  /// Runs `task` on the worker after all previously enqueued work, even when the stream
  /// holds an error; `task` reports its own failures and must not throw (an exception
  /// that escapes it anyway becomes the stream's error, as with `enqueue`).
  void submit(std::function<void()> task) { state_->push({std::move(task), true}); }

  /// True when the calling thread is this stream's worker, i.e. inside one of its tasks.
  [[nodiscard]] bool runs_on_this_thread() const noexcept {
    return state_ != nullptr && current_worker() == state_.get();
  }

  /// Blocks until every task enqueued so far has run; rethrows (and clears) the first
  /// exception a task threw since the last synchronize.
  /// @throws invalid_argument when called from one of this stream's own tasks (it would
  ///         wait for itself forever), before anything is enqueued.
  void synchronize() {
    if (runs_on_this_thread()) throw_waits_for_itself("stream::synchronize");
    auto marker = std::make_shared<detail::host_event_state>();
    state_->push({[marker, s = state_.get()] { marker->complete(s->take_error()); }, true});
    if (auto e = marker->wait()) std::rethrow_exception(e);
  }

  /// Tasks enqueued after this call start only once `e`'s latest recording completes.
  /// If `e` completed with an error, that error becomes this stream's error.
  void wait(event<cpu> const& e);

 private:
  friend class event<cpu>;

  struct state;

  [[noreturn]] static void throw_waits_for_itself(char const* what) {
    throw invalid_argument(detail::message(
        what, " was called from inside a task of the same device's stream; a device runs one task at a "
        "time, so the call would wait for itself. This happens when an algorithm (or a transfer) runs "
        "inside a fork_join task on the same device set: run the inner work inline, or on another set"));
  }

  /// The stream whose worker is the calling thread (null on other threads).
  static state const*& current_worker() noexcept {
    thread_local state const* current = nullptr;
    return current;
  }

  struct item {
    std::function<void()> fn;
    bool always_run;  // markers and submitted tasks run even after an error
  };

  struct state {
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<item> queue;
    bool stopping = false;
    int threads = 1;
    std::exception_ptr error;  // touched by the worker only, or under `mutex`
    std::thread worker;

    void push(item it) {
      {
        std::lock_guard lock(mutex);
        queue.push_back(std::move(it));
      }
      ready.notify_one();
    }
    std::exception_ptr current_error() {
      std::lock_guard lock(mutex);
      return error;
    }
    std::exception_ptr take_error() {
      std::lock_guard lock(mutex);
      return std::exchange(error, nullptr);
    }
    void run() {
      current_worker() = this;
      omp_set_num_threads(threads);
      while (true) {
        item it;
        {
          std::unique_lock lock(mutex);
          ready.wait(lock, [&] { return stopping || !queue.empty(); });
          if (queue.empty()) return;
          it = std::move(queue.front());
          queue.pop_front();
        }
        if (!it.always_run && current_error()) continue;
        try {
          it.fn();
        } catch (...) {
          std::lock_guard lock(mutex);
          if (!error) error = std::current_exception();
        }
      }
    }
  };

  void shut_down() noexcept {
    if (!state_) return;
    {
      std::lock_guard lock(state_->mutex);
      state_->stopping = true;
    }
    state_->ready.notify_one();
    state_->worker.join();
    state_.reset();
  }

  std::unique_ptr<state> state_;
};

/// Marks a point in a host stream (see the file comment). A default-constructed or
/// never-recorded event counts as complete.
template <>
class event<cpu> {
 public:
  event() = default;
  event(event&&) noexcept = default;
  event& operator=(event&&) noexcept = default;
  event(event const&) = delete;
  event& operator=(event const&) = delete;

  /// The event completes when `s` has run everything enqueued before this call; it
  /// completes with the stream's error if the stream has one by then.
  void record(stream<cpu>& s) {
    auto st = std::make_shared<detail::host_event_state>();
    s.state_->push({[st, q = s.state_.get()] { st->complete(q->current_error()); }, true});
    state_ = std::move(st);
    recorded_on_ = s.state_.get();
  }

  /// Blocks until the latest recording completes; rethrows the error it completed with.
  /// @throws invalid_argument when called, before the recording completed, from a task of
  ///         the stream it was recorded on (it would wait for itself forever).
  void synchronize() const {
    if (recorded_on_ != nullptr && stream<cpu>::current_worker() == recorded_on_ && !query()) {
      stream<cpu>::throw_waits_for_itself("event::synchronize");
    }
    if (auto e = latest()->wait()) std::rethrow_exception(e);
  }

  /// True if the latest recording has completed.
  [[nodiscard]] bool query() const {
    auto st = latest();
    std::lock_guard lock(st->mutex);
    return st->done;
  }

 private:
  friend class stream<cpu>;

  std::shared_ptr<detail::host_event_state> latest() const {
    if (!state_) {
      auto done = std::make_shared<detail::host_event_state>();
      done->done = true;
      return done;
    }
    return state_;
  }

  std::shared_ptr<detail::host_event_state> state_;
  stream<cpu>::state const* recorded_on_ = nullptr;
};

inline void stream<cpu>::wait(event<cpu> const& e) {
  enqueue([st = e.latest()] {
    if (auto err = st->wait()) std::rethrow_exception(err);
  });
}

}  // namespace mgpu
