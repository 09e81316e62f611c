// mgpu/backend/cuda/als.cuh — the device kernels of ALS on GPUs (method in als.hpp):
// the system base from the Gram matrix, forming the Cholesky systems, rounding the
// solutions, the per-row CG, and flagging non-finite solutions.
//
// Every kernel works on one row per thread block, because rows are independent and their
// lengths follow a power law; the per-entry weights are detail::als_entry_weights, the
// host backend's own code. NOT RUN ON A GPU: compiled only.
//
// Compile with nvcc (CUDA translation units only).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "mgpu/backend/cuda/als.hpp"

namespace mgpu::backend::cuda::detail {

inline constexpr int als_block_threads = 256;

/// A = B + Σ (w − w0) y yᵀ (all f² entries, so either triangle may be factored) and
/// b = Σ w t y, in double; an empty row gets A = I and b = 0.
template <class Real>
__global__ void als_build_systems_kernel(std::int32_t const* offsets, std::int32_t const* columns,
                                         Real const* values, Real const* fixed, std::int32_t f,
                                         double const* base, mgpu::detail::als_entry_weights wt,
                                         double* a, double* b) {
  auto const row = static_cast<std::size_t>(blockIdx.x);
  auto const fs = static_cast<std::size_t>(f);
  double* const a_row = a + row * fs * fs;
  double* const b_row = b + row * fs;
  std::int32_t const begin = offsets[row];
  std::int32_t const end = offsets[row + 1];
  for (std::size_t e = threadIdx.x; e < fs * fs; e += blockDim.x) {
    std::size_t const j = e / fs;
    std::size_t const k = e % fs;
    double sum = begin == end ? (j == k ? 1.0 : 0.0) : base[e];
    for (std::int32_t p = begin; p < end; ++p) {
      Real const* y = fixed + static_cast<std::size_t>(columns[p]) * fs;
      sum += wt.system(static_cast<double>(values[p])) * static_cast<double>(y[j]) * static_cast<double>(y[k]);
    }
    a_row[e] = sum;
  }
  for (std::size_t j = threadIdx.x; j < fs; j += blockDim.x) {
    double sum = 0;
    for (std::int32_t p = begin; p < end; ++p) {
      Real const* y = fixed + static_cast<std::size_t>(columns[p]) * fs;
      sum += wt.rhs(static_cast<double>(values[p])) * static_cast<double>(y[j]);
    }
    b_row[j] = sum;
  }
}

template <class Real>
__global__ void als_round_kernel(std::int64_t n, double const* x, Real* out) {
  auto const stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (auto i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    out[i] = static_cast<Real>(x[i]);
  }
}

/// Sum of `v` over the thread block (blockDim.x a multiple of 32). `scratch` holds 33
/// floats; the result slot scratch[32] is only rewritten after every thread has passed
/// the next call's first barrier, so all have read it by then.
__device__ inline float als_block_sum(float v, float* scratch) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  unsigned const lane = threadIdx.x & 31u;
  unsigned const warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    unsigned const warps = (blockDim.x + 31u) / 32u;
    float w = lane < warps ? scratch[lane] : 0.0f;
    for (int offset = 16; offset > 0; offset >>= 1) w += __shfl_down_sync(0xffffffffu, w, offset);
    if (lane == 0) scratch[32] = w;
  }
  __syncthreads();
  return scratch[32];
}

/// dst = B src (B f x f, symmetric), each thread its own entries of dst.
template <class Real>
__device__ void als_symv(Real const* base, float const* src, float* dst, std::int32_t f) {
  auto const fs = static_cast<std::size_t>(f);
  for (std::size_t j = threadIdx.x; j < fs; j += blockDim.x) {
    float sum = 0;
    for (std::size_t k = 0; k < fs; ++k) sum += static_cast<float>(base[j * fs + k]) * src[k];
    dst[j] = sum;
  }
}

