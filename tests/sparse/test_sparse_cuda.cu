// GPU sparse core: spmv, spmm, spgemm and distributed_csr on "cuda" policies compared
// with dense products computed here (the host backend is tested the same way in
// test_sparse_products.cpp). Runs only where a CUDA device is visible; reports Skipped
// otherwise (tests/cuda/test_cuda_main.cpp).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include <mgpu/cuda.hpp>
#include <mgpu/backend/cuda/sparse_csr.hpp>
#include <mgpu/sparse/spgemm.hpp>
#include <mgpu/sparse/spmm.hpp>
#include <mgpu/sparse/spmv.hpp>

namespace {

template <class T, class I>
struct random_matrix {
  std::int64_t rows;
  std::int64_t cols;
  std::vector<double> dense;  // row-major
  mgpu::csr_matrix<mgpu::cpu, T, I> csr;
};

/// Small integer values, so that every result below is exact in float.
template <class T, class I>
random_matrix<T, I> make(std::mt19937& rng, std::int64_t rows, std::int64_t cols, double density) {
  std::bernoulli_distribution present(density);
  std::uniform_int_distribution<int> value(1, 4);
  std::vector<double> d(static_cast<std::size_t>(rows * cols), 0.0);
  std::vector<I> offsets{0};
  std::vector<I> columns;
  std::vector<T> values;
  for (std::int64_t i = 0; i < rows; ++i) {
    for (std::int64_t j = 0; j < cols; ++j) {
      if (!present(rng)) continue;
      int const v = value(rng);
      d[static_cast<std::size_t>(i * cols + j)] = v;
      columns.push_back(static_cast<I>(j));
      values.push_back(static_cast<T>(v));
    }
    offsets.push_back(static_cast<I>(columns.size()));
  }
  return {rows, cols, d, mgpu::csr_matrix<mgpu::cpu, T, I>(rows, cols, offsets, columns, values)};
}

}  // namespace

TEMPLATE_TEST_CASE_SIG("GPU spmv and a resident distributed_csr equal the dense product", "[gpu][sparse]",
                       ((class T, class I), T, I), (float, std::int32_t), (double, std::int64_t)) {
  std::mt19937 rng(3);
  mgpu::execution_policy<mgpu::gpu> policy{"cuda"};
  for (auto [rows, cols] : std::vector<std::pair<std::int64_t, std::int64_t>>{{0, 4}, {1, 9}, {37, 23}, {200, 150}}) {
    auto const a = make<T, I>(rng, rows, cols, 0.1);
    std::vector<T> x(static_cast<std::size_t>(cols));
    for (std::size_t j = 0; j < x.size(); ++j) x[j] = static_cast<T>(j % 5);
    std::vector<T> y(static_cast<std::size_t>(rows), T{1});
    std::vector<double> expected(y.size());
    for (std::int64_t i = 0; i < rows; ++i) {
      double s = 0;
      for (std::int64_t j = 0; j < cols; ++j) s += a.dense[static_cast<std::size_t>(i * cols + j)] * static_cast<double>(x[static_cast<std::size_t>(j)]);
      expected[static_cast<std::size_t>(i)] = 2 * s + 3;
    }
    mgpu::spmv(policy, T{2}, a.csr, std::span<T const>(x), T{3}, std::span<T>(y));
    for (std::size_t i = 0; i < y.size(); ++i) CHECK(static_cast<double>(y[i]) == expected[i]);
    mgpu::distributed_csr<mgpu::gpu, T, I> da(policy, a.csr.view());
    for (int rep = 0; rep < 2; ++rep) {
      std::vector<T> z(static_cast<std::size_t>(rows), T{-5});
      da.spmv(T{2}, std::span<T const>(x), T{0}, std::span<T>(z));
      for (std::size_t i = 0; i < z.size(); ++i) CHECK(static_cast<double>(z[i]) == expected[i] - 3);
    }
  }
}

TEST_CASE("GPU spmm equals the dense product", "[gpu][sparse]") {
  std::mt19937 rng(5);
  mgpu::execution_policy<mgpu::gpu> policy{"cuda"};
  auto const a = make<float, std::int32_t>(rng, 45, 30, 0.2);
  std::int64_t const n = 7;
  mgpu::dense_matrix<mgpu::cpu, float> b(30, n);
  for (std::int64_t i = 0; i < 30 * n; ++i) b.data()[i] = static_cast<float>(i % 3);
  mgpu::dense_matrix<mgpu::cpu, float> c(45, n, 1.0f);
  mgpu::spmm(policy, 1.0f, a.csr, std::as_const(b).view(), -1.0f, c.view());
  for (std::int64_t i = 0; i < 45; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (std::int64_t k = 0; k < 30; ++k) s += a.dense[static_cast<std::size_t>(i * 30 + k)] * static_cast<double>(b(k, j));
      CHECK(static_cast<double>(c(i, j)) == s - 1);
    }
  }
}

