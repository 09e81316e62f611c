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
// (documents are processed in batches; one dictionary per thread, merged at the end).
// Weighting and normalising run on the policy's devices through detail::fork_join,
// over row blocks balanced by nnz; results do not depend on the number of devices.
//
// Thread safety: const member functions (transform, weight, accessors) may run
// concurrently; fit, fit_transform and count need exclusive access. A failed fit
// leaves the vectorizer as it was.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <numeric>
#include <optional>
#include <ranges>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <omp.h>

#include "mgpu/core/buffer.hpp"
#include "mgpu/core/device.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/detail/text_term_table.hpp"
#include "mgpu/detail/tokenizer.hpp"
#include "mgpu/execution/fork_join.hpp"
#include "mgpu/execution/policy.hpp"
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
/// little enough that a streamed corpus never sits in memory whole.
inline constexpr std::size_t batch_documents = 1 << 16;
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
      if (bytes >= batch_bytes || views.size() + ends.size() >= batch_documents) flush();
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

/// The ids of `terms` in byte order (char_traits<char>: unsigned bytes, which is code
/// point order for UTF-8). Keys are the first 8 bytes as a big-endian integer
/// (zero-padded: terms hold no NUL, so a proper prefix sorts first): one pass splits
/// them by the first byte, then every thread takes whole first-byte buckets and sorts
/// each by an LSD radix sort on the other 7 bytes, then each run of equal heads by a
/// comparison sort of the remaining bytes. O(n) for the short terms that dominate a
/// vocabulary.
inline std::vector<std::uint32_t> sorted_terms(std::span<std::string_view const> terms) {
  struct key {
    std::uint64_t head;
    std::uint32_t id;
  };
  std::size_t const n = terms.size();
  auto const count = static_cast<std::int64_t>(n);
  std::vector<key> keys(n);
  std::vector<key> scratch(n);
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < count; ++i) {
    auto const id = static_cast<std::uint32_t>(i);
    keys[id] = {big_endian_head(terms[id]), id};
  }
  std::array<std::size_t, 257> bucket{};
  for (auto const& k : keys) ++bucket[(k.head >> 56) + 1];
  std::partial_sum(bucket.begin(), bucket.end(), bucket.begin());
  {
    auto next = bucket;
    for (auto const& k : keys) scratch[next[k.head >> 56]++] = k;
  }
  keys.swap(scratch);  // keys: split by the first byte
  std::vector<std::uint32_t> order(n);
#pragma omp parallel
  {
    std::array<std::array<std::size_t, 256>, 7> counts{};
#pragma omp for schedule(dynamic, 1)
    for (int b = 0; b < 256; ++b) {
      std::size_t const begin = bucket[static_cast<std::size_t>(b)];
      std::size_t const end = bucket[static_cast<std::size_t>(b) + 1];
      std::size_t const size = end - begin;
      if (size == 0) continue;
      key* from = keys.data() + begin;
      key* to = scratch.data() + begin;
      for (auto& c : counts) c.fill(0);
      for (std::size_t i = 0; i < size; ++i) {
        for (unsigned d = 0; d < 7; ++d) ++counts[d][(from[i].head >> (8 * d)) & 0xFF];
      }
      for (unsigned d = 0; d < 7; ++d) {
        auto& c = counts[d];
        // A digit that is the same in every key leaves the order as it is.
        if (std::find(c.begin(), c.end(), size) != c.end()) continue;
        std::size_t sum = 0;
        for (auto& x : c) sum += std::exchange(x, sum);
        for (std::size_t i = 0; i < size; ++i) to[c[(from[i].head >> (8 * d)) & 0xFF]++] = from[i];
        std::swap(from, to);
      }
      for (std::size_t first = 0; first < size;) {
        std::size_t last = first + 1;
        while (last < size && from[last].head == from[first].head) ++last;
        if (last - first > 1) {
          // Equal heads: both terms have at least 8 bytes.
          std::sort(from + first, from + last,
                    [&](key const& x, key const& y) { return terms[x.id].substr(8) < terms[y.id].substr(8); });
        }
        first = last;
      }
      for (std::size_t i = 0; i < size; ++i) order[begin + i] = from[i].id;
    }
  }
  return order;
}

