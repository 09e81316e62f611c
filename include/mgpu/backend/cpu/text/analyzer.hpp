// mgpu/backend/cpu/text/analyzer.hpp — the analyze stage: one document in, its features
// (the terms counting looks up) and their hashes out, as sklearn's build_analyzer():
//
//   preprocess   the `preprocessor` hook, or lowercase (str.lower()) then strip_accents
//                (preprocess.hpp)
//   word         tokenize (the `tokenizer` hook; the default token_pattern by
//                detail/tokenizer.hpp; any other by PCRE2, regex_tokenizer.hpp), drop the
//                stop words, then word n-grams joined by one space
//   char_, char_wb  character n-grams (char_ngrams.hpp)
//
// With the default word analyzer (default token_pattern, no stop words, no accent
// stripping, no hooks) lowercasing is fused into the tokenizer and the n-grams are spans
// of its buffer. Features are views into the analyzer's buffers, valid until the next
// document, each with 16 readable bytes from its start and 8 after its end (hash_term<true>
// and the term table read whole words).
//
// Thread safety: text_analysis is shared read-only; one document_analyzer per thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "mgpu/algorithms/tfidf_options.hpp"
#include "mgpu/backend/cpu/text/char_ngrams.hpp"
#include "mgpu/backend/cpu/text/preprocess.hpp"
#include "mgpu/backend/cpu/text/regex_tokenizer.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/detail/text_term_table.hpp"
#include "mgpu/detail/tokenizer.hpp"

namespace mgpu::detail {

/// What every thread's analyzer shares: the options, the compiled token_pattern and the
/// stop-word set.
struct text_analysis {
  text_analysis(text_analysis const&) = delete;
  text_analysis& operator=(text_analysis const&) = delete;

  /// @throws invalid_argument for a token_pattern that does not compile or has more than
  ///         one capturing group (word analyzer only, as sklearn).
  explicit text_analysis(tfidf_options const& o)
      : options(o),
        preprocessed(o.preprocessor || o.strip_accents != strip_accents_mode::none),
        fused(o.analyzer == tfidf_analyzer::word && !preprocessed && !o.tokenizer && o.stop_words.empty() &&
              o.token_pattern == default_token_pattern),
        stop(options.stop_words.begin(), options.stop_words.end()) {
    if (o.analyzer == tfidf_analyzer::word && !o.tokenizer && o.token_pattern != default_token_pattern) {
      pattern.emplace(o.token_pattern);
    }
    options.vocabulary.reset();  // not needed to analyze
  }

  tfidf_options options;  // a copy: `stop` views its stop words
  bool preprocessed;  // lowercasing is not fused into the default tokenizer
  bool fused;         // the default word analyzer (file comment)
  std::optional<compiled_pattern> pattern;
  std::unordered_set<std::string_view> stop;  // views of options.stop_words
};

class document_analyzer {
 public:
  explicit document_analyzer(text_analysis const& a)
      : a_(&a),
        tokens_(a.options.lowercase && !a.preprocessed),
        min_n_(a.options.ngram_range.first),
        max_n_(a.options.ngram_range.second) {
    if (a.pattern) regex_.emplace(*a.pattern);
  }

