// Specification of the owning CSR matrix and its view (mgpu/sparse/csr_matrix.hpp,
// mgpu/sparse/csr_view.hpp): the checks of RELIABILITY.md rows 1-7 on construction,
// canonicalisation, and the accessors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <sys/mman.h>

#include "mgpu/core/error.hpp"
#include "mgpu/sparse/csr_matrix.hpp"
#include "sparse_test_support.hpp"

using Catch::Matchers::Contains;
using mgpu_test::message_of;
using mgpu_test::host_csr;
using mgpu_test::to_vector;

namespace {

/// The message of the exception of type E that building a rows x cols matrix from
/// these arrays throws.
template <class E, class T, class I>
std::string construction_error(std::int64_t rows, std::int64_t cols, std::vector<I> offsets,
                               std::vector<I> columns, std::vector<T> values) {
  return message_of<E>([&] { host_csr<T, I> m(rows, cols, offsets, columns, values); });
}

}  // namespace

TEMPLATE_TEST_CASE("a canonical CSR matrix keeps its arrays as given", "[sparse][csr]",
                   MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  // [[1 0 2 0]
  //  [0 0 0 0]
  //  [0 3 0 4]]
  host_csr<T, I> const m(3, 4, std::vector<I>{0, 2, 2, 4}, std::vector<I>{0, 2, 1, 3},
                         std::vector<T>{1, 2, 3, 4});
  CHECK(m.rows() == 3);
  CHECK(m.cols() == 4);
  CHECK(m.nnz() == 4);
  CHECK(to_vector(m.row_offsets()) == std::vector<I>{0, 2, 2, 4});
  CHECK(to_vector(m.col_indices()) == std::vector<I>{0, 2, 1, 3});
  CHECK(to_vector(m.values()) == std::vector<T>{1, 2, 3, 4});
}

TEMPLATE_TEST_CASE("a CSR view exposes rows of the matrix", "[sparse][csr]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  host_csr<T, I> const m(3, 4, std::vector<I>{0, 2, 2, 4}, std::vector<I>{0, 2, 1, 3},
                         std::vector<T>{1, 2, 3, 4});
  mgpu::csr_view<T, I> const v = m;
  CHECK(v.rows == 3);
  CHECK(v.cols == 4);
  CHECK(v.nnz() == 4);
  CHECK(v.row_nnz(0) == 2);
  CHECK(v.row_nnz(1) == 0);
  CHECK(to_vector(v.row_columns(2)) == std::vector<I>{1, 3});
  CHECK(to_vector(v.row_values(2)) == std::vector<T>{3, 4});
  CHECK(v.row_columns(1).empty());
}

TEMPLATE_TEST_CASE("a row block is a view of the same arrays", "[sparse][csr]",
                   MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  // [[1 0 2 0]
  //  [0 5 0 0]
  //  [0 3 0 4]
  //  [6 0 0 0]]
  host_csr<T, I> const m(4, 4, std::vector<I>{0, 2, 3, 5, 6}, std::vector<I>{0, 2, 1, 1, 3, 0},
                         std::vector<T>{1, 2, 5, 3, 4, 6});
  auto const block = m.view().row_block(1, 3);
  CHECK(block.rows == 2);
  CHECK(block.cols == 4);
  CHECK(block.nnz() == 3);
  CHECK(block.row_offsets[0] == 2);  // sliced views keep absolute offsets
  CHECK(to_vector(block.row_columns(0)) == std::vector<I>{1});
  CHECK(to_vector(block.row_values(1)) == std::vector<T>{3, 4});
  CHECK(block.values == m.values().data());

  mgpu_test::dense expected(2, 4);
  expected(0, 1) = 5;
  expected(1, 1) = 3;
  expected(1, 3) = 4;
  CHECK(mgpu_test::to_dense(block) == expected);

  auto const empty = m.view().row_block(2, 2);
  CHECK(empty.rows == 0);
  CHECK(empty.nnz() == 0);
  CHECK(mgpu_test::to_dense(m.view().row_block(0, 4)) == mgpu_test::to_dense(m.view()));
}

TEMPLATE_TEST_CASE("reliability row 1: row_offsets of the wrong length is dimension_mismatch",
                   "[sparse][csr][reliability]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  // 3 rows need 4 offsets; 6 are given.
  auto const what = construction_error<mgpu::dimension_mismatch, T, I>(
      3, 4, {0, 1, 1, 1, 1, 1}, {0}, {1});
  CHECK_THAT(what, Contains("6"));
  CHECK_THAT(what, Contains("4"));
  // Too short as well.
  auto const short_what =
      construction_error<mgpu::dimension_mismatch, T, I>(3, 4, {0, 1}, {0}, {1});
  CHECK_THAT(short_what, Contains("2"));
  CHECK_THAT(short_what, Contains("4"));
}

