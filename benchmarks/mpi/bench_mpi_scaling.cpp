// bench_mpi_scaling — strong and weak scaling over MPI ranks of the mpi component's two
// communication patterns, with the bytes each moves between ranks (from the transfer
// counter, mpi::sum_transfers):
//
//   cosine  TF-IDF of a corpus spread over the ranks (mpi::tfidf_fit_transform), then the
//           exact cosine top-k of Q query documents against the whole corpus, sharded
//           over the ranks (mpi::cosine_topk: local searches, lists gathered, exact merge).
//           Strong: the same D documents (--documents) for every rank count; weak:
//           D·ranks/4 documents (D at 4 ranks). Queries: the first Q documents.
//   spmv    y = A·x; x = all_gather(y) on a banded n x n matrix (5 entries per row), rows
//           split evenly; strong: n fixed; weak: n·ranks/4.
//
// Every rank reads the whole input file and keeps its share (reading is not timed). Each
// timing is the slowest rank's, after a barrier, median of --repeat runs. Rank 0 prints
// one line per measurement: mode, scaling, ranks, devices per rank, size, seconds, bytes
// between ranks, bytes in all.
//
//   mpirun -np R --oversubscribe --bind-to none bench_mpi_scaling cosine --input out/wordnet.ndjson
//   mpirun -np R ... bench_mpi_scaling spmv --rows 4194304 --iterations 10
//
// On a machine with fewer cores than ranks × devices the ranks share cores: the timings
// then measure oversubscription, not scaling (docs/distributed.md).
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <mgpu/io/corpus.hpp>
#include <mgpu/mpi.hpp>

