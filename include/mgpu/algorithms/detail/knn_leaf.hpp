// mgpu/algorithms/detail/knn_leaf.hpp — the contract of knn's per-kind leaf, and the
// options and score functors it is called with.
//
// A leaf searches one device's shards of the base for a batch of queries; everything
// else (validation, norms, sharding, moving the rows onto the devices, batching, the
// exact merges) is shared by every kind (algorithms/knn_index.hpp and the skeleton
// detail::sharded_topk). Every kind provides:
//
//   shard<T>                              one shard on one device: a view of base rows
//                                         held in the device's memory (movable; it owns
//                                         nothing, the index keeps the rows alive)
//   make_shard(ctx, rows, terms, first, budget)
//       rows:  the shard's rows, r x d, in the device's memory (dense_view<T const, Kind>);
//       terms: r x 1 (ld 1) in the device's memory, each row's metric term;
//       first: the global id (base index) of rows' row 0.
//   search(ctx, shard, queries, query_terms, score, k, options, out, counts, budget)
//       writes query q's (row q of the batch `queries`, host memory) best
//       min(k, shard rows) scores, ranked by ranks_before, to out[q * k ...] with global
//       base indices, and their number to counts[q] (host memory). Score is
//       knn_l2_score<T>, knn_ip_score<T> or knn_cosine_score<T>. The results are
//       written when search returns, or, on a GPU leaf whose call was granted a
//       deferral (detail::take_deferred_results(), sharded_topk.hpp), when the task's
//       completion event fires: the skeleton reads them only after its join.
//   host_memory                           constexpr bool: the device reads host memory, so
//                                         a shard may view the caller's rows in place
//                                         (what the one-shot knn() does on host devices)
//
// `budget` is the policy's memory budget per device in bytes (0: automatic). Both run
// as fork_join tasks on the device's queue and may use its stream and handles.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>

#include "mgpu/core/device_set.hpp"
#include "mgpu/core/progress.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/detail/leaf_kind.hpp"
#include "mgpu/detail/topk_heap.hpp"

namespace mgpu {

struct knn_options {
  /// Queries per batch (bounds the host memory for shard results: batch x k x devices
  /// entries); 0: 16384, or fewer if the policy's memory budget requires.
  std::int64_t query_batch = 0;
  /// Host tile shape (queries x base rows per GEMM call); 0: chosen from the L2 cache
  /// size (backend::cpu::choose_knn_blocking). Ignored by GPUs.
  std::int64_t query_block = 0;
  std::int64_t base_block = 0;
  /// Called with (queries done, queries) on the calling thread after each batch of
  /// queries is merged (core/progress.hpp); empty: no reports.
  progress_callback progress = {};
};

namespace detail {

// Scores: larger is better, so that detail::ranks_before orders every metric. They are
// plain constexpr functors so that the GPU kernels run the very same code.

/// −‖q − b‖² from q·b, ‖q‖² and ‖b‖² (negated so that larger is better; a negative
/// computed distance, from cancellation, is 0).
template <class T>
struct knn_l2_score {
  constexpr T operator()(T dot, T query_norm2, T base_norm2) const noexcept {
    T const d = query_norm2 + base_norm2 - T{2} * dot;
    return d < T{0} ? T{0} : -d;
  }
};

/// q·b.
template <class T>
struct knn_ip_score {
  constexpr T operator()(T dot, T, T) const noexcept { return dot; }
};

/// q·b / (‖q‖ ‖b‖) from q·b, 1/‖q‖ and 1/‖b‖ (0 for a zero row).
template <class T>
struct knn_cosine_score {
  constexpr T operator()(T dot, T query_inv_norm, T base_inv_norm) const noexcept {
    return dot * query_inv_norm * base_inv_norm;
  }
};

/// The per-kind leaf of knn; a backend specialises it (file comment).
template <class Kind>
struct knn_leaf;

template <class Leaf, class T, class Score>
concept knn_search_with =
    requires(device_context<leaf_kind_t<Leaf>>& ctx, typename Leaf::template shard<T> const& shard,
             dense_view<T const> queries, std::span<T const> terms, Score const& score, std::size_t size,
             knn_options const& options, std::span<scored<T, std::int64_t>> out, std::span<std::int32_t> counts) {
      { Leaf::template search<T>(ctx, shard, queries, terms, score, size, options, out, counts, size) }
          -> std::same_as<void>;
    };

template <class Leaf, class T>
concept knn_leaf_for =
    std::movable<typename Leaf::template shard<T>> && std::same_as<decltype(Leaf::host_memory), bool const> &&
    requires(device_context<leaf_kind_t<Leaf>>& ctx, dense_view<T const, leaf_kind_t<Leaf>> rows,
             std::int64_t row, std::size_t size) {
      { Leaf::template make_shard<T>(ctx, rows, rows, row, size) } -> std::same_as<typename Leaf::template shard<T>>;
    } &&
    knn_search_with<Leaf, T, knn_l2_score<T>> && knn_search_with<Leaf, T, knn_ip_score<T>> &&
    knn_search_with<Leaf, T, knn_cosine_score<T>>;

}  // namespace detail
}  // namespace mgpu
