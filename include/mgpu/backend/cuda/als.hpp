// mgpu/backend/cuda/als.hpp — GPU leaf of ALS (algorithms/als.hpp): each device keeps
// its nnz-balanced blocks of R and Rᵀ resident and solves its rows against its resident
// copy of the fixed side.
//
// Per half-step (algorithms/als.hpp moves the factors: the fixed side is the device's
// replicated copy, the solving side its row block, both resident distributed_dense
// blocks; the all_gather of the solved blocks is the half-step's only factor transfer):
//   prepare    the Gram matrix FᵀF of the device's copy of F, in double (cublasDsyrk over
//              blocks of 4096 rows widened to double), and B = w0·FᵀF + λI in double and
//              float, all on the device: no transfer.
//   Cholesky   rows in batches sized by the memory budget: one kernel forms each row's
//              system A = B + Σ (w − w0) y yᵀ and b = Σ w t y in double (empty rows get
//              A = I, b = 0, hence zero factors), cusolverDnDpotrfBatched factors them,
//              the info array is copied back and checked (the smallest failing row is
//              reported as numerical_error), cusolverDnDpotrsBatched solves (its info,
//              a parameter check, is checked for every batch), and a kernel rounds the
//              solutions to float into the device's row block.
//   CG         one thread block per row runs the same fixed number of CG steps as the
//              host, warm-started from the row block in place, in float, with the
//              block's sums reduced by warp shuffles; a status array flags rows with
//              non-positive curvature.
//   A kernel flags rows whose solution is not finite; the status array (4 bytes a row)
//   is copied back and the smallest failing row raises numerical_error.
// Results agree with the host backend to round-off (other summation orders).
//
// Host-compilable; the kernel launches (als_launch_*) are defined in als.cuh, compiled
// by nvcc. NOT RUN ON A GPU: compiled only (see docs/gpu.md).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "mgpu/algorithms/als.hpp"
#include "mgpu/backend/cuda/buffer.hpp"
#include "mgpu/backend/cuda/copy.hpp"
#include "mgpu/backend/cuda/dense_matrix.hpp"
#include "mgpu/backend/cuda/device_set.hpp"
#include "mgpu/backend/cuda/transfer.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/sparse/csr_view.hpp"

