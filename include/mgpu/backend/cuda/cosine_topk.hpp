// mgpu/backend/cuda/cosine_topk.hpp — GPU leaf of cosine top-k: one corpus shard per
// device, queries scored in batches sized by the device's memory budget.
//
// Method (a simple, exact design built from library calls):
//   shard   corpus rows [first, last), each scaled by 1/‖row‖, transposed on the host
//           to terms x shard documents, uploaded through the transfer layer (mgpu::upload,
//           counted in set.transfers()) and kept resident in device memory (CSR, 32-bit
//           indices as cuSPARSE SpGEMM requires).
//   batch   the query rows, scaled by 1/‖row‖ (q x terms CSR), uploaded per batch;
//           S = Q · shard by cuSPARSE SpGEMM (CUSPARSE_SPGEMM_DEFAULT): only the
//           (query, document) pairs sharing a term are formed, never the dense q x n.
//   rank    each row of S sorted by CUB segmented sorts, first by document ascending,
//           then (stable) by score descending: the row is then in the order of
//           detail::ranks_before. select_sorted_row (functors.hpp, tested on the host)
//           keeps the first k nonzero, non-self entries, one thread per row.
//   return  the k best of each row (local indices + scores) are copied back through
//           pinned memory; the shared orchestration (algorithms/cosine_topk.hpp)
//           merges the shards exactly.
// Batches (cosine_batch_end, batching.hpp): rows × shard documents ≤ INT32_MAX, so no
// score index can overflow cuSPARSE's 32-bit indices, and the products SpGEMM forms
// (Σ df over the batch's terms, known from the shard's term offsets, a host copy of
// which the shard keeps) within INT32_MAX and, with the scores they bound, within the
// budget. A batch that still fails for lack of room (out_of_memory, index_overflow,
// CUSPARSE_STATUS_INSUFFICIENT_RESOURCES, ...) is halved and retried; a batch whose
// queries share no term with the shard never reaches cuSPARSE.
//
// Scores are sums of the same products as on the host but in cuSPARSE's order, so they
// agree with the host's to round-off, and documents whose scores differ by round-off
// may be ranked differently.
//
// Thresholds: the k best of each row are selected as above, then the host drops those
// below the threshold (a suffix of each ranked list), which is exact for "the k best
// among the scores >= threshold". k = 0 (every match above a threshold) is not
// implemented on GPUs: score_all throws invalid_argument. Saving an index downloads
// each shard (counted) and transposes it back on the host, which restores the
// normalised rows exactly (a transposition only moves entries).
//
// Host-compilable: the shard, the orchestration of batches and the leaf. The batch
// scoring itself (score_batch) is defined in cosine_topk.cuh, compiled by nvcc.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <type_traits>
#include <vector>

#include "mgpu/algorithms/cosine_topk.hpp"
#include "mgpu/backend/cuda/batching.hpp"
#include "mgpu/backend/cuda/buffer.hpp"
#include "mgpu/backend/cuda/copy.hpp"
#include "mgpu/backend/cuda/csr_matrix.hpp"
#include "mgpu/backend/cuda/device_set.hpp"
#include "mgpu/backend/cuda/functors.hpp"
#include "mgpu/backend/cuda/transfer.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/detail/topk_heap.hpp"
#include "mgpu/sparse/csr_view.hpp"
#include "mgpu/sparse/transpose.hpp"

namespace mgpu::backend::cuda {

template <class T>
constexpr cudaDataType cuda_value_type() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "the CUDA backend supports float and double values");
  return std::is_same_v<T, float> ? CUDA_R_32F : CUDA_R_64F;
}

/// One corpus shard resident on a GPU (see the file comment).
template <class T, class I>
struct cosine_shard {
  I first = 0;
  std::int32_t documents = 0;
  std::int32_t terms = 0;
  std::int32_t nnz = 0;
  // terms x documents: the shard-local document of each entry and c_dt / ‖c_d‖
  csr_matrix<gpu, T, std::int32_t> postings;
  std::vector<std::int32_t> host_offsets;  // the offsets on the host: df of each term
};

