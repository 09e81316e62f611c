// mgpu/algorithms/cosine_topk.hpp — exact top-k cosine similarity between sparse rows.
//
// For every query row q, the (up to) k corpus rows d with the largest nonzero cosine
// similarity cos(q, d) = q·d / (‖q‖ ‖d‖), best first, ties broken toward the smaller
// corpus index. Zero rows have similarity 0 with everything (never NaN), and zero
// scores are not reported, so a row may list fewer than k neighbours.
//
// Method: the corpus is split into nnz-balanced row shards, one per device of the
// policy; each device keeps its shard transposed and normalised, scores each query
// batch by sparse accumulation and keeps its own top-k; the shards' lists are then
// merged exactly (the shard lists are ranked by the same total order). The full score
// matrix is never formed: memory is O(corpus nnz + batch·k·devices + threads·shard rows).
// Results are identical for any number of devices. The batching, the fork per shard
// and the merge are the shared skeleton detail::sharded_topk (batch i+1 is scored on the
// devices while the host merges batch i). The per-device part (holding a shard,
// scoring a batch against it; contract: detail::cosine_leaf_for) is
// detail::cosine_leaf<Kind>: sparse accumulation
// on host devices (backend/cpu/cosine_topk.hpp), cuSPARSE SpGEMM and a CUB segmented
// sort on GPUs (backend/cuda/cosine_topk.cuh).
// Semantics follow scikit-learn's `cosine_similarity` followed by a stable top-k.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <type_traits>
#include <vector>

#include "mgpu/algorithms/detail/cosine_leaf.hpp"
#include "mgpu/algorithms/detail/sharded_topk.hpp"
#include "mgpu/algorithms/topk_result.hpp"
#include "mgpu/backend/cpu/cosine_topk.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/detail/topk_heap.hpp"
#include "mgpu/execution/fork_join.hpp"
#include "mgpu/execution/policy.hpp"
#include "mgpu/sparse/csr_matrix.hpp"
#include "mgpu/sparse/partition.hpp"

namespace mgpu {

struct cosine_topk_options {
  /// Skip corpus row i in the results of query row i. Unset (the default): skipped
  /// exactly when the queries and the corpus are the same matrix (the same arrays, as
  /// with the all-pairs overload or `cosine_topk(p, x, x, k)`), so a document is never
  /// its own best match unless asked; `false` keeps the self match, `true` forces the
  /// skip for two distinct matrices whose rows correspond. The default does not depend
  /// on the overload or on which other options are passed.
  std::optional<bool> exclude_self{};
  /// Queries per batch; 0 chooses from the policy's memory budget (default 16384).
  std::int64_t query_batch = 0;
  /// Called on the calling thread after each batch with (queries done, total).
  std::function<void(std::int64_t, std::int64_t)> progress{};
};

namespace detail {

/// 1/‖row‖ for every row (0 for a zero row), summed in double.
template <class T, class I>
std::vector<T> inverse_row_norms(csr_view<T, I> a) {
  std::vector<T> inv(static_cast<std::size_t>(a.rows));
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < static_cast<std::int64_t>(a.rows); ++r) {
    double sum = 0;
    for (auto v : a.row_values(static_cast<I>(r))) sum += static_cast<double>(v) * static_cast<double>(v);
    inv[static_cast<std::size_t>(r)] = sum > 0 ? static_cast<T>(1.0 / std::sqrt(sum)) : T{0};
  }
  return inv;
}

/// @throws invalid_argument naming the matrix and position of the first NaN or Inf.
template <class T, class I>
void require_finite(csr_view<T, I> a, char const* name) {
  if constexpr (std::is_floating_point_v<T>) {
    for (I r = 0; r < a.rows; ++r) {
      for (I p = a.row_begin(r); p < a.row_end(r); ++p) {
        if (!std::isfinite(a.values[p])) {
          throw invalid_argument(message(name, " has a non-finite value (", a.values[p], ") at row ",
                                         static_cast<std::int64_t>(r), ", column ",
                                         static_cast<std::int64_t>(a.col_indices[p]),
                                         "; cosine ranking needs finite values"));
        }
      }
    }
  }
}

template <class T, class I>
bool all_non_negative(csr_view<T, I> a) {
  auto const first = a.rows == 0 ? I{0} : a.row_offsets[0];
  return std::all_of(a.values + first, a.values + first + a.nnz(), [](T v) { return v >= T{0}; });
}

/// Rows per query batch: the option, or as many as fit the memory budget (capped).
template <class T, class I>
std::int64_t cosine_batch_rows(std::int64_t requested, std::size_t budget, std::int64_t k,
                               std::int64_t queries) {
  std::int64_t batch = requested > 0 ? requested : 16384;
  if (budget > 0) {
    auto const per_query = static_cast<std::size_t>(k) * (sizeof(scored<T, I>) + 1) + sizeof(std::int32_t);
    auto const fit = static_cast<std::int64_t>(budget / per_query);
    if (fit < 1) throw out_of_memory(per_query, budget, "cosine_topk: one query's results");
    batch = std::min(batch, fit);
  }
  return std::max<std::int64_t>(1, std::min(batch, std::max<std::int64_t>(queries, 1)));
}

/// Host devices: the sparse-accumulation kernel of backend/cpu/cosine_topk.hpp.
template <>
struct cosine_leaf<cpu> {
  template <class T, class I>
  using shard = backend::cpu::cosine_shard<T, I>;

