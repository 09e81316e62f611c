// Main of the GPU test program: without a visible CUDA device it reports "skipped"
// (exit code 77, ctest SKIP_RETURN_CODE) instead of passing.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#include "mgpu/backend/cuda/runtime.hpp"

int main(int argc, char** argv) {
  Catch::Session session;
  if (int const rc = session.applyCommandLine(argc, argv); rc != 0) return rc;
  bool const listing = session.configData().listTests || session.configData().listTestNamesOnly;
  if (!listing && mgpu::backend::cuda::visible_device_count() == 0) {
    std::fprintf(stderr, "no CUDA device is visible: GPU tests skipped\n");
    return 77;
  }
  return session.run();
}
