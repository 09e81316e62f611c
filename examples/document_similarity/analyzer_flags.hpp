// analyzer_flags.hpp — scikit-learn's TfidfVectorizer parameters as command-line flags
// (CLI11), same names and values, for programs that vectorise text with
// mgpu::tfidf_vectorizer (document_similarity, benchmarks/tfidf_corpus):
//
//   --analyzer word|char|char_wb     what a document is cut into (default word)
//   --ngram-range MIN,MAX            n-gram lengths, of words or characters (default 1,1)
//   --stop-words english|FILE        sklearn's English list, or one word per line of FILE
//   --token-pattern RE               tokens (Python re syntax, through PCRE2)
//   --strip-accents ascii|unicode    NFKD, then ASCII only / no combining marks
//   --no-lowercase                   keep case
//   --vocabulary FILE                a fixed vocabulary, one term per line (column order;
//                                    the format --save-vocabulary writes)
//   --binary                         counts become 1
//   --no-idf, --no-smooth-idf        use_idf=False, smooth_idf=False
//   --norm l1|l2|none                row normalisation (default l2)
//
// Usage:
//   analyzer_flags flags;
//   add_analyzer_flags(app, flags);          // before CLI11_PARSE
//   apply_analyzer_flags(flags, options);    // after it: throws std::runtime_error naming
//                                            // the flag for an unreadable FILE or a bad value
#pragma once

#include <charconv>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include <mgpu/algorithms/tfidf_options.hpp>

struct analyzer_flags {
  std::string analyzer = "word";
  std::string ngram_range;  // "MIN,MAX"; empty: unchanged
  std::string stop_words;   // "english" or a file; empty: none
  std::string token_pattern;
  std::string strip_accents;
  std::string vocabulary;   // a file; empty: learnt
  std::string norm = "l2";
  bool no_lowercase = false;
  bool binary = false;
  bool no_idf = false;
  bool no_smooth_idf = false;
};

/// Adds the flags of the file comment to `app`, storing into `flags`.
inline void add_analyzer_flags(CLI::App& app, analyzer_flags& flags) {
  app.add_option("--analyzer", flags.analyzer, "word, char (character n-grams) or char_wb (within words)")
      ->check(CLI::IsMember({"word", "char", "char_wb"}))
      ->capture_default_str();
  app.add_option("--ngram-range", flags.ngram_range, "MIN,MAX: n-gram lengths (default 1,1)");
  app.add_option("--stop-words", flags.stop_words, "english (scikit-learn's list) or a file, one word per line");
  app.add_option("--token-pattern", flags.token_pattern, "regular expression of a token (Python re syntax)");
  app.add_option("--strip-accents", flags.strip_accents, "ascii or unicode")
      ->check(CLI::IsMember({"ascii", "unicode"}));
  app.add_flag("--no-lowercase", flags.no_lowercase, "keep upper case");
  app.add_option("--vocabulary", flags.vocabulary, "fixed vocabulary: a file, one term per line, in column order");
  app.add_flag("--binary", flags.binary, "term counts become 1");
  app.add_flag("--no-idf", flags.no_idf, "no inverse document frequency weighting");
  app.add_flag("--no-smooth-idf", flags.no_smooth_idf, "idf = ln(n / df) + 1 instead of ln((1 + n) / (1 + df)) + 1");
  app.add_option("--norm", flags.norm, "row normalisation: l2, l1 or none")
      ->check(CLI::IsMember({"l1", "l2", "none"}))
      ->capture_default_str();
}

namespace analyzer_flags_detail {

/// The lines of a UTF-8 text file, split at '\n' (nothing else is stripped; a final
/// newline ends the last line).
inline std::vector<std::string> read_lines(std::string const& path, char const* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(std::string(flag) + ": cannot read '" + path + "'");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(std::move(line));
  if (in.bad()) throw std::runtime_error(std::string(flag) + ": error reading '" + path + "'");
  return lines;
}

inline int parse_int(std::string_view text, std::string const& whole) {
  int v = 0;
  auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw std::runtime_error("--ngram-range: expected MIN,MAX (two integers), got '" + whole + "'");
  }
  return v;
}

}  // namespace analyzer_flags_detail

/// Sets `options` from parsed flags (unset flags leave sklearn's defaults).
/// @throws std::runtime_error naming the flag: an unreadable file, a malformed
///         --ngram-range; mgpu::invalid_argument later, from tfidf_vectorizer, for values
///         outside sklearn's domain (e.g. MIN > MAX, a pattern that does not compile).
inline void apply_analyzer_flags(analyzer_flags const& flags, mgpu::tfidf_options& options) {
  using namespace analyzer_flags_detail;
  options.analyzer = flags.analyzer == "char"      ? mgpu::tfidf_analyzer::char_
                     : flags.analyzer == "char_wb" ? mgpu::tfidf_analyzer::char_wb
                                                   : mgpu::tfidf_analyzer::word;
  if (!flags.ngram_range.empty()) {
    auto const comma = flags.ngram_range.find(',');
    if (comma == std::string::npos) {
      throw std::runtime_error("--ngram-range: expected MIN,MAX, got '" + flags.ngram_range + "'");
    }
    std::string_view const all(flags.ngram_range);
    options.ngram_range = {parse_int(all.substr(0, comma), flags.ngram_range),
                           parse_int(all.substr(comma + 1), flags.ngram_range)};
  }
  if (flags.stop_words == "english") {
    options.stop_words = mgpu::english_stop_words();
  } else if (!flags.stop_words.empty()) {
    options.stop_words = read_lines(flags.stop_words, "--stop-words");
  }
  if (!flags.token_pattern.empty()) options.token_pattern = flags.token_pattern;
  if (flags.strip_accents == "ascii") options.strip_accents = mgpu::strip_accents_mode::ascii;
  if (flags.strip_accents == "unicode") options.strip_accents = mgpu::strip_accents_mode::unicode;
  if (flags.no_lowercase) options.lowercase = false;
  if (!flags.vocabulary.empty()) options.vocabulary = read_lines(flags.vocabulary, "--vocabulary");
  if (flags.binary) options.binary = true;
  if (flags.no_idf) options.use_idf = false;
  if (flags.no_smooth_idf) options.smooth_idf = false;
  options.norm = flags.norm == "l1"     ? mgpu::tfidf_norm::l1
                 : flags.norm == "none" ? mgpu::tfidf_norm::none
                                        : mgpu::tfidf_norm::l2;
}
