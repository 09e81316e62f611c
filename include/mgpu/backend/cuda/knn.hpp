// mgpu/backend/cuda/knn.hpp — GPU leaf of brute-force k-NN: one shard of the base
// resident per device, queries searched in tiles sized by the device's memory budget.
//
// Method (a simple, exact design built from library calls):
//   shard   a view of base rows [first, last) and their per-row metric terms (‖b‖²,
//           1/‖b‖) resident on the GPU: the index (algorithms/knn_index.hpp) scatters
//           them there once (counted by set.transfers()) and keeps them.
//   tile    for a block of queries and a chunk of the shard's rows (as large as the
//           budget allows; the whole shard when it fits): the dot products by cuBLAS
//           sgemm / dgemm into a rows x chunk tile, turned into scores in place by the
//           same functors the host uses (detail::knn_l2_score, ...), then each row
//           sorted best first by a CUB segmented stable sort (score descending, the
//           shard-local column as value: columns start ascending, so equal scores stay
//           in index order, which is detail::ranks_before), and its first k kept.
//   merge   when the shard is cut into several chunks, the chunks' lists are merged
//           exactly on the host (topk_heap); the shared orchestration (algorithms/
//           knn.hpp) then merges the devices' lists.
// Only one tile's scores exist at a time on the device, never the whole q x n matrix.
// If a tile fails for lack of room (an allocation, or a library status that means it),
// the tile is halved and retried.
//
// Asynchronous: a search enqueues its tiles and returns without waiting for its stream.
// Each tile stages its queries and results through one of two staging sets of the
// device's pinned scratch (slots 2s and 2s + 1 of ctx.scratch), alternating, so tile t + 1
// is packed while tile t's copies run; a set is reused only after an event says its
// previous tile is done. A tile's results reach `out` / `counts` by a host function
// queued on the stream after its copies (knn.cuh), so they are complete when the stream
// reaches the end of the search: the fork_join task's completion event, which the join
// waits on (execution/fork_join.hpp, device_worker<gpu>). This holds for the first leaf
// call of a sharded_topk task (detail::take_deferred_results); any other call (a device
// holding several shards, whose lists the adapter merges on the host inside the task)
// waits for its stream before returning, as does the chunked path below, whose host merge
// of the chunks needs each chunk's lists.
//
// Scores are the host's up to round-off (cuBLAS sums the dot products in another
// order, and nvcc contracts a·b + c into FMAs), so rows whose distances differ by
// round-off may be ranked differently than on the host.
//
// Host-compilable: the shard, the tiling and the leaf. The tile search itself
// (knn_search_tile) is defined in knn.cuh, compiled by nvcc; host-compiled programs
// instantiate it once with MGPU_CUDA_INSTANTIATE_KNN(T) from knn.cuh in a .cu file.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "mgpu/algorithms/detail/sharded_topk.hpp"
#include "mgpu/algorithms/knn.hpp"
#include "mgpu/backend/cuda/batching.hpp"
#include "mgpu/backend/cuda/buffer.hpp"
#include "mgpu/backend/cuda/copy.hpp"
#include "mgpu/backend/cuda/device_set.hpp"
#include "mgpu/backend/cuda/transfer.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/cuda.hpp"
#include "mgpu/detail/topk_heap.hpp"

namespace mgpu::backend::cuda {

/// One shard of the base resident on a GPU (see the file comment): views of device
/// memory that the index owns.
template <class T>
struct knn_shard {
  std::int64_t first = 0;  ///< global index of the shard's row 0
  std::int64_t rows = 0;
  std::int64_t dim = 0;
  std::int64_t ld = 0;
  T const* data = nullptr;   ///< rows x dim, row-major, leading dimension ld
  T const* terms = nullptr;  ///< rows: the metric's per-row term
};

namespace detail {

/// Searches shard rows [b_begin, b_end) for the queries (host, row q of `queries`, with
/// their metric terms) and writes each query's best min(k, b_end - b_begin) scores, best
/// first, to out[q * k ...] with global base indices and their number to counts[q].
/// The tile must fit the device (the caller sizes it). Asynchronous: it only enqueues
/// work on ctx.work, staged through pinned staging set `staging` (< knn_staging_sets),
/// which must be idle; out / counts are written by the stream (a host function) and must
/// live until it gets there. Defined in knn.cuh (nvcc).
/// @throws out_of_memory when an allocation fails, cuda_error / cublas_error.
template <class T, class Score>
void knn_search_tile(device_context<gpu>& ctx, knn_shard<T> const& shard, dense_view<T const> queries,
                     std::span<T const> query_terms, Score const& score, std::int64_t k,
                     std::int64_t b_begin, std::int64_t b_end,
                     std::span<mgpu::detail::scored<T, std::int64_t>> out, std::span<std::int32_t> counts,
                     std::size_t staging);

/// Pinned staging sets of the tile search (double buffering): set s uses the device's
/// pinned scratch slots 2s (queries, terms) and 2s + 1 (results).
inline constexpr std::size_t knn_staging_sets = 2;
static_assert(2 * knn_staging_sets <= pinned_scratch::slots);

/// Device bytes per score of a tile: the dot/score, its sorted copy, the column index
/// and its sorted copy, and as much again for the sort's temporary storage.
template <class T>
constexpr std::size_t knn_bytes_per_score() {
  return 2 * (2 * sizeof(T) + 2 * sizeof(std::int32_t));
}

}  // namespace detail
}  // namespace mgpu::backend::cuda

namespace mgpu::detail {

/// GPUs: the leaf described in the file comment.
template <>
struct knn_leaf<gpu> {
  template <class T>
  using shard = backend::cuda::knn_shard<T>;

  static constexpr bool host_memory = false;

