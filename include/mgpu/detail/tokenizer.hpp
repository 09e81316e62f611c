// mgpu/detail/tokenizer.hpp — scikit-learn's default word analyzer on UTF-8 text.
//
// `word_tokenizer::tokenize(doc)` does what `CountVectorizer().build_analyzer()` does:
// `doc.lower()` (optional) on the whole document, then `re.findall(r"(?u)\b\w\w+\b")`,
// i.e. the maximal runs of at least two word code points *after* lowercasing (see
// text_unicode.hpp for both definitions). Lowering happens code point by code point
// as the text is scanned, which is equivalent because Python's lower() is a per-code-
// point mapping whose only context, Final_Sigma, reads the original text.
//
// The tokens are written into one buffer, each followed by a single space, so the word
// n-gram of tokens i..j (sklearn's `" ".join(tokens[i:j+1])`) is the contiguous bytes
// from the start of token i to the end of token j: n-grams cost no copies.
//
// Speed: ASCII bytes are classified and lowered through a 256-entry table; utf8proc is
// consulted only for non-ASCII code points.
//
// Thread safety: one tokenizer per thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "mgpu/core/error.hpp"
#include "mgpu/detail/text_unicode.hpp"

namespace mgpu::detail {

class word_tokenizer {
 public:
  explicit word_tokenizer(bool lowercase) : lowercase_(lowercase) {}

  /// Tokenizes `doc` (replacing the previous document's tokens).
  /// @throws invalid_argument if `doc` is not valid UTF-8, naming `doc_index` and the
  ///         byte offset (sklearn's strict decoding raises there too).
  void tokenize(std::string_view doc, std::size_t doc_index) {
    begins_.clear();
    ends_.clear();
    // Lowercasing grows a code point by at most half (2-byte U+023A -> 3-byte U+2C65;
    // İ: 2 -> 3 bytes), and a token's separator replaces at least one input byte.
    std::size_t const need = 2 * doc.size() + 16;
    if (need > capacity_) {
      buffer_ = std::make_unique_for_overwrite<char[]>(need);
      capacity_ = need;
    }
    if (lowercase_) {
      scan<true>(doc, doc_index);
    } else {
      scan<false>(doc, doc_index);
    }
  }

  [[nodiscard]] std::size_t size() const noexcept { return begins_.size(); }

  /// Tokens first..last (inclusive) joined by single spaces.
  [[nodiscard]] std::string_view ngram(std::size_t first, std::size_t last) const noexcept {
    return {buffer_.get() + begins_[first], ends_[last] - begins_[first]};
  }

  /// Calls `f(term)` for every word n-gram with min_n <= n <= max_n, as sklearn's
  /// `_word_ngrams` (order differs; counts do not).
  template <class F>
  void for_each_ngram(int min_n, int max_n, F&& f) const {
    std::size_t const count = size();
    for (auto n = static_cast<std::size_t>(min_n); n <= static_cast<std::size_t>(max_n) && n <= count;
         ++n) {
      for (std::size_t i = 0; i + n <= count; ++i) f(ngram(i, i + n - 1));
    }
  }

 private:
  template <bool Lower>
  void scan(std::string_view doc, std::size_t doc_index) {
    auto const& table = ascii_word_table<Lower>;
    auto const* const begin = reinterpret_cast<unsigned char const*>(doc.data());
    auto const* const end = begin + doc.size();
    char* const base = buffer_.get();
    char* w = base;
    char* token = base;
    std::size_t code_points = 0;
    auto end_token = [&] {
      if (code_points >= 2) {
        begins_.push_back(static_cast<std::size_t>(token - base));
        ends_.push_back(static_cast<std::size_t>(w - base));
        *w++ = ' ';
        token = w;
      } else {
        w = token;
      }
      code_points = 0;
    };
    auto const* p = begin;
    while (p < end) {
      if (*p < 0x80u) {
        char const c = table[*p++];
        if (c != 0) {
          *w++ = c;
          ++code_points;
        } else if (code_points != 0) {
          end_token();
        }
        continue;
      }
      char32_t cp = 0;
      int const len = decode_utf8(p, end, cp);
      if (len == 0) {
        throw invalid_argument(message("document ", doc_index, " is not valid UTF-8: byte 0x",
                                       std::hex, static_cast<unsigned>(*p), std::dec,
                                       " at offset ", p - begin));
      }
      char32_t lowered[2] = {cp, 0};
      int const n = Lower ? lower_full(cp, begin, p, end, lowered) : 1;
      p += len;
      for (int i = 0; i < n; ++i) {
        if (is_word_code_point(lowered[i])) {
          w = encode_utf8(lowered[i], w);
          ++code_points;
        } else if (code_points != 0) {
          end_token();
        }
      }
    }
    if (code_points != 0) end_token();
  }

  bool lowercase_;
  std::unique_ptr<char[]> buffer_;
  std::size_t capacity_ = 0;
  std::vector<std::size_t> begins_;
  std::vector<std::size_t> ends_;
};

}  // namespace mgpu::detail
