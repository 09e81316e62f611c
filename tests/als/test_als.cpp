// Specification of mgpu::als: each half-step against a dense double-precision reference
// that sums the objective over ALL pairs (not the Gram-matrix shortcut the library
// uses), the normal equations on real data, the loss, device-count independence, early
// stopping and progress, and bad inputs. Queries, recalculate_user and saved models:
// test_als_serving.cpp.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <mgpu/algorithms/als.hpp>
#include <mgpu/io/matrix_market.hpp>
#include <mgpu/sparse/partition.hpp>
#include <mgpu/sparse/transpose.hpp>

#include "../test_support.hpp"
#include "als_test_support.hpp"

using namespace als_test;

TEST_CASE("a one-factor implicit model solves the scalar normal equations worked by hand", "[als]") {
  // R = [[2, 0], [0, 1]], y = (1, 2) at the start, α = 1, w0 = 1, λ = 0.5, so
  // w = 1 + r where observed, 1 elsewhere, and targets 1 where observed:
  // user 0: w = (3, 1): a = 3·1² + 1·2² + 0.5 = 7.5, b = 3·1 = 3     -> x0 = 0.4
  // user 1: w = (1, 2): a = 1·1² + 2·2² + 0.5 = 9.5, b = 2·2 = 4     -> x1 = 8/19
  // item 0: w = (3, 1): a = 3·x0² + x1² + 0.5, b = 3·x0
  // item 1: w = (1, 2): a = x0² + 2·x1² + 0.5, b = 2·x1
  mgpu::als model({.factors = 1, .iterations = 1, .regularization = 0.5, .alpha = 1.0});
  model.fit(policy_t("cpu"), from_dense({{2, 0}, {0, 1}}, 2), to_factors({{0.0}, {0.0}}),
            to_factors({{1.0}, {2.0}}));
  double const x0 = 0.4, x1 = 8.0 / 19.0;
  CHECK(model.user_factors()(0, 0) == Approx(x0).epsilon(1e-6));
  CHECK(model.user_factors()(1, 0) == Approx(x1).epsilon(1e-6));
  CHECK(model.item_factors()(0, 0) == Approx(3 * x0 / (3 * x0 * x0 + x1 * x1 + 0.5)).epsilon(1e-6));
  CHECK(model.item_factors()(1, 0) == Approx(2 * x1 / (x0 * x0 + 2 * x1 * x1 + 0.5)).epsilon(1e-6));
}

TEST_CASE("Cholesky: one iteration equals the dense Gaussian-elimination reference, both models", "[als]") {
  std::mt19937 rng(7);
  auto const r = random_interactions(rng, 13, 9, 0.3);
  auto const y0 = random_factors(rng, 9, 4);
  for (auto model_kind : {mgpu::als_model::implicit, mgpu::als_model::weighted}) {
    for (double w0 : {1.0, 0.2, 3.0}) {
      mgpu::als_options const o{.factors = 4, .iterations = 1, .regularization = 0.1, .alpha = 2.0,
                                .unobserved_weight = w0, .model = model_kind};
      mgpu::als model(o);
      model.fit(policy_t("cpu"), from_dense(r, 9), to_factors(random_factors(rng, 13, 4)), to_factors(y0));
      auto const x_ref = reference_half_step(r, y0, o);
      auto const x = to_dense(model.user_factors());
      CHECK(max_abs_diff(x, x_ref) <= 1e-5 * max_abs(x_ref));
      // Items are solved against the factors the library stored (float).
      auto const y_ref = reference_half_step(transpose_dense(r), x, o);
      CHECK(max_abs_diff(to_dense(model.item_factors()), y_ref) <= 1e-5 * max_abs(y_ref));
    }
  }
}

