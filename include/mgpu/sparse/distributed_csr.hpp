// mgpu/sparse/distributed_csr.hpp — a CSR matrix split into nnz-balanced row blocks,
// one per device of a policy, kept resident for repeated products (iterative methods).
//
//   mgpu::distributed_csr<mgpu::cpu, float> a(policy, matrix, {.resident = true});
//   auto x = mgpu::distributed_dense<mgpu::cpu, float>::replicated(policy, a.cols(), 1);
//   auto y = mgpu::distributed_dense<mgpu::cpu, float>::row_blocks(policy, a.rows(), 1, a.row_bounds());
//   mgpu::broadcast(mgpu::column_view(host_x), x);    // x moves once
//   for (...) a.spmv(1.0f, x, 0.0f, y);                // moves nothing
//   mgpu::gather(y, mgpu::column_view(host_y));        // y moves once
//
// Two ways to multiply:
//   resident  spmv(alpha, x, beta, y) / spmm(alpha, b, beta, c) on distributed_dense
//             operands (x / b replicated, y / c in this matrix's row blocks): every
//             device multiplies its block by its own copy of x into its own block of y,
//             and nothing crosses devices; the collectives (execution/collectives.hpp)
//             move data between products where the algorithm needs it.
//   host      spmv(alpha, x_span, beta, y_span) / spmm on host arrays: x (or B) is
//             replicated to every device, each device computes its rows, and the row
//             blocks of y (C) land in the caller's array. On host devices x is read in
//             place (host devices share one memory: a copy per device would only add
//             traffic to a bandwidth-bound product) and each block of y is written in
//             place, so nothing is counted as moved; on GPUs x is broadcast and y
//             gathered by the CUDA collectives (backend/cuda/sparse_csr.hpp).
// What a device keeps for its block is the per-kind leaf's business
// (detail::sparse_leaf<Kind>):
//   cpu  a view of the caller's rows, or, with `resident`, an owning copy of the block
//        made and first touched by the device's own worker; or a copy of the block in the
//        tiled layout of backend/cpu/sparse_spmv.hpp when its columns are too scattered
//        for x to stay in cache, or in the SELL-C-σ layout when they are not and its
//        rows pad well into chunks of 16 (chosen per block by `spmv_layout::automatic`,
//        built once here, on the device's worker).
//   gpu  the block's CSR arrays, cuSPARSE descriptors and workspaces in device memory,
//        and device copies of x / B used by the host-array products.
//
// Lifetime: on host devices a `csr` block without `resident` is a view, so the matrix
// given to the constructor must outlive the distributed_csr (resident, tiled and sell
// blocks and GPU blocks are copies). Thread safety: products on one object must not run
// concurrently (the device workspaces are reused); distinct objects may share a policy.
// Results: every row sums its entries in an order fixed by the row alone in each host
// layout, so products do not depend on the number of devices for a given layout, nor on
// residency (bitwise); layouts (and cuSPARSE) round differently and agree to round-off.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "mgpu/backend/cpu/sparse_spmm.hpp"
#include "mgpu/backend/cpu/sparse_spmv.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/execution/transfer.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/dense/distributed_dense.hpp"
#include "mgpu/execution/fork_join.hpp"
#include "mgpu/execution/policy.hpp"
#include "mgpu/sparse/csr_view.hpp"
#include "mgpu/sparse/detail/sparse_leaf.hpp"
#include "mgpu/sparse/partition.hpp"

