// mgpu/backend/cpu/sparse_spmm.hpp — host SpMM kernel: C = alpha·A·B + beta·C for a block
// of CSR rows and row-major dense B and C.
//
// Row by row (Gustavson's order): C's row r is the combination of B's rows selected by
// A's row r, accumulated in a thread-private row of n values, so every B row is read
// contiguously and C is written once. Threads take contiguous row ranges balanced by
// nnz. Each row sums its terms in increasing column order, so results do not depend on
// the split between devices or threads. beta == 0 means C is not read.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <omp.h>

#include "mgpu/backend/cpu/sparse_spmv.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/sparse/csr_view.hpp"

namespace mgpu::backend::cpu {

/// C = alpha·A·B + beta·C with A = `a` (rows x k), B k x n and C rows x n (views with
/// their own leading dimensions), on the calling thread's OpenMP team.
/// O(nnz·n + rows·n) time, n values of scratch per thread.
template <class T, class I>
void csr_spmm(csr_view<T, I> a, T alpha, dense_view<T const> b, T beta, dense_view<T> c) {
  if (a.rows == 0 || b.cols == 0) return;
  auto const n = static_cast<std::size_t>(b.cols);
#pragma omp parallel
  {
    I first{};
    I last{};
    detail::thread_rows(a, omp_get_thread_num(), omp_get_num_threads(), first, last);
    std::vector<T> acc(last > first ? n : 0);
    for (I r = first; r < last; ++r) {
      std::fill(acc.begin(), acc.end(), T{0});
      for (I p = a.row_offsets[r]; p < a.row_offsets[r + 1]; ++p) {
        T const v = a.values[p];
        T const* const brow = b.data + static_cast<std::int64_t>(a.col_indices[p]) * b.ld;
#pragma omp simd
        for (std::size_t j = 0; j < n; ++j) acc[j] += v * brow[j];
      }
      T* const crow = c.data + static_cast<std::int64_t>(r) * c.ld;
      if (beta == T{0}) {
#pragma omp simd
        for (std::size_t j = 0; j < n; ++j) crow[j] = alpha * acc[j];
      } else {
#pragma omp simd
        for (std::size_t j = 0; j < n; ++j) crow[j] = alpha * acc[j] + beta * crow[j];
      }
    }
  }
}

}  // namespace mgpu::backend::cpu