TEMPLATE_TEST_CASE("reliability row 1: col_indices and values of different lengths is "
                   "dimension_mismatch",
                   "[sparse][csr][reliability]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  auto const what = construction_error<mgpu::dimension_mismatch, T, I>(
      2, 9, {0, 3, 7}, {0, 1, 2, 3, 4, 5, 6}, {1, 1, 1, 1, 1});
  CHECK_THAT(what, Contains("7"));
  CHECK_THAT(what, Contains("5"));
}

TEMPLATE_TEST_CASE("reliability row 2: row_offsets not starting at 0 is format_error",
                   "[sparse][csr][reliability]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  auto const what =
      construction_error<mgpu::format_error, T, I>(2, 3, {1, 2, 2}, {0, 1}, {1, 1});
  CHECK_THAT(what, Contains("row_offsets[0]"));
}

TEMPLATE_TEST_CASE("reliability row 2: a last offset other than nnz is format_error",
                   "[sparse][csr][reliability]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  // Ends short of nnz = 3: the last offset, row_offsets[2], is named.
  auto const short_what =
      construction_error<mgpu::format_error, T, I>(2, 3, {0, 1, 2}, {0, 1, 2}, {1, 1, 1});
  CHECK_THAT(short_what, Contains("row_offsets[2]"));
  CHECK_THAT(short_what, Contains("3"));
  // Runs past nnz = 2 at the end of row 1: that row is named, nothing is read past the end.
  auto const long_what =
      construction_error<mgpu::format_error, T, I>(3, 3, {0, 1, 5, 5}, {0, 1}, {1, 1});
  CHECK_THAT(long_what, Contains("row 1"));
}

TEMPLATE_TEST_CASE("reliability row 2: decreasing or negative offsets are format_error",
                   "[sparse][csr][reliability]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  auto const decreasing = construction_error<mgpu::format_error, T, I>(
      3, 3, {0, 2, 1, 3}, {0, 1, 2}, {1, 1, 1});
  CHECK_THAT(decreasing, Contains("row 1"));
  auto const negative = construction_error<mgpu::format_error, T, I>(
      3, 3, {0, 1, -1, 2}, {0, 1}, {1, 1});
  CHECK_THAT(negative, Contains("row 1"));
  auto const negative_first =
      construction_error<mgpu::format_error, T, I>(1, 3, {-1, 0}, {}, {});
  CHECK_THAT(negative_first, Contains("row_offsets[0]"));
}

TEMPLATE_TEST_CASE("reliability row 3: a column index below 0 or not below cols is format_error "
                   "naming its position",
                   "[sparse][csr][reliability]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  auto const negative = construction_error<mgpu::format_error, T, I>(
      2, 3, {0, 2, 3}, {0, -1, 2}, {1, 1, 1});
  CHECK_THAT(negative, Contains("position 1"));
  CHECK_THAT(negative, Contains("-1"));
  auto const too_large = construction_error<mgpu::format_error, T, I>(
      2, 3, {0, 1, 3}, {0, 1, 3}, {1, 1, 1});
  CHECK_THAT(too_large, Contains("position 2"));
  CHECK_THAT(too_large, Contains("row 1"));
}

TEMPLATE_TEST_CASE("reliability row 3: 1-based column indices read as 0-based are format_error",
                   "[sparse][csr][reliability]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  // [[a 0 b]
  //  [0 c 0]] written with 1-based columns: the 3 in row 0 is one past the last column.
  auto const what = construction_error<mgpu::format_error, T, I>(
      2, 3, {0, 2, 3}, {1, 3, 2}, {1, 2, 3});
  CHECK_THAT(what, Contains("position 1"));
  CHECK_THAT(what, Contains("3"));
}

TEMPLATE_TEST_CASE("reliability row 4: unsorted columns are sorted with their values",
                   "[sparse][csr][reliability]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  host_csr<T, I> const m(2, 3, std::vector<I>{0, 3, 5}, std::vector<I>{2, 0, 1, 1, 0},
                         std::vector<T>{20, 0.5, 10, 7, 6});
  CHECK(to_vector(m.row_offsets()) == std::vector<I>{0, 3, 5});
  CHECK(to_vector(m.col_indices()) == std::vector<I>{0, 1, 2, 0, 1});
  CHECK(to_vector(m.values()) == std::vector<T>{0.5, 10, 20, 6, 7});
}