namespace mgpu {

/// How a host device stores its block for SpMV (SpMM always uses the CSR rows).
enum class spmv_layout {
  /// tiled when the x window (last - first column touched, times sizeof(T)) of a 2^17-row
  /// piece of the block exceeds 2 MiB; else sell when its padding stays within 25% of
  /// nnz (sell_max_padding); else csr (also for blocks without entries).
  automatic,
  /// The caller's CSR rows in place (no copy): one gather-FMA and one reduction per row.
  csr,
  /// Row blocks × column panels, for scattered columns (backend/cpu/sparse_spmv.hpp).
  tiled,
  /// SELL-C-σ with C = 16, one SIMD lane per row (Kreutzer et al. 2014), for columns
  /// whose x window stays in cache: the fastest host layout there. A copy of the block:
  /// (sizeof(T) + sizeof(I)) per stored slot (entries + padding) + sizeof(I) per row.
  sell,
};

struct distributed_csr_options {
  spmv_layout layout = spmv_layout::automatic;
  /// SELL-C-σ sorting window: rows are sorted by length within windows of this many rows
  /// (1: no sorting; else rounded up to a multiple of 16). Larger windows pad less but
  /// move rows further from their neighbours' x entries.
  std::int64_t sell_sigma = 256;
  /// automatic picks sell only if its padding is at most this fraction of nnz.
  double sell_max_padding = 0.25;
  /// Host devices: copy each `csr` block into memory allocated and first touched by its
  /// device's own worker, so the matrix given may be destroyed and every device reads
  /// its own copy (NUMA-local where the workers are pinned). False: blocks are views of
  /// the caller's rows (no copy; what the one-shot spmv() uses). GPU blocks are always
  /// device copies.
  bool resident = false;
};

namespace detail {

/// The per-kind part of distributed_csr: what a device keeps for its row block and how
/// it runs products on it. A backend specialises it with
///
///   template <class T, class I> struct shard;
///   static shard<T, I> make_shard(device_context<Kind>&, csr_view<T, I> block,
///                                 distributed_csr_options const&);
///   static void replicate_x(execution_policy<Kind> const&, std::vector<std::optional<shard<T, I>>>&,
///                           std::span<T const> x);          // broadcast x (caller thread)
///   static void spmv(device_context<Kind>&, shard<T, I>&, T alpha, std::span<T const> x,
///                    T beta, std::span<T> y_block);          // y_block: the block's rows of y
///   static void replicate_b(..., dense_view<T const> b);     // broadcast B (caller thread)
///   static void spmm(device_context<Kind>&, shard<T, I>&, T alpha, dense_view<T const> b,
///                    T beta, dense_view<T> c_block);
///   static void spmm_resident(device_context<Kind>&, shard<T, I>&, T alpha,
///                             dense_view<T const, Kind> b, T beta, dense_view<T, Kind> c_block);
///                    // resident operands in the device's memory (spmv: n = 1)
///
/// spmv / spmm run as fork_join tasks on the device's stream; replicate_* run on the
/// caller's thread before the fork, ordered on the devices' streams.
template <class Kind>
struct sparse_leaf;

/// Bytes of x a block of rows touches: (last column - first column + 1)·sizeof(T).
template <class T, class I>
std::int64_t x_window_bytes(csr_view<T, I> a) {
  std::int64_t lo = a.cols;
  std::int64_t hi = -1;
  for (I r = 0; r < a.rows; ++r) {
    if (a.row_offsets[r] == a.row_offsets[r + 1]) continue;
    lo = std::min<std::int64_t>(lo, a.col_indices[a.row_offsets[r]]);
    hi = std::max<std::int64_t>(hi, a.col_indices[a.row_offsets[r + 1] - 1]);
  }
  return hi < lo ? 0 : (hi - lo + 1) * static_cast<std::int64_t>(sizeof(T));
}

/// The layout a host block takes under `options` (automatic resolved as its comment
/// says). The x window is measured per tile row block (2^17 rows), since that is what
/// must stay in cache. @throws invalid_argument (sell_sigma < 1).
template <class T, class I>
spmv_layout host_layout(csr_view<T, I> block, distributed_csr_options const& options) {
  if (options.layout != spmv_layout::automatic) return options.layout;
  if (block.nnz() == 0) return spmv_layout::csr;
  constexpr std::int64_t cache_bytes = std::int64_t{2} << 20;
  auto const step = backend::cpu::tiled_csr<T, I>::block_rows;
  for (std::int64_t r0 = 0; r0 < static_cast<std::int64_t>(block.rows); r0 += step) {
    auto const r1 = std::min<std::int64_t>(block.rows, r0 + step);
    if (x_window_bytes(block.row_block(static_cast<I>(r0), static_cast<I>(r1))) > cache_bytes) {
      return spmv_layout::tiled;
    }
  }
  auto const nnz = static_cast<double>(block.nnz());
  auto const padding = static_cast<double>(backend::cpu::sell_slots(block, options.sell_sigma)) - nnz;
  return padding <= options.sell_max_padding * nnz ? spmv_layout::sell : spmv_layout::csr;
}

/// Host devices: the kernels of backend/cpu/sparse_spmv.hpp and sparse_spmm.hpp.
template <>
struct sparse_leaf<cpu> {
  /// The rows (as given, or of `owned`), plus at most one of the copied layouts.
  template <class T, class I>
  struct shard {
    csr_view<T, I> rows;
    std::optional<csr_matrix<cpu, T, I>> owned;  // the resident copy `rows` views
    std::optional<backend::cpu::tiled_csr<T, I>> tiled;
    std::optional<backend::cpu::sell_csr<T, I>> sell;

