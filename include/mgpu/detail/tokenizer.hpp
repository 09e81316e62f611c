// mgpu/detail/tokenizer.hpp — scikit-learn's default word analyzer on UTF-8 text.
//
// `word_tokenizer::tokenize(doc)` does what `CountVectorizer().build_analyzer()` does:
// `doc.lower()` (optional) on the whole document, then `re.findall(r"(?u)\b\w\w+\b")`,
// i.e. the maximal runs of at least two word code points *after* lowercasing (see
// text_unicode.hpp for both definitions). Lowering happens code point by code point
// as the text is scanned, which is equivalent because Python's lower() is a per-code-
// point mapping whose only context, Final_Sigma, reads the original text.
//
// The lowered text is written into one buffer and the tokens are spans of it, at least
// one byte apart, with at least 8 readable bytes after each (hashing loads 8 bytes at
// a time). `join()` then moves the tokens so that each is followed by a single space:
// the word n-gram of tokens i..j (sklearn's `" ".join(tokens[i:j+1])`) becomes the
// contiguous bytes from the start of token i to the end of token j, so n-grams cost
// no copies. Unigram counting skips that pass.
//
// Speed: the text is classified 64 bytes at a time (AVX-512BW or AVX2 when the target
// has them, a table otherwise) into a bit mask of ASCII word bytes and one of non-ASCII
// bytes; an ASCII stretch is lowered with one store and its tokens are the runs of
// ones in the mask. Only non-ASCII code points go through utf8proc, one at a time.
//
// Thread safety: one tokenizer per thread.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

#if defined(__AVX512BW__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "mgpu/core/error.hpp"
#include "mgpu/detail/text_unicode.hpp"

namespace mgpu::detail {

/// 64 bytes of text, classified: bit i of `word` is set when byte i is an ASCII word
/// character, bit i of `non_ascii` when byte i is >= 0x80.
struct byte_masks {
  std::uint64_t word;
  std::uint64_t non_ascii;
};

/// Classifies the 64 bytes at `in` and writes them to `out` (ASCII capitals lowered
/// when Lower; other bytes copied, their value is never used).
template <bool Lower>
inline byte_masks classify_64(unsigned char const* in, char* out) noexcept {
#if defined(__AVX512BW__)
  __m512i const v = _mm512_loadu_si512(in);
  __m512i const folded = _mm512_or_si512(v, _mm512_set1_epi8(0x20));
  __mmask64 const letter =
      _mm512_cmple_epu8_mask(_mm512_sub_epi8(folded, _mm512_set1_epi8('a')), _mm512_set1_epi8(25));
  __mmask64 const digit =
      _mm512_cmple_epu8_mask(_mm512_sub_epi8(v, _mm512_set1_epi8('0')), _mm512_set1_epi8(9));
  __mmask64 const underscore = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('_'));
  if constexpr (Lower) {
    __mmask64 const upper =
        _mm512_cmple_epu8_mask(_mm512_sub_epi8(v, _mm512_set1_epi8('A')), _mm512_set1_epi8(25));
    _mm512_storeu_si512(out, _mm512_mask_add_epi8(v, upper, v, _mm512_set1_epi8(0x20)));
  } else {
    _mm512_storeu_si512(out, v);
  }
  return {letter | digit | underscore, _mm512_movepi8_mask(v)};
#elif defined(__AVX2__)
  auto at_most = [](__m256i x, char bound) {  // unsigned x <= bound, per byte
    return _mm256_cmpeq_epi8(_mm256_min_epu8(x, _mm256_set1_epi8(bound)), x);
  };
  std::uint64_t word = 0;
  std::uint64_t non_ascii = 0;
  for (int half = 0; half < 2; ++half) {
    __m256i const v = _mm256_loadu_si256(reinterpret_cast<__m256i const*>(in + 32 * half));
    __m256i const folded = _mm256_or_si256(v, _mm256_set1_epi8(0x20));
    __m256i const w = _mm256_or_si256(
        _mm256_or_si256(at_most(_mm256_sub_epi8(folded, _mm256_set1_epi8('a')), 25),
                        at_most(_mm256_sub_epi8(v, _mm256_set1_epi8('0')), 9)),
        _mm256_cmpeq_epi8(v, _mm256_set1_epi8('_')));
    if constexpr (Lower) {
      __m256i const upper = at_most(_mm256_sub_epi8(v, _mm256_set1_epi8('A')), 25);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 * half),
                          _mm256_add_epi8(v, _mm256_and_si256(upper, _mm256_set1_epi8(0x20))));
    } else {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 * half), v);
    }
    word |= std::uint64_t{static_cast<std::uint32_t>(_mm256_movemask_epi8(w))} << (32 * half);
    non_ascii |= std::uint64_t{static_cast<std::uint32_t>(_mm256_movemask_epi8(v))} << (32 * half);
  }
  return {word, non_ascii};
