// Specification of a fitted mgpu::als as a server: batched recommend (seen items left out,
// candidate filters, interactions passed in), similar_items / similar_users, every one
// against a brute-force reference computed here in double from the model's factors;
// recalculate_user against a dense double solve of the system the model defines; saved
// models (round trip bitwise, damaged and newer files rejected); on cpu and cpu:3.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <mgpu/algorithms/als.hpp>
#include <mgpu/io/binary_file.hpp>

#include "../test_support.hpp"
#include "als_test_support.hpp"

using namespace als_test;

namespace {

using result_t = mgpu::topk_result<float>;
using ids_t = std::vector<std::int64_t>;

/// Float round-off of a score computed in float from f products: |computed − exact| is at
/// most γ_f Σ|a_j b_j| (sequential or blocked sums alike, γ_f ≈ f·2^-24), doubled for margin.
double round_off(std::vector<double> const& a, std::vector<double> const& b) {
  double s = 0;
  for (std::size_t j = 0; j < a.size(); ++j) s += std::abs(a[j] * b[j]);
  return 2.0 * static_cast<double>(a.size() + 2) * std::ldexp(1.0, -24) * s;
}

double dot(std::vector<double> const& a, std::vector<double> const& b) {
  double s = 0;
  for (std::size_t j = 0; j < a.size(); ++j) s += a[j] * b[j];
  return s;
}

double norm(std::vector<double> const& a) { return std::sqrt(dot(a, a)); }

/// An exact score and its round-off bound for every item.
struct reference_row {
  std::vector<double> score, tolerance;
};

reference_row inner_products(std::vector<double> const& x, dense const& y) {
  reference_row out;
  for (auto const& row : y) {
    out.score.push_back(dot(x, row));
    out.tolerance.push_back(round_off(x, row));
  }
  return out;
}

reference_row cosines(std::vector<double> const& x, dense const& y) {
  reference_row out;
  for (auto const& row : y) {
    double const d = norm(x) * norm(row);
    out.score.push_back(d > 0 ? dot(x, row) / d : 0.0);
    // The dot's round-off scaled by the norms, plus a few roundings of the scaling.
    out.tolerance.push_back(d > 0 ? round_off(x, row) / d + 8 * std::ldexp(1.0, -24) : 0.0);
  }
  return out;
}

/// Row q of `got` against the brute force: min(k, |allowed|) distinct allowed ids, each
/// score its exact score up to round-off, ranked by exact score except for swaps among
/// scores equal within round-off, nothing left out that beats a kept one beyond round-off,
/// and equal float scores in increasing id order.
void check_row(result_t const& got, std::int64_t q, reference_row const& ref, std::set<std::int64_t> const& allowed,
               std::int64_t k) {
  INFO("row " << q);
  auto const ids = got.neighbors(q);
  auto const scores = got.scores_of(q);
  REQUIRE(static_cast<std::int64_t>(ids.size()) == std::min<std::int64_t>(k, static_cast<std::int64_t>(allowed.size())));
  std::set<std::int64_t> kept;
  for (std::size_t j = 0; j < ids.size(); ++j) {
    auto const i = static_cast<std::size_t>(ids[j]);
    INFO("position " << j << ", item " << ids[j]);
    REQUIRE(allowed.count(ids[j]) == 1);
    REQUIRE(kept.insert(ids[j]).second);
    CHECK(std::abs(static_cast<double>(scores[j]) - ref.score[i]) <= ref.tolerance[i]);
    if (j > 0) {
      auto const p = static_cast<std::size_t>(ids[j - 1]);
      CHECK(ref.score[p] >= ref.score[i] - ref.tolerance[p] - ref.tolerance[i]);
      CHECK(scores[j - 1] >= scores[j]);
      if (scores[j - 1] == scores[j]) CHECK(ids[j - 1] < ids[j]);
    }
  }
  if (ids.empty()) return;
  auto const last = static_cast<std::size_t>(ids.back());
  for (auto i : allowed) {
    if (kept.count(i) != 0) continue;
    auto const u = static_cast<std::size_t>(i);
    INFO("left out: item " << i);
    CHECK(ref.score[u] <= ref.score[last] + ref.tolerance[u] + ref.tolerance[last]);
  }
}

/// Two results of the same queries agree: equal lengths, scores equal up to round-off
/// position by position, and ids equal except where scores tie within round-off.
void check_same(result_t const& a, result_t const& b, double tolerance) {
  REQUIRE(a.rows() == b.rows());
  for (std::int64_t q = 0; q < a.rows(); ++q) {
    INFO("row " << q);
    REQUIRE(a.count(q) == b.count(q));
    auto const ai = a.neighbors(q), bi = b.neighbors(q);
    auto const as = a.scores_of(q), bs = b.scores_of(q);
    for (std::size_t j = 0; j < ai.size(); ++j) {
      CHECK(std::abs(as[j] - bs[j]) <= tolerance);
      if (ai[j] == bi[j]) continue;
      auto const at = std::find(bi.begin(), bi.end(), ai[j]);
      if (at != bi.end()) {
        CHECK(std::abs(bs[static_cast<std::size_t>(at - bi.begin())] - as[j]) <= tolerance);
      } else {
        CHECK(as[j] <= bs.back() + tolerance);
      }
    }
  }
}

/// A fitted model on random interactions in which items 1, 4 and 9 have the same column
/// (so bitwise equal factors: exact ties), item 11 has no interactions (zero factors) and
/// user 7 none (zero factors), users 2 and 13 have seen most items.
struct fixture {
  dense r;
  matrix interactions;
  mgpu::als model;

