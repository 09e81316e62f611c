// mgpu/mpi/distributed_csr.hpp — a CSR matrix whose row blocks are spread over the
// devices of a set spanning MPI ranks, for SpMV and SpMM (host devices).
//
//   // every rank holds its own rows (e.g. read from its part of a file) ...
//   mgpu::mpi::distributed_csr<mgpu::cpu, float, int> a(policy, my_rows, {.layout = mgpu::spmv_layout::csr});
//   // ... or every rank holds the whole matrix and keeps its share:
//   auto a = mgpu::mpi::distributed_csr<mgpu::cpu, float, int>::from_whole(policy, whole);
//
//   auto x = mgpu::mpi::distributed_dense<mgpu::cpu, float>::replicated(policy, a.cols(), 1);
//   auto y = mgpu::mpi::distributed_dense<mgpu::cpu, float>::row_blocks(policy, a.rows(), 1, a.row_bounds());
//   mgpu::mpi::broadcast(host_x, x);                    // x crosses the network once
//   for (...) {
//     a.spmv(1.0f, x, 0.0f, y);                        // moves nothing
//     mgpu::mpi::all_gather(y, x);                     // (ranks - 1)·n·sizeof(T) bytes
//   }
//   mgpu::mpi::gather(y, host_y);                      // on rank 0
//
// Rows: rank r holds the contiguous global rows [first_row(), first_row() + local_rows()),
// ranks in order (rank 0 first); a rank may hold none. Inside the rank they are an
// ordinary mgpu::distributed_csr over policy.local() (local()): nnz-balanced row blocks,
// one per local device, with the layout of the options (sparse/distributed_csr.hpp).
// row_bounds() are the global device bounds, gathered from the ranks when the matrix is
// made: global device g holds rows [row_bounds()[g], row_bounds()[g + 1]).
//
// Products run the single-process per-device kernels on each rank's blocks, with no new
// kernel: a row's result depends only on the row, x and the layout (every host layout sums
// a row's entries in an order fixed by the row alone), so SpMV and SpMM equal the
// single-process products bitwise for the same explicit layout, whatever the ranks and
// devices. With spmv_layout::automatic the layout is chosen per block, so a different
// split may choose differently (equal to round-off): pass an explicit layout when results
// must be reproducible across splits.
//
// Every operation is collective and ends the same way on every rank (mpi/error.hpp): the
// global column count and the options must agree (reported by name otherwise); a rank
// whose operands are wrong makes every rank throw its error. After a product that threw,
// the contents of y (C) are unspecified. Products move nothing between devices or ranks;
// the collectives move x (B) and y (C) where an algorithm needs it.
#pragma once

#include <mpi.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "mgpu/core/error.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/mpi/distributed_dense.hpp"
#include "mgpu/mpi/error.hpp"
#include "mgpu/mpi/policy.hpp"
#include "mgpu/sparse/csr_view.hpp"
#include "mgpu/sparse/distributed_csr.hpp"
#include "mgpu/sparse/partition.hpp"

namespace mgpu::mpi {

/// A sparse matrix partitioned over the devices of a distributed policy (see the file
/// comment).
template <class Kind, class T, class I>
class distributed_csr {
  static_assert(std::is_same_v<Kind, cpu>,
                "mgpu::mpi::distributed_csr runs on host devices only in this version (no GPU collectives yet)");

 public:
  using local_type = mgpu::distributed_csr<Kind, T, I>;

