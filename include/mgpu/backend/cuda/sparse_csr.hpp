// mgpu/backend/cuda/sparse_csr.hpp — GPU leaves of the sparse core: distributed_csr's
// resident blocks with cuSPARSE SpMV / SpMM, and SpGEMM by cuSPARSE SpGEMM.
//
// distributed_csr on GPUs (detail::sparse_leaf<gpu>): each device keeps its row block's
// CSR arrays (32- or 64-bit indices, as given), one cuSPARSE matrix descriptor created
// once, device copies of x and of its block of y with their dense-vector descriptors,
// and the SpMV / SpMM workspaces, sized on first use and reused. A product on host arrays
// broadcasts x to every device holding rows (the CUDA collective of transfer.hpp: one
// upload per device, all issued before any wait, counted in set.transfers()), runs
// cusparseSpMV on every device's stream, and downloads each block of y into the caller's
// y. SpMM does the same with B (any leading dimension: 2D copies) and the blocks of C.
// Products on resident operands (spmm_resident: distributed_dense x / B and y / C on the
// devices) run cuSPARSE on them directly and copy nothing.
// beta == 0: the device y (C) is zeroed first, so the caller's values are never read.
// Blocks without entries are handled on the host (y = beta·y), never launched.
//
// SpGEMM (detail::spgemm_leaf<gpu>): B is broadcast by the same collective; each device runs
// cusparseSpGEMM (CUSPARSE_SPGEMM_DEFAULT) on its block in the symbolic phase (work
// estimation, compute, copy: cuSPARSE forms the values there too) and reports its row
// counts; the numeric phase downloads the block into its place in the gathered host
// matrix, sorting any row cuSPARSE left unsorted. cuSPARSE SpGEMM takes 32-bit indices
// only: larger blocks, B, or products are index_overflow.
//
// Host-compilable (cuSPARSE's API is host code): this header needs the CUDA Toolkit's
// headers, not nvcc. Compiled, never run on a GPU here (docs/gpu.md).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "mgpu/backend/cuda/buffer.hpp"
#include "mgpu/backend/cuda/copy.hpp"
#include "mgpu/backend/cuda/device_set.hpp"
#include "mgpu/backend/cuda/runtime.hpp"
#include "mgpu/backend/cuda/transfer.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/sparse/csr_view.hpp"
#include "mgpu/sparse/distributed_csr.hpp"
#include "mgpu/sparse/spgemm.hpp"

namespace mgpu::backend::cuda {

namespace sparse_detail {

template <class T>
constexpr cudaDataType value_type() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "the CUDA sparse backend supports float and double values");
  return std::is_same_v<T, float> ? CUDA_R_32F : CUDA_R_64F;
}

template <class I>
constexpr cusparseIndexType_t index_type() {
  static_assert(std::is_same_v<I, std::int32_t> || std::is_same_v<I, std::int64_t>,
                "cuSPARSE takes 32- or 64-bit indices");
  return std::is_same_v<I, std::int32_t> ? CUSPARSE_INDEX_32I : CUSPARSE_INDEX_64I;
}

inline std::int32_t to_int32(std::int64_t v, char const* what) {
  if (v < 0 || v > std::numeric_limits<std::int32_t>::max()) {
    throw index_overflow(mgpu::detail::message("spgemm on GPUs: ", what, " (", v,
                                               ") does not fit cuSPARSE SpGEMM's 32-bit indices; "
                                               "use more devices or the host backend"));
  }
  return static_cast<std::int32_t>(v);
}

