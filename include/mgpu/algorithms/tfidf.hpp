// mgpu/algorithms/tfidf.hpp — TF-IDF features of a text corpus, with scikit-learn's
// semantics.
//
// `tfidf_vectorizer` reproduces `sklearn.feature_extraction.text.TfidfVectorizer`
// (scikit-learn 1.2) for every option in `tfidf_options`: with the defaults, the same
// vocabulary in the same order and the same values (computed in double, stored as T)
// as `TfidfVectorizer().fit_transform(corpus)` on any UTF-8 corpus. The pipeline:
//
//   preprocess the `preprocessor` hook, or doc.lower() on the whole document
//              (Python's full Unicode lowercase: İ -> "i̇", final sigma; skipped when
//              !lowercase), then `strip_accents`: "unicode" = NFKD and every code point
//              of nonzero combining class dropped, "ascii" = NFKD and only ASCII kept
//              (backend/cpu/text/preprocess.hpp, utf8proc)
//   analyzer   word: the tokens (the `tokenizer` hook, or the matches of
//              `token_pattern`: the default `(?u)\b\w\w+\b` by mgpu's own tokenizer,
//              detail/tokenizer.hpp; any other through PCRE2 with Python's Unicode
//              `\w` and `\b`, backend/cpu/text/regex_tokenizer.hpp), minus the
//              `stop_words`, then word n-grams (ngram_range) joined by one space.
//              char_: runs of 2+ whitespace become one space, then n-grams of code
//              points. char_wb: each whitespace-separated word padded with one space on
//              both sides, its code-point n-grams (a word shorter than n counted once).
//              (backend/cpu/text/analyzer.hpp, char_ngrams.hpp)
//   counting   CountVectorizer: vocabulary sorted by term (code point = UTF-8 byte
//              order); `binary` sets counts to 1; terms with df > max_df or df < min_df
//              are dropped, then `max_features` keeps the terms of largest total count.
//              A fixed `vocabulary` gives the columns instead (term i is column i; the
//              df bounds and max_features are ignored, as sklearn ignores them)
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
//   - Empty tokens (a custom token_pattern or tokenizer that yields "") are dropped;
//     sklearn counts "" as a term. Fixed vocabularies may not hold "" or NUL bytes.
//   - token_pattern is PCRE2 syntax where it differs from Python's `re` (rarely for
//     tokenizers); the inline flags `a` and `L` are refused.
//
// Stages (backend/cpu/text/): analyze (analyzer.hpp) -> count (counter.hpp) ->
// vocabulary (vocabulary.hpp, fit only) -> assemble (assemble.hpp) -> weight
// (weight.hpp). This header composes them and holds no parallel code of its own.
//
// Parallelism: analyzing and counting use all OpenMP threads of the calling thread
// (documents are processed in batches; every thread interns terms into one shared
// dictionary, detail/text_term_table.hpp). Assembling the rows (sorted by column) uses
// them too, and fit_transform / transform weight and normalise each row there as it is
// written. tfidf_weight, and fit_transform / transform on a device backend's policy,
// weight on the policy's devices through detail::fork_join, over row blocks balanced
// by nnz. Results do not depend on the number of threads or devices.
//
// Memory: fit_transform, transform and count hold the result, the vocabulary (its term
// table and document frequencies) and 8 bytes per (document, term) entry counted but not
// yet in the result: counting keeps the entries in generations of about 32 MiB, and
// assembling frees each once its rows are written (backend/cpu/text/counter.hpp,
// assemble.hpp), so the peak is about the result plus one generation; a single-pass or
// streamed corpus adds one batch of its text (corpus_batches.hpp). fit keeps no entries.
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
// "tfidf_vectorizer", version 2 (docs/formats.md); sections in this order:
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
//   analyzer            uint8 [1]     0 word, 1 char, 2 char_wb
//   strip_accents       uint8 [1]     0 none, 1 ascii, 2 unicode
//   token_pattern       text [bytes]
//   stop_words          text [bytes]  the k stop words end to end
//   stop_words_offsets  uint64 [k + 1]
//   fixed_vocabulary    uint8 [1]     1: the vocabulary was given, in its own order
// Version 1 files end after idf and load with the default analyzer options. The hooks
// are not saved (save refuses a vectorizer that has one). A loaded vectorizer's
// transform gives bitwise the matrix the saved one's gives.
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <numeric>
#include <ostream>
#include <ranges>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "mgpu/algorithms/detail/tfidf_file.hpp"
#include "mgpu/algorithms/detail/weighting_leaf.hpp"
#include "mgpu/algorithms/term_list.hpp"
#include "mgpu/algorithms/tfidf_options.hpp"
#include "mgpu/backend/cpu/text/assemble.hpp"
#include "mgpu/backend/cpu/text/corpus_batches.hpp"
#include "mgpu/backend/cpu/text/counter.hpp"
#include "mgpu/backend/cpu/text/vocabulary.hpp"
#include "mgpu/backend/cpu/text/weight.hpp"
#include "mgpu/core/device.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/core/progress.hpp"
#include "mgpu/detail/text_term_table.hpp"
#include "mgpu/execution/policy.hpp"
#include "mgpu/io/binary_file.hpp"
#include "mgpu/sparse/csr_matrix.hpp"
#include "mgpu/sparse/csr_view.hpp"

