// mgpu/algorithms/knn_index.hpp — an exact k-NN index: the base rows resident on the
// devices of a policy, built once, searched many times; saved and loaded.
//
//   mgpu::knn_index<mgpu::cpu, float> index(policy, train, mgpu::knn_metric::l2);  // ids 0 .. n-1
//   index.add(more);                                // ids continue at n
//   auto neighbours = index.search(queries, 10);    // topk_result<float>
//   index.save("train.knn");
//   auto again = mgpu::knn_index<mgpu::cpu, float>::load(policy, "train.knn");
//
// Search semantics are knn()'s (algorithms/knn.hpp: metrics, ties, what "exact" means,
// fewer than k neighbours when the base is smaller): an index built by one add(base)
// returns bitwise what knn(policy, base, queries, k, metric, options) returns, because
// knn() is such an index, built and searched once.
//
// Shards and add. add(rows) checks the rows, computes each row's metric term (‖b‖² for
// l2, 1/‖b‖ for cosine, 0 for a zero row; in double, rounded to T), splits the rows into
// equal contiguous blocks, one per device, and scatters rows and terms to the devices
// (execution/collectives.hpp: on host devices each block is copied, so first touched, by
// its device's worker; GPUs get it uploaded). Ids continue from size(). Each device thus
// keeps a list of shards, one per add, and the caller's arrays may go once add returns.
// A search runs, per batch of queries, one task per device that searches the device's
// shards in order and merges their lists into one (sorted lists merged by
// detail::ranks_before, exact); the host then merges the devices' lists, as for one shard
// per device (detail::sharded_topk).
// **Choice: appended shards, not re-balancing.** Re-balancing on add would keep one shard
// per device but move rows that are already resident (every device's block boundaries
// shift); appending moves each row onto a device exactly once, and every add is itself
// split evenly, so the devices stay balanced to within a row per add. The cost is one more
// leaf call (a GEMM over that shard) and a k-entry merge per query for each further add:
// build from few large adds. load() restores the adds as they were saved.
//
// Round-off. Which rows share a GEMM call depends on the shard layout, and a BLAS may
// round a dot product differently at another position of its tiles (its edge kernels),
// so an index built by two adds may differ by round-off from one add of the same rows, as
// cpu and cpu:3 may; where dot products are exact in T (small integers) they agree
// bitwise, and a given layout always gives the same bits.
//
// Memory: size() x (d + 1) values of T on the devices (rows and terms), split evenly; a
// search adds O(batch x k x devices) entries on the host (knn_options::query_batch).
//
// Lifetime and threads: the index owns its device memory and holds a copy of the policy
// (so the device set lives as long as the index). It is movable, not copyable. search()
// and save() are const and may run concurrently from several threads (each call has its
// own buffers; a device runs one call's batch at a time); add() must not run concurrently
// with any other call on the same index.
//
// File (save / load): mgpu's binary container (io/binary_file.hpp), kind "knn_index",
// version 1, these sections in this order:
//   value_type  text   "float32" or "float64" (T)
//   metric      text   "l2", "inner_product" or "cosine"
//   dim         int64  1 value: d, the width of every row
//   parts       int64  P values: the row count of each add(), in order (their sum is size())
//   rows        T      P sections, one per add in order: that add's rows, row-major,
//                      parts[p] x d values, ids ascending
// Row terms are not stored: load() recomputes them from the rows by the same operations,
// so a loaded index on a policy with as many devices searches bitwise like the saved one.
// The options (batches, tiles, progress) are not stored; load() takes them.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "mgpu/algorithms/detail/knn_leaf.hpp"
#include "mgpu/algorithms/detail/sharded_topk.hpp"
#include "mgpu/algorithms/topk_result.hpp"
#include "mgpu/backend/cpu/knn.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/core/progress.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/dense/distributed_dense.hpp"
#include "mgpu/detail/topk_heap.hpp"
#include "mgpu/execution/collectives.hpp"
#include "mgpu/execution/fork_join.hpp"
#include "mgpu/execution/policy.hpp"
#include "mgpu/io/binary_file.hpp"