struct term_count {
  std::uint32_t term;
  std::uint32_t count;
};

struct term_frequency {
  std::uint64_t documents = 0;  // documents containing the term
  std::uint64_t total = 0;      // occurrences in the corpus
};

/// Where a document's (term, count) entries are: in worker `worker`'s entry list.
struct document_entries {
  std::uint32_t worker = 0;
  std::uint32_t length = 0;
  std::size_t begin = 0;
};

/// One thread's counting state; it persists across batches.
struct count_worker {
  explicit count_worker(bool lowercase) : tokens(lowercase) {}
  word_tokenizer tokens;
  term_table terms;                      // this thread's dictionary (fit only)
  std::vector<std::uint32_t> in_document;  // per term: count in the current document
  std::vector<std::uint32_t> touched;    // terms seen in the current document
  std::vector<term_frequency> frequency;  // per term: df and total count
  std::vector<term_count> entries;       // rows of the count matrix, by document
  std::vector<std::string_view> features;  // the current document's terms ...
  std::vector<std::uint64_t> hashes;       // ... and their hashes
};

/// A count matrix as counting produces it (exact integer counts).
template <class I>
struct count_matrix {
  I rows = 0;
  I cols = 0;
  buffer<I, cpu> row_offsets;
  buffer<I, cpu> col_indices;
  buffer<std::uint32_t, cpu> counts;

  [[nodiscard]] csr_view<std::uint32_t, I> view() const noexcept {
    return {rows, cols, row_offsets.data(), col_indices.data(), counts.data()};
  }
};

/// The fitted state: sorted vocabulary, df per column, and the lookup table of every
/// term seen in the fit (the merged per-thread dictionaries, kept as they are rather
/// than rebuilt in column order) with each table id's column (npos: pruned).
struct fitted_vocabulary {
  std::vector<std::string> terms;
  std::vector<std::uint64_t> df;
  partitioned_term_table table;
  std::vector<std::uint32_t> column;
};

/// A fitted vocabulary's lookup: table id -> column (npos for pruned terms).
struct vocabulary_lookup {
  partitioned_term_table const* table = nullptr;
  std::uint32_t const* column = nullptr;
  std::size_t columns = 0;  // the vocabulary size
};

/// Tokenises and counts documents batch by batch on all OpenMP threads, either
/// building a vocabulary (fit) or looking terms up in a fixed one (transform).
class corpus_counter {
 public:
  /// `fixed`: the vocabulary to look terms up in (transform), or none to build one.
  /// `keep_rows`: whether to keep the per-document counts (not needed by a plain fit).
  corpus_counter(tfidf_options const& options, bool keep_rows, vocabulary_lookup fixed = {})
      : options_(options), keep_rows_(keep_rows), lookup_(fixed) {}

  void add_batch(std::span<std::string_view const> docs) {
    auto const threads = static_cast<std::size_t>(std::max(1, omp_get_max_threads()));
    while (workers_.size() < threads) {
      workers_.push_back(std::make_unique<count_worker>(options_.lowercase));
    }
    std::size_t const base = documents_;
    if (keep_rows_) rows_.resize(base + docs.size());
    std::exception_ptr error;
    std::size_t error_document = 0;
    auto const n = static_cast<std::int64_t>(docs.size());
#pragma omp parallel num_threads(static_cast<int>(threads))
    {
      auto& worker = *workers_[static_cast<std::size_t>(omp_get_thread_num())];
      auto const worker_index = static_cast<std::uint32_t>(omp_get_thread_num());
#pragma omp for schedule(dynamic, 16)
      for (std::int64_t i = 0; i < n; ++i) {
        std::size_t const index = base + static_cast<std::size_t>(i);
        try {
          auto const length = count_document(worker, docs[static_cast<std::size_t>(i)], index);
          if (keep_rows_) {
            rows_[index] = {worker_index, static_cast<std::uint32_t>(length),
                            worker.entries.size() - length};
          }
        } catch (...) {
#pragma omp critical(mgpu_tfidf_count_error)
          if (!error || index < error_document) {
            error = std::current_exception();
            error_document = index;
          }
        }
      }
    }
    if (error) std::rethrow_exception(error);
    documents_ += docs.size();
  }

