// SpMV and SpMM with row blocks over ranks x devices equal the single-process products
// bitwise (same explicit layout), including ranks that hold no rows.
#include <catch2/catch.hpp>

#include <mpi.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "mgpu/mpi/collectives.hpp"
#include "mgpu/mpi/distributed_csr.hpp"
#include "mgpu/sparse/distributed_csr.hpp"
#include "mpi_test_support.hpp"

namespace {

using mgpu_mpi_test::world_rank;
using csr = mgpu::csr_matrix<mgpu::cpu, float, int>;
using dist_csr = mgpu::mpi::distributed_csr<mgpu::cpu, float, int>;
using dense = mgpu::mpi::distributed_dense<mgpu::cpu, float>;
using policy_type = mgpu::mpi::distributed_policy<mgpu::cpu>;

std::vector<float> test_vector(std::size_t n, float scale) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = scale * static_cast<float>((i * 37) % 101) / 101.0f - 0.3f;
  return v;
}

/// The single-process product on one host device with the given layout.
std::vector<float> single_spmv(csr const& a, mgpu::spmv_layout layout, float alpha, std::vector<float> const& x,
                               float beta, std::vector<float> y) {
  mgpu::execution_policy<mgpu::cpu> one("cpu");
  mgpu::distributed_csr<mgpu::cpu, float, int> m(one, a.view(), {.layout = layout});
  m.spmv(alpha, std::span<float const>(x), beta, std::span<float>(y));
  return y;
}

/// alpha·A·x + beta·y in double, from the CSR arrays.
std::vector<double> dense_reference(csr const& a, float alpha, std::vector<float> const& x, float beta,
                                    std::vector<float> const& y) {
  std::vector<double> out(static_cast<std::size_t>(a.rows()));
  auto const v = a.view();
  for (int r = 0; r < a.rows(); ++r) {
    double s = 0.0;
    for (int k = v.row_offsets[r]; k < v.row_offsets[r + 1]; ++k) {
      s += static_cast<double>(v.values[k]) * static_cast<double>(x[static_cast<std::size_t>(v.col_indices[k])]);
    }
    out[static_cast<std::size_t>(r)] = alpha * s + beta * static_cast<double>(y[static_cast<std::size_t>(r)]);
  }
  return out;
}

char const* name_of(mgpu::spmv_layout layout) {
  switch (layout) {
    case mgpu::spmv_layout::csr: return "csr";
    case mgpu::spmv_layout::sell: return "sell";
    case mgpu::spmv_layout::tiled: return "tiled";
    default: return "automatic";
  }
}

}  // namespace

TEST_CASE("mpi spmv: host arrays, every rank its own rows, equal the single-process product bitwise", "[mpi]") {
  int const rank = world_rank();
  int const ranks = mgpu_mpi_test::world_size();
  auto const a = mgpu_mpi_test::random_csr(301, 257, 0.03, 7);
  auto const split = mgpu_mpi_test::uneven_split(301, ranks);  // rank 1 holds no rows
  auto const x = test_vector(257, 1.0f);
  auto const y0 = test_vector(301, 0.5f);
  float const alpha = 1.5f;
  float const beta = -0.5f;
  auto const exact = dense_reference(a, alpha, x, beta, y0);
  for (auto layout : {mgpu::spmv_layout::csr, mgpu::spmv_layout::sell, mgpu::spmv_layout::tiled}) {
    auto const reference = single_spmv(a, layout, alpha, x, beta, y0);
    bool close = true;
    for (std::size_t i = 0; i < reference.size(); ++i) close = close && std::abs(reference[i] - exact[i]) <= 1e-4;
    CHECK(close);  // the single-process product itself is right
    for (auto const& config : mgpu_mpi_test::device_configs()) {
      INFO("layout " << name_of(layout) << ", local devices " << config);
      policy_type policy(mgpu_mpi_test::local_devices(config, rank));
      auto const first = split[static_cast<std::size_t>(rank)];
      auto const last = split[static_cast<std::size_t>(rank) + 1];
      dist_csr m(policy, a.view().row_block(first, last), {.layout = layout});
      CHECK(m.rows() == 301);
      CHECK(m.cols() == 257);
      CHECK(m.nnz() == a.nnz());
      CHECK(m.first_row() == first);
      CHECK(m.local_rows() == last - first);
      CHECK(m.row_bounds().front() == 0);
      CHECK(m.row_bounds().back() == 301);
      CHECK(m.row_bounds()[policy.first_device()] == first);
      std::vector<float> y(y0.begin() + first, y0.begin() + last);
      m.spmv(alpha, std::span<float const>(x), beta, std::span<float>(y));
      CHECK(y == std::vector<float>(reference.begin() + first, reference.begin() + last));
    }
  }
}

