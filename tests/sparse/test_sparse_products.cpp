// SpMV, SpMM, SpGEMM, distributed_csr and scaling on host policies cpu:1..4, compared
// with dense products computed here in double from the same matrices.
#include "sparse_test_support.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/execution/policy.hpp"
#include "mgpu/sparse/distributed_csr.hpp"
#include "mgpu/sparse/scaling.hpp"
#include "mgpu/sparse/spgemm.hpp"
#include "mgpu/sparse/spmm.hpp"
#include "mgpu/sparse/spmv.hpp"

namespace {

using mgpu_test::dense;
using mgpu_test::host_csr;

template <class T, class I>
host_csr<T, I> csr_from(dense const& d) {
  auto const arrays = mgpu_test::csr_of<T, I>(d);
  return host_csr<T, I>(d.rows, d.cols, arrays.row_offsets, arrays.col_indices, arrays.values);
}

/// Small integers, so that every product and sum below is exact in float.
template <class T>
std::vector<T> random_vector(std::mt19937& rng, std::int64_t n) {
  std::uniform_int_distribution<int> value(-4, 4);
  std::vector<T> v(static_cast<std::size_t>(n));
  for (auto& e : v) e = static_cast<T>(value(rng));
  return v;
}

/// alpha·A·x + beta·y in double.
std::vector<double> reference_spmv(double alpha, dense const& a, std::vector<double> const& x,
                                   double beta, std::vector<double> const& y) {
  std::vector<double> out(static_cast<std::size_t>(a.rows));
  for (std::int64_t i = 0; i < a.rows; ++i) {
    double s = 0;
    for (std::int64_t j = 0; j < a.cols; ++j) s += a(i, j) * x[static_cast<std::size_t>(j)];
    out[static_cast<std::size_t>(i)] = alpha * s + beta * y[static_cast<std::size_t>(i)];
  }
  return out;
}

template <class T>
std::vector<double> as_double(std::vector<T> const& v) {
  return {v.begin(), v.end()};
}

/// Shapes that cover the edge cases: empty, 0 x n, n x 0, one row, more devices than rows.
std::vector<std::pair<std::int64_t, std::int64_t>> shapes(std::mt19937& rng) {
  std::vector<std::pair<std::int64_t, std::int64_t>> s{{0, 0}, {0, 5}, {5, 0}, {1, 7}, {3, 40}, {2, 2}};
  std::uniform_int_distribution<std::int64_t> size(1, 60);
  for (int i = 0; i < 6; ++i) s.emplace_back(size(rng), size(rng));
  return s;
}

std::string devices(int n) { return "cpu:" + std::to_string(n); }

/// A matrix whose rows have very different lengths (empty, a few entries, nearly full),
/// so that SELL chunks need padding and σ-sorting reorders rows.
dense random_ragged(std::mt19937& rng, std::int64_t rows, std::int64_t cols) {
  dense d(rows, cols);
  std::uniform_int_distribution<int> kind(0, 3);
  std::uniform_int_distribution<int> value(-4, 4);
  for (std::int64_t i = 0; i < rows; ++i) {
    double const density = std::array<double, 4>{0.0, 0.05, 0.3, 0.95}[static_cast<std::size_t>(kind(rng))];
    std::bernoulli_distribution present(density);
    for (std::int64_t j = 0; j < cols; ++j) {
      if (present(rng)) d(i, j) = value(rng) == 0 ? 1 : value(rng);
    }
  }
  return d;
}

mgpu::distributed_csr_options sell_options(std::int64_t sigma) {
  mgpu::distributed_csr_options o;
  o.layout = mgpu::spmv_layout::sell;
  o.sell_sigma = sigma;
  return o;
}

}  // namespace

TEMPLATE_TEST_CASE("spmv equals the dense product for random shapes on cpu:1..4",
                   "[sparse][spmv]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  std::mt19937 rng(7);
  for (int n = 1; n <= 4; ++n) {
    mgpu::execution_policy<mgpu::cpu> policy{devices(n)};
    for (auto [rows, cols] : shapes(rng)) {
      auto const d = mgpu_test::random_dense(rng, rows, cols, 0.2);
      auto const a = csr_from<T, I>(d);
      auto const x = random_vector<T>(rng, cols);
      auto y = random_vector<T>(rng, rows);
      auto const expected = reference_spmv(2.0, d, as_double(x), -3.0, as_double(y));
      mgpu::spmv(policy, T{2}, a, std::span<T const>(x), T{-3}, std::span<T>(y));
      CHECK(as_double(y) == expected);
    }
  }
}

