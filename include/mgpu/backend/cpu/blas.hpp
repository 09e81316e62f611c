// mgpu/backend/cpu/blas.hpp — the few BLAS / LAPACK routines the CPU backend calls,
// for row-major data, in float and double.
//
// Declared here against the reference Fortran interface (sgemm_, spotrf_, ...) rather
// than through cblas.h / lapacke.h, because every BLAS/LAPACK (OpenBLAS, reference,
// MKL, BLIS) exports those symbols with the same signature, while the C headers differ
// between distributions. Integers are the LP64 `int` of Debian's libblas3 / libopenblas0.
//
// Threads: mgpu parallelises over rows and tiles itself (each logical device runs its
// own OpenMP team), so its kernels call BLAS from many threads at once with BLAS's own
// threading switched off; `blas_single_threaded` does that for OpenBLAS and restores
// the caller's setting afterwards.
#pragma once

#include <atomic>
#include <climits>
#include <cstdint>
#include <mutex>
#include <type_traits>

#include "mgpu/core/error.hpp"

extern "C" {
void sgemm_(char const* transa, char const* transb, int const* m, int const* n, int const* k,
            float const* alpha, float const* a, int const* lda, float const* b, int const* ldb,
            float const* beta, float* c, int const* ldc);
void dgemm_(char const* transa, char const* transb, int const* m, int const* n, int const* k,
            double const* alpha, double const* a, int const* lda, double const* b, int const* ldb,
            double const* beta, double* c, int const* ldc);
void ssyrk_(char const* uplo, char const* trans, int const* n, int const* k, float const* alpha,
            float const* a, int const* lda, float const* beta, float* c, int const* ldc);
void dsyrk_(char const* uplo, char const* trans, int const* n, int const* k, double const* alpha,
            double const* a, int const* lda, double const* beta, double* c, int const* ldc);
void spotrf_(char const* uplo, int const* n, float* a, int const* lda, int* info);
void dpotrf_(char const* uplo, int const* n, double* a, int const* lda, int* info);
void spotrs_(char const* uplo, int const* n, int const* nrhs, float const* a, int const* lda,
             float* b, int const* ldb, int* info);
void dpotrs_(char const* uplo, int const* n, int const* nrhs, double const* a, int const* lda,
             double* b, int const* ldb, int* info);
// OpenBLAS only; weak, so another BLAS links without them (they are then null).
__attribute__((weak)) void openblas_set_num_threads(int);
__attribute__((weak)) int openblas_get_num_threads();
}

