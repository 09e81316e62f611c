// mgpu/algorithms/tfidf.hpp — TF-IDF features of a text corpus, with scikit-learn's
// semantics.
//
// `tfidf_vectorizer` reproduces `sklearn.feature_extraction.text.TfidfVectorizer`
// (scikit-learn 1.2) for every option in `tfidf_options`: with the defaults, the same
// vocabulary in the same order and the same values (computed in double, stored as T)
// as `TfidfVectorizer().fit_transform(corpus)` on any UTF-8 corpus. The pipeline:
//
//   analyzer   doc.lower() on the whole document (Python's full Unicode lowercase:
//              İ -> "i̇", final sigma), then the tokens of `(?u)\b\w\w+\b`, then word
//              n-grams joined by one space (detail/tokenizer.hpp, text_unicode.hpp)
//   counting   CountVectorizer: vocabulary sorted by term (code point = UTF-8 byte
//              order); `binary` sets counts to 1; terms with df > max_df or df < min_df
//              are dropped, then `max_features` keeps the terms of largest total count
//   weighting  TfidfTransformer: tf (1 + ln tf if sublinear_tf) * idf, with
//              idf = ln((1 + n) / (1 + df)) + 1 (smooth_idf) or ln(n / df) + 1;
//              then each row is scaled to unit L2 or L1 norm. All-zero rows stay zero.
//
// Divergences from scikit-learn, on purpose:
//   - Where sklearn raises "empty vocabulary" or "After pruning, no terms remain", the
//     result is an n_docs x 0 matrix and an empty vocabulary (RELIABILITY.md row 9).
//   - max_features ranks terms with sklearn's `argsort`, which is not stable: between
//     terms tied at the cut-off sklearn's choice is unspecified, ours is the term that
//     sorts first.
//   - Unicode tables are utf8proc 2.8's (Unicode 15.0); Python 3.11 uses Unicode 14.0,
//     so code points new in Unicode 15.0 are word characters here only.
//   - Invalid UTF-8 raises invalid_argument (sklearn's default decode_error='strict'
//     raises UnicodeDecodeError on such bytes).
//
// Parallelism: tokenising and counting use all OpenMP threads of the calling thread
// (documents are processed in batches; every thread interns terms into one shared
// dictionary, detail/text_term_table.hpp). Assembling the rows (sorted by column) uses
// them too, and fit_transform / transform weight and normalise each row there as it is
// written. tfidf_weight, and fit_transform / transform on a device backend's policy,
// weight on the policy's devices through detail::fork_join, over row blocks balanced
// by nnz. Results do not depend on the number of threads or devices.
//
// Thread safety: const member functions (transform, weight, accessors) may run
// concurrently; fit, fit_transform and count need exclusive access. A failed fit
// leaves the vectorizer as it was.
//
// Progress (tfidf_options::progress): called on the calling thread after each batch of
// documents is counted, with (documents counted so far, total). The total is the
// corpus's size when it is a sized range; otherwise (a single-pass range, a batch source)
// it is not known while counting and is given as -1, and one last call reports
// (documents, documents) at the end. Nothing is reported for an empty corpus.
//
// File (save / load): mgpu's binary container (io/binary_file.hpp), kind
// "tfidf_vectorizer", version 1; sections in this order:
//   lowercase, use_idf, smooth_idf, sublinear_tf, binary   uint8 [1] each, 0 or 1
//   norm                uint8 [1]     0 l2, 1 l1, 2 none
//   ngram_range         int32 [2]     min, max
//   min_df_kind         uint8 [1]     0: a document count, 1: a proportion
//   min_df              float64 [1]   the count (an integer) or the proportion
//   max_df_kind, max_df               the same for max_df
//   max_features        int64 [1]     0: none
//   vocabulary          text [bytes]  the n terms in column order, end to end (UTF-8)
//   vocabulary_offsets  uint64 [n + 1]  term i is bytes [offsets[i], offsets[i + 1])
//   document_frequency  uint64 [n]    documents of the fitted corpus holding each term
//   idf                 float64 [n]   (0 values when use_idf is 0)
// A loaded vectorizer's transform gives bitwise the matrix the saved one's gives.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <new>
#include <numeric>
#include <optional>
#include <ostream>
#include <ranges>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <omp.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "mgpu/algorithms/detail/weighting_leaf.hpp"
#include "mgpu/algorithms/term_list.hpp"
#include "mgpu/core/buffer.hpp"
#include "mgpu/core/device.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/core/progress.hpp"
#include "mgpu/detail/large_pages.hpp"
#include "mgpu/detail/text_term_table.hpp"
#include "mgpu/detail/tokenizer.hpp"
#include "mgpu/execution/fork_join.hpp"
#include "mgpu/execution/policy.hpp"
#include "mgpu/io/binary_file.hpp"
#include "mgpu/sparse/csr_matrix.hpp"
#include "mgpu/sparse/csr_view.hpp"
#include "mgpu/sparse/partition.hpp"

