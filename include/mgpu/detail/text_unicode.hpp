// mgpu/detail/text_unicode.hpp — the code-point level of the scikit-learn analyzer:
// strict UTF-8 decoding and encoding, Python's `\w` class and Python's `str.lower()`.
//
// What Python 3.11 does, and therefore what this file reproduces:
//   - `re` matches `\w` on a str pattern for `str.isalnum()` characters and '_', which
//     are exactly the general categories Lu, Ll, Lt, Lm, Lo, Nd, Nl, No (combining
//     marks Mn/Mc/Me are *not* word characters). Checked over every code point against
//     Python 3.11 by tests/algorithms/test_tfidf.cpp.
//   - `str.lower()` is the full lowercase mapping: the simple mapping for every code
//     point except U+0130 (İ → "i̇", U+0069 U+0307, the only unconditional multi-code-
//     point lowercase mapping), and U+03A3 (Σ), which becomes final sigma ς when
//     preceded by a cased letter and not followed by one (case-ignorable characters
//     skipped on both sides), σ otherwise (Unicode's Final_Sigma condition, as in
//     CPython's handle_capital_sigma).
// The tables come from utf8proc 2.8 (Unicode 15.0) while Python 3.11 uses Unicode 14.0:
// the 4,388 code points first assigned in Unicode 15.0 (e.g. CJK Extension H, Kawi,
// Nag Mundari) are word characters here and not in Python. No case mapping differs.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include <utf8proc.h>

