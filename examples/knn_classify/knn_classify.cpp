// knn_classify — k-nearest-neighbour classification of Fashion-MNIST by exact search.
//
// Reads the training and test images (IDX files, gzip or plain), finds each test image's
// k nearest training images by brute force on the devices chosen by --devices (the
// training set is split across them), predicts each test image's label by majority vote
// of its neighbours (ties toward the smaller label), and prints the accuracy.
//
// Default data: Debian's dataset-fashion-mnist package (apt install dataset-fashion-mnist):
//
//   knn_classify --data-dir /usr/share/datasets/fashion-mnist --k 10 --devices cpu
//                --output neighbors.tsv
//
// stdout: accuracy=0.xxxx, then the search time and its rate in GFLOP/s (2 q n d flops
// for the GEMM part, as for FAISS's IndexFlatL2). Stage timings go to stderr, and on a
// terminal a progress line for the search (queries done, rate, ETA); nothing more when
// stderr is a file or a pipe.
// --output: one line per (query, neighbour), best first. --output-format tsv:
//   query_index <TAB> train_index <TAB> value (0-based indices; squared L2 distance for
//   l2, inner product for ip, cosine similarity for cosine; the float's shortest round-trip form);
// --output-format ndjson: {"query":0,"train":17,"distance":1.5} per line, the value
// named distance (l2), inner_product (ip) or cosine.
// --output is checked, and --devices parsed, before the data are read; the file is
// written as a commit (mgpu/io/output_file.hpp): complete or not changed, no temporary
// left (also on SIGINT/SIGTERM/SIGHUP); a symbolic link's target is replaced, a FIFO or
// character device written in place.
// Any bad input or failure ends the program with a one-line error (naming what ran out
// when memory does), exit code 1, and the output file unchanged.
//
// MPI (built with mgpu's mpi component, MGPU_ENABLE_MPI): started by mpirun / srun, the
// program runs over the ranks (docs/distributed.md): every rank reads the data set, keeps
// its contiguous share of the training images (rows r·n/R to (r+1)·n/R) on its own
// --devices (host devices: cpu or cpu:N), and mgpu::mpi::knn merges the ranks' neighbour
// lists exactly; rank 0 checks and writes --output and prints the results, which are the
// single-process run's (the same neighbours whenever each pair's distance comes out the
// same in every split, as for these integer pixel values on the tested runs). Started
// without a launcher, the program is the single-process one.
#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <mgpu/algorithms/knn.hpp>
#include <mgpu/io/idx.hpp>
#include <mgpu/io/output_file.hpp>
#include <mgpu/io/progress_line.hpp>
#include <mgpu/io/text_output.hpp>
#include <mgpu/mgpu.hpp>
#ifdef MGPU_EXAMPLE_WITH_MPI
#include <mgpu/mpi/environment.hpp>
#include <mgpu/mpi/knn.hpp>
#include <mgpu/mpi/policy.hpp>
#endif
#ifdef MGPU_EXAMPLE_WITH_CUDA
// The GPU backend: --devices cuda, cuda:0,1. Its kernels are instantiated in
// knn_classify_cuda.cu; this file stays host code.
#include <mgpu/backend/cuda/knn.hpp>
#include <mgpu/cuda.hpp>
#endif

