// Host checks of the per-row logic the GPU kernels run (backend/cuda/functors.hpp).
// The GPU runs this same constexpr code, so its ranking rules are tested here without a
// GPU; the sorts around it are CUB's.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <numeric>
#include <random>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "mgpu/backend/cuda/batching.hpp"
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

TEST_CASE("the two-pass k-selection of k-NN tiles equals a full stable sort of each row, ties by column",
          "[cuda][functors][knn]") {
  // The reference is what the GPU leaf did before: a stable sort of each row by score,
  // descending, over columns in ascending order, then the first k.
  std::mt19937 gen(7);
  std::uniform_int_distribution<int> small(0, 5);  // few distinct values: many ties
  for (auto [rows, cols, chunk, k] : std::vector<std::array<std::int64_t, 4>>{
           {3, 1, 1, 1}, {4, 17, 5, 3}, {2, 64, 64, 10}, {5, 100, 7, 100}, {3, 50, 8, 64}, {6, 333, 32, 16}}) {
    INFO("rows " << rows << " cols " << cols << " chunk " << chunk << " k " << k);
    std::vector<float> scores(static_cast<std::size_t>(rows * cols));
    for (auto& v : scores) v = static_cast<float>(small(gen)) * 0.5f - 1.0f;
    std::int64_t const chunks = (cols + chunk - 1) / chunk;
    auto const kk = static_cast<std::size_t>(k);
    std::vector<float> chunk_scores(static_cast<std::size_t>(rows * chunks) * kk);
    std::vector<std::int32_t> chunk_columns(chunk_scores.size());
    std::vector<std::int32_t> chunk_counts(static_cast<std::size_t>(rows * chunks));
    mgpu::backend::cuda::select_chunk_topk<float> const first{scores.data(), cols, chunk, chunks, k,
                                                              chunk_scores.data(), chunk_columns.data(),
                                                              chunk_counts.data()};
    for (std::int64_t i = 0; i < rows * chunks; ++i) first(i);
    std::vector<float> top(static_cast<std::size_t>(rows) * kk);
    std::vector<std::int32_t> top_columns(top.size());
    mgpu::backend::cuda::merge_chunk_topk<float> const second{chunk_scores.data(), chunk_columns.data(),
                                                              chunk_counts.data(), chunks, k, top.data(),
                                                              top_columns.data()};
    for (std::int64_t r = 0; r < rows; ++r) second(r);

    auto const kept = static_cast<std::size_t>(std::min(k, cols));
    for (std::int64_t r = 0; r < rows; ++r) {
      std::vector<std::int32_t> order(static_cast<std::size_t>(cols));
      std::iota(order.begin(), order.end(), 0);
      auto const* row = scores.data() + r * cols;
      std::stable_sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) { return row[a] > row[b]; });
      for (std::size_t j = 0; j < kept; ++j) {
        CHECK(top_columns[static_cast<std::size_t>(r) * kk + j] == order[j]);
        CHECK(top[static_cast<std::size_t>(r) * kk + j] == row[order[j]]);
      }
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

// Issue 15, items 1 and 7: how the GPU leaves cut their work (backend/cuda/batching.hpp).
namespace {

namespace bc = mgpu::backend::cuda;

struct batch_log {
  std::vector<std::pair<std::int64_t, std::int64_t>> tried;
  std::vector<std::pair<std::int64_t, std::int64_t>> done;
};

// Runs halving_batches over [0, rows) with batches of at most `start` rows; `fail(b, e)`
// throws for the batches that do not fit.
template <class Fail>
batch_log walk(std::int64_t rows, std::int64_t start, Fail fail) {
  batch_log log;
  bc::halving_batches(
      0, rows, start, [](std::int64_t begin, std::int64_t max_rows) { return begin + max_rows; },
      [&](std::int64_t b, std::int64_t e) {
        log.tried.emplace_back(b, e);
        fail(b, e);
        log.done.emplace_back(b, e);
      });
  return log;
}

using range = std::pair<std::int64_t, std::int64_t>;

}  // namespace

TEST_CASE("a batch that runs out of memory is halved and retried until it fits", "[cuda][batching]") {
  auto const log = walk(10, 8, [](std::int64_t b, std::int64_t e) {
    if (e - b > 3) throw mgpu::out_of_memory(1000, 10, "test");
  });
  // 8 fails, 4 fails, 2 fits; the limit stays at 2 afterwards.
  CHECK(log.tried == std::vector<range>{{0, 8}, {0, 4}, {0, 2}, {2, 4}, {4, 6}, {6, 8}, {8, 10}});
  CHECK(log.done == std::vector<range>{{0, 2}, {2, 4}, {4, 6}, {6, 8}, {8, 10}});
}

TEST_CASE("index_overflow and cuSPARSE's INSUFFICIENT_RESOURCES halve a batch like out_of_memory",
          "[cuda][batching]") {
  auto const overflow = walk(4, 4, [](std::int64_t b, std::int64_t e) {
    if (e - b > 2) throw mgpu::index_overflow("too many scores");
  });
  CHECK(overflow.done == std::vector<range>{{0, 2}, {2, 4}});
  auto const resources = walk(4, 4, [](std::int64_t b, std::int64_t e) {
    if (e - b > 1) {
      throw mgpu::cusparse_error("CUSPARSE_STATUS_INSUFFICIENT_RESOURCES", "cusparseSpGEMM_compute", "x.cuh", 1);
    }
  });
  CHECK(resources.done == std::vector<range>{{0, 1}, {1, 2}, {2, 3}, {3, 4}});
  CHECK(bc::is_resource_shortage("CUSPARSE_STATUS_ALLOC_FAILED"));
  CHECK(bc::is_resource_shortage("CUBLAS_STATUS_ALLOC_FAILED"));
  CHECK(bc::is_resource_shortage("cudaErrorMemoryAllocation"));
  CHECK_FALSE(bc::is_resource_shortage("CUSPARSE_STATUS_INVALID_VALUE"));
}

TEST_CASE("other failures, and a one-row batch that does not fit, propagate", "[cuda][batching]") {
  CHECK_THROWS_AS(walk(4, 4,
                       [](std::int64_t, std::int64_t) {
                         throw mgpu::cusparse_error("CUSPARSE_STATUS_INVALID_VALUE", "call", "x.cuh", 1);
                       }),
                  mgpu::cusparse_error);
  CHECK_THROWS_AS(walk(4, 4, [](std::int64_t, std::int64_t) { throw mgpu::out_of_memory(1, 0, "test"); }),
                  mgpu::out_of_memory);
}

TEST_CASE("query products are the sums of the shard's document frequencies over each row's terms",
          "[cuda][batching]") {
  // Shard: 4 terms x documents with df = 2, 0, 3, 1 (term offsets 0, 2, 2, 5, 6).
  std::vector<std::int32_t> const term_offsets{0, 2, 2, 5, 6};
  // Queries: row 0 = terms {0, 2}, row 1 = {1} (df 0: shares nothing), row 2 = {2, 3}.
  std::vector<std::int32_t> const offsets{0, 2, 3, 5};
  std::vector<std::int32_t> const columns{0, 2, 1, 2, 3};
  auto const prefix =
      bc::query_products<std::int32_t>(offsets.data(), columns.data(), 0, 3, std::span<std::int32_t const>(term_offsets));
  CHECK(prefix == std::vector<std::int64_t>{0, 5, 5, 9});
  auto const tail =
      bc::query_products<std::int32_t>(offsets.data(), columns.data(), 1, 2, std::span<std::int32_t const>(term_offsets));
  CHECK(tail == std::vector<std::int64_t>{0, 0});  // an empty product: no SpGEMM is run
}

TEST_CASE("a cosine batch keeps rows x documents and its products within 32 bits and its bytes within budget",
          "[cuda][batching]") {
  constexpr std::int64_t int32_max = 2147483647;
  // 2^30 documents: two rows could form 2^31 scores, one more than INT32_MAX.
  std::vector<std::int64_t> const few{0, 1, 2, 3, 4};
  bc::cosine_batch_limits const wide{std::int64_t{1} << 30, 10, 4, std::size_t{1} << 40};
  CHECK(bc::cosine_batch_end(few, 0, 0, 4, 1000, wide) == 1);
  // 1000 documents: INT32_MAX / 1000 = 2147483 rows at most.
  std::vector<std::int64_t> many(3000001);
  bc::cosine_batch_limits const narrow{1000, 10, 4, std::size_t{1} << 50};
  CHECK(bc::cosine_batch_end(many, 0, 0, 3000000, int32_max, narrow) == 2147483);
  // Products: rows of 2^30 products each; two rows would exceed INT32_MAX.
  std::vector<std::int64_t> heavy{0, std::int64_t{1} << 30, std::int64_t{2} << 30, std::int64_t{3} << 30};
  bc::cosine_batch_limits const big{1, 1, 4, std::size_t{1} << 50};
  CHECK(bc::cosine_batch_end(heavy, 0, 0, 3, 100, big) == 1);
  // Bytes: 10 products a row, 100 documents, k = 2, float. A row of 10 products costs
  // 3·10·8 (scores) + 2·10·8 (SpGEMM) + (2·8 + 64) = 480 bytes; 4 rows = 1920.
  std::vector<std::int64_t> even(11);
  for (std::size_t i = 0; i < even.size(); ++i) even[i] = 10 * static_cast<std::int64_t>(i);
  CHECK(bc::cosine_batch_bytes(4, 40, {100, 2, 4, 0}) == 1920);
  CHECK(bc::cosine_batch_end(even, 0, 0, 10, 100, {100, 2, 4, 1920}) == 4);
  CHECK(bc::cosine_batch_end(even, 0, 0, 10, 100, {100, 2, 4, 1919}) == 3);
  CHECK(bc::cosine_batch_end(even, 0, 8, 10, 100, {100, 2, 4, 1920}) == 10);  // the last rows
  CHECK(bc::cosine_batch_end(even, 0, 0, 10, 100, {100, 2, 4, 1}) == 1);      // one row is always tried
  CHECK(bc::cosine_batch_end(even, 0, 0, 10, 2, {100, 2, 4, 1920}) == 2);     // the halved limit
}