  template <class T, class I>
  static shard<T, I> make_shard(device_context<cpu>&, csr_view<T, I> corpus,
                                std::span<T const> inv_norms, I first, I last, bool non_negative,
                                std::size_t) {
    return backend::cpu::make_cosine_shard<T, I>(corpus, inv_norms, first, last, non_negative);
  }

  template <class T, class I>
  static void score(device_context<cpu>&, csr_view<T, I> queries,
                    std::span<T const> query_inv_norms, shard<T, I> const& s, I q_first, I q_last,
                    std::size_t k, bool exclude_self, std::span<scored<T, I>> out,
                    std::span<std::int32_t> counts, std::size_t,
                    std::span<std::atomic<T>> shared_bounds) {
    backend::cpu::cosine_topk_shard<T, I>(queries, query_inv_norms, s, q_first, q_last, k,
                                          exclude_self, out, counts, shared_bounds);
  }
};

static_assert(cosine_leaf_for<cosine_leaf<cpu>, float, std::int32_t> &&
              cosine_leaf_for<cosine_leaf<cpu>, double, std::int64_t>);

/// cosine_topk's adapter for sharded_topk: scores a batch on each shard and appends the
/// merged lists to the result's rows.
template <class Leaf, class T, class I>
struct cosine_batches {
  using shard = typename Leaf::template shard<T, I>;
  std::vector<std::optional<shard>> const& shards;
  csr_view<T, I> queries;
  std::span<T const> query_inv;
  std::size_t k;
  cosine_topk_options const& options;
  bool exclude_self;
  std::size_t budget;
  std::int64_t total;
  topk_result<T>& result;
  std::unique_ptr<std::atomic<T>[]> bounds[2];  // empty with one device
  std::size_t bound_rows[2] = {0, 0};

  void prepare(int slot, std::int64_t q0, std::int64_t q1) {
    if (!bounds[slot]) return;
    bound_rows[slot] = static_cast<std::size_t>(q1 - q0);
    for (std::size_t r = 0; r < bound_rows[slot]; ++r) {
      bounds[slot][r].store(-std::numeric_limits<T>::infinity(), std::memory_order_relaxed);
    }
  }

  template <class Context>
  void search(Context& ctx, std::size_t dev, int slot, std::int64_t q0, std::int64_t q1,
              std::span<scored<T, I>> out, std::span<std::int32_t> counts) const {
    std::span<std::atomic<T>> const shared(bounds[slot].get(), bounds[slot] ? bound_rows[slot] : 0);
    Leaf::template score<T, I>(ctx, queries, query_inv, *shards[dev], static_cast<I>(q0), static_cast<I>(q1), k,
                               exclude_self, out, counts, budget, shared);
  }

  void emit(std::int64_t q0, std::span<scored<T, I> const> merged, std::span<std::int32_t const> counts) {
    for (std::size_t r = 0; r < counts.size(); ++r) {
      auto const q = static_cast<std::size_t>(q0) + r;
      result.row_offsets[q + 1] = result.row_offsets[q] + counts[r];
      for (std::int32_t j = 0; j < counts[r]; ++j) {
        auto const& c = merged[r * k + static_cast<std::size_t>(j)];
        result.ids.push_back(static_cast<std::int64_t>(c.index));
        result.scores.push_back(c.score);
      }
    }
    if (options.progress) options.progress(q0 + static_cast<std::int64_t>(counts.size()), total);
  }
};

}  // namespace detail