namespace mgpu::backend::cuda {

/// Rows [first, last) of R (or Rᵀ) resident on one GPU: CSR with 32-bit indices and
/// offsets starting at 0, float values.
template <class I>
struct als_block {
  I first = 0;
  I last = 0;
  buffer<std::int32_t, gpu> offsets;
  buffer<std::int32_t, gpu> columns;
  buffer<float, gpu> values;
};

/// One device's system base B = w0·FᵀF + λI (f x f, double and float) and the scratch
/// it is computed in.
struct als_system {
  buffer<double, gpu> gram;
  buffer<double, gpu> widened;
  buffer<double, gpu> base;
  buffer<float, gpu> base_single;
};

/// Rows of the fixed side widened to double per cublasDsyrk call (as on the host).
inline constexpr std::int64_t als_gram_rows = 4096;

/// Largest f the CG kernel takes: it keeps four f-vectors in 48 KiB of shared memory.
inline constexpr std::int64_t als_cg_max_factors = 3000;

namespace detail {

/// Device launches, defined in als.cuh (nvcc). All are ordered on `s`.
/// Forms rows [0, rows) of a block's systems (see the file comment) into a (rows x f x f)
/// and b (rows x f).
template <class Real>
void als_launch_build_systems(stream<gpu> const& s, std::int32_t rows, std::int32_t const* offsets,
                              std::int32_t const* columns, Real const* values, Real const* fixed,
                              std::int32_t factors, double const* base,
                              mgpu::detail::als_entry_weights weights, double* a, double* b);
/// out[i] = (Real) x[i] for i < n.
template <class Real>
void als_launch_round(stream<gpu> const& s, std::int64_t n, double const* x, Real* out);
/// out[i] = (double) x[i] for i < n.
template <class Real>
void als_launch_widen(stream<gpu> const& s, std::int64_t n, Real const* x, double* out);
/// base = w0·G + λI (full, double) and base_single = (Real) base, from the column-major
/// lower triangle of the f x f matrix G.
template <class Real>
void als_launch_base(stream<gpu> const& s, std::int32_t factors, double const* gram, double unobserved_weight,
                     double regularization, double* base, Real* base_single);
/// status[row] = 2 for rows of x (rows x f) holding a NaN or Inf, unless already nonzero.
template <class Real>
void als_launch_flag_nonfinite(stream<gpu> const& s, std::int32_t rows, std::int32_t factors, Real const* x,
                               std::int32_t* status);
/// CG on rows [0, rows), x (rows x f) in place; status[row] = 1 on non-positive curvature.
template <class Real>
void als_launch_cg(stream<gpu> const& s, std::int32_t rows, std::int32_t const* offsets,
                   std::int32_t const* columns, Real const* values, Real const* fixed,
                   std::int32_t factors, Real const* base, mgpu::detail::als_entry_weights weights,
                   int steps, Real* x, std::int32_t* status);

inline std::int32_t als_int32(std::int64_t value, char const* what) {
  if (value < 0 || value > std::numeric_limits<std::int32_t>::max()) {
    throw index_overflow(mgpu::detail::message("ALS on GPUs: ", what, " (", value,
                                               ") does not fit 32-bit indices; use more devices"));
  }
  return static_cast<std::int32_t>(value);
}

/// Grows `b` to `size` elements on `s`'s device when its size differs.
template <class T>
void ensure_size(buffer<T, gpu>& b, std::size_t size, stream<gpu> const& s) {
  if (b.size() != size) b = buffer<T, gpu>(size, s);
}

/// Rows per Cholesky batch: each row's system takes (f² + f) doubles, two pointers and
/// an info word, and half of `budget` is left to cuSOLVER's workspace.
/// @throws out_of_memory when not even one row fits.
inline std::int64_t als_cholesky_rows(std::int64_t rows, std::int64_t factors, std::size_t budget) {
  auto const fs = static_cast<std::size_t>(factors);
  std::size_t const per_row = (fs * fs + fs) * sizeof(double) + 2 * sizeof(double*) + sizeof(int);
  std::size_t const usable = budget / 2;
  if (usable < per_row) throw out_of_memory(per_row, usable, "ALS on GPUs: one row's system");
  return std::max<std::int64_t>(1, std::min<std::int64_t>(rows, static_cast<std::int64_t>(usable / per_row)));
}

/// potrs' info of the batch starting at row `batch_first` of a block: nonzero means
/// parameter -info was invalid (a bug, not a property of the data).
inline void check_potrs_info(int info, std::int64_t batch_first) {
  if (info != 0) {
    throw cusolver_error("CUSOLVER_STATUS_INVALID_VALUE", "cusolverDnDpotrsBatched", __FILE__, __LINE__,
                         mgpu::detail::message("parameter ", -info, " is wrong (batch from row ", batch_first, ")"));
  }
}

/// Throws for the smallest row of a block whose potrf info or status reports a failure
/// (status 1: CG met non-positive curvature; 2: the solution is not finite).
inline void check_status(char const* side, std::int64_t first, std::span<int const> potrf_info,
                         std::span<std::int32_t const> status) {
  for (std::size_t i = 0; i < potrf_info.size(); ++i) {
    if (potrf_info[i] != 0) mgpu::detail::throw_not_spd(side, first + static_cast<std::int64_t>(i), potrf_info[i]);
  }
  for (std::size_t i = 0; i < status.size(); ++i) {
    auto const row = first + static_cast<std::int64_t>(i);
    if (status[i] == 1) {
      throw numerical_error(mgpu::detail::message(
          "ALS: conjugate gradient met non-positive curvature in the system of ", side, " ", row,
          ": it is not positive definite; use regularization > 0"));
    }
    if (status[i] != 0) mgpu::detail::throw_not_finite(side, row);
  }
}

}  // namespace detail
}  // namespace mgpu::backend::cuda

namespace mgpu::detail {

/// GPUs: the leaf described in the file comment.
template <>
struct als_leaf<gpu> {
  template <class T, class I>
  using block = backend::cuda::als_block<I>;
  using system = backend::cuda::als_system;

  template <class T, class I>
  static block<T, I> make_block(device_context<gpu>& ctx, csr_view<T, I> m, I first, I last) {
    namespace bc = backend::cuda;
    auto const rows = bc::detail::als_int32(static_cast<std::int64_t>(last - first), "a block's rows");
    auto const p0 = m.row_begin(first);
    auto const nnz = static_cast<std::size_t>(bc::detail::als_int32(
        static_cast<std::int64_t>(m.row_begin(last) - p0), "a block's entries"));
    bc::detail::als_int32(static_cast<std::int64_t>(m.cols), "the number of columns");
    std::vector<std::int32_t> offsets(static_cast<std::size_t>(rows) + 1);
    for (std::int32_t r = 0; r <= rows; ++r) {
      offsets[static_cast<std::size_t>(r)] = static_cast<std::int32_t>(m.row_offsets[first + r] - p0);
    }
    std::vector<std::int32_t> columns(m.col_indices + p0, m.col_indices + p0 + nnz);
    std::vector<float> values(nnz);
    for (std::size_t p = 0; p < nnz; ++p) values[p] = static_cast<float>(m.values[static_cast<std::size_t>(p0) + p]);
    auto& s = ctx.work;
    block<T, I> b;
    b.first = first;
    b.last = last;
    b.offsets = buffer<std::int32_t, gpu>(offsets.size(), s);
    b.columns = buffer<std::int32_t, gpu>(nnz, s);
    b.values = buffer<float, gpu>(nnz, s);
    copy(b.offsets, std::span<std::int32_t const>(offsets), s);
    copy(b.columns, std::span<std::int32_t const>(columns), s);
    copy(b.values, std::span<float const>(values), s);
    s.synchronize();  // the host staging vectors die here
    return b;
  }