/// Owns one cuSPARSE descriptor; `Destroy` releases it. Movable, so shards can move.
template <class Handle, cusparseStatus_t (*Destroy)(Handle)>
class descriptor {
 public:
  descriptor() = default;
  explicit descriptor(Handle h) noexcept : h_(h) {}
  descriptor(descriptor&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  descriptor& operator=(descriptor&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }
  descriptor(descriptor const&) = delete;
  descriptor& operator=(descriptor const&) = delete;
  ~descriptor() { reset(); }
  [[nodiscard]] Handle get() const noexcept { return h_; }
  [[nodiscard]] explicit operator bool() const noexcept { return h_ != nullptr; }

 private:
  void reset() noexcept {
    if (h_ != nullptr) MGPU_CUSPARSE_TRY_NOTHROW(Destroy(h_));
    h_ = nullptr;
  }
  Handle h_ = nullptr;
};

inline cusparseStatus_t destroy_sp_mat(cusparseSpMatDescr_t h) { return cusparseDestroySpMat(h); }
inline cusparseStatus_t destroy_dn_vec(cusparseDnVecDescr_t h) { return cusparseDestroyDnVec(h); }
inline cusparseStatus_t destroy_dn_mat(cusparseDnMatDescr_t h) { return cusparseDestroyDnMat(h); }
inline cusparseStatus_t destroy_spgemm(cusparseSpGEMMDescr_t h) { return cusparseSpGEMM_destroyDescr(h); }

using sp_mat = descriptor<cusparseSpMatDescr_t, &destroy_sp_mat>;
using dn_vec = descriptor<cusparseDnVecDescr_t, &destroy_dn_vec>;
using dn_mat = descriptor<cusparseDnMatDescr_t, &destroy_dn_mat>;
using spgemm_descr = descriptor<cusparseSpGEMMDescr_t, &destroy_spgemm>;

template <class I, class T>
sp_mat make_csr(std::int64_t rows, std::int64_t cols, std::int64_t nnz, I* offsets, I* columns, T* values) {
  cusparseSpMatDescr_t h = nullptr;
  MGPU_CUSPARSE_TRY(cusparseCreateCsr(&h, rows, cols, nnz, offsets, columns, values, index_type<I>(),
                                      index_type<I>(), CUSPARSE_INDEX_BASE_ZERO, value_type<T>()));
  return sp_mat(h);
}

template <class T>
dn_vec make_dn_vec(std::int64_t size, T* values) {
  cusparseDnVecDescr_t h = nullptr;
  MGPU_CUSPARSE_TRY(cusparseCreateDnVec(&h, size, values, value_type<T>()));
  return dn_vec(h);
}

template <class T>
dn_mat make_dn_mat(std::int64_t rows, std::int64_t cols, T* values) {
  cusparseDnMatDescr_t h = nullptr;
  MGPU_CUSPARSE_TRY(cusparseCreateDnMat(&h, rows, cols, cols, values, value_type<T>(), CUSPARSE_ORDER_ROW));
  return dn_mat(h);
}

/// The block's rows [first, last) of `a` with offsets rebased to 0, as index type J.
template <class J, class T, class I>
std::vector<J> rebased_offsets(csr_view<T, I> block) {
  std::vector<J> out(static_cast<std::size_t>(block.rows) + 1);
  for (I r = 0; r <= block.rows; ++r) {
    out[static_cast<std::size_t>(r)] = static_cast<J>(block.row_offsets[r] - block.row_offsets[0]);
  }
  return out;
}

/// First device position that holds a block, or size() if none.
template <class Shards>
std::size_t first_used(Shards const& shards) {
  std::size_t d = 0;
  while (d < shards.size() && !shards[d]) ++d;
  return d;
}

}  // namespace sparse_detail

/// One device's resident row block of a distributed_csr (see the file comment).
template <class T, class I>
struct sparse_shard {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t nnz = 0;
  buffer<I, gpu> offsets;
  buffer<I, gpu> columns;
  buffer<T, gpu> values;
  sparse_detail::sp_mat matrix;
  buffer<T, gpu> x;  // the replica of x
  buffer<T, gpu> y;  // the block's rows of y
  sparse_detail::dn_vec x_descr;
  sparse_detail::dn_vec y_descr;
  buffer<unsigned char, gpu> spmv_work;
  bool spmv_sized = false;
  std::int64_t b_cols = -1;  // width of the B / C the SpMM buffers are sized for
  buffer<T, gpu> b;
  buffer<T, gpu> c;
  sparse_detail::dn_mat b_descr;
  sparse_detail::dn_mat c_descr;
  buffer<unsigned char, gpu> spmm_work;
  bool spmm_sized = false;
  buffer<unsigned char, gpu> resident_work;  // products on distributed_dense operands
};

}  // namespace mgpu::backend::cuda

namespace mgpu::detail {

/// GPUs: cuSPARSE SpMV / SpMM on resident blocks (backend/cuda/sparse_csr.hpp).
template <>
struct sparse_leaf<gpu> {
  template <class T, class I>
  using shard = backend::cuda::sparse_shard<T, I>;