  explicit fixture(mgpu::als_options o = {.factors = 6, .iterations = 3, .regularization = 0.05}) : model(o) {
    std::mt19937 rng(17);
    r = random_interactions(rng, 24, 16, 0.25);
    for (auto& row : r) {
      row[4] = row[9] = row[1];
      row[11] = 0;
    }
    r[7].assign(16, 0.0);
    for (std::size_t i = 0; i < 16; ++i) {
      if (i != 3 && i != 11) r[2][i] = r[13][i] = 1.0;
    }
    interactions = from_dense(r, 16);
    model.fit(policy_t("cpu"), interactions);
  }

  /// Items user u has seen.
  [[nodiscard]] std::set<std::int64_t> seen(std::size_t u) const {
    std::set<std::int64_t> s;
    for (std::size_t i = 0; i < r[u].size(); ++i)
      if (r[u][i] != 0) s.insert(static_cast<std::int64_t>(i));
    return s;
  }
};

std::set<std::int64_t> all_items(std::int64_t n) {
  std::set<std::int64_t> s;
  for (std::int64_t i = 0; i < n; ++i) s.insert(i);
  return s;
}

std::set<std::int64_t> minus(std::set<std::int64_t> a, std::set<std::int64_t> const& b) {
  for (auto i : b) a.erase(i);
  return a;
}

}  // namespace

TEST_CASE("recommend for every user equals the brute-force ranking of the unseen items", "[als][concurrency]") {
  fixture const fx;
  auto const x = to_dense(fx.model.user_factors());
  auto const y = to_dense(fx.model.item_factors());
  REQUIRE(y[1] == y[4]);  // the premise of the tie checks
  REQUIRE(y[1] == y[9]);
  for (char const* devices : {"cpu", "cpu:3"}) {
    INFO(devices);
    for (bool exclude : {true, false}) {
      for (std::int64_t k : {1, 3, 5, 16, 40}) {
        INFO("exclude_seen " << exclude << ", k " << k);
        auto const got = fx.model.recommend(policy_t(devices), {}, k, {.exclude_seen = exclude});
        REQUIRE(got.rows() == 24);
        CHECK(got.k == k);
        CHECK(got.candidates == 16);
        CHECK(got.larger_is_better);
        for (std::size_t u = 0; u < 24; ++u) {
          auto const allowed = exclude ? minus(all_items(16), fx.seen(u)) : all_items(16);
          check_row(got, static_cast<std::int64_t>(u), inner_products(x[u], y), allowed, k);
        }
      }
    }
  }
}

