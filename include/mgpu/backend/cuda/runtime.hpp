// mgpu/backend/cuda/runtime.hpp — CUDA status checking, the current-device guard and
// device discovery.
//
// Every runtime or vendor-library call in the backend goes through one of the
// MGPU_*_TRY macros, which throw the matching mgpu::device_call_error subclass
// (cuda_error, cusparse_error, cublas_error, cusolver_error) with the status name, the
// call as written and file:line. Destructors use the *_TRY_NOTHROW variants, which
// report a failure on stderr instead of throwing.
//
// Host-compilable: this header needs the CUDA Toolkit's headers, not nvcc.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cusolverDn.h>
#include <cusparse.h>

#include "mgpu/core/error.hpp"

namespace mgpu::backend::cuda {

/// cuSOLVER has no status-name function; names as in cusolver_common.h.
inline char const* cusolver_status_name(cusolverStatus_t s) noexcept {
  switch (s) {
    case CUSOLVER_STATUS_SUCCESS: return "CUSOLVER_STATUS_SUCCESS";
    case CUSOLVER_STATUS_NOT_INITIALIZED: return "CUSOLVER_STATUS_NOT_INITIALIZED";
    case CUSOLVER_STATUS_ALLOC_FAILED: return "CUSOLVER_STATUS_ALLOC_FAILED";
    case CUSOLVER_STATUS_INVALID_VALUE: return "CUSOLVER_STATUS_INVALID_VALUE";
    case CUSOLVER_STATUS_ARCH_MISMATCH: return "CUSOLVER_STATUS_ARCH_MISMATCH";
    case CUSOLVER_STATUS_MAPPING_ERROR: return "CUSOLVER_STATUS_MAPPING_ERROR";
    case CUSOLVER_STATUS_EXECUTION_FAILED: return "CUSOLVER_STATUS_EXECUTION_FAILED";
    case CUSOLVER_STATUS_INTERNAL_ERROR: return "CUSOLVER_STATUS_INTERNAL_ERROR";
    case CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED: return "CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED";
    case CUSOLVER_STATUS_NOT_SUPPORTED: return "CUSOLVER_STATUS_NOT_SUPPORTED";
    case CUSOLVER_STATUS_ZERO_PIVOT: return "CUSOLVER_STATUS_ZERO_PIVOT";
    case CUSOLVER_STATUS_INVALID_LICENSE: return "CUSOLVER_STATUS_INVALID_LICENSE";
    case CUSOLVER_STATUS_INVALID_WORKSPACE: return "CUSOLVER_STATUS_INVALID_WORKSPACE";
    default: return "CUSOLVER_STATUS_UNKNOWN";
  }
}

namespace detail {

[[noreturn]] inline void throw_cuda(cudaError_t s, char const* call, char const* file, int line) {
  throw cuda_error(cudaGetErrorName(s), call, file, line, cudaGetErrorString(s));
}
[[noreturn]] inline void throw_cusparse(cusparseStatus_t s, char const* call, char const* file,
                                        int line) {
  throw cusparse_error(cusparseGetErrorName(s), call, file, line, cusparseGetErrorString(s));
}
[[noreturn]] inline void throw_cublas(cublasStatus_t s, char const* call, char const* file,
                                      int line) {
  throw cublas_error(cublasGetStatusName(s), call, file, line, cublasGetStatusString(s));
}
[[noreturn]] inline void throw_cusolver(cusolverStatus_t s, char const* call, char const* file,
                                        int line) {
  throw cusolver_error(cusolver_status_name(s), call, file, line);
}

/// For destructors: a failure cannot be thrown, and silently dropping it would hide a
/// bug, so it is reported on stderr.
inline void report_nothrow(char const* status, char const* call, char const* file,
                           int line) noexcept {
  std::fprintf(stderr, "mgpu: %s failed during cleanup: %s at %s:%d\n", call, status, file, line);
}

}  // namespace detail
}  // namespace mgpu::backend::cuda

