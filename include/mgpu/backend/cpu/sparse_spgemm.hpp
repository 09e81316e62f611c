// mgpu/backend/cpu/sparse_spgemm.hpp — host SpGEMM kernels, C = A·B, in two phases
// (Gustavson 1978, row by row):
//   symbolic  the number of distinct columns of each row of C (a marker per column);
//   numeric   each row accumulated in a dense, thread-private row of B.cols values,
//             its columns collected, sorted and written at the row's final position.
// Threads take contiguous row ranges balanced by A's nnz. C's structure is the symbolic
// product: entries whose terms cancel to 0 are stored (as in cuSPARSE and GraphBLAS;
// SciPy drops them). Each entry sums its terms in increasing k, independently of the
// partition, so results do not depend on the number of devices or threads.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <omp.h>

#include "mgpu/backend/cpu/sparse_spmv.hpp"
#include "mgpu/sparse/csr_view.hpp"

namespace mgpu::backend::cpu {

/// counts[r] = entries of row r of A·B, for the rows of `a` (a row block, a.cols ==
/// b.rows). O(flops) time, b.cols markers per thread.
template <class T, class I>
void spgemm_symbolic(csr_view<T, I> a, csr_view<T, I> b, std::span<std::int64_t> counts) {
  if (a.rows == 0) return;
#pragma omp parallel
  {
    I first{};
    I last{};
    detail::thread_rows(a, omp_get_thread_num(), omp_get_num_threads(), first, last);
    std::vector<std::int64_t> marker(last > first ? static_cast<std::size_t>(b.cols) : 0, -1);
    for (I r = first; r < last; ++r) {
      std::int64_t n = 0;
      for (I p = a.row_offsets[r]; p < a.row_offsets[r + 1]; ++p) {
        auto const k = a.col_indices[p];
        for (I q = b.row_offsets[k]; q < b.row_offsets[k + 1]; ++q) {
          auto& m = marker[static_cast<std::size_t>(b.col_indices[q])];
          if (m != static_cast<std::int64_t>(r)) {
            m = static_cast<std::int64_t>(r);
            ++n;
          }
        }
      }
      counts[static_cast<std::size_t>(r)] = n;
    }
  }
}

/// Writes the rows of A·B for the rows of `a`: row r's sorted columns and values go to
/// cols / vals [offsets[r], offsets[r + 1]), offsets as the symbolic phase sized them.
/// O(flops + Σ_r nnz_r log nnz_r) time, b.cols values and markers per thread.
template <class T, class I>
void spgemm_numeric(csr_view<T, I> a, csr_view<T, I> b, I const* offsets, I* cols, T* vals) {
  if (a.rows == 0) return;
#pragma omp parallel
  {
    I first{};
    I last{};
    detail::thread_rows(a, omp_get_thread_num(), omp_get_num_threads(), first, last);
    auto const width = last > first ? static_cast<std::size_t>(b.cols) : 0;
    std::vector<std::int64_t> marker(width, -1);
    std::vector<T> acc(width);
    std::vector<I> row_cols;
    for (I r = first; r < last; ++r) {
      row_cols.clear();
      for (I p = a.row_offsets[r]; p < a.row_offsets[r + 1]; ++p) {
        auto const k = a.col_indices[p];
        T const v = a.values[p];
        for (I q = b.row_offsets[k]; q < b.row_offsets[k + 1]; ++q) {
          auto const j = b.col_indices[q];
          auto const at = static_cast<std::size_t>(j);
          if (marker[at] != static_cast<std::int64_t>(r)) {
            marker[at] = static_cast<std::int64_t>(r);
            acc[at] = v * b.values[q];
            row_cols.push_back(j);
          } else {
            acc[at] += v * b.values[q];
          }
        }
      }
      std::sort(row_cols.begin(), row_cols.end());
      auto pos = offsets[r];
      for (auto const j : row_cols) {
        cols[pos] = j;
        vals[pos] = acc[static_cast<std::size_t>(j)];
        ++pos;
      }
    }
  }
}

}  // namespace mgpu::backend::cpu