  /// This rank's rows of the matrix (`local_rows`, any number including 0; every rank's
  /// the same column count), the ranks' rows following each other in rank order; split by
  /// nnz over the rank's devices. On host devices without `resident` the blocks view
  /// `local_rows`, which must then outlive the matrix. Collective. Time: as
  /// mgpu::distributed_csr, plus two allgathers.
  /// @throws invalid_argument (ranks disagreeing on cols or the options), the errors of
  ///         mgpu::distributed_csr on any rank, mpi_error.
  distributed_csr(distributed_policy<Kind> policy, csr_view<T, I> local_rows,
                  distributed_csr_options const& options = {})
      : policy_(std::move(policy)), cols_(local_rows.cols) {
    auto const comm = policy_.comm();
    auto error = detail::capture([&] {
      MGPU_EXPECTS(local_rows.rows >= 0 && local_rows.cols >= 0, "mpi::distributed_csr: this rank's rows are ",
                   static_cast<std::int64_t>(local_rows.rows), " x ", static_cast<std::int64_t>(local_rows.cols));
    });
    detail::agree(comm, "mpi::distributed_csr",
                  {{"cols", static_cast<std::int64_t>(local_rows.cols)},
                   {"the option layout", static_cast<std::int64_t>(options.layout)},
                   {"the option sell_sigma", options.sell_sigma},
                   detail::floating_value("the option sell_max_padding", options.sell_max_padding),
                   {"the option resident", options.resident ? 1 : 0}},
                  error);
    std::array<std::int64_t, 2> const mine{static_cast<std::int64_t>(local_rows.rows),
                                           static_cast<std::int64_t>(local_rows.nnz())};
    std::vector<std::int64_t> all(2 * static_cast<std::size_t>(policy_.ranks()));
    MGPU_MPI_TRY(MPI_Allgather(mine.data(), 2, MPI_INT64_T, all.data(), 2, MPI_INT64_T, comm));
    for (int r = 0; r < policy_.ranks(); ++r) {
      auto const rows = all[2 * static_cast<std::size_t>(r)];
      if (r < policy_.rank()) first_row_ += rows;
      rows_ += rows;
      nnz_ += all[2 * static_cast<std::size_t>(r) + 1];
    }
    error = detail::capture([&] { local_.emplace(policy_.local(), local_rows, options); });
    detail::agree(comm, "mpi::distributed_csr (local blocks)", {}, error);
    // Global row bounds: each rank's local bounds, shifted by its first row.
    auto const local_bounds = local_->row_bounds();
    std::vector<std::int64_t> shifted(policy_.local_device_count());
    for (std::size_t d = 0; d < shifted.size(); ++d) shifted[d] = first_row_ + local_bounds[d];
    std::vector<int> counts(static_cast<std::size_t>(policy_.ranks()));
    std::vector<int> displs(counts.size());
    for (int r = 0; r < policy_.ranks(); ++r) {
      counts[static_cast<std::size_t>(r)] = static_cast<int>(policy_.device_count(r));
      displs[static_cast<std::size_t>(r)] = static_cast<int>(policy_.first_device(r));
    }
    bounds_.resize(policy_.device_count() + 1);
    MGPU_MPI_TRY(MPI_Allgatherv(shifted.data(), static_cast<int>(shifted.size()), MPI_INT64_T, bounds_.data(),
                                counts.data(), displs.data(), MPI_INT64_T, comm));
    bounds_.back() = rows_;
  }

  /// Every rank passes the whole matrix (the same on every rank: its shape and nnz are
  /// checked, not its entries) and keeps the rows of its devices under an nnz-balanced
  /// split over the global set (partition_rows_by_nnz over device_count() parts), then
  /// splits them again by nnz over its own devices. Collective.
  /// @throws invalid_argument (ranks disagreeing on rows, cols, nnz or the options), as
  ///         the constructor.
  [[nodiscard]] static distributed_csr from_whole(distributed_policy<Kind> policy, csr_view<T, I> whole,
                                                  distributed_csr_options const& options = {}) {
    detail::agree(policy.comm(), "mpi::distributed_csr::from_whole",
                  {{"rows", static_cast<std::int64_t>(whole.rows)},
                   {"cols", static_cast<std::int64_t>(whole.cols)},
                   {"nnz", static_cast<std::int64_t>(whole.nnz())}},
                  nullptr);
    auto const bounds = partition_rows_by_nnz(whole, policy.device_count());
    auto const first = policy.first_device();
    auto const mine = whole.row_block(bounds[first], bounds[first + policy.local_device_count()]);
    return distributed_csr(std::move(policy), mine, options);
  }

  distributed_csr(distributed_csr&&) noexcept = default;
  distributed_csr& operator=(distributed_csr&&) noexcept = default;

  /// Global shape and stored entries.
  [[nodiscard]] std::int64_t rows() const noexcept { return rows_; }
  [[nodiscard]] std::int64_t cols() const noexcept { return cols_; }
  [[nodiscard]] std::int64_t nnz() const noexcept { return nnz_; }
  /// This rank's rows are [first_row(), first_row() + local_rows()).
  [[nodiscard]] std::int64_t first_row() const noexcept { return first_row_; }
  [[nodiscard]] std::int64_t local_rows() const noexcept { return bounds_[policy_.first_device() + policy_.local_device_count()] - first_row_; }
  /// Global device g holds rows [row_bounds()[g], row_bounds()[g + 1]) (device_count() + 1
  /// entries, the same on every rank).
  [[nodiscard]] std::span<std::int64_t const> row_bounds() const noexcept { return bounds_; }
  [[nodiscard]] distributed_policy<Kind> const& policy() const noexcept { return policy_; }
  /// This rank's part, an mgpu::distributed_csr over policy().local().
  [[nodiscard]] local_type& local() noexcept { return *local_; }
  [[nodiscard]] local_type const& local() const noexcept { return *local_; }