TEST_CASE("spmv with beta = 0 does not read y, so NaN in y is overwritten", "[sparse][spmv]") {
  mgpu::execution_policy<mgpu::cpu> policy{"cpu:2"};
  host_csr<float, std::int32_t> const a(2, 2, {0, 1, 2}, {1, 0}, {3.0f, 4.0f});
  std::vector<float> const x{1.0f, 2.0f};
  std::vector<float> y(2, std::numeric_limits<float>::quiet_NaN());
  mgpu::spmv(policy, 1.0f, a, std::span<float const>(x), 0.0f, std::span<float>(y));
  CHECK(y == std::vector<float>{6.0f, 4.0f});
}

TEST_CASE("spmv propagates NaN in A and x into the rows that use them", "[sparse][spmv]") {
  mgpu::execution_policy<mgpu::cpu> policy{"cpu"};
  float const nan = std::numeric_limits<float>::quiet_NaN();
  host_csr<float, std::int32_t> const a(3, 2, {0, 1, 2, 3}, {0, 1, 0}, {nan, 1.0f, 1.0f});
  std::vector<float> const x{1.0f, std::numeric_limits<float>::infinity()};
  std::vector<float> y(3, 0.0f);
  mgpu::spmv(policy, 1.0f, a, std::span<float const>(x), 0.0f, std::span<float>(y));
  CHECK(std::isnan(y[0]));
  CHECK(std::isinf(y[1]));
  CHECK(y[2] == 1.0f);
}

TEST_CASE("reliability row 8: spmv and spmm reject operands that do not conform",
          "[sparse][spmv][reliability]") {
  mgpu::execution_policy<mgpu::cpu> policy{"cpu"};
  host_csr<float, std::int32_t> const a(2, 3);
  std::vector<float> x(2);
  std::vector<float> y(2);
  auto const m = mgpu_test::message_of<mgpu::dimension_mismatch>(
      [&] { mgpu::spmv(policy, 1.0f, a, std::span<float const>(x), 0.0f, std::span<float>(y)); });
  CHECK_THAT(m, Catch::Matchers::Contains("2 x 3") && Catch::Matchers::Contains("x has 2"));
  mgpu::dense_matrix<mgpu::cpu, float> b(2, 4, 0.0f);
  mgpu::dense_matrix<mgpu::cpu, float> c(2, 4, 0.0f);
  auto const m2 = mgpu_test::message_of<mgpu::dimension_mismatch>(
      [&] { mgpu::spmm(policy, 1.0f, a, std::as_const(b).view(), 0.0f, c.view()); });
  CHECK_THAT(m2, Catch::Matchers::Contains("B is 2 x 4"));
}

TEST_CASE("spmv rejects x and y that overlap", "[sparse][spmv]") {
  mgpu::execution_policy<mgpu::cpu> policy{"cpu"};
  host_csr<float, std::int32_t> const a(2, 2, {0, 1, 2}, {0, 1}, {1.0f, 1.0f});
  std::vector<float> v(2, 1.0f);
  CHECK_THROWS_AS(mgpu::spmv(policy, 1.0f, a, std::span<float const>(v), 0.0f, std::span<float>(v)),
                  mgpu::invalid_argument);
}

TEMPLATE_TEST_CASE("distributed_csr gives the dense product in every host layout, repeatedly",
                   "[sparse][spmv][distributed]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  std::mt19937 rng(11);
  for (int n = 1; n <= 4; ++n) {
    mgpu::execution_policy<mgpu::cpu> policy{devices(n)};
    for (auto layout : {mgpu::spmv_layout::csr, mgpu::spmv_layout::tiled, mgpu::spmv_layout::sell,
                        mgpu::spmv_layout::automatic}) {
      for (auto [rows, cols] : shapes(rng)) {
        auto const d = mgpu_test::random_dense(rng, rows, cols, 0.3);
        auto const a = csr_from<T, I>(d);
        mgpu::distributed_csr<mgpu::cpu, T, I> da(policy, a.view(), {layout});
        for (int rep = 0; rep < 2; ++rep) {
          auto const x = random_vector<T>(rng, cols);
          auto y = random_vector<T>(rng, rows);
          auto const expected = reference_spmv(1.0, d, as_double(x), 0.5, as_double(y));
          da.spmv(T{1}, std::span<T const>(x), T{0.5}, std::span<T>(y));
          CHECK(as_double(y) == expected);
        }
      }
    }
  }
}

