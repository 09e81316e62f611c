// mgpu/mpi/distributed_dense.hpp — a dense matrix kept on the devices of a set spanning
// MPI ranks: one row block per global device, or one full copy per device (replicated).
//
//   auto x = mgpu::mpi::distributed_dense<mgpu::cpu, float>::replicated(policy, n, 1);
//   auto y = mgpu::mpi::distributed_dense<mgpu::cpu, float>::row_blocks(policy, m, 1, a.row_bounds());
//   mgpu::mpi::broadcast(host_x, x);                  // mpi/collectives.hpp
//   for (...) { a.spmv(1.0f, x, 0.0f, y); mgpu::mpi::all_gather(y, x); }
//
// Row blocks: global device g holds rows [row_bounds()[g], row_bounds()[g + 1]) of the
// whole (bounds: device_count() + 1 entries, the same on every rank), so rank r holds the
// contiguous rows [first_row(), first_row() + local_rows()) spread over its local devices.
// Replicated: every device of every rank holds all rows.
//
// The rank's part is an ordinary mgpu::distributed_dense over policy.local() (local()):
// its device d is global device policy.first_device() + d, and its row bounds are the
// global ones of this rank's devices minus first_row(). Local products (distributed_csr)
// and the per-rank algorithms use it directly; data crosses ranks only through the
// collectives of mpi/collectives.hpp.
//
// Construction is collective: every rank passes the same shape, distribution and bounds
// (checked by an agreement: a difference is reported by name on every rank), then
// allocates its blocks on its devices (zero-filled, each by its own device's worker).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "mgpu/core/error.hpp"
#include "mgpu/dense/distributed_dense.hpp"
#include "mgpu/mpi/error.hpp"
#include "mgpu/mpi/policy.hpp"

namespace mgpu::mpi {

/// A dense matrix resident on a distributed policy's devices (see the file comment).
template <class Kind, class T>
class distributed_dense {
 public:
  using kind = Kind;
  using value_type = T;
  using local_type = mgpu::distributed_dense<Kind, T>;

  /// One full rows x cols copy per device of every rank, zero-filled. Collective.
  /// @throws invalid_argument (negative shape; ranks passing different shapes),
  ///         out_of_memory (on any rank), mpi_error.
  [[nodiscard]] static distributed_dense replicated(distributed_policy<Kind> policy, std::int64_t rows,
                                                    std::int64_t cols) {
    std::vector<std::int64_t> bounds(policy.device_count() + 1, 0);
    return distributed_dense(std::move(policy), rows, cols, distribution::replicated, std::move(bounds));
  }

  /// Row blocks: global device g holds rows [bounds[g], bounds[g + 1]), zero-filled.
  /// `bounds` has device_count() + 1 non-decreasing entries from 0 to rows (a
  /// distributed_csr's row_bounds()), the same on every rank. Collective.
  /// @throws invalid_argument (bounds; ranks passing different shapes or bounds),
  ///         out_of_memory (on any rank), mpi_error.
  template <class B>
  [[nodiscard]] static distributed_dense row_blocks(distributed_policy<Kind> policy, std::int64_t rows,
                                                    std::int64_t cols, std::span<B const> bounds) {
    std::vector<std::int64_t> b(bounds.begin(), bounds.end());
    return distributed_dense(std::move(policy), rows, cols, distribution::row_blocks, std::move(b));
  }
  template <class B>
  [[nodiscard]] static distributed_dense row_blocks(distributed_policy<Kind> policy, std::int64_t rows,
                                                    std::int64_t cols, std::vector<B> const& bounds) {
    return row_blocks(std::move(policy), rows, cols, std::span<B const>(bounds));
  }

  distributed_dense(distributed_dense&&) noexcept = default;
  distributed_dense& operator=(distributed_dense&&) noexcept = default;

