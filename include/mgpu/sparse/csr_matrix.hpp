// mgpu/sparse/csr_matrix.hpp — the owning compressed-sparse-row matrix.
//
// `csr_matrix<Kind, T, I>` owns row_offsets (rows + 1), col_indices (nnz) and values
// (nnz) in buffers on one device of kind `Kind`. Every csr_matrix is valid and
// canonical:
//   - row_offsets[0] == 0, non-decreasing, row_offsets[rows] == nnz;
//   - 0 <= col_indices[p] < cols;
//   - within a row, column indices strictly increase (sorted, no duplicates).
// Construction from arrays checks the first two and *canonicalises* the third: rows
// with unsorted columns are sorted and duplicate entries are summed (the policy of
// SciPy's `sum_duplicates`). Kernels may therefore rely on sorted, unique columns.
// Values are stored as given; NaN and Inf propagate through arithmetic as IEEE 754
// says (algorithms that cannot order them, such as top-k, reject them).
//
// Thread safety: const member functions may be called concurrently.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <new>
#include <stdexcept>
#include <numeric>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "mgpu/core/buffer.hpp"
#include "mgpu/core/device.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/sparse/csr_view.hpp"

namespace mgpu {

namespace detail {

/// Throws index_overflow unless `value` (a count or size) is representable in I.
template <class I>
void check_fits_index(std::int64_t value, char const* what) {
  if (value > static_cast<std::int64_t>(std::numeric_limits<I>::max())) {
    throw index_overflow(message(what, " = ", value, " does not fit the index type (max ",
                                 static_cast<std::int64_t>(std::numeric_limits<I>::max()),
                                 "); use 64-bit indices"));
  }
}

/// A zeroed offsets array of rows + 1 entries.
/// @throws out_of_memory (with requested and free bytes) when it cannot be allocated.
template <class I>
std::vector<I> zeroed_offsets(std::int64_t rows) {
  auto const entries = static_cast<std::uint64_t>(rows) + 1;
  auto const bytes = entries > SIZE_MAX / sizeof(I) ? SIZE_MAX : static_cast<std::size_t>(entries * sizeof(I));
  try {
    if (entries > std::vector<I>().max_size()) throw std::length_error("offsets");
    return std::vector<I>(static_cast<std::size_t>(entries), I{0});
  } catch (std::length_error const&) {
    throw out_of_memory(bytes, host_free_bytes(), "row_offsets");
  } catch (std::bad_alloc const&) {
    throw out_of_memory(bytes, host_free_bytes(), "row_offsets");
  }
}

/// Checks rows 1–3 and 5 of the CSR contract (see the file comment) on raw arrays.
/// Returns true if the column indices are already sorted and unique in every row.
/// @throws invalid_argument, index_overflow, dimension_mismatch, format_error.
template <class T, class I>
bool check_csr_arrays(std::int64_t rows, std::int64_t cols, std::span<I const> row_offsets,
                      std::span<I const> col_indices, std::span<T const> values) {
  MGPU_EXPECTS(rows >= 0 && cols >= 0, "matrix shape must be non-negative, got ", rows, " x ",
               cols);
  check_fits_index<I>(rows, "rows");
  check_fits_index<I>(cols, "cols");
  check_fits_index<I>(static_cast<std::int64_t>(col_indices.size()), "nnz");
  if (row_offsets.size() != static_cast<std::size_t>(rows) + 1) {
    throw dimension_mismatch(message("row_offsets has ", row_offsets.size(),
                                     " entries, expected rows + 1 = ",
                                     static_cast<std::size_t>(rows) + 1));
  }
  if (col_indices.size() != values.size()) {
    throw dimension_mismatch(message("col_indices has ", col_indices.size(),
                                     " entries but values has ", values.size()));
  }
  auto const nnz = static_cast<std::int64_t>(col_indices.size());
  if (row_offsets[0] != 0) {
    throw format_error(message("row_offsets[0] is ", static_cast<std::int64_t>(row_offsets[0]),
                               ", must be 0"));
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    if (row_offsets[r + 1] < row_offsets[r]) {
      throw format_error(message("row_offsets decrease at row ", r, ": ",
                                 static_cast<std::int64_t>(row_offsets[r]), " then ",
                                 static_cast<std::int64_t>(row_offsets[r + 1])));
    }
    if (static_cast<std::int64_t>(row_offsets[r + 1]) > nnz) {
      throw format_error(message("row_offsets[", r + 1, "] = ",
                                 static_cast<std::int64_t>(row_offsets[r + 1]),
                                 " exceeds nnz = ", nnz, " (row ", r, ")"));
    }
  }
  if (static_cast<std::int64_t>(row_offsets[rows]) != nnz) {
    throw format_error(message("row_offsets[", rows, "] = ",
                               static_cast<std::int64_t>(row_offsets[rows]),
                               " but there are nnz = ", nnz, " entries"));
  }
  bool canonical = true;
  for (std::int64_t r = 0; r < rows; ++r) {
    for (auto p = static_cast<std::int64_t>(row_offsets[r]); p < row_offsets[r + 1]; ++p) {
      auto const c = static_cast<std::int64_t>(col_indices[p]);
      if (c < 0 || c >= cols) {
        throw format_error(message("column index ", c, " at position ", p, " (row ", r,
                                   ") is outside [0, ", cols, ")"));
      }
      if (p > row_offsets[r] && col_indices[p] <= col_indices[p - 1]) canonical = false;
    }
  }
  return canonical;
}

}  // namespace detail

template <class Kind, class T = float, class I = std::int32_t>
class csr_matrix;

/// Host CSR matrix (see the file comment for the invariants).
template <class T, class I>
class csr_matrix<cpu, T, I> {
  static_assert(std::is_integral_v<I> && std::is_signed_v<I>,
                "CSR index type must be a signed integer type");
  static_assert(std::is_arithmetic_v<T>, "CSR value type must be arithmetic");

