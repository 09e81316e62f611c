// mgpu/backend/cpu/sparse_spmv.hpp — host SpMV kernels: y = alpha·A·x + beta·y on a
// block of CSR rows, in two layouts.
//
// SpMV moves far more bytes than it computes (2 flops per 8 bytes of A with float
// values and 32-bit columns), so the kernels are written around memory traffic:
//
//   csr     the rows as given. The device's OpenMP threads take contiguous row
//           ranges balanced by nnz (lower_bound on the offsets, static: no scheduling
//           traffic), and each row is one AVX-512 gather-FMA loop for float/double with
//           32-bit columns. Ideal when the x entries a thread touches stay in cache
//           (banded or locally clustered columns): A streams once at memory speed.
//   tiled   for scattered columns, where gathering x misses every cache and the TLB
//           (a 16 MB x against a 1 MB L2): rows are cut into blocks of 2^17 and columns
//           into panels of 2^15, and each (block, panel) tile stores its entries as one
//           32-bit word (local row << 15 | local column) plus the value, still 8 bytes
//           per entry for float. A thread sweeps one row block's tiles panel by panel,
//           accumulating into a 512 KB slice of y in its cache while gathering from a
//           128 KB slice of x: every random access is an L2 hit. x is re-read once per
//           row block (cols·sizeof(T)·blocks bytes, streamed). Building the layout is
//           a counting sort, O(nnz), done once per matrix (distributed_csr).
//
// Both layouts add a row's entries in increasing column order, so a row's result does
// not depend on how rows are split between devices or threads (bitwise equal results
// for cpu, cpu:2, ...). beta == 0 means y is not read (NaN in y does not propagate),
// as in BLAS and cuSPARSE.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <omp.h>

#include "mgpu/core/buffer.hpp"
#include "mgpu/sparse/csr_view.hpp"

namespace mgpu::backend::cpu {

namespace detail {

/// Rows [first, last) of thread t of nt, contiguous and balanced by nnz over `a`.
template <class T, class I>
void thread_rows(csr_view<T, I> a, int t, int nt, I& first, I& last) {
  auto const bound = [&](int q) -> I {
    if (q <= 0) return I{0};
    if (q >= nt) return a.rows;
    auto const base = static_cast<std::int64_t>(a.row_offsets[0]);
    auto const target = static_cast<I>(base + static_cast<std::int64_t>(a.nnz()) * q / nt);
    return static_cast<I>(std::lower_bound(a.row_offsets, a.row_offsets + a.rows + 1, target) -
                          a.row_offsets);
  };
  first = bound(t);
  last = std::max(first, bound(t + 1));
}

template <class T>
inline void store_result(T* y, T sum, T alpha, T beta) {
  *y = beta == T{0} ? alpha * sum : alpha * sum + beta * *y;
}

/// Σ values[p]·x[cols[p]] for p in [begin, end), in increasing p.
template <class T, class I>
inline T row_dot(I const* cols, T const* values, I begin, I end, T const* x) {
  T sum{0};
  for (I p = begin; p < end; ++p) sum += values[p] * x[cols[p]];
  return sum;
}

#if defined(__AVX512F__)
// GCC 12's unmasked gather / shuffle intrinsics start from an undefined register, which
// -Wmaybe-uninitialized reports; the zero-masked forms used here compile to the same
// instructions.
inline float reduce_add(__m512 v) {
  v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(0xFFFF, v, v, 0x4E));
  v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(0xFFFF, v, v, 0xB1));
  v = _mm512_add_ps(v, _mm512_maskz_permute_ps(0xFFFF, v, 0x4E));
  v = _mm512_add_ps(v, _mm512_maskz_permute_ps(0xFFFF, v, 0xB1));
  return _mm512_cvtss_f32(v);
}

