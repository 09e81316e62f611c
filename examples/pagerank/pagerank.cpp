// pagerank — PageRank by power iteration on data that stays on its devices.
//
// Input: a directed graph as a Matrix Market coordinate file, entry (i, j) = edge i -> j
// (values ignored, repeated entries one edge). By default the Debian package dependency
// graph (edge i -> j when package i depends on j), built from the package lists apt
// already has by make_dependency_graph.py beside this file, with the names kept:
//
//   python3 examples/pagerank/make_dependency_graph.py --output out/debian-dependencies
//   pagerank --devices cpu:2 --output out/ranks.tsv
//
// Semantics: networkx.pagerank with uniform personalization (Page, Brin, Motwani,
// Winograd 1999): x0 = 1/N; every iteration
//     x <- d·(Pᵀ x) + (d·Σ_{dangling i} x_i + 1 - d)/N
// where P is the row-stochastic adjacency (row i spread uniformly over i's out-edges)
// and a dangling node (no out-edge) spreads its rank uniformly. Exactly --iterations
// products, no convergence test (networkx stops at a tolerance).
//
// How the data moves (the point of the example; every step is spelled out below):
//   - Pᵀ is split into nnz-balanced row blocks, one per device, each copied once into
//     its device's memory (distributed_csr with `resident`);
//   - x is broadcast once (host -> every device), then lives replicated on the devices;
//   - each iteration, every device multiplies its block by its own x into its own block
//     of the new x (nothing moves), then adds the teleport term, in a task on its own
//     stream whose completion the host waits for through an event; the new blocks are
//     all-gathered into every device's x (the only copy of the iteration: each device's
//     block goes to every other device);
//   - after the last iteration the row blocks are gathered to the host, once.
// The bytes each device sent and received are read from the device set's counter.
//
// Output: `node<TAB>score` for every node in node order (names for the default graph,
// 0-based row indices otherwise; names escaped as TSV), written with output_set
// (io/output_file.hpp); the ten best nodes and the bytes moved on stdout. When standard
// error is a terminal, a progress line counts the iterations there (io/progress_line.hpp);
// otherwise nothing extra is printed. Any error ends the program with a one-line message
// and exit code 1.
//
// MPI (built with mgpu's mpi component, MGPU_ENABLE_MPI): started by mpirun / srun, the
// same iteration runs over the ranks (docs/distributed.md): every rank reads the graph,
// keeps its devices' nnz-balanced share of Pᵀ's rows (mpi::distributed_csr::from_whole
// over ranks × --devices), x is broadcast once from rank 0, each iteration's new blocks
// are all-gathered over the ranks (mpi::all_gather: (ranks − 1)·n·8 bytes between ranks),
// and the final vector is gathered on rank 0, which prints and writes --output: the same
// bytes as the single-process run's (csr layout: every row's sum in the same order; the
// teleport term from each device's whole copy of x). Started without a launcher, the
// program is the single-process one.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <new>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include <CLI/CLI.hpp>

#include <mgpu/io/matrix_market.hpp>
#include <mgpu/io/output_file.hpp>
#include <mgpu/io/progress_line.hpp>
#include <mgpu/io/text_output.hpp>
#include <mgpu/mgpu.hpp>
#ifdef MGPU_EXAMPLE_WITH_MPI
#include <mgpu/mpi/collectives.hpp>
#include <mgpu/mpi/distributed_csr.hpp>
#include <mgpu/mpi/environment.hpp>
#include <mgpu/mpi/policy.hpp>
#endif

namespace {

namespace fs = std::filesystem;
using graph_t = mgpu::csr_matrix<mgpu::cpu, double, std::int32_t>;

struct settings {
  fs::path input = "out/debian-dependencies.mtx";
  double damping = 0.85;
  int iterations = 50;
  std::string devices = "cpu";
  std::string output;
};

std::vector<std::string> read_names(fs::path const& path, std::int64_t expected) {
  std::vector<std::string> names;
  if (!fs::exists(path)) return names;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) names.push_back(line);
  if (static_cast<std::int64_t>(names.size()) != expected) {
    throw std::runtime_error(path.string() + ": " + std::to_string(names.size()) + " names for " +
                             std::to_string(expected) + " nodes");
  }
  return names;
}

