// Reliability row 17 on a machine without a GPU: the MGPU_*_TRY macros turn a failed
// status of each vendor library into its typed exception with the status name, the call
// as written and file:line. The status-name functions of the CUDA libraries are host
// lookups that need no device, so this runs everywhere the toolkit is installed.
#include <catch2/catch.hpp>

#include <string>

#include "mgpu/backend/cuda/runtime.hpp"

namespace {

// A vendor call that fails with the given status (stands in for a real API call).
template <class Status>
Status failing_call(Status s) {
  return s;
}

template <class Error, class F>
Error caught(F&& f) {
  try {
    f();
  } catch (Error const& e) {
    return e;
  }
  FAIL("no exception of the expected type was thrown");
  throw;  // unreachable: FAIL throws
}

}  // namespace

TEST_CASE("reliability row 17: a failed CUDA runtime call is a cuda_error naming status, call and line",
          "[cuda-host][reliability]") {
  int const line = __LINE__ + 1;
  auto const e = caught<mgpu::cuda_error>([] { MGPU_CUDA_TRY(failing_call(cudaErrorMemoryAllocation)); });
  CHECK(e.status_name() == "cudaErrorMemoryAllocation");
  CHECK(e.call() == "failing_call(cudaErrorMemoryAllocation)");
  CHECK(e.line() == line);
  CHECK(e.file().find("test_cuda_errors.cpp") != std::string::npos);
  std::string const what = e.what();
  CHECK(what.find("CUDA call failing_call(cudaErrorMemoryAllocation) failed: cudaErrorMemoryAllocation") == 0);
  CHECK(what.find("test_cuda_errors.cpp:" + std::to_string(line)) != std::string::npos);
}

TEST_CASE("reliability row 17: failed cuSPARSE, cuBLAS and cuSOLVER calls are their own typed errors",
          "[cuda-host][reliability]") {
  auto const sparse =
      caught<mgpu::cusparse_error>([] { MGPU_CUSPARSE_TRY(failing_call(CUSPARSE_STATUS_INVALID_VALUE)); });
  CHECK(sparse.status_name() == "CUSPARSE_STATUS_INVALID_VALUE");
  CHECK(std::string(sparse.what()).find("cuSPARSE call") == 0);

  auto const blas =
      caught<mgpu::cublas_error>([] { MGPU_CUBLAS_TRY(failing_call(CUBLAS_STATUS_EXECUTION_FAILED)); });
  CHECK(blas.status_name() == "CUBLAS_STATUS_EXECUTION_FAILED");
  CHECK(std::string(blas.what()).find("cuBLAS call") == 0);

  auto const solver =
      caught<mgpu::cusolver_error>([] { MGPU_CUSOLVER_TRY(failing_call(CUSOLVER_STATUS_ZERO_PIVOT)); });
  CHECK(solver.status_name() == "CUSOLVER_STATUS_ZERO_PIVOT");
  CHECK(std::string(solver.what()).find("cuSOLVER call") == 0);
}

TEST_CASE("reliability row 17: every vendor error is a device_error, and successes pass silently",
          "[cuda-host][reliability]") {
  // The macros are statements, so each check wraps one in a lambda.
  CHECK_THROWS_AS([] { MGPU_CUDA_TRY(failing_call(cudaErrorInvalidValue)); }(), mgpu::device_error);
  CHECK_THROWS_AS([] { MGPU_CUSOLVER_TRY(failing_call(CUSOLVER_STATUS_INVALID_VALUE)); }(),
                  mgpu::device_call_error);
  CHECK_NOTHROW([] { MGPU_CUDA_TRY(failing_call(cudaSuccess)); }());
  CHECK_NOTHROW([] { MGPU_CUSPARSE_TRY(failing_call(CUSPARSE_STATUS_SUCCESS)); }());
  CHECK_NOTHROW([] { MGPU_CUBLAS_TRY(failing_call(CUBLAS_STATUS_SUCCESS)); }());
  CHECK_NOTHROW([] { MGPU_CUSOLVER_TRY(failing_call(CUSOLVER_STATUS_SUCCESS)); }());
}