  static constexpr bool host_memory = false;

  /// B from the device's copy of the fixed side, on the device (see the file comment).
  static void prepare(device_context<gpu>& ctx, system& sys, dense_view<float const, gpu> fixed,
                      double unobserved_weight, double regularization) {
    namespace bc = backend::cuda;
    auto& s = ctx.work;
    auto const f = bc::detail::als_int32(fixed.cols, "factors");
    auto const fs = static_cast<std::size_t>(f);
    MGPU_EXPECTS(fixed.ld == fixed.cols, "ALS on GPUs: the fixed factors must be packed (ld ", fixed.ld,
                 ", cols ", fixed.cols, ")");
    bc::detail::ensure_size(sys.gram, fs * fs, s);
    bc::detail::ensure_size(sys.base, fs * fs, s);
    bc::detail::ensure_size(sys.base_single, fs * fs, s);
    auto const chunk = std::min(fixed.rows, bc::als_gram_rows);
    bc::detail::ensure_size(sys.widened, static_cast<std::size_t>(chunk) * fs, s);
    MGPU_CUDA_TRY(cudaMemsetAsync(sys.gram.data(), 0, fs * fs * sizeof(double), s.handle()));
    double const one = 1.0;
    for (std::int64_t r0 = 0; r0 < fixed.rows; r0 += bc::als_gram_rows) {
      auto const n = std::min(bc::als_gram_rows, fixed.rows - r0);
      bc::detail::als_launch_widen<float>(s, n * f, fixed.data + static_cast<std::size_t>(r0) * fs,
                                          sys.widened.data());
      // Row-major F (n x f) is column-major Fᵀ: FᵀF = Fᵀ (Fᵀ)ᵀ, trans = N, lower triangle.
      MGPU_CUBLAS_TRY(cublasDsyrk(ctx.libraries.cublas(), CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, f,
                                  static_cast<int>(n), &one, sys.widened.data(), f, &one, sys.gram.data(), f));
    }
    bc::detail::als_launch_base<float>(s, f, sys.gram.data(), unobserved_weight, regularization, sys.base.data(),
                                       sys.base_single.data());
  }

  /// The block's rows into `out` (the device's row block of the solving side, packed).
  template <class I>
  static void solve(device_context<gpu>& ctx, backend::cuda::als_block<I> const& b, dense_view<float const, gpu> fixed,
                    system const& sys, dense_view<float, gpu> out, als_step const& step) {
    namespace bc = backend::cuda;
    auto& s = ctx.work;
    auto const rows = static_cast<std::int32_t>(b.last - b.first);
    auto const f = bc::detail::als_int32(step.factors, "factors");
    MGPU_EXPECTS(out.rows == rows && out.cols == f && out.ld == f, "ALS on GPUs: the solving block is ", out.rows,
                 " x ", out.cols, " (ld ", out.ld, ") but the block of R has ", rows, " rows and f = ", f);
    als_entry_weights const wt{step.alpha, step.unobserved_weight, step.weighted_targets};
    buffer<std::int32_t, gpu> d_status(static_cast<std::size_t>(rows), s);
    MGPU_CUDA_TRY(cudaMemsetAsync(d_status.data(), 0, d_status.size() * sizeof(std::int32_t), s.handle()));
    std::vector<int> info;
    if (step.solver == als_solver::cholesky) {
      info = cholesky_batches(ctx, b, fixed.data, sys, step, wt, out.data);
    } else {
      MGPU_EXPECTS(step.factors <= bc::als_cg_max_factors, "ALS on GPUs: the CG solver takes at most ",
                   bc::als_cg_max_factors, " factors, got ", step.factors);
      bc::detail::als_launch_cg<float>(s, rows, b.offsets.data(), b.columns.data(), b.values.data(), fixed.data, f,
                                       sys.base_single.data(), wt, step.cg_steps, out.data, d_status.data());
    }
    bc::detail::als_launch_flag_nonfinite<float>(s, rows, f, out.data, d_status.data());
    std::vector<std::int32_t> status(static_cast<std::size_t>(rows));
    copy(std::span<std::int32_t>(status), d_status, s);
    s.synchronize();
    bc::detail::check_status(step.side, static_cast<std::int64_t>(b.first), info, status);
  }

