// mgpu/backend/cuda/knn.cuh — the GPU tile search of brute-force k-NN (method in
// knn.hpp): cuBLAS GEMM for the dot products, the host's score functors applied on the
// device, then each query row's best k: for k <= knn_select_max_k a two-pass
// k-selection (select_chunk_topk / merge_chunk_topk of functors.hpp, tested on the host),
// above it a CUB segmented sort of each row; the k of each row are copied back.
//
// Host-compiled programs that call knn on an execution_policy<gpu> instantiate the
// kernels once in a .cu file:
//
//   #include <mgpu/backend/cuda/knn.cuh>
//   MGPU_CUDA_INSTANTIATE_KNN(float);
//
// Compile with nvcc (CUDA translation units only).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include <cub/device/device_for.cuh>
#include <cub/device/device_segmented_sort.cuh>

#include "mgpu/backend/cuda/functors.hpp"
#include "mgpu/backend/cuda/knn.hpp"

namespace mgpu::backend::cuda::detail {

/// Turns the dot products of a rows x cols tile into scores in place, and writes each
/// entry's shard-local column. One thread per entry.
template <class T, class Score>
struct knn_score_tile {
  T* values;                // rows x cols: dot products in, scores out
  std::int32_t* columns;    // rows x cols
  T const* query_terms;     // rows
  T const* base_terms;      // cols (already offset to the chunk)
  std::int64_t cols;
  Score score;

  __device__ void operator()(std::int64_t i) const {
    std::int64_t const r = i / cols;
    std::int64_t const c = i - r * cols;
    values[i] = score(values[i], query_terms[r], base_terms[c]);
    if (columns != nullptr) columns[i] = static_cast<std::int32_t>(c);
  }
};

/// The largest k the tile search selects in two passes instead of sorting whole rows
/// (selection inserts each candidate in O(k), so a large k is better served by a sort).
inline constexpr std::int64_t knn_select_max_k = 256;

/// Columns per first-pass chunk of the k-selection: enough that most candidates of a
/// chunk are rejected by one comparison with the k-th best.
constexpr std::int64_t knn_select_chunk(std::int64_t k) { return std::max<std::int64_t>(1024, 8 * k); }

/// offsets[i] = i * cols: the row starts of a rows x cols tile.
struct knn_row_starts {
  std::int64_t* offsets;
  std::int64_t cols;
  __device__ void operator()(std::int64_t i) const { offsets[i] = i * cols; }
};

/// Copies the first `kept` entries of each sorted row to the k-wide outputs.
template <class T>
struct knn_take_first {
  T const* sorted_scores;  // rows x cols
  std::int32_t const* sorted_columns;
  std::int64_t cols;
  std::int64_t kept;
  std::int64_t k;
  T* out_scores;  // rows x k
  std::int32_t* out_columns;

  __device__ void operator()(std::int64_t i) const {
    std::int64_t const r = i / kept;
    std::int64_t const j = i - r * kept;
    out_scores[r * k + j] = sorted_scores[r * cols + j];
    out_columns[r * k + j] = sorted_columns[r * cols + j];
  }
};

template <class T>
void gemm_tn(cublasHandle_t handle, int m, int n, int kdim, T const* a, int lda, T const* b, int ldb, T* c,
             int ldc) {
  T const one = 1;
  T const zero = 0;
  if constexpr (std::is_same_v<T, float>) {
    MGPU_CUBLAS_TRY(cublasSgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, m, n, kdim, &one, a, lda, b, ldb, &zero, c, ldc));
  } else {
    static_assert(std::is_same_v<T, double>, "knn on GPUs: float or double");
    MGPU_CUBLAS_TRY(cublasDgemm(handle, CUBLAS_OP_T, CUBLAS_OP_N, m, n, kdim, &one, a, lda, b, ldb, &zero, c, ldc));
  }
}