    [[nodiscard]] spmv_layout layout() const noexcept {
      return tiled ? spmv_layout::tiled : sell ? spmv_layout::sell : spmv_layout::csr;
    }
  };

  template <class T, class I>
  static shard<T, I> make_shard(device_context<cpu>&, csr_view<T, I> block,
                                distributed_csr_options const& options) {
    shard<T, I> s{block, std::nullopt, std::nullopt, std::nullopt};
    auto const layout = host_layout(block, options);
    if (options.resident) {  // spmm reads `rows` whatever the SpMV layout
      s.owned.emplace(copy_csr(block));  // on this device's worker: first touch here
      s.rows = s.owned->view();
    }
    switch (layout) {
      case spmv_layout::tiled:
        s.tiled.emplace(backend::cpu::make_tiled(block));
        break;
      case spmv_layout::sell:
        s.sell.emplace(backend::cpu::make_sell(block, options.sell_sigma));
        break;
      default:
        break;
    }
    return s;
  }

  template <class T, class I>
  static void replicate_x(execution_policy<cpu> const&, std::vector<std::optional<shard<T, I>>>&,
                          std::span<T const>) {}

  template <class T, class I>
  static void spmv(device_context<cpu>&, shard<T, I>& s, T alpha, std::span<T const> x, T beta,
                   std::span<T> y_block) {
    if (s.tiled) {
      backend::cpu::tiled_spmv(*s.tiled, alpha, x.data(), beta, y_block.data());
    } else if (s.sell) {
      backend::cpu::sell_spmv(*s.sell, alpha, x.data(), beta, y_block.data());
    } else {
      backend::cpu::csr_spmv(s.rows, alpha, x.data(), beta, y_block.data());
    }
  }

  template <class T, class I>
  static void replicate_b(execution_policy<cpu> const&, std::vector<std::optional<shard<T, I>>>&,
                          dense_view<T const>) {}

  template <class T, class I>
  static void spmm(device_context<cpu>&, shard<T, I>& s, T alpha, dense_view<T const> b, T beta,
                   dense_view<T> c_block) {
    backend::cpu::csr_spmm(s.rows, alpha, b, beta, c_block);
  }

  template <class T, class I>
  static void spmm_resident(device_context<cpu>& ctx, shard<T, I>& s, T alpha, dense_view<T const> b, T beta,
                            dense_view<T> c_block) {
    if (b.cols == 1) {
      spmv<T, I>(ctx, s, alpha, std::span<T const>(b.data, static_cast<std::size_t>(b.rows)), beta,
                 std::span<T>(c_block.data, static_cast<std::size_t>(c_block.rows)));
    } else {
      backend::cpu::csr_spmm(s.rows, alpha, b, beta, c_block);
    }
  }
};
static_assert(sparse_leaf_for<sparse_leaf<cpu>, float, std::int32_t> && sparse_leaf_for<sparse_leaf<cpu>, double, std::int64_t>,
              "the host sparse leaf meets the contract of sparse/detail/sparse_leaf.hpp");

/// @throws invalid_argument if the two ranges of memory overlap (in-place products are
/// not supported: every device reads all of x while others write y).
template <class T, class U>
void require_disjoint(T const* a, std::size_t a_size, U const* b, std::size_t b_size,
                      char const* what) {
  if (a_size == 0 || b_size == 0) return;
  auto const a0 = reinterpret_cast<std::uintptr_t>(a);
  auto const b0 = reinterpret_cast<std::uintptr_t>(b);
  auto const a1 = a0 + a_size * sizeof(T);
  auto const b1 = b0 + b_size * sizeof(U);
  MGPU_EXPECTS(a1 <= b0 || b1 <= a0, what, ": the input and output overlap; use separate arrays");
}

}  // namespace detail

/// A sparse matrix partitioned over a policy's devices (see the file comment).
template <class Kind, class T, class I>
class distributed_csr {
  using leaf = detail::sparse_leaf<Kind>;
  using shard_type = typename leaf::template shard<T, I>;

