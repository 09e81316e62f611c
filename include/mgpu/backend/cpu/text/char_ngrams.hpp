// mgpu/backend/cpu/text/char_ngrams.hpp — the character analyzers' n-grams, over Unicode
// code points as sklearn's `_char_ngrams` and `_char_wb_ngrams` take them from a str.
//
//   char     runs of two or more whitespace code points become one space (single ones are
//            kept as they are, e.g. a lone "\n"); then, for n = min_n .. max_n, every
//            n consecutive code points of the text.
//   char_wb  the text is split at whitespace; each word w becomes " " + w + " " (length
//            L code points) and, for n = min_n .. max_n, gives its n-grams at offsets
//            0 .. L - n, or itself once when L <= n, after which longer n are skipped
//            (sklearn counts a short word once).
// Whitespace is Python's str.isspace() (preprocess.hpp). The n-grams are byte spans of
// one buffer (the normalised text, or the padded words end to end), whose `starts` hold
// the byte offset of every code point and, last, the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mgpu/backend/cpu/text/preprocess.hpp"
#include "mgpu/detail/text_unicode.hpp"

namespace mgpu::detail {

/// out = `text` (valid UTF-8) with each run of two or more whitespace code points
/// replaced by one space; starts = the offsets of its code points, then its size. O(bytes).
inline void normalize_whitespace(std::string_view text, std::string& out, std::vector<std::uint32_t>& starts) {
  auto const* const begin = reinterpret_cast<unsigned char const*>(text.data());
  auto const* const end = begin + text.size();
  out.clear();
  starts.clear();
  for (auto const* p = begin; p < end;) {
    char32_t cp = 0;
    int const len = *p < 0x80u ? (cp = *p, 1) : decode_utf8(p, end, cp);
    if (is_python_space(cp)) {
      // The run of whitespace starting here.
      auto const* q = p + len;
      std::size_t run = 1;
      while (q < end) {
        char32_t next = 0;
        int const l = *q < 0x80u ? (next = *q, 1) : decode_utf8(q, end, next);
        if (!is_python_space(next)) break;
        q += l;
        ++run;
      }
      starts.push_back(static_cast<std::uint32_t>(out.size()));
      if (run == 1) {
        out.append(reinterpret_cast<char const*>(p), static_cast<std::size_t>(len));
      } else {
        out.push_back(' ');
      }
      p = q;
      continue;
    }
    starts.push_back(static_cast<std::uint32_t>(out.size()));
    out.append(reinterpret_cast<char const*>(p), static_cast<std::size_t>(len));
    p += len;
  }
  starts.push_back(static_cast<std::uint32_t>(out.size()));
}

/// out = the whitespace-separated words of `text` (valid UTF-8), each as " " + w + " ",
/// end to end; starts = the offsets of out's code points, then its size; word_ends[k] =
/// the index in `starts` one past word k's closing space. O(bytes).
inline void pad_words(std::string_view text, std::string& out, std::vector<std::uint32_t>& starts,
                      std::vector<std::uint32_t>& word_ends) {
  auto const* const begin = reinterpret_cast<unsigned char const*>(text.data());
  auto const* const end = begin + text.size();
  out.clear();
  starts.clear();
  word_ends.clear();
  bool in_word = false;
  auto close = [&] {
    starts.push_back(static_cast<std::uint32_t>(out.size()));
    out.push_back(' ');
    word_ends.push_back(static_cast<std::uint32_t>(starts.size()));
    in_word = false;
  };
  for (auto const* p = begin; p < end;) {
    char32_t cp = 0;
    int const len = *p < 0x80u ? (cp = *p, 1) : decode_utf8(p, end, cp);
    if (is_python_space(cp)) {
      if (in_word) close();
    } else {
      if (!in_word) {
        starts.push_back(static_cast<std::uint32_t>(out.size()));
        out.push_back(' ');
        in_word = true;
      }
      starts.push_back(static_cast<std::uint32_t>(out.size()));
      out.append(reinterpret_cast<char const*>(p), static_cast<std::size_t>(len));
    }
    p += len;
  }
  if (in_word) close();
  starts.push_back(static_cast<std::uint32_t>(out.size()));
}

/// Calls f(begin_byte, end_byte) for every char n-gram (file comment) of the text whose
/// code points start at `starts` (the last entry is the end). O(code points * n's).
template <class F>
void for_each_char_ngram(std::vector<std::uint32_t> const& starts, int min_n, int max_n, F&& f) {
  std::size_t const length = starts.size() - 1;
  for (auto n = static_cast<std::size_t>(min_n); n <= static_cast<std::size_t>(max_n) && n <= length; ++n) {
    for (std::size_t i = 0; i + n <= length; ++i) f(starts[i], starts[i + n]);
  }
}

/// Calls f(begin_byte, end_byte) for every char_wb n-gram (file comment) of the padded
/// word whose code points are starts[first .. last) (starts[last] is its end). O(L * n's).
template <class F>
void for_each_word_ngram(std::vector<std::uint32_t> const& starts, std::size_t first, std::size_t last, int min_n,
                         int max_n, F&& f) {
  std::size_t const length = last - first;
  for (auto n = static_cast<std::size_t>(min_n); n <= static_cast<std::size_t>(max_n); ++n) {
    if (length <= n) {
      f(starts[first], starts[last]);
      break;
    }
    for (std::size_t i = 0; i + n <= length; ++i) f(starts[first + i], starts[first + i + n]);
  }
}

/// Calls f(begin_byte, end_byte) for every char_wb n-gram of the padded words laid out by
/// pad_words. O(code points * n's).
template <class F>
void for_each_char_wb_ngram(std::vector<std::uint32_t> const& starts, std::vector<std::uint32_t> const& word_ends,
                            int min_n, int max_n, F&& f) {
  std::size_t first = 0;  // index in starts of the word's opening space
  for (std::uint32_t const last : word_ends) {
    for_each_word_ngram(starts, first, last, min_n, max_n, f);
    first = last;
  }
}

}  // namespace mgpu::detail