template <class T, class Score>
void knn_search_tile(device_context<gpu>& ctx, knn_shard<T> const& shard, dense_view<T const> queries,
                     std::span<T const> query_terms, Score const& score, std::int64_t k,
                     std::int64_t b_begin, std::int64_t b_end,
                     std::span<mgpu::detail::scored<T, std::int64_t>> out, std::span<std::int32_t> counts) {
  auto& s = ctx.work;
  std::int64_t const rows = queries.rows;
  std::int64_t const cols = b_end - b_begin;
  std::int64_t const dim = shard.dim;
  std::int64_t const kept = std::min(k, cols);
  auto const entries = static_cast<std::size_t>(rows * cols);

  // The queries, packed to ld = d in the device's reusable pinned scratch (it outlives
  // this call, so an exception cannot free it under a pending copy), and their terms.
  auto const h_queries = ctx.scratch.get<T>(0, static_cast<std::size_t>(rows * dim));
  for (std::int64_t r = 0; r < rows; ++r) {
    auto const row = queries.row(r);
    std::copy(row.begin(), row.end(), h_queries.data() + r * dim);
  }
  buffer<T, gpu> d_queries(h_queries.size(), s);
  buffer<T, gpu> d_terms(static_cast<std::size_t>(rows), s);
  copy(d_queries, std::span<T const>(h_queries), s);
  copy(d_terms, query_terms.first(static_cast<std::size_t>(rows)), s);

  // Dot products: the row-major rows x cols tile is the column-major cols x rows matrix
  // B_chunk · Q^T, with B_chunk and Q row-major (column-major d x n, ld = d).
  buffer<T, gpu> values(entries, s);
  if (dim == 0) {
    MGPU_CUDA_TRY(cudaMemsetAsync(values.data(), 0, entries * sizeof(T), s.handle()));
  } else {
    gemm_tn<T>(ctx.libraries.cublas(), static_cast<int>(cols), static_cast<int>(rows), static_cast<int>(dim),
               shard.data + b_begin * shard.ld, static_cast<int>(shard.ld), d_queries.data(),
               static_cast<int>(dim), values.data(), static_cast<int>(cols));
  }
  bool const select = k <= knn_select_max_k;
  buffer<std::int32_t, gpu> columns(select ? 0 : entries, s);
  MGPU_CUDA_TRY(cub::DeviceFor::Bulk(static_cast<std::int64_t>(entries),
                                     knn_score_tile<T, Score>{values.data(), select ? nullptr : columns.data(),
                                                              d_terms.data(), shard.terms + b_begin, cols,
                                                              score},
                                     s.handle()));

  auto const out_size = static_cast<std::size_t>(rows * k);
  buffer<T, gpu> top_scores(out_size, s);
  buffer<std::int32_t, gpu> top_columns(out_size, s);
  if (select && rows * kept > 0) {
    // Two passes (functors.hpp): each (row, chunk) keeps its best k, then each row
    // merges its chunks' lists in column order; ties keep the smaller column.
    std::int64_t const chunk = knn_select_chunk(k);
    std::int64_t const chunks = (cols + chunk - 1) / chunk;
    auto const lists = static_cast<std::size_t>(rows * chunks);
    buffer<T, gpu> chunk_scores(lists * static_cast<std::size_t>(k), s);
    buffer<std::int32_t, gpu> chunk_columns(lists * static_cast<std::size_t>(k), s);
    buffer<std::int32_t, gpu> chunk_counts(lists, s);
    MGPU_CUDA_TRY(cub::DeviceFor::Bulk(static_cast<std::int64_t>(lists),
                                       select_chunk_topk<T>{values.data(), cols, chunk, chunks, k,
                                                            chunk_scores.data(), chunk_columns.data(),
                                                            chunk_counts.data()},
                                       s.handle()));
    MGPU_CUDA_TRY(cub::DeviceFor::Bulk(rows,
                                       merge_chunk_topk<T>{chunk_scores.data(), chunk_columns.data(),
                                                           chunk_counts.data(), chunks, k, top_scores.data(),
                                                           top_columns.data()},
                                       s.handle()));
  } else if (rows * kept > 0) {
    // Each row best first: scores descending; the sort is stable and columns start in
    // ascending order, so equal scores keep the smaller index first.
    buffer<std::int64_t, gpu> offsets(static_cast<std::size_t>(rows) + 1, s);
    MGPU_CUDA_TRY(cub::DeviceFor::Bulk(rows + 1, knn_row_starts{offsets.data(), cols}, s.handle()));
    buffer<T, gpu> sorted_values(entries, s);
    buffer<std::int32_t, gpu> sorted_columns(entries, s);
    std::size_t temp_bytes = 0;
    MGPU_CUDA_TRY(cub::DeviceSegmentedSort::StableSortPairsDescending(
        nullptr, temp_bytes, values.data(), sorted_values.data(), columns.data(), sorted_columns.data(),
        static_cast<std::int64_t>(entries), rows, offsets.data(), offsets.data() + 1, s.handle()));
    buffer<unsigned char, gpu> temp(temp_bytes, s);
    MGPU_CUDA_TRY(cub::DeviceSegmentedSort::StableSortPairsDescending(
        temp.data(), temp_bytes, values.data(), sorted_values.data(), columns.data(), sorted_columns.data(),
        static_cast<std::int64_t>(entries), rows, offsets.data(), offsets.data() + 1, s.handle()));
    MGPU_CUDA_TRY(cub::DeviceFor::Bulk(rows * kept,
                                       knn_take_first<T>{sorted_values.data(), sorted_columns.data(), cols, kept,
                                                         k, top_scores.data(), top_columns.data()},
                                       s.handle()));
  }

  auto const h_scores = ctx.scratch.get<T>(1, out_size);
  auto const h_columns = ctx.scratch.get<std::int32_t>(2, out_size);
  copy(h_scores, top_scores, s);
  copy(h_columns, top_columns, s);
  s.synchronize();
  std::int64_t const first = shard.first + b_begin;
  for (std::int64_t r = 0; r < rows; ++r) {
    counts[static_cast<std::size_t>(r)] = static_cast<std::int32_t>(kept);
    for (std::int64_t j = 0; j < kept; ++j) {
      auto const at = static_cast<std::size_t>(r * k + j);
      out[at] = {h_scores[at], first + h_columns[at]};
    }
  }
}

}  // namespace mgpu::backend::cuda::detail