/// A shard on its way to the GPU: the transposed rows on the host (the upload's source,
/// kept until it completes) and their device copy.
template <class T, class I>
struct cosine_staged {
  csr_matrix<mgpu::cpu, T, std::int32_t> host;
  csr_matrix<gpu, T, std::int32_t> device;
};

namespace detail {

inline std::int32_t to_int32(std::int64_t value, char const* what) {
  if (value < 0 || value > std::numeric_limits<std::int32_t>::max()) {
    throw index_overflow(mgpu::detail::message(
        "cosine_topk on GPUs: ", what, " (", value,
        ") does not fit cuSPARSE SpGEMM's 32-bit indices; use more devices or smaller batches"));
  }
  return static_cast<std::int32_t>(value);
}

/// Rows [first, last) of `a`, each scaled by scale[row], as a CSR with 32-bit indices
/// and offsets starting at 0.
template <class T, class I>
struct host_csr32 {
  std::vector<std::int32_t> offsets;
  std::vector<std::int32_t> columns;
  std::vector<T> values;
};

template <class T, class I>
host_csr32<T, I> scaled_rows(csr_view<T, I> a, std::span<T const> scale, I first, I last) {
  host_csr32<T, I> out;
  auto const p0 = a.row_begin(first);
  auto const nnz = static_cast<std::size_t>(a.row_begin(last) - p0);
  to_int32(static_cast<std::int64_t>(nnz), "the entries of a query batch");
  out.offsets.resize(static_cast<std::size_t>(last - first) + 1);
  for (I r = first; r <= last; ++r) {
    out.offsets[static_cast<std::size_t>(r - first)] = static_cast<std::int32_t>(a.row_offsets[r] - p0);
  }
  out.columns.assign(a.col_indices + p0, a.col_indices + p0 + nnz);
  out.values.assign(a.values + p0, a.values + p0 + nnz);
  scale_row<T, std::int32_t> const scaler{out.offsets.data(), scale.data() + first, out.values.data()};
  for (std::int32_t r = 0; r < static_cast<std::int32_t>(last - first); ++r) scaler(r);
  return out;
}

/// Scores query rows [q_first, q_last) (one batch that fits) against the shard and
/// writes the host outputs, as cosine_leaf::score describes. Defined in
/// cosine_topk.cuh (nvcc).
template <class T, class I>
void score_batch(device_context<gpu>& ctx, csr_view<T, I> queries, std::span<T const> query_inv,
                 cosine_shard<T, I> const& shard, I q_first, I q_last, std::int64_t k,
                 bool exclude_self, std::span<mgpu::detail::scored<T, I>> out,
                 std::span<std::int32_t> counts);

}  // namespace detail
}  // namespace mgpu::backend::cuda

namespace mgpu::detail {

/// GPUs: the leaf described in backend/cuda/cosine_topk.cuh.
template <>
struct cosine_leaf<gpu> {
  template <class T, class I>
  using shard = backend::cuda::cosine_shard<T, I>;
  template <class T, class I>
  using staged = backend::cuda::cosine_staged<T, I>;

  template <class T, class I>
  static staged<T, I> stage(device_set<gpu>& set, std::size_t device, csr_view<T, I> block, bool normalise,
                            event<gpu>& done) {
    namespace bc = backend::cuda;
    auto const docs = bc::detail::to_int32(static_cast<std::int64_t>(block.rows), "a shard's documents");
    auto const terms = bc::detail::to_int32(static_cast<std::int64_t>(block.cols), "the number of columns");
    auto const scale = normalise ? inverse_row_norms(block) : std::vector<T>(static_cast<std::size_t>(block.rows), T{1});
    auto rows = bc::detail::scaled_rows(block, std::span<T const>(scale), I{0}, block.rows);
    csr_view<T, std::int32_t> const scaled{docs, terms, rows.offsets.data(), rows.columns.data(), rows.values.data()};
    staged<T, I> out;
    out.host = transpose(scaled);  // terms x documents
    out.device = mgpu::upload(set, device, out.host.view(), set[device].work, done);
    return out;
  }

