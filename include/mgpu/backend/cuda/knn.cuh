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
#include <new>
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

/// The tile's results as its stream leaves them in pinned memory, and where they go:
/// run() (a CUDA host function, queued after the copies) writes out / counts. Lives at
/// the start of the staging set's pinned result slot, so it exists as long as the set
/// is not reused (the caller waits for the set's previous tile before reusing it).
template <class T>
struct knn_tile_unpack {
  T const* scores;              // pinned, rows x k
  std::int32_t const* columns;  // pinned, rows x k, shard-local from b_begin
  mgpu::detail::scored<T, std::int64_t>* out;
  std::int32_t* counts;
  std::int64_t rows;
  std::int64_t k;
  std::int64_t kept;
  std::int64_t first;  // global index of column 0

  static void CUDART_CB run(void* self) noexcept {
    auto const& u = *static_cast<knn_tile_unpack const*>(self);
    for (std::int64_t r = 0; r < u.rows; ++r) {
      u.counts[r] = static_cast<std::int32_t>(u.kept);
      for (std::int64_t j = 0; j < u.kept; ++j) {
        auto const at = r * u.k + j;
        u.out[at] = {u.scores[at], u.first + u.columns[at]};
      }
    }
  }
};

/// Rounds a byte offset up to a multiple of `align`.
constexpr std::size_t knn_align(std::size_t bytes, std::size_t align) { return (bytes + align - 1) / align * align; }

template <class T, class Score>
void knn_search_tile(device_context<gpu>& ctx, knn_shard<T> const& shard, dense_view<T const> queries,
                     std::span<T const> query_terms, Score const& score, std::int64_t k,
                     std::int64_t b_begin, std::int64_t b_end,
                     std::span<mgpu::detail::scored<T, std::int64_t>> out, std::span<std::int32_t> counts,
                     std::size_t staging) {
  auto& s = ctx.work;
  std::int64_t const rows = queries.rows;
  std::int64_t const cols = b_end - b_begin;
  std::int64_t const dim = shard.dim;
  std::int64_t const kept = std::min(k, cols);
  auto const entries = static_cast<std::size_t>(rows * cols);
  MGPU_EXPECTS(staging < knn_staging_sets, "knn_search_tile: staging set ", staging, " of ", knn_staging_sets);

  // The queries, packed to ld = d, then their terms, in the staging set's pinned input
  // slot (the device's scratch outlives this call, so an exception cannot free it under
  // a pending copy; pinned, so the copy is asynchronous).
  auto const in_size = static_cast<std::size_t>(rows * dim + rows);
  auto const h_in = ctx.scratch.get<T>(2 * staging, in_size);
  for (std::int64_t r = 0; r < rows; ++r) {
    auto const row = queries.row(r);
    std::copy(row.begin(), row.end(), h_in.data() + r * dim);
  }
  std::copy_n(query_terms.data(), rows, h_in.data() + rows * dim);
  buffer<T, gpu> d_in(in_size, s);
  copy(d_in, std::span<T const>(h_in), s);
  T const* const d_queries = d_in.data();
  T const* const d_terms = d_in.data() + rows * dim;

  // Dot products: the row-major rows x cols tile is the column-major cols x rows matrix
  // B_chunk · Q^T, with B_chunk and Q row-major (column-major d x n, ld = d).
  buffer<T, gpu> values(entries, s);
  if (dim == 0) {
    MGPU_CUDA_TRY(cudaMemsetAsync(values.data(), 0, entries * sizeof(T), s.handle()));
  } else {
    gemm_tn<T>(ctx.libraries.cublas(), static_cast<int>(cols), static_cast<int>(rows), static_cast<int>(dim),
               shard.data + b_begin * shard.ld, static_cast<int>(shard.ld), d_queries,
               static_cast<int>(dim), values.data(), static_cast<int>(cols));
  }
  bool const select = k <= knn_select_max_k;
  buffer<std::int32_t, gpu> columns(select ? 0 : entries, s);
  MGPU_CUDA_TRY(cub::DeviceFor::Bulk(static_cast<std::int64_t>(entries),
                                     knn_score_tile<T, Score>{values.data(), select ? nullptr : columns.data(),
                                                              d_terms, shard.terms + b_begin, cols,
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

  // The results into the staging set's pinned result slot: [unpack | scores | columns];
  // a host function queued after the copies unpacks them into out / counts. Nothing
  // here waits: the caller completes the tile by its stream (knn.hpp).
  std::size_t const scores_at = knn_align(sizeof(knn_tile_unpack<T>), 64);
  std::size_t const columns_at = knn_align(scores_at + out_size * sizeof(T), 64);
  auto const h_out = ctx.scratch.get<std::byte>(2 * staging + 1, columns_at + out_size * sizeof(std::int32_t));
  auto* const h_scores = reinterpret_cast<T*>(h_out.data() + scores_at);
  auto* const h_columns = reinterpret_cast<std::int32_t*>(h_out.data() + columns_at);
  copy(std::span<T>(h_scores, out_size), top_scores, s);
  copy(std::span<std::int32_t>(h_columns, out_size), top_columns, s);
  auto* const unpack = ::new (static_cast<void*>(h_out.data())) knn_tile_unpack<T>{
      h_scores, h_columns, out.data(), counts.data(), rows, k, kept, shard.first + b_begin};
  MGPU_CUDA_TRY(cudaLaunchHostFunc(s.handle(), &knn_tile_unpack<T>::run, unpack));
}

}  // namespace mgpu::backend::cuda::detail

/// Instantiates the GPU k-NN tile search for values T and every metric, for programs
/// whose knn calls are compiled by a host compiler (see the file comment).
#define MGPU_CUDA_INSTANTIATE_KNN(T)                                                                    \
  template void ::mgpu::backend::cuda::detail::knn_search_tile<T, ::mgpu::detail::knn_l2_score<T>>(     \
      ::mgpu::device_context<::mgpu::gpu>&, ::mgpu::backend::cuda::knn_shard<T> const&,                 \
      ::mgpu::dense_view<T const>, std::span<T const>, ::mgpu::detail::knn_l2_score<T> const&,          \
      std::int64_t, std::int64_t, std::int64_t, std::span<::mgpu::detail::scored<T, std::int64_t>>,    \
      std::span<std::int32_t>, std::size_t);                                                            \
  template void ::mgpu::backend::cuda::detail::knn_search_tile<T, ::mgpu::detail::knn_ip_score<T>>(     \
      ::mgpu::device_context<::mgpu::gpu>&, ::mgpu::backend::cuda::knn_shard<T> const&,                 \
      ::mgpu::dense_view<T const>, std::span<T const>, ::mgpu::detail::knn_ip_score<T> const&,          \
      std::int64_t, std::int64_t, std::int64_t, std::span<::mgpu::detail::scored<T, std::int64_t>>,    \
      std::span<std::int32_t>, std::size_t);                                                            \
  template void ::mgpu::backend::cuda::detail::knn_search_tile<T, ::mgpu::detail::knn_cosine_score<T>>( \
      ::mgpu::device_context<::mgpu::gpu>&, ::mgpu::backend::cuda::knn_shard<T> const&,                 \
      ::mgpu::dense_view<T const>, std::span<T const>, ::mgpu::detail::knn_cosine_score<T> const&,      \
      std::int64_t, std::int64_t, std::int64_t, std::span<::mgpu::detail::scored<T, std::int64_t>>,    \
      std::span<std::int32_t>, std::size_t)
