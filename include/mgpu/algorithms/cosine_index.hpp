// mgpu/algorithms/cosine_index.hpp — a built, resident index of sparse rows for exact
// cosine top-k and threshold searches.
//
//   mgpu::cosine_index<mgpu::cpu, float> index(policy, tfidf);   // shards built once
//   index.add(more_rows);                                        // ids continue
//   auto top = index.search(queries, 10);                        // 10 best per query
//   auto near = index.search(queries, 10, 0.5);                  // of those, >= 0.5
//   auto all = index.search(queries, 0, 0.5);                    // every match >= 0.5
//   index.save("index.mgpu");
//   auto again = mgpu::cosine_index<mgpu::cpu, float>::load(policy, "index.mgpu");
//
// Ranking (the rules of cosine_topk): cos(q, d) = q·d / (‖q‖ ‖d‖); for each query row
// the corpus rows with the largest *nonzero* similarities, best first, ties toward the
// smaller corpus row (id). Zero rows have similarity 0 with everything and are never
// reported; a threshold keeps only scores >= it (exactly: a score reported is >= the
// threshold as a real number). Ids are the corpus rows in the order they were added:
// the rows of the constructor's matrix are 0 .. n - 1, the first add() continues at n.
//
// Method (docs/design.md "Cosine top-k"): the rows are split into nnz-balanced row
// shards, one per device; each shard is moved to its device through the transfer layer
// (set.transfers() counts it), transposed there into term -> document posting lists of
// the row-normalised values, and kept for the index's lifetime: searches move nothing
// on host devices. Each add() makes one more set of shards (a segment) over the devices.
// A search batches the queries; per batch every device scores its shards (host: sparse
// accumulation with exact MaxScore pruning over impact tiers, backend/cpu/cosine_topk.hpp;
// GPU: cuSPARSE SpGEMM + CUB sorts, backend/cuda/cosine_topk.cuh) and the host merges
// the devices' lists exactly (detail::sharded_topk, batch i+1 on the devices while
// batch i merges). Every reported score is the canonical column-order dot product of the
// normalised rows in T, so results are bitwise identical for any number of devices, any
// segmentation, and to those of cosine_topk on the same rows (on host devices; GPU
// scores agree to round-off). With a threshold, host shards start pruning at it.
// k = 0 with a threshold lists every match: each device returns variable-length lists
// per batch, merged per query by the same order (detail::sharded_matches); memory then
// grows with the matches of a batch (bound it with cosine_topk_options::query_batch).
// GPU leaves support k >= 1 with or without a threshold; k = 0 throws invalid_argument
// on GPUs (not implemented).
//
// Memory: the shards hold about 2 x nnz x (sizeof(T) + sizeof(I)) plus O(terms) per
// shard, and each host device keeps one scratch area per thread of O(shard rows + terms)
// between searches. The caller's matrix is not referenced after the constructor or
// add() returns.
//
// Thread safety: search and save are const and may run concurrently from several threads
// (a device runs one search's batch at a time); add and load need exclusive access.
//
// File (save / load): mgpu's binary container (io/binary_file.hpp), kind "cosine_index",
// version 1; sections in this order:
//   rows         int64 [1]        n, the number of rows (ids 0 .. n - 1)
//   cols         int64 [1]        d, the number of columns (terms)
//   row_offsets  int64 [n + 1]    CSR offsets, from 0, non-decreasing, last = nnz
//   col_indices  int32 or int64 [nnz]   (the index type I) columns of each row, ascending
//   values       float32 or float64 [nnz]  (the value type T) each row divided by its
//                                  L2 norm as the shards hold it (zero rows stay zero)
// The stored values are the normalised rows themselves, so a loaded index reproduces the
// saved one's results bit for bit, on any number of devices. load() accepts only files
// whose element types are T and I (file_format_error otherwise).
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <ostream>
#include <span>
#include <type_traits>
#include <vector>

