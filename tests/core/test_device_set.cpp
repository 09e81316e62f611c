// Specification of host device sets (mgpu/core/device_set.hpp), execution policies
// (mgpu/execution/policy.hpp) and fork_join (mgpu/execution/fork_join.hpp).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <omp.h>

#include "core_test_support.hpp"
#include "mgpu/core/device.hpp"
#include "mgpu/core/device_set.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/execution/fork_join.hpp"
#include "mgpu/execution/policy.hpp"

using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using host_set = mgpu::device_set<mgpu::cpu>;
using host_policy = mgpu::execution_policy<mgpu::cpu>;

namespace {

std::vector<int> thread_shares(host_set const& set) {
  std::vector<int> shares;
  for (std::size_t i = 0; i < set.size(); ++i) shares.push_back(set[i].work.threads());
  return shares;
}

}  // namespace

TEST_CASE("by default host devices share OpenMP's thread count (OMP_NUM_THREADS)",
          "[core][device_set]") {
  int const before = omp_get_max_threads();
  omp_set_num_threads(3);
  auto const shares = thread_shares(host_set(2));
  omp_set_num_threads(1);
  auto const single = thread_shares(host_set(2));
  omp_set_num_threads(before);
  CHECK(shares == std::vector<int>{2, 1});
  CHECK(single == std::vector<int>{1, 1});  // never fewer than one each
}

TEST_CASE("host devices share the hardware threads and the first ones get the remainder",
          "[core][device_set]") {
  CHECK(thread_shares(host_set(3, 8)) == std::vector<int>{3, 3, 2});
  CHECK(thread_shares(host_set(2, 8)) == std::vector<int>{4, 4});
  CHECK(thread_shares(host_set(1, 5)) == std::vector<int>{5});
}

TEST_CASE("every host device gets at least one thread", "[core][device_set]") {
  CHECK(thread_shares(host_set(4, 2)) == std::vector<int>{1, 1, 1, 1});
  CHECK(thread_shares(host_set(3, 1)) == std::vector<int>{1, 1, 1});
}

TEST_CASE("a host set numbers its devices in order", "[core][device_set]") {
  host_set set(4, 4);
  REQUIRE(set.size() == 4);
  for (std::size_t i = 0; i < set.size(); ++i) {
    CHECK(set[i].index == i);
    CHECK(set[i].dev.ordinal == static_cast<int>(i));
    CHECK(set.device_at(i) == mgpu::device<mgpu::cpu>{static_cast<int>(i)});
  }
}

TEST_CASE("a host set is built from a parsed device string", "[core][device_set]") {
  CHECK(host_set(mgpu::parse_device_string("cpu")).size() == 1);
  CHECK(host_set(mgpu::parse_device_string("cpu:4")).size() == 4);
}

TEST_CASE("a host set rejects counts outside 1..max_host_devices and non-host specs",
          "[core][device_set]") {
  CHECK_THROWS_AS(host_set(0), mgpu::invalid_argument);
  CHECK_THROWS_AS(host_set(mgpu::max_host_devices + 1), mgpu::invalid_argument);
  auto const what = mgpu_test::message_of<mgpu::invalid_argument>(
      [] { host_set set(mgpu::parse_device_string("cuda:0")); });
  CHECK_THAT(what, Contains("\"cuda:0\""));
}

TEST_CASE("a host set prints as the device string that builds it", "[core][device_set]") {
  CHECK(host_set(1).to_string() == "cpu");
  CHECK(host_set(3).to_string() == "cpu:3");
  CHECK(host_set(mgpu::parse_device_string(host_set(5).to_string())).size() == 5);
}

TEST_CASE("host devices never need staged copies", "[core][device_set]") {
  CHECK(host_set(3).staged_pairs().empty());
}

TEST_CASE("a policy names the devices of its string and copies share them", "[core][policy]") {
  host_policy const policy("cpu:2");
  CHECK(policy.device_count() == 2);
  CHECK(policy.memory_budget() == 0);
  host_policy const copy = policy;
  CHECK(&copy.devices() == &policy.devices());
}

TEST_CASE("with_memory_budget returns a new policy on the same devices", "[core][policy]") {
  host_policy const policy("cpu:2");
  auto const limited = policy.with_memory_budget(1 << 20);
  CHECK(limited.memory_budget() == (1u << 20));
  CHECK(policy.memory_budget() == 0);
  CHECK(&limited.devices() == &policy.devices());
}

