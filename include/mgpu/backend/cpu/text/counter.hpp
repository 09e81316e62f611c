// mgpu/backend/cpu/text/counter.hpp — the count stage: documents batch by batch on all
// OpenMP threads of the calling thread, each feature interned into one shared term table
// (fit) or looked up in a fitted vocabulary's (transform).
//
// Each thread keeps, per term id, its count in the current document and the number of
// documents that held the term, and appends each document's distinct (term, count)
// entries, packed, to its own entry list (entry_array.hpp). A document that meets the
// shared table full is counted again after the table grows (between rounds, on one
// thread). With char_wb, whose n-grams depend on their word alone, each thread remembers
// the ids of the words it has met (word_cache.hpp) and looks up only the n-grams of new
// words. What the counter leaves
// is read by the vocabulary stage (vocabulary.hpp: document frequencies, totals) and the
// assemble stage (assemble.hpp: the entries of every document).
//
// Memory of the kept rows: the threads' entry lists are cut into generations. Once the
// lists of the current generation hold generation_bytes or more (checked after each
// batch), they are sealed: shrunk to their size and put aside with the documents
// they cover, and the threads start new lists. Assembling reads a generation at a time
// and frees it as soon as its rows are in the matrix, so the counts and the matrix are
// never both held whole: the peak is the matrix plus one generation.
//
// Thread safety: one counter per call; add_batch needs exclusive access.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include <omp.h>

#include "mgpu/algorithms/term_list.hpp"
#include "mgpu/algorithms/tfidf_options.hpp"
#include "mgpu/backend/cpu/text/analyzer.hpp"
#include "mgpu/backend/cpu/text/entry_array.hpp"
#include "mgpu/backend/cpu/text/word_cache.hpp"
#include "mgpu/detail/large_pages.hpp"
#include "mgpu/detail/text_term_table.hpp"

namespace mgpu::detail {

/// A term's counters in one thread: its count in the current document and the number of
/// documents that contained it (since the last fold into the counter's df carry). Side
/// by side, so that ending a document touches the cache line counting it did.
struct term_counters {
  std::uint32_t in_document;
  std::uint32_t documents;
};

/// One thread's counting state; it persists across batches. Arrays indexed by term id
/// have at least the shared table's limit() entries.
struct count_worker {
  explicit count_worker(text_analysis const& a) : analyzer(a) {}
  document_analyzer analyzer;
  term_arena arena;  // the bytes of the terms this thread added
  std::vector<term_counters, large_page_allocator<term_counters>> counters;  // per term
  std::vector<std::uint32_t> touched;                                       // terms of the current document
  std::vector<std::uint64_t, large_page_allocator<std::uint64_t>> total;    // per term: occurrences (max_features)
  entry_list entries;                                                       // rows of the count matrix (packed)
  std::vector<std::uint32_t> row_counts;                                    // the current document's counts
  std::uint8_t id_bytes = 1;                                                // its packed widths
  std::uint8_t count_bytes = 1;
  word_cache words;                                                         // char_wb: ids per word
  std::vector<std::uint32_t> word_ids;                                      // a new word's ids ...
  std::vector<std::string_view> word_features;                              // ... n-grams ...
  std::vector<std::uint64_t> word_hashes;                                   // ... and their hashes
  std::vector<std::uint32_t> deferred;                                      // documents met with the table full
};

/// The fitted state: the vocabulary in column order, df per column, and the table every
/// term of the fit went through, its ids renumbered to columns (pruned terms never match).
struct fitted_vocabulary {
  term_list terms;
  std::vector<std::uint64_t> df;
  term_table table;
};

/// Bytes of packed entries per generation of kept rows (file comment): 32 MiB.
inline constexpr std::size_t generation_bytes = std::size_t{32} << 20;

/// Sealed entry lists: documents [first_document, the next generation's first) have their
/// entries in `lists` (one list per counting thread, document_entries::worker).
struct entry_generation {
  std::size_t first_document = 0;
  std::vector<entry_list> lists;
};

class corpus_counter {
 public:
  /// `fitted`: the vocabulary to look terms up in (transform, or a fit with a fixed
  /// vocabulary), or none to build one. `keep_rows`: whether to keep the per-document
  /// entries (not needed by a plain fit). `count_df`: whether to count the documents
  /// holding each term when looking terms up in `fitted` (a fixed vocabulary's fit).
  /// `seal_bytes`: the size at which a generation of kept entries is sealed (file
  /// comment); 0 seals one after every batch. Results do not depend on it.
  /// @throws invalid_argument for a token_pattern that does not compile (text_analysis).
  corpus_counter(tfidf_options const& options, bool keep_rows, fitted_vocabulary const* fitted = nullptr,
                 bool count_df = false, std::size_t seal_bytes = generation_bytes)
      : options_(options),
        analysis_(std::make_unique<text_analysis>(options_)),
        keep_rows_(keep_rows),
        count_df_(fitted == nullptr || count_df),
        fitted_(fitted),
        seal_bytes_(seal_bytes) {}

