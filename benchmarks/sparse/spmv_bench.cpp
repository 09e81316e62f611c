// benchmarks/sparse/spmv_bench.cpp — times mgpu's SpMV, SpMM or SpGEMM (float32 values,
// int32 indices) on a Matrix Market file or on a generated matrix (sparse_gen.h, the
// same generator the peer programs use), and prints one line:
//
//   spmv_bench [--matrix FILE.mtx | --rows R --nnz-per-row K [--band W]]
//              [--op spmv|spmm|spgemm] [--devices cpu] [--repeat N]
//              [--layout auto|csr|tiled|sell] [--sigma S] [--spmm-cols N] [--save-csr FILE]
//              [--triad-mib M]
//
// SpMV and SpMM run through a distributed_csr built once (its build time is reported
// apart as build_ms), then timed --repeat times; the median is reported. The layout the
// host devices use is printed (automatic may pick a different one per device).
// Counting (the same for every system):
//   spmv   bytes = 8·nnz + 4·(rows + 1) + 4·cols + 4·rows   (values + columns, offsets,
//          x read once, y written once);  flops = 2·nnz
//   spmm   bytes = 8·nnz + 4·(rows + 1) + 4·cols·n + 4·rows·n;  flops = 2·nnz·n
//   spgemm bytes = the input and output CSR arrays;  flops = 2·Σ_{(i,k)∈A} nnz(B row k)
// --triad-mib M (spmv only) alternates every timed product with one pass of a STREAM triad
// (stream_triad.cpp's loop: three float64 arrays of M MiB, 24 bytes per element, the
// process's OpenMP threads), so that the product and the memory system's reference are
// timed under the same load on a shared machine; prints triad_GBps and pct_of_triad.
// --save-csr writes the matrix as raw arrays (int64 rows, cols, nnz; int32 offsets,
// int32 columns, float32 values) for the SciPy peer.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <omp.h>

#include "mgpu/core/buffer.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/execution/policy.hpp"
#include "mgpu/io/matrix_market.hpp"
#include "mgpu/sparse/csr_matrix.hpp"
#include "mgpu/sparse/distributed_csr.hpp"
#include "mgpu/sparse/spgemm.hpp"
#include "sparse_gen.h"

namespace {

using matrix = mgpu::csr_matrix<mgpu::cpu, float, std::int32_t>;

matrix generate(std::int64_t n, std::int64_t k, std::int64_t band) {
  mgpu::buffer<std::int32_t, mgpu::cpu> offsets(static_cast<std::size_t>(n) + 1);
  offsets[0] = 0;
  std::int64_t nnz = 0;
  for (std::int64_t r = 0; r < n; ++r) {
    nnz += sparse_gen_row_nnz(n, k, band, r);
    offsets[static_cast<std::size_t>(r) + 1] = static_cast<std::int32_t>(nnz);
  }
  mgpu::buffer<std::int32_t, mgpu::cpu> cols(static_cast<std::size_t>(nnz));
  mgpu::buffer<float, mgpu::cpu> vals(static_cast<std::size_t>(nnz));
#pragma omp parallel
  {
    std::vector<std::int64_t> row(static_cast<std::size_t>(std::max<std::int64_t>(k, 1)));
#pragma omp for schedule(static)
    for (std::int64_t r = 0; r < n; ++r) {
      auto const at = static_cast<std::size_t>(offsets[static_cast<std::size_t>(r)]);
      auto const m = sparse_gen_row(42, n, k, band, r, row.data(), vals.data() + at);
      for (std::int64_t j = 0; j < m; ++j) cols[at + static_cast<std::size_t>(j)] = static_cast<std::int32_t>(row[static_cast<std::size_t>(j)]);
    }
  }
  return matrix::adopt_canonical(static_cast<std::int32_t>(n), static_cast<std::int32_t>(n), std::move(offsets),
                                 std::move(cols), std::move(vals));
}

void save_csr(matrix const& a, std::string const& path) {
  std::ofstream out(path, std::ios::binary);
  std::int64_t const header[3] = {a.rows(), a.cols(), a.nnz()};
  out.write(reinterpret_cast<char const*>(header), sizeof header);
  auto write = [&](auto span) {
    out.write(reinterpret_cast<char const*>(span.data()), static_cast<std::streamsize>(span.size_bytes()));
  };
  write(a.row_offsets());
  write(a.col_indices());
  write(a.values());
  if (!out) throw std::runtime_error("cannot write " + path);
}

/// One STREAM triad pass over arrays of n doubles, first-touched by the same schedule.
class triad_probe {
 public:
  explicit triad_probe(std::size_t mib) : n_(static_cast<std::ptrdiff_t>(mib * 1024 * 1024 / sizeof(double))) {
    a_.resize(static_cast<std::size_t>(n_));
    b_.resize(static_cast<std::size_t>(n_));
    c_.resize(static_cast<std::size_t>(n_));
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t i = 0; i < n_; ++i) {
      a_[static_cast<std::size_t>(i)] = 0.0;
      b_[static_cast<std::size_t>(i)] = 1.0;
      c_[static_cast<std::size_t>(i)] = 2.0;
    }
  }
  void operator()() {
    double* const a = a_.data();
    double const* const b = b_.data();
    double const* const c = c_.data();
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t i = 0; i < n_; ++i) a[i] = b[i] + 3.0 * c[i];
  }
  [[nodiscard]] double bytes() const { return 24.0 * static_cast<double>(n_); }

 private:
  std::ptrdiff_t n_;
  std::vector<double> a_, b_, c_;
};

