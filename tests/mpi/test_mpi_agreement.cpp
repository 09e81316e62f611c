// Faults inside one process of the job: a rank whose input is wrong, or ranks that pass
// different options, make every rank throw the same exception (no rank is left waiting).
#include <catch2/catch.hpp>

#include <mpi.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "../test_support.hpp"
#include "mgpu/mpi/collectives.hpp"
#include "mgpu/mpi/distributed_csr.hpp"
#include "mpi_test_support.hpp"

namespace {

using mgpu_mpi_test::world_rank;
using mgpu_mpi_test::world_size;
using dist_csr = mgpu::mpi::distributed_csr<mgpu::cpu, float, int>;
using dense = mgpu::mpi::distributed_dense<mgpu::cpu, float>;
using policy_type = mgpu::mpi::distributed_policy<mgpu::cpu>;

bool contains(std::string const& text, std::string const& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("mpi agreement: a wrong x on the last rank makes every rank throw its dimension_mismatch", "[mpi]") {
  int const rank = world_rank();
  int const ranks = world_size();
  auto const a = mgpu_mpi_test::random_csr(40, 30, 0.1, 2);
  auto const split = mgpu_mpi_test::uneven_split(40, ranks);
  policy_type policy("cpu:2");
  dist_csr m(policy, a.view().row_block(split[static_cast<std::size_t>(rank)], split[static_cast<std::size_t>(rank) + 1]));
  std::vector<float> x(rank == ranks - 1 ? 29 : 30, 1.0f);  // one entry short on the last rank
  std::vector<float> y(static_cast<std::size_t>(m.local_rows()));
  auto const what = mgpu_test::message_of<mgpu::dimension_mismatch>(
      [&] { m.spmv(1.0f, std::span<float const>(x), 0.0f, std::span<float>(y)); });
  INFO(what);
  CHECK(contains(what, "rank " + std::to_string(ranks - 1) + " of " + std::to_string(ranks) + ": "));
  CHECK(contains(what, "x has 29 entries"));
  // The communicator is usable afterwards: the next call succeeds everywhere.
  std::vector<float> good(30, 1.0f);
  m.spmv(1.0f, std::span<float const>(good), 0.0f, std::span<float>(y));
}

TEST_CASE("mpi agreement: the first failing rank's error, whatever the others' errors", "[mpi]") {
  int const rank = world_rank();
  int const ranks = world_size();
  policy_type policy("cpu");
  // Every rank passes a root outside the ranks, a different one each: rank 0's is reported.
  auto x = dense::replicated(policy, 4, 2);
  auto const what = mgpu_test::message_of<mgpu::invalid_argument>(
      [&] { mgpu::mpi::broadcast(mgpu::dense_view<float const>{}, x, -1 - rank); });
  INFO(what);
  CHECK(contains(what, "rank 0 of " + std::to_string(ranks)));
  CHECK(contains(what, "root rank -1 is not in"));
  if (ranks > 1) CHECK(contains(what, "the first of " + std::to_string(ranks) + " ranks that failed"));
}

TEST_CASE("mpi agreement: ranks passing different options or shapes are told which and where", "[mpi]") {
  int const rank = world_rank();
  int const ranks = world_size();
  if (ranks == 1) return;  // one rank always agrees with itself
  policy_type policy("cpu");
  auto const a = mgpu_mpi_test::random_csr(20, 15, 0.2, 4);
  auto const split = mgpu_mpi_test::uneven_split(20, ranks);
  auto const mine = a.view().row_block(split[static_cast<std::size_t>(rank)], split[static_cast<std::size_t>(rank) + 1]);
  bool const odd_one = rank == ranks - 1;

  auto what = mgpu_test::message_of<mgpu::invalid_argument>([&] {
    dist_csr m(policy, mine, {.layout = odd_one ? mgpu::spmv_layout::csr : mgpu::spmv_layout::sell});
  });
  CHECK(contains(what, "the ranks disagree on the option layout: rank 0 has 3 but rank " + std::to_string(ranks - 1) +
                           " has 1"));

  auto narrower = mine;
  if (odd_one) narrower.cols = 14;  // the last rank's rows say 14 columns
  what = mgpu_test::message_of<mgpu::invalid_argument>([&] { dist_csr m(policy, narrower); });
  CHECK(contains(what, "the ranks disagree on cols: rank 0 has 15 but rank " + std::to_string(ranks - 1) + " has 14"));

  what = mgpu_test::message_of<mgpu::invalid_argument>([&] { auto x = dense::replicated(policy, odd_one ? 5 : 4, 2); });
  CHECK(contains(what, "mpi::distributed_dense: the ranks disagree on rows: rank 0 has 4 but rank"));

  auto x = dense::replicated(policy, 4, 2);
  mgpu::dense_matrix<mgpu::cpu, float> host(4, 2, 1.0f);
  what = mgpu_test::message_of<mgpu::invalid_argument>([&] { mgpu::mpi::broadcast(host, x, odd_one ? 1 : 0); });
  CHECK(contains(what, "mpi::broadcast: the ranks disagree on the root"));

  dist_csr m(policy, mine);
  std::vector<float> xs(15, 1.0f);
  std::vector<float> y(static_cast<std::size_t>(m.local_rows()));
  what = mgpu_test::message_of<mgpu::invalid_argument>(
      [&] { m.spmv(odd_one ? 2.0f : 1.0f, std::span<float const>(xs), 0.0f, std::span<float>(y)); });
  CHECK(contains(what, "the ranks disagree on alpha: rank 0 has 1 but rank " + std::to_string(ranks - 1) + " has 2"));
}

TEST_CASE("mpi agreement: a malformed device string on one rank fails the policy on every rank", "[mpi]") {
  int const rank = world_rank();
  int const ranks = world_size();
  auto const what = mgpu_test::message_of<mgpu::invalid_argument>(
      [&] { policy_type policy(rank == ranks - 1 ? "cpu:0" : "cpu"); });
  INFO(what);
  CHECK(contains(what, "rank " + std::to_string(ranks - 1) + " of " + std::to_string(ranks) + ": "));
  CHECK(contains(what, "cpu:0"));
}

TEST_CASE("mpi agreement: the exception keeps its type and fields across ranks", "[mpi]") {
  int const rank = world_rank();
  int const ranks = world_size();
  policy_type policy("cpu");
  int const failing = ranks - 1;
  auto const local = [&](auto make) {
    return rank == failing ? std::make_exception_ptr(make()) : std::exception_ptr{};
  };
  try {
    mgpu::mpi::detail::agree(policy.comm(), "test", {},
                             local([] { return mgpu::parse_error("corpus.ndjson", 17, "invalid JSON"); }));
    FAIL("no exception");
  } catch (mgpu::parse_error const& e) {
    CHECK(e.file() == "corpus.ndjson");
    CHECK(e.line() == 17);
    CHECK(std::string(e.what()) == "corpus.ndjson:17: rank " + std::to_string(failing) + " of " +
                                       std::to_string(ranks) + ": invalid JSON");
    CHECK(mgpu::mpi::detail::is_agreed(std::current_exception()));
  }
  try {
    mgpu::mpi::detail::agree(policy.comm(), "test", {},
                             local([] { return mgpu::out_of_memory(1000, 10, "spmv workspace"); }));
    FAIL("no exception");
  } catch (mgpu::out_of_memory const& e) {
    CHECK(e.requested_bytes() == 1000);
    CHECK(e.available_bytes() == 10);
    CHECK(std::string(e.what()) == "rank " + std::to_string(failing) + " of " + std::to_string(ranks) +
                                       ": spmv workspace: cannot allocate 1000 bytes (10 bytes free)");
  }
}

TEST_CASE("mpi agreement: ranks in different operations are detected, not deadlocked", "[mpi]") {
  int const rank = world_rank();
  int const ranks = world_size();
  if (ranks == 1) return;
  policy_type policy("cpu");
  auto const what = mgpu_test::message_of<mgpu::invalid_argument>([&] {
    mgpu::mpi::detail::agree(policy.comm(), rank == ranks - 1 ? "mpi::gather" : "mpi::scatter", {}, nullptr);
  });
  CHECK(contains(what, "rank " + std::to_string(ranks - 1) + " is in another distributed operation than rank 0"));
}