  [[nodiscard]] std::size_t documents() const noexcept { return documents_; }

  /// Merges the per-thread dictionaries into the sorted vocabulary, applies min_df,
  /// max_df and max_features, and (if rows were kept) builds the count matrix.
  /// @throws invalid_argument if max_df allows fewer documents than min_df.
  template <class I>
  std::pair<fitted_vocabulary, count_matrix<I>> finish_fit() {
    // Merge the per-thread dictionaries into one split by hash, each part built by one
    // thread: a worker's terms are first bucketed by part, then part p interns every
    // worker's bucket p. Local ids map to global ids (part offset + id in the part).
    std::size_t const n_workers = workers_.size();
    std::size_t const n_parts = std::max<std::size_t>(1, n_workers);
    partitioned_term_table global(n_parts);
    std::vector<std::vector<std::vector<std::uint32_t>>> buckets(
        n_workers, std::vector<std::vector<std::uint32_t>>(n_parts));
    std::vector<std::vector<std::uint32_t>> to_global(n_workers);
    std::vector<std::vector<term_frequency>> part_frequency(n_parts);
    auto const merge_part = [&](std::size_t p) {
      auto& table = global.part(p);
      auto& frequency = part_frequency[p];
      std::size_t most = 0;
      for (std::size_t w = 0; w < n_workers; ++w) most += buckets[w][p].size();
      table.reserve(most);
      frequency.reserve(most);
      for (std::size_t w = 0; w < n_workers; ++w) {
        auto const& worker = *workers_[w];
        auto const& ids = buckets[w][p];
        for (std::size_t i = 0; i < ids.size(); ++i) {
          // Lookups miss cache: start loading the slots a few terms ahead.
          if (i + 8 < ids.size()) table.prefetch(worker.terms.hash(ids[i + 8]));
          std::uint32_t const id = ids[i];
          std::uint32_t const g = table.intern<true>(worker.terms.term(id), worker.terms.hash(id));
          if (g == frequency.size()) frequency.push_back({});
          frequency[g].documents += worker.frequency[id].documents;
          frequency[g].total += worker.frequency[id].total;
          to_global[w][id] = g;  // within the part until the parts are numbered
        }
      }
    };
    auto const workers = static_cast<std::int64_t>(n_workers);
    auto const parts = static_cast<std::int64_t>(n_parts);
    std::exception_ptr error;  // index_overflow (2^32 terms), rethrown outside the team
#pragma omp parallel
    {
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t wi = 0; wi < workers; ++wi) {
        auto const w = static_cast<std::size_t>(wi);
        auto const& terms = workers_[w]->terms;
        for (auto& b : buckets[w]) b.reserve(terms.size() / n_parts + 16);
        for (std::uint32_t id = 0; id < terms.size(); ++id) buckets[w][global.part_of(terms.hash(id))].push_back(id);
        to_global[w].resize(terms.size());
      }
#pragma omp for schedule(dynamic, 1)
      for (std::int64_t pi = 0; pi < parts; ++pi) {
        try {
          merge_part(static_cast<std::size_t>(pi));
        } catch (...) {
#pragma omp critical(mgpu_tfidf_merge_error)
          if (!error) error = std::current_exception();
        }
      }
#pragma omp single
      {
        try {
          if (!error) global.number();
        } catch (...) {
          error = std::current_exception();
        }
      }
      // Every thread sees the same `error` after the single's barrier.
      if (!error) {
#pragma omp for schedule(dynamic, 1)
        for (std::int64_t wi = 0; wi < workers; ++wi) {
          auto const w = static_cast<std::size_t>(wi);
          for (std::size_t p = 0; p < n_parts; ++p) {
            for (std::uint32_t id : buckets[w][p]) to_global[w][id] += global.first(p);
          }
        }
      }
    }
    if (error) std::rethrow_exception(error);
    // Every term's bytes, by global id, and its corpus frequencies.
    std::size_t const n_terms = global.size();
    std::vector<std::string_view> views(n_terms);
    std::vector<std::uint64_t> df(n_terms);
    std::vector<std::uint64_t> total(n_terms);
#pragma omp parallel for schedule(dynamic, 1)
    for (std::int64_t pi = 0; pi < parts; ++pi) {
      auto const p = static_cast<std::size_t>(pi);
      auto const& table = global.part(p);
      for (std::uint32_t id = 0; id < table.size(); ++id) {
        std::size_t const g = global.first(p) + id;
        views[g] = table.term(id);
        df[g] = part_frequency[p][id].documents;
        total[g] = part_frequency[p][id].total;
      }
    }
    std::vector<std::uint32_t> const order = sorted_terms(views);
    std::vector<std::uint32_t> const kept = select_terms(order, df, total);