inline double reduce_add(__m512d v) {
  v = _mm512_add_pd(v, _mm512_maskz_shuffle_f64x2(0xFF, v, v, 0x4E));
  v = _mm512_add_pd(v, _mm512_maskz_shuffle_f64x2(0xFF, v, v, 0xB1));
  v = _mm512_add_pd(v, _mm512_maskz_permute_pd(0xFF, v, 0x55));
  return _mm512_cvtsd_f64(v);
}

// One zmm of products per step, reduced once per row; the tail is masked, so a row of
// any length takes ceil(len/16) gathers (float) or ceil(len/8) (double).
inline float row_dot(std::int32_t const* cols, float const* values, std::int32_t begin,
                     std::int32_t end, float const* x) {
  __m512 acc = _mm512_setzero_ps();
  std::int32_t p = begin;
  for (; p + 16 <= end; p += 16) {
    __m512i const idx = _mm512_loadu_si512(cols + p);
    acc = _mm512_fmadd_ps(_mm512_loadu_ps(values + p), _mm512_mask_i32gather_ps(_mm512_setzero_ps(), 0xFFFF, idx, x, 4), acc);
  }
  if (p < end) {
    auto const m = static_cast<__mmask16>((1u << (end - p)) - 1u);
    __m512i const idx = _mm512_maskz_loadu_epi32(m, cols + p);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, values + p),
                          _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, x, 4), acc);
  }
  return reduce_add(acc);
}

inline double row_dot(std::int32_t const* cols, double const* values, std::int32_t begin,
                      std::int32_t end, double const* x) {
  __m512d acc = _mm512_setzero_pd();
  std::int32_t p = begin;
  for (; p + 8 <= end; p += 8) {
    __m256i const idx = _mm256_loadu_si256(reinterpret_cast<__m256i const*>(cols + p));
    acc = _mm512_fmadd_pd(_mm512_loadu_pd(values + p), _mm512_mask_i32gather_pd(_mm512_setzero_pd(), 0xFF, idx, x, 8), acc);
  }
  if (p < end) {
    auto const m = static_cast<__mmask8>((1u << (end - p)) - 1u);
    __m256i const idx = _mm256_maskz_loadu_epi32(m, cols + p);
    acc = _mm512_fmadd_pd(_mm512_maskz_loadu_pd(m, values + p),
                          _mm512_mask_i32gather_pd(_mm512_setzero_pd(), m, idx, x, 8), acc);
  }
  return reduce_add(acc);
}
#endif

}  // namespace detail

/// y[r] = alpha·(A x)[r] + beta·y[r] for the rows of `a` (y has a.rows entries), on the
/// calling thread's OpenMP team (the device's threads inside a fork_join task).
/// O(nnz + rows) time, no allocation.
template <class T, class I>
void csr_spmv(csr_view<T, I> a, T alpha, T const* x, T beta, T* y) {
  if (a.rows == 0) return;
#pragma omp parallel
  {
    I first{};
    I last{};
    detail::thread_rows(a, omp_get_thread_num(), omp_get_num_threads(), first, last);
    for (I r = first; r < last; ++r) {
      detail::store_result(y + r, detail::row_dot(a.col_indices, a.values, a.row_offsets[r],
                                                  a.row_offsets[r + 1], x),
                           alpha, beta);
    }
  }
}

/// A CSR row block in the tiled layout (see the file comment). Rows and columns are
/// those of the block it was built from; entries keep their CSR positions per row block
/// (the block's entries occupy the same range as in the CSR arrays, re-ordered by tile).
template <class T, class I>
struct tiled_csr {
  static constexpr int row_bits = 17;
  static constexpr int col_bits = 15;
  static constexpr std::int64_t block_rows = std::int64_t{1} << row_bits;
  static constexpr std::int64_t panel_cols = std::int64_t{1} << col_bits;

  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::vector<std::int64_t> block_entries;  // blocks + 1: entries of block b
  std::vector<std::int64_t> block_tiles;    // blocks + 1: tiles of block b
  std::vector<std::int64_t> tile_begin;     // tiles + 1: entries of tile t
  std::vector<std::int32_t> tile_panel;     // tiles: column panel of tile t
  buffer<std::uint32_t, mgpu::cpu> entries;  // (local row << col_bits) | local column
  buffer<T, mgpu::cpu> values;