namespace mgpu {

/// The dissimilarity or similarity k-NN ranks by (algorithms/knn.hpp).
enum class knn_metric { l2, inner_product, cosine };

namespace detail {

/// The value reported for a score: the distance for l2, the score itself otherwise.
template <class T>
constexpr T knn_reported(knn_metric metric, T score) noexcept {
  return metric == knn_metric::l2 ? T{0} - score : score;
}

/// Per-row term of the metric: ‖x‖² (l2), 1/‖x‖ or 0 for a zero row (cosine), unused
/// (inner product). ‖x‖² summed in double (backend::cpu::squared_norm), rounded to T.
template <class T>
std::vector<T> knn_row_terms(dense_view<T const> a, knn_metric metric) {
  std::vector<T> out(static_cast<std::size_t>(a.rows), T{0});
  if (metric == knn_metric::inner_product) return out;
  std::vector<double> norms(out.size());
  backend::cpu::row_squared_norms(a, std::span<double>(norms));
  for (std::size_t r = 0; r < out.size(); ++r) {
    out[r] = metric == knn_metric::l2 ? static_cast<T>(norms[r])
             : norms[r] > 0          ? static_cast<T>(1.0 / std::sqrt(norms[r]))
                                     : T{0};
  }
  return out;
}

/// @throws invalid_argument naming the matrix, row and column of the first NaN or Inf.
template <class T>
void knn_require_finite(dense_view<T const> a, std::string_view name) {
  auto const bad = backend::cpu::first_non_finite_row(a);
  if (bad == a.rows) return;
  auto const row = a.row(bad);
  auto const col = std::find_if(row.begin(), row.end(), [](T v) { return !std::isfinite(v); }) - row.begin();
  throw invalid_argument(message(name, " has a non-finite value (", row[static_cast<std::size_t>(col)],
                                 ") at row ", bad, ", column ", col, "; k-NN needs finite values"));
}

/// @throws invalid_argument unless `a` is a well-formed view.
template <class T>
void knn_require_shape(dense_view<T const> a, std::string_view name) {
  MGPU_EXPECTS(a.rows >= 0 && a.cols >= 0 && a.ld >= a.cols && (a.data != nullptr || a.rows == 0 || a.cols == 0),
               name, " is not a valid matrix view (", a.rows, " x ", a.cols, ", ld ", a.ld, ")");
}

/// The checks of a search of `queries` for k neighbours among `size` rows of width
/// `dim` (`what` names the call in messages).
/// @throws invalid_argument (k < 1, a malformed view, NaN/Inf), dimension_mismatch,
///         index_overflow (queries x k too large).
template <class T>
void knn_require_search(std::string_view what, std::int64_t size, std::int64_t dim, dense_view<T const> queries,
                        std::int64_t k) {
  MGPU_EXPECTS(k >= 1, what, ": k must be at least 1, got ", k);
  knn_require_shape(queries, message(what, ": the queries"));
  if (queries.cols != dim) {
    throw dimension_mismatch(message(what, ": the base is ", size, " x ", dim, " but the queries are ", queries.rows,
                                     " x ", queries.cols, "; the column counts must match"));
  }
  if (k > std::numeric_limits<std::int64_t>::max() / std::max<std::int64_t>(queries.rows, 1) ||
      k > std::numeric_limits<std::int32_t>::max()) {
    throw index_overflow(message(what, ": ", queries.rows, " queries x k = ", k, " results do not fit the index type"));
  }
  knn_require_finite(queries, message(what, ": the queries"));
}

/// Queries per batch: the option, or as many as the budget holds (capped at 16384).
inline std::int64_t knn_batch_rows(std::int64_t requested, std::size_t budget, std::size_t per_query,
                                   std::int64_t queries) {
  std::int64_t batch = requested > 0 ? requested : 16384;
  if (budget > 0 && requested <= 0) {
    auto const fit = static_cast<std::int64_t>(budget / per_query);
    if (fit < 1) throw out_of_memory(per_query, budget, "knn: one query's results");
    batch = std::min(batch, fit);
  }
  return std::max<std::int64_t>(1, std::min(batch, std::max<std::int64_t>(queries, 1)));
}

/// Host devices: the fused GEMM + selection kernel of backend/cpu/knn.hpp.
template <>
struct knn_leaf<cpu> {
  template <class T>
  using shard = backend::cpu::knn_shard<T>;