  /// Resident y = alpha·A·x + beta·y: x replicated (cols x 1), y in this matrix's row
  /// blocks (row_blocks(policy, rows(), 1, row_bounds())), both on this matrix's policy.
  /// Each device multiplies its block by its own copy of x; nothing moves. beta == 0: y
  /// is not read. Collective (one agreement). O(nnz + rows) over all devices.
  /// @throws invalid_argument (policies, distributions, y's bounds, ranks disagreeing on
  ///         alpha, beta or the shapes), dimension_mismatch, device errors; on every rank.
  void spmv(T alpha, distributed_dense<Kind, T> const& x, T beta, distributed_dense<Kind, T>& y) {
    auto const error = detail::capture([&] {
      MGPU_EXPECTS(x.cols() == 1 && y.cols() == 1, "mpi::distributed_csr::spmv: x and y must be vectors (one column), got ",
                   x.cols(), " and ", y.cols(), " columns; use spmm");
      check_operands("mpi::distributed_csr::spmv", x, y);
      local_->spmv(alpha, x.local(), beta, y.local());
    });
    detail::agree(policy_.comm(), "mpi::distributed_csr::spmv",
                  {{"the rows of x", x.rows()},
                   {"the rows of y", y.rows()},
                   detail::floating_value("alpha", static_cast<double>(alpha)),
                   detail::floating_value("beta", static_cast<double>(beta))},
                  error);
  }

  /// Resident C = alpha·A·B + beta·C: B replicated (cols x n), C in this matrix's row
  /// blocks (rows x n). Nothing moves. Collective. O(nnz·n + rows·n) over all devices.
  /// @throws as spmv (ranks must also agree on n).
  void spmm(T alpha, distributed_dense<Kind, T> const& b, T beta, distributed_dense<Kind, T>& c) {
    auto const error = detail::capture([&] {
      check_operands("mpi::distributed_csr::spmm", b, c);
      local_->spmm(alpha, b.local(), beta, c.local());
    });
    detail::agree(policy_.comm(), "mpi::distributed_csr::spmm",
                  {{"the rows of B", b.rows()},
                   {"the columns of B", b.cols()},
                   {"the rows of C", c.rows()},
                   {"the columns of C", c.cols()},
                   detail::floating_value("alpha", static_cast<double>(alpha)),
                   detail::floating_value("beta", static_cast<double>(beta))},
                  error);
  }

  /// y_local = alpha·A_local·x + beta·y_local on host arrays: x holds all cols() entries
  /// (the same on every rank), y_local this rank's local_rows() entries. Nothing moves.
  /// Collective (one agreement). @throws dimension_mismatch (sizes), invalid_argument (x and
  /// y overlap; ranks disagreeing on x's size, alpha or beta); on every rank.
  void spmv(T alpha, std::span<T const> x, T beta, std::span<T> y_local) {
    auto const error = detail::capture([&] { local_->spmv(alpha, x, beta, y_local); });
    detail::agree(policy_.comm(), "mpi::distributed_csr::spmv (host arrays)",
                  {{"the size of x", static_cast<std::int64_t>(x.size())},
                   detail::floating_value("alpha", static_cast<double>(alpha)),
                   detail::floating_value("beta", static_cast<double>(beta))},
                  error);
  }

  /// C_local = alpha·A_local·B + beta·C_local on host views: B is cols() x n (the same on
  /// every rank), C_local this rank's local_rows() x n. Collective.
  /// @throws as the host spmv (ranks must also agree on n).
  void spmm(T alpha, dense_view<T const> b, T beta, dense_view<T> c_local) {
    auto const error = detail::capture([&] { local_->spmm(alpha, b, beta, c_local); });
    detail::agree(policy_.comm(), "mpi::distributed_csr::spmm (host arrays)",
                  {{"the rows of B", b.rows},
                   {"the columns of B", b.cols},
                   detail::floating_value("alpha", static_cast<double>(alpha)),
                   detail::floating_value("beta", static_cast<double>(beta))},
                  error);
  }

 private:
  void check_operands(char const* what, distributed_dense<Kind, T> const& b, distributed_dense<Kind, T> const& c) const {
    MGPU_EXPECTS(b.policy().same_devices(policy_) && c.policy().same_devices(policy_), what,
                 ": the operands must live on the matrix's distributed policy (", policy_.to_string(), ")");
    MGPU_EXPECTS(b.distribution() == distribution::replicated, what,
                 ": the right-hand side must be replicated (mpi::distributed_dense::replicated)");
    MGPU_EXPECTS(c.distribution() == distribution::row_blocks, what,
                 ": the result must be in the matrix's row blocks (row_blocks with row_bounds())");
    if (b.rows() != cols_ || c.rows() != rows_ || c.cols() != b.cols()) {
      throw dimension_mismatch(::mgpu::detail::message(what, ": A is ", rows_, " x ", cols_, ", the right-hand side ",
                                                       b.rows(), " x ", b.cols(), " and the result ", c.rows(), " x ",
                                                       c.cols()));
    }
    auto const cb = c.row_bounds();
    for (std::size_t g = 0; g < bounds_.size(); ++g) {
      MGPU_EXPECTS(cb[g] == bounds_[g], what, ": the result's row bound ", g, " is ", cb[g],
                   " but the matrix's is ", bounds_[g], "; build the result with row_bounds()");
    }
  }

  distributed_policy<Kind> policy_;
  std::int64_t rows_ = 0;
  std::int64_t cols_ = 0;
  std::int64_t nnz_ = 0;
  std::int64_t first_row_ = 0;
  std::vector<std::int64_t> bounds_;
  std::optional<local_type> local_;
};

}  // namespace mgpu::mpi