TEST_CASE("recommend for all users equals one call per user, and a list of users in any order", "[als][concurrency]") {
  fixture const fx;
  for (char const* devices : {"cpu", "cpu:3"}) {
    INFO(devices);
    auto const all = fx.model.recommend(policy_t(devices), {}, 4);
    double const tolerance = 1e-5;  // scores are O(1); products of 6 factors in float
    for (std::int64_t u = 0; u < 24; ++u) {
      auto const one = fx.model.recommend(u, 4);
      REQUIRE(one.rows() == 1);
      result_t row_of_all;
      row_of_all.row_offsets = {0, all.count(u)};
      row_of_all.ids.assign(all.neighbors(u).begin(), all.neighbors(u).end());
      row_of_all.scores.assign(all.scores_of(u).begin(), all.scores_of(u).end());
      check_same(one, row_of_all, tolerance);
    }
    ids_t const users{13, 2, 13, 0, 7, 23};
    auto const some = fx.model.recommend(policy_t(devices), users, 4);
    REQUIRE(some.rows() == 6);
    result_t picked;
    for (auto u : users) {
      picked.ids.insert(picked.ids.end(), all.neighbors(u).begin(), all.neighbors(u).end());
      picked.scores.insert(picked.scores.end(), all.scores_of(u).begin(), all.scores_of(u).end());
      picked.row_offsets.push_back(static_cast<std::int64_t>(picked.ids.size()));
    }
    check_same(some, picked, tolerance);
  }
}

TEST_CASE("recommend: a user with no factors gets score 0 for every unseen item, ties toward the smaller item",
          "[als]") {
  fixture const fx;
  auto const got = fx.model.recommend(policy_t("cpu"), ids_t{7}, 5);
  CHECK(std::vector<std::int64_t>(got.ids.begin(), got.ids.end()) == ids_t{0, 1, 2, 3, 4});
  CHECK(std::all_of(got.scores.begin(), got.scores.end(), [](float s) { return s == 0.0f; }));
}

TEST_CASE("recommend ranks only the candidate items, repeats and order ignored", "[als][concurrency]") {
  fixture const fx;
  auto const x = to_dense(fx.model.user_factors());
  auto const y = to_dense(fx.model.item_factors());
  ids_t const candidates{12, 4, 9, 3, 4, 0, 15, 1, 11};
  std::set<std::int64_t> const unique(candidates.begin(), candidates.end());
  for (char const* devices : {"cpu", "cpu:3"}) {
    for (bool exclude : {true, false}) {
      INFO(devices << ", exclude_seen " << exclude);
      auto const got = fx.model.recommend(policy_t(devices), {}, 3, {.exclude_seen = exclude, .items = candidates});
      CHECK(got.candidates == static_cast<std::int64_t>(unique.size()));
      for (std::size_t u = 0; u < 24; ++u) {
        auto const allowed = exclude ? minus(unique, fx.seen(u)) : unique;
        check_row(got, static_cast<std::int64_t>(u), inner_products(x[u], y), allowed, 3);
      }
    }
  }
  // Users 2 and 13 have seen every candidate but 3 and 11.
  auto const heavy = fx.model.recommend(policy_t("cpu"), ids_t{2, 13}, 3, {.items = candidates});
  CHECK(heavy.count(0) == 2);
  CHECK(heavy.count(1) == 2);
}