  static constexpr bool host_memory = true;

  template <class T>
  static shard<T> make_shard(device_context<cpu>&, dense_view<T const> rows, dense_view<T const> terms,
                             std::int64_t first, std::size_t) {
    return {first, rows, std::span<T const>(terms.data, static_cast<std::size_t>(terms.rows))};
  }

  template <class T, class Score>
  static void search(device_context<cpu>&, shard<T> const& s, dense_view<T const> queries,
                     std::span<T const> query_terms, Score const& score, std::size_t k,
                     knn_options const& options, std::span<scored<T, std::int64_t>> out,
                     std::span<std::int32_t> counts, std::size_t) {
    backend::cpu::knn_search<T, std::int64_t>(s, queries, query_terms, score, k,
                                              {options.query_block, options.base_block}, out, counts);
  }
};

static_assert(knn_leaf_for<knn_leaf<cpu>, float> && knn_leaf_for<knn_leaf<cpu>, double>);

/// Merges list `b` (nb entries) into list `a` (na entries, room for k), both best first
/// by ranks_before: `a` becomes the best min(k, na + nb) of the two, best first; returns
/// that count. `scratch` holds at least na entries. O(k).
template <class T, class I>
std::int32_t knn_merge_into(scored<T, I>* a, std::int32_t na, scored<T, I> const* b, std::int32_t nb,
                            std::size_t k, scored<T, I>* scratch) noexcept {
  std::copy(a, a + na, scratch);
  std::int32_t i = 0, j = 0;
  std::size_t o = 0;
  while (o < k && (i < na || j < nb)) {
    bool const take_a = j == nb || (i < na && ranks_before(scratch[i], b[j]));
    a[o++] = take_a ? scratch[i++] : b[j++];
  }
  return static_cast<std::int32_t>(o);
}

/// The index's adapter for sharded_topk: device dev searches its shards (one per add, in
/// order) and merges their lists; emit writes the merged lists into the result's rows
/// and reports progress.
template <class Leaf, class T, class Score>
struct knn_batches {
  using shard = typename Leaf::template shard<T>;
  using entry = scored<T, std::int64_t>;
  std::vector<std::vector<shard const*>> const& shards;  // per device, in add order
  dense_view<T const> queries;
  std::span<T const> query_terms;
  Score const& score;
  std::size_t k;
  knn_options const& options;
  std::size_t budget;
  knn_metric metric;
  topk_result<T>& result;
  // Per buffer set and device: a later shard's lists, and the merge's scratch. A device's
  // task only touches its own entry of its own set.
  std::array<std::vector<topk_lists<T, std::int64_t>>, 2> later{};
  std::array<std::vector<std::vector<entry>>, 2> scratch{};

  void prepare(int, std::int64_t, std::int64_t) const noexcept {}

  template <class Context>
  void search(Context& ctx, std::size_t dev, int slot, std::int64_t q0, std::int64_t q1, std::span<entry> out,
              std::span<std::int32_t> counts) {
    auto const rows = static_cast<std::size_t>(q1 - q0);
    dense_view<T const> const block{q1 - q0, queries.cols, queries.ld, queries.data + q0 * queries.ld};
    auto const terms = query_terms.subspan(static_cast<std::size_t>(q0), rows);
    auto const& mine = shards[dev];
    Leaf::template search<T>(ctx, *mine.front(), block, terms, score, k, options, out, counts, budget);
    if (mine.size() == 1) return;
    auto& lists = later[static_cast<std::size_t>(slot)][dev];
    auto& tmp = scratch[static_cast<std::size_t>(slot)][dev];
    lists.out.resize(rows * k);
    lists.counts.resize(rows);
    tmp.resize(k);
    for (std::size_t s = 1; s < mine.size(); ++s) {
      Leaf::template search<T>(ctx, *mine[s], block, terms, score, k, options, std::span<entry>(lists.out),
                               std::span<std::int32_t>(lists.counts), budget);
      for (std::size_t r = 0; r < rows; ++r) {
        counts[r] = knn_merge_into(out.data() + r * k, counts[r], lists.out.data() + r * k, lists.counts[r], k,
                                   tmp.data());
      }
    }
  }