namespace mgpu {

/// Row normalisation after weighting (sklearn's `norm`: 'l2', 'l1' or None).
enum class tfidf_norm { l2, l1, none };

/// A document-frequency bound as sklearn takes it: an integer is an absolute number of
/// documents (>= 1), a double a proportion of the corpus in [0, 1]. `opts.min_df = 2`
/// selects the integer, `opts.max_df = 0.5` the proportion.
using df_bound = std::variant<std::int64_t, double>;

/// The options of sklearn's TfidfVectorizer that apply to the default word analyzer;
/// the defaults are sklearn's.
struct tfidf_options {
  bool lowercase = true;
  tfidf_norm norm = tfidf_norm::l2;
  bool use_idf = true;
  bool smooth_idf = true;
  /// Replace tf by 1 + ln(tf).
  bool sublinear_tf = false;
  /// Counts become 1 before weighting (and before max_features ranks the terms).
  bool binary = false;
  /// Terms in fewer documents are dropped.
  df_bound min_df = std::int64_t{1};
  /// Terms in more documents are dropped.
  df_bound max_df = 1.0;
  /// Keep at most this many terms (>= 1): those with the largest total count.
  std::optional<std::int64_t> max_features;
  /// Word n-grams with min <= n <= max (1 <= min <= max), joined by one space.
  std::pair<int, int> ngram_range{1, 1};
  /// Documents counted / total, after each batch (see the file comment); not saved.
  progress_callback progress{};
};

/// A corpus fed in batches, e.g. read from disk: called with an empty vector, appends
/// the next documents (UTF-8) and returns true, or returns false once the corpus is
/// exhausted (documents appended in that last call are still used). Batches may have
/// any size; each one is tokenised in parallel.
using tfidf_batch_source = std::function<bool(std::vector<std::string>&)>;

/// What the vectorizer accepts as a corpus: an input range (single pass suffices:
/// generators, istream-based views) whose elements convert to std::string_view, or a
/// tfidf_batch_source. Forward ranges of lvalues or string_views are read in place;
/// other ranges are copied batch by batch, so their elements may be temporaries.
template <class C>
concept text_corpus =
    (std::ranges::input_range<C> &&
     std::convertible_to<std::ranges::range_reference_t<C>, std::string_view>) ||
    std::convertible_to<C, tfidf_batch_source>;

namespace detail {

inline void validate_tfidf_options(tfidf_options const& o) {
  auto check_df = [](df_bound const& b, char const* name) {
    if (auto const* count = std::get_if<std::int64_t>(&b)) {
      MGPU_EXPECTS(*count >= 1, "tfidf_options::", name,
                   " as a document count must be >= 1, got ", *count);
    } else {
      double const p = std::get<double>(b);
      MGPU_EXPECTS(p >= 0.0 && p <= 1.0, "tfidf_options::", name,
                   " as a proportion must be in [0, 1], got ", p);
    }
  };
  check_df(o.min_df, "min_df");
  check_df(o.max_df, "max_df");
  MGPU_EXPECTS(!o.max_features || *o.max_features >= 1,
               "tfidf_options::max_features must be >= 1, got ", o.max_features.value_or(0));
  MGPU_EXPECTS(o.ngram_range.first >= 1 && o.ngram_range.first <= o.ngram_range.second,
               "tfidf_options::ngram_range must satisfy 1 <= min <= max, got (",
               o.ngram_range.first, ", ", o.ngram_range.second, ")");
}

/// Documents per batch and bytes per batch: enough work to keep every thread busy,
/// little enough that a streamed corpus never sits in memory whole. Documents read in
/// place are in memory already: their batches hold up to in_place_batch_documents
/// (each batch ends with threads waiting for the last long document).
inline constexpr std::size_t batch_documents = 1 << 16;
inline constexpr std::size_t in_place_batch_documents = 1 << 22;
inline constexpr std::size_t batch_bytes = std::size_t{32} << 20;

/// Calls f(std::span<std::string_view const>) for consecutive batches of the corpus.
template <class C, class F>
void for_each_batch(C&& corpus, F&& f) {
  std::vector<std::string_view> views;
  if constexpr (std::ranges::input_range<C>) {
    using ref = std::ranges::range_reference_t<C>;
    constexpr bool in_place =
        std::ranges::forward_range<C> &&
        (std::is_lvalue_reference_v<ref> || std::same_as<std::remove_cvref_t<ref>, std::string_view>);
    std::string arena;
    std::vector<std::size_t> ends;
    std::size_t bytes = 0;
    auto flush = [&] {
      if constexpr (!in_place) {
        views.clear();
        std::size_t begin = 0;
        for (std::size_t e : ends) {
          views.emplace_back(arena.data() + begin, e - begin);
          begin = e;
        }
        ends.clear();
        f(std::span<std::string_view const>(views));
        arena.clear();
      } else {
        f(std::span<std::string_view const>(views));
        views.clear();
      }
      bytes = 0;
    };
    for (auto&& element : corpus) {
      std::string_view const doc(element);
      if constexpr (in_place) {
        views.push_back(doc);
      } else {
        arena.append(doc);
        ends.push_back(arena.size());
      }
      bytes += doc.size();
      if (bytes >= batch_bytes ||
          views.size() + ends.size() >= (in_place ? in_place_batch_documents : batch_documents)) {
        flush();
      }
    }
    if (!views.empty() || !ends.empty()) flush();
  } else {
    tfidf_batch_source source(std::forward<C>(corpus));
    std::vector<std::string> batch;
    bool more = true;
    while (more) {
      batch.clear();
      more = source(batch);
      views.assign(batch.begin(), batch.end());
      if (!views.empty()) f(std::span<std::string_view const>(views));
    }
  }
}

/// The first 8 bytes of `term` (zero-padded) as a big-endian integer: integer order is
/// byte order.
inline std::uint64_t big_endian_head(std::string_view term) noexcept {
  std::uint64_t head = 0;
  std::memcpy(&head, term.data(), std::min<std::size_t>(term.size(), 8));
  if constexpr (std::endian::native == std::endian::little) head = __builtin_bswap64(head);
  return head;
}

/// `ids` in byte order of their terms `term_of(id)` (char_traits<char>: unsigned bytes,
/// which is code point order for UTF-8; terms are not empty). One pass splits the ids by
/// their term's first byte; then every thread takes whole first-byte buckets and sorts
/// each on keys built in its own (cache-resident, reused) buffers: the next 8 bytes as a
/// big-endian integer (zero-padded: terms hold no NUL, so a proper prefix sorts first)
/// by an LSD radix sort, then each run of equal keys by a comparison sort of the
/// remaining bytes. O(n) for the short terms that dominate a vocabulary; no n-sized key
/// arrays (their fresh pages were half the sort's time).
template <class TermOf>
std::vector<std::uint32_t> sorted_terms(std::span<std::uint32_t const> ids, TermOf const& term_of) {
  struct key {
    std::uint64_t head;
    std::uint32_t id;
  };
  std::size_t const n = ids.size();
  auto const count = static_cast<std::int64_t>(n);
  std::vector<unsigned char> first(n);
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < count; ++i) {
    first[static_cast<std::size_t>(i)] = static_cast<unsigned char>(term_of(ids[static_cast<std::size_t>(i)])[0]);
  }
  std::array<std::size_t, 257> bucket{};
  for (unsigned char const b : first) ++bucket[b + 1u];
  std::partial_sum(bucket.begin(), bucket.end(), bucket.begin());
  std::vector<std::uint32_t> order(n);
  {
    auto next = bucket;
    for (std::size_t i = 0; i < n; ++i) order[next[first[i]]++] = ids[i];
  }
#pragma omp parallel
  {
    std::vector<key> keys;
    std::vector<key> scratch;
    std::array<std::array<std::size_t, 256>, 8> counts{};
#pragma omp for schedule(dynamic, 1)
    for (int b = 0; b < 256; ++b) {
      std::size_t const begin = bucket[static_cast<std::size_t>(b)];
      std::size_t const size = bucket[static_cast<std::size_t>(b) + 1] - begin;
      if (size <= 1) continue;
      keys.resize(size);
      scratch.resize(size);
      for (std::size_t i = 0; i < size; ++i) {
        std::uint32_t const id = order[begin + i];
        keys[i] = {big_endian_head(term_of(id).substr(1)), id};
      }
      key* from = keys.data();
      key* to = scratch.data();
      for (auto& c : counts) c.fill(0);
      for (std::size_t i = 0; i < size; ++i) {
        for (unsigned d = 0; d < 8; ++d) ++counts[d][(from[i].head >> (8 * d)) & 0xFF];
      }
      for (unsigned d = 0; d < 8; ++d) {
        auto& c = counts[d];
        // A digit that is the same in every key leaves the order as it is.
        if (std::find(c.begin(), c.end(), size) != c.end()) continue;
        std::size_t sum = 0;
        for (auto& x : c) sum += std::exchange(x, sum);
        for (std::size_t i = 0; i < size; ++i) to[c[(from[i].head >> (8 * d)) & 0xFF]++] = from[i];
        std::swap(from, to);
      }
      for (std::size_t lo = 0; lo < size;) {
        std::size_t hi = lo + 1;
        while (hi < size && from[hi].head == from[lo].head) ++hi;
        if (hi - lo > 1) {
          // Equal keys: both terms have at least 9 bytes.
          std::sort(from + lo, from + hi, [&](key const& x, key const& y) {
            return term_of(x.id).substr(9) < term_of(y.id).substr(9);
          });
        }
        lo = hi;
      }
      for (std::size_t i = 0; i < size; ++i) order[begin + i] = from[i].id;
    }
  }
  return order;
}

/// One row of TfidfTransformer.transform: weights row r's counts (tf or 1 + ln tf,
/// times idf, in double) and scales them to unit norm into out (indexed like the
/// counts). Plain pointers, no allocation and constexpr, so the CUDA backend runs this
/// same code on the device, one row per thread (nvcc --expt-relaxed-constexpr), and
/// assembling a fitted corpus runs it on each row as the row is finished.
template <class C, class T, class I>
struct tfidf_row_weighting {
  I const* row_offsets;
  I const* col_indices;
  C const* counts;
  double const* idf;
  bool sublinear_tf;
  bool use_idf;
  tfidf_norm norm;
  T* out;

  constexpr double weight(I p) const {
    auto v = static_cast<double>(counts[p]);
    if (sublinear_tf) v = std::log(v) + 1.0;
    if (use_idf) v *= idf[col_indices[p]];
    return v;
  }

  constexpr void operator()(I r) const {
    I const begin = row_offsets[r];
    I const end = row_offsets[r + 1];
    double sum = 0.0;
    for (I p = begin; p < end; ++p) {
      double const v = weight(p);
      sum += norm == tfidf_norm::l2 ? v * v : std::fabs(v);
    }
    // sklearn's inplace_csr_row_normalize_*: zero rows are left alone, never 0/0.
    double scale = 1.0;
    if (norm != tfidf_norm::none && sum != 0.0) scale = norm == tfidf_norm::l2 ? std::sqrt(sum) : sum;
    for (I p = begin; p < end; ++p) out[p] = static_cast<T>(weight(p) / scale);
  }
};

struct term_count {
  std::uint32_t term;
  std::uint32_t count;
};

/// A growable array of term_count. Capacity reserved ahead is never touched (faulting a
/// fresh page in costs 1.5–6 µs on the development VM, and a std::vector's doubling
/// copies touch twice the final size): large arrays are mappings onto huge pages
/// (detail/large_pages.hpp) that grow by mremap, without copying, small ones grow by
/// realloc.
class entry_array {
 public:
  entry_array() = default;
  entry_array(entry_array const&) = delete;
  entry_array& operator=(entry_array const&) = delete;
  ~entry_array() { release(); }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] term_count* data() noexcept { return data_; }
  [[nodiscard]] term_count const* data() const noexcept { return data_; }

