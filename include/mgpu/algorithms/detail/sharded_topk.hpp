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
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "mgpu/backend/cpu/parallel.hpp"
#include "mgpu/detail/topk_heap.hpp"
#include "mgpu/execution/fork_join.hpp"
#include "mgpu/execution/policy.hpp"

namespace mgpu::detail {

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
template <class T, class Index>
struct topk_lists {
  std::vector<scored<T, Index>> out;
  std::vector<std::int32_t> counts;
};

/// Prepares and submits batch [q0, min(queries, q0 + batch)) into buffer set `slot`.
template <class T, class Index, class Kind, class Lists, class Adapter>
fork_join_handle<Kind> submit_topk_batch(execution_policy<Kind> const& policy, std::vector<bool> const& has_shard,
                                         std::vector<Lists>& lists, std::int64_t queries, std::int64_t batch,
                                         std::size_t k, std::int64_t q0, int slot, Adapter& a) {
  auto const q1 = std::min(queries, q0 + batch);
  a.prepare(slot, q0, q1);
  return fork_join_async(policy, [&a, &has_shard, &lists, k, q0, q1, slot](auto& ctx, std::size_t dev) {
    if (!has_shard[dev]) return;
    auto const rows = static_cast<std::size_t>(q1 - q0);
    auto& l = lists[dev];
    a.search(ctx, dev, slot, q0, q1, std::span<scored<T, Index>>(l.out.data(), rows * k),
             std::span<std::int32_t>(l.counts.data(), rows));
  });
}

/// Runs the batched, sharded top-k of `queries` queries over the devices whose
/// `has_shard[d]` is set (see the file comment); `batch` >= 1 queries per batch, `k`
/// >= 1 entries per list. Rethrows a device's error (the batch in flight is joined
/// first). O(queries x devices x k log k) host work for the merges.
template <class T, class Index, class Kind, class Adapter>
void sharded_topk(execution_policy<Kind> const& policy, std::vector<bool> const& has_shard, std::int64_t queries,
                  std::int64_t batch, std::size_t k, Adapter& a) {
  using entry = scored<T, Index>;
  std::size_t const n_devices = policy.device_count();
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
  if (queries > 0) current = submit_topk_batch<T, Index>(policy, has_shard, slots[0], queries, batch, k, 0, 0, a);
  int slot = 0;
  for (std::int64_t q0 = 0; q0 < queries; q0 += batch) {
    auto const q1 = std::min(queries, q0 + batch);
    if (q1 < queries) next = submit_topk_batch<T, Index>(policy, has_shard, slots[1 - slot], queries, batch, k, q1, 1 - slot, a);
    current.wait();

    auto const rows = static_cast<std::int64_t>(q1 - q0);
    auto const& lists_now = slots[slot];
    // A team costs more than merging a few rows: from 64 rows per batch on.
    backend::cpu::parallel_for_with_state(
        rows, {.chunk = 0, .min_parallel = 64}, [k] { return topk_heap<T, Index>(k); },
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
                                          std::int64_t batch, std::int64_t q0, int slot, Adapter& a) {
  auto const q1 = std::min(queries, q0 + batch);
  a.prepare(slot, q0, q1);
  return fork_join_async(policy, [&a, &has_shard, &lists, q0, q1, slot](auto& ctx, std::size_t dev) {
    if (!has_shard[dev]) return;
    a.search_all(ctx, dev, slot, q0, q1, lists[dev]);
  });
}

/// The unbounded form of sharded_topk (file comment): every device lists all its matches
/// per query, the host merges them exactly, batch i+1 runs on the devices while batch i
/// is merged. `batch` >= 1. Rethrows a device's error (the batch in flight is joined
/// first). O(matches x log devices) host work for the merges.
template <class T, class Index, class Kind, class Adapter>
void sharded_matches(execution_policy<Kind> const& policy, std::vector<bool> const& has_shard,
                     std::int64_t queries, std::int64_t batch, Adapter& a) {
  using entry = scored<T, Index>;
  std::size_t const n_devices = policy.device_count();
  std::vector<match_lists<T, Index>> slots[2];
  for (auto& slot : slots) slot.resize(n_devices);
  std::vector<std::int64_t> merged_offsets;
  std::vector<entry> merged;

  // Declared after the buffers: a handle's destructor joins before they die.
  fork_join_handle<Kind> current;
  fork_join_handle<Kind> next;
  if (queries > 0) current = submit_match_batch<T, Index>(policy, has_shard, slots[0], queries, batch, 0, 0, a);
  int slot = 0;
  for (std::int64_t q0 = 0; q0 < queries; q0 += batch) {
    auto const q1 = std::min(queries, q0 + batch);
    if (q1 < queries) next = submit_match_batch<T, Index>(policy, has_shard, slots[1 - slot], queries, batch, q1, 1 - slot, a);
    current.wait();

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
        {.chunk = 64});
    a.emit_all(q0, std::span<std::int64_t const>(merged_offsets), std::span<entry const>(merged));
    current = std::move(next);
    slot = 1 - slot;
  }
}

}  // namespace mgpu::detail