#include "mgpu/algorithms/detail/cosine_leaf.hpp"
#include "mgpu/algorithms/detail/sharded_topk.hpp"
#include "mgpu/algorithms/topk_result.hpp"
#include "mgpu/backend/cpu/cosine_topk.hpp"
#include "mgpu/backend/cpu/parallel.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/core/progress.hpp"
#include "mgpu/detail/topk_heap.hpp"
#include "mgpu/execution/fork_join.hpp"
#include "mgpu/execution/policy.hpp"
#include "mgpu/execution/transfer.hpp"
#include "mgpu/io/binary_file.hpp"
#include "mgpu/sparse/csr_matrix.hpp"
#include "mgpu/sparse/partition.hpp"

namespace mgpu {

/// Options of cosine_topk and of cosine_index::search.
struct cosine_topk_options {
  /// Skip corpus row i in the results of query row i. Unset (the default): in
  /// cosine_topk, skipped exactly when the queries and the corpus are the same matrix
  /// (the same arrays, as with the all-pairs overload or `cosine_topk(p, x, x, k)`), so a
  /// document is never its own best match unless asked; in cosine_index::search, not
  /// skipped. `false` keeps the self match, `true` forces the skip for queries whose
  /// rows correspond to the corpus ids. The default does not depend on the overload or
  /// on which other options are passed.
  std::optional<bool> exclude_self{};
  /// Queries per batch; 0 chooses from the policy's memory budget (default 16384).
  std::int64_t query_batch = 0;
  /// Called on the calling thread after each batch with (queries done, total queries).
  progress_callback progress{};
  /// Report only scores >= this (finite). Required for k = 0, which then lists every
  /// such match.
  std::optional<double> threshold{};
};

namespace detail {

/// 1/‖row‖ for every row (0 for a zero row), summed in double.
template <class T, class I>
std::vector<T> inverse_row_norms(csr_view<T, I> a) {
  std::vector<T> inv(static_cast<std::size_t>(a.rows));
  backend::cpu::parallel_for(static_cast<std::int64_t>(a.rows), [&](std::int64_t r) {
    double sum = 0;
    for (auto v : a.row_values(static_cast<I>(r))) sum += static_cast<double>(v) * static_cast<double>(v);
    inv[static_cast<std::size_t>(r)] = sum > 0 ? static_cast<T>(1.0 / std::sqrt(sum)) : T{0};
  });
  return inv;
}

/// @throws invalid_argument naming the matrix and position of the first NaN or Inf.
template <class T, class I>
void require_finite(csr_view<T, I> a, char const* name) {
  if constexpr (std::is_floating_point_v<T>) {
    for (I r = 0; r < a.rows; ++r) {
      for (I p = a.row_begin(r); p < a.row_end(r); ++p) {
        if (!std::isfinite(a.values[p])) {
          throw invalid_argument(message(name, " has a non-finite value (", a.values[p], ") at row ",
                                         static_cast<std::int64_t>(r), ", column ",
                                         static_cast<std::int64_t>(a.col_indices[p]),
                                         "; cosine ranking needs finite values"));
        }
      }
    }
  }
}

template <class T, class I>
bool all_non_negative(csr_view<T, I> a) {
  auto const first = a.rows == 0 ? I{0} : a.row_offsets[0];
  return std::all_of(a.values + first, a.values + first + a.nnz(), [](T v) { return v >= T{0}; });
}

/// Rows per query batch: the option, or as many as fit the memory budget (capped).
template <class T, class I>
std::int64_t cosine_batch_rows(std::int64_t requested, std::size_t budget, std::int64_t k,
                               std::int64_t queries) {
  std::int64_t batch = requested > 0 ? requested : 16384;
  if (budget > 0) {
    auto const per_query = static_cast<std::size_t>(k) * (sizeof(scored<T, I>) + 1) + sizeof(std::int32_t);
    auto const fit = static_cast<std::int64_t>(budget / per_query);
    if (fit < 1) throw out_of_memory(per_query, budget, "cosine_topk: one query's results");
    batch = std::min(batch, fit);
  }
  return std::max<std::int64_t>(1, std::min(batch, std::max<std::int64_t>(queries, 1)));
}

/// The search's threshold in T: the smallest T that is >= `threshold`, so that a score
/// s of type T passes (s >= it) exactly when s >= threshold as real numbers; -inf when
/// unset. @throws invalid_argument for a NaN or infinite threshold.
template <class T>
T threshold_in(std::optional<double> threshold, char const* what) {
  if (!threshold) return -std::numeric_limits<T>::infinity();
  MGPU_EXPECTS(std::isfinite(*threshold), what, ": the threshold must be finite, got ", *threshold);
  auto t = static_cast<T>(*threshold);
  if (static_cast<double>(t) < *threshold) t = std::nextafter(t, std::numeric_limits<T>::infinity());
  return t;
}

/// @throws invalid_argument unless k >= 1, or k == 0 with a threshold.
inline void check_cosine_k(std::int64_t k, cosine_topk_options const& options, char const* what) {
  MGPU_EXPECTS(k >= 1 || (k == 0 && options.threshold.has_value()), what,
               ": k must be at least 1 (or 0 with a threshold: every match above it), got ", k,
               options.threshold ? "" : " and no threshold");
}

/// Host devices: the sparse-accumulation kernel of backend/cpu/cosine_topk.hpp; the rows
/// reach the device as a copy made by its worker (upload), from which it builds its shard.
template <>
struct cosine_leaf<cpu> {
  template <class T, class I>
  using shard = backend::cpu::cosine_shard<T, I>;
  template <class T, class I>
  using staged = csr_matrix<cpu, T, I>;

