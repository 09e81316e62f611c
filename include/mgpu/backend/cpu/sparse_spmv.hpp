// mgpu/backend/cpu/sparse_spmv.hpp — host SpMV kernels: y = alpha·A·x + beta·y on a
// block of CSR rows, in two layouts.
//
// SpMV moves far more bytes than it computes (2 flops per 8 bytes of A with float
// values and 32-bit columns), so the kernels are written around memory traffic:
//
//   csr     the rows as given. The device's OpenMP threads take contiguous row
//           ranges balanced by nnz (lower_bound on the offsets, static: no scheduling
//           traffic), and each row is one AVX-512 gather-FMA loop for float/double with
//           32-bit columns (a plain loop without AVX-512). Ideal when the x entries a thread touches stay in cache
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
//   sell    SELL-C-σ (Kreutzer, Hager, Wellein, Fehske, Bishop 2014, "A unified sparse
//           matrix data format for efficient general sparse matrix-vector
//           multiplication on modern processors with wide SIMD units") with C = 16: rows
//           are sorted by length within windows of σ rows, cut into chunks of 16, and
//           each chunk is stored slot-major (entry j of its 16 rows side by side, short
//           rows padded). One AVX-512 lane holds one row, so a 16-entry step is one load
//           of 16 columns, one gather, one load of 16 values and one FMA for 16 rows,
//           with no horizontal reduction (the csr kernel's reduction per row is what
//           keeps it below memory speed on short rows). Without AVX-512 the same
//           entries are added lane by lane, in the same order.
//           Padding lanes are masked out (never loaded, never multiplied), so Inf / NaN
//           in x propagate exactly as in the CSR product.
//
// Every layout adds a row's entries in a fixed order that depends only on the row (csr:
// 16 interleaved partial sums reduced as a tree; tiled: increasing column order; sell:
// increasing column order, one fused multiply-add per entry on AVX-512), so a row's
// result does not depend on how rows are split between devices or threads (bitwise equal
// results for cpu, cpu:2, ... with one layout and one instruction-set level); layouts and
// levels agree to round-off.
//
// Instruction sets: the AVX-512 kernels are compiled for AVX-512 in every translation
// unit (a target region, backend/cpu/simd/isa.hpp) and run when simd::active() is
// avx512 or above, chosen once per call before the parallel region; otherwise the
// portable loops run. No code here depends on the compiler's -march. beta == 0
// means y is not read (NaN in y does not propagate), as in BLAS and cuSPARSE.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <type_traits>
#include <vector>

#include <omp.h>

#include "mgpu/backend/cpu/simd/isa.hpp"
#include "mgpu/core/buffer.hpp"
#include "mgpu/core/error.hpp"
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

}  // namespace detail

#if MGPU_SIMD_X86
// The AVX-512 kernels (simd::isa::avx512 and above; see backend/cpu/simd/isa.hpp), for
// float and double values with 32-bit columns, compiled for AVX-512 whatever the
// translation unit's -march and called only when simd::active() allows.
MGPU_SIMD_BEGIN_AVX512
namespace detail::avx512 {

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

/// Rows [first, last) of `a`: y[r] = alpha·row_dot(r) + beta·y[r].
template <class T>
void csr_rows(csr_view<T, std::int32_t> a, std::int32_t first, std::int32_t last, T alpha, T const* x, T beta,
              T* y) {
  for (std::int32_t r = first; r < last; ++r) {
    store_result(y + r, row_dot(a.col_indices, a.values, a.row_offsets[r], a.row_offsets[r + 1], x), alpha, beta);
  }
}

}  // namespace detail::avx512
MGPU_SIMD_END
#endif

namespace detail {

/// Whether the AVX-512 kernels exist for values T and columns I.
template <class T, class I>
inline constexpr bool has_avx512_kernels =
    MGPU_SIMD_X86 && (std::is_same_v<T, float> || std::is_same_v<T, double>) && std::is_same_v<I, std::int32_t>;


}  // namespace detail