TEST_CASE("recommend leaves out the items of the interactions passed in, row q for users[q]", "[als][concurrency]") {
  fixture const fx;
  auto const x = to_dense(fx.model.user_factors());
  auto const y = to_dense(fx.model.item_factors());
  // Users 5, 2, 7 with new interaction rows: {0, 1, 2}, {}, {15, 3}.
  matrix const rows(3, 16, std::vector<std::int32_t>{0, 3, 3, 5}, std::vector<std::int32_t>{0, 1, 2, 15, 3},
                    std::vector<float>{1, 1, 1, 2, 1});
  std::set<std::int64_t> const excluded[3] = {{0, 1, 2}, {}, {3, 15}};
  ids_t const users{5, 2, 7};
  for (char const* devices : {"cpu", "cpu:3"}) {
    INFO(devices);
    auto const got = fx.model.recommend(policy_t(devices), users, 6, rows);
    for (std::size_t q = 0; q < 3; ++q) {
      check_row(got, static_cast<std::int64_t>(q), inner_products(x[static_cast<std::size_t>(users[q])], y),
                minus(all_items(16), excluded[q]), 6);
    }
  }
  // Every user: the fitted R itself gives the same as the default.
  auto const own = fx.model.recommend(policy_t("cpu"), {}, 5, fx.interactions);
  auto const fitted = fx.model.recommend(policy_t("cpu"), {}, 5);
  CHECK(own.ids == fitted.ids);
  CHECK(own.scores == fitted.scores);
  CHECK_THROWS_AS(fx.model.recommend(policy_t("cpu"), ids_t{1, 2}, 3, rows), mgpu::dimension_mismatch);
  CHECK_THROWS_AS(fx.model.recommend(policy_t("cpu"), {}, 3, rows), mgpu::dimension_mismatch);
}

TEST_CASE("similar_items and similar_users equal the brute-force cosine ranking, the row itself left out",
          "[als][concurrency]") {
  fixture const fx;
  auto const x = to_dense(fx.model.user_factors());
  auto const y = to_dense(fx.model.item_factors());
  for (char const* devices : {"cpu", "cpu:3"}) {
    for (std::int64_t k : {1, 4, 15, 30}) {
      INFO(devices << ", k " << k);
      auto const items = fx.model.similar_items(policy_t(devices), {}, k);
      REQUIRE(items.rows() == 16);
      CHECK(items.candidates == 16);
      for (std::size_t i = 0; i < 16; ++i) {
        check_row(items, static_cast<std::int64_t>(i), cosines(y[i], y),
                  minus(all_items(16), {static_cast<std::int64_t>(i)}), k);
      }
      auto const users = fx.model.similar_users(policy_t(devices), {}, k);
      REQUIRE(users.rows() == 24);
      for (std::size_t u = 0; u < 24; ++u) {
        check_row(users, static_cast<std::int64_t>(u), cosines(x[u], x),
                  minus(all_items(24), {static_cast<std::int64_t>(u)}), k);
      }
    }
  }
  // Items 1, 4, 9 have equal factors, so cosine 1 (up to round-off) with each other: item
  // 9's best two are 1 and 4, although item 9 itself ties with them and is not among the
  // best k + 1 = 3 when ties go to the smaller item.
  auto const nine = fx.model.similar_items(9, 2);
  CHECK(std::vector<std::int64_t>(nine.ids.begin(), nine.ids.end()) == ids_t{1, 4});
  // Item 11 has zero factors: similarity 0 with every item, so the smallest others.
  auto const zero = fx.model.similar_items(11, 3);
  CHECK(std::vector<std::int64_t>(zero.ids.begin(), zero.ids.end()) == ids_t{0, 1, 2});
  CHECK(zero.scores == std::vector<float>{0, 0, 0});
  auto const one = fx.model.similar_users(3, 2);
  CHECK(one.rows() == 1);
  CHECK(one.count(0) == 2);
}

TEST_CASE("queries reject bad arguments and unfitted models", "[als]") {
  fixture const fx;
  policy_t const cpu("cpu");
  CHECK_THROWS_AS(fx.model.recommend(24, 1), mgpu::invalid_argument);
  CHECK_THROWS_AS(fx.model.recommend(-1, 1), mgpu::invalid_argument);
  CHECK_THROWS_AS(fx.model.recommend(0, 0), mgpu::invalid_argument);
  CHECK_THAT(mgpu_test::message_of<mgpu::invalid_argument>([&] { (void)fx.model.recommend(cpu, ids_t{3, 30}, 2); }),
             Catch::Contains("user 30 (position 1) is outside [0, 24)"));
  CHECK_THAT(mgpu_test::message_of<mgpu::invalid_argument>(
                 [&] { (void)fx.model.recommend(cpu, {}, 2, {.items = ids_t{1, 16}}); }),
             Catch::Contains("candidate item 16 (position 1)"));
  CHECK_THROWS_AS(fx.model.similar_items(16, 1), mgpu::invalid_argument);
  CHECK_THROWS_AS(fx.model.similar_users(cpu, ids_t{24}, 1), mgpu::invalid_argument);
  mgpu::als const unfitted;
  CHECK_THAT(mgpu_test::message_of<mgpu::invalid_argument>([&] { (void)unfitted.recommend(0, 1); }),
             Catch::Contains("not fitted"));
  CHECK_THROWS_AS(unfitted.similar_items(0, 1), mgpu::invalid_argument);
  CHECK_THROWS_AS(unfitted.recalculate_user({}, {}), mgpu::invalid_argument);
  CHECK_THROWS_AS(unfitted.save(std::filesystem::path("unused")), mgpu::invalid_argument);
}

