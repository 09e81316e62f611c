// mgpu/dense/dense_matrix.hpp — row-major dense matrices and views.
//
// Element (i, j) is at data[i * ld + j], ld >= cols (the leading dimension). The
// owning `dense_matrix` is move-only and allocates with ld == cols; views are
// trivially copyable and may describe sub-blocks with ld > cols.
//
// The memory space is part of the type: `dense_view<T>` (Kind = cpu) points into host
// memory, `dense_view<T, gpu>` into one GPU's (from dense_matrix<gpu>::view(),
// mgpu/backend/cuda/dense_matrix.hpp); element access exists for host views only.
// `dense_matrix<gpu, T>` lives in the CUDA backend (mgpu/cuda.hpp).
//
// Host code may leave the kind out: `dense_matrix<float>` is a complete type derived
// from `dense_matrix<cpu, float>` and adding nothing to it, accepted wherever
// dense_matrix<cpu, T> is, into which a dense_matrix<cpu, T> (an algorithm's result)
// moves without a copy. Elements given as a moved-in std::vector are adopted, not copied.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "mgpu/core/buffer.hpp"
#include "mgpu/core/device.hpp"
#include "mgpu/core/error.hpp"

namespace mgpu {

template <class T, class Kind = cpu>
struct dense_view {
  using value_type = T;
  using kind = Kind;

  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t ld = 0;
  T* data = nullptr;

  T& operator()(std::int64_t i, std::int64_t j) const noexcept
    requires std::same_as<Kind, cpu>
  {
    return data[i * ld + j];
  }
  [[nodiscard]] std::span<T> row(std::int64_t i) const noexcept
    requires std::same_as<Kind, cpu>
  {
    return {data + i * ld, static_cast<std::size_t>(cols)};
  }
  /// The same elements, read-only.
  [[nodiscard]] dense_view<T const, Kind> as_const() const noexcept { return {rows, cols, ld, data}; }
  /// A writable view converts to a read-only one, as T* converts to T const*.
  /// (A template, so that no conversion of dense_view<T const> to its own type is ever
  /// declared: nvcc warns about that even when a constraint removes it.)
  template <class U>
    requires(std::is_same_v<U, T const> && !std::is_const_v<T>)
  operator dense_view<U, Kind>() const noexcept {  // NOLINT: implicit, like the pointer
    return {rows, cols, ld, data};
  }
};

/// A host dense operand, read-only: any dense_view (writable or not), or a host
/// dense_matrix. Lets algorithms take matrices and views interchangeably.
template <class T, class Kind>
[[nodiscard]] dense_view<T const, Kind> const_view(dense_view<T, Kind> v) noexcept {
  return {v.rows, v.cols, v.ld, v.data};
}

/// A host vector as an n x 1 dense view (for the collectives and resident products).
template <class T>
[[nodiscard]] dense_view<T> column_view(std::span<T> v) noexcept {
  return {static_cast<std::int64_t>(v.size()), 1, 1, v.data()};
}

template <class Kind, class T = float>
class dense_matrix;

template <class T>
[[nodiscard]] dense_view<T const> const_view(dense_matrix<cpu, T> const& m) noexcept;

/// Host dense matrix, row-major, ld == cols. Elements start uninitialised unless a
/// fill value is given.
template <class T>
class dense_matrix<cpu, T> {
 public:
  using kind = cpu;
  using value_type = T;