  template <class T, class I>
  static staged<T, I> stage(device_set<cpu>& set, std::size_t device, csr_view<T, I> block, bool,
                            event<cpu>& done) {
    return mgpu::upload(set, device, block, set[device].work, done);
  }

  template <class T, class I>
  static shard<T, I> make_shard(device_context<cpu>&, staged<T, I>& rows, I first, bool non_negative,
                                bool normalise, std::size_t) {
    return backend::cpu::make_cosine_shard<T, I>(rows.view(), first, non_negative, normalise);
  }

  template <class T, class I>
  static void score(device_context<cpu>&, csr_view<T, I> queries, std::span<T const> query_inv_norms,
                    shard<T, I> const& s, I q_first, I q_last, std::size_t k, bool exclude_self,
                    bool queries_non_negative, T threshold, std::span<scored<T, I>> out,
                    std::span<std::int32_t> counts, std::size_t, std::span<std::atomic<T>> shared_bounds) {
    backend::cpu::cosine_topk_shard<T, I>(queries, query_inv_norms, s, q_first, q_last, k, exclude_self,
                                          queries_non_negative, threshold, out, counts, shared_bounds);
  }

  template <class T, class I>
  static void score_all(device_context<cpu>&, csr_view<T, I> queries, std::span<T const> query_inv_norms,
                        shard<T, I> const& s, I q_first, I q_last, bool exclude_self, bool queries_non_negative,
                        T threshold, std::vector<std::int64_t>& offsets, std::vector<scored<T, I>>& entries,
                        std::size_t) {
    backend::cpu::cosine_matches_shard<T, I>(queries, query_inv_norms, s, q_first, q_last, exclude_self,
                                             queries_non_negative, threshold, offsets, entries);
  }

