// mgpu/algorithms/knn.hpp — exact brute-force k nearest neighbours of dense vectors, and
// classification by majority vote over them.
//
// For every query row q, the k base rows b that rank best under the metric, best first:
//   l2             squared Euclidean distance ‖q − b‖², smallest first;
//   inner_product  q·b, largest first;
//   cosine         q·b / (‖q‖ ‖b‖), largest first; a zero row has similarity 0 with
//                  everything (never NaN).
// Ties break toward the smaller base index. The result is a topk_result (the one result
// type of every top-k search): `ids` the 0-based base rows and `scores` the metric's value
// (squared distance, inner product or cosine similarity, as FAISS's IndexFlatL2 /
// IndexFlatIP report them). Every query lists min(k, base rows) neighbours;
// topk_result::padded() gives FAISS's queries x k layout with its padding.
//
// knn() is a knn_index (algorithms/knn_index.hpp) built and searched once: to search one
// base many times, build the index once and keep it (its rows stay on the devices). On
// devices that read host memory the one-shot index views the caller's base in place
// instead of copying it (a single search reads each row once).
//
// Method (as FAISS's exhaustive_L2sqr_blas): ‖q − b‖² = ‖q‖² + ‖b‖² − 2 q·b with the dot
// products from GEMM (BLAS sgemm / dgemm on host devices, cuBLAS on GPUs) and the norms
// computed once, in double, before rounding to T. The GEMM is fused with top-k
// selection: each device computes one tile of dot products at a time and keeps only
// each query's running k best, so the full queries x base matrix never exists. The base
// is split into equal row shards, one per device of the policy; queries go through in
// batches; each device returns its shard's k best per query and the shards' lists are
// merged exactly (one total order ranks them all) by the shared skeleton
// detail::sharded_topk, which searches batch i+1 while the host merges batch i. The
// per-device part (contract: detail::knn_leaf_for) is detail::knn_leaf<Kind>:
// backend/cpu/knn.hpp on host devices, backend/cuda/knn.cuh on GPUs.
//
// "Exact" means exact search on the distances computed in T: every base row is
// compared, none is approximated. The computed distance of a pair differs from the true
// one by float round-off, about ε (‖q‖² + ‖b‖²) for l2 (ε = 2^-24 for float), so rows
// whose true distances differ by less than that may be ranked differently than by a
// float64 computation; a negative computed l2 distance (cancellation) is reported as 0.
// Results for `cpu`, `cpu:2`, `cpu:3` choose the same rows up to that round-off (the
// same rows exactly whenever the dot products are exact in T, e.g. small integer data).
//
// Inputs: NaN or Inf anywhere is rejected (RELIABILITY.md row 7). Values whose squares
// overflow T give unspecified rankings.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "mgpu/algorithms/detail/knn_leaf.hpp"
#include "mgpu/algorithms/knn_index.hpp"
#include "mgpu/algorithms/topk_result.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/execution/policy.hpp"

namespace mgpu {

/// Exact k nearest neighbours of each query row among the base rows (see the file
/// comment for the metrics, ties, padding and what "exact" means).
///
/// @param policy   devices to run on (cpu, cpu:N, or gpu with mgpu/cuda.hpp and
///                 mgpu/backend/cuda/knn.hpp); the base rows are split evenly across them.
/// @param base     n x d row-major matrix (host memory).
/// @param queries  q x d row-major matrix (host memory).
/// @param k        neighbours per query, k >= 1.
/// @returns q rows of min(k, n) (base row, metric value) pairs, best first
///          (topk_result::padded() for FAISS's q x k layout).
/// @param options  batching, host tiles, and `progress` (queries done, q) after each batch.
/// @throws invalid_argument (k < 1, NaN/Inf values, a malformed view),
///         dimension_mismatch (d differs), index_overflow (q x k too large),
///         out_of_memory (the memory budget cannot hold one query's results).
/// Complexity: O(q n d) flops, as GEMM; memory O(q k + devices x tiles), never O(q n);
/// on GPUs the base is moved onto the devices once per call (n (d + 1) sizeof(T) bytes).
template <class Kind, class T>
topk_result<T> knn(execution_policy<Kind> const& policy, dense_view<T const> base,
                  dense_view<T const> queries, std::int64_t k, knn_metric metric = knn_metric::l2,
                  knn_options const& options = {}) {
  static_assert(backend_available<Kind>::value,
                "knn: this device kind's backend is not compiled in (for gpu, include "
                "<mgpu/cuda.hpp> and <mgpu/backend/cuda/knn.hpp> and link mgpu::cuda)");
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "knn: float or double values");
  return detail::knn_index_access::search_once(policy, base, queries, k, metric, options);
}

