// mgpu/backend/cpu/text/preprocess.hpp — scikit-learn's preprocessing of a whole
// document, for the analyzers that do not take the fused default path (analyzer.hpp):
// Python's str.lower(), strip_accents "unicode" / "ascii", and the whitespace rules of
// the character analyzers.
//
//   lower           str.lower(): text_unicode.hpp's lower_full per code point (İ -> "i̇",
//                   final sigma in context).
//   strip_accents   "unicode": NFKD, then every code point of nonzero canonical combining
//                   class dropped (unicodedata.combining); "ascii": NFKD, then only the
//                   ASCII code points kept. ASCII text is returned as it is. NFKD's
//                   canonical reordering is skipped: it only permutes code points of
//                   nonzero combining class, which both modes drop.
//   whitespace      Python's str.isspace() (= `\s` of `re` on str): ASCII \t \n \v \f \r,
//                   U+001C..U+001F and space; above ASCII, bidirectional class WS, B or S,
//                   or category Zs. The char analyzers first replace each run of two or
//                   more such code points by one space (`re.sub(r"\s\s+", " ", text)`).
// Tables are utf8proc 2.8's (Unicode 15.0), Python 3.11's are Unicode 14.0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ios>
#include <string>
#include <string_view>

#include <utf8proc.h>

#include "mgpu/algorithms/tfidf_options.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/detail/text_unicode.hpp"

namespace mgpu::detail {

[[noreturn]] inline void throw_invalid_utf8(std::size_t doc_index, unsigned char const* begin,
                                            unsigned char const* at) {
  throw invalid_argument(message("document ", doc_index, " is not valid UTF-8: byte 0x", std::hex,
                                 static_cast<unsigned>(*at), std::dec, " at offset ", at - begin));
}

/// Python's str.isspace() for one code point (file comment).
inline bool is_python_space(char32_t cp) noexcept {
  if (cp < 0x80u) return (cp >= 0x09u && cp <= 0x0Du) || (cp >= 0x1Cu && cp <= 0x20u);
  auto const* p = utf8proc_get_property(static_cast<utf8proc_int32_t>(cp));
  return p->category == UTF8PROC_CATEGORY_ZS || p->bidi_class == UTF8PROC_BIDI_CLASS_WS ||
         p->bidi_class == UTF8PROC_BIDI_CLASS_B || p->bidi_class == UTF8PROC_BIDI_CLASS_S;
}

/// Checks that `text` is valid UTF-8. @throws invalid_argument naming document `doc_index`
/// and the byte offset.
inline void validate_utf8(std::string_view text, std::size_t doc_index) {
  auto const* const begin = reinterpret_cast<unsigned char const*>(text.data());
  auto const* const end = begin + text.size();
  for (auto const* p = begin; p < end;) {
    if (*p < 0x80u) {
      ++p;
      continue;
    }
    char32_t cp = 0;
    int const len = decode_utf8(p, end, cp);
    if (len == 0) throw_invalid_utf8(doc_index, begin, p);
    p += len;
  }
}

/// out = Python's text.lower() (text validated here). O(bytes).
/// @throws invalid_argument for invalid UTF-8.
inline void python_lower(std::string_view text, std::size_t doc_index, std::string& out) {
  auto const* const begin = reinterpret_cast<unsigned char const*>(text.data());
  auto const* const end = begin + text.size();
  out.resize(text.size() * 2 + 8);  // a code point grows by half at most
  char* w = out.data();
  for (auto const* p = begin; p < end;) {
    unsigned char const b = *p;
    if (b < 0x80u) {
      *w++ = static_cast<char>(b >= 'A' && b <= 'Z' ? b + 32 : b);
      ++p;
      continue;
    }
    char32_t cp = 0;
    int const len = decode_utf8(p, end, cp);
    if (len == 0) throw_invalid_utf8(doc_index, begin, p);
    char32_t lowered[2] = {cp, 0};
    int const n = lower_full(cp, begin, p, end, lowered);
    for (int i = 0; i < n; ++i) w = encode_utf8(lowered[i], w);
    p += len;
  }
  out.resize(static_cast<std::size_t>(w - out.data()));
}

/// out = strip_accents_unicode(text) or strip_accents_ascii(text) (file comment); `text`
/// is valid UTF-8. O(bytes).
inline void strip_accents(std::string_view text, strip_accents_mode mode, std::string& out) {
  auto const* const begin = reinterpret_cast<unsigned char const*>(text.data());
  auto const* const end = begin + text.size();
  out.clear();
  out.reserve(text.size());
  utf8proc_int32_t parts[32];
  for (auto const* p = begin; p < end;) {
    if (*p < 0x80u) {
      out.push_back(static_cast<char>(*p++));
      continue;
    }
    char32_t cp = 0;
    p += decode_utf8(p, end, cp);
    int last_boundary = 0;
    auto n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cp), parts, 32,
                                     static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT),
                                     &last_boundary);
    if (n < 0 || n > 32) {  // not expected for a valid code point: keep it as it is
      parts[0] = static_cast<utf8proc_int32_t>(cp);
      n = 1;
    }
    for (utf8proc_ssize_t i = 0; i < n; ++i) {
      auto const part = static_cast<char32_t>(parts[i]);
      if (mode == strip_accents_mode::ascii) {
        if (part < 0x80u) out.push_back(static_cast<char>(part));
      } else if (utf8proc_get_property(parts[i])->combining_class == 0) {
        char buffer[4];
        out.append(buffer, static_cast<std::size_t>(encode_utf8(part, buffer) - buffer));
      }
    }
  }
}

}  // namespace mgpu::detail