TEST_CASE("GPU spgemm equals the host spgemm and the dense product", "[gpu][sparse]") {
  std::mt19937 rng(7);
  mgpu::execution_policy<mgpu::gpu> policy{"cuda"};
  auto const a = make<float, std::int32_t>(rng, 60, 40, 0.1);
  auto const b = make<float, std::int32_t>(rng, 40, 50, 0.1);
  auto const c = mgpu::spgemm(policy, a.csr, b.csr);
  REQUIRE(c.rows() == 60);
  REQUIRE(c.cols() == 50);
  std::vector<double> got(60 * 50, 0.0);
  for (std::int32_t r = 0; r < c.rows(); ++r) {
    for (auto p = c.row_offsets()[static_cast<std::size_t>(r)]; p < c.row_offsets()[static_cast<std::size_t>(r) + 1]; ++p) {
      got[static_cast<std::size_t>(r * 50 + c.col_indices()[static_cast<std::size_t>(p)])] += c.values()[static_cast<std::size_t>(p)];
    }
  }
  for (std::int64_t i = 0; i < 60; ++i) {
    for (std::int64_t j = 0; j < 50; ++j) {
      double s = 0;
      for (std::int64_t k = 0; k < 40; ++k) s += a.dense[static_cast<std::size_t>(i * 40 + k)] * b.dense[static_cast<std::size_t>(k * 50 + j)];
      CHECK(got[static_cast<std::size_t>(i * 50 + j)] == s);
    }
  }
  mgpu::execution_policy<mgpu::cpu> host{"cpu"};
  CHECK(mgpu::spgemm(host, a.csr, b.csr).nnz() == c.nnz());
}

TEST_CASE("GPU spgemm whose product has no entries returns an empty matrix", "[gpu][sparse]") {
  // A uses columns 0..4 only, B has entries in rows 5..9 only: A·B is empty although
  // neither factor is (cuSPARSE must not be asked to copy into null arrays).
  std::vector<std::int32_t> a_offsets{0, 1, 2, 3}, a_columns{0, 2, 4};
  std::vector<float> a_values{1, 2, 3};
  std::vector<std::int32_t> b_offsets{0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5}, b_columns{0, 1, 2, 3, 0};
  std::vector<float> b_values{1, 1, 1, 1, 1};
  mgpu::csr_matrix<mgpu::cpu, float, std::int32_t> const a(3, 10, a_offsets, a_columns, a_values);
  mgpu::csr_matrix<mgpu::cpu, float, std::int32_t> const b(10, 4, b_offsets, b_columns, b_values);
  auto const c = mgpu::spgemm(mgpu::execution_policy<mgpu::gpu>{"cuda"}, a, b);
  CHECK(c.rows() == 3);
  CHECK(c.cols() == 4);
  CHECK(c.nnz() == 0);
}

TEST_CASE("GPU products take the kind-less host matrices csr_matrix<float> and dense_matrix<float>", "[gpu][sparse]") {
  // A = [1 0 2; 0 3 0]. A·(1, 2, 3) = (7, 6); A·[1 0; 0 1; 1 1] = [3 2; 0 3]; A·Aᵀ = diag(5, 9).
  mgpu::execution_policy<mgpu::gpu> policy{"cuda"};
  mgpu::csr_matrix<float> const a(2, 3, {0, 2, 3}, {0, 2, 1}, {1.f, 2.f, 3.f});
  std::vector<float> const x{1, 2, 3};
  std::vector<float> y(2);
  mgpu::spmv(policy, 1.0, a, x, 0.0, y);
  CHECK(y == std::vector<float>{7, 6});
  mgpu::dense_matrix<float> const b(3, 2, {1.f, 0.f, 0.f, 1.f, 1.f, 1.f});
  mgpu::dense_matrix<float> c(2, 2, 0.f);
  mgpu::spmm(policy, 1.0, a, b, 0.0, c.view());
  CHECK(std::vector<float>(c.data(), c.data() + 4) == std::vector<float>{3, 2, 0, 3});
  mgpu::csr_matrix<float> const at(3, 2, {0, 1, 2, 3}, {0, 1, 0}, {1.f, 3.f, 2.f});
  mgpu::csr_matrix<float> const gram = mgpu::spgemm(policy, a, at);
  CHECK(std::vector<float>(gram.values().begin(), gram.values().end()) == std::vector<float>{5, 9});
}

