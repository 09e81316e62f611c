// mgpu/backend/cpu/knn.hpp — host leaf kernel of brute-force k-NN: one shard of base
// rows against a batch of queries, by BLAS GEMM fused with top-k selection.
//
// Method. The queries are cut into blocks of `query_block` rows and the shard into
// blocks of `base_block` rows. Each OpenMP thread of the device takes one query block
// at a time and walks the shard block by block: a single-threaded GEMM writes the
// block's dot products into a thread-private tile sized for the core's L2 cache, and
// the tile is scanned at once, while it is still in cache, against each query's current
// k-th best score, so that the full queries x base score matrix never exists. The scan
// turns a dot product into a score with the caller's `Score` functor (the metric) and
// first tests 64 scores at a time against the k-th best (a vectorisable compare that
// rejects almost every candidate once the lists have filled), then pushes the few that
// pass into a per-query bounded heap ordered by detail::ranks_before. When there are
// fewer query blocks than threads, the shard is also split between threads and their
// lists merged, so a handful of queries still uses every core.
//
// Threads: BLAS runs single-threaded (blas_single_threaded) for the duration, because
// the parallelism is over tiles; the team is the device's (omp_get_max_threads() on its
// worker thread). Scratch memory: per thread one tile plus query_block heaps of k
// entries; all of it is allocated before the parallel region, which never throws.
//
// Results are deterministic: every (query, base row) score is one dot product computed
// by the same GEMM kernel over the same k-ordering, and the selection is a total order,
// so neither the thread count nor the blocking changes which rows are chosen beyond
// round-off differences in the BLAS edge kernels (none for data whose dot products are
// exact in T).
#pragma once

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include <omp.h>
#include <unistd.h>

#include "mgpu/backend/cpu/blas.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/detail/topk_heap.hpp"