  void emit(std::int64_t q0, std::span<entry const> merged, std::span<std::int32_t const> counts) const {
    // Every row holds k entries (k <= base rows), so row q's pairs start at q * k. A copy
    // of batch x k entries, next to a batch's q n d flops on the devices: one thread.
    auto const rows = counts.size();
    for (std::size_t r = 0; r < rows; ++r) {
      auto const row = (static_cast<std::size_t>(q0) + r) * k;
      for (std::size_t j = 0; j < static_cast<std::size_t>(counts[r]); ++j) {
        result.scores[row + j] = knn_reported(metric, merged[r * k + j].score);
        result.ids[row + j] = merged[r * k + j].index;
      }
    }
    report_progress(options.progress, q0 + static_cast<std::int64_t>(rows), queries.rows);
  }
};

template <class M, class T>
concept knn_host_operand = requires(M const& m) {
  { const_view(m) } -> std::same_as<dense_view<T const, cpu>>;
};

inline char const* knn_metric_name(knn_metric metric) noexcept {
  switch (metric) {
    case knn_metric::l2: return "l2";
    case knn_metric::inner_product: return "inner_product";
    case knn_metric::cosine: return "cosine";
  }
  return "?";
}

template <class T>
constexpr char const* knn_value_type_name() noexcept {
  return std::is_same_v<T, float> ? "float32" : "float64";
}

struct knn_index_access;

}  // namespace detail

/// An exact k-NN index over dense rows of width dim() on a policy's devices (see the
/// file comment: shards, add, round-off, threads, file format). T is float or double.
template <class Kind, class T>
class knn_index {
  static_assert(backend_available<Kind>::value,
                "knn_index: this device kind's backend is not compiled in (for gpu, include "
                "<mgpu/cuda.hpp> and <mgpu/backend/cuda/knn.hpp> and link mgpu::cuda)");
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "knn_index: float or double values");
  using leaf = detail::knn_leaf<Kind>;
  using shard = typename leaf::template shard<T>;

 public:
  using kind = Kind;
  using value_type = T;

  /// An empty index of rows of width `dim` (>= 0), on `policy`'s devices, ranking by
  /// `metric`; `options` apply to every search. O(1); nothing is allocated on the devices.
  /// @throws invalid_argument (dim < 0).
  knn_index(execution_policy<Kind> policy, std::int64_t dim, knn_metric metric = knn_metric::l2,
            knn_options options = {})
      : policy_(std::move(policy)), dim_(dim), metric_(metric), options_(std::move(options)) {
    MGPU_EXPECTS(dim >= 0, "knn_index: the dimension must be at least 0, got ", dim);
  }

  /// An index of `base`'s rows (ids 0 .. n - 1): the constructor above with
  /// dim = base.cols, then add(base); the same costs and exceptions.
  template <class B>
    requires detail::knn_host_operand<B, T>
  knn_index(execution_policy<Kind> policy, B const& base, knn_metric metric = knn_metric::l2,
            knn_options options = {})
      : knn_index(std::move(policy), const_view(base).cols, metric, std::move(options)) {
    add(base);
  }

  knn_index(knn_index&&) noexcept = default;
  knn_index& operator=(knn_index&&) noexcept = default;
  knn_index(knn_index const&) = delete;
  knn_index& operator=(knn_index const&) = delete;

  /// Appends `rows` (r x dim() host rows: dense_matrix<cpu, T>, dense_view<T> or
  /// dense_view<T const>) with ids size() .. size() + r - 1: their metric terms are
  /// computed on the host and rows and terms scattered in equal blocks to the devices,
  /// where they stay (file comment). The caller's array may be released once add
  /// returns. r = 0 is allowed (the index becomes searchable). All or nothing: on an
  /// exception the index is unchanged.
  /// Cost: O(r d) host work, r (d + 1) sizeof(T) bytes moved (set.transfers()).
  /// @throws dimension_mismatch (width != dim()), invalid_argument (NaN/Inf, with its row
  ///         and column in `rows`; a malformed view), out_of_memory, device errors.
  template <class B>
    requires detail::knn_host_operand<B, T>
  void add(B const& rows) {
    append(const_view(rows), false, "knn_index::add");
  }