  /// Counts the documents of one batch, numbered from documents().
  /// @throws invalid_argument for a document the analyzer rejects (the first such one of
  ///         the batch); std::bad_alloc.
  void add_batch(std::span<std::string_view const> docs) {
    // document_entries::worker is 16 bits.
    auto const threads = std::min<std::size_t>(static_cast<std::size_t>(std::max(1, omp_get_max_threads())), 65535);
    while (workers_.size() < threads) workers_.push_back(std::make_unique<count_worker>(*analysis_));
    std::size_t const base = documents_;
    std::size_t bytes = 0;
    for (auto const& d : docs) bytes += d.size();
    if (keep_rows_) {
      rows_.resize(base + docs.size());
      // Distinct word features of a document: at most (bytes + 1) / 3 per n-gram length
      // (tokens have two bytes and a separator), so of the batch at most (bytes + docs) / 3.
      // Character n-grams repeat more: half the bytes per length is reserved, and the
      // entries grow without copies beyond that. Reserved, not touched.
      auto const lengths =
          static_cast<std::size_t>(options_.ngram_range.second - options_.ngram_range.first + 1);
      std::size_t const most = options_.analyzer == tfidf_analyzer::word ? (bytes + docs.size()) / 3 * lengths
                                                                         : (bytes + docs.size()) / 2 * lengths;
      for (auto& w : workers_) w->entries.reserve(w->entries.size() + packed_size(most, 4, 4));
    }
    // A thread's document counts are 32-bit: fold them into df_carry_ before a thread
    // could have counted 2^32 documents.
    if (count_df_ && since_fold_ + docs.size() > std::numeric_limits<std::uint32_t>::max()) {
      fold_document_counts();
    }
    since_fold_ += docs.size();
    if (fitted_ == nullptr && table_.size() == 0) {
      // Heaps' law (V ~ K sqrt(N)) with a generous K. A growth costs a serial rehash and
      // a round of the documents that found the table full.
      // Character n-grams: vocabularies grow faster, by a table of four times the size per
      // n-gram length.
      double const k = options_.analyzer == tfidf_analyzer::word
                           ? 32.0
                           : 128.0 * static_cast<double>(options_.ngram_range.second - options_.ngram_range.first + 1);
      table_.grow(static_cast<std::size_t>(k * std::sqrt(static_cast<double>(bytes))));
    }
    // Documents are handed out ~256 KB of text at a time, so that threads of a corpus of
    // short documents do not take turns on the loop counter's cache line.
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
    if (keep_rows_) {
      std::size_t held = 0;
      for (auto const& w : workers_) held += w->entries.size();
      if (held >= seal_bytes_) seal_rows();
    }
  }

  /// Seals the current generation of kept entries (file comment), if it covers any
  /// document. Never throws.
  void seal_rows() noexcept {
    if (!keep_rows_ || documents_ == generation_first_) return;
    entry_generation g;
    g.first_document = generation_first_;
    try {
      g.lists.reserve(workers_.size());
      generations_.reserve(generations_.size() + 1);
    } catch (...) {
      return;  // no room for the bookkeeping: the generation stays open, still valid
    }
    for (auto& w : workers_) {
      w->entries.shrink_to_fit();
      g.lists.push_back(std::exchange(w->entries, entry_list{}));
    }
    generations_.push_back(std::move(g));
    generation_first_ = documents_;
  }

  /// Sealed generations (call seal_rows() first to include the last documents).
  [[nodiscard]] std::size_t generations() const noexcept { return generations_.size(); }
  [[nodiscard]] entry_generation const& generation(std::size_t g) const noexcept { return generations_[g]; }
  /// The documents of generation g: [first, last).
  [[nodiscard]] std::size_t generation_end(std::size_t g) const noexcept {
    return g + 1 < generations_.size() ? generations_[g + 1].first_document : generation_first_;
  }
  /// Document d of generation g: its packed entries (entry_array.hpp: packed_term,
  /// packed_count). Valid until release_generation(g).
  [[nodiscard]] unsigned char const* entries(std::size_t g, document_entries const& r) const noexcept {
    return generations_[g].lists[r.worker].data() + r.begin;
  }
  /// Frees generation g's entries (its documents' rows are then empty). Never throws.
  void release_generation(std::size_t g) noexcept {
    for (auto& list : generations_[g].lists) list = entry_list{};
  }
  /// Frees the per-document records and every generation (after assembling).
  void release_rows() noexcept {
    std::vector<entry_generation>().swap(generations_);
    rows_ = growable_array<document_entries>{};
  }
  /// Frees the threads' counting state (per-term counters, totals, caches, analyzers),
  /// once the vocabulary stage has read the document frequencies and totals: after this,
  /// document_frequency, total_count and add_batch may not be called. Seals first.
  void release_workers() noexcept {
    seal_rows();
    workers_.clear();
  }