  /// Room for `n` entries in all. @throws std::bad_alloc.
  void reserve(std::size_t n) {
    if (n <= capacity_) return;
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(term_count)) throw std::bad_alloc();
    std::size_t const bytes = n * sizeof(term_count);
    std::size_t const old_bytes = capacity_ * sizeof(term_count);
    void* grown = nullptr;
    if (!is_large_allocation(bytes)) {
      grown = std::realloc(data_, bytes);  // the old block is small too
    } else if (is_large_allocation(old_bytes)) {
#if defined(__linux__)
      grown = ::mremap(data_, mapped_bytes(old_bytes), mapped_bytes(bytes), MREMAP_MAYMOVE);
      if (grown == MAP_FAILED) grown = nullptr;
#endif
    } else {
      grown = large_allocate(bytes);
      if (grown != nullptr) {
        if (size_ > 0) std::memcpy(grown, data_, size_ * sizeof(term_count));
        std::free(data_);
      }
    }
    if (grown == nullptr) throw std::bad_alloc();
    data_ = static_cast<term_count*>(grown);
    capacity_ = n;
  }
  /// Appends `n` uninitialised entries and returns the first.
  term_count* extend(std::size_t n) {
    if (size_ + n > capacity_) reserve(std::max(size_ + n, 2 * capacity_));
    return data_ + std::exchange(size_, size_ + n);
  }

 private:
  void release() noexcept {
    std::size_t const bytes = capacity_ * sizeof(term_count);
    if (is_large_allocation(bytes)) {
      large_free(data_, bytes);
    } else {
      std::free(data_);
    }
  }

  term_count* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

/// Where a document's (term, count) entries are: in worker `worker`'s entry list.
struct document_entries {
  std::uint32_t worker = 0;
  std::uint32_t length = 0;
  std::size_t begin = 0;
};

/// A term's counters in one thread: its count in the current document and the number of
/// documents that contained it (since the last fold into corpus_counter's df_carry_).
/// Side by side, so that ending a document touches the cache line counting it did.
struct term_counters {
  std::uint32_t in_document;
  std::uint32_t documents;
};

/// One thread's counting state; it persists across batches. Arrays indexed by term id
/// have at least the shared table's limit() entries.
struct count_worker {
  explicit count_worker(bool lowercase) : tokens(lowercase) {}
  word_tokenizer tokens;
  term_arena arena;                        // the bytes of the terms this thread added
  std::vector<term_counters, large_page_allocator<term_counters>> counters;  // per term
  std::vector<std::uint32_t> touched;  // terms seen in the current document
  std::vector<std::uint64_t, large_page_allocator<std::uint64_t>> total;  // per term: occurrences (max_features)
  entry_array entries;                     // rows of the count matrix, by document
  std::vector<std::string_view> features;  // the current document's n-grams ...
  std::vector<std::uint64_t> hashes;       // ... and their hashes
  std::vector<std::uint32_t> deferred;     // documents met with the table full
};

/// A count matrix as counting produces it: exact integer counts, or the values already
/// weighted (V = T) when assembling applied the weighting.
template <class I, class V = std::uint32_t>
struct count_matrix {
  I rows = 0;
  I cols = 0;
  buffer<I, cpu> row_offsets;
  buffer<I, cpu> col_indices;
  buffer<V, cpu> counts;

  [[nodiscard]] csr_view<V, I> view() const noexcept {
    return {rows, cols, row_offsets.data(), col_indices.data(), counts.data()};
  }
};

/// The fitted state: the sorted vocabulary, df per column, and the table every term of
/// the fit went through, its ids renumbered to columns (pruned terms never match).
struct fitted_vocabulary {
  term_list terms;
  std::vector<std::uint64_t> df;
  term_table table;
};

/// What becomes of a finished row of counts (sorted by column) in `assemble`.
enum class row_values { counts, weighted };

/// Tokenises and counts documents batch by batch on all OpenMP threads, either
/// building a vocabulary (fit) or looking terms up in a fitted one (transform).
class corpus_counter {
 public:
  /// `fitted`: the vocabulary to look terms up in (transform), or none to build one.
  /// `keep_rows`: whether to keep the per-document counts (not needed by a plain fit).
  corpus_counter(tfidf_options const& options, bool keep_rows, fitted_vocabulary const* fitted = nullptr)
      : options_(options), keep_rows_(keep_rows), fitted_(fitted) {}

  void add_batch(std::span<std::string_view const> docs) {
    auto const threads = static_cast<std::size_t>(std::max(1, omp_get_max_threads()));
    while (workers_.size() < threads) {
      workers_.push_back(std::make_unique<count_worker>(options_.lowercase));
    }
    std::size_t const base = documents_;
    std::size_t bytes = 0;
    for (auto const& d : docs) bytes += d.size();
    if (keep_rows_) {
      rows_.resize(base + docs.size());
      // Distinct features of a document: at most (bytes + 1) / 3 per n-gram length
      // (tokens have two bytes and a separator), so of the batch at most (bytes + docs) / 3.
      // Reserved, not touched.
      std::size_t const most = (bytes + docs.size()) / 3 *
                               static_cast<std::size_t>(options_.ngram_range.second - options_.ngram_range.first + 1);
      for (auto& w : workers_) w->entries.reserve(w->entries.size() + most);
    }
    // A thread's document counts are 32-bit: fold them into df_carry_ before a thread
    // could have counted 2^32 documents.
    if (fitted_ == nullptr && since_fold_ + docs.size() > std::numeric_limits<std::uint32_t>::max()) {
      fold_document_counts();
    }
    since_fold_ += docs.size();
    if (fitted_ == nullptr && table_.size() == 0) {
      // Heaps' law (V ~ K sqrt(N)) with a generous K: the kernel docs (174 k terms in
      // 28.6 MB) and WordNet (101 k in 11.4 MB) fit the first table. A growth costs a
      // serial rehash and a round of the documents that found the table full.
      table_.grow(static_cast<std::size_t>(32.0 * std::sqrt(static_cast<double>(bytes))));
    }
    // Documents that found the shared table full are counted again after it grows. The
    // error reported is the one of the first document that has one.
    // Documents are handed out ~256 KB of text at a time (a millisecond of work or so):
    // WordNet's 117 k short documents four at a time made the threads take turns on the
    // loop counter's cache line 29 k times (~10% of the fit).
    int const chunk = static_cast<int>(std::clamp<std::size_t>(
        (std::size_t{256} << 10) * docs.size() / std::max<std::size_t>(bytes, 1), 1, 1024));
    std::vector<std::uint32_t> pending;
    count_error error;
    bool first_round = true;
    while (first_round || !pending.empty()) {
      count_round(docs, base, chunk, first_round, pending, error);
      first_round = false;
      pending.clear();
      for (auto& w : workers_) {
        pending.insert(pending.end(), w->deferred.begin(), w->deferred.end());
        w->deferred.clear();
      }
      if (!pending.empty()) table_.grow(2 * table_.limit());
    }
    if (error.exception) std::rethrow_exception(error.exception);
    documents_ += docs.size();
  }

  [[nodiscard]] std::size_t documents() const noexcept { return documents_; }

