// Specification of mgpu::cosine_topk: exact top-k against a dense double-precision
// reference, ranking rules, device-count independence, and bad inputs.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include <mgpu/mgpu.hpp>

#include "cosine_test_support.hpp"

namespace {

using policy_t = mgpu::execution_policy<mgpu::cpu>;
using cosine_test::from_dense;
using cosine_test::matrix;
using cosine_test::ref_pair;
using cosine_test::require_matches;

std::vector<std::vector<float>> random_dense(std::mt19937& rng, int rows, int cols, double density) {
  std::uniform_real_distribution<float> value(0.0f, 1.0f);
  std::bernoulli_distribution keep(density);
  std::vector<std::vector<float>> a(static_cast<std::size_t>(rows), std::vector<float>(static_cast<std::size_t>(cols), 0.0f));
  for (auto& row : a)
    for (auto& v : row)
      if (keep(rng)) v = value(rng) < 0.1f ? -value(rng) : value(rng);
  return a;
}

// Independent reference: all scores in double from the dense rows, sorted by
// (score descending, index ascending), zeros dropped, first k kept.
std::vector<std::vector<ref_pair>> dense_reference(std::vector<std::vector<float>> const& q,
                                                   std::vector<std::vector<float>> const& c, int k,
                                                   bool exclude_self) {
  auto out = cosine_test::all_scores(q, c, exclude_self);
  for (auto& row : out) {
    if (row.size() > static_cast<std::size_t>(k)) row.resize(static_cast<std::size_t>(k));
  }
  return out;
}


}  // namespace

TEST_CASE("cosine_topk: hand-computed neighbours of four 2-d rows", "[cosine]") {
  // Rows (1,1), (0,2), (3,3), (0,0): cos(r0,r2) = 1, cos(r0,r1) = cos(r1,r2) = 1/sqrt(2).
  auto const a = from_dense({{1, 1}, {0, 2}, {3, 3}, {0, 0}}, 2);
  auto const top = mgpu::cosine_topk(policy_t("cpu"), a, 3);
  REQUIRE(top.rows() == 4);
  CHECK(std::vector<int>(top.neighbors(0).begin(), top.neighbors(0).end()) == std::vector<int>{2, 1});
  CHECK(top.scores_of(0)[0] == Approx(1.0));
  CHECK(top.scores_of(0)[1] == Approx(std::sqrt(0.5)));
  // Row 1 ties between rows 0 and 2: the smaller index comes first.
  CHECK(std::vector<int>(top.neighbors(1).begin(), top.neighbors(1).end()) == std::vector<int>{0, 2});
  CHECK(top.neighbors(3).empty());
}

TEST_CASE("cosine_topk: matches a dense reference on random matrices", "[cosine]") {
  auto const seed = GENERATE(1u, 2u, 3u, 4u, 5u);
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dim(1, 40);
  int const nq = dim(rng), nc = dim(rng), d = dim(rng);
  auto const q = random_dense(rng, nq, d, 0.3);
  auto const c = random_dense(rng, nc, d, 0.3);
  int const k = std::uniform_int_distribution<int>(1, 12)(rng);
  auto const got = mgpu::cosine_topk(policy_t("cpu"), from_dense(q, d), from_dense(c, d), k);
  require_matches(got, dense_reference(q, c, k, false));
}

TEST_CASE("cosine_topk: non-negative data (the pruned path) matches a dense reference", "[cosine]") {
  // Text-like rows: a few columns are in almost every row (as stop words are), most are
  // rare, so the exact pruning of common terms is exercised.
  auto const seed = GENERATE(11u, 12u, 13u, 14u);
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  int const rows = 300, cols = 60;
  std::vector<std::vector<float>> a(rows, std::vector<float>(cols, 0.0f));
  std::uniform_real_distribution<float> value(0.05f, 1.0f);
  for (auto& row : a) {
    for (int c = 0; c < cols; ++c) {
      double const p = c < 4 ? 0.9 : 2.0 / c;
      if (std::bernoulli_distribution(p)(rng)) row[static_cast<std::size_t>(c)] = c < 4 ? 0.1f * value(rng) : value(rng);
    }
  }
  auto const m = from_dense(a, cols);
  for (int k : {1, 5, 10}) {
    INFO("k " << k);
    require_matches(mgpu::cosine_topk(policy_t("cpu:2"), m, k), dense_reference(a, a, k, true));
  }
}