namespace {

namespace fs = std::filesystem;

struct settings {
  fs::path data_dir = "/usr/share/datasets/fashion-mnist";
  int k = 10;
  std::string metric = "l2";
  std::string devices = "cpu";
  fs::path output;
  std::string output_format = "tsv";
  std::int64_t limit_queries = 0;
};

class stopwatch {
 public:
  double lap() {
    auto const now = std::chrono::steady_clock::now();
    double const s = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    return s;
  }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// The data set's file, compressed or not.
fs::path data_file(fs::path const& dir, std::string const& stem) {
  for (auto const& name : {stem + ".gz", stem}) {
    if (fs::exists(dir / name)) return dir / name;
  }
  throw std::runtime_error((dir / (stem + ".gz")).string() +
                           ": no such file (install Debian's dataset-fashion-mnist, or pass "
                           "--data-dir with the four MNIST-format files)");
}

// What the program is doing, for the message when memory runs out.
char const* stage = "starting";

// A CLI11 check for an integer in [lo, hi] whose message shows the bounds, not a
// numeric limit: "--k: must be an integer in [1, 1048576], got 0".
CLI::Validator integer_in(long long lo, long long hi) {
  std::string const range = hi == std::numeric_limits<long long>::max()
                                ? ">= " + std::to_string(lo)
                                : "in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  return CLI::Validator(
      [lo, hi, range](std::string& text) -> std::string {
        long long v = 0;
        auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec == std::errc() && end == text.data() + text.size() && v >= lo && v <= hi) return {};
        return "must be an integer " + range + ", got " + text.substr(0, 40);
      },
      "INT " + range);
}

void write_neighbors(std::ostream& out, mgpu::text_format format, std::string_view value_name,
                     mgpu::topk_result<float> const& r) {
  // Fewer than k per query when there are fewer training images; formatted on the
  // host's threads, written in order (mgpu/io/text_output.hpp).
  mgpu::write_neighbor_rows(out, format, r, {"query", "train", value_name});
}

// What both runs print and write once the neighbours are found: the majority vote's
// accuracy against the test labels, the search time and rate, and --output.
void report(settings const& s, mgpu::topk_result<float> const& result, std::vector<int> const& train_labels,
            std::vector<int> const& test_labels, double seconds, double gflops, mgpu::text_format format,
            mgpu::output_set& outs, std::optional<mgpu::output_set::output_id> const& neighbors_out,
            stopwatch& clock) {
  auto const queries = result.rows();
  auto const predicted = mgpu::knn_vote(result, train_labels);
  std::int64_t correct = 0;
  for (std::int64_t q = 0; q < queries; ++q) {
    correct += predicted[static_cast<std::size_t>(q)] == test_labels[static_cast<std::size_t>(q)] ? 1 : 0;
  }
  std::printf("accuracy=%.4f\n", queries > 0 ? static_cast<double>(correct) / static_cast<double>(queries) : 0.0);
  std::printf("search_seconds=%.3f\n", seconds);
  std::printf("gflops=%.1f\n", gflops);
  if (neighbors_out) {
    stage = "writing the output";
    char const* value_name = s.metric == "ip" ? "inner_product" : s.metric == "cosine" ? "cosine" : "distance";
    outs.set_writer(*neighbors_out, [&](std::ostream& out) { write_neighbors(out, format, value_name, result); });
    outs.commit();
    std::fprintf(stderr, "write:   %8.3f s  %s\n", clock.lap(), s.output.c_str());
  }
}

