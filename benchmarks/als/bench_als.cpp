// bench_als — ALS on synthetic interaction matrices shaped like MovieLens-20M and
// Last.fm 360k (make_interactions.hpp).
//
//   BM_als_half_step/<shape>/<factors>/<solver>/<side>   one half-step, the kernel: side 0
//        solves every user against fixed item factors, side 1 every item against fixed
//        user factors, on the calling thread's OpenMP team (every core).
//   BM_als_iteration/<shape>/<factors>/<solver>/<devices>   seconds per full iteration
//        (users + items, Gram matrices included, loss excluded) as mgpu::als reports it:
//        the median over the 3 iterations of one fit, as manual time; counter
//        cpu_seconds: the process CPU time of one iteration (median), all threads.
// shape: 0 = MovieLens-20M, 1 = Last.fm 360k; solver: 0 = Cholesky, 1 = CG (3 steps).
// The data sets are generated once per process (a few seconds each).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <ctime>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <mgpu/algorithms/als.hpp>
#include <mgpu/sparse/transpose.hpp>

#include "make_interactions.hpp"

namespace {

using interactions_t = mgpu::csr_matrix<mgpu::cpu, float, std::int32_t>;

interactions_t const& data(std::int64_t shape) {
  static std::map<std::int64_t, interactions_t> cache;
  auto it = cache.find(shape);
  if (it == cache.end()) {
    it = cache.emplace(shape, mgpu_bench::make_interactions(shape == 0 ? mgpu_bench::movielens_20m
                                                                       : mgpu_bench::lastfm_360k))
             .first;
  }
  return it->second;
}

mgpu::als_solver solver_of(std::int64_t s) {
  return s == 0 ? mgpu::als_solver::cholesky : mgpu::als_solver::conjugate_gradient;
}

interactions_t const& transposed(std::int64_t shape) {
  static std::map<std::int64_t, interactions_t> cache;
  auto it = cache.find(shape);
  if (it == cache.end()) it = cache.emplace(shape, mgpu::transpose(data(shape))).first;
  return it->second;
}

void BM_als_half_step(benchmark::State& state) {
  bool const items_side = state.range(3) == 1;
  auto const& r = items_side ? transposed(state.range(0)) : data(state.range(0));
  auto const f = state.range(1);
  auto const solver = solver_of(state.range(2));
  auto const fixed = mgpu::detail::als_initial_factors(std::vector<char>(static_cast<std::size_t>(r.cols()), 0), f, 1, 1);
  auto solving = mgpu::detail::als_initial_factors(std::vector<char>(static_cast<std::size_t>(r.rows()), 0), f, 1, 0);
  auto const gram = mgpu::detail::als_gram(fixed.view());
  auto const fs = static_cast<std::size_t>(f);
  std::vector<double> base(gram);
  for (std::size_t j = 0; j < fs; ++j) base[j * fs + j] += 0.01;
  std::vector<float> base_single(base.begin(), base.end());
  mgpu::detail::als_step const step{f, 1.0, 1.0, false, solver, 3, items_side ? "item" : "user"};
  for (auto _ : state) {
    if (solver == mgpu::als_solver::cholesky) {
      mgpu::backend::cpu::als_solve_cholesky(r.view(), 0, r.rows(), fixed.view(), base, solving.view(), step);
    } else {
      mgpu::backend::cpu::als_solve_cg(r.view(), 0, r.rows(), fixed.view(), base_single, solving.view(), step);
    }
    benchmark::DoNotOptimize(solving.data());
  }
  state.counters["nnz"] = static_cast<double>(r.nnz());
}

double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

void BM_als_iteration(benchmark::State& state) {
  auto const& r = data(state.range(0));
  mgpu::execution_policy<mgpu::cpu> const policy(state.range(3) == 1 ? std::string("cpu")
                                                                     : "cpu:" + std::to_string(state.range(3)));
  // Process CPU seconds between consecutive iterations: on a shared machine, wall time
  // depends on the other load; CPU seconds / cores is what an idle machine would take.
  std::vector<double> marks;
  mgpu::als model({.factors = state.range(1), .iterations = 3, .solver = solver_of(state.range(2)),
                   .compute_loss = false,
                   .on_iteration = [&](int, double, double) { marks.push_back(process_cpu_seconds()); }});
  std::vector<double> cpu;
  for (auto _ : state) {
    marks.clear();
    model.fit(policy, r);
    state.SetIterationTime(median(model.iteration_seconds()));
    for (std::size_t i = 1; i < marks.size(); ++i) cpu.push_back(marks[i] - marks[i - 1]);
  }
  state.counters["cpu_seconds"] = median(cpu);
}

}  // namespace

BENCHMARK(BM_als_half_step)
    ->ArgNames({"shape", "factors", "solver", "side"})
    ->ArgsProduct({{0}, {64, 256}, {0, 1}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->Repetitions(3)
    ->ReportAggregatesOnly(true);
// Cholesky at 256 factors costs about a minute per iteration on 2 cores: ML only.
BENCHMARK(BM_als_iteration)
    ->ArgNames({"shape", "factors", "solver", "devices"})
    ->ArgsProduct({{0, 1}, {64, 256}, {1}, {1}})
    ->ArgsProduct({{0, 1}, {64}, {0}, {1}})
    ->Args({0, 256, 0, 1})
    ->Args({0, 64, 1, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime()
    ->Iterations(1);

BENCHMARK_MAIN();