TEST_CASE("a host policy rejects CUDA strings and malformed strings and a null set",
          "[core][policy]") {
  CHECK_THROWS_AS(host_policy("cuda:0"), mgpu::invalid_argument);
  CHECK_THROWS_AS(host_policy("cpu:0"), mgpu::invalid_argument);
  CHECK_THROWS_AS(host_policy(std::shared_ptr<host_set>()), mgpu::invalid_argument);
}

TEST_CASE("fork_join calls the function once per device with that device's index",
          "[core][fork_join]") {
  host_policy const policy(std::make_shared<host_set>(4, 4));
  std::vector<std::atomic<int>> calls(4);
  std::vector<int> ordinals(4, -1);
  std::vector<std::size_t> indices(4, 99);
  mgpu::detail::fork_join(policy, [&](mgpu::device_context<mgpu::cpu>& ctx, std::size_t i) {
    calls[i].fetch_add(1);
    ordinals[i] = ctx.dev.ordinal;
    indices[i] = ctx.index;
  });
  for (std::size_t i = 0; i < 4; ++i) {
    INFO("device " << i);
    CHECK(calls[i].load() == 1);
    CHECK(ordinals[i] == static_cast<int>(i));
    CHECK(indices[i] == i);
  }
}

TEST_CASE("fork_join runs the devices concurrently", "[core][fork_join]") {
  host_policy const policy(std::make_shared<host_set>(4, 4));
  // Each device waits for all the others; a sequential loop would time out here.
  mgpu_test::rendezvous meet(4);
  std::vector<int> met(4, 0);
  mgpu::detail::fork_join(policy, [&](auto&, std::size_t i) { met[i] = meet.arrive_and_wait(); });
  CHECK(met == std::vector<int>{1, 1, 1, 1});
}

TEST_CASE("fork_join runs each device's work on its stream with its thread share",
          "[core][fork_join][openmp]") {
  host_policy const policy(std::make_shared<host_set>(3, 8));
  std::vector<int> seen(3, 0);
  std::vector<std::thread::id> workers(3);
  mgpu::detail::fork_join(policy, [&](mgpu::device_context<mgpu::cpu>& ctx, std::size_t i) {
    seen[i] = omp_get_max_threads() == ctx.work.threads() ? ctx.work.threads() : -1;
    workers[i] = std::this_thread::get_id();
  });
  CHECK(seen == std::vector<int>{3, 3, 2});
  CHECK(workers[0] != workers[1]);
  CHECK(workers[1] != workers[2]);
  CHECK(workers[0] != std::this_thread::get_id());
}

TEST_CASE("fork_join rethrows a device's error after every device has finished",
          "[core][fork_join][errors]") {
  host_policy const policy(std::make_shared<host_set>(3, 3));
  std::vector<std::atomic<bool>> finished(3);
  auto const run = [&] {
    mgpu::detail::fork_join(policy, [&](auto&, std::size_t i) {
      if (i == 1) throw mgpu::format_error("device 1 failed");
      std::this_thread::sleep_for(50ms);
      finished[i] = true;
    });
  };
  CHECK_THROWS_AS(run(), mgpu::format_error);
  CHECK(finished[0].load());
  CHECK(finished[2].load());
}

TEST_CASE("when several devices fail fork_join rethrows one of their errors",
          "[core][fork_join][errors]") {
  host_policy const policy(std::make_shared<host_set>(4, 4));
  std::atomic<int> attempts{0};
  auto const what = mgpu_test::message_of<std::runtime_error>([&] {
    mgpu::detail::fork_join(policy, [&](auto&, std::size_t i) {
      attempts.fetch_add(1);
      if (i % 2 == 0) throw std::runtime_error("device " + std::to_string(i) + " failed");
    });
  });
  CHECK((what == "device 0 failed" || what == "device 2 failed"));
  CHECK(attempts.load() == 4);
}

TEST_CASE("a device set stays usable after fork_join reported an error",
          "[core][fork_join][errors]") {
  host_policy const policy(std::make_shared<host_set>(3, 3));
  CHECK_THROWS_WITH(mgpu::detail::fork_join(policy,
                                            [](auto&, std::size_t i) {
                                              if (i == 2) throw std::runtime_error("boom");
                                            }),
                    "boom");
  std::vector<int> calls(3, 0);
  CHECK_NOTHROW(mgpu::detail::fork_join(policy, [&](auto&, std::size_t i) { ++calls[i]; }));
  CHECK(calls == std::vector<int>{1, 1, 1});
  for (std::size_t i = 0; i < 3; ++i) CHECK_NOTHROW(policy.devices()[i].work.synchronize());
}

