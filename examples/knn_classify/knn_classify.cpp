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
// for the GEMM part, as for FAISS's IndexFlatL2). Stage timings go to stderr.
// --output: one line per (query, neighbour), best first:
//   query_index <TAB> train_index <TAB> value (0-based indices; squared L2 distance for
//   l2, inner product for ip, cosine similarity for cosine; 9 significant digits).
// Any bad input ends the program with a one-line error, exit code 1, and no output file.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <CLI/CLI.hpp>

#include <mgpu/algorithms/knn.hpp>
#include <mgpu/io/idx.hpp>
#include <mgpu/mgpu.hpp>
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

// Writes through a temporary file renamed into place at the end, so a failure never
// leaves a half-written output behind.
void write_neighbors(fs::path const& target, mgpu::knn_result<float> const& r) {
  fs::path const tmp = target.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
    char line[96];
    for (std::int64_t q = 0; q < r.indices.rows(); ++q) {
      for (std::int64_t j = 0; j < r.indices.cols(); ++j) {
        if (r.indices(q, j) < 0) break;  // fewer training images than k
        int const n = std::snprintf(line, sizeof line, "%lld\t%lld\t%.9g\n", static_cast<long long>(q),
                                    static_cast<long long>(r.indices(q, j)),
                                    static_cast<double>(r.distances(q, j)));
        out.write(line, n);
      }
    }
    out.flush();
    if (!out) {
      std::error_code ignored;
      fs::remove(tmp, ignored);
      throw std::runtime_error("write failed: " + tmp.string());
    }
  }
  fs::rename(tmp, target);
}

int run(settings const& s) {
  stopwatch clock;
  auto const train = mgpu::read_idx_matrix<float>(data_file(s.data_dir, "train-images-idx3-ubyte"));
  auto const train_labels = mgpu::read_idx_vector<int>(data_file(s.data_dir, "train-labels-idx1-ubyte"));
  auto test = mgpu::read_idx_matrix<float>(data_file(s.data_dir, "t10k-images-idx3-ubyte"));
  auto const test_labels = mgpu::read_idx_vector<int>(data_file(s.data_dir, "t10k-labels-idx1-ubyte"));
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
  return mgpu::with_policy(s.devices, [&](auto const& policy) {
    auto const result = mgpu::knn(policy, train.view(), query_view, s.k, metric);
    double const seconds = clock.lap();
    double const gflops = 2.0 * static_cast<double>(queries) * static_cast<double>(train.rows()) *
                          static_cast<double>(train.cols()) / seconds * 1e-9;
    std::fprintf(stderr, "search:  %8.3f s  k = %d, %s on %s\n", seconds, s.k, s.metric.c_str(), s.devices.c_str());

    auto const predicted = mgpu::knn_vote(result.indices, std::span<int const>(train_labels));
    std::int64_t correct = 0;
    for (std::int64_t q = 0; q < queries; ++q) {
      correct += predicted[static_cast<std::size_t>(q)] == test_labels[static_cast<std::size_t>(q)] ? 1 : 0;
    }
    std::printf("accuracy=%.4f\n", queries > 0 ? static_cast<double>(correct) / static_cast<double>(queries) : 0.0);
    std::printf("search_seconds=%.3f\n", seconds);
    std::printf("gflops=%.1f\n", gflops);
    if (!s.output.empty()) {
      write_neighbors(s.output, result);
      std::fprintf(stderr, "write:   %8.3f s  %s\n", clock.lap(), s.output.c_str());
    }
    return 0;
  });
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  CLI::App app{"k-nearest-neighbour classification of Fashion-MNIST by exact search (mgpu)"};
  app.add_option("--data-dir", s.data_dir, "directory with the four MNIST-format IDX files")
      ->capture_default_str();
  app.add_option("--k", s.k, "neighbours per query")->check(CLI::Range(1, 1 << 20))->capture_default_str();
  app.add_option("--metric", s.metric, "l2 (squared Euclidean), ip (inner product) or cosine")
      ->check(CLI::IsMember({"l2", "ip", "cosine"}))
      ->capture_default_str();
  app.add_option("--devices", s.devices, "cpu, cpu:N, cuda, cuda:0,1,...")
      ->envname("MGPU_DEVICES")
      ->capture_default_str();
  app.add_option("--output", s.output, "neighbours TSV: query_index, train_index, distance");
  app.add_option("--limit-queries", s.limit_queries, "use only the first N test images (0: all)")
      ->check(CLI::Range(std::int64_t{0}, std::numeric_limits<std::int64_t>::max()));
  CLI11_PARSE(app, argc, argv);
  try {
    return run(s);
  } catch (std::exception const& e) {
    std::fprintf(stderr, "knn_classify: error: %s\n", e.what());
    return 1;
  }
}
