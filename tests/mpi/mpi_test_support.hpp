// Helpers shared by the mpi component's test cases.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "mgpu/sparse/csr_matrix.hpp"

namespace mgpu_mpi_test {

inline int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

inline int world_size() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

/// The local device strings the cases run with: the same on every rank ("cpu", "cpu:2"),
/// or different counts per rank ("mixed": cpu:2 on even ranks, cpu on odd ones).
inline std::vector<std::string> device_configs() { return {"cpu", "cpu:2", "mixed"}; }

inline std::string local_devices(std::string const& config, int rank) {
  if (config == "mixed") return rank % 2 == 0 ? "cpu:2" : "cpu";
  return config;
}

/// A random rows x cols matrix with about `density`·rows·cols entries, some empty rows
/// and a few long ones; values in [-1, 1). Deterministic in `seed` (the same on every rank).
inline mgpu::csr_matrix<mgpu::cpu, float, int> random_csr(int rows, int cols, double density, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  std::vector<int> offsets{0};
  std::vector<int> columns;
  std::vector<float> values;
  for (int r = 0; r < rows; ++r) {
    double const p = r % 7 == 3 ? 0.0 : (r % 11 == 5 ? 0.5 : density);
    for (int c = 0; c < cols; ++c) {
      if (coin(gen) < p) {
        columns.push_back(c);
        values.push_back(value(gen));
      }
    }
    offsets.push_back(static_cast<int>(columns.size()));
  }
  return {rows, cols, std::move(offsets), std::move(columns), std::move(values)};
}

/// Contiguous row counts for `ranks` ranks over `rows` rows in which rank 1 (when there
/// is one) holds no rows and the others share the rows unevenly.
inline std::vector<int> uneven_split(int rows, int ranks) {
  std::vector<int> bounds(static_cast<std::size_t>(ranks) + 1, 0);
  int weight_sum = 0;
  for (int r = 0; r < ranks; ++r) weight_sum += r == 1 ? 0 : r + 1;
  int acc = 0;
  for (int r = 0; r < ranks; ++r) {
    acc += r == 1 ? 0 : r + 1;
    bounds[static_cast<std::size_t>(r) + 1] = rows * acc / weight_sum;
  }
  return bounds;
}

/// A deterministic, non-integer test value for element (i, j) (exact in float).
inline float element(std::int64_t i, std::int64_t j) {
  return static_cast<float>(i) * 8.0f + static_cast<float>(j) + 0.25f;
}

}  // namespace mgpu_mpi_test
