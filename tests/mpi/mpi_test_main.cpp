// The main of the mpi component's Catch2 program: every rank runs every test case, in the
// same order (the cases are collective). MPI is initialised first; the exit status is
// non-zero on every rank if any rank had a failure, so mpirun's status reflects them all.
// Cases use CHECK rather than REQUIRE for what one rank sees alone: a REQUIRE that fails on
// one rank would leave the case early on that rank while the others go on to the next
// collective.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <mpi.h>

#include "mgpu/mpi/environment.hpp"

int main(int argc, char** argv) {
  mgpu::mpi::environment env(argc, argv);
  int const failed = Catch::Session().run(argc, argv);
  int any = 0;
  MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return any == 0 ? 0 : 1;
}