namespace mgpu {

namespace detail {

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
  ///         not 1 <= min <= max, an empty vocabulary or one with a repeated or empty
  ///         term) and for a token_pattern that does not compile or has more than one
  ///         capturing group (word analyzer).
  explicit tfidf_vectorizer(tfidf_options options = {}) : options_(std::move(options)) {
    detail::validate_tfidf_options(options_);
    (void)detail::text_analysis(options_);  // compiles token_pattern
  }

  /// Learns the vocabulary and idf (sklearn `fit`). One pass over the corpus; the
  /// per-document counts are not kept, so memory is O(vocabulary), not O(corpus).
  /// @throws invalid_argument for invalid UTF-8 (naming the document and byte offset), a
  ///         document of 2 GiB or more, or when max_df allows fewer documents than
  ///         min_df; index_overflow when the number of documents or terms exceeds I.
  template <text_corpus C>
  tfidf_vectorizer& fit(C&& docs) {
    auto fit = fit_corpus(std::forward<C>(docs), false);
    (void)detail::assemble<I>(fit.counter, fit.columns_map());  // checks that the shape fits I
    adopt(fit);
    return *this;
  }

  /// fit, then transform of the same corpus, in one pass. n_docs x vocabulary().size().
  /// Each row is weighted and normalised as it is assembled (no count matrix in between).
  /// @throws as fit.
  template <text_corpus C>
  csr_matrix<cpu, T, I> fit_transform(C&& docs) {
    auto fit = fit_corpus(std::forward<C>(docs), true);
    auto result = weighted(fit.counter, fit.columns_map(), fit.idf);
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
      auto result = weighted(fit.counter, fit.columns_map(), fit.idf);
      adopt(fit);
      return result;
    } else {
      auto const counts = detail::assemble<I>(fit.counter, fit.columns_map());
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
    return weighted(counter, nullptr, idf_);
  }

