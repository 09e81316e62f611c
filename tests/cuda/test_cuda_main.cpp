// Main of the GPU test programs: without a usable CUDA device (none, no driver, the
// toolkit's stub driver, a mismatched driver: backend::cuda::means_no_device) it reports
// "skipped" (exit code 77, ctest SKIP_RETURN_CODE) instead of passing or failing.
//
// After each test case it looks for a sticky CUDA error on every device whose context
// exists: such an error makes the context unusable until the process exits, so the
// cases after it would fail for a reason that is not theirs. The run stops there,
// naming the case that left it.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>

#include "mgpu/backend/cuda/runtime.hpp"

namespace {

// cuDeviceGet and cuDevicePrimaryCtxGetState through the runtime's entry points (no -lcuda).
bool primary_context_active(int ordinal) {
  static auto const get_device = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    cudaGetDriverEntryPointByVersion("cuDeviceGet", &fn, 12000, cudaEnableDefault, &found);
    return found == cudaDriverEntryPointSuccess ? reinterpret_cast<CUresult (*)(CUdevice*, int)>(fn) : nullptr;
  }();
  static auto const get_state = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    cudaGetDriverEntryPointByVersion("cuDevicePrimaryCtxGetState", &fn, 12000, cudaEnableDefault, &found);
    return found == cudaDriverEntryPointSuccess ? reinterpret_cast<CUresult (*)(CUdevice, unsigned*, int*)>(fn)
                                                : nullptr;
  }();
  if (get_device == nullptr || get_state == nullptr) return true;
  CUdevice dev{};
  unsigned flags = 0;
  int active = 0;
  if (get_device(&dev, ordinal) != CUDA_SUCCESS || get_state(dev, &flags, &active) != CUDA_SUCCESS) return true;
  return active != 0;
}

class sticky_error_listener : public Catch::TestEventListenerBase {
 public:
  using TestEventListenerBase::TestEventListenerBase;

  void testCaseEnded(Catch::TestCaseStats const& stats) override {
    int const n = mgpu::backend::cuda::visible_device_count();
    for (int d = 0; d < n; ++d) {
      if (!primary_context_active(d)) continue;  // never create a context to look
      cudaError_t status = cudaSuccess;
      {
        mgpu::backend::cuda::device_guard guard(d, std::nothrow);
        status = cudaDeviceSynchronize();
      }
      if (mgpu::backend::cuda::is_sticky(status)) {
        std::fprintf(stderr,
                     "test case \"%s\" left a sticky CUDA error on device %d (%s): its context is unusable, "
                     "so the remaining cases are not run\n",
                     stats.testInfo.name.c_str(), d, cudaGetErrorName(status));
        std::fflush(stderr);
        std::_Exit(1);
      }
      if (status != cudaSuccess) static_cast<void>(cudaGetLastError());
    }
  }
};

}  // namespace

CATCH_REGISTER_LISTENER(sticky_error_listener)

int main(int argc, char** argv) {
  Catch::Session session;
  if (int const rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
  bool const listing = session.configData().listTests || session.configData().listTestNamesOnly;
  if (!listing && mgpu::backend::cuda::visible_device_count() == 0) {
    std::fprintf(stderr, "no usable CUDA device (none visible, or no working driver): GPU tests skipped\n");
    return 77;
  }
  return session.run();
}
