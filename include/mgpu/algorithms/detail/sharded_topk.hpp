// mgpu/algorithms/detail/sharded_topk.hpp — the one skeleton of the sharded exact top-k
// searches (cosine_topk, knn).
//
// The corpus (base) is cut into row shards, one per device; each device keeps its
// shard. The queries go through in batches; for each batch every device lists its
// shard's best k per query (ranked by ranks_before, global indices), and the host
// merges the devices' lists exactly: one total order ranks them all, so the best k of
// their union is the answer, whatever the number of devices.
//
// Overlap: batch i+1 is submitted (fork_join_async) before batch i is merged, into the
// second of two sets of per-device output buffers, so the devices search batch i+1
// while the calling thread merges batch i. Time per batch is then about
// max(device search, host merge) rather than their sum. Batches are emitted in order.
//
// The searches plug in as an adapter `a` with
//   a.prepare(slot, q0, q1)                       calling thread, before batch [q0, q1)
//                                                 is submitted into buffer set `slot`
//   a.search(ctx, dev, slot, q0, q1, out, counts) device dev's task: its shard's lists
//                                                 (out: rows x k, counts: rows)
//   a.emit(q0, merged, merged_counts)             calling thread, in batch order: the
//                                                 merged lists (rows x k, best first)
// Memory: 2 x devices x batch x k entries for the device lists, batch x k for the merge.
//
// Unbounded searches (k = 0: every match above a threshold, whose number per query is not
// known in advance) use sharded_matches, the same skeleton with variable-length lists:
// each device returns, per batch, CSR-like lists (offsets per query, entries ranked by
// ranks_before), and the host merges each query's lists from all devices by the same
// order. Its adapter has prepare and
//   a.search_all(ctx, dev, slot, q0, q1, lists)   device dev's task: fills lists.offsets
//                                                 (rows + 1, from 0) and lists.entries
//   a.emit_all(q0, offsets, entries)              calling thread, in batch order: the
//                                                 merged lists (offsets rows + 1, from 0)
// Memory: the matches of two batches on every device, plus one merged batch.
//
// Observing the join (benchmarks, tests): a sharded_options_scope on the calling thread
// sets, for every sharded_topk / sharded_matches that thread runs while the scope lives,
//   join      batch_join::overlapped (the default, as above) or batch_join::synchronous:
//             batch i+1 is submitted only after batch i is merged and emitted, so the
//             devices idle during each merge (the baseline the overlap is measured
//             against; the results are the same);
//   observer  called with (batch_event, batch, device) when a device's task for a batch
//             starts and returns (on that device's worker thread) and when the host
//             merge of a batch starts (the join returned) and ends (after emit; on the
//             calling thread, device = device count). It must be thread-safe; what it
//             throws fails the search (from a device task, as that task's error).
// Unused (no scope, or an empty observer), it costs one thread-local read per search and
// one test of an empty function per event. The skeleton records no time itself; the
// observer decides what to record (benchmarks/bench_overlap.cpp records a clock).
// The scope is a thread-local setting because the algorithms' options (knn_options,
// cosine_topk_options) do not carry it; it is a diagnostic hook, not a tuning knob.
//
// Deferred results (GPU leaves): a device task's lists must be in `out` / `counts` (or
// `lists`) when the task *completes*, which on a GPU is when the event recorded after
// its work completes (execution/fork_join.hpp), not when its function returns. So each
// task of the skeleton grants one deferral: the first leaf call of the task that takes
// it (take_deferred_results(), on the device's worker) may return with its results
// still being copied by its stream; the join's event covers them. A leaf that does not
// get the grant (called again in the same task, as an adapter merging several shards of
// one device does, or called outside the skeleton) completes before returning, which,
// its stream being in order, completes the deferred results before them too. So an
// adapter may read a leaf's results in its task after any later leaf call, never
// directly after the first.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "mgpu/backend/cpu/parallel.hpp"
#include "mgpu/detail/topk_heap.hpp"
#include "mgpu/execution/fork_join.hpp"
#include "mgpu/execution/policy.hpp"