TEST_CASE("fork_join on one device runs the function once", "[core][fork_join]") {
  host_policy const policy("cpu");
  int calls = 0;
  mgpu::detail::fork_join(policy, [&](auto&, std::size_t i) { calls += static_cast<int>(i) + 1; });
  CHECK(calls == 1);
}

TEST_CASE("reliability row 19: a fork_join call sees only its own task's error, not one of "
          "another call running at the same time on the same set",
          "[core][fork_join][errors][reliability]") {
  host_policy const policy(std::make_shared<host_set>(2, 2));
  // Call A's task on device 1 fails while call B's tasks are queued behind it on both
  // devices: B must run both of its tasks and return normally.
  std::atomic<bool> release{false};
  std::vector<std::atomic<int>> b_ran(2);
  std::thread a([&] {
    CHECK_THROWS_WITH(mgpu::detail::fork_join(policy,
                                              [&](auto&, std::size_t i) {
                                                while (!release.load()) std::this_thread::yield();
                                                if (i == 1) throw std::runtime_error("call A failed");
                                              }),
                      "call A failed");
  });
  std::this_thread::sleep_for(20ms);  // A's tasks occupy both devices
  std::thread b([&] {
    CHECK_NOTHROW(mgpu::detail::fork_join(policy, [&](auto&, std::size_t i) { b_ran[i].fetch_add(1); }));
  });
  std::this_thread::sleep_for(20ms);  // B's tasks are queued behind A's
  release = true;
  a.join();
  b.join();
  CHECK(b_ran[0].load() == 1);
  CHECK(b_ran[1].load() == 1);
}

TEST_CASE("reliability row 19: fork_join runs its tasks even when a stream holds an error "
          "left by code that enqueued on it directly",
          "[core][fork_join][errors][reliability]") {
  host_policy const policy(std::make_shared<host_set>(2, 2));
  policy.devices()[0].work.enqueue([] { throw std::runtime_error("the stream's own error"); });
  std::vector<int> ran(2, 0);
  CHECK_NOTHROW(mgpu::detail::fork_join(policy, [&](auto&, std::size_t i) { ++ran[i]; }));
  CHECK(ran == std::vector<int>{1, 1});
  // The sticky error still belongs to whoever enqueued the failing task.
  CHECK_THROWS_WITH(policy.devices()[0].work.synchronize(), "the stream's own error");
}

TEST_CASE("reliability row 20: fork_join from inside a task of the same set throws "
          "invalid_argument instead of waiting for itself",
          "[core][fork_join][errors][reliability]") {
  host_policy const policy(std::make_shared<host_set>(2, 2));
  std::atomic<int> inner_runs{0};
  auto const started = std::chrono::steady_clock::now();
  auto const what = mgpu_test::message_of<mgpu::invalid_argument>([&] {
    mgpu::detail::fork_join(policy, [&](auto&, std::size_t i) {
      if (i != 1) return;
      mgpu::detail::fork_join(policy, [&](auto&, std::size_t) { inner_runs.fetch_add(1); });
    });
  });
  CHECK(std::chrono::steady_clock::now() - started < 1s);
  CHECK_THAT(what, Contains("inside a task of device 1") && Contains("cpu:2"));
  CHECK(inner_runs.load() == 0);
  // The set is still usable afterwards.
  std::vector<int> ran(2, 0);
  CHECK_NOTHROW(mgpu::detail::fork_join(policy, [&](auto&, std::size_t i) { ++ran[i]; }));
  CHECK(ran == std::vector<int>{1, 1});
}

TEST_CASE("fork_join from inside a task may use another device set", "[core][fork_join]") {
  host_policy const outer(std::make_shared<host_set>(2, 2));
  host_policy const inner(std::make_shared<host_set>(2, 2));
  std::vector<std::atomic<int>> ran(2);
  mgpu::detail::fork_join(outer, [&](auto&, std::size_t) {
    mgpu::detail::fork_join(inner, [&](auto&, std::size_t j) { ran[j].fetch_add(1); });
  });
  CHECK(ran[0].load() == 2);
  CHECK(ran[1].load() == 2);
}

TEST_CASE("a stream knows whether the calling thread is its worker", "[core][stream]") {
  mgpu::stream<mgpu::cpu> s;
  CHECK_FALSE(s.runs_on_this_thread());
  std::atomic<bool> inside{false};
  s.enqueue([&] { inside = s.runs_on_this_thread(); });
  s.synchronize();
  CHECK(inside.load());
}

