// mgpu/sparse/scaling.hpp — row and column scaling and row normalisation of a host CSR
// matrix, in place, on the devices of a host policy.
//
//   scale_rows(policy, A, d)      A ← diag(d)·A      (row r multiplied by d[r])
//   scale_columns(policy, A, d)   A ← A·diag(d)      (entries of column c by d[c])
//   normalize_rows(policy, A, n)  every nonzero row divided by its l1, l2 or max norm
//
// normalize_rows follows scikit-learn's `sklearn.preprocessing.normalize` (axis=1): the
// norm is taken over the stored values (max: of their absolute values), rows whose norm
// is 0 are left unchanged (never NaN), and NaN / Inf propagate into their row. Norms are
// summed in double. The structure never changes; explicit zeros stay stored.
// The rows are split into nnz-balanced blocks, one per device (detail::fork_join), and
// each block is processed by that device's OpenMP threads. O(nnz + rows), in place.
// GPU policies: not provided (the matrix lives in host memory, where scaling it costs one
// pass; uploading it would cost more than the operation).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstddef>
#include <cstdint>
#include <span>

#include "mgpu/core/error.hpp"
#include "mgpu/execution/fork_join.hpp"
#include "mgpu/execution/policy.hpp"
#include "mgpu/sparse/csr_matrix.hpp"
#include "mgpu/sparse/partition.hpp"

namespace mgpu {

/// The norm normalize_rows divides each row by.
enum class row_norm { l1, l2, max };

namespace detail {

/// Runs f(r) for every row r of `a` on the policy's devices, rows split by nnz.
template <class T, class I, class F>
void for_each_row(execution_policy<cpu> const& policy, csr_matrix<cpu, T, I> const& a, F const& f) {
  auto const bounds = partition_rows_by_nnz(a.view(), policy.device_count());
  fork_join(policy, [&](auto&, std::size_t dev) {
    auto const first = static_cast<std::int64_t>(bounds[dev]);
    auto const last = static_cast<std::int64_t>(bounds[dev + 1]);
#pragma omp parallel for schedule(static)
    for (std::int64_t r = first; r < last; ++r) f(static_cast<I>(r));
  });
}

}  // namespace detail

/// A ← diag(d)·A: row r's values times d[r]. d has A.rows() entries.
/// @throws dimension_mismatch giving both sizes.
template <class T, class I>
void scale_rows(execution_policy<cpu> const& policy, csr_matrix<cpu, T, I>& a, std::span<T const> d) {
  if (d.size() != static_cast<std::size_t>(a.rows())) {
    throw dimension_mismatch(detail::message("scale_rows: A has ", static_cast<std::int64_t>(a.rows()),
                                             " rows but the scale vector has ", d.size(), " entries"));
  }
  auto const offsets = a.row_offsets();
  auto const values = a.values();
  detail::for_each_row(policy, a, [&](I r) {
    auto const s = d[static_cast<std::size_t>(r)];
    for (I p = offsets[static_cast<std::size_t>(r)]; p < offsets[static_cast<std::size_t>(r) + 1]; ++p) {
      values[static_cast<std::size_t>(p)] *= s;
    }
  });
}

/// A ← A·diag(d): every entry of column c times d[c]. d has A.cols() entries.
/// @throws dimension_mismatch giving both sizes.
template <class T, class I>
void scale_columns(execution_policy<cpu> const& policy, csr_matrix<cpu, T, I>& a,
                   std::span<T const> d) {
  if (d.size() != static_cast<std::size_t>(a.cols())) {
    throw dimension_mismatch(detail::message("scale_columns: A has ", static_cast<std::int64_t>(a.cols()),
                                             " columns but the scale vector has ", d.size(), " entries"));
  }
  auto const offsets = a.row_offsets();
  auto const cols = a.col_indices();
  auto const values = a.values();
  detail::for_each_row(policy, a, [&](I r) {
    for (I p = offsets[static_cast<std::size_t>(r)]; p < offsets[static_cast<std::size_t>(r) + 1]; ++p) {
      values[static_cast<std::size_t>(p)] *= d[static_cast<std::size_t>(cols[static_cast<std::size_t>(p)])];
    }
  });
}

/// Divides every row with a nonzero norm by that norm (see the file comment for the
/// semantics, which are scikit-learn's `normalize(A, norm=..., axis=1)`).
template <class T, class I>
void normalize_rows(execution_policy<cpu> const& policy, csr_matrix<cpu, T, I>& a,
                    row_norm norm = row_norm::l2) {
  auto const offsets = a.row_offsets();
  auto const values = a.values();
  detail::for_each_row(policy, a, [&](I r) {
    auto const p0 = static_cast<std::size_t>(offsets[static_cast<std::size_t>(r)]);
    auto const p1 = static_cast<std::size_t>(offsets[static_cast<std::size_t>(r) + 1]);
    double n = 0;
    for (auto p = p0; p < p1; ++p) {
      auto const v = static_cast<double>(values[p]);
      switch (norm) {
        case row_norm::l1: n += std::abs(v); break;
        case row_norm::l2: n += v * v; break;
        case row_norm::max: n = std::isnan(v) || std::isnan(n) ? std::numeric_limits<double>::quiet_NaN() : std::max(n, std::abs(v)); break;
      }
    }
    if (norm == row_norm::l2) n = std::sqrt(n);
    if (n == 0) return;
    for (auto p = p0; p < p1; ++p) values[p] = static_cast<T>(static_cast<double>(values[p]) / n);
  });
}

}  // namespace mgpu