namespace mgpu::detail {

/// How sharded_topk and sharded_matches order the submission of batch i+1 and the host
/// merge of batch i (file comment).
enum class batch_join {
  overlapped,   ///< batch i+1 is submitted before batch i is merged (the default)
  synchronous,  ///< batch i+1 is submitted after batch i is merged and emitted
};

/// What a batch_observer is told (file comment).
enum class batch_event {
  device_started,   ///< a device's task for the batch begins (that device's worker thread)
  device_finished,  ///< it returns normally: host devices have done their work, GPUs
                    ///< have issued it (its completion is the join's event)
  merge_started,    ///< the batch's join returned; its host merge begins (calling thread)
  merge_finished,   ///< its merge and the adapter's emit are done (calling thread)
};

/// Called with (event, batch number from 0, device index; for the merge events the
/// device count). Called concurrently from the device workers and the calling thread.
using batch_observer = std::function<void(batch_event, std::int64_t batch, std::size_t device)>;

/// The skeleton's settings (file comment).
struct sharded_options {
  batch_join join = batch_join::overlapped;
  batch_observer observer{};  ///< empty: no calls
};

namespace sharded_detail {
inline sharded_options const*& current_options() noexcept {
  thread_local sharded_options const* current = nullptr;
  return current;
}
inline sharded_options const& default_options() noexcept {
  static sharded_options const defaults{};
  return defaults;
}
}  // namespace sharded_detail

/// Sets the options of the sharded searches the constructing thread runs while the scope
/// lives (innermost scope wins; the previous one is restored on destruction). `options`
/// must outlive the scope. Not movable.
class sharded_options_scope {
 public:
  explicit sharded_options_scope(sharded_options const& options) noexcept
      : previous_(std::exchange(sharded_detail::current_options(), &options)) {}
  sharded_options_scope(sharded_options_scope const&) = delete;
  sharded_options_scope& operator=(sharded_options_scope const&) = delete;
  ~sharded_options_scope() { sharded_detail::current_options() = previous_; }

