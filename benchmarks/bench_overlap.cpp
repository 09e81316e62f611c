// The asynchronous join of the sharded top-k searches, measured: for knn and cosine_topk
// on cpu:N sets, each run once with the synchronous join (batch i+1 submitted after
// batch i is merged) and once with the overlapped one (batch i+1 submitted before batch
// i is merged; the library's default), both in this binary through the skeleton's
// observer (detail::sharded_options_scope, algorithms/detail/sharded_topk.hpp).
//
// The observer records a steady_clock time stamp for each event: a device task's start
// and end per batch and device, the host merge's start and end per batch. From them,
// per run:
//   wall      the call's duration
//   merge     the sum over batches of the host merge (merge + emit into the result)
//   busy      the time at least one device task runs (union of the task intervals)
//   dev-sum   the sum of the task intervals over devices
//   overlap   the part of the merge time during which some device task runs; the
//             fraction overlap / merge is what the asynchronous join buys
//   wait      the calling thread's time blocked in the joins (submission to merge start)
// Each configuration runs --repeat times, alternating the two joins; the run with the
// median wall time of each is printed (one Markdown table row per configuration).
//
//   bench_overlap [--workload all|knn-fashion|knn-large-k|cosine-top10|cosine-threshold]
//                 [--devices 1,2] [--device-threads 0] [--repeat 5]
//
// --device-threads: the hardware threads the set's devices share (device_set's second
// argument); 0 gives cpu:1 one thread (a 2-core machine then has a core the devices do
// not use, for the host merge) and cpu:N (N >= 2) OpenMP's thread count. Fashion-MNIST
// comes from /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist) when
// present, random bytes of the same shape otherwise.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include <mgpu/algorithms/cosine_topk.hpp>
#include <mgpu/algorithms/detail/sharded_topk.hpp>
#include <mgpu/algorithms/knn.hpp>
#include <mgpu/io/idx.hpp>

#include "zipf_corpus.hpp"
#include <mgpu/sparse/coo.hpp>

namespace {

using clock_type = std::chrono::steady_clock;
using event = mgpu::detail::batch_event;

/// Time-stamped batch events of one run (the observer; thread-safe).
struct recorder {
  struct record {
    event what;
    std::int64_t batch;
    std::size_t device;
    clock_type::time_point at;
  };
  std::mutex mutex;
  std::vector<record> records;