TEST_CASE("mpi spmv: resident products with all_gather between them equal the single-process iteration", "[mpi]") {
  int const rank = world_rank();
  int const ranks = mgpu_mpi_test::world_size();
  int const n = 400;
  int const steps = 5;
  auto const a = mgpu_mpi_test::random_csr(n, n, 0.02, 11);
  auto const x0 = test_vector(static_cast<std::size_t>(n), 1.0f);
  std::vector<float> reference = x0;
  for (int k = 0; k < steps; ++k) reference = single_spmv(a, mgpu::spmv_layout::sell, 0.25f, reference, 0.0f, reference);
  auto const split = mgpu_mpi_test::uneven_split(n, ranks);
  for (auto const& config : mgpu_mpi_test::device_configs()) {
    INFO("local devices " << config);
    policy_type policy(mgpu_mpi_test::local_devices(config, rank));
    auto const first = split[static_cast<std::size_t>(rank)];
    dist_csr m(policy, a.view().row_block(first, split[static_cast<std::size_t>(rank) + 1]),
               {.layout = mgpu::spmv_layout::sell, .resident = true});
    auto x = dense::replicated(policy, n, 1);
    auto y = dense::row_blocks(policy, n, 1, m.row_bounds());
    mgpu::mpi::broadcast(std::span<float const>(x0), x);

    policy.transfers().reset();
    m.spmv(0.25f, x, 0.0f, y);
    CHECK(mgpu::mpi::sum_transfers(policy).total() == 0);  // a resident product moves nothing
    mgpu::mpi::all_gather(y, x);
    for (int k = 1; k < steps; ++k) {
      m.spmv(0.25f, x, 0.0f, y);
      mgpu::mpi::all_gather(y, x);
    }
    auto const counts = mgpu::mpi::sum_transfers(policy);
    // Per all_gather, every rank receives the rows the others hold: (ranks - 1)·n floats.
    CHECK(counts.network() == static_cast<std::uint64_t>(steps) * static_cast<std::uint64_t>(ranks - 1) * n * sizeof(float));
    CHECK(counts.total() ==
          static_cast<std::uint64_t>(steps) * (policy.device_count() - 1) * static_cast<std::uint64_t>(n) * sizeof(float));

    std::vector<float> result(static_cast<std::size_t>(n), 0.0f);
    mgpu::mpi::gather(y, std::span<float>(result), 0);
    if (rank == 0) CHECK(result == reference);
    bool replicas = true;
    for (std::size_t d = 0; d < policy.local_device_count(); ++d) {
      auto const v = x.local().view(d);
      for (int i = 0; i < n; ++i) replicas = replicas && v(i, 0) == reference[static_cast<std::size_t>(i)];
    }
    CHECK(replicas);
  }
}

TEST_CASE("mpi spmm: resident and host products equal the single-process spmm bitwise", "[mpi]") {
  int const rank = world_rank();
  int const ranks = mgpu_mpi_test::world_size();
  auto const a = mgpu_mpi_test::random_csr(301, 257, 0.03, 5);
  std::int64_t const k = 3;
  auto const b_values = test_vector(257 * 3, 2.0f);
  auto const c0 = test_vector(301 * 3, 1.0f);
  mgpu::dense_matrix<mgpu::cpu, float> const b(257, k, b_values);
  mgpu::dense_matrix<mgpu::cpu, float> reference(301, k, c0);
  {
    mgpu::execution_policy<mgpu::cpu> one("cpu");
    mgpu::distributed_csr<mgpu::cpu, float, int> m(one, a.view());
    m.spmm(0.5f, b.view(), 2.0f, reference.view());
  }
  auto const split = mgpu_mpi_test::uneven_split(301, ranks);
  auto const first = split[static_cast<std::size_t>(rank)];
  auto const rows = split[static_cast<std::size_t>(rank) + 1] - first;
  for (auto const& config : mgpu_mpi_test::device_configs()) {
    INFO("local devices " << config);
    policy_type policy(mgpu_mpi_test::local_devices(config, rank));
    dist_csr m(policy, a.view().row_block(first, first + rows));

    mgpu::dense_matrix<mgpu::cpu, float> c(rows, k,
                                           std::vector<float>(c0.begin() + first * k, c0.begin() + (first + rows) * k));
    m.spmm(0.5f, b.view(), 2.0f, c.view());
    bool host_same = true;
    for (int i = 0; i < rows; ++i) {
      for (std::int64_t j = 0; j < k; ++j) host_same = host_same && c(i, j) == reference(first + i, j);
    }
    CHECK(host_same);

    auto bb = dense::replicated(policy, 257, k);
    auto cc = dense::row_blocks(policy, 301, k, m.row_bounds());
    mgpu::mpi::broadcast(b, bb);
    mgpu::dense_matrix<mgpu::cpu, float> const c_all(301, k, c0);
    mgpu::mpi::scatter(c_all, cc);
    m.spmm(0.5f, bb, 2.0f, cc);
    mgpu::dense_matrix<mgpu::cpu, float> out(301, k);
    mgpu::mpi::gather(cc, out.view());
    if (rank == 0) {
      bool same = true;
      for (int i = 0; i < 301; ++i) {
        for (std::int64_t j = 0; j < k; ++j) same = same && out(i, j) == reference(i, j);
      }
      CHECK(same);
    }
  }
}

TEST_CASE("mpi spmv: from_whole keeps each rank's nnz-balanced share of the global split", "[mpi]") {
  int const rank = world_rank();
  auto const a = mgpu_mpi_test::random_csr(203, 190, 0.05, 3);
  auto const x = test_vector(190, 1.0f);
  auto const reference = single_spmv(a, mgpu::spmv_layout::csr, 1.0f, x, 0.0f, std::vector<float>(203, 0.0f));
  policy_type policy(mgpu_mpi_test::local_devices("mixed", rank));
  auto m = dist_csr::from_whole(policy, a.view(), {.layout = mgpu::spmv_layout::csr});
  auto const global = mgpu::partition_rows_by_nnz(a.view(), policy.device_count());
  CHECK(m.first_row() == global[policy.first_device()]);
  CHECK(m.first_row() + m.local_rows() == global[policy.first_device() + policy.local_device_count()]);
  std::vector<float> y(static_cast<std::size_t>(m.local_rows()), -1.0f);
  m.spmv(1.0f, std::span<float const>(x), 0.0f, std::span<float>(y));
  CHECK(y == std::vector<float>(reference.begin() + m.first_row(), reference.begin() + m.first_row() + m.local_rows()));
}