#ifdef MGPU_EXAMPLE_WITH_MPI
// The run over MPI ranks (see the file comment): every rank reads the data and searches
// its share of the training images; rank 0 writes and prints.
int run_distributed(settings const& s) {
  stopwatch clock;
  mgpu::mpi::distributed_policy<mgpu::cpu> const policy(s.devices);
  bool const root = policy.rank() == 0;
  auto const format = mgpu::parse_text_format(s.output_format);
  mgpu::output_set outs;
  std::optional<mgpu::output_set::output_id> neighbors_out;
  if (root && !s.output.empty()) {
    neighbors_out = outs.add(s.output, "--output");
    outs.check();
  }
  stage = "reading the data set";
  auto const train = mgpu::read_idx_matrix<float>(data_file(s.data_dir, "train-images-idx3-ubyte"));
  auto const train_labels = mgpu::read_idx_labels<int>(data_file(s.data_dir, "train-labels-idx1-ubyte"));
  auto test = mgpu::read_idx_matrix<float>(data_file(s.data_dir, "t10k-images-idx3-ubyte"));
  auto const test_labels = mgpu::read_idx_labels<int>(data_file(s.data_dir, "t10k-labels-idx1-ubyte"));
  if (static_cast<std::int64_t>(train_labels.size()) != train.rows() ||
      static_cast<std::int64_t>(test_labels.size()) != test.rows()) {
    throw mgpu::dimension_mismatch(mgpu::detail::message(
        "the data set has ", train.rows(), " training images but ", train_labels.size(), " labels, ", test.rows(),
        " test images but ", test_labels.size(), " labels"));
  }
  std::int64_t const queries = s.limit_queries > 0 ? std::min(s.limit_queries, test.rows()) : test.rows();
  mgpu::dense_view<float const> const query_view{queries, test.cols(), test.ld(), test.data()};
  auto const ranks = static_cast<std::int64_t>(policy.ranks());
  auto const first = train.rows() * policy.rank() / ranks;
  auto const last = train.rows() * (policy.rank() + 1) / ranks;
  mgpu::dense_view<float const> const mine{last - first, train.cols(), train.ld(), train.data() + first * train.ld()};
  if (root) {
    std::fprintf(stderr, "read:    %8.3f s  %lld training images (%lld on rank 0 of %lld), %lld queries, %lld dimensions\n",
                 clock.lap(), static_cast<long long>(train.rows()), static_cast<long long>(last - first),
                 static_cast<long long>(ranks), static_cast<long long>(queries), static_cast<long long>(train.cols()));
  }
  auto const metric = s.metric == "ip"       ? mgpu::knn_metric::inner_product
                      : s.metric == "cosine" ? mgpu::knn_metric::cosine
                                             : mgpu::knn_metric::l2;
  stage = "searching the nearest neighbours";
  mgpu::progress_line progress("search", "queries");
  mgpu::knn_options options;
  if (root && progress.active()) {
    options.query_batch = 1000;
    options.progress = progress.callback();
  }
  auto const result = mgpu::mpi::knn(policy, mine, query_view, s.k, metric, options);
  double const seconds = clock.lap();
  if (!root) return 0;
  double const gflops = 2.0 * static_cast<double>(queries) * static_cast<double>(train.rows()) *
                        static_cast<double>(train.cols()) / seconds * 1e-9;
  std::fprintf(stderr, "search:  %8.3f s  k = %d, %s on %s per rank, %lld ranks\n", seconds, s.k, s.metric.c_str(),
               s.devices.c_str(), static_cast<long long>(ranks));
  report(s, result, train_labels, test_labels, seconds, gflops, format, outs, neighbors_out, clock);
  return 0;
}
#endif

