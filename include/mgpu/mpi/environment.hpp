// mgpu/mpi/environment.hpp — MPI's initialisation and finalisation, as an object.
//
//   int main(int argc, char** argv) {
//     mgpu::mpi::environment env(argc, argv);        // MPI_Init_thread(FUNNELED)
//     mgpu::mpi::distributed_policy<mgpu::cpu> policy("cpu:2");
//     ...
//   }                                               // MPI_Finalize
//
// Threads: mgpu's device workers (one thread per device of a set) never call MPI; every
// MPI call of the component is made by the thread that calls the distributed operation.
// MPI_THREAD_FUNNELED (the default asked for) is enough when that thread is the one that
// initialised MPI; ask for MPI_THREAD_SERIALIZED to call from other threads (one at a
// time). MPI_THREAD_SINGLE is not enough: the device workers are threads of the process.
//
// Faults. The component's operations end alike on every rank (mpi/error.hpp): an error
// there is thrown by every rank. An exception of the program's own code, though, may be
// one rank's alone while the others wait for it in a collective. main_guard tells the two
// apart:
//
//   int main(int argc, char** argv) {
//     mgpu::mpi::environment env(argc, argv);
//     return mgpu::mpi::main_guard([&] { ...; return 0; });
//   }
//
// prints "rank R of N: error: <what>" on stderr; for an error every rank threw it returns
// 1 on every rank (MPI is finalised normally, every rank's message is out); for one rank's
// own exception it calls MPI_Abort(MPI_COMM_WORLD, 1), which ends every rank of the job
// with a non-zero status. Without main_guard: if the environment is destroyed by an
// exception unwinding the stack, it does not call MPI_Finalize (which would wait for the
// other ranks, possibly for ever): the process exits without finalising and mpirun (or
// srun) ends the job with a non-zero status; an exception that leaves main without a
// handler aborts the process, with the same outcome.
#pragma once

#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <initializer_list>
#include <string>
#include <utility>

#include "mgpu/core/error.hpp"
#include "mgpu/mpi/error.hpp"

namespace mgpu::mpi {

/// Initialises MPI for the object's lifetime (see the file comment). If MPI is already
/// initialised (by the program or another library), the object only checks the thread
/// level and leaves finalisation to whoever initialised it.
class environment {
 public:
  /// MPI_Init_thread(&argc, &argv, required, ...): MPI may remove its own arguments.
  /// @throws invalid_argument if the level MPI provides is below `required` or below
  ///         MPI_THREAD_FUNNELED; mpi_error if initialisation fails.
  environment(int& argc, char**& argv, int required = MPI_THREAD_FUNNELED) { init(&argc, &argv, required); }
  /// The same without the program's arguments.
  explicit environment(int required = MPI_THREAD_FUNNELED) { init(nullptr, nullptr, required); }

  environment(environment const&) = delete;
  environment& operator=(environment const&) = delete;

  ~environment() {
    if (!owns_) return;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized != 0) return;
    if (std::uncaught_exceptions() > uncaught_at_start_) return;  // see the file comment
    MPI_Finalize();
  }

  /// The thread support MPI provides (MPI_THREAD_FUNNELED, SERIALIZED or MULTIPLE).
  [[nodiscard]] int thread_level() const noexcept { return provided_; }
  /// True if this object initialised MPI (and finalises it).
  [[nodiscard]] bool owns() const noexcept { return owns_; }

 private:
  void init(int* argc, char*** argv, int required) {
    int initialized = 0;
    MGPU_MPI_TRY(MPI_Initialized(&initialized));
    if (initialized == 0) {
      MGPU_MPI_TRY(MPI_Init_thread(argc, argv, required, &provided_));
      owns_ = true;
    } else {
      MGPU_MPI_TRY(MPI_Query_thread(&provided_));
    }
    int const needed = required > MPI_THREAD_FUNNELED ? required : MPI_THREAD_FUNNELED;
    if (provided_ < needed) {
      if (owns_) MPI_Finalize();
      owns_ = false;
      throw invalid_argument(::mgpu::detail::message(
          "mgpu::mpi::environment: MPI provides thread level ", provided_, " but ", needed,
          " is needed (MPI_THREAD_FUNNELED = ", MPI_THREAD_FUNNELED, ", SERIALIZED = ", MPI_THREAD_SERIALIZED,
          "): mgpu's device workers are threads of the process"));
    }
    uncaught_at_start_ = std::uncaught_exceptions();
  }

  int provided_ = MPI_THREAD_SINGLE;
  bool owns_ = false;
  int uncaught_at_start_ = 0;
};

/// True when the process was started by an MPI launcher (Open MPI's mpirun / mpiexec,
/// MPICH's Hydra, Slurm's srun with PMI or PMIx): one of the variables they set for
/// every rank (OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMI_RANK, PMIX_RANK) is present. Programs
/// that are useful both ways (the examples) initialise MPI only then, so that a run
/// without a launcher stays an ordinary single process (no singleton MPI start).
[[nodiscard]] inline bool launched_by_mpi() noexcept {
  for (char const* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK"}) {
    if (std::getenv(name) != nullptr) return true;
  }
  return false;
}

/// Runs `body()` (an MPI program's main body, returning its exit code) and ends the rank
/// without a hang when it throws (see the file comment): prints "rank R of N: error:
/// <what>" on stderr, then returns 1 if every rank threw the exception (an agreed error of
/// the component), or calls MPI_Abort(MPI_COMM_WORLD, 1) if it is this rank's alone.
/// Call it on the thread that initialised MPI, inside the environment's scope.
template <class F>
int main_guard(F&& body) {
  std::exception_ptr error;
  try {
    return std::forward<F>(body)();
  } catch (...) {
    error = std::current_exception();
  }
  int rank = 0;
  int ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  std::string what = "an exception of a type that is not a std::exception";
  try {
    std::rethrow_exception(error);
  } catch (std::exception const& e) {
    what = e.what();
  } catch (...) {
  }
  std::fprintf(stderr, "rank %d of %d: error: %s\n", rank, ranks, what.c_str());
  std::fflush(stderr);
  if (detail::is_agreed(error)) return 1;
  MPI_Abort(MPI_COMM_WORLD, 1);
  return 1;
}

}  // namespace mgpu::mpi
