// mgpu/backend/cuda/cosine_topk.cuh — the GPU batch scoring of cosine top-k (method in
// cosine_topk.hpp): cuSPARSE SpGEMM, CUB segmented sorts, one thread per row to select
// (cub::DeviceFor, which returns a status: no Thrust exception can escape).
//
// Compile with nvcc (CUDA translation units only).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

#include <cub/device/device_for.cuh>
#include <cub/device/device_segmented_sort.cuh>

#include "mgpu/backend/cuda/cosine_topk.hpp"

namespace mgpu::backend::cuda::detail {

/// cuSPARSE sparse-matrix descriptor, destroyed with its scope.
class sp_matrix {
 public:
  sp_matrix(std::int64_t rows, std::int64_t cols, std::int64_t nnz, void* offsets, void* columns,
            void* values, cudaDataType type) {
    MGPU_CUSPARSE_TRY(cusparseCreateCsr(&handle_, rows, cols, nnz, offsets, columns, values,
                                        CUSPARSE_INDEX_32I, CUSPARSE_INDEX_32I,
                                        CUSPARSE_INDEX_BASE_ZERO, type));
  }
  sp_matrix(sp_matrix const&) = delete;
  sp_matrix& operator=(sp_matrix const&) = delete;
  ~sp_matrix() { MGPU_CUSPARSE_TRY_NOTHROW(cusparseDestroySpMat(handle_)); }
  [[nodiscard]] cusparseSpMatDescr_t get() const noexcept { return handle_; }

 private:
  cusparseSpMatDescr_t handle_ = nullptr;
};

/// The same, for a matrix cuSPARSE only reads.
class const_sp_matrix {
 public:
  const_sp_matrix(std::int64_t rows, std::int64_t cols, std::int64_t nnz, void const* offsets,
                  void const* columns, void const* values, cudaDataType type) {
    MGPU_CUSPARSE_TRY(cusparseCreateConstCsr(&handle_, rows, cols, nnz, offsets, columns, values,
                                             CUSPARSE_INDEX_32I, CUSPARSE_INDEX_32I,
                                             CUSPARSE_INDEX_BASE_ZERO, type));
  }
  const_sp_matrix(const_sp_matrix const&) = delete;
  const_sp_matrix& operator=(const_sp_matrix const&) = delete;
  ~const_sp_matrix() { MGPU_CUSPARSE_TRY_NOTHROW(cusparseDestroySpMat(handle_)); }
  [[nodiscard]] cusparseConstSpMatDescr_t get() const noexcept { return handle_; }

 private:
  cusparseConstSpMatDescr_t handle_ = nullptr;
};

class spgemm_descr {
 public:
  spgemm_descr() { MGPU_CUSPARSE_TRY(cusparseSpGEMM_createDescr(&handle_)); }
  spgemm_descr(spgemm_descr const&) = delete;
  spgemm_descr& operator=(spgemm_descr const&) = delete;
  ~spgemm_descr() { MGPU_CUSPARSE_TRY_NOTHROW(cusparseSpGEMM_destroyDescr(handle_)); }
  [[nodiscard]] cusparseSpGEMMDescr_t get() const noexcept { return handle_; }