    fitted_vocabulary vocabulary;
    std::vector<std::uint32_t> column(n_terms, term_table::npos);
    vocabulary.terms.resize(kept.size());
    vocabulary.df.resize(kept.size());
    auto const n_kept = static_cast<std::int64_t>(kept.size());
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < n_kept; ++i) {
      auto const c = static_cast<std::size_t>(i);
      std::uint32_t const g = order[kept[c]];
      column[g] = static_cast<std::uint32_t>(c);
      vocabulary.terms[c] = views[g];
      vocabulary.df[c] = df[g];
    }
    count_matrix<I> counts;
    if (keep_rows_) {
      // Worker ids -> columns (npos for pruned terms); assemble applies them.
      for (auto& map : to_global) {
        for (auto& g : map) g = column[g];
      }
      counts = assemble<I>(kept.size(), &to_global);
    } else {
      counts = empty_counts<I>(kept.size());
    }
    vocabulary.table = std::move(global);
    vocabulary.column = std::move(column);
    return {std::move(vocabulary), std::move(counts)};
  }

  /// The count matrix of a transform (columns = the fixed vocabulary).
  template <class I>
  count_matrix<I> finish_transform() {
    return assemble<I>(lookup_.columns, nullptr);
  }

 private:
  /// Counts one document into `w`; returns its number of distinct terms.
  std::size_t count_document(count_worker& w, std::string_view doc, std::size_t index) {
    // Any term's count in one document is at most its token count, < size / 2.
    MGPU_EXPECTS(doc.size() < (std::size_t{1} << 33), "document ", index, " has ", doc.size(),
                 " bytes; documents of 8 GiB or more are not supported");
    w.tokens.tokenize(doc, index);
    auto const [min_n, max_n] = options_.ngram_range;
    std::size_t const tokens = w.tokens.size();
    std::size_t n = 0;
    for (auto k = static_cast<std::size_t>(min_n); k <= static_cast<std::size_t>(max_n) && k <= tokens; ++k) {
      n += tokens - k + 1;
    }
    if (w.features.size() < n) {
      w.features.resize(n);
      w.hashes.resize(n);
    }
    std::string_view* const features = w.features.data();
    std::uint64_t* const hashes = w.hashes.data();
    // Tokens and n-grams lie in the tokenizer's buffer, padded: hashing and lookups
    // read whole 8-byte words.
    if (max_n == 1) {
      for (std::size_t i = 0; i < n; ++i) {
        features[i] = w.tokens.token(i);
        hashes[i] = hash_term<true>(features[i]);
      }
    } else {
      std::size_t i = 0;
      w.tokens.for_each_ngram(min_n, max_n, [&](std::string_view term) {
        features[i] = term;
        hashes[i] = hash_term<true>(term);
        ++i;
      });
    }
    // A document adds at most n new terms.
    std::size_t const most_terms = (lookup_.table != nullptr ? lookup_.columns : w.terms.size()) + n;
    if (w.in_document.size() < most_terms) w.in_document.resize(std::max(most_terms, 2 * w.in_document.size()), 0);
    if (w.touched.size() < n) w.touched.resize(n);
    std::uint32_t* const in_document = w.in_document.data();
    std::uint32_t* const touched = w.touched.data();
    std::size_t distinct = 0;
    auto add = [&](std::uint32_t id) {
      if (in_document[id]++ == 0) touched[distinct++] = id;
    };
    constexpr std::size_t ahead = 8;
    if (lookup_.table != nullptr) {
      for (std::size_t i = 0; i < n; ++i) {
        if (i + ahead < n) lookup_.table->prefetch(hashes[i + ahead]);
        std::uint32_t const id = lookup_.table->find<true>(features[i], hashes[i]);
        if (id == term_table::npos) continue;
        std::uint32_t const c = lookup_.column[id];
        if (c != term_table::npos) add(c);
      }
    } else {
      for (std::size_t i = 0; i < n; ++i) {
        if (i + ahead < n) w.terms.prefetch(hashes[i + ahead]);
        add(w.terms.intern<true>(features[i], hashes[i]));
      }
      if (w.frequency.size() < w.terms.size()) w.frequency.resize(std::max(w.terms.size(), 2 * w.frequency.size()));
    }
    std::size_t const first = w.entries.size();
    if (keep_rows_) w.entries.resize(first + distinct);
    for (std::size_t t = 0; t < distinct; ++t) {
      std::uint32_t const id = touched[t];
      std::uint32_t const c = std::exchange(in_document[id], 0);
      if (keep_rows_) w.entries[first + t] = {id, c};
      if (lookup_.table == nullptr) {
        ++w.frequency[id].documents;
        w.frequency[id].total += c;
      }
    }
    return distinct;
  }

  /// Positions (in sorted order) of the terms that survive min_df, max_df and
  /// max_features, ascending; sklearn's _limit_features.
  [[nodiscard]] std::vector<std::uint32_t> select_terms(std::vector<std::uint32_t> const& order,
                                                        std::vector<std::uint64_t> const& df,
                                                        std::vector<std::uint64_t> const& total) const {
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
    for (std::uint32_t k = 0; k < order.size(); ++k) {
      auto const d = static_cast<double>(df[order[k]]);
      if (d <= max_count && d >= min_count) kept.push_back(k);
    }
    if (options_.max_features && kept.size() > static_cast<std::size_t>(*options_.max_features)) {
      // binary counts are 1, so their corpus total is the document frequency.
      auto const& score = options_.binary ? df : total;
      std::stable_sort(kept.begin(), kept.end(), [&](std::uint32_t a, std::uint32_t b) {
        return score[order[a]] > score[order[b]];
      });
      kept.resize(static_cast<std::size_t>(*options_.max_features));
      std::sort(kept.begin(), kept.end());
    }
    return kept;
  }

  template <class I>
  count_matrix<I> empty_counts(std::size_t cols) const {
    check_fits_index<I>(static_cast<std::int64_t>(documents_), "documents");
    check_fits_index<I>(static_cast<std::int64_t>(cols), "vocabulary size");
    count_matrix<I> m;
    m.rows = static_cast<I>(documents_);
    m.cols = static_cast<I>(cols);
    m.row_offsets = buffer<I, cpu>(documents_ + 1);
    std::fill_n(m.row_offsets.data(), documents_ + 1, I{0});
    return m;
  }

  /// Builds the CSR count matrix from the kept rows; a term's column is columns[worker]
  /// [term] (the term itself when `columns` is null); entries whose column is npos
  /// (pruned) are dropped, each row is sorted by column. Binary counts become 1.
  template <class I>
  count_matrix<I> assemble(std::size_t cols, std::vector<std::vector<std::uint32_t>> const* columns) {
    check_fits_index<I>(static_cast<std::int64_t>(documents_), "documents");
    check_fits_index<I>(static_cast<std::int64_t>(cols), "vocabulary size");
    auto const n = static_cast<std::int64_t>(documents_);
    bool pruned = false;
    if (columns != nullptr) {
      for (auto const& column : *columns) {
        pruned = pruned || std::find(column.begin(), column.end(), term_table::npos) != column.end();
      }
    }
    std::vector<std::size_t> offsets(documents_ + 1, 0);
#pragma omp parallel for schedule(static)
    for (std::int64_t d = 0; d < n; ++d) {
      auto const& row = rows_[static_cast<std::size_t>(d)];
      std::size_t kept = row.length;
      if (columns != nullptr && pruned) {
        auto const& entries = workers_[row.worker]->entries;
        auto const& column = (*columns)[row.worker];
        kept = 0;
        for (std::size_t p = row.begin; p < row.begin + row.length; ++p) {
          kept += column[entries[p].term] != term_table::npos ? 1 : 0;
        }
      }
      offsets[static_cast<std::size_t>(d) + 1] = kept;
    }
    std::partial_sum(offsets.begin(), offsets.end(), offsets.begin());
    std::size_t const nnz = offsets.back();
    check_fits_index<I>(static_cast<std::int64_t>(nnz), "nnz");

    count_matrix<I> m;
    m.rows = static_cast<I>(documents_);
    m.cols = static_cast<I>(cols);
    m.row_offsets = buffer<I, cpu>(documents_ + 1);
    m.col_indices = buffer<I, cpu>(nnz);
    m.counts = buffer<std::uint32_t, cpu>(nnz);
    bool const binary = options_.binary;
    // Long rows are sorted by an LSD radix sort on the column (branch-free; a comparison
    // sort mispredicts about every other branch), in passes of at most 10 bits.
    auto const column_bits = static_cast<unsigned>(std::bit_width(cols));
    unsigned const passes = std::max(1u, (column_bits + 9) / 10);
    unsigned const digit_bits = std::max(1u, (column_bits + passes - 1) / passes);
#pragma omp parallel
    {
      std::vector<term_count> row_entries;
      std::vector<term_count> scratch;
      std::vector<std::uint32_t> bucket(std::size_t{1} << digit_bits);
#pragma omp for schedule(dynamic, 256)
      for (std::int64_t d = 0; d < n; ++d) {
        auto const di = static_cast<std::size_t>(d);
        auto const& row = rows_[di];
        auto const& entries = workers_[row.worker]->entries;
        row_entries.clear();
        if (columns == nullptr) {
          row_entries.assign(entries.begin() + static_cast<std::ptrdiff_t>(row.begin),
                             entries.begin() + static_cast<std::ptrdiff_t>(row.begin + row.length));
        } else {
          auto const& column = (*columns)[row.worker];
          for (std::size_t p = row.begin; p < row.begin + row.length; ++p) {
            std::uint32_t const c = column[entries[p].term];
            if (c != term_table::npos) row_entries.push_back({c, entries[p].count});
          }
        }
        std::size_t const length = row_entries.size();
        if (length <= 32) {
          // A row's columns are distinct, so each entry's place is the number of
          // smaller columns: branch-free (and vectorised) where an insertion sort
          // mispredicts about every other comparison.
          scratch.resize(length);
          term_count const* const e = row_entries.data();
          for (std::size_t i = 0; i < length; ++i) {
            std::size_t rank = 0;
            for (std::size_t j = 0; j < length; ++j) rank += static_cast<std::size_t>(e[j].term < e[i].term);
            scratch[rank] = e[i];
          }
          row_entries.swap(scratch);
        } else if (length <= 64) {
          std::sort(row_entries.begin(), row_entries.end(),
                    [](term_count a, term_count b) { return a.term < b.term; });
        } else {
          scratch.resize(row_entries.size());
          for (unsigned pass = 0; pass < passes; ++pass) {
            unsigned const shift = pass * digit_bits;
            std::uint32_t const mask = (std::uint32_t{1} << digit_bits) - 1;
            std::fill(bucket.begin(), bucket.end(), 0u);
            for (auto const& e : row_entries) ++bucket[(e.term >> shift) & mask];
            std::uint32_t sum = 0;
            for (auto& b : bucket) sum += std::exchange(b, sum);
            for (auto const& e : row_entries) scratch[bucket[(e.term >> shift) & mask]++] = e;
            row_entries.swap(scratch);
          }
        }
        std::size_t out = offsets[di];
        m.row_offsets[di] = static_cast<I>(out);
        for (auto const& e : row_entries) {
          m.col_indices[out] = static_cast<I>(e.term);
          m.counts[out] = binary ? 1u : e.count;
          ++out;
        }
      }
    }
    m.row_offsets[documents_] = static_cast<I>(nnz);
    return m;
  }

  tfidf_options options_;
  bool keep_rows_;
  vocabulary_lookup lookup_;  // table == nullptr: fit, building the vocabulary
  std::size_t documents_ = 0;
  std::vector<std::unique_ptr<count_worker>> workers_;
  std::vector<document_entries> rows_;
};

