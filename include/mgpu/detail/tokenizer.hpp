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
// one byte apart, each with at least 16 readable bytes from its start and 8 after its
// end (hashing loads two 8-byte words whatever the token's length). `join()` then moves the tokens so that each is followed by a single space:
// the word n-gram of tokens i..j (sklearn's `" ".join(tokens[i:j+1])`) becomes the
// contiguous bytes from the start of token i to the end of token j, so n-grams cost
// no copies. Unigram counting skips that pass.
//
// Speed: the text is classified 64 bytes at a time (AVX-512BW or AVX2 when the target
// has them, a table otherwise) into a bit mask of ASCII word bytes and one of non-ASCII
// bytes; an ASCII stretch is lowered with one store. Its runs of word bytes are found
// without a branch per run: with `prev` the word mask shifted up by one (bit 0 = whether
// a run is open from before), `word & ~prev` marks where runs start and `~word & prev`
// where they stop, and the positions of both kinds of bits are written out wholesale
// as the begin and end offsets of the runs (AVX-512 VBMI2 compresses the 64 byte indices
// in one instruction; otherwise eight positions are written per round whether or not
// that many bits are set). A run still open at the end of a stretch has its end written
// later. Non-ASCII code points go one at a time, through utf8proc except for the CJK
// ideographs, which are copied; they open and close runs the same way. A run of one
// code point is not a token: one of a multi-byte code point is taken back when it ends,
// and a last branch-free pass drops the runs of one byte.
//
// Offsets are 32-bit, so documents are limited to less than 2 GiB (their lowered text
// is then at most 3 GiB).
//
// Thread safety: one tokenizer per thread.
#pragma once

#include <algorithm>
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

/// Classifies the `avail` bytes at `in` (bytes past 64 are ignored, missing ones read as
/// zero, which is neither a word character nor non-ASCII) and writes 64 bytes to `out`:
/// the text with ASCII capitals lowered when Lower (other bytes copied, their value is
/// never used).
template <bool Lower>
inline byte_masks classify_64(unsigned char const* in, std::size_t avail, char* out) noexcept {
#if defined(__AVX512BW__)
  __m512i const v = avail >= 64 ? _mm512_loadu_si512(in)
                                : _mm512_maskz_loadu_epi8((std::uint64_t{1} << avail) - 1, in);
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
#else
  alignas(64) unsigned char tail[64];
  if (avail < 64) {
    std::memset(tail, 0, sizeof tail);
    std::memcpy(tail, in, avail);
    in = tail;
  }
#if defined(__AVX2__)
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
#endif
}

/// Most set bits `write_positions` is given: run starts (or stops) are never adjacent.
inline constexpr int max_positions = 32;