/// Exact top-k cosine similarity of each query row against the corpus rows (see the
/// file comment for the ranking rules).
///
/// @param policy   devices to run on (any kind whose backend is compiled in: cpu, or
///                 gpu with mgpu/cuda.hpp); the corpus is sharded across them.
/// @param queries  q x d sparse matrix (host).
/// @param corpus   n x d sparse matrix (host).
/// @param k        neighbours per query, k >= 1; rows list min(k, qualifying) pairs.
/// @param options  the self match is skipped by default when `queries` and `corpus` are
///                 the same matrix (see cosine_topk_options::exclude_self).
/// @returns q rows of (corpus row, score) pairs, best first (ids int64 whatever I is).
/// @throws invalid_argument (k < 1, NaN/Inf values), dimension_mismatch (d differs),
///         out_of_memory (the memory budget cannot hold one query's results).
/// Complexity: O(Σ_q Σ_{t∈q} |postings(t)| + q·k·log k); never O(q·n) memory.
template <class Kind, class T, class I>
topk_result<T> cosine_topk(execution_policy<Kind> const& policy, csr_view<T, I> queries,
                              csr_view<T, I> corpus, std::int64_t k,
                              cosine_topk_options const& options = {}) {
  static_assert(backend_available<Kind>::value,
                "cosine_topk: this device kind's backend is not compiled in (for gpu, include "
                "<mgpu/cuda.hpp> in a CUDA translation unit and link mgpu::cuda)");
  using leaf = detail::cosine_leaf<Kind>;
  MGPU_EXPECTS(k >= 1, "cosine_topk: k must be at least 1, got ", k);
  if (queries.cols != corpus.cols) {
    throw dimension_mismatch(detail::message(
        "cosine_topk: queries are ", static_cast<std::int64_t>(queries.rows), " x ",
        static_cast<std::int64_t>(queries.cols), " but the corpus is ",
        static_cast<std::int64_t>(corpus.rows), " x ", static_cast<std::int64_t>(corpus.cols),
        "; the column counts must match"));
  }
  // All pairs within one matrix (the common case) scan it once, not twice.
  bool const same_matrix = queries.rows == corpus.rows && queries.row_offsets == corpus.row_offsets &&
                           queries.col_indices == corpus.col_indices && queries.values == corpus.values;
  detail::require_finite(queries, "cosine_topk: queries");
  if (!same_matrix) detail::require_finite(corpus, "cosine_topk: corpus");
  auto const n_queries = static_cast<std::int64_t>(queries.rows);
  auto const kk = static_cast<std::size_t>(std::min<std::int64_t>(k, std::max<I>(corpus.rows, 1)));

  topk_result<T> result;
  result.k = k;
  result.candidates = static_cast<std::int64_t>(corpus.rows);
  result.row_offsets.assign(static_cast<std::size_t>(n_queries) + 1, 0);
  if (n_queries == 0 || corpus.rows == 0) return result;

  auto const corpus_inv = detail::inverse_row_norms(corpus);
  auto const own_query_inv = same_matrix ? std::vector<T>{} : detail::inverse_row_norms(queries);
  std::span<T const> const query_inv = same_matrix ? corpus_inv : own_query_inv;

  bool const non_negative =
      detail::all_non_negative(corpus) && (same_matrix || detail::all_non_negative(queries));
  auto const n_devices = policy.device_count();
  auto const bounds = partition_rows_by_nnz(corpus, n_devices);
  auto const shards = detail::make_shards<typename leaf::template shard<T, I>>(
      policy, std::span<I const>(bounds), [&](auto& ctx, I first, I last) {
        return leaf::template make_shard<T, I>(ctx, corpus, corpus_inv, first, last, non_negative,
                                               policy.memory_budget());
      });
  auto const has_shard = detail::shard_presence(shards);

  auto const batch = detail::cosine_batch_rows<T, I>(options.query_batch, policy.memory_budget(),
                                                     static_cast<std::int64_t>(kk), n_queries);
  bool const exclude_self = options.exclude_self.value_or(same_matrix);
  detail::cosine_batches<leaf, T, I> batches{shards, queries, query_inv, kk, options, exclude_self,
                                             policy.memory_budget(), n_queries, result, {}};
  // Devices scoring the same batch share each query's best known lower bound of the
  // k-th score (see cosine_topk_shard): exact, and it spares a device the work that
  // another device's better candidates make useless. One array per buffer set.
  if (n_devices > 1) {
    for (auto& b : batches.bounds) b = std::make_unique<std::atomic<T>[]>(static_cast<std::size_t>(batch));
  }
  detail::sharded_topk<T, I>(policy, has_shard, n_queries, batch, kk, batches);
  return result;
}

/// Overload for owning matrices.
template <class Kind, class T, class I>
topk_result<T> cosine_topk(execution_policy<Kind> const& policy,
                              csr_matrix<cpu, T, I> const& queries,
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