  /// Analyzes document `index`; returns its number of features (with repeats).
  /// O(bytes + features * max_n).
  /// @throws invalid_argument for invalid UTF-8 or a document of 2 GiB or more.
  std::size_t analyze(std::string_view doc, std::size_t index) {
    if (a_->fused) return analyze_fused(doc, index);
    check_size(doc, index);
    direct_ = false;
    features_.clear();
    hashes_.clear();
    auto const emit = [&](std::string_view buffer) {
      return [this, buffer](std::uint32_t b, std::uint32_t e) {
        std::string_view const f(buffer.data() + b, e - b);
        features_.push_back(f);
        hashes_.push_back(hash_term<true>(f));
      };
    };
    tfidf_options const& o = a_->options;
    if (o.analyzer == tfidf_analyzer::word) {
      collect_tokens(doc, index);
      join_tokens();
      std::size_t const count = token_ends_.size();
      std::string_view const joined(joined_);
      for (auto n = static_cast<std::size_t>(min_n_); n <= static_cast<std::size_t>(max_n_) && n <= count; ++n) {
        for (std::size_t i = 0; i + n <= count; ++i) emit(joined)(token_begins_[i], token_ends_[i + n - 1]);
      }
    } else {
      std::string_view const text = preprocess(doc, index);
      if (o.analyzer == tfidf_analyzer::char_) {
        normalize_whitespace(text, joined_, starts_);
        pad(joined_);
        for_each_char_ngram(starts_, min_n_, max_n_, emit(joined_));
      } else {
        pad_words(text, joined_, starts_, word_ends_);
        pad(joined_);
        for_each_char_wb_ngram(starts_, word_ends_, min_n_, max_n_, emit(joined_));
      }
    }
    return features_.size();
  }

  /// Whether the features come word by word (char_wb: a word's n-grams depend on the
  /// word alone, so counting may remember them per word).
  [[nodiscard]] bool by_words() const noexcept { return a_->options.analyzer == tfidf_analyzer::char_wb; }

  /// char_wb: preprocesses document `index` and lays out its padded words; returns how
  /// many. O(bytes). @throws invalid_argument for invalid UTF-8.
  std::size_t analyze_words(std::string_view doc, std::size_t index) {
    check_size(doc, index);
    pad_words(preprocess(doc, index), joined_, starts_, word_ends_);
    pad(joined_);
    return word_ends_.size();
  }
  /// Padded word k (" " + w + " ") of the last analyze_words, 16 bytes readable from its
  /// start and 8 after its end.
  [[nodiscard]] std::string_view word(std::size_t k) const noexcept {
    std::size_t const first = k == 0 ? 0 : word_ends_[k - 1];
    return {joined_.data() + starts_[first], starts_[word_ends_[k]] - starts_[first]};
  }
  /// Calls f(feature, hash_term<true>(feature)) for the n-grams of padded word k.
  template <class F>
  void word_ngrams(std::size_t k, F&& f) const {
    std::size_t const first = k == 0 ? 0 : word_ends_[k - 1];
    for_each_word_ngram(starts_, first, word_ends_[k], min_n_, max_n_, [&](std::uint32_t b, std::uint32_t e) {
      std::string_view const feature(joined_.data() + b, e - b);
      f(feature, hash_term<true>(feature));
    });
  }

  /// Feature i of the last document.
  [[nodiscard]] std::string_view feature(std::size_t i) const noexcept {
    return direct_ ? tokens_.token(i) : features_[i];
  }
  /// hash_term<true> of each feature of the last document.
  [[nodiscard]] std::uint64_t const* hashes() const noexcept { return hashes_.data(); }

 private:
  // The default word analyzer: tokens and n-grams lie in the tokenizer's buffer, padded.
  std::size_t analyze_fused(std::string_view doc, std::size_t index) {
    tokens_.tokenize(doc, index);
    std::size_t const tokens = tokens_.size();
    std::size_t n = 0;
    for (auto k = static_cast<std::size_t>(min_n_); k <= static_cast<std::size_t>(max_n_) && k <= tokens; ++k) {
      n += tokens - k + 1;
    }
    if (hashes_.size() < n) hashes_.resize(n);
    std::uint64_t* const hashes = hashes_.data();
    direct_ = max_n_ == 1;
    if (direct_) {
      for (std::size_t i = 0; i < n; ++i) hashes[i] = hash_term<true>(tokens_.token(i));
    } else {
      if (features_.size() < n) features_.resize(n);
      std::size_t i = 0;
      tokens_.for_each_ngram(min_n_, max_n_, [&](std::string_view term) {
        features_[i] = term;
        hashes[i] = hash_term<true>(term);
        ++i;
      });
    }
    return n;
  }