namespace {

// Text-like rows: column c is in a row with probability min(0.9, 3 / (c + 1)), so a few
// columns are in almost every row (as stop words are) and most are rare; common
// columns carry small values (a low idf). This makes the pruned path stop its walk
// early and complete candidates by row lookup.
std::vector<std::vector<float>> text_like(std::mt19937& rng, int rows, int cols) {
  std::vector<std::vector<float>> a(static_cast<std::size_t>(rows), std::vector<float>(static_cast<std::size_t>(cols), 0.0f));
  std::uniform_real_distribution<float> value(0.05f, 1.0f);
  for (auto& row : a) {
    for (int c = 0; c < cols; ++c) {
      double const p = std::min(0.9, 3.0 / (c + 1));
      if (std::bernoulli_distribution(p)(rng)) {
        row[static_cast<std::size_t>(c)] = static_cast<float>(1.0 - p) * value(rng) + 0.01f;
      }
    }
  }
  return a;
}

}  // namespace

TEST_CASE("cosine_topk: the pruned path on a larger text-like corpus matches a dense reference",
          "[cosine]") {
  std::mt19937 rng(21);
  int const cols = 200;
  auto const a = text_like(rng, 800, cols);
  auto const m = from_dense(a, cols);
  for (int k : {1, 10}) {
    INFO("k " << k);
    require_matches(mgpu::cosine_topk(policy_t("cpu"), m, k), dense_reference(a, a, k, true));
  }
}

TEST_CASE("cosine_topk: the pruned path is bitwise the same on cpu, cpu:2 and cpu:3", "[cosine]") {
  std::mt19937 rng(22);
  auto const m = from_dense(text_like(rng, 600, 150), 150);
  auto const base = mgpu::cosine_topk(policy_t("cpu"), m, 10);
  for (auto devices : {"cpu:2", "cpu:3"}) {
    INFO(devices);
    auto const got = mgpu::cosine_topk(policy_t(devices), m, 10);
    CHECK(got.row_offsets == base.row_offsets);
    CHECK(got.ids == base.ids);
    CHECK(got.scores == base.scores);
  }
}

TEST_CASE("cosine_topk: non-negative data with stored zeros and a column in every row", "[cosine]") {
  // Column 0 is in every row, so one query touches every corpus row; every third stored
  // value is an explicit 0, which must neither be reported nor confuse the bookkeeping
  // of which rows were touched.
  std::mt19937 rng(23);
  int const rows = 120, cols = 20;
  std::uniform_real_distribution<float> value(0.1f, 1.0f);
  std::bernoulli_distribution keep(0.3);
  std::vector<std::vector<float>> a(rows, std::vector<float>(cols, 0.0f));
  std::vector<std::int32_t> offsets{0}, indices;
  std::vector<float> values;
  for (auto& row : a) {
    for (int c = 0; c < cols; ++c) {
      if (c != 0 && !keep(rng)) continue;
      float const v = indices.size() % 3 == 2 ? 0.0f : value(rng);
      row[static_cast<std::size_t>(c)] = v;
      indices.push_back(c);
      values.push_back(v);
    }
    offsets.push_back(static_cast<std::int32_t>(indices.size()));
  }
  matrix const m(rows, cols, offsets, indices, values);
  for (auto devices : {"cpu", "cpu:2"}) {
    INFO(devices);
    require_matches(mgpu::cosine_topk(policy_t(devices), m, 7), dense_reference(a, a, 7, true));
  }
}

TEST_CASE("cosine_topk: stored zeros on a text-like corpus where the walk stops early", "[cosine]") {
  // Every fourth stored value is an explicit 0: such rows have a zero partial score
  // after a term that stores them, yet they may still rank once completed.
  std::mt19937 rng(24);
  int const cols = 120;
  auto a = text_like(rng, 500, cols);
  std::vector<std::int32_t> offsets{0}, indices;
  std::vector<float> values;
  for (auto& row : a) {
    for (int c = 0; c < cols; ++c) {
      auto& v = row[static_cast<std::size_t>(c)];
      if (v == 0.0f) continue;
      if (indices.size() % 4 == 3) v = 0.0f;
      indices.push_back(c);
      values.push_back(v);
    }
    offsets.push_back(static_cast<std::int32_t>(indices.size()));
  }
  matrix const m(static_cast<std::int64_t>(a.size()), cols, offsets, indices, values);
  auto const want = dense_reference(a, a, 10, true);
  auto const base = mgpu::cosine_topk(policy_t("cpu"), m, 10);
  require_matches(base, want);
  auto const two = mgpu::cosine_topk(policy_t("cpu:2"), m, 10);
  CHECK(two.ids == base.ids);
  CHECK(two.scores == base.scores);
}