/// y[r] = alpha·(A x)[r] + beta·y[r] for the rows of `a` (y has a.rows entries), on the
/// calling thread's OpenMP team (the device's threads inside a fork_join task).
/// O(nnz + rows) time, no allocation.
template <class T, class I>
void csr_spmv(csr_view<T, I> a, T alpha, T const* x, T beta, T* y) {
  if (a.rows == 0) return;
  [[maybe_unused]] bool const wide = detail::has_avx512_kernels<T, I> && simd::active() >= simd::isa::avx512;
#pragma omp parallel
  {
    I first{};
    I last{};
    detail::thread_rows(a, omp_get_thread_num(), omp_get_num_threads(), first, last);
#if MGPU_SIMD_X86
    if constexpr (detail::has_avx512_kernels<T, I>) {
      if (wide) {
        detail::avx512::csr_rows(a, first, last, alpha, x, beta, y);
        first = last;
      }
    }
#endif
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

/// A CSR row block in the SELL-C-σ layout (see the file comment), C = 16. Position
/// q = 16·c + lane of chunk c holds local row `row_of[q]` (q itself when row_of is empty:
/// no sorting was needed); entry j of that row sits at `begin + 16·j + lane`, where
/// `begin = chunk_begin[c]`, for j < `lengths[q]`; the chunk's other slots are padding
/// (column 0, value 0, never read by the kernels).
template <class T, class I>
struct sell_csr {
  static constexpr std::int64_t chunk_rows = 16;

  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t sigma = 1;                  // sorting window, 1 or a multiple of 16
  std::vector<std::int64_t> chunk_begin;   // chunks + 1: first slot entry of chunk c
  std::vector<I> row_of;                   // position -> local row; empty: identity
  buffer<I, mgpu::cpu> lengths;            // chunks·16: entries of the row at a position
  buffer<I, mgpu::cpu> col_indices;        // chunk_begin.back() slots (empty if compressed)
  buffer<T, mgpu::cpu> values;
  // Compressed columns (float values, 32-bit indices, every chunk's columns within a
  // 2^16 span, as in banded matrices): slot column = chunk_base[c] + col_offsets[slot].
  // 6 bytes per slot instead of 8, for an operation bound by the bytes it streams.
  std::vector<I> chunk_base;                   // chunks; empty: not compressed
  buffer<std::uint16_t, mgpu::cpu> col_offsets;  // chunk_begin.back() slots

  [[nodiscard]] bool compressed() const noexcept { return !chunk_base.empty(); }
  /// Column of slot `at` of chunk `ch`.
  [[nodiscard]] I column(std::int64_t ch, std::int64_t at) const noexcept {
    return compressed() ? static_cast<I>(chunk_base[static_cast<std::size_t>(ch)] +
                                         static_cast<I>(col_offsets[static_cast<std::size_t>(at)]))
                        : col_indices[static_cast<std::size_t>(at)];
  }

  [[nodiscard]] std::int64_t chunks() const noexcept {
    return static_cast<std::int64_t>(chunk_begin.size()) - 1;
  }
  /// Stored slots, padding included (nnz + padding).
  [[nodiscard]] std::int64_t slots() const noexcept { return chunk_begin.empty() ? 0 : chunk_begin.back(); }
};

namespace detail {

/// The SELL-C-σ window actually used: 1 (no sorting) or σ rounded up to a multiple of
/// 16, so that no chunk straddles two windows. @throws invalid_argument for σ < 1.
inline std::int64_t sell_window(std::int64_t sigma) {
  MGPU_EXPECTS(sigma >= 1, "SELL-C-sigma: the sorting window sigma must be at least 1 (got ", sigma, ")");
  constexpr std::int64_t c = 16;
  return sigma == 1 ? 1 : (sigma + c - 1) / c * c;
}

/// Positions of window [first, last) of `a`'s rows sorted by decreasing length
/// (stable, so equal lengths keep their order and x locality), written to order.
template <class T, class I>
void sell_sort_window(csr_view<T, I> a, std::int64_t first, std::int64_t last, I* order) {
  std::iota(order, order + (last - first), static_cast<I>(first));
  auto const length = [&](I r) { return a.row_offsets[r + 1] - a.row_offsets[r]; };
  std::stable_sort(order, order + (last - first), [&](I p, I q) { return length(p) > length(q); });
}

}  // namespace detail

/// Slots (entries + padding) the SELL-C-σ layout of `a` would store, without building
/// it: O(rows·log σ) time, O(σ) memory per thread. Lets a caller weigh the padding
/// before paying for the copy. @throws invalid_argument for σ < 1.
template <class T, class I>
std::int64_t sell_slots(csr_view<T, I> a, std::int64_t sigma) {
  auto const window = detail::sell_window(sigma);
  constexpr std::int64_t c = sell_csr<T, I>::chunk_rows;
  auto const rows = static_cast<std::int64_t>(a.rows);
  auto const step = std::max(window, c);
  std::int64_t total = 0;
#pragma omp parallel reduction(+ : total)
  {
    std::vector<I> order(static_cast<std::size_t>(step));
#pragma omp for schedule(static)
    for (std::int64_t w0 = 0; w0 < rows; w0 += step) {
      auto const w1 = std::min(rows, w0 + step);
      if (window > 1) {
        detail::sell_sort_window(a, w0, w1, order.data());
      } else {
        std::iota(order.begin(), order.begin() + (w1 - w0), static_cast<I>(w0));
      }
      for (std::int64_t q = 0; q < w1 - w0; q += c) {
        std::int64_t width = 0;
        for (std::int64_t l = q; l < std::min(w1 - w0, q + c); ++l) {
          auto const r = order[static_cast<std::size_t>(l)];
          width = std::max<std::int64_t>(width, a.row_offsets[r + 1] - a.row_offsets[r]);
        }
        total += width * c;
      }
    }
  }
  return total;
}

/// Builds the SELL-C-σ layout (C = 16) of `a` (any row block view): rows sorted by
/// decreasing length within windows of σ rows (1: kept in order; else rounded up to a
/// multiple of 16), on the calling thread's OpenMP team. O(nnz + rows·log σ) time,
/// slots·(sizeof(I) + sizeof(T)) + rows·sizeof(I) bytes. Each row keeps its entries in
/// increasing column order. @throws invalid_argument (σ < 1), out_of_memory.
template <class T, class I>
sell_csr<T, I> make_sell(csr_view<T, I> a, std::int64_t sigma) {
  using sell = sell_csr<T, I>;
  constexpr std::int64_t c = sell::chunk_rows;
  sell out;
  out.rows = a.rows;
  out.cols = a.cols;
  out.sigma = detail::sell_window(sigma);
  auto const chunks = (out.rows + c - 1) / c;
  auto const positions = static_cast<std::size_t>(chunks * c);
  std::vector<I> order(positions, I{0});
  out.lengths = buffer<I, mgpu::cpu>(positions);
  out.chunk_begin.assign(static_cast<std::size_t>(chunks) + 1, 0);
  auto const step = std::max(out.sigma, c);
  bool sorted_is_identity = true;
#pragma omp parallel for schedule(static) reduction(&& : sorted_is_identity)
  for (std::int64_t w0 = 0; w0 < out.rows; w0 += step) {
    auto const w1 = std::min(out.rows, w0 + step);
    I* const o = order.data() + w0;
    if (out.sigma > 1) {
      detail::sell_sort_window(a, w0, w1, o);
    } else {
      std::iota(o, o + (w1 - w0), static_cast<I>(w0));
    }
    for (std::int64_t q = w0; q < std::min(w0 + step, chunks * c); ++q) {
      auto const r = q < w1 ? order[static_cast<std::size_t>(q)] : I{0};
      sorted_is_identity = sorted_is_identity && (q >= w1 || r == static_cast<I>(q));
      out.lengths[static_cast<std::size_t>(q)] =
          q < w1 ? static_cast<I>(a.row_offsets[r + 1] - a.row_offsets[r]) : I{0};
    }
    for (std::int64_t q = w0; q < std::min(w0 + step, chunks * c); q += c) {
      auto const* const len = out.lengths.data() + q;
      out.chunk_begin[static_cast<std::size_t>(q / c) + 1] = c * static_cast<std::int64_t>(*std::max_element(len, len + c));
    }
  }
  std::partial_sum(out.chunk_begin.begin(), out.chunk_begin.end(), out.chunk_begin.begin());
  auto const slots = static_cast<std::size_t>(out.chunk_begin.back());
  out.col_indices = buffer<I, mgpu::cpu>(slots);
  out.values = buffer<T, mgpu::cpu>(slots);
#pragma omp parallel for schedule(static)
  for (std::int64_t ch = 0; ch < chunks; ++ch) {
    auto const begin = out.chunk_begin[static_cast<std::size_t>(ch)];
    auto const width = (out.chunk_begin[static_cast<std::size_t>(ch) + 1] - begin) / c;
    for (std::int64_t l = 0; l < c; ++l) {
      auto const q = static_cast<std::size_t>(ch * c + l);
      auto const len = static_cast<std::int64_t>(out.lengths[q]);
      auto const first = len > 0 ? static_cast<std::int64_t>(a.row_offsets[order[q]]) : 0;
      for (std::int64_t j = 0; j < width; ++j) {
        auto const at = static_cast<std::size_t>(begin + j * c + l);
        out.col_indices[at] = j < len ? a.col_indices[first + j] : I{0};
        out.values[at] = j < len ? a.values[first + j] : T{0};
      }
    }
  }
  if (!sorted_is_identity) out.row_of = std::move(order);
  if constexpr (std::is_same_v<T, float> && std::is_same_v<I, std::int32_t>) {
    // Compress the columns when every chunk's real entries span less than 2^16.
    std::vector<I> base(static_cast<std::size_t>(chunks), I{0});
    bool fits = true;
#pragma omp parallel for schedule(static) reduction(&& : fits)
    for (std::int64_t ch = 0; ch < chunks; ++ch) {
      auto const begin = out.chunk_begin[static_cast<std::size_t>(ch)];
      std::int64_t lo = std::numeric_limits<std::int64_t>::max(), hi = -1;
      for (std::int64_t l = 0; l < c; ++l) {
        auto const len = static_cast<std::int64_t>(out.lengths[static_cast<std::size_t>(ch * c + l)]);
        if (len == 0) continue;
        // Columns ascend within a row: its first and last entries bound it.
        lo = std::min<std::int64_t>(lo, out.col_indices[static_cast<std::size_t>(begin + l)]);
        hi = std::max<std::int64_t>(hi, out.col_indices[static_cast<std::size_t>(begin + (len - 1) * c + l)]);
      }
      base[static_cast<std::size_t>(ch)] = hi < 0 ? I{0} : static_cast<I>(lo);
      fits = fits && (hi < 0 || hi - lo < 65536);
    }
    if (fits && chunks > 0) {
      out.col_offsets = buffer<std::uint16_t, mgpu::cpu>(slots);
#pragma omp parallel for schedule(static)
      for (std::int64_t ch = 0; ch < chunks; ++ch) {
        auto const begin = out.chunk_begin[static_cast<std::size_t>(ch)];
        auto const end = out.chunk_begin[static_cast<std::size_t>(ch) + 1];
        auto const b = base[static_cast<std::size_t>(ch)];
        for (std::int64_t at = begin; at < end; ++at) {
          auto const col = out.col_indices[static_cast<std::size_t>(at)];
          // Padding slots (column 0, never read) may lie below the base: store 0.
          out.col_offsets[static_cast<std::size_t>(at)] =
              static_cast<std::uint16_t>(col >= b && col - b < 65536 ? col - b : 0);
        }
      }
      out.chunk_base = std::move(base);
      out.col_indices = buffer<I, mgpu::cpu>();
    }
  }
  return out;
}

namespace detail {

/// Portable SELL kernel for chunks [c0, c1): lane by lane in the same entry order as
/// the AVX-512 one, with the compiler's multiply-add.
template <class T, class I>
void sell_chunks(sell_csr<T, I> const& s, std::int64_t c0, std::int64_t c1, T alpha, T const* x, T beta, T* y) {
  constexpr std::int64_t c = sell_csr<T, I>::chunk_rows;
  for (std::int64_t ch = c0; ch < c1; ++ch) {
    auto const begin = s.chunk_begin[static_cast<std::size_t>(ch)];
    auto const width = (s.chunk_begin[static_cast<std::size_t>(ch) + 1] - begin) / c;
    I const* const len = s.lengths.data() + ch * c;
    T sum[c] = {};
    for (std::int64_t j = 0; j < width; ++j) {
      for (std::int64_t l = 0; l < c; ++l) {
        auto const at = begin + j * c + l;
        if (j < static_cast<std::int64_t>(len[l])) sum[l] += s.values[static_cast<std::size_t>(at)] * x[s.column(ch, at)];
      }
    }
    for (std::int64_t l = 0; l < c && ch * c + l < s.rows; ++l) {
      auto const q = ch * c + l;
      auto const r = s.row_of.empty() ? q : static_cast<std::int64_t>(s.row_of[static_cast<std::size_t>(q)]);
      store_result(y + r, sum[l], alpha, beta);
    }
  }
}

}  // namespace detail

#if MGPU_SIMD_X86
// The AVX-512 SELL kernels (see the csr ones above).
MGPU_SIMD_BEGIN_AVX512
namespace detail::avx512 {

/// Lanes of chunk ch that hold rows (the last chunk may be partial).
template <class T, class I>
inline __mmask16 sell_valid_lanes(sell_csr<T, I> const& s, std::int64_t ch) {
  auto const left = s.rows - ch * 16;
  return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
}

inline void sell_chunks(sell_csr<float, std::int32_t> const& s, std::int64_t c0, std::int64_t c1, float alpha,
                        float const* x, float beta, float* y) {
  std::int32_t const* const cols = s.col_indices.data();
  float const* const vals = s.values.data();
  __m512 const va = _mm512_set1_ps(alpha);
  __m512 const vb = _mm512_set1_ps(beta);
  for (std::int64_t ch = c0; ch < c1; ++ch) {
    auto const begin = s.chunk_begin[static_cast<std::size_t>(ch)];
    auto const width = static_cast<std::int32_t>((s.chunk_begin[static_cast<std::size_t>(ch) + 1] - begin) / 16);
    __m512i const len = _mm512_loadu_si512(s.lengths.data() + ch * 16);
    float const* vp = vals + begin;
    __m512 acc = _mm512_setzero_ps();
    if (s.compressed()) {
      // Same entries, same order, same fused multiply-adds: columns rebuilt from the
      // chunk's base and 16-bit offsets.
      std::uint16_t const* op = s.col_offsets.data() + begin;
      __m512i const base = _mm512_set1_epi32(s.chunk_base[static_cast<std::size_t>(ch)]);
      if (_mm512_cmpeq_epi32_mask(len, _mm512_set1_epi32(width)) == 0xFFFF) {
        for (std::int32_t j = 0; j < width; ++j, op += 16, vp += 16) {
          __m512i const idx = _mm512_add_epi32(
              _mm512_maskz_cvtepu16_epi32(0xFFFF, _mm256_loadu_si256(reinterpret_cast<__m256i const*>(op))), base);
          __m512 const xv = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), 0xFFFF, idx, x, 4);
          acc = _mm512_fmadd_ps(_mm512_loadu_ps(vp), xv, acc);
        }
      } else {
        for (std::int32_t j = 0; j < width; ++j, op += 16, vp += 16) {
          __mmask16 const m = _mm512_cmpgt_epi32_mask(len, _mm512_set1_epi32(j));
          __m512i const idx = _mm512_add_epi32(_mm512_maskz_cvtepu16_epi32(m, _mm256_maskz_loadu_epi16(m, op)), base);
          __m512 const xv = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, x, 4);
          acc = _mm512_mask3_fmadd_ps(_mm512_maskz_loadu_ps(m, vp), xv, acc, m);
        }
      }
    } else if (_mm512_cmpeq_epi32_mask(len, _mm512_set1_epi32(width)) == 0xFFFF) {
      // Every row of the chunk is full (the common case for regular matrices).
      std::int32_t const* cp = cols + begin;
      for (std::int32_t j = 0; j < width; ++j, cp += 16, vp += 16) {
        __m512 const xv = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), 0xFFFF, _mm512_loadu_si512(cp), x, 4);
        acc = _mm512_fmadd_ps(_mm512_loadu_ps(vp), xv, acc);
      }
    } else {
      std::int32_t const* cp = cols + begin;
      for (std::int32_t j = 0; j < width; ++j, cp += 16, vp += 16) {
        __mmask16 const m = _mm512_cmpgt_epi32_mask(len, _mm512_set1_epi32(j));
        __m512 const xv = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, _mm512_maskz_loadu_epi32(m, cp), x, 4);
        acc = _mm512_mask3_fmadd_ps(_mm512_maskz_loadu_ps(m, vp), xv, acc, m);
      }
    }
    __mmask16 const valid = sell_valid_lanes(s, ch);
    __m512 result = _mm512_mul_ps(va, acc);
    if (s.row_of.empty()) {
      float* const out = y + ch * 16;
      if (beta != 0.0f) result = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(valid, out), result);
      _mm512_mask_storeu_ps(out, valid, result);
    } else {
      __m512i const rows = _mm512_maskz_loadu_epi32(valid, s.row_of.data() + ch * 16);
      if (beta != 0.0f) result = _mm512_fmadd_ps(vb, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), valid, rows, y, 4), result);
      _mm512_mask_i32scatter_ps(y, valid, rows, result, 4);
    }
  }
}