TEMPLATE_TEST_CASE("reliability row 4: duplicate columns are summed and the inputs left "
                   "unchanged",
                   "[sparse][csr][reliability]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  // Row 0: (3,1) (1,2) (3,4); row 1 empty; row 2: (2,1) (0,10) (2,100) (2,1000).
  std::vector<I> const offsets{0, 3, 3, 7};
  std::vector<I> const columns{3, 1, 3, 2, 0, 2, 2};
  std::vector<T> const values{1, 2, 4, 1, 10, 100, 1000};
  host_csr<T, I> const m(3, 4, offsets, columns, values);
  CHECK(m.nnz() == 4);
  CHECK(to_vector(m.row_offsets()) == std::vector<I>{0, 2, 2, 4});
  CHECK(to_vector(m.col_indices()) == std::vector<I>{1, 3, 0, 2});
  CHECK(to_vector(m.values()) == std::vector<T>{2, 5, 10, 1101});
  CHECK(offsets == std::vector<I>{0, 3, 3, 7});
  CHECK(columns == std::vector<I>{3, 1, 3, 2, 0, 2, 2});
  CHECK(values == std::vector<T>{1, 2, 4, 1, 10, 100, 1000});
}

TEMPLATE_TEST_CASE("reliability row 4: shuffled random rows canonicalise to the dense "
                   "reference",
                   "[sparse][csr][reliability]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  auto const seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  for (int trial = 0; trial < 20; ++trial) {
    std::uniform_int_distribution<int> extent(0, 12);
    auto const rows = extent(rng);
    auto const cols = extent(rng);
    auto const reference = mgpu_test::random_dense(rng, rows, cols, 0.4);
    auto arrays = mgpu_test::csr_of<T, I>(reference);
    // Split every entry into two halves (a duplicate), then shuffle each row.
    std::vector<I> offsets{0};
    std::vector<I> columns;
    std::vector<T> values;
    for (int r = 0; r < rows; ++r) {
      std::vector<std::pair<I, T>> row;
      for (auto p = arrays.row_offsets[static_cast<std::size_t>(r)];
           p < arrays.row_offsets[static_cast<std::size_t>(r) + 1]; ++p) {
        auto const c = arrays.col_indices[static_cast<std::size_t>(p)];
        auto const v = arrays.values[static_cast<std::size_t>(p)];
        row.emplace_back(c, v - 1);
        row.emplace_back(c, T{1});
      }
      std::shuffle(row.begin(), row.end(), rng);
      for (auto const& [c, v] : row) {
        columns.push_back(c);
        values.push_back(v);
      }
      offsets.push_back(static_cast<I>(columns.size()));
    }
    INFO("trial " << trial << ": " << rows << " x " << cols);
    host_csr<T, I> const m(rows, cols, offsets, columns, values);
    CHECK(mgpu_test::columns_strictly_increase(m.view()));
    CHECK(mgpu_test::to_dense(m.view()) == reference);
  }
}

TEST_CASE("reliability row 5: sizes beyond 32-bit indices are index_overflow",
          "[sparse][csr][reliability]") {
  using m32 = host_csr<float, std::int32_t>;
  std::int64_t const big = 3'000'000'000;
  auto const too_many_rows = message_of<mgpu::index_overflow>(
      [&] { m32 m(big, 2, std::vector<std::int32_t>{0}, {}, {}); });
  CHECK_THAT(too_many_rows, Contains("3000000000"));
  auto const too_many_cols = message_of<mgpu::index_overflow>(
      [&] { m32 m(2, big, std::vector<std::int32_t>{0, 0, 0}, {}, {}); });
  CHECK_THAT(too_many_cols, Contains("3000000000"));
  // The empty-matrix constructor checks before allocating 3e9 + 1 offsets.
  CHECK_THROWS_AS(m32(big, 2), mgpu::index_overflow);
}

TEST_CASE("reliability row 5: the largest 32-bit extent is accepted and one more is not",
          "[sparse][csr][reliability]") {
  using m32 = host_csr<float, std::int32_t>;
  std::int32_t const max = std::numeric_limits<std::int32_t>::max();
  m32 const widest(1, max, std::vector<std::int32_t>{0, 1}, std::vector<std::int32_t>{max - 1},
                   std::vector<float>{2});
  CHECK(widest.cols() == max);
  CHECK(widest.col_indices()[0] == max - 1);
  CHECK_THROWS_AS(m32(1, std::int64_t{max} + 1, std::vector<std::int32_t>{0, 0}, {}, {}),
                  mgpu::index_overflow);
}

