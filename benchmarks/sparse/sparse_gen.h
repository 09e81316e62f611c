/* benchmarks/sparse/sparse_gen.h — the benchmark matrices, generated identically by
 * spmv_bench and by every C/C++ peer program (no file needs to be shared).
 *
 * A square n x n matrix whose row r holds min(k, width) distinct columns drawn
 * uniformly from all columns (band < 0) or from [r - band, r + band] clipped to the
 * matrix (band >= 0), sorted, with values uniform in [-1, 1). Every row draws from its
 * own splitmix64 stream seeded by (seed, r), so rows can be generated in parallel and
 * every program gets bit-identical matrices. C99, usable from C and C++. */
#ifndef MGPU_BENCH_SPARSE_GEN_H
#define MGPU_BENCH_SPARSE_GEN_H

#include <stdint.h>

static inline uint64_t sparse_gen_next(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* First column a row may use, and how many it may choose from. */
static inline void sparse_gen_range(int64_t n, int64_t band, int64_t r, int64_t* lo, int64_t* width) {
  if (band < 0) {
    *lo = 0;
    *width = n;
    return;
  }
  int64_t const first = r - band < 0 ? 0 : r - band;
  int64_t const last = r + band > n - 1 ? n - 1 : r + band;
  *lo = first;
  *width = last - first + 1;
}

/* Entries of row r. */
static inline int64_t sparse_gen_row_nnz(int64_t n, int64_t k, int64_t band, int64_t r) {
  int64_t lo, width;
  sparse_gen_range(n, band, r, &lo, &width);
  return k < width ? k : width;
}

/* Writes row r's sorted distinct columns and values; returns their number. */
static inline int64_t sparse_gen_row(uint64_t seed, int64_t n, int64_t k, int64_t band, int64_t r,
                                     int64_t* cols, float* vals) {
  int64_t lo, width;
  sparse_gen_range(n, band, r, &lo, &width);
  int64_t const m = k < width ? k : width;
  uint64_t state = seed ^ ((uint64_t)r * 0xD1B54A32D192ED03ull);
  int64_t have = 0;
  while (have < m) {
    int64_t const c = lo + (int64_t)(sparse_gen_next(&state) % (uint64_t)width);
    int64_t pos = have;
    int dup = 0;
    /* insertion into the sorted prefix, rejecting duplicates */
    while (pos > 0 && cols[pos - 1] >= c) {
      if (cols[pos - 1] == c) {
        dup = 1;
        break;
      }
      --pos;
    }
    if (dup) continue;
    for (int64_t q = have; q > pos; --q) cols[q] = cols[q - 1];
    cols[pos] = c;
    ++have;
  }
  for (int64_t j = 0; j < m; ++j) {
    vals[j] = (float)((double)(sparse_gen_next(&state) >> 11) * (2.0 / 9007199254740992.0) - 1.0);
  }
  return m;
}

/* x[i] for the benchmark vectors: deterministic, in [0.5, 1.5). */
static inline float sparse_gen_x(int64_t i) {
  uint64_t state = (uint64_t)i * 0x9E3779B97F4A7C15ull + 12345u;
  return (float)(0.5 + (double)(sparse_gen_next(&state) >> 11) / 9007199254740992.0);
}

#endif
