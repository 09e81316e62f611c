// mgpu/backend/cpu/text/vocabulary.hpp — the vocabulary stage of a fit: the counted terms
// sorted by code point, pruned by min_df, max_df and max_features (sklearn's
// _limit_features), and the term table renumbered to the kept terms' columns.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "mgpu/algorithms/term_list.hpp"
#include "mgpu/algorithms/tfidf_options.hpp"
#include "mgpu/backend/cpu/text/counter.hpp"
#include "mgpu/backend/cpu/text/vocabulary_sort.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/detail/large_pages.hpp"
#include "mgpu/detail/text_term_table.hpp"

namespace mgpu::detail {

/// How the fit's table ids map to columns, for assembling the fitted corpus's rows.
struct vocabulary_columns {
  std::vector<std::uint32_t> column;  // table id -> column, term_table::npos for pruned terms
  std::size_t terms = 0;              // terms before pruning
  std::size_t kept = 0;               // terms after pruning (the columns)
};

/// Positions (in sorted order) of the terms that survive min_df, max_df and
/// max_features, ascending; sklearn's _limit_features. `order` holds table ids, `df` and
/// `total` are indexed by table id (`total` only needed with max_features).
/// @throws invalid_argument if max_df allows fewer documents than min_df.
inline std::vector<std::uint32_t> select_terms(tfidf_options const& options, std::size_t documents,
                                               std::vector<std::uint32_t> const& order,
                                               std::span<std::uint64_t const> df,
                                               std::span<std::uint64_t const> total) {
  if (order.empty()) return {};  // sklearn: "empty vocabulary"
  auto const n = static_cast<double>(documents);
  auto doc_count = [n](df_bound const& b) {
    if (auto const* count = std::get_if<std::int64_t>(&b)) return static_cast<double>(*count);
    return std::get<double>(b) * n;
  };
  double const max_count = doc_count(options.max_df);
  double const min_count = doc_count(options.min_df);
  MGPU_EXPECTS(max_count >= min_count, "max_df corresponds to fewer documents (", max_count,
               ") than min_df (", min_count, ") for a corpus of ", documents, " documents");
  std::vector<std::uint32_t> kept;
  kept.reserve(order.size());
  for (std::uint32_t k = 0; k < order.size(); ++k) {
    auto const d = static_cast<double>(df[order[k]]);
    if (d <= max_count && d >= min_count) kept.push_back(k);
  }
  if (options.max_features && kept.size() > static_cast<std::size_t>(*options.max_features)) {
    // binary counts are 1, so their corpus total is the document frequency.
    std::span<std::uint64_t const> const score = options.binary ? df : total;
    std::stable_sort(kept.begin(), kept.end(),
                     [&](std::uint32_t a, std::uint32_t b) { return score[order[a]] > score[order[b]]; });
    kept.resize(static_cast<std::size_t>(*options.max_features));
    std::sort(kept.begin(), kept.end());
  }
  return kept;
}

/// Sums the threads' document frequencies, sorts the vocabulary, applies min_df, max_df
/// and max_features, and renumbers the counter's table to vocabulary columns (moved into
/// the result). O(terms) plus the sort; on the calling thread's OpenMP threads.
/// @throws invalid_argument if max_df allows fewer documents than min_df.
inline fitted_vocabulary build_vocabulary(corpus_counter& counter, vocabulary_columns& columns) {
  term_table& table = counter.table();
  tfidf_options const& options = counter.options();
  std::size_t const n_terms = table.size();
  auto const terms = static_cast<std::int64_t>(n_terms);
  bool const totals = options.max_features.has_value();
  std::vector<std::uint64_t, large_page_allocator<std::uint64_t>> df(n_terms);
  std::vector<std::uint64_t> total(totals ? n_terms : 0);
#pragma omp parallel for schedule(static)
  for (std::int64_t t = 0; t < terms; ++t) {
    auto const id = static_cast<std::size_t>(t);
    df[id] = counter.document_frequency(id);
    if (totals) total[id] = counter.total_count(id);
  }
  // Ids are taken in blocks: some hold no term.
  std::vector<std::uint32_t> live;
  live.reserve(n_terms);
  for (std::uint32_t id = 0; id < n_terms; ++id) {
    if (table.holds(id)) live.push_back(id);
  }
  auto const term_of = table.stored_terms();
  std::vector<std::uint32_t> const order = sorted_terms(live, term_of);
  columns.terms = live.size();
  std::vector<std::uint32_t> const kept = select_terms(options, counter.documents(), order, df, total);
  columns.kept = kept.size();

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
  columns.column.assign(n_terms, term_table::npos);
  vocabulary.df.resize(kept.size());
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n_kept; ++i) {
    auto const c = static_cast<std::size_t>(i);
    std::uint32_t const id = order[kept[c]];
    std::string_view const t = term_of(id);
    std::memcpy(bytes.data() + offsets[c], t.data(), t.size());
    columns.column[id] = static_cast<std::uint32_t>(c);
    vocabulary.df[c] = df[id];
  }
  vocabulary.terms = term_list(std::move(bytes), std::move(offsets));
  table.remap(columns.column);
  for (auto& w : counter.workers()) w->arena = {};
  vocabulary.table = std::move(table);
  return vocabulary;
}

