// mgpu/backend/cuda/tfidf.hpp — TF-IDF weighting and normalisation on GPUs.
//
// The count matrix is split into nnz-balanced row blocks, one per device (the same
// partition as on host devices). Each device uploads its block in chunks that fit its
// memory budget, with the idf resident, and runs detail::tfidf_row_weighting — the
// same code the host backend runs — one row per thread (cub::DeviceFor::Bulk on the
// device's stream). Values are computed in double, as on the host; the row norms sum
// in the same order, so results equal the host's up to the device's rounding of log
// and sqrt (correctly rounded sqrt, log within 1 ulp).
//
// Host-compilable; the one device launch (launch_row_weighting) is defined in
// tfidf.cuh, compiled by nvcc.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <vector>

#include "mgpu/algorithms/tfidf.hpp"
#include "mgpu/backend/cuda/buffer.hpp"
#include "mgpu/backend/cuda/copy.hpp"
#include "mgpu/backend/cuda/device_set.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/execution/fork_join.hpp"
#include "mgpu/sparse/csr_matrix.hpp"
#include "mgpu/sparse/partition.hpp"

namespace mgpu::backend::cuda::detail {

/// Runs `row` for rows [0, rows) on `s`, one row per device thread. Defined in
/// tfidf.cuh (nvcc).
template <class C, class T, class I>
void launch_row_weighting(mgpu::detail::tfidf_row_weighting<C, T, I> const& row, I rows,
                          stream<gpu> const& s);

}  // namespace mgpu::backend::cuda::detail

namespace mgpu::detail {

template <>
struct weighting_leaf<gpu> {
  static constexpr bool weights_host_memory = false;

  /// See detail::weight_counts; the caller has checked idf's size.
  template <class T, class C, class I>
  static csr_matrix<cpu, T, I> weight(execution_policy<gpu> const& policy, csr_view<C, I> counts,
                                      std::span<double const> idf, tfidf_options const& o) {
    auto const rows = static_cast<std::size_t>(counts.rows);
    auto const nnz = static_cast<std::size_t>(counts.nnz());
    auto const base = rows == 0 ? I{0} : counts.row_offsets[0];
    buffer<I, cpu> offsets(rows + 1);
    offsets[0] = 0;
    for (std::size_t r = 1; r <= rows; ++r) offsets[r] = static_cast<I>(counts.row_offsets[r] - base);
    buffer<I, cpu> cols(std::span<I const>(counts.col_indices + base, nnz));
    buffer<T, cpu> values(nnz);
    auto const bounds = partition_rows_by_nnz(counts, policy.device_count());
    fork_join(policy, [&](device_context<gpu>& ctx, std::size_t dev) {
      if (bounds[dev] < bounds[dev + 1]) {
        weight_block<T>(ctx, policy.memory_budget(), counts, bounds[dev], bounds[dev + 1], idf, o,
                        values.data());
      }
    });
    return csr_matrix<cpu, T, I>::adopt_canonical(counts.rows, counts.cols, std::move(offsets),
                                                  std::move(cols), std::move(values));
  }

 private:
  /// Rows [first, last) on one device, in chunks of rows whose arrays fit the budget.
  template <class T, class C, class I>
  static void weight_block(device_context<gpu>& ctx, std::size_t requested_budget,
                           csr_view<C, I> counts, I first, I last, std::span<double const> idf,
                           tfidf_options const& o, T* out) {
    auto& s = ctx.work;
    buffer<double, gpu> d_idf(o.use_idf ? idf.size() : 0, s);
    if (o.use_idf) copy(d_idf, idf, s);
    std::size_t const budget = ctx.memory_budget(requested_budget);
    std::size_t const per_entry = sizeof(I) + sizeof(C) + sizeof(T);
    auto const cap = static_cast<std::int64_t>(std::max<std::size_t>(budget / (2 * per_entry), 1));
    auto const base = counts.row_offsets[0];
    I r0 = first;
    while (r0 < last) {
      // The most rows from r0 whose entries fit the budget; at least one row.
      auto const* end = std::upper_bound(counts.row_offsets + r0 + 1, counts.row_offsets + last + 1,
                                         static_cast<std::int64_t>(counts.row_offsets[r0]) + cap,
                                         [](std::int64_t v, I off) { return v < static_cast<std::int64_t>(off); });
      I const r1 = std::max<I>(static_cast<I>(end - counts.row_offsets - 1), static_cast<I>(r0 + 1));
      auto const n = static_cast<std::size_t>(r1 - r0);
      I const p0 = counts.row_offsets[r0];
      auto const chunk_nnz = static_cast<std::size_t>(counts.row_offsets[r1] - p0);
      std::vector<I> local(n + 1);
      for (std::size_t r = 0; r <= n; ++r) local[r] = static_cast<I>(counts.row_offsets[r0 + static_cast<I>(r)] - p0);
      buffer<I, gpu> d_offsets(n + 1, s);
      buffer<I, gpu> d_cols(chunk_nnz, s);
      buffer<C, gpu> d_counts(chunk_nnz, s);
      buffer<T, gpu> d_out(chunk_nnz, s);
      copy(d_offsets, std::span<I const>(local), s);
      copy(d_cols, std::span<I const>(counts.col_indices + p0, chunk_nnz), s);
      copy(d_counts, std::span<C const>(counts.values + p0, chunk_nnz), s);
      tfidf_row_weighting<C, T, I> const row{d_offsets.data(), d_cols.data(), d_counts.data(),
                                             d_idf.data(),     o.sublinear_tf, o.use_idf,
                                             o.norm,           d_out.data()};
      backend::cuda::detail::launch_row_weighting(row, static_cast<I>(n), s);
      copy(std::span<T>(out + (p0 - base), chunk_nnz), d_out, s);
      s.synchronize();  // `local` and the pageable destination are reused
      r0 = r1;
    }
  }
};

static_assert(weighting_leaf_for<weighting_leaf<gpu>, float, std::uint32_t, std::int32_t> &&
              weighting_leaf_for<weighting_leaf<gpu>, float, float, std::int32_t>);

}  // namespace mgpu::detail
