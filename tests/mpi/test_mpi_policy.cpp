// The global device set: ranks x local devices in rank order.
#include <catch2/catch.hpp>

#include <mpi.h>

#include <cstddef>
#include <string>
#include <vector>

#include "mgpu/mpi/policy.hpp"
#include "mpi_test_support.hpp"

using mgpu_mpi_test::world_rank;
using mgpu_mpi_test::world_size;

TEST_CASE("mpi policy: the global set is the ranks' local devices in rank order", "[mpi]") {
  int const rank = world_rank();
  int const ranks = world_size();
  // Rank r holds r % 3 + 1 devices: 1, 2, 3, 1, ...
  mgpu::mpi::distributed_policy<mgpu::cpu> policy("cpu:" + std::to_string(rank % 3 + 1));
  std::size_t expected_total = 0;
  std::vector<std::size_t> expected_first;
  for (int r = 0; r < ranks; ++r) {
    expected_first.push_back(expected_total);
    expected_total += static_cast<std::size_t>(r % 3 + 1);
  }
  CHECK(policy.rank() == rank);
  CHECK(policy.ranks() == ranks);
  CHECK(policy.device_count() == expected_total);
  CHECK(policy.local_device_count() == static_cast<std::size_t>(rank % 3 + 1));
  CHECK(policy.first_device() == expected_first[static_cast<std::size_t>(rank)]);
  for (int r = 0; r < ranks; ++r) {
    CHECK(policy.first_device(r) == expected_first[static_cast<std::size_t>(r)]);
    CHECK(policy.device_count(r) == static_cast<std::size_t>(r % 3 + 1));
    for (std::size_t i = 0; i < policy.device_count(r); ++i) CHECK(policy.rank_of(expected_first[static_cast<std::size_t>(r)] + i) == r);
  }
  CHECK(policy.first_device(ranks) == expected_total);
  CHECK(policy.local().device_count() == policy.local_device_count());
  if (ranks == 2) CHECK(policy.to_string() == "3 devices over 2 ranks (1 + 2)");
}

TEST_CASE("mpi policy: the library's communicator is a duplicate, shared by copies", "[mpi]") {
  mgpu::mpi::distributed_policy<mgpu::cpu> policy("cpu");
  int compare = MPI_UNEQUAL;
  MPI_Comm_compare(policy.comm(), MPI_COMM_WORLD, &compare);
  CHECK(compare == MPI_CONGRUENT);  // same ranks, another context: messages never mix
  auto const copy = policy.with_memory_budget(1 << 20);
  CHECK(copy.comm() == policy.comm());
  CHECK(copy.same_devices(policy));
  CHECK(copy.local().memory_budget() == std::size_t{1} << 20);
  mgpu::mpi::distributed_policy<mgpu::cpu> other("cpu");
  CHECK_FALSE(other.same_devices(policy));
}

TEST_CASE("mpi policy: a sub-communicator gives a set over its ranks only", "[mpi]") {
  int const rank = world_rank();
  MPI_Comm half = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &half);
  {
    mgpu::mpi::distributed_policy<mgpu::cpu> policy("cpu:2", half);
    int const size = (world_size() + (rank % 2 == 0 ? 1 : 0)) / 2;
    CHECK(policy.ranks() == size);
    CHECK(policy.rank() == rank / 2);
    CHECK(policy.device_count() == 2 * static_cast<std::size_t>(size));
  }
  MPI_Comm_free(&half);
}

TEST_CASE("mpi policy: endpoints of the transfer counts", "[mpi]") {
  CHECK(mgpu::mpi::host_of(0) == mgpu::host_endpoint);
  CHECK(mgpu::mpi::host_of(3) == -4);
  // Ranks holding 2, 1 and 2 devices: devices 0 1 | 2 | 3 4.
  mgpu::mpi::transfer_counts counts({0, 2, 3, 5}, {{{-1, 2}, 10}, {{2, 3}, 7}, {{3, 4}, 5}, {{1, 0}, 3}});
  CHECK(counts.rank_of(-3) == 2);
  CHECK(counts.rank_of(1) == 0);
  CHECK(counts.rank_of(2) == 1);
  CHECK(counts.rank_of(4) == 2);
  CHECK(counts.total() == 25);
  CHECK(counts.network() == 17);  // host of rank 0 -> device 2 (rank 1), device 2 -> 3 (rank 2)
  CHECK(counts.sent(2) == 7);
  CHECK(counts.received(2) == 10);
  CHECK(counts.bytes(3, 4) == 5);
  CHECK(counts.bytes(4, 3) == 0);
}
