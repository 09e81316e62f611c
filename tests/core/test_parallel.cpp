// The CPU backend's parallel loops (backend/cpu/parallel.hpp): every index once, one
// state per thread, the first exception rethrown on the caller, no hang when a thread
// cannot make its state.
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include <omp.h>

#include "mgpu/backend/cpu/parallel.hpp"
#include "../test_support.hpp"

namespace cpu = mgpu::backend::cpu;

TEST_CASE("parallel_for visits every index exactly once, static and dynamic", "[core][parallel]") {
  for (std::int64_t const chunk : {std::int64_t{0}, std::int64_t{1}, std::int64_t{7}}) {
    for (std::int64_t const n : {std::int64_t{0}, std::int64_t{1}, std::int64_t{2}, std::int64_t{1000}}) {
      std::vector<std::atomic<int>> visits(static_cast<std::size_t>(n));
      cpu::parallel_for(n, [&](std::int64_t i) { visits[static_cast<std::size_t>(i)].fetch_add(1); }, {.chunk = chunk});
      for (auto const& v : visits) REQUIRE(v.load() == 1);
    }
  }
}

TEST_CASE("parallel_for below min_parallel runs on the calling thread", "[core][parallel]") {
  std::atomic<int> outside_master{0};
  cpu::parallel_for(
      10, [&](std::int64_t) { outside_master.fetch_add(omp_get_thread_num() != 0 ? 1 : 0); },
      {.chunk = 0, .min_parallel = 64});
  REQUIRE(omp_in_parallel() == 0);
  REQUIRE(outside_master.load() == 0);
}

TEST_CASE("parallel_for_with_state gives each thread its own state", "[core][parallel]") {
  std::atomic<int> states{0};
  std::vector<std::int64_t> owner(500, -1);
  cpu::parallel_for_with_state(
      500, {.chunk = 3}, [&] { return states.fetch_add(1); },
      [&](int& state, std::int64_t i) { owner[static_cast<std::size_t>(i)] = state; });
  REQUIRE(states.load() >= 1);
  REQUIRE(states.load() <= cpu::host_threads());
  for (auto o : owner) {
    REQUIRE(o >= 0);
    REQUIRE(o < states.load());
  }
}

TEST_CASE("parallel_for rethrows a body's exception on the caller", "[core][parallel]") {
  for (std::int64_t const chunk : {std::int64_t{0}, std::int64_t{5}}) {
    std::atomic<int> ran{0};
    auto const message = mgpu_test::message_of<std::runtime_error>([&] {
      cpu::parallel_for(
          10000,
          [&](std::int64_t i) {
            ran.fetch_add(1);
            if (i == 17) throw std::runtime_error("row 17 is bad");
          },
          {.chunk = chunk});
    });
    REQUIRE(message == "row 17 is bad");
    REQUIRE(ran.load() >= 1);
  }
}

TEST_CASE("parallel_for_with_state: a state that cannot be made fails the loop, no hang", "[core][parallel]") {
  std::atomic<int> made{0};
  std::atomic<int> ran{0};
  auto const message = mgpu_test::message_of<std::runtime_error>([&] {
    cpu::parallel_for_with_state(
        1000, {},
        [&] {
          if (made.fetch_add(1) == 0) throw std::runtime_error("no scratch");
          return 0;
        },
        [&](int&, std::int64_t) { ran.fetch_add(1); });
  });
  REQUIRE(message == "no scratch");
  // The loop stops as soon as the failure is seen; iterations that started before it may run.
  REQUIRE(ran.load() < 1000);
}