namespace mgpu::detail {

/// Decodes one code point at `p` (p < end) as Python's strict UTF-8 decoder does:
/// overlong forms, surrogates, values above U+10FFFF and truncated sequences are
/// invalid. Returns the sequence length (1–4), or 0 if the bytes at `p` are invalid.
inline int decode_utf8(unsigned char const* p, unsigned char const* end, char32_t& cp) noexcept {
  unsigned const b0 = p[0];
  auto const avail = end - p;
  auto cont = [&](std::ptrdiff_t i) { return i < avail && (p[i] & 0xC0u) == 0x80u; };
  if (b0 < 0x80u) {
    cp = b0;
    return 1;
  }
  if (b0 >= 0xC2u && b0 <= 0xDFu) {
    if (!cont(1)) return 0;
    cp = ((b0 & 0x1Fu) << 6) | (p[1] & 0x3Fu);
    return 2;
  }
  if (b0 >= 0xE0u && b0 <= 0xEFu) {
    if (!cont(1) || !cont(2)) return 0;
    if (b0 == 0xE0u && p[1] < 0xA0u) return 0;  // overlong
    if (b0 == 0xEDu && p[1] > 0x9Fu) return 0;  // surrogate
    cp = ((b0 & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
    return 3;
  }
  if (b0 >= 0xF0u && b0 <= 0xF4u) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (b0 == 0xF0u && p[1] < 0x90u) return 0;  // overlong
    if (b0 == 0xF4u && p[1] > 0x8Fu) return 0;  // beyond U+10FFFF
    cp = ((b0 & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
    return 4;
  }
  return 0;
}

/// Writes the UTF-8 form of a valid code point at `out`; returns the end of it.
inline char* encode_utf8(char32_t cp, char* out) noexcept {
  if (cp < 0x80u) {
    *out++ = static_cast<char>(cp);
  } else if (cp < 0x800u) {
    *out++ = static_cast<char>(0xC0u | (cp >> 6));
    *out++ = static_cast<char>(0x80u | (cp & 0x3Fu));
  } else if (cp < 0x10000u) {
    *out++ = static_cast<char>(0xE0u | (cp >> 12));
    *out++ = static_cast<char>(0x80u | ((cp >> 6) & 0x3Fu));
    *out++ = static_cast<char>(0x80u | (cp & 0x3Fu));
  } else {
    *out++ = static_cast<char>(0xF0u | (cp >> 18));
    *out++ = static_cast<char>(0x80u | ((cp >> 12) & 0x3Fu));
    *out++ = static_cast<char>(0x80u | ((cp >> 6) & 0x3Fu));
    *out++ = static_cast<char>(0x80u | (cp & 0x3Fu));
  }
  return out;
}

inline utf8proc_propval_t unicode_category(char32_t cp) noexcept {
  return utf8proc_get_property(static_cast<utf8proc_int32_t>(cp))->category;
}

/// Python's `\w` for str patterns: str.isalnum() or '_' (see the file comment).
inline bool is_word_code_point(char32_t cp) noexcept {
  if (cp == U'_') return true;
  switch (unicode_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return true;
    default:
      return false;
  }
}

/// Unicode's Case_Ignorable property (DerivedCoreProperties): categories Mn, Me, Cf,
/// Lm, Sk, plus the Word_Break MidLetter / MidNumLet / Single_Quote characters.
inline bool is_case_ignorable(char32_t cp) noexcept {
  switch (cp) {
    case 0x0027: case 0x002E: case 0x003A: case 0x00B7: case 0x0387: case 0x055F:
    case 0x05F4: case 0x2018: case 0x2019: case 0x2024: case 0x2027: case 0xFE13:
    case 0xFE52: case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
      return true;
    default:
      break;
  }
  switch (unicode_category(cp)) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_SK:
      return true;
    default:
      return false;
  }
}

/// Unicode's Cased property for characters that are not case-ignorable (the only ones
/// the Final_Sigma condition looks at): Lu, Ll, Lt, plus the Other_Lowercase /
/// Other_Uppercase letters, numerals and symbols listed here.
inline bool is_cased(char32_t cp) noexcept {
  switch (unicode_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
      return true;
    default:
      break;
  }
  return cp == 0x00AA || cp == 0x00BA || (cp >= 0x2160 && cp <= 0x217F) ||
         (cp >= 0x24B6 && cp <= 0x24E9) || (cp >= 0x1F130 && cp <= 0x1F149) ||
         (cp >= 0x1F150 && cp <= 0x1F169) || (cp >= 0x1F170 && cp <= 0x1F189);
}

/// Start of the code point that ends just before `p` in valid UTF-8 beginning at `begin`.
inline unsigned char const* previous_code_point(unsigned char const* begin,
                                                unsigned char const* p) noexcept {
  do {
    --p;
  } while (p > begin && (*p & 0xC0u) == 0x80u);
  return p;
}

/// Whether the capital sigma occupying [sigma, sigma + 2) of the text [begin, end) is in
/// the Final_Sigma context: \p{cased} \p{case-ignorable}* Σ !(\p{case-ignorable}* \p{cased}).
/// Text before the sigma has been validated; invalid bytes after it end the look-ahead.
inline bool is_final_sigma(unsigned char const* begin, unsigned char const* sigma,
                           unsigned char const* end) noexcept {
  bool before = false;
  for (auto const* p = sigma; p > begin;) {
    p = previous_code_point(begin, p);
    char32_t cp = 0;
    decode_utf8(p, end, cp);
    if (!is_case_ignorable(cp)) {
      before = is_cased(cp);
      break;
    }
  }
  if (!before) return false;
  for (auto const* p = sigma + 2; p < end;) {
    char32_t cp = 0;
    int const len = decode_utf8(p, end, cp);
    if (len == 0) return true;
    if (!is_case_ignorable(cp)) return !is_cased(cp);
    p += len;
  }
  return true;
}

/// Python's full lowercase of the code point `cp` found at `at` in [begin, end) (the
/// position is needed for Σ's context). Writes 1 or 2 code points to `out`, returns
/// how many.
inline int lower_full(char32_t cp, unsigned char const* begin, unsigned char const* at,
                      unsigned char const* end, char32_t* out) noexcept {
  if (cp == 0x0130) {
    out[0] = U'i';
    out[1] = 0x0307;
    return 2;
  }
  if (cp == 0x03A3) {
    out[0] = is_final_sigma(begin, at, end) ? char32_t{0x03C2} : char32_t{0x03C3};
    return 1;
  }
  out[0] = static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp)));
  return 1;
}

/// For each ASCII byte: 0 if it is not a word character, otherwise the byte itself or
/// (Lower) its lowercase. Bytes >= 0x80 map to 0 (they start multi-byte sequences).
template <bool Lower>
inline constexpr std::array<char, 256> ascii_word_table = [] {
  std::array<char, 256> t{};
  for (int b = 0; b < 0x80; ++b) {
    bool const upper = b >= 'A' && b <= 'Z';
    bool const word = upper || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || b == '_';
    if (word) t[static_cast<std::size_t>(b)] = static_cast<char>(Lower && upper ? b + 32 : b);
  }
  return t;
}();

}  // namespace mgpu::detail