 public:
  using kind = cpu;
  using value_type = T;
  using index_type = I;
  using view_type = csr_view<T, I>;

  /// An empty 0 x 0 matrix.
  csr_matrix() : row_offsets_(1) { row_offsets_[0] = 0; }

  /// A rows x cols matrix with no stored entries.
  csr_matrix(std::int64_t rows, std::int64_t cols)
      : csr_matrix(rows, cols, zero_offsets(rows), {}, {}) {}

  /// Copies and checks CSR arrays; unsorted rows are sorted and duplicates summed.
  /// O(nnz) when already canonical, O(nnz log(row length)) otherwise.
  /// @throws invalid_argument (negative shape), index_overflow (a size beyond I),
  ///         dimension_mismatch (array lengths), format_error (offsets, columns).
  csr_matrix(std::int64_t rows, std::int64_t cols, std::span<I const> row_offsets,
             std::span<I const> col_indices, std::span<T const> values) {
    bool const canonical = detail::check_csr_arrays<T, I>(rows, cols, row_offsets, col_indices, values);
    rows_ = static_cast<I>(rows);
    cols_ = static_cast<I>(cols);
    if (canonical) {
      row_offsets_ = buffer<I, cpu>(row_offsets);
      col_indices_ = buffer<I, cpu>(col_indices);
      values_ = buffer<T, cpu>(values);
    } else {
      canonicalize(row_offsets, col_indices, values);
    }
  }

  /// Overload for brace-initialised or vector arguments.
  csr_matrix(std::int64_t rows, std::int64_t cols, std::vector<I> const& row_offsets,
             std::vector<I> const& col_indices, std::vector<T> const& values)
      : csr_matrix(rows, cols, std::span<I const>(row_offsets), std::span<I const>(col_indices),
                   std::span<T const>(values)) {}

  /// Adopts buffers that already satisfy every invariant, without checking them. For
  /// kernels that build canonical output; users construct from arrays instead.
  static csr_matrix adopt_canonical(I rows, I cols, buffer<I, cpu> row_offsets,
                                    buffer<I, cpu> col_indices, buffer<T, cpu> values) {
    csr_matrix m;
    m.rows_ = rows;
    m.cols_ = cols;
    m.row_offsets_ = std::move(row_offsets);
    m.col_indices_ = std::move(col_indices);
    m.values_ = std::move(values);
    return m;
  }

  csr_matrix(csr_matrix&&) noexcept = default;
  csr_matrix& operator=(csr_matrix&&) noexcept = default;
  /// Deep copy, explicit so that accidental copies of large matrices do not compile.
  [[nodiscard]] csr_matrix clone() const {
    return adopt_canonical(rows_, cols_, buffer<I, cpu>(row_offsets()), buffer<I, cpu>(col_indices()),
                           buffer<T, cpu>(values()));
  }

  [[nodiscard]] I rows() const noexcept { return rows_; }
  [[nodiscard]] I cols() const noexcept { return cols_; }
  [[nodiscard]] I nnz() const noexcept { return static_cast<I>(col_indices_.size()); }

  [[nodiscard]] std::span<I const> row_offsets() const noexcept { return row_offsets_.span(); }
  [[nodiscard]] std::span<I const> col_indices() const noexcept { return col_indices_.span(); }
  [[nodiscard]] std::span<T const> values() const noexcept { return values_.span(); }
  /// Values may be changed in place; the sparsity structure may not.
  [[nodiscard]] std::span<T> values() noexcept { return values_.span(); }

  [[nodiscard]] view_type view() const noexcept {
    return {rows_, cols_, row_offsets_.data(), col_indices_.data(), values_.data()};
  }
  operator view_type() const noexcept { return view(); }  // NOLINT: views convert implicitly

 private:
  static std::vector<I> zero_offsets(std::int64_t rows) {
    MGPU_EXPECTS(rows >= 0, "matrix shape must be non-negative, got ", rows, " rows");
    detail::check_fits_index<I>(rows, "rows");
    return detail::zeroed_offsets<I>(rows);
  }

  void canonicalize(std::span<I const> row_offsets, std::span<I const> col_indices,
                    std::span<T const> values) {
    std::vector<I> offsets(row_offsets.size(), I{0});
    std::vector<I> cols;
    std::vector<T> vals;
    cols.reserve(col_indices.size());
    vals.reserve(values.size());
    std::vector<std::pair<I, T>> row;
    for (std::size_t r = 0; r + 1 < row_offsets.size(); ++r) {
      row.clear();
      for (I p = row_offsets[r]; p < row_offsets[r + 1]; ++p) row.emplace_back(col_indices[p], values[p]);
      std::stable_sort(row.begin(), row.end(),
                       [](auto const& a, auto const& b) { return a.first < b.first; });
      for (auto const& [c, v] : row) {
        if (cols.size() > static_cast<std::size_t>(offsets[r]) && cols.back() == c) {
          vals.back() += v;
        } else {
          cols.push_back(c);
          vals.push_back(v);
        }
      }
      offsets[r + 1] = static_cast<I>(cols.size());
    }
    row_offsets_ = buffer<I, cpu>(std::span<I const>(offsets));
    col_indices_ = buffer<I, cpu>(std::span<I const>(cols));
    values_ = buffer<T, cpu>(std::span<T const>(vals));
  }

  I rows_ = 0;
  I cols_ = 0;
  buffer<I, cpu> row_offsets_;
  buffer<I, cpu> col_indices_;
  buffer<T, cpu> values_;
};

}  // namespace mgpu
