// Specification of mgpu::cosine_index: the same results as the one-shot cosine_topk,
// shards built once (transfer counter), add(), threshold searches against a dense
// double-precision reference, k = 0, save/load and the rejection of damaged files.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <mgpu/mgpu.hpp>

#include "../test_support.hpp"
#include "cosine_test_support.hpp"

namespace {

using policy_t = mgpu::execution_policy<mgpu::cpu>;
using cosine_test::from_dense;
using cosine_test::matrix;
using cosine_test::ref_pair;
using cosine_test::require_matches;
using cosine_test::all_scores;
using index_t = mgpu::cosine_index<mgpu::cpu, float, std::int32_t>;
using cosine_test::dense;

// Values in [-1, 1) with about one in ten negative (negative_share = 0: non-negative).
dense random_dense(std::mt19937& rng, int rows, int cols, double density, double negative_share = 0.1) {
  std::uniform_real_distribution<float> value(0.0f, 1.0f);
  std::bernoulli_distribution keep(density);
  std::bernoulli_distribution negative(negative_share);
  dense a(static_cast<std::size_t>(rows), std::vector<float>(static_cast<std::size_t>(cols), 0.0f));
  for (auto& row : a)
    for (auto& v : row)
      if (keep(rng)) v = negative(rng) ? -value(rng) : value(rng) + 0.01f;
  return a;
}

// Text-like rows: a few columns in almost every row with small values, most rare, so
// the host kernel's pruning (impact tiers, early completion) is exercised.
dense text_like(std::mt19937& rng, int rows, int cols) {
  dense a(static_cast<std::size_t>(rows), std::vector<float>(static_cast<std::size_t>(cols), 0.0f));
  std::uniform_real_distribution<float> value(0.05f, 1.0f);
  for (auto& row : a) {
    for (int c = 0; c < cols; ++c) {
      double const p = std::min(0.9, 3.0 / (c + 1));
      if (std::bernoulli_distribution(p)(rng)) row[static_cast<std::size_t>(c)] = static_cast<float>(1.0 - p) * value(rng) + 0.01f;
    }
  }
  return a;
}

// The reference answer of a threshold search: scores >= threshold, the first k (k = 0: all).
std::vector<std::vector<ref_pair>> filtered(std::vector<std::vector<ref_pair>> all, double threshold, std::size_t k) {
  for (auto& row : all) {
    row.erase(std::remove_if(row.begin(), row.end(), [&](ref_pair const& p) { return p.score < threshold; }),
              row.end());
    if (k > 0 && row.size() > k) row.resize(k);
  }
  return all;
}

// A threshold between two reference scores that are at least 1e-3 apart, near the given
// quantile of all nonzero scores, so float round-off cannot move a score across it.
double threshold_in_gap(std::vector<std::vector<ref_pair>> const& all, double quantile) {
  std::vector<double> scores;
  for (auto const& row : all)
    for (auto const& p : row) scores.push_back(p.score);
  std::sort(scores.begin(), scores.end());
  REQUIRE(scores.size() > 10);
  for (auto i = static_cast<std::size_t>(quantile * static_cast<double>(scores.size())); i + 1 < scores.size(); ++i) {
    if (scores[i + 1] - scores[i] > 1e-3) return (scores[i] + scores[i + 1]) / 2;
  }
  FAIL("no gap in the reference scores");
  return 0;
}

void require_same(mgpu::topk_result<float> const& a, mgpu::topk_result<float> const& b) {
  CHECK(a.k == b.k);
  CHECK(a.candidates == b.candidates);
  CHECK(a.row_offsets == b.row_offsets);
  CHECK(a.ids == b.ids);
  CHECK(a.scores == b.scores);
}

}  // namespace

