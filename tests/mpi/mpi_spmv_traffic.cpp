// What an iterative SpMV moves over ranks x devices, from the transfer counts: builds a
// banded n x n matrix (5 entries per row) whose rows are split evenly over the ranks (each
// rank builds only its own rows), then runs `iterations` times y = A·x; x = all_gather(y),
// the pattern of power iteration and PageRank. Rank 0 prints the bytes per iteration (all
// pairs, and between ranks) as counted, the model's bytes ((devices - 1)·n·4 in all,
// (ranks - 1)·n·4 between ranks), and the wall time per iteration (slowest rank). Exits 1
// if the counts differ from the model. Not a test: a measuring tool (docs/distributed.md).
//
//   mpirun -np 4 tests/mpi/mpi_spmv_traffic [rows = 4194304] [iterations = 10] [local devices = cpu]
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mgpu/mpi.hpp"

int main(int argc, char** argv) {
  mgpu::mpi::environment env(argc, argv);
  return mgpu::mpi::main_guard([&] {
    int const rows = argc > 1 ? std::atoi(argv[1]) : 1 << 22;
    int const iterations = argc > 2 ? std::atoi(argv[2]) : 10;
    std::string const devices = argc > 3 ? argv[3] : "cpu";
    mgpu::mpi::distributed_policy<mgpu::cpu> policy(devices);
    auto const rank = policy.rank();
    auto const ranks = policy.ranks();
    int const first = static_cast<int>(static_cast<std::int64_t>(rows) * rank / ranks);
    int const last = static_cast<int>(static_cast<std::int64_t>(rows) * (rank + 1) / ranks);
    std::vector<int> offsets{0};
    std::vector<int> columns;
    std::vector<float> values;
    for (int r = first; r < last; ++r) {
      for (int c = std::max(0, r - 2); c <= std::min(rows - 1, r + 2); ++c) {
        columns.push_back(c);
        values.push_back(c == r ? 0.5f : 0.125f);
      }
      offsets.push_back(static_cast<int>(columns.size()));
    }
    mgpu::csr_matrix<mgpu::cpu, float, int> const mine(last - first, rows, std::move(offsets), std::move(columns),
                                                      std::move(values));
    mgpu::mpi::distributed_csr<mgpu::cpu, float, int> a(policy, mine.view(),
                                                         {.layout = mgpu::spmv_layout::sell, .resident = true});
    using dense = mgpu::mpi::distributed_dense<mgpu::cpu, float>;
    auto x = dense::replicated(policy, rows, 1);
    auto y = dense::row_blocks(policy, rows, 1, a.row_bounds());
    std::vector<float> const ones(static_cast<std::size_t>(rows), 1.0f);
    mgpu::mpi::broadcast(ones, x);

    policy.transfers().reset();
    MPI_Barrier(MPI_COMM_WORLD);
    auto const start = std::chrono::steady_clock::now();
    for (int k = 0; k < iterations; ++k) {
      a.spmv(1.0f, x, 0.0f, y);
      mgpu::mpi::all_gather(y, x);
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    MPI_Allreduce(MPI_IN_PLACE, &seconds, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    auto const counts = mgpu::mpi::sum_transfers(policy);

    auto const bytes = static_cast<std::uint64_t>(rows) * sizeof(float);
    auto const model_total = (policy.device_count() - 1) * bytes;
    auto const model_network = static_cast<std::uint64_t>(ranks - 1) * bytes;
    auto const total = counts.total() / static_cast<std::uint64_t>(iterations);
    auto const network = counts.network() / static_cast<std::uint64_t>(iterations);
    if (rank == 0) {
      std::printf("ranks %d, devices %zu (%s per rank), rows %d, nnz %lld, iterations %d\n", ranks,
                  policy.device_count(), devices.c_str(), rows, static_cast<long long>(a.nnz()), iterations);
      std::printf("bytes per iteration: %llu in all (model %llu), %llu between ranks (model %llu)\n",
                  static_cast<unsigned long long>(total), static_cast<unsigned long long>(model_total),
                  static_cast<unsigned long long>(network), static_cast<unsigned long long>(model_network));
      std::printf("wall time per iteration (spmv + all_gather, slowest rank): %.3f ms\n",
                  1e3 * seconds / iterations);
    }
    return total == model_total && network == model_network ? 0 : 1;
  });
}
