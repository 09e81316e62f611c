// mgpu/algorithms/knn.hpp — exact brute-force k nearest neighbours of dense vectors, and
// classification by majority vote over them.
//
// For every query row q, the k base rows b that rank best under the metric, best first:
//   l2             squared Euclidean distance ‖q − b‖², smallest first;
//   inner_product  q·b, largest first;
//   cosine         q·b / (‖q‖ ‖b‖), largest first; a zero row has similarity 0 with
//                  everything (never NaN).
// Ties break toward the smaller base index. The returned `distances` hold the metric's
// value (squared distance, inner product or cosine similarity, as FAISS's IndexFlatL2 /
// IndexFlatIP report them) and `ids` the 0-based base rows, in a topk_result (the one
// result type of every top-k search). Every query lists min(k, base rows) neighbours;
// topk_result::padded() gives FAISS's queries x k layout with its padding.
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
// per-device part (contract: detail::knn_leaf_for) is detail::knn_leaf<Kind>: backend/cpu/knn.hpp on host devices, backend/cuda/knn.cuh on
// GPUs.
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
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "mgpu/algorithms/detail/knn_leaf.hpp"
#include "mgpu/algorithms/detail/sharded_topk.hpp"
#include "mgpu/algorithms/topk_result.hpp"
#include "mgpu/backend/cpu/knn.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/detail/topk_heap.hpp"
#include "mgpu/execution/fork_join.hpp"
#include "mgpu/execution/policy.hpp"

namespace mgpu {

/// The dissimilarity or similarity k-NN ranks by (see the file comment).
enum class knn_metric { l2, inner_product, cosine };


namespace detail {

/// The value reported for a score: the distance for l2, the score itself otherwise.
template <class T>
constexpr T knn_reported(knn_metric metric, T score) noexcept {
  return metric == knn_metric::l2 ? T{0} - score : score;
}

/// Per-row term of the metric: ‖x‖² (l2), 1/‖x‖ or 0 for a zero row (cosine), unused
/// (inner product). Summed in double.
template <class T>
std::vector<T> knn_row_terms(dense_view<T const> a, knn_metric metric) {
  std::vector<T> out(static_cast<std::size_t>(a.rows), T{0});
  if (metric == knn_metric::inner_product) return out;
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < a.rows; ++r) {
    double sum = 0;
    for (T v : a.row(r)) sum += static_cast<double>(v) * static_cast<double>(v);
    T term = static_cast<T>(sum);
    if (metric == knn_metric::cosine) term = sum > 0 ? static_cast<T>(1.0 / std::sqrt(sum)) : T{0};
    out[static_cast<std::size_t>(r)] = term;
  }
  return out;
}

/// @throws invalid_argument naming the matrix, row and column of the first NaN or Inf.
template <class T>
void knn_require_finite(dense_view<T const> a, char const* name) {
  std::int64_t bad = a.rows;
#pragma omp parallel for schedule(static) reduction(min : bad)
  for (std::int64_t r = 0; r < a.rows; ++r) {
    bool finite = true;
    for (T v : a.row(r)) finite &= std::isfinite(v);
    if (!finite) bad = std::min(bad, r);
  }
  if (bad == a.rows) return;
  auto const row = a.row(bad);
  auto const col = std::find_if(row.begin(), row.end(), [](T v) { return !std::isfinite(v); }) - row.begin();
  throw invalid_argument(message(name, " has a non-finite value (", row[static_cast<std::size_t>(col)],
                                 ") at row ", bad, ", column ", col, "; k-NN needs finite values"));
}

template <class T>
void knn_require_shape(dense_view<T const> a, char const* name) {
  MGPU_EXPECTS(a.rows >= 0 && a.cols >= 0 && a.ld >= a.cols && (a.data != nullptr || a.rows == 0 || a.cols == 0),
               name, " is not a valid matrix view (", a.rows, " x ", a.cols, ", ld ", a.ld, ")");
}

/// Queries per batch: the option, or as many as the budget holds (capped at 16384).
inline std::int64_t knn_batch_rows(std::int64_t requested, std::size_t budget, std::size_t per_query,
                                   std::int64_t queries) {
  std::int64_t batch = requested > 0 ? requested : 16384;
  if (budget > 0 && requested <= 0) {
    auto const fit = static_cast<std::int64_t>(budget / per_query);
    if (fit < 1) throw out_of_memory(per_query, budget, "knn: one query's results");
    batch = std::min(batch, fit);
  }
  return std::max<std::int64_t>(1, std::min(batch, std::max<std::int64_t>(queries, 1)));
}

/// Host devices: the fused GEMM + selection kernel of backend/cpu/knn.hpp.
template <>
struct knn_leaf<cpu> {
  template <class T>
  using shard = backend::cpu::knn_shard<T>;