 public:
  /// Splits `a` into one nnz-balanced row block per device (partition_rows_by_nnz) and
  /// builds each device's block on that device, concurrently. A device whose block has
  /// no rows (more devices than rows) keeps nothing and gets no work. Time:
  /// O(devices·log rows) for host `csr` blocks, O(nnz + rows·log sell_sigma) for tiled,
  /// sell or GPU blocks. @throws out_of_memory, index_overflow (GPU limits),
  /// invalid_argument (sell_sigma < 1 where the sell layout is asked for or weighed),
  /// device errors.
  distributed_csr(execution_policy<Kind> policy, csr_view<T, I> a,
                  distributed_csr_options const& options = {})
      : policy_(std::move(policy)), rows_(a.rows), cols_(a.cols), nnz_(a.nnz()) {
    bounds_ = partition_rows_by_nnz(a, policy_.device_count());
    shards_.resize(policy_.device_count());
    detail::fork_join(policy_, [&](auto& ctx, std::size_t dev) {
      if (bounds_[dev] == bounds_[dev + 1]) return;
      shards_[dev].emplace(leaf::template make_shard<T, I>(
          ctx, a.row_block(bounds_[dev], bounds_[dev + 1]), options));
    });
  }

  [[nodiscard]] I rows() const noexcept { return rows_; }
  [[nodiscard]] I cols() const noexcept { return cols_; }
  [[nodiscard]] I nnz() const noexcept { return nnz_; }
  [[nodiscard]] execution_policy<Kind> const& policy() const noexcept { return policy_; }
  /// Device d holds rows [row_bounds()[d], row_bounds()[d + 1]).
  [[nodiscard]] std::span<I const> row_bounds() const noexcept { return bounds_; }
  /// The device's block data (for tests and diagnostics); empty for a device without rows.
  [[nodiscard]] std::optional<shard_type> const& shard(std::size_t device) const { return shards_.at(device); }

  /// y = alpha·A·x + beta·y (x: cols entries, y: rows entries, host memory). beta == 0
  /// means y is not read. O(nnz + rows) work spread over the devices.
  /// @throws dimension_mismatch (sizes), invalid_argument (x and y overlap).
  void spmv(T alpha, std::span<T const> x, T beta, std::span<T> y) {
    if (x.size() != static_cast<std::size_t>(cols_) || y.size() != static_cast<std::size_t>(rows_)) {
      throw dimension_mismatch(detail::message(
          "spmv: A is ", static_cast<std::int64_t>(rows_), " x ", static_cast<std::int64_t>(cols_),
          " but x has ", x.size(), " entries and y has ", y.size(), " (expected ",
          static_cast<std::int64_t>(cols_), " and ", static_cast<std::int64_t>(rows_), ")"));
    }
    detail::require_disjoint(x.data(), x.size(), y.data(), y.size(), "spmv");
    if (rows_ == 0) return;
    leaf::template replicate_x<T, I>(policy_, shards_, x);
    detail::fork_join(policy_, [&](auto& ctx, std::size_t dev) {
      if (!shards_[dev]) return;
      auto const first = static_cast<std::size_t>(bounds_[dev]);
      auto const count = static_cast<std::size_t>(bounds_[dev + 1] - bounds_[dev]);
      leaf::template spmv<T, I>(ctx, *shards_[dev], alpha, x, beta, y.subspan(first, count));
    });
  }

  /// C = alpha·A·B + beta·C with B cols x n and C rows x n (row-major host views with
  /// leading dimensions). beta == 0 means C is not read. O(nnz·n + rows·n) work.
  /// @throws dimension_mismatch (shapes), invalid_argument (B and C overlap).
  void spmm(T alpha, dense_view<T const> b, T beta, dense_view<T> c) {
    if (b.rows != static_cast<std::int64_t>(cols_) || c.rows != static_cast<std::int64_t>(rows_) ||
        c.cols != b.cols) {
      throw dimension_mismatch(detail::message(
          "spmm: A is ", static_cast<std::int64_t>(rows_), " x ", static_cast<std::int64_t>(cols_),
          ", B is ", b.rows, " x ", b.cols, " and C is ", c.rows, " x ", c.cols,
          "; need B rows = A cols and C = A rows x B cols"));
    }
    MGPU_EXPECTS(b.ld >= b.cols && c.ld >= c.cols, "spmm: leading dimensions must be at least the "
                 "column counts (B: ld ", b.ld, ", cols ", b.cols, "; C: ld ", c.ld, ", cols ", c.cols, ")");
    auto const span_of = [](auto const& m) {
      return m.rows == 0 || m.cols == 0 ? std::size_t{0}
                                        : static_cast<std::size_t>((m.rows - 1) * m.ld + m.cols);
    };
    detail::require_disjoint(b.data, span_of(b), c.data, span_of(c), "spmm");
    if (rows_ == 0 || b.cols == 0) return;
    leaf::template replicate_b<T, I>(policy_, shards_, b);
    detail::fork_join(policy_, [&](auto& ctx, std::size_t dev) {
      if (!shards_[dev]) return;
      auto const first = static_cast<std::int64_t>(bounds_[dev]);
      dense_view<T> block{static_cast<std::int64_t>(bounds_[dev + 1] - bounds_[dev]), c.cols, c.ld,
                          c.data + first * c.ld};
      leaf::template spmm<T, I>(ctx, *shards_[dev], alpha, b, beta, block);
    });
  }