  /// Reads the host shard in place (host memory; not a transfer).
  template <class T, class I>
  static void export_rows(device_set<cpu>&, std::size_t, shard<T, I> const& s, std::vector<std::int64_t>& offsets,
                          std::vector<I>& columns, std::vector<T>& values) {
    backend::cpu::append_normalised_rows(s, offsets, columns, values);
  }
};

static_assert(cosine_leaf_for<cosine_leaf<cpu>, float, std::int32_t> &&
              cosine_leaf_for<cosine_leaf<cpu>, double, std::int64_t>);

/// Waits for every recorded event when it goes out of scope (errors ignored: the caller
/// is already leaving with an exception, or has waited on the events itself), so that no
/// copy still writes into, or reads from, memory the scope releases.
template <class Kind>
struct join_events {
  std::vector<event<Kind>>& events;
  explicit join_events(std::vector<event<Kind>>& e) noexcept : events(e) {}
  join_events(join_events const&) = delete;
  join_events& operator=(join_events const&) = delete;
  ~join_events() {
    for (auto& e : events) {
      try {
        e.synchronize();
      } catch (...) {  // NOLINT(bugprone-empty-catch): reported by the caller's own wait
      }
    }
  }
};

/// The lists of several shards of one device (segments), merged into one: per row the
/// best k of their union (bounded), or all of them in rank order (k = 0).
template <class T, class I>
void merge_segment_lists(std::vector<topk_lists<T, I>> const& parts, std::size_t rows, std::size_t k,
                         std::span<scored<T, I>> out, std::span<std::int32_t> counts) {
  topk_heap<T, I> heap(k);
  for (std::size_t r = 0; r < rows; ++r) {
    for (auto const& p : parts) {
      for (std::int32_t j = 0; j < p.counts[r]; ++j) heap.push(p.out[r * k + static_cast<std::size_t>(j)]);
    }
    counts[r] = static_cast<std::int32_t>(heap.size());
    heap.drain_sorted(out.begin() + static_cast<std::ptrdiff_t>(r * k));
  }
}

template <class T, class I>
void merge_segment_lists(std::vector<match_lists<T, I>> const& parts, std::size_t rows, match_lists<T, I>& out) {
  out.offsets.assign(rows + 1, 0);
  for (auto const& p : parts) {
    for (std::size_t r = 0; r < rows; ++r) out.offsets[r + 1] += p.offsets[r + 1] - p.offsets[r];
  }
  for (std::size_t r = 0; r < rows; ++r) out.offsets[r + 1] += out.offsets[r];
  out.entries.resize(static_cast<std::size_t>(out.offsets[rows]));
  for (std::size_t r = 0; r < rows; ++r) {
    auto const begin = out.entries.begin() + out.offsets[r];
    auto at = begin;
    for (auto const& p : parts) {
      auto const end = std::copy(p.entries.begin() + p.offsets[r], p.entries.begin() + p.offsets[r + 1], at);
      std::inplace_merge(begin, at, end, ranks_before<T, I>);
      at = end;
    }
  }
}

/// cosine_index::search's adapter for sharded_topk / sharded_matches: scores a batch on
/// each device's shards and appends the merged lists to the result's rows.
template <class Leaf, class T, class I>
struct cosine_search_batches {
  using shard = typename Leaf::template shard<T, I>;
  std::vector<std::vector<shard const*>> const& device_shards;  // per device, by segment
  csr_view<T, I> queries;
  std::span<T const> query_inv;
  std::size_t k;  // 0: unbounded
  bool exclude_self;
  bool queries_non_negative;
  T threshold;
  std::size_t budget;
  std::int64_t total;
  progress_callback const& progress;
  topk_result<T>& result;
  std::unique_ptr<std::atomic<T>[]> bounds[2];  // empty when only one shard scores a batch
  std::size_t bound_rows[2] = {0, 0};

  void prepare(int slot, std::int64_t q0, std::int64_t q1) {
    if (!bounds[slot]) return;
    bound_rows[slot] = static_cast<std::size_t>(q1 - q0);
    for (std::size_t r = 0; r < bound_rows[slot]; ++r) {
      bounds[slot][r].store(-std::numeric_limits<T>::infinity(), std::memory_order_relaxed);
    }
  }

  template <class Context>
  void search(Context& ctx, std::size_t dev, int slot, std::int64_t q0, std::int64_t q1,
              std::span<scored<T, I>> out, std::span<std::int32_t> counts) const {
    std::span<std::atomic<T>> const shared(bounds[slot].get(), bounds[slot] ? bound_rows[slot] : 0);
    auto const& mine = device_shards[dev];
    auto const score = [&](shard const& s, std::span<scored<T, I>> o, std::span<std::int32_t> c) {
      Leaf::template score<T, I>(ctx, queries, query_inv, s, static_cast<I>(q0), static_cast<I>(q1), k, exclude_self,
                                 queries_non_negative, threshold, o, c, budget, shared);
    };
    if (mine.size() == 1) {
      score(*mine[0], out, counts);
      return;
    }
    auto const rows = static_cast<std::size_t>(q1 - q0);
    std::vector<topk_lists<T, I>> parts(mine.size());
    for (std::size_t i = 0; i < mine.size(); ++i) {
      parts[i].out.resize(rows * k);
      parts[i].counts.resize(rows);
      score(*mine[i], parts[i].out, parts[i].counts);
    }
    merge_segment_lists(parts, rows, k, out, counts);
  }