TEST_CASE("the tiled layout handles rows and columns beyond one tile", "[sparse][spmv][distributed]") {
  // 2^17 + 3 rows and 2^15 + 5 columns: two row blocks and two column panels, with
  // entries on both sides of every boundary.
  std::int64_t const rows = (std::int64_t{1} << 17) + 3;
  std::int64_t const cols = (std::int64_t{1} << 15) + 5;
  std::vector<std::int32_t> offsets{0};
  std::vector<std::int32_t> columns;
  std::vector<float> values;
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c : {r % cols, (r * 7919 + 3) % cols, cols - 1 - (r % 3)}) {
      if (!columns.empty() && offsets.back() < static_cast<std::int32_t>(columns.size()) &&
          std::find(columns.begin() + offsets.back(), columns.end(), c) != columns.end()) {
        continue;
      }
      columns.push_back(static_cast<std::int32_t>(c));
      values.push_back(static_cast<float>(1 + (r + c) % 5));
    }
    offsets.push_back(static_cast<std::int32_t>(columns.size()));
  }
  host_csr<float, std::int32_t> const a(rows, cols, offsets, columns, values);
  std::vector<float> x(static_cast<std::size_t>(cols));
  for (std::int64_t c = 0; c < cols; ++c) x[static_cast<std::size_t>(c)] = static_cast<float>(c % 7 - 3);
  std::vector<float> expected(static_cast<std::size_t>(rows), 0.0f);
  for (std::int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (auto p = offsets[static_cast<std::size_t>(r)]; p < offsets[static_cast<std::size_t>(r) + 1]; ++p) {
      s += static_cast<double>(values[static_cast<std::size_t>(p)]) *
           x[static_cast<std::size_t>(columns[static_cast<std::size_t>(p)])];
    }
    expected[static_cast<std::size_t>(r)] = static_cast<float>(s);
  }
  mgpu::execution_policy<mgpu::cpu> policy{"cpu:2"};
  mgpu::distributed_csr<mgpu::cpu, float, std::int32_t> da(policy, a.view(), {mgpu::spmv_layout::tiled});
  std::vector<float> y(static_cast<std::size_t>(rows));
  da.spmv(1.0f, std::span<float const>(x), 0.0f, std::span<float>(y));
  CHECK(y == expected);
}

TEMPLATE_TEST_CASE("the sell layout equals the dense product for ragged rows, any sigma, on cpu:1..4",
                   "[sparse][spmv][distributed][sell]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  std::mt19937 rng(23);
  // Row counts around chunk (16) and window boundaries; columns beyond 16 so that rows
  // are longer than one chunk slot run and not multiples of 16.
  std::vector<std::pair<std::int64_t, std::int64_t>> sizes{{0, 0}, {0, 9}, {4, 0}, {1, 1}, {1, 37},
                                                           {15, 20}, {16, 33}, {17, 50}, {3, 70}};
  std::uniform_int_distribution<std::int64_t> rows_of(18, 300);
  std::uniform_int_distribution<std::int64_t> cols_of(1, 90);
  for (int i = 0; i < 4; ++i) sizes.emplace_back(rows_of(rng), cols_of(rng));
  for (int n = 1; n <= 4; ++n) {
    mgpu::execution_policy<mgpu::cpu> policy{devices(n)};
    for (std::int64_t sigma : {1, 5, 16, 256}) {
      for (auto [rows, cols] : sizes) {
        auto const d = random_ragged(rng, rows, cols);
        auto const a = csr_from<T, I>(d);
        mgpu::distributed_csr<mgpu::cpu, T, I> da(policy, a.view(), sell_options(sigma));
        for (T beta : {T{0}, T{-2}}) {
          auto const x = random_vector<T>(rng, cols);
          auto y = random_vector<T>(rng, rows);
          auto const expected = reference_spmv(3.0, d, as_double(x), static_cast<double>(beta), as_double(y));
          da.spmv(T{3}, std::span<T const>(x), beta, std::span<T>(y));
          CHECK(as_double(y) == expected);
        }
      }
    }
  }
}