/// A vocabulary given term by term in column order (a fixed vocabulary, or a loaded one):
/// its lookup table, the terms interned in column order by one arena, which hands out ids
/// 0, 1, 2, ... (so id = column), then renumbered to columns. `df` is left empty.
/// O(terms). Returns the index of the first repeated term in `duplicate` (else npos).
inline fitted_vocabulary lookup_vocabulary(std::vector<char> bytes, std::vector<std::size_t> ends,
                                           std::size_t& duplicate) {
  std::size_t const n = ends.empty() ? 0 : ends.size() - 1;
  duplicate = static_cast<std::size_t>(-1);
  fitted_vocabulary v;
  v.table = term_table(n + term_table::id_block);
  term_arena arena;
  std::string padded;  // hash_term<true> and the table read whole words past a term's end
  for (std::size_t i = 0; i < n; ++i) {
    std::string_view const term(bytes.data() + ends[i], ends[i + 1] - ends[i]);
    padded.assign(term);
    padded.append(16, '\0');
    std::string_view const t(padded.data(), term.size());
    if (v.table.intern(t, hash_term<true>(t), arena) != i) {
      duplicate = i;
      return v;
    }
  }
  std::vector<std::uint32_t> column(n);
  std::iota(column.begin(), column.end(), std::uint32_t{0});
  v.table.remap(column);
  v.terms = term_list(std::move(bytes), std::move(ends));
  return v;
}

/// lookup_vocabulary of a list of terms. @throws invalid_argument for a repeated term.
inline fitted_vocabulary lookup_vocabulary(std::vector<std::string> const& terms) {
  std::vector<std::size_t> ends{0};
  std::vector<char> bytes;
  for (auto const& t : terms) {
    bytes.insert(bytes.end(), t.begin(), t.end());
    ends.push_back(bytes.size());
  }
  std::size_t duplicate = 0;
  auto v = lookup_vocabulary(std::move(bytes), std::move(ends), duplicate);
  MGPU_EXPECTS(duplicate == static_cast<std::size_t>(-1), "duplicate term in vocabulary: '", terms[duplicate], "'");
  return v;
}

/// The document frequencies of a fixed vocabulary's fit (the counter looked terms up in
/// `vocabulary` with count_df), stored into it. O(terms).
inline void count_fixed_vocabulary(corpus_counter const& counter, fitted_vocabulary& vocabulary) {
  vocabulary.df.resize(vocabulary.terms.size());
  for (std::size_t c = 0; c < vocabulary.df.size(); ++c) vocabulary.df[c] = counter.document_frequency(c);
}

}  // namespace mgpu::detail