namespace {

struct settings {
  std::string mode;
  std::string scaling = "strong";
  std::string input = "out/wordnet.ndjson";
  std::string devices = "cpu";
  std::int64_t documents = 0;  // 0: all
  std::int64_t queries = 10000;
  std::int64_t k = 10;
  std::int64_t rows = std::int64_t{1} << 22;
  int iterations = 10;
  int repeat = 3;
};

/// The slowest rank's seconds for f(), after a barrier.
template <class F>
double timed(MPI_Comm comm, F&& f) {
  MPI_Barrier(comm);
  auto const start = std::chrono::steady_clock::now();
  f();
  double const mine = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double slowest = 0;
  MPI_Allreduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MAX, comm);
  return slowest;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void report(mgpu::mpi::distributed_policy<mgpu::cpu> const& policy, settings const& s, char const* what,
            std::int64_t size, double seconds, mgpu::mpi::transfer_counts const& bytes) {
  if (policy.rank() != 0) return;
  std::printf("%-8s %-6s ranks=%d devices_per_rank=%s size=%lld seconds=%.4f network_bytes=%llu all_bytes=%llu\n", what,
              s.scaling.c_str(), policy.ranks(), s.devices.c_str(), static_cast<long long>(size), seconds,
              static_cast<unsigned long long>(bytes.network()), static_cast<unsigned long long>(bytes.total()));
  std::fflush(stdout);
}

int run_cosine(settings const& s) {
  mgpu::mpi::distributed_policy<mgpu::cpu> const policy(s.devices);
  auto const corpus = mgpu::read_corpus(s.input);
  auto const all = static_cast<std::int64_t>(corpus.texts.size());
  auto const ranks = static_cast<std::int64_t>(policy.ranks());
  std::int64_t n = s.documents > 0 ? std::min(s.documents, all) : all;
  if (s.scaling == "weak") n = std::min(all, n * ranks / 4);
  auto const first = n * policy.rank() / ranks;
  auto const last = n * (policy.rank() + 1) / ranks;
  std::vector<std::string_view> mine;
  for (auto i = first; i < last; ++i) mine.emplace_back(corpus.texts[static_cast<std::size_t>(i)]);

  std::vector<double> tfidf_seconds;
  std::vector<double> search_seconds;
  mgpu::mpi::transfer_counts tfidf_bytes;
  mgpu::mpi::transfer_counts search_bytes;
  for (int r = 0; r < s.repeat; ++r) {
    policy.transfers().reset();
    mgpu::mpi::tfidf_part<float> part;
    tfidf_seconds.push_back(timed(policy.comm(), [&] { part = mgpu::mpi::tfidf_fit_transform<float>(policy, mine); }));
    tfidf_bytes = mgpu::mpi::sum_transfers(policy);
    // The queries: the first Q documents' rows, gathered on every rank.
    auto const q = std::min(s.queries, n);
    auto const whole = mgpu::mpi::all_gather_rows(policy, part.rows.view());
    auto const queries = whole.view().row_block(0, static_cast<std::int32_t>(q));
    policy.transfers().reset();
    search_seconds.push_back(timed(policy.comm(), [&] {
      (void)mgpu::mpi::cosine_topk(policy, queries, part.rows.view(), s.k);
    }));
    search_bytes = mgpu::mpi::sum_transfers(policy);
  }
  report(policy, s, "tfidf", n, median(tfidf_seconds), tfidf_bytes);
  report(policy, s, "cosine", n, median(search_seconds), search_bytes);
  return 0;
}

int run_spmv(settings const& s) {
  mgpu::mpi::distributed_policy<mgpu::cpu> const policy(s.devices);
  auto const ranks = static_cast<std::int64_t>(policy.ranks());
  auto const rows64 = s.scaling == "weak" ? s.rows * ranks / 4 : s.rows;
  auto const rows = static_cast<int>(rows64);
  int const first = static_cast<int>(rows64 * policy.rank() / ranks);
  int const last = static_cast<int>(rows64 * (policy.rank() + 1) / ranks);
  std::vector<int> offsets{0};
  std::vector<int> columns;
  std::vector<float> values;
  for (int r = first; r < last; ++r) {
    for (int c = std::max(0, r - 2); c <= std::min(rows - 1, r + 2); ++c) {
      columns.push_back(c);
      values.push_back(c == r ? 0.5f : 0.125f);
    }
    offsets.push_back(static_cast<int>(columns.size()));
  }
  mgpu::csr_matrix<mgpu::cpu, float, int> const mine(last - first, rows, std::move(offsets), std::move(columns),
                                                     std::move(values));
  mgpu::mpi::distributed_csr<mgpu::cpu, float, int> a(policy, mine.view(),
                                                      {.layout = mgpu::spmv_layout::sell, .resident = true});
  using dense = mgpu::mpi::distributed_dense<mgpu::cpu, float>;
  auto x = dense::replicated(policy, rows, 1);
  auto y = dense::row_blocks(policy, rows, 1, a.row_bounds());
  std::vector<float> const x0(static_cast<std::size_t>(rows), 1.0f);
  mgpu::mpi::broadcast(std::span<float const>(x0), x);
  std::vector<double> seconds;
  mgpu::mpi::transfer_counts bytes;
  for (int r = 0; r < s.repeat; ++r) {
    policy.transfers().reset();
    seconds.push_back(timed(policy.comm(), [&] {
                        for (int it = 0; it < s.iterations; ++it) {
                          a.spmv(1.0f, x, 0.0f, y);
                          mgpu::mpi::all_gather(y, x);
                        }
                      }) /
                      s.iterations);
    bytes = mgpu::mpi::sum_transfers(policy);
  }
  // Per iteration: the counts cover `iterations` iterations.
  mgpu::mpi::transfer_counts::pair_map per;
  for (auto const& [pair, b] : bytes.pairs()) per[pair] = b / static_cast<std::uint64_t>(s.iterations);
  report(policy, s, "spmv", rows64, median(seconds), mgpu::mpi::transfer_counts(policy.first_devices(), per));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  CLI::App app{"Strong and weak scaling over MPI ranks: cosine top-k on a corpus, SpMV + all_gather (mgpu)"};
  app.add_option("mode", s.mode, "cosine or spmv")->required()->check(CLI::IsMember({"cosine", "spmv"}));
  app.add_option("--scaling", s.scaling, "strong (fixed size) or weak (size x ranks / 4)")
      ->check(CLI::IsMember({"strong", "weak"}))
      ->capture_default_str();
  app.add_option("--input", s.input, "corpus (cosine): NDJSON / TSV / text, as mgpu::read_corpus")->capture_default_str();
  app.add_option("--documents", s.documents, "documents (cosine; 0: all; weak: per 4 ranks)")->capture_default_str();
  app.add_option("--queries", s.queries, "query documents (cosine): the corpus's first ones")->capture_default_str();
  app.add_option("--top-k", s.k, "neighbours per query (cosine)")->capture_default_str();
  app.add_option("--rows", s.rows, "matrix rows (spmv; weak: per 4 ranks)")->capture_default_str();
  app.add_option("--iterations", s.iterations, "products per timing (spmv)")->capture_default_str();
  app.add_option("--devices", s.devices, "each rank's devices: cpu or cpu:N")->capture_default_str();
  app.add_option("--repeat", s.repeat, "timings per measurement (median)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  mgpu::mpi::environment env(argc, argv);
  return mgpu::mpi::main_guard([&] { return s.mode == "cosine" ? run_cosine(s) : run_spmv(s); });
}
