// mgpu/algorithms/detail/weighting_leaf.hpp — the contract of tf-idf weighting's
// per-kind leaf.
//
// A leaf computes what detail::weight_rows computes (tf or 1 + ln tf, times idf, rows
// scaled to unit norm; see algorithms/tfidf.hpp) for a host count matrix on the
// policy's devices. Every kind provides
//
//   weight<T>(policy, counts, idf, options) -> csr_matrix<cpu, T, I>
//       counts: rows x terms CSR of C; idf: one entry per column (its size is checked by
//       the caller); the result has the structure of `counts`.
//   weights_host_memory                     constexpr bool: the devices read and write
//       host memory, so tf-idf weights a matrix in place and weights rows while the
//       vectorizer assembles them; otherwise the rows are assembled first and copied.
#pragma once

#include <concepts>
#include <span>

#include "mgpu/detail/leaf_kind.hpp"
#include "mgpu/execution/policy.hpp"
#include "mgpu/sparse/csr_matrix.hpp"

namespace mgpu {
struct tfidf_options;
}

namespace mgpu::detail {

/// The per-kind leaf of tf-idf weighting; a backend specialises it (file comment).
template <class Kind>
struct weighting_leaf;

template <class Leaf, class T, class C, class I>
concept weighting_leaf_for =
    std::same_as<decltype(Leaf::weights_host_memory), bool const> &&
    requires(execution_policy<leaf_kind_t<Leaf>> const& policy, csr_view<C, I> counts, std::span<double const> idf,
             tfidf_options const& options) {
      { Leaf::template weight<T>(policy, counts, idf, options) } -> std::same_as<csr_matrix<cpu, T, I>>;
    };

}  // namespace mgpu::detail