/// Pᵀ: entry (j, i) = 1/outdegree(i) for every edge i -> j. Also marks the dangling nodes.
graph_t transition_transposed(graph_t graph, std::vector<std::int32_t>& dangling) {
  auto const offsets = graph.row_offsets();
  auto values = graph.values();
  for (std::int32_t i = 0; i < graph.rows(); ++i) {
    auto const degree = offsets[i + 1] - offsets[i];
    if (degree == 0) dangling.push_back(i);
    for (auto p = offsets[i]; p < offsets[i + 1]; ++p) values[p] = 1.0 / degree;  // weights ignored
  }
  return mgpu::transpose(graph);
}

/// The graph of --input (checked square and non-empty) and its node names.
graph_t read_graph(settings const& s, std::vector<std::string>& names) {
  if (!fs::exists(s.input)) {
    throw std::runtime_error(s.input.string() +
                             ": no such file (for the default input run: python3 "
                             "examples/pagerank/make_dependency_graph.py --output out/debian-dependencies)");
  }
  auto graph = mgpu::read_matrix_market<double, std::int32_t>(s.input);
  if (graph.rows() != graph.cols() || graph.rows() == 0) {
    throw std::runtime_error(s.input.string() + ": a graph needs a square, non-empty matrix, got " +
                             std::to_string(graph.rows()) + " x " + std::to_string(graph.cols()));
  }
  auto stem = s.input;
  stem.replace_extension();
  names = read_names(stem.string() + ".names.txt", graph.rows());
  return graph;
}

/// The ten best nodes on stdout.
void print_top(std::vector<double> const& ranks, std::vector<std::string> const& names, settings const& s) {
  auto const n = static_cast<std::int64_t>(ranks.size());
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  auto const top = std::min<std::size_t>(10, order.size());
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(top), order.end(),
                    [&](std::int64_t p, std::int64_t q) { return ranks[p] > ranks[q] || (ranks[p] == ranks[q] && p < q); });
  std::printf("top %zu after %d iterations (damping %g):\n", top, s.iterations, s.damping);
  for (std::size_t k = 0; k < top; ++k) {
    auto const i = order[k];
    std::printf("  %-40s %.6g\n", names.empty() ? std::to_string(i).c_str() : names[i].c_str(), ranks[i]);
  }
}

/// node<TAB>score for every node.
void write_ranks(std::ostream& out, std::vector<double> const& ranks, std::vector<std::string> const& names) {
  std::string line;
  char score[32];
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    line.clear();
    if (names.empty()) {
      line += std::to_string(i);
    } else {
      mgpu::append_tsv_field(line, names[i]);
    }
    std::snprintf(score, sizeof score, "\t%.17g\n", ranks[i]);
    line += score;
    out << line;
  }
}

