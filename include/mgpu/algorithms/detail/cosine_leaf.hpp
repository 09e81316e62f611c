// mgpu/algorithms/detail/cosine_leaf.hpp — the contract of cosine_topk's per-kind leaf.
//
// A leaf holds one device's corpus shard and scores a block of queries against it;
// everything else (validation, norms, partitioning, batching, the exact merge) is the
// shared skeleton (sharded_topk.hpp). Every kind takes the same arguments:
//
//   shard<T, I>                           one device's resident shard (movable)
//   make_shard(ctx, corpus, inv_norms, first, last, non_negative, budget)
//       corpus rows [first, last); inv_norms: 1/‖row‖ of every corpus row
//   score(ctx, queries, query_inv_norms, shard, q_first, q_last, k, exclude_self,
//         out, counts, budget, shared_bounds)
//       writes query q's best (up to) k nonzero scores, ranked by ranks_before, to
//       out[(q - q_first) * k ...] with global corpus indices, and their number to
//       counts[q - q_first]. shared_bounds is empty or holds, per query of the block, a
//       lower bound of its k-th best score shared by the devices scoring the same block
//       (raised with compare-exchange); a leaf may use it to skip work or ignore it.
//
// `budget` is the policy's memory budget per device in bytes (0: automatic). Both run
// as fork_join tasks on the device's queue and may use its stream and handles.
#pragma once

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>

#include "mgpu/detail/leaf_kind.hpp"
#include "mgpu/core/device_set.hpp"
#include "mgpu/detail/topk_heap.hpp"
#include "mgpu/sparse/csr_view.hpp"

namespace mgpu::detail {

/// The per-kind leaf of cosine_topk; a backend specialises it (file comment).
template <class Kind>
struct cosine_leaf;

template <class Leaf, class T, class I>
concept cosine_leaf_for =
    std::movable<typename Leaf::template shard<T, I>> &&
    requires(device_context<leaf_kind_t<Leaf>>& ctx, csr_view<T, I> rows, std::span<T const> inv_norms, I row,
             bool flag, std::size_t size, typename Leaf::template shard<T, I> const& shard,
             std::span<scored<T, I>> out, std::span<std::int32_t> counts, std::span<std::atomic<T>> bounds) {
      { Leaf::template make_shard<T, I>(ctx, rows, inv_norms, row, row, flag, size) }
          -> std::same_as<typename Leaf::template shard<T, I>>;
      { Leaf::template score<T, I>(ctx, rows, inv_norms, shard, row, row, size, flag, out, counts, size, bounds) }
          -> std::same_as<void>;
    };

}  // namespace mgpu::detail