namespace detail {
template <class M>
using knn_operand_value = std::remove_const_t<typename decltype(const_view(std::declval<M const&>()))::value_type>;
template <class M>
inline constexpr bool is_read_only_view = false;
template <class T>
inline constexpr bool is_read_only_view<dense_view<T const, cpu>> = true;
}  // namespace detail

/// Overload for any mix of host dense operands: dense_matrix<cpu, T>, dense_view<T> and
/// dense_view<T const>, e.g. a matrix read from disk as the base and a view of the
/// caller's array as the queries. The same contract as above.
template <class Kind, class B, class Q>
  requires requires(B const& b, Q const& q) {
    const_view(b);
    const_view(q);
  } && (!(detail::is_read_only_view<B> && detail::is_read_only_view<Q>)) &&
           std::same_as<detail::knn_operand_value<B>, detail::knn_operand_value<Q>>
topk_result<detail::knn_operand_value<B>> knn(execution_policy<Kind> const& policy, B const& base,
                                             Q const& queries, std::int64_t k,
                                             knn_metric metric = knn_metric::l2,
                                             knn_options const& options = {}) {
  return knn(policy, const_view(base), const_view(queries), k, metric, options);
}

namespace detail {
/// The vote of one row (see knn_vote); `votes` is scratch.
template <class L>
L knn_vote_row(std::span<std::int64_t const> ids, std::span<L const> labels, std::int64_t q, std::vector<L>& votes) {
  votes.clear();
  for (std::int64_t i : ids) {
    if (i == -1) continue;
    MGPU_EXPECTS(i >= 0 && static_cast<std::size_t>(i) < labels.size(), "knn_vote: row ", q, " names neighbour ", i,
                 " but there are ", labels.size(), " labels");
    votes.push_back(labels[static_cast<std::size_t>(i)]);
  }
  MGPU_EXPECTS(!votes.empty(), "knn_vote: row ", q, " has no neighbours to vote");
  std::sort(votes.begin(), votes.end());
  L best = votes.front();
  std::size_t best_count = 0;
  for (std::size_t a = 0; a < votes.size();) {
    std::size_t b = a;
    while (b < votes.size() && votes[b] == votes[a]) ++b;
    if (b - a > best_count) {  // strictly more: ties keep the smaller label
      best = votes[a];
      best_count = b - a;
    }
    a = b;
  }
  return best;
}
}  // namespace detail

/// Majority vote of the neighbours' labels, per row of `indices` (as topk_result::padded()
/// lays them out): the label that occurs most often among the row's neighbours (entries -1
/// are padding and do not vote), ties toward the smaller label — scikit-learn's
/// KNeighborsClassifier(weights='uniform') rule, whose mode also takes the smallest
/// of the most frequent labels. O(rows x k log k).
/// @throws invalid_argument for a neighbour index outside [0, labels.size()) other
///         than -1, or a row without any neighbour.
template <class L>
std::vector<L> knn_vote(dense_view<std::int64_t const> indices, std::span<L const> labels) {
  static_assert(std::is_integral_v<L>, "knn_vote: labels must be integers");
  std::vector<L> out(static_cast<std::size_t>(indices.rows));
  std::vector<L> votes;
  for (std::int64_t q = 0; q < indices.rows; ++q) {
    auto const row = indices.row(q);
    out[static_cast<std::size_t>(q)] = detail::knn_vote_row(std::span<std::int64_t const>(row.data(), row.size()), labels, q, votes);
  }
  return out;
}

/// Overload taking the ids matrix of topk_result::padded().
template <class L>
std::vector<L> knn_vote(dense_matrix<cpu, std::int64_t> const& indices, std::span<L const> labels) {
  return knn_vote(indices.view(), labels);
}

/// Overload taking knn's result directly, and the labels as any contiguous range
/// (std::vector, std::span, std::array): the same rule, over each row's neighbours.
template <class T, class Labels>
  requires requires(Labels const& l) { std::span(l); }
auto knn_vote(topk_result<T> const& neighbours, Labels const& labels) {
  using L = std::remove_cv_t<typename decltype(std::span(labels))::element_type>;
  static_assert(std::is_integral_v<L>, "knn_vote: labels must be integers");
  std::span<L const> const all(std::data(labels), std::size(labels));
  std::vector<L> out(static_cast<std::size_t>(neighbours.rows()));
  std::vector<L> votes;
  for (std::int64_t q = 0; q < neighbours.rows(); ++q) {
    out[static_cast<std::size_t>(q)] = detail::knn_vote_row(neighbours.neighbors(q), all, q, votes);
  }
  return out;
}

}  // namespace mgpu