TEST_CASE("reliability row 5: more than 2^31 - 1 stored entries with 32-bit indices is "
          "index_overflow before anything is read",
          "[sparse][csr][reliability]") {
  // Reserve (never touch) address space for 2^31 indices and values, so the arrays are
  // valid ranges without using 16 GB of memory.
  std::size_t const nnz = std::size_t{1} << 31;
  std::size_t const bytes = nnz * sizeof(std::int32_t);
  void* reserved = ::mmap(nullptr, 2 * bytes, PROT_NONE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reserved == MAP_FAILED) {
    WARN("cannot reserve " << 2 * bytes << " bytes of address space; not checked");
    return;
  }
  auto const* base = static_cast<unsigned char const*>(reserved);
  std::span<std::int32_t const> columns(reinterpret_cast<std::int32_t const*>(base), nnz);
  std::span<float const> values(reinterpret_cast<float const*>(base + bytes), nnz);
  std::vector<std::int32_t> const offsets{0, 0};
  auto const what = message_of<mgpu::index_overflow>([&] {
    host_csr<float, std::int32_t> m(1, 1, std::span<std::int32_t const>(offsets), columns,
                                    values);
  });
  ::munmap(reserved, 2 * bytes);
  CHECK_THAT(what, Contains("2147483648"));
}

TEMPLATE_TEST_CASE("reliability row 5: 64-bit indices hold more than 2^31 columns",
                   "[sparse][csr][reliability]", float, double) {
  using T = TestType;
  std::int64_t const cols = 3'000'000'000;
  host_csr<T, std::int64_t> const m(2, cols, std::vector<std::int64_t>{0, 1, 2},
                                    std::vector<std::int64_t>{cols - 1, 0}, std::vector<T>{7, 8});
  CHECK(m.rows() == 2);
  CHECK(m.cols() == cols);
  CHECK(m.nnz() == 2);
  CHECK(to_vector(m.col_indices()) == std::vector<std::int64_t>{cols - 1, 0});
  CHECK(to_vector(m.values()) == std::vector<T>{7, 8});
  // And the column check still applies at that scale.
  CHECK_THROWS_AS((host_csr<T, std::int64_t>(1, cols, std::vector<std::int64_t>{0, 1},
                                             std::vector<std::int64_t>{cols}, std::vector<T>{1})),
                  mgpu::format_error);
}

TEMPLATE_TEST_CASE("reliability row 6: 0 x n and n x 0 and 0 x 0 matrices are valid",
                   "[sparse][csr][reliability]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  host_csr<T, I> const wide(0, 5, std::vector<I>{0}, {}, {});
  CHECK(wide.rows() == 0);
  CHECK(wide.cols() == 5);
  CHECK(wide.nnz() == 0);
  CHECK(to_vector(wide.row_offsets()) == std::vector<I>{0});
  CHECK(wide.view().nnz() == 0);

  host_csr<T, I> const tall(4, 0, std::vector<I>{0, 0, 0, 0, 0}, {}, {});
  CHECK(tall.rows() == 4);
  CHECK(tall.cols() == 0);
  CHECK(tall.nnz() == 0);
  // An n x 0 matrix has no column any entry could be in.
  CHECK_THROWS_AS((host_csr<T, I>(1, 0, std::vector<I>{0, 1}, std::vector<I>{0},
                                  std::vector<T>{1})),
                  mgpu::format_error);

  host_csr<T, I> const none;
  CHECK(none.rows() == 0);
  CHECK(none.cols() == 0);
  CHECK(none.nnz() == 0);
  CHECK(to_vector(none.row_offsets()) == std::vector<I>{0});
}

TEMPLATE_TEST_CASE("reliability row 6: matrices without entries and with empty rows are valid",
                   "[sparse][csr][reliability]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  host_csr<T, I> const zeros(4, 3);
  CHECK(zeros.rows() == 4);
  CHECK(zeros.cols() == 3);
  CHECK(zeros.nnz() == 0);
  CHECK(to_vector(zeros.row_offsets()) == std::vector<I>{0, 0, 0, 0, 0});
  CHECK(zeros.col_indices().empty());
  CHECK(zeros.values().empty());

  host_csr<T, I> const gaps(5, 2, std::vector<I>{0, 0, 1, 1, 1, 2}, std::vector<I>{1, 0},
                            std::vector<T>{3, 4});
  mgpu_test::dense expected(5, 2);
  expected(1, 1) = 3;
  expected(4, 0) = 4;
  CHECK(mgpu_test::to_dense(gaps.view()) == expected);
}