/// The host's CG (backend/cpu/als.hpp, als_solve_cg) for one row per block.
template <class Real>
__global__ void als_cg_kernel(std::int32_t const* offsets, std::int32_t const* columns, Real const* values,
                              Real const* fixed, std::int32_t f, Real const* base,
                              mgpu::detail::als_entry_weights wt, int steps, Real* x_all,
                              std::int32_t* status) {
  extern __shared__ float shared[];
  auto const fs = static_cast<std::size_t>(f);
  float* const x = shared;
  float* const r = x + fs;
  float* const p = r + fs;
  float* const ap = p + fs;
  float* const scratch = ap + fs;
  auto const row = static_cast<std::size_t>(blockIdx.x);
  Real* const x_out = x_all + row * fs;
  std::int32_t const begin = offsets[row];
  std::int32_t const end = offsets[row + 1];
  if (begin == end) {
    for (std::size_t j = threadIdx.x; j < fs; j += blockDim.x) x_out[j] = Real(0);
    return;
  }
  for (std::size_t j = threadIdx.x; j < fs; j += blockDim.x) x[j] = static_cast<float>(x_out[j]);
  __syncthreads();
  als_symv(base, x, ap, f);
  for (std::size_t j = threadIdx.x; j < fs; j += blockDim.x) r[j] = -ap[j];
  for (std::int32_t q = begin; q < end; ++q) {
    Real const* y = fixed + static_cast<std::size_t>(columns[q]) * fs;
    float part = 0;
    for (std::size_t j = threadIdx.x; j < fs; j += blockDim.x) part += static_cast<float>(y[j]) * x[j];
    float const d = als_block_sum(part, scratch);
    double const v = static_cast<double>(values[q]);
    auto const coef = static_cast<float>(wt.rhs(v) - wt.system(v) * static_cast<double>(d));
    for (std::size_t j = threadIdx.x; j < fs; j += blockDim.x) r[j] += coef * static_cast<float>(y[j]);
  }
  for (std::size_t j = threadIdx.x; j < fs; j += blockDim.x) p[j] = r[j];
  float part = 0;
  for (std::size_t j = threadIdx.x; j < fs; j += blockDim.x) part += r[j] * r[j];
  float rs_old = als_block_sum(part, scratch);  // its barriers also publish p
  for (int it = 0; it < steps && rs_old >= 1e-20f; ++it) {
    als_symv(base, p, ap, f);
    for (std::int32_t q = begin; q < end; ++q) {
      Real const* y = fixed + static_cast<std::size_t>(columns[q]) * fs;
      float dp = 0;
      for (std::size_t j = threadIdx.x; j < fs; j += blockDim.x) dp += static_cast<float>(y[j]) * p[j];
      float const d = als_block_sum(dp, scratch);
      auto const c = static_cast<float>(wt.system(static_cast<double>(values[q])));
      for (std::size_t j = threadIdx.x; j < fs; j += blockDim.x) ap[j] += c * d * static_cast<float>(y[j]);
    }
    float cp = 0;
    for (std::size_t j = threadIdx.x; j < fs; j += blockDim.x) cp += p[j] * ap[j];
    float const curvature = als_block_sum(cp, scratch);
    if (!(curvature > 0.0f)) {
      if (threadIdx.x == 0) status[row] = 1;
      break;
    }
    float const step = rs_old / curvature;
    float rr = 0;
    for (std::size_t j = threadIdx.x; j < fs; j += blockDim.x) {
      x[j] += step * p[j];
      r[j] -= step * ap[j];
      rr += r[j] * r[j];
    }
    float const rs_new = als_block_sum(rr, scratch);
    float const beta = rs_new / rs_old;
    for (std::size_t j = threadIdx.x; j < fs; j += blockDim.x) p[j] = r[j] + beta * p[j];
    rs_old = rs_new;
    __syncthreads();  // p is read whole by the next symv
  }
  for (std::size_t j = threadIdx.x; j < fs; j += blockDim.x) x_out[j] = static_cast<Real>(x[j]);
}

/// out[i] = (double) x[i] for i < n.
template <class Real>
__global__ void als_widen_kernel(std::int64_t n, Real const* x, double* out) {
  auto const stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (auto i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    out[i] = static_cast<double>(x[i]);
  }
}

/// B = w0·G + λI, full, from the column-major lower triangle of G (cublasDsyrk's), in
/// double and rounded to Real; the operations of the host's system base.
template <class Real>
__global__ void als_base_kernel(std::int32_t factors, double const* gram, double unobserved_weight,
                                double regularization, double* base, Real* base_single) {
  auto const n = static_cast<std::int64_t>(factors) * factors;
  auto const stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (auto k = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += stride) {
    auto const i = k / factors, j = k % factors;
    double v = unobserved_weight * gram[std::min(i, j) * factors + std::max(i, j)];
    if (i == j) v += regularization;
    base[k] = v;
    base_single[k] = static_cast<Real>(v);
  }
}

/// status[row] = 2 where row `row` of x (rows x f) holds a NaN or Inf and no earlier
/// failure is recorded. One thread block per row.
template <class Real>
__global__ void als_flag_nonfinite_kernel(std::int32_t factors, Real const* x, std::int32_t* status) {
  __shared__ int bad;
  if (threadIdx.x == 0) bad = 0;
  __syncthreads();
  auto const* row = x + static_cast<std::size_t>(blockIdx.x) * static_cast<std::size_t>(factors);
  for (std::int32_t j = threadIdx.x; j < factors; j += blockDim.x) {
    if (!isfinite(static_cast<double>(row[j]))) bad = 1;
  }
  __syncthreads();
  if (threadIdx.x == 0 && bad != 0 && status[blockIdx.x] == 0) status[blockIdx.x] = 2;
}

inline unsigned als_grid(std::int64_t n) {
  return static_cast<unsigned>(std::min<std::int64_t>((n + als_block_threads - 1) / als_block_threads, 65535));
}

template <class Real>
void als_launch_widen(stream<gpu> const& s, std::int64_t n, Real const* x, double* out) {
  if (n == 0) return;
  als_widen_kernel<Real><<<als_grid(n), als_block_threads, 0, s.handle()>>>(n, x, out);
  MGPU_CUDA_TRY(cudaGetLastError());
}