TEST_CASE("the sell layout sorts rows by length within sigma windows only",
          "[sparse][spmv][distributed][sell]") {
  // 32 rows: row r has r % 5 entries. With sigma = 1 the rows keep their order; with
  // sigma = 16 each window of 16 rows is sorted by decreasing length (stable), and
  // chunk widths are the longest row of each chunk.
  std::vector<std::int32_t> offsets{0};
  std::vector<std::int32_t> columns;
  for (std::int32_t r = 0; r < 32; ++r) {
    for (std::int32_t j = 0; j < r % 5; ++j) columns.push_back(j);
    offsets.push_back(static_cast<std::int32_t>(columns.size()));
  }
  std::vector<float> values(columns.size(), 1.0f);
  host_csr<float, std::int32_t> const a(32, 4, offsets, columns, values);
  mgpu::execution_policy<mgpu::cpu> policy{"cpu"};
  mgpu::distributed_csr<mgpu::cpu, float, std::int32_t> unsorted(policy, a.view(), sell_options(1));
  CHECK(unsorted.shard(0)->sell->row_of.empty());
  CHECK(unsorted.shard(0)->sell->slots() == 2 * 16 * 4);
  mgpu::distributed_csr<mgpu::cpu, float, std::int32_t> sorted(policy, a.view(), sell_options(16));
  auto const& s = *sorted.shard(0)->sell;
  // Window 0: rows 0..15, lengths 0 1 2 3 4 0 1 2 3 4 0 1 2 3 4 0 -> 4,9,14 first.
  std::vector<std::int32_t> const window0{4, 9, 14, 3, 8, 13, 2, 7, 12, 1, 6, 11, 0, 5, 10, 15};
  CHECK(std::vector<std::int32_t>(s.row_of.begin(), s.row_of.begin() + 16) == window0);
  CHECK(s.slots() == 2 * 16 * 4);
  std::vector<float> const x{1.0f, 10.0f, 100.0f, 1000.0f};
  std::vector<float> y(32);
  sorted.spmv(1.0f, std::span<float const>(x), 0.0f, std::span<float>(y));
  for (std::int32_t r = 0; r < 32; ++r) {
    float const expected = std::array<float, 5>{0.0f, 1.0f, 11.0f, 111.0f, 1111.0f}[static_cast<std::size_t>(r % 5)];
    CHECK(y[static_cast<std::size_t>(r)] == expected);
  }
}

TEST_CASE("reliability row 7: the sell layout propagates NaN and Inf exactly like the CSR "
          "product, and its padding never reads x", "[sparse][spmv][distributed][sell][reliability]") {
  float const inf = std::numeric_limits<float>::infinity();
  float const nan = std::numeric_limits<float>::quiet_NaN();
  // x = [Inf, 1, 2, 3]. Padding slots point at column 0 (x = Inf): a product with a
  // padded 0 would turn every short row into NaN.
  //   row 0: 1·x0 = Inf          row 1: 1·x2 = 2         row 2: 0·x0 = NaN (stored zero)
  //   row 3: NaN·x1 = NaN        row 4: empty = 0        row 5: 1·x2 + 1·x3 = 5
  //   row 6: -1·x0 + 1·x1 = -Inf
  host_csr<float, std::int32_t> const a(7, 4, {0, 1, 2, 3, 4, 4, 6, 8}, {0, 2, 0, 1, 2, 3, 0, 1},
                                        {1.0f, 1.0f, 0.0f, nan, 1.0f, 1.0f, -1.0f, 1.0f});
  std::vector<float> const x{inf, 1.0f, 2.0f, 3.0f};
  for (int n = 1; n <= 4; ++n) {
    mgpu::execution_policy<mgpu::cpu> policy{devices(n)};
    for (auto options : {sell_options(1), sell_options(16),
                         mgpu::distributed_csr_options{mgpu::spmv_layout::csr}}) {
      mgpu::distributed_csr<mgpu::cpu, float, std::int32_t> da(policy, a.view(), options);
      std::vector<float> y(7, nan);
      da.spmv(1.0f, std::span<float const>(x), 0.0f, std::span<float>(y));
      CHECK(y[0] == inf);
      CHECK(y[1] == 2.0f);
      CHECK(std::isnan(y[2]));
      CHECK(std::isnan(y[3]));
      CHECK(y[4] == 0.0f);
      CHECK(y[5] == 5.0f);
      CHECK(y[6] == -inf);
    }
  }
}