  /// Sums the threads' document frequencies, sorts the vocabulary, applies min_df,
  /// max_df and max_features, and renumbers the table to vocabulary columns.
  /// @throws invalid_argument if max_df allows fewer documents than min_df.
  fitted_vocabulary finish_fit() {
    std::size_t const n_terms = table_.size();
    auto const terms = static_cast<std::int64_t>(n_terms);
    bool const totals = options_.max_features.has_value();
    std::vector<std::uint64_t, large_page_allocator<std::uint64_t>> df(n_terms);
    std::vector<std::uint64_t> total(totals ? n_terms : 0);
#pragma omp parallel for schedule(static)
    for (std::int64_t t = 0; t < terms; ++t) {
      auto const id = static_cast<std::size_t>(t);
      std::uint64_t d = 0;
      std::uint64_t c = 0;
      if (id < df_carry_.size()) d = df_carry_[id];
      for (auto const& w : workers_) {
        d += w->counters[id].documents;
        if (totals) c += w->total[id];
      }
      df[id] = d;
      if (totals) total[id] = c;
    }
    // Ids are taken in blocks: some hold no term.
    std::vector<std::uint32_t> live;
    live.reserve(n_terms);
    for (std::uint32_t id = 0; id < n_terms; ++id) {
      if (table_.holds(id)) live.push_back(id);
    }
    auto const term_of = table_.stored_terms();
    std::vector<std::uint32_t> const order = sorted_terms(live, term_of);
    fitted_terms_ = live.size();
    std::vector<std::uint32_t> const kept = select_terms(order, df, total);
    kept_terms_ = kept.size();

    // The kept terms end to end in column order, then the table renumbered to columns.
    auto const n_kept = static_cast<std::int64_t>(kept.size());
    std::vector<std::size_t> offsets(kept.size() + 1);
    offsets[0] = 0;
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < n_kept; ++i) {
      auto const c = static_cast<std::size_t>(i);
      offsets[c + 1] = term_of(order[kept[c]]).size();
    }
    std::partial_sum(offsets.begin(), offsets.end(), offsets.begin());
    std::vector<char> bytes(offsets.back());
    fitted_vocabulary vocabulary;
    column_.assign(n_terms, term_table::npos);
    vocabulary.df.resize(kept.size());
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < n_kept; ++i) {
      auto const c = static_cast<std::size_t>(i);
      std::uint32_t const id = order[kept[c]];
      std::string_view const t = term_of(id);
      std::memcpy(bytes.data() + offsets[c], t.data(), t.size());
      column_[id] = static_cast<std::uint32_t>(c);
      vocabulary.df[c] = df[id];
    }
    vocabulary.terms = term_list(std::move(bytes), std::move(offsets));
    table_.remap(column_);
    for (auto& w : workers_) w->arena = {};
    vocabulary.table = std::move(table_);
    return vocabulary;
  }

  /// The count matrix of the counted documents, each row sorted by column, entries of
  /// pruned terms dropped, counts 1 when `binary`. With row_values::weighted each row is
  /// weighted and normalised (tfidf_row_weighting with `idf`) as it is written, and the
  /// values are T; otherwise they are the counts as V. Call after finish_fit (fit) or
  /// after the batches (transform).
  template <class I, class V = std::uint32_t>
  count_matrix<I, V> assemble(row_values what = row_values::counts, std::span<double const> idf = {}) {
    std::size_t const cols = fitted_ != nullptr ? fitted_->terms.size() : kept_terms_;
    if (!keep_rows_) return empty_counts<I, V>(cols);
    check_fits_index<I>(static_cast<std::int64_t>(documents_), "documents");
    check_fits_index<I>(static_cast<std::int64_t>(cols), "vocabulary size");
    auto const n = static_cast<std::int64_t>(documents_);
    // Entries hold table ids in a fit (-> column_, npos for pruned terms), columns in a
    // transform.
    std::uint32_t const* const column = fitted_ == nullptr ? column_.data() : nullptr;
    bool const pruned = column != nullptr && cols < fitted_terms_;
    std::vector<std::size_t> offsets(documents_ + 1, 0);
#pragma omp parallel for schedule(static)
    for (std::int64_t d = 0; d < n; ++d) {
      auto const& row = rows_[static_cast<std::size_t>(d)];
      std::size_t kept = row.length;
      if (pruned) {
        term_count const* const e = workers_[row.worker]->entries.data() + row.begin;
        kept = 0;
        for (std::size_t p = 0; p < row.length; ++p) kept += column[e[p].term] != term_table::npos ? 1 : 0;
      }
      offsets[static_cast<std::size_t>(d) + 1] = kept;
    }
    std::partial_sum(offsets.begin(), offsets.end(), offsets.begin());
    std::size_t const nnz = offsets.back();
    check_fits_index<I>(static_cast<std::int64_t>(nnz), "nnz");

    count_matrix<I, V> m;
    m.rows = static_cast<I>(documents_);
    m.cols = static_cast<I>(cols);
    m.row_offsets = buffer<I, cpu>(documents_ + 1);
    m.col_indices = buffer<I, cpu>(nnz);
    m.counts = buffer<V, cpu>(nnz);
    bool const binary = options_.binary;
    bool const weighted = what == row_values::weighted;
    // Long rows are sorted by an LSD radix sort on the column (branch-free; a comparison
    // sort mispredicts about every other branch), in passes of at most 10 bits.
    auto const column_bits = static_cast<unsigned>(std::bit_width(cols));
    unsigned const passes = std::max(1u, (column_bits + 9) / 10);
    unsigned const digit_bits = std::max(1u, (column_bits + passes - 1) / passes);
#pragma omp parallel
    {
      std::vector<term_count> row_entries;
      std::vector<term_count> scratch;
      std::vector<std::uint32_t> row_counts;
      std::vector<std::uint32_t> bucket(std::size_t{1} << digit_bits);
#pragma omp for schedule(dynamic, 256)
      for (std::int64_t d = 0; d < n; ++d) {
        auto const di = static_cast<std::size_t>(d);
        auto const& row = rows_[di];
        term_count const* const e = workers_[row.worker]->entries.data() + row.begin;
        // The next row's column lookups miss cache (the map is vocabulary-sized and the
        // entries and output stream through): start them while this row is sorted, and
        // its idf lookups while this row is weighted.
        term_count const* next = nullptr;
        std::size_t next_length = 0;
        if (column != nullptr && d + 1 < n) {
          auto const& r = rows_[di + 1];
          next = workers_[r.worker]->entries.data() + r.begin;
          next_length = r.length;
          for (std::size_t p = 0; p < next_length; ++p) __builtin_prefetch(column + next[p].term);
        }
        row_entries.clear();
        if (column == nullptr) {
          row_entries.assign(e, e + row.length);
        } else {
          for (std::size_t p = 0; p < row.length; ++p) {
            std::uint32_t const c = column[e[p].term];
            if (c != term_table::npos) row_entries.push_back({c, e[p].count});
          }
        }
        sort_row(row_entries, scratch, bucket, passes, digit_bits);
        std::size_t const begin = offsets[di];
        std::size_t const length = row_entries.size();
        m.row_offsets[di] = static_cast<I>(begin);
        I* const out_cols = m.col_indices.data() + begin;
        for (std::size_t p = 0; p < length; ++p) out_cols[p] = static_cast<I>(row_entries[p].term);
        if (weighted) {
          if (options_.use_idf) {
            for (std::size_t p = 0; p < next_length; ++p) {
              std::uint32_t const c = column[next[p].term];
              __builtin_prefetch(idf.data() + (c != term_table::npos ? c : 0));
            }
          }
          row_counts.resize(length);
          for (std::size_t p = 0; p < length; ++p) row_counts[p] = binary ? 1u : row_entries[p].count;
          I const bounds[2] = {I{0}, static_cast<I>(length)};
          tfidf_row_weighting<std::uint32_t, V, I> const weigh{bounds, out_cols, row_counts.data(), idf.data(),
                                                               options_.sublinear_tf, options_.use_idf,
                                                               options_.norm, m.counts.data() + begin};
          weigh(I{0});
        } else {
          V* const out = m.counts.data() + begin;
          for (std::size_t p = 0; p < length; ++p) out[p] = static_cast<V>(binary ? 1u : row_entries[p].count);
        }
      }
    }
    m.row_offsets[documents_] = static_cast<I>(nnz);
    return m;
  }

 private:
  static constexpr std::size_t deferred = ~std::size_t{0};

  void fold_document_counts() {
    df_carry_.resize(table_.size(), 0);
    for (auto& w : workers_) {
      for (std::size_t id = 0; id < df_carry_.size() && id < w->counters.size(); ++id) {
        df_carry_[id] += std::exchange(w->counters[id].documents, 0u);
      }
    }
    since_fold_ = 0;
  }

  struct count_error {
    std::exception_ptr exception;
    std::size_t document = 0;
  };

  // Counts the batch's documents (all of them in the first round, else `pending`), handed
  // out `chunk` at a time; a document that finds the table full goes to its worker's
  // `deferred` list.
  void count_round(std::span<std::string_view const> docs, std::size_t base, int chunk, bool all,
                   std::vector<std::uint32_t> const& pending, count_error& error) {
    std::size_t const terms = fitted_ != nullptr ? fitted_->terms.size() : table_.limit();
    bool const totals = options_.max_features.has_value();
    int full = 0;    // set once a document found the table full: the rest wait for growth
    int failed = 0;  // set if a thread could not size its arrays: nothing is counted
    auto const n = static_cast<std::int64_t>(all ? docs.size() : pending.size());
#pragma omp parallel num_threads(static_cast<int>(workers_.size()))
    {
      auto const worker_index = static_cast<std::uint32_t>(omp_get_thread_num());
      auto& worker = *workers_[worker_index];
      // Each thread sizes its own per-term arrays: their pages are faulted in by both
      // threads at once, and on the core that uses them.
      try {
        if (worker.counters.size() < terms) worker.counters.resize(terms, {0, 0});
        if (fitted_ == nullptr && totals && worker.total.size() < terms) worker.total.resize(terms, 0);
      } catch (...) {
        __atomic_store_n(&failed, 1, __ATOMIC_RELAXED);
#pragma omp critical(mgpu_tfidf_count_error)
        if (!error.exception) error = {std::current_exception(), base};
      }
#pragma omp barrier
#pragma omp for schedule(dynamic, chunk)
      for (std::int64_t k = 0; k < n; ++k) {
        if (__atomic_load_n(&failed, __ATOMIC_RELAXED) != 0) continue;
        auto const i = all ? static_cast<std::uint32_t>(k) : pending[static_cast<std::size_t>(k)];
        std::size_t const index = base + i;
        if (__atomic_load_n(&full, __ATOMIC_RELAXED) != 0) {
          worker.deferred.push_back(i);
          continue;
        }
        try {
          auto const length = count_document(worker, docs[i], index);
          if (length == deferred) {
            worker.deferred.push_back(i);
            __atomic_store_n(&full, 1, __ATOMIC_RELAXED);
          } else if (keep_rows_) {
            rows_[index] = {worker_index, static_cast<std::uint32_t>(length), worker.entries.size() - length};
          }
        } catch (...) {
#pragma omp critical(mgpu_tfidf_count_error)
          if (!error.exception || index < error.document) error = {std::current_exception(), index};
        }
      }
    }
  }

  /// Counts one document into `w`; returns its number of distinct terms, or `deferred`
  /// (nothing counted) if a new term found the shared table full.
  std::size_t count_document(count_worker& w, std::string_view doc, std::size_t index) {
    w.tokens.tokenize(doc, index);
    int const min_n = options_.ngram_range.first;  // not a structured binding: Clang 14 cannot capture one
    int const max_n = options_.ngram_range.second;
    std::size_t const tokens = w.tokens.size();
    std::size_t n = 0;
    for (auto k = static_cast<std::size_t>(min_n); k <= static_cast<std::size_t>(max_n) && k <= tokens; ++k) {
      n += tokens - k + 1;
    }
    if (w.hashes.size() < n) w.hashes.resize(n);
    if (w.touched.size() < n) w.touched.resize(n);
    std::uint64_t* const hashes = w.hashes.data();
    // Tokens and n-grams lie in the tokenizer's buffer, padded: hashing and lookups
    // read whole 8-byte words (16 bytes from a token's start, 8 past its end).
    std::string_view const* features = nullptr;
    if (max_n == 1) {
      for (std::size_t i = 0; i < n; ++i) hashes[i] = hash_term<true>(w.tokens.token(i));
    } else {
      if (w.features.size() < n) w.features.resize(n);
      std::size_t i = 0;
      w.tokens.for_each_ngram(min_n, max_n, [&](std::string_view term) {
        w.features[i] = term;
        hashes[i] = hash_term<true>(term);
        ++i;
      });
      features = w.features.data();
    }
    auto const feature = [&](std::size_t i) { return max_n == 1 ? w.tokens.token(i) : features[i]; };
    term_counters* const counters = w.counters.data();
    std::uint32_t* const touched = w.touched.data();
    std::size_t distinct = 0;
    // Branch-free: whether a token is its term's first in the document is a coin flip
    // to the branch predictor (a third of the kernel docs' tokens are).
    auto add = [&](std::uint32_t id) {
      touched[distinct] = id;
      distinct += counters[id].in_document++ == 0 ? 1 : 0;
    };
    // The slots of the next `ahead` features are always being fetched, from the first
    // feature on (WordNet's documents have 14 tokens).
    constexpr std::size_t ahead = 8;
    term_table const& table = fitted_ != nullptr ? fitted_->table : table_;
    for (std::size_t i = 0; i < n && i < ahead; ++i) table.prefetch(hashes[i]);
    if (fitted_ != nullptr) {
      auto const columns = [&](std::uint32_t c) { return fitted_->terms[c]; };
      for (std::size_t i = 0; i < n; ++i) {
        if (i + ahead < n) table.prefetch(hashes[i + ahead]);
        std::uint32_t const c = table.find(feature(i), hashes[i], columns);
        if (c != term_table::npos) add(c);
      }
    } else {
      for (std::size_t i = 0; i < n; ++i) {
        if (i + ahead < n) table.prefetch(hashes[i + ahead]);
        std::uint32_t const id = table_.intern(feature(i), hashes[i], w.arena);
        if (id == term_table::full) {
          for (std::size_t t = 0; t < distinct; ++t) counters[touched[t]].in_document = 0;
          return deferred;
        }
        add(id);
      }
    }
    term_count* const out = keep_rows_ ? w.entries.extend(distinct) : nullptr;
    bool const totals = fitted_ == nullptr && options_.max_features.has_value();
    for (std::size_t t = 0; t < distinct; ++t) {
      std::uint32_t const id = touched[t];
      std::uint32_t const c = std::exchange(counters[id].in_document, 0);
      if (out != nullptr) out[t] = {id, c};
      if (fitted_ == nullptr) {
        ++counters[id].documents;
        if (totals) w.total[id] += c;
      }
    }
    return distinct;
  }

  // Sorts a row's entries (distinct columns) by column.
  static void sort_row(std::vector<term_count>& row, std::vector<term_count>& scratch,
                       std::vector<std::uint32_t>& bucket, unsigned passes, unsigned digit_bits) {
    std::size_t const length = row.size();
#if defined(__AVX512F__)
    if (length <= 16) {
      // As below, one 16-lane comparison per entry.
      scratch.resize(length);
      alignas(64) std::uint32_t terms[16];
      for (std::size_t i = 0; i < 16; ++i) terms[i] = i < length ? row[i].term : ~std::uint32_t{0};
      __m512i const all = _mm512_load_si512(terms);
      for (std::size_t i = 0; i < length; ++i) {
        __mmask16 const smaller = _mm512_cmplt_epu32_mask(all, _mm512_set1_epi32(static_cast<int>(row[i].term)));
        scratch[static_cast<std::size_t>(std::popcount(static_cast<unsigned>(smaller)))] = row[i];
      }
      row.swap(scratch);
      return;
    }
#endif
    if (length <= 32) {
      // A row's columns are distinct, so each entry's place is the number of smaller
      // columns: branch-free (and vectorised) where an insertion sort mispredicts about
      // every other comparison.
      scratch.resize(length);
      term_count const* const e = row.data();
      for (std::size_t i = 0; i < length; ++i) {
        std::size_t rank = 0;
        for (std::size_t j = 0; j < length; ++j) rank += static_cast<std::size_t>(e[j].term < e[i].term);
        scratch[rank] = e[i];
      }
      row.swap(scratch);
    } else if (length <= 64) {
      std::sort(row.begin(), row.end(), [](term_count a, term_count b) { return a.term < b.term; });
    } else {
      scratch.resize(length);
      std::uint32_t const mask = (std::uint32_t{1} << digit_bits) - 1;
      for (unsigned pass = 0; pass < passes; ++pass) {
        unsigned const shift = pass * digit_bits;
        std::fill(bucket.begin(), bucket.end(), 0u);
        for (auto const& e : row) ++bucket[(e.term >> shift) & mask];
        std::uint32_t sum = 0;
        for (auto& b : bucket) sum += std::exchange(b, sum);
        for (auto const& e : row) scratch[bucket[(e.term >> shift) & mask]++] = e;
        row.swap(scratch);
      }
    }
  }

  /// Positions (in sorted order) of the terms that survive min_df, max_df and
  /// max_features, ascending; sklearn's _limit_features.
  [[nodiscard]] std::vector<std::uint32_t> select_terms(std::vector<std::uint32_t> const& order,
                                                        std::span<std::uint64_t const> df,
                                                        std::span<std::uint64_t const> total) const {
    if (order.empty()) return {};  // sklearn: "empty vocabulary"
    auto const n = static_cast<double>(documents_);
    auto doc_count = [n](df_bound const& b) {
      if (auto const* count = std::get_if<std::int64_t>(&b)) return static_cast<double>(*count);
      return std::get<double>(b) * n;
    };
    double const max_count = doc_count(options_.max_df);
    double const min_count = doc_count(options_.min_df);
    MGPU_EXPECTS(max_count >= min_count, "max_df corresponds to fewer documents (", max_count,
                 ") than min_df (", min_count, ") for a corpus of ", documents_, " documents");
    std::vector<std::uint32_t> kept;
    kept.reserve(order.size());
    for (std::uint32_t k = 0; k < order.size(); ++k) {
      auto const d = static_cast<double>(df[order[k]]);
      if (d <= max_count && d >= min_count) kept.push_back(k);
    }
    if (options_.max_features && kept.size() > static_cast<std::size_t>(*options_.max_features)) {
      // binary counts are 1, so their corpus total is the document frequency.
      std::span<std::uint64_t const> const score = options_.binary ? df : total;
      std::stable_sort(kept.begin(), kept.end(), [&](std::uint32_t a, std::uint32_t b) {
        return score[order[a]] > score[order[b]];
      });
      kept.resize(static_cast<std::size_t>(*options_.max_features));
      std::sort(kept.begin(), kept.end());
    }
    return kept;
  }

  template <class I, class V>
  count_matrix<I, V> empty_counts(std::size_t cols) const {
    check_fits_index<I>(static_cast<std::int64_t>(documents_), "documents");
    check_fits_index<I>(static_cast<std::int64_t>(cols), "vocabulary size");
    count_matrix<I, V> m;
    m.rows = static_cast<I>(documents_);
    m.cols = static_cast<I>(cols);
    m.row_offsets = buffer<I, cpu>(documents_ + 1);
    std::fill_n(m.row_offsets.data(), documents_ + 1, I{0});
    return m;
  }

  tfidf_options options_;
  bool keep_rows_;
  fitted_vocabulary const* fitted_;  // nullptr: fit, building the vocabulary in table_
  term_table table_;
  std::vector<std::uint32_t> column_;  // fit: table id -> column, npos for pruned terms
  std::vector<std::uint64_t> df_carry_;  // fit: document frequencies folded out of the threads
  std::size_t since_fold_ = 0;          // documents counted since the last fold
  std::size_t fitted_terms_ = 0;       // fit: terms before pruning
  std::size_t kept_terms_ = 0;         // fit: terms after pruning (the columns)
  std::size_t documents_ = 0;
  std::vector<std::unique_ptr<count_worker>> workers_;
  std::vector<document_entries, large_page_allocator<document_entries>> rows_;
};


