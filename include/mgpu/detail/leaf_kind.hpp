// mgpu/detail/leaf_kind.hpp — the device kind a per-kind leaf serves.
//
// Every leaf is a class template over the kind (cosine_leaf<Kind>, knn_leaf<Kind>, ...);
// leaf_kind_t<L> recovers Kind from the specialisation, so that the leaf concepts can
// name device_context<Kind> without the leaf declaring it.
#pragma once

namespace mgpu::detail {

template <class Leaf>
struct leaf_kind;

template <template <class> class Leaf, class Kind>
struct leaf_kind<Leaf<Kind>> {
  using type = Kind;
};

template <class Leaf>
using leaf_kind_t = typename leaf_kind<Leaf>::type;

}  // namespace mgpu::detail
