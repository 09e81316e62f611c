// The main of test_mpi_nccl: as mpi_test_main.cpp (MPI first, every rank runs every case,
// non-zero on every rank if any rank failed), and exit code 77 (ctest SKIP_RETURN_CODE) on
// every rank when nothing failed and some rank sees no CUDA device: the GPU cases were
// skipped, so the run must not read as a pass of the NCCL collectives. Compiled without the
// warning flags, as the other Catch2 mains.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <mpi.h>

#include "mgpu/backend/cuda/runtime.hpp"
#include "mgpu/mpi/environment.hpp"

int main(int argc, char** argv) {
  mgpu::mpi::environment env(argc, argv);
  int const failed = Catch::Session().run(argc, argv);
  int any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  int const visible = mgpu::backend::cuda::visible_device_count();
  int fewest = 0;
  MPI_Allreduce(&visible, &fewest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (any != 0) return 1;
  return fewest == 0 ? 77 : 0;
}