#else
  auto const& table = ascii_word_table<Lower>;
  std::uint64_t word = 0;
  std::uint64_t non_ascii = 0;
  for (unsigned i = 0; i < 64; ++i) {
    unsigned char const b = in[i];
    char const c = table[b];
    word |= std::uint64_t{c != 0} << i;
    non_ascii |= static_cast<std::uint64_t>(b >> 7) << i;
    out[i] = c != 0 ? c : static_cast<char>(b);
  }
  return {word, non_ascii};
#endif
}

class word_tokenizer {
 public:
  explicit word_tokenizer(bool lowercase) : lowercase_(lowercase) {}

  /// Tokenizes `doc` (replacing the previous document's tokens).
  /// @throws invalid_argument if `doc` is not valid UTF-8, naming `doc_index` and the
  ///         byte offset (sklearn's strict decoding raises there too).
  void tokenize(std::string_view doc, std::size_t doc_index) {
    // Lowering grows a code point by at most half (2-byte U+023A -> 3-byte U+2C65;
    // İ: 2 -> 3 bytes); a block store writes 64 bytes past the text at most, and
    // hashing reads 8 bytes past a token.
    std::size_t const need = 2 * doc.size() + 160;
    if (need > capacity_) {
      buffer_ = std::make_unique_for_overwrite<char[]>(need);
      capacity_ = need;
    }
    // Tokens are at least two bytes and one byte apart.
    std::size_t const most_tokens = doc.size() / 2 + 2;
    if (most_tokens > token_capacity_) {
      spans_ = std::make_unique_for_overwrite<span[]>(most_tokens);
      token_capacity_ = most_tokens;
    }
    count_ = 0;
    joined_ = false;
    if (lowercase_) {
      scan<true>(doc, doc_index);
    } else {
      scan<false>(doc, doc_index);
    }
  }

  [[nodiscard]] std::size_t size() const noexcept { return count_; }

  /// Token i; the 8 bytes after it are readable.
  [[nodiscard]] std::string_view token(std::size_t i) const noexcept {
    return {buffer_.get() + spans_[i].begin, spans_[i].end - spans_[i].begin};
  }

  /// Moves the tokens so that each is followed by one space (needed by ngram).
  void join() noexcept {
    if (joined_) return;
    char* const base = buffer_.get();
    std::size_t out = 0;
    for (std::size_t i = 0; i < count_; ++i) {
      // Tokens are ordered and at least one byte apart, so out + length < next begin.
      std::size_t const length = spans_[i].end - spans_[i].begin;
      std::memmove(base + out, base + spans_[i].begin, length);
      spans_[i] = {out, out + length};
      out += length;
      base[out++] = ' ';
    }
    joined_ = true;
  }

  /// Tokens first..last (inclusive) joined by single spaces; needs join() unless
  /// first == last.
  [[nodiscard]] std::string_view ngram(std::size_t first, std::size_t last) const noexcept {
    return {buffer_.get() + spans_[first].begin, spans_[last].end - spans_[first].begin};
  }

