// k-NN on several host devices at once (cpu:N runs the shards concurrently; run under
// ThreadSanitizer in CI): the base is split into shards and their lists are merged, and
// the result must be the one a single device gives, which the float64 brute force
// confirms. Data are small integers, so every distance is exact and ties are frequent.
#include <catch2/catch.hpp>

#include <cstdint>
#include <memory>
#include <string>

#include <mgpu/algorithms/knn.hpp>

#include "knn_test_support.hpp"

namespace {

void require_same(mgpu::padded_topk<float> const& a, mgpu::padded_topk<float> const& b) {
  REQUIRE(a.ids.rows() == b.ids.rows());
  REQUIRE(a.ids.cols() == b.ids.cols());
  for (std::int64_t q = 0; q < a.ids.rows(); ++q) {
    for (std::int64_t j = 0; j < a.ids.cols(); ++j) {
      INFO("query " << q << ", rank " << j);
      REQUIRE(a.ids(q, j) == b.ids(q, j));
      REQUIRE(a.scores(q, j) == b.scores(q, j));
    }
  }
}

}  // namespace

TEST_CASE("knn on cpu:2 and cpu:3 gives exactly the neighbours of cpu", "[knn][concurrency]") {
  auto const base = knn_test::random_matrix(211, 13, -3, 3, 11);
  auto const queries = knn_test::random_matrix(37, 13, -3, 3, 12);
  for (auto metric : {mgpu::knn_metric::l2, mgpu::knn_metric::inner_product, mgpu::knn_metric::cosine}) {
    auto const one = padded_knn(mgpu::execution_policy<mgpu::cpu>("cpu"), base, queries, 9, metric);
    auto const reference = knn_test::reference_knn(base.view(), queries.view(), 9, metric);
    if (metric != mgpu::knn_metric::cosine) {
      for (std::int64_t q = 0; q < queries.rows(); ++q) {
        for (std::int64_t j = 0; j < 9; ++j) {
          REQUIRE(one.ids(q, j) == reference[static_cast<std::size_t>(q)].indices[static_cast<std::size_t>(j)]);
        }
      }
    }
    for (char const* devices : {"cpu:2", "cpu:3"}) {
      INFO(devices << ", metric " << static_cast<int>(metric));
      mgpu::knn_options const small_batches{.query_batch = 10};
      require_same(padded_knn(mgpu::execution_policy<mgpu::cpu>(devices), base, queries, 9, metric, small_batches),
                   one);
    }
  }
}

TEST_CASE("reliability row 6: fewer base rows than devices", "[knn][concurrency][reliability]") {
  auto const base = knn_test::random_matrix(2, 4, -3, 3, 13);
  auto const queries = knn_test::random_matrix(5, 4, -3, 3, 14);
  auto const one = padded_knn(mgpu::execution_policy<mgpu::cpu>("cpu"), base, queries, 3);
  auto const three = padded_knn(mgpu::execution_policy<mgpu::cpu>("cpu:3"), base, queries, 3);
  require_same(three, one);
  CHECK(three.ids(0, 2) == -1);
}

TEST_CASE("knn with fewer query blocks than threads splits the shard between threads", "[knn][concurrency]") {
  // One device with 4 threads and 3 queries: each thread searches part of the base and
  // the parts are merged.
  auto const base = knn_test::random_matrix(300, 6, -3, 3, 15);
  auto const queries = knn_test::random_matrix(3, 6, -3, 3, 16);
  mgpu::execution_policy<mgpu::cpu> const four_threads(std::make_shared<mgpu::device_set<mgpu::cpu>>(1, 4u));
  mgpu::knn_options const small_tiles{.base_block = 32};
  auto const r = padded_knn(four_threads, base, queries, 20, mgpu::knn_metric::l2, small_tiles);
  auto const reference = knn_test::reference_knn(base.view(), queries.view(), 20, mgpu::knn_metric::l2);
  for (std::int64_t q = 0; q < queries.rows(); ++q) {
    for (std::int64_t j = 0; j < 20; ++j) {
      INFO("query " << q << ", rank " << j);
      REQUIRE(r.ids(q, j) == reference[static_cast<std::size_t>(q)].indices[static_cast<std::size_t>(j)]);
    }
  }
}
