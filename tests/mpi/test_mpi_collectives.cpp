// The collectives over ranks x devices against a serial reference, and the bytes they
// count against the plan of mpi/collectives.hpp worked out by hand.
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/execution/collectives.hpp"
#include "mgpu/mpi/collectives.hpp"
#include "mpi_test_support.hpp"

namespace {

using mgpu::mpi::host_of;
using mgpu_mpi_test::element;
using dense = mgpu::mpi::distributed_dense<mgpu::cpu, float>;
using policy_type = mgpu::mpi::distributed_policy<mgpu::cpu>;

/// Row bounds over the global set in which device 0 holds no rows and the others about
/// rows / (G - 1) each (all rows on device 0 when G = 1).
std::vector<std::int64_t> bounds_with_empty_first(std::int64_t rows, std::size_t devices) {
  if (devices == 1) return {0, rows};
  auto rest = mgpu::even_row_bounds(rows, devices - 1);
  std::vector<std::int64_t> b{0};
  b.insert(b.end(), rest.begin(), rest.end());
  return b;
}

/// Writes element(global row, j) into every row block of y this rank holds.
void fill_blocks(dense& y) {
  auto const first = y.policy().first_device();
  for (std::size_t d = 0; d < y.policy().local_device_count(); ++d) {
    auto v = y.local().view(d);
    auto const row0 = y.row_bounds()[first + d];
    for (std::int64_t i = 0; i < v.rows; ++i) {
      for (std::int64_t j = 0; j < v.cols; ++j) v(i, j) = element(row0 + i, j);
    }
  }
}

/// Device g's partial: a large first partial and small later ones, so the order of the
/// additions shows in the rounding. (Every product is exact, so a contraction into a
/// fused multiply-add cannot make two evaluations of the same value differ.)
float partial_value(std::size_t g, std::int64_t i, std::int64_t j) {
  float const base = g == 0 ? 1.0e7f : 0.1875f * static_cast<float>(g + 1);
  return base + static_cast<float>(i * 4 + j) * 0.125f;
}

void fill_partials(dense& p) {
  for (std::size_t d = 0; d < p.policy().local_device_count(); ++d) {
    auto v = p.local().view(d);
    for (std::int64_t i = 0; i < v.rows; ++i) {
      for (std::int64_t j = 0; j < v.cols; ++j) v(i, j) = partial_value(p.policy().first_device() + d, i, j);
    }
  }
}

/// The partials added from left to right in device order, as one process would.
float serial_sum(std::size_t devices, std::int64_t i, std::int64_t j) {
  float s = partial_value(0, i, j);
  for (std::size_t g = 1; g < devices; ++g) s += partial_value(g, i, j);
  return s;
}

bool replicas_equal_elements(dense const& x) {
  bool same = true;
  for (std::size_t d = 0; d < x.policy().local_device_count(); ++d) {
    auto const v = x.local().view(d);
    for (std::int64_t i = 0; i < v.rows; ++i) {
      for (std::int64_t j = 0; j < v.cols; ++j) same = same && v(i, j) == element(i, j);
    }
  }
  return same;
}

}  // namespace

TEST_CASE("mpi collectives: broadcast, scatter, gather and all_gather equal the host rows", "[mpi]") {
  for (auto const& config : mgpu_mpi_test::device_configs()) {
    INFO("local devices: " << config);
    policy_type policy(mgpu_mpi_test::local_devices(config, mgpu_mpi_test::world_rank()));
    auto const rank = policy.rank();
    auto const ranks = policy.ranks();
    auto const devices = policy.device_count();
    std::int64_t const rows = 3 * static_cast<std::int64_t>(devices) + 2;
    std::int64_t const cols = 3;
    auto const bounds = bounds_with_empty_first(rows, devices);

    // Host rows with a leading dimension larger than the row, on the root only.
    mgpu::dense_matrix<mgpu::cpu, float> host(rows, cols + 2, -7.0f);
    for (std::int64_t i = 0; i < rows; ++i) {
      for (std::int64_t j = 0; j < cols; ++j) host(i, j) = element(i, j);
    }
    mgpu::dense_view<float const> const strided{rows, cols, cols + 2, host.data()};

    int const last = ranks - 1;
    auto x = dense::replicated(policy, rows, cols);
    mgpu::mpi::broadcast(rank == last ? strided : mgpu::dense_view<float const>{}, x, last);
    CHECK(replicas_equal_elements(x));

    auto y = dense::row_blocks(policy, rows, cols, bounds);
    mgpu::mpi::scatter(rank == 0 ? strided : mgpu::dense_view<float const>{}, y, 0);
    bool scattered = true;
    for (std::size_t d = 0; d < policy.local_device_count(); ++d) {
      auto const v = y.local().view(d);
      auto const row0 = bounds[policy.first_device() + d];
      CHECK(v.rows == bounds[policy.first_device() + d + 1] - row0);
      for (std::int64_t i = 0; i < v.rows; ++i) {
        for (std::int64_t j = 0; j < cols; ++j) scattered = scattered && v(i, j) == element(row0 + i, j);
      }
    }
    CHECK(scattered);

    auto z = dense::row_blocks(policy, rows, cols, bounds);
    fill_blocks(z);
    mgpu::dense_matrix<mgpu::cpu, float> out(rows, cols + 1, -7.0f);
    mgpu::mpi::gather(z, mgpu::dense_view<float>{rows, cols, cols + 1, out.data()}, last);
    if (rank == last) {
      bool gathered = true;
      for (std::int64_t i = 0; i < rows; ++i) {
        for (std::int64_t j = 0; j < cols; ++j) gathered = gathered && out(i, j) == element(i, j);
        gathered = gathered && out(i, cols) == -7.0f;  // the gap of the leading dimension is untouched
      }
      CHECK(gathered);
    }

    auto all = dense::replicated(policy, rows, cols);
    mgpu::mpi::all_gather(z, all);
    CHECK(replicas_equal_elements(all));
  }
}

