// Google Benchmark of the fused GEMM + top-k k-NN kernel on Fashion-MNIST-shaped data
// (60,000 x 784 base, 784-wide queries, k = 10), next to the ceiling it is measured
// against: one plain multi-threaded BLAS sgemm of the same shape with no selection.
// Counters: GFLOP/s = 2 q n d / time (the GEMM's flops; the selection is not counted).
//
//   bench_knn --benchmark_filter='knn_fused|sgemm' --benchmark_repetitions=3
//
// And single-query serving: q searches of one query each (k = 10) against a knn_index
// built once, next to q one-shot knn() calls (each one checks the base for NaN/Inf and
// computes its norms again before searching). Counters: ms_per_query; build_ms (the
// index's construction and add, outside the timed loop).
//
//   bench_knn --benchmark_filter='single_queries'
//
// Uses /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist) when present,
// random bytes otherwise (the selection's work depends on the data a little).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <filesystem>
#include <random>
#include <string>

#include <mgpu/algorithms/knn.hpp>
#include <mgpu/algorithms/knn_index.hpp>
#include <mgpu/backend/cpu/blas.hpp>
#include <mgpu/io/idx.hpp>

namespace {

struct data_set {
  mgpu::dense_matrix<mgpu::cpu, float> base;
  mgpu::dense_matrix<mgpu::cpu, float> queries;
};

data_set const& fashion() {
  static data_set const d = [] {
    std::filesystem::path const dir = "/usr/share/datasets/fashion-mnist";
    if (std::filesystem::exists(dir / "train-images-idx3-ubyte.gz")) {
      return data_set{mgpu::read_idx_matrix<float>(dir / "train-images-idx3-ubyte.gz"),
                      mgpu::read_idx_matrix<float>(dir / "t10k-images-idx3-ubyte.gz")};
    }
    std::mt19937 gen(1);
    std::uniform_int_distribution<int> byte(0, 255);
    data_set r{mgpu::dense_matrix<mgpu::cpu, float>(60000, 784), mgpu::dense_matrix<mgpu::cpu, float>(10000, 784)};
    for (auto* m : {&r.base, &r.queries}) {
      std::generate(m->data(), m->data() + m->rows() * m->cols(), [&] { return static_cast<float>(byte(gen)); });
    }
    return r;
  }();
  return d;
}

mgpu::dense_view<float const> first_rows(mgpu::dense_matrix<mgpu::cpu, float> const& m, std::int64_t rows) {
  return {std::min(rows, m.rows()), m.cols(), m.ld(), m.data()};
}

void set_flops(benchmark::State& state, std::int64_t q, std::int64_t n, std::int64_t d) {
  double const flops = 2.0 * static_cast<double>(q) * static_cast<double>(n) * static_cast<double>(d);
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// Args: queries, query_block, base_block, devices (1: "cpu", N: "cpu:N").
void knn_fused(benchmark::State& state) {
  auto const& d = fashion();
  auto const queries = first_rows(d.queries, state.range(0));
  mgpu::knn_options const options{.query_block = state.range(1), .base_block = state.range(2)};
  auto const devices = state.range(3) == 1 ? std::string("cpu") : "cpu:" + std::to_string(state.range(3));
  mgpu::execution_policy<mgpu::cpu> const policy(devices);
  for (auto _ : state) {
    auto r = mgpu::knn(policy, d.base.view(), queries, 10, mgpu::knn_metric::l2, options);
    benchmark::DoNotOptimize(r.ids.data());
  }
  set_flops(state, queries.rows, d.base.rows(), d.base.cols());
}
BENCHMARK(knn_fused)
    ->ArgNames({"q", "qblock", "bblock", "devices"})
    ->Args({10000, 0, 0, 1})
    ->Args({10000, 0, 0, 2})
    // Tile shapes, on 4000 queries.
    ->ArgsProduct({{4000}, {256, 512, 1024}, {256, 512, 1024, 2048}, {1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime();

// Batches of state.range(1) queries on cpu:N (N = state.range(2)): with several batches,
// the devices search batch i+1 while the calling thread merges batch i.
void knn_batched(benchmark::State& state) {
  auto const& d = fashion();
  auto const queries = first_rows(d.queries, state.range(0));
  mgpu::knn_options const options{.query_batch = state.range(1)};
  mgpu::execution_policy<mgpu::cpu> const policy("cpu:" + std::to_string(state.range(2)));
  for (auto _ : state) {
    auto r = mgpu::knn(policy, d.base.view(), queries, 100, mgpu::knn_metric::l2, options);
    benchmark::DoNotOptimize(r.ids.data());
  }
  set_flops(state, queries.rows, d.base.rows(), d.base.cols());
}
BENCHMARK(knn_batched)
    ->ArgNames({"q", "batch", "devices"})
    ->Args({4000, 250, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Args: single-query searches, devices (1: "cpu", N: "cpu:N"); `indexed`: knn_index::search
// on an index built once, else one knn() call per query.
void single_queries(benchmark::State& state, bool indexed) {
  auto const& d = fashion();
  auto const queries = std::min(state.range(0), d.queries.rows());
  auto const devices = state.range(1) == 1 ? std::string("cpu") : "cpu:" + std::to_string(state.range(1));
  mgpu::execution_policy<mgpu::cpu> const policy(devices);
  std::optional<mgpu::knn_index<mgpu::cpu, float>> index;
  if (indexed) {
    auto const start = std::chrono::steady_clock::now();
    index.emplace(policy, d.base.cols(), mgpu::knn_metric::l2);
    index->add(d.base);
    state.counters["build_ms"] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }
  double seconds = 0;
  for (auto _ : state) {
    auto const start = std::chrono::steady_clock::now();
    for (std::int64_t q = 0; q < queries; ++q) {
      mgpu::dense_view<float const> const one{1, d.queries.cols(), d.queries.ld(), d.queries.data() + q * d.queries.ld()};
      auto r = indexed ? index->search(one, 10) : mgpu::knn(policy, d.base.view(), one, 10);
      benchmark::DoNotOptimize(r.ids.data());
    }
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  state.counters["ms_per_query"] =
      seconds * 1e3 / static_cast<double>(queries * static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK_CAPTURE(single_queries, index, true)
    ->ArgNames({"q", "devices"})
    ->ArgsProduct({{1000, 10000}, {1, 2}})
    ->Iterations(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(single_queries, one_shot, false)
    ->ArgNames({"q", "devices"})
    ->ArgsProduct({{1000, 10000}, {1, 2}})
    ->Iterations(1)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();

// The ceiling: q x n x d sgemm with BLAS's own threads, writing the whole q x n matrix.
void sgemm(benchmark::State& state) {
  auto const& d = fashion();
  auto const queries = first_rows(d.queries, state.range(0));
  mgpu::dense_matrix<mgpu::cpu, float> c(queries.rows, d.base.rows());
  for (auto _ : state) {
    mgpu::backend::cpu::blas::gemm<float>(mgpu::backend::cpu::blas::op::none,
                                          mgpu::backend::cpu::blas::op::transpose, queries.rows,
                                          d.base.rows(), d.base.cols(), 1.0f, queries.data, queries.ld,
                                          d.base.data(), d.base.ld(), 0.0f, c.data(), c.ld());
    benchmark::DoNotOptimize(c.data());
  }
  set_flops(state, queries.rows, d.base.rows(), d.base.cols());
}
BENCHMARK(sgemm)->ArgName("q")->Arg(10000)->Arg(4000)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