/// Weights and normalises rows [first, last) of `counts` into `out` (indexed like
/// counts.values), with the calling thread's OpenMP threads.
template <class C, class T, class I>
void weight_rows(csr_view<C, I> counts, I first, I last, double const* idf,
                 tfidf_options const& o, T* out) {
  tfidf_row_weighting<C, T, I> const row{counts.row_offsets, counts.col_indices, counts.values, idf,
                                         o.sublinear_tf, o.use_idf, o.norm, out};
#pragma omp parallel for schedule(dynamic, 256)
  for (I r = first; r < last; ++r) row(r);
}

/// Weights `counts` into `out` (indexed like counts.values; it may be counts.values
/// itself when C is T: each value is read before it is overwritten), on `policy`'s
/// devices when one is given, else on the calling thread.
template <class T, class C, class I>
void weight_counts_into(execution_policy<cpu> const* policy, csr_view<C, I> counts,
                        std::span<double const> idf, tfidf_options const& o, T* out) {
  if (o.use_idf && idf.size() != static_cast<std::size_t>(counts.cols)) {
    throw dimension_mismatch(message("tf-idf weighting: the count matrix has ", counts.cols,
                                     " columns but idf has ", idf.size(), " entries"));
  }
  if (policy == nullptr) {
    weight_rows(counts, I{0}, counts.rows, idf.data(), o, out);
  } else {
    auto const bounds = partition_rows_by_nnz(counts, policy->device_count());
    fork_join(*policy, [&](device_context<cpu>&, std::size_t i) {
      if (bounds[i] < bounds[i + 1]) weight_rows(counts, bounds[i], bounds[i + 1], idf.data(), o, out);
    });
  }
}