  [[nodiscard]] std::size_t documents() const noexcept { return documents_; }
  [[nodiscard]] tfidf_options const& options() const noexcept { return options_; }
  [[nodiscard]] bool keeps_rows() const noexcept { return keep_rows_; }
  /// The vocabulary looked up (transform), or null (fit).
  [[nodiscard]] fitted_vocabulary const* fitted() const noexcept { return fitted_; }
  /// The fit's term table (ids of the features met so far).
  [[nodiscard]] term_table& table() noexcept { return table_; }
  [[nodiscard]] std::vector<std::unique_ptr<count_worker>>& workers() noexcept { return workers_; }
  [[nodiscard]] std::vector<std::unique_ptr<count_worker>> const& workers() const noexcept { return workers_; }
  /// Where document d's packed entries are: in its generation's list `worker`
  /// (entries()), or, before sealing, in workers()[worker].entries.
  [[nodiscard]] document_entries const& row(std::size_t d) const noexcept { return rows_[d]; }

  /// Documents holding term `id` in the fit: the threads' counts plus the folded carry.
  [[nodiscard]] std::uint64_t document_frequency(std::size_t id) const noexcept {
    std::uint64_t d = id < df_carry_.size() ? df_carry_[id] : 0;
    for (auto const& w : workers_) d += w->counters[id].documents;
    return d;
  }
  /// Occurrences of term `id` in the fit (kept only when max_features is set).
  [[nodiscard]] std::uint64_t total_count(std::size_t id) const noexcept {
    std::uint64_t c = 0;
    for (auto const& w : workers_) c += w->total[id];
    return c;
  }

 private:
  static constexpr std::size_t deferred = ~std::size_t{0};

  void fold_document_counts() {
    df_carry_.resize(fitted_ != nullptr ? fitted_->terms.size() : table_.size(), 0);
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
  // `deferred` list. The error kept is the one of the first document that has one.
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
      // Each thread sizes its own per-term arrays: their pages are faulted in by all
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
            rows_[index] = {worker.entries.size() - packed_size(length, worker.id_bytes, worker.count_bytes),
                            static_cast<std::uint32_t>(length), static_cast<std::uint16_t>(worker_index),
                            worker.id_bytes, worker.count_bytes};
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
    if (w.analyzer.by_words()) return count_by_words(w, doc, index);
    document_analyzer& a = w.analyzer;
    std::size_t const n = a.analyze(doc, index);
    if (w.touched.size() < n) w.touched.resize(n);
    std::uint64_t const* const hashes = a.hashes();
    term_counters* const counters = w.counters.data();
    std::uint32_t* const touched = w.touched.data();
    std::size_t distinct = 0;
    // Branch-free: whether a feature is its term's first in the document is a coin flip
    // to the branch predictor.
    auto add = [&](std::uint32_t id) {
      touched[distinct] = id;
      distinct += counters[id].in_document++ == 0 ? 1 : 0;
    };
    // The slots of the next `ahead` features are always being fetched, from the first
    // feature on.
    constexpr std::size_t ahead = 8;
    term_table const& table = fitted_ != nullptr ? fitted_->table : table_;
    for (std::size_t i = 0; i < n && i < ahead; ++i) table.prefetch(hashes[i]);
    if (fitted_ != nullptr) {
      auto const columns = [&](std::uint32_t c) { return fitted_->terms[c]; };
      for (std::size_t i = 0; i < n; ++i) {
        if (i + ahead < n) table.prefetch(hashes[i + ahead]);
        std::uint32_t const c = table.find(a.feature(i), hashes[i], columns);
        if (c != term_table::npos) add(c);
      }
    } else {
      for (std::size_t i = 0; i < n; ++i) {
        if (i + ahead < n) table.prefetch(hashes[i + ahead]);
        std::uint32_t const id = table_.intern(a.feature(i), hashes[i], w.arena);
        if (id == term_table::full) {
          for (std::size_t t = 0; t < distinct; ++t) counters[touched[t]].in_document = 0;
          return deferred;
        }
        add(id);
      }
    }
    return finish_document(w, distinct);
  }