  dense_matrix() = default;
  /// @throws invalid_argument (negative shape), out_of_memory.
  dense_matrix(std::int64_t rows, std::int64_t cols) : rows_(rows), cols_(cols) {
    MGPU_EXPECTS(rows >= 0 && cols >= 0, "matrix shape must be non-negative, got ", rows, " x ",
                 cols);
    if (cols > 0 && rows > static_cast<std::int64_t>(SIZE_MAX / sizeof(T)) / cols) {
      throw index_overflow(detail::message("dense matrix ", rows, " x ", cols, " is too large"));
    }
    data_ = buffer<T, cpu>(static_cast<std::size_t>(rows * cols));
  }
  dense_matrix(std::int64_t rows, std::int64_t cols, T fill) : dense_matrix(rows, cols) {
    std::fill(data_.data(), data_.data() + data_.size(), fill);
  }
  /// A rows x cols matrix from its elements in row-major order (copied). O(rows·cols).
  /// @throws invalid_argument (negative shape), dimension_mismatch (values.size() is
  ///         not rows·cols), out_of_memory.
  dense_matrix(std::int64_t rows, std::int64_t cols, std::span<T const> values) : dense_matrix(rows, cols) {
    if (values.size() != data_.size()) {
      throw dimension_mismatch(detail::message("dense_matrix: ", values.size(), " values for a ", rows,
                                               " x ", cols, " matrix"));
    }
    std::copy(values.begin(), values.end(), data_.data());
  }
  /// Overload for a vector of elements (copied).
  dense_matrix(std::int64_t rows, std::int64_t cols, std::vector<T> const& values)
      : dense_matrix(rows, cols, std::span<T const>(values)) {}
  /// A rows x cols matrix that takes over a moved-in vector's (or a braced list's)
  /// storage, row-major, without copying it: data() is values.data() before the call.
  /// O(1). @throws invalid_argument (negative shape), dimension_mismatch (values.size()
  ///         is not rows·cols); the vector is left as it was when it throws.
  dense_matrix(std::int64_t rows, std::int64_t cols, std::vector<T>&& values) : rows_(rows), cols_(cols) {
    MGPU_EXPECTS(rows >= 0 && cols >= 0, "matrix shape must be non-negative, got ", rows, " x ",
                 cols);
    auto const n = values.size();
    auto const c = static_cast<std::size_t>(cols);
    if (c == 0 ? n != 0 : n % c != 0 || n / c != static_cast<std::size_t>(rows)) {  // rows·cols may overflow
      throw dimension_mismatch(detail::message("dense_matrix: ", values.size(), " values for a ", rows,
                                               " x ", cols, " matrix"));
    }
    data_ = buffer<T, cpu>(std::move(values));
  }

  [[nodiscard]] std::int64_t rows() const noexcept { return rows_; }
  [[nodiscard]] std::int64_t cols() const noexcept { return cols_; }
  [[nodiscard]] std::int64_t ld() const noexcept { return cols_; }
  [[nodiscard]] T* data() noexcept { return data_.data(); }
  [[nodiscard]] T const* data() const noexcept { return data_.data(); }
  T& operator()(std::int64_t i, std::int64_t j) noexcept { return data_[static_cast<std::size_t>(i * cols_ + j)]; }
  T const& operator()(std::int64_t i, std::int64_t j) const noexcept {
    return data_[static_cast<std::size_t>(i * cols_ + j)];
  }
  [[nodiscard]] dense_view<T> view() noexcept { return {rows_, cols_, cols_, data_.data()}; }
  [[nodiscard]] dense_view<T const> view() const noexcept { return {rows_, cols_, cols_, data_.data()}; }
  operator dense_view<T const>() const noexcept { return view(); }  // NOLINT: views convert implicitly

 private:
  std::int64_t rows_ = 0;
  std::int64_t cols_ = 0;
  buffer<T, cpu> data_;
};

template <class T>
dense_view<T const> const_view(dense_matrix<cpu, T> const& m) noexcept {
  return m.view();
}

/// `dense_matrix<T>`: the host matrix for code that names no kind (see the file
/// comment); dense_matrix<float> is dense_matrix<cpu, float> as a class derived from it
/// with the same constructors and members.
template <class T>
  requires std::is_arithmetic_v<T>
class dense_matrix<T, float> : public dense_matrix<cpu, T> {
 public:
  using base_type = dense_matrix<cpu, T>;
  using base_type::base_type;

  dense_matrix() = default;
  /// Takes over `m`'s elements (an algorithm's result, say), without copying them. O(1).
  dense_matrix(base_type&& m) noexcept : base_type(std::move(m)) {}  // NOLINT: implicit, so that results convert
  dense_matrix& operator=(base_type&& m) noexcept {
    base_type::operator=(std::move(m));
    return *this;
  }
};

}  // namespace mgpu