/// Evaluates a CUDA runtime call; throws mgpu::cuda_error unless it returns cudaSuccess.
#define MGPU_CUDA_TRY(call)                                                           \
  do {                                                                                \
    cudaError_t const mgpu_status_ = (call);                                          \
    if (mgpu_status_ != cudaSuccess) {                                                \
      ::mgpu::backend::cuda::detail::throw_cuda(mgpu_status_, #call, __FILE__, __LINE__); \
    }                                                                                 \
  } while (false)

/// Evaluates a cuSPARSE call; throws mgpu::cusparse_error on failure.
#define MGPU_CUSPARSE_TRY(call)                                                            \
  do {                                                                                     \
    cusparseStatus_t const mgpu_status_ = (call);                                          \
    if (mgpu_status_ != CUSPARSE_STATUS_SUCCESS) {                                         \
      ::mgpu::backend::cuda::detail::throw_cusparse(mgpu_status_, #call, __FILE__, __LINE__); \
    }                                                                                      \
  } while (false)

/// Evaluates a cuBLAS call; throws mgpu::cublas_error on failure.
#define MGPU_CUBLAS_TRY(call)                                                            \
  do {                                                                                   \
    cublasStatus_t const mgpu_status_ = (call);                                          \
    if (mgpu_status_ != CUBLAS_STATUS_SUCCESS) {                                         \
      ::mgpu::backend::cuda::detail::throw_cublas(mgpu_status_, #call, __FILE__, __LINE__); \
    }                                                                                    \
  } while (false)

/// Evaluates a cuSOLVER call; throws mgpu::cusolver_error on failure.
#define MGPU_CUSOLVER_TRY(call)                                                            \
  do {                                                                                     \
    cusolverStatus_t const mgpu_status_ = (call);                                          \
    if (mgpu_status_ != CUSOLVER_STATUS_SUCCESS) {                                         \
      ::mgpu::backend::cuda::detail::throw_cusolver(mgpu_status_, #call, __FILE__, __LINE__); \
    }                                                                                      \
  } while (false)

/// As MGPU_CUDA_TRY, for destructors: reports a failure on stderr, never throws.
#define MGPU_CUDA_TRY_NOTHROW(call)                                                        \
  do {                                                                                     \
    cudaError_t const mgpu_status_ = (call);                                               \
    if (mgpu_status_ != cudaSuccess) {                                                     \
      ::mgpu::backend::cuda::detail::report_nothrow(cudaGetErrorName(mgpu_status_), #call, \
                                                    __FILE__, __LINE__);                   \
    }                                                                                      \
  } while (false)

/// As MGPU_CUSPARSE_TRY, for destructors.
#define MGPU_CUSPARSE_TRY_NOTHROW(call)                                                        \
  do {                                                                                         \
    cusparseStatus_t const mgpu_status_ = (call);                                              \
    if (mgpu_status_ != CUSPARSE_STATUS_SUCCESS) {                                             \
      ::mgpu::backend::cuda::detail::report_nothrow(cusparseGetErrorName(mgpu_status_), #call, \
                                                    __FILE__, __LINE__);                       \
    }                                                                                          \
  } while (false)

/// As MGPU_CUBLAS_TRY, for destructors.
#define MGPU_CUBLAS_TRY_NOTHROW(call)                                                        \
  do {                                                                                       \
    cublasStatus_t const mgpu_status_ = (call);                                              \
    if (mgpu_status_ != CUBLAS_STATUS_SUCCESS) {                                             \
      ::mgpu::backend::cuda::detail::report_nothrow(cublasGetStatusName(mgpu_status_), #call, \
                                                    __FILE__, __LINE__);                     \
    }                                                                                        \
  } while (false)

/// As MGPU_CUSOLVER_TRY, for destructors.
#define MGPU_CUSOLVER_TRY_NOTHROW(call)                                                     \
  do {                                                                                      \
    cusolverStatus_t const mgpu_status_ = (call);                                           \
    if (mgpu_status_ != CUSOLVER_STATUS_SUCCESS) {                                          \
      ::mgpu::backend::cuda::detail::report_nothrow(                                        \
          ::mgpu::backend::cuda::cusolver_status_name(mgpu_status_), #call, __FILE__, __LINE__); \
    }                                                                                       \
  } while (false)

namespace mgpu::backend::cuda {

/// Makes `ordinal` the calling thread's current device for the guard's lifetime and
/// restores the previous one on destruction. Cheap when the device is already current.
class device_guard {
 public:
  explicit device_guard(int ordinal) {
    MGPU_CUDA_TRY(cudaGetDevice(&previous_));
    if (previous_ != ordinal) MGPU_CUDA_TRY(cudaSetDevice(ordinal));
    changed_ = previous_ != ordinal;
  }
  device_guard(device_guard const&) = delete;
  device_guard& operator=(device_guard const&) = delete;
  ~device_guard() {
    if (changed_) MGPU_CUDA_TRY_NOTHROW(cudaSetDevice(previous_));
  }

 private:
  int previous_ = 0;
  bool changed_ = false;
};

/// Number of CUDA devices this process can see (CUDA_VISIBLE_DEVICES applies, as in the
/// runtime: ordinals are the runtime's). 0 when there is no device or no driver.
/// @throws cuda_error for any other failure of cudaGetDeviceCount.
inline int visible_device_count() {
  int n = 0;
  cudaError_t const s = cudaGetDeviceCount(&n);
  if (s == cudaErrorNoDevice || s == cudaErrorInsufficientDriver) {
    static_cast<void>(cudaGetLastError());  // not sticky, but leave no trace
    return 0;
  }
  if (s != cudaSuccess) detail::throw_cuda(s, "cudaGetDeviceCount(&n)", __FILE__, __LINE__);
  return n;
}

/// "0 (NVIDIA H100 80GB HBM3), 1 (...)" or "none", for error messages.
inline std::string describe_visible_devices() {
  int const n = visible_device_count();
  if (n == 0) return "none";
  std::string out;
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp prop{};
    if (!out.empty()) out += ", ";
    out += std::to_string(i);
    if (cudaGetDeviceProperties(&prop, i) == cudaSuccess) out += std::string(" (") + prop.name + ")";
  }
  return out;
}

/// Bytes free and total on `ordinal` (cudaMemGetInfo).
struct memory_info {
  std::size_t free = 0;
  std::size_t total = 0;
};
inline memory_info device_memory(int ordinal) {
  device_guard guard(ordinal);
  memory_info m;
  MGPU_CUDA_TRY(cudaMemGetInfo(&m.free, &m.total));
  return m;
}

/// Bytes an algorithm may use on `ordinal`: `requested` when nonzero (a policy's
/// budget), otherwise the free memory minus a margin of max(256 MiB, 5% of the total)
/// kept for the libraries' workspaces and other users of the device.
inline std::size_t memory_budget(int ordinal, std::size_t requested) {
  if (requested != 0) return requested;
  auto const m = device_memory(ordinal);
  std::size_t const margin = std::max<std::size_t>(std::size_t{256} << 20, m.total / 20);
  return m.free > margin ? m.free - margin : 0;
}

}  // namespace mgpu::backend::cuda
