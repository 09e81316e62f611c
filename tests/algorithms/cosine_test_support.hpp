// Shared by the cosine tests: sparse matrices from dense rows, and the independent
// reference (every nonzero cosine computed in double from the dense rows) the results
// are checked against.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include <mgpu/algorithms/topk_result.hpp>
#include <mgpu/sparse/csr_matrix.hpp>

namespace cosine_test {

using matrix = mgpu::csr_matrix<mgpu::cpu, float, std::int32_t>;
using dense = std::vector<std::vector<float>>;

/// The CSR form of dense rows of `cols` columns (zeros not stored).
inline matrix from_dense(dense const& rows, std::int32_t cols) {
  std::vector<std::int32_t> offsets{0}, indices;
  std::vector<float> values;
  for (auto const& row : rows) {
    for (std::int32_t c = 0; c < cols; ++c) {
      if (row[static_cast<std::size_t>(c)] != 0.0f) {
        indices.push_back(c);
        values.push_back(row[static_cast<std::size_t>(c)]);
      }
    }
    offsets.push_back(static_cast<std::int32_t>(indices.size()));
  }
  return matrix(static_cast<std::int64_t>(rows.size()), cols, offsets, indices, values);
}

struct ref_pair {
  double score;
  std::int64_t index;
};

/// Every nonzero cosine of query row i with corpus row j, in double from the dense rows,
/// per query sorted by (score descending, index ascending); j = i skipped on request.
inline std::vector<std::vector<ref_pair>> all_scores(dense const& q, dense const& c, bool exclude_self) {
  auto norm = [](std::vector<float> const& r) {
    double s = 0;
    for (float v : r) s += double(v) * double(v);
    return std::sqrt(s);
  };
  std::vector<std::vector<ref_pair>> out;
  for (std::size_t i = 0; i < q.size(); ++i) {
    std::vector<ref_pair> row;
    for (std::size_t j = 0; j < c.size(); ++j) {
      if (exclude_self && i == j) continue;
      double dot = 0;
      for (std::size_t t = 0; t < q[i].size(); ++t) dot += double(q[i][t]) * double(c[j][t]);
      double const nq = norm(q[i]), nc = norm(c[j]);
      double const s = (nq == 0 || nc == 0) ? 0.0 : dot / (nq * nc);
      if (s != 0) row.push_back({s, static_cast<std::int64_t>(j)});
    }
    std::stable_sort(row.begin(), row.end(), [](auto const& a, auto const& b) { return a.score > b.score; });
    out.push_back(row);
  }
  return out;
}

/// Scores must agree rank by rank with the reference to float round-off; ids too, except
/// among reference near-ties (round-off may order them either way). Only the first `k`
/// entries of each reference row are compared: the reference may hold more, so that a tie
/// at rank k is seen.
inline void require_matches(mgpu::topk_result<float> const& got, std::vector<std::vector<ref_pair>> const& want,
                            std::size_t k = std::numeric_limits<std::size_t>::max()) {
  REQUIRE(got.rows() == static_cast<std::int64_t>(want.size()));
  for (std::size_t q = 0; q < want.size(); ++q) {
    INFO("query " << q);
    auto const& w = want[q];
    auto const ids = got.neighbors(static_cast<std::int64_t>(q));
    auto const sc = got.scores_of(static_cast<std::int64_t>(q));
    std::size_t const compared = std::min(w.size(), k);
    REQUIRE(ids.size() == compared);
    for (std::size_t r = 0; r < compared; ++r) {
      REQUIRE(sc[r] == Approx(w[r].score).margin(1e-5));
      bool const tied = (r > 0 && std::abs(w[r - 1].score - w[r].score) < 1e-5) ||
                        (r + 1 < w.size() && std::abs(w[r + 1].score - w[r].score) < 1e-5);
      if (!tied) REQUIRE(ids[r] == w[r].index);
    }
  }
}

}  // namespace cosine_test