inline void sell_chunks(sell_csr<double, std::int32_t> const& s, std::int64_t c0, std::int64_t c1, double alpha,
                        double const* x, double beta, double* y) {
  std::int32_t const* const cols = s.col_indices.data();
  double const* const vals = s.values.data();
  __m512d const va = _mm512_set1_pd(alpha);
  __m512d const vb = _mm512_set1_pd(beta);
  for (std::int64_t ch = c0; ch < c1; ++ch) {
    auto const begin = s.chunk_begin[static_cast<std::size_t>(ch)];
    auto const width = static_cast<std::int32_t>((s.chunk_begin[static_cast<std::size_t>(ch) + 1] - begin) / 16);
    __m512i const len = _mm512_loadu_si512(s.lengths.data() + ch * 16);
    std::int32_t const* cp = cols + begin;
    double const* vp = vals + begin;
    __m512d lo = _mm512_setzero_pd();
    __m512d hi = _mm512_setzero_pd();
    for (std::int32_t j = 0; j < width; ++j, cp += 16, vp += 16) {
      __mmask16 const m = _mm512_cmpgt_epi32_mask(len, _mm512_set1_epi32(j));
      auto const ml = static_cast<__mmask8>(m & 0xFF);
      auto const mh = static_cast<__mmask8>(m >> 8);
      __m256i const il = _mm256_maskz_loadu_epi32(ml, cp);
      __m256i const ih = _mm256_maskz_loadu_epi32(mh, cp + 8);
      lo = _mm512_mask3_fmadd_pd(_mm512_maskz_loadu_pd(ml, vp), _mm512_mask_i32gather_pd(_mm512_setzero_pd(), ml, il, x, 8), lo, ml);
      hi = _mm512_mask3_fmadd_pd(_mm512_maskz_loadu_pd(mh, vp + 8), _mm512_mask_i32gather_pd(_mm512_setzero_pd(), mh, ih, x, 8), hi, mh);
    }
    __mmask16 const valid = sell_valid_lanes(s, ch);
    auto const vl = static_cast<__mmask8>(valid & 0xFF);
    auto const vh = static_cast<__mmask8>(valid >> 8);
    __m512d rl = _mm512_mul_pd(va, lo);
    __m512d rh = _mm512_mul_pd(va, hi);
    if (s.row_of.empty()) {
      double* const out = y + ch * 16;
      if (beta != 0.0) {
        rl = _mm512_fmadd_pd(vb, _mm512_maskz_loadu_pd(vl, out), rl);
        rh = _mm512_fmadd_pd(vb, _mm512_maskz_loadu_pd(vh, out + 8), rh);
      }
      _mm512_mask_storeu_pd(out, vl, rl);
      _mm512_mask_storeu_pd(out + 8, vh, rh);
    } else {
      __m256i const rows_l = _mm256_maskz_loadu_epi32(vl, s.row_of.data() + ch * 16);
      __m256i const rows_h = _mm256_maskz_loadu_epi32(vh, s.row_of.data() + ch * 16 + 8);
      if (beta != 0.0) {
        rl = _mm512_fmadd_pd(vb, _mm512_mask_i32gather_pd(_mm512_setzero_pd(), vl, rows_l, y, 8), rl);
        rh = _mm512_fmadd_pd(vb, _mm512_mask_i32gather_pd(_mm512_setzero_pd(), vh, rows_h, y, 8), rh);
      }
      _mm512_mask_i32scatter_pd(y, vl, rows_l, rl, 8);
      _mm512_mask_i32scatter_pd(y, vh, rows_h, rh, 8);
    }
  }
}
}  // namespace detail::avx512
MGPU_SIMD_END
#endif

