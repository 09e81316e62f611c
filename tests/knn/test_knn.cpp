// Brute-force k-NN on host devices, against a float64 brute-force reference written in
// the test (knn_test_support.hpp), hand-computed cases, and the numpy float64 neighbours
// of a Fashion-MNIST subset (tests/data/knn, made by make_knn_fixtures.py).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <mgpu/algorithms/knn.hpp>
#include <mgpu/io/idx.hpp>

#include "../test_support.hpp"
#include "knn_test_support.hpp"

namespace {

using Catch::Matchers::Contains;
using mgpu::knn_metric;

mgpu::execution_policy<mgpu::cpu> const& host() {
  static mgpu::execution_policy<mgpu::cpu> const policy("cpu");
  return policy;
}

mgpu::dense_matrix<mgpu::cpu, float> matrix(std::int64_t rows, std::int64_t cols, std::vector<float> const& v) {
  mgpu::dense_matrix<mgpu::cpu, float> m(rows, cols);
  std::copy(v.begin(), v.end(), m.data());
  return m;
}

// Values exact in float (small integers): the same rows, in the same order, and values
// equal to the float64 reference.
void require_exact(mgpu::padded_topk<float> const& got, std::vector<knn_test::reference_row> const& expected) {
  for (std::size_t q = 0; q < expected.size(); ++q) {
    auto const& row = expected[q];
    for (std::size_t j = 0; j < row.indices.size(); ++j) {
      auto const qi = static_cast<std::int64_t>(q), jj = static_cast<std::int64_t>(j);
      INFO("query " << q << ", rank " << j);
      REQUIRE(got.ids(qi, jj) == row.indices[j]);
      REQUIRE(static_cast<double>(got.scores(qi, jj)) == Approx(row.values[j]).epsilon(1e-6).margin(1e-6));
    }
  }
}

}  // namespace

TEST_CASE("knn l2 finds the nearest points of a hand-made example, best first", "[knn]") {
  // Base points (0,0), (3,4), (1,1), (0,2); query (1,0): squared distances 1, 20, 1, 5.
  auto const base = matrix(4, 2, {0, 0, 3, 4, 1, 1, 0, 2});
  auto const queries = matrix(1, 2, {1, 0});
  auto const [distances, indices] = padded_knn(host(), base, queries, 3);
  CHECK(indices(0, 0) == 0);  // tie at 1 with row 2: the smaller index first
  CHECK(indices(0, 1) == 2);
  CHECK(indices(0, 2) == 3);
  CHECK(distances(0, 0) == 1.0f);
  CHECK(distances(0, 1) == 1.0f);
  CHECK(distances(0, 2) == 5.0f);
}

TEST_CASE("knn accepts views of mutable data", "[knn]") {
  auto base = matrix(3, 1, {5, 1, 2});
  auto queries = matrix(1, 1, {0});
  auto const r = padded_knn(host(), base.view(), queries.view(), 2);
  CHECK(r.ids(0, 0) == 1);
  CHECK(r.ids(0, 1) == 2);
  CHECK(r.scores(0, 1) == 4.0f);
}

TEST_CASE("knn inner product and cosine rank by similarity, largest first", "[knn]") {
  // Query (1,1): inner products 0, 7, 2, 2; cosines 0, 7/(5√2), 1, 1/√2.
  auto const base = matrix(4, 2, {0, 0, 3, 4, 1, 1, 0, 2});
  auto const queries = matrix(1, 2, {1, 1});
  auto const ip = padded_knn(host(), base, queries, 4, knn_metric::inner_product);
  CHECK(ip.ids(0, 0) == 1);
  CHECK(ip.ids(0, 1) == 2);
  CHECK(ip.ids(0, 2) == 3);
  CHECK(ip.ids(0, 3) == 0);
  CHECK(ip.scores(0, 0) == 7.0f);
  auto const cos = padded_knn(host(), base, queries, 4, knn_metric::cosine);
  CHECK(cos.ids(0, 0) == 2);
  CHECK(cos.ids(0, 1) == 1);
  CHECK(cos.ids(0, 2) == 3);
  CHECK(cos.ids(0, 3) == 0);
  CHECK(cos.scores(0, 0) == Approx(1.0));
  CHECK(cos.scores(0, 1) == Approx(7.0 / (5.0 * std::sqrt(2.0))));
  CHECK(cos.scores(0, 2) == Approx(1.0 / std::sqrt(2.0)));
}