/// Medians of f and of the triad, timed alternately (f, triad, f, triad, ...).
template <class F>
std::pair<double, double> median_ms_with_triad(int repeat, F&& f, triad_probe& triad) {
  std::vector<double> ms;
  std::vector<double> triad_ms;
  f();
  triad();
  for (int i = 0; i < repeat; ++i) {
    double const t0 = omp_get_wtime();
    f();
    double const t1 = omp_get_wtime();
    triad();
    triad_ms.push_back((omp_get_wtime() - t1) * 1e3);
    ms.push_back((t1 - t0) * 1e3);
  }
  std::sort(ms.begin(), ms.end());
  std::sort(triad_ms.begin(), triad_ms.end());
  return {ms[ms.size() / 2], triad_ms[triad_ms.size() / 2]};
}

template <class F>
double median_ms(int repeat, F&& f) {
  std::vector<double> ms;
  f();  // warm-up: first touch of the outputs, thread start-up
  for (int i = 0; i < repeat; ++i) {
    double const t0 = omp_get_wtime();
    f();
    ms.push_back((omp_get_wtime() - t0) * 1e3);
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mgpu sparse products benchmark"};
  std::string file;
  std::int64_t rows = 0;
  std::int64_t k = 16;
  std::int64_t band = -1;
  std::string op = "spmv";
  std::string devices = "cpu";
  std::string layout = "auto";
  std::string save;
  int repeat = 10;
  std::int64_t sigma = 256;
  std::size_t triad_mib = 0;
  std::int64_t spmm_cols = 8;
  auto* m = app.add_option("--matrix", file, "Matrix Market file");
  auto* r = app.add_option("--rows", rows, "rows (= columns) of a generated matrix")->excludes(m);
  app.add_option("--nnz-per-row", k, "entries per generated row")->needs(r);
  app.add_option("--band", band, "columns within [row - W, row + W] (default: uniformly random)")->needs(r);
  app.add_option("--op", op, "spmv, spmm or spgemm")->check(CLI::IsMember({"spmv", "spmm", "spgemm"}));
  app.add_option("--devices", devices, "device string, e.g. cpu:2");
  app.add_option("--repeat", repeat, "timed repetitions (median reported)")->check(CLI::PositiveNumber);
  app.add_option("--layout", layout, "host SpMV layout")->check(CLI::IsMember({"auto", "csr", "tiled", "sell"}));
  app.add_option("--sigma", sigma, "SELL-C-sigma sorting window (rows)")->check(CLI::PositiveNumber);
  app.add_option("--spmm-cols", spmm_cols, "columns of the dense B for spmm")->check(CLI::PositiveNumber);
  app.add_option("--triad-mib", triad_mib, "alternate spmv with a STREAM triad on 3 arrays of this many MiB");
  app.add_option("--save-csr", save, "write the matrix as raw CSR arrays for the SciPy peer");
  CLI11_PARSE(app, argc, argv);
  if (file.empty() && rows <= 0) {
    std::cerr << "give --matrix FILE or --rows R\n";
    return 2;
  }

  try {
    matrix const a = file.empty() ? generate(rows, k, band) : mgpu::read_matrix_market<float, std::int32_t>(file);
    if (!save.empty()) save_csr(a, save);
    mgpu::execution_policy<mgpu::cpu> policy{devices};
    auto const nnz = static_cast<double>(a.nnz());
    auto const n_rows = static_cast<double>(a.rows());
    auto const n_cols = static_cast<double>(a.cols());
    double ms = 0;
    double build_ms = 0;
    double bytes = 0;
    double flops = 0;
    double checksum = 0;
    std::string extra;
    if (op == "spgemm") {
      std::int64_t products = 0;
      for (std::int64_t p = 0; p < a.nnz(); ++p) {
        auto const c = static_cast<std::size_t>(a.col_indices()[static_cast<std::size_t>(p)]);
        products += a.row_offsets()[c + 1] - a.row_offsets()[c];
      }
      std::int64_t c_nnz = 0;
      ms = median_ms(repeat, [&] { c_nnz = mgpu::spgemm(policy, a, a).nnz(); });
      bytes = 3 * (8 * nnz + 4 * (n_rows + 1)) - 8 * nnz + 8 * static_cast<double>(c_nnz);
      flops = 2.0 * static_cast<double>(products);
      checksum = static_cast<double>(c_nnz);
      extra = " c_nnz=" + std::to_string(c_nnz);
    } else {
      mgpu::distributed_csr_options options;
      options.layout = layout == "csr"     ? mgpu::spmv_layout::csr
                       : layout == "tiled" ? mgpu::spmv_layout::tiled
                       : layout == "sell"  ? mgpu::spmv_layout::sell
                                           : mgpu::spmv_layout::automatic;
      options.sell_sigma = sigma;
      double const t0 = omp_get_wtime();
      mgpu::distributed_csr<mgpu::cpu, float, std::int32_t> da(policy, a.view(), options);
      build_ms = (omp_get_wtime() - t0) * 1e3;
      std::string used;
      for (std::size_t d = 0; d < policy.device_count(); ++d) {
        if (!da.shard(d)) continue;
        auto const l = da.shard(d)->layout();
        std::string const name = l == mgpu::spmv_layout::tiled ? "tiled" : l == mgpu::spmv_layout::sell ? "sell" : "csr";
        if (used.find(name) == std::string::npos) used += (used.empty() ? "" : "+") + name;
      }
      extra = " layout=" + (used.empty() ? std::string("csr") : used) + " threads=" + std::to_string(omp_get_max_threads());
      if (op == "spmv") {
        std::vector<float> x(static_cast<std::size_t>(a.cols()));
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = sparse_gen_x(static_cast<std::int64_t>(i));
        std::vector<float> y(static_cast<std::size_t>(a.rows()));
        auto const product = [&] { da.spmv(1.0f, std::span<float const>(x), 0.0f, std::span<float>(y)); };
        bytes = 8 * nnz + 4 * (n_rows + 1) + 4 * n_cols + 4 * n_rows;
        if (triad_mib > 0) {
          triad_probe triad(triad_mib);
          auto const [spmv_ms, triad_ms] = median_ms_with_triad(repeat, product, triad);
          ms = spmv_ms;
          auto const triad_gbps = triad.bytes() / triad_ms / 1e6;
          char buf[96];
          std::snprintf(buf, sizeof buf, " triad_GBps=%.2f pct_of_triad=%.1f", triad_gbps, 100.0 * (bytes / ms / 1e6) / triad_gbps);
          extra += buf;
        } else {
          ms = median_ms(repeat, product);
        }
        flops = 2 * nnz;
        for (std::size_t i = 0; i < y.size(); i += 997) checksum += y[i];
      } else {
        mgpu::dense_matrix<mgpu::cpu, float> b(a.cols(), spmm_cols);
        for (std::int64_t i = 0; i < a.cols() * spmm_cols; ++i) b.data()[i] = sparse_gen_x(i);
        mgpu::dense_matrix<mgpu::cpu, float> c(a.rows(), spmm_cols);
        ms = median_ms(repeat, [&] { da.spmm(1.0f, std::as_const(b).view(), 0.0f, c.view()); });
        auto const w = static_cast<double>(spmm_cols);
        bytes = 8 * nnz + 4 * (n_rows + 1) + 4 * n_cols * w + 4 * n_rows * w;
        flops = 2 * nnz * w;
        for (std::int64_t i = 0; i < a.rows(); i += 997) checksum += c(i, 0);
        extra += " spmm_cols=" + std::to_string(spmm_cols);
      }
    }
    std::printf("op=%s devices=%s rows=%lld nnz=%lld%s build_ms=%.1f median_ms=%.3f GBps=%.2f GFLOPs=%.3f checksum=%.6g\n",
                op.c_str(), devices.c_str(), static_cast<long long>(a.rows()), static_cast<long long>(a.nnz()),
                extra.c_str(), build_ms, ms, bytes / ms / 1e6, flops / ms / 1e6, checksum);
  } catch (std::exception const& e) {
    std::cerr << "spmv_bench: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
