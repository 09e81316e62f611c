// mgpu/mpi/cosine.hpp — exact cosine top-k with the corpus sharded over MPI ranks.
//
//   mpi::cosine_topk(policy, queries, my_corpus_rows, k, options)   queries the same on every rank
//   mpi::cosine_topk(policy, my_rows, k, options)                    all pairs of a sharded matrix
//
// Every rank holds its own corpus rows (any count, none included); the ranks' rows follow
// each other in rank order, so rank r's local row j is global row first(r) + j. Each rank
// searches its rows with the single-process mgpu::cosine_topk on its local devices
// (policy.local()); the per-query lists (global ids) are gathered on every rank and
// merged exactly (mpi/topk_merge.hpp). The result, the same on every rank, is the
// single-process cosine_topk of the whole corpus bitwise: a pair's score depends only on
// the query row and the corpus row (sparse accumulation in the query's term order,
// norms of single rows), and the merge uses the single-process order (score, then the
// smaller global id).
//
// exclude_self (query i skips global corpus row i) is applied after the local search:
// each rank asks for k + 1 and drops the self pair, which gives the k best others
// exactly. Unset, it is false for the first overload and true for the all-pairs one, as
// in the single-process overloads.
//
// What crosses between ranks: two agreements (88 bytes per rank each), the ranks' row
// counts, and the candidate lists (mpi/topk_merge.hpp: every rank receives every other
// rank's q·(8 + 12·k') bytes for float, k' <= k + 1 pairs per query). The all-pairs
// overload first gathers the rows on every rank (CSR arrays: (ranks − 1)·(rows·sizeof(I)
// + nnz·(sizeof(I) + sizeof(T))) bytes arriving at each rank).
#pragma once

#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <limits>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "mgpu/algorithms/cosine_topk.hpp"
#include "mgpu/algorithms/topk_result.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/mpi/error.hpp"
#include "mgpu/mpi/policy.hpp"
#include "mgpu/mpi/topk_merge.hpp"
#include "mgpu/sparse/csr_matrix.hpp"