/// TfidfTransformer.transform of a count matrix (the structure is copied, the values
/// weighted); on `policy`'s devices when one is given, else on the calling thread.
template <class T, class C, class I>
csr_matrix<cpu, T, I> weight_counts_on(execution_policy<cpu> const* policy, csr_view<C, I> counts,
                                       std::span<double const> idf, tfidf_options const& o) {
  auto const rows = static_cast<std::size_t>(counts.rows);
  auto const nnz = static_cast<std::size_t>(counts.nnz());
  buffer<T, cpu> values(nnz);
  weight_counts_into(policy, counts, idf, o, values.data());
  buffer<I, cpu> offsets(std::span<I const>(counts.row_offsets, rows + 1));
  buffer<I, cpu> cols(std::span<I const>(counts.col_indices, nnz));
  return csr_matrix<cpu, T, I>::adopt_canonical(counts.rows, counts.cols, std::move(offsets),
                                                std::move(cols), std::move(values));
}

/// Weighting on the calling thread's OpenMP threads.
template <class T, class C, class I>
csr_matrix<cpu, T, I> weight_counts(csr_view<C, I> counts, std::span<double const> idf,
                                    tfidf_options const& o) {
  return weight_counts_on<T>(nullptr, counts, idf, o);
}

/// Weighting on a host policy's devices.
template <class T, class C, class I>
csr_matrix<cpu, T, I> weight_counts(execution_policy<cpu> const& policy, csr_view<C, I> counts,
                                    std::span<double const> idf, tfidf_options const& o) {
  return weight_counts_on<T>(&policy, counts, idf, o);
}

/// Host devices: the weighting above, on the policy's devices (its threads).
template <>
struct weighting_leaf<cpu> {
  static constexpr bool weights_host_memory = true;

  template <class T, class C, class I>
  static csr_matrix<cpu, T, I> weight(execution_policy<cpu> const& policy, csr_view<C, I> counts,
                                      std::span<double const> idf, tfidf_options const& o) {
    return weight_counts_on<T>(&policy, counts, idf, o);
  }
};

static_assert(weighting_leaf_for<weighting_leaf<cpu>, float, std::uint32_t, std::int32_t> &&
              weighting_leaf_for<weighting_leaf<cpu>, double, double, std::int64_t>);

/// Weighting on a device backend's policy.
template <class T, class C, class I, class Kind>
csr_matrix<cpu, T, I> weight_counts(execution_policy<Kind> const& policy, csr_view<C, I> counts,
                                    std::span<double const> idf, tfidf_options const& o) {
  static_assert(backend_available<Kind>::value,
                "tf-idf weighting: this device kind's backend is not compiled in (for gpu, include "
                "<mgpu/cuda.hpp> in a CUDA translation unit and link mgpu::cuda)");
  if (o.use_idf && idf.size() != static_cast<std::size_t>(counts.cols)) {
    throw dimension_mismatch(message("tf-idf weighting: the count matrix has ", counts.cols,
                                     " columns but idf has ", idf.size(), " entries"));
  }
  return weighting_leaf<Kind>::template weight<T>(policy, counts, idf, o);
}

}  // namespace detail

/// TfidfTransformer(norm, use_idf, smooth_idf, sublinear_tf).transform(counts) with a
/// fitted `idf` (one entry per column; ignored when !options.use_idf): tf, or 1 + ln tf,
/// times idf, then rows scaled to unit norm (all-zero rows stay zero). Values are
/// computed in double. Explicit zeros in `counts` give -inf with sublinear_tf, as in
/// NumPy. The result has the structure of `counts`. O(nnz).
/// Weighting runs on the policy's devices, row blocks balanced by nnz.
/// @throws dimension_mismatch if use_idf and idf.size() != counts.cols().
template <class Kind, class T, class I>
csr_matrix<cpu, T, I> tfidf_weight(execution_policy<Kind> const& policy,
                                   csr_matrix<cpu, T, I> const& counts,
                                   std::span<double const> idf, tfidf_options const& options) {
  return detail::weight_counts<T>(policy, counts.view(), idf, options);
}

/// tfidf_weight of a count matrix that is no longer needed (same semantics, shapes and
/// result as above): on a host policy the values are weighted in place and the matrix
/// is returned, with no allocation; other kinds weight a copy.
/// @throws dimension_mismatch if use_idf and idf.size() != counts.cols().
template <class Kind, class T, class I>
csr_matrix<cpu, T, I> tfidf_weight(execution_policy<Kind> const& policy, csr_matrix<cpu, T, I>&& counts,
                                   std::span<double const> idf, tfidf_options const& options) {
  if constexpr (detail::weighting_leaf<Kind>::weights_host_memory) {
    detail::weight_counts_into(&policy, counts.view(), idf, options, counts.values().data());
    return std::move(counts);
  } else {
    return detail::weight_counts<T>(policy, counts.view(), idf, options);
  }
}

/// As above, on the calling thread's OpenMP threads.
template <class T, class I>
csr_matrix<cpu, T, I> tfidf_weight(csr_matrix<cpu, T, I> const& counts, std::span<double const> idf,
                                   tfidf_options const& options) {
  return detail::weight_counts<T>(counts.view(), idf, options);
}