TEST_CASE("Cholesky: item factors satisfy their normal equations on real data, both models", "[als]") {
  auto const r = read_fixture();
  auto const rd = to_dense(r);
  for (auto model_kind : {mgpu::als_model::implicit, mgpu::als_model::weighted}) {
    mgpu::als_options const o{.factors = 8, .iterations = 3, .model = model_kind};
    mgpu::als model(o);
    model.fit(policy_t("cpu"), r);
    auto const x = to_dense(model.user_factors());
    auto const y = to_dense(model.item_factors());
    CHECK(worst_relative_residual(transpose_dense(rd), x, y, o) <= 1e-4);
  }
}

TEST_CASE("Cholesky: the loss never increases", "[als]") {
  auto const r = read_fixture();
  for (auto model_kind : {mgpu::als_model::implicit, mgpu::als_model::weighted}) {
    mgpu::als model({.factors = 6, .iterations = 6, .alpha = 0.5, .model = model_kind});
    model.fit(policy_t("cpu"), r);
    auto const& loss = model.loss_history();
    REQUIRE(loss.size() == 6);
    for (std::size_t i = 1; i < loss.size(); ++i) {
      INFO("iteration " << i + 1 << ": " << loss[i - 1] << " -> " << loss[i]);
      // Each half-step minimises L exactly in double; storing factors in float may only
      // move it by round-off.
      CHECK(loss[i] <= loss[i - 1] * (1 + 1e-6));
    }
  }
}

TEST_CASE("the reported loss is the objective summed over all pairs", "[als]") {
  std::mt19937 rng(3);
  auto const r = random_interactions(rng, 11, 7, 0.35);
  for (auto solver : {mgpu::als_solver::cholesky, mgpu::als_solver::conjugate_gradient}) {
    mgpu::als_options const o{.factors = 3, .iterations = 2, .regularization = 0.3, .alpha = 1.5,
                              .unobserved_weight = 0.7, .model = mgpu::als_model::weighted, .solver = solver};
    mgpu::als model(o);
    model.fit(policy_t("cpu"), from_dense(r, 7));
    double const expected = reference_loss(r, to_dense(model.user_factors()), to_dense(model.item_factors()), o);
    CHECK(model.loss_history().back() == Approx(expected).epsilon(1e-9));
  }
}

TEST_CASE("conjugate gradient with f steps reaches the Cholesky solution", "[als]") {
  std::mt19937 rng(11);
  auto const r = random_interactions(rng, 10, 8, 0.4);
  auto const x0 = random_factors(rng, 10, 5);
  auto const y0 = random_factors(rng, 8, 5);
  mgpu::als_options o{.factors = 5, .iterations = 1, .regularization = 0.5};
  mgpu::als exact(o);
  exact.fit(policy_t("cpu"), from_dense(r, 8), to_factors(x0), to_factors(y0));
  o.solver = mgpu::als_solver::conjugate_gradient;
  o.cg_steps = 5;
  mgpu::als cg(o);
  cg.fit(policy_t("cpu"), from_dense(r, 8), to_factors(x0), to_factors(y0));
  auto const xe = to_dense(exact.user_factors());
  CHECK(max_abs_diff(to_dense(cg.user_factors()), xe) <= 1e-3 * max_abs(xe));
}

TEST_CASE("conjugate gradient lowers the loss on real data", "[als]") {
  mgpu::als model({.factors = 8, .iterations = 5, .solver = mgpu::als_solver::conjugate_gradient});
  model.fit(policy_t("cpu"), read_fixture());
  auto const& loss = model.loss_history();
  CHECK(loss.back() < loss.front());
}

TEST_CASE("cpu:3 gives bitwise the factors and loss of cpu", "[als][concurrency]") {
  auto const r = read_fixture();
  for (auto solver : {mgpu::als_solver::cholesky, mgpu::als_solver::conjugate_gradient}) {
    mgpu::als_options const o{.factors = 5, .iterations = 2, .solver = solver};
    mgpu::als one(o), three(o);
    one.fit(policy_t("cpu"), r);
    three.fit(policy_t("cpu:3"), r);
    CHECK(to_dense(one.user_factors()) == to_dense(three.user_factors()));
    CHECK(to_dense(one.item_factors()) == to_dense(three.item_factors()));
    CHECK(one.loss_history() == three.loss_history());
  }
}