namespace mgpu::mpi {

namespace detail {

/// A hash of a CSR view's rows (lengths, columns, values), whatever its first offset.
template <class T, class I>
std::uint64_t hash_csr(csr_view<T, I> m) noexcept {
  std::uint64_t h = 1469598103934665603ull;
  if (m.rows <= 0 || m.row_offsets == nullptr) return h;
  auto const base = m.row_offsets[0];
  for (I r = 0; r < m.rows; ++r) {
    I const length = m.row_offsets[r + 1] - m.row_offsets[r];
    h = fnv1a(&length, sizeof(I), h);
  }
  auto const nnz = static_cast<std::size_t>(m.nnz());
  if (nnz > 0) {
    h = hash_values(std::span<I const>(m.col_indices + base, nnz), h);
    h = hash_values(std::span<T const>(m.values + base, nnz), h);
  }
  return h;
}

}  // namespace detail

/// Exact top-k cosine similarity of each query row against the corpus rows of every rank
/// (see the file comment; the ranking rules are mgpu::cosine_topk's).
///
/// @param policy     the ranks and their local devices; collective over its communicator.
/// @param queries    q x d sparse matrix, the same on every rank (checked by a hash).
/// @param my_corpus  this rank's n_r x d corpus rows (n_r may be 0); d equal on every rank.
/// @param k          as mgpu::cosine_topk (k >= 1, or 0 with a threshold), the same on
///                   every rank, as are the threshold and exclude_self.
/// @returns on every rank: q rows of (global corpus row, score), best first;
///          candidates = Σ n_r.
/// @throws on every rank alike: what mgpu::cosine_topk throws on any rank (prefixed
///         "rank R of N: "), invalid_argument when the ranks disagree on k, the threshold,
///         exclude_self, the queries (shape or contents) or d; mpi_error.
/// Complexity per rank: the single-process search of its rows, plus O(q·k·ranks) for the
/// merge; memory O(ranks·q·k) for the gathered lists.
template <class Kind, class T, class I>
topk_result<T> cosine_topk(distributed_policy<Kind> const& policy, csr_view<T, I> queries,
                           csr_view<T, I> my_corpus, std::int64_t k, cosine_topk_options const& options = {}) {
  constexpr char const* what = "mpi::cosine_topk";
  auto const comm = policy.comm();
  bool const exclude = options.exclude_self.value_or(false);
  auto error = detail::capture([&] {
    MGPU_EXPECTS(k < std::numeric_limits<std::int64_t>::max(), what, ": k is too large");
    if (queries.cols != my_corpus.cols) {
      throw dimension_mismatch(::mgpu::detail::message(
          what, ": queries have ", static_cast<std::int64_t>(queries.cols), " columns but this rank's corpus rows have ",
          static_cast<std::int64_t>(my_corpus.cols)));
    }
  });
  auto const h = detail::hash_csr(queries);
  detail::agree(comm, what,
                {{"k", k},
                 {"the rows of the queries", static_cast<std::int64_t>(queries.rows)},
                 {"the columns", static_cast<std::int64_t>(my_corpus.cols)},
                 {"the queries' contents (hash)", detail::as_value(h)},
                 {"the option threshold (set)", options.threshold ? 1 : 0},
                 detail::floating_value("the option threshold", options.threshold.value_or(0.0)),
                 {"the option exclude_self", exclude ? 1 : 0},
                 {"the value size", static_cast<std::int64_t>(sizeof(T))}},
                error);
  auto const first = detail::gather_row_starts(policy, static_cast<std::int64_t>(my_corpus.rows));
  auto const offset = first[static_cast<std::size_t>(policy.rank())];
  topk_result<T> mine;
  error = detail::capture([&] {
    cosine_topk_options local = options;
    local.exclude_self = false;
    auto const local_k = exclude && k > 0 ? k + 1 : k;
    auto found = ::mgpu::cosine_topk(policy.local(), queries, my_corpus, local_k, local);
    // Global ids, the self pair dropped.
    mine.larger_is_better = found.larger_is_better;
    mine.row_offsets.assign(found.row_offsets.size(), 0);
    mine.ids.reserve(found.ids.size());
    mine.scores.reserve(found.scores.size());
    for (std::int64_t q = 0; q < found.rows(); ++q) {
      for (auto p = found.row_offsets[static_cast<std::size_t>(q)]; p < found.row_offsets[static_cast<std::size_t>(q) + 1];
           ++p) {
        auto const id = found.ids[static_cast<std::size_t>(p)] + offset;
        if (exclude && id == q) continue;
        mine.ids.push_back(id);
        mine.scores.push_back(found.scores[static_cast<std::size_t>(p)]);
      }
      mine.row_offsets[static_cast<std::size_t>(q) + 1] = static_cast<std::int64_t>(mine.ids.size());
    }
  });
  detail::agree(comm, "mpi::cosine_topk (local search)", {}, error);
  return detail::gather_and_merge(policy, mine, k, first.back(), what);
}

/// Overload for owning matrices.
template <class Kind, class T, class I>
topk_result<T> cosine_topk(distributed_policy<Kind> const& policy, csr_matrix<cpu, T, I> const& queries,
                           csr_matrix<cpu, T, I> const& my_corpus, std::int64_t k,
                           cosine_topk_options const& options = {}) {
  return cosine_topk(policy, queries.view(), my_corpus.view(), k, options);
}

/// Every rank's rows gathered on every rank, in rank order (a whole copy of a sharded
/// matrix). Collective. Each rank receives the others' CSR arrays.
/// @throws invalid_argument (the ranks disagree on the columns), index_overflow (the
///         gathered rows or entries beyond I or an MPI count), mpi_error.
template <class Kind, class T, class I>
csr_matrix<cpu, T, I> all_gather_rows(distributed_policy<Kind> const& policy, csr_view<T, I> my_rows) {
  constexpr char const* what = "mpi::all_gather_rows";
  detail::agree(policy.comm(), what, {{"the columns", static_cast<std::int64_t>(my_rows.cols)}}, nullptr);
  // Row lengths instead of offsets, so that the parts concatenate.
  std::vector<I> lengths(static_cast<std::size_t>(my_rows.rows));
  for (I r = 0; r < my_rows.rows; ++r) lengths[static_cast<std::size_t>(r)] = my_rows.row_offsets[r + 1] - my_rows.row_offsets[r];
  auto const base = my_rows.rows > 0 ? my_rows.row_offsets[0] : I{0};
  auto const nnz = static_cast<std::size_t>(my_rows.nnz());
  std::vector<std::int64_t> displs;
  auto all_lengths = detail::all_gather_values<I>(policy, lengths, displs, what);
  auto cols = detail::all_gather_values<I>(
      policy, std::span<I const>(my_rows.col_indices == nullptr ? nullptr : my_rows.col_indices + base, nnz), displs,
      what);
  auto values = detail::all_gather_values<T>(
      policy, std::span<T const>(my_rows.values == nullptr ? nullptr : my_rows.values + base, nnz), displs, what);
  ::mgpu::detail::check_fits_index<I>(static_cast<std::int64_t>(cols.size()), "mpi::all_gather_rows: the gathered entries");
  ::mgpu::detail::check_fits_index<I>(static_cast<std::int64_t>(all_lengths.size()), "mpi::all_gather_rows: the gathered rows");
  std::vector<I> offsets(all_lengths.size() + 1, I{0});
  for (std::size_t r = 0; r < all_lengths.size(); ++r) offsets[r + 1] = static_cast<I>(offsets[r] + all_lengths[r]);
  return csr_matrix<cpu, T, I>(static_cast<std::int64_t>(all_lengths.size()), static_cast<std::int64_t>(my_rows.cols), std::move(offsets), std::move(cols),
                               std::move(values));
}

/// All pairs of a matrix sharded over the ranks: each global row's k most similar other
/// rows (exclude_self unset: true, as the single-process all-pairs overload). The rows
/// are first gathered on every rank as the queries (all_gather_rows), then searched as
/// above. @returns on every rank: one list per global row. @throws as above.
template <class Kind, class T, class I>
topk_result<T> cosine_topk(distributed_policy<Kind> const& policy, csr_view<T, I> my_rows, std::int64_t k,
                           cosine_topk_options const& options = {}) {
  auto const queries = all_gather_rows(policy, my_rows);
  cosine_topk_options o = options;
  o.exclude_self = options.exclude_self.value_or(true);
  return cosine_topk(policy, queries.view(), my_rows, k, o);
}

/// Overload for an owning matrix.
template <class Kind, class T, class I>
topk_result<T> cosine_topk(distributed_policy<Kind> const& policy, csr_matrix<cpu, T, I> const& my_rows,
                           std::int64_t k, cosine_topk_options const& options = {}) {
  return cosine_topk(policy, my_rows.view(), k, options);
}

}  // namespace mgpu::mpi