  [[nodiscard]] std::int64_t blocks() const noexcept {
    return static_cast<std::int64_t>(block_tiles.size()) - 1;
  }
};

/// Builds the tiled layout of `a` (any row block view). Counting sort per row block,
/// blocks in parallel on the calling thread's OpenMP team: O(nnz + blocks·panels)
/// time, nnz·(4 + sizeof(T)) bytes. Within a tile, entries stay in row-major order, so
/// each row still sums in increasing column order. @throws out_of_memory.
template <class T, class I>
tiled_csr<T, I> make_tiled(csr_view<T, I> a) {
  using tiled = tiled_csr<T, I>;
  tiled out;
  out.rows = a.rows;
  out.cols = a.cols;
  auto const blocks = (out.rows + tiled::block_rows - 1) / tiled::block_rows;
  auto const panels = std::max<std::int64_t>(1, (out.cols + tiled::panel_cols - 1) / tiled::panel_cols);
  auto const base = a.rows == 0 ? std::int64_t{0} : static_cast<std::int64_t>(a.row_offsets[0]);
  auto const nnz = static_cast<std::size_t>(a.nnz());
  out.entries = buffer<std::uint32_t, mgpu::cpu>(nnz);
  out.values = buffer<T, mgpu::cpu>(nnz);
  out.block_entries.assign(static_cast<std::size_t>(blocks) + 1, 0);
  out.block_tiles.assign(static_cast<std::size_t>(blocks) + 1, 0);
  auto const block_range = [&](std::int64_t b, std::int64_t& r0, std::int64_t& r1) {
    r0 = b * tiled::block_rows;
    r1 = std::min(out.rows, r0 + tiled::block_rows);
  };
  for (std::int64_t b = 0; b <= blocks; ++b) {
    auto const r = std::min(out.rows, b * tiled::block_rows);
    out.block_entries[static_cast<std::size_t>(b)] = static_cast<std::int64_t>(a.row_offsets[r]) - base;
  }
  // Pass 1: occupied panels per block.
  std::vector<std::vector<std::int64_t>> counts(static_cast<std::size_t>(blocks));
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t b = 0; b < blocks; ++b) {
    std::int64_t r0 = 0;
    std::int64_t r1 = 0;
    block_range(b, r0, r1);
    auto& c = counts[static_cast<std::size_t>(b)];
    c.assign(static_cast<std::size_t>(panels), 0);
    for (auto p = static_cast<std::int64_t>(a.row_offsets[r0]); p < static_cast<std::int64_t>(a.row_offsets[r1]); ++p) {
      ++c[static_cast<std::size_t>(static_cast<std::int64_t>(a.col_indices[p]) >> tiled::col_bits)];
    }
    out.block_tiles[static_cast<std::size_t>(b) + 1] =
        std::count_if(c.begin(), c.end(), [](std::int64_t n) { return n > 0; });
  }
  for (std::size_t b = 0; b < static_cast<std::size_t>(blocks); ++b) out.block_tiles[b + 1] += out.block_tiles[b];
  auto const tiles = static_cast<std::size_t>(out.block_tiles.back());
  out.tile_begin.assign(tiles + 1, static_cast<std::int64_t>(nnz));
  out.tile_panel.assign(tiles, 0);
  // Pass 2: tile offsets, then scatter each block's entries into its tiles.
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t b = 0; b < blocks; ++b) {
    std::int64_t r0 = 0;
    std::int64_t r1 = 0;
    block_range(b, r0, r1);
    auto& c = counts[static_cast<std::size_t>(b)];
    auto tile = static_cast<std::size_t>(out.block_tiles[static_cast<std::size_t>(b)]);
    std::int64_t pos = out.block_entries[static_cast<std::size_t>(b)];
    for (std::int64_t panel = 0; panel < panels; ++panel) {
      auto& n = c[static_cast<std::size_t>(panel)];
      if (n == 0) continue;
      out.tile_begin[tile] = pos;
      out.tile_panel[tile] = static_cast<std::int32_t>(panel);
      ++tile;
      auto const count = n;
      n = pos;  // becomes the panel's cursor
      pos += count;
    }
    for (std::int64_t r = r0; r < r1; ++r) {
      auto const local_row = static_cast<std::uint32_t>(r - r0) << tiled::col_bits;
      for (auto p = static_cast<std::int64_t>(a.row_offsets[r]); p < static_cast<std::int64_t>(a.row_offsets[r + 1]); ++p) {
        auto const col = static_cast<std::int64_t>(a.col_indices[p]);
        auto const at = static_cast<std::size_t>(c[static_cast<std::size_t>(col >> tiled::col_bits)]++);
        out.entries[at] = local_row | static_cast<std::uint32_t>(col & (tiled::panel_cols - 1));
        out.values[at] = a.values[p];
      }
    }
    counts[static_cast<std::size_t>(b)] = {};
  }
  return out;
}