  template <class T, class I>
  static shard<T, I> make_shard(device_context<gpu>& ctx, csr_view<T, I> block,
                                distributed_csr_options const&) {
    namespace sd = backend::cuda::sparse_detail;
    auto& s = ctx.work;
    shard<T, I> out;
    out.rows = block.rows;
    out.cols = block.cols;
    out.nnz = block.nnz();
    auto const offsets = sd::rebased_offsets<I>(block);
    auto const p0 = static_cast<std::size_t>(block.row_offsets[0]);
    auto const nnz = static_cast<std::size_t>(out.nnz);
    out.offsets = buffer<I, gpu>(offsets.size(), s);
    out.columns = buffer<I, gpu>(nnz, s);
    out.values = buffer<T, gpu>(nnz, s);
    copy(out.offsets, std::span<I const>(offsets), s);
    copy(out.columns, std::span<I const>(block.col_indices + p0, nnz), s);
    copy(out.values, std::span<T const>(block.values + p0, nnz), s);
    out.x = buffer<T, gpu>(static_cast<std::size_t>(out.cols), s);
    out.y = buffer<T, gpu>(static_cast<std::size_t>(out.rows), s);
    if (out.nnz > 0) {
      out.matrix = sd::make_csr(out.rows, out.cols, out.nnz, out.offsets.data(), out.columns.data(),
                                out.values.data());
      out.x_descr = sd::make_dn_vec(out.cols, out.x.data());
      out.y_descr = sd::make_dn_vec(out.rows, out.y.data());
    }
    s.synchronize();  // the host arrays above die here
    return out;
  }

  template <class T, class I>
  static void replicate_x(execution_policy<gpu> const& policy, std::vector<std::optional<shard<T, I>>>& shards,
                          std::span<T const> x) {
    if (x.empty()) return;
    auto const n = static_cast<std::int64_t>(x.size());
    std::vector<copy_job<T>> jobs;  // x to every device holding rows: the broadcast collective
    for (std::size_t d = 0; d < shards.size(); ++d) {
      if (shards[d]) jobs.push_back({host_endpoint, static_cast<int>(d), shards[d]->x.data(), n, x.data(), n, 1, n});
    }
    collective_transport<gpu>::copy(policy, jobs);
  }

  template <class T, class I>
  static void spmv(device_context<gpu>& ctx, shard<T, I>& sh, T alpha, std::span<T const>, T beta,
                   std::span<T> y_block) {
    if (sh.nnz == 0) {
      for (auto& v : y_block) v = beta == T{0} ? T{0} : beta * v;
      return;
    }
    auto& s = ctx.work;
    auto const handle = ctx.libraries.cusparse();
    constexpr auto type = backend::cuda::sparse_detail::value_type<T>();
    constexpr auto op = CUSPARSE_OPERATION_NON_TRANSPOSE;
    if (beta == T{0}) {
      MGPU_CUDA_TRY(cudaMemsetAsync(sh.y.data(), 0, sh.y.size() * sizeof(T), s.handle()));
    } else {
      copy(sh.y, std::span<T const>(y_block), s);
    }
    if (!sh.spmv_sized) {
      std::size_t bytes = 0;
      MGPU_CUSPARSE_TRY(cusparseSpMV_bufferSize(handle, op, &alpha, sh.matrix.get(), sh.x_descr.get(), &beta,
                                                sh.y_descr.get(), type, CUSPARSE_SPMV_ALG_DEFAULT, &bytes));
      sh.spmv_work = buffer<unsigned char, gpu>(bytes, s);
      sh.spmv_sized = true;
    }
    MGPU_CUSPARSE_TRY(cusparseSpMV(handle, op, &alpha, sh.matrix.get(), sh.x_descr.get(), &beta,
                                   sh.y_descr.get(), type, CUSPARSE_SPMV_ALG_DEFAULT, sh.spmv_work.data()));
    copy(y_block, sh.y, s);
  }

