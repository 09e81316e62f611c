// mgpu/sparse/spgemm.hpp — sparse × sparse product C = A·B on any policy.
//
// Two phases, as cuSPARSE and SciPy do it: a symbolic phase sizes every row of C, the
// row offsets are summed on the host (so C's size is checked against the index type
// before anything is allocated), then a numeric phase writes each row at its final
// place. A is split into nnz-balanced row blocks, one per device; B is replicated to
// every device (on GPUs: uploaded once and peer-copied); every device computes its rows
// of C on its own stream (detail::fork_join) and the blocks are gathered into one host
// matrix. The per-kind part is detail::spgemm_leaf<Kind>: Gustavson's row-by-row
// algorithm on host devices (backend/cpu/sparse_spgemm.hpp), cuSPARSE SpGEMM on GPUs
// (backend/cuda/sparse_csr.hpp, 32-bit indices only).
// C's structure is the symbolic product (cancelled entries are kept, as in cuSPARSE and
// GraphBLAS); C is canonical (sorted, unique columns). NaN / Inf propagate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "mgpu/backend/cpu/sparse_spgemm.hpp"
#include "mgpu/core/buffer.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/execution/fork_join.hpp"
#include "mgpu/execution/policy.hpp"
#include "mgpu/sparse/csr_matrix.hpp"
#include "mgpu/sparse/csr_view.hpp"
#include "mgpu/sparse/detail/spgemm_leaf.hpp"
#include "mgpu/sparse/partition.hpp"

namespace mgpu {

namespace detail {

/// The per-kind part of spgemm. A backend specialises it with
///
///   template <class T, class I> struct replica;     // B as a device holds it
///   template <class T, class I> struct state;       // a device's product between phases
///   static std::vector<std::optional<replica<T, I>>> replicate(
///       execution_policy<Kind> const&, csr_view<T, I> b, std::vector<bool> const& used);
///   static state<T, I> symbolic(device_context<Kind>&, csr_view<T, I> a_block,
///       csr_view<T, I> b, replica<T, I>&, std::span<std::int64_t> counts);
///   static void numeric(device_context<Kind>&, state<T, I>&, csr_view<T, I> a_block,
///       csr_view<T, I> b, replica<T, I>&, I const* offsets, I* cols, T* vals);
///
/// `counts` receives the entries of each row of the block's product; `offsets` are the
/// block's rows + 1 final positions in the gathered cols / vals (host arrays).
template <class Kind>
struct spgemm_leaf;

/// Host devices read B in place.
template <>
struct spgemm_leaf<cpu> {
  template <class T, class I>
  struct replica {};
  template <class T, class I>
  struct state {};

  template <class T, class I>
  static std::vector<std::optional<replica<T, I>>> replicate(execution_policy<cpu> const& policy,
                                                             csr_view<T, I>, std::vector<bool> const&) {
    return std::vector<std::optional<replica<T, I>>>(policy.device_count(), replica<T, I>{});
  }

  template <class T, class I>
  static state<T, I> symbolic(device_context<cpu>&, csr_view<T, I> a_block, csr_view<T, I> b,
                              replica<T, I>&, std::span<std::int64_t> counts) {
    backend::cpu::spgemm_symbolic(a_block, b, counts);
    return {};
  }

  template <class T, class I>
  static void numeric(device_context<cpu>&, state<T, I>&, csr_view<T, I> a_block, csr_view<T, I> b,
                      replica<T, I>&, I const* offsets, I* cols, T* vals) {
    backend::cpu::spgemm_numeric(a_block, b, offsets, cols, vals);
  }
};
static_assert(spgemm_leaf_for<spgemm_leaf<cpu>, float, std::int32_t> && spgemm_leaf_for<spgemm_leaf<cpu>, double, std::int64_t>,
              "the host spgemm leaf meets the contract of sparse/detail/spgemm_leaf.hpp");

}  // namespace detail

/// C = A·B with A: m x k and B: k x n (host CSR), returned as a canonical m x n host
/// matrix. Work O(flops) = O(Σ_{(i,k)∈A} nnz(B row k)); memory O(nnz(C)) plus n values
/// per thread (host) or cuSPARSE's workspaces (GPU).
/// @throws dimension_mismatch (A cols ≠ B rows, giving both shapes), index_overflow
///         (nnz(C) beyond I, or beyond 32 bits on GPUs), out_of_memory, device errors.
template <class Kind, class T, class I>
csr_matrix<cpu, T, I> spgemm(execution_policy<Kind> const& policy, csr_view<T, I> a, csr_view<T, I> b) {
  static_assert(backend_available<Kind>::value,
                "spgemm: this device kind's backend is not compiled in (for gpu, include "
                "<mgpu/cuda.hpp> and link mgpu::cuda)");
  using leaf = detail::spgemm_leaf<Kind>;
  if (a.cols != b.rows) {
    throw dimension_mismatch(detail::message(
        "spgemm: A is ", static_cast<std::int64_t>(a.rows), " x ", static_cast<std::int64_t>(a.cols),
        " and B is ", static_cast<std::int64_t>(b.rows), " x ", static_cast<std::int64_t>(b.cols),
        "; A's columns must equal B's rows"));
  }
  auto const devices = policy.device_count();
  auto const bounds = partition_rows_by_nnz(a, devices);
  std::vector<bool> used(devices);
  for (std::size_t d = 0; d < devices; ++d) used[d] = bounds[d] < bounds[d + 1];
  auto replicas = leaf::template replicate<T, I>(policy, b, used);

  std::vector<std::int64_t> counts(static_cast<std::size_t>(a.rows));
  std::vector<std::optional<typename leaf::template state<T, I>>> states(devices);
  detail::fork_join(policy, [&](auto& ctx, std::size_t dev) {
    if (!used[dev]) return;
    auto const first = static_cast<std::size_t>(bounds[dev]);
    auto const rows = static_cast<std::size_t>(bounds[dev + 1] - bounds[dev]);
    states[dev].emplace(leaf::template symbolic<T, I>(ctx, a.row_block(bounds[dev], bounds[dev + 1]), b,
                                                      *replicas[dev],
                                                      std::span(counts).subspan(first, rows)));
  });

  buffer<I, cpu> offsets(static_cast<std::size_t>(a.rows) + 1);
  std::int64_t total = 0;
  offsets[0] = 0;
  for (std::size_t r = 0; r < counts.size(); ++r) {
    total += counts[r];
    detail::check_fits_index<I>(total, "spgemm: nnz of the product");
    offsets[r + 1] = static_cast<I>(total);
  }
  buffer<I, cpu> cols(static_cast<std::size_t>(total));
  buffer<T, cpu> vals(static_cast<std::size_t>(total));
  detail::fork_join(policy, [&](auto& ctx, std::size_t dev) {
    if (!used[dev]) return;
    leaf::template numeric<T, I>(ctx, *states[dev], a.row_block(bounds[dev], bounds[dev + 1]), b,
                                 *replicas[dev], offsets.data() + bounds[dev], cols.data(), vals.data());
  });
  return csr_matrix<cpu, T, I>::adopt_canonical(a.rows, b.cols, std::move(offsets), std::move(cols),
                                                std::move(vals));
}

/// Overload for owning host matrices.
template <class Kind, class T, class I>
csr_matrix<cpu, T, I> spgemm(execution_policy<Kind> const& policy, csr_matrix<cpu, T, I> const& a,
                             csr_matrix<cpu, T, I> const& b) {
  return spgemm(policy, a.view(), b.view());
}

}  // namespace mgpu
