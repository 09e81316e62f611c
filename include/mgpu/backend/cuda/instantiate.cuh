// mgpu/backend/cuda/instantiate.cuh — explicit instantiations of the GPU kernels, for
// programs whose GPU algorithm calls are compiled by a host compiler.
//
// mgpu/cuda.hpp compiles with any C++20 compiler; only the few functions that launch
// device code (score_batch, launch_row_weighting) need nvcc. A translation unit compiled
// by nvcc gets their definitions from mgpu/cuda.hpp itself. Host-compiled code that
// calls tfidf_weight / cosine_topk on an execution_policy<gpu> needs them instantiated
// once in the program, in a .cu file:
//
//   #include <mgpu/backend/cuda/instantiate.cuh>
//   MGPU_CUDA_INSTANTIATE(float, std::int32_t);   // value type, index type
//
// Compile with nvcc (CUDA translation units only).
#pragma once

#include <cstdint>

#include "mgpu/backend/cuda/cosine_topk.cuh"
#include "mgpu/backend/cuda/tfidf.cuh"

/// Instantiates the GPU kernels for values T and indices I: cosine top-k, and tf-idf
/// weighting of T counts and of the vectorizer's std::uint32_t counts.
#define MGPU_CUDA_INSTANTIATE(T, I)                                                            \
  template void ::mgpu::backend::cuda::detail::score_batch<T, I>(                              \
      ::mgpu::device_context<::mgpu::gpu>&, ::mgpu::csr_view<T, I>, std::span<T const>,         \
      ::mgpu::backend::cuda::cosine_shard<T, I> const&, I, I, std::int64_t, bool,              \
      std::span<::mgpu::detail::scored<T, I>>, std::span<std::int32_t>);                       \
  template void ::mgpu::backend::cuda::detail::launch_row_weighting<T, T, I>(                  \
      ::mgpu::detail::tfidf_row_weighting<T, T, I> const&, I, ::mgpu::stream<::mgpu::gpu> const&); \
  template void ::mgpu::backend::cuda::detail::launch_row_weighting<std::uint32_t, T, I>(      \
      ::mgpu::detail::tfidf_row_weighting<std::uint32_t, T, I> const&, I,                      \
      ::mgpu::stream<::mgpu::gpu> const&)
