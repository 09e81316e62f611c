// mgpu/mpi/tfidf.hpp — TF-IDF of a corpus whose documents are spread over MPI ranks,
// equal to the single-process tfidf_vectorizer::fit_transform of the whole corpus.
//
//   auto part = mpi::tfidf_fit_transform<float>(policy, my_documents, options);
//   part.rows            this rank's documents x vocabulary (rows first_document.. of the whole)
//   part.vocabulary      the whole corpus's vocabulary, column order (the same on every rank)
//
// Every rank holds its own documents (any count, none included); the ranks' documents
// follow each other in rank order. Method, with no new counting or weighting code:
//   1. each rank counts its documents with the public tfidf_vectorizer::count, every
//      term kept (min_df 1, max_df 1.0, no max_features: pruning needs the global
//      counts): its sorted vocabulary, each term's document frequency and, for
//      max_features, total count;
//   2. the ranks' vocabularies (term bytes, lengths, df, totals) are gathered on every
//      rank; every rank forms the sorted union (code point = UTF-8 byte order, as
//      tfidf_vectorizer sorts) and sums each term's df and total over the ranks (integer
//      sums, exact in any order): the whole corpus's df, as sklearn's _count_vocab;
//   3. min_df, max_df and max_features are applied to the global counts with the rules
//      of tfidf_vectorizer (sklearn's _limit_features: bounds against the global
//      document count, ties at the max_features cut-off kept in term order), and idf is
//      computed with its formula, ln((n + s) / (df + s)) + 1, s = 1 if smooth_idf: the
//      same double on every rank and in one process;
//   4. each rank renumbers its count matrix's columns to the global vocabulary (a
//      monotone map: rows stay sorted; pruned terms' entries dropped) and weights its
//      rows with the public tfidf_weight on its local devices.
// The result: the vocabulary, df and idf of the single-process fit, and this rank's rows
// of its matrix, bitwise (weighting a row depends on that row and idf only).
//
// What crosses between ranks: three or four MPI_Allgatherv (every rank receives every
// other rank's local vocabulary: its term bytes + 8 bytes of length + 8 of df per term,
// + 8 of total with max_features) and two agreements. Memory per rank: every rank's
// local vocabulary at once, O(Σ_r V_r) — a vocabulary of 10^6 terms of 10 bytes over 4
// ranks is about 100 MB at the peak. (A tree merge would bring each rank's share down
// to O(V); not done.)
//
// Limits: counts above 2^24 in one document are not exact in float (as count()); the
// local vocabulary bytes of one rank must fit an int (2 GiB), else index_overflow.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <numeric>
#include <span>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "mgpu/algorithms/term_list.hpp"
#include "mgpu/algorithms/tfidf.hpp"
#include "mgpu/core/buffer.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/mpi/error.hpp"
#include "mgpu/mpi/policy.hpp"
#include "mgpu/mpi/topk_merge.hpp"
#include "mgpu/sparse/csr_matrix.hpp"