  /// For each query row, its min(k, size()) nearest rows of the index, best first: the
  /// same result (bitwise) as knn(policy(), all rows added, queries, k, metric(),
  /// options()) when the rows were added at once (file comment). `queries`: q x dim()
  /// host rows, any of add's operand forms. Reports progress (queries done, q) through
  /// options().progress after each batch.
  /// Complexity: O(q size() d) flops, as GEMM; host memory O(q k + devices x batch x k).
  /// @throws invalid_argument (search before any add; k < 1; NaN/Inf; a malformed view),
  ///         dimension_mismatch (width != dim()), index_overflow (q x k too large),
  ///         out_of_memory (the memory budget cannot hold one query's results), device
  ///         errors, and whatever the progress callback throws.
  template <class Q>
    requires detail::knn_host_operand<Q, T>
  [[nodiscard]] topk_result<T> search(Q const& queries, std::int64_t k) const {
    MGPU_EXPECTS(added_, "knn_index::search: search before add (the index has no rows; add rows first)");
    auto const q = const_view(queries);
    detail::knn_require_search(name_, size_, dim_, q, k);
    return run_search(q, k);
  }

  /// Writes the index to `path` in the format of the file comment, all or nothing (a
  /// temporary renamed over `path` when complete). Each add's rows are gathered to the
  /// host in turn (counted by set.transfers()). O(size() d) time, O(largest add) host memory.
  /// @throws mgpu::error naming the path when it cannot be written; device errors.
  void save(std::filesystem::path const& path) const {
    std::vector<std::int64_t> part_rows;
    for (auto const& p : parts_) part_rows.push_back(p.rows);
    write_binary_file(path, "knn_index", 1, [&](binary_writer& w) {
      w.write_text("value_type", detail::knn_value_type_name<T>());
      w.write_text("metric", detail::knn_metric_name(metric_));
      w.write_value<std::int64_t>("dim", dim_);
      w.write("parts", part_rows);
      for (auto const& p : parts_) {
        dense_matrix<cpu, T> host(p.rows, dim_);
        if (p.data) {
          gather(*p.data, host.view());
        } else {
          detail::copy_rows(host.data(), dim_, p.borrowed.data, p.borrowed.ld, p.rows, dim_);
        }
        w.write("rows", std::span<T const>(host.data(), static_cast<std::size_t>(p.rows * dim_)));
      }
    });
  }

  /// Reads an index written by save() onto `policy`'s devices, re-adding its adds in
  /// order (so its layout is the saved one's on a policy with as many devices).
  /// O(size() d) time; host memory O(size() d) while reading (the file is checked to the
  /// end before anything is built).
  /// @throws mgpu::error (cannot open), file_format_error naming the file (truncated,
  ///         corrupted, another kind, a newer version, another value type, inconsistent
  ///         sizes, NaN/Inf rows), out_of_memory, device errors.
  [[nodiscard]] static knn_index load(execution_policy<Kind> policy, std::filesystem::path const& path,
                                      knn_options options = {}) {
    binary_reader r(path, "knn_index", 1);
    auto const fail = [&](auto const&... what) {
      throw file_format_error(detail::message("'", path.string(), "': ", what...));
    };
    auto const value_type = r.read_text("value_type");
    if (value_type != detail::knn_value_type_name<T>()) {
      fail("holds a knn_index of ", value_type, " values, not ", detail::knn_value_type_name<T>());
    }
    auto const metric_name = r.read_text("metric");
    std::optional<knn_metric> metric;
    for (auto m : {knn_metric::l2, knn_metric::inner_product, knn_metric::cosine}) {
      if (metric_name == detail::knn_metric_name(m)) metric = m;
    }
    if (!metric) fail("unknown metric '", metric_name, "'");
    auto const dim = r.read_value<std::int64_t>("dim");
    if (dim < 0) fail("negative dimension ", dim);
    auto const part_rows = r.read<std::int64_t>("parts");
    std::vector<std::vector<T>> rows(part_rows.size());
    for (std::size_t p = 0; p < part_rows.size(); ++p) {
      rows[p] = r.read<T>("rows");
      auto const n = part_rows[p];
      auto const values = static_cast<std::int64_t>(rows[p].size());
      bool const consistent = n >= 0 && (dim == 0 ? values == 0 : values % dim == 0 && values / dim == n);
      if (!consistent) fail("part ", p, " claims ", n, " rows of ", dim, " values but holds ", values, " values");
    }
    r.finish();
    knn_index index(std::move(policy), dim, *metric, std::move(options));
    for (std::size_t p = 0; p < rows.size(); ++p) {
      dense_view<T const> const v{part_rows[p], dim, dim, rows[p].data()};
      if (auto const bad = backend::cpu::first_non_finite_row(v); bad != v.rows) {
        fail("part ", p, " row ", bad, " holds a non-finite value");
      }
      index.add(v);
      std::vector<T>().swap(rows[p]);
    }
    return index;
  }

