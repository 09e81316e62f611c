// mgpu/algorithms/detail/als_leaf.hpp — the contract of ALS's per-kind leaf.
//
// A leaf holds one device's block of rows of R (or Rᵀ) and that device's system base,
// and solves its rows; everything else (validation, partitioning, fork/join, the
// resident factors and the collectives that move them, the loss) is shared by every
// kind (algorithms/als.hpp). The factors never pass through the leaf's own copies: the
// fixed side is the device's replicated copy and the solving side its row block, both
// `distributed_dense<Kind, float>` blocks in the device's memory. Every kind provides
//
//   block<T, I>                           rows [first, last) of R or Rᵀ (movable)
//   make_block(ctx, m, first, last)
//   system                                one device's B = w0·FᵀF + λI (default-constructible)
//   prepare(ctx, system, fixed, w0, λ)    B from the device's copy of the fixed side F
//                                         (n x f floats); its Gram matrix FᵀF is computed
//                                         on the device, in double, by the same operations
//                                         on every device (so every device's B is equal)
//   solve(ctx, block, fixed, system, out, step)   the block's rows into `out`, the
//                                         device's row block of the solving side (row u in
//                                         out.row(u - first); read first for CG's warm start)
//   host_memory                           constexpr bool: blocks, systems and factor copies
//                                         are host memory (the fit's host estimate counts them)
//
// make_block, prepare and solve run as fork_join tasks on the device's worker; `fixed`
// and `out` are views of the device's own memory (dense_view<float const, Kind>,
// dense_view<float, Kind>).
#pragma once

#include <concepts>
#include <span>
#include <utility>

#include "mgpu/detail/leaf_kind.hpp"
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
    std::movable<typename Leaf::template block<T, I>> && std::default_initializable<typename Leaf::system> &&
    std::same_as<decltype(Leaf::host_memory), bool const> &&
    requires(device_context<leaf_kind_t<Leaf>>& ctx, csr_view<T, I> m, I row,
             typename Leaf::template block<T, I> const& block, typename Leaf::system& system,
             dense_view<float const, leaf_kind_t<Leaf>> fixed, dense_view<float, leaf_kind_t<Leaf>> out,
             double weight, als_step const& step) {
      { Leaf::make_block(ctx, m, row, row) } -> std::same_as<typename Leaf::template block<T, I>>;
      { Leaf::prepare(ctx, system, fixed, weight, weight) } -> std::same_as<void>;
      { Leaf::solve(ctx, block, fixed, std::as_const(system), out, step) } -> std::same_as<void>;
    };

}  // namespace mgpu::detail