namespace mgpu::mpi {

/// One rank's part of a TF-IDF fit over ranks (see the file comment).
template <class T = float, class I = std::int32_t>
struct tfidf_part {
  /// This rank's documents x vocabulary.size(), rows in document order, canonical:
  /// rows [first_document, first_document + rows.rows()) of the whole corpus's matrix.
  csr_matrix<cpu, T, I> rows;
  /// The whole corpus's vocabulary in column order (sorted by code point); every rank.
  term_list vocabulary;
  /// Documents of the whole corpus holding each column's term.
  std::vector<std::uint64_t> document_frequency;
  /// Each column's idf (empty when !use_idf).
  std::vector<double> idf;
  /// Documents of the whole corpus, and this rank's first one.
  std::int64_t documents = 0;
  std::int64_t first_document = 0;
};

namespace detail {

/// The options as agreed values: every rank must pass the same.
inline std::int64_t tfidf_flags(tfidf_options const& o) noexcept {
  return (o.lowercase ? 1 : 0) | (o.use_idf ? 2 : 0) | (o.smooth_idf ? 4 : 0) | (o.sublinear_tf ? 8 : 0) |
         (o.binary ? 16 : 0) | (static_cast<std::int64_t>(o.norm) << 5) |
         (std::holds_alternative<std::int64_t>(o.min_df) ? 128 : 0) |
         (std::holds_alternative<std::int64_t>(o.max_df) ? 256 : 0);
}

/// A hash of the analyzer's options, those this version of tfidf_options has (analyzer,
/// stop words, token pattern, accent stripping): every rank must pass the same. Callables
/// (a custom preprocessor or tokenizer) cannot be compared and must behave alike.
template <class O>
std::int64_t analyzer_hash(O const& o) noexcept {
  std::uint64_t h = 1469598103934665603ull;
  auto const add_text = [&h](std::string_view t) {
    auto const n = static_cast<std::uint64_t>(t.size());
    h = fnv1a(&n, sizeof n, h);
    h = fnv1a(t.data(), t.size(), h);
  };
  if constexpr (requires { o.analyzer; }) {
    auto const a = static_cast<std::int64_t>(o.analyzer);
    h = fnv1a(&a, sizeof a, h);
  }
  if constexpr (requires { o.stop_words; }) {
    for (auto const& w : o.stop_words) add_text(w);
  }
  if constexpr (requires { o.token_pattern; }) add_text(o.token_pattern);
  if constexpr (requires { o.strip_accents; }) {
    auto const a = static_cast<std::int64_t>(o.strip_accents);
    h = fnv1a(&a, sizeof a, h);
  }
  return static_cast<std::int64_t>(h);
}

/// True if the options fix the vocabulary (sklearn's `vocabulary`), where this version
/// of tfidf_options has that option.
template <class O>
bool fixed_vocabulary(O const& o) noexcept {
  if constexpr (requires { o.vocabulary.has_value(); }) {
    return o.vocabulary.has_value();
  } else {
    return false;
  }
}

inline double df_value(df_bound const& b) noexcept {
  if (auto const* count = std::get_if<std::int64_t>(&b)) return static_cast<double>(*count);
  return std::get<double>(b);
}

}  // namespace detail

/// TfidfVectorizer(options).fit_transform of the documents of every rank, each rank
/// receiving its own rows and the whole vocabulary, df and idf (file comment).
///
/// @tparam T, I     value and index types of the rows (as tfidf_vectorizer<T, I>).
/// @param policy    the ranks and their local devices (weighting runs on policy.local());
///                  collective over its communicator.
/// @param my_docs   this rank's documents (whatever tfidf_vectorizer::count accepts: a
///                  range of strings, a tfidf_batch_source); possibly none.
/// @param options   tfidf_options, the same on every rank (checked, by a hash for the
///                  analyzer's options; callables such as a custom tokenizer must behave
///                  alike on every rank); `progress` is called on each rank for its own
///                  documents. A fixed vocabulary is refused (not supported over ranks yet).
/// @throws on every rank alike: what tfidf_vectorizer throws on any rank (invalid UTF-8
///         naming the document within that rank's part, prefixed "rank R of N: "),
///         invalid_argument when the ranks disagree on an option or when max_df allows
///         fewer documents than min_df, index_overflow (this rank's rows or the
///         vocabulary beyond I), mpi_error.
/// Complexity per rank: counting its documents, O(Σ_r V_r log) to merge the
/// vocabularies, O(nnz_r) to renumber and weight.
template <class T = float, class I = std::int32_t, class Kind, class C>
tfidf_part<T, I> tfidf_fit_transform(distributed_policy<Kind> const& policy, C&& my_docs,
                                     tfidf_options const& options = {}) {
  constexpr char const* what = "mpi::tfidf_fit_transform";
  auto const comm = policy.comm();
  // The vectorizer's constructor validates the options (sklearn's domain).
  auto error = detail::capture([&] {
    (void)tfidf_vectorizer<T, I>(options);
    MGPU_EXPECTS(!detail::fixed_vocabulary(options), what,
                 ": a fixed vocabulary (tfidf_options::vocabulary) is not supported over ranks yet");
  });
  detail::agree(comm, what,
                {{"the flags of the options (lowercase, use_idf, smooth_idf, sublinear_tf, binary, norm)",
                  detail::tfidf_flags(options)},
                 detail::floating_value("the option min_df", detail::df_value(options.min_df)),
                 detail::floating_value("the option max_df", detail::df_value(options.max_df)),
                 {"the option max_features", options.max_features.value_or(0)},
                 {"the option ngram_range (min)", options.ngram_range.first},
                 {"the option ngram_range (max)", options.ngram_range.second},
                 {"the analyzer's options (hash)", detail::analyzer_hash(options)},
                 {"the value and index sizes", static_cast<std::int64_t>(sizeof(T) * 16 + sizeof(I))}},
                error);

  // 1. Count this rank's documents, keeping every term.
  bool const totals = options.max_features.has_value() && !options.binary;
  csr_matrix<cpu, T, I> counts;
  std::vector<char> my_bytes;
  std::vector<std::uint64_t> my_lengths;
  std::vector<std::uint64_t> my_df;
  std::vector<std::uint64_t> my_totals;
  error = detail::capture([&] {
    tfidf_options counting = options;
    counting.min_df = std::int64_t{1};
    counting.max_df = 1.0;
    counting.max_features.reset();
    tfidf_vectorizer<T, I> counter(counting);
    counts = counter.count(std::forward<C>(my_docs));
    auto const& terms = counter.vocabulary();
    my_lengths.reserve(terms.size());
    for (std::string_view const t : terms) {
      my_bytes.insert(my_bytes.end(), t.begin(), t.end());
      my_lengths.push_back(t.size());
    }
    auto const df = counter.document_frequency();
    my_df.assign(df.begin(), df.end());
    if (totals) {
      my_totals.assign(terms.size(), 0);
      auto const v = counts.view();
      for (I p = 0; p < v.nnz(); ++p) {
        my_totals[static_cast<std::size_t>(v.col_indices[p])] += static_cast<std::uint64_t>(v.values[p]);
      }
    }
  });
  detail::agree(comm, "mpi::tfidf_fit_transform (counting)", {}, error);

  // 2. Every rank's vocabulary, then the sorted union with summed counts.
  tfidf_part<T, I> part;
  auto const starts = detail::gather_row_starts(policy, static_cast<std::int64_t>(counts.rows()));
  part.documents = starts.back();
  part.first_document = starts[static_cast<std::size_t>(policy.rank())];
  std::vector<std::int64_t> byte_displs;
  std::vector<std::int64_t> term_displs;
  std::vector<std::int64_t> unused;
  auto const all_bytes = detail::all_gather_values<char>(policy, my_bytes, byte_displs, what);
  auto const all_lengths = detail::all_gather_values<std::uint64_t>(policy, my_lengths, term_displs, what);
  auto const all_df = detail::all_gather_values<std::uint64_t>(policy, my_df, unused, what);
  std::vector<std::uint64_t> all_totals;
  if (totals) all_totals = detail::all_gather_values<std::uint64_t>(policy, my_totals, unused, what);

  auto const ranks = static_cast<std::size_t>(policy.ranks());
  auto const n_entries = all_lengths.size();
  std::vector<std::string_view> term(n_entries);
  std::vector<std::size_t> owner(n_entries);
  for (std::size_t r = 0; r < ranks; ++r) {
    auto offset = static_cast<std::size_t>(byte_displs[r]);
    for (auto e = static_cast<std::size_t>(term_displs[r]); e < static_cast<std::size_t>(term_displs[r + 1]); ++e) {
      term[e] = std::string_view(all_bytes.data() + offset, static_cast<std::size_t>(all_lengths[e]));
      owner[e] = r;
      offset += static_cast<std::size_t>(all_lengths[e]);
    }
  }
  std::vector<std::size_t> order(n_entries);
  std::iota(order.begin(), order.end(), std::size_t{0});
  // string_view compares bytes as unsigned char: the code point order of UTF-8.
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return term[a] < term[b]; });
  std::vector<std::string_view> unique_terms;
  std::vector<std::uint64_t> df;
  std::vector<std::uint64_t> total;
  auto const rank = static_cast<std::size_t>(policy.rank());
  auto const my_first = static_cast<std::size_t>(term_displs[rank]);
  std::vector<std::size_t> my_term(my_lengths.size());  // local column -> unique term
  for (std::size_t i = 0; i < n_entries; ++i) {
    auto const e = order[i];
    if (unique_terms.empty() || unique_terms.back() != term[e]) {
      unique_terms.push_back(term[e]);
      df.push_back(0);
      total.push_back(0);
    }
    df.back() += all_df[e];
    if (totals) total.back() += all_totals[e];
    if (owner[e] == rank) my_term[e - my_first] = unique_terms.size() - 1;
  }

  // 3. Pruning with the global counts (tfidf_vectorizer's rules), then idf.
  std::vector<std::size_t> kept;
  error = detail::capture([&] {
    if (unique_terms.empty()) return;
    auto const n = static_cast<double>(part.documents);
    auto doc_count = [n](df_bound const& b) {
      if (auto const* count = std::get_if<std::int64_t>(&b)) return static_cast<double>(*count);
      return std::get<double>(b) * n;
    };
    double const max_count = doc_count(options.max_df);
    double const min_count = doc_count(options.min_df);
    MGPU_EXPECTS(max_count >= min_count, "max_df corresponds to fewer documents (", max_count, ") than min_df (",
                 min_count, ") for a corpus of ", part.documents, " documents");
    kept.reserve(unique_terms.size());
    for (std::size_t k = 0; k < unique_terms.size(); ++k) {
      auto const d = static_cast<double>(df[k]);
      if (d <= max_count && d >= min_count) kept.push_back(k);
    }
    if (options.max_features && kept.size() > static_cast<std::size_t>(*options.max_features)) {
      std::vector<std::uint64_t> const& score = options.binary ? df : total;
      std::stable_sort(kept.begin(), kept.end(), [&](std::size_t a, std::size_t b) { return score[a] > score[b]; });
      kept.resize(static_cast<std::size_t>(*options.max_features));
      std::sort(kept.begin(), kept.end());
    }
    ::mgpu::detail::check_fits_index<I>(static_cast<std::int64_t>(kept.size()), "vocabulary size");
  });
  detail::agree(comm, "mpi::tfidf_fit_transform (pruning)", {}, error);

  constexpr auto dropped = std::numeric_limits<std::size_t>::max();
  std::vector<std::size_t> column(unique_terms.size(), dropped);
  std::vector<char> bytes;
  std::vector<std::size_t> offsets{0};
  part.document_frequency.reserve(kept.size());
  for (std::size_t c = 0; c < kept.size(); ++c) {
    column[kept[c]] = c;
    auto const t = unique_terms[kept[c]];
    bytes.insert(bytes.end(), t.begin(), t.end());
    offsets.push_back(bytes.size());
    part.document_frequency.push_back(df[kept[c]]);
  }
  part.vocabulary = term_list(std::move(bytes), std::move(offsets));
  if (options.use_idf) {
    double const s = options.smooth_idf ? 1.0 : 0.0;
    double const n = static_cast<double>(part.documents) + s;
    part.idf.reserve(kept.size());
    for (auto const d : part.document_frequency) part.idf.push_back(std::log(n / (static_cast<double>(d) + s)) + 1.0);
  }

  // 4. This rank's counts renumbered to the global columns, then weighted.
  error = detail::capture([&] {
    auto const v = counts.view();
    std::vector<I> row_offsets(static_cast<std::size_t>(v.rows) + 1, I{0});
    std::vector<I> cols;
    std::vector<T> values;
    cols.reserve(static_cast<std::size_t>(v.nnz()));
    values.reserve(static_cast<std::size_t>(v.nnz()));
    for (I r = 0; r < v.rows; ++r) {
      for (I p = v.row_offsets[r]; p < v.row_offsets[r + 1]; ++p) {
        auto const c = column[my_term[static_cast<std::size_t>(v.col_indices[p])]];
        if (c == dropped) continue;
        cols.push_back(static_cast<I>(c));
        values.push_back(v.values[p]);
      }
      row_offsets[static_cast<std::size_t>(r) + 1] = static_cast<I>(cols.size());
    }
    auto renumbered = csr_matrix<cpu, T, I>::adopt_canonical(
        v.rows, static_cast<I>(kept.size()), buffer<I, cpu>(std::move(row_offsets)), buffer<I, cpu>(std::move(cols)),
        buffer<T, cpu>(std::move(values)));
    counts = csr_matrix<cpu, T, I>();
    part.rows = tfidf_weight(policy.local(), std::move(renumbered), std::span<double const>(part.idf), options);
  });
  detail::agree(comm, "mpi::tfidf_fit_transform (weighting)", {}, error);
  return part;
}

}  // namespace mgpu::mpi