TEST_CASE("cosine_topk: all-pairs excludes the self match by default", "[cosine]") {
  std::mt19937 rng(11);
  auto const a = random_dense(rng, 30, 12, 0.4);
  auto const got = mgpu::cosine_topk(policy_t("cpu"), from_dense(a, 12), 5);
  require_matches(got, dense_reference(a, a, 5, true));
  auto const with_self = mgpu::cosine_topk(policy_t("cpu"), from_dense(a, 12), 5,
                                           mgpu::cosine_topk_options{.exclude_self = false});
  require_matches(with_self, dense_reference(a, a, 5, false));
}

TEST_CASE("cosine_topk: cpu:N and any batch size give bitwise the same result as cpu", "[cosine]") {
  std::mt19937 rng(7);
  auto const a = from_dense(random_dense(rng, 64, 30, 0.2), 30);
  auto const base = mgpu::cosine_topk(policy_t("cpu"), a, 7);
  for (auto devices : {"cpu:2", "cpu:3", "cpu:4"}) {
    for (std::int64_t batch : {0, 1, 5}) {
      INFO(devices << " batch " << batch);
      mgpu::cosine_topk_options opts{.exclude_self = true, .query_batch = batch};
      auto const got = mgpu::cosine_topk(policy_t(devices), a, 7, opts);
      CHECK(got.row_offsets == base.row_offsets);
      CHECK(got.ids == base.ids);
      CHECK(got.scores == base.scores);
    }
  }
}

TEST_CASE("reliability row 6: fewer corpus rows than devices, empty matrices", "[cosine][reliability]") {
  auto const a = from_dense({{1, 0}, {1, 1}}, 2);
  auto const got = mgpu::cosine_topk(policy_t("cpu:4"), a, 10);
  REQUIRE(got.rows() == 2);
  CHECK(got.neighbors(0).size() == 1);
  CHECK(got.neighbors(0)[0] == 1);
  matrix const empty(0, 2);
  CHECK(mgpu::cosine_topk(policy_t("cpu:2"), empty, a, 3).rows() == 0);
  auto const none = mgpu::cosine_topk(policy_t("cpu:2"), a, empty, 3);
  REQUIRE(none.rows() == 2);
  CHECK(none.ids.empty());
}

TEST_CASE("reliability row 9: zero rows score 0, never NaN, and are not reported", "[cosine][reliability]") {
  auto const a = from_dense({{0, 0, 0}, {1, 2, 0}, {0, 0, 0}, {2, 4, 0}}, 3);
  auto const got = mgpu::cosine_topk(policy_t("cpu"), a, 3);
  CHECK(got.neighbors(0).empty());
  CHECK(got.neighbors(2).empty());
  REQUIRE(got.neighbors(1).size() == 1);
  CHECK(got.neighbors(1)[0] == 3);
  for (float s : got.scores) CHECK(std::isfinite(s));
}

TEST_CASE("reliability row 10: k <= 0 is rejected, k beyond the candidates lists what exists",
          "[cosine][reliability]") {
  auto const a = from_dense({{1, 0}, {1, 1}, {0, 1}}, 2);
  CHECK_THROWS_AS(mgpu::cosine_topk(policy_t("cpu"), a, 0), mgpu::invalid_argument);
  CHECK_THROWS_AS(mgpu::cosine_topk(policy_t("cpu"), a, -3), mgpu::invalid_argument);
  auto const got = mgpu::cosine_topk(policy_t("cpu"), a, 100);
  CHECK(got.neighbors(0).size() == 1);  // row 2 is orthogonal to row 0
  CHECK(got.neighbors(1).size() == 2);
}

TEST_CASE("reliability row 10: tied scores are ordered by the smaller index on every device count",
          "[cosine][reliability]") {
  // Rows 1..6 are identical, so every one of them ties for query 0.
  std::vector<std::vector<float>> rows(7, {1, 2, 3});
  rows[0] = {3, 2, 1};
  auto const a = from_dense(rows, 3);
  for (auto devices : {"cpu", "cpu:2", "cpu:3"}) {
    auto const got = mgpu::cosine_topk(policy_t(devices), a, 4);
    CHECK(std::vector<int>(got.neighbors(0).begin(), got.neighbors(0).end()) == std::vector<int>{1, 2, 3, 4});
  }
}

TEST_CASE("reliability row 7: NaN or Inf values are rejected naming the position", "[cosine][reliability]") {
  auto const good = from_dense({{1, 0}, {0, 1}}, 2);
  auto const bad = from_dense({{1, std::numeric_limits<float>::quiet_NaN()}, {0, 1}}, 2);
  CHECK_THROWS_WITH(mgpu::cosine_topk(policy_t("cpu"), bad, good, 1),
                    Catch::Matchers::Contains("row 0, column 1"));
  auto const inf = from_dense({{1, 0}, {std::numeric_limits<float>::infinity(), 1}}, 2);
  CHECK_THROWS_AS(mgpu::cosine_topk(policy_t("cpu"), good, inf, 1), mgpu::invalid_argument);
}