/// sklearn's TfidfVectorizer (see the file comment): learns a vocabulary and idf from
/// a corpus and turns documents into an n_docs x vocabulary_size CSR matrix of T, rows
/// in document order, columns in vocabulary order, canonical. Indices are I.
template <class T = float, class I = std::int32_t>
class tfidf_vectorizer {
 public:
  /// @throws invalid_argument for options outside sklearn's domain (min_df / max_df
  ///         counts < 1 or proportions outside [0, 1], max_features < 1, ngram_range
  ///         not 1 <= min <= max).
  explicit tfidf_vectorizer(tfidf_options options = {}) : options_(std::move(options)) {
    detail::validate_tfidf_options(options_);
  }

  /// Learns the vocabulary and idf (sklearn `fit`). One pass over the corpus; the
  /// per-document counts are not kept, so memory is O(vocabulary), not O(corpus).
  /// @throws invalid_argument for invalid UTF-8 (naming the document and byte offset), a
  ///         document of 2 GiB or more, or when max_df allows fewer documents than
  ///         min_df; index_overflow when the number of documents or terms exceeds I.
  template <text_corpus C>
  tfidf_vectorizer& fit(C&& docs) {
    auto fit = fit_corpus(std::forward<C>(docs), false);
    (void)fit.counter.template assemble<I>();  // checks that the shape fits I
    adopt(fit);
    return *this;
  }

  /// fit, then transform of the same corpus, in one pass. n_docs x vocabulary().size().
  /// Each row is weighted and normalised as it is assembled (no count matrix in between).
  /// @throws as fit.
  template <text_corpus C>
  csr_matrix<cpu, T, I> fit_transform(C&& docs) {
    auto fit = fit_corpus(std::forward<C>(docs), true);
    auto result = weighted(fit.counter, fit.idf);
    adopt(fit);
    return result;
  }

  /// fit_transform with the weighting and normalisation on `policy`'s devices. On a host
  /// policy they are part of assembling the rows (the calling thread's OpenMP threads,
  /// which are the host devices' cores); results do not depend on the devices.
  template <class Kind, text_corpus C>
  csr_matrix<cpu, T, I> fit_transform(execution_policy<Kind> const& policy, C&& docs) {
    auto fit = fit_corpus(std::forward<C>(docs), true);
    if constexpr (detail::weighting_leaf<Kind>::weights_host_memory) {
      auto result = weighted(fit.counter, fit.idf);
      adopt(fit);
      return result;
    } else {
      auto const counts = fit.counter.template assemble<I>();
      auto result = detail::weight_counts<T>(policy, counts.view(), std::span<double const>(fit.idf), options_);
      adopt(fit);
      return result;
    }
  }

  /// The tf-idf rows of new documents with the fitted vocabulary and idf; terms not in
  /// the vocabulary are ignored (sklearn `transform`).
  /// @throws invalid_argument if not fitted, or for invalid UTF-8.
  template <text_corpus C>
  csr_matrix<cpu, T, I> transform(C&& docs) const {
    expect_fitted("transform");
    auto counter = count_corpus(std::forward<C>(docs), true, &fitted_);
    return weighted(counter, idf_);
  }

  /// transform with the weighting and normalisation on `policy`'s devices (as for
  /// fit_transform).
  template <class Kind, text_corpus C>
  csr_matrix<cpu, T, I> transform(execution_policy<Kind> const& policy, C&& docs) const {
    expect_fitted("transform");
    auto counter = count_corpus(std::forward<C>(docs), true, &fitted_);
    if constexpr (detail::weighting_leaf<Kind>::weights_host_memory) {
      return weighted(counter, idf_);
    } else {
      auto const counts = counter.template assemble<I>();
      return detail::weight_counts<T>(policy, counts.view(), idf(), options_);
    }
  }

  /// Fits (vocabulary and idf, as fit) and returns the term counts instead of tf-idf:
  /// sklearn's CountVectorizer(...).fit_transform, with `binary` applied. Counts above
  /// 2^24 are not exact in float. weight(count(docs)) equals fit_transform(docs).
  /// @throws as fit.
  template <text_corpus C>
  csr_matrix<cpu, T, I> count(C&& docs) {
    auto fit = fit_corpus(std::forward<C>(docs), true);
    auto m = fit.counter.template assemble<I, T>();
    adopt(fit);
    return csr_matrix<cpu, T, I>::adopt_canonical(m.rows, m.cols, std::move(m.row_offsets),
                                                  std::move(m.col_indices), std::move(m.counts));
  }

  /// Weights a count matrix with the fitted idf (sklearn TfidfTransformer.transform).
  /// @throws invalid_argument if not fitted; dimension_mismatch if counts.cols() is
  ///         not the vocabulary size.
  [[nodiscard]] csr_matrix<cpu, T, I> weight(csr_matrix<cpu, T, I> const& counts) const {
    expect_fitted("weight");
    if (static_cast<std::size_t>(counts.cols()) != vocabulary().size()) {
      throw dimension_mismatch(detail::message("tfidf_vectorizer::weight: the count matrix has ",
                                               counts.cols(), " columns but the vocabulary has ",
                                               vocabulary().size(), " terms"));
    }
    return detail::weight_counts<T>(counts.view(), idf(), options_);
  }

  /// The terms in column order (sorted by code point); empty before fit.
  [[nodiscard]] term_list const& vocabulary() const noexcept { return fitted_.terms; }
  /// The idf of each column (sklearn `idf_`); empty when !use_idf or before fit.
  [[nodiscard]] std::span<double const> idf() const noexcept { return idf_; }
  /// Number of documents containing each column's term in the fitted corpus.
  [[nodiscard]] std::span<std::uint64_t const> document_frequency() const noexcept { return fitted_.df; }
  [[nodiscard]] bool is_fitted() const noexcept { return fitted_flag_; }
  [[nodiscard]] tfidf_options const& options() const noexcept { return options_; }

  /// The kind version save() writes and load() reads.
  static constexpr std::uint32_t file_version = 1;

  /// Writes the fitted vectorizer to `path` (file comment: the options, the vocabulary
  /// in column order, the document frequencies and idf), all or nothing. O(vocabulary).
  /// @throws invalid_argument if not fitted; mgpu::error naming the path when it cannot
  ///         be written.
  void save(std::filesystem::path const& path) const {
    expect_fitted("save");
    write_binary_file(path, "tfidf_vectorizer", file_version, [&](binary_writer& w) { write_sections(w); });
  }

  /// The same bytes to a stream, e.g. a writer of an output_set that commits several
  /// files at once. @throws invalid_argument if not fitted.
  void save(std::ostream& out) const {
    expect_fitted("save");
    binary_writer w(out, "tfidf_vectorizer", file_version);
    write_sections(w);
    w.finish();
  }