  template <class Context>
  void search_all(Context& ctx, std::size_t dev, int, std::int64_t q0, std::int64_t q1,
                  match_lists<T, I>& lists) const {
    auto const& mine = device_shards[dev];
    auto const score = [&](shard const& s, match_lists<T, I>& l) {
      Leaf::template score_all<T, I>(ctx, queries, query_inv, s, static_cast<I>(q0), static_cast<I>(q1), exclude_self,
                                     queries_non_negative, threshold, l.offsets, l.entries, budget);
    };
    if (mine.size() == 1) {
      score(*mine[0], lists);
      return;
    }
    std::vector<match_lists<T, I>> parts(mine.size());
    for (std::size_t i = 0; i < mine.size(); ++i) score(*mine[i], parts[i]);
    merge_segment_lists(parts, static_cast<std::size_t>(q1 - q0), lists);
  }

  void emit(std::int64_t q0, std::span<scored<T, I> const> merged, std::span<std::int32_t const> counts) {
    for (std::size_t r = 0; r < counts.size(); ++r) {
      auto const q = static_cast<std::size_t>(q0) + r;
      result.row_offsets[q + 1] = result.row_offsets[q] + counts[r];
      for (std::int32_t j = 0; j < counts[r]; ++j) {
        auto const& c = merged[r * k + static_cast<std::size_t>(j)];
        result.ids.push_back(static_cast<std::int64_t>(c.index));
        result.scores.push_back(c.score);
      }
    }
    report_progress(progress, q0 + static_cast<std::int64_t>(counts.size()), total);
  }

  void emit_all(std::int64_t q0, std::span<std::int64_t const> offsets, std::span<scored<T, I> const> entries) {
    auto const rows = offsets.size() - 1;
    for (std::size_t r = 0; r < rows; ++r) {
      auto const q = static_cast<std::size_t>(q0) + r;
      result.row_offsets[q + 1] = result.row_offsets[q] + (offsets[r + 1] - offsets[r]);
    }
    for (auto const& c : entries) {
      result.ids.push_back(static_cast<std::int64_t>(c.index));
      result.scores.push_back(c.score);
    }
    report_progress(progress, q0 + static_cast<std::int64_t>(rows), total);
  }
};

}  // namespace detail

/// An index of sparse rows for exact cosine searches, resident on a policy's devices
/// (see the file comment). T: float or double; I: the rows' index type.
template <class Kind, class T = float, class I = std::int32_t>
class cosine_index {
  using leaf = detail::cosine_leaf<Kind>;
  using shard_type = typename leaf::template shard<T, I>;

 public:
  static_assert(std::is_floating_point_v<T>, "cosine_index: T must be float or double");
  static_assert(std::is_integral_v<I> && std::is_signed_v<I>, "cosine_index: I must be a signed integer");

  /// An empty index of `cols` columns, held on `policy`'s devices; rows come with add().
  /// @throws invalid_argument for cols < 0.
  cosine_index(execution_policy<Kind> policy, I cols) : policy_(std::move(policy)), cols_(cols) {
    static_assert(backend_available<Kind>::value,
                  "cosine_index: this device kind's backend is not compiled in (for gpu, include "
                  "<mgpu/cuda.hpp> in a CUDA translation unit and link mgpu::cuda)");
    MGPU_EXPECTS(cols >= 0, "cosine_index: the column count must be >= 0, got ", static_cast<std::int64_t>(cols));
  }

  /// Indexes the rows of `corpus` (n x d; ids 0 .. n - 1) on `policy`'s devices: one
  /// nnz-balanced shard per device, moved there and built once. The matrix may be
  /// released afterwards. O(nnz log nnz) over the devices.
  /// @throws invalid_argument (NaN/Inf values, naming the position), out_of_memory,
  ///         device errors.
  cosine_index(execution_policy<Kind> policy, csr_view<T, I> corpus) : cosine_index(std::move(policy), corpus.cols) {
    add(corpus);
  }
  cosine_index(execution_policy<Kind> policy, csr_matrix<cpu, T, I> const& corpus)
      : cosine_index(std::move(policy), corpus.view()) {}

  cosine_index(cosine_index&&) noexcept = default;
  cosine_index& operator=(cosine_index&&) noexcept = default;

