// mgpu/sparse/detail/spgemm_leaf.hpp — the contract of spgemm's per-kind leaf
// (sparse/spgemm.hpp states the semantics).
//
//   replica<T, I>                          B as a device holds it
//   state<T, I>                            a device's product between the two phases
//   replicate(policy, b, used)             calling thread: B to the devices with used[d]
//   symbolic(ctx, a_block, b, replica, counts) -> state
//                                          counts: entries of each row of the product
//   numeric(ctx, state, a_block, b, replica, offsets, cols, vals)
//                                          fills the block's rows at offsets (host arrays)
//
// symbolic and numeric run as fork_join tasks.
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "mgpu/detail/leaf_kind.hpp"
#include "mgpu/core/device_set.hpp"
#include "mgpu/execution/policy.hpp"
#include "mgpu/sparse/csr_view.hpp"

namespace mgpu::detail {

template <class Leaf, class T, class I>
concept spgemm_leaf_for =
    requires(device_context<leaf_kind_t<Leaf>>& ctx, execution_policy<leaf_kind_t<Leaf>> const& policy,
             csr_view<T, I> a, std::vector<bool> const& used, typename Leaf::template replica<T, I>& replica,
             typename Leaf::template state<T, I>& state, std::span<std::int64_t> counts, I const* offsets,
             I* cols, T* vals) {
      { Leaf::template replicate<T, I>(policy, a, used) }
          -> std::same_as<std::vector<std::optional<typename Leaf::template replica<T, I>>>>;
      { Leaf::template symbolic<T, I>(ctx, a, a, replica, counts) } -> std::same_as<typename Leaf::template state<T, I>>;
      { Leaf::template numeric<T, I>(ctx, state, a, a, replica, offsets, cols, vals) } -> std::same_as<void>;
    };

}  // namespace mgpu::detail