  /// Reads a vectorizer saved by save(): fitted, with the saved options (and no progress
  /// callback), vocabulary and idf; its transform gives bitwise the saved one's matrix.
  /// O(vocabulary).
  /// @throws mgpu::error when the file cannot be opened; file_format_error naming the file
  ///         when it is not a tfidf_vectorizer of version <= 1, is truncated or
  ///         corrupted, or holds inconsistent contents (options outside their domain,
  ///         terms not strictly ascending, sizes that disagree).
  [[nodiscard]] static tfidf_vectorizer load(std::filesystem::path const& path) {
    binary_reader r(path, "tfidf_vectorizer", file_version);
    tfidf_options o;
    auto const flag = [&](char const* name) {
      auto const v = r.read_value<std::uint8_t>(name);
      if (v > 1) throw file_format_error(detail::message("'", path.string(), "': ", name, " is ", int{v}, ", not 0 or 1"));
      return v == 1;
    };
    o.lowercase = flag("lowercase");
    o.use_idf = flag("use_idf");
    o.smooth_idf = flag("smooth_idf");
    o.sublinear_tf = flag("sublinear_tf");
    o.binary = flag("binary");
    auto const norm = r.read_value<std::uint8_t>("norm");
    auto const ngrams = r.read<std::int32_t>("ngram_range");
    auto const min_df_kind = r.read_value<std::uint8_t>("min_df_kind");
    auto const min_df = r.read_value<double>("min_df");
    auto const max_df_kind = r.read_value<std::uint8_t>("max_df_kind");
    auto const max_df = r.read_value<double>("max_df");
    auto const max_features = r.read_value<std::int64_t>("max_features");
    auto bytes = r.read<char>("vocabulary");
    auto const offsets = r.read<std::uint64_t>("vocabulary_offsets");
    auto df = r.read<std::uint64_t>("document_frequency");
    auto idf = r.read<double>("idf");
    r.finish();
    auto const invalid = [&](auto const&... what) {
      return file_format_error(detail::message("'", path.string(), "': not a valid tfidf_vectorizer: ", what...));
    };
    if (norm > 2) throw invalid("norm is ", int{norm});
    o.norm = norm == 0 ? tfidf_norm::l2 : norm == 1 ? tfidf_norm::l1 : tfidf_norm::none;
    if (ngrams.size() != 2) throw invalid("ngram_range has ", ngrams.size(), " values");
    o.ngram_range = {ngrams[0], ngrams[1]};
    auto const bound = [&](std::uint8_t kind, double value, char const* name) -> df_bound {
      if (kind == 1) return value;
      if (kind != 0 || value != std::floor(value) || !(std::abs(value) < 9.0e18)) throw invalid(name, " is not a count");
      return static_cast<std::int64_t>(value);
    };
    o.min_df = bound(min_df_kind, min_df, "min_df");
    o.max_df = bound(max_df_kind, max_df, "max_df");
    if (max_features != 0) o.max_features = max_features;
    try {
      detail::validate_tfidf_options(o);
    } catch (invalid_argument const& e) {
      throw invalid(e.what());
    }
    std::size_t const n = offsets.empty() ? 0 : offsets.size() - 1;
    if (offsets.empty() || offsets.front() != 0 || offsets.back() != bytes.size()) {
      throw invalid("the vocabulary offsets do not span the vocabulary's bytes");
    }
    if (n >= detail::term_table::max_terms - detail::term_table::id_block) throw invalid("too many terms");
    if (df.size() != n) throw invalid(df.size(), " document frequencies for ", n, " terms");
    if (idf.size() != (o.use_idf ? n : 0)) throw invalid(idf.size(), " idf values for ", n, " terms");
    for (double v : idf) {
      if (!std::isfinite(v)) throw invalid("an idf value is not finite");
    }
    std::vector<std::size_t> ends(offsets.begin(), offsets.end());
    for (std::size_t i = 0; i < n; ++i) {
      if (ends[i + 1] <= ends[i]) throw invalid("term ", i, " is empty or the offsets decrease");
      std::string_view const term(bytes.data() + ends[i], ends[i + 1] - ends[i]);
      if (term.find('\0') != std::string_view::npos) throw invalid("term ", i, " holds a NUL byte");
      if (i > 0 && !(std::string_view(bytes.data() + ends[i - 1], ends[i] - ends[i - 1]) < term)) {
        throw invalid("the terms are not strictly ascending at term ", i);
      }
    }

    // The lookup table of transform: the terms interned in column order by one arena,
    // which hands out ids 0, 1, 2, ... (so id = column), then renumbered to columns.
    detail::fitted_vocabulary v;
    v.table = detail::term_table(n + detail::term_table::id_block);
    {
      detail::term_arena arena;
      std::string padded;  // hash_term<true> and the table read whole words past a term's end
      for (std::size_t i = 0; i < n; ++i) {
        std::string_view const term(bytes.data() + ends[i], ends[i + 1] - ends[i]);
        padded.assign(term);
        padded.append(16, '\0');
        std::string_view const t(padded.data(), term.size());
        if (v.table.intern(t, detail::hash_term<true>(t), arena) != i) throw invalid("term ", i, " is a duplicate");
      }
      std::vector<std::uint32_t> column(n);
      std::iota(column.begin(), column.end(), std::uint32_t{0});
      v.table.remap(column);
    }
    v.terms = term_list(std::move(bytes), std::move(ends));
    v.df = std::move(df);
    tfidf_vectorizer out(std::move(o));
    out.fitted_ = std::move(v);
    out.idf_ = std::move(idf);
    out.fitted_flag_ = true;
    return out;
  }

 private:
  // The sections of the file (file comment), in order.
  void write_sections(binary_writer& w) const {
    auto const& terms = fitted_.terms;
    std::vector<std::uint64_t> offsets(terms.size() + 1, 0);
    std::string bytes;
    for (std::size_t i = 0; i < terms.size(); ++i) {
      bytes.append(terms[i]);
      offsets[i + 1] = bytes.size();
    }
    auto const flag = [](bool b) { return static_cast<std::uint8_t>(b ? 1 : 0); };
    auto const df_kind = [](df_bound const& b) { return static_cast<std::uint8_t>(std::holds_alternative<double>(b)); };
    auto const df_value = [](df_bound const& b) {
      return std::holds_alternative<double>(b) ? std::get<double>(b) : static_cast<double>(std::get<std::int64_t>(b));
    };
    w.write_value("lowercase", flag(options_.lowercase));
    w.write_value("use_idf", flag(options_.use_idf));
    w.write_value("smooth_idf", flag(options_.smooth_idf));
    w.write_value("sublinear_tf", flag(options_.sublinear_tf));
    w.write_value("binary", flag(options_.binary));
    w.write_value("norm", static_cast<std::uint8_t>(options_.norm == tfidf_norm::l2   ? 0
                                                    : options_.norm == tfidf_norm::l1 ? 1
                                                                                      : 2));
    w.write("ngram_range", std::vector<std::int32_t>{options_.ngram_range.first, options_.ngram_range.second});
    w.write_value("min_df_kind", df_kind(options_.min_df));
    w.write_value("min_df", df_value(options_.min_df));
    w.write_value("max_df_kind", df_kind(options_.max_df));
    w.write_value("max_df", df_value(options_.max_df));
    w.write_value<std::int64_t>("max_features", options_.max_features.value_or(0));
    w.write_text("vocabulary", bytes);
    w.write("vocabulary_offsets", offsets);
    w.write("document_frequency", fitted_.df);
    w.write("idf", idf_);
  }

  void expect_fitted(char const* what) const {
    MGPU_EXPECTS(fitted_flag_, "tfidf_vectorizer::", what, " called before fit");
  }

  template <class C>
  detail::corpus_counter count_corpus(C&& docs, bool keep_rows,
                                      detail::fitted_vocabulary const* fitted = nullptr) const {
    detail::corpus_counter counter(options_, keep_rows, fitted);
    std::int64_t total = -1;  // unknown (file comment)
    if constexpr (std::ranges::sized_range<C>) total = static_cast<std::int64_t>(std::ranges::size(docs));
    detail::for_each_batch(std::forward<C>(docs), [&](std::span<std::string_view const> batch) {
      counter.add_batch(batch);
      report_progress(options_.progress, static_cast<std::int64_t>(counter.documents()), total);
    });
    auto const counted = static_cast<std::int64_t>(counter.documents());
    if (total < 0 && counted > 0) report_progress(options_.progress, counted, counted);
    return counter;
  }

  // A counted corpus, its vocabulary and idf, not yet the vectorizer's: a fit that
  // fails later (a shape beyond I) leaves the vectorizer as it was.
  struct fit_result {
    detail::corpus_counter counter;
    detail::fitted_vocabulary vocabulary;
    std::vector<double> idf;
  };

  template <class C>
  fit_result fit_corpus(C&& docs, bool keep_rows) const {
    auto counter = count_corpus(std::forward<C>(docs), keep_rows);
    auto vocabulary = counter.finish_fit();
    std::vector<double> idf;
    if (options_.use_idf) {
      double const s = options_.smooth_idf ? 1.0 : 0.0;
      double const n = static_cast<double>(counter.documents()) + s;
      idf.reserve(vocabulary.df.size());
      for (auto const d : vocabulary.df) idf.push_back(std::log(n / (static_cast<double>(d) + s)) + 1.0);
    }
    return {std::move(counter), std::move(vocabulary), std::move(idf)};
  }

  void adopt(fit_result& fit) {
    fitted_ = std::move(fit.vocabulary);
    idf_ = std::move(fit.idf);
    fitted_flag_ = true;
  }

  csr_matrix<cpu, T, I> weighted(detail::corpus_counter& counter, std::span<double const> idf) const {
    auto m = counter.template assemble<I, T>(detail::row_values::weighted, idf);
    return csr_matrix<cpu, T, I>::adopt_canonical(m.rows, m.cols, std::move(m.row_offsets),
                                                  std::move(m.col_indices), std::move(m.counts));
  }

  tfidf_options options_;
  bool fitted_flag_ = false;
  detail::fitted_vocabulary fitted_;  // terms, df, and the lookup table of transform
  std::vector<double> idf_;
};

}  // namespace mgpu