  [[nodiscard]] std::int64_t rows() const noexcept { return rows_; }
  [[nodiscard]] std::int64_t cols() const noexcept { return cols_; }
  [[nodiscard]] enum distribution distribution() const noexcept { return distribution_; }
  [[nodiscard]] distributed_policy<Kind> const& policy() const noexcept { return policy_; }
  /// Row blocks: global device g holds rows [row_bounds()[g], row_bounds()[g + 1]).
  /// Replicated: all zeros.
  [[nodiscard]] std::span<std::int64_t const> row_bounds() const noexcept { return bounds_; }
  /// The first row this rank holds (row blocks; 0 when replicated).
  [[nodiscard]] std::int64_t first_row() const noexcept {
    return distribution_ == distribution::replicated ? 0 : bounds_[policy_.first_device()];
  }
  /// The rows this rank holds: its row blocks together, or all rows when replicated.
  [[nodiscard]] std::int64_t local_rows() const noexcept {
    return distribution_ == distribution::replicated
               ? rows_
               : bounds_[policy_.first_device() + policy_.local_device_count()] - first_row();
  }
  /// This rank's blocks, as a distributed_dense over policy().local().
  [[nodiscard]] local_type& local() noexcept { return *local_; }
  [[nodiscard]] local_type const& local() const noexcept { return *local_; }

 private:
  distributed_dense(distributed_policy<Kind> policy, std::int64_t rows, std::int64_t cols, enum distribution how,
                    std::vector<std::int64_t> bounds)
      : policy_(std::move(policy)), rows_(rows), cols_(cols), distribution_(how), bounds_(std::move(bounds)) {
    auto const devices = policy_.device_count();
    auto error = detail::capture([&] {
      MGPU_EXPECTS(rows >= 0 && cols >= 0, "mpi::distributed_dense: shape must be non-negative, got ", rows, " x ",
                   cols);
      MGPU_EXPECTS(bounds_.size() == devices + 1, "mpi::distributed_dense: ", bounds_.size(), " row bounds for ",
                   devices, " devices over ", policy_.ranks(), " ranks (need devices + 1)");
      MGPU_EXPECTS(how == distribution::replicated || (bounds_.front() == 0 && bounds_.back() == rows),
                   "mpi::distributed_dense: row bounds must run from 0 to rows = ", rows, ", got ", bounds_.front(),
                   " .. ", bounds_.back());
      for (std::size_t g = 0; g < devices; ++g) {
        MGPU_EXPECTS(bounds_[g] <= bounds_[g + 1], "mpi::distributed_dense: row bounds decrease at device ", g,
                     ": ", bounds_[g], " then ", bounds_[g + 1]);
      }
    });
    auto const bounds_hash = detail::fnv1a(bounds_.data(), bounds_.size() * sizeof(std::int64_t));
    detail::agree(policy_.comm(), "mpi::distributed_dense",
                  {{"rows", rows},
                   {"cols", cols},
                   {"the distribution", static_cast<std::int64_t>(how)},
                   {"the row bounds (a hash of them)", static_cast<std::int64_t>(bounds_hash)}},
                  error);
    error = detail::capture([&] {
      if (how == distribution::replicated) {
        local_.emplace(local_type::replicated(policy_.local(), rows, cols));
        return;
      }
      auto const first = policy_.first_device();
      std::vector<std::int64_t> local_bounds(bounds_.begin() + static_cast<std::ptrdiff_t>(first),
                                             bounds_.begin() +
                                                 static_cast<std::ptrdiff_t>(first + policy_.local_device_count() + 1));
      auto const base = local_bounds.front();
      for (auto& b : local_bounds) b -= base;
      local_.emplace(local_type::row_blocks(policy_.local(), local_bounds.back(), cols, local_bounds));
    });
    detail::agree(policy_.comm(), "mpi::distributed_dense (allocation)", {}, error);
  }

  distributed_policy<Kind> policy_;
  std::int64_t rows_ = 0;
  std::int64_t cols_ = 0;
  enum distribution distribution_ = distribution::row_blocks;
  std::vector<std::int64_t> bounds_;
  std::optional<local_type> local_;
};

}  // namespace mgpu::mpi