  /// Appends `rows` (m x d, the index's column count) with ids rows() .. rows() + m - 1,
  /// as one more segment of shards over the devices (the existing shards are not
  /// rebuilt). Results are those of an index built from all rows at once. Each segment
  /// costs every search a pass over its shards: add in large blocks.
  /// @throws dimension_mismatch (columns), invalid_argument (NaN/Inf), index_overflow
  ///         (the ids would exceed I), out_of_memory, device errors; the index is
  ///         unchanged then.
  void add(csr_view<T, I> rows) {
    if (rows.cols != cols_) {
      throw dimension_mismatch(detail::message("cosine_index::add: the index has ", static_cast<std::int64_t>(cols_),
                                               " columns but the rows are ", static_cast<std::int64_t>(rows.rows),
                                               " x ", static_cast<std::int64_t>(rows.cols)));
    }
    detail::require_finite(rows, "cosine_index: corpus");
    add_rows(rows, true);
  }
  void add(csr_matrix<cpu, T, I> const& rows) { add(rows.view()); }

  /// The (up to) k most similar rows of the index for every query row (q x d), best
  /// first; with options.threshold, only scores >= it; with k = 0 (a threshold is then
  /// required), every score >= the threshold. exclude_self (unset: false) skips id i
  /// for query row i. Progress: queries done / q, after each batch.
  /// @returns q rows; result.k = k, result.candidates = rows().
  /// @throws invalid_argument (k < 0, k = 0 without a threshold, a non-finite threshold,
  ///         NaN/Inf in the queries, k = 0 on GPUs), dimension_mismatch (d differs),
  ///         out_of_memory (the budget cannot hold one query's results), device errors.
  /// Complexity: O(Σ_q Σ_{t∈q} |postings(t)| + q·k·log k) work, pruned on non-negative
  /// data; no O(q·n) memory (except k = 0, whose lists are the matches).
  [[nodiscard]] topk_result<T> search(csr_view<T, I> queries, std::int64_t k,
                                      cosine_topk_options const& options = {}) const {
    detail::check_cosine_k(k, options, "cosine_index::search");
    if (queries.cols != cols_) {
      throw dimension_mismatch(detail::message(
          "cosine_index::search: the queries are ", static_cast<std::int64_t>(queries.rows), " x ",
          static_cast<std::int64_t>(queries.cols), " but the index has ", static_cast<std::int64_t>(cols_),
          " columns; the column counts must match"));
    }
    T const threshold = detail::threshold_in<T>(options.threshold, "cosine_index::search");
    detail::require_finite(queries, "cosine_index::search: queries");
    return run_search(queries, k, threshold, options.exclude_self.value_or(false), options);
  }
  [[nodiscard]] topk_result<T> search(csr_matrix<cpu, T, I> const& queries, std::int64_t k,
                                      cosine_topk_options const& options = {}) const {
    return search(queries.view(), k, options);
  }
  /// search with options.threshold = threshold.
  [[nodiscard]] topk_result<T> search(csr_view<T, I> queries, std::int64_t k, double threshold,
                                      cosine_topk_options options = {}) const {
    options.threshold = threshold;
    return search(queries, k, options);
  }
  [[nodiscard]] topk_result<T> search(csr_matrix<cpu, T, I> const& queries, std::int64_t k, double threshold,
                                      cosine_topk_options options = {}) const {
    return search(queries.view(), k, threshold, std::move(options));
  }

  /// Number of rows (the next id add() gives).
  [[nodiscard]] std::int64_t rows() const noexcept { return rows_; }
  [[nodiscard]] I cols() const noexcept { return cols_; }
  [[nodiscard]] std::int64_t nnz() const noexcept { return nnz_; }
  /// Number of segments: 1 after construction from a matrix, one more per add().
  [[nodiscard]] std::size_t segments() const noexcept { return segments_.size(); }
  [[nodiscard]] execution_policy<Kind> const& policy() const noexcept { return policy_; }

  /// Writes the index to `path` (file comment), all or nothing (write_binary_file).
  /// O(nnz). @throws mgpu::error naming the path when it cannot be written; device errors.
  void save(std::filesystem::path const& path) const {
    write_binary_file(path, "cosine_index", file_version, [&](binary_writer& w) { write_sections(w); });
  }

