// Helpers shared by the ALS tests: dense references in double, built from the model's
// definition (algorithms/als.hpp's file comment), never from the library's kernels.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <mgpu/algorithms/als.hpp>
#include <mgpu/io/matrix_market.hpp>

namespace als_test {


using policy_t = mgpu::execution_policy<mgpu::cpu>;
using matrix = mgpu::csr_matrix<mgpu::cpu, float, std::int32_t>;
using dense = std::vector<std::vector<double>>;
using factors_t = mgpu::dense_matrix<mgpu::cpu, float>;

inline matrix from_dense(dense const& rows, std::int32_t cols) {
  std::vector<std::int32_t> offsets{0}, indices;
  std::vector<float> values;
  for (auto const& row : rows) {
    for (std::int32_t c = 0; c < cols; ++c) {
      if (row[static_cast<std::size_t>(c)] != 0.0) {
        indices.push_back(c);
        values.push_back(static_cast<float>(row[static_cast<std::size_t>(c)]));
      }
    }
    offsets.push_back(static_cast<std::int32_t>(indices.size()));
  }
  return matrix(static_cast<std::int64_t>(rows.size()), cols, offsets, indices, values);
}

inline dense to_dense(matrix const& m) {
  dense out(static_cast<std::size_t>(m.rows()), std::vector<double>(static_cast<std::size_t>(m.cols()), 0.0));
  auto const v = m.view();
  for (std::int32_t r = 0; r < m.rows(); ++r) {
    for (std::int32_t p = v.row_begin(r); p < v.row_end(r); ++p) {
      out[static_cast<std::size_t>(r)][static_cast<std::size_t>(v.col_indices[p])] = v.values[p];
    }
  }
  return out;
}

inline dense transpose_dense(dense const& a) {
  dense t(a.empty() ? 0 : a[0].size(), std::vector<double>(a.size()));
  for (std::size_t i = 0; i < a.size(); ++i)
    for (std::size_t j = 0; j < a[i].size(); ++j) t[j][i] = a[i][j];
  return t;
}

inline dense to_dense(factors_t const& f) {
  dense out(static_cast<std::size_t>(f.rows()), std::vector<double>(static_cast<std::size_t>(f.cols())));
  for (std::int64_t i = 0; i < f.rows(); ++i)
    for (std::int64_t j = 0; j < f.cols(); ++j) out[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)] = f(i, j);
  return out;
}

inline factors_t to_factors(dense const& d) {
  factors_t f(static_cast<std::int64_t>(d.size()), static_cast<std::int64_t>(d[0].size()));
  for (std::size_t i = 0; i < d.size(); ++i)
    for (std::size_t j = 0; j < d[i].size(); ++j) f(static_cast<std::int64_t>(i), static_cast<std::int64_t>(j)) = static_cast<float>(d[i][j]);
  return f;
}

inline dense random_factors(std::mt19937& rng, std::size_t rows, std::size_t f) {
  std::uniform_real_distribution<double> u(-0.5, 0.5);
  dense d(rows, std::vector<double>(f));
  for (auto& row : d)
    for (auto& v : row) v = static_cast<float>(u(rng));
  return d;
}

inline dense random_interactions(std::mt19937& rng, std::size_t rows, std::size_t cols, double density) {
  std::bernoulli_distribution keep(density);
  std::uniform_int_distribution<int> count(1, 5);
  dense d(rows, std::vector<double>(cols, 0.0));
  for (auto& row : d)
    for (auto& v : row)
      if (keep(rng)) v = count(rng);
  return d;
}

/// Weight and target of a pair, straight from the model definition.
struct pair_terms {
  double w, t;
};
inline pair_terms terms(double r, mgpu::als_options const& o) {
  if (r == 0.0) return {o.unobserved_weight, 0.0};
  return {1.0 + o.alpha * r, o.model == mgpu::als_model::weighted ? r : 1.0};
}