  /// Resident y = alpha·A·x + beta·y: x is a replicated cols x 1 distributed_dense, y a
  /// rows x 1 one in this matrix's row blocks (row_blocks(policy, rows(), 1,
  /// row_bounds())), both on this matrix's device set. Each device multiplies its block
  /// by its own copy of x into its own block of y: nothing is copied between devices or
  /// to the host, nothing is counted. beta == 0: y is not read. O(nnz + rows) spread over
  /// the devices; equal bitwise to the host-array spmv with the same layout.
  /// @throws invalid_argument (distributions, device sets, y's row blocks),
  ///         dimension_mismatch (shapes), device errors.
  void spmv(T alpha, distributed_dense<Kind, T> const& x, T beta, distributed_dense<Kind, T>& y) {
    MGPU_EXPECTS(x.cols() == 1 && y.cols() == 1, "spmv: x and y must be vectors (one column), got ",
                 x.cols(), " and ", y.cols(), " columns; use spmm");
    resident_product("spmv", alpha, x, beta, y);
  }

  /// Resident C = alpha·A·B + beta·C: B replicated (cols x n), C in this matrix's row
  /// blocks (rows x n), both on this matrix's device set; nothing moves. beta == 0: C is
  /// not read. O(nnz·n + rows·n) spread over the devices.
  /// @throws invalid_argument, dimension_mismatch, device errors (as spmv).
  void spmm(T alpha, distributed_dense<Kind, T> const& b, T beta, distributed_dense<Kind, T>& c) {
    resident_product("spmm", alpha, b, beta, c);
  }

 private:
  void resident_product(char const* what, T alpha, distributed_dense<Kind, T> const& b, T beta,
                        distributed_dense<Kind, T>& c) {
    MGPU_EXPECTS(&b.policy().devices() == &policy_.devices() && &c.policy().devices() == &policy_.devices(), what,
                 ": the operands must live on the matrix's device set (", policy_.devices().to_string(), ")");
    MGPU_EXPECTS(b.distribution() == distribution::replicated, what,
                 ": the right-hand side must be replicated on every device (distributed_dense::replicated)");
    MGPU_EXPECTS(c.distribution() == distribution::row_blocks, what,
                 ": the result must be in the matrix's row blocks (distributed_dense::row_blocks with row_bounds())");
    if (b.rows() != static_cast<std::int64_t>(cols_) || c.rows() != static_cast<std::int64_t>(rows_) ||
        c.cols() != b.cols()) {
      throw dimension_mismatch(detail::message(what, ": A is ", static_cast<std::int64_t>(rows_), " x ",
                                               static_cast<std::int64_t>(cols_), ", the right-hand side ", b.rows(),
                                               " x ", b.cols(), " and the result ", c.rows(), " x ", c.cols()));
    }
    for (std::size_t d = 0; d < bounds_.size(); ++d) {
      MGPU_EXPECTS(c.row_bounds()[d] == static_cast<std::int64_t>(bounds_[d]), what,
                   ": the result's row bound ", d, " is ", c.row_bounds()[d], " but the matrix's is ",
                   static_cast<std::int64_t>(bounds_[d]), "; build the result with row_bounds()");
    }
    if (rows_ == 0 || b.cols() == 0) return;
    detail::fork_join(policy_, [&](auto& ctx, std::size_t dev) {
      if (!shards_[dev]) return;
      leaf::template spmm_resident<T, I>(ctx, *shards_[dev], alpha, b.view(dev), beta, c.view(dev));
    });
  }

  execution_policy<Kind> policy_;
  I rows_ = 0;
  I cols_ = 0;
  I nnz_ = 0;
  std::vector<I> bounds_;
  std::vector<std::optional<shard_type>> shards_;
};

}  // namespace mgpu