  template <class T, class I>
  static void replicate_b(execution_policy<gpu> const& policy, std::vector<std::optional<shard<T, I>>>& shards,
                          dense_view<T const> b) {
    auto& set = policy.devices();
    auto const root = backend::cuda::sparse_detail::first_used(shards);
    if (root == shards.size()) return;
    auto const packed_size = static_cast<std::size_t>(b.rows * b.cols);
    for (std::size_t d = root; d < shards.size(); ++d) {
      if (!shards[d] || shards[d]->b_cols == b.cols) continue;
      auto& sh = *shards[d];
      auto& s = set[d].work;
      backend::cuda::device_guard guard(set[d].dev.ordinal);
      sh.b = buffer<T, gpu>(packed_size, s);
      sh.c = buffer<T, gpu>(static_cast<std::size_t>(sh.rows * b.cols), s);
      sh.b_descr = {};
      sh.c_descr = {};
      if (sh.nnz > 0) {
        sh.b_descr = backend::cuda::sparse_detail::make_dn_mat(b.rows, b.cols, sh.b.data());
        sh.c_descr = backend::cuda::sparse_detail::make_dn_mat(sh.rows, b.cols, sh.c.data());
      }
      sh.b_cols = b.cols;
      sh.spmm_sized = false;
    }
    std::vector<copy_job<T>> jobs;  // B to every device holding rows: the broadcast collective
    for (std::size_t d = root; d < shards.size(); ++d) {
      if (shards[d]) jobs.push_back({host_endpoint, static_cast<int>(d), shards[d]->b.data(), b.cols, b.data, b.ld, b.rows, b.cols});
    }
    collective_transport<gpu>::copy(policy, jobs);
  }

  template <class T, class I>
  static void spmm(device_context<gpu>& ctx, shard<T, I>& sh, T alpha, dense_view<T const> b, T beta,
                   dense_view<T> c_block) {
    auto const n = b.cols;
    if (sh.nnz == 0) {
      for (std::int64_t i = 0; i < c_block.rows; ++i) {
        for (auto& v : c_block.row(i)) v = beta == T{0} ? T{0} : beta * v;
      }
      return;
    }
    auto& s = ctx.work;
    auto const handle = ctx.libraries.cusparse();
    constexpr auto type = backend::cuda::sparse_detail::value_type<T>();
    constexpr auto op = CUSPARSE_OPERATION_NON_TRANSPOSE;
    std::vector<T> packed(static_cast<std::size_t>(sh.rows * n));
    if (beta == T{0}) {
      MGPU_CUDA_TRY(cudaMemsetAsync(sh.c.data(), 0, sh.c.size() * sizeof(T), s.handle()));
    } else {
      for (std::int64_t i = 0; i < sh.rows; ++i) {
        std::copy(c_block.data + i * c_block.ld, c_block.data + i * c_block.ld + n, packed.begin() + i * n);
      }
      copy(sh.c, std::span<T const>(packed), s);
    }
    if (!sh.spmm_sized) {
      std::size_t bytes = 0;
      MGPU_CUSPARSE_TRY(cusparseSpMM_bufferSize(handle, op, op, &alpha, sh.matrix.get(), sh.b_descr.get(), &beta,
                                                sh.c_descr.get(), type, CUSPARSE_SPMM_ALG_DEFAULT, &bytes));
      sh.spmm_work = buffer<unsigned char, gpu>(bytes, s);
      sh.spmm_sized = true;
    }
    MGPU_CUSPARSE_TRY(cusparseSpMM(handle, op, op, &alpha, sh.matrix.get(), sh.b_descr.get(), &beta,
                                   sh.c_descr.get(), type, CUSPARSE_SPMM_ALG_DEFAULT, sh.spmm_work.data()));
    copy(std::span<T>(packed), sh.c, s);
    s.synchronize();
    for (std::int64_t i = 0; i < sh.rows; ++i) {
      std::copy(packed.begin() + i * n, packed.begin() + (i + 1) * n, c_block.data + i * c_block.ld);
    }
  }