  // Offsets into the analyzed text are 32-bit: lowering grows it by half at most.
  static void check_size(std::string_view doc, std::size_t index) {
    if (doc.size() >= (std::size_t{1} << 31)) {
      throw invalid_argument(message("document ", index, " has ", doc.size(),
                                     " bytes; documents of 2 GiB or more are not supported"));
    }
  }

  // 16 zero bytes after the text, kept out of its size.
  static void pad(std::string& s) {
    std::size_t const size = s.size();
    s.append(16, '\0');
    s.resize(size);
  }

  // The preprocessed text (valid UTF-8) of `doc`: a view of doc itself when nothing changes it.
  std::string_view preprocess(std::string_view doc, std::size_t index) {
    tfidf_options const& o = a_->options;
    if (o.preprocessor) {
      preprocessed_ = o.preprocessor(doc);
      validate_utf8(preprocessed_, index);
      return preprocessed_;
    }
    std::string_view text = doc;
    if (o.lowercase) {
      python_lower(doc, index, lowered_);
      text = lowered_;
    } else {
      validate_utf8(doc, index);
    }
    if (o.strip_accents != strip_accents_mode::none) {
      strip_accents(text, o.strip_accents, preprocessed_);
      text = preprocessed_;
    }
    return text;
  }

  // The tokens of a word analyzer that is not the fused one, stop words dropped, into
  // tokens_of_ (views).
  void collect_tokens(std::string_view doc, std::size_t index) {
    tfidf_options const& o = a_->options;
    kept_.clear();
    auto keep = [&](std::string_view t) {
      if (!t.empty() && !a_->stop.contains(t)) kept_.push_back(t);
    };
    if (o.tokenizer) {
      hook_tokens_ = o.tokenizer(preprocess(doc, index));
      for (auto const& t : hook_tokens_) keep(t);
    } else if (regex_) {
      std::string_view const text = preprocess(doc, index);
      spans_.clear();
      regex_->tokenize(text, spans_);
      for (auto const& [b, e] : spans_) keep(text.substr(b, e - b));
    } else {
      // The default pattern; lowercasing is fused into the tokenizer unless preprocessed.
      std::string_view const text = a_->preprocessed ? preprocess(doc, index) : doc;
      tokens_.tokenize(text, index);
      for (std::size_t i = 0; i < tokens_.size(); ++i) keep(tokens_.token(i));
    }
  }

  // kept_ end to end in joined_, each followed by one space: the word n-gram of tokens
  // i..j is the span from token i's start to token j's end.
  void join_tokens() {
    std::size_t bytes = 16;
    for (auto t : kept_) bytes += t.size() + 1;
    joined_.clear();
    joined_.reserve(bytes);
    token_begins_.clear();
    token_ends_.clear();
    for (auto t : kept_) {
      token_begins_.push_back(static_cast<std::uint32_t>(joined_.size()));
      joined_.append(t);
      token_ends_.push_back(static_cast<std::uint32_t>(joined_.size()));
      joined_.push_back(' ');
    }
    pad(joined_);
  }

  text_analysis const* a_;
  word_tokenizer tokens_;
  std::optional<regex_tokenizer> regex_;
  int min_n_;
  int max_n_;
  bool direct_ = false;                     // features are the tokenizer's tokens
  std::vector<std::string_view> features_;  // otherwise: views of joined_ or the tokenizer's buffer
  std::vector<std::uint64_t> hashes_;
  std::string lowered_;
  std::string preprocessed_;
  std::string joined_;
  std::vector<std::string> hook_tokens_;
  std::vector<std::string_view> kept_;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> spans_;
  std::vector<std::uint32_t> token_begins_;
  std::vector<std::uint32_t> token_ends_;
  std::vector<std::uint32_t> starts_;
  std::vector<std::uint32_t> word_ends_;
};

}  // namespace mgpu::detail
