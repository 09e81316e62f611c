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
// Arrays passed as spans or lvalue vectors are copied; vectors moved in
// (`csr_matrix(rows, cols, std::move(offsets), std::move(cols), std::move(values))`, or
// braced lists) are adopted: the matrix keeps their storage, canonicalised in place.
//
// Host code may leave the kind out: `csr_matrix<float>` is the host matrix with 32-bit
// indices and `csr_matrix<float, std::int64_t>` the one with 64-bit indices, complete
// types derived from `csr_matrix<cpu, float, I>` and adding nothing to it. They are
// accepted wherever csr_matrix<cpu, T, I> is (the algorithms deduce T and I through the
// base class), and an algorithm's csr_matrix<cpu, T, I> result moves into one without
// copying its arrays: `mgpu::csr_matrix<float> x = vectorizer.fit_transform(docs);`.
//
// Thread safety: const member functions may be called concurrently.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <new>
#include <numeric>
#include <span>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mgpu/core/buffer.hpp"
#include "mgpu/core/device.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/detail/host_memory.hpp"  // host_free_bytes
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

/// Sorts each row's entries by column (stably) and sums the entries of a repeated column
/// in their order, in the arrays' own storage; the vectors shrink to the entries kept
/// (their capacity stays). The arrays must have passed check_csr_arrays. O(nnz) for
/// sorted rows, O(row length log(row length)) extra for each unsorted row.
template <class T, class I>
void canonicalize_in_place(std::vector<I>& row_offsets, std::vector<I>& col_indices, std::vector<T>& values) {
  std::vector<std::pair<I, T>> row;
  I* const cols = col_indices.data();
  T* const vals = values.data();
  std::size_t out = 0;
  auto begin = static_cast<std::size_t>(row_offsets[0]);
  for (std::size_t r = 0; r + 1 < row_offsets.size(); ++r) {
    auto const end = static_cast<std::size_t>(row_offsets[r + 1]);
    if (!std::is_sorted(cols + begin, cols + end)) {
      row.clear();
      for (std::size_t p = begin; p < end; ++p) row.emplace_back(cols[p], vals[p]);
      std::stable_sort(row.begin(), row.end(), [](auto const& a, auto const& b) { return a.first < b.first; });
      for (std::size_t p = begin; p < end; ++p) std::tie(cols[p], vals[p]) = row[p - begin];
    }
    std::size_t const row_out = out;
    for (std::size_t p = begin; p < end; ++p) {  // out <= p: the writes trail the reads
      if (out > row_out && cols[out - 1] == cols[p]) {
        vals[out - 1] += vals[p];
      } else {
        cols[out] = cols[p];
        vals[out] = vals[p];
        ++out;
      }
    }
    row_offsets[r + 1] = static_cast<I>(out);
    begin = end;
  }
  col_indices.resize(out);
  values.resize(out);
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
      adopt(std::vector<I>(row_offsets.begin(), row_offsets.end()),
            std::vector<I>(col_indices.begin(), col_indices.end()), std::vector<T>(values.begin(), values.end()),
            false);
    }
  }

  /// Overload for lvalue vectors (copied, as the spans above).
  csr_matrix(std::int64_t rows, std::int64_t cols, std::vector<I> const& row_offsets,
             std::vector<I> const& col_indices, std::vector<T> const& values)
      : csr_matrix(rows, cols, std::span<I const>(row_offsets), std::span<I const>(col_indices),
                   std::span<T const>(values)) {}

  /// Moves the vectors in (std::move(v), or braced lists): the matrix takes over their
  /// storage without copying it — row_offsets().data(), col_indices().data() and
  /// values().data() are the vectors' data() before the call — after the same checks as
  /// the copying constructors. Unsorted rows are sorted and duplicates summed in that
  /// storage (col_indices and values keep their capacity). O(nnz) when canonical,
  /// O(nnz log(row length)) otherwise, no allocation but a row's scratch.
  /// @throws as the copying constructor; when a check throws, the vectors are left as
  ///         they were.
  csr_matrix(std::int64_t rows, std::int64_t cols, std::vector<I>&& row_offsets,
             std::vector<I>&& col_indices, std::vector<T>&& values) {
    bool const canonical = detail::check_csr_arrays<T, I>(rows, cols, std::span<I const>(row_offsets),
                                                          std::span<I const>(col_indices),
                                                          std::span<T const>(values));
    rows_ = static_cast<I>(rows);
    cols_ = static_cast<I>(cols);
    adopt(std::move(row_offsets), std::move(col_indices), std::move(values), canonical);
  }

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

  // Takes the checked arrays' storage, canonicalising it first unless it is canonical.
  void adopt(std::vector<I>&& row_offsets, std::vector<I>&& col_indices, std::vector<T>&& values, bool canonical) {
    if (!canonical) detail::canonicalize_in_place(row_offsets, col_indices, values);
    row_offsets_ = buffer<I, cpu>(std::move(row_offsets));
    col_indices_ = buffer<I, cpu>(std::move(col_indices));
    values_ = buffer<T, cpu>(std::move(values));
  }

  I rows_ = 0;
  I cols_ = 0;
  buffer<I, cpu> row_offsets_;
  buffer<I, cpu> col_indices_;
  buffer<T, cpu> values_;
};

namespace detail {

/// The index type of csr_matrix<T, X>: X, or 32-bit when X is the primary template's
/// default second argument (float), i.e. when no index type was given.
template <class X>
struct host_csr_index {
  using type = X;
};
template <>
struct host_csr_index<float> {
  using type = std::int32_t;
};

}  // namespace detail

/// `csr_matrix<T>` / `csr_matrix<T, I>`: the host matrix for code that names no kind
/// (see the file comment). csr_matrix<float> is csr_matrix<cpu, float, std::int32_t>,
/// csr_matrix<float, std::int64_t> is csr_matrix<cpu, float, std::int64_t>, as a class
/// derived from it with the same constructors, members and invariants.
template <class T, class X>
  requires std::is_arithmetic_v<T> && (std::is_same_v<X, float> || std::is_integral_v<X>)
class csr_matrix<T, X, std::int32_t> : public csr_matrix<cpu, T, typename detail::host_csr_index<X>::type> {
 public:
  using base_type = csr_matrix<cpu, T, typename detail::host_csr_index<X>::type>;
  using base_type::base_type;

  csr_matrix() = default;
  /// Takes over `m`'s arrays (an algorithm's result, say), without copying them. O(1).
  csr_matrix(base_type&& m) noexcept : base_type(std::move(m)) {}  // NOLINT: implicit, so that results convert
  csr_matrix& operator=(base_type&& m) noexcept {
    base_type::operator=(std::move(m));
    return *this;
  }
  /// Deep copy (see csr_matrix<cpu, T, I>::clone).
  [[nodiscard]] csr_matrix clone() const { return base_type::clone(); }
};

}  // namespace mgpu
