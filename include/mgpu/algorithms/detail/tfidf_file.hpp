// mgpu/algorithms/detail/tfidf_file.hpp — the file of a fitted tfidf_vectorizer (kind
// "tfidf_vectorizer", versions 1 and 2 of mgpu's binary container): the sections listed
// in algorithms/tfidf.hpp's file comment and docs/formats.md, written and read back with
// every check load() documents.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "mgpu/algorithms/tfidf_options.hpp"
#include "mgpu/backend/cpu/text/analyzer.hpp"
#include "mgpu/backend/cpu/text/counter.hpp"
#include "mgpu/backend/cpu/text/vocabulary.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/detail/text_term_table.hpp"
#include "mgpu/io/binary_file.hpp"

namespace mgpu::detail {

/// Writes the sections of a fitted vectorizer, in the order of the file comment of
/// algorithms/tfidf.hpp. O(vocabulary).
inline void write_tfidf_sections(binary_writer& w, tfidf_options const& options, fitted_vocabulary const& vocabulary,
                                 std::span<double const> idf) {
  auto const& terms = vocabulary.terms;
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
  w.write_value("lowercase", flag(options.lowercase));
  w.write_value("use_idf", flag(options.use_idf));
  w.write_value("smooth_idf", flag(options.smooth_idf));
  w.write_value("sublinear_tf", flag(options.sublinear_tf));
  w.write_value("binary", flag(options.binary));
  w.write_value("norm", static_cast<std::uint8_t>(options.norm == tfidf_norm::l2   ? 0
                                                  : options.norm == tfidf_norm::l1 ? 1
                                                                                   : 2));
  w.write("ngram_range", std::vector<std::int32_t>{options.ngram_range.first, options.ngram_range.second});
  w.write_value("min_df_kind", df_kind(options.min_df));
  w.write_value("min_df", df_value(options.min_df));
  w.write_value("max_df_kind", df_kind(options.max_df));
  w.write_value("max_df", df_value(options.max_df));
  w.write_value<std::int64_t>("max_features", options.max_features.value_or(0));
  w.write_text("vocabulary", bytes);
  w.write("vocabulary_offsets", offsets);
  w.write("document_frequency", vocabulary.df);
  w.write("idf", idf);
  w.write_value("analyzer", static_cast<std::uint8_t>(options.analyzer == tfidf_analyzer::word    ? 0
                                                      : options.analyzer == tfidf_analyzer::char_ ? 1
                                                                                                  : 2));
  w.write_value("strip_accents", static_cast<std::uint8_t>(options.strip_accents == strip_accents_mode::none    ? 0
                                                           : options.strip_accents == strip_accents_mode::ascii ? 1
                                                                                                                : 2));
  w.write_text("token_pattern", options.token_pattern);
  std::string stop;
  std::vector<std::uint64_t> stop_offsets{0};
  for (auto const& word : options.stop_words) {
    stop += word;
    stop_offsets.push_back(stop.size());
  }
  w.write_text("stop_words", stop);
  w.write("stop_words_offsets", stop_offsets);
  w.write_value("fixed_vocabulary", flag(options.vocabulary.has_value()));
}

/// What a tfidf_vectorizer file holds.
struct tfidf_file_contents {
  tfidf_options options;
  fitted_vocabulary vocabulary;
  std::vector<double> idf;
};

/// Reads a file written by write_tfidf_sections (versions 1 .. max_version), checked as
/// tfidf_vectorizer::load documents. O(vocabulary).
/// @throws mgpu::error when the file cannot be opened; file_format_error naming the file.
inline tfidf_file_contents read_tfidf_file(std::filesystem::path const& path, std::uint32_t max_version) {
  binary_reader r(path, "tfidf_vectorizer", max_version);
  tfidf_options o;
  auto const flag = [&](char const* name) {
    auto const v = r.read_value<std::uint8_t>(name);
    if (v > 1) throw file_format_error(message("'", path.string(), "': ", name, " is ", int{v}, ", not 0 or 1"));
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
  std::uint8_t analyzer = 0;
  std::uint8_t strip = 0;
  std::uint8_t fixed = 0;
  if (r.version() >= 2) {
    analyzer = r.read_value<std::uint8_t>("analyzer");
    strip = r.read_value<std::uint8_t>("strip_accents");
    o.token_pattern = r.read_text("token_pattern");
    auto const stop_bytes = r.read<char>("stop_words");
    auto const stop_offsets = r.read<std::uint64_t>("stop_words_offsets");
    fixed = r.read_value<std::uint8_t>("fixed_vocabulary");
    if (stop_offsets.empty() || stop_offsets.front() != 0 || stop_offsets.back() != stop_bytes.size() ||
        !std::is_sorted(stop_offsets.begin(), stop_offsets.end())) {
      throw file_format_error(message("'", path.string(),
                                      "': not a valid tfidf_vectorizer: the stop word offsets do not span "
                                      "the stop words' bytes"));
    }
    for (std::size_t i = 0; i + 1 < stop_offsets.size(); ++i) {
      o.stop_words.emplace_back(stop_bytes.data() + stop_offsets[i], stop_offsets[i + 1] - stop_offsets[i]);
    }
  }
  r.finish();
  auto const invalid = [&](auto const&... what) {
    return file_format_error(message("'", path.string(), "': not a valid tfidf_vectorizer: ", what...));
  };
  if (norm > 2) throw invalid("norm is ", int{norm});
  if (analyzer > 2) throw invalid("analyzer is ", int{analyzer});
  if (strip > 2) throw invalid("strip_accents is ", int{strip});
  if (fixed > 1) throw invalid("fixed_vocabulary is ", int{fixed});
  o.analyzer = analyzer == 0 ? tfidf_analyzer::word : analyzer == 1 ? tfidf_analyzer::char_ : tfidf_analyzer::char_wb;
  o.strip_accents = strip == 0   ? strip_accents_mode::none
                    : strip == 1 ? strip_accents_mode::ascii
                                 : strip_accents_mode::unicode;
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
    validate_tfidf_options(o);
  } catch (invalid_argument const& e) {
    throw invalid(e.what());
  }
  std::size_t const n = offsets.empty() ? 0 : offsets.size() - 1;
  if (offsets.empty() || offsets.front() != 0 || offsets.back() != bytes.size()) {
    throw invalid("the vocabulary offsets do not span the vocabulary's bytes");
  }
  if (n >= term_table::max_terms - term_table::id_block) throw invalid("too many terms");
  if (df.size() != n) throw invalid(df.size(), " document frequencies for ", n, " terms");
  if (idf.size() != (o.use_idf ? n : 0)) throw invalid(idf.size(), " idf values for ", n, " terms");
  for (double v : idf) {
    // +inf: a fixed vocabulary's term in no document, without smooth_idf (ln(n / 0) + 1).
    if (std::isnan(v) || (std::isinf(v) && (fixed == 0 || v < 0))) throw invalid("an idf value is not finite");
  }
  std::vector<std::size_t> ends(offsets.begin(), offsets.end());
  for (std::size_t i = 0; i < n; ++i) {
    if (ends[i + 1] <= ends[i]) throw invalid("term ", i, " is empty or the offsets decrease");
    std::string_view const term(bytes.data() + ends[i], ends[i + 1] - ends[i]);
    if (term.find('\0') != std::string_view::npos) throw invalid("term ", i, " holds a NUL byte");
    if (fixed == 0 && i > 0 && !(std::string_view(bytes.data() + ends[i - 1], ends[i] - ends[i - 1]) < term)) {
      throw invalid("the terms are not strictly ascending at term ", i);
    }
  }

  if (fixed == 1) {
    o.vocabulary.emplace();
    for (std::size_t i = 0; i < n; ++i) o.vocabulary->emplace_back(bytes.data() + ends[i], ends[i + 1] - ends[i]);
  }
  std::size_t duplicate = 0;
  fitted_vocabulary v = lookup_vocabulary(std::move(bytes), std::move(ends), duplicate);
  if (duplicate != static_cast<std::size_t>(-1)) throw invalid("term ", duplicate, " is a duplicate");
  v.df = std::move(df);
  try {
    (void)text_analysis(o);  // compiles token_pattern
  } catch (invalid_argument const& e) {
    throw invalid(e.what());
  }
  return {std::move(o), std::move(v), std::move(idf)};
}

}  // namespace mgpu::detail
