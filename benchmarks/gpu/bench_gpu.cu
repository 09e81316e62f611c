// benchmarks/gpu/bench_gpu.cu — the GPU leaves end to end, as a user calls them:
//
//   BM_spmv    distributed_csr<gpu>::spmv on a random n x n CSR (x uploaded, y
//              downloaded each call); bytes = values + column indices + row offsets + x + y
//   BM_cosine  cosine_topk on a random sparse corpus against itself, k = 10; FLOPs =
//              2 x the products SpGEMM forms (Σ over query entries of the term's df)
//   BM_knn     knn (l2, k = 10) of random dense queries against a random base; FLOPs =
//              2 q n d (the GEMM)
//   BM_als     one ALS iteration (Cholesky, implicit) on a synthetic MovieLens-shaped
//              matrix; FLOPs = 2 nnz f² (forming the systems) + (users + items) f³ / 3
//
// Each reports bytes/s or FLOP/s and the fraction of the device's roofline: `hbm_GBps`
// from cudaDevAttrMemoryClockRate x cudaDevAttrGlobalMemoryBusWidth (x 2, double data
// rate) and `sgemm_TFLOPs` measured by a cuBLAS 8192³ SGEMM when the program starts; both
// are printed in the benchmark context. Without a usable GPU it prints why and exits 77.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <mgpu/cuda.hpp>

#include "make_interactions.hpp"

namespace {

struct roofline {
  double hbm_bytes_per_s = 0;
  double sgemm_flops_per_s = 0;
};

roofline& device_roofline() {
  static roofline r;
  return r;
}

// Peak memory bandwidth from the device's attributes (the memory clock is in kHz).
double hbm_bytes_per_s(int ordinal) {
  int clock_khz = 0;
  int bus_bits = 0;
  MGPU_CUDA_TRY(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, ordinal));
  MGPU_CUDA_TRY(cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, ordinal));
  return 2.0 * static_cast<double>(clock_khz) * 1e3 * static_cast<double>(bus_bits) / 8.0;
}

