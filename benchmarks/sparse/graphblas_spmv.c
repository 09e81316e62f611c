/* benchmarks/sparse/graphblas_spmv.c — the SuiteSparse:GraphBLAS peer of spmv_bench:
 * y = A x with GrB_mxv on the PLUS_TIMES semiring (float32), on the matrix of
 * sparse_gen.h, with non-iso values. Only GrB_mxv + GrB_wait is timed; prints the
 * median of --repeat runs in the same format as spmv_bench.
 *
 *   graphblas_spmv ROWS NNZ_PER_ROW BAND REPEAT      (BAND < 0: uniformly random columns) */
#include <GraphBLAS.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparse_gen.h"

#define CHECK(call)                                                        \
  do {                                                                     \
    GrB_Info info_ = (call);                                               \
    if (info_ != GrB_SUCCESS) {                                            \
      fprintf(stderr, "%s failed with %d (line %d)\n", #call, (int)info_, __LINE__); \
      exit(1);                                                             \
    }                                                                      \
  } while (0)

static int cmp_double(void const* a, void const* b) {
  double const x = *(double const*)a, y = *(double const*)b;
  return (x > y) - (x < y);
}

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s ROWS NNZ_PER_ROW BAND REPEAT\n", argv[0]);
    return 2;
  }
  int64_t const n = atoll(argv[1]);
  int64_t const k = atoll(argv[2]);
  int64_t const band = atoll(argv[3]);
  int const repeat = atoi(argv[4]);
  uint64_t const seed = 42;

  GrB_Index* ap = malloc(sizeof(GrB_Index) * (size_t)(n + 1));
  ap[0] = 0;
  for (int64_t r = 0; r < n; ++r) ap[r + 1] = ap[r] + (GrB_Index)sparse_gen_row_nnz(n, k, band, r);
  GrB_Index const nnz = ap[n];
  GrB_Index* aj = malloc(sizeof(GrB_Index) * (size_t)(nnz ? nnz : 1));
  float* ax = malloc(sizeof(float) * (size_t)(nnz ? nnz : 1));
#pragma omp parallel
  {
    int64_t* cols = malloc(sizeof(int64_t) * (size_t)(k ? k : 1));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < n; ++r) {
      int64_t const m = sparse_gen_row(seed, n, k, band, r, cols, ax + ap[r]);
      for (int64_t j = 0; j < m; ++j) aj[ap[r] + (GrB_Index)j] = (GrB_Index)cols[j];
    }
    free(cols);
  }

  CHECK(GrB_init(GrB_NONBLOCKING));
  GrB_Matrix a;
  CHECK(GxB_Matrix_import_CSR(&a, GrB_FP32, (GrB_Index)n, (GrB_Index)n, &ap, &aj, (void**)&ax,
                              sizeof(GrB_Index) * (GrB_Index)(n + 1),
                              sizeof(GrB_Index) * (nnz ? nnz : 1), sizeof(float) * (nnz ? nnz : 1),
                              false, false, NULL));
  GrB_Vector x, y;
  CHECK(GrB_Vector_new(&x, GrB_FP32, (GrB_Index)n));
  CHECK(GrB_Vector_new(&y, GrB_FP32, (GrB_Index)n));
  for (int64_t i = 0; i < n; ++i) CHECK(GrB_Vector_setElement_FP32(x, sparse_gen_x(i), (GrB_Index)i));
  CHECK(GrB_Vector_wait(x, GrB_MATERIALIZE));

  double* ms = malloc(sizeof(double) * (size_t)repeat);
  for (int i = 0; i < repeat; ++i) {
    double const t0 = omp_get_wtime();
    CHECK(GrB_mxv(y, NULL, NULL, GrB_PLUS_TIMES_SEMIRING_FP32, a, x, NULL));
    CHECK(GrB_Vector_wait(y, GrB_MATERIALIZE));
    ms[i] = (omp_get_wtime() - t0) * 1e3;
  }
  qsort(ms, (size_t)repeat, sizeof(double), cmp_double);
  double const median = ms[repeat / 2];
  double checksum = 0;
  for (int64_t i = 0; i < n; i += 997) {
    float v = 0;
    if (GrB_Vector_extractElement_FP32(&v, y, (GrB_Index)i) == GrB_SUCCESS) checksum += v;
  }
  double const bytes = 8.0 * (double)nnz + 4.0 * (double)(n + 1) + 8.0 * (double)n;
  printf("peer=graphblas threads=%d nnz=%llu median_ms=%.3f GBps=%.2f GFLOPs=%.3f checksum=%.6g\n",
         omp_get_max_threads(), (unsigned long long)nnz, median, bytes / median / 1e6,
         2.0 * (double)nnz / median / 1e6, checksum);
  free(ms);
  GrB_free(&a);
  GrB_free(&x);
  GrB_free(&y);
  GrB_finalize();
  return 0;
}