TEST_CASE("a fit on cpu:3 moves the initial scatter, one all_gather per side and iteration, the final gather",
          "[als][concurrency][transfers]") {
  // Users 0..4 with 4, 1, 1, 1, 1 entries (8 in all); items 0..3 with 3, 2, 2, 1.
  // nnz-balanced bounds (lower_bound of 8p/3 = 2, 5 on the row offsets): users
  // {0}, {1}, {2, 3, 4} from offsets 0 4 5 6 7 8; items {0}, {1}, {2, 3} from 0 3 5 7 8.
  auto const r = from_dense({{1, 2, 1, 3}, {1, 0, 0, 0}, {0, 2, 0, 0}, {4, 0, 0, 0}, {0, 0, 1, 0}}, 4);
  REQUIRE(mgpu::partition_rows_by_nnz(r.view(), 3) == std::vector<std::int32_t>{0, 1, 2, 5});
  REQUIRE(mgpu::partition_rows_by_nnz(mgpu::transpose(r.view()).view(), 3) == std::vector<std::int32_t>{0, 1, 2, 4});
  int constexpr host = mgpu::host_endpoint;
  int constexpr iterations = 4;
  std::uint64_t constexpr row = 2 * sizeof(float);  // f = 2
  std::uint64_t const users[3] = {1 * row, 1 * row, 3 * row};
  std::uint64_t const items[3] = {1 * row, 1 * row, 2 * row};
  for (auto solver : {mgpu::als_solver::cholesky, mgpu::als_solver::conjugate_gradient}) {
    INFO((solver == mgpu::als_solver::cholesky ? "cholesky" : "conjugate gradient"));
    policy_t const policy("cpu:3");
    auto& t = policy.devices().transfers();
    t.reset();
    mgpu::als model({.factors = 2, .iterations = iterations, .solver = solver});
    model.fit(policy, r);
    for (int d = 0; d < 3; ++d) {
      // Once: device d's user and item blocks scattered, all 4 items broadcast; its blocks
      // gathered back at the end.
      CHECK(t.bytes(host, d) == users[d] + items[d] + 4 * row);
      CHECK(t.bytes(d, host) == users[d] + items[d]);
      // Per iteration: device d's solved user block, then item block, to each other device.
      for (int e = 0; e < 3; ++e) {
        if (e != d) CHECK(t.bytes(d, e) == iterations * (users[d] + items[d]));
      }
    }
    // 5 users x 8 B and 4 items x 8 B: scatter 40 + 32, broadcast 3 x 32, per iteration
    // each block to 2 devices (2 x 40 + 2 x 32 = 144), final gather 40 + 32.
    CHECK(t.total() == 40 + 32 + 96 + iterations * 144 + 40 + 32);
    mgpu::als one({.factors = 2, .iterations = iterations, .solver = solver});
    one.fit(policy_t("cpu"), r);
    CHECK(to_dense(one.user_factors()) == to_dense(model.user_factors()));
    CHECK(to_dense(one.item_factors()) == to_dense(model.item_factors()));
  }
}

TEST_CASE("reliability row 6: more devices than rows, and empty matrices", "[als][concurrency]") {
  mgpu::als model({.factors = 2, .iterations = 2});
  model.fit(policy_t("cpu:4"), from_dense({{1, 0, 2}}, 3));
  CHECK(model.user_factors().rows() == 1);
  CHECK(model.item_factors().rows() == 3);
  model.fit(policy_t("cpu:2"), matrix(0, 0));
  CHECK(model.user_factors().rows() == 0);
  CHECK(model.item_factors().rows() == 0);
}