 private:
  /// Cholesky in batches of rows whose systems fit the memory budget; returns the potrf
  /// info of every row (all zero when every system was factored).
  template <class I>
  static std::vector<int> cholesky_batches(device_context<gpu>& ctx, backend::cuda::als_block<I> const& b,
                                           float const* fixed, system const& sys, als_step const& step,
                                           als_entry_weights const& wt, float* x) {
    namespace bc = backend::cuda;
    auto& s = ctx.work;
    auto const rows = static_cast<std::int64_t>(b.last - b.first);
    auto const f = static_cast<std::int32_t>(step.factors);
    auto const fs = static_cast<std::size_t>(f);
    auto const batch = bc::detail::als_cholesky_rows(rows, step.factors,
                                                     ctx.memory_budget(step.memory_budget));
    std::vector<int> info(static_cast<std::size_t>(rows), 0);
    buffer<double, gpu> a(static_cast<std::size_t>(batch) * fs * fs, s);
    buffer<double, gpu> rhs(static_cast<std::size_t>(batch) * fs, s);
    buffer<double*, gpu> a_ptrs(static_cast<std::size_t>(batch), s);
    buffer<double*, gpu> b_ptrs(static_cast<std::size_t>(batch), s);
    buffer<int, gpu> d_info(static_cast<std::size_t>(batch), s);
    buffer<int, gpu> d_solve_info(1, s);
    MGPU_CUDA_TRY(cudaMemsetAsync(d_solve_info.data(), 0, sizeof(int), s.handle()));
    std::vector<double*> ha(static_cast<std::size_t>(batch)), hb(static_cast<std::size_t>(batch));
    for (std::int64_t i = 0; i < batch; ++i) {
      ha[static_cast<std::size_t>(i)] = a.data() + static_cast<std::size_t>(i) * fs * fs;
      hb[static_cast<std::size_t>(i)] = rhs.data() + static_cast<std::size_t>(i) * fs;
    }
    copy(a_ptrs, std::span<double* const>(ha), s);
    copy(b_ptrs, std::span<double* const>(hb), s);
    auto const handle = ctx.libraries.cusolver();
    for (std::int64_t r0 = 0; r0 < rows; r0 += batch) {
      auto const n = static_cast<std::int32_t>(std::min(batch, rows - r0));
      bc::detail::als_launch_build_systems<float>(s, n, b.offsets.data() + r0, b.columns.data(), b.values.data(),
                                                  fixed, f, sys.base.data(), wt, a.data(), rhs.data());
      MGPU_CUSOLVER_TRY(cusolverDnDpotrfBatched(handle, CUBLAS_FILL_MODE_LOWER, f, a_ptrs.data(), f,
                                                d_info.data(), n));
      // The info array is always checked: a failed factorisation must not be solved.
      std::span<int> batch_info(info.data() + r0, static_cast<std::size_t>(n));
      MGPU_CUDA_TRY(cudaMemcpyAsync(batch_info.data(), d_info.data(), batch_info.size_bytes(),
                                    cudaMemcpyDeviceToHost, s.handle()));
      s.synchronize();
      if (std::any_of(batch_info.begin(), batch_info.end(), [](int v) { return v != 0; })) return info;
      MGPU_CUSOLVER_TRY(cusolverDnDpotrsBatched(handle, CUBLAS_FILL_MODE_LOWER, f, 1, a_ptrs.data(), f,
                                                b_ptrs.data(), f, d_solve_info.data(), n));
      bc::detail::als_launch_round<float>(s, static_cast<std::int64_t>(n) * f, rhs.data(),
                                          x + static_cast<std::size_t>(r0) * fs);
      // potrs' info is checked per batch: the next batch's potrs would overwrite it.
      int solve_info = 0;
      MGPU_CUDA_TRY(cudaMemcpyAsync(&solve_info, d_solve_info.data(), sizeof(int), cudaMemcpyDeviceToHost,
                                    s.handle()));
      s.synchronize();
      bc::detail::check_potrs_info(solve_info, r0);
    }
    return info;
  }
};

static_assert(als_leaf_for<als_leaf<gpu>, float, std::int32_t> && als_leaf_for<als_leaf<gpu>, double, std::int64_t>);

}  // namespace mgpu::detail
