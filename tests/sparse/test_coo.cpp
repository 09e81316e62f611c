// Specification of building CSR from COO triplets (mgpu/sparse/coo.hpp), following
// SciPy's coo_matrix.tocsr(): any order, duplicates summed.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "mgpu/core/error.hpp"
#include "mgpu/sparse/coo.hpp"
#include "sparse_test_support.hpp"

using Catch::Matchers::Contains;
using mgpu_test::message_of;
using mgpu_test::to_vector;

TEMPLATE_TEST_CASE("COO triplets in any order give the canonical CSR matrix", "[sparse][coo]",
                   MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  // [[0 2 0 1]
  //  [0 0 0 0]
  //  [3 0 4 0]]
  std::vector<I> const rows{2, 0, 2, 0};
  std::vector<I> const cols{2, 3, 0, 1};
  std::vector<T> const vals{4, 1, 3, 2};
  auto const m = mgpu::csr_from_coo<T, I>(3, 4, rows, cols, vals);
  CHECK(m.rows() == 3);
  CHECK(m.cols() == 4);
  CHECK(to_vector(m.row_offsets()) == std::vector<I>{0, 2, 2, 4});
  CHECK(to_vector(m.col_indices()) == std::vector<I>{1, 3, 0, 2});
  CHECK(to_vector(m.values()) == std::vector<T>{2, 1, 3, 4});
}

TEMPLATE_TEST_CASE("duplicate COO coordinates are summed", "[sparse][coo]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  // (1,1) appears three times, not adjacently; (0,0) twice.
  std::vector<I> const rows{1, 0, 1, 0, 1};
  std::vector<I> const cols{1, 0, 1, 0, 1};
  std::vector<T> const vals{1, 10, 2, 20, 4};
  auto const m = mgpu::csr_from_coo<T, I>(2, 2, rows, cols, vals);
  CHECK(m.nnz() == 2);
  CHECK(to_vector(m.row_offsets()) == std::vector<I>{0, 1, 2});
  CHECK(to_vector(m.col_indices()) == std::vector<I>{0, 1});
  CHECK(to_vector(m.values()) == std::vector<T>{30, 7});
}

TEMPLATE_TEST_CASE("random COO triplets with duplicates match a dense accumulation",
                   "[sparse][coo]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  auto const seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  for (int trial = 0; trial < 20; ++trial) {
    std::uniform_int_distribution<int> extent(0, 15);
    int const n_rows = extent(rng);
    int const n_cols = extent(rng);
    int const entries = n_rows * n_cols == 0 ? 0 : std::uniform_int_distribution<int>(0, 60)(rng);
    mgpu_test::dense expected(n_rows, n_cols);
    std::vector<I> rows;
    std::vector<I> cols;
    std::vector<T> vals;
    for (int e = 0; e < entries; ++e) {
      int const r = std::uniform_int_distribution<int>(0, n_rows - 1)(rng);
      int const c = std::uniform_int_distribution<int>(0, n_cols - 1)(rng);
      int const v = std::uniform_int_distribution<int>(-5, 5)(rng);
      rows.push_back(static_cast<I>(r));
      cols.push_back(static_cast<I>(c));
      vals.push_back(static_cast<T>(v));
      expected(r, c) += v;
    }
    INFO("trial " << trial << ": " << n_rows << " x " << n_cols << ", " << entries
                  << " triplets");
    auto const m = mgpu::csr_from_coo<T, I>(n_rows, n_cols, rows, cols, vals);
    CHECK(m.rows() == n_rows);
    CHECK(m.cols() == n_cols);
    CHECK(mgpu_test::columns_strictly_increase(m.view()));
    CHECK(mgpu_test::to_dense(m.view()) == expected);
  }
}

TEMPLATE_TEST_CASE("reliability row 3: a COO entry outside the shape is format_error naming it",
                   "[sparse][coo][reliability]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  std::vector<T> const vals{1, 1, 1};
  auto const build = [&](std::vector<I> const& rows, std::vector<I> const& cols) {
    return message_of<mgpu::format_error>(
        [&] { (void)mgpu::csr_from_coo<T, I>(3, 4, rows, cols, vals); });
  };
  CHECK_THAT(build({0, 1, 3}, {0, 1, 2}), Contains("entry 2"));   // row == rows
  CHECK_THAT(build({0, -1, 2}, {0, 1, 2}), Contains("entry 1"));  // negative row
  CHECK_THAT(build({0, 1, 2}, {4, 1, 2}), Contains("entry 0"));   // col == cols
  CHECK_THAT(build({0, 1, 2}, {0, 1, -7}), Contains("entry 2"));  // negative col
}