TEMPLATE_TEST_CASE("the sell layout gives bitwise equal results on cpu:1..4", "[sparse][spmv][distributed][sell]",
                   mgpu_test::f32_i32, mgpu_test::f64_i32) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  // Values that round (not small integers), ragged rows, sorting windows that devices cut.
  std::mt19937 rng(29);
  auto d = random_ragged(rng, 203, 61);
  std::uniform_real_distribution<double> value(-1.0, 1.0);
  for (auto& e : d.a) {
    if (e != 0.0) e = static_cast<double>(static_cast<T>(value(rng)));
  }
  auto const a = csr_from<T, I>(d);
  std::vector<T> x(61);
  std::vector<T> y0(203);
  for (auto& e : x) e = static_cast<T>(value(rng));
  for (auto& e : y0) e = static_cast<T>(value(rng));
  std::vector<T> first;
  for (int n = 1; n <= 4; ++n) {
    mgpu::execution_policy<mgpu::cpu> policy{devices(n)};
    mgpu::distributed_csr<mgpu::cpu, T, I> da(policy, a.view(), sell_options(32));
    auto y = y0;
    auto const alpha = static_cast<T>(0.7);
    auto const beta = static_cast<T>(0.3);
    da.spmv(alpha, std::span<T const>(x), beta, std::span<T>(y));
    if (n == 1) {
      first = y;
      auto const expected = reference_spmv(static_cast<double>(alpha), d, as_double(x),
                                           static_cast<double>(beta), as_double(y0));
      for (std::size_t i = 0; i < y.size(); ++i) CHECK(static_cast<double>(y[i]) == Approx(expected[i]).margin(1e-5));
    } else {
      CHECK(std::memcmp(y.data(), first.data(), y.size() * sizeof(T)) == 0);
    }
  }
}

TEST_CASE("the sell layout rejects a sorting window below 1", "[sparse][spmv][distributed][sell]") {
  host_csr<float, std::int32_t> const a(2, 2, {0, 1, 2}, {0, 1}, {1.0f, 1.0f});
  mgpu::execution_policy<mgpu::cpu> policy{"cpu"};
  using dcsr = mgpu::distributed_csr<mgpu::cpu, float, std::int32_t>;
  CHECK_THROWS_AS(dcsr(policy, a.view(), sell_options(0)), mgpu::invalid_argument);
}

TEST_CASE("automatic layout: ragged rows stay CSR, regular banded rows take sell",
          "[sparse][spmv][distributed][sell]") {
  // One row of 64 entries and 15 rows of 1: one chunk, which sell would store as 16·64
  // slots for 79 entries (no sorting can help within one chunk).
  std::vector<std::int32_t> offsets{0};
  std::vector<std::int32_t> columns;
  for (std::int32_t r = 0; r < 16; ++r) {
    auto const len = r == 0 ? 64 : 1;
    for (std::int32_t j = 0; j < len; ++j) columns.push_back(j);
    offsets.push_back(static_cast<std::int32_t>(columns.size()));
  }
  std::vector<float> values(columns.size(), 1.0f);
  host_csr<float, std::int32_t> const ragged(16, 64, offsets, columns, values);
  // 32 rows of two neighbouring columns: two full chunks, no padding.
  std::vector<std::int32_t> band_offsets{0};
  std::vector<std::int32_t> band_columns;
  for (std::int32_t r = 0; r < 32; ++r) {
    band_columns.push_back(std::min(r, 30));
    band_columns.push_back(std::min(r, 30) + 1);
    band_offsets.push_back(static_cast<std::int32_t>(band_columns.size()));
  }
  host_csr<float, std::int32_t> const banded(32, 32, band_offsets, band_columns,
                                             std::vector<float>(band_columns.size(), 1.0f));
  host_csr<float, std::int32_t> const empty(3, 3);
  mgpu::execution_policy<mgpu::cpu> policy{"cpu"};
  using dcsr = mgpu::distributed_csr<mgpu::cpu, float, std::int32_t>;
  CHECK(dcsr(policy, ragged.view()).shard(0)->layout() == mgpu::spmv_layout::csr);
  CHECK(dcsr(policy, banded.view()).shard(0)->layout() == mgpu::spmv_layout::sell);
  CHECK(dcsr(policy, empty.view()).shard(0)->layout() == mgpu::spmv_layout::csr);
}

TEST_CASE("automatic layout: banded rows are not tiled, scattered wide rows are tiled",
          "[sparse][spmv][distributed]") {
  std::int64_t const n = std::int64_t{1} << 20;  // x is 4 MiB of floats
  std::vector<std::int32_t> offsets{0};
  std::vector<std::int32_t> band_cols;
  std::vector<std::int32_t> wide_cols;
  for (std::int64_t r = 0; r < n; r += 1) {
    band_cols.push_back(static_cast<std::int32_t>(r));
    wide_cols.push_back(static_cast<std::int32_t>((r * 2654435761u) % static_cast<std::uint64_t>(n)));
    offsets.push_back(static_cast<std::int32_t>(band_cols.size()));
  }
  std::vector<float> values(band_cols.size(), 1.0f);
  host_csr<float, std::int32_t> const band(n, n, offsets, band_cols, values);
  host_csr<float, std::int32_t> const wide(n, n, offsets, wide_cols, values);
  mgpu::execution_policy<mgpu::cpu> policy{"cpu"};
  CHECK(mgpu::distributed_csr<mgpu::cpu, float, std::int32_t>(policy, band.view()).shard(0)->layout() ==
        mgpu::spmv_layout::sell);
  CHECK(mgpu::distributed_csr<mgpu::cpu, float, std::int32_t>(policy, wide.view()).shard(0)->layout() ==
        mgpu::spmv_layout::tiled);
}