TEST_CASE("fork_join_async returns before its tasks run and wait() joins them",
          "[core][fork_join][async]") {
  host_policy const policy(std::make_shared<host_set>(2, 2));
  std::atomic<bool> release{false};
  std::vector<std::atomic<int>> ran(2);
  auto h = mgpu::detail::fork_join_async(policy, [&](auto&, std::size_t i) {
    while (!release.load()) std::this_thread::yield();
    ran[i].fetch_add(1);
  });
  // The tasks cannot have finished: they wait for `release`, set only now.
  CHECK(h.valid());
  CHECK(ran[0].load() + ran[1].load() == 0);
  release = true;
  h.wait();
  CHECK_FALSE(h.valid());
  CHECK(ran[0].load() == 1);
  CHECK(ran[1].load() == 1);
}

TEST_CASE("two fork_join_async calls in flight on one set each get their own results and errors",
          "[core][fork_join][async][errors]") {
  host_policy const policy(std::make_shared<host_set>(2, 2));
  std::atomic<bool> release{false};
  std::vector<int> first(2, 0), second(2, 0);
  auto a = mgpu::detail::fork_join_async(policy, [&](auto&, std::size_t i) {
    while (!release.load()) std::this_thread::yield();
    first[i] = 10 + static_cast<int>(i);
    if (i == 0) throw std::runtime_error("call A failed on device 0");
  });
  auto b = mgpu::detail::fork_join_async(policy, [&](auto&, std::size_t i) {
    second[i] = 20 + static_cast<int>(i);
    if (i == 1) throw std::runtime_error("call B failed on device 1");
  });
  release = true;
  // Waited in the opposite order of submission: each handle reports only its call.
  CHECK_THROWS_WITH(b.wait(), "call B failed on device 1");
  CHECK_THROWS_WITH(a.wait(), "call A failed on device 0");
  CHECK(first == std::vector<int>{10, 11});
  CHECK(second == std::vector<int>{20, 21});
}

TEST_CASE("a fork_join_async handle's destructor waits for the tasks and does not throw",
          "[core][fork_join][async][errors]") {
  host_policy const policy(std::make_shared<host_set>(2, 2));
  std::atomic<bool> release{false};
  std::vector<std::atomic<int>> ran(2);
  std::thread releaser;
  {
    auto h = mgpu::detail::fork_join_async(policy, [&](auto&, std::size_t i) {
      while (!release.load()) std::this_thread::yield();
      ran[i].fetch_add(1);
      throw std::runtime_error("dropped by the destructor");
    });
    releaser = std::thread([&] {
      std::this_thread::sleep_for(20ms);
      release = true;
    });
  }  // ~fork_join_handle: both tasks have run when it returns
  CHECK(ran[0].load() == 1);
  CHECK(ran[1].load() == 1);
  releaser.join();
}

TEST_CASE("fork_join_async owns its function: a temporary callable outlives the call",
          "[core][fork_join][async]") {
  host_policy const policy(std::make_shared<host_set>(3, 3));
  std::vector<std::atomic<int>> sum(3);
  auto h = mgpu::detail::fork_join_async(policy, [&sum, offset = std::make_unique<int>(5)](auto&, std::size_t i) {
    sum[i].fetch_add(*offset + static_cast<int>(i));
  });
  h.wait();
  CHECK(sum[0].load() == 5);
  CHECK(sum[1].load() == 6);
  CHECK(sum[2].load() == 7);
}

TEST_CASE("fork_join_async from inside a task of the same set throws invalid_argument",
          "[core][fork_join][async][errors]") {
  host_policy const policy(std::make_shared<host_set>(2, 2));
  std::atomic<int> inner_runs{0};
  auto const what = mgpu_test::message_of<mgpu::invalid_argument>([&] {
    mgpu::detail::fork_join(policy, [&](auto&, std::size_t i) {
      if (i != 0) return;
      auto inner = mgpu::detail::fork_join_async(policy, [&](auto&, std::size_t) { inner_runs.fetch_add(1); });
      inner.wait();
    });
  });
  CHECK_THAT(what, Contains("inside a task of device 0") && Contains("cpu:2"));
  CHECK(inner_runs.load() == 0);
}

TEST_CASE("waiting on an empty fork_join handle is invalid_argument", "[core][fork_join][async][errors]") {
  host_policy const policy(std::make_shared<host_set>(1, 1));
  auto h = mgpu::detail::fork_join_async(policy, [](auto&, std::size_t) {});
  auto moved = std::move(h);
  CHECK_FALSE(h.valid());
  CHECK_THROWS_AS(h.wait(), mgpu::invalid_argument);
  CHECK_NOTHROW(moved.wait());
}
