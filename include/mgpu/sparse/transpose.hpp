// mgpu/sparse/transpose.hpp — CSR transpose on the host.
#pragma once

#include <cstddef>
#include <vector>

#include "mgpu/sparse/csr_matrix.hpp"
#include "mgpu/sparse/csr_view.hpp"

namespace mgpu {

/// Aᵀ of a CSR matrix or view (cols x rows), canonical. Counting sort by column:
/// O(nnz + rows + cols) time, nnz + cols + 1 extra memory. Because A's rows are
/// scanned in order, each row of Aᵀ comes out sorted.
template <class T, class I>
csr_matrix<cpu, T, I> transpose(csr_view<T, I> a) {
  auto const nnz = static_cast<std::size_t>(a.nnz());
  buffer<I, cpu> offsets(static_cast<std::size_t>(a.cols) + 1);
  buffer<I, cpu> cols(nnz);
  buffer<T, cpu> vals(nnz);
  std::fill(offsets.data(), offsets.data() + offsets.size(), I{0});
  for (I r = 0; r < a.rows; ++r) {
    for (I p = a.row_begin(r); p < a.row_end(r); ++p) ++offsets[static_cast<std::size_t>(a.col_indices[p]) + 1];
  }
  for (std::size_t c = 0; c < static_cast<std::size_t>(a.cols); ++c) offsets[c + 1] += offsets[c];
  std::vector<I> cursor(offsets.data(), offsets.data() + a.cols);
  for (I r = 0; r < a.rows; ++r) {
    for (I p = a.row_begin(r); p < a.row_end(r); ++p) {
      auto const dst = static_cast<std::size_t>(cursor[static_cast<std::size_t>(a.col_indices[p])]++);
      cols[dst] = r;
      vals[dst] = a.values[p];
    }
  }
  return csr_matrix<cpu, T, I>::adopt_canonical(a.cols, a.rows, std::move(offsets), std::move(cols),
                                                std::move(vals));
}

template <class T, class I>
csr_matrix<cpu, T, I> transpose(csr_matrix<cpu, T, I> const& a) {
  return transpose(a.view());
}

}  // namespace mgpu