/// Gaussian elimination with partial pivoting, in double.
inline std::vector<double> gauss_solve(dense a, std::vector<double> b) {
  auto const n = b.size();
  for (std::size_t k = 0; k < n; ++k) {
    std::size_t piv = k;
    for (std::size_t i = k + 1; i < n; ++i)
      if (std::abs(a[i][k]) > std::abs(a[piv][k])) piv = i;
    std::swap(a[k], a[piv]);
    std::swap(b[k], b[piv]);
    for (std::size_t i = k + 1; i < n; ++i) {
      double const m = a[i][k] / a[k][k];
      for (std::size_t j = k; j < n; ++j) a[i][j] -= m * a[k][j];
      b[i] -= m * b[k];
    }
  }
  std::vector<double> x(n);
  for (std::size_t k = n; k-- > 0;) {
    double s = b[k];
    for (std::size_t j = k + 1; j < n; ++j) s -= a[k][j] * x[j];
    x[k] = s / a[k][k];
  }
  return x;
}

/// Row u's system summed over every column i of `r` (observed or not).
inline void normal_equations(std::vector<double> const& r_row, dense const& fixed, mgpu::als_options const& o,
                      dense& a, std::vector<double>& b) {
  auto const f = fixed[0].size();
  a.assign(f, std::vector<double>(f, 0.0));
  b.assign(f, 0.0);
  for (std::size_t i = 0; i < r_row.size(); ++i) {
    auto const [w, t] = terms(r_row[i], o);
    for (std::size_t j = 0; j < f; ++j) {
      b[j] += w * t * fixed[i][j];
      for (std::size_t k = 0; k < f; ++k) a[j][k] += w * fixed[i][j] * fixed[i][k];
    }
  }
  for (std::size_t j = 0; j < f; ++j) a[j][j] += o.regularization;
}

/// The reference half-step: every row solved from its full normal equations.
inline dense reference_half_step(dense const& r, dense const& fixed, mgpu::als_options const& o) {
  dense out;
  dense a;
  std::vector<double> b;
  for (auto const& row : r) {
    normal_equations(row, fixed, o, a, b);
    out.push_back(gauss_solve(a, b));
  }
  return out;
}

/// max over rows of ‖A x − b‖ / ‖b‖ for the rows with b ≠ 0.
inline double worst_relative_residual(dense const& r, dense const& fixed, dense const& solved,
                               mgpu::als_options const& o) {
  double worst = 0;
  dense a;
  std::vector<double> b;
  for (std::size_t u = 0; u < r.size(); ++u) {
    normal_equations(r[u], fixed, o, a, b);
    double res = 0, nb = 0;
    for (std::size_t j = 0; j < b.size(); ++j) {
      double ax = 0;
      for (std::size_t k = 0; k < b.size(); ++k) ax += a[j][k] * solved[u][k];
      res += (ax - b[j]) * (ax - b[j]);
      nb += b[j] * b[j];
    }
    if (nb > 0) worst = std::max(worst, std::sqrt(res / nb));
  }
  return worst;
}

inline double reference_loss(dense const& r, dense const& x, dense const& y, mgpu::als_options const& o) {
  double loss = 0;
  for (std::size_t u = 0; u < r.size(); ++u) {
    for (std::size_t i = 0; i < r[u].size(); ++i) {
      double p = 0;
      for (std::size_t j = 0; j < x[u].size(); ++j) p += x[u][j] * y[i][j];
      auto const [w, t] = terms(r[u][i], o);
      loss += w * (t - p) * (t - p);
    }
  }
  for (auto const* side : {&x, &y})
    for (auto const& row : *side)
      for (double v : row) loss += o.regularization * v * v;
  return loss;
}

inline double max_abs_diff(dense const& a, dense const& b) {
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    for (std::size_t j = 0; j < a[i].size(); ++j) d = std::max(d, std::abs(a[i][j] - b[i][j]));
  return d;
}

inline double max_abs(dense const& a) {
  double d = 0;
  for (auto const& row : a)
    for (double v : row) d = std::max(d, std::abs(v));
  return d;
}

inline matrix read_fixture() {
  return mgpu::read_matrix_market<float, std::int32_t>(std::string(MGPU_TEST_DATA_DIR) + "/als/dpkg-status.mtx");
}

}  // namespace als_test