TEST_CASE("cosine_index: search gives bitwise the one-shot cosine_topk's result on cpu and cpu:3",
          "[cosine][cosine_index]") {
  std::mt19937 rng(31);
  auto const text = text_like(rng, 500, 120);
  auto const mixed = random_dense(rng, 300, 40, 0.2);  // negative values: no pruning
  for (auto const* data : {&text, &mixed}) {
    auto const cols = static_cast<std::int32_t>((*data)[0].size());
    auto const corpus = from_dense(*data, cols);
    auto const queries = from_dense(random_dense(rng, 50, cols, 0.15, data == &text ? 0.0 : 0.1), cols);
    for (auto devices : {"cpu", "cpu:3"}) {
      bool const is_text = data == &text;
      INFO(devices << (is_text ? ", text-like" : ", with negative values"));
      policy_t const policy(devices);
      index_t const index(policy, corpus);
      for (std::int64_t k : {1, 7, 1000}) {
        require_same(index.search(queries, k), mgpu::cosine_topk(policy, queries, corpus, k));
        // All pairs: the one-shot excludes the self match by default, the index when asked.
        require_same(index.search(corpus, k, {.exclude_self = true}), mgpu::cosine_topk(policy, corpus, k));
      }
      // And cpu:3 gives what cpu gives.
      require_same(index.search(corpus, 5, {.exclude_self = true}), mgpu::cosine_topk(policy_t("cpu"), corpus, 5));
    }
  }
}

TEST_CASE("cosine_index: three searches move nothing, the shards are moved and built once",
          "[cosine][cosine_index]") {
  std::mt19937 rng(32);
  auto const data = text_like(rng, 300, 80);
  auto const corpus = from_dense(data, 80);
  policy_t const policy("cpu:3");
  auto& transfers = policy.devices().transfers();
  transfers.reset();
  index_t const index(policy, corpus);
  // Each device's block of rows goes host -> device once as CSR: (rows_d + 1 + nnz_d)
  // 4-byte offsets and columns plus nnz_d 4-byte values; summed over the three devices.
  auto const nnz = static_cast<std::uint64_t>(corpus.nnz());
  std::uint64_t const built = (300 + 3 + nnz) * 4 + nnz * 4;
  CHECK(transfers.total() == built);
  CHECK(transfers.sent(mgpu::host_endpoint) == built);
  for (int d = 0; d < 3; ++d) CHECK(transfers.bytes(mgpu::host_endpoint, d) > 0);
  auto const first = index.search(corpus, 5);
  auto const second = index.search(corpus, 5);
  auto const third = index.search(corpus, 5, 0.2);
  CHECK(transfers.total() == built);
  require_same(first, second);
  // The one-shot call builds (and moves) the shards on every call.
  (void)mgpu::cosine_topk(policy, corpus, corpus, 5);
  CHECK(transfers.total() == 2 * built);
}

TEST_CASE("cosine_index: the caller's matrix may be released after the index is built", "[cosine][cosine_index]") {
  std::mt19937 rng(33);
  auto const data = text_like(rng, 200, 60);
  std::optional<index_t> index;
  {
    auto const corpus = from_dense(data, 60);
    index.emplace(policy_t("cpu:2"), corpus);
  }
  require_matches(index->search(from_dense(data, 60), 4, {.exclude_self = true}),
                  filtered(all_scores(data, data, true), -2.0, 4));
}

TEST_CASE("cosine_index: rows added in two parts give bitwise the index built at once", "[cosine][cosine_index]") {
  std::mt19937 rng(34);
  auto const data = text_like(rng, 400, 90);
  dense const part1(data.begin(), data.begin() + 150);
  dense const part2(data.begin() + 150, data.end());
  auto const all = from_dense(data, 90);
  auto const queries = from_dense(random_dense(rng, 40, 90, 0.1, 0.0), 90);
  for (auto devices : {"cpu", "cpu:2"}) {
    INFO(devices);
    policy_t const policy(devices);
    index_t const once(policy, all);
    index_t twice(policy, from_dense(part1, 90));
    twice.add(from_dense(part2, 90));
    CHECK(twice.rows() == 400);
    CHECK(twice.nnz() == once.nnz());
    CHECK(twice.segments() == 2);
    require_same(twice.search(queries, 10), once.search(queries, 10));
    require_same(twice.search(all, 3, {.exclude_self = true}), once.search(all, 3, {.exclude_self = true}));
    require_same(twice.search(queries, 0, 0.3), once.search(queries, 0, 0.3));
    // An empty index filled by add() only.
    index_t empty(policy, 90);
    CHECK(empty.search(queries, 3).size() == 0);
    empty.add(all);
    require_same(empty.search(queries, 10), once.search(queries, 10));
  }
}