  /// Number of rows added (the ids are 0 .. size() - 1).
  [[nodiscard]] std::int64_t size() const noexcept { return size_; }
  /// The width of every row.
  [[nodiscard]] std::int64_t dim() const noexcept { return dim_; }
  [[nodiscard]] knn_metric metric() const noexcept { return metric_; }
  [[nodiscard]] execution_policy<Kind> const& policy() const noexcept { return policy_; }
  [[nodiscard]] knn_options const& options() const noexcept { return options_; }

 private:
  friend struct detail::knn_index_access;

  // The rows of one add: resident copies of the rows and terms (row blocks over the
  // devices), or, for knn()'s one-shot index on host memory, a view of the caller's rows
  // and the terms on the host; and each device's shard of them.
  struct part {
    std::int64_t first = 0;
    std::int64_t rows = 0;
    std::optional<distributed_dense<Kind, T>> data;
    std::optional<distributed_dense<Kind, T>> terms;
    dense_view<T const> borrowed{};
    std::vector<T> host_terms;
    std::vector<std::optional<shard>> shards;
  };

  // add(), or with `borrow` (knn() on a leaf reading host memory) a view of the caller's
  // rows, which must then outlive the index.
  void append(dense_view<T const> rows, bool borrow, std::string_view what) {
    detail::knn_require_shape(rows, detail::message(what, ": the base"));
    if (rows.cols != dim_) {
      throw dimension_mismatch(detail::message(what, ": the index holds rows of ", dim_, " values but the rows added are ",
                                               rows.rows, " x ", rows.cols));
    }
    detail::knn_require_finite(rows, detail::message(what, ": the base"));
    part p;
    p.first = size_;
    p.rows = rows.rows;
    auto terms = detail::knn_row_terms(rows, metric_);
    auto const bounds = detail::equal_row_bounds(rows.rows, policy_.device_count());
    auto const budget = policy_.memory_budget();
    if constexpr (leaf::host_memory) {
      if (borrow) {
        p.borrowed = rows;
        p.host_terms = std::move(terms);
        p.shards = detail::make_shards<shard>(
            policy_, std::span<std::int64_t const>(bounds), [&](auto& ctx, std::int64_t first, std::int64_t last) {
              dense_view<T const, Kind> const block{last - first, rows.cols, rows.ld, rows.data + first * rows.ld};
              dense_view<T const, Kind> const block_terms{last - first, 1, 1, p.host_terms.data() + first};
              return leaf::template make_shard<T>(ctx, block, block_terms, p.first + first, budget);
            });
        commit(std::move(p));
        return;
      }
    }
    p.data.emplace(distributed_dense<Kind, T>::row_blocks(policy_, rows.rows, dim_, bounds));
    p.terms.emplace(distributed_dense<Kind, T>::row_blocks(policy_, rows.rows, 1, bounds));
    scatter(rows, *p.data);
    scatter(dense_view<T const>{rows.rows, 1, 1, terms.data()}, *p.terms);
    auto const& data = *p.data;
    auto const& resident_terms = *p.terms;
    p.shards = detail::make_shards<shard>(
        policy_, std::span<std::int64_t const>(bounds), [&](auto& ctx, std::int64_t first, std::int64_t) {
          return leaf::template make_shard<T>(ctx, data.view(ctx.index), resident_terms.view(ctx.index), p.first + first,
                                              budget);
        });
    commit(std::move(p));
  }

  void commit(part&& p) {
    size_ += p.rows;
    parts_.push_back(std::move(p));
    added_ = true;
  }

