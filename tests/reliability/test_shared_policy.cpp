// Stress test of one execution policy shared by several user threads (RELIABILITY.md
// rows 19 and 20): four threads share one `cpu:2` policy for five seconds; one of them
// runs work that fails on a random device every few calls, the others run cosine top-k,
// SpMV and plain fork_join work whose results are known in advance. No other thread may
// see the failing thread's errors or return a wrong result, and the failing thread must
// see exactly its own errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "mgpu/algorithms/cosine_topk.hpp"
#include "mgpu/core/device_set.hpp"
#include "mgpu/execution/fork_join.hpp"
#include "mgpu/execution/policy.hpp"
#include "mgpu/sparse/coo.hpp"
#include "mgpu/sparse/spmv.hpp"

using namespace std::chrono_literals;
using host_policy = mgpu::execution_policy<mgpu::cpu>;
using matrix = mgpu::csr_matrix<mgpu::cpu, float, std::int32_t>;

namespace {

// A random sparse matrix with small integer values, so that SpMV with an integer x is
// exact in float and its reference is a plain loop.
matrix random_matrix(std::int32_t rows, std::int32_t cols, int per_row, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<std::int32_t> col(0, cols - 1);
  std::uniform_int_distribution<int> value(1, 4);
  std::vector<std::int32_t> ri, ci;
  std::vector<float> v;
  for (std::int32_t r = 0; r < rows; ++r) {
    for (int j = 0; j < per_row; ++j) {
      ri.push_back(r);
      ci.push_back(col(gen));
      v.push_back(static_cast<float>(value(gen)));
    }
  }
  return mgpu::csr_from_coo<float, std::int32_t>(rows, cols, ri, ci, v);
}

std::vector<float> reference_spmv(matrix const& a, std::vector<float> const& x) {
  auto const v = a.view();
  std::vector<float> y(static_cast<std::size_t>(v.rows), 0.0f);
  for (std::int32_t r = 0; r < v.rows; ++r) {
    for (auto p = v.row_offsets[r]; p < v.row_offsets[r + 1]; ++p) y[r] += v.values[p] * x[v.col_indices[p]];
  }
  return y;
}

bool same(mgpu::topk_result<float> const& a, mgpu::topk_result<float> const& b) {
  return a.row_offsets == b.row_offsets && a.ids == b.ids && a.scores == b.scores;
}

struct tally {
  std::atomic<long> calls{0};
  std::atomic<long> wrong{0};
  std::atomic<long> foreign_errors{0};
};

}  // namespace

TEST_CASE("reliability row 19: four threads sharing one cpu:2 policy, one failing on a random "
          "device every few calls, see only their own results and errors",
          "[reliability][fork_join][concurrency]") {
  host_policy const shared("cpu:2");
  auto const corpus = random_matrix(600, 400, 8, 1);
  auto const a = random_matrix(2000, 1500, 6, 2);
  std::vector<float> x(1500);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(static_cast<int>(i % 7) - 3);
  auto const expected_y = reference_spmv(a, x);
  // The cosine result of a policy no other thread touches, before any sharing starts.
  auto const expected_top = mgpu::cosine_topk(host_policy("cpu:2"), corpus, 5);

  auto const deadline = std::chrono::steady_clock::now() + 5s;
  tally good;
  std::atomic<long> failing_calls{0}, injected{0}, own_errors_seen{0}, failing_wrong{0};

  auto const failing = [&] {
    std::mt19937 gen(42);
    std::uniform_int_distribution<int> device(0, 1);
    std::uniform_int_distribution<int> every(1, 3);
    while (std::chrono::steady_clock::now() < deadline) {
      long const call = failing_calls.fetch_add(1);
      int const bad = every(gen) == 1 ? device(gen) : -1;
      if (bad >= 0) injected.fetch_add(1);
      std::vector<int> ran(2, 0);
      try {
        mgpu::detail::fork_join(shared, [&](auto&, std::size_t d) {
          ran[d] = 1;
          if (static_cast<int>(d) == bad) throw std::runtime_error("injected failure " + std::to_string(call));
        });
        if (bad >= 0) failing_wrong.fetch_add(1);  // its own error went missing
      } catch (std::runtime_error const& e) {
        if (bad >= 0 && e.what() == "injected failure " + std::to_string(call)) {
          own_errors_seen.fetch_add(1);
        } else {
          failing_wrong.fetch_add(1);
        }
      }
      if (ran != std::vector<int>{1, 1}) failing_wrong.fetch_add(1);
    }
  };

  auto const cosine_user = [&] {
    while (std::chrono::steady_clock::now() < deadline) {
      good.calls.fetch_add(1);
      try {
        if (!same(mgpu::cosine_topk(shared, corpus, 5), expected_top)) good.wrong.fetch_add(1);
      } catch (...) {
        good.foreign_errors.fetch_add(1);
      }
    }
  };

  auto const spmv_user = [&] {
    std::vector<float> y(expected_y.size());
    while (std::chrono::steady_clock::now() < deadline) {
      good.calls.fetch_add(1);
      try {
        std::fill(y.begin(), y.end(), -1.0f);
        mgpu::spmv(shared, 1.0f, a, std::span<float const>(x), 0.0f, std::span<float>(y));
        if (y != expected_y) good.wrong.fetch_add(1);
      } catch (...) {
        good.foreign_errors.fetch_add(1);
      }
    }
  };

  auto const fork_join_user = [&] {
    while (std::chrono::steady_clock::now() < deadline) {
      good.calls.fetch_add(1);
      std::vector<int> ran(2, 0);
      try {
        mgpu::detail::fork_join(shared, [&](auto&, std::size_t d) { ran[d] += 1; });
        if (ran != std::vector<int>{1, 1}) good.wrong.fetch_add(1);
      } catch (...) {
        good.foreign_errors.fetch_add(1);
      }
    }
  };

  std::vector<std::thread> threads;
  threads.emplace_back(failing);
  threads.emplace_back(cosine_user);
  threads.emplace_back(spmv_user);
  threads.emplace_back(fork_join_user);
  for (auto& t : threads) t.join();

  INFO("failing thread: " << failing_calls.load() << " calls, " << injected.load()
                          << " with an injected failure; other threads: " << good.calls.load() << " calls");
  CHECK(injected.load() > 0);
  CHECK(own_errors_seen.load() == injected.load());
  CHECK(failing_wrong.load() == 0);
  CHECK(good.calls.load() > 3);
  CHECK(good.wrong.load() == 0);
  CHECK(good.foreign_errors.load() == 0);
}

TEST_CASE("reliability row 20: an algorithm called from inside a task on the same policy "
          "reports invalid_argument within a second",
          "[reliability][fork_join]") {
  host_policy const shared("cpu:2");
  auto const corpus = random_matrix(50, 40, 4, 3);
  auto const started = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(mgpu::detail::fork_join(shared,
                                          [&](auto&, std::size_t) {
                                            static_cast<void>(mgpu::cosine_topk(shared, corpus, 3));
                                          }),
                  mgpu::invalid_argument);
  CHECK(std::chrono::steady_clock::now() - started < 1s);
}