  void operator()(event what, std::int64_t batch, std::size_t device) {
    auto const now = clock_type::now();
    std::lock_guard lock(mutex);
    records.push_back({what, batch, device, now});
  }
};

struct interval {
  double begin;
  double end;
};

/// One run's figures (file comment), in milliseconds.
struct figures {
  double wall = 0, merge = 0, busy = 0, dev_sum = 0, overlap = 0, wait = 0;
  std::int64_t batches = 0;
};

double ms(clock_type::time_point from, clock_type::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

figures analyse(std::vector<recorder::record> const& records, clock_type::time_point start,
                clock_type::time_point stop) {
  figures f;
  f.wall = ms(start, stop);
  std::vector<interval> tasks;
  std::vector<interval> merges;
  std::int64_t batches = 0;
  for (auto const& r : records) batches = std::max(batches, r.batch + 1);
  f.batches = batches;
  for (std::int64_t b = 0; b < batches; ++b) {
    std::vector<std::pair<std::size_t, double>> started;
    double merge_begin = 0;
    for (auto const& r : records) {
      if (r.batch != b) continue;
      double const t = ms(start, r.at);
      switch (r.what) {
        case event::device_started: started.emplace_back(r.device, t); break;
        case event::device_finished:
          for (auto const& [device, begin] : started) {
            if (device == r.device) tasks.push_back({begin, t});
          }
          break;
        case event::merge_started: merge_begin = t; break;
        case event::merge_finished: merges.push_back({merge_begin, t}); break;
      }
    }
  }
  // The union of the device tasks' intervals.
  std::sort(tasks.begin(), tasks.end(), [](interval const& a, interval const& b) { return a.begin < b.begin; });
  std::vector<interval> busy;
  for (auto const& t : tasks) {
    f.dev_sum += t.end - t.begin;
    if (!busy.empty() && t.begin <= busy.back().end) {
      busy.back().end = std::max(busy.back().end, t.end);
    } else {
      busy.push_back(t);
    }
  }
  for (auto const& u : busy) f.busy += u.end - u.begin;
  double previous_end = 0;  // the calling thread waits from the end of the last merge
  for (auto const& m : merges) {
    f.merge += m.end - m.begin;
    f.wait += std::max(0.0, m.begin - previous_end);
    previous_end = m.end;
    for (auto const& u : busy) {
      f.overlap += std::max(0.0, std::min(m.end, u.end) - std::max(m.begin, u.begin));
    }
  }
  return f;
}

/// Runs `search` under the given join with a recording observer; returns its figures.
figures timed_run(mgpu::detail::batch_join join, std::function<void()> const& search) {
  recorder rec;
  mgpu::detail::sharded_options const options{
      join, [&rec](event what, std::int64_t batch, std::size_t device) { rec(what, batch, device); }};
  mgpu::detail::sharded_options_scope const scope(options);
  auto const start = clock_type::now();
  search();
  auto const stop = clock_type::now();
  return analyse(rec.records, start, stop);
}

using mgpu_bench::zipf_corpus;

mgpu::dense_matrix<mgpu::cpu, float> random_matrix(std::int64_t rows, std::int64_t cols, unsigned seed, float scale) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> value(0.0f, scale);
  mgpu::dense_matrix<mgpu::cpu, float> m(rows, cols);
  std::generate(m.data(), m.data() + rows * cols, [&] { return value(gen); });
  return m;
}

struct fashion_data {
  mgpu::dense_matrix<mgpu::cpu, float> base;
  mgpu::dense_matrix<mgpu::cpu, float> queries;
  bool real = false;
};

fashion_data load_fashion() {
  std::filesystem::path const dir = "/usr/share/datasets/fashion-mnist";
  if (std::filesystem::exists(dir / "train-images-idx3-ubyte.gz")) {
    return {mgpu::read_idx_matrix<float>(dir / "train-images-idx3-ubyte.gz"),
            mgpu::read_idx_matrix<float>(dir / "t10k-images-idx3-ubyte.gz"), true};
  }
  return {random_matrix(60000, 784, 1, 255.0f), random_matrix(10000, 784, 2, 255.0f), false};
}

mgpu::dense_view<float const> first_rows(mgpu::dense_matrix<mgpu::cpu, float> const& m, std::int64_t rows) {
  return {std::min(rows, m.rows()), m.cols(), m.ld(), m.data()};
}

struct workload {
  std::string name;
  std::string load;  // what runs, in words
  std::function<void(mgpu::execution_policy<mgpu::cpu> const&)> run;
};

}  // namespace