TEST_CASE("knn l2 and inner product equal a float64 brute force on exact data", "[knn]") {
  auto const base = knn_test::random_matrix(300, 17, -4, 4, 1);
  auto const queries = knn_test::random_matrix(40, 17, -4, 4, 2);
  for (auto metric : {knn_metric::l2, knn_metric::inner_product}) {
    for (std::int64_t k : {1, 7, 64}) {
      INFO("metric " << static_cast<int>(metric) << ", k " << k);
      require_exact(padded_knn(host(), base, queries, k, metric),
                    knn_test::reference_knn(base.view(), queries.view(), k, metric));
    }
  }
}

TEST_CASE("knn cosine agrees with a float64 brute force up to round-off", "[knn]") {
  auto const base = knn_test::random_matrix(200, 9, 0, 3, 3);
  auto const queries = knn_test::random_matrix(30, 9, 0, 3, 4);
  std::int64_t const k = 8;
  auto const got = padded_knn(host(), base, queries, k, knn_metric::cosine);
  auto const expected = knn_test::reference_knn(base.view(), queries.view(), k, knn_metric::cosine);
  for (std::int64_t q = 0; q < queries.rows(); ++q) {
    for (std::int64_t j = 0; j < k; ++j) {
      auto const& row = expected[static_cast<std::size_t>(q)];
      INFO("query " << q << ", rank " << j);
      CHECK(static_cast<double>(got.scores(q, j)) == Approx(row.values[static_cast<std::size_t>(j)]).margin(1e-6));
      // A different row only where its exact cosine ties the reference's within round-off.
      auto const mine = knn_test::exact_value(queries.view(), q, base.view(), got.ids(q, j), knn_metric::cosine);
      CHECK(mine == Approx(row.values[static_cast<std::size_t>(j)]).margin(1e-6));
    }
  }
}

TEST_CASE("reliability row 10: equal distances break toward the smaller base index", "[knn][reliability]") {
  // Rows 1, 3 and 4 are the same point; row 0 and row 2 are farther away.
  auto const base = matrix(5, 2, {9, 9, 1, 2, 5, 5, 1, 2, 1, 2});
  auto const queries = matrix(1, 2, {1, 2});
  for (auto metric : {knn_metric::l2, knn_metric::cosine}) {
    auto const r = padded_knn(host(), base, queries, 3, metric);
    CHECK(r.ids(0, 0) == 1);
    CHECK(r.ids(0, 1) == 3);
    CHECK(r.ids(0, 2) == 4);
  }
}

TEST_CASE("reliability row 10: k larger than the base pads with index -1", "[knn][reliability]") {
  auto const base = matrix(2, 1, {0, 3});
  auto const queries = matrix(1, 1, {1});
  auto const l2 = padded_knn(host(), base, queries, 4);
  CHECK(l2.ids(0, 0) == 0);
  CHECK(l2.ids(0, 1) == 1);
  CHECK(l2.ids(0, 2) == -1);
  CHECK(l2.ids(0, 3) == -1);
  CHECK(l2.scores(0, 1) == 4.0f);
  CHECK(l2.scores(0, 2) == std::numeric_limits<float>::infinity());
  auto const ip = padded_knn(host(), base, queries, 3, knn_metric::inner_product);
  CHECK(ip.ids(0, 0) == 1);
  CHECK(ip.ids(0, 2) == -1);
  CHECK(ip.scores(0, 2) == -std::numeric_limits<float>::infinity());
}

TEST_CASE("reliability row 10: k <= 0 is invalid_argument", "[knn][reliability]") {
  auto const base = matrix(2, 1, {0, 3});
  for (std::int64_t k : {0, -1}) {
    auto const msg = mgpu_test::message_of<mgpu::invalid_argument>([&] { padded_knn(host(), base, base, k); });
    CHECK_THAT(msg, Contains("k must be at least 1, got " + std::to_string(k)));
  }
}

TEST_CASE("reliability row 8: queries and base of different widths", "[knn][reliability]") {
  auto const base = matrix(2, 3, {0, 1, 2, 3, 4, 5});
  auto const queries = matrix(1, 2, {0, 1});
  auto const msg = mgpu_test::message_of<mgpu::dimension_mismatch>([&] { padded_knn(host(), base, queries, 1); });
  CHECK_THAT(msg, Contains("2 x 3") && Contains("1 x 2"));
}

TEST_CASE("reliability row 7: NaN or Inf is rejected with its position", "[knn][reliability]") {
  auto const base = matrix(3, 2, {0, 1, 2, std::numeric_limits<float>::quiet_NaN(), 4, 5});
  auto const queries = matrix(1, 2, {0, std::numeric_limits<float>::infinity()});
  auto const good = matrix(1, 2, {0, 1});
  CHECK_THAT(mgpu_test::message_of<mgpu::invalid_argument>([&] { padded_knn(host(), base, good, 1); }),
             Contains("the base has a non-finite value (nan) at row 1, column 1"));
  CHECK_THAT(mgpu_test::message_of<mgpu::invalid_argument>([&] { padded_knn(host(), good, queries, 1); }),
             Contains("the queries has a non-finite value (inf) at row 0, column 1"));
}