int run(settings const& s) {
  stopwatch clock;
  auto const format = mgpu::parse_text_format(s.output_format);
  // The output path is checked before the long work, and written as one commit.
  mgpu::output_set outs;
  std::optional<mgpu::output_set::output_id> neighbors_out;
  if (!s.output.empty()) neighbors_out = outs.add(s.output, "--output");
  outs.check();
  return mgpu::with_policy(s.devices, [&](auto const& policy) {
    stage = "reading the data set";
    auto const train = mgpu::read_idx_matrix<float>(data_file(s.data_dir, "train-images-idx3-ubyte"));
    auto const train_labels = mgpu::read_idx_labels<int>(data_file(s.data_dir, "train-labels-idx1-ubyte"));
    auto test = mgpu::read_idx_matrix<float>(data_file(s.data_dir, "t10k-images-idx3-ubyte"));
    auto const test_labels = mgpu::read_idx_labels<int>(data_file(s.data_dir, "t10k-labels-idx1-ubyte"));
    if (static_cast<std::int64_t>(train_labels.size()) != train.rows() ||
        static_cast<std::int64_t>(test_labels.size()) != test.rows()) {
      throw mgpu::dimension_mismatch(mgpu::detail::message(
          "the data set has ", train.rows(), " training images but ", train_labels.size(), " labels, ",
          test.rows(), " test images but ", test_labels.size(), " labels"));
    }
    std::int64_t const queries = s.limit_queries > 0 ? std::min(s.limit_queries, test.rows()) : test.rows();
    mgpu::dense_view<float const> const query_view{queries, test.cols(), test.ld(), test.data()};
    std::fprintf(stderr, "read:    %8.3f s  %lld training images, %lld queries, %lld dimensions\n", clock.lap(),
                 static_cast<long long>(train.rows()), static_cast<long long>(queries),
                 static_cast<long long>(train.cols()));

    auto const metric = s.metric == "ip"       ? mgpu::knn_metric::inner_product
                        : s.metric == "cosine" ? mgpu::knn_metric::cosine
                                               : mgpu::knn_metric::l2;
    stage = "searching the nearest neighbours";
    // On a terminal, a progress line on stderr; batches of 1000 queries so that it moves
    // (the neighbours do not depend on the batch size). Elsewhere nothing changes.
    mgpu::progress_line progress("search", "queries");
    mgpu::knn_options options;
    if (progress.active()) {
      options.query_batch = 1000;
      options.progress = progress.callback();
    }
    auto const result = mgpu::knn(policy, train.view(), query_view, s.k, metric, options);
    double const seconds = clock.lap();
    double const gflops = 2.0 * static_cast<double>(queries) * static_cast<double>(train.rows()) *
                          static_cast<double>(train.cols()) / seconds * 1e-9;
    std::fprintf(stderr, "search:  %8.3f s  k = %d, %s on %s\n", seconds, s.k, s.metric.c_str(), s.devices.c_str());

    report(s, result, train_labels, test_labels, seconds, gflops, format, outs, neighbors_out, clock);
    return 0;
  });
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  CLI::App app{"k-nearest-neighbour classification of Fashion-MNIST by exact search (mgpu)"};
  app.add_option("--data-dir", s.data_dir, "directory with the four MNIST-format IDX files")
      ->capture_default_str();
  app.add_option("--k", s.k, "neighbours per query")->check(integer_in(1, 1 << 20))->capture_default_str();
  app.add_option("--metric", s.metric, "l2 (squared Euclidean), ip (inner product) or cosine")
      ->check(CLI::IsMember({"l2", "ip", "cosine"}))
      ->capture_default_str();
  app.add_option("--devices", s.devices, "cpu, cpu:N, cuda, cuda:0,1,...")
      ->envname("MGPU_DEVICES")
      ->capture_default_str();
  app.add_option("--output", s.output, "neighbours: query_index, train_index, distance");
  app.add_option("--output-format", s.output_format, "tsv or ndjson")
      ->check(CLI::IsMember({"tsv", "ndjson"}))
      ->capture_default_str();
  app.add_option("--limit-queries", s.limit_queries, "use only the first N test images (0: all)")
      ->check(integer_in(0, std::numeric_limits<long long>::max()));
  CLI11_PARSE(app, argc, argv);
  mgpu::remove_temporaries_on_signal();
#ifdef MGPU_EXAMPLE_WITH_MPI
  if (mgpu::mpi::launched_by_mpi()) {
    // Every rank prints "rank R of N: error: ..." and the job ends non-zero on an error.
    mgpu::mpi::environment env(argc, argv);
    return mgpu::mpi::main_guard([&] { return run_distributed(s); });
  }
#endif
  try {
    return run(s);
  } catch (std::bad_alloc const&) {
    std::fprintf(stderr, "knn_classify: error: out of host memory while %s\n", stage);
    return 1;
  } catch (mgpu::out_of_memory const& e) {
    std::fprintf(stderr, "knn_classify: error: out of memory while %s: %s\n", stage, e.what());
    return 1;
  } catch (std::exception const& e) {
    std::fprintf(stderr, "knn_classify: error: %s\n", e.what());
    return 1;
  }
}