  /// The same bytes to a stream, e.g. a writer of an output_set that commits several
  /// files at once. @throws device errors; a failing stream's own exceptions.
  void save(std::ostream& out) const {
    binary_writer w(out, "cosine_index", file_version);
    write_sections(w);
    w.finish();
  }

  /// Reads an index saved by save() and builds it on `policy`'s devices (any number: the
  /// results do not depend on it). O(nnz log nnz).
  /// @throws mgpu::error when the file cannot be opened; file_format_error naming the
  ///         file (and byte offset) when it is not a cosine_index of version <= 1 with
  ///         elements of types T and I, is truncated or corrupted, or holds rows that are
  ///         not a valid CSR matrix; out_of_memory, device errors.
  [[nodiscard]] static cosine_index load(execution_policy<Kind> policy, std::filesystem::path const& path) {
    binary_reader r(path, "cosine_index", file_version);
    auto const n = r.read_value<std::int64_t>("rows");
    auto const d = r.read_value<std::int64_t>("cols");
    auto const offsets = r.read<std::int64_t>("row_offsets");
    auto const columns = r.read<I>("col_indices");
    auto const values = r.read<T>("values");
    r.finish();
    std::optional<csr_matrix<cpu, T, I>> rows;
    try {
      detail::check_fits_index<I>(n, "rows");
      detail::check_fits_index<I>(d, "cols");
      MGPU_EXPECTS(offsets.size() == static_cast<std::size_t>(n) + 1, "row_offsets has ", offsets.size(),
                   " entries for ", n, " rows");
      std::vector<I> narrow(offsets.size());
      for (std::size_t i = 0; i < offsets.size(); ++i) {
        detail::check_fits_index<I>(offsets[i], "row offsets");
        narrow[i] = static_cast<I>(offsets[i]);
      }
      rows.emplace(static_cast<I>(n), static_cast<I>(d), std::span<I const>(narrow), std::span<I const>(columns),
                   std::span<T const>(values));
      detail::require_finite(rows->view(), "cosine_index: saved rows");
      // The constructor canonicalises; a file written by save() is canonical already.
      MGPU_EXPECTS(static_cast<std::size_t>(rows->nnz()) == columns.size() &&
                       std::equal(columns.begin(), columns.end(), rows->col_indices().begin()),
                   "the columns of a row are not strictly ascending");
    } catch (file_format_error const&) {
      throw;
    } catch (error const& e) {
      throw file_format_error(detail::message("'", path.string(), "': not a valid cosine_index: ", e.what()));
    }
    cosine_index index(std::move(policy), static_cast<I>(d));
    index.add_rows(rows->view(), false);
    return index;
  }

  /// The kind version save() writes and load() reads.
  static constexpr std::uint32_t file_version = 1;

 private:
  void write_sections(binary_writer& w) const {
    std::vector<std::int64_t> offsets{0};
    std::vector<I> columns;
    std::vector<T> values;
    columns.reserve(static_cast<std::size_t>(nnz_));
    values.reserve(static_cast<std::size_t>(nnz_));
    for (auto const& segment : segments_) {
      for (std::size_t dev = 0; dev < segment.shards.size(); ++dev) {
        if (!segment.shards[dev]) continue;
        leaf::template export_rows<T, I>(policy_.devices(), dev, *segment.shards[dev], offsets, columns, values);
      }
    }
    w.write_value<std::int64_t>("rows", rows_);
    w.write_value<std::int64_t>("cols", static_cast<std::int64_t>(cols_));
    w.write("row_offsets", offsets);
    w.write("col_indices", columns);
    w.write("values", values);
  }

  // One add(): a shard per device holding rows [bounds[d], bounds[d + 1]) (global ids).
  struct segment {
    std::vector<std::int64_t> bounds;
    std::vector<std::optional<shard_type>> shards;
  };

