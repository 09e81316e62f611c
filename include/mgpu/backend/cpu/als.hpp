// mgpu/backend/cpu/als.hpp — the host kernels of ALS: one block of rows solved
// against the replicated fixed side, by Cholesky (LAPACK) or conjugate gradient.
//
// Row u of the solving side gets the system of Hu, Koren & Volinsky (2008), written
// with an unobserved weight w0 as in WALS:
//
//   A_u = B + Σ_{i∈obs(u)} (w_ui − w0) y_i y_iᵀ,   B = w0·YᵀY + λI (shared by all rows),
//   b_u = Σ_{i∈obs(u)} w_ui t_ui y_i,
//
// where Y is the fixed side's factors (rows y_i), w_ui = 1 + α r_ui, and t_ui = 1
// (implicit) or r_ui (weighted). Every row is solved on its own, with the same
// operations in the same order whatever block it is in, so the result does not depend
// on how the rows are partitioned across devices.
//
// Threads: a call runs `#pragma omp parallel` over its rows with the calling thread's
// OpenMP team (a host device's share of the cores) and dynamic scheduling, because row
// lengths follow a power law. BLAS/LAPACK run single-threaded inside (blas_single_threaded).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <vector>

#include "mgpu/backend/cpu/blas.hpp"
#include "mgpu/core/buffer.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/sparse/csr_view.hpp"

namespace mgpu {

/// How interactions turn into weights and targets (see mgpu::als).
enum class als_model {
  /// Hu, Koren & Volinsky (2008): w = 1 + α·r, target 1 for observed entries.
  implicit,
  /// Weighted ALS: w = 1 + α·r, target r for observed entries.
  weighted,
};

/// How each row's system is solved (see mgpu::als).
enum class als_solver {
  /// Exact: the system is formed and factored (LAPACK potrf/potrs, cuSOLVER batched).
  cholesky,
  /// A fixed number of conjugate-gradient steps warm-started from the previous factors,
  /// never forming the system (Takács, Pilászy & Tikk 2011).
  conjugate_gradient,
};

namespace detail {

/// What one half-step needs to know, for every device kind.
struct als_step {
  std::int64_t factors = 0;
  double alpha = 1;
  double unobserved_weight = 1;
  bool weighted_targets = false;
  als_solver solver = als_solver::cholesky;
  int cg_steps = 3;
  /// "user" or "item": the side being solved, for error messages.
  char const* side = "user";
  /// The policy's memory budget per device in bytes (0: decided from free memory); GPU
  /// leaves size their batches by it.
  std::size_t memory_budget = 0;
};

/// The two per-entry coefficients of an observed entry r: (w − w0) for the system and
/// w·t for the right-hand side. Plain constexpr so that GPU kernels share it.
struct als_entry_weights {
  double alpha;
  double unobserved_weight;
  bool weighted_targets;

  [[nodiscard]] constexpr double system(double r) const noexcept {
    return 1.0 + alpha * r - unobserved_weight;
  }
  [[nodiscard]] constexpr double rhs(double r) const noexcept {
    return (1.0 + alpha * r) * (weighted_targets ? r : 1.0);
  }
};

[[noreturn]] inline void throw_not_spd(char const* side, std::int64_t row, std::int64_t info) {
  throw numerical_error(message(
      "ALS: the system of ", side, " ", row, " is not symmetric positive definite (Cholesky ",
      "failed at leading minor ", info, "); use regularization > 0 or check the weights"));
}

[[noreturn]] inline void throw_not_finite(char const* side, std::int64_t row) {
  throw numerical_error(message("ALS: the solution for ", side, " ", row,
                                " is not finite (the system is singular to working precision);"
                                " use regularization > 0"));
}

/// Smallest failing row of a parallel loop and why, reported after the loop (exceptions
/// cannot leave an OpenMP region).
struct als_row_failure {
  std::int64_t row = std::numeric_limits<std::int64_t>::max();
  std::int64_t info = 0;  // > 0: potrf info; 0: non-finite solution; < 0: CG curvature