 private:
  sharded_options const* previous_;
};

/// The options in effect on the calling thread: the innermost sharded_options_scope's,
/// else the defaults (overlapped, no observer).
inline sharded_options const& current_sharded_options() noexcept {
  auto const* current = sharded_detail::current_options();
  return current != nullptr ? *current : sharded_detail::default_options();
}

namespace sharded_detail {
inline bool& deferral_granted() noexcept {
  thread_local bool granted = false;
  return granted;
}
/// Grants the deferral for the lifetime of one device task (file comment).
class task_deferral {
 public:
  task_deferral() noexcept { deferral_granted() = true; }
  task_deferral(task_deferral const&) = delete;
  task_deferral& operator=(task_deferral const&) = delete;
  ~task_deferral() { deferral_granted() = false; }
};
}  // namespace sharded_detail

/// For a leaf, on its device's worker: true the first time it is called in a skeleton
/// task, when that leaf call may leave its results to the join's event (file comment,
/// "Deferred results"); false otherwise, when the call must complete its results before
/// returning.
inline bool take_deferred_results() noexcept { return std::exchange(sharded_detail::deferral_granted(), false); }

/// Calls the observer, if any.
inline void observe_batch(batch_observer const* observer, batch_event e, std::int64_t batch, std::size_t device) {
  if (observer != nullptr) (*observer)(e, batch, device);
}

/// Row bounds of `devices` equal shards of `rows` rows: shard d is [b[d], b[d + 1]).
inline std::vector<std::int64_t> equal_row_bounds(std::int64_t rows, std::size_t devices) {
  std::vector<std::int64_t> bounds(devices + 1);
  for (std::size_t d = 0; d <= devices; ++d) {
    bounds[d] = static_cast<std::int64_t>(static_cast<std::size_t>(rows) * d / devices);
  }
  return bounds;
}

/// One shard per device of rows [bounds[d], bounds[d + 1]) built by
/// make(ctx, first, last) as a fork_join task; empty ranges get no shard.
template <class Shard, class Kind, class Bound, class Make>
std::vector<std::optional<Shard>> make_shards(execution_policy<Kind> const& policy, std::span<Bound const> bounds,
                                              Make const& make) {
  std::vector<std::optional<Shard>> shards(policy.device_count());
  fork_join(policy, [&](auto& ctx, std::size_t dev) {
    if (bounds[dev] == bounds[dev + 1]) return;
    shards[dev].emplace(make(ctx, bounds[dev], bounds[dev + 1]));
  });
  return shards;
}

/// Which devices hold a shard: the `has_shard` argument of sharded_topk.
template <class Shard>
std::vector<bool> shard_presence(std::vector<std::optional<Shard>> const& shards) {
  std::vector<bool> present(shards.size());
  for (std::size_t d = 0; d < shards.size(); ++d) present[d] = shards[d].has_value();
  return present;
}

/// One device's lists for one batch: out (rows x k), counts (rows).
/// A batch's host merge starts a team of the calling thread's threads only from this many
/// entries: below it the team costs more than the merge (docs/performance.md, issue 14),
/// and on cpu:N it competes with the devices' workers for the same cores.
inline constexpr std::int64_t parallel_merge_entries = std::int64_t{1} << 20;

/// Rows per batch from which the bounded merge (entries_per_row = k x devices) is parallel.
[[nodiscard]] inline std::int64_t parallel_merge_rows(std::int64_t entries_per_row) noexcept {
  return std::max<std::int64_t>(64, parallel_merge_entries / std::max<std::int64_t>(1, entries_per_row));
}

template <class T, class Index>
struct topk_lists {
  std::vector<scored<T, Index>> out;
  std::vector<std::int32_t> counts;
};

/// Prepares and submits batch [q0, min(queries, q0 + batch)) into buffer set `slot`.
template <class T, class Index, class Kind, class Lists, class Adapter>
fork_join_handle<Kind> submit_topk_batch(execution_policy<Kind> const& policy, std::vector<bool> const& has_shard,
                                         std::vector<Lists>& lists, std::int64_t queries, std::int64_t batch,
                                         std::size_t k, std::int64_t q0, int slot, Adapter& a,
                                         batch_observer const* observer) {
  auto const q1 = std::min(queries, q0 + batch);
  a.prepare(slot, q0, q1);
  return fork_join_async(policy, [&a, &has_shard, &lists, k, q0, q1, slot, observer, b = q0 / batch](
                                     auto& ctx, std::size_t dev) {
    if (!has_shard[dev]) return;
    observe_batch(observer, batch_event::device_started, b, dev);
    auto const rows = static_cast<std::size_t>(q1 - q0);
    auto& l = lists[dev];
    sharded_detail::task_deferral const deferral;
    a.search(ctx, dev, slot, q0, q1, std::span<scored<T, Index>>(l.out.data(), rows * k),
             std::span<std::int32_t>(l.counts.data(), rows));
    observe_batch(observer, batch_event::device_finished, b, dev);
  });
}

/// Runs the batched, sharded top-k of `queries` queries over the devices whose
/// `has_shard[d]` is set (see the file comment); `batch` >= 1 queries per batch, `k`
/// >= 1 entries per list; `options`: the join and the observer (file comment), by
/// default the calling thread's sharded_options_scope. Rethrows a device's error (the
/// batch in flight is joined first). O(queries x devices x k log k) host work for the
/// merges.
template <class T, class Index, class Kind, class Adapter>
void sharded_topk(execution_policy<Kind> const& policy, std::vector<bool> const& has_shard, std::int64_t queries,
                  std::int64_t batch, std::size_t k, Adapter& a,
                  sharded_options const& options = current_sharded_options()) {
  using entry = scored<T, Index>;
  std::size_t const n_devices = policy.device_count();
  bool const overlapped = options.join == batch_join::overlapped;
  batch_observer const* const observer = options.observer ? &options.observer : nullptr;
  std::vector<topk_lists<T, Index>> slots[2];
  for (auto& slot : slots) {
    slot.resize(n_devices);
    for (std::size_t dev = 0; dev < n_devices; ++dev) {
      if (!has_shard[dev]) continue;
      slot[dev].out.resize(static_cast<std::size_t>(batch) * k);
      slot[dev].counts.resize(static_cast<std::size_t>(batch));
    }
  }
  std::vector<entry> merged(static_cast<std::size_t>(std::min(batch, queries)) * k);
  std::vector<std::int32_t> merged_counts(static_cast<std::size_t>(std::min(batch, queries)));

  // Declared after the buffers: a handle's destructor joins before they die.
  fork_join_handle<Kind> current;
  fork_join_handle<Kind> next;
  auto const submit = [&](std::int64_t q0, int into) {
    return submit_topk_batch<T, Index>(policy, has_shard, slots[into], queries, batch, k, q0, into, a, observer);
  };
  if (queries > 0) current = submit(0, 0);
  int slot = 0;
  for (std::int64_t q0 = 0; q0 < queries; q0 += batch) {
    auto const q1 = std::min(queries, q0 + batch);
    if (overlapped && q1 < queries) next = submit(q1, 1 - slot);
    current.wait();
    observe_batch(observer, batch_event::merge_started, q0 / batch, n_devices);

    auto const rows = static_cast<std::int64_t>(q1 - q0);
    auto const& lists_now = slots[slot];
    backend::cpu::parallel_for_with_state(
        rows, {.chunk = 0, .min_parallel = parallel_merge_rows(k * static_cast<std::int64_t>(n_devices))}, [k] { return topk_heap<T, Index>(k); },
        [&](topk_heap<T, Index>& heap, std::int64_t i) {
          auto const r = static_cast<std::size_t>(i);
          for (std::size_t dev = 0; dev < n_devices; ++dev) {
            if (!has_shard[dev]) continue;
            auto const* list = lists_now[dev].out.data() + r * k;
            for (std::int32_t j = 0; j < lists_now[dev].counts[r]; ++j) heap.push(list[j]);
          }
          merged_counts[r] = static_cast<std::int32_t>(heap.size());
          heap.drain_sorted(merged.begin() + static_cast<std::ptrdiff_t>(r * k));
        });
    a.emit(q0, std::span<entry const>(merged.data(), static_cast<std::size_t>(rows) * k),
           std::span<std::int32_t const>(merged_counts.data(), static_cast<std::size_t>(rows)));
    observe_batch(observer, batch_event::merge_finished, q0 / batch, n_devices);
    if (!overlapped && q1 < queries) next = submit(q1, 1 - slot);
    current = std::move(next);
    slot = 1 - slot;
  }
}

/// One device's variable-length lists for one batch (sharded_matches): query r's entries
/// are entries[offsets[r] .. offsets[r + 1]), ranked by ranks_before.
template <class T, class Index>
struct match_lists {
  std::vector<std::int64_t> offsets;
  std::vector<scored<T, Index>> entries;
};

/// Prepares and submits batch [q0, min(queries, q0 + batch)) of an unbounded search into
/// buffer set `slot`.
template <class T, class Index, class Kind, class Adapter>
fork_join_handle<Kind> submit_match_batch(execution_policy<Kind> const& policy, std::vector<bool> const& has_shard,
                                          std::vector<match_lists<T, Index>>& lists, std::int64_t queries,
                                          std::int64_t batch, std::int64_t q0, int slot, Adapter& a,
                                          batch_observer const* observer) {
  auto const q1 = std::min(queries, q0 + batch);
  a.prepare(slot, q0, q1);
  return fork_join_async(policy, [&a, &has_shard, &lists, q0, q1, slot, observer, b = q0 / batch](
                                     auto& ctx, std::size_t dev) {
    if (!has_shard[dev]) return;
    observe_batch(observer, batch_event::device_started, b, dev);
    sharded_detail::task_deferral const deferral;
    a.search_all(ctx, dev, slot, q0, q1, lists[dev]);
    observe_batch(observer, batch_event::device_finished, b, dev);
  });
}

/// The unbounded form of sharded_topk (file comment): every device lists all its matches
/// per query, the host merges them exactly, batch i+1 runs on the devices while batch i
/// is merged. `batch` >= 1; `options` as for sharded_topk. Rethrows a device's error
/// (the batch in flight is joined first). O(matches x log devices) host work for the
/// merges.
template <class T, class Index, class Kind, class Adapter>
void sharded_matches(execution_policy<Kind> const& policy, std::vector<bool> const& has_shard,
                     std::int64_t queries, std::int64_t batch, Adapter& a,
                     sharded_options const& options = current_sharded_options()) {
  using entry = scored<T, Index>;
  std::size_t const n_devices = policy.device_count();
  bool const overlapped = options.join == batch_join::overlapped;
  batch_observer const* const observer = options.observer ? &options.observer : nullptr;
  std::vector<match_lists<T, Index>> slots[2];
  for (auto& slot : slots) slot.resize(n_devices);
  std::vector<std::int64_t> merged_offsets;
  std::vector<entry> merged;

  // Declared after the buffers: a handle's destructor joins before they die.
  fork_join_handle<Kind> current;
  fork_join_handle<Kind> next;
  auto const submit = [&](std::int64_t q0, int into) {
    return submit_match_batch<T, Index>(policy, has_shard, slots[into], queries, batch, q0, into, a, observer);
  };
  if (queries > 0) current = submit(0, 0);
  int slot = 0;
  for (std::int64_t q0 = 0; q0 < queries; q0 += batch) {
    auto const q1 = std::min(queries, q0 + batch);
    if (overlapped && q1 < queries) next = submit(q1, 1 - slot);
    current.wait();
    observe_batch(observer, batch_event::merge_started, q0 / batch, n_devices);

    auto const rows = static_cast<std::int64_t>(q1 - q0);
    auto const& lists_now = slots[slot];
    merged_offsets.assign(static_cast<std::size_t>(rows) + 1, 0);
    for (std::size_t dev = 0; dev < n_devices; ++dev) {
      if (!has_shard[dev]) continue;
      auto const& o = lists_now[dev].offsets;
      for (std::size_t r = 0; r < static_cast<std::size_t>(rows); ++r) merged_offsets[r + 1] += o[r + 1] - o[r];
    }
    for (std::size_t r = 0; r < static_cast<std::size_t>(rows); ++r) merged_offsets[r + 1] += merged_offsets[r];
    merged.resize(static_cast<std::size_t>(merged_offsets.back()));
    backend::cpu::parallel_for(
        rows,
        [&](std::int64_t i) {
          auto const r = static_cast<std::size_t>(i);
          auto const begin = merged.begin() + merged_offsets[r];
          auto at = begin;
          for (std::size_t dev = 0; dev < n_devices; ++dev) {
            if (!has_shard[dev]) continue;
            auto const& l = lists_now[dev];
            auto const end = std::copy(l.entries.begin() + l.offsets[r], l.entries.begin() + l.offsets[r + 1], at);
            // Each device's list is ranked already: merge it into the ranked prefix.
            std::inplace_merge(begin, at, end, ranks_before<T, Index>);
            at = end;
          }
        },
        {.chunk = 64, .min_parallel = std::ssize(merged) >= parallel_merge_entries ? 1 : rows + 1});
    a.emit_all(q0, std::span<std::int64_t const>(merged_offsets), std::span<entry const>(merged));
    observe_batch(observer, batch_event::merge_finished, q0 / batch, n_devices);
    if (!overlapped && q1 < queries) next = submit(q1, 1 - slot);
    current = std::move(next);
    slot = 1 - slot;
  }
}

}  // namespace mgpu::detail