TEST_CASE("mpi collectives: vectors through the span overloads", "[mpi]") {
  policy_type policy(mgpu_mpi_test::local_devices("mixed", mgpu_mpi_test::world_rank()));
  std::int64_t const n = 11;
  std::vector<float> host(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) host[static_cast<std::size_t>(i)] = element(i, 0);
  auto y = dense::row_blocks(policy, n, 1, mgpu::even_row_bounds(n, policy.device_count()));
  mgpu::mpi::scatter(host, y);
  std::vector<float> back(static_cast<std::size_t>(n), 0.0f);
  mgpu::mpi::gather(y, std::span<float>(back));
  if (policy.rank() == 0) CHECK(back == host);
}

TEST_CASE("mpi collectives: reduce_sum adds in global device order, as one process does", "[mpi]") {
  for (auto const& config : mgpu_mpi_test::device_configs()) {
    INFO("local devices: " << config);
    policy_type policy(mgpu_mpi_test::local_devices(config, mgpu_mpi_test::world_rank()));
    auto const rank = policy.rank();
    auto const last = policy.ranks() - 1;
    auto const devices = policy.device_count();
    std::int64_t const rows = 5;
    std::int64_t const cols = 4;
    auto p = dense::replicated(policy, rows, cols);
    fill_partials(p);

    // The single-process collective over as many devices, same partials.
    mgpu::execution_policy<mgpu::cpu> one("cpu:" + std::to_string(devices));
    auto q = mgpu::distributed_dense<mgpu::cpu, float>::replicated(one, rows, cols);
    for (std::size_t g = 0; g < devices; ++g) {
      for (std::int64_t i = 0; i < rows; ++i) {
        for (std::int64_t j = 0; j < cols; ++j) q.view(g)(i, j) = partial_value(g, i, j);
      }
    }
    mgpu::dense_matrix<mgpu::cpu, float> single(rows, cols);
    mgpu::reduce_sum(q, single.view());

    for (int root : {0, last}) {
      mgpu::dense_matrix<mgpu::cpu, float> sum(rows, cols, -1.0f);
      mgpu::mpi::reduce_sum(p, sum.view(), root);
      if (rank != root) continue;
      bool serial = true;
      bool as_single = true;
      for (std::int64_t i = 0; i < rows; ++i) {
        for (std::int64_t j = 0; j < cols; ++j) {
          serial = serial && sum(i, j) == serial_sum(devices, i, j);
          as_single = as_single && sum(i, j) == single(i, j);
        }
      }
      CHECK(serial);
      CHECK(as_single);
    }

    for (std::size_t target : {devices - 1, std::size_t{0}}) {
      fill_partials(p);
      mgpu::mpi::reduce_sum(p, target);
      bool right = true;
      for (std::size_t d = 0; d < policy.local_device_count(); ++d) {
        auto const g = policy.first_device() + d;
        auto const v = p.local().view(d);
        for (std::int64_t i = 0; i < rows; ++i) {
          for (std::int64_t j = 0; j < cols; ++j) {
            right = right && v(i, j) == (g == target ? serial_sum(devices, i, j) : partial_value(g, i, j));
          }
        }
      }
      CHECK(right);
    }
  }
}

TEST_CASE("mpi collectives: empty matrices move nothing", "[mpi]") {
  policy_type policy("cpu:2");
  auto x = dense::replicated(policy, 0, 3);
  auto y = dense::row_blocks(policy, 0, 3, std::vector<std::int64_t>(policy.device_count() + 1, 0));
  policy.transfers().reset();
  mgpu::mpi::broadcast(mgpu::dense_view<float const>{0, 3, 3, nullptr}, x);
  mgpu::mpi::all_gather(y, x);
  mgpu::mpi::gather(y, mgpu::dense_view<float>{0, 3, 3, nullptr});
  CHECK(mgpu::mpi::sum_transfers(policy).total() == 0);
}