/// Writes `offset + i` for every set bit i of `bits` (at most max_positions of them), in
/// increasing order, to `out`; returns how many. Writes up to max_positions values in
/// any case, so `out` needs that much room.
inline std::size_t write_positions(std::uint64_t bits, std::uint32_t offset, std::uint32_t* out) noexcept {
  auto const n = static_cast<std::size_t>(std::popcount(bits));
#if defined(__AVX512VBMI2__) && defined(__AVX512VBMI__) && defined(__AVX512BW__)
  // The indices of the set bits, packed into the low bytes (vpcompressb), then moved 16
  // at a time into the low bytes of 32-bit lanes, the other bytes zeroed (vpermb).
  __m512i const indices = _mm512_set_epi8(
      63, 62, 61, 60, 59, 58, 57, 56, 55, 54, 53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39,
      38, 37, 36, 35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14,
      13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  __m512i const packed = _mm512_maskz_compress_epi8(bits, indices);
  constexpr std::uint64_t low_bytes = 0x1111111111111111;
  __m512i const first = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  __m512i const second = _mm512_set_epi32(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16);
  __m512i const base = _mm512_set1_epi32(static_cast<int>(offset));
  _mm512_storeu_si512(out, _mm512_add_epi32(base, _mm512_maskz_permutexvar_epi8(low_bytes, first, packed)));
  _mm512_storeu_si512(out + 16,
                      _mm512_add_epi32(base, _mm512_maskz_permutexvar_epi8(low_bytes, second, packed)));
#else
  // Eight positions per round; the rounds past the last set bit write offset + 64.
  for (int round = 0; round < max_positions / 8; ++round) {
    for (int i = 0; i < 8; ++i) {
      out[8 * round + i] = offset + static_cast<std::uint32_t>(std::countr_zero(bits));
      bits &= bits - 1;
    }
    if (static_cast<std::size_t>(8 * round + 8) >= n) break;
  }
#endif
  return n;
}

/// The CJK Unified Ideographs block, U+4E00..U+9FFF: all word characters (Lo) without
/// a case mapping, so the bulk of Chinese and Japanese text is copied without utf8proc
/// (tests/algorithms/test_tokenizer.cpp checks the block against text_unicode.hpp).
inline constexpr char32_t cjk_first = 0x4E00;
inline constexpr char32_t cjk_count = 0x5200;

class word_tokenizer {
 public:
  explicit word_tokenizer(bool lowercase) : lowercase_(lowercase) {}

  /// Tokenizes `doc` (replacing the previous document's tokens).
  /// @throws invalid_argument if `doc` is 2 GiB or larger, or is not valid UTF-8 (naming
  ///         `doc_index` and the byte offset; sklearn's strict decoding raises there too).
  void tokenize(std::string_view doc, std::size_t doc_index) {
    if (doc.size() >= (std::size_t{1} << 31)) {
      throw invalid_argument(message("document ", doc_index, " has ", doc.size(),
                                     " bytes; documents of 2 GiB or more are not supported"));
    }
    // Lowering grows a code point by at most half (2-byte U+023A -> 3-byte U+2C65;
    // İ: 2 -> 3 bytes); a block store writes 64 bytes past the text at most, and
    // hashing reads 8 bytes past a token.
    std::size_t const need = 2 * doc.size() + 160;
    if (need > capacity_) {
      buffer_ = std::make_unique_for_overwrite<char[]>(need);
      capacity_ = need;
    }
    // A run of word code points and the separator after it come from two input bytes at
    // least (İ alone: its lowered form "i̇" is both); write_positions and keep_tokens
    // store up to max_positions values past the last run.
    std::size_t const most_runs = doc.size() / 2 + 2 + max_positions;
    if (most_runs > run_capacity_) {
      begins_ = std::make_unique_for_overwrite<std::uint32_t[]>(most_runs);
      ends_ = std::make_unique_for_overwrite<std::uint32_t[]>(most_runs);
      run_capacity_ = most_runs;
    }
    joined_ = false;
    std::size_t const runs = lowercase_ ? scan<true>(doc, doc_index) : scan<false>(doc, doc_index);
    count_ = keep_tokens(runs);
  }

  [[nodiscard]] std::size_t size() const noexcept { return count_; }

  /// Token i; 16 bytes from its start and the 8 bytes after it are readable.
  [[nodiscard]] std::string_view token(std::size_t i) const noexcept {
    return {buffer_.get() + begins_[i], ends_[i] - begins_[i]};
  }

  /// Moves the tokens so that each is followed by one space (needed by ngram).
  void join() noexcept {
    if (joined_) return;
    char* const base = buffer_.get();
    std::uint32_t out = 0;
    for (std::size_t i = 0; i < count_; ++i) {
      // Tokens are ordered and at least one byte apart, so out + length < next begin.
      std::uint32_t const length = ends_[i] - begins_[i];
      std::memmove(base + out, base + begins_[i], length);
      begins_[i] = out;
      out += length;
      ends_[i] = out;
      base[out++] = ' ';
    }
    joined_ = true;
  }

  /// Tokens first..last (inclusive) joined by single spaces; needs join() unless
  /// first == last.
  [[nodiscard]] std::string_view ngram(std::size_t first, std::size_t last) const noexcept {
    return {buffer_.get() + begins_[first], ends_[last] - begins_[first]};
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
  /// Writes the lowered text and the begin and end offsets of its runs of word code
  /// points (of any length); returns the number of runs.
  template <bool Lower>
  std::size_t scan(std::string_view doc, std::size_t doc_index) {
    auto const* const begin = reinterpret_cast<unsigned char const*>(doc.data());
    auto const* const end = begin + doc.size();
    char* const base = buffer_.get();
    std::uint32_t* const begins = begins_.get();
    std::uint32_t* const ends = ends_.get();
    std::size_t opened = 0;  // runs begun; the last one is open while opened > closed
    std::size_t closed = 0;  // runs ended
    char* w = base;
    auto offset = [&] { return static_cast<std::uint32_t>(w - base); };
    auto const* p = begin;
    while (p < end) {
      auto const avail = static_cast<std::size_t>(end - p);
      auto const masks = classify_64<Lower>(p, avail, w);
      // The ASCII bytes before the first non-ASCII one (or the end) go by the mask.
      auto const ascii =
          std::min<std::size_t>(static_cast<std::size_t>(std::countr_zero(masks.non_ascii)), avail);
      std::uint64_t const inside = ascii < 64 ? (std::uint64_t{1} << ascii) - 1 : ~std::uint64_t{0};
      std::uint64_t const word = masks.word & inside;
      std::uint64_t const prev = (word << 1) | std::uint64_t{opened > closed};
      opened += write_positions(word & ~prev, offset(), begins + opened);
      closed += write_positions(~word & prev & inside, offset(), ends + closed);
      w += ascii;
      p += ascii;
      if (ascii == avail || ascii == 64) continue;
      // Non-ASCII code points (CJK ideographs copied, the others lowered and classified by
      // utf8proc) until the next ASCII byte. One that is not a word character ends the
      // open run; the space keeps tokens apart for join(). A run that is one multi-byte
      // code point (the only runs of one code point longer than a byte) is taken back as
      // soon as that is known; keep_tokens drops the others.
      bool open = opened > closed;
      bool single = false;  // whether the open run is one multi-byte code point so far
      auto extend = [&](bool multibyte) {  // before a word code point is written
        single = !open && multibyte;
        if (!open) begins[opened++] = offset();
        open = true;
      };
      do {
        char32_t cp = 0;
        int const len = decode_utf8(p, end, cp);
        if (len == 0) {
          throw invalid_argument(message("document ", doc_index, " is not valid UTF-8: byte 0x",
                                         std::hex, static_cast<unsigned>(*p), std::dec,
                                         " at offset ", p - begin));
        }
        if (cp - cjk_first < cjk_count) {
          extend(true);
          std::memcpy(w, p, 3);
          w += 3;
          p += 3;
          continue;
        }
        char32_t lowered[2] = {cp, 0};
        int const n = Lower ? lower_full(cp, begin, p, end, lowered) : 1;
        p += len;
        for (int i = 0; i < n; ++i) {
          if (is_word_code_point(lowered[i])) {
            extend(lowered[i] >= 0x80u);
            w = encode_utf8(lowered[i], w);
          } else if (open) {
            if (single) {
              --opened;
            } else {
              ends[closed++] = offset();
            }
            *w++ = ' ';
            open = false;
          }
        }
      } while (p < end && *p >= 0x80u);
      // The next block would close the run at its first byte.
      if (open && single && (p == end || ascii_word_table<false>[*p] == 0)) --opened;
    }
    if (opened > closed) {
      ends[closed++] = offset();
      *w++ = ' ';
    }
    std::memset(w, 0, 16);  // what hashing reads past the last token is defined
    return closed;
  }

  /// Keeps the runs of two bytes or more, in place (the runs left of one code point are
  /// one byte); returns how many.
  std::size_t keep_tokens(std::size_t runs) noexcept {
    std::uint32_t* const begins = begins_.get();
    std::uint32_t* const ends = ends_.get();
    std::size_t kept = 0;
#if defined(__AVX512F__)
    // 16 runs at a time, compressed in registers and stored whole (stores stay below the
    // runs not yet read, and within the room write_positions needs).
    for (std::size_t i = 0; i < runs; i += 16) {
      __mmask16 const lanes =
          runs - i >= 16 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << (runs - i)) - 1);
      __m512i const b = _mm512_maskz_loadu_epi32(lanes, begins + i);
      __m512i const e = _mm512_maskz_loadu_epi32(lanes, ends + i);
      __mmask16 const keep =
          _mm512_mask_cmpge_epu32_mask(lanes, _mm512_sub_epi32(e, b), _mm512_set1_epi32(2));
      _mm512_storeu_si512(begins + kept, _mm512_maskz_compress_epi32(keep, b));
      _mm512_storeu_si512(ends + kept, _mm512_maskz_compress_epi32(keep, e));
      kept += static_cast<std::size_t>(std::popcount(static_cast<unsigned>(keep)));
    }
#else
    for (std::size_t i = 0; i < runs; ++i) {
      std::uint32_t const b = begins[i];
      std::uint32_t const e = ends[i];
      begins[kept] = b;
      ends[kept] = e;
      kept += e - b >= 2;
    }
#endif
    return kept;
  }

  bool lowercase_;
  bool joined_ = false;
  std::unique_ptr<char[]> buffer_;
  std::size_t capacity_ = 0;
  std::unique_ptr<std::uint32_t[]> begins_;
  std::unique_ptr<std::uint32_t[]> ends_;
  std::size_t run_capacity_ = 0;
  std::size_t count_ = 0;
};

}  // namespace mgpu::detail