namespace detail {

}  // namespace detail

/// y = alpha·A·x + beta·y with A in the SELL-C-σ layout (y has s.rows entries, indexed
/// by the block's local rows), on the calling thread's OpenMP team. O(slots + rows)
/// time, no allocation. Threads take groups of chunks dynamically: on a shared machine a
/// thread that loses its core hands its remaining groups to the others instead of holding
/// up the whole product, as a static split would. Groups are large (up to 1024 chunks,
/// ~2 MiB of A at 16 entries per row; at least 8 per thread) because every jump to a new
/// group restarts the hardware prefetchers' streams (small groups were measurably slower
/// than a static split on the banded benchmark). A row's result does not depend on which
/// thread computes it.
template <class T, class I>
void sell_spmv(sell_csr<T, I> const& s, T alpha, T const* x, T beta, T* y) {
  auto const chunks = s.chunks();
  if (s.rows == 0 || chunks <= 0) return;
  auto const threads = static_cast<std::int64_t>(omp_get_max_threads());
  auto const group = std::clamp<std::int64_t>(chunks / (8 * threads), 16, 1024);
  auto const groups = (chunks + group - 1) / group;
  [[maybe_unused]] bool const wide = detail::has_avx512_kernels<T, I> && simd::active() >= simd::isa::avx512;
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t g = 0; g < groups; ++g) {
    auto const c0 = g * group;
    auto const c1 = std::min(chunks, (g + 1) * group);
#if MGPU_SIMD_X86
    if constexpr (detail::has_avx512_kernels<T, I>) {
      if (wide) {
        detail::avx512::sell_chunks(s, c0, c1, alpha, x, beta, y);
        continue;
      }
    }
#endif
    detail::sell_chunks(s, c0, c1, alpha, x, beta, y);
  }
}

}  // namespace mgpu::backend::cpu
