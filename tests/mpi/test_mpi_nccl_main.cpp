// The main of test_mpi_nccl: as mpi_test_main.cpp (MPI first, every rank runs every case,
// non-zero on every rank if any rank failed), and exit code 77 (ctest SKIP_RETURN_CODE) on
// every rank when nothing failed and a rank skipped a GPU case (no CUDA device): such a run
// must not read as a pass of the NCCL collectives. A run of the other cases only
// ("~[gpu]") passes or fails as usual. Compiled without the warning flags, as the other
// Catch2 mains.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <mpi.h>

#include "mgpu/mpi/environment.hpp"

namespace mgpu_mpi_test {
/// Set by a GPU case that found no CUDA device and returned early (test_mpi_nccl.cpp).
bool nccl_gpu_case_skipped = false;
}  // namespace mgpu_mpi_test

int main(int argc, char** argv) {
  mgpu::mpi::environment env(argc, argv);
  int const failed = Catch::Session().run(argc, argv);
  int any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  int const skipped = mgpu_mpi_test::nccl_gpu_case_skipped ? 1 : 0;
  int any_skipped = 0;
  MPI_Allreduce(&skipped, &any_skipped, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (any != 0) return 1;
  return any_skipped != 0 ? 77 : 0;
}