  /// Calls `f(term)` for every word n-gram with min_n <= n <= max_n, as sklearn's
  /// `_word_ngrams` (order differs; counts do not).
  template <class F>
  void for_each_ngram(int min_n, int max_n, F&& f) {
    if (max_n > 1) join();
    std::size_t const count = size();
    for (auto n = static_cast<std::size_t>(min_n); n <= static_cast<std::size_t>(max_n) && n <= count;
         ++n) {
      for (std::size_t i = 0; i + n <= count; ++i) f(ngram(i, i + n - 1));
    }
  }

 private:
  struct span {
    std::size_t begin;
    std::size_t end;
  };

  template <bool Lower>
  void scan(std::string_view doc, std::size_t doc_index) {
    auto const* const begin = reinterpret_cast<unsigned char const*>(doc.data());
    auto const* const end = begin + doc.size();
    char* const base = buffer_.get();
    span* const spans = spans_.get();
    std::size_t count = 0;
    char* w = base;
    char* token = base;        // start of the open token
    bool open = false;         // whether a token runs up to w
    std::size_t code_points = 0;  // of the open token
    auto record = [&](char* first, char* last) {
      spans[count++] = {static_cast<std::size_t>(first - base), static_cast<std::size_t>(last - base)};
    };
    // A code point that is not a word character ends the open token; the space keeps
    // tokens apart for join().
    auto close = [&] {
      if (code_points >= 2) record(token, w);
      *w++ = ' ';
      open = false;
    };
    auto put = [&](char32_t cp) {
      if (!open) {
        open = true;
        token = w;
        code_points = 0;
      }
      w = encode_utf8(cp, w);
      ++code_points;
    };
    alignas(64) unsigned char tail[64];
    auto const* p = begin;
    while (p < end) {
      auto const avail = static_cast<std::size_t>(end - p);
      unsigned char const* block = p;
      if (avail < 64) {
        // Zero bytes are neither word characters nor non-ASCII.
        std::memset(tail, 0, sizeof tail);
        std::memcpy(tail, p, avail);
        block = tail;
      }
      auto const masks = classify_64<Lower>(block, w);
      // The ASCII bytes before the first non-ASCII one (or the end) go by the mask.
      auto const ascii = std::min<std::size_t>(static_cast<std::size_t>(std::countr_zero(masks.non_ascii)), avail);
      std::uint64_t m = ascii < 64 ? masks.word & ((std::uint64_t{1} << ascii) - 1) : masks.word;
      if (open) {
        auto const run = static_cast<std::size_t>(std::countr_one(m));
        if (run >= ascii) {
          code_points += ascii;
          m = 0;
        } else {
          code_points += run;
          if (code_points >= 2) record(token, w + run);
          open = false;
          m &= ~std::uint64_t{0} << run;
        }
      }
      while (m != 0) {
        auto const s = static_cast<std::size_t>(std::countr_zero(m));
        auto const run = static_cast<std::size_t>(std::countr_one(m >> s));
        if (s + run >= ascii) {
          open = true;
          token = w + s;
          code_points = run;
          break;
        }
        if (run >= 2) record(w + s, w + s + run);
        m &= ~std::uint64_t{0} << (s + run);
      }
      w += ascii;
      p += ascii;
      if (ascii == avail || ascii == 64) continue;
      // Non-ASCII code points, by utf8proc, until the next ASCII byte.
      do {
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
            put(lowered[i]);
          } else if (open) {
            close();
          }
        }
      } while (p < end && *p >= 0x80u);
    }
    if (open) close();
    std::memset(w, 0, 8);
    count_ = count;
  }

  bool lowercase_;
  bool joined_ = false;
  std::unique_ptr<char[]> buffer_;
  std::size_t capacity_ = 0;
  std::unique_ptr<span[]> spans_;
  std::size_t token_capacity_ = 0;
  std::size_t count_ = 0;
};

}  // namespace mgpu::detail
