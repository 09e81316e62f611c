// Comparing two top-k results that were summed in different orders (GPU against host):
// the same rows, the same scores position by position up to round-off, and the same
// neighbours except where scores tie up to round-off.
#pragma once

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>

#include "mgpu/algorithms/topk_result.hpp"

namespace mgpu_test {

/// Row by row: got's and expected's scores agree within `tol` at every position; where
/// the ids differ, expected's neighbour is in got's row (anywhere: tied documents may
/// swap) with its score within 2·tol, or its score ties (within 2·tol) with got's last
/// score of the row, where either of two tied documents may be the one kept.
template <class T>
void check_same_topk_up_to_ties(mgpu::topk_result<T> const& got, mgpu::topk_result<T> const& expected, double tol) {
  REQUIRE(got.row_offsets == expected.row_offsets);
  for (std::int64_t q = 0; q < expected.rows(); ++q) {
    auto const gi = got.neighbors(q);
    auto const ei = expected.neighbors(q);
    auto const gs = got.scores_of(q);
    auto const es = expected.scores_of(q);
    for (std::size_t j = 0; j < ei.size(); ++j) {
      INFO("row " << q << ", position " << j << ": got " << gi[j] << " (" << gs[j] << "), expected " << ei[j] << " ("
                  << es[j] << ")");
      CHECK(std::abs(static_cast<double>(gs[j]) - static_cast<double>(es[j])) <= tol);
      if (gi[j] == ei[j]) continue;
      bool found = false;
      for (std::size_t i = 0; i < gi.size(); ++i) {
        if (gi[i] == ei[j]) found = std::abs(static_cast<double>(gs[i]) - static_cast<double>(es[j])) <= 2 * tol;
      }
      bool const boundary_tie = std::abs(static_cast<double>(es[j]) - static_cast<double>(gs.back())) <= 2 * tol;
      CHECK((found || boundary_tie));
    }
  }
}

}  // namespace mgpu_test
