// Host checks of the per-row logic the GPU kernels run (backend/cuda/functors.hpp).
// The GPU runs this same constexpr code, so its ranking rules are tested here without a
// GPU; the sorts around it are CUB's.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "mgpu/backend/cuda/functors.hpp"
#include "mgpu/detail/topk_heap.hpp"

namespace {

using entry = mgpu::detail::scored<float, std::int64_t>;

struct selected {
  std::vector<std::int32_t> columns;
  std::vector<float> scores;
  std::vector<std::int32_t> counts;
};

// Sorts each row as the GPU's two segmented sorts leave it (score descending, ties by
// column ascending) and runs select_sorted_row on every row.
selected select(std::vector<std::int32_t> const& offsets, std::vector<std::int32_t> columns,
                std::vector<float> scores, std::int64_t first, std::int64_t query_first,
                bool exclude_self, std::int64_t k) {
  auto const rows = static_cast<std::int32_t>(offsets.size() - 1);
  for (std::int32_t r = 0; r < rows; ++r) {
    std::vector<std::pair<float, std::int32_t>> row;
    for (auto p = offsets[static_cast<std::size_t>(r)]; p < offsets[static_cast<std::size_t>(r) + 1]; ++p) {
      row.emplace_back(scores[static_cast<std::size_t>(p)], columns[static_cast<std::size_t>(p)]);
    }
    std::sort(row.begin(), row.end(), [](auto const& a, auto const& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    });
    for (std::size_t j = 0; j < row.size(); ++j) {
      auto const at = static_cast<std::size_t>(offsets[static_cast<std::size_t>(r)]) + j;
      scores[at] = row[j].first;
      columns[at] = row[j].second;
    }
  }
  selected out;
  out.columns.assign(static_cast<std::size_t>(rows * k), -1);
  out.scores.assign(static_cast<std::size_t>(rows * k), 0.0f);
  out.counts.assign(static_cast<std::size_t>(rows), -1);
  mgpu::backend::cuda::select_sorted_row<float> const f{
      offsets.data(), columns.data(), scores.data(), first, query_first, exclude_self, k,
      out.columns.data(), out.scores.data(), out.counts.data()};
  for (std::int32_t r = 0; r < rows; ++r) f(r);
  return out;
}

}  // namespace

TEST_CASE("gpu top-k selection keeps the k best nonzero scores, ties toward the smaller index",
          "[cuda][functors]") {
  // One row: scores by column 0..5 = 0.5, 0, 0.9, 0.5, -0.2, 0.9; k = 3.
  // By hand: 0.9 (col 2), 0.9 (col 5), 0.5 (col 0); 0 is never reported.
  auto const out = select({0, 6}, {3, 1, 5, 0, 4, 2}, {0.5f, 0.0f, 0.9f, 0.5f, -0.2f, 0.9f}, 0, 0,
                          false, 3);
  REQUIRE(out.counts[0] == 3);
  CHECK(out.columns == std::vector<std::int32_t>{2, 5, 0});
  CHECK(out.scores == std::vector<float>{0.9f, 0.9f, 0.5f});
}

TEST_CASE("gpu top-k selection lists fewer than k when fewer scores are nonzero", "[cuda][functors]") {
  // Row 0: one nonzero (col 1: -0.3) and two zeros; row 1 empty. k = 4.
  auto const out = select({0, 3, 3}, {0, 1, 2}, {0.0f, -0.3f, 0.0f}, 10, 0, false, 4);
  CHECK(out.counts == std::vector<std::int32_t>{1, 0});
  CHECK(out.columns[0] == 1);
  CHECK(out.scores[0] == -0.3f);
}

TEST_CASE("gpu top-k selection skips the query's own document with exclude_self", "[cuda][functors]") {
  // Shard starts at corpus row 4; query rows are global 5 and 6. Row 0 (query 5) has
  // its own document (local 1 = global 5) as best; it is skipped.
  std::vector<std::int32_t> const offsets{0, 3, 5};
  std::vector<std::int32_t> const columns{0, 1, 2, 1, 2};
  std::vector<float> const scores{0.2f, 1.0f, 0.4f, 0.7f, 1.0f};
  auto const out = select(offsets, columns, scores, 4, 5, true, 2);
  CHECK(out.counts == std::vector<std::int32_t>{2, 1});
  CHECK(out.columns[0] == 2);  // 0.4
  CHECK(out.columns[1] == 0);  // 0.2
  CHECK(out.columns[2] == 1);  // query 6 = local 2 is excluded; 0.7 remains
  auto const kept = select(offsets, columns, scores, 4, 5, false, 2);
  CHECK(kept.columns[0] == 1);
  CHECK(kept.columns[2] == 2);
}

TEST_CASE("gpu top-k selection agrees with the host's topk_heap on random rows", "[cuda][functors]") {
  // Scores from a small set of values, so that ties are common.
  std::uint32_t state = 12345;
  auto next = [&] {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
  };
  for (int trial = 0; trial < 200; ++trial) {
    auto const n = static_cast<std::int32_t>(next() % 40);
    auto const k = static_cast<std::int64_t>(1 + next() % 8);
    std::vector<std::int32_t> columns;
    std::vector<float> scores;
    for (std::int32_t c = 0; c < n; ++c) {
      if (next() % 3 == 0) continue;
      columns.push_back(c);
      scores.push_back(static_cast<float>(static_cast<int>(next() % 7) - 2) / 4.0f);
    }
    std::int64_t const first = 100;
    mgpu::detail::topk_heap<float, std::int64_t> heap(static_cast<std::size_t>(k));
    for (std::size_t i = 0; i < columns.size(); ++i) {
      if (scores[i] != 0.0f) heap.push(entry{scores[i], first + columns[i]});
    }
    std::vector<entry> expected;
    heap.drain_sorted(std::back_inserter(expected));
    auto const out = select({0, static_cast<std::int32_t>(columns.size())}, columns, scores, first, 0,
                            false, k);
    REQUIRE(out.counts[0] == static_cast<std::int32_t>(expected.size()));
    for (std::size_t j = 0; j < expected.size(); ++j) {
      CHECK(first + out.columns[j] == expected[j].index);
      CHECK(out.scores[j] == expected[j].score);
    }
  }
}

TEST_CASE("scale_row multiplies each row by its factor", "[cuda][functors]") {
  std::vector<std::int32_t> const offsets{0, 2, 2, 3};
  std::vector<double> const scale{0.5, 7.0, -2.0};
  std::vector<double> values{2.0, 4.0, 3.0};
  mgpu::backend::cuda::scale_row<double, std::int32_t> const f{offsets.data(), scale.data(), values.data()};
  for (std::int32_t r = 0; r < 3; ++r) f(r);
  CHECK(values == std::vector<double>{1.0, 2.0, -6.0});
}
