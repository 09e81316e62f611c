// mgpu/algorithms/tfidf_options.hpp — the options of tfidf_vectorizer (scikit-learn's
// TfidfVectorizer parameters, same names and defaults) and what it accepts as a corpus.
// See algorithms/tfidf.hpp for the semantics.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <map>
#include <cstdint>
#include <functional>
#include <optional>
#include <ranges>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "mgpu/backend/cpu/text/stop_words.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/core/progress.hpp"

namespace mgpu {

/// Row normalisation after weighting (sklearn's `norm`: 'l2', 'l1' or None).
enum class tfidf_norm { l2, l1, none };

/// A document-frequency bound as sklearn takes it: an integer is an absolute number of
/// documents (>= 1), a double a proportion of the corpus in [0, 1]. `opts.min_df = 2`
/// selects the integer, `opts.max_df = 0.5` the proportion.
using df_bound = std::variant<std::int64_t, double>;

/// What a document is cut into (sklearn's `analyzer`): word n-grams, character n-grams
/// ('char'), or character n-grams within words padded by one space ('char_wb'). The
/// trailing underscore of char_ keeps the keyword out.
enum class tfidf_analyzer { word, char_, char_wb };

/// sklearn's `strip_accents`: None, 'ascii' or 'unicode' (algorithms/tfidf.hpp).
enum class strip_accents_mode { none, ascii, unicode };

/// sklearn's default `token_pattern`, run by mgpu's own tokenizer (detail/tokenizer.hpp);
/// any other pattern runs through PCRE2.
inline constexpr std::string_view default_token_pattern = R"((?u)\b\w\w+\b)";

/// sklearn's stop_words="english": its built-in list of 318 words (a copy of
/// sklearn.feature_extraction.text.ENGLISH_STOP_WORDS, in byte order).
inline std::vector<std::string> english_stop_words() {
  return {detail::english_stop_word_list.begin(), detail::english_stop_word_list.end()};
}

/// The options of sklearn's TfidfVectorizer, same names, semantics and defaults (see
/// algorithms/tfidf.hpp for each).
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
  /// n-grams with min <= n <= max (1 <= min <= max): of words joined by one space, or of
  /// code points (char_, char_wb).
  std::pair<int, int> ngram_range{1, 1};
  tfidf_analyzer analyzer = tfidf_analyzer::word;
  /// Tokens removed after tokenizing, before word n-grams (word analyzer only); empty:
  /// none. english_stop_words() is sklearn's "english".
  std::vector<std::string> stop_words;
  /// The regular expression whose matches (or whose one capturing group) are the tokens,
  /// with Python `re` semantics on str (word analyzer only).
  std::string token_pattern{default_token_pattern};
  strip_accents_mode strip_accents = strip_accents_mode::none;
  /// A fixed vocabulary: term i is column i (sklearn's `vocabulary` as a list; see
  /// vocabulary_from_mapping for a dict). min_df, max_df and max_features are then ignored.
  std::optional<std::vector<std::string>> vocabulary;
  /// Replaces lowercasing and accent stripping (sklearn's `preprocessor`): document ->
  /// text. Called concurrently from several threads; not saved.
  std::function<std::string(std::string_view)> preprocessor{};
  /// Replaces token_pattern (sklearn's `tokenizer`): preprocessed text -> tokens (word
  /// analyzer only). Called concurrently from several threads; not saved.
  std::function<std::vector<std::string>(std::string_view)> tokenizer{};
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
/// other ranges are copied batch by batch, so their elements may be temporaries. A range
/// that also has `bool next_views(std::vector<std::string_view>&)` (batches of views valid
/// until the next call; mgpu::corpus_text_range, a streamed file) is read a batch at a
/// time, in place.
template <class C>
concept text_corpus =
    (std::ranges::input_range<C> &&
     std::convertible_to<std::ranges::range_reference_t<C>, std::string_view>) ||
    std::convertible_to<C, tfidf_batch_source>;

/// sklearn's `vocabulary` given as a mapping term -> column: the list form of
/// tfidf_options::vocabulary. O(n log n).
/// @throws invalid_argument if columns repeat or do not cover 0 .. n-1 (sklearn's
///         "Vocabulary contains repeated indices" / "doesn't contain index i").
inline std::vector<std::string> vocabulary_from_mapping(std::map<std::string, std::int64_t, std::less<>> const& mapping) {
  std::vector<std::string> terms(mapping.size());
  std::vector<bool> seen(mapping.size(), false);
  for (auto const& [term, column] : mapping) {
    MGPU_EXPECTS(column >= 0 && static_cast<std::uint64_t>(column) < mapping.size(), "vocabulary of size ",
                 mapping.size(), " has the index ", column, " for '", term, "'");
    auto const c = static_cast<std::size_t>(column);
    MGPU_EXPECTS(!seen[c], "vocabulary contains repeated indices (", column, ")");
    seen[c] = true;
    terms[c] = term;
  }
  return terms;
}

namespace detail {

/// @throws invalid_argument for options outside sklearn's domain.
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
  if (o.vocabulary) {
    MGPU_EXPECTS(!o.vocabulary->empty(), "tfidf_options::vocabulary: empty vocabulary passed to fit");
    std::vector<std::string_view> sorted(o.vocabulary->begin(), o.vocabulary->end());
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 0; i < sorted.size(); ++i) {
      MGPU_EXPECTS(!sorted[i].empty() && sorted[i].find('\0') == std::string_view::npos,
                   "tfidf_options::vocabulary: empty terms and terms holding a NUL byte are not supported");
      MGPU_EXPECTS(i == 0 || sorted[i] != sorted[i - 1], "tfidf_options::vocabulary: duplicate term in vocabulary: '",
                   sorted[i], "'");
    }
  }
}

}  // namespace detail
}  // namespace mgpu