  void record(std::int64_t r, std::int64_t why) noexcept {
#pragma omp critical(mgpu_als_row_failure)
    if (r < row) {
      row = r;
      info = why;
    }
  }
  void rethrow(char const* side) const {
    auto const r = row;
    if (r == std::numeric_limits<std::int64_t>::max()) return;
    auto const why = info;
    if (why > 0) throw_not_spd(side, r, why);
    if (why < 0) {
      throw numerical_error(message("ALS: conjugate gradient met non-positive curvature in the system of ",
                                    side, " ", r, ": it is not positive definite; use regularization > 0"));
    }
    throw_not_finite(side, r);
  }
};

}  // namespace detail

namespace backend::cpu {

namespace als_kernels {

// Sixteen-float vectors (GCC/Clang vector extension; lowered to AVX-512, AVX2 or SSE
// as the target allows) with independent accumulators and a fixed reduction order: -O2
// keeps them in registers, no -ffast-math is needed, and results are the same on every
// instruction set.
//
// No function takes or returns a vector by value: compiled without AVX-512, GCC and
// Clang note at every such function that its ABI differs from an AVX-512 build's
// (-Wpsabi), in every translation unit that includes this file. Memory is read and
// written through references of `v16u`, the same vector unaligned and allowed to alias
// floats (how GCC's and Clang's own intrinsics headers define __m512_u for
// _mm512_loadu_ps / _mm512_storeu_ps), so the vectors stay in registers all the same.
using v16 = float __attribute__((vector_size(64)));
using v16u = float __attribute__((vector_size(64), aligned(alignof(float)), may_alias));
inline constexpr std::size_t lanes = 16;

/// The 16 floats at p (any alignment), as a vector lvalue.
inline v16u const& at16(float const* p) noexcept { return *reinterpret_cast<v16u const*>(p); }
inline v16u& at16(float* p) noexcept { return *reinterpret_cast<v16u*>(p); }
inline float hsum(v16 const& v) noexcept {
  float const a = ((v[0] + v[8]) + (v[4] + v[12])) + ((v[2] + v[10]) + (v[6] + v[14]));
  float const b = ((v[1] + v[9]) + (v[5] + v[13])) + ((v[3] + v[11]) + (v[7] + v[15]));
  return a + b;
}

inline float dot(float const* a, float const* b, std::size_t n) noexcept {
  v16 s0 = {}, s1 = {};
  std::size_t j = 0;
  for (; j + 2 * lanes <= n; j += 2 * lanes) {
    s0 += at16(a + j) * at16(b + j);
    s1 += at16(a + j + lanes) * at16(b + j + lanes);
  }
  if (j + lanes <= n) {
    s0 += at16(a + j) * at16(b + j);
    j += lanes;
  }
  float tail = 0;
  for (std::size_t t = n - n % lanes; t < n; ++t) tail += a[t] * b[t];
  return hsum(s0 + s1) + tail;
}

inline void axpy(float alpha, float const* x, float* y, std::size_t n) noexcept {
#pragma omp simd
  for (std::size_t j = 0; j < n; ++j) y[j] += alpha * x[j];
}

/// y += Σ_q c[q] · row(q) over q < k (each row n floats): four independent 16-float
/// accumulators per 64 entries of y, so the additions of consecutive rows overlap.
template <class Row>
inline void accumulate_rows(float* y, std::size_t n, float const* c, std::size_t k, Row const& row) noexcept {
  std::size_t j = 0;
  for (; j + 4 * lanes <= n; j += 4 * lanes) {
    v16 a0 = at16(y + j), a1 = at16(y + j + lanes), a2 = at16(y + j + 2 * lanes), a3 = at16(y + j + 3 * lanes);
    for (std::size_t q = 0; q < k; ++q) {
      float const* r = row(q) + j;
      a0 += c[q] * at16(r);
      a1 += c[q] * at16(r + lanes);
      a2 += c[q] * at16(r + 2 * lanes);
      a3 += c[q] * at16(r + 3 * lanes);
    }
    at16(y + j) = a0;
    at16(y + j + lanes) = a1;
    at16(y + j + 2 * lanes) = a2;
    at16(y + j + 3 * lanes) = a3;
  }
  for (; j + lanes <= n; j += lanes) {
    v16 a = at16(y + j);
    for (std::size_t q = 0; q < k; ++q) a += c[q] * at16(row(q) + j);
    at16(y + j) = a;
  }
  // Fewer than 16 entries remain: rows are read at offsets below n only.
  for (std::size_t t = n - n % lanes; t < n; ++t) {
    float a = y[t];
    for (std::size_t q = 0; q < k; ++q) a += c[q] * row(q)[t];
    y[t] = a;
  }
}

/// y = B x for the n x n row-major symmetric B, as the sum of B's rows weighted by x.
inline void symv(float const* b, float const* x, float* y, std::size_t n) noexcept {
  std::fill(y, y + n, 0.0f);
  accumulate_rows(y, n, x, n, [&](std::size_t k) { return b + k * n; });
}

/// Asks for the fixed-side row of the entry `ahead` positions on, whose address the
/// hardware cannot guess (rows are gathered by column index).
template <class I>
inline void prefetch_row(dense_view<float const> fixed, std::span<I const> cols, std::size_t q) noexcept {
  constexpr std::size_t ahead = 16;
  if (q + ahead >= cols.size()) return;
  auto const* p = reinterpret_cast<char const*>(fixed.row(static_cast<std::int64_t>(cols[q + ahead])).data());
  auto const bytes = static_cast<std::size_t>(fixed.cols) * sizeof(float);
  for (std::size_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off);
}

}  // namespace als_kernels

/// Rows [first, last) of `m` solved exactly: for each non-empty row, A_u (double) is
/// `base` plus rank-k updates by syrk over chunks of the row's scaled fixed-side rows,
/// factored by potrf and solved by potrs; the result is rounded to float into
/// `out.row(u - first)` (`out` is the block of the solving side: rows [first, last)).
/// Empty rows get zero factors.
/// @param base  f x f, row-major, full symmetric B = w0·YᵀY + λI in double.
/// @throws numerical_error naming the smallest row whose system is not SPD or whose
///         solution is not finite.
/// Complexity: O(Σ_u nnz_u f² + rows f³/3) flops; O(threads · (f² + 256 f)) memory.
template <class T, class I>
void als_solve_cholesky(csr_view<T, I> m, I first, I last, dense_view<float const> fixed,
                        std::span<double const> base, dense_view<float> out,
                        mgpu::detail::als_step const& step) {
  auto const f = step.factors;
  auto const fs = static_cast<std::size_t>(f);
  mgpu::detail::als_entry_weights const wt{step.alpha, step.unobserved_weight, step.weighted_targets};
  // Rows of the fixed side gathered per syrk call: enough to amortise the call, small
  // enough that a popular row does not need a huge buffer.
  constexpr std::int64_t chunk = 256;
  mgpu::detail::als_row_failure failure;
  blas::blas_single_threaded single;
#pragma omp parallel
  {
    buffer<double, mgpu::cpu> a(fs * fs);
    buffer<double, mgpu::cpu> b(fs);
    buffer<double, mgpu::cpu> pos(static_cast<std::size_t>(chunk) * fs);
    buffer<double, mgpu::cpu> neg(static_cast<std::size_t>(chunk) * fs);
#pragma omp for schedule(dynamic, 16)
    for (std::int64_t r = first; r < static_cast<std::int64_t>(last); ++r) {
      auto const row = static_cast<I>(r);
      auto x = out.row(r - static_cast<std::int64_t>(first));
      auto const cols = m.row_columns(row);
      auto const vals = m.row_values(row);
      if (cols.empty()) {
        std::fill(x.begin(), x.end(), 0.0f);
        continue;
      }
      std::copy(base.begin(), base.end(), a.data());
      std::fill(b.data(), b.data() + fs, 0.0);
      for (std::size_t q0 = 0; q0 < cols.size(); q0 += chunk) {
        std::size_t const q1 = std::min(cols.size(), q0 + static_cast<std::size_t>(chunk));
        std::int64_t np = 0, nn = 0;
        for (std::size_t q = q0; q < q1; ++q) {
          als_kernels::prefetch_row(fixed, cols, q);
          auto const y = fixed.row(static_cast<std::int64_t>(cols[q]));
          double const r_ui = static_cast<double>(vals[q]);
          double const c = wt.system(r_ui);
          double const rhs = wt.rhs(r_ui);
#pragma omp simd
          for (std::size_t j = 0; j < fs; ++j) b[j] += rhs * static_cast<double>(y[j]);
          if (c == 0.0) continue;
          double* dst = c > 0 ? pos.data() + static_cast<std::size_t>(np++) * fs
                              : neg.data() + static_cast<std::size_t>(nn++) * fs;
          double const s = std::sqrt(std::abs(c));
#pragma omp simd
          for (std::size_t j = 0; j < fs; ++j) dst[j] = s * static_cast<double>(y[j]);
        }
        if (np > 0) blas::syrk_at_a(f, np, 1.0, pos.data(), f, 1.0, a.data(), f);
        if (nn > 0) blas::syrk_at_a(f, nn, -1.0, neg.data(), f, 1.0, a.data(), f);
      }
      if (int const info = blas::potrf(f, a.data(), f); info != 0) {
        failure.record(r, info);
        continue;
      }
      blas::potrs(f, 1, a.data(), f, b.data(), f);
      bool finite = true;
      for (std::size_t j = 0; j < fs; ++j) {
        x[j] = static_cast<float>(b[j]);
        finite = finite && std::isfinite(x[j]);
      }
      if (!finite) failure.record(r, 0);
    }
  }
  failure.rethrow(step.side);
}


/// Rows [first, last) of `m` improved by `step.cg_steps` conjugate-gradient steps on
/// A_u x = b_u, warm-started from the current `out.row(u - first)` (`out` is the block of
/// the solving side: rows [first, last)); A_u is applied as
/// B p + Σ (w − w0)(y_i·p) y_i and never formed (as the `implicit` library does,
/// after Takács, Pilászy & Tikk 2011). Iteration stops early once ‖r‖² < 1e-20.
/// Empty rows get zero factors. Single precision throughout.
///
/// The first pass (the residual b − A x) copies the row's fixed-side rows into a
/// thread-private contiguous block, so that the CG steps stream through it instead of
/// gathering scattered rows again (rows longer than 16 MiB of factors are read in place).
/// @param base  f x f row-major full symmetric B = w0·YᵀY + λI in float.
/// @throws numerical_error naming the smallest row where pᵀAp ≤ 0 (A not positive
///         definite) or the iterate is not finite.
/// Complexity: O((steps + 1) · (Σ_u 2 nnz_u f + rows f²)); O(threads · (4f + 16 MiB)) memory.
namespace als_kernels {

/// The CG row loop of als_solve_cg with the factor count F known at compile time (F > 0:
/// every vector loop has a constant trip count, so vectors stay in registers), or taken
/// from `factors` (F == 0).
template <std::size_t F, class T, class I>
void cg_rows(csr_view<T, I> m, I first, I last, dense_view<float const> fixed, std::span<float const> base,
             dense_view<float> out, mgpu::detail::als_step const& step, std::size_t factors,
             mgpu::detail::als_row_failure& failure) {
  std::size_t const fs = F != 0 ? F : factors;
  mgpu::detail::als_entry_weights const wt{step.alpha, step.unobserved_weight, step.weighted_targets};
  constexpr std::size_t gather_floats = std::size_t{4} << 20;
  std::size_t longest = 0;
  for (I r = first; r < last; ++r) longest = std::max(longest, static_cast<std::size_t>(m.row_nnz(r)));
  std::size_t const gather_rows = std::min(longest, std::max<std::size_t>(1, gather_floats / fs));
#pragma omp parallel
  {
    buffer<float, mgpu::cpu> r_vec(fs), p(fs), ap(fs);
    buffer<float, mgpu::cpu> gathered(gather_rows * fs);
    std::vector<float> coef(longest), d(longest);
#pragma omp for schedule(dynamic, 64)
    for (std::int64_t r = first; r < static_cast<std::int64_t>(last); ++r) {
      auto const row = static_cast<I>(r);
      float* x = out.row(r - static_cast<std::int64_t>(first)).data();
      auto const cols = m.row_columns(row);
      auto const vals = m.row_values(row);
      auto const k = cols.size();
      if (k == 0) {
        std::fill(x, x + fs, 0.0f);
        continue;
      }
      bool const gather = k <= gather_rows;
      auto const y_of = [&](std::size_t q) {
        return gather ? gathered.data() + q * fs : fixed.row(static_cast<std::int64_t>(cols[q])).data();
      };
      // r = b − A x, fused into one pass over the row, which also gathers its rows.
      symv(base.data(), x, ap.data(), fs);
      for (std::size_t j = 0; j < fs; ++j) r_vec[j] = -ap[j];
      for (std::size_t q = 0; q < k; ++q) {
        prefetch_row(fixed, cols, q);
        float const* y = fixed.row(static_cast<std::int64_t>(cols[q])).data();
        if (gather) std::copy(y, y + fs, gathered.data() + q * fs);
        double const r_ui = static_cast<double>(vals[q]);
        coef[q] = static_cast<float>(wt.system(r_ui));
        auto const c = static_cast<float>(wt.rhs(r_ui) - wt.system(r_ui) * static_cast<double>(dot(y, x, fs)));
        axpy(c, y, r_vec.data(), fs);
      }
      std::copy(r_vec.data(), r_vec.data() + fs, p.data());
      float rs_old = dot(r_vec.data(), r_vec.data(), fs);
      for (int it = 0; it < step.cg_steps && rs_old >= 1e-20f; ++it) {
        symv(base.data(), p.data(), ap.data(), fs);
        // All dots first (independent, so they overlap), then the updates.
        for (std::size_t q = 0; q < k; ++q) {
          if (!gather) prefetch_row(fixed, cols, q);
          d[q] = coef[q] * dot(y_of(q), p.data(), fs);
        }
        accumulate_rows(ap.data(), fs, d.data(), k, y_of);
        float const curvature = dot(p.data(), ap.data(), fs);
        if (!(curvature > 0.0f)) {
          failure.record(r, -1);
          break;
        }
        float const step_len = rs_old / curvature;
        axpy(step_len, p.data(), x, fs);
        axpy(-step_len, ap.data(), r_vec.data(), fs);
        float const rs_new = dot(r_vec.data(), r_vec.data(), fs);
        float const beta = rs_new / rs_old;
        for (std::size_t j = 0; j < fs; ++j) p[j] = r_vec[j] + beta * p[j];
        rs_old = rs_new;
      }
      if (!std::all_of(x, x + fs, [](float v) { return std::isfinite(v); })) failure.record(r, 0);
    }
  }
}

}  // namespace als_kernels

/// Rows [first, last) of `m` improved by `step.cg_steps` conjugate-gradient steps on
/// A_u x = b_u, warm-started from the current `out.row(u - first)` (`out` is the block of
/// the solving side: rows [first, last)); A_u is applied as
/// B p + Σ (w − w0)(y_i·p) y_i and never formed (as the `implicit` library does,
/// after Takács, Pilászy & Tikk 2011). Iteration stops early once ‖r‖² < 1e-20.
/// Empty rows get zero factors. Single precision throughout.
///
/// The first pass (the residual b − A x) copies the row's fixed-side rows into a
/// thread-private contiguous block, so that the CG steps stream through it instead of
/// gathering scattered rows again (rows longer than 16 MiB of factors are read in place).
/// 32, 64, 128 and 256 factors run code compiled for that size; the arithmetic is the
/// same for every size, so results do not depend on that choice.
/// @param base  f x f row-major full symmetric B = w0·YᵀY + λI in float.
/// @throws numerical_error naming the smallest row where pᵀAp ≤ 0 (A not positive
///         definite) or the iterate is not finite.
/// Complexity: O((steps + 1) · (Σ_u 2 nnz_u f + rows f²)); O(threads · (4f + 16 MiB)) memory.
template <class T, class I>
void als_solve_cg(csr_view<T, I> m, I first, I last, dense_view<float const> fixed,
                  std::span<float const> base, dense_view<float> out, mgpu::detail::als_step const& step) {
  auto const fs = static_cast<std::size_t>(step.factors);
  mgpu::detail::als_row_failure failure;
  switch (fs) {
    case 32: als_kernels::cg_rows<32>(m, first, last, fixed, base, out, step, fs, failure); break;
    case 64: als_kernels::cg_rows<64>(m, first, last, fixed, base, out, step, fs, failure); break;
    case 128: als_kernels::cg_rows<128>(m, first, last, fixed, base, out, step, fs, failure); break;
    case 256: als_kernels::cg_rows<256>(m, first, last, fixed, base, out, step, fs, failure); break;
    default: als_kernels::cg_rows<0>(m, first, last, fixed, base, out, step, fs, failure); break;
  }
  failure.rethrow(step.side);
}

/// The observed part of the ALS objective for rows [first, last) of `m` (users × items):
/// loss[u] = Σ_{i∈obs(u)} w_ui (t_ui − x_u·y_i)² − w0 (x_u·y_i)², in double. The
/// unobserved part and the regularisation are added from the Gram matrices by the caller.
template <class T, class I>
void als_observed_loss(csr_view<T, I> m, I first, I last, dense_view<float const> users,
                       dense_view<float const> items, mgpu::detail::als_step const& step,
                       std::span<double> loss) {
  auto const fs = static_cast<std::size_t>(step.factors);
  mgpu::detail::als_entry_weights const wt{step.alpha, step.unobserved_weight, step.weighted_targets};
#pragma omp parallel for schedule(dynamic, 256)
  for (std::int64_t r = first; r < static_cast<std::int64_t>(last); ++r) {
    auto const row = static_cast<I>(r);
    float const* x = users.row(r).data();
    auto const cols = m.row_columns(row);
    auto const vals = m.row_values(row);
    double sum = 0;
    for (std::size_t q = 0; q < cols.size(); ++q) {
      als_kernels::prefetch_row(items, cols, q);
      float const* y = items.row(static_cast<std::int64_t>(cols[q])).data();
      double pred = 0;
#pragma omp simd reduction(+ : pred)
      for (std::size_t j = 0; j < fs; ++j) pred += static_cast<double>(x[j]) * static_cast<double>(y[j]);
      double const r_ui = static_cast<double>(vals[q]);
      double const w = 1.0 + step.alpha * r_ui;
      double const t = step.weighted_targets ? r_ui : 1.0;
      sum += w * (t - pred) * (t - pred) - wt.unobserved_weight * pred * pred;
    }
    loss[static_cast<std::size_t>(r)] = sum;
  }
}

}  // namespace backend::cpu
}  // namespace mgpu
