// mgpu/sparse/detail/sparse_leaf.hpp — the contract of distributed_csr's per-kind
// leaf (spmv, spmm on row blocks; sparse/distributed_csr.hpp states the semantics).
//
//   shard<T, I>                                   one device's row block (movable)
//   make_shard(ctx, block, options)               block: the rows [first, last) of A
//   replicate_x(policy, shards, x)                calling thread: x to every device
//   spmv(ctx, shard, alpha, x, beta, y_block)     y_block = alpha A_block x + beta y_block
//   replicate_b(policy, shards, b)                calling thread: B to every device
//   spmm(ctx, shard, alpha, b, beta, c_block)     C_block = alpha A_block B + beta C_block
//
// make_shard, spmv and spmm run as fork_join tasks.
#pragma once

#include <concepts>
#include <optional>
#include <span>
#include <vector>

#include "mgpu/detail/leaf_kind.hpp"
#include "mgpu/core/device_set.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/execution/policy.hpp"
#include "mgpu/sparse/csr_view.hpp"

namespace mgpu {
struct distributed_csr_options;
}

namespace mgpu::detail {

template <class Leaf, class T, class I>
concept sparse_leaf_for =
    std::movable<typename Leaf::template shard<T, I>> &&
    requires(device_context<leaf_kind_t<Leaf>>& ctx, execution_policy<leaf_kind_t<Leaf>> const& policy,
             csr_view<T, I> block, distributed_csr_options const& options,
             std::vector<std::optional<typename Leaf::template shard<T, I>>>& shards,
             typename Leaf::template shard<T, I>& shard, T scalar, std::span<T const> x, std::span<T> y,
             dense_view<T const> b, dense_view<T> c) {
      { Leaf::template make_shard<T, I>(ctx, block, options) } -> std::same_as<typename Leaf::template shard<T, I>>;
      { Leaf::template replicate_x<T, I>(policy, shards, x) } -> std::same_as<void>;
      { Leaf::template spmv<T, I>(ctx, shard, scalar, x, scalar, y) } -> std::same_as<void>;
      { Leaf::template replicate_b<T, I>(policy, shards, b) } -> std::same_as<void>;
      { Leaf::template spmm<T, I>(ctx, shard, scalar, b, scalar, c) } -> std::same_as<void>;
    };

}  // namespace mgpu::detail
