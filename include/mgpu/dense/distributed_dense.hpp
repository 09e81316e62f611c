// mgpu/dense/distributed_dense.hpp — a dense matrix kept on the devices of a policy:
// one row block per device, or one full copy per device (replicated).
//
//   auto x = mgpu::distributed_dense<mgpu::cpu, float>::replicated(policy, n, 1);
//   auto y = mgpu::distributed_dense<mgpu::cpu, float>::row_blocks(policy, m, 1, a.row_bounds());
//   mgpu::broadcast(mgpu::column_view(host_x), x);      // execution/collectives.hpp
//   for (...) { a.spmv(1.0f, x, 0.0f, y); mgpu::all_gather(y, x); }
//
// Device d owns a `dense_matrix<Kind, T>` (row-major, ld = cols): rows
// [row_bounds()[d], row_bounds()[d + 1]) of the whole for row blocks (bounds given, e.g.
// a distributed_csr's nnz-balanced ones, or even_row_bounds), all rows when replicated.
// Each block is allocated and zero-filled by a task on its own device's worker (its
// stream), so on host devices its pages are first touched there, as CUDA allocates on
// the device. Blocks stay where they are until the object dies; data crosses devices only
// through the collectives (which count the bytes) or the explicit transfers.
//
// Thread safety: as a container of blocks; a collective or product that writes a block
// must not run concurrently with another use of that block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "mgpu/core/device.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/execution/fork_join.hpp"
#include "mgpu/execution/policy.hpp"

namespace mgpu {

/// How a distributed_dense spreads its rows over the devices.
enum class distribution {
  row_blocks,  ///< device d holds rows [bounds[d], bounds[d + 1])
  replicated,  ///< every device holds every row
};

namespace detail {

/// The per-kind part of distributed_dense: a zero-filled rows x cols block made on
/// device `ctx` by a task running on its worker. The CUDA backend specialises it
/// (backend/cuda/dense_matrix.hpp).
template <class Kind>
struct dense_leaf;

template <>
struct dense_leaf<cpu> {
  template <class T>
  static dense_matrix<cpu, T> zeros(device_context<cpu>&, std::int64_t rows, std::int64_t cols) {
    return dense_matrix<cpu, T>(rows, cols, T{0});
  }
};

}  // namespace detail

/// `parts` contiguous blocks of about rows/parts rows each (the first rows % parts one
/// longer): bounds[p] = p·rows/parts rounded down. O(parts). @throws invalid_argument.
inline std::vector<std::int64_t> even_row_bounds(std::int64_t rows, std::size_t parts) {
  MGPU_EXPECTS(parts >= 1 && rows >= 0, "even_row_bounds: need parts >= 1 and rows >= 0, got ", parts, " and ",
               rows);
  std::vector<std::int64_t> bounds(parts + 1);
  for (std::size_t p = 0; p <= parts; ++p) {
    bounds[p] = rows * static_cast<std::int64_t>(p) / static_cast<std::int64_t>(parts);
  }
  return bounds;
}

/// A dense matrix resident on a policy's devices (see the file comment).
template <class Kind, class T>
class distributed_dense {
 public:
  using kind = Kind;
  using value_type = T;
  using block_type = dense_matrix<Kind, T>;

  /// One full rows x cols copy per device, zero-filled, each made on its device.
  /// @throws invalid_argument (negative shape), out_of_memory, device errors.
  [[nodiscard]] static distributed_dense replicated(execution_policy<Kind> policy, std::int64_t rows,
                                                    std::int64_t cols) {
    std::vector<std::int64_t> bounds(policy.device_count() + 1, 0);
    return distributed_dense(std::move(policy), rows, cols, distribution::replicated, std::move(bounds));
  }