TEMPLATE_TEST_CASE("a negative shape is invalid_argument", "[sparse][csr]",
                   MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  CHECK_THROWS_AS((host_csr<T, I>(-1, 3, std::vector<I>{0}, {}, {})), mgpu::invalid_argument);
  CHECK_THROWS_AS((host_csr<T, I>(2, -3, std::vector<I>{0, 0, 0}, {}, {})),
                  mgpu::invalid_argument);
  CHECK_THROWS_AS((host_csr<T, I>(-1, 3)), mgpu::invalid_argument);
}

TEMPLATE_TEST_CASE("reliability row 7: NaN and infinities are stored as given",
                   "[sparse][csr][reliability]", float, double) {
  using T = TestType;
  T const nan = std::numeric_limits<T>::quiet_NaN();
  T const inf = std::numeric_limits<T>::infinity();
  host_csr<T, std::int32_t> const m(2, 3, std::vector<std::int32_t>{0, 2, 3},
                                    std::vector<std::int32_t>{0, 2, 1},
                                    std::vector<T>{nan, inf, -inf});
  REQUIRE(m.nnz() == 3);
  CHECK(std::isnan(m.values()[0]));
  CHECK(m.values()[1] == inf);
  CHECK(m.values()[2] == -inf);
  // Summing a duplicate propagates NaN as IEEE 754 arithmetic does.
  host_csr<T, std::int32_t> const summed(1, 2, std::vector<std::int32_t>{0, 3},
                                         std::vector<std::int32_t>{1, 0, 1},
                                         std::vector<T>{nan, 5, 1});
  REQUIRE(summed.nnz() == 2);
  CHECK(summed.values()[0] == 5);
  CHECK(std::isnan(summed.values()[1]));
}

TEMPLATE_TEST_CASE("clone makes an independent deep copy", "[sparse][csr]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  host_csr<T, I> const m(2, 3, std::vector<I>{0, 2, 3}, std::vector<I>{0, 2, 1},
                         std::vector<T>{1, 2, 3});
  auto copy = m.clone();
  CHECK(copy.rows() == 2);
  CHECK(copy.cols() == 3);
  CHECK(to_vector(copy.row_offsets()) == to_vector(m.row_offsets()));
  CHECK(to_vector(copy.col_indices()) == to_vector(m.col_indices()));
  CHECK(copy.values().data() != m.values().data());
  copy.values()[0] = 100;
  CHECK(m.values()[0] == 1);
  CHECK(copy.values()[0] == 100);
}

TEMPLATE_TEST_CASE("values may be changed in place", "[sparse][csr]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  host_csr<T, I> m(1, 2, std::vector<I>{0, 2}, std::vector<I>{0, 1}, std::vector<T>{1, 2});
  for (auto& v : m.values()) v *= 3;
  CHECK(to_vector(m.values()) == std::vector<T>{3, 6});
  CHECK(mgpu_test::to_dense(m.view())(0, 1) == 6.0);
}

TEMPLATE_TEST_CASE("adopt_canonical takes ownership of the buffers without copying",
                   "[sparse][csr]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  std::vector<I> const offsets{0, 1, 3};
  std::vector<I> const columns{2, 0, 1};
  std::vector<T> const values{5, 6, 7};
  mgpu::buffer<I, mgpu::cpu> o{std::span<I const>(offsets)};
  mgpu::buffer<I, mgpu::cpu> c{std::span<I const>(columns)};
  mgpu::buffer<T, mgpu::cpu> v{std::span<T const>(values)};
  T const* storage = v.data();
  auto const m = host_csr<T, I>::adopt_canonical(2, 3, std::move(o), std::move(c), std::move(v));
  CHECK(m.rows() == 2);
  CHECK(m.cols() == 3);
  CHECK(m.nnz() == 3);
  CHECK(m.values().data() == storage);
  CHECK(to_vector(m.row_offsets()) == offsets);
  CHECK(to_vector(m.col_indices()) == columns);
  CHECK(to_vector(m.values()) == values);
}

TEMPLATE_TEST_CASE("a moved CSR matrix keeps its contents", "[sparse][csr]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  host_csr<T, I> a(2, 2, std::vector<I>{0, 1, 2}, std::vector<I>{1, 0}, std::vector<T>{1, 2});
  host_csr<T, I> b = std::move(a);
  CHECK(b.rows() == 2);
  CHECK(to_vector(b.col_indices()) == std::vector<I>{1, 0});
  host_csr<T, I> c;
  c = std::move(b);
  CHECK(to_vector(c.values()) == std::vector<T>{1, 2});
}