TEST_CASE("reliability row 8: queries and corpus with different column counts", "[cosine][reliability]") {
  auto const a = from_dense({{1, 0}}, 2);
  auto const b = from_dense({{1, 0, 1}}, 3);
  CHECK_THROWS_AS(mgpu::cosine_topk(policy_t("cpu"), a, b, 1), mgpu::dimension_mismatch);
  CHECK_THROWS_WITH(mgpu::cosine_topk(policy_t("cpu"), a, b, 1), Catch::Matchers::Contains("1 x 2") &&
                                                                      Catch::Matchers::Contains("1 x 3"));
}

TEST_CASE("reliability row 11: a memory budget too small for one query is out_of_memory",
          "[cosine][reliability]") {
  auto const a = from_dense({{1, 0}, {1, 1}}, 2);
  CHECK_THROWS_AS(mgpu::cosine_topk(policy_t("cpu").with_memory_budget(8), a, 1), mgpu::out_of_memory);
  // A budget that holds a few queries at a time still gives the full answer, in batches.
  auto const small = mgpu::cosine_topk(policy_t("cpu").with_memory_budget(64), a, 1);
  auto const full = mgpu::cosine_topk(policy_t("cpu"), a, 1);
  CHECK(small.ids == full.ids);
}

TEST_CASE("cosine_topk: 64-bit indices give the same neighbours", "[cosine]") {
  std::mt19937 rng(5);
  auto const dense = random_dense(rng, 20, 9, 0.4);
  auto const a = from_dense(dense, 9);
  std::vector<std::int64_t> off(a.row_offsets().begin(), a.row_offsets().end());
  std::vector<std::int64_t> idx(a.col_indices().begin(), a.col_indices().end());
  std::vector<float> val(a.values().begin(), a.values().end());
  mgpu::csr_matrix<mgpu::cpu, float, std::int64_t> const b(20, 9, off, idx, val);
  auto const r32 = mgpu::cosine_topk(policy_t("cpu:2"), a, 4);
  auto const r64 = mgpu::cosine_topk(policy_t("cpu:2"), b, 4);
  CHECK(r32.ids == r64.ids);
  CHECK(r32.scores == r64.scores);
}

TEST_CASE("cosine_topk: the progress callback reports every batch", "[cosine]") {
  std::mt19937 rng(3);
  auto const a = from_dense(random_dense(rng, 10, 5, 0.5), 5);
  std::vector<std::int64_t> seen;
  mgpu::cosine_topk_options opts{.exclude_self = true, .query_batch = 4};
  opts.progress = [&](std::int64_t done, std::int64_t total) {
    CHECK(total == 10);
    seen.push_back(done);
  };
  (void)mgpu::cosine_topk(policy_t("cpu"), a, 2, opts);
  CHECK(seen == std::vector<std::int64_t>{4, 8, 10});
}

TEST_CASE("cosine_topk: long non-negative rows (scored without pruning) match a dense reference",
          "[cosine]") {
  // Rows with ~100 stored terms exceed the pruning cut-off (64 query terms).
  std::mt19937 rng(21);
  std::uniform_real_distribution<float> value(0.0f, 1.0f);
  std::vector<std::vector<float>> a(40, std::vector<float>(150, 0.0f));
  for (auto& row : a)
    for (auto& v : row)
      if (value(rng) < 0.7f) v = value(rng);
  auto const m = from_dense(a, 150);
  REQUIRE(m.nnz() > 40 * 64);
  require_matches(mgpu::cosine_topk(policy_t("cpu:2"), m, 5), dense_reference(a, a, 5, true));
}