TEST_CASE("reliability row 12: users and items without entries get zero factors", "[als]") {
  // User 1 and item 2 are empty; regularization 0 is fine for the others (full rank).
  for (auto solver : {mgpu::als_solver::cholesky, mgpu::als_solver::conjugate_gradient}) {
    mgpu::als model({.factors = 2, .iterations = 3, .regularization = 0.0, .solver = solver});
    model.fit(policy_t("cpu"), from_dense({{1, 3, 0, 1}, {0, 0, 0, 0}, {2, 0, 0, 1}}, 4));
    CHECK(model.user_factors()(1, 0) == 0.0f);
    CHECK(model.user_factors()(1, 1) == 0.0f);
    CHECK(model.item_factors()(2, 0) == 0.0f);
    CHECK(model.item_factors()(2, 1) == 0.0f);
    auto const x = to_dense(model.user_factors());
    for (double v : x[0]) CHECK(std::isfinite(v));
  }
}

TEST_CASE("reliability row 12: a system that is not SPD raises numerical_error naming the row", "[als]") {
  // α = −1 gives r = 1 entries weight 0; with w0 = 0 and λ = 0, user 1 (whose only entry
  // is such) has the zero matrix as its system. User 0 has weight 2 on two items.
  mgpu::als model({.factors = 2, .iterations = 1, .regularization = 0.0, .alpha = -1.0,
                   .unobserved_weight = 0.0, .model = mgpu::als_model::weighted});
  auto const r = from_dense({{-1, -1, 0}, {0, 0, 1}, {-1, 0, -1}}, 3);
  auto const what = mgpu_test::message_of<mgpu::numerical_error>(
      [&] { model.fit(policy_t("cpu"), r, to_factors({{1, 0}, {1, 0}, {1, 0}}), to_factors({{1, 0}, {0, 1}, {1, 1}})); });
  CHECK_THAT(what, Catch::Contains("user 1"));
  CHECK_THAT(what, Catch::Contains("not symmetric positive definite"));
}

TEST_CASE("reliability row 7: NaN and Inf interactions are rejected", "[als]") {
  mgpu::als model({.factors = 2});
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    matrix const r(2, 3, std::vector<std::int32_t>{0, 1, 2}, std::vector<std::int32_t>{0, 2},
                   std::vector<float>{1.0f, bad});
    auto const what = mgpu_test::message_of<mgpu::invalid_argument>([&] { model.fit(policy_t("cpu"), r); });
    CHECK_THAT(what, Catch::Contains("row 1, column 2"));
  }
}

TEST_CASE("parameters that break positive definiteness are rejected", "[als]") {
  using mgpu::invalid_argument;
  CHECK_THROWS_AS(mgpu::als({.regularization = -0.1}), invalid_argument);
  CHECK_THROWS_AS(mgpu::als({.unobserved_weight = -1.0}), invalid_argument);
  CHECK_THROWS_AS(mgpu::als({.factors = 0}), invalid_argument);
  CHECK_THROWS_AS(mgpu::als({.solver = mgpu::als_solver::conjugate_gradient, .cg_steps = 0}), invalid_argument);
  // α < 0 is allowed while every observed weight 1 + α·r stays >= 0.
  mgpu::als model({.factors = 2, .iterations = 1, .alpha = -0.25});
  CHECK_NOTHROW(model.fit(policy_t("cpu"), from_dense({{4, 1}, {2, 0}}, 2)));
  auto const what = mgpu_test::message_of<invalid_argument>(
      [&] { model.fit(policy_t("cpu"), from_dense({{4, 1}, {5, 0}}, 2)); });
  CHECK_THAT(what, Catch::Contains("row 1, column 0"));
}

TEST_CASE("initial factors of the wrong shape are a dimension_mismatch", "[als]") {
  mgpu::als model({.factors = 2, .iterations = 1});
  CHECK_THROWS_AS(model.fit(policy_t("cpu"), from_dense({{1, 0}}, 2), factors_t(1, 2), factors_t(3, 2)),
                  mgpu::dimension_mismatch);
}

