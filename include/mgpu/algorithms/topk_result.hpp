// mgpu/algorithms/topk_result.hpp — the ranked neighbour lists that top-k searches return.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace mgpu {

/// Up to k (neighbour index, score) pairs per query row, best first, stored like CSR:
/// the pairs of query q are positions [row_offsets[q], row_offsets[q+1]) of `indices`
/// and `scores`. A row holds fewer than k pairs when fewer candidates qualify.
/// Offsets are 64-bit so that rows·k never overflows.
template <class T, class I>
struct topk_result {
  std::vector<std::int64_t> row_offsets{0};
  std::vector<I> indices;
  std::vector<T> scores;

  [[nodiscard]] std::int64_t rows() const noexcept {
    return static_cast<std::int64_t>(row_offsets.size()) - 1;
  }
  [[nodiscard]] std::span<I const> neighbors(std::int64_t q) const noexcept {
    return {indices.data() + row_offsets[static_cast<std::size_t>(q)], count(q)};
  }
  [[nodiscard]] std::span<T const> scores_of(std::int64_t q) const noexcept {
    return {scores.data() + row_offsets[static_cast<std::size_t>(q)], count(q)};
  }

 private:
  [[nodiscard]] std::size_t count(std::int64_t q) const noexcept {
    auto const i = static_cast<std::size_t>(q);
    return static_cast<std::size_t>(row_offsets[i + 1] - row_offsets[i]);
  }
};

}  // namespace mgpu
