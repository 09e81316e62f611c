// The transfer counter, the explicit transfers (execution/transfer.hpp) and the collectives
// (execution/collectives.hpp) on host devices cpu:1..4: values written here by hand
// (element (i, j) of the host matrix is 10·i + j), byte counts computed from the shapes.
#include "core_test_support.hpp"

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "mgpu/core/device_set.hpp"
#include "mgpu/execution/transfer.hpp"
#include "mgpu/dense/distributed_dense.hpp"
#include "mgpu/execution/collectives.hpp"
#include "mgpu/execution/policy.hpp"

namespace {

using policy_t = mgpu::execution_policy<mgpu::cpu>;
using dd = mgpu::distributed_dense<mgpu::cpu, float>;
constexpr int host = mgpu::host_endpoint;

policy_t host_policy(int devices) { return policy_t("cpu:" + std::to_string(devices)); }

/// rows x cols, element (i, j) = 10·i + j.
std::vector<float> numbered(std::int64_t rows, std::int64_t cols) {
  std::vector<float> v(static_cast<std::size_t>(rows * cols));
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) v[static_cast<std::size_t>(i * cols + j)] = static_cast<float>(10 * i + j);
  return v;
}

mgpu::dense_view<float const> as_view(std::vector<float> const& v, std::int64_t rows, std::int64_t cols) {
  return {rows, cols, cols, v.data()};
}

std::vector<float> contents(mgpu::dense_matrix<mgpu::cpu, float> const& m) {
  return {m.data(), m.data() + m.rows() * m.cols()};
}

}  // namespace

TEST_CASE("transfer_counter counts bytes per ordered pair, with the host as its own endpoint", "[core][transfers]") {
  mgpu::transfer_counter c(3);
  c.add(host, 0, 40);
  c.add(0, 2, 8);
  c.add(0, 2, 4);
  c.add(2, host, 16);
  CHECK(c.bytes(host, 0) == 40);
  CHECK(c.bytes(0, 2) == 12);
  CHECK(c.bytes(2, 0) == 0);
  CHECK(c.bytes(2, host) == 16);
  CHECK(c.sent(0) == 12);
  CHECK(c.received(0) == 40);
  CHECK(c.total() == 68);
  c.reset();
  CHECK(c.total() == 0);
  CHECK_THROWS_AS(c.bytes(3, 0), mgpu::invalid_argument);
  CHECK_THROWS_AS(c.add(-2, 0, 1), mgpu::invalid_argument);
}

TEST_CASE("transfer_counter adds exactly under concurrent updates", "[core][transfers][concurrency]") {
  mgpu::transfer_counter c(2);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&c] {
      for (int k = 0; k < 10000; ++k) c.add(0, 1, 3);
    });
  }
  for (auto& t : threads) t.join();
  CHECK(c.bytes(0, 1) == 4u * 10000u * 3u);
}

TEST_CASE("a device set's counter starts at zero and is shared by its policies", "[core][transfers]") {
  auto const p = host_policy(2);
  auto const q = p.with_memory_budget(1024);
  CHECK(p.devices().transfers().total() == 0);
  p.devices().transfers().add(0, 1, 5);
  CHECK(q.devices().transfers().bytes(0, 1) == 5);
}

TEST_CASE("broadcast puts the host rows on every device and counts rows*cols*4 bytes per device",
          "[core][collectives]") {
  for (int n = 1; n <= 4; ++n) {
    auto const p = host_policy(n);
    auto const host_rows = numbered(5, 2);
    auto x = dd::replicated(p, 5, 2);
    p.devices().transfers().reset();
    mgpu::broadcast(as_view(host_rows, 5, 2), x);
    for (int d = 0; d < n; ++d) {
      CHECK(contents(x.block(d)) == host_rows);
      CHECK(p.devices().transfers().bytes(host, d) == 40);
    }
    CHECK(p.devices().transfers().total() == 40u * static_cast<unsigned>(n));
  }
}

TEST_CASE("broadcast reads a host matrix through its leading dimension", "[core][collectives]") {
  auto const p = host_policy(2);
  std::vector<float> wide = {1, 2, -1, 3, 4, -1};  // 2 x 2 inside ld = 3
  auto x = dd::replicated(p, 2, 2);
  mgpu::broadcast(mgpu::dense_view<float const>{2, 2, 3, wide.data()}, x);
  CHECK(contents(x.block(1)) == std::vector<float>{1, 2, 3, 4});
  CHECK(p.devices().transfers().bytes(host, 1) == 16);
}

