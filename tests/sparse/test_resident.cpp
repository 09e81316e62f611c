// Products on resident data: distributed_csr with `resident` blocks times distributed_dense
// operands, on host devices cpu:1..4. Expected values: dense products computed here in
// double (integer data, so exact in float) and the one-shot spmv / spmm; moved bytes
// computed from the shapes.
#include "sparse_test_support.hpp"

#include <cstdint>
#include <cstring>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "mgpu/dense/distributed_dense.hpp"
#include "mgpu/execution/collectives.hpp"
#include "mgpu/execution/policy.hpp"
#include "mgpu/sparse/distributed_csr.hpp"
#include "mgpu/sparse/spmm.hpp"
#include "mgpu/sparse/spmv.hpp"

namespace {

using policy_t = mgpu::execution_policy<mgpu::cpu>;
using dd = mgpu::distributed_dense<mgpu::cpu, float>;
using matrix = mgpu::csr_matrix<mgpu::cpu, float, std::int32_t>;
constexpr int host = mgpu::host_endpoint;

policy_t host_policy(int devices) { return policy_t("cpu:" + std::to_string(devices)); }

matrix csr_from(mgpu_test::dense const& d) {
  auto const arrays = mgpu_test::csr_of<float, std::int32_t>(d);
  return matrix(d.rows, d.cols, arrays.row_offsets, arrays.col_indices, arrays.values);
}

std::vector<float> small_integers(std::mt19937& rng, std::size_t n) {
  std::uniform_int_distribution<int> value(-4, 4);
  std::vector<float> v(n);
  for (auto& e : v) e = static_cast<float>(value(rng));
  return v;
}

std::vector<float> dense_product(mgpu_test::dense const& a, std::vector<float> const& x) {
  std::vector<float> y(static_cast<std::size_t>(a.rows));
  for (std::int64_t i = 0; i < a.rows; ++i) {
    double s = 0;
    for (std::int64_t j = 0; j < a.cols; ++j) s += a(i, j) * x[static_cast<std::size_t>(j)];
    y[static_cast<std::size_t>(i)] = static_cast<float>(s);
  }
  return y;
}

bool bitwise_equal(std::vector<float> const& a, std::vector<float> const& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

mgpu::distributed_csr_options resident_csr() {
  mgpu::distributed_csr_options o;
  o.layout = mgpu::spmv_layout::csr;
  o.resident = true;
  return o;
}

}  // namespace

TEST_CASE("Done-when: 50 resident SpMV products on cpu:3 copy x in once and y out once",
          "[sparse][resident][transfers]") {
  std::mt19937 rng(14);
  auto const d = mgpu_test::random_dense(rng, 40, 30, 0.2);
  auto const a = csr_from(d);
  auto const x_host = small_integers(rng, 30);
  auto const p = host_policy(3);
  mgpu::distributed_csr<mgpu::cpu, float, std::int32_t> da(p, a.view(), resident_csr());
  auto x = dd::replicated(p, 30, 1);
  auto y = dd::row_blocks(p, 40, 1, da.row_bounds());
  auto& t = p.devices().transfers();
  t.reset();
  mgpu::broadcast(std::span<float const>(x_host), x);
  for (int k = 0; k < 50; ++k) da.spmv(1.0f, x, 0.0f, y);
  std::vector<float> y_host(40, -1.0f);
  mgpu::gather(y, std::span<float>(y_host));

  // x: 30 floats = 120 bytes to each device; y: 40 floats = 160 bytes to the host in total.
  for (int dev = 0; dev < 3; ++dev) {
    CHECK(t.bytes(host, dev) == 120);
    auto const rows = da.row_bounds()[dev + 1] - da.row_bounds()[dev];
    CHECK(t.bytes(dev, host) == static_cast<std::uint64_t>(rows) * 4);
    for (int other = 0; other < 3; ++other) CHECK(t.bytes(dev, other) == 0);
  }
  CHECK(t.received(host) == 160);
  CHECK(t.total() == 3 * 120 + 160);

  CHECK(y_host == dense_product(d, x_host));
  std::vector<float> one_shot(40, 0.0f);
  mgpu::spmv(host_policy(1), 1.0f, a, std::span<float const>(x_host), 0.0f, std::span<float>(one_shot));
  CHECK(bitwise_equal(y_host, one_shot));
  std::vector<float> one_shot3(40, 0.0f);
  mgpu::spmv(p, 1.0f, a, std::span<float const>(x_host), 0.0f, std::span<float>(one_shot3));
  CHECK(bitwise_equal(y_host, one_shot3));
}

TEST_CASE("the one-shot spmv reads x and writes y in place on host devices: nothing is counted",
          "[sparse][resident][transfers]") {
  std::mt19937 rng(3);
  auto const a = csr_from(mgpu_test::random_dense(rng, 12, 9, 0.3));
  auto const x = small_integers(rng, 9);
  std::vector<float> y(12);
  auto const p = host_policy(3);
  mgpu::spmv(p, 1.0f, a, std::span<float const>(x), 0.0f, std::span<float>(y));
  CHECK(p.devices().transfers().total() == 0);
}

TEST_CASE("resident products give the same bits on cpu:1..4 and with beta", "[sparse][resident]") {
  std::mt19937 rng(7);
  auto const a = csr_from(mgpu_test::random_dense(rng, 57, 41, 0.25));
  // Non-integer values: rounding would show any change of summation order.
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  std::vector<float> x_host(41);
  for (auto& v : x_host) v = value(rng);
  std::vector<float> y0(57);
  for (auto& v : y0) v = value(rng);
  std::optional<std::vector<float>> first;
  for (int n = 1; n <= 4; ++n) {
    auto const p = host_policy(n);
    mgpu::distributed_csr<mgpu::cpu, float, std::int32_t> da(p, a.view(), resident_csr());
    auto x = dd::replicated(p, 41, 1);
    auto y = dd::row_blocks(p, 57, 1, da.row_bounds());
    mgpu::broadcast(std::span<float const>(x_host), x);
    mgpu::scatter(std::span<float const>(y0), y);
    da.spmv(0.5f, x, 2.0f, y);
    std::vector<float> out(57);
    mgpu::gather(y, std::span<float>(out));
    std::vector<float> reference(y0);
    mgpu::spmv(p, 0.5f, a, std::span<float const>(x_host), 2.0f, std::span<float>(reference));
    CHECK(bitwise_equal(out, reference));
    if (!first) first = out;
    CHECK(bitwise_equal(out, *first));
  }
}

TEST_CASE("resident blocks are copies: the matrix given may be destroyed", "[sparse][resident]") {
  std::mt19937 rng(5);
  auto const d = mgpu_test::random_dense(rng, 20, 10, 0.3);
  auto const x_host = small_integers(rng, 10);
  auto const p = host_policy(2);
  std::optional<matrix> a(csr_from(d));
  mgpu::distributed_csr<mgpu::cpu, float, std::int32_t> da(p, a->view(), resident_csr());
  auto const* caller_values = a->values().data();
  a.reset();
  for (std::size_t dev = 0; dev < 2; ++dev) {
    REQUIRE(da.shard(dev).has_value());
    CHECK(da.shard(dev)->owned.has_value());
    CHECK(da.shard(dev)->rows.values != caller_values);
    CHECK(da.shard(dev)->rows.row_offsets[0] == 0);
  }
  auto x = dd::replicated(p, 10, 1);
  auto y = dd::row_blocks(p, 20, 1, da.row_bounds());
  mgpu::broadcast(std::span<float const>(x_host), x);
  da.spmv(1.0f, x, 0.0f, y);
  std::vector<float> out(20);
  mgpu::gather(y, std::span<float>(out));
  CHECK(out == dense_product(d, x_host));
}

TEST_CASE("resident spmv with more devices than rows leaves the extra devices idle", "[sparse][resident]") {
  // [[2 0 1], [0 3 0]] times x = (1, 2, 3): y = (5, 6).
  matrix a(2, 3, std::vector<std::int32_t>{0, 2, 3}, std::vector<std::int32_t>{0, 2, 1},
           std::vector<float>{2, 1, 3});
  auto const p = host_policy(4);
  mgpu::distributed_csr<mgpu::cpu, float, std::int32_t> da(p, a.view(), resident_csr());
  auto x = dd::replicated(p, 3, 1);
  auto y = dd::row_blocks(p, 2, 1, da.row_bounds());
  std::vector<float> const xs = {1, 2, 3};
  mgpu::broadcast(std::span<float const>(xs), x);
  da.spmv(1.0f, x, 0.0f, y);
  std::vector<float> out(2);
  mgpu::gather(y, std::span<float>(out));
  CHECK(out == std::vector<float>{5, 6});
}

TEST_CASE("resident spmm equals the dense product and the host-array spmm bitwise", "[sparse][resident]") {
  std::mt19937 rng(11);
  auto const d = mgpu_test::random_dense(rng, 25, 16, 0.3);
  auto const a = csr_from(d);
  std::int64_t const n = 3;
  auto const b_host = small_integers(rng, 16 * n);
  for (int devices = 1; devices <= 4; ++devices) {
    auto const p = host_policy(devices);
    mgpu::distributed_csr<mgpu::cpu, float, std::int32_t> da(p, a.view(), resident_csr());
    auto b = dd::replicated(p, 16, n);
    auto c = dd::row_blocks(p, 25, n, da.row_bounds());
    mgpu::broadcast(mgpu::dense_view<float const>{16, n, n, b_host.data()}, b);
    auto& t = p.devices().transfers();
    t.reset();
    da.spmm(1.0f, b, 0.0f, c);
    CHECK(t.total() == 0);
    std::vector<float> out(static_cast<std::size_t>(25 * n));
    mgpu::gather(c, mgpu::dense_view<float>{25, n, n, out.data()});
    for (std::int64_t i = 0; i < 25; ++i) {
      for (std::int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (std::int64_t k = 0; k < 16; ++k) s += d(i, k) * b_host[static_cast<std::size_t>(k * n + j)];
        CHECK(out[static_cast<std::size_t>(i * n + j)] == static_cast<float>(s));
      }
    }
    std::vector<float> reference(out.size());
    mgpu::spmm(p, 1.0f, a, mgpu::dense_view<float const>{16, n, n, b_host.data()}, 0.0f,
               mgpu::dense_view<float>{25, n, n, reference.data()});
    CHECK(bitwise_equal(out, reference));
  }
}

TEST_CASE("resident products reject operands of the wrong distribution, shape or set", "[sparse][resident]") {
  matrix a(2, 3, std::vector<std::int32_t>{0, 2, 3}, std::vector<std::int32_t>{0, 2, 1},
           std::vector<float>{2, 1, 3});
  auto const p = host_policy(2);
  auto const q = host_policy(2);
  mgpu::distributed_csr<mgpu::cpu, float, std::int32_t> da(p, a.view(), resident_csr());
  auto x = dd::replicated(p, 3, 1);
  auto y = dd::row_blocks(p, 2, 1, da.row_bounds());
  auto x_blocks = dd::row_blocks(p, 3, 1, mgpu::even_row_bounds(3, 2));
  auto x_other = dd::replicated(q, 3, 1);
  auto x_short = dd::replicated(p, 2, 1);
  auto y_rep = dd::replicated(p, 2, 1);
  std::vector<std::int64_t> shifted = {0, 2, 2};
  if (da.row_bounds()[1] == 2) shifted = {0, 0, 2};
  auto y_shifted = dd::row_blocks(p, 2, 1, shifted);
  CHECK_THROWS_AS(da.spmv(1.0f, x_blocks, 0.0f, y), mgpu::invalid_argument);
  CHECK_THROWS_AS(da.spmv(1.0f, x_other, 0.0f, y), mgpu::invalid_argument);
  CHECK_THROWS_AS(da.spmv(1.0f, x_short, 0.0f, y), mgpu::dimension_mismatch);
  CHECK_THROWS_AS(da.spmv(1.0f, x, 0.0f, y_rep), mgpu::invalid_argument);
  CHECK_THROWS_AS(da.spmv(1.0f, x, 0.0f, y_shifted), mgpu::invalid_argument);
}