TEST_CASE("cosine_index: threshold searches equal a dense double reference filtered by score",
          "[cosine][cosine_index]") {
  auto const seed = GENERATE(41u, 42u, 43u);
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  auto const text = text_like(rng, 400, 70);
  auto const mixed = random_dense(rng, 200, 30, 0.25);
  for (auto const* data : {&text, &mixed}) {
    bool const is_text = data == &text;
    INFO((is_text ? "text-like (pruned)" : "with negative values"));
    auto const cols = static_cast<std::int32_t>((*data)[0].size());
    auto const m = from_dense(*data, cols);
    auto const reference = all_scores(*data, *data, true);
    for (double quantile : {0.5, 0.9, 0.99}) {
      double const threshold = threshold_in_gap(reference, quantile);
      INFO("threshold " << threshold);
      for (auto devices : {"cpu", "cpu:3"}) {
        INFO(devices);
        index_t const index(policy_t(devices), m);
        for (std::size_t k : {1u, 5u, 0u}) {
          INFO("k " << k);
          auto const got = index.search(m, static_cast<std::int64_t>(k), threshold, {.exclude_self = true});
          CHECK(got.k == static_cast<std::int64_t>(k));
          CHECK(got.candidates == m.rows());
          require_matches(got, filtered(reference, threshold, k));
          // The one-shot form takes the same threshold.
          require_same(mgpu::cosine_topk(policy_t(devices), m, static_cast<std::int64_t>(k),
                                         {.threshold = threshold}),
                       got);
        }
      }
    }
  }
}

TEST_CASE("cosine_index: a threshold equal to an exact score keeps it, the next float above drops it",
          "[cosine][cosine_index]") {
  // Query e0 against the all-ones row of 4 columns: 1 x (1/2) = 0.5 exactly; of 16
  // columns: 1/4 exactly; against e0 itself: 1. By hand.
  dense corpus(3, std::vector<float>(16, 0.0f));
  std::fill(corpus[0].begin(), corpus[0].begin() + 4, 1.0f);
  std::fill(corpus[1].begin(), corpus[1].end(), 1.0f);
  corpus[2][0] = 3.0f;
  dense query(1, std::vector<float>(16, 0.0f));
  query[0][0] = 2.0f;
  for (auto devices : {"cpu", "cpu:2"}) {
    index_t const index(policy_t(devices), from_dense(corpus, 16));
    auto const q = from_dense(query, 16);
    auto const at_half = index.search(q, 0, 0.5);
    CHECK(std::vector<std::int64_t>(at_half.ids.begin(), at_half.ids.end()) == std::vector<std::int64_t>{2, 0});
    CHECK(at_half.scores == std::vector<float>{1.0f, 0.5f});
    auto const above_half = index.search(q, 0, std::nextafter(0.5, 1.0));
    CHECK(std::vector<std::int64_t>(above_half.ids.begin(), above_half.ids.end()) == std::vector<std::int64_t>{2});
    auto const quarter = index.search(q, 2, 0.25);
    CHECK(std::vector<std::int64_t>(quarter.ids.begin(), quarter.ids.end()) == std::vector<std::int64_t>{2, 0});
    auto const every = index.search(q, 0, 0.25);
    CHECK(every.scores == std::vector<float>{1.0f, 0.5f, 0.25f});
    CHECK(every.k == 0);
    // A threshold between two floats: exactly the scores >= it as real numbers.
    CHECK(index.search(q, 0, 0.25 + 1e-12).size() == 2);
  }
}

