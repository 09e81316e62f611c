// benchmarks/sparse/eigen_spmv.cpp — the Eigen peer of spmv_bench: y = A x with
// Eigen::SparseMatrix<float, RowMajor, int> (mapped over the arrays of sparse_gen.h, no
// copy) times a VectorXf. Eigen parallelises a row-major sparse × dense vector product
// with OpenMP when compiled with -fopenmp. Prints the median of REPEAT runs.
//
//   eigen_spmv ROWS NNZ_PER_ROW BAND REPEAT      (BAND < 0: uniformly random columns)
#include <omp.h>

#include <Eigen/Sparse>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "sparse_gen.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s ROWS NNZ_PER_ROW BAND REPEAT\n", argv[0]);
    return 2;
  }
  std::int64_t const n = std::atoll(argv[1]);
  std::int64_t const k = std::atoll(argv[2]);
  std::int64_t const band = std::atoll(argv[3]);
  int const repeat = std::atoi(argv[4]);
  std::vector<int> offsets(static_cast<std::size_t>(n) + 1, 0);
  for (std::int64_t r = 0; r < n; ++r) {
    offsets[static_cast<std::size_t>(r) + 1] = offsets[static_cast<std::size_t>(r)] + static_cast<int>(sparse_gen_row_nnz(n, k, band, r));
  }
  auto const nnz = static_cast<std::size_t>(offsets.back());
  std::vector<int> cols(nnz);
  std::vector<float> vals(nnz);
#pragma omp parallel
  {
    std::vector<std::int64_t> row(static_cast<std::size_t>(std::max<std::int64_t>(k, 1)));
#pragma omp for schedule(static)
    for (std::int64_t r = 0; r < n; ++r) {
      auto const at = static_cast<std::size_t>(offsets[static_cast<std::size_t>(r)]);
      auto const m = sparse_gen_row(42, n, k, band, r, row.data(), vals.data() + at);
      for (std::int64_t j = 0; j < m; ++j) cols[at + static_cast<std::size_t>(j)] = static_cast<int>(row[static_cast<std::size_t>(j)]);
    }
  }
  Eigen::Map<Eigen::SparseMatrix<float, Eigen::RowMajor, int>> const a(
      static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(nnz), offsets.data(),
      cols.data(), vals.data());
  Eigen::VectorXf x(n);
  for (std::int64_t i = 0; i < n; ++i) x[static_cast<Eigen::Index>(i)] = sparse_gen_x(i);
  Eigen::VectorXf y(n);
  y.noalias() = a * x;
  std::vector<double> ms;
  for (int i = 0; i < repeat; ++i) {
    double const t0 = omp_get_wtime();
    y.noalias() = a * x;
    ms.push_back((omp_get_wtime() - t0) * 1e3);
  }
  std::sort(ms.begin(), ms.end());
  double const median = ms[ms.size() / 2];
  double checksum = 0;
  for (std::int64_t i = 0; i < n; i += 997) checksum += y[static_cast<Eigen::Index>(i)];
  double const bytes = 8.0 * static_cast<double>(nnz) + 4.0 * static_cast<double>(n + 1) + 8.0 * static_cast<double>(n);
  std::printf("peer=eigen threads=%d nnz=%zu median_ms=%.3f GBps=%.2f GFLOPs=%.3f checksum=%.6g\n",
              Eigen::nbThreads(), nnz, median, bytes / median / 1e6, 2.0 * static_cast<double>(nnz) / median / 1e6,
              checksum);
  return 0;
}