TEST_CASE("scatter and gather move each row block once, empty blocks included", "[core][collectives]") {
  // cpu:3 with bounds {0, 1, 1, 5}: device 1 has no rows.
  auto const p = host_policy(3);
  std::vector<std::int64_t> const bounds = {0, 1, 1, 5};
  auto const host_rows = numbered(5, 2);
  auto y = dd::row_blocks(p, 5, 2, bounds);
  mgpu::scatter(as_view(host_rows, 5, 2), y);
  CHECK(contents(y.block(0)) == std::vector<float>{0, 1});
  CHECK(y.block(1).rows() == 0);
  CHECK(contents(y.block(2)) == std::vector<float>{10, 11, 20, 21, 30, 31, 40, 41});
  auto& t = p.devices().transfers();
  CHECK(t.bytes(host, 0) == 8);
  CHECK(t.bytes(host, 1) == 0);
  CHECK(t.bytes(host, 2) == 32);
  CHECK(t.total() == 40);

  t.reset();
  std::vector<float> back(10, -7.0f);
  mgpu::gather(y, mgpu::dense_view<float>{5, 2, 2, back.data()});
  CHECK(back == host_rows);
  CHECK(t.bytes(0, host) == 8);
  CHECK(t.bytes(2, host) == 32);
  CHECK(t.total() == 40);
}

TEST_CASE("scatter with more devices than rows leaves the extra devices empty", "[core][collectives]") {
  auto const p = host_policy(4);
  auto const bounds = mgpu::even_row_bounds(2, 4);
  CHECK(bounds == std::vector<std::int64_t>{0, 0, 1, 1, 2});
  std::vector<float> const v = {7, 9};
  auto y = dd::row_blocks(p, 2, 1, bounds);
  mgpu::scatter(std::span<float const>(v), y);
  CHECK(y.block(0).rows() == 0);
  CHECK(contents(y.block(1)) == std::vector<float>{7});
  CHECK(y.block(2).rows() == 0);
  CHECK(contents(y.block(3)) == std::vector<float>{9});
  CHECK(p.devices().transfers().total() == 8);
  std::vector<float> back(2, 0.0f);
  mgpu::gather(y, std::span<float>(back));
  CHECK(back == v);
}

TEST_CASE("all_gather sends every block to every other device and copies the local one for free",
          "[core][collectives]") {
  for (int n = 1; n <= 4; ++n) {
    auto const p = host_policy(n);
    auto const bounds = mgpu::even_row_bounds(5, static_cast<std::size_t>(n));
    auto const host_rows = numbered(5, 3);
    auto y = dd::row_blocks(p, 5, 3, bounds);
    mgpu::scatter(as_view(host_rows, 5, 3), y);
    auto x = dd::replicated(p, 5, 3);
    auto& t = p.devices().transfers();
    t.reset();
    mgpu::all_gather(y, x);
    std::uint64_t expected_total = 0;
    for (int d = 0; d < n; ++d) {
      CHECK(contents(x.block(d)) == host_rows);
      for (int e = 0; e < n; ++e) {
        auto const block_bytes = static_cast<std::uint64_t>(bounds[e + 1] - bounds[e]) * 3 * 4;
        CHECK(t.bytes(e, d) == (e == d ? 0 : block_bytes));
        if (e != d) expected_total += block_bytes;
      }
    }
    CHECK(t.total() == expected_total);  // (n - 1) * 60 bytes
    CHECK(t.total() == static_cast<std::uint64_t>(n - 1) * 60);
  }
}

TEST_CASE("reduce_sum adds the partials in device order, to the host or to a root device",
          "[core][collectives]") {
  for (int n = 1; n <= 4; ++n) {
    auto const p = host_policy(n);
    auto parts = dd::replicated(p, 3, 2);
    // device d holds (d + 1) * (10 i + j): the sum is n(n + 1)/2 * (10 i + j).
    for (int d = 0; d < n; ++d) {
      auto& b = parts.block(d);
      for (std::int64_t i = 0; i < 3; ++i)
        for (std::int64_t j = 0; j < 2; ++j) b(i, j) = static_cast<float>((d + 1) * (10 * i + j));
    }
    float const k = static_cast<float>(n * (n + 1) / 2);
    std::vector<float> expected;
    for (float v : numbered(3, 2)) expected.push_back(k * v);
    auto& t = p.devices().transfers();
    t.reset();
    std::vector<float> host_sum(6, 0.0f);
    mgpu::reduce_sum(parts, mgpu::dense_view<float>{3, 2, 2, host_sum.data()});
    CHECK(host_sum == expected);
    for (int d = 0; d < n; ++d) CHECK(t.bytes(d, host) == 24);
    CHECK(t.total() == 24u * static_cast<unsigned>(n));

    t.reset();
    std::size_t const root = static_cast<std::size_t>(n - 1);
    mgpu::reduce_sum(parts, root);
    CHECK(contents(parts.block(root)) == expected);
    if (n > 1) CHECK(contents(parts.block(0)) == numbered(3, 2));  // the others are unchanged
    CHECK(t.total() == 24u * static_cast<unsigned>(n - 1));
    CHECK(t.bytes(static_cast<int>(root), static_cast<int>(root)) == 0);
  }
}

