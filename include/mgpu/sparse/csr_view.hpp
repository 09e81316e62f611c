// mgpu/sparse/csr_view.hpp — a non-owning, trivially copyable view of a CSR matrix.
//
// Kernels take views; `csr_matrix` owns. A view's row_offsets index the col_indices and
// values arrays directly, so a block of rows is a view of the same arrays with the
// row_offsets pointer advanced: row_offsets[0] need not be 0 in a sliced view.
// A view does not check its contents; csr_matrix guarantees them (see there).
//
// The memory space is part of the type: `csr_view<T, I>` (Kind = cpu) points into host
// memory, `csr_view<T, I, gpu>` into one GPU's memory (from csr_matrix<gpu>::view(),
// mgpu/backend/cuda/csr_matrix.hpp). The members that read the arrays (nnz, row_*) exist
// for host views only; a device view carries its pointers and shape to the kernels.
#pragma once

#include <concepts>
#include <cstddef>
#include <span>
#include <type_traits>

#include "mgpu/core/device.hpp"

namespace mgpu {

template <class T, class I, class Kind = cpu>
struct csr_view {
  static_assert(std::is_integral_v<I>, "CSR index type must be an integer type");
  using value_type = T;
  using index_type = I;
  using kind = Kind;

  I rows = 0;
  I cols = 0;
  I const* row_offsets = nullptr;  // rows + 1 entries
  I const* col_indices = nullptr;  // indexed by row_offsets
  T const* values = nullptr;       // indexed by row_offsets

  [[nodiscard]] I nnz() const noexcept
    requires std::same_as<Kind, cpu> { return rows == 0 ? I{0} : row_offsets[rows] - row_offsets[0]; }
  [[nodiscard]] I row_begin(I r) const noexcept
    requires std::same_as<Kind, cpu> { return row_offsets[r]; }
  [[nodiscard]] I row_end(I r) const noexcept
    requires std::same_as<Kind, cpu> { return row_offsets[r + 1]; }
  [[nodiscard]] I row_nnz(I r) const noexcept
    requires std::same_as<Kind, cpu> { return row_offsets[r + 1] - row_offsets[r]; }
  [[nodiscard]] std::span<I const> row_columns(I r) const noexcept
    requires std::same_as<Kind, cpu> {
    return {col_indices + row_offsets[r], static_cast<std::size_t>(row_nnz(r))};
  }
  [[nodiscard]] std::span<T const> row_values(I r) const noexcept
    requires std::same_as<Kind, cpu> {
    return {values + row_offsets[r], static_cast<std::size_t>(row_nnz(r))};
  }

  /// Rows [first, last) as a view of the same arrays. O(1).
  [[nodiscard]] csr_view row_block(I first, I last) const noexcept {
    return {static_cast<I>(last - first), cols, row_offsets + first, col_indices, values};
  }
};

}  // namespace mgpu