#ifdef MGPU_EXAMPLE_WITH_MPI
// The iteration over MPI ranks (see the file comment); rank 0 prints and writes.
int run_distributed(settings const& s) {
  mgpu::mpi::distributed_policy<mgpu::cpu> const policy(s.devices);
  bool const root = policy.rank() == 0;
  mgpu::output_set outs;
  std::optional<mgpu::output_set::output_id> ranks_out;
  if (root && !s.output.empty()) {
    ranks_out = outs.add(s.output, "--output");
    outs.check();
  }
  std::vector<std::string> names;
  auto graph = read_graph(s, names);
  std::int64_t const n = graph.rows();
  if (root) {
    std::printf("%s: %lld nodes, %lld edges\n", s.input.c_str(), static_cast<long long>(n),
                static_cast<long long>(graph.nnz()));
  }
  std::vector<std::int32_t> dangling;
  auto const pt = transition_transposed(std::move(graph), dangling);

  using vector_t = mgpu::mpi::distributed_dense<mgpu::cpu, double>;
  mgpu::distributed_csr_options options;
  options.layout = mgpu::spmv_layout::csr;
  options.resident = true;
  auto a = mgpu::mpi::distributed_csr<mgpu::cpu, double, std::int32_t>::from_whole(policy, pt.view(), options);
  auto x = vector_t::replicated(policy, n, 1);
  auto y = vector_t::row_blocks(policy, n, 1, a.row_bounds());
  policy.transfers().reset();
  std::vector<double> const start(static_cast<std::size_t>(n), 1.0 / static_cast<double>(n));
  mgpu::mpi::broadcast(std::span<double const>(start), x);  // rank 0's host -> every device, once

  double const d = s.damping;
  auto& set = policy.local().devices();
  std::size_t const devices = set.size();
  std::vector<mgpu::event<mgpu::cpu>> teleported(devices);
  mgpu::progress_line const line("pagerank", "iterations");
  auto const progress = root ? line.callback() : mgpu::progress_callback{};
  for (int it = 0; it < s.iterations; ++it) {
    a.spmv(d, x, 0.0, y);  // each device: its rows, from its own x
    for (std::size_t dev = 0; dev < devices; ++dev) {
      set[dev].work.enqueue([&, dev] {
        auto const xs = x.local().view(dev);
        double dangling_sum = 0;
        for (auto i : dangling) dangling_sum += xs.data[i];
        double const teleport = (d * dangling_sum + (1.0 - d)) / static_cast<double>(n);
        auto const ys = y.local().view(dev);
        for (std::int64_t i = 0; i < ys.rows; ++i) ys.data[i] += teleport;
      });
      teleported[dev].record(set[dev].work);
    }
    for (auto const& e : teleported) e.synchronize();
    if (it + 1 < s.iterations) mgpu::mpi::all_gather(y, x);  // the only copy, across ranks too
    mgpu::report_progress(progress, it + 1, s.iterations);
  }
  std::vector<double> ranks(root ? static_cast<std::size_t>(n) : 0);
  mgpu::mpi::gather(y, std::span<double>(ranks));  // -> rank 0's host, once
  auto const moved = mgpu::mpi::sum_transfers(policy);
  if (!root) return 0;
  print_top(ranks, names, s);
  std::printf("bytes moved (%s): all pairs %llu, between ranks %llu\n", policy.to_string().c_str(),
              static_cast<unsigned long long>(moved.total()), static_cast<unsigned long long>(moved.network()));
  if (ranks_out) {
    outs.set_writer(*ranks_out, [&](std::ostream& out) { write_ranks(out, ranks, names); });
    outs.commit();
    std::printf("wrote %s\n", s.output.c_str());
  }
  return 0;
}
#endif

