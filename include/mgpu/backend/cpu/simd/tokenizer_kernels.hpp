// mgpu/backend/cpu/simd/tokenizer_kernels.hpp — the word tokenizer's scan
// (mgpu/detail/tokenizer.hpp), compiled once per instruction-set level of
// backend/cpu/simd/isa.hpp: namespaces `scalar`, `avx2`, `avx512`, `avx512vbmi2` under
// mgpu::backend::cpu::simd, each with
//
//   classify_64<Lower>(in, avail, out)   64 bytes -> masks of ASCII word and non-ASCII
//                                        bytes, ASCII capitals lowered into `out`
//   write_positions(bits, offset, out)   offsets of the set bits, in increasing order
//   keep_tokens(begins, ends, runs)      drops the runs shorter than two bytes
//   scan<Lower>(doc, doc_index, ...)     the document loop (tokenizer_scan.inl), the same
//                                        source in every namespace, compiled with that
//                                        namespace's primitives inlined
//
// What each level uses: scalar — a 256-entry table, one bit at a time; avx2 — two 32-byte
// compares per block, movemask; avx512 — one 64-byte masked load and mask compares
// (AVX-512BW), keep_tokens compresses 16 runs at a time (AVX-512F); avx512vbmi2 — as
// avx512, and write_positions packs the set bits' indices with one vpcompressb (VBMI2)
// and spreads them to 32-bit lanes with vpermb (VBMI). Every level gives the same bytes,
// masks and runs; tests/algorithms/test_tokenizer.cpp runs them all.
//
// The dispatch is once per document (word_tokenizer::tokenize).
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ios>
#include <string_view>

#include "mgpu/backend/cpu/simd/isa.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/detail/text_unicode.hpp"

namespace mgpu::backend::cpu::simd {

/// 64 bytes of text, classified: bit i of `word` is set when byte i is an ASCII word
/// character, bit i of `non_ascii` when byte i is >= 0x80.
struct byte_masks {
  std::uint64_t word;
  std::uint64_t non_ascii;
};

/// Most set bits `write_positions` is given: run starts (or stops) are never adjacent.
inline constexpr int max_positions = 32;

/// The CJK Unified Ideographs block, U+4E00..U+9FFF: all word characters (Lo) without
/// a case mapping, so the bulk of Chinese and Japanese text is copied without utf8proc
/// (tests/algorithms/test_tokenizer.cpp checks the block against text_unicode.hpp).
inline constexpr char32_t cjk_first = 0x4E00;
inline constexpr char32_t cjk_count = 0x5200;

}  // namespace mgpu::backend::cpu::simd

// ---------------------------------------------------------------------------------------
// scalar: portable C++.
namespace mgpu::backend::cpu::simd::scalar {

/// Classifies the `avail` bytes at `in` (bytes past 64 are ignored, missing ones read as
/// zero, which is neither a word character nor non-ASCII) and writes 64 bytes to `out`:
/// the text with ASCII capitals lowered when Lower (other bytes copied, their value is
/// never used).
template <bool Lower>
inline byte_masks classify_64(unsigned char const* in, std::size_t avail, char* out) noexcept {
  alignas(64) unsigned char tail[64];
  if (avail < 64) {
    std::memset(tail, 0, sizeof tail);
    std::memcpy(tail, in, avail);
    in = tail;
  }
  auto const& table = ::mgpu::detail::ascii_word_table<Lower>;
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
}

/// Writes `offset + i` for every set bit i of `bits` (at most max_positions of them), in
/// increasing order, to `out`; returns how many. Writes up to max_positions values in
/// any case, so `out` needs that much room.
inline std::size_t write_positions(std::uint64_t bits, std::uint32_t offset, std::uint32_t* out) noexcept {
  auto const n = static_cast<std::size_t>(std::popcount(bits));
  // Eight positions per round; the rounds past the last set bit write offset + 64.
  for (int round = 0; round < max_positions / 8; ++round) {
    for (int i = 0; i < 8; ++i) {
      out[8 * round + i] = offset + static_cast<std::uint32_t>(std::countr_zero(bits));
      bits &= bits - 1;
    }
    if (static_cast<std::size_t>(8 * round + 8) >= n) break;
  }
  return n;
}

/// Keeps the runs [begins[i], ends[i]) of two bytes or more, in place; returns how many.
inline std::size_t keep_tokens(std::uint32_t* begins, std::uint32_t* ends, std::size_t runs) noexcept {
  std::size_t kept = 0;
  for (std::size_t i = 0; i < runs; ++i) {
    std::uint32_t const b = begins[i];
    std::uint32_t const e = ends[i];
    begins[kept] = b;
    ends[kept] = e;
    kept += e - b >= 2;
  }
  return kept;
}

#include "mgpu/backend/cpu/simd/tokenizer_scan.inl"

}  // namespace mgpu::backend::cpu::simd::scalar