/// One row of TfidfTransformer.transform: weights row r's counts (tf or 1 + ln tf,
/// times idf, in double) and scales them to unit norm into out (indexed like the
/// counts). Plain pointers, no allocation and constexpr, so the CUDA backend runs this
/// same code on the device, one row per thread (nvcc --expt-relaxed-constexpr).
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

/// The same for a count matrix that is no longer needed: its structure is moved into
/// the result instead of copied.
template <class T, class I>
csr_matrix<cpu, T, I> weight_counts_on(execution_policy<cpu> const* policy, count_matrix<I>&& counts,
                                       std::span<double const> idf, tfidf_options const& o) {
  buffer<T, cpu> values(static_cast<std::size_t>(counts.view().nnz()));
  weight_counts_into(policy, counts.view(), idf, o, values.data());
  return csr_matrix<cpu, T, I>::adopt_canonical(counts.rows, counts.cols, std::move(counts.row_offsets),
                                                std::move(counts.col_indices), std::move(values));
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

// ---- Weighting on other device kinds (the GPU backend) ---------------------------
/// A device backend specialises this (mgpu/cuda.hpp does for gpu) with
///   template <class T, class C, class I>
///   static csr_matrix<cpu, T, I> weight(execution_policy<Kind> const&, csr_view<C, I>,
///                                       std::span<double const> idf, tfidf_options const&);
/// computing what weight_rows computes (it may run tfidf_row_weighting on its devices).
template <class Kind>
struct weighting_leaf;

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
// ---- end of weighting on other device kinds ---------------------------------------

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
  if constexpr (std::is_same_v<Kind, cpu>) {
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
  /// @throws invalid_argument for invalid UTF-8 (naming the document and byte offset),
  ///         or when max_df allows fewer documents than min_df; index_overflow when the
  ///         number of documents or terms exceeds I.
  template <text_corpus C>
  tfidf_vectorizer& fit(C&& docs) {
    fit_counts(std::forward<C>(docs), false);
    return *this;
  }

  /// fit, then transform of the same corpus, in one pass. n_docs x vocabulary().size().
  /// @throws as fit.
  template <text_corpus C>
  csr_matrix<cpu, T, I> fit_transform(C&& docs) {
    // idf() is read only once fit_counts has set it.
    auto counts = fit_counts(std::forward<C>(docs), true);
    return detail::weight_counts_on<T>(nullptr, std::move(counts), idf(), options_);
  }

  /// fit_transform with the weighting and normalisation on `policy`'s devices.
  template <class Kind, text_corpus C>
  csr_matrix<cpu, T, I> fit_transform(execution_policy<Kind> const& policy, C&& docs) {
    if constexpr (std::is_same_v<Kind, cpu>) {
      auto counts = fit_counts(std::forward<C>(docs), true);
      return detail::weight_counts_on<T>(&policy, std::move(counts), idf(), options_);
    } else {
      auto const counts = fit_counts(std::forward<C>(docs), true);
      return detail::weight_counts<T>(policy, counts.view(), idf(), options_);
    }
  }

  /// The tf-idf rows of new documents with the fitted vocabulary and idf; terms not in
  /// the vocabulary are ignored (sklearn `transform`).
  /// @throws invalid_argument if not fitted, or for invalid UTF-8.
  template <text_corpus C>
  csr_matrix<cpu, T, I> transform(C&& docs) const {
    auto counts = count_fixed(std::forward<C>(docs));
    return detail::weight_counts_on<T>(nullptr, std::move(counts), idf(), options_);
  }

  /// transform with the weighting and normalisation on `policy`'s devices.
  template <class Kind, text_corpus C>
  csr_matrix<cpu, T, I> transform(execution_policy<Kind> const& policy, C&& docs) const {
    if constexpr (std::is_same_v<Kind, cpu>) {
      auto counts = count_fixed(std::forward<C>(docs));
      return detail::weight_counts_on<T>(&policy, std::move(counts), idf(), options_);
    } else {
      auto const counts = count_fixed(std::forward<C>(docs));
      return detail::weight_counts<T>(policy, counts.view(), idf(), options_);
    }
  }

  /// Fits (vocabulary and idf, as fit) and returns the term counts instead of tf-idf:
  /// sklearn's CountVectorizer(...).fit_transform, with `binary` applied. Counts above
  /// 2^24 are not exact in float. weight(count(docs)) equals fit_transform(docs).
  /// @throws as fit.
  template <text_corpus C>
  csr_matrix<cpu, T, I> count(C&& docs) {
    auto counts = fit_counts(std::forward<C>(docs), true);
    auto const nnz = static_cast<std::int64_t>(counts.view().nnz());
    buffer<T, cpu> values(static_cast<std::size_t>(nnz));
    T* const out = values.data();
    std::uint32_t const* const in = counts.counts.data();
#pragma omp parallel for schedule(static)
    for (std::int64_t p = 0; p < nnz; ++p) out[p] = static_cast<T>(in[p]);
    return csr_matrix<cpu, T, I>::adopt_canonical(counts.rows, counts.cols, std::move(counts.row_offsets),
                                                  std::move(counts.col_indices), std::move(values));
  }

  /// Weights a count matrix with the fitted idf (sklearn TfidfTransformer.transform).
  /// @throws invalid_argument if not fitted; dimension_mismatch if counts.cols() is
  ///         not the vocabulary size.
  [[nodiscard]] csr_matrix<cpu, T, I> weight(csr_matrix<cpu, T, I> const& counts) const {
    expect_fitted("weight");
    if (static_cast<std::size_t>(counts.cols()) != vocabulary_.size()) {
      throw dimension_mismatch(detail::message("tfidf_vectorizer::weight: the count matrix has ",
                                       counts.cols(), " columns but the vocabulary has ",
                                       vocabulary_.size(), " terms"));
    }
    return detail::weight_counts<T>(counts.view(), idf(), options_);
  }

  /// The terms in column order (sorted by code point); empty before fit.
  [[nodiscard]] std::vector<std::string> const& vocabulary() const noexcept { return vocabulary_; }
  /// The idf of each column (sklearn `idf_`); empty when !use_idf or before fit.
  [[nodiscard]] std::span<double const> idf() const noexcept { return idf_; }
  /// Number of documents containing each column's term in the fitted corpus.
  [[nodiscard]] std::span<std::uint64_t const> document_frequency() const noexcept { return df_; }
  [[nodiscard]] bool is_fitted() const noexcept { return fitted_; }
  [[nodiscard]] tfidf_options const& options() const noexcept { return options_; }

 private:
  void expect_fitted(char const* what) const {
    MGPU_EXPECTS(fitted_, "tfidf_vectorizer::", what, " called before fit");
  }

  template <class C>
  detail::count_matrix<I> fit_counts(C&& docs, bool keep_rows) {
    detail::corpus_counter counter(options_, keep_rows);
    detail::for_each_batch(std::forward<C>(docs),
                           [&](std::span<std::string_view const> batch) { counter.add_batch(batch); });
    auto [fitted, counts] = counter.template finish_fit<I>();
    std::vector<double> idf;
    if (options_.use_idf) {
      double const s = options_.smooth_idf ? 1.0 : 0.0;
      double const n = static_cast<double>(counter.documents()) + s;
      idf.reserve(fitted.df.size());
      for (auto const d : fitted.df) idf.push_back(std::log(n / (static_cast<double>(d) + s)) + 1.0);
    }
    vocabulary_ = std::move(fitted.terms);
    table_ = std::move(fitted.table);
    column_ = std::move(fitted.column);
    df_ = std::move(fitted.df);
    idf_ = std::move(idf);
    fitted_ = true;
    return std::move(counts);
  }

  template <class C>
  detail::count_matrix<I> count_fixed(C&& docs) const {
    expect_fitted("transform");
    detail::corpus_counter counter(options_, true, {&table_, column_.data(), vocabulary_.size()});
    detail::for_each_batch(std::forward<C>(docs),
                           [&](std::span<std::string_view const> batch) { counter.add_batch(batch); });
    return counter.template finish_transform<I>();
  }

  tfidf_options options_;
  bool fitted_ = false;
  std::vector<std::string> vocabulary_;
  detail::partitioned_term_table table_;
  std::vector<std::uint32_t> column_;  // table_ id -> column, npos for pruned terms
  std::vector<std::uint64_t> df_;
  std::vector<double> idf_;
};

}  // namespace mgpu
