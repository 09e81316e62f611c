// mgpu/backend/cuda/tfidf.cuh — the device launch of TF-IDF weighting (tfidf.hpp):
// detail::tfidf_row_weighting, the host's own row code, one row per thread
// (cub::DeviceFor).
//
// Compile with nvcc (CUDA translation units only).
#pragma once

#include <cub/device/device_for.cuh>

#include "mgpu/backend/cuda/tfidf.hpp"

namespace mgpu::backend::cuda::detail {

template <class C, class T, class I>
void launch_row_weighting(mgpu::detail::tfidf_row_weighting<C, T, I> const& row, I rows,
                          stream<gpu> const& s) {
  if (rows == 0) return;
  // cub::DeviceFor returns the launch status (Thrust would throw thrust::system_error).
  MGPU_CUDA_TRY(cub::DeviceFor::Bulk(rows, row, s.handle()));
}

}  // namespace mgpu::backend::cuda::detail
