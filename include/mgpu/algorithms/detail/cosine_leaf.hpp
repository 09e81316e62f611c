// mgpu/algorithms/detail/cosine_leaf.hpp — the contract of the cosine searches' per-kind
// leaf (cosine_index, and cosine_topk through it).
//
// A leaf holds one device's corpus shards and scores a block of queries against one;
// everything else (validation, partitioning, batching, the exact merge) is the shared
// skeleton (sharded_topk.hpp) and cosine_index. Every kind takes the same arguments:
//
//   shard<T, I>      one device's resident shard (movable); owns what it reads
//   staged<T, I>     a shard's rows on their way to the device (movable)
//   stage(set, device, block, normalise, done)                          calling thread
//       starts moving `block` (host rows of corpus documents [first, first +
//       block.rows)) to device `device` through the transfer layer (execution/transfer.hpp,
//       counted in set.transfers()), on set[device].work, recording `done`; the block
//       must stay alive until `done` completes. `normalise`: divide each row by its L2
//       norm; otherwise the rows are normalised already (a saved index) and are used as
//       they are, bit for bit.
//   make_shard(ctx, staged, first, non_negative, normalise, budget)     device task
//       after `done`: the shard of those rows; non_negative: the corpus has no negative
//       value (a host shard may then build its pruning structures)
//   score(ctx, queries, query_inv_norms, shard, q_first, q_last, k, exclude_self,
//         queries_non_negative, threshold, out, counts, budget, shared_bounds)   device task
//       writes query q's best (up to) k >= 1 nonzero scores that are >= threshold (-inf:
//       none), ranked by ranks_before, to out[(q - q_first) * k ...] with global corpus
//       indices, and their number to counts[q - q_first]. shared_bounds is empty or
//       holds, per query of the block, a lower bound of its k-th best score shared by
//       the devices scoring the same block (raised with compare-exchange); a leaf may use
//       it to skip work or ignore it.
//   score_all(ctx, queries, query_inv_norms, shard, q_first, q_last, exclude_self,
//             queries_non_negative, threshold, offsets, entries, budget)        device task
//       k = 0: every nonzero score >= threshold; query q's, ranked, are
//       entries[offsets[q - q_first] .. offsets[q - q_first + 1]) (vectors overwritten).
//       A leaf that cannot list them throws invalid_argument saying so.
//   export_rows(set, device, shard, offsets, columns, values)          calling thread
//       appends the shard's rows, normalised, as make_shard(normalise = false) takes them
//       back (offsets continue from offsets.back(); an empty vector starts with 0).
//
// `budget` is the policy's memory budget per device in bytes (0: automatic). Device
// tasks run as fork_join tasks on the device's queue and may use its stream and handles;
// a device runs one task at a time, so a shard may keep scratch memory between them.
#pragma once

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "mgpu/detail/leaf_kind.hpp"
#include "mgpu/core/device_set.hpp"
#include "mgpu/core/stream.hpp"
#include "mgpu/detail/topk_heap.hpp"
#include "mgpu/sparse/csr_view.hpp"

namespace mgpu::detail {

/// The per-kind leaf of the cosine searches; a backend specialises it (file comment).
template <class Kind>
struct cosine_leaf;

template <class Leaf, class T, class I>
concept cosine_leaf_for =
    std::movable<typename Leaf::template shard<T, I>> && std::movable<typename Leaf::template staged<T, I>> &&
    requires(device_context<leaf_kind_t<Leaf>>& ctx, device_set<leaf_kind_t<Leaf>>& set,
             event<leaf_kind_t<Leaf>>& done, csr_view<T, I> rows, std::span<T const> inv_norms, I row, T value,
             bool flag, std::size_t size, typename Leaf::template shard<T, I> const& shard,
             typename Leaf::template staged<T, I>& staged, std::span<scored<T, I>> out,
             std::span<std::int32_t> counts, std::span<std::atomic<T>> bounds, std::vector<std::int64_t>& offsets,
             std::vector<scored<T, I>>& entries, std::vector<I>& columns, std::vector<T>& values) {
      { Leaf::template stage<T, I>(set, size, rows, flag, done) } -> std::same_as<typename Leaf::template staged<T, I>>;
      { Leaf::template make_shard<T, I>(ctx, staged, row, flag, flag, size) }
          -> std::same_as<typename Leaf::template shard<T, I>>;
      {
        Leaf::template score<T, I>(ctx, rows, inv_norms, shard, row, row, size, flag, flag, value, out, counts, size,
                                   bounds)
      } -> std::same_as<void>;
      {
        Leaf::template score_all<T, I>(ctx, rows, inv_norms, shard, row, row, flag, flag, value, offsets, entries,
                                       size)
      } -> std::same_as<void>;
      { Leaf::template export_rows<T, I>(set, size, shard, offsets, columns, values) } -> std::same_as<void>;
    };

}  // namespace mgpu::detail
