// mgpu/sparse/spmv.hpp — sparse matrix × dense vector on any policy.
//
// y = alpha·A·x + beta·y, the semantics of BLAS gemv / cusparseSpMV (beta == 0: y is not
// read, so NaN in y is overwritten). A is split into nnz-balanced row blocks, one per
// device; each device computes its rows on its own stream (distributed_csr.hpp). For
// repeated products with the same matrix, build a distributed_csr once: it keeps the
// partition (and GPU copies, and the host tiled or SELL-C-σ layout, which on host devices
// run 1.5–3× faster than the rows in place) resident. A one-off call on host devices
// uses the CSR rows in place (no copy); on GPUs it uploads A.
// NaN / Inf in A or x propagate as IEEE arithmetic says.
#pragma once

#include <span>
#include <type_traits>

#include "mgpu/execution/policy.hpp"
#include "mgpu/sparse/csr_matrix.hpp"
#include "mgpu/sparse/csr_view.hpp"
#include "mgpu/sparse/distributed_csr.hpp"

namespace mgpu {

/// y = alpha·A·x + beta·y. A: rows x cols, x: cols entries, y: rows entries (host).
/// O(nnz + rows), bandwidth-bound: reads 8 bytes per entry with float and 32-bit indices.
/// T is A's value type; alpha and beta convert to it (1.0 for a float matrix), and x and
/// y may be std::vector<T> or anything else that converts to the spans.
/// @throws dimension_mismatch (sizes, giving all of them), invalid_argument (x and y
///         overlap), out_of_memory / device errors on GPUs.
template <class Kind, class T, class I>
void spmv(execution_policy<Kind> const& policy, std::type_identity_t<T> alpha, csr_view<T, I> a,
          std::type_identity_t<std::span<T const>> x, std::type_identity_t<T> beta,
          std::type_identity_t<std::span<T>> y) {
  static_assert(backend_available<Kind>::value,
                "spmv: this device kind's backend is not compiled in (for gpu, include "
                "<mgpu/cuda.hpp> and link mgpu::cuda)");
  distributed_csr<Kind, T, I>(policy, a, {spmv_layout::csr}).spmv(alpha, x, beta, y);
}

/// Overload for an owning host matrix.
template <class Kind, class T, class I>
void spmv(execution_policy<Kind> const& policy, std::type_identity_t<T> alpha, csr_matrix<cpu, T, I> const& a,
          std::type_identity_t<std::span<T const>> x, std::type_identity_t<T> beta,
          std::type_identity_t<std::span<T>> y) {
  spmv(policy, alpha, a.view(), x, beta, y);
}

}  // namespace mgpu