  /// count_document for an analyzer whose features come word by word: each word's ids
  /// (table ids, or columns and npos in a lookup) come from the thread's word_cache, or
  /// are looked up n-gram by n-gram and remembered.
  std::size_t count_by_words(count_worker& w, std::string_view doc, std::size_t index) {
    document_analyzer& a = w.analyzer;
    std::size_t const words = a.analyze_words(doc, index);
    term_counters* const counters = w.counters.data();
    std::size_t distinct = 0;
    auto const columns = [&](std::uint32_t c) { return fitted_->terms[c]; };
    for (std::size_t k = 0; k < words; ++k) {
      std::string_view const word = a.word(k);
      std::uint64_t const h = hash_term<true>(word);
      std::span<std::uint32_t const> ids;
      if (!w.words.find(word, h, ids)) {
        // The word's n-grams and hashes, their slots fetched before any is looked up.
        w.word_features.clear();
        w.word_hashes.clear();
        a.word_ngrams(k, [&](std::string_view feature, std::uint64_t fh) {
          w.word_features.push_back(feature);
          w.word_hashes.push_back(fh);
        });
        term_table const& table = fitted_ != nullptr ? fitted_->table : table_;
        for (std::uint64_t const fh : w.word_hashes) table.prefetch(fh);
        w.word_ids.clear();
        for (std::size_t i = 0; i < w.word_features.size(); ++i) {
          std::uint32_t const id = fitted_ != nullptr
                                       ? table.find(w.word_features[i], w.word_hashes[i], columns)
                                       : table_.intern(w.word_features[i], w.word_hashes[i], w.arena);
          if (id == term_table::full && fitted_ == nullptr) {
            for (std::size_t t = 0; t < distinct; ++t) counters[w.touched[t]].in_document = 0;
            return deferred;
          }
          w.word_ids.push_back(id);
        }
        w.words.insert(word, h, w.word_ids);
        ids = w.word_ids;
      }
      if (w.touched.size() < distinct + ids.size()) w.touched.resize(2 * (distinct + ids.size()));
      std::uint32_t* const touched = w.touched.data();
      for (std::uint32_t const id : ids) {
        if (id == term_table::npos) continue;
        touched[distinct] = id;
        distinct += counters[id].in_document++ == 0 ? 1 : 0;
      }
    }
    return finish_document(w, distinct);
  }

  // Writes the document's entries (the `distinct` terms in w.touched), packed, and resets
  // their in-document counts; returns `distinct`. The widths go to w.id_bytes and
  // w.count_bytes.
  std::size_t finish_document(count_worker& w, std::size_t distinct) {
    term_counters* const counters = w.counters.data();
    std::uint32_t const* const touched = w.touched.data();
    bool const totals = fitted_ == nullptr && options_.max_features.has_value();
    if (!keep_rows_) {
      for (std::size_t t = 0; t < distinct; ++t) {
        std::uint32_t const id = touched[t];
        std::uint32_t const c = std::exchange(counters[id].in_document, 0);
        if (count_df_) ++counters[id].documents;
        if (totals) w.total[id] += c;
      }
      return distinct;
    }
    if (w.row_counts.size() < distinct) w.row_counts.resize(std::max(distinct, 2 * w.row_counts.size()));
    std::uint32_t* const counts = w.row_counts.data();
    std::uint32_t largest_id = 0;
    std::uint32_t largest_count = 0;
    for (std::size_t t = 0; t < distinct; ++t) {
      std::uint32_t const id = touched[t];
      std::uint32_t const c = std::exchange(counters[id].in_document, 0);
      counts[t] = c;
      largest_id = std::max(largest_id, id);
      largest_count = std::max(largest_count, c);
      if (count_df_) ++counters[id].documents;
      if (totals) w.total[id] += c;
    }
    unsigned const id_bytes = packed_bytes(largest_id);
    unsigned const count_bytes = packed_bytes(largest_count) == 3 ? 4u : packed_bytes(largest_count);
    unsigned char* const out = w.entries.extend(packed_size(distinct, id_bytes, count_bytes));
    pack_values(out, touched, distinct, id_bytes);
    pack_values(out + distinct * id_bytes, counts, distinct, count_bytes);
    w.id_bytes = static_cast<std::uint8_t>(id_bytes);
    w.count_bytes = static_cast<std::uint8_t>(count_bytes);
    return distinct;
  }

  tfidf_options options_;
  std::unique_ptr<text_analysis> analysis_;  // shared by the workers' analyzers: stays in place
  bool keep_rows_;
  bool count_df_;
  fitted_vocabulary const* fitted_;  // nullptr: fit, building the vocabulary in table_
  term_table table_;
  std::vector<std::uint64_t> df_carry_;  // fit: document frequencies folded out of the threads
  std::size_t since_fold_ = 0;           // documents counted since the last fold
  std::size_t documents_ = 0;
  std::vector<std::unique_ptr<count_worker>> workers_;
  growable_array<document_entries> rows_;     // per document (keep_rows)
  std::size_t seal_bytes_;                    // see the constructor
  std::vector<entry_generation> generations_;  // sealed entry lists, in document order
  std::size_t generation_first_ = 0;           // first document of the open generation
};

}  // namespace mgpu::detail