  /// Resident operands in this device's memory (x / B replicated, y / C its row block,
  /// ld == cols): cusparseSpMV for one column, cusparseSpMM otherwise; nothing is copied.
  template <class T, class I>
  static void spmm_resident(device_context<gpu>& ctx, shard<T, I>& sh, T alpha, dense_view<T const, gpu> b, T beta,
                            dense_view<T, gpu> c_block) {
    namespace sd = backend::cuda::sparse_detail;
    auto& s = ctx.work;
    auto const bytes = static_cast<std::size_t>(c_block.rows * c_block.cols) * sizeof(T);
    if (beta == T{0} && bytes > 0) MGPU_CUDA_TRY(cudaMemsetAsync(c_block.data, 0, bytes, s.handle()));
    if (sh.nnz == 0) {
      if (beta != T{0} && beta != T{1}) {
        MGPU_CUBLAS_TRY(cublas_scal(ctx.libraries.cublas(), c_block.rows * c_block.cols, beta, c_block.data));
      }
      return;
    }
    auto const handle = ctx.libraries.cusparse();
    constexpr auto type = sd::value_type<T>();
    constexpr auto op = CUSPARSE_OPERATION_NON_TRANSPOSE;
    auto* b_data = const_cast<T*>(b.data);  // cuSPARSE's descriptors take non-const pointers
    std::size_t work = 0;
    if (b.cols == 1) {
      auto const x = sd::make_dn_vec(b.rows, b_data);
      auto const y = sd::make_dn_vec(c_block.rows, c_block.data);
      MGPU_CUSPARSE_TRY(cusparseSpMV_bufferSize(handle, op, &alpha, sh.matrix.get(), x.get(), &beta, y.get(), type,
                                                CUSPARSE_SPMV_ALG_DEFAULT, &work));
      if (sh.resident_work.size() < work) sh.resident_work = buffer<unsigned char, gpu>(work, s);
      MGPU_CUSPARSE_TRY(cusparseSpMV(handle, op, &alpha, sh.matrix.get(), x.get(), &beta, y.get(), type,
                                     CUSPARSE_SPMV_ALG_DEFAULT, sh.resident_work.data()));
    } else {
      auto const bm = sd::make_dn_mat(b.rows, b.cols, b_data);
      auto const cm = sd::make_dn_mat(c_block.rows, c_block.cols, c_block.data);
      MGPU_CUSPARSE_TRY(cusparseSpMM_bufferSize(handle, op, op, &alpha, sh.matrix.get(), bm.get(), &beta, cm.get(),
                                                type, CUSPARSE_SPMM_ALG_DEFAULT, &work));
      if (sh.resident_work.size() < work) sh.resident_work = buffer<unsigned char, gpu>(work, s);
      MGPU_CUSPARSE_TRY(cusparseSpMM(handle, op, op, &alpha, sh.matrix.get(), bm.get(), &beta, cm.get(), type,
                                     CUSPARSE_SPMM_ALG_DEFAULT, sh.resident_work.data()));
    }
  }

 private:
  static cublasStatus_t cublas_scal(cublasHandle_t h, std::int64_t n, float alpha, float* x) {
    return cublasSscal(h, static_cast<int>(n), &alpha, x, 1);
  }
  static cublasStatus_t cublas_scal(cublasHandle_t h, std::int64_t n, double alpha, double* x) {
    return cublasDscal(h, static_cast<int>(n), &alpha, x, 1);
  }
};
static_assert(mgpu::detail::sparse_leaf_for<sparse_leaf<gpu>, float, std::int32_t>,
              "the GPU sparse leaf meets the contract of sparse/detail/sparse_leaf.hpp");

/// GPUs: cuSPARSE SpGEMM per device (backend/cuda/sparse_csr.hpp).
template <>
struct spgemm_leaf<gpu> {
  template <class T, class I>
  struct replica {
    std::int32_t rows = 0;
    std::int32_t cols = 0;
    std::int32_t nnz = 0;
    buffer<std::int32_t, gpu> offsets;
    buffer<std::int32_t, gpu> columns;
    buffer<T, gpu> values;
  };

  template <class T, class I>
  struct state {
    std::int32_t nnz = 0;
    buffer<std::int32_t, gpu> offsets;
    buffer<std::int32_t, gpu> columns;
    buffer<T, gpu> values;
  };

