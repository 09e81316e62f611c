// mgpu/backend/cpu/text/weight.hpp — TfidfTransformer.transform of a count matrix on
// host devices: the row kernel (shared with the CUDA backend, which runs it one row per
// GPU thread), the OpenMP loop over rows, and weighting_leaf<cpu>.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

#include "mgpu/algorithms/detail/weighting_leaf.hpp"
#include "mgpu/algorithms/tfidf_options.hpp"
#include "mgpu/core/buffer.hpp"
#include "mgpu/core/device.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/execution/fork_join.hpp"
#include "mgpu/execution/policy.hpp"
#include "mgpu/sparse/csr_matrix.hpp"
#include "mgpu/sparse/csr_view.hpp"
#include "mgpu/sparse/partition.hpp"

namespace mgpu::detail {

/// One row of TfidfTransformer.transform: weights row r's counts (tf or 1 + ln tf,
/// times idf, in double) and scales them to unit norm into out (indexed like the
/// counts). Plain pointers, no allocation and constexpr, so the CUDA backend runs this
/// same code on the device, one row per thread (nvcc --expt-relaxed-constexpr), and
/// assembling a fitted corpus runs it on each row as the row is finished.
template <class C, class T, class I>
struct tfidf_row_weighting {
  I const* row_offsets;
  I const* col_indices;
  C const* counts;
  double const* idf;
  bool sublinear_tf;
  bool use_idf;
  tfidf_norm norm;
  T* out;

  constexpr double weight(I p) const {
    auto v = static_cast<double>(counts[p]);
    if (sublinear_tf) v = std::log(v) + 1.0;
    if (use_idf) v *= idf[col_indices[p]];
    return v;
  }

  constexpr void operator()(I r) const {
    I const begin = row_offsets[r];
    I const end = row_offsets[r + 1];
    double sum = 0.0;
    for (I p = begin; p < end; ++p) {
      double const v = weight(p);
      sum += norm == tfidf_norm::l2 ? v * v : std::fabs(v);
    }
    // sklearn's inplace_csr_row_normalize_*: zero rows are left alone, never 0/0.
    double scale = 1.0;
    if (norm != tfidf_norm::none && sum != 0.0) scale = norm == tfidf_norm::l2 ? std::sqrt(sum) : sum;
    for (I p = begin; p < end; ++p) out[p] = static_cast<T>(weight(p) / scale);
  }
};

/// Weights and normalises rows [first, last) of `counts` into `out` (indexed like
/// counts.values), with the calling thread's OpenMP threads.
template <class C, class T, class I>
void weight_rows(csr_view<C, I> counts, I first, I last, double const* idf,
                 tfidf_options const& o, T* out) {
  tfidf_row_weighting<C, T, I> const row{counts.row_offsets, counts.col_indices, counts.values, idf,
                                         o.sublinear_tf, o.use_idf, o.norm, out};
#pragma omp parallel for schedule(dynamic, 256)
  for (I r = first; r < last; ++r) row(r);
}

/// Weights `counts` into `out` (indexed like counts.values; it may be counts.values
/// itself when C is T: each value is read before it is overwritten), on `policy`'s
/// devices when one is given, else on the calling thread.
template <class T, class C, class I>
void weight_counts_into(execution_policy<cpu> const* policy, csr_view<C, I> counts,
                        std::span<double const> idf, tfidf_options const& o, T* out) {
  if (o.use_idf && idf.size() != static_cast<std::size_t>(counts.cols)) {
    throw dimension_mismatch(message("tf-idf weighting: the count matrix has ", counts.cols,
                                     " columns but idf has ", idf.size(), " entries"));
  }
  if (policy == nullptr) {
    weight_rows(counts, I{0}, counts.rows, idf.data(), o, out);
  } else {
    auto const bounds = partition_rows_by_nnz(counts, policy->device_count());
    fork_join(*policy, [&](device_context<cpu>&, std::size_t i) {
      if (bounds[i] < bounds[i + 1]) weight_rows(counts, bounds[i], bounds[i + 1], idf.data(), o, out);
    });
  }
}

/// TfidfTransformer.transform of a count matrix (the structure is copied, the values
/// weighted); on `policy`'s devices when one is given, else on the calling thread.
template <class T, class C, class I>
csr_matrix<cpu, T, I> weight_counts_on(execution_policy<cpu> const* policy, csr_view<C, I> counts,
                                       std::span<double const> idf, tfidf_options const& o) {
  auto const rows = static_cast<std::size_t>(counts.rows);
  auto const nnz = static_cast<std::size_t>(counts.nnz());
  buffer<T, cpu> values(nnz);
  weight_counts_into(policy, counts, idf, o, values.data());
  buffer<I, cpu> offsets(std::span<I const>(counts.row_offsets, rows + 1));
  buffer<I, cpu> cols(std::span<I const>(counts.col_indices, nnz));
  return csr_matrix<cpu, T, I>::adopt_canonical(counts.rows, counts.cols, std::move(offsets),
                                                std::move(cols), std::move(values));
}

/// Weighting on the calling thread's OpenMP threads.
template <class T, class C, class I>
csr_matrix<cpu, T, I> weight_counts(csr_view<C, I> counts, std::span<double const> idf,
                                    tfidf_options const& o) {
  return weight_counts_on<T>(nullptr, counts, idf, o);
}

/// Weighting on a host policy's devices.
template <class T, class C, class I>
csr_matrix<cpu, T, I> weight_counts(execution_policy<cpu> const& policy, csr_view<C, I> counts,
                                    std::span<double const> idf, tfidf_options const& o) {
  return weight_counts_on<T>(&policy, counts, idf, o);
}

/// Host devices: the weighting above, on the policy's devices (its threads).
template <>
struct weighting_leaf<cpu> {
  static constexpr bool weights_host_memory = true;

  template <class T, class C, class I>
  static csr_matrix<cpu, T, I> weight(execution_policy<cpu> const& policy, csr_view<C, I> counts,
                                      std::span<double const> idf, tfidf_options const& o) {
    return weight_counts_on<T>(&policy, counts, idf, o);
  }
};

static_assert(weighting_leaf_for<weighting_leaf<cpu>, float, std::uint32_t, std::int32_t> &&
              weighting_leaf_for<weighting_leaf<cpu>, double, double, std::int64_t>);

}  // namespace mgpu::detail