/// Instantiates the GPU k-NN tile search for values T and every metric, for programs
/// whose knn calls are compiled by a host compiler (see the file comment).
#define MGPU_CUDA_INSTANTIATE_KNN(T)                                                                    \
  template void ::mgpu::backend::cuda::detail::knn_search_tile<T, ::mgpu::detail::knn_l2_score<T>>(     \
      ::mgpu::device_context<::mgpu::gpu>&, ::mgpu::backend::cuda::knn_shard<T> const&,                 \
      ::mgpu::dense_view<T const>, std::span<T const>, ::mgpu::detail::knn_l2_score<T> const&,          \
      std::int64_t, std::int64_t, std::int64_t, std::span<::mgpu::detail::scored<T, std::int64_t>>,    \
      std::span<std::int32_t>);                                                                         \
  template void ::mgpu::backend::cuda::detail::knn_search_tile<T, ::mgpu::detail::knn_ip_score<T>>(     \
      ::mgpu::device_context<::mgpu::gpu>&, ::mgpu::backend::cuda::knn_shard<T> const&,                 \
      ::mgpu::dense_view<T const>, std::span<T const>, ::mgpu::detail::knn_ip_score<T> const&,          \
      std::int64_t, std::int64_t, std::int64_t, std::span<::mgpu::detail::scored<T, std::int64_t>>,    \
      std::span<std::int32_t>);                                                                         \
  template void ::mgpu::backend::cuda::detail::knn_search_tile<T, ::mgpu::detail::knn_cosine_score<T>>( \
      ::mgpu::device_context<::mgpu::gpu>&, ::mgpu::backend::cuda::knn_shard<T> const&,                 \
      ::mgpu::dense_view<T const>, std::span<T const>, ::mgpu::detail::knn_cosine_score<T> const&,      \
      std::int64_t, std::int64_t, std::int64_t, std::span<::mgpu::detail::scored<T, std::int64_t>>,    \
      std::span<std::int32_t>)