namespace mgpu::backend::cpu {

/// Tile shape of the host kernel: queries per block and base rows per block.
struct knn_blocking {
  std::int64_t query_block = 0;
  std::int64_t base_block = 0;
};

/// The blocking used when the caller asks for none (0 = automatic, per field): 512
/// queries per block, and as many base rows as make the dot tile (query_block x
/// base_block values of T) the size of the L2 cache (1 MiB per core on Zen 4: 512 x 512
/// floats). Large query blocks matter most: the base (188 MB for Fashion-MNIST) streams
/// from memory once per query block, and BLAS packs each base block once per call. On
/// the Fashion-MNIST benchmark this shape was the fastest of 256..1024 x 256..2048
/// (docs/_parts/knn-performance.md); a tile beyond L2 or 256-row blocks lose 5-20%.
template <class T>
knn_blocking choose_knn_blocking(knn_blocking requested) {
  long const l2 = ::sysconf(_SC_LEVEL2_CACHE_SIZE);
  std::int64_t const cache = l2 > 0 ? static_cast<std::int64_t>(l2) : std::int64_t{1} << 20;
  knn_blocking b = requested;
  if (b.query_block <= 0) b.query_block = 512;
  if (b.base_block <= 0) {
    b.base_block = std::clamp<std::int64_t>(cache / static_cast<std::int64_t>(sizeof(T)) / b.query_block,
                                            128, 4096);
    b.base_block -= b.base_block % 16;
  }
  return b;
}

/// One shard of the base resident on a host device: rows [first, first + rows.rows) of
/// the base (a view, nothing is copied) and their per-row score term `aux`.
template <class T>
struct knn_shard {
  std::int64_t first = 0;
  dense_view<T const> rows;
  std::span<T const> aux;
};

namespace detail {

/// Scans one row of dot products (n of them, base rows first_index..) and pushes every
/// score that can enter the top k; `threshold` is the k-th best score so far (-inf
/// while the heap is not full) and is kept up to date.
template <class T, class I, class Score>
void scan_row(T const* dots, std::int64_t n, T query_aux, T const* base_aux, Score const& score,
              I first_index, std::size_t k, mgpu::detail::topk_heap<T, I>& heap, T& threshold) {
  constexpr std::int64_t width = 64;  // one horizontal reduction per 64 scores
  auto const push = [&](T s, std::int64_t j) {
    if (!(s >= threshold)) return;
    heap.push({s, static_cast<I>(first_index + static_cast<I>(j))});
    if (heap.size() == k) threshold = heap.worst_score();
  };
  std::int64_t j = 0;
  for (; j + width <= n; j += width) {
    T s[width];
    int any = 0;
    for (std::int64_t t = 0; t < width; ++t) {
      s[t] = score(dots[j + t], query_aux, base_aux[j + t]);
      any |= static_cast<int>(s[t] >= threshold);
    }
    if (any != 0) [[unlikely]] {
      for (std::int64_t t = 0; t < width; ++t) push(s[t], j + t);
    }
  }
  for (; j < n; ++j) push(score(dots[j], query_aux, base_aux[j]), j);
}

}  // namespace detail

/// ‖x‖² in double: 8 interleaved partial sums and a fixed tree, so that the compiler can
/// vectorise it without reassociating (one running sum is a chain of dependent adds: 5x
/// slower on Fashion-MNIST's rows). The order depends on the row alone.
template <class T>
double squared_norm(std::span<T const> x) noexcept {
  constexpr std::size_t lanes = 8;
  double part[lanes] = {};
  std::size_t j = 0;
  for (; j + lanes <= x.size(); j += lanes) {
    for (std::size_t l = 0; l < lanes; ++l) part[l] += static_cast<double>(x[j + l]) * static_cast<double>(x[j + l]);
  }
  for (std::size_t l = 0; j < x.size(); ++j, ++l) part[l] += static_cast<double>(x[j]) * static_cast<double>(x[j]);
  return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

/// Rows below which the row kernels below run on the calling thread alone: waking an
/// OpenMP team for a few rows costs more than the rows, and its threads then spin on
/// cores the devices' workers need (a single-query search on cpu:2 measured 2x slower).
inline constexpr std::int64_t row_kernel_parallel_rows = 64;

/// out[r] = squared_norm(row r of a), for every row. O(rows x cols).
template <class T>
void row_squared_norms(dense_view<T const> a, std::span<double> out) noexcept {
#pragma omp parallel for schedule(static) if (a.rows >= row_kernel_parallel_rows)
  for (std::int64_t r = 0; r < a.rows; ++r) out[static_cast<std::size_t>(r)] = squared_norm(a.row(r));
}

/// The first row of `a` holding a NaN or an infinity, or a.rows when there is none.
/// v − v is 0 exactly for finite v (NaN for NaN and ±Inf): a compare the compiler
/// vectorises, where a loop of std::isfinite was not (5x slower). O(rows x cols).
template <class T>
std::int64_t first_non_finite_row(dense_view<T const> a) noexcept {
  std::int64_t bad = a.rows;
#pragma omp parallel for schedule(static) reduction(min : bad) if (a.rows >= row_kernel_parallel_rows)
  for (std::int64_t r = 0; r < a.rows; ++r) {
    int finite = 1;
    for (T v : a.row(r)) finite &= static_cast<int>(v - v == T{0});
    if (finite == 0) bad = std::min(bad, r);
  }
  return bad;
}

/// For each query row q of `queries` (a batch), the best min(k, shard rows) base rows of
/// the shard under `score(q·b, query_aux[q], shard.aux[b])` (larger is better, ties
/// toward the smaller index), best first, written to out[q * k ...] with global base
/// indices, and their number to counts[q]. O(queries x shard rows x dim) flops in GEMM,
/// O(queries x shard rows) score evaluations; memory O(threads x (tile + query_block x k)).
/// @throws index_overflow when a dimension exceeds the BLAS integer range.
template <class T, class I, class Score>
void knn_search(knn_shard<T> const& shard, dense_view<T const> queries,
                std::span<T const> query_aux, Score const& score, std::size_t k,
                knn_blocking blocking, std::span<mgpu::detail::scored<T, I>> out,
                std::span<std::int32_t> counts) {
  using entry = mgpu::detail::scored<T, I>;
  std::int64_t const nq = queries.rows;
  std::int64_t const nb = shard.rows.rows;
  std::int64_t const dim = queries.cols;
  if (nq == 0) return;
  if (nb == 0) {
    std::fill(counts.begin(), counts.begin() + nq, 0);
    return;
  }
  int const threads = std::max(1, omp_get_max_threads());
  auto const block = choose_knn_blocking<T>(blocking);
  // Equal query blocks, as many as a multiple of the threads, so that the last round of
  // blocks does not leave a thread idle.
  std::int64_t query_blocks = (nq + block.query_block - 1) / block.query_block;
  if (query_blocks >= threads) query_blocks = std::min(nq, (query_blocks + threads - 1) / threads * threads);
  std::int64_t const qb = (nq + query_blocks - 1) / query_blocks;
  query_blocks = (nq + qb - 1) / qb;
  std::int64_t const bb = std::min(block.base_block, nb);
  // Checked here so that no call inside the parallel region can throw.
  if (std::int64_t const largest = std::max({dim, queries.ld, shard.rows.ld, qb, bb}); largest > INT_MAX) {
    throw index_overflow(mgpu::detail::message("knn: size ", largest, " does not fit the LP64 BLAS interface"));
  }

  std::int64_t const base_blocks = (nb + bb - 1) / bb;
  std::int64_t const splits =
      std::min(base_blocks, std::max<std::int64_t>(1, (threads + query_blocks - 1) / query_blocks));
  std::int64_t const tasks = query_blocks * splits;
  std::size_t const kept = std::min(k, static_cast<std::size_t>(nb));

  // With several splits each one keeps its own lists, merged below.
  std::vector<entry> split_out(splits > 1 ? static_cast<std::size_t>(splits * nq) * k : 0);
  std::vector<std::int32_t> split_counts(splits > 1 ? static_cast<std::size_t>(splits * nq) : 0);

  std::vector<T> tiles(static_cast<std::size_t>(threads * qb * bb));
  std::vector<mgpu::detail::topk_heap<T, I>> heaps;  // each reserves its k entries now
  heaps.reserve(static_cast<std::size_t>(threads * qb));
  for (std::int64_t i = 0; i < threads * qb; ++i) heaps.emplace_back(kept);
  std::vector<T> thresholds(static_cast<std::size_t>(threads * qb));

  blas::blas_single_threaded const single;
#pragma omp parallel num_threads(threads)
  {
    auto const me = static_cast<std::size_t>(omp_get_thread_num());
    T* const tile = tiles.data() + me * static_cast<std::size_t>(qb * bb);
    auto* const heap = heaps.data() + me * static_cast<std::size_t>(qb);
    T* const threshold = thresholds.data() + me * static_cast<std::size_t>(qb);
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t task = 0; task < tasks; ++task) {
      std::int64_t const q0 = (task / splits) * qb;
      std::int64_t const rows = std::min(qb, nq - q0);
      std::int64_t const split = task % splits;
      std::int64_t const b_begin = nb * split / splits;
      std::int64_t const b_end = nb * (split + 1) / splits;
      for (std::int64_t i = 0; i < rows; ++i) {
        heap[i].clear();
        threshold[i] = -std::numeric_limits<T>::infinity();
      }
      for (std::int64_t b0 = b_begin; b0 < b_end; b0 += bb) {
        std::int64_t const cols = std::min(bb, b_end - b0);
        if (dim == 0) {
          // Zero-width vectors: every dot product is 0 (and BLAS would reject ld = 0).
          std::fill(tile, tile + rows * cols, T{0});
        } else {
          blas::gemm<T>(blas::op::none, blas::op::transpose, rows, cols, dim, T{1},
                        queries.data + q0 * queries.ld, queries.ld,
                        shard.rows.data + b0 * shard.rows.ld, shard.rows.ld, T{0}, tile, cols);
        }
        for (std::int64_t i = 0; i < rows; ++i) {
          detail::scan_row<T, I>(tile + i * cols, cols, query_aux[static_cast<std::size_t>(q0 + i)],
                                 shard.aux.data() + b0, score, static_cast<I>(shard.first + b0), kept,
                                 heap[i], threshold[i]);
        }
      }
      for (std::int64_t i = 0; i < rows; ++i) {
        auto const q = static_cast<std::size_t>(q0 + i);
        auto const slot = splits > 1 ? static_cast<std::size_t>(split * nq) + q : q;
        auto& count = splits > 1 ? split_counts[slot] : counts[q];
        count = static_cast<std::int32_t>(heap[i].size());
        heap[i].drain_sorted((splits > 1 ? split_out.data() : out.data()) + slot * k);
      }
    }
  }
  if (splits == 1) return;

  // The splits' lists are ranked by the same total order: the best `kept` of their union
  // is exact.
#pragma omp parallel num_threads(threads)
  {
    auto& h = heaps[static_cast<std::size_t>(omp_get_thread_num()) * static_cast<std::size_t>(qb)];
#pragma omp for schedule(static)
    for (std::int64_t q = 0; q < nq; ++q) {
      for (std::int64_t s = 0; s < splits; ++s) {
        auto const slot = static_cast<std::size_t>(s * nq + q);
        for (std::int32_t j = 0; j < split_counts[slot]; ++j) h.push(split_out[slot * k + static_cast<std::size_t>(j)]);
      }
      counts[static_cast<std::size_t>(q)] = static_cast<std::int32_t>(h.size());
      h.drain_sorted(out.data() + static_cast<std::size_t>(q) * k);
    }
  }
}

}  // namespace mgpu::backend::cpu