template <class Real>
void als_launch_base(stream<gpu> const& s, std::int32_t factors, double const* gram, double unobserved_weight,
                     double regularization, double* base, Real* base_single) {
  auto const n = static_cast<std::int64_t>(factors) * factors;
  if (n == 0) return;
  als_base_kernel<Real><<<als_grid(n), als_block_threads, 0, s.handle()>>>(factors, gram, unobserved_weight,
                                                                           regularization, base, base_single);
  MGPU_CUDA_TRY(cudaGetLastError());
}

template <class Real>
void als_launch_flag_nonfinite(stream<gpu> const& s, std::int32_t rows, std::int32_t factors, Real const* x,
                               std::int32_t* status) {
  if (rows == 0) return;
  als_flag_nonfinite_kernel<Real><<<static_cast<unsigned>(rows), als_block_threads, 0, s.handle()>>>(factors, x,
                                                                                                      status);
  MGPU_CUDA_TRY(cudaGetLastError());
}

template <class Real>
void als_launch_build_systems(stream<gpu> const& s, std::int32_t rows, std::int32_t const* offsets,
                              std::int32_t const* columns, Real const* values, Real const* fixed,
                              std::int32_t factors, double const* base,
                              mgpu::detail::als_entry_weights weights, double* a, double* b) {
  if (rows == 0) return;
  als_build_systems_kernel<Real><<<static_cast<unsigned>(rows), als_block_threads, 0, s.handle()>>>(
      offsets, columns, values, fixed, factors, base, weights, a, b);
  MGPU_CUDA_TRY(cudaGetLastError());
}

template <class Real>
void als_launch_round(stream<gpu> const& s, std::int64_t n, double const* x, Real* out) {
  if (n == 0) return;
  auto const blocks = static_cast<unsigned>(std::min<std::int64_t>((n + als_block_threads - 1) / als_block_threads, 65535));
  als_round_kernel<Real><<<blocks, als_block_threads, 0, s.handle()>>>(n, x, out);
  MGPU_CUDA_TRY(cudaGetLastError());
}

template <class Real>
void als_launch_cg(stream<gpu> const& s, std::int32_t rows, std::int32_t const* offsets,
                   std::int32_t const* columns, Real const* values, Real const* fixed,
                   std::int32_t factors, Real const* base, mgpu::detail::als_entry_weights weights,
                   int steps, Real* x, std::int32_t* status) {
  if (rows == 0) return;
  // One thread per factor up to 1024, a multiple of the warp size.
  auto const threads = static_cast<unsigned>(std::min<std::int32_t>(1024, (factors + 31) / 32 * 32));
  std::size_t const shared = (4 * static_cast<std::size_t>(factors) + 33) * sizeof(float);
  als_cg_kernel<Real><<<static_cast<unsigned>(rows), threads, shared, s.handle()>>>(
      offsets, columns, values, fixed, factors, base, weights, steps, x, status);
  MGPU_CUDA_TRY(cudaGetLastError());
}

}  // namespace mgpu::backend::cuda::detail

/// Instantiates the ALS GPU kernels for factors of type T (float) in a .cu file of a
/// program whose ALS calls are compiled by a host compiler (see docs/gpu.md).
#define MGPU_CUDA_INSTANTIATE_ALS(T)                                                                   \
  template void ::mgpu::backend::cuda::detail::als_launch_build_systems<T>(                          \
      ::mgpu::stream<::mgpu::gpu> const&, std::int32_t, std::int32_t const*, std::int32_t const*,      \
      T const*, T const*, std::int32_t, double const*, ::mgpu::detail::als_entry_weights, double*,     \
      double*);                                                                                        \
  template void ::mgpu::backend::cuda::detail::als_launch_round<T>(::mgpu::stream<::mgpu::gpu> const&, \
                                                                   std::int64_t, double const*, T*);   \
  template void ::mgpu::backend::cuda::detail::als_launch_cg<T>(                                     \
      ::mgpu::stream<::mgpu::gpu> const&, std::int32_t, std::int32_t const*, std::int32_t const*,      \
      T const*, T const*, std::int32_t, T const*, ::mgpu::detail::als_entry_weights, int, T*,          \
      std::int32_t*);                                                                                  \
  template void ::mgpu::backend::cuda::detail::als_launch_widen<T>(::mgpu::stream<::mgpu::gpu> const&, \
                                                                   std::int64_t, T const*, double*);   \
  template void ::mgpu::backend::cuda::detail::als_launch_base<T>(                                   \
      ::mgpu::stream<::mgpu::gpu> const&, std::int32_t, double const*, double, double, double*, T*);   \
  template void ::mgpu::backend::cuda::detail::als_launch_flag_nonfinite<T>(                         \
      ::mgpu::stream<::mgpu::gpu> const&, std::int32_t, std::int32_t, T const*, std::int32_t*)
