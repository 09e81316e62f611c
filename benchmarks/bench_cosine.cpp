// Google Benchmark: cosine top-10 over a synthetic corpus whose term frequencies follow
// Zipf's law (as text does), on cpu and cpu:N policies.
//
//   build/benchmarks/bench_cosine --benchmark_repetitions=5 --benchmark_report_aggregates_only
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <mgpu/mgpu.hpp>

#include "zipf_corpus.hpp"

namespace {

using mgpu_bench::zipf_corpus;

void all_pairs_top10(benchmark::State& state, std::string const& devices) {
  auto const rows = static_cast<std::int32_t>(state.range(0));
  auto const corpus = zipf_corpus(rows, 50000, 12);
  mgpu::execution_policy<mgpu::cpu> const policy(devices);
  for (auto _ : state) {
    auto top = mgpu::cosine_topk(policy, corpus, 10);
    benchmark::DoNotOptimize(top.ids.data());
  }
  state.counters["queries/s"] =
      benchmark::Counter(static_cast<double>(rows) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

// All pairs in batches of state.range(1) queries: with several batches, the devices
// score batch i+1 while the calling thread merges batch i (issue 14's asynchronous join).
void all_pairs_top10_batched(benchmark::State& state, std::string const& devices) {
  auto const rows = static_cast<std::int32_t>(state.range(0));
  auto const corpus = zipf_corpus(rows, 50000, 12);
  mgpu::execution_policy<mgpu::cpu> const policy(devices);
  mgpu::cosine_topk_options const options{.exclude_self = true, .query_batch = state.range(1)};
  for (auto _ : state) {
    auto top = mgpu::cosine_topk(policy, corpus.view(), corpus.view(), 10, options);
    benchmark::DoNotOptimize(top.ids.data());
  }
  state.counters["queries/s"] =
      benchmark::Counter(static_cast<double>(rows) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK_CAPTURE(all_pairs_top10_batched, cpu2, std::string("cpu:2"))
    ->ArgNames({"rows", "batch"})
    ->Args({20000, 1000})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(all_pairs_top10, cpu, std::string("cpu"))->Arg(20000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(all_pairs_top10, cpu2, std::string("cpu:2"))->Arg(20000)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