// Residency on GPUs (issue 14 part 1): compiled, not run on a GPU here.

TEST_CASE("GPU upload and download round-trip a CSR block and a dense matrix, counted", "[gpu][transfers]") {
  mgpu::execution_policy<mgpu::gpu> policy{"cuda:0"};
  auto& set = policy.devices();
  // [[1 0 2], [0 0 0], [0 3 0]]; rows 1..2 uploaded: offsets rebased to {0, 0, 1}.
  mgpu::csr_matrix<mgpu::cpu, float, std::int32_t> a(3, 3, std::vector<std::int32_t>{0, 2, 2, 3},
                                                      std::vector<std::int32_t>{0, 2, 1}, std::vector<float>{1, 2, 3});
  mgpu::event<mgpu::gpu> e;
  auto on_gpu = mgpu::upload(set, 0, a.view().row_block(1, 3), set[0].work, e);
  auto back = mgpu::download(set, 0, on_gpu, set[0].work, e);
  e.synchronize();
  CHECK(std::vector<std::int32_t>(back.row_offsets().begin(), back.row_offsets().end()) ==
        std::vector<std::int32_t>{0, 0, 1});
  CHECK(back.col_indices()[0] == 1);
  CHECK(back.values()[0] == 3.0f);
  CHECK(set.transfers().bytes(mgpu::host_endpoint, 0) == 20);
  CHECK(set.transfers().bytes(0, mgpu::host_endpoint) == 20);

  std::vector<float> wide = {1, 2, 0, 3, 4, 0};  // 2 x 2 inside ld = 3
  auto dm = mgpu::upload(set, 0, mgpu::dense_view<float const>{2, 2, 3, wide.data()}, set[0].work, e);
  std::vector<float> out(6, -1.0f);
  mgpu::download(set, 0, std::as_const(dm).view(), mgpu::dense_view<float>{2, 2, 3, out.data()}, set[0].work, e);
  e.synchronize();
  CHECK(out == std::vector<float>{1, 2, -1, 3, 4, -1});
}

TEST_CASE("GPU collectives and resident spmv: x in once, y out once, equal to the host", "[gpu][collectives]") {
  std::mt19937 rng(14);
  mgpu::execution_policy<mgpu::gpu> policy{"cuda"};
  auto& set = policy.devices();
  auto const n = set.size();
  auto const a = make<float, std::int32_t>(rng, 60, 40, 0.2);
  std::vector<float> x_host(40);
  for (std::size_t j = 0; j < x_host.size(); ++j) x_host[j] = static_cast<float>(j % 7) - 3.0f;
  mgpu::distributed_csr<mgpu::gpu, float, std::int32_t> da(policy, a.csr.view());
  using dd = mgpu::distributed_dense<mgpu::gpu, float>;
  auto x = dd::replicated(policy, 40, 1);
  auto y = dd::row_blocks(policy, 60, 1, da.row_bounds());
  set.transfers().reset();
  mgpu::broadcast(std::span<float const>(x_host), x);
  for (int k = 0; k < 5; ++k) da.spmv(1.0f, x, 0.0f, y);
  std::vector<float> y_host(60, -1.0f);
  mgpu::gather(y, std::span<float>(y_host));
  for (std::size_t d = 0; d < n; ++d) CHECK(set.transfers().bytes(mgpu::host_endpoint, static_cast<int>(d)) == 160);
  CHECK(set.transfers().received(mgpu::host_endpoint) == 240);
  CHECK(set.transfers().total() == 160 * n + 240);
  for (std::int64_t i = 0; i < 60; ++i) {
    double s = 0;
    for (std::int64_t j = 0; j < 40; ++j) s += a.dense[static_cast<std::size_t>(i * 40 + j)] * x_host[static_cast<std::size_t>(j)];
    CHECK(y_host[static_cast<std::size_t>(i)] == static_cast<float>(s));
  }

  // all_gather then reduce_sum on the host: every device holds y, so the sum is n·y.
  auto replicated_y = dd::replicated(policy, 60, 1);
  mgpu::all_gather(y, replicated_y);
  std::vector<float> sum(60);
  mgpu::reduce_sum(replicated_y, std::span<float>(sum));
  for (std::size_t i = 0; i < 60; ++i) CHECK(sum[i] == static_cast<float>(n) * y_host[i]);
}
