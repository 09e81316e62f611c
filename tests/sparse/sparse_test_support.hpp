// Helpers shared by the sparse tests: a dense reference, random matrices built from
// it by the test itself (not by the code under test), and exception messages.
#pragma once

#include "../test_support.hpp"

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "mgpu/sparse/csr_matrix.hpp"
#include "mgpu/sparse/csr_view.hpp"

namespace mgpu_test {

/// Index and value types a test case runs with.
template <class Value, class Index>
struct csr_types {
  using T = Value;
  using I = Index;
};
using f32_i32 = csr_types<float, std::int32_t>;
using f64_i32 = csr_types<double, std::int32_t>;
using f32_i64 = csr_types<float, std::int64_t>;
using f64_i64 = csr_types<double, std::int64_t>;

/// Row-major dense matrix of doubles, the reference every sparse result is compared to.
struct dense {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::vector<double> a;

  dense(std::int64_t r, std::int64_t c)
      : rows(r), cols(c), a(static_cast<std::size_t>(r * c), 0.0) {}
  double& operator()(std::int64_t i, std::int64_t j) {
    return a[static_cast<std::size_t>(i * cols + j)];
  }
  double operator()(std::int64_t i, std::int64_t j) const {
    return a[static_cast<std::size_t>(i * cols + j)];
  }
  friend bool operator==(dense const&, dense const&) = default;
};

/// The dense matrix a CSR view stores (entries of a row added up).
template <class T, class I>
dense to_dense(mgpu::csr_view<T, I> m) {
  dense d(m.rows, m.cols);
  for (I r = 0; r < m.rows; ++r) {
    for (I p = m.row_offsets[r]; p < m.row_offsets[r + 1]; ++p) {
      d(r, m.col_indices[p]) += static_cast<double>(m.values[p]);
    }
  }
  return d;
}

/// True if every row's column indices strictly increase (sorted, no duplicates).
template <class T, class I>
bool columns_strictly_increase(mgpu::csr_view<T, I> m) {
  for (I r = 0; r < m.rows; ++r) {
    for (I p = m.row_offsets[r] + 1; p < m.row_offsets[r + 1]; ++p) {
      if (m.col_indices[p] <= m.col_indices[p - 1]) return false;
    }
  }
  return true;
}

/// A random rows x cols matrix with about `density` of its entries nonzero; values are
/// small integers so that sums are exact in float.
inline dense random_dense(std::mt19937& rng, std::int64_t rows, std::int64_t cols,
                          double density) {
  dense d(rows, cols);
  std::bernoulli_distribution present(density);
  std::uniform_int_distribution<int> value(-9, 9);
  for (auto& x : d.a) {
    if (present(rng)) {
      int v = 0;
      while (v == 0) v = value(rng);
      x = v;
    }
  }
  return d;
}

/// Canonical CSR arrays of a dense matrix, built by a plain scan.
template <class T, class I>
struct csr_arrays {
  std::vector<I> row_offsets;
  std::vector<I> col_indices;
  std::vector<T> values;
};

template <class T, class I>
csr_arrays<T, I> csr_of(dense const& d) {
  csr_arrays<T, I> out;
  out.row_offsets.push_back(0);
  for (std::int64_t i = 0; i < d.rows; ++i) {
    for (std::int64_t j = 0; j < d.cols; ++j) {
      if (d(i, j) != 0.0) {
        out.col_indices.push_back(static_cast<I>(j));
        out.values.push_back(static_cast<T>(d(i, j)));
      }
    }
    out.row_offsets.push_back(static_cast<I>(out.col_indices.size()));
  }
  return out;
}

template <class T>
std::vector<std::remove_const_t<T>> to_vector(std::span<T> s) {
  return {s.begin(), s.end()};
}

template <class T, class I>
using host_csr = mgpu::csr_matrix<mgpu::cpu, T, I>;

}  // namespace mgpu_test

/// The value/index type pairs every CSR test runs with.
#define MGPU_TEST_CSR_TYPES \
  mgpu_test::f32_i32, mgpu_test::f64_i32, mgpu_test::f32_i64, mgpu_test::f64_i64
