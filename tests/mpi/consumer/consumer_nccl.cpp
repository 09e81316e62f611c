// A program built against the installed mgpu::mpi_nccl (find_package(mgpu COMPONENTS mpi
// nccl)): the GPU collectives over NCCL. With a GPU per rank, a vector goes from rank 0
// to every rank's GPU and the GPUs' copies are summed on rank 0; without enough GPUs it
// says so and exits 0 (the point of the install test is that it compiles and links).
// Prints "ok" on rank 0; exits 1 on a wrong value.
#include <cstdint>
#include <cstdio>
#include <span>
#include <vector>

#include <mgpu/mpi/collectives.hpp>
#include <mgpu/mpi/environment.hpp>

int main(int argc, char** argv) {
  mgpu::mpi::environment env(argc, argv);
  return mgpu::mpi::main_guard([] {
    int ranks = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    if (mgpu::backend::cuda::visible_device_count() < ranks) {
      std::printf("fewer GPUs than ranks: built and linked, not run\n");
      return 0;
    }
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    mgpu::mpi::distributed_policy<mgpu::gpu> policy("cuda:" + std::to_string(rank));
    auto const n = std::int64_t{4};
    std::vector<float> host{1.0f, 2.0f, 3.0f, 4.0f};
    auto x = mgpu::mpi::distributed_dense<mgpu::gpu, float>::replicated(policy, n, 1);
    mgpu::mpi::broadcast(std::span<float const>(host), x);
    std::vector<float> sum(static_cast<std::size_t>(n));
    mgpu::mpi::reduce_sum(x, std::span<float>(sum));
    bool ok = true;
    if (policy.rank() == 0) {
      // Every GPU holds the vector, so the sum is (devices) times it.
      auto const g = static_cast<float>(policy.device_count());
      for (std::int64_t i = 0; i < n; ++i) ok = ok && sum[static_cast<std::size_t>(i)] == g * host[static_cast<std::size_t>(i)];
      if (ok) std::printf("ok: %zu GPUs over %d ranks\n", policy.device_count(), policy.ranks());
    }
    return ok ? 0 : 1;
  });
}