  // search() after its checks.
  topk_result<T> run_search(dense_view<T const> queries, std::int64_t k) const {
    topk_result<T> result;
    result.k = k;
    result.candidates = size_;
    result.larger_is_better = metric_ != knn_metric::l2;
    auto const kk = static_cast<std::size_t>(std::min(k, size_));
    result.row_offsets.resize(static_cast<std::size_t>(queries.rows) + 1);
    for (std::size_t q = 0; q < result.row_offsets.size(); ++q) {
      result.row_offsets[q] = static_cast<std::int64_t>(q * kk);
    }
    result.ids.resize(static_cast<std::size_t>(queries.rows) * kk);
    result.scores.resize(static_cast<std::size_t>(queries.rows) * kk);
    if (queries.rows == 0) return result;
    if (size_ == 0) {
      report_progress(options_.progress, queries.rows, queries.rows);
      return result;
    }
    switch (metric_) {
      case knn_metric::l2:
        run(queries, kk, detail::knn_l2_score<T>{}, result);
        break;
      case knn_metric::inner_product:
        run(queries, kk, detail::knn_ip_score<T>{}, result);
        break;
      case knn_metric::cosine:
        run(queries, kk, detail::knn_cosine_score<T>{}, result);
        break;
    }
    return result;
  }

  template <class Score>
  void run(dense_view<T const> queries, std::size_t k, Score const& score, topk_result<T>& result) const {
    using entry = detail::scored<T, std::int64_t>;
    std::size_t const n_devices = policy_.device_count();
    std::vector<std::vector<shard const*>> by_device(n_devices);
    for (auto const& p : parts_) {
      for (std::size_t d = 0; d < n_devices; ++d) {
        if (p.shards[d]) by_device[d].push_back(&*p.shards[d]);
      }
    }
    std::vector<bool> has_shard(n_devices);
    std::size_t active = 0;
    bool several = false;
    for (std::size_t d = 0; d < n_devices; ++d) {
      has_shard[d] = !by_device[d].empty();
      active += has_shard[d] ? 1 : 0;
      several = several || by_device[d].size() > 1;
    }
    auto const query_terms = detail::knn_row_terms(queries, metric_);
    // Two sets of device lists (double buffering), a later shard's lists per set where a
    // device holds several, and the merged batch.
    std::size_t const device_lists = several ? 4 : 2;
    auto const batch = detail::knn_batch_rows(options_.query_batch, policy_.memory_budget(),
                                              k * (device_lists * sizeof(entry) * active + sizeof(entry)) + 8 * active,
                                              queries.rows);
    detail::knn_batches<leaf, T, Score> batches{by_device, queries, std::span<T const>(query_terms), score, k,
                                                options_, policy_.memory_budget(), metric_, result};
    for (auto& set : batches.later) set.resize(n_devices);
    for (auto& set : batches.scratch) set.resize(n_devices);
    detail::sharded_topk<T, std::int64_t>(policy_, has_shard, queries.rows, batch, k, batches);
  }

  execution_policy<Kind> policy_;
  std::int64_t dim_ = 0;
  knn_metric metric_ = knn_metric::l2;
  knn_options options_;
  std::string_view name_ = "knn_index::search";
  std::int64_t size_ = 0;
  bool added_ = false;
  std::vector<part> parts_;
};

namespace detail {

/// knn()'s use of the index (algorithms/knn.hpp): checks everything before any work,
/// views the caller's base in place where the devices read host memory (a one-shot
/// search reads each row once, so a copy would only add traffic, as with spmv()), and
/// names the call "knn" in messages.
struct knn_index_access {
  template <class Kind, class T>
  static topk_result<T> search_once(execution_policy<Kind> const& policy, dense_view<T const> base,
                                    dense_view<T const> queries, std::int64_t k, knn_metric metric,
                                    knn_options const& options) {
    knn_require_shape(base, "knn: the base");
    knn_index<Kind, T> index(policy, base.cols, metric, options);
    index.name_ = "knn";
    knn_require_search(index.name_, base.rows, base.cols, queries, k);
    index.append(base, true, "knn");
    return index.run_search(queries, k);
  }
};

}  // namespace detail
}  // namespace mgpu