int run(settings const& s) {
  mgpu::output_set outs;
  std::optional<mgpu::output_set::output_id> ranks_out;
  if (!s.output.empty()) ranks_out = outs.add(s.output, "--output");
  outs.check();
  std::vector<std::string> names;
  auto graph = read_graph(s, names);
  std::int64_t const n = graph.rows();
  std::printf("%s: %lld nodes, %lld edges\n", s.input.c_str(), static_cast<long long>(n),
              static_cast<long long>(graph.nnz()));
  std::vector<std::int32_t> dangling;
  auto const pt = transition_transposed(std::move(graph), dangling);

  return mgpu::with_policy(s.devices, [&](auto const& policy) {
    using kind = typename std::decay_t<decltype(policy)>::kind;
    using vector_t = mgpu::distributed_dense<kind, double>;
    auto& set = policy.devices();
    std::size_t const devices = set.size();

    // Pᵀ's row blocks, copied once onto their devices (csr layout: bitwise the same
    // result on any number of devices).
    mgpu::distributed_csr_options options;
    options.layout = mgpu::spmv_layout::csr;
    options.resident = true;
    mgpu::distributed_csr<kind, double, std::int32_t> a(policy, pt.view(), options);
    auto x = vector_t::replicated(policy, n, 1);                   // every device: all of x
    auto y = vector_t::row_blocks(policy, n, 1, a.row_bounds());  // device d: its rows of x'
    set.transfers().reset();

    std::vector<double> const start(static_cast<std::size_t>(n), 1.0 / static_cast<double>(n));
    mgpu::broadcast(std::span<double const>(start), x);  // host -> every device, once

    double const d = s.damping;
    std::vector<mgpu::event<kind>> teleported(devices);
    mgpu::progress_line const line("pagerank", "iterations");  // draws only on a terminal
    auto const progress = line.callback();
    for (int it = 0; it < s.iterations; ++it) {
      a.spmv(d, x, 0.0, y);  // y_d = d·(Pᵀ x)_d on every device, from its own x: no copy
      // The teleport term, on each device's own stream from its own copy of x (the same
      // sum in the same order everywhere), then an event the host waits for.
      for (std::size_t dev = 0; dev < devices; ++dev) {
        set[dev].work.enqueue([&, dev] {
          auto const xs = x.view(dev);
          double dangling_sum = 0;
          for (auto i : dangling) dangling_sum += xs.data[i];
          double const teleport = (d * dangling_sum + (1.0 - d)) / static_cast<double>(n);
          auto const ys = y.view(dev);
          for (std::int64_t i = 0; i < ys.rows; ++i) ys.data[i] += teleport;
        });
        teleported[dev].record(set[dev].work);
      }
      for (auto const& e : teleported) e.synchronize();
      if (it + 1 < s.iterations) mgpu::all_gather(y, x);  // the iteration's only copy
      mgpu::report_progress(progress, it + 1, s.iterations);
    }
    std::vector<double> ranks(static_cast<std::size_t>(n));
    mgpu::gather(y, std::span<double>(ranks));  // device -> host, once

    print_top(ranks, names, s);
    auto const& moved = set.transfers();
    std::printf("bytes moved (%s): host sent %llu received %llu\n", set.to_string().c_str(),
                static_cast<unsigned long long>(moved.sent(mgpu::host_endpoint)),
                static_cast<unsigned long long>(moved.received(mgpu::host_endpoint)));
    for (std::size_t dev = 0; dev < devices; ++dev) {
      std::printf("device %zu: rows [%lld, %lld) sent %llu received %llu\n", dev,
                  static_cast<long long>(a.row_bounds()[dev]), static_cast<long long>(a.row_bounds()[dev + 1]),
                  static_cast<unsigned long long>(moved.sent(static_cast<int>(dev))),
                  static_cast<unsigned long long>(moved.received(static_cast<int>(dev))));
    }
    if (ranks_out) {
      outs.set_writer(*ranks_out, [&](std::ostream& out) { write_ranks(out, ranks, names); });
      outs.commit();
      std::printf("wrote %s\n", s.output.c_str());
    }
    return 0;
  });
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  CLI::App app{"PageRank by power iteration on resident data (mgpu)"};
  app.add_option("--input", s.input, "graph, Matrix Market coordinate: entry (i, j) = edge i -> j")
      ->capture_default_str();
  app.add_option("--damping", s.damping, "damping factor d (networkx's alpha)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--iterations", s.iterations, "power iterations (products), no early stop")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--devices", s.devices, "cpu or cpu:N")->envname("MGPU_DEVICES")->capture_default_str();
  app.add_option("--output", s.output, "write node<TAB>score for every node here");
  CLI11_PARSE(app, argc, argv);
  mgpu::remove_temporaries_on_signal();
#ifdef MGPU_EXAMPLE_WITH_MPI
  if (mgpu::mpi::launched_by_mpi()) {
    mgpu::mpi::environment env(argc, argv);
    return mgpu::mpi::main_guard([&] { return run_distributed(s); });
  }
#endif
  try {
    return run(s);
  } catch (std::bad_alloc const&) {
    std::fprintf(stderr, "pagerank: error: out of host memory\n");
    return 1;
  } catch (std::exception const& e) {
    std::fprintf(stderr, "pagerank: error: %s\n", e.what());
    return 1;
  }
}
