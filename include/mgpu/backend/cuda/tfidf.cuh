// mgpu/backend/cuda/tfidf.cuh — the device launch of TF-IDF weighting (tfidf.hpp):
// detail::tfidf_row_weighting, the host's own row code, one row per thread.
//
// Compile with nvcc (CUDA translation units only).
#pragma once

#include <thrust/execution_policy.h>
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>

#include "mgpu/backend/cuda/tfidf.hpp"

namespace mgpu::backend::cuda::detail {

template <class C, class T, class I>
void launch_row_weighting(mgpu::detail::tfidf_row_weighting<C, T, I> const& row, I rows,
                          stream<gpu> const& s) {
  thrust::for_each(thrust::cuda::par_nosync.on(s.handle()), thrust::counting_iterator<I>(0),
                   thrust::counting_iterator<I>(rows), row);
  MGPU_CUDA_TRY(cudaGetLastError());
}

}  // namespace mgpu::backend::cuda::detail