namespace mgpu::backend::cpu::blas {

enum class op : char { none = 'N', transpose = 'T' };

namespace detail {
/// A dimension for the LP64 interface. @throws index_overflow beyond INT_MAX.
inline int dim(std::int64_t n, char const* what) {
  if (n < 0 || n > INT_MAX) {
    throw index_overflow(mgpu::detail::message("BLAS ", what, " = ", n,
                                                " does not fit the LP64 BLAS interface"));
  }
  return static_cast<int>(n);
}
}  // namespace detail

/// Row-major C (m x n) = alpha * op(A) * op(B) + beta * C, with op(A) m x k and op(B)
/// k x n; lda/ldb/ldc are row strides. BLAS xGEMM on the transposed (column-major)
/// problem C^T = op(B)^T op(A)^T. O(m n k) flops.
/// @throws index_overflow when a size exceeds the BLAS integer range.
template <class T>
void gemm(op trans_a, op trans_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha,
          T const* a, std::int64_t lda, T const* b, std::int64_t ldb, T beta, T* c,
          std::int64_t ldc) {
  if (m == 0 || n == 0) return;
  int const im = detail::dim(m, "m"), in = detail::dim(n, "n"), ik = detail::dim(k, "k");
  int const ilda = detail::dim(lda, "lda"), ildb = detail::dim(ldb, "ldb"),
            ildc = detail::dim(ldc, "ldc");
  char const ta = static_cast<char>(trans_a), tb = static_cast<char>(trans_b);
  if constexpr (std::is_same_v<T, float>) {
    sgemm_(&tb, &ta, &in, &im, &ik, &alpha, b, &ildb, a, &ilda, &beta, c, &ildc);
  } else {
    static_assert(std::is_same_v<T, double>, "gemm: float or double");
    dgemm_(&tb, &ta, &in, &im, &ik, &alpha, b, &ildb, a, &ilda, &beta, c, &ildc);
  }
}

/// Row-major symmetric rank-k update of the n x n matrix C: C = alpha * A^T A + beta * C
/// with A k x n (row stride lda). Only the upper triangle of row-major C (= the lower
/// one of the column-major view) is referenced and written. O(n^2 k) flops.
template <class T>
void syrk_at_a(std::int64_t n, std::int64_t k, T alpha, T const* a, std::int64_t lda, T beta, T* c,
               std::int64_t ldc) {
  if (n == 0) return;
  int const in = detail::dim(n, "n"), ik = detail::dim(k, "k");
  int const ilda = detail::dim(lda, "lda"), ildc = detail::dim(ldc, "ldc");
  // Row-major A (k x n) is column-major A^T (n x k): C = A^T (A^T)^T is trans = 'N'.
  char const uplo = 'L', trans = 'N';
  if constexpr (std::is_same_v<T, float>) {
    ssyrk_(&uplo, &trans, &in, &ik, &alpha, a, &ilda, &beta, c, &ildc);
  } else {
    static_assert(std::is_same_v<T, double>, "syrk: float or double");
    dsyrk_(&uplo, &trans, &in, &ik, &alpha, a, &ilda, &beta, c, &ildc);
  }
}

/// Cholesky factorisation in place of the symmetric positive definite n x n matrix A
/// (row-major, upper triangle referenced; afterwards A = U^T U with U in that
/// triangle). Returns LAPACK's info: 0 on success, i > 0 when the leading minor of
/// order i is not positive definite. O(n^3 / 3) flops.
template <class T>
int potrf(std::int64_t n, T* a, std::int64_t lda) {
  if (n == 0) return 0;
  int const in = detail::dim(n, "n"), ilda = detail::dim(lda, "lda");
  char const uplo = 'L';  // column-major lower == row-major upper
  int info = 0;
  if constexpr (std::is_same_v<T, float>) {
    spotrf_(&uplo, &in, a, &ilda, &info);
  } else {
    dpotrf_(&uplo, &in, a, &ilda, &info);
  }
  return info;
}

/// Solves A X = B in place of B for nrhs right-hand sides stored as the ROWS of B
/// (row-major nrhs x n, row stride ldb), with A factored by `potrf`. Returns info.
template <class T>
int potrs(std::int64_t n, std::int64_t nrhs, T const* a, std::int64_t lda, T* b,
          std::int64_t ldb) {
  if (n == 0 || nrhs == 0) return 0;
  int const in = detail::dim(n, "n"), inrhs = detail::dim(nrhs, "nrhs");
  int const ilda = detail::dim(lda, "lda"), ildb = detail::dim(ldb, "ldb");
  char const uplo = 'L';
  int info = 0;
  // Row-major rows of B are column-major columns: exactly LAPACK's layout.
  if constexpr (std::is_same_v<T, float>) {
    spotrs_(&uplo, &in, &inrhs, a, &ilda, b, &ildb, &info);
  } else {
    dpotrs_(&uplo, &in, &inrhs, a, &ilda, b, &ildb, &info);
  }
  return info;
}

/// While alive, OpenBLAS runs each call on the calling thread only (other BLAS
/// libraries: no effect). Nested and concurrent guards share one process-wide count;
/// the last one to leave restores the thread count found by the first.
class blas_single_threaded {
 public:
  blas_single_threaded() {
    if (openblas_set_num_threads == nullptr || openblas_get_num_threads == nullptr) return;
    std::lock_guard lock(state().mutex);
    if (state().users++ == 0) {
      state().saved = openblas_get_num_threads();
      openblas_set_num_threads(1);
    }
  }
  ~blas_single_threaded() {
    if (openblas_set_num_threads == nullptr || openblas_get_num_threads == nullptr) return;
    std::lock_guard lock(state().mutex);
    if (--state().users == 0) openblas_set_num_threads(state().saved);
  }
  blas_single_threaded(blas_single_threaded const&) = delete;
  blas_single_threaded& operator=(blas_single_threaded const&) = delete;

 private:
  struct shared {
    std::mutex mutex;
    int users = 0;
    int saved = 1;
  };
  static shared& state() {
    static shared s;
    return s;
  }
};

}  // namespace mgpu::backend::cpu::blas