/// y = alpha·A·x + beta·y with A in the tiled layout (y has t.rows entries), on the
/// calling thread's OpenMP team. Threads take contiguous row blocks balanced by nnz.
/// O(nnz + blocks·cols) time; a block_rows accumulator per thread.
template <class T, class I>
void tiled_spmv(tiled_csr<T, I> const& t, T alpha, T const* x, T beta, T* y) {
  using tiled = tiled_csr<T, I>;
  auto const blocks = t.blocks();
  if (blocks <= 0) return;
#pragma omp parallel
  {
    auto const nt = static_cast<std::int64_t>(omp_get_num_threads());
    auto const me = static_cast<std::int64_t>(omp_get_thread_num());
    auto const total = t.block_entries.back();
    auto const bound = [&](std::int64_t q) {
      if (q >= nt) return blocks;
      auto const it = std::lower_bound(t.block_entries.begin(), t.block_entries.end(), total * q / nt);
      return std::min<std::int64_t>(blocks, it - t.block_entries.begin());
    };
    auto const b0 = bound(me);
    auto const b1 = std::max(b0, bound(me + 1));
    std::vector<T> acc(static_cast<std::size_t>(b1 > b0 ? tiled::block_rows : 0));
    std::uint32_t const col_mask = static_cast<std::uint32_t>(tiled::panel_cols - 1);
    for (std::int64_t b = b0; b < b1; ++b) {
      auto const r0 = b * tiled::block_rows;
      auto const n = std::min(t.rows - r0, tiled::block_rows);
      std::fill(acc.begin(), acc.begin() + n, T{0});
      T* const sum = acc.data();
      for (auto k = t.block_tiles[static_cast<std::size_t>(b)]; k < t.block_tiles[static_cast<std::size_t>(b) + 1]; ++k) {
        T const* const xs = x + static_cast<std::int64_t>(t.tile_panel[static_cast<std::size_t>(k)]) * tiled::panel_cols;
        auto const e0 = t.tile_begin[static_cast<std::size_t>(k)];
        auto const e1 = t.tile_begin[static_cast<std::size_t>(k) + 1];
        std::uint32_t const* const entries = t.entries.data();
        T const* const values = t.values.data();
        for (auto p = e0; p < e1; ++p) {
          auto const e = entries[p];
          sum[e >> tiled::col_bits] += values[p] * xs[e & col_mask];
        }
      }
      T* const out = y + r0;
      if (beta == T{0}) {
        for (std::int64_t i = 0; i < n; ++i) out[i] = alpha * sum[i];
      } else {
        for (std::int64_t i = 0; i < n; ++i) out[i] = alpha * sum[i] + beta * out[i];
      }
    }
  }
}

}  // namespace mgpu::backend::cpu