  template <class T, class I>
  static shard<T, I> make_shard(device_context<gpu>&, staged<T, I>& rows, I first, bool, bool, std::size_t) {
    shard<T, I> out;
    out.first = first;
    out.documents = rows.host.cols();
    out.terms = rows.host.rows();
    out.nnz = rows.host.nnz();
    out.host_offsets.assign(rows.host.row_offsets().begin(), rows.host.row_offsets().end());
    out.postings = std::move(rows.device);
    return out;
  }

  template <class T, class I>
  static void score(device_context<gpu>& ctx, csr_view<T, I> queries,
                    std::span<T const> query_inv_norms, shard<T, I> const& sh, I q_first, I q_last,
                    std::size_t k, bool exclude_self, bool /*queries_non_negative: no pruning here*/,
                    T threshold, std::span<scored<T, I>> out, std::span<std::int32_t> counts, std::size_t budget,
                    std::span<std::atomic<T>> /*shared_bounds: each batch's lists come from one SpGEMM*/) {
    namespace bc = backend::cuda;
    auto const prefix = bc::query_products<I>(queries.row_offsets, queries.col_indices, q_first, q_last,
                                              std::span<std::int32_t const>(sh.host_offsets));
    bc::cosine_batch_limits const limits{sh.documents, static_cast<std::int64_t>(k), sizeof(T),
                                         ctx.memory_budget(budget)};
    auto const first = static_cast<std::int64_t>(q_first);
    bc::halving_batches(
        first, static_cast<std::int64_t>(q_last), std::numeric_limits<std::int32_t>::max() / 2,
        [&](std::int64_t begin, std::int64_t max_rows) {
          return bc::cosine_batch_end(prefix, first, begin, static_cast<std::int64_t>(q_last), max_rows, limits);
        },
        [&](std::int64_t begin, std::int64_t end) {
          auto const offset = static_cast<std::size_t>(begin - first);
          auto const rows = static_cast<std::size_t>(end - begin);
          if (prefix[static_cast<std::size_t>(end - first)] == prefix[offset]) {
            std::fill_n(counts.begin() + static_cast<std::ptrdiff_t>(offset), rows, 0);  // no shared term
            return;
          }
          bc::drain_on_error(ctx.work, [&] {
            bc::detail::score_batch(ctx, queries, query_inv_norms, sh, static_cast<I>(begin), static_cast<I>(end),
                                    static_cast<std::int64_t>(k), exclude_self, out.subspan(offset * k),
                                    counts.subspan(offset));
          });
        });
    // Each list is ranked: the scores below the threshold are its tail.
    for (std::size_t r = 0; r < counts.size(); ++r) {
      auto const* const list = out.data() + r * k;
      while (counts[r] > 0 && list[counts[r] - 1].score < threshold) --counts[r];
    }
  }

  template <class T, class I>
  static void score_all(device_context<gpu>&, csr_view<T, I>, std::span<T const>, shard<T, I> const&, I, I, bool,
                        bool, T, std::vector<std::int64_t>&, std::vector<scored<T, I>>&, std::size_t) {
    throw invalid_argument(
        "cosine search on GPUs: k = 0 (every match above a threshold) is not implemented by the GPU leaf; "
        "pass k >= 1 with the threshold, or use a host policy");
  }

  template <class T, class I>
  static void export_rows(device_set<gpu>& set, std::size_t device, shard<T, I> const& sh,
                          std::vector<std::int64_t>& offsets, std::vector<I>& columns, std::vector<T>& values) {
    event<gpu> done;
    auto const postings = mgpu::download(set, device, sh.postings, set[device].work, done);
    done.synchronize();
    auto const rows = transpose(postings.view());  // documents x terms
    std::int64_t const base = offsets.empty() ? 0 : offsets.back();
    if (offsets.empty()) offsets.push_back(0);
    for (std::int32_t d = 0; d < rows.rows(); ++d) {
      offsets.push_back(base + static_cast<std::int64_t>(rows.row_offsets()[static_cast<std::size_t>(d) + 1]));
    }
    for (auto c : rows.col_indices()) columns.push_back(static_cast<I>(c));
    values.insert(values.end(), rows.values().begin(), rows.values().end());
  }
};

static_assert(cosine_leaf_for<cosine_leaf<gpu>, float, std::int32_t> &&
              cosine_leaf_for<cosine_leaf<gpu>, double, std::int64_t>);

}  // namespace mgpu::detail