  template <class T, class I>
  static std::vector<std::optional<replica<T, I>>> replicate(execution_policy<gpu> const& policy,
                                                             csr_view<T, I> b, std::vector<bool> const& used) {
    namespace sd = backend::cuda::sparse_detail;
    auto& set = policy.devices();
    std::vector<std::optional<replica<T, I>>> out(used.size());
    auto const root = static_cast<std::size_t>(std::find(used.begin(), used.end(), true) - used.begin());
    if (root == used.size()) return out;
    auto const nnz = sd::to_int32(b.nnz(), "the entries of B");
    auto const b_rows = sd::to_int32(b.rows, "the rows of B");
    auto const b_cols = sd::to_int32(b.cols, "the columns of B");
    std::vector<std::int32_t> offsets = sd::rebased_offsets<std::int32_t>(b);
    std::vector<std::int32_t> columns(b.col_indices, b.col_indices + nnz);
    for (std::size_t d = root; d < used.size(); ++d) {
      if (!used[d]) continue;
      auto& s = set[d].work;
      backend::cuda::device_guard guard(set[d].dev.ordinal);
      auto& r = out[d].emplace();
      r.rows = b_rows;
      r.cols = b_cols;
      r.nnz = nnz;
      r.offsets = buffer<std::int32_t, gpu>(offsets.size(), s);
      r.columns = buffer<std::int32_t, gpu>(columns.size(), s);
      r.values = buffer<T, gpu>(columns.size(), s);
    }
    // B's arrays to every device that multiplies: the broadcast collective.
    auto const one_row = [](auto* dst, auto const* src, std::size_t size, std::size_t d) {
      auto const n = static_cast<std::int64_t>(size);
      using V = std::remove_cv_t<std::remove_pointer_t<decltype(dst)>>;
      return copy_job<V>{host_endpoint, static_cast<int>(d), dst, n, src, n, 1, n};
    };
    std::vector<copy_job<std::int32_t>> index_jobs;
    std::vector<copy_job<T>> value_jobs;
    for (std::size_t d = root; d < used.size(); ++d) {
      if (!used[d]) continue;
      index_jobs.push_back(one_row(out[d]->offsets.data(), offsets.data(), offsets.size(), d));
      index_jobs.push_back(one_row(out[d]->columns.data(), columns.data(), columns.size(), d));
      value_jobs.push_back(one_row(out[d]->values.data(), b.values + b.row_offsets[0], columns.size(), d));
    }
    collective_transport<gpu>::copy(policy, index_jobs);
    collective_transport<gpu>::copy(policy, value_jobs);
    return out;
  }

