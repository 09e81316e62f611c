// mgpu/backend/cuda/functors.hpp — per-element logic the GPU kernels run, written as
// plain constexpr C++ so that the host compiles and tests the very same code.
//
// nvcc runs these on the device through --expt-relaxed-constexpr (set by mgpu::cuda);
// g++ compiles them as ordinary host code (tests/cuda/test_cuda_functors.cpp). No CUDA
// header is needed here.
#pragma once

#include <cstdint>

namespace mgpu::backend::cuda {

/// Top-k selection of one score row that is already sorted best first: by score
/// descending, ties by column ascending (detail::ranks_before once columns are made
/// global). Walks row r and keeps the first k entries that are reported: nonzero
/// scores, and not the query itself when `exclude_self` (global corpus index
/// `first + column` equal to the query's global index `query_first + r`).
/// Writes them to out_columns / out_scores[r * k ...] and their number to
/// out_counts[r]. One row per call: on the GPU, one thread per query row.
template <class T>
struct select_sorted_row {
  std::int32_t const* row_offsets;  // rows + 1, into columns / scores
  std::int32_t const* columns;      // local corpus index of each score
  T const* scores;
  std::int64_t first;        // global corpus index of local column 0
  std::int64_t query_first;  // global query index of row 0
  bool exclude_self;
  std::int64_t k;
  std::int32_t* out_columns;  // rows * k
  T* out_scores;              // rows * k
  std::int32_t* out_counts;   // rows

  constexpr void operator()(std::int32_t r) const {
    std::int64_t const self = query_first + r;
    std::int64_t kept = 0;
    std::int64_t const base = static_cast<std::int64_t>(r) * k;
    for (std::int32_t p = row_offsets[r]; p < row_offsets[r + 1] && kept < k; ++p) {
      T const score = scores[p];
      if (score == T{0}) continue;
      if (exclude_self && first + columns[p] == self) continue;
      out_columns[base + kept] = columns[p];
      out_scores[base + kept] = score;
      ++kept;
    }
    out_counts[r] = static_cast<std::int32_t>(kept);
  }
};

/// The order of k-NN and cosine results: a higher score first, equal scores by the
/// smaller column (index) first.
template <class T>
constexpr bool ranks_higher(T score, std::int32_t column, T other_score, std::int32_t other_column) {
  return score > other_score || (score == other_score && column < other_column);
}

/// Inserts (score, column) into a list of `n` entries kept best first (ranks_higher),
/// at most `k` long: the last entry falls off a full list. Returns the new length.
/// O(k) per insertion; a list fed many candidates sees few insertions once it is full.
template <class T>
constexpr std::int64_t insert_ranked(T* scores, std::int32_t* columns, std::int64_t n, std::int64_t k, T score,
                                     std::int32_t column) {
  if (n == k && !ranks_higher(score, column, scores[k - 1], columns[k - 1])) return n;
  std::int64_t at = n < k ? n : k - 1;
  while (at > 0 && ranks_higher(score, column, scores[at - 1], columns[at - 1])) {
    scores[at] = scores[at - 1];
    columns[at] = columns[at - 1];
    --at;
  }
  scores[at] = score;
  columns[at] = column;
  return n < k ? n + 1 : n;
}

/// First pass of a k-selection over the rows of a row-major rows x cols score tile:
/// call i takes chunk i % chunks of row i / chunks (columns [c * chunk, min(cols,
/// (c + 1) * chunk))) and writes its best min(k, width) entries, best first, to
/// out_scores / out_columns[i * k ...] and their number to out_counts[i]. On the GPU,
/// one thread per (row, chunk): O(cols) work per row instead of a sort's O(cols log cols).
template <class T>
struct select_chunk_topk {
  T const* scores;  // rows x cols
  std::int64_t cols;
  std::int64_t chunk;   // columns per chunk, >= 1
  std::int64_t chunks;  // per row: ceil(cols / chunk)
  std::int64_t k;       // >= 1
  T* out_scores;        // rows x chunks x k
  std::int32_t* out_columns;
  std::int32_t* out_counts;  // rows x chunks

  constexpr void operator()(std::int64_t i) const {
    std::int64_t const r = i / chunks;
    std::int64_t const begin = (i - r * chunks) * chunk;
    std::int64_t const end = begin + chunk < cols ? begin + chunk : cols;
    T* const best = out_scores + i * k;
    std::int32_t* const best_columns = out_columns + i * k;
    std::int64_t n = 0;
    for (std::int64_t c = begin; c < end; ++c) {
      n = insert_ranked(best, best_columns, n, k, scores[r * cols + c], static_cast<std::int32_t>(c));
    }
    out_counts[i] = static_cast<std::int32_t>(n);
  }
};

/// Second pass: row r's best k of its chunks' lists (select_chunk_topk's outputs), best
/// first, to out_scores / out_columns[r * k ...]; one call (GPU thread) per row. Chunks
/// are merged in column order, so ties keep the smaller column as a full sort would.
template <class T>
struct merge_chunk_topk {
  T const* chunk_scores;  // rows x chunks x k
  std::int32_t const* chunk_columns;
  std::int32_t const* chunk_counts;  // rows x chunks
  std::int64_t chunks;
  std::int64_t k;
  T* out_scores;  // rows x k
  std::int32_t* out_columns;

  constexpr void operator()(std::int64_t r) const {
    T* const best = out_scores + r * k;
    std::int32_t* const best_columns = out_columns + r * k;
    std::int64_t n = 0;
    for (std::int64_t c = r * chunks; c < (r + 1) * chunks; ++c) {
      for (std::int64_t j = 0; j < chunk_counts[c]; ++j) {
        n = insert_ranked(best, best_columns, n, k, chunk_scores[c * k + j], chunk_columns[c * k + j]);
      }
    }
  }
};

/// Scales the values of one CSR row by a per-row factor (used to L2-normalise rows on
/// the host before upload and by tests): values[p] *= scale[r] for p in row r.
template <class T, class I>
struct scale_row {
  I const* row_offsets;
  T const* scale;
  T* values;

  constexpr void operator()(I r) const {
    for (I p = row_offsets[r]; p < row_offsets[r + 1]; ++p) values[p] *= scale[r];
  }
};

}  // namespace mgpu::backend::cuda