TEST_CASE("cosine_topk: many short text-like rows (impact tiers, early completion) match a reference",
          "[cosine]") {
  // WordNet-like: 2500 rows of 2 to 9 terms drawn from a Zipf-like law over 3000 columns,
  // values like TF-IDF (smaller for common columns). The common columns' posting lists
  // are long enough to be cut into impact tiers, and the walk stops with tiers left.
  // Reference: every pair scored in double from the rows' nonzeros.
  std::mt19937 rng(31);
  int const rows = 2500, cols = 3000;
  std::vector<double> weights(static_cast<std::size_t>(cols));
  for (int c = 0; c < cols; ++c) weights[static_cast<std::size_t>(c)] = 1.0 / (c + 1.5);
  std::discrete_distribution<int> column(weights.begin(), weights.end());
  std::uniform_int_distribution<int> length(2, 9);
  std::uniform_real_distribution<float> jitter(0.8f, 1.2f);
  std::vector<std::vector<float>> a(rows, std::vector<float>(cols, 0.0f));
  std::vector<std::vector<int>> nonzeros(rows);
  for (std::size_t r = 0; r < a.size(); ++r) {
    int const n = length(rng);
    for (int i = 0; i < n; ++i) {
      int const c = column(rng);
      auto& v = a[r][static_cast<std::size_t>(c)];
      if (v == 0.0f) nonzeros[r].push_back(c);
      v += static_cast<float>(std::log(2.0 + c)) * jitter(rng);
    }
  }
  std::vector<double> norms(rows);
  for (std::size_t r = 0; r < a.size(); ++r) {
    double s = 0;
    for (int c : nonzeros[r]) s += double(a[r][static_cast<std::size_t>(c)]) * a[r][static_cast<std::size_t>(c)];
    norms[r] = std::sqrt(s);
  }
  int const k = 10;
  std::vector<std::vector<ref_pair>> want(rows);
  for (std::size_t i = 0; i < a.size(); ++i) {
    std::vector<ref_pair> all;
    for (std::size_t j = 0; j < a.size(); ++j) {
      if (i == j) continue;
      double dot = 0;
      for (int c : nonzeros[i]) dot += double(a[i][static_cast<std::size_t>(c)]) * a[j][static_cast<std::size_t>(c)];
      if (dot != 0) all.push_back({dot / (norms[i] * norms[j]), static_cast<std::int32_t>(j)});
    }
    std::stable_sort(all.begin(), all.end(), [](auto const& x, auto const& y) { return x.score > y.score; });
    if (all.size() > static_cast<std::size_t>(k) + 1) all.resize(static_cast<std::size_t>(k) + 1);
    want[i] = std::move(all);
  }
  auto const m = from_dense(a, cols);
  auto const got = mgpu::cosine_topk(policy_t("cpu"), m, k);
  require_matches(got, want, static_cast<std::size_t>(k));
  for (std::int64_t q = 0; q < got.rows(); ++q) {
    auto idx = got.neighbors(q);
    std::vector<std::int32_t> sorted(idx.begin(), idx.end());
    std::sort(sorted.begin(), sorted.end());
    REQUIRE(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
  }
  auto const three = mgpu::cosine_topk(policy_t("cpu:3"), m, k);
  CHECK(three.ids == got.ids);
  CHECK(three.scores == got.scores);
}

TEST_CASE("cosine_topk: passing options (a progress callback) does not change the self rule", "[cosine]") {
  // Issue 18: the all-pairs overload excluded the self match only while no options were
  // passed, because the exclusion lived in that overload's default argument.
  std::mt19937 rng(5);
  auto const a = random_dense(rng, 12, 6, 0.6);
  auto const m = from_dense(a, 6);
  std::int64_t calls = 0;
  mgpu::cosine_topk_options opts;
  opts.progress = [&](std::int64_t, std::int64_t) { ++calls; };
  auto const got = mgpu::cosine_topk(policy_t("cpu"), m, 3, opts);
  CHECK(calls > 0);
  require_matches(got, dense_reference(a, a, 3, true));
  require_matches(mgpu::cosine_topk(policy_t("cpu"), m, 3), dense_reference(a, a, 3, true));
}

TEST_CASE("cosine_topk: one matrix passed as queries and corpus excludes the self match unless asked",
          "[cosine]") {
  std::mt19937 rng(6);
  auto const a = random_dense(rng, 12, 6, 0.6);
  auto const m = from_dense(a, 6);
  require_matches(mgpu::cosine_topk(policy_t("cpu:2"), m.view(), m.view(), 3), dense_reference(a, a, 3, true));
  require_matches(mgpu::cosine_topk(policy_t("cpu:2"), m, m, 3, {.exclude_self = false}),
                  dense_reference(a, a, 3, false));
  // A copy is another corpus: its row i is not query i, so nothing is excluded.
  auto const copy = from_dense(a, 6);
  require_matches(mgpu::cosine_topk(policy_t("cpu"), m, copy, 3), dense_reference(a, a, 3, false));
  // Asked to exclude with two distinct matrices, row i of the corpus is skipped for query i.
  require_matches(mgpu::cosine_topk(policy_t("cpu"), m, copy, 3, {.exclude_self = true}),
                  dense_reference(a, a, 3, true));
}