TEST_CASE("cosine_index: k = 0 needs a threshold, bad arguments are rejected", "[cosine][cosine_index][reliability]") {
  auto const m = from_dense({{1, 0}, {1, 1}}, 2);
  index_t const index(policy_t("cpu"), m);
  CHECK_THROWS_AS(index.search(m, 0), mgpu::invalid_argument);
  CHECK_THROWS_AS(index.search(m, -1, 0.5), mgpu::invalid_argument);
  CHECK_THROWS_AS(index.search(m, 1, std::numeric_limits<double>::quiet_NaN()), mgpu::invalid_argument);
  CHECK_THROWS_AS(index.search(m, 1, std::numeric_limits<double>::infinity()), mgpu::invalid_argument);
  CHECK_THROWS_AS(mgpu::cosine_topk(policy_t("cpu"), m, 0), mgpu::invalid_argument);
  CHECK_THROWS_AS(index.search(from_dense({{1, 0, 1}}, 3), 1), mgpu::dimension_mismatch);
  index_t growing(policy_t("cpu"), m);
  CHECK_THROWS_AS(growing.add(from_dense({{1, 0, 1}}, 3)), mgpu::dimension_mismatch);
  auto const nan = from_dense({{1, std::numeric_limits<float>::quiet_NaN()}}, 2);
  CHECK_THROWS_WITH(growing.add(nan), Catch::Matchers::Contains("row 0, column 1"));
  CHECK(growing.rows() == 2);  // unchanged
  CHECK_THROWS_AS(index.search(nan, 1), mgpu::invalid_argument);
}

TEST_CASE("cosine_index: the progress callback reports queries after every batch", "[cosine][cosine_index]") {
  std::mt19937 rng(35);
  auto const m = from_dense(random_dense(rng, 10, 5, 0.5), 5);
  index_t const index(policy_t("cpu:2"), m);
  for (std::int64_t k : {2, 0}) {
    std::vector<std::int64_t> seen;
    mgpu::cosine_topk_options opts{.query_batch = 4};
    opts.progress = [&](std::int64_t done, std::int64_t total) {
      CHECK(total == 10);
      seen.push_back(done);
    };
    (void)index.search(m, k, 0.1, opts);
    CHECK(seen == std::vector<std::int64_t>{4, 8, 10});
  }
}

TEST_CASE("cosine_index: save and load give bitwise the same searches, on any number of devices",
          "[cosine][cosine_index][io]") {
  mgpu_test::temp_dir dir;
  std::mt19937 rng(36);
  auto const data = text_like(rng, 300, 70);
  auto const queries = from_dense(random_dense(rng, 30, 70, 0.1, 0.0), 70);
  index_t saved(policy_t("cpu:2"), from_dense(dense(data.begin(), data.begin() + 100), 70));
  saved.add(from_dense(dense(data.begin() + 100, data.end()), 70));
  saved.save(dir / "index.mgpu");
  for (auto devices : {"cpu", "cpu:3"}) {
    INFO(devices);
    auto const loaded = index_t::load(policy_t(devices), dir / "index.mgpu");
    CHECK(loaded.rows() == 300);
    CHECK(loaded.cols() == 70);
    CHECK(loaded.nnz() == saved.nnz());
    require_same(loaded.search(queries, 8), saved.search(queries, 8));
    require_same(loaded.search(queries, 0, 0.25), saved.search(queries, 0, 0.25));
  }
  // Saving the loaded index writes the same bytes.
  index_t::load(policy_t("cpu:3"), dir / "index.mgpu").save(dir / "again.mgpu");
  std::ifstream a(dir / "index.mgpu", std::ios::binary), b(dir / "again.mgpu", std::ios::binary);
  std::vector<char> const file(std::istreambuf_iterator<char>(a), {});
  CHECK(file == std::vector<char>(std::istreambuf_iterator<char>(b), {}));
  // save(std::ostream&) writes the same bytes as save(path).
  std::ostringstream stream;
  saved.save(stream);
  CHECK(stream.str() == std::string(file.begin(), file.end()));

  // double values, 64-bit indices.
  using wide = mgpu::cosine_index<mgpu::cpu, double, std::int64_t>;
  auto const narrow = from_dense(data, 70);
  std::vector<std::int64_t> off(narrow.row_offsets().begin(), narrow.row_offsets().end());
  std::vector<std::int64_t> idx(narrow.col_indices().begin(), narrow.col_indices().end());
  std::vector<double> val(narrow.values().begin(), narrow.values().end());
  mgpu::csr_matrix<mgpu::cpu, double, std::int64_t> const m64(300, 70, off, idx, val);
  wide const w(policy_t("cpu"), m64);
  w.save(dir / "wide.mgpu");
  auto const w2 = wide::load(policy_t("cpu:2"), dir / "wide.mgpu");
  auto const r1 = w.search(m64, 4);
  auto const r2 = w2.search(m64, 4);
  CHECK(r1.ids == r2.ids);
  CHECK(r1.scores == r2.scores);
  // Element types are checked: a float/int32 index is not a double/int64 one.
  CHECK_THROWS_AS(wide::load(policy_t("cpu"), dir / "index.mgpu"), mgpu::file_format_error);
}

