// mgpu/backend/cuda/batching.hpp — how the GPU leaves cut their work into batches, and
// which failures make a batch smaller instead of failing the call.
//
//   halving_batches      walks rows [first, last) in batches; a batch that fails for lack
//                        of room (out_of_memory, index_overflow, a library status that
//                        means the same) is halved and retried; a one-row batch rethrows
//   is_resource_shortage the vendor status names counted as lack of room
//   query_products       per query row, the products SpGEMM forms against a shard
//                        (Σ df over the row's terms), from the shard's term offsets
//   cosine_batch_end     the end of a cosine batch: at most INT32_MAX scores possible
//                        (rows × shard documents) and products, and the batch's
//                        estimated bytes within the budget
//
// Plain C++ (no CUDA header): the host tests run all of it (tests/cuda/test_cuda_functors.cpp).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string_view>
#include <vector>

#include "mgpu/core/error.hpp"

namespace mgpu::backend::cuda {

/// Vendor statuses that mean "not enough memory or resources for this size": a smaller
/// batch may succeed. cuSPARSE SpGEMM reports INSUFFICIENT_RESOURCES when its internal
/// 32-bit counters or buffers do not fit.
constexpr bool is_resource_shortage(std::string_view status) noexcept {
  return status == "cudaErrorMemoryAllocation" || status == "CUSPARSE_STATUS_ALLOC_FAILED" ||
         status == "CUSPARSE_STATUS_INSUFFICIENT_RESOURCES" || status == "CUBLAS_STATUS_ALLOC_FAILED" ||
         status == "CUSOLVER_STATUS_ALLOC_FAILED";
}

/// Runs `run(begin, end)` over [first, last) in consecutive batches. `next_end(begin,
/// max_rows)` proposes each batch's end (in (begin, min(last, begin + max_rows)]);
/// `max_rows` starts at `max_rows` and becomes half the failed batch's rows whenever a
/// batch fails with out_of_memory, index_overflow or a device_call_error whose status
/// is_resource_shortage; the batch is then retried. A failing one-row batch, and every
/// other exception, propagates. `run` must leave no partial result that a retry of the
/// same rows would not overwrite.
template <class NextEnd, class Run>
void halving_batches(std::int64_t first, std::int64_t last, std::int64_t max_rows, NextEnd&& next_end, Run&& run) {
  max_rows = std::max<std::int64_t>(max_rows, 1);
  std::int64_t begin = first;
  while (begin < last) {
    std::int64_t const end =
        std::clamp<std::int64_t>(next_end(begin, max_rows), begin + 1, std::min(last, begin + max_rows));
    bool done = false;
    try {
      run(begin, end);
      done = true;
    } catch (out_of_memory const&) {
      if (end - begin == 1) throw;
    } catch (index_overflow const&) {
      if (end - begin == 1) throw;
    } catch (device_call_error const& e) {
      if (end - begin == 1 || !is_resource_shortage(e.status_name())) throw;
    }
    if (done) {
      begin = end;
    } else {
      max_rows = std::max<std::int64_t>(1, (end - begin) / 2);
    }
  }
}

/// prefix[i] = Σ over query rows [first, first + i) of Σ_{t in row} df(t), where
/// df(t) = term_offsets[t + 1] − term_offsets[t] (the shard's terms × documents CSR):
/// the products S = Q · shard forms for those rows, and an upper bound of their scores.
template <class I>
std::vector<std::int64_t> query_products(I const* row_offsets, I const* col_indices, I first, I last,
                                         std::span<std::int32_t const> term_offsets) {
  std::vector<std::int64_t> prefix(static_cast<std::size_t>(last - first) + 1, 0);
  for (I r = first; r < last; ++r) {
    std::int64_t sum = 0;
    for (I p = row_offsets[r]; p < row_offsets[r + 1]; ++p) {
      auto const t = static_cast<std::size_t>(col_indices[p]);
      if (t + 1 < term_offsets.size()) sum += term_offsets[t + 1] - term_offsets[t];
    }
    auto const i = static_cast<std::size_t>(r - first);
    prefix[i + 1] = prefix[i] + sum;
  }
  return prefix;
}

/// What bounds one cosine batch on a device.
struct cosine_batch_limits {
  std::int64_t documents = 0;   ///< the shard's documents
  std::int64_t k = 0;
  std::size_t value_bytes = 4;  ///< sizeof(T)
  std::size_t budget = 0;       ///< bytes the batch may use
};

/// Estimated device bytes of a batch of `rows` query rows forming `products` products
/// against the shard: the scores S (at most min(products, rows × documents) entries, in
/// SpGEMM's output, the sorted copy and the sort's temporary storage), SpGEMM's
/// intermediate buffers (about two entries per product), and the per-row outputs.
constexpr std::size_t cosine_batch_bytes(std::int64_t rows, std::int64_t products, cosine_batch_limits const& l) {
  auto const entry = static_cast<std::size_t>(l.value_bytes + 4);
  auto const scores = static_cast<std::size_t>(std::min(products, rows * l.documents));
  return 3 * scores * entry + 2 * static_cast<std::size_t>(products) * entry +
         static_cast<std::size_t>(rows) * (static_cast<std::size_t>(l.k) * entry + 64);
}

/// The end of the batch of query rows starting at `begin` (rows [begin, end), at most
/// `max_rows` and at least one, before `last`): the largest end such that rows ×
/// documents ≤ INT32_MAX (every score index fits cuSPARSE's 32-bit indices), the
/// products ≤ INT32_MAX, and cosine_batch_bytes within the budget. `prefix` is
/// query_products over rows [first, last).
inline std::int64_t cosine_batch_end(std::span<std::int64_t const> prefix, std::int64_t first, std::int64_t begin,
                                     std::int64_t last, std::int64_t max_rows, cosine_batch_limits const& l) {
  constexpr std::int64_t int32_max = std::numeric_limits<std::int32_t>::max();
  std::int64_t limit = std::min(last - begin, max_rows);
  if (l.documents > 0) limit = std::min(limit, int32_max / l.documents);
  auto const products = [&](std::int64_t end) {
    return prefix[static_cast<std::size_t>(end - first)] - prefix[static_cast<std::size_t>(begin - first)];
  };
  auto const fits = [&](std::int64_t end) {
    return products(end) <= int32_max && cosine_batch_bytes(end - begin, products(end), l) <= l.budget;
  };
  // Both conditions only get harder as the batch grows: binary search for the last fit.
  std::int64_t lo = 1;  // a single row is always tried
  std::int64_t hi = std::max<std::int64_t>(limit, 1);
  while (lo < hi) {
    std::int64_t const mid = lo + (hi - lo + 1) / 2;
    if (fits(begin + mid)) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return begin + lo;
}

}  // namespace mgpu::backend::cuda