TEMPLATE_TEST_CASE("spmm equals the dense product for random shapes on cpu:1..4", "[sparse][spmm]",
                   MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  std::mt19937 rng(13);
  std::uniform_int_distribution<std::int64_t> width(0, 5);
  for (int n = 1; n <= 4; ++n) {
    mgpu::execution_policy<mgpu::cpu> policy{devices(n)};
    for (auto [rows, cols] : shapes(rng)) {
      auto const k = width(rng);
      auto const d = mgpu_test::random_dense(rng, rows, cols, 0.25);
      auto const a = csr_from<T, I>(d);
      auto const bv = random_vector<T>(rng, cols * k);
      auto const cv = random_vector<T>(rng, rows * k);
      mgpu::dense_matrix<mgpu::cpu, T> b(cols, k);
      mgpu::dense_matrix<mgpu::cpu, T> c(rows, k);
      std::copy(bv.begin(), bv.end(), b.data());
      std::copy(cv.begin(), cv.end(), c.data());
      mgpu::spmm(policy, T{-1}, a, std::as_const(b).view(), T{2}, c.view());
      for (std::int64_t i = 0; i < rows; ++i) {
        for (std::int64_t j = 0; j < k; ++j) {
          double s = 0;
          for (std::int64_t p = 0; p < cols; ++p) s += d(i, p) * static_cast<double>(b(p, j));
          CHECK(static_cast<double>(c(i, j)) == -s + 2.0 * static_cast<double>(cv[static_cast<std::size_t>(i * k + j)]));
        }
      }
    }
  }
}

TEST_CASE("spmm reads and writes sub-blocks through their leading dimensions", "[sparse][spmm]") {
  mgpu::execution_policy<mgpu::cpu> policy{"cpu:2"};
  host_csr<double, std::int32_t> const a(2, 2, {0, 2, 3}, {0, 1, 1}, {1.0, 2.0, 3.0});
  // B = columns 1..2 of a 2 x 4 array; C = columns 0..1 of a 2 x 3 array.
  std::vector<double> b_store{9, 1, 2, 9, 9, 3, 4, 9};
  std::vector<double> c_store{0, 0, -7, 0, 0, -7};
  mgpu::dense_view<double const> b{2, 2, 4, b_store.data() + 1};
  mgpu::dense_view<double> c{2, 2, 3, c_store.data()};
  mgpu::spmm(policy, 1.0, a, b, 0.0, c);
  // [1 2; 0 3] · [1 2; 3 4] = [7 10; 9 12]
  CHECK(c_store == std::vector<double>{7, 10, -7, 9, 12, -7});
}

TEMPLATE_TEST_CASE("spgemm equals the dense product for random shapes on cpu:1..4",
                   "[sparse][spgemm]", MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  std::mt19937 rng(17);
  std::uniform_int_distribution<std::int64_t> size(0, 30);
  for (int n = 1; n <= 4; ++n) {
    mgpu::execution_policy<mgpu::cpu> policy{devices(n)};
    for (auto [rows, inner] : shapes(rng)) {
      auto const cols = size(rng);
      auto const da = mgpu_test::random_dense(rng, rows, inner, 0.2);
      auto const db = mgpu_test::random_dense(rng, inner, cols, 0.2);
      auto const c = mgpu::spgemm(policy, csr_from<T, I>(da), csr_from<T, I>(db));
      dense expected(rows, cols);
      for (std::int64_t i = 0; i < rows; ++i) {
        for (std::int64_t k = 0; k < inner; ++k) {
          for (std::int64_t j = 0; j < cols; ++j) expected(i, j) += da(i, k) * db(k, j);
        }
      }
      CHECK(c.rows() == rows);
      CHECK(c.cols() == cols);
      CHECK(mgpu_test::to_dense(c.view()) == expected);
      CHECK(mgpu_test::columns_strictly_increase(c.view()));
    }
  }
}

TEST_CASE("spgemm keeps entries whose terms cancel, as the symbolic product", "[sparse][spgemm]") {
  mgpu::execution_policy<mgpu::cpu> policy{"cpu"};
  // [1 1] · [1; -1] = [0], stored.
  host_csr<float, std::int32_t> const a(1, 2, {0, 2}, {0, 1}, {1.0f, 1.0f});
  host_csr<float, std::int32_t> const b(2, 1, {0, 1, 2}, {0, 0}, {1.0f, -1.0f});
  auto const c = mgpu::spgemm(policy, a, b);
  CHECK(c.nnz() == 1);
  CHECK(c.values()[0] == 0.0f);
}

