// mgpu/algorithms/detail/als_leaf.hpp — the contract of ALS's per-kind leaf.
//
// A leaf holds one device's block of rows of R (or Rᵀ) and a replica of the fixed side,
// and solves its rows; everything else (validation, Gram matrices, partitioning,
// fork/join, replication, the loss) is shared by every kind. Every kind provides
//
//   block<T, I>                           rows [first, last) of R or Rᵀ (movable)
//   make_block(ctx, m, first, last)
//   replica                               fixed factors F + system base B
//   load_root(ctx, root, fixed, base)     device 0 only: root replica from the host
//                                         (fixed: n x f floats; base: f x f doubles)
//   resize_like(ctx, target, root)        calling thread: target gets root's shapes
//   broadcast(set, root, targets)         calling thread: root's contents to every
//                                         non-null targets[d] (targets[0] is null)
//   solve(ctx, block, replica, solving, step)   the block's rows of the host matrix
//                                         `solving` (read first for CG's warm start)
//   host_memory                           constexpr bool: replicas and solver workspaces
//                                         are host memory (the fit's host estimate counts them)
//
// `base` is B = w0·FᵀF + λI (f x f, full, double). make_block, load_root and solve run as
// fork_join tasks; resize_like and broadcast run on the calling thread between them, in
// detail::replicate_factors (algorithms/als.hpp), the one place ALS replicates factors.
#pragma once

#include <concepts>
#include <span>

#include "mgpu/algorithms/detail/leaf_kind.hpp"
#include "mgpu/backend/cpu/als.hpp"
#include "mgpu/core/device_set.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/sparse/csr_view.hpp"

namespace mgpu::detail {

/// The per-kind leaf of ALS; a backend specialises it (file comment).
template <class Kind>
struct als_leaf;

template <class Leaf, class T, class I>
concept als_leaf_for =
    std::movable<typename Leaf::template block<T, I>> && std::default_initializable<typename Leaf::replica> &&
    std::same_as<decltype(Leaf::host_memory), bool const> &&
    requires(device_context<leaf_kind_t<Leaf>>& ctx, device_set<leaf_kind_t<Leaf>>& set, csr_view<T, I> m, I row,
             typename Leaf::template block<T, I> const& block, typename Leaf::replica& replica,
             std::span<typename Leaf::replica* const> targets, dense_view<float const> fixed,
             std::span<double const> base, dense_view<float> solving, als_step const& step) {
      { Leaf::make_block(ctx, m, row, row) } -> std::same_as<typename Leaf::template block<T, I>>;
      { Leaf::load_root(ctx, replica, fixed, base) } -> std::same_as<void>;
      { Leaf::resize_like(ctx, replica, replica) } -> std::same_as<void>;
      { Leaf::broadcast(set, replica, targets) } -> std::same_as<void>;
      { Leaf::solve(ctx, block, replica, solving, step) } -> std::same_as<void>;
    };

}  // namespace mgpu::detail