// SGEMM throughput measured with cuBLAS (best of 5 runs of 8192³).
double sgemm_flops_per_s() {
  mgpu::device_set<mgpu::gpu> set(mgpu::parse_device_string("cuda:0"));
  auto& ctx = set[0];
  constexpr int n = 8192;
  auto const elements = static_cast<std::size_t>(n) * n;
  mgpu::buffer<float, mgpu::gpu> a(elements, ctx.work), b(elements, ctx.work), c(elements, ctx.work);
  MGPU_CUDA_TRY(cudaMemsetAsync(a.data(), 0, elements * sizeof(float), ctx.work.handle()));
  MGPU_CUDA_TRY(cudaMemsetAsync(b.data(), 0, elements * sizeof(float), ctx.work.handle()));
  mgpu::backend::cuda::device_guard guard(0);
  float const one = 1;
  float const zero = 0;
  double best = 1e30;
  for (int rep = 0; rep < 5; ++rep) {
    ctx.work.synchronize();
    auto const t0 = std::chrono::steady_clock::now();
    MGPU_CUBLAS_TRY(cublasSgemm(ctx.libraries.cublas(), CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a.data(), n,
                                b.data(), n, &zero, c.data(), n));
    ctx.work.synchronize();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 2.0 * n * static_cast<double>(n) * n / best;
}

void report_bytes(benchmark::State& state, double bytes) {
  state.counters["bytes_per_s"] = benchmark::Counter(bytes, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["pct_hbm"] = benchmark::Counter(bytes * 100.0 / device_roofline().hbm_bytes_per_s,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void report_flops(benchmark::State& state, double flops) {
  state.counters["flops_per_s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["pct_sgemm"] = benchmark::Counter(flops * 100.0 / device_roofline().sgemm_flops_per_s,
                                                   benchmark::Counter::kIsIterationInvariantRate);
}

mgpu::csr_matrix<mgpu::cpu, float, std::int32_t> random_csr(std::int64_t rows, std::int64_t cols,
                                                           std::int64_t per_row, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<std::int64_t> column(0, cols - 1);
  std::uniform_real_distribution<float> value(0.1f, 1.0f);
  std::vector<std::int32_t> offsets{0};
  std::vector<std::int32_t> columns;
  std::vector<float> values;
  std::vector<std::int32_t> row;
  for (std::int64_t r = 0; r < rows; ++r) {
    row.clear();
    for (std::int64_t j = 0; j < per_row; ++j) row.push_back(static_cast<std::int32_t>(column(gen)));
    std::sort(row.begin(), row.end());
    row.erase(std::unique(row.begin(), row.end()), row.end());
    for (auto c : row) {
      columns.push_back(c);
      values.push_back(value(gen));
    }
    offsets.push_back(static_cast<std::int32_t>(columns.size()));
  }
  return {rows, cols, offsets, columns, values};
}

void BM_spmv(benchmark::State& state) {
  std::int64_t const n = state.range(0);
  auto const a = random_csr(n, n, 32, 1);
  mgpu::execution_policy<mgpu::gpu> const policy("cuda");
  mgpu::distributed_csr<mgpu::gpu, float, std::int32_t> da(policy, a.view());
  std::vector<float> x(static_cast<std::size_t>(n), 1.0f);
  std::vector<float> y(static_cast<std::size_t>(n));
  for (auto _ : state) {
    da.spmv(1.0f, std::span<float const>(x), 0.0f, std::span<float>(y));
    benchmark::DoNotOptimize(y.data());
  }
  auto const nnz = static_cast<double>(a.nnz());
  report_bytes(state, 8 * nnz + 4 * static_cast<double>(n + 1) + 8 * static_cast<double>(n));
}
BENCHMARK(BM_spmv)->Arg(1 << 20)->Arg(1 << 22)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_cosine(benchmark::State& state) {
  std::int64_t const docs = state.range(0);
  auto const corpus = random_csr(docs, 50000, 60, 2);
  mgpu::execution_policy<mgpu::gpu> const policy("cuda");
  std::vector<std::int64_t> df(50000, 0);
  for (auto c : corpus.col_indices()) ++df[static_cast<std::size_t>(c)];
  double products = 0;
  for (auto c : corpus.col_indices()) products += static_cast<double>(df[static_cast<std::size_t>(c)]);
  for (auto _ : state) {
    auto r = mgpu::cosine_topk(policy, corpus, 10, {.exclude_self = true});
    benchmark::DoNotOptimize(r.ids.data());
  }
  report_flops(state, 2 * products);
}
BENCHMARK(BM_cosine)->Arg(50000)->Arg(200000)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_knn(benchmark::State& state) {
  std::int64_t const n = state.range(0);
  std::int64_t const q = 10000;
  std::int64_t const d = 128;
  std::mt19937 gen(3);
  std::normal_distribution<float> normal;
  mgpu::dense_matrix<mgpu::cpu, float> base(n, d), queries(q, d);
  for (std::int64_t i = 0; i < n * d; ++i) base.data()[i] = normal(gen);
  for (std::int64_t i = 0; i < q * d; ++i) queries.data()[i] = normal(gen);
  mgpu::execution_policy<mgpu::gpu> const policy("cuda");
  for (auto _ : state) {
    auto r = mgpu::knn(policy, base.view(), queries.view(), 10, mgpu::knn_metric::l2);
    benchmark::DoNotOptimize(r.ids.data());
  }
  report_flops(state, 2.0 * static_cast<double>(q) * static_cast<double>(n) * static_cast<double>(d));
}
BENCHMARK(BM_knn)->Arg(100000)->Arg(1000000)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_als(benchmark::State& state) {
  auto const f = state.range(0);
  auto const r = mgpu_bench::make_interactions(mgpu_bench::movielens_20m, 0.25);
  mgpu::execution_policy<mgpu::gpu> const policy("cuda");
  for (auto _ : state) {
    mgpu::als model({.factors = f, .iterations = 1});
    model.fit(policy, r);
    benchmark::DoNotOptimize(model.user_factors().data());
  }
  auto const fs = static_cast<double>(f);
  double const rows = static_cast<double>(r.rows() + r.cols());
  report_flops(state, 2 * 2 * static_cast<double>(r.nnz()) * fs * fs + rows * fs * fs * fs / 3);
}
BENCHMARK(BM_als)->Arg(64)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  if (mgpu::backend::cuda::visible_device_count() == 0) {
    std::fprintf(stderr, "bench_gpu: no usable CUDA device (none visible, or no working driver): skipped\n");
    return 77;
  }
  auto& roof = device_roofline();
  roof.hbm_bytes_per_s = hbm_bytes_per_s(0);
  roof.sgemm_flops_per_s = sgemm_flops_per_s();
  cudaDeviceProp prop{};
  MGPU_CUDA_TRY(cudaGetDeviceProperties(&prop, 0));
  benchmark::AddCustomContext("gpu", prop.name);
  benchmark::AddCustomContext("hbm_GBps", std::to_string(roof.hbm_bytes_per_s / 1e9));
  benchmark::AddCustomContext("sgemm_TFLOPs", std::to_string(roof.sgemm_flops_per_s / 1e12));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