TEST_CASE("reliability row 8: spgemm rejects inner dimensions that differ", "[sparse][spgemm][reliability]") {
  mgpu::execution_policy<mgpu::cpu> policy{"cpu"};
  host_csr<float, std::int32_t> const a(2, 3);
  host_csr<float, std::int32_t> const b(4, 2);
  auto const m = mgpu_test::message_of<mgpu::dimension_mismatch>([&] { (void)mgpu::spgemm(policy, a, b); });
  CHECK_THAT(m, Catch::Matchers::Contains("A is 2 x 3") && Catch::Matchers::Contains("B is 4 x 2"));
}

TEST_CASE("reliability row 5: spgemm refuses a product whose nnz exceeds the index type",
          "[sparse][spgemm][reliability]") {
  // A 200 x 1 column of ones times a 1 x 200 row of ones has 40000 entries, beyond int16.
  std::vector<std::int16_t> a_off(201);
  for (std::size_t i = 0; i < a_off.size(); ++i) a_off[i] = static_cast<std::int16_t>(i);
  std::vector<std::int16_t> a_col(200, 0);
  std::vector<float> ones(200, 1.0f);
  std::vector<std::int16_t> b_off{0, 200};
  std::vector<std::int16_t> b_col(200);
  for (std::size_t i = 0; i < b_col.size(); ++i) b_col[i] = static_cast<std::int16_t>(i);
  host_csr<float, std::int16_t> const a(200, 1, a_off, a_col, ones);
  host_csr<float, std::int16_t> const b(1, 200, b_off, b_col, ones);
  mgpu::execution_policy<mgpu::cpu> policy{"cpu:2"};
  auto const m = mgpu_test::message_of<mgpu::index_overflow>([&] { (void)mgpu::spgemm(policy, a, b); });
  CHECK_THAT(m, Catch::Matchers::Contains("nnz of the product"));
}

TEMPLATE_TEST_CASE("scale_rows and scale_columns equal diag(d)·A and A·diag(d)", "[sparse][scaling]",
                   MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  std::mt19937 rng(19);
  for (int n = 1; n <= 4; ++n) {
    mgpu::execution_policy<mgpu::cpu> policy{devices(n)};
    for (auto [rows, cols] : shapes(rng)) {
      auto const d = mgpu_test::random_dense(rng, rows, cols, 0.3);
      auto a = csr_from<T, I>(d);
      auto const dr = random_vector<T>(rng, rows);
      auto const dc = random_vector<T>(rng, cols);
      mgpu::scale_rows(policy, a, std::span<T const>(dr));
      mgpu::scale_columns(policy, a, std::span<T const>(dc));
      dense expected = d;
      for (std::int64_t i = 0; i < rows; ++i) {
        for (std::int64_t j = 0; j < cols; ++j) {
          expected(i, j) *= static_cast<double>(dr[static_cast<std::size_t>(i)]) *
                            static_cast<double>(dc[static_cast<std::size_t>(j)]);
        }
      }
      CHECK(mgpu_test::to_dense(a.view()) == expected);
    }
  }
}

TEST_CASE("reliability row 8: scaling vectors of the wrong length are rejected", "[sparse][scaling][reliability]") {
  mgpu::execution_policy<mgpu::cpu> policy{"cpu"};
  host_csr<float, std::int32_t> a(2, 3);
  std::vector<float> d(3);
  CHECK_THROWS_AS(mgpu::scale_rows(policy, a, std::span<float const>(d)), mgpu::dimension_mismatch);
  std::vector<float> e(2);
  CHECK_THROWS_AS(mgpu::scale_columns(policy, a, std::span<float const>(e)), mgpu::dimension_mismatch);
}

