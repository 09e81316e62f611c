// mgpu/algorithms/cosine_topk.hpp — exact top-k cosine similarity between sparse rows.
//
// For every query row q, the (up to) k corpus rows d with the largest nonzero cosine
// similarity cos(q, d) = q·d / (‖q‖ ‖d‖), best first, ties broken toward the smaller
// corpus index. Zero rows have similarity 0 with everything (never NaN), and zero
// scores are not reported, so a row may list fewer than k neighbours.
//
// With options.threshold, only scores >= it are reported, and k = 0 then lists every
// such match (result.k = 0).
//
// Method: cosine_topk is a one-shot cosine_index (algorithms/cosine_index.hpp): the
// corpus is split into nnz-balanced row shards, one per device of the policy; each
// device keeps its shard transposed and normalised, scores each query batch by sparse
// accumulation and keeps its own top-k; the shards' lists are then merged exactly (the
// shard lists are ranked by the same total order). The full score matrix is never
// formed: memory is O(corpus nnz + batch·k·devices + threads·shard rows). Results are
// identical for any number of devices. The batching, the fork per shard and the merge
// are the shared skeleton detail::sharded_topk (batch i+1 is scored on the devices while
// the host merges batch i). The per-device part (holding a shard, scoring a batch
// against it; contract: detail::cosine_leaf_for) is detail::cosine_leaf<Kind>: sparse
// accumulation on host devices (backend/cpu/cosine_topk.hpp), cuSPARSE SpGEMM and a CUB
// segmented sort on GPUs (backend/cuda/cosine_topk.cuh). To search one corpus many
// times, build a cosine_index once: each cosine_topk call builds the shards again.
// Semantics follow scikit-learn's `cosine_similarity` followed by a stable top-k.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "mgpu/algorithms/cosine_index.hpp"
#include "mgpu/algorithms/topk_result.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/execution/policy.hpp"
#include "mgpu/sparse/csr_matrix.hpp"

namespace mgpu {

/// Exact top-k cosine similarity of each query row against the corpus rows (see the
/// file comment for the ranking rules).
///
/// @param policy   devices to run on (any kind whose backend is compiled in: cpu, or
///                 gpu with mgpu/cuda.hpp); the corpus is sharded across them.
/// @param queries  q x d sparse matrix (host).
/// @param corpus   n x d sparse matrix (host).
/// @param k        neighbours per query, k >= 1; rows list min(k, qualifying) pairs.
///                 k = 0 with options.threshold: every pair scoring >= the threshold.
/// @param options  the self match is skipped by default when `queries` and `corpus` are
///                 the same matrix (see cosine_topk_options::exclude_self).
/// @returns q rows of (corpus row, score) pairs, best first (ids int64 whatever I is).
/// @throws invalid_argument (k < 1 without a threshold, k < 0, a non-finite threshold,
///         NaN/Inf values, k = 0 on GPUs), dimension_mismatch (d differs), out_of_memory
///         (the memory budget cannot hold one query's results).
/// Complexity: O(Σ_q Σ_{t∈q} |postings(t)| + q·k·log k) plus building the shards,
/// O(nnz log nnz); never O(q·n) memory (k = 0: the matches).
template <class Kind, class T, class I>
topk_result<T> cosine_topk(execution_policy<Kind> const& policy, csr_view<T, I> queries,
                           csr_view<T, I> corpus, std::int64_t k, cosine_topk_options const& options = {}) {
  static_assert(backend_available<Kind>::value,
                "cosine_topk: this device kind's backend is not compiled in (for gpu, include "
                "<mgpu/cuda.hpp> in a CUDA translation unit and link mgpu::cuda)");
  detail::check_cosine_k(k, options, "cosine_topk");
  if (queries.cols != corpus.cols) {
    throw dimension_mismatch(detail::message(
        "cosine_topk: queries are ", static_cast<std::int64_t>(queries.rows), " x ",
        static_cast<std::int64_t>(queries.cols), " but the corpus is ",
        static_cast<std::int64_t>(corpus.rows), " x ", static_cast<std::int64_t>(corpus.cols),
        "; the column counts must match"));
  }
  (void)detail::threshold_in<T>(options.threshold, "cosine_topk");
  // All pairs within one matrix (the common case) check it once, not twice.
  bool const same_matrix = queries.rows == corpus.rows && queries.row_offsets == corpus.row_offsets &&
                           queries.col_indices == corpus.col_indices && queries.values == corpus.values;
  detail::require_finite(queries, "cosine_topk: queries");
  if (!same_matrix) detail::require_finite(corpus, "cosine_topk: corpus");
  auto const n_queries = static_cast<std::int64_t>(queries.rows);
  if (n_queries == 0 || corpus.rows == 0) {
    topk_result<T> result;
    result.k = k;
    result.candidates = static_cast<std::int64_t>(corpus.rows);
    result.row_offsets.assign(static_cast<std::size_t>(n_queries) + 1, 0);
    return result;
  }
  // Fail on a budget too small for one query before building anything.
  auto const kk = std::min<std::int64_t>(k, std::max<std::int64_t>(corpus.rows, 1));
  (void)detail::cosine_batch_rows<T, I>(options.query_batch, policy.memory_budget(), std::max<std::int64_t>(kk, 1),
                                        n_queries);
  cosine_index<Kind, T, I> const index(policy, corpus);
  cosine_topk_options search_options = options;
  search_options.exclude_self = options.exclude_self.value_or(same_matrix);
  return index.search(queries, k, search_options);
}

/// Overload for owning matrices.
template <class Kind, class T, class I>
topk_result<T> cosine_topk(execution_policy<Kind> const& policy, csr_matrix<cpu, T, I> const& queries,
                           csr_matrix<cpu, T, I> const& corpus, std::int64_t k,
                           cosine_topk_options const& options = {}) {
  return cosine_topk(policy, queries.view(), corpus.view(), k, options);
}

/// All pairs within one matrix: each row's k most similar *other* rows (the self match
/// is excluded unless `options.exclude_self` is set to false), whatever else `options` sets.
template <class Kind, class T, class I>
topk_result<T> cosine_topk(execution_policy<Kind> const& policy, csr_matrix<cpu, T, I> const& rows,
                           std::int64_t k, cosine_topk_options const& options = {}) {
  return cosine_topk(policy, rows.view(), rows.view(), k, options);
}

}  // namespace mgpu
