// Shared by the k-NN tests: random small-integer data (every dot product is exact in
// float, so every correct implementation ranks identically) and a float64 brute-force
// reference written independently of mgpu's kernels.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

#include <mgpu/algorithms/knn.hpp>
#include <mgpu/dense/dense_matrix.hpp>

namespace knn_test {

/// rows x cols of integers in [lo, hi]: few distinct values, so ties occur.
inline mgpu::dense_matrix<mgpu::cpu, float> random_matrix(std::int64_t rows, std::int64_t cols, int lo,
                                                          int hi, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> value(lo, hi);
  mgpu::dense_matrix<mgpu::cpu, float> m(rows, cols);
  for (std::int64_t i = 0; i < rows; ++i) {
    for (std::int64_t j = 0; j < cols; ++j) m(i, j) = static_cast<float>(value(gen));
  }
  return m;
}

/// The metric's value in double: squared distance, inner product or cosine similarity.
inline double exact_value(mgpu::dense_view<float const> q, std::int64_t qi,
                          mgpu::dense_view<float const> b, std::int64_t bi, mgpu::knn_metric metric) {
  double dot = 0, d2 = 0, qq = 0, bb = 0;
  for (std::int64_t j = 0; j < q.cols; ++j) {
    double const x = q(qi, j), y = b(bi, j);
    dot += x * y;
    d2 += (x - y) * (x - y);
    qq += x * x;
    bb += y * y;
  }
  switch (metric) {
    case mgpu::knn_metric::l2: return d2;
    case mgpu::knn_metric::inner_product: return dot;
    case mgpu::knn_metric::cosine: return qq > 0 && bb > 0 ? dot / std::sqrt(qq * bb) : 0.0;
  }
  return 0;
}

struct reference_row {
  std::vector<std::int64_t> indices;
  std::vector<double> values;
};

/// Brute force: every base row's exact value, sorted best first, ties toward the smaller
/// index, the first min(k, n) kept.
inline std::vector<reference_row> reference_knn(mgpu::dense_view<float const> b, mgpu::dense_view<float const> q,
                                                std::int64_t k, mgpu::knn_metric metric) {
  std::vector<reference_row> out(static_cast<std::size_t>(q.rows));
  bool const smaller_first = metric == mgpu::knn_metric::l2;
  for (std::int64_t qi = 0; qi < q.rows; ++qi) {
    std::vector<double> v(static_cast<std::size_t>(b.rows));
    for (std::int64_t bi = 0; bi < b.rows; ++bi) v[static_cast<std::size_t>(bi)] = exact_value(q, qi, b, bi, metric);
    std::vector<std::int64_t> order(v.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::int64_t x, std::int64_t y) {
      auto const vx = v[static_cast<std::size_t>(x)], vy = v[static_cast<std::size_t>(y)];
      return smaller_first ? vx < vy : vx > vy;
    });
    order.resize(static_cast<std::size_t>(std::min<std::int64_t>(k, b.rows)));
    auto& row = out[static_cast<std::size_t>(qi)];
    row.indices = order;
    for (auto i : order) row.values.push_back(v[static_cast<std::size_t>(i)]);
  }
  return out;
}

}  // namespace knn_test

/// mgpu::knn in FAISS's rows x k layout (topk_result::padded()), which the cases below
/// index as (query, position).
template <class... A>
auto padded_knn(A&&... args) {
  return mgpu::knn(std::forward<A>(args)...).padded();
}