TEST_CASE("recommend reports progress in users on the calling thread, ending at (users, users)", "[als][concurrency]") {
  fixture const fx;
  auto const caller = std::this_thread::get_id();
  std::vector<std::pair<std::int64_t, std::int64_t>> calls;
  bool other_thread = false;
  auto const got = fx.model.recommend(policy_t("cpu:3"), {}, 3, {.progress = [&](std::int64_t d, std::int64_t t) {
                                                      other_thread = other_thread || std::this_thread::get_id() != caller;
                                                      calls.emplace_back(d, t);
                                                    }});
  REQUIRE_FALSE(calls.empty());
  CHECK_FALSE(other_thread);
  CHECK(calls.back() == std::make_pair(std::int64_t{24}, std::int64_t{24}));
  for (std::size_t i = 1; i < calls.size(); ++i) CHECK(calls[i].first >= calls[i - 1].first);
}

TEST_CASE("recalculate_user solves the user system of the model against the fitted items", "[als]") {
  std::mt19937 rng(29);
  auto const r = random_interactions(rng, 20, 12, 0.3);
  ids_t const items{7, 0, 3, 11, 5};
  std::vector<float> const values{2, 1, 5, 1, 3};
  for (auto model_kind : {mgpu::als_model::implicit, mgpu::als_model::weighted}) {
    for (double w0 : {1.0, 0.3}) {
      INFO("weighted " << (model_kind == mgpu::als_model::weighted) << ", w0 " << w0);
      mgpu::als_options const o{.factors = 5, .iterations = 2, .regularization = 0.2, .alpha = 1.5,
                                .unobserved_weight = w0, .model = model_kind};
      mgpu::als model(o);
      model.fit(policy_t("cpu"), from_dense(r, 12));
      // The row as the model defines it, solved densely in double over all 12 items.
      std::vector<double> row(12, 0.0);
      for (std::size_t j = 0; j < items.size(); ++j) row[static_cast<std::size_t>(items[j])] = values[j];
      dense a;
      std::vector<double> b;
      normal_equations(row, to_dense(model.item_factors()), o, a, b);
      auto const expected = gauss_solve(a, b);
      auto const got = model.recalculate_user(items, values);
      REQUIRE(got.size() == 5);
      for (std::size_t j = 0; j < 5; ++j) CHECK(got[j] == Approx(expected[j]).margin(1e-6).epsilon(1e-5));
      // Conjugate gradient with f steps from 0 reaches the same solution.
      auto cg_options = o;
      cg_options.solver = mgpu::als_solver::conjugate_gradient;
      cg_options.cg_steps = 5;
      mgpu::als cg(cg_options);
      cg.fit(policy_t("cpu"), from_dense(r, 12));
      normal_equations(row, to_dense(cg.item_factors()), o, a, b);
      auto const cg_expected = gauss_solve(a, b);
      auto const cg_got = cg.recalculate_user(items, values);
      for (std::size_t j = 0; j < 5; ++j) CHECK(cg_got[j] == Approx(cg_expected[j]).margin(1e-4).epsilon(1e-3));
    }
  }
}