TEST_CASE("reliability row 6: empty queries, empty base and zero-width vectors", "[knn][reliability]") {
  auto const base = matrix(2, 2, {0, 1, 2, 3});
  mgpu::dense_matrix<mgpu::cpu, float> const none(0, 2);
  auto const no_queries = padded_knn(host(), base, none, 3);
  CHECK(no_queries.ids.rows() == 0);
  CHECK(no_queries.ids.cols() == 3);
  auto const no_base = padded_knn(host(), none, base, 2);
  CHECK(no_base.ids(1, 1) == -1);
  CHECK(no_base.scores(1, 1) == std::numeric_limits<float>::infinity());
  // d = 0: every distance is 0, so the ranking is by index.
  mgpu::dense_matrix<mgpu::cpu, float> const flat_base(3, 0), flat_query(1, 0);
  auto const flat = padded_knn(host(), flat_base, flat_query, 2);
  CHECK(flat.ids(0, 0) == 0);
  CHECK(flat.ids(0, 1) == 1);
  CHECK(flat.scores(0, 1) == 0.0f);
}

TEST_CASE("reliability row 9: cosine with zero rows gives similarity 0, never NaN", "[knn][reliability]") {
  auto const base = matrix(3, 2, {0, 0, -1, 0, 1, 1});
  auto const queries = matrix(2, 2, {0, 0, 1, 0});
  auto const r = padded_knn(host(), base, queries, 3, knn_metric::cosine);
  // The zero query: every similarity is 0; ties by index.
  CHECK(r.ids(0, 0) == 0);
  CHECK(r.ids(0, 2) == 2);
  CHECK(r.scores(0, 2) == 0.0f);
  // Query (1,0): row 2 (1/√2), the zero row (0), then row 1 (-1).
  CHECK(r.ids(1, 0) == 2);
  CHECK(r.ids(1, 1) == 0);
  CHECK(r.ids(1, 2) == 1);
  CHECK(r.scores(1, 1) == 0.0f);
  CHECK(r.scores(1, 2) == -1.0f);
}

TEST_CASE("knn results do not depend on the tile shape or the query batch", "[knn]") {
  auto const base = knn_test::random_matrix(157, 11, -3, 3, 5);
  auto const queries = knn_test::random_matrix(23, 11, -3, 3, 6);
  auto const expected = knn_test::reference_knn(base.view(), queries.view(), 5, knn_metric::l2);
  for (auto const& options : {mgpu::knn_options{.query_batch = 4, .query_block = 3, .base_block = 5},
                              mgpu::knn_options{.query_batch = 0, .query_block = 1, .base_block = 160},
                              mgpu::knn_options{.query_batch = 1, .query_block = 0, .base_block = 16}}) {
    require_exact(padded_knn(host(), base, queries, 5, knn_metric::l2, options), expected);
  }
}

TEST_CASE("knn_vote takes the most frequent label, ties toward the smaller label", "[knn]") {
  std::vector<int> const labels{7, 3, 3, 7, 5, 9};
  mgpu::dense_matrix<mgpu::cpu, std::int64_t> indices(3, 4);
  std::vector<std::int64_t> const rows{0, 1, 2, 4,    // 3 twice: 3
                                       0, 3, 1, 2,    // 7 twice, 3 twice: 3 (smaller)
                                       5, -1, -1, -1};  // padding does not vote: 9
  std::copy(rows.begin(), rows.end(), indices.data());
  CHECK(mgpu::knn_vote(indices, std::span<int const>(labels)) == std::vector<int>{3, 3, 9});
}

TEST_CASE("knn_vote rejects rows without neighbours and indices beyond the labels", "[knn]") {
  std::vector<int> const labels{1, 2};
  mgpu::dense_matrix<mgpu::cpu, std::int64_t> empty_row(1, 2, std::int64_t{-1});
  CHECK_THAT(mgpu_test::message_of<mgpu::invalid_argument>(
                 [&] { mgpu::knn_vote(empty_row, std::span<int const>(labels)); }),
             Contains("row 0 has no neighbours"));
  mgpu::dense_matrix<mgpu::cpu, std::int64_t> beyond(1, 1, std::int64_t{2});
  CHECK_THAT(mgpu_test::message_of<mgpu::invalid_argument>(
                 [&] { mgpu::knn_vote(beyond, std::span<int const>(labels)); }),
             Contains("names neighbour 2 but there are 2 labels"));
}

