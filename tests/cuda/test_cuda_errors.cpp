// Reliability row 17 on a machine without a GPU: the MGPU_*_TRY macros turn a failed
// status of each vendor library into its typed exception with the status name, the call
// as written and file:line. The status-name functions of the CUDA libraries are host
// lookups that need no device, so this runs everywhere the toolkit is installed.
#include <catch2/catch.hpp>

#include <cstddef>
#include <string>

#include "mgpu/cuda.hpp"

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

// Issue 15, item 8: the statuses of a machine where CUDA cannot run (no device, the
// toolkit's stub libcuda, a driver that does not match the kernel module or the
// forward-compatibility package) count as "no GPU" (GPU tests Skipped), everything else
// still fails. The statuses are fed in by hand, as a fake cudaGetDeviceCount.
TEST_CASE("cudaGetDeviceCount's no-usable-driver statuses count as zero devices, others throw",
          "[cuda-host][reliability]") {
  namespace bc = mgpu::backend::cuda;
  for (auto s : {cudaErrorNoDevice, cudaErrorInsufficientDriver, cudaErrorStubLibrary,
                 cudaErrorSystemDriverMismatch, cudaErrorCompatNotSupportedOnDevice}) {
    CAPTURE(static_cast<int>(s));
    CHECK(bc::means_no_device(s));
    CHECK(bc::device_count_from(s, 7) == 0);
  }
  CHECK(static_cast<int>(cudaErrorStubLibrary) == 34);
  CHECK(static_cast<int>(cudaErrorSystemDriverMismatch) == 803);
  CHECK(static_cast<int>(cudaErrorCompatNotSupportedOnDevice) == 804);
  CHECK(bc::device_count_from(cudaSuccess, 3) == 3);
  CHECK_THROWS_AS(bc::device_count_from(cudaErrorInvalidValue, 0), mgpu::cuda_error);
  CHECK_FALSE(bc::means_no_device(cudaErrorMemoryAllocation));
}

TEST_CASE("sticky CUDA errors are classified and say that the context is lost", "[cuda-host][reliability]") {
  namespace bc = mgpu::backend::cuda;
  CHECK(bc::is_sticky(cudaErrorIllegalAddress));
  CHECK(bc::is_sticky(cudaErrorLaunchFailure));
  CHECK(bc::is_sticky(cudaErrorAssert));
  CHECK_FALSE(bc::is_sticky(cudaErrorMemoryAllocation));
  CHECK_FALSE(bc::is_sticky(cudaErrorInvalidValue));
  auto const sticky = caught<mgpu::cuda_error>([] { MGPU_CUDA_TRY(failing_call(cudaErrorIllegalAddress)); });
  CHECK(std::string(sticky.what()).find("sticky") != std::string::npos);
  auto const plain = caught<mgpu::cuda_error>([] { MGPU_CUDA_TRY(failing_call(cudaErrorInvalidValue)); });
  CHECK(std::string(plain.what()).find("sticky") == std::string::npos);
}

// Issue 15, item 5: the budget counts the pool's unused reserve, which cudaMemGetInfo does
// not report as free. By hand: 80 GiB total, margin max(256 MiB, 4 GiB) = 4 GiB.
TEST_CASE("the memory budget is free memory plus the pool's unused reserve minus the margin",
          "[cuda-host][memory]") {
  namespace bc = mgpu::backend::cuda;
  constexpr std::size_t gib = std::size_t{1} << 30;
  constexpr std::size_t mib = std::size_t{1} << 20;
  CHECK(bc::budget_from(0, {10 * gib, 80 * gib}, 0) == 6 * gib);
  CHECK(bc::budget_from(0, {10 * gib, 80 * gib}, 3 * gib) == 9 * gib);
  CHECK(bc::budget_from(0, {1 * gib, 80 * gib}, 0) == 0);
  CHECK(bc::budget_from(0, {1 * gib, 2 * gib}, 0) == 1 * gib - 256 * mib);  // margin 256 MiB
  CHECK(bc::budget_from(12345, {1 * gib, 80 * gib}, 0) == 12345);          // the policy's budget wins
}

// Issue 15, item 9 and the logical devices: a pair whose peer access cannot be enabled
// (or whose pool access cannot be granted) is staged, not an error.
TEST_CASE("a peer pair is direct only when access and pool access were both granted", "[cuda-host][device]") {
  namespace bc = mgpu::backend::cuda;
  CHECK(bc::peer_pair_usable(1, cudaSuccess, cudaSuccess));
  CHECK(bc::peer_pair_usable(1, cudaErrorPeerAccessAlreadyEnabled, cudaSuccess));
  CHECK_FALSE(bc::peer_pair_usable(1, cudaErrorTooManyPeers, cudaSuccess));
  CHECK_FALSE(bc::peer_pair_usable(1, cudaErrorPeerAccessUnsupported, cudaSuccess));
  CHECK_FALSE(bc::peer_pair_usable(1, cudaSuccess, cudaErrorInvalidValue));
  CHECK_FALSE(bc::peer_pair_usable(0, cudaSuccess, cudaSuccess));
}

TEST_CASE("a repeated CUDA ordinal is invalid_argument unless shared logical devices are allowed",
          "[cuda-host][device]") {
  namespace bc = mgpu::backend::cuda;
  std::string what;
  try {
    bc::check_ordinals("cuda:0,0", {0, 0}, 1, false);
  } catch (mgpu::invalid_argument const& e) {
    what = e.what();
  }
  CHECK(what.find("device string \"cuda:0,0\": CUDA device 0 is listed twice") != std::string::npos);
  CHECK(what.find("MGPU_CUDA_SHARED_DEVICES=1") != std::string::npos);
  CHECK_NOTHROW(bc::check_ordinals("cuda:0,0", {0, 0}, 1, true));
  CHECK_THROWS_AS(bc::check_ordinals("cuda:0,2", {0, 2}, 2, true), mgpu::invalid_argument);
  CHECK_NOTHROW(bc::check_ordinals("cuda:1,0", {1, 0}, 2, false));
}


// Issue 15, item 10: Cholesky batches follow the budget given; potrs' info is checked per batch.
TEST_CASE("ALS Cholesky batches are sized by the budget, and potrs' info is checked", "[cuda-host][als]") {
  namespace bcd = mgpu::backend::cuda::detail;
  // f = 10: (100 + 10) doubles + 2 pointers + an int = 880 + 16 + 4 = 900 bytes a row;
  // half of the budget is used.
  CHECK(bcd::als_cholesky_rows(1000, 10, 2 * 900 * 7) == 7);
  CHECK(bcd::als_cholesky_rows(3, 10, 2 * 900 * 7) == 3);
  CHECK_THROWS_AS(bcd::als_cholesky_rows(1000, 10, 2 * 900 - 1), mgpu::out_of_memory);
  CHECK_NOTHROW(bcd::check_potrs_info(0, 0));
  std::string what;
  try {
    bcd::check_potrs_info(-3, 128);
  } catch (mgpu::cusolver_error const& e) {
    what = e.what();
  }
  CHECK(what.find("parameter 3 is wrong (batch from row 128)") != std::string::npos);
}
