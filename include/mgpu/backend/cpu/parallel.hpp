// mgpu/backend/cpu/parallel.hpp — the host's parallel loops, in one place.
//
// The algorithms' own host work (merging device lists, row norms, initial factors, Gram
// blocks) runs as loops over an index range on the calling thread's OpenMP team. The
// algorithms call these functions instead of writing OpenMP pragmas, so that the
// threading of the host lives in the CPU backend (and could be replaced there) and the
// headers under algorithms/ hold no pragma.
//
// Exceptions: a body may throw. The first exception thrown (in the order threads happen
// to catch them) is rethrown on the calling thread after the loop; iterations not yet
// started are then skipped. No exception leaves an OpenMP region (which would terminate).
//
// Threads: the team is the calling thread's (omp_get_max_threads(); on a cpu:N device
// worker, its share of the cores). A loop with fewer than `min_parallel` iterations runs
// on the calling thread alone, which is cheaper than waking a team for little work.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

#include <omp.h>

namespace mgpu::backend::cpu {

/// How a parallel loop is cut: `chunk` 0 = static schedule (equal contiguous ranges, for
/// iterations of equal cost), else dynamic with `chunk` iterations per claim (for
/// uneven iterations); `min_parallel`: fewer iterations run on the calling thread.
struct loop_schedule {
  std::int64_t chunk = 0;
  std::int64_t min_parallel = 1;
};

namespace detail {

/// Remembers the first exception of a loop and stops the others from starting work.
class loop_errors {
 public:
  [[nodiscard]] bool failed() const noexcept { return failed_.load(std::memory_order_relaxed); }
  void capture() noexcept {
    std::lock_guard lock(mutex_);
    if (!first_) first_ = std::current_exception();
    failed_.store(true, std::memory_order_relaxed);
  }
  void rethrow() const {
    if (first_) std::rethrow_exception(first_);
  }

 private:
  std::atomic<bool> failed_{false};
  std::mutex mutex_;
  std::exception_ptr first_;
};

}  // namespace detail

/// Calls body(state, i) for every i in [0, n), where `state` is one object per thread
/// made by make_state() (scratch such as a heap, reused across that thread's
/// iterations). Rethrows the first exception a body or make_state threw.
template <class MakeState, class Body>
void parallel_for_with_state(std::int64_t n, loop_schedule schedule, MakeState&& make_state, Body&& body) {
  if (n <= 0) return;
  detail::loop_errors errors;
  [[maybe_unused]] bool const team = n >= schedule.min_parallel && n > 1;  // unused where OpenMP is off
#pragma omp parallel if (team)
  {
    // Every thread meets the worksharing loop, whether or not its state could be made
    // (a thread that skipped it would leave the others waiting at its barrier).
    std::optional<std::invoke_result_t<MakeState&>> state;
    try {
      state.emplace(make_state());
    } catch (...) {
      errors.capture();
    }
    if (schedule.chunk <= 0) {
#pragma omp for schedule(static)
      for (std::int64_t i = 0; i < n; ++i) {
        if (errors.failed()) continue;
        try {
          body(*state, i);
        } catch (...) {
          errors.capture();
        }
      }
    } else {
#pragma omp for schedule(dynamic, schedule.chunk)
      for (std::int64_t i = 0; i < n; ++i) {
        if (errors.failed()) continue;
        try {
          body(*state, i);
        } catch (...) {
          errors.capture();
        }
      }
    }
  }
  errors.rethrow();
}

/// The number of threads a parallel loop started here would use (>= 1).
inline int host_threads() noexcept { return omp_get_max_threads() > 1 ? omp_get_max_threads() : 1; }

/// Calls body(i) for every i in [0, n) (see the file comment). Rethrows the first
/// exception a body threw.
template <class Body>
void parallel_for(std::int64_t n, Body&& body, loop_schedule schedule = {}) {
  struct no_state {};
  parallel_for_with_state(n, schedule, [] { return no_state{}; },
                          [&body](no_state&, std::int64_t i) { body(i); });
}

}  // namespace mgpu::backend::cpu