TEST_CASE("normalize_rows follows sklearn.preprocessing.normalize; zero rows stay zero",
          "[sparse][scaling]") {
  mgpu::execution_policy<mgpu::cpu> policy{"cpu:3"};
  // Rows: [3 -4], [], [0 0 stored], [2].
  auto make = [] {
    return host_csr<double, std::int32_t>(4, 2, {0, 2, 2, 4, 5}, {0, 1, 0, 1, 1},
                                          {3.0, -4.0, 0.0, 0.0, 2.0});
  };
  auto l2 = make();
  mgpu::normalize_rows(policy, l2, mgpu::row_norm::l2);
  CHECK(mgpu_test::to_vector(l2.values()) == std::vector<double>{0.6, -0.8, 0.0, 0.0, 1.0});
  auto l1 = make();
  mgpu::normalize_rows(policy, l1, mgpu::row_norm::l1);
  CHECK(mgpu_test::to_vector(l1.values()) == std::vector<double>{3.0 / 7.0, -4.0 / 7.0, 0.0, 0.0, 1.0});
  auto mx = make();
  mgpu::normalize_rows(policy, mx, mgpu::row_norm::max);
  CHECK(mgpu_test::to_vector(mx.values()) == std::vector<double>{0.75, -1.0, 0.0, 0.0, 1.0});
}

TEST_CASE("the sell layout stores 16-bit column offsets only when every chunk spans less than 2^16",
          "[sparse][spmv][distributed][sell]") {
  // 20 rows (one full chunk, one partial) of x with x[j] = j + 1: row r holds 1 at column
  // 7r and 2 at column span - 20 + r, so y_r = (7r + 1) + 2 (span - 19 + r), exact in float.
  auto const build = [](std::int32_t span) {
    std::vector<std::int32_t> offsets{0}, columns;
    std::vector<float> values;
    for (std::int32_t r = 0; r < 20; ++r) {
      columns.insert(columns.end(), {7 * r, span - 20 + r});
      values.insert(values.end(), {1.0f, 2.0f});
      offsets.push_back(static_cast<std::int32_t>(columns.size()));
    }
    return host_csr<float, std::int32_t>(20, span, offsets, columns, values);
  };
  for (std::int32_t span : {1000, 65536, 65557, 200000}) {
    auto const a = build(span);
    // Real entries of the first chunk span span - 20 + 15 - 0 columns.
    bool const narrow = span - 20 + 15 < 65536;
    CHECK(mgpu::backend::cpu::make_sell(a.view(), 1).compressed() == narrow);
    std::vector<float> x(static_cast<std::size_t>(span));
    for (std::size_t j = 0; j < x.size(); ++j) x[j] = static_cast<float>(j + 1);
    for (int n : {1, 3}) {
      mgpu::execution_policy<mgpu::cpu> policy{devices(n)};
      mgpu::distributed_csr<mgpu::cpu, float, std::int32_t> da(policy, a.view(), sell_options(1));
      std::vector<float> y(20, -1.0f);
      da.spmv(1.0f, std::span<float const>(x), 0.0f, std::span<float>(y));
      for (std::int32_t r = 0; r < 20; ++r) {
        CHECK(y[static_cast<std::size_t>(r)] == static_cast<float>((7 * r + 1) + 2 * (span - 19 + r)));
      }
    }
  }
}

TEST_CASE("spmv and spmm take std::vector operands and scalars that convert to the value type",
          "[spmv][spmm]") {
  // Issue 18: spmv needed explicit spans and a float literal for a float matrix.
  mgpu::execution_policy<mgpu::cpu> const policy("cpu:2");
  mgpu::csr_matrix<mgpu::cpu, float, std::int32_t> const a(2, 2, {0, 2, 3}, {0, 1, 1}, {1.f, 2.f, 3.f});
  std::vector<float> const x{1.f, 2.f};
  std::vector<float> y{10.f, 20.f};
  mgpu::spmv(policy, 1.0, a, x, 1, y);  // [1 2; 0 3]·(1, 2) + y
  CHECK(y == std::vector<float>{15.f, 26.f});
  mgpu::spmv(policy, 2, a.view(), x, 0.0, y);
  CHECK(y == std::vector<float>{10.f, 12.f});

  mgpu::dense_matrix<mgpu::cpu, float> b(2, 1, std::vector<float>{1.f, 2.f});
  mgpu::dense_matrix<mgpu::cpu, float> c(2, 1, 0.f);
  mgpu::spmm(policy, 1.0, a, b.view(), 0.0, c.view());  // a writable view of B is accepted
  CHECK(c(0, 0) == 5.f);
  CHECK(c(1, 0) == 6.f);
}

TEST_CASE("dense_matrix from row-major elements checks their count", "[dense]") {
  mgpu::dense_matrix<mgpu::cpu, double> const m(2, 3, std::vector<double>{1, 2, 3, 4, 5, 6});
  CHECK(m(1, 0) == 4.0);
  CHECK(m(0, 2) == 3.0);
  CHECK_THROWS_AS((mgpu::dense_matrix<mgpu::cpu, double>(2, 2, std::vector<double>{1, 2, 3})),
                  mgpu::dimension_mismatch);
}
