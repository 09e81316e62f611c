// mgpu/sparse/coo.hpp — building a CSR matrix from coordinate (COO) triplets.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "mgpu/sparse/csr_matrix.hpp"

namespace mgpu {

/// CSR matrix from COO triplets (row_indices[p], col_indices[p], values[p]), in any
/// order; duplicate coordinates are summed (SciPy `coo_matrix.tocsr()` semantics).
/// O(nnz + rows) plus the sort of each row's columns.
/// @throws dimension_mismatch (array lengths), format_error (an index outside the
///         shape, naming the position), index_overflow, invalid_argument.
template <class T, class I>
csr_matrix<cpu, T, I> csr_from_coo(std::int64_t rows, std::int64_t cols,
                                   std::span<I const> row_indices, std::span<I const> col_indices,
                                   std::span<T const> values) {
  MGPU_EXPECTS(rows >= 0 && cols >= 0, "matrix shape must be non-negative, got ", rows, " x ",
               cols);
  detail::check_fits_index<I>(rows, "rows");
  detail::check_fits_index<I>(cols, "cols");
  if (row_indices.size() != col_indices.size() || col_indices.size() != values.size()) {
    throw dimension_mismatch(detail::message("COO arrays differ in length: ", row_indices.size(),
                                             " row indices, ", col_indices.size(),
                                             " column indices, ", values.size(), " values"));
  }
  detail::check_fits_index<I>(static_cast<std::int64_t>(values.size()), "nnz");
  std::vector<I> offsets = detail::zeroed_offsets<I>(rows);
  for (std::size_t p = 0; p < row_indices.size(); ++p) {
    auto const r = static_cast<std::int64_t>(row_indices[p]);
    auto const c = static_cast<std::int64_t>(col_indices[p]);
    if (r < 0 || r >= rows || c < 0 || c >= cols) {
      throw format_error(detail::message("entry ", p, " at (", r, ", ", c,
                                         ") is outside the ", rows, " x ", cols, " shape"));
    }
    ++offsets[static_cast<std::size_t>(r) + 1];
  }
  for (std::size_t r = 0; r < static_cast<std::size_t>(rows); ++r) offsets[r + 1] += offsets[r];
  std::vector<I> cursor(offsets.begin(), offsets.end() - 1);
  std::vector<I> csr_cols(values.size());
  std::vector<T> csr_vals(values.size());
  for (std::size_t p = 0; p < row_indices.size(); ++p) {
    auto const dst = cursor[static_cast<std::size_t>(row_indices[p])]++;
    csr_cols[static_cast<std::size_t>(dst)] = col_indices[p];
    csr_vals[static_cast<std::size_t>(dst)] = values[p];
  }
  return csr_matrix<cpu, T, I>(rows, cols, std::span<I const>(offsets),
                               std::span<I const>(csr_cols), std::span<T const>(csr_vals));
}

template <class T, class I>
csr_matrix<cpu, T, I> csr_from_coo(std::int64_t rows, std::int64_t cols,
                                   std::vector<I> const& row_indices,
                                   std::vector<I> const& col_indices, std::vector<T> const& values) {
  return csr_from_coo<T, I>(rows, cols, std::span<I const>(row_indices),
                            std::span<I const>(col_indices), std::span<T const>(values));
}

}  // namespace mgpu