int main(int argc, char** argv) {
  std::string which = "all";
  std::vector<int> device_counts{1, 2};
  unsigned device_threads = 0;
  int repeat = 5;
  CLI::App app{"Overlap of the host merge with the devices' work: synchronous and overlapped joins"};
  app.add_option("--workload", which, "all, knn-fashion, knn-large-k, cosine-top10 or cosine-threshold");
  app.add_option("--devices", device_counts, "host device counts N of the cpu:N sets")->delimiter(',');
  app.add_option("--device-threads", device_threads, "threads the devices share (0: see the file comment)");
  app.add_option("--repeat", repeat, "runs per join and configuration (the median is printed)")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  std::vector<workload> workloads;
  auto const want = [&](std::string const& name) { return which == "all" || which == name; };
  std::optional<fashion_data> fashion;
  if (want("knn-fashion")) {
    fashion = load_fashion();
    auto const* f = &*fashion;
    workloads.push_back({"knn-fashion",
                         std::string("knn l2, ") + (f->real ? "Fashion-MNIST" : "random bytes") +
                             " 60,000 x 784, 2,000 queries, k = 100, batch 250",
                         [f](auto const& policy) {
                           auto r = mgpu::knn(policy, f->base.view(), first_rows(f->queries, 2000), 100,
                                              mgpu::knn_metric::l2, {.query_batch = 250});
                           if (r.rows() != 2000) std::abort();
                         }});
  }
  if (want("knn-large-k")) {
    auto base = std::make_shared<mgpu::dense_matrix<mgpu::cpu, float>>(random_matrix(20000, 16, 3, 1.0f));
    auto queries = std::make_shared<mgpu::dense_matrix<mgpu::cpu, float>>(random_matrix(1000, 16, 4, 1.0f));
    workloads.push_back({"knn-large-k", "knn l2, random 20,000 x 16, 1,000 queries, k = 1,000, batch 50",
                         [base, queries](auto const& policy) {
                           auto r = mgpu::knn(policy, base->view(), queries->view(), 1000, mgpu::knn_metric::l2,
                                              {.query_batch = 50});
                           if (r.rows() != 1000) std::abort();
                         }});
  }
  std::shared_ptr<mgpu::csr_matrix<mgpu::cpu, float, std::int32_t>> corpus;
  if (want("cosine-top10") || want("cosine-threshold")) {
    corpus = std::make_shared<mgpu::csr_matrix<mgpu::cpu, float, std::int32_t>>(zipf_corpus(20000, 50000, 12));
  }
  if (want("cosine-top10")) {
    workloads.push_back({"cosine-top10", "cosine all pairs, Zipf 20,000 x 50,000 (12 terms a row), k = 10, batch 1,000",
                         [corpus](auto const& policy) {
                           auto top = mgpu::cosine_topk(policy, *corpus, 10, {.query_batch = 1000});
                           if (top.rows() != 20000) std::abort();
                         }});
  }
  if (want("cosine-threshold")) {
    workloads.push_back({"cosine-threshold",
                         "cosine all pairs, same corpus, every match >= 0.5 (k = 0), batch 500",
                         [corpus](auto const& policy) {
                           auto top = mgpu::cosine_topk(policy, *corpus, 0, {.query_batch = 500, .threshold = 0.5});
                           if (top.rows() != 20000) std::abort();
                         }});
  }
  if (workloads.empty()) {
    std::fprintf(stderr, "bench_overlap: unknown --workload %s\n", which.c_str());
    return 2;
  }

  std::printf("| workload | devices | join | wall ms | merge ms | device busy ms | device-sum ms | merge overlapped "
              "| host wait ms | batches |\n|---|---|---|---|---|---|---|---|---|---|\n");
  for (auto const& w : workloads) {
    std::fprintf(stderr, "%s: %s\n", w.name.c_str(), w.load.c_str());
    for (int n : device_counts) {
      unsigned const threads = device_threads != 0 ? device_threads : (n == 1 ? 1u : 0u);
      mgpu::execution_policy<mgpu::cpu> const policy(
          std::make_shared<mgpu::device_set<mgpu::cpu>>(n, threads));
      w.run(policy);  // warm-up: first touch of the buffers, thread start-up
      std::vector<figures> runs[2];
      for (int r = 0; r < repeat; ++r) {
        for (int j = 0; j < 2; ++j) {
          auto const join = j == 0 ? mgpu::detail::batch_join::synchronous : mgpu::detail::batch_join::overlapped;
          runs[j].push_back(timed_run(join, [&] { w.run(policy); }));
        }
      }
      for (int j = 0; j < 2; ++j) {
        auto& v = runs[j];
        std::sort(v.begin(), v.end(), [](figures const& a, figures const& b) { return a.wall < b.wall; });
        auto const& f = v[v.size() / 2];
        int device_threads_total = 0;
        for (std::size_t d = 0; d < policy.device_count(); ++d) device_threads_total += policy.devices()[d].work.threads();
        std::printf("| %s | cpu:%d (%d threads) | %s | %.0f | %.1f | %.0f | %.0f | %.0f%% | %.1f | %lld |\n",
                    w.name.c_str(), n, device_threads_total,
                    j == 0 ? "synchronous" : "overlapped", f.wall, f.merge, f.busy, f.dev_sum,
                    f.merge > 0 ? 100.0 * f.overlap / f.merge : 0.0, f.wait, static_cast<long long>(f.batches));
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