TEST_CASE("cosine_index: truncated, corrupted and newer files are rejected with file_format_error",
          "[cosine][cosine_index][io][reliability]") {
  mgpu_test::temp_dir dir;
  std::mt19937 rng(37);
  index_t const index(policy_t("cpu"), from_dense(text_like(rng, 50, 20), 20));
  auto const good = dir / "index.mgpu";
  index.save(good);
  std::ifstream in(good, std::ios::binary);
  std::vector<char> const bytes{std::istreambuf_iterator<char>(in), {}};
  auto const write = [&](char const* name, std::vector<char> const& content) {
    auto const path = dir / name;
    std::ofstream(path, std::ios::binary).write(content.data(), static_cast<std::streamsize>(content.size()));
    return path;
  };
  for (std::size_t cut : {std::size_t{0}, std::size_t{10}, bytes.size() / 2, bytes.size() - 1}) {
    INFO("truncated to " << cut << " bytes");
    auto const path = write("cut.mgpu", std::vector<char>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(cut)));
    CHECK_THROWS_AS(index_t::load(policy_t("cpu"), path), mgpu::file_format_error);
  }
  for (std::size_t at : {std::size_t{5}, std::size_t{30}, bytes.size() / 2, bytes.size() - 3}) {
    INFO("byte " << at << " flipped");
    auto flipped = bytes;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x10);
    auto const path = write("flipped.mgpu", flipped);
    CHECK_THROWS_AS(index_t::load(policy_t("cpu"), path), mgpu::file_format_error);
  }
  // A cosine_index of a newer version, written by the container itself: rejected by name.
  auto const newer = dir / "newer.mgpu";
  mgpu::write_binary_file(newer, "cosine_index", index_t::file_version + 1,
                          [](mgpu::binary_writer& w) { w.write_value<std::int64_t>("rows", 0); });
  CHECK_THROWS_WITH(index_t::load(policy_t("cpu"), newer), Catch::Matchers::Contains("version 2"));
  CHECK_THROWS_AS(index_t::load(policy_t("cpu"), newer), mgpu::file_format_error);
  // A valid container whose rows are not a CSR matrix.
  auto const broken = dir / "broken.mgpu";
  mgpu::write_binary_file(broken, "cosine_index", 1, [](mgpu::binary_writer& w) {
    w.write_value<std::int64_t>("rows", 2);
    w.write_value<std::int64_t>("cols", 3);
    w.write("row_offsets", std::vector<std::int64_t>{0, 2, 1});
    w.write("col_indices", std::vector<std::int32_t>{0});
    w.write("values", std::vector<float>{1.0f});
  });
  CHECK_THROWS_AS(index_t::load(policy_t("cpu"), broken), mgpu::file_format_error);
}