namespace {

using pair_map = mgpu::mpi::transfer_counts::pair_map;

/// The bytes each collective moves, by the rules of mpi/collectives.hpp's comment.
pair_map expected_broadcast(policy_type const& p, int root, std::uint64_t b) {
  pair_map m;
  for (std::size_t g = 0; g < p.device_count(); ++g) {
    int const r = p.rank_of(g);
    auto const first = static_cast<int>(p.first_device(r));
    if (r == root || static_cast<int>(g) == first) {
      m[{host_of(root), static_cast<int>(g)}] += b;
    } else {
      m[{first, static_cast<int>(g)}] += b;
    }
  }
  return m;
}

pair_map expected_all_gather(policy_type const& p, std::vector<std::int64_t> const& bounds, std::int64_t cols) {
  pair_map m;
  auto const rows = bounds.back();
  auto const bytes = [&](std::int64_t n) { return static_cast<std::uint64_t>(n * cols) * sizeof(float); };
  for (int r = 0; r < p.ranks(); ++r) {
    auto const f = p.first_device(r);
    for (std::size_t g = f + 1; g < p.first_device(r + 1); ++g) {
      auto const own = bounds[g + 1] - bounds[g];
      if (own > 0) m[{static_cast<int>(g), static_cast<int>(f)}] += bytes(own);
      if (rows - own > 0) m[{static_cast<int>(f), static_cast<int>(g)}] += bytes(rows - own);
    }
    for (int s = 0; s < p.ranks(); ++s) {
      auto const theirs = bounds[p.first_device(s + 1)] - bounds[p.first_device(s)];
      if (s != r && theirs > 0) m[{static_cast<int>(p.first_device(s)), static_cast<int>(f)}] += bytes(theirs);
    }
  }
  return m;
}

}  // namespace

TEST_CASE("mpi collectives: the bytes counted, per endpoint pair, as worked out by hand", "[mpi]") {
  policy_type policy(mgpu_mpi_test::local_devices("mixed", mgpu_mpi_test::world_rank()));
  auto const ranks = policy.ranks();
  auto const devices = policy.device_count();
  auto const last = ranks - 1;
  std::int64_t const rows = 10;
  std::int64_t const cols = 3;
  std::uint64_t const b = rows * cols * sizeof(float);  // 120 bytes
  auto const bounds = bounds_with_empty_first(rows, devices);
  mgpu::dense_matrix<mgpu::cpu, float> host(rows, cols, 1.0f);

  auto x = dense::replicated(policy, rows, cols);
  policy.transfers().reset();
  mgpu::mpi::broadcast(host, x, last);
  auto counts = mgpu::mpi::sum_transfers(policy);
  CHECK(counts.pairs() == expected_broadcast(policy, last, b));
  CHECK(counts.total() == devices * b);
  CHECK(counts.network() == static_cast<std::uint64_t>(ranks - 1) * b);

  auto y = dense::row_blocks(policy, rows, cols, bounds);
  policy.transfers().reset();
  mgpu::mpi::scatter(host, y, 0);
  counts = mgpu::mpi::sum_transfers(policy);
  pair_map scatter_map;
  pair_map gather_map;
  for (std::size_t g = 0; g < devices; ++g) {
    auto const n = static_cast<std::uint64_t>(bounds[g + 1] - bounds[g]) * cols * sizeof(float);
    if (n == 0) continue;
    scatter_map[{host_of(0), static_cast<int>(g)}] = n;
    gather_map[{static_cast<int>(g), host_of(last)}] = n;
  }
  CHECK(counts.pairs() == scatter_map);
  CHECK(counts.total() == b);
  auto const rank0_rows = static_cast<std::uint64_t>(bounds[policy.first_device(1)]);
  CHECK(counts.network() == (static_cast<std::uint64_t>(rows) - rank0_rows) * cols * sizeof(float));

  policy.transfers().reset();
  mgpu::dense_matrix<mgpu::cpu, float> out(rows, cols);
  mgpu::mpi::gather(y, out.view(), last);
  CHECK(mgpu::mpi::sum_transfers(policy).pairs() == gather_map);

  policy.transfers().reset();
  mgpu::mpi::all_gather(y, x);
  counts = mgpu::mpi::sum_transfers(policy);
  CHECK(counts.pairs() == expected_all_gather(policy, bounds, cols));
  CHECK(counts.total() == (devices - 1) * b);  // as one process with as many devices
  CHECK(counts.network() == static_cast<std::uint64_t>(ranks - 1) * b);

  for (int root : {0, last}) {
    policy.transfers().reset();
    mgpu::dense_matrix<mgpu::cpu, float> sum(rows, cols);
    mgpu::mpi::reduce_sum(x, sum.view(), root);
    pair_map m;
    for (std::size_t g = 0; g < devices; ++g) m[{static_cast<int>(g), host_of(policy.rank_of(g))}] = b;
    for (int r = 0; r + 1 < ranks; ++r) m[{host_of(r), host_of(r + 1)}] = b;
    if (root != last) m[{host_of(last), host_of(root)}] += b;
    counts = mgpu::mpi::sum_transfers(policy);
    CHECK(counts.pairs() == m);
    CHECK(counts.network() == static_cast<std::uint64_t>(ranks - 1 + (root != last ? 1 : 0)) * b);
  }
}