TEST_CASE("recalculate_user: repeats are summed, no interactions give zero factors, bad rows are rejected", "[als]") {
  fixture const fx;
  auto const summed = fx.model.recalculate_user(ids_t{3, 8, 3}, std::vector<float>{1, 2, 2});
  auto const once = fx.model.recalculate_user(ids_t{8, 3}, std::vector<float>{2, 3});
  CHECK(summed == once);
  auto const none = fx.model.recalculate_user({}, {});
  CHECK(none == std::vector<float>(6, 0.0f));
  CHECK_THROWS_AS(fx.model.recalculate_user(ids_t{16}, std::vector<float>{1}), mgpu::invalid_argument);
  CHECK_THROWS_AS(fx.model.recalculate_user(ids_t{1, 2}, std::vector<float>{1}), mgpu::dimension_mismatch);
  CHECK_THROWS_AS(fx.model.recalculate_user(ids_t{1}, std::vector<float>{std::numeric_limits<float>::infinity()}),
                  mgpu::invalid_argument);
  // The batched form: row u of the result is recalculate_user of row u.
  matrix const rows(2, 16, std::vector<std::int32_t>{0, 2, 3}, std::vector<std::int32_t>{3, 8, 5},
                    std::vector<float>{3, 2, 1});
  auto const both = fx.model.recalculate_users(rows.view());
  auto const first = std::vector<float>(both.data(), both.data() + 6);
  CHECK(first == once);
  CHECK_THROWS_AS(fx.model.recalculate_users(matrix(1, 15).view()), mgpu::dimension_mismatch);
}

TEST_CASE("a saved and loaded model has the same options and factors and recommends bitwise the same",
          "[als][concurrency]") {
  mgpu_test::temp_dir dir;
  for (auto solver : {mgpu::als_solver::cholesky, mgpu::als_solver::conjugate_gradient}) {
    fixture const fx({.factors = 5, .iterations = 2, .regularization = 0.07, .alpha = 3.0, .unobserved_weight = 0.5,
                      .model = mgpu::als_model::weighted, .solver = solver, .cg_steps = 4, .seed = 99,
                      .compute_loss = true, .loss_tolerance = 1e-9});
    auto const path = dir / "model.als";
    fx.model.save(path);
    auto const loaded = mgpu::als::load(path);
    auto const& a = fx.model.options();
    auto const& b = loaded.options();
    CHECK(b.factors == a.factors);
    CHECK(b.iterations == a.iterations);
    CHECK(b.regularization == a.regularization);
    CHECK(b.alpha == a.alpha);
    CHECK(b.unobserved_weight == a.unobserved_weight);
    CHECK(b.model == a.model);
    CHECK(b.solver == a.solver);
    CHECK(b.cg_steps == a.cg_steps);
    CHECK(b.seed == a.seed);
    CHECK(b.compute_loss == a.compute_loss);
    CHECK(b.loss_tolerance == a.loss_tolerance);
    CHECK(loaded.fitted());
    CHECK(to_dense(loaded.user_factors()) == to_dense(fx.model.user_factors()));
    CHECK(to_dense(loaded.item_factors()) == to_dense(fx.model.item_factors()));
    CHECK(loaded.loss_history() == fx.model.loss_history());
    for (char const* devices : {"cpu", "cpu:3"}) {
      auto const before = fx.model.recommend(policy_t(devices), {}, 5);
      auto const after = loaded.recommend(policy_t(devices), {}, 5);
      CHECK(after.row_offsets == before.row_offsets);
      CHECK(after.ids == before.ids);
      CHECK(after.scores == before.scores);
      CHECK(loaded.similar_items(policy_t(devices), {}, 3).ids == fx.model.similar_items(policy_t(devices), {}, 3).ids);
    }
    CHECK(loaded.recalculate_user(ids_t{2, 5}, std::vector<float>{1, 4}) ==
          fx.model.recalculate_user(ids_t{2, 5}, std::vector<float>{1, 4}));
    // Saving to a stream writes the same bytes.
    std::ostringstream stream;
    loaded.save(stream);
    std::ifstream file(path, std::ios::binary);
    std::string const bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    CHECK(stream.str() == bytes);
  }
}