  /// transform with the weighting and normalisation on `policy`'s devices (as for
  /// fit_transform).
  template <class Kind, text_corpus C>
  csr_matrix<cpu, T, I> transform(execution_policy<Kind> const& policy, C&& docs) const {
    expect_fitted("transform");
    auto counter = count_corpus(std::forward<C>(docs), true, &fitted_);
    if constexpr (detail::weighting_leaf<Kind>::weights_host_memory) {
      return weighted(counter, nullptr, idf_);
    } else {
      auto const counts = detail::assemble<I>(counter, nullptr);
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
    auto m = detail::assemble<I, T>(fit.counter, fit.columns_map());
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

  /// The terms in column order (sorted by code point, or a fixed vocabulary's order);
  /// empty before fit.
  [[nodiscard]] term_list const& vocabulary() const noexcept { return fitted_.terms; }
  /// sklearn's get_feature_names_out(): the terms in column order (as vocabulary()).
  [[nodiscard]] term_list const& get_feature_names_out() const noexcept { return fitted_.terms; }

  /// sklearn's inverse_transform(X): for each row of `x` (documents x vocabulary size),
  /// the terms of its nonzero entries in the row's storage order (column order for a
  /// canonical matrix); explicit zeros are skipped. O(nnz + terms' bytes).
  /// @throws invalid_argument if not fitted; dimension_mismatch if x.cols() is not the
  ///         vocabulary size.
  template <class V, class J>
  [[nodiscard]] std::vector<std::vector<std::string>> inverse_transform(csr_matrix<cpu, V, J> const& x) const {
    expect_fitted("inverse_transform");
    if (static_cast<std::size_t>(x.cols()) != vocabulary().size()) {
      throw dimension_mismatch(detail::message("tfidf_vectorizer::inverse_transform: the matrix has ", x.cols(),
                                               " columns but the vocabulary has ", vocabulary().size(), " terms"));
    }
    auto const v = x.view();
    std::vector<std::vector<std::string>> rows(static_cast<std::size_t>(v.rows));
    for (J r = 0; r < v.rows; ++r) {
      auto& terms = rows[static_cast<std::size_t>(r)];
      for (J p = v.row_offsets[r]; p < v.row_offsets[r + 1]; ++p) {
        if (v.values[p] != V{0}) terms.emplace_back(vocabulary()[static_cast<std::size_t>(v.col_indices[p])]);
      }
    }
    return rows;
  }
  /// The idf of each column (sklearn `idf_`); empty when !use_idf or before fit.
  [[nodiscard]] std::span<double const> idf() const noexcept { return idf_; }
  /// Number of documents containing each column's term in the fitted corpus.
  [[nodiscard]] std::span<std::uint64_t const> document_frequency() const noexcept { return fitted_.df; }
  [[nodiscard]] bool is_fitted() const noexcept { return fitted_flag_; }
  [[nodiscard]] tfidf_options const& options() const noexcept { return options_; }

  /// The kind version save() writes; load() reads it and version 1 (files written
  /// before the analyzer options, which then have their defaults).
  static constexpr std::uint32_t file_version = 2;

  /// Writes the fitted vectorizer to `path` (file comment: the options, the vocabulary
  /// in column order, the document frequencies and idf), all or nothing. O(vocabulary).
  /// @throws invalid_argument if not fitted or if a preprocessor or tokenizer hook is set
  ///         (code cannot be saved); mgpu::error naming the path when it cannot be written.
  void save(std::filesystem::path const& path) const {
    expect_savable();
    write_binary_file(path, "tfidf_vectorizer", file_version, [&](binary_writer& w) { write_sections(w); });
  }

  /// The same bytes to a stream, e.g. a writer of an output_set that commits several
  /// files at once. @throws invalid_argument if not fitted or a hook is set.
  void save(std::ostream& out) const {
    expect_savable();
    binary_writer w(out, "tfidf_vectorizer", file_version);
    write_sections(w);
    w.finish();
  }

  /// Reads a vectorizer saved by save(): fitted, with the saved options (and no progress
  /// callback), vocabulary and idf; its transform gives bitwise the saved one's matrix.
  /// O(vocabulary).
  /// @throws mgpu::error when the file cannot be opened; file_format_error naming the file
  ///         when it is not a tfidf_vectorizer of version <= 2, is truncated or
  ///         corrupted, or holds inconsistent contents (options outside their domain, a
  ///         token_pattern that does not compile, learnt terms not strictly ascending or
  ///         fixed ones repeated, sizes that disagree).
  [[nodiscard]] static tfidf_vectorizer load(std::filesystem::path const& path) {
    auto file = detail::read_tfidf_file(path, file_version);
    tfidf_vectorizer out(std::move(file.options));
    out.fitted_ = std::move(file.vocabulary);
    out.idf_ = std::move(file.idf);
    out.fitted_flag_ = true;
    return out;
  }
 private:
  void write_sections(binary_writer& w) const { detail::write_tfidf_sections(w, options_, fitted_, idf_); }

  void expect_fitted(char const* what) const {
    MGPU_EXPECTS(fitted_flag_, "tfidf_vectorizer::", what, " called before fit");
  }

  void expect_savable() const {
    expect_fitted("save");
    MGPU_EXPECTS(!options_.preprocessor && !options_.tokenizer,
                 "tfidf_vectorizer::save: a vectorizer with a preprocessor or tokenizer hook cannot be saved");
  }

  template <class C>
  detail::corpus_counter count_corpus(C&& docs, bool keep_rows, detail::fitted_vocabulary const* fitted = nullptr,
                                      bool count_df = false) const {
    detail::corpus_counter counter(options_, keep_rows, fitted, count_df);
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
  // With a fixed vocabulary the counter looked terms up in `vocabulary` (its entries are
  // columns) and `columns` is not used.
  struct fit_result {
    detail::corpus_counter counter;
    std::unique_ptr<detail::fitted_vocabulary> vocabulary;  // in place: the counter may point to it
    detail::vocabulary_columns columns;
    std::vector<double> idf;
    bool fixed;

    [[nodiscard]] detail::vocabulary_columns const* columns_map() const noexcept { return fixed ? nullptr : &columns; }
  };

  template <class C>
  fit_result fit_corpus(C&& docs, bool keep_rows) const {
    std::unique_ptr<detail::fitted_vocabulary> fixed;
    if (options_.vocabulary) fixed = std::make_unique<detail::fitted_vocabulary>(detail::lookup_vocabulary(*options_.vocabulary));
    auto counter = count_corpus(std::forward<C>(docs), keep_rows, fixed.get(), fixed != nullptr);
    detail::vocabulary_columns columns;
    bool const is_fixed = fixed != nullptr;
    if (is_fixed) {
      detail::count_fixed_vocabulary(counter, *fixed);
    } else {
      fixed = std::make_unique<detail::fitted_vocabulary>(detail::build_vocabulary(counter, columns));
    }
    auto const& vocabulary = *fixed;
    std::vector<double> idf;
    if (options_.use_idf) {
      double const s = options_.smooth_idf ? 1.0 : 0.0;
      double const n = static_cast<double>(counter.documents()) + s;
      idf.reserve(vocabulary.df.size());
      for (auto const d : vocabulary.df) idf.push_back(std::log(n / (static_cast<double>(d) + s)) + 1.0);
    }
    return {std::move(counter), std::move(fixed), std::move(columns), std::move(idf), is_fixed};
  }

  void adopt(fit_result& fit) {
    fitted_ = std::move(*fit.vocabulary);
    idf_ = std::move(fit.idf);
    fitted_flag_ = true;
  }

  csr_matrix<cpu, T, I> weighted(detail::corpus_counter& counter, detail::vocabulary_columns const* columns,
                                 std::span<double const> idf) const {
    auto m = detail::assemble<I, T>(counter, columns, detail::row_values::weighted, idf);
    return csr_matrix<cpu, T, I>::adopt_canonical(m.rows, m.cols, std::move(m.row_offsets),
                                                  std::move(m.col_indices), std::move(m.counts));
  }

  tfidf_options options_;
  bool fitted_flag_ = false;
  detail::fitted_vocabulary fitted_;  // terms, df, and the lookup table of transform
  std::vector<double> idf_;
};

}  // namespace mgpu
