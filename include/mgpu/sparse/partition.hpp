// mgpu/sparse/partition.hpp — contiguous row blocks balanced by nnz.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "mgpu/core/error.hpp"
#include "mgpu/sparse/csr_view.hpp"

namespace mgpu {

/// Splits rows [0, a.rows) into `parts` contiguous blocks with about nnz/parts stored
/// entries each: block p is rows [bounds[p], bounds[p+1]). Boundaries are found by
/// `lower_bound` on the row offsets (as Eigen does), so a block may be empty (more
/// parts than rows, or one dense row); callers skip empty blocks. When the matrix has
/// no entries, rows are split evenly instead. O(parts log rows).
/// @throws invalid_argument if parts == 0.
template <class T, class I>
std::vector<I> partition_rows_by_nnz(csr_view<T, I> a, std::size_t parts) {
  MGPU_EXPECTS(parts >= 1, "cannot partition rows into 0 parts");
  std::vector<I> bounds(parts + 1, I{0});
  bounds[parts] = a.rows;
  auto const base = a.rows == 0 ? I{0} : a.row_offsets[0];
  auto const nnz = static_cast<std::int64_t>(a.nnz());
  for (std::size_t p = 1; p < parts; ++p) {
    if (nnz == 0) {
      bounds[p] = static_cast<I>(static_cast<std::int64_t>(a.rows) * static_cast<std::int64_t>(p) /
                                 static_cast<std::int64_t>(parts));
      continue;
    }
    auto const target = static_cast<I>(base + nnz * static_cast<std::int64_t>(p) /
                                                  static_cast<std::int64_t>(parts));
    auto const* first = a.row_offsets;
    auto const* it = std::lower_bound(first, first + a.rows + 1, target);
    bounds[p] = std::max(bounds[p - 1], static_cast<I>(it - first));
  }
  return bounds;
}

}  // namespace mgpu