TEMPLATE_TEST_CASE("reliability row 1: COO arrays of different lengths are dimension_mismatch",
                   "[sparse][coo][reliability]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  auto const what = message_of<mgpu::dimension_mismatch>([] {
    (void)mgpu::csr_from_coo<T, I>(9, 9, std::vector<I>{0, 1, 2}, std::vector<I>{0, 1, 2, 3, 4},
                                   std::vector<T>{1, 1, 1, 1, 1, 1, 1});
  });
  CHECK_THAT(what, Contains("3"));
  CHECK_THAT(what, Contains("5"));
  CHECK_THAT(what, Contains("7"));
}

TEMPLATE_TEST_CASE("reliability row 6: COO without entries and empty shapes are valid",
                   "[sparse][coo][reliability]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  auto const zeros = mgpu::csr_from_coo<T, I>(3, 2, std::vector<I>{}, std::vector<I>{},
                                              std::vector<T>{});
  CHECK(zeros.nnz() == 0);
  CHECK(to_vector(zeros.row_offsets()) == std::vector<I>{0, 0, 0, 0});
  auto const wide = mgpu::csr_from_coo<T, I>(0, 4, std::vector<I>{}, std::vector<I>{},
                                             std::vector<T>{});
  CHECK(wide.rows() == 0);
  CHECK(wide.cols() == 4);
  CHECK(to_vector(wide.row_offsets()) == std::vector<I>{0});
  auto const tall = mgpu::csr_from_coo<T, I>(4, 0, std::vector<I>{}, std::vector<I>{},
                                             std::vector<T>{});
  CHECK(tall.rows() == 4);
  CHECK(tall.cols() == 0);
  CHECK(tall.nnz() == 0);
}

TEMPLATE_TEST_CASE("a negative COO shape is invalid_argument", "[sparse][coo]",
                   MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  CHECK_THROWS_AS((mgpu::csr_from_coo<T, I>(-2, 3, std::vector<I>{}, std::vector<I>{},
                                            std::vector<T>{})),
                  mgpu::invalid_argument);
}

TEST_CASE("reliability row 5: a COO shape beyond 32-bit indices is index_overflow",
          "[sparse][coo][reliability]") {
  std::int64_t const big = 3'000'000'000;
  auto const what = message_of<mgpu::index_overflow>([&] {
    (void)mgpu::csr_from_coo<float, std::int32_t>(big, 2, std::vector<std::int32_t>{},
                                                  std::vector<std::int32_t>{},
                                                  std::vector<float>{});
  });
  CHECK_THAT(what, Contains("3000000000"));
  CHECK_THROWS_AS((mgpu::csr_from_coo<float, std::int32_t>(2, big, std::vector<std::int32_t>{},
                                                           std::vector<std::int32_t>{},
                                                           std::vector<float>{})),
                  mgpu::index_overflow);
}

TEST_CASE("reliability row 5: COO with 64-bit indices addresses more than 2^31 columns",
          "[sparse][coo][reliability]") {
  std::int64_t const cols = 3'000'000'000;
  auto const m = mgpu::csr_from_coo<double, std::int64_t>(
      2, cols, std::vector<std::int64_t>{1, 0, 1}, std::vector<std::int64_t>{cols - 1, 5, 7},
      std::vector<double>{1, 2, 3});
  CHECK(m.cols() == cols);
  CHECK(to_vector(m.row_offsets()) == std::vector<std::int64_t>{0, 1, 3});
  CHECK(to_vector(m.col_indices()) == std::vector<std::int64_t>{5, 7, cols - 1});
  CHECK(to_vector(m.values()) == std::vector<double>{2, 3, 1});
}

TEST_CASE("reliability row 5: a row count too large to allocate offsets for is out_of_memory",
          "[sparse][coo][reliability]") {
  // Found by fuzzing: INT64_MAX rows with 64-bit indices used to escape as std::length_error.
  std::vector<std::int64_t> const none;
  std::vector<double> const no_values;
  CHECK_THROWS_AS((mgpu::csr_from_coo<double, std::int64_t>(INT64_MAX, 1, none, none, no_values)),
                  mgpu::out_of_memory);
  CHECK_THROWS_AS((mgpu::csr_matrix<mgpu::cpu, double, std::int64_t>(INT64_MAX, 1)), mgpu::out_of_memory);
}