  /// Row blocks: device d holds rows [bounds[d], bounds[d + 1]), zero-filled, made on
  /// its device. `bounds` has devices + 1 non-decreasing entries from 0 to rows (a
  /// distributed_csr's row_bounds(), or even_row_bounds(rows, devices)); empty blocks
  /// (0 rows) are allowed. @throws invalid_argument (bounds), out_of_memory, device errors.
  template <class B>
  [[nodiscard]] static distributed_dense row_blocks(execution_policy<Kind> policy, std::int64_t rows,
                                                    std::int64_t cols, std::span<B const> bounds) {
    MGPU_EXPECTS(bounds.size() == policy.device_count() + 1, "row_blocks: ", bounds.size(),
                 " bounds for ", policy.device_count(), " devices (need devices + 1)");
    std::vector<std::int64_t> b(bounds.begin(), bounds.end());
    MGPU_EXPECTS(b.front() == 0 && b.back() == rows, "row_blocks: bounds must run from 0 to rows = ", rows,
                 ", got ", b.front(), " .. ", b.back());
    for (std::size_t d = 0; d + 1 < b.size(); ++d) {
      MGPU_EXPECTS(b[d] <= b[d + 1], "row_blocks: bounds decrease at device ", d, ": ", b[d], " then ", b[d + 1]);
    }
    return distributed_dense(std::move(policy), rows, cols, distribution::row_blocks, std::move(b));
  }
  template <class B>
  [[nodiscard]] static distributed_dense row_blocks(execution_policy<Kind> policy, std::int64_t rows,
                                                    std::int64_t cols, std::vector<B> const& bounds) {
    return row_blocks(std::move(policy), rows, cols, std::span<B const>(bounds));
  }

  distributed_dense(distributed_dense&&) noexcept = default;
  distributed_dense& operator=(distributed_dense&&) noexcept = default;

  [[nodiscard]] std::int64_t rows() const noexcept { return rows_; }
  [[nodiscard]] std::int64_t cols() const noexcept { return cols_; }
  [[nodiscard]] enum distribution distribution() const noexcept { return distribution_; }
  [[nodiscard]] execution_policy<Kind> const& policy() const noexcept { return policy_; }
  [[nodiscard]] std::size_t device_count() const noexcept { return blocks_.size(); }
  /// Row blocks: device d holds rows [row_bounds()[d], row_bounds()[d + 1]).
  /// Replicated: all zeros (no block boundaries).
  [[nodiscard]] std::span<std::int64_t const> row_bounds() const noexcept { return bounds_; }
  /// The first row of the whole that device d's block holds.
  [[nodiscard]] std::int64_t first_row(std::size_t d) const noexcept {
    return distribution_ == distribution::replicated ? 0 : bounds_[d];
  }

  /// Device d's block (all rows when replicated). @throws std::out_of_range.
  [[nodiscard]] block_type& block(std::size_t d) { return blocks_.at(d); }
  [[nodiscard]] block_type const& block(std::size_t d) const { return blocks_.at(d); }
  [[nodiscard]] dense_view<T, Kind> view(std::size_t d) { return blocks_.at(d).view(); }
  [[nodiscard]] dense_view<T const, Kind> view(std::size_t d) const { return blocks_.at(d).view(); }

 private:
  distributed_dense(execution_policy<Kind> policy, std::int64_t rows, std::int64_t cols, enum distribution how,
                    std::vector<std::int64_t> bounds)
      : policy_(std::move(policy)), rows_(rows), cols_(cols), distribution_(how), bounds_(std::move(bounds)) {
    MGPU_EXPECTS(rows >= 0 && cols >= 0, "distributed_dense: shape must be non-negative, got ", rows, " x ", cols);
    std::vector<std::optional<block_type>> made(policy_.device_count());
    detail::fork_join(policy_, [&](auto& ctx, std::size_t d) {
      auto const block_rows = distribution_ == distribution::replicated ? rows_ : bounds_[d + 1] - bounds_[d];
      made[d].emplace(detail::dense_leaf<Kind>::template zeros<T>(ctx, block_rows, cols_));
    });
    blocks_.reserve(made.size());
    for (auto& m : made) blocks_.push_back(std::move(*m));
  }

  execution_policy<Kind> policy_;
  std::int64_t rows_ = 0;
  std::int64_t cols_ = 0;
  enum distribution distribution_ = distribution::row_blocks;
  std::vector<std::int64_t> bounds_;
  std::vector<block_type> blocks_;
};

}  // namespace mgpu