  template <class T>
  static shard<T> make_shard(device_context<gpu>&, dense_view<T const, gpu> rows, dense_view<T const, gpu> terms,
                             std::int64_t first, std::size_t) {
    return {first, rows.rows, rows.cols, rows.ld, rows.data, terms.data};
  }

  template <class T, class Score>
  static void search(device_context<gpu>& ctx, shard<T> const& sh, dense_view<T const> queries,
                     std::span<T const> query_terms, Score const& score, std::size_t k,
                     knn_options const&, std::span<scored<T, std::int64_t>> out,
                     std::span<std::int32_t> counts, std::size_t budget) {
    namespace bc = backend::cuda;
    std::size_t const available = ctx.memory_budget(budget);
    std::size_t const per_score = bc::detail::knn_bytes_per_score<T>();
    std::size_t const per_query = static_cast<std::size_t>(sh.dim) * sizeof(T) + k * (sizeof(T) + 8) + 64;
    // The whole shard per tile when at least a few queries fit, else a chunk of it.
    auto const max_cols = static_cast<std::int64_t>(std::numeric_limits<std::int32_t>::max() / 2);
    std::int64_t cols = std::min(sh.rows, max_cols);
    constexpr std::int64_t min_rows = 64;
    if (static_cast<std::size_t>(cols) * per_score * min_rows + per_query * min_rows > available) {
      cols = std::max<std::int64_t>(static_cast<std::int64_t>(k),
                                    static_cast<std::int64_t>(available / (per_score * min_rows)));
      cols = std::min(cols, sh.rows);
    }
    std::size_t const per_row = static_cast<std::size_t>(cols) * per_score + per_query;
    if (per_row > available) throw out_of_memory(per_row, available, "knn on a GPU: one query's tile");
    std::int64_t rows = std::min<std::int64_t>(queries.rows, static_cast<std::int64_t>(available / per_row));
    rows = std::min<std::int64_t>(rows, max_cols / std::max<std::int64_t>(cols, 1));
    rows = std::max<std::int64_t>(rows, 1);

    bool const chunked = cols < sh.rows;
    // The first call of a skeleton task leaves its results to the task's event; any
    // other waits for its stream (file comment). Taken in every case, so that a later
    // call of the same task never gets it.
    bool const deferred = take_deferred_results() && !chunked;
    // A call that completes before returning first lets an earlier call's deferred
    // tiles finish: they may still use the staging sets.
    if (!deferred) ctx.work.synchronize();
    std::array<event<gpu>, bc::detail::knn_staging_sets> staged;  // each set's latest tile
    std::size_t next_set = 0;
    std::vector<scored<T, std::int64_t>> chunk_out;
    std::vector<std::int32_t> chunk_counts;
    topk_heap<T, std::int64_t> heap(k);
    // A tile that fails for lack of room is halved and retried (halving_batches).
    bc::halving_batches(
        0, queries.rows, rows, [](std::int64_t begin, std::int64_t max_rows) { return begin + max_rows; },
        [&](std::int64_t q, std::int64_t q_end) {
          std::int64_t const n = q_end - q;
          dense_view<T const> const block{n, queries.cols, queries.ld, queries.data + q * queries.ld};
          auto const terms = query_terms.subspan(static_cast<std::size_t>(q), static_cast<std::size_t>(n));
          auto const block_out = out.subspan(static_cast<std::size_t>(q) * k, static_cast<std::size_t>(n) * k);
          auto const block_counts = counts.subspan(static_cast<std::size_t>(q), static_cast<std::size_t>(n));
          bc::drain_on_error(ctx.work, [&] {
            if (!chunked) {
              // Double buffering: wait only for the tile that last used this set.
              auto const set = next_set;
              staged[set].synchronize();
              bc::detail::knn_search_tile(ctx, sh, block, terms, score, static_cast<std::int64_t>(k), 0, sh.rows,
                                          block_out, block_counts, set);
              staged[set].record(ctx.work);
              next_set = (set + 1) % bc::detail::knn_staging_sets;
              return;
            }
            // Chunks in index order; each one's lists are merged into the running best.
            std::vector<std::vector<scored<T, std::int64_t>>> best(static_cast<std::size_t>(n));
            chunk_out.resize(static_cast<std::size_t>(n) * k);
            chunk_counts.resize(static_cast<std::size_t>(n));
            for (std::int64_t b0 = 0; b0 < sh.rows; b0 += cols) {
              bc::detail::knn_search_tile(ctx, sh, block, terms, score, static_cast<std::int64_t>(k), b0,
                                          std::min(sh.rows, b0 + cols), std::span(chunk_out), std::span(chunk_counts),
                                          0);
              ctx.work.synchronize();  // the chunk's lists, for the host merge
              for (std::int64_t i = 0; i < n; ++i) {
                auto& list = best[static_cast<std::size_t>(i)];
                for (auto const& c : list) heap.push(c);
                auto const* fresh = chunk_out.data() + static_cast<std::size_t>(i) * k;
                for (std::int32_t j = 0; j < chunk_counts[static_cast<std::size_t>(i)]; ++j) heap.push(fresh[j]);
                list.resize(heap.size());
                heap.drain_sorted(list.begin());
              }
            }
            for (std::int64_t i = 0; i < n; ++i) {
              auto const& list = best[static_cast<std::size_t>(i)];
              std::copy(list.begin(), list.end(), block_out.begin() + i * static_cast<std::int64_t>(k));
              block_counts[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(list.size());
            }
          });
        });
    if (!deferred) ctx.work.synchronize();
  }
};

static_assert(knn_leaf_for<knn_leaf<gpu>, float> && knn_leaf_for<knn_leaf<gpu>, double>);

}  // namespace mgpu::detail
