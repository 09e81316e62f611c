// GPU k-NN tests: every GPU result is compared with the host backend's on the same
// input (the host backend is tested against float64 brute force and numpy in
// test_knn.cpp). The data are small integers, so every dot product is exact on both
// sides and the neighbours must be identical. Runs only where a CUDA device is visible;
// see tests/cuda/test_cuda_main.cpp.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <utility>

#include <mgpu/backend/cuda/knn.cuh>
#include <mgpu/cuda.hpp>

#include "../test_support.hpp"

namespace {

template <class... A>
auto padded_knn(A&&... args) {
  return mgpu::knn(std::forward<A>(args)...).padded();
}

mgpu::dense_matrix<mgpu::cpu, float> random_matrix(std::int64_t rows, std::int64_t cols, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> value(-3, 3);
  mgpu::dense_matrix<mgpu::cpu, float> m(rows, cols);
  for (std::int64_t i = 0; i < rows * cols; ++i) m.data()[i] = static_cast<float>(value(gen));
  return m;
}

void require_same(mgpu::padded_topk<float> const& gpu, mgpu::padded_topk<float> const& host) {
  REQUIRE(gpu.ids.rows() == host.ids.rows());
  REQUIRE(gpu.ids.cols() == host.ids.cols());
  for (std::int64_t q = 0; q < host.ids.rows(); ++q) {
    for (std::int64_t j = 0; j < host.ids.cols(); ++j) {
      INFO("query " << q << ", rank " << j);
      REQUIRE(gpu.ids(q, j) == host.ids(q, j));
      REQUIRE(gpu.scores(q, j) == Approx(host.scores(q, j)).margin(1e-5));
    }
  }
}

void compare(std::int64_t n, std::int64_t q, std::int64_t d, std::int64_t k, mgpu::knn_metric metric,
             std::size_t budget = 0, mgpu::execution_policy<mgpu::gpu> const& devices = mgpu::execution_policy<mgpu::gpu>("cuda")) {
  auto const base = random_matrix(n, d, 1);
  auto const queries = random_matrix(q, d, 2);
  mgpu::execution_policy<mgpu::cpu> const host("cpu");
  auto const gpu = devices.with_memory_budget(budget);
  require_same(padded_knn(gpu, base, queries, k, metric), padded_knn(host, base, queries, k, metric));
}

}  // namespace

TEST_CASE("GPU knn l2 equals the host's", "[knn][gpu]") { compare(1000, 70, 33, 10, mgpu::knn_metric::l2); }

TEST_CASE("GPU knn inner product equals the host's", "[knn][gpu]") {
  compare(700, 50, 20, 7, mgpu::knn_metric::inner_product);
}

TEST_CASE("GPU knn cosine equals the host's", "[knn][gpu]") { compare(500, 40, 16, 5, mgpu::knn_metric::cosine); }

TEST_CASE("GPU knn with a small memory budget cuts the shard into chunks and merges them", "[knn][gpu]") {
  compare(3000, 100, 24, 12, mgpu::knn_metric::l2, std::size_t{1} << 20);
}

TEST_CASE("GPU knn pads with -1 when k exceeds the base", "[knn][gpu]") {
  auto const base = random_matrix(3, 4, 3);
  auto const queries = random_matrix(2, 4, 4);
  auto const r = padded_knn(mgpu::execution_policy<mgpu::gpu>("cuda"), base, queries, 5);
  CHECK(r.ids(1, 3) == -1);
  CHECK(r.scores(1, 4) == std::numeric_limits<float>::infinity());
  require_same(r, padded_knn(mgpu::execution_policy<mgpu::cpu>("cpu"), base, queries, 5));
}

TEST_CASE("GPU knn on two logical devices of one GPU equals the host's (exact merge)", "[knn][gpu]") {
  // MGPU_CUDA_SHARED_DEVICES=1 (testing only); the spec is built by hand because the
  // device-string parser refuses "cuda:0,0".
  ::setenv("MGPU_CUDA_SHARED_DEVICES", "1", 1);
  mgpu::device_spec spec;
  spec.kind = mgpu::device_spec::kind_id::cuda;
  spec.ordinals = {0, 0};
  spec.count = 2;
  spec.text = "cuda:0,0";
  mgpu::execution_policy<mgpu::gpu> const two(spec);
  ::unsetenv("MGPU_CUDA_SHARED_DEVICES");
  compare(777, 50, 24, 9, mgpu::knn_metric::l2, 0, two);
  compare(777, 50, 24, 9, mgpu::knn_metric::l2, std::size_t{64} << 10, two);  // chunks and halving
}

TEST_CASE("GPU knn_index built in two adds equals the host index, and moves its base once", "[knn][gpu][knn_index]") {
  auto const base = random_matrix(900, 20, 5);
  auto const queries = random_matrix(60, 20, 6);
  mgpu::dense_view<float const> const first{500, 20, 20, base.data()};
  mgpu::dense_view<float const> const second{400, 20, 20, base.data() + 500 * 20};
  mgpu::execution_policy<mgpu::gpu> const gpu("cuda");
  for (auto metric : {mgpu::knn_metric::l2, mgpu::knn_metric::inner_product, mgpu::knn_metric::cosine}) {
    auto& t = gpu.devices().transfers();
    t.reset();
    mgpu::knn_index<mgpu::gpu, float> on_gpu(gpu, 20, metric);
    on_gpu.add(first);
    on_gpu.add(second);
    // Each row's 20 values and its metric term, host -> device, once. (The queries' per-batch
    // uploads inside the leaf are plain copies, not counted by the set.)
    CHECK(t.received(0) == std::uint64_t{900} * 21 * 4);
    mgpu::knn_index<mgpu::cpu, float> on_host(mgpu::execution_policy<mgpu::cpu>("cpu"), 20, metric);
    on_host.add(base);
    for (int i = 0; i < 3; ++i) require_same(on_gpu.search(queries, 11).padded(), on_host.search(queries, 11).padded());
    CHECK(t.received(0) == std::uint64_t{900} * 21 * 4);
  }
}

TEST_CASE("GPU knn_index saved and loaded searches like before", "[knn][gpu][knn_index]") {
  auto const base = random_matrix(300, 12, 7);
  auto const queries = random_matrix(20, 12, 8);
  mgpu::execution_policy<mgpu::gpu> const gpu("cuda");
  mgpu::knn_index<mgpu::gpu, float> saved(gpu, 12, mgpu::knn_metric::l2);
  saved.add(base);
  mgpu_test::temp_dir dir;
  saved.save(dir / "index.knn");
  auto const loaded = mgpu::knn_index<mgpu::gpu, float>::load(gpu, dir / "index.knn");
  require_same(loaded.search(queries, 7).padded(), saved.search(queries, 7).padded());
}
