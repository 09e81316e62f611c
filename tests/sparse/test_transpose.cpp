// Specification of the host CSR transpose (mgpu/sparse/transpose.hpp), against a
// dense reference.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "mgpu/sparse/csr_matrix.hpp"
#include "mgpu/sparse/transpose.hpp"
#include "sparse_test_support.hpp"

using mgpu_test::host_csr;
using mgpu_test::to_vector;

namespace {

mgpu_test::dense transposed(mgpu_test::dense const& a) {
  mgpu_test::dense t(a.cols, a.rows);
  for (std::int64_t i = 0; i < a.rows; ++i) {
    for (std::int64_t j = 0; j < a.cols; ++j) t(j, i) = a(i, j);
  }
  return t;
}

template <class T, class I>
host_csr<T, I> csr_from_dense(mgpu_test::dense const& d) {
  auto const arrays = mgpu_test::csr_of<T, I>(d);
  return host_csr<T, I>(d.rows, d.cols, arrays.row_offsets, arrays.col_indices, arrays.values);
}

}  // namespace

TEMPLATE_TEST_CASE("transpose of a small matrix computed by hand", "[sparse][transpose]",
                   MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  // [[1 0 2]      [[1 0]
  //  [0 3 0]]  ->  [0 3]
  //                [2 0]]
  host_csr<T, I> const a(2, 3, std::vector<I>{0, 2, 3}, std::vector<I>{0, 2, 1},
                         std::vector<T>{1, 2, 3});
  auto const t = mgpu::transpose(a);
  CHECK(t.rows() == 3);
  CHECK(t.cols() == 2);
  CHECK(to_vector(t.row_offsets()) == std::vector<I>{0, 1, 2, 3});
  CHECK(to_vector(t.col_indices()) == std::vector<I>{0, 1, 0});
  CHECK(to_vector(t.values()) == std::vector<T>{1, 3, 2});
}

TEMPLATE_TEST_CASE("transpose of random matrices matches the dense transpose",
                   "[sparse][transpose]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  auto const seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  std::vector<std::pair<int, int>> const shapes{{0, 0}, {0, 5}, {5, 0},  {1, 7},   {7, 1},
                                                {1, 1}, {13, 9}, {9, 13}, {40, 60}, {64, 3}};
  for (auto const& [rows, cols] : shapes) {
    for (double const density : {0.0, 0.05, 0.3, 1.0}) {
      INFO(rows << " x " << cols << ", density " << density);
      auto const reference = mgpu_test::random_dense(rng, rows, cols, density);
      auto const a = csr_from_dense<T, I>(reference);
      auto const t = mgpu::transpose(a);
      CHECK(t.rows() == cols);
      CHECK(t.cols() == rows);
      CHECK(t.nnz() == a.nnz());
      CHECK(t.row_offsets().size() == static_cast<std::size_t>(cols) + 1);
      CHECK(mgpu_test::columns_strictly_increase(t.view()));
      CHECK(mgpu_test::to_dense(t.view()) == transposed(reference));
    }
  }
}

TEMPLATE_TEST_CASE("transposing twice gives back the same arrays", "[sparse][transpose]",
                   MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  auto const seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  auto const a = csr_from_dense<T, I>(mgpu_test::random_dense(rng, 17, 23, 0.2));
  auto const back = mgpu::transpose(mgpu::transpose(a));
  CHECK(back.rows() == a.rows());
  CHECK(back.cols() == a.cols());
  CHECK(to_vector(back.row_offsets()) == to_vector(a.row_offsets()));
  CHECK(to_vector(back.col_indices()) == to_vector(a.col_indices()));
  CHECK(to_vector(back.values()) == to_vector(a.values()));
}

TEMPLATE_TEST_CASE("transpose of a row block is the transpose of those rows",
                   "[sparse][transpose]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  auto const seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  auto const reference = mgpu_test::random_dense(rng, 12, 8, 0.3);
  auto const a = csr_from_dense<T, I>(reference);
  // Rows [4, 9): the view's offsets start at a nonzero position.
  mgpu_test::dense block(5, 8);
  for (std::int64_t i = 0; i < 5; ++i) {
    for (std::int64_t j = 0; j < 8; ++j) block(i, j) = reference(i + 4, j);
  }
  auto const t = mgpu::transpose(a.view().row_block(4, 9));
  CHECK(t.rows() == 8);
  CHECK(t.cols() == 5);
  CHECK(mgpu_test::columns_strictly_increase(t.view()));
  CHECK(mgpu_test::to_dense(t.view()) == transposed(block));
}