TEST_CASE("reliability row 12: 1024 factors work with both solvers", "[als]") {
  auto const r = from_dense({{1, 2}, {0, 3}, {4, 0}}, 2);
  auto const rd = to_dense(r);
  for (auto solver : {mgpu::als_solver::cholesky, mgpu::als_solver::conjugate_gradient}) {
    mgpu::als_options const o{.factors = 1024, .iterations = 1, .regularization = 0.5, .solver = solver};
    mgpu::als model(o);
    model.fit(policy_t("cpu"), r);
    REQUIRE(model.item_factors().cols() == 1024);
    if (solver == mgpu::als_solver::cholesky) {
      CHECK(worst_relative_residual(transpose_dense(rd), to_dense(model.user_factors()),
                                    to_dense(model.item_factors()), o) <= 1e-4);
    }
    auto const y = to_dense(model.item_factors());
    for (double v : y[0]) REQUIRE(std::isfinite(v));
  }
}

TEST_CASE("reliability row 11: 100000 factors are out_of_memory before anything is allocated", "[als][reliability]") {
  // f = 1e5: each f x f matrix of doubles is 8e10 bytes; one host device keeps the two
  // Gram matrices and the base (3 of them) plus its copy of the base in double and float
  // (1.5 more): 3.6e11 bytes, beyond any test machine. The 2 x 2 interactions have
  // 4 rows of factors: 4 x 1e5 floats = 1.6e6 bytes.
  for (auto const solver : {mgpu::als_solver::cholesky, mgpu::als_solver::conjugate_gradient}) {
    INFO((solver == mgpu::als_solver::cholesky ? "cholesky" : "conjugate gradient"));
    mgpu::als model({.factors = 100000, .iterations = 1, .solver = solver});
    auto const r = from_dense({{1, 0}, {0, 2}}, 2);
    try {
      model.fit(policy_t("cpu"), r);
      FAIL("the fit ran");
    } catch (mgpu::out_of_memory const& e) {
      CHECK(e.requested_bytes() > 360'000'000'000u);
      CHECK(e.available_bytes() < e.requested_bytes());
      CHECK_THAT(std::string(e.what()),
                 Catch::Matchers::Contains("ALS with 100000 factors needs ") &&
                     Catch::Matchers::Contains("1600000 of user and item factors (4 rows x 100000 floats)") &&
                     Catch::Matchers::Contains("360000000000 of f x f systems (80000000000 bytes each in double)"));
    }
    CHECK(model.user_factors().rows() == 0);
  }
}

TEST_CASE("early stopping ends the fit at the first iteration whose loss changed by less than the tolerance",
          "[als]") {
  std::mt19937 rng(21);
  auto const r = random_interactions(rng, 12, 9, 0.3);
  auto const x0 = random_factors(rng, 12, 3);
  auto const y0 = random_factors(rng, 9, 3);
  mgpu::als_options o{.factors = 3, .iterations = 12, .regularization = 0.1, .alpha = 2.0};
  // The loss sequence of exact half-steps in double (the reference), and its relative
  // changes d_i = |L_{i-1} − L_i| / L_{i-1}, i = 2..12.
  std::vector<double> loss, change(1, 0.0);
  dense x, y = y0;
  for (int i = 0; i < o.iterations; ++i) {
    x = reference_half_step(r, y, o);
    y = reference_half_step(transpose_dense(r), x, o);
    loss.push_back(reference_loss(r, x, y, o));
    if (i > 0) change.push_back(std::abs(loss[loss.size() - 2] - loss.back()) / loss[loss.size() - 2]);
  }
  // A tolerance between two consecutive changes, at least 10% away from every change
  // (float factors move the changes by about 1e-7 of L, far less): the fit must stop at
  // the first change below it.
  double tolerance = 0, margin = 0;
  std::size_t expected = 0;
  for (std::size_t i = 3; i + 2 < change.size(); ++i) {
    double const tol = std::sqrt(change[i] * change[i + 1]);
    double m = std::numeric_limits<double>::infinity();
    for (std::size_t j = 1; j < change.size(); ++j) m = std::min(m, std::abs(std::log(change[j] / tol)));
    std::size_t stop = 1;
    while (stop < change.size() && change[stop] >= tol) ++stop;
    if (m > margin) {
      margin = m;
      tolerance = tol;
      expected = stop + 1;  // change[i] belongs to iteration i + 1
    }
  }
  INFO("tolerance " << tolerance << ", expected stop after iteration " << expected);
  REQUIRE(margin > std::log(1.1));
  REQUIRE(expected >= 4);
  REQUIRE(expected < static_cast<std::size_t>(o.iterations));
  for (bool compute_loss : {true, false}) {
    for (char const* devices : {"cpu", "cpu:3"}) {
      auto options = o;
      options.loss_tolerance = tolerance;
      options.compute_loss = compute_loss;
      mgpu::als model(options);
      model.fit(policy_t(devices), from_dense(r, 9), to_factors(x0), to_factors(y0));
      CHECK(model.iteration_seconds().size() == expected);
      REQUIRE(model.loss_history().size() == expected);  // computed: early stopping needs it
      for (std::size_t i = 0; i < expected; ++i) CHECK(model.loss_history()[i] == Approx(loss[i]).epsilon(1e-6));
    }
  }
}

TEST_CASE("early stopping: tolerance 1 stops after the second iteration, tolerance 0 never stops", "[als]") {
  // Cholesky half-steps never increase L and L > 0 here, so |L1 − L2| < L1 always holds,
  // and |L_{i-1} − L_i| < 0 never does.
  auto const r = read_fixture();
  mgpu::als one({.factors = 4, .iterations = 6, .loss_tolerance = 1.0});
  one.fit(policy_t("cpu"), r);
  CHECK(one.iteration_seconds().size() == 2);
  REQUIRE(one.loss_history().size() == 2);
  CHECK(one.loss_history()[1] <= one.loss_history()[0]);
  mgpu::als zero({.factors = 4, .iterations = 6, .loss_tolerance = 0.0});
  zero.fit(policy_t("cpu"), r);
  CHECK(zero.iteration_seconds().size() == 6);
  CHECK_THROWS_AS(mgpu::als({.loss_tolerance = -1.0}), mgpu::invalid_argument);
  CHECK_THROWS_AS(mgpu::als({.loss_tolerance = std::numeric_limits<double>::quiet_NaN()}), mgpu::invalid_argument);
}

TEST_CASE("progress: (i, iterations) after every iteration on the calling thread, (i, i) when stopped early",
          "[als][concurrency]") {
  auto const r = read_fixture();
  auto const caller = std::this_thread::get_id();
  for (double tolerance : {0.0, 1.0}) {
    std::vector<std::pair<std::int64_t, std::int64_t>> calls;
    std::vector<int> iterations;
    bool other_thread = false;
    mgpu::als model({.factors = 3,
                     .iterations = 5,
                     .loss_tolerance = tolerance,
                     .on_iteration = [&](int it, double, double) { iterations.push_back(it); },
                     .progress = [&](std::int64_t done, std::int64_t total) {
                       other_thread = other_thread || std::this_thread::get_id() != caller;
                       calls.emplace_back(done, total);
                     }});
    model.fit(policy_t("cpu:3"), r);
    CHECK_FALSE(other_thread);
    std::vector<std::pair<std::int64_t, std::int64_t>> expected;
    if (tolerance == 0.0) {
      expected = {{1, 5}, {2, 5}, {3, 5}, {4, 5}, {5, 5}};
    } else {
      expected = {{1, 5}, {2, 2}};
    }
    CHECK(calls == expected);
    CHECK(iterations.size() == calls.size());  // on_iteration still called
  }
  std::vector<std::pair<std::int64_t, std::int64_t>> none;
  mgpu::als idle({.factors = 3, .iterations = 0, .progress = [&](std::int64_t d, std::int64_t t) { none.emplace_back(d, t); }});
  idle.fit(policy_t("cpu"), r);
  CHECK(none.empty());
}
