// Helpers shared by the core tests: a rendezvous that proves concurrency without
// risking a hang, and a way to read an exception's message after checking its type.
#pragma once

#include "../test_support.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>

namespace mgpu_test {

/// `expected` parties meet here. Each waits at most `timeout` for the others, so work
/// that is wrongly serialised makes the test fail after the timeout instead of hanging.
class rendezvous {
 public:
  explicit rendezvous(int expected) : expected_(expected) {}

  /// True if every party arrived within `timeout` of this one.
  bool arrive_and_wait(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mutex_);
    ++arrived_;
    all_arrived_.notify_all();
    return all_arrived_.wait_for(lock, timeout, [&] { return arrived_ >= expected_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable all_arrived_;
  int arrived_ = 0;
  int expected_;
};

}  // namespace mgpu_test
