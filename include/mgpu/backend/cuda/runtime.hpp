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
#include <new>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <cublas_v2.h>
#include <cuda.h>
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

/// Statuses that mean this process can use no CUDA device at all: no device, no or a
/// too-old driver, the toolkit's stub libcuda (a build container), or a driver that does
/// not match the kernel module / forward-compatibility package. Programs and tests treat
/// them as "no GPU" (tests report Skipped), not as failures.
constexpr bool means_no_device(cudaError_t s) noexcept {
  switch (s) {
    case cudaErrorNoDevice:                    // 100
    case cudaErrorInsufficientDriver:          // 35
    case cudaErrorStubLibrary:                 // 34
    case cudaErrorSystemDriverMismatch:        // 803
    case cudaErrorCompatNotSupportedOnDevice:  // 804
      return true;
    default: return false;
  }
}

/// Statuses after which the device's context is unusable until the process exits
/// (the CUDA runtime reports them again from every later call on that context).
constexpr bool is_sticky(cudaError_t s) noexcept {
  switch (s) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorAssert:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable:
    case cudaErrorContextIsDestroyed:
      return true;
    default: return false;
  }
}

namespace detail {

/// Throws cuda_error. A non-sticky status is also cleared from the runtime's last-error
/// slot, so it is reported once (by this exception) and not again by the next
/// cudaGetLastError after an unrelated launch; a sticky one says the context is lost.
[[noreturn]] inline void throw_cuda(cudaError_t s, char const* call, char const* file, int line) {
  std::string detail = cudaGetErrorString(s);
  if (is_sticky(s)) {
    detail += " (a sticky error: this device's context is unusable until the process exits)";
  } else {
    static_cast<void>(cudaGetLastError());
  }
  throw cuda_error(cudaGetErrorName(s), call, file, line, detail);
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

namespace detail {

/// cuCtxGetCurrent / cuCtxSetCurrent, found through the runtime's driver entry points so
/// that mgpu::cuda needs no -lcuda. Null where the driver does not provide them.
struct context_api {
  CUresult (*get)(CUcontext*) = nullptr;
  CUresult (*set)(CUcontext) = nullptr;
};

inline context_api const& driver_context_api() noexcept {
  static context_api const api = [] {
    context_api a;
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuCtxGetCurrent", &fn, 12000, cudaEnableDefault, &found) ==
            cudaSuccess &&
        found == cudaDriverEntryPointSuccess) {
      a.get = reinterpret_cast<CUresult (*)(CUcontext*)>(fn);
    }
    if (cudaGetDriverEntryPointByVersion("cuCtxSetCurrent", &fn, 12000, cudaEnableDefault, &found) ==
            cudaSuccess &&
        found == cudaDriverEntryPointSuccess) {
      a.set = reinterpret_cast<CUresult (*)(CUcontext)>(fn);
    }
    static_cast<void>(cudaGetLastError());
    return a;
  }();
  return api;
}

/// True when the calling thread has a current CUDA context. Assumed true when the driver
/// cannot tell, which keeps the plain cudaSetDevice restore.
inline bool thread_has_context() noexcept {
  auto const& api = driver_context_api();
  if (api.get == nullptr || api.set == nullptr) return true;
  CUcontext current = nullptr;
  return api.get(&current) != CUDA_SUCCESS || current != nullptr;
}

/// Leaves the calling thread without a current context.
inline void clear_thread_context() noexcept {
  auto const& api = driver_context_api();
  if (api.set != nullptr && api.set(nullptr) != CUDA_SUCCESS) {
    report_nothrow("CUDA_ERROR", "cuCtxSetCurrent(nullptr)", __FILE__, __LINE__);
  }
}

}  // namespace detail

/// Makes `ordinal` the calling thread's current device for the guard's lifetime and
/// restores the previous state on destruction. Cheap when the device is already current.
///
/// A thread that had no current context (a fresh thread: cudaGetDevice reports 0 there
/// without any context existing) is left without one, instead of being "restored" to
/// device 0 with cudaSetDevice(0), which would create a context on device 0: a set that
/// does not name device 0 never touches it.
class device_guard {
 public:
  explicit device_guard(int ordinal) {
    had_context_ = detail::thread_has_context();
    MGPU_CUDA_TRY(cudaGetDevice(&previous_));
    if (had_context_ && previous_ == ordinal) return;
    MGPU_CUDA_TRY(cudaSetDevice(ordinal));
    changed_ = true;
  }
  /// For destructors: never throws; a failure to select the device is reported on
  /// stderr, and the cleanup calls that follow report their own failures.
  device_guard(int ordinal, std::nothrow_t) noexcept {
    had_context_ = detail::thread_has_context();
    if (cudaGetDevice(&previous_) != cudaSuccess) {
      static_cast<void>(cudaGetLastError());
      return;
    }
    if (had_context_ && previous_ == ordinal) return;
    MGPU_CUDA_TRY_NOTHROW(cudaSetDevice(ordinal));
    changed_ = true;
  }
  device_guard(device_guard const&) = delete;
  device_guard& operator=(device_guard const&) = delete;
  ~device_guard() {
    if (!changed_) return;
    if (had_context_) {
      MGPU_CUDA_TRY_NOTHROW(cudaSetDevice(previous_));
    } else {
      detail::clear_thread_context();
    }
  }

 private:
  int previous_ = 0;
  bool had_context_ = true;
  bool changed_ = false;
};

/// The number of visible devices given cudaGetDeviceCount's status and count: 0 for the
/// statuses of means_no_device. @throws cuda_error for any other failure.
inline int device_count_from(cudaError_t status, int count) {
  if (means_no_device(status)) {
    static_cast<void>(cudaGetLastError());  // not sticky, but leave no trace
    return 0;
  }
  if (status != cudaSuccess) detail::throw_cuda(status, "cudaGetDeviceCount(&n)", __FILE__, __LINE__);
  return count;
}

/// Number of CUDA devices this process can see (CUDA_VISIBLE_DEVICES applies, as in the
/// runtime: ordinals are the runtime's). 0 when there is no device, no usable driver, the
/// stub driver or a mismatched one (means_no_device).
/// @throws cuda_error for any other failure of cudaGetDeviceCount.
inline int visible_device_count() {
  int n = 0;
  cudaError_t const s = cudaGetDeviceCount(&n);
  return device_count_from(s, n);
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

/// The budget rule on given numbers (host-testable): `requested` when nonzero, otherwise
/// the free memory plus what mgpu's own pool holds unused (reserved but not allocated: it
/// serves our allocations first and is not in cudaMemGetInfo's free bytes) minus a
/// margin of max(256 MiB, 5% of the total) kept for the libraries' workspaces and other
/// users of the device.
constexpr std::size_t budget_from(std::size_t requested, memory_info m, std::size_t pool_unused) noexcept {
  if (requested != 0) return requested;
  std::size_t const margin = std::max<std::size_t>(std::size_t{256} << 20, m.total / 20);
  std::size_t const usable = m.free + pool_unused;
  return usable > margin ? usable - margin : 0;
}

/// Bytes an algorithm may use on `ordinal` (budget_from, with `pool_unused` bytes held
/// by mgpu's pool on that device).
inline std::size_t memory_budget(int ordinal, std::size_t requested, std::size_t pool_unused = 0) {
  if (requested != 0) return requested;
  return budget_from(0, device_memory(ordinal), pool_unused);
}

}  // namespace mgpu::backend::cuda