  void add_rows(csr_view<T, I> rows, bool normalise) {
    auto const n = static_cast<std::int64_t>(rows.rows);
    detail::check_fits_index<I>(rows_ + n, "cosine_index rows");
    if (n == 0) return;
    auto const n_devices = policy_.device_count();
    auto const local = partition_rows_by_nnz(rows, n_devices);
    bool const non_negative = detail::all_non_negative(rows);
    segment seg;
    seg.bounds.resize(n_devices + 1);
    for (std::size_t d = 0; d <= n_devices; ++d) seg.bounds[d] = rows_ + static_cast<std::int64_t>(local[d]);
    seg.shards.resize(n_devices);
    {
      // Every device's rows are on their way (through the transfer layer) before any
      // device builds its shard.
      auto& set = policy_.devices();
      std::vector<event<Kind>> done(n_devices);
      std::vector<std::optional<typename leaf::template staged<T, I>>> staged(n_devices);
      detail::join_events<Kind> const joined(done);
      for (std::size_t d = 0; d < n_devices; ++d) {
        if (local[d] == local[d + 1]) continue;
        staged[d].emplace(leaf::template stage<T, I>(set, d, rows.row_block(local[d], local[d + 1]), normalise, done[d]));
      }
      for (auto& e : done) e.synchronize();
      auto const budget = policy_.memory_budget();
      detail::fork_join(policy_, [&](auto& ctx, std::size_t d) {
        if (!staged[d]) return;
        seg.shards[d].emplace(leaf::template make_shard<T, I>(ctx, *staged[d], static_cast<I>(seg.bounds[d]),
                                                              non_negative, normalise, budget));
      });
    }
    segments_.push_back(std::move(seg));
    rows_ += n;
    nnz_ += static_cast<std::int64_t>(rows.nnz());
  }

  topk_result<T> run_search(csr_view<T, I> queries, std::int64_t k, T threshold, bool exclude_self,
                            cosine_topk_options const& options) const {
    auto const n_queries = static_cast<std::int64_t>(queries.rows);
    topk_result<T> result;
    result.k = k;
    result.candidates = rows_;
    result.row_offsets.assign(static_cast<std::size_t>(n_queries) + 1, 0);
    // k beyond the rows lists what exists: lists of rows() entries are enough.
    auto const kk = static_cast<std::size_t>(std::min<std::int64_t>(k, std::max<std::int64_t>(rows_, 1)));
    if (n_queries == 0 || rows_ == 0) return result;
    // k = 0: batches as for k = 1 (the lists' lengths are not known in advance).
    auto const batch = detail::cosine_batch_rows<T, I>(options.query_batch, policy_.memory_budget(),
                                                       static_cast<std::int64_t>(std::max<std::size_t>(kk, 1)),
                                                       n_queries);

    auto const query_inv = detail::inverse_row_norms(queries);
    bool const queries_non_negative = detail::all_non_negative(queries);
    auto const n_devices = policy_.device_count();
    std::vector<std::vector<shard_type const*>> device_shards(n_devices);
    std::size_t n_shards = 0;
    for (auto const& seg : segments_) {
      for (std::size_t d = 0; d < n_devices; ++d) {
        if (!seg.shards[d]) continue;
        device_shards[d].push_back(&*seg.shards[d]);
        ++n_shards;
      }
    }
    std::vector<bool> has_shard(n_devices);
    for (std::size_t d = 0; d < n_devices; ++d) has_shard[d] = !device_shards[d].empty();

    detail::cosine_search_batches<leaf, T, I> batches{device_shards, queries, query_inv, kk,
                                                      exclude_self, queries_non_negative, threshold,
                                                      policy_.memory_budget(), n_queries, options.progress,
                                                      result, {}};
    if (kk == 0) {
      detail::sharded_matches<T, I>(policy_, has_shard, n_queries, batch, batches);
      return result;
    }
    // Shards scoring the same batch share each query's best known lower bound of the
    // k-th score (see cosine_topk_shard): exact, and it spares a shard the work that
    // another shard's better candidates make useless. One array per buffer set.
    if (n_shards > 1) {
      for (auto& b : batches.bounds) b = std::make_unique<std::atomic<T>[]>(static_cast<std::size_t>(batch));
    }
    detail::sharded_topk<T, I>(policy_, has_shard, n_queries, batch, kk, batches);
    return result;
  }

  execution_policy<Kind> policy_;
  I cols_ = 0;
  std::int64_t rows_ = 0;
  std::int64_t nnz_ = 0;
  std::vector<segment> segments_;
};

}  // namespace mgpu