 private:
  cusparseSpGEMMDescr_t handle_ = nullptr;
};

template <class T, class I>
void score_batch(device_context<gpu>& ctx, csr_view<T, I> queries, std::span<T const> query_inv,
                 cosine_shard<T, I> const& shard, I q_first, I q_last, std::int64_t k,
                 bool exclude_self, std::span<mgpu::detail::scored<T, I>> out,
                 std::span<std::int32_t> counts) {
  auto& s = ctx.work;
  auto const rows = static_cast<std::int32_t>(q_last - q_first);
  auto const q = scaled_rows(queries, query_inv, q_first, q_last);
  auto const q_nnz = static_cast<std::int64_t>(q.columns.size());
  if (q_nnz == 0 || shard.nnz == 0) {
    std::fill(counts.begin(), counts.begin() + rows, 0);
    return;
  }
  buffer<std::int32_t, gpu> q_offsets(q.offsets.size(), s);
  buffer<std::int32_t, gpu> q_columns(q.columns.size(), s);
  buffer<T, gpu> q_values(q.values.size(), s);
  copy(q_offsets, std::span<std::int32_t const>(q.offsets), s);
  copy(q_columns, std::span<std::int32_t const>(q.columns), s);
  copy(q_values, std::span<T const>(q.values), s);

  // S = Q · shard (rows x documents), by cuSPARSE SpGEMM.
  constexpr cudaDataType type = cuda_value_type<T>();
  auto const handle = ctx.libraries.cusparse();
  auto const op = CUSPARSE_OPERATION_NON_TRANSPOSE;
  auto const alg = CUSPARSE_SPGEMM_DEFAULT;
  T const alpha = 1;
  T const beta = 0;
  const_sp_matrix a(rows, shard.terms, q_nnz, q_offsets.data(), q_columns.data(), q_values.data(),
                    type);
  const_sp_matrix b(shard.terms, shard.documents, shard.nnz, shard.postings.row_offsets().data(),
                    shard.postings.col_indices().data(), shard.postings.values().data(), type);
  buffer<std::int32_t, gpu> s_offsets(static_cast<std::size_t>(rows) + 1, s);
  sp_matrix c(rows, shard.documents, 0, s_offsets.data(), nullptr, nullptr, type);
  spgemm_descr descr;
  std::size_t bytes1 = 0;
  MGPU_CUSPARSE_TRY(cusparseSpGEMM_workEstimation(handle, op, op, &alpha, a.get(), b.get(), &beta,
                                                  c.get(), type, alg, descr.get(), &bytes1, nullptr));
  buffer<unsigned char, gpu> work1(bytes1, s);
  MGPU_CUSPARSE_TRY(cusparseSpGEMM_workEstimation(handle, op, op, &alpha, a.get(), b.get(), &beta,
                                                  c.get(), type, alg, descr.get(), &bytes1,
                                                  work1.data()));
  std::size_t bytes2 = 0;
  MGPU_CUSPARSE_TRY(cusparseSpGEMM_compute(handle, op, op, &alpha, a.get(), b.get(), &beta, c.get(),
                                           type, alg, descr.get(), &bytes2, nullptr));
  buffer<unsigned char, gpu> work2(bytes2, s);
  MGPU_CUSPARSE_TRY(cusparseSpGEMM_compute(handle, op, op, &alpha, a.get(), b.get(), &beta, c.get(),
                                           type, alg, descr.get(), &bytes2, work2.data()));
  std::int64_t c_rows = 0;
  std::int64_t c_cols = 0;
  std::int64_t c_nnz = 0;
  MGPU_CUSPARSE_TRY(cusparseSpMatGetSize(c.get(), &c_rows, &c_cols, &c_nnz));
  auto const nnz = static_cast<std::size_t>(to_int32(c_nnz, "the scores of a query batch"));
  if (nnz == 0) {  // no pair shares a term: nothing for cuSPARSE to copy (null arrays)
    std::fill(counts.begin(), counts.begin() + rows, 0);
    return;
  }
  buffer<std::int32_t, gpu> s_columns(nnz, s);
  buffer<T, gpu> s_values(nnz, s);
  MGPU_CUSPARSE_TRY(cusparseCsrSetPointers(c.get(), s_offsets.data(), s_columns.data(), s_values.data()));
  MGPU_CUSPARSE_TRY(cusparseSpGEMM_copy(handle, op, op, &alpha, a.get(), b.get(), &beta, c.get(), type,
                                        alg, descr.get()));
  work1 = {};
  work2 = {};

  // Rank each row: by document ascending, then stably by score descending.
  buffer<std::int32_t, gpu> sorted_columns(nnz, s);
  buffer<T, gpu> sorted_values(nnz, s);
  auto const segments = static_cast<std::int64_t>(rows);
  auto const* begins = s_offsets.data();
  auto const* ends = s_offsets.data() + 1;
  std::size_t temp_bytes = 0;
  std::size_t bytes = 0;
  MGPU_CUDA_TRY(cub::DeviceSegmentedSort::SortPairs(nullptr, bytes, s_columns.data(),
                                                    sorted_columns.data(), s_values.data(),
                                                    sorted_values.data(), c_nnz, segments, begins,
                                                    ends, s.handle()));
  temp_bytes = bytes;
  MGPU_CUDA_TRY(cub::DeviceSegmentedSort::StableSortPairsDescending(
      nullptr, bytes, sorted_values.data(), s_values.data(), sorted_columns.data(), s_columns.data(),
      c_nnz, segments, begins, ends, s.handle()));
  temp_bytes = std::max(temp_bytes, bytes);
  buffer<unsigned char, gpu> temp(temp_bytes, s);
  bytes = temp_bytes;
  MGPU_CUDA_TRY(cub::DeviceSegmentedSort::SortPairs(temp.data(), bytes, s_columns.data(),
                                                    sorted_columns.data(), s_values.data(),
                                                    sorted_values.data(), c_nnz, segments, begins,
                                                    ends, s.handle()));
  bytes = temp_bytes;
  MGPU_CUDA_TRY(cub::DeviceSegmentedSort::StableSortPairsDescending(
      temp.data(), bytes, sorted_values.data(), s_values.data(), sorted_columns.data(),
      s_columns.data(), c_nnz, segments, begins, ends, s.handle()));

  // Keep each row's first k reported entries.
  auto const out_size = static_cast<std::size_t>(rows) * static_cast<std::size_t>(k);
  buffer<std::int32_t, gpu> top_columns(out_size, s);
  buffer<T, gpu> top_scores(out_size, s);
  buffer<std::int32_t, gpu> top_counts(static_cast<std::size_t>(rows), s);
  select_sorted_row<T> const select{s_offsets.data(),
                                    s_columns.data(),
                                    s_values.data(),
                                    static_cast<std::int64_t>(shard.first),
                                    static_cast<std::int64_t>(q_first),
                                    exclude_self,
                                    k,
                                    top_columns.data(),
                                    top_scores.data(),
                                    top_counts.data()};
  MGPU_CUDA_TRY(cub::DeviceFor::Bulk(rows, select, s.handle()));

  // The device's reusable pinned arrays; fork_join's error path drains the stream before
  // anything else can use them.
  auto const h_columns = ctx.scratch.get<std::int32_t>(0, out_size);
  auto const h_scores = ctx.scratch.get<T>(1, out_size);
  auto const h_counts = ctx.scratch.get<std::int32_t>(2, static_cast<std::size_t>(rows));
  copy(h_columns, top_columns, s);
  copy(h_scores, top_scores, s);
  copy(h_counts, top_counts, s);
  s.synchronize();
  for (std::int32_t r = 0; r < rows; ++r) {
    auto const row = static_cast<std::size_t>(r);
    counts[row] = h_counts[row];
    for (std::int32_t j = 0; j < h_counts[row]; ++j) {
      auto const at = row * static_cast<std::size_t>(k) + static_cast<std::size_t>(j);
      out[at] = {h_scores[at], static_cast<I>(shard.first + static_cast<I>(h_columns[at]))};
    }
  }
}

}  // namespace mgpu::backend::cuda::detail