TEST_CASE("collectives reject the wrong distribution, shape or device set", "[core][collectives]") {
  auto const p = host_policy(2);
  auto const q = host_policy(2);
  auto const v = numbered(4, 1);
  auto rep = dd::replicated(p, 4, 1);
  auto blocks = dd::row_blocks(p, 4, 1, mgpu::even_row_bounds(4, 2));
  auto other = dd::replicated(q, 4, 1);
  CHECK_THROWS_AS(mgpu::broadcast(as_view(v, 4, 1), blocks), mgpu::invalid_argument);
  CHECK_THROWS_AS(mgpu::scatter(as_view(v, 4, 1), rep), mgpu::invalid_argument);
  CHECK_THROWS_AS(mgpu::broadcast(as_view(v, 2, 2), rep), mgpu::dimension_mismatch);
  CHECK_THROWS_AS(mgpu::all_gather(blocks, other), mgpu::invalid_argument);
  CHECK_THROWS_AS(mgpu::reduce_sum(rep, std::size_t{2}), mgpu::invalid_argument);
  CHECK_THROWS_AS(dd::row_blocks(p, 4, 1, std::vector<std::int64_t>{0, 3, 2}), mgpu::invalid_argument);
  CHECK_THROWS_AS(dd::row_blocks(p, 4, 1, std::vector<std::int64_t>{0, 4}), mgpu::invalid_argument);
  CHECK(p.devices().transfers().total() == 0);
}

TEST_CASE("upload and download round-trip a CSR matrix, rebasing a block of rows", "[core][transfers]") {
  auto const p = host_policy(2);
  auto& set = p.devices();
  // [[1 0 2], [0 0 0], [0 3 0]]
  mgpu::csr_matrix<mgpu::cpu, float, std::int32_t> a(3, 3, std::vector<std::int32_t>{0, 2, 2, 3},
                                                      std::vector<std::int32_t>{0, 2, 1},
                                                      std::vector<float>{1, 2, 3});
  mgpu::event<mgpu::cpu> up;
  auto on1 = mgpu::upload(set, 1, a.view().row_block(1, 3), set[1].work, up);
  up.synchronize();
  CHECK(on1.rows() == 2);
  CHECK(std::vector<std::int32_t>(on1.row_offsets().begin(), on1.row_offsets().end()) ==
        std::vector<std::int32_t>{0, 0, 1});
  CHECK(on1.col_indices()[0] == 1);
  CHECK(on1.values()[0] == 3.0f);
  // rows + 1 + nnz indices and nnz values: (3 + 1) * 4 + 1 * 4 bytes.
  CHECK(set.transfers().bytes(host, 1) == 20);

  mgpu::event<mgpu::cpu> down;
  auto back = mgpu::download(set, 1, on1, set[1].work, down);
  down.synchronize();
  CHECK(std::vector<float>(back.values().begin(), back.values().end()) == std::vector<float>{3});
  CHECK(set.transfers().bytes(1, host) == 20);

  mgpu::event<mgpu::cpu> moved;
  auto on0 = mgpu::peer_copy(set, 0, 1, on1, set[0].work, moved);
  moved.synchronize();
  CHECK(on0.nnz() == 1);
  CHECK(set.transfers().bytes(1, 0) == 20);
  CHECK(set.transfers().total() == 60);
  CHECK_THROWS_AS(mgpu::upload(set, 2, a.view(), set[0].work, up), mgpu::invalid_argument);
}

TEST_CASE("upload and download round-trip a dense matrix through leading dimensions", "[core][transfers]") {
  auto const p = host_policy(3);
  auto& set = p.devices();
  std::vector<float> wide = {1, 2, 0, 3, 4, 0};  // 2 x 2 inside ld = 3
  mgpu::event<mgpu::cpu> e;
  auto on2 = mgpu::upload(set, 2, mgpu::dense_view<float const>{2, 2, 3, wide.data()}, set[2].work, e);
  e.synchronize();
  CHECK(contents(on2) == std::vector<float>{1, 2, 3, 4});
  std::vector<float> out(6, -1.0f);
  mgpu::download(set, 2, std::as_const(on2).view(), mgpu::dense_view<float>{2, 2, 3, out.data()}, set[2].work, e);
  e.synchronize();
  CHECK(out == std::vector<float>{1, 2, -1, 3, 4, -1});
  auto on0 = mgpu::peer_copy(set, 0, 2, on2, set[0].work, e);
  e.synchronize();
  CHECK(contents(on0) == std::vector<float>{1, 2, 3, 4});
  auto const& t = set.transfers();
  CHECK(t.bytes(host, 2) == 16);
  CHECK(t.bytes(2, host) == 16);
  CHECK(t.bytes(2, 0) == 16);
  CHECK(t.total() == 48);
  CHECK_THROWS_AS(mgpu::download(set, 2, std::as_const(on2).view(), mgpu::dense_view<float>{1, 2, 2, out.data()},
                                 set[2].work, e),
                  mgpu::dimension_mismatch);
}
