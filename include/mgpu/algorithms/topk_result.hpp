// mgpu/algorithms/topk_result.hpp — the one result type of every top-k search: cosine_topk,
// knn, the indexes (cosine_index, knn_index) and ALS recommendations.
//
// Index types, once for the whole library: a result's row numbers, neighbour ids and
// counts are std::int64_t whatever the index type of the input matrices (a matrix's I
// is the type of its own shape and column indices; results never inherit it).
//
// Padding (FAISS's convention, documented here and nowhere else): a search returns
// fewer than k neighbours for a query when fewer candidates qualify (a base with fewer
// than k rows, cosine scores of zero or below a threshold, seen items excluded). The
// result stores only the real ones (count(q) <= k per row). padded() lays the lists out
// as FAISS's `search` does, rows x k, the missing positions holding id -1 and the
// result's `pad_score`: +inf where smaller is better (k-NN's squared L2 distances),
// -inf where larger is better (similarities and inner products).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "mgpu/core/device.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/sparse/csr_matrix.hpp"

namespace mgpu {

/// The rows x k layout of a top-k result (see the file comment): `ids(q, j)` is query q's
/// j-th neighbour or -1, `scores(q, j)` its score or the pad score.
template <class T>
struct padded_topk {
  dense_matrix<cpu, T> scores;
  dense_matrix<cpu, std::int64_t> ids;
};

/// Up to k (neighbour id, score) pairs per query row, best first, stored like CSR: the
/// pairs of query q are positions [row_offsets[q], row_offsets[q+1]) of `ids` and
/// `scores`. `k` is the bound that was asked for (0: no bound, as in a threshold search
/// that returns every match); `candidates` is how many rows were searched (the corpus,
/// base or item count: the column count of to_csr()); `larger_is_better` tells how
/// `scores` rank (false only for k-NN's squared L2 distances).
template <class T>
struct topk_result {
  using value_type = T;
  using index_type = std::int64_t;

  std::int64_t k = 0;
  std::int64_t candidates = 0;
  bool larger_is_better = true;
  std::vector<std::int64_t> row_offsets{0};
  std::vector<std::int64_t> ids;
  std::vector<T> scores;

  /// Number of query rows.
  [[nodiscard]] std::int64_t rows() const noexcept { return static_cast<std::int64_t>(row_offsets.size()) - 1; }
  /// Number of (id, score) pairs in all rows.
  [[nodiscard]] std::int64_t size() const noexcept { return static_cast<std::int64_t>(ids.size()); }
  /// Neighbours listed for query q (at most k when k > 0).
  [[nodiscard]] std::int64_t count(std::int64_t q) const noexcept {
    auto const i = static_cast<std::size_t>(q);
    return row_offsets[i + 1] - row_offsets[i];
  }
  /// Query q's neighbour ids, best first.
  [[nodiscard]] std::span<std::int64_t const> neighbors(std::int64_t q) const noexcept {
    return {ids.data() + row_offsets[static_cast<std::size_t>(q)], static_cast<std::size_t>(count(q))};
  }
  /// Query q's scores, in the order of neighbors(q).
  [[nodiscard]] std::span<T const> scores_of(std::int64_t q) const noexcept {
    return {scores.data() + row_offsets[static_cast<std::size_t>(q)], static_cast<std::size_t>(count(q))};
  }
  /// The score that padded() puts in missing positions: -inf, or +inf for distances.
  [[nodiscard]] T pad_score() const noexcept {
    return larger_is_better ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
  }

  /// FAISS's layout (file comment): rows x width, width = k, or the longest row when k is 0.
  [[nodiscard]] padded_topk<T> padded() const {
    std::int64_t width = k;
    if (width == 0) {
      for (std::int64_t q = 0; q < rows(); ++q) width = std::max(width, count(q));
    }
    padded_topk<T> out{dense_matrix<cpu, T>(rows(), width, pad_score()),
                       dense_matrix<cpu, std::int64_t>(rows(), width, std::int64_t{-1})};
    for (std::int64_t q = 0; q < rows(); ++q) {
      auto const n = static_cast<std::size_t>(std::min(count(q), width));
      std::copy_n(scores_of(q).data(), n, out.scores.data() + q * width);
      std::copy_n(neighbors(q).data(), n, out.ids.data() + q * width);
    }
    return out;
  }

  /// The result as a rows x candidates sparse matrix (entry (q, id) = score), the form of
  /// scikit-learn's and sparse_dot_topn's sparse top-n output. Rows are canonicalised
  /// (columns sorted); I is the matrix's index type.
  /// @throws index_overflow when rows, candidates or the pair count exceed I.
  template <class I = std::int64_t>
  [[nodiscard]] csr_matrix<cpu, T, I> to_csr() const {
    detail::check_fits_index<I>(size(), "top-k pairs");
    std::vector<I> offsets(row_offsets.size());
    std::transform(row_offsets.begin(), row_offsets.end(), offsets.begin(), [](std::int64_t v) { return static_cast<I>(v); });
    std::vector<I> cols(ids.size());
    std::transform(ids.begin(), ids.end(), cols.begin(), [](std::int64_t v) { return static_cast<I>(v); });
    return csr_matrix<cpu, T, I>(rows(), candidates, std::span<I const>(offsets), std::span<I const>(cols),
                                 std::span<T const>(scores));
  }
};

}  // namespace mgpu
