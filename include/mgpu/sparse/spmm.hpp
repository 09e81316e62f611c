// mgpu/sparse/spmm.hpp — sparse matrix × dense matrix on any policy.
//
// C = alpha·A·B + beta·C with row-major dense B and C, the semantics of cusparseSpMM
// (beta == 0: C is not read). A is split into nnz-balanced row blocks, one per device;
// B is replicated to every device and each device writes its rows of C
// (distributed_csr.hpp). NaN / Inf propagate.
#pragma once

#include <type_traits>

#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/execution/policy.hpp"
#include "mgpu/sparse/csr_matrix.hpp"
#include "mgpu/sparse/csr_view.hpp"
#include "mgpu/sparse/distributed_csr.hpp"

namespace mgpu {

/// C = alpha·A·B + beta·C. A: m x k, B: k x n, C: m x n (host views, row-major, any
/// leading dimension ≥ cols). O(nnz·n + m·n).
/// @throws dimension_mismatch (shapes, giving all three), invalid_argument (B and C
///         overlap, or a leading dimension below the column count), device errors.
/// T is A's value type; alpha and beta convert to it, B may be a dense_matrix or a
/// writable view.
template <class Kind, class T, class I>
void spmm(execution_policy<Kind> const& policy, std::type_identity_t<T> alpha, csr_view<T, I> a,
          std::type_identity_t<dense_view<T const>> b, std::type_identity_t<T> beta,
          std::type_identity_t<dense_view<T>> c) {
  static_assert(backend_available<Kind>::value,
                "spmm: this device kind's backend is not compiled in (for gpu, include "
                "<mgpu/cuda.hpp> and link mgpu::cuda)");
  distributed_csr<Kind, T, I>(policy, a, {spmv_layout::csr}).spmm(alpha, b, beta, c);
}

/// Overload for an owning host matrix.
template <class Kind, class T, class I>
void spmm(execution_policy<Kind> const& policy, std::type_identity_t<T> alpha, csr_matrix<cpu, T, I> const& a,
          std::type_identity_t<dense_view<T const>> b, std::type_identity_t<T> beta,
          std::type_identity_t<dense_view<T>> c) {
  spmm(policy, alpha, a.view(), b, beta, c);
}

}  // namespace mgpu