TEST_CASE("damaged, newer, other and inconsistent model files are file_format_errors", "[als][reliability]") {
  mgpu_test::temp_dir dir;
  fixture const fx;
  auto const path = dir / "model.als";
  fx.model.save(path);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  auto const write = [&](char const* name, std::string const& content) {
    auto const p = dir / name;
    std::ofstream(p, std::ios::binary).write(content.data(), static_cast<std::streamsize>(content.size()));
    return p;
  };
  auto const load_error = [](std::filesystem::path const& p) {
    return mgpu_test::message_of<mgpu::file_format_error>([&] { (void)mgpu::als::load(p); });
  };
  for (std::size_t keep : {bytes.size() / 2, bytes.size() - 1, std::size_t{20}}) {
    INFO("truncated to " << keep << " bytes");
    CHECK_THAT(load_error(write("cut.als", bytes.substr(0, keep))), Catch::Contains("cut.als"));
  }
  for (std::size_t at : {std::size_t{30}, bytes.size() / 3, bytes.size() - 10}) {
    INFO("byte " << at << " flipped");
    auto flipped = bytes;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x10);
    CHECK_THAT(load_error(write("flipped.als", flipped)), Catch::Contains("flipped.als"));
  }
  // A newer version of the kind, and another kind, written by the container itself.
  auto const newer = dir / "newer.als";
  mgpu::write_binary_file(newer, "als_model", 2, [](mgpu::binary_writer& w) { w.write_value<std::int64_t>("factors", 6); });
  CHECK_THAT(load_error(newer), Catch::Contains("als_model version 2 is not supported"));
  auto const other = dir / "other.bin";
  mgpu::write_binary_file(other, "knn_index", 1, [](mgpu::binary_writer& w) { w.write_value<std::int64_t>("rows", 1); });
  CHECK_THAT(load_error(other), Catch::Contains("not a als_model"));
  // Valid checksums, sections that do not fit together.
  auto const inconsistent = [&](char const* name, std::int64_t users, std::vector<float> const& user_factors,
                                std::vector<std::int64_t> const& seen_offsets, std::vector<std::int64_t> const& seen) {
    auto const p = dir / name;
    mgpu::write_binary_file(p, "als_model", 1, [&](mgpu::binary_writer& w) {
      w.write_value<std::int64_t>("factors", 2);
      w.write_value<std::int64_t>("iterations", 1);
      w.write_value<double>("regularization", 0.1);
      w.write_value<double>("alpha", 1.0);
      w.write_value<double>("unobserved_weight", 1.0);
      w.write_value<std::int32_t>("model", 0);
      w.write_value<std::int32_t>("solver", 0);
      w.write_value<std::int64_t>("cg_steps", 3);
      w.write_value<std::uint64_t>("seed", 1);
      w.write_value<std::uint8_t>("compute_loss", 1);
      w.write_value<double>("loss_tolerance", 0.0);
      w.write_value<std::int64_t>("users", users);
      w.write_value<std::int64_t>("items", 2);
      w.write("user_factors", user_factors);
      w.write("item_factors", std::vector<float>{1, 2, 3, 4});
      w.write("seen_offsets", seen_offsets);
      w.write("seen_items", seen);
      w.write("loss_history", std::vector<double>{});
    });
    return p;
  };
  CHECK_NOTHROW(mgpu::als::load(inconsistent("good.als", 1, {1, 2}, {0, 2}, {0, 1})));
  CHECK_THAT(load_error(inconsistent("short.als", 2, {1, 2}, {0, 1, 2}, {0, 1})),
             Catch::Contains("user_factors holds 2 values, not users x factors = 2 x 2"));
  CHECK_THAT(load_error(inconsistent("nan.als", 1, {1, std::numeric_limits<float>::quiet_NaN()}, {0, 2}, {0, 1})),
             Catch::Contains("non-finite value at row 0, column 1"));
  CHECK_THAT(load_error(inconsistent("offsets.als", 1, {1, 2}, {0, 3}, {0, 1})), Catch::Contains("seen_offsets"));
  CHECK_THAT(load_error(inconsistent("range.als", 1, {1, 2}, {0, 2}, {0, 2})), Catch::Contains("seen_items of user 0"));
  CHECK_THAT(load_error(inconsistent("order.als", 1, {1, 2}, {0, 2}, {1, 0})), Catch::Contains("seen_items of user 0"));
}