#if MGPU_SIMD_X86
// ---------------------------------------------------------------------------------------
// avx2: AVX2 classification; positions and filtering as scalar.
MGPU_SIMD_BEGIN_AVX2
namespace mgpu::backend::cpu::simd::avx2 {

/// unsigned x <= bound, per byte.
inline __m256i at_most(__m256i x, char bound) noexcept {
  return _mm256_cmpeq_epi8(_mm256_min_epu8(x, _mm256_set1_epi8(bound)), x);
}

/// As scalar::classify_64.
template <bool Lower>
inline byte_masks classify_64(unsigned char const* in, std::size_t avail, char* out) noexcept {
  alignas(64) unsigned char tail[64];
  if (avail < 64) {
    std::memset(tail, 0, sizeof tail);
    std::memcpy(tail, in, avail);
    in = tail;
  }
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
}

using scalar::keep_tokens;
using scalar::write_positions;

#include "mgpu/backend/cpu/simd/tokenizer_scan.inl"

}  // namespace mgpu::backend::cpu::simd::avx2
MGPU_SIMD_END

// ---------------------------------------------------------------------------------------
// avx512: AVX-512BW classification, AVX-512F filtering; positions as scalar.
MGPU_SIMD_BEGIN_AVX512
namespace mgpu::backend::cpu::simd::avx512 {

/// As scalar::classify_64.
template <bool Lower>
inline byte_masks classify_64(unsigned char const* in, std::size_t avail, char* out) noexcept {
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
}

/// As scalar::keep_tokens: 16 runs at a time, compressed in registers and stored whole
/// (stores stay below the runs not yet read, and within the max_positions values of
/// room past the last run that write_positions needs).
inline std::size_t keep_tokens(std::uint32_t* begins, std::uint32_t* ends, std::size_t runs) noexcept {
  std::size_t kept = 0;
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
  return kept;
}

using scalar::write_positions;

#include "mgpu/backend/cpu/simd/tokenizer_scan.inl"

}  // namespace mgpu::backend::cpu::simd::avx512
MGPU_SIMD_END

// ---------------------------------------------------------------------------------------
// avx512vbmi2: as avx512, with write_positions by vpcompressb + vpermb.
MGPU_SIMD_BEGIN_AVX512VBMI2
namespace mgpu::backend::cpu::simd::avx512vbmi2 {

using avx512::classify_64;
using avx512::keep_tokens;

/// As scalar::write_positions: the indices of the set bits, packed into the low bytes
/// (vpcompressb), then moved 16 at a time into the low bytes of 32-bit lanes, the other
/// bytes zeroed (vpermb).
inline std::size_t write_positions(std::uint64_t bits, std::uint32_t offset, std::uint32_t* out) noexcept {
  auto const n = static_cast<std::size_t>(std::popcount(bits));
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
  return n;
}

#include "mgpu/backend/cpu/simd/tokenizer_scan.inl"

}  // namespace mgpu::backend::cpu::simd::avx512vbmi2
MGPU_SIMD_END
#endif  // MGPU_SIMD_X86

namespace mgpu::backend::cpu::simd {

/// Tokenizer scan at `level` (see tokenizer_scan.inl for the contract); the one switch
/// per document.
template <bool Lower>
inline std::size_t scan_words(isa level, std::string_view doc, std::size_t doc_index, char* base,
                              std::uint32_t* begins, std::uint32_t* ends) {
  switch (level) {
#if MGPU_SIMD_X86
    case isa::avx512vbmi2: return avx512vbmi2::scan<Lower>(doc, doc_index, base, begins, ends);
    case isa::avx512: return avx512::scan<Lower>(doc, doc_index, base, begins, ends);
    case isa::avx2: return avx2::scan<Lower>(doc, doc_index, base, begins, ends);
#endif
    default: return scalar::scan<Lower>(doc, doc_index, base, begins, ends);
  }
}

}  // namespace mgpu::backend::cpu::simd