namespace {

struct expected_neighbour {
  std::int64_t query, rank, index;
  double value;
};

std::vector<expected_neighbour> read_expected(std::string const& name) {
  std::ifstream in(std::string(MGPU_TEST_DATA_DIR) + "/knn/" + name);
  REQUIRE(in);
  std::vector<expected_neighbour> out;
  expected_neighbour e{};
  while (in >> e.query >> e.rank >> e.index >> e.value) out.push_back(e);
  return out;
}

}  // namespace

TEST_CASE("knn on a Fashion-MNIST subset agrees with numpy's float64 neighbours", "[knn]") {
  auto const dir = std::string(MGPU_TEST_DATA_DIR) + "/knn/";
  auto const base = mgpu::read_idx_matrix<float>(dir + "fashion-train-300-images.idx3-ubyte.gz");
  auto const queries = mgpu::read_idx_matrix<float>(dir + "fashion-test-20-images.idx3-ubyte.gz");
  REQUIRE(base.rows() == 300);
  REQUIRE(base.cols() == 784);
  for (auto [metric, name] : {std::pair{knn_metric::l2, "expected_l2.tsv"},
                              std::pair{knn_metric::inner_product, "expected_ip.tsv"},
                              std::pair{knn_metric::cosine, "expected_cosine.tsv"}}) {
    auto const got = padded_knn(host(), base, queries, 10, metric);
    for (auto const& e : read_expected(name)) {
      INFO(name << ": query " << e.query << ", rank " << e.rank);
      // float32 round-off of values up to ~5e7 (l2, ip) or 1 (cosine).
      double const tol = metric == knn_metric::cosine ? 1e-6 : 1e-6 * std::abs(e.value) + 64;
      CHECK(std::abs(static_cast<double>(got.scores(e.query, e.rank)) - e.value) <= tol);
      // Same row, unless the row found ties the expected one within round-off.
      if (got.ids(e.query, e.rank) != e.index) {
        double const mine = knn_test::exact_value(queries.view(), e.query, base.view(),
                                                  got.ids(e.query, e.rank), metric);
        CHECK(std::abs(mine - e.value) <= tol);
      }
    }
  }
}

TEST_CASE("knn_vote on the Fashion-MNIST subset matches numpy's majority labels", "[knn]") {
  auto const dir = std::string(MGPU_TEST_DATA_DIR) + "/knn/";
  auto const base = mgpu::read_idx_matrix<float>(dir + "fashion-train-300-images.idx3-ubyte.gz");
  auto const queries = mgpu::read_idx_matrix<float>(dir + "fashion-test-20-images.idx3-ubyte.gz");
  auto const labels = mgpu::read_idx_vector<int>(dir + "fashion-train-300-labels.idx1-ubyte.gz");
  auto const r = mgpu::knn(host(), base, queries, 10);
  auto const votes = mgpu::knn_vote(r, labels);  // the result and a std::vector, directly
  auto const padded_votes = mgpu::knn_vote(r.padded().ids, std::span<int const>(labels));
  std::ifstream in(dir + "expected_vote.tsv");
  std::int64_t q = 0;
  int label = 0;
  int checked = 0;
  while (in >> q >> label) {
    CHECK(votes[static_cast<std::size_t>(q)] == label);
    CHECK(padded_votes[static_cast<std::size_t>(q)] == label);
    ++checked;
  }
  CHECK(checked == 20);
}

TEST_CASE("knn: matrices and views, writable or not, mix freely", "[knn]") {
  // Issue 18: a dense_matrix base with a dense_view of the caller's queries did not compile.
  mgpu::execution_policy<mgpu::cpu> const policy("cpu");
  mgpu::dense_matrix<mgpu::cpu, float> base(3, 1, std::vector<float>{0.f, 10.f, 4.f});
  std::vector<float> q{3.f};
  mgpu::dense_view<float> const writable{1, 1, 1, q.data()};
  mgpu::dense_view<float const> const read_only{1, 1, 1, q.data()};
  auto const a = padded_knn(policy, base, writable, 2);
  auto const b = padded_knn(policy, base.view(), read_only, 2);
  auto const c = padded_knn(policy, read_only, base, 1);
  CHECK(a.ids(0, 0) == 2);  // |3 - 4| = 1
  CHECK(a.ids(0, 1) == 0);  // |3 - 0| = 3
  CHECK(b.ids(0, 0) == 2);
  CHECK(b.ids(0, 1) == 0);
  CHECK(c.ids(0, 0) == 0);  // from 0, 10 or 4: the only base row
  CHECK(c.ids(1, 0) == 0);
  CHECK(c.ids(2, 0) == 0);
}
