// benchmarks/sparse/stream_triad.cpp — a STREAM-style triad bandwidth probe:
// a[i] = b[i] + s * c[i] over three float64 arrays of --mib MiB each, with the
// OpenMP threads of the process, first-touched by the same static schedule. Reports the
// median of --repeat runs, counting 24 bytes per element as STREAM does (the write
// allocate of `a` is not counted, so real traffic is 4/3 of the figure).
#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
  CLI::App app{"STREAM triad bandwidth probe"};
  std::size_t mib = 256;
  int repeat = 10;
  app.add_option("--mib", mib, "size of each of the three arrays in MiB");
  app.add_option("--repeat", repeat, "timed repetitions (median reported)")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  auto const n = static_cast<std::ptrdiff_t>(mib * 1024 * 1024 / sizeof(double));
  std::unique_ptr<double[]> a(new double[static_cast<std::size_t>(n)]);
  std::unique_ptr<double[]> b(new double[static_cast<std::size_t>(n)]);
  std::unique_ptr<double[]> c(new double[static_cast<std::size_t>(n)]);
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    a[i] = 0.0;
    b[i] = 1.0;
    c[i] = 2.0;
  }
  double const s = 3.0;
  std::vector<double> ms;
  for (int r = 0; r < repeat + 1; ++r) {
    double const t0 = omp_get_wtime();
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
    double const t = (omp_get_wtime() - t0) * 1e3;
    if (r > 0) ms.push_back(t);  // the first run warms the pages and the threads
  }
  std::sort(ms.begin(), ms.end());
  double const median = ms[ms.size() / 2];
  double const bytes = 24.0 * static_cast<double>(n);
  std::printf("probe=triad threads=%d mib=%zu median_ms=%.3f GBps=%.2f check=%g\n",
              omp_get_max_threads(), mib, median, bytes / median / 1e6, a[static_cast<std::size_t>(n / 2)]);
  return 0;
}