  template <class T, class I>
  static state<T, I> symbolic(device_context<gpu>& ctx, csr_view<T, I> a_block, csr_view<T, I>,
                              replica<T, I>& b, std::span<std::int64_t> counts) {
    namespace sd = backend::cuda::sparse_detail;
    auto& s = ctx.work;
    auto const rows = sd::to_int32(a_block.rows, "the rows of a block of A");
    auto const a_nnz = sd::to_int32(a_block.nnz(), "the entries of a block of A");
    state<T, I> st;
    st.offsets = buffer<std::int32_t, gpu>(static_cast<std::size_t>(rows) + 1, s);
    if (a_nnz == 0 || b.nnz == 0) {
      std::fill(counts.begin(), counts.end(), 0);
      return st;
    }
    auto const a_offsets = sd::rebased_offsets<std::int32_t>(a_block);
    auto const p0 = static_cast<std::size_t>(a_block.row_offsets[0]);
    std::vector<std::int32_t> a_columns(a_block.col_indices + p0, a_block.col_indices + p0 + a_nnz);
    buffer<std::int32_t, gpu> d_offsets(a_offsets.size(), s);
    buffer<std::int32_t, gpu> d_columns(a_columns.size(), s);
    buffer<T, gpu> d_values(a_columns.size(), s);
    copy(d_offsets, std::span<std::int32_t const>(a_offsets), s);
    copy(d_columns, std::span<std::int32_t const>(a_columns), s);
    copy(d_values, std::span<T const>(a_block.values + p0, a_columns.size()), s);

    constexpr auto type = sd::value_type<T>();
    constexpr auto op = CUSPARSE_OPERATION_NON_TRANSPOSE;
    constexpr auto alg = CUSPARSE_SPGEMM_DEFAULT;
    auto const handle = ctx.libraries.cusparse();
    T const alpha = 1;
    T const beta = 0;
    auto const a = sd::make_csr(rows, b.rows, a_nnz, d_offsets.data(), d_columns.data(), d_values.data());
    auto const bm = sd::make_csr(b.rows, b.cols, b.nnz, b.offsets.data(), b.columns.data(), b.values.data());
    auto c = sd::make_csr<std::int32_t, T>(rows, b.cols, 0, st.offsets.data(), nullptr, nullptr);
    cusparseSpGEMMDescr_t raw = nullptr;
    MGPU_CUSPARSE_TRY(cusparseSpGEMM_createDescr(&raw));
    sd::spgemm_descr const descr(raw);
    std::size_t bytes1 = 0;
    MGPU_CUSPARSE_TRY(cusparseSpGEMM_workEstimation(handle, op, op, &alpha, a.get(), bm.get(), &beta, c.get(), type,
                                                    alg, descr.get(), &bytes1, nullptr));
    buffer<unsigned char, gpu> work1(bytes1, s);
    MGPU_CUSPARSE_TRY(cusparseSpGEMM_workEstimation(handle, op, op, &alpha, a.get(), bm.get(), &beta, c.get(), type,
                                                    alg, descr.get(), &bytes1, work1.data()));
    std::size_t bytes2 = 0;
    MGPU_CUSPARSE_TRY(cusparseSpGEMM_compute(handle, op, op, &alpha, a.get(), bm.get(), &beta, c.get(), type, alg,
                                             descr.get(), &bytes2, nullptr));
    buffer<unsigned char, gpu> work2(bytes2, s);
    MGPU_CUSPARSE_TRY(cusparseSpGEMM_compute(handle, op, op, &alpha, a.get(), bm.get(), &beta, c.get(), type, alg,
                                             descr.get(), &bytes2, work2.data()));
    std::int64_t c_rows = 0;
    std::int64_t c_cols = 0;
    std::int64_t c_nnz = 0;
    MGPU_CUSPARSE_TRY(cusparseSpMatGetSize(c.get(), &c_rows, &c_cols, &c_nnz));
    st.nnz = sd::to_int32(c_nnz, "the entries of a block of the product");
    if (st.nnz == 0) {  // an empty product: cuSPARSE must not be given null arrays to copy into
      std::fill(counts.begin(), counts.end(), 0);
      return st;
    }
    st.columns = buffer<std::int32_t, gpu>(static_cast<std::size_t>(st.nnz), s);
    st.values = buffer<T, gpu>(static_cast<std::size_t>(st.nnz), s);
    MGPU_CUSPARSE_TRY(cusparseCsrSetPointers(c.get(), st.offsets.data(), st.columns.data(), st.values.data()));
    MGPU_CUSPARSE_TRY(cusparseSpGEMM_copy(handle, op, op, &alpha, a.get(), bm.get(), &beta, c.get(), type, alg,
                                          descr.get()));
    std::vector<std::int32_t> c_offsets(static_cast<std::size_t>(rows) + 1);
    copy(std::span<std::int32_t>(c_offsets), st.offsets, s);
    s.synchronize();
    for (std::size_t r = 0; r < counts.size(); ++r) counts[r] = c_offsets[r + 1] - c_offsets[r];
    return st;
  }

  template <class T, class I>
  static void numeric(device_context<gpu>& ctx, state<T, I>& st, csr_view<T, I> a_block, csr_view<T, I>,
                      replica<T, I>&, I const* offsets, I* cols, T* vals) {
    if (st.nnz == 0) return;
    auto& s = ctx.work;
    std::vector<std::int32_t> c_columns(static_cast<std::size_t>(st.nnz));
    std::vector<T> c_values(static_cast<std::size_t>(st.nnz));
    copy(std::span<std::int32_t>(c_columns), st.columns, s);
    copy(std::span<T>(c_values), st.values, s);
    s.synchronize();
    auto const base = static_cast<std::size_t>(offsets[0]);
    std::vector<std::pair<I, T>> row;
    for (I r = 0; r < a_block.rows; ++r) {
      auto const b0 = static_cast<std::size_t>(offsets[r]);
      auto const b1 = static_cast<std::size_t>(offsets[r + 1]);
      row.clear();
      for (auto p = b0; p < b1; ++p) row.emplace_back(static_cast<I>(c_columns[p - base]), c_values[p - base]);
      if (!std::is_sorted(row.begin(), row.end(), [](auto const& x, auto const& y) { return x.first < y.first; })) {
        std::sort(row.begin(), row.end(), [](auto const& x, auto const& y) { return x.first < y.first; });
      }
      for (auto p = b0; p < b1; ++p) {
        cols[p] = row[p - b0].first;
        vals[p] = row[p - b0].second;
      }
    }
  }
};
static_assert(mgpu::detail::spgemm_leaf_for<spgemm_leaf<gpu>, float, std::int32_t>,
              "the GPU spgemm leaf meets the contract of sparse/detail/spgemm_leaf.hpp");

}  // namespace mgpu::detail
