// benchmarks/als/make_interactions.hpp — synthetic interaction matrices shaped like
// public recommendation data sets, for ALS benchmarks.
//
// Users' activity and items' popularity both follow power laws, as in real logs:
//   - each user's number of distinct items is drawn from a Pareto distribution (shape
//     1.5, so a few users are very active), scaled so the total is the target nnz;
//   - items are drawn by a Zipf law over a shuffled item order (exponent 0.9 for
//     MovieLens, 1.0 for Last.fm), without repetition within a user.
// Values: MovieLens-20M thresholded at 4 stars keeps ratings 4, 4.5 and 5; Last.fm 360k
// holds play counts, drawn from a Pareto distribution (shape 1.2, at least 1).
// The shapes follow the public data sets: MovieLens-20M (ratings >= 4) 138,493 users x
// 26,744 movies with about 10M entries; Last.fm 360k 358,868 users x 160,112 artists
// with 17.5M entries. Deterministic for a given seed.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include <mgpu/sparse/csr_matrix.hpp>

namespace mgpu_bench {

struct interaction_shape {
  std::string name;
  std::int32_t users;
  std::int32_t items;
  std::int64_t nnz;
  double item_exponent;
  bool ratings;  // MovieLens-style ratings, else play counts
};

inline interaction_shape const movielens_20m{"movielens-20m", 138493, 26744, 10'000'000, 0.9, true};
inline interaction_shape const lastfm_360k{"lastfm-360k", 358868, 160112, 17'500'000, 1.0, false};

/// A users x items CSR matrix of the given shape (see the file comment), scaled by
/// `scale` in users, items and nnz (1 = full size).
inline mgpu::csr_matrix<mgpu::cpu, float, std::int32_t> make_interactions(interaction_shape shape,
                                                                         double scale = 1.0,
                                                                         std::uint64_t seed = 1) {
  auto const users = std::max<std::int32_t>(1, static_cast<std::int32_t>(shape.users * scale));
  auto const items = std::max<std::int32_t>(2, static_cast<std::int32_t>(shape.items * scale));
  auto const target = static_cast<double>(shape.nnz) * scale;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);

  std::vector<double> activity(static_cast<std::size_t>(users));
  for (auto& a : activity) a = std::pow(1.0 - unit(rng), -1.0 / 1.5);
  double const total = std::accumulate(activity.begin(), activity.end(), 0.0);
  std::vector<std::int32_t> degree(static_cast<std::size_t>(users));
  auto const cap = std::max<std::int32_t>(1, items / 3);
  for (std::size_t u = 0; u < degree.size(); ++u) {
    degree[u] = std::clamp(static_cast<std::int32_t>(std::lround(activity[u] * target / total)), 1, cap);
  }

  std::vector<double> cdf(static_cast<std::size_t>(items));
  double sum = 0;
  for (std::int32_t i = 0; i < items; ++i) cdf[static_cast<std::size_t>(i)] = sum += std::pow(i + 1.0, -shape.item_exponent);
  std::vector<std::int32_t> order(static_cast<std::size_t>(items));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);

  std::vector<std::int32_t> offsets{0}, cols;
  std::vector<float> values;
  cols.reserve(static_cast<std::size_t>(target * 1.05));
  values.reserve(cols.capacity());
  std::unordered_set<std::int32_t> seen;
  std::vector<std::int32_t> row;
  for (std::int32_t u = 0; u < users; ++u) {
    seen.clear();
    row.clear();
    while (static_cast<std::int32_t>(row.size()) < degree[static_cast<std::size_t>(u)]) {
      auto const pos = std::lower_bound(cdf.begin(), cdf.end(), unit(rng) * sum) - cdf.begin();
      auto const item = order[static_cast<std::size_t>(std::min<std::ptrdiff_t>(pos, items - 1))];
      if (seen.insert(item).second) row.push_back(item);
    }
    std::sort(row.begin(), row.end());
    for (auto item : row) {
      cols.push_back(item);
      if (shape.ratings) {
        values.push_back(4.0f + 0.5f * static_cast<float>(std::min(2, static_cast<int>(unit(rng) * 3))));
      } else {
        values.push_back(std::floor(static_cast<float>(std::pow(1.0 - unit(rng), -1.0 / 1.2))));
      }
    }
    offsets.push_back(static_cast<std::int32_t>(cols.size()));
  }
  return {users, items, offsets, cols, values};
}

}  // namespace mgpu_bench
