// mgpu/backend/cuda/functors.hpp — per-element logic the GPU kernels run, written as
// plain constexpr C++ so that the host compiles and tests the very same code.
//
// nvcc runs these on the device through --expt-relaxed-constexpr (set by mgpu::cuda);
// g++ compiles them as ordinary host code (tests/cuda/test_cuda_functors.cpp). No CUDA
// header is needed here.
#pragma once

#include <cstdint>

namespace mgpu::backend::cuda {

/// Top-k selection of one score row that is already sorted best first: by score
/// descending, ties by column ascending (detail::ranks_before once columns are made
/// global). Walks row r and keeps the first k entries that are reported: nonzero
/// scores, and not the query itself when `exclude_self` (global corpus index
/// `first + column` equal to the query's global index `query_first + r`).
/// Writes them to out_columns / out_scores[r * k ...] and their number to
/// out_counts[r]. One row per call: on the GPU, one thread per query row.
template <class T>
struct select_sorted_row {
  std::int32_t const* row_offsets;  // rows + 1, into columns / scores
  std::int32_t const* columns;      // local corpus index of each score
  T const* scores;
  std::int64_t first;        // global corpus index of local column 0
  std::int64_t query_first;  // global query index of row 0
  bool exclude_self;
  std::int64_t k;
  std::int32_t* out_columns;  // rows * k
  T* out_scores;              // rows * k
  std::int32_t* out_counts;   // rows

  constexpr void operator()(std::int32_t r) const {
    std::int64_t const self = query_first + r;
    std::int64_t kept = 0;
    std::int64_t const base = static_cast<std::int64_t>(r) * k;
    for (std::int32_t p = row_offsets[r]; p < row_offsets[r + 1] && kept < k; ++p) {
      T const score = scores[p];
      if (score == T{0}) continue;
      if (exclude_self && first + columns[p] == self) continue;
      out_columns[base + kept] = columns[p];
      out_scores[base + kept] = score;
      ++kept;
    }
    out_counts[r] = static_cast<std::int32_t>(kept);
  }
};

/// Scales the values of one CSR row by a per-row factor (used to L2-normalise rows on
/// the host before upload and by tests): values[p] *= scale[r] for p in row r.
template <class T, class I>
struct scale_row {
  I const* row_offsets;
  T const* scale;
  T* values;

  constexpr void operator()(I r) const {
    for (I p = row_offsets[r]; p < row_offsets[r + 1]; ++p) values[p] *= scale[r];
  }
};

}  // namespace mgpu::backend::cuda
