// Specification of the nnz-balanced row partition (mgpu/sparse/partition.hpp).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "mgpu/core/error.hpp"
#include "mgpu/sparse/csr_matrix.hpp"
#include "mgpu/sparse/partition.hpp"
#include "sparse_test_support.hpp"

namespace {

using I = std::int32_t;
using matrix = mgpu::csr_matrix<mgpu::cpu, float, I>;

/// A rows x (max row length) matrix whose row r has `row_lengths[r]` entries.
matrix with_row_lengths(std::vector<I> const& row_lengths) {
  std::vector<I> offsets{0};
  std::vector<I> cols;
  I width = 1;
  for (I n : row_lengths) {
    for (I c = 0; c < n; ++c) cols.push_back(c);
    offsets.push_back(static_cast<I>(cols.size()));
    width = std::max(width, n);
  }
  std::vector<float> vals(cols.size(), 1.0f);
  return matrix(static_cast<std::int64_t>(row_lengths.size()), width, offsets, cols, vals);
}

}  // namespace

TEST_CASE("equal rows split into equal blocks", "[sparse][partition]") {
  auto const m = with_row_lengths({2, 2, 2, 2});  // offsets 0 2 4 6 8
  CHECK(mgpu::partition_rows_by_nnz(m.view(), 1) == std::vector<I>{0, 4});
  CHECK(mgpu::partition_rows_by_nnz(m.view(), 2) == std::vector<I>{0, 2, 4});
  CHECK(mgpu::partition_rows_by_nnz(m.view(), 4) == std::vector<I>{0, 1, 2, 3, 4});
  // Targets 8/3 = 2 and 16/3 = 5: the first offsets reaching them are at rows 1 and 3.
  CHECK(mgpu::partition_rows_by_nnz(m.view(), 3) == std::vector<I>{0, 1, 3, 4});
}

TEST_CASE("a dense row takes a block of its own and may leave an empty one",
          "[sparse][partition]") {
  auto const m = with_row_lengths({6, 1, 1, 1, 1});  // offsets 0 6 7 8 9 10
  // Target 5 is first reached at offset 6 (row 1).
  CHECK(mgpu::partition_rows_by_nnz(m.view(), 2) == std::vector<I>{0, 1, 5});
  // Targets 3 and 6 are both first reached at row 1: block 1 is empty.
  CHECK(mgpu::partition_rows_by_nnz(m.view(), 3) == std::vector<I>{0, 1, 1, 5});
}

TEST_CASE("reliability row 6: more parts than rows gives empty blocks",
          "[sparse][partition][reliability]") {
  auto const m = with_row_lengths({1, 1});  // offsets 0 1 2
  // Targets 2/4 = 0, 4/4 = 1, 6/4 = 1.
  auto const bounds = mgpu::partition_rows_by_nnz(m.view(), 4);
  CHECK(bounds == std::vector<I>{0, 0, 1, 1, 2});
  auto const empty_block = std::adjacent_find(bounds.begin(), bounds.end(),
                                            [](I a, I b) { return a == b; });
  CHECK(empty_block != bounds.end());
}

TEST_CASE("reliability row 6: a matrix without entries is split evenly by rows",
          "[sparse][partition][reliability]") {
  matrix const m(10, 3);
  CHECK(mgpu::partition_rows_by_nnz(m.view(), 3) == std::vector<I>{0, 3, 6, 10});
  CHECK(mgpu::partition_rows_by_nnz(m.view(), 4) == std::vector<I>{0, 2, 5, 7, 10});
}

TEST_CASE("reliability row 6: a matrix without rows gives empty blocks",
          "[sparse][partition][reliability]") {
  matrix const m(0, 5);
  CHECK(mgpu::partition_rows_by_nnz(m.view(), 1) == std::vector<I>{0, 0});
  CHECK(mgpu::partition_rows_by_nnz(m.view(), 3) == std::vector<I>{0, 0, 0, 0});
}

TEST_CASE("leading empty rows join the first block", "[sparse][partition]") {
  auto const m = with_row_lengths({0, 0, 2, 2});  // offsets 0 0 0 2 4
  // Target 2 is first reached at row 3.
  CHECK(mgpu::partition_rows_by_nnz(m.view(), 2) == std::vector<I>{0, 3, 4});
}

TEST_CASE("a row block view is partitioned relative to its first row", "[sparse][partition]") {
  auto const m = with_row_lengths({6, 1, 1, 1, 1});  // offsets 0 6 7 8 9 10
  // Rows 1..4 hold offsets 6 7 8 9 10: four rows of one entry each.
  auto const block = m.view().row_block(1, 5);
  CHECK(mgpu::partition_rows_by_nnz(block, 2) == std::vector<I>{0, 2, 4});
  CHECK(mgpu::partition_rows_by_nnz(block, 4) == std::vector<I>{0, 1, 2, 3, 4});
}

TEST_CASE("partitioning into zero parts is invalid_argument", "[sparse][partition]") {
  auto const m = with_row_lengths({1, 2});
  CHECK_THROWS_AS(mgpu::partition_rows_by_nnz(m.view(), 0), mgpu::invalid_argument);
}

TEMPLATE_TEST_CASE("random partitions cover every row once with nnz-balanced blocks",
                   "[sparse][partition]", std::int32_t, std::int64_t) {
  using J = TestType;
  auto const seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  for (int trial = 0; trial < 40; ++trial) {
    auto const rows = std::uniform_int_distribution<int>(0, 30)(rng);
    auto const cols = std::uniform_int_distribution<int>(1, 20)(rng);
    auto const density = std::uniform_real_distribution<double>(0.0, 0.6)(rng);
    auto const reference = mgpu_test::random_dense(rng, rows, cols, density);
    auto const arrays = mgpu_test::csr_of<double, J>(reference);
    mgpu::csr_matrix<mgpu::cpu, double, J> const m(rows, cols, arrays.row_offsets,
                                                   arrays.col_indices, arrays.values);
    std::int64_t const nnz = m.nnz();
    std::int64_t longest = 0;
    for (int r = 0; r < rows; ++r) longest = std::max<std::int64_t>(longest, m.view().row_nnz(r));

    for (std::size_t parts = 1; parts <= 5; ++parts) {
      INFO("trial " << trial << ": " << rows << " x " << cols << ", nnz " << nnz << ", parts "
                    << parts);
      auto const bounds = mgpu::partition_rows_by_nnz(m.view(), parts);
      REQUIRE(bounds.size() == parts + 1);
      CHECK(bounds.front() == 0);
      CHECK(bounds.back() == rows);
      CHECK(std::is_sorted(bounds.begin(), bounds.end()));
      for (std::size_t p = 0; p < parts; ++p) {
        std::int64_t const block_nnz =
            m.row_offsets()[static_cast<std::size_t>(bounds[p + 1])] -
            m.row_offsets()[static_cast<std::size_t>(bounds[p])];
        // block_nnz <= nnz / parts + longest, kept in integers.
        INFO("block " << p << " holds rows [" << bounds[p] << ", " << bounds[p + 1] << ") with "
                      << block_nnz << " entries");
        CHECK(block_nnz * static_cast<std::int64_t>(parts) <=
              nnz + longest * static_cast<std::int64_t>(parts));
      }
    }
  }
}
