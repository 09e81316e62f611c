// mgpu/mpi/knn.hpp — exact k nearest neighbours with the base set sharded over MPI ranks.
//
//   mpi::knn(policy, my_base_rows, queries, k, metric, options)   queries the same on every rank
//
// Every rank holds its own base rows (any count, none included), the ranks' rows
// following each other in rank order (rank r's local row j is global row first(r) + j).
// Each rank searches its rows with the single-process mgpu::knn on its local devices;
// the per-query lists (global ids) are gathered on every rank and merged exactly by the
// single-process order (the better score, then the smaller global id;
// mpi/topk_merge.hpp). The result is the same on every rank.
//
// Equality with one process: mgpu::knn computes a pair's dot product by GEMM in tiles
// (algorithms/knn.hpp), so a pair's value is the same in every split whenever the dot
// products are exact in T (e.g. small integer data), and then the result is bitwise the
// single-process one; otherwise the rows chosen agree up to float round-off, as between
// `cpu` and `cpu:2` in one process.
//
// What crosses between ranks: two agreements (88 bytes per rank each), the ranks' row
// counts, and the candidate lists (every rank receives every other rank's
// q·(8 + (8 + sizeof(T))·k) bytes at most).
#pragma once

#include <mpi.h>

#include <cstdint>
#include <span>
#include <utility>

#include "mgpu/algorithms/knn.hpp"
#include "mgpu/algorithms/topk_result.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/mpi/error.hpp"
#include "mgpu/mpi/policy.hpp"
#include "mgpu/mpi/topk_merge.hpp"

namespace mgpu::mpi {

/// Exact k nearest neighbours of each query row among the base rows of every rank (see
/// the file comment; metrics, ties and scores are mgpu::knn's).
///
/// @param policy   the ranks and their local devices; collective over its communicator.
/// @param my_base  this rank's n_r x d base rows (row-major host memory; n_r may be 0).
/// @param queries  q x d row-major host matrix, the same on every rank (checked by a hash
///                 of its rows).
/// @param k        neighbours per query, k >= 1, the same on every rank, as is the metric.
/// @returns on every rank: q rows of min(k, Σ n_r) (global base row, metric value) pairs,
///          best first; candidates = Σ n_r.
/// @throws on every rank alike: what mgpu::knn throws on any rank (prefixed "rank R of
///         N: "), invalid_argument when the ranks disagree on k, the metric, d or the
///         queries; mpi_error.
/// Complexity per rank: mgpu::knn on its rows, O(q·n_r·d); the merge O(q·k·ranks).
template <class Kind, class T>
topk_result<T> knn(distributed_policy<Kind> const& policy, dense_view<T const> my_base,
                   dense_view<T const> queries, std::int64_t k, knn_metric metric = knn_metric::l2,
                   knn_options const& options = {}) {
  constexpr char const* what = "mpi::knn";
  auto const comm = policy.comm();
  std::uint64_t h = 1469598103934665603ull;
  auto error = detail::capture([&] {
    MGPU_EXPECTS(queries.rows >= 0 && queries.cols >= 0 && queries.ld >= queries.cols &&
                     (queries.data != nullptr || queries.rows == 0 || queries.cols == 0),
                 what, ": the queries are not a valid view");
    if (queries.cols != my_base.cols) {
      throw dimension_mismatch(::mgpu::detail::message(what, ": queries have ", queries.cols,
                                                       " columns but this rank's base rows have ", my_base.cols));
    }
    for (std::int64_t i = 0; i < queries.rows && queries.cols > 0; ++i) {
      h = detail::hash_values(std::span<T const>(queries.data + i * queries.ld, static_cast<std::size_t>(queries.cols)), h);
    }
  });
  detail::agree(comm, what,
                {{"k", k},
                 {"the metric", static_cast<std::int64_t>(metric)},
                 {"the rows of the queries", queries.rows},
                 {"the columns", my_base.cols},
                 {"the queries' contents (hash)", detail::as_value(h)},
                 {"the value size", static_cast<std::int64_t>(sizeof(T))}},
                error);
  auto const first = detail::gather_row_starts(policy, my_base.rows);
  auto const offset = first[static_cast<std::size_t>(policy.rank())];
  topk_result<T> mine;
  error = detail::capture([&] {
    mine = ::mgpu::knn(policy.local(), my_base, queries, k, metric, options);
    mine.larger_is_better = metric != knn_metric::l2;
    for (auto& id : mine.ids) id += offset;
  });
  detail::agree(comm, "mpi::knn (local search)", {}, error);
  return detail::gather_and_merge(policy, mine, k, first.back(), what);
}

/// Overload for owning matrices and other views (anything mgpu::const_view accepts).
template <class Kind, class B, class Q>
  requires requires(B const& b, Q const& q) {
    const_view(b);
    const_view(q);
  }
auto knn(distributed_policy<Kind> const& policy, B const& my_base, Q const& queries, std::int64_t k,
         knn_metric metric = knn_metric::l2, knn_options const& options = {}) {
  return knn(policy, const_view(my_base), const_view(queries), k, metric, options);
}

}  // namespace mgpu::mpi