  template <class T>
  static shard<T> make_shard(device_context<cpu>&, dense_view<T const> base,
                             std::span<T const> base_terms, std::int64_t first, std::int64_t last,
                             std::size_t) {
    return {first, {last - first, base.cols, base.ld, base.data + first * base.ld},
            base_terms.subspan(static_cast<std::size_t>(first), static_cast<std::size_t>(last - first))};
  }

  template <class T, class Score>
  static void search(device_context<cpu>&, shard<T> const& s, dense_view<T const> queries,
                     std::span<T const> query_terms, Score const& score, std::size_t k,
                     knn_options const& options, std::span<scored<T, std::int64_t>> out,
                     std::span<std::int32_t> counts, std::size_t) {
    backend::cpu::knn_search<T, std::int64_t>(s, queries, query_terms, score, k,
                                              {options.query_block, options.base_block}, out, counts);
  }
};

static_assert(knn_leaf_for<knn_leaf<cpu>, float> && knn_leaf_for<knn_leaf<cpu>, double>);

/// knn's adapter for sharded_topk: searches a batch on each shard, writes the merged
/// lists into the result's rows (the padding is already there).
template <class Leaf, class T, class Score>
struct knn_batches {
  using shard = typename Leaf::template shard<T>;
  std::vector<std::optional<shard>> const& shards;
  dense_view<T const> queries;
  std::span<T const> query_terms;
  Score const& score;
  std::size_t k;
  knn_options const& options;
  std::size_t budget;
  knn_metric metric;
  topk_result<T>& result;

  void prepare(int, std::int64_t, std::int64_t) const noexcept {}

  template <class Context>
  void search(Context& ctx, std::size_t dev, int, std::int64_t q0, std::int64_t q1,
              std::span<scored<T, std::int64_t>> out, std::span<std::int32_t> counts) const {
    dense_view<T const> const block{q1 - q0, queries.cols, queries.ld, queries.data + q0 * queries.ld};
    Leaf::template search<T>(ctx, *shards[dev], block, query_terms.subspan(static_cast<std::size_t>(q0), static_cast<std::size_t>(q1 - q0)),
                             score, k, options, out, counts, budget);
  }

  void emit(std::int64_t q0, std::span<scored<T, std::int64_t> const> merged,
            std::span<std::int32_t const> counts) const {
    // Every row holds k entries (k <= base rows), so row q's pairs start at q * k.
    auto* const scores = result.scores.data();
    auto* const ids = result.ids.data();
    auto const rows = static_cast<std::int64_t>(counts.size());
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < rows; ++i) {
      auto const r = static_cast<std::size_t>(i);
      auto const row = static_cast<std::size_t>(q0 + i) * k;
      for (std::size_t j = 0; j < static_cast<std::size_t>(counts[r]); ++j) {
        scores[row + j] = knn_reported(metric, merged[r * k + j].score);
        ids[row + j] = merged[r * k + j].index;
      }
    }
  }
};

template <class Kind, class T, class Score>
void knn_run(execution_policy<Kind> const& policy, dense_view<T const> base,
             dense_view<T const> queries, std::size_t k, knn_metric metric, Score const& score,
             knn_options const& options, topk_result<T>& result) {
  using leaf = knn_leaf<Kind>;
  using entry = scored<T, std::int64_t>;
  auto const base_terms = knn_row_terms(base, metric);
  auto const query_terms = knn_row_terms(queries, metric);

  // Equal row shards: every row costs the same.
  std::size_t const n_devices = policy.device_count();
  auto const bounds = equal_row_bounds(base.rows, n_devices);
  auto const shards = make_shards<typename leaf::template shard<T>>(
      policy, std::span<std::int64_t const>(bounds), [&](auto& ctx, std::int64_t first, std::int64_t last) {
        return leaf::template make_shard<T>(ctx, base, std::span<T const>(base_terms), first, last,
                                            policy.memory_budget());
      });
  auto const has_shard = shard_presence(shards);

  auto const active = static_cast<std::size_t>(std::count(has_shard.begin(), has_shard.end(), true));
  // Two sets of device lists (double buffering) and the merged batch.
  auto const batch = knn_batch_rows(options.query_batch, policy.memory_budget(),
                                    k * (2 * sizeof(entry) * active + sizeof(entry)) + 8 * active,
                                    queries.rows);
  knn_batches<leaf, T, Score> batches{shards, queries, std::span<T const>(query_terms), score, k,
                                      options, policy.memory_budget(), metric, result};
  sharded_topk<T, std::int64_t>(policy, has_shard, queries.rows, batch, k, batches);
}

}  // namespace detail

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
/// @throws invalid_argument (k < 1, NaN/Inf values, a malformed view),
///         dimension_mismatch (d differs), index_overflow (q x k too large),
///         out_of_memory (the memory budget cannot hold one query's results).
/// Complexity: O(q n d) flops, as GEMM; memory O(q k + devices x tiles), never O(q n).
template <class Kind, class T>
topk_result<T> knn(execution_policy<Kind> const& policy, dense_view<T const> base,
                  dense_view<T const> queries, std::int64_t k, knn_metric metric = knn_metric::l2,
                  knn_options const& options = {}) {
  static_assert(backend_available<Kind>::value,
                "knn: this device kind's backend is not compiled in (for gpu, include "
                "<mgpu/cuda.hpp> and <mgpu/backend/cuda/knn.hpp> and link mgpu::cuda)");
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "knn: float or double values");
  MGPU_EXPECTS(k >= 1, "knn: k must be at least 1, got ", k);
  detail::knn_require_shape(base, "knn: the base");
  detail::knn_require_shape(queries, "knn: the queries");
  if (base.cols != queries.cols) {
    throw dimension_mismatch(detail::message("knn: the base is ", base.rows, " x ", base.cols,
                                             " but the queries are ", queries.rows, " x ", queries.cols,
                                             "; the column counts must match"));
  }
  if (k > std::numeric_limits<std::int64_t>::max() / std::max<std::int64_t>(queries.rows, 1) ||
      k > std::numeric_limits<std::int32_t>::max()) {
    throw index_overflow(detail::message("knn: ", queries.rows, " queries x k = ", k,
                                         " results do not fit the index type"));
  }
  detail::knn_require_finite(base, "knn: the base");
  detail::knn_require_finite(queries, "knn: the queries");

  topk_result<T> result;
  result.k = k;
  result.candidates = base.rows;
  result.larger_is_better = metric != knn_metric::l2;
  auto const kk = static_cast<std::size_t>(std::min(k, base.rows));
  result.row_offsets.resize(static_cast<std::size_t>(queries.rows) + 1);
  for (std::size_t q = 0; q < result.row_offsets.size(); ++q) {
    result.row_offsets[q] = static_cast<std::int64_t>(q * kk);
  }
  result.ids.resize(static_cast<std::size_t>(queries.rows) * kk);
  result.scores.resize(static_cast<std::size_t>(queries.rows) * kk);
  if (queries.rows == 0 || base.rows == 0) return result;

  switch (metric) {
    case knn_metric::l2:
      detail::knn_run(policy, base, queries, kk, metric, detail::knn_l2_score<T>{}, options, result);
      break;
    case knn_metric::inner_product:
      detail::knn_run(policy, base, queries, kk, metric, detail::knn_ip_score<T>{}, options, result);
      break;
    case knn_metric::cosine:
      detail::knn_run(policy, base, queries, kk, metric, detail::knn_cosine_score<T>{}, options, result);
      break;
  }
  return result;
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
