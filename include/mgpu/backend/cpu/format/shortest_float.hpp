// mgpu/backend/cpu/format/shortest_float.hpp — std::to_chars(first, last, float) at a
// third of libstdc++'s cost: the text writers' number formatting.
//
// to_chars_shortest(first, last, v) writes the bytes std::to_chars(first, last, v) writes
// for a float v (C++17 [charconv.to.chars]: the fewest significant digits that read back
// to v, the closest to v of those, ties to even; `%f` or `%e` style, whichever is shorter,
// `%f` on a tie). The shortest digits come from Dragonbox (Junekey Jeon, "Dragonbox: A
// New Floating-Point Binary-to-Decimal Conversion Algorithm", 2020), as implemented by
// the {fmt} library (Debian libfmt-dev; fmt::detail::dragonbox::to_decimal, exported by
// libfmt), which computes them in about 14 ns against about 31 ns for the whole of
// libstdc++'s to_chars (docs/performance.md); the layout of the digits is done here.
// Zero, infinities, NaNs and values written as integers with trailing zeros (digits d and
// exponent e > 0, e.g. 123000 or 2^31 = 2147483648, where std::to_chars writes the exact
// integer) go to std::to_chars. Every one of the 2^32 float bit patterns gives the bytes of
// std::to_chars (tests/io/test_shortest_float.cpp, tag [.exhaustive]); doubles and
// integers go to std::to_chars, and so does everything in code compiled by nvcc (below).
//
// Thread safety: pure functions.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

// nvcc's C++20 front end rejects parts of {fmt} 9's format.h; translation units compiled
// by nvcc format with std::to_chars, which writes the same bytes.
#if !defined(__CUDACC__)
#include <fmt/format.h>
#define MGPU_SHORTEST_FLOAT_DRAGONBOX 1
#else
#define MGPU_SHORTEST_FLOAT_DRAGONBOX 0
#endif

namespace mgpu::backend::cpu {

/// std::to_chars(first, last, v) for a float (see the file comment); the same result:
/// {end, errc{}} or {last, errc::value_too_large} when the text does not fit.
inline std::to_chars_result to_chars_shortest(char* first, char* last, float v) noexcept {
  // The longest float text is 15 bytes ("-1.17549435e-38"); with less room, or for the
  // cases handled by std::to_chars (file comment), defer to it.
#if !MGPU_SHORTEST_FLOAT_DRAGONBOX
  return std::to_chars(first, last, v);
#else
  if (last - first < 16 || !std::isfinite(v) || v == 0.0f) return std::to_chars(first, last, v);
  auto const decimal = fmt::detail::dragonbox::to_decimal(v);
  std::uint32_t s = decimal.significand;
  int e = decimal.exponent;
  while (s % 10 == 0) {  // the shortest digits carry no trailing zero
    s /= 10;
    ++e;
  }
  if (e > 0) return std::to_chars(first, last, v);
  char* o = first;
  if (std::signbit(v)) *o++ = '-';
  char digits[12];
  int const n = static_cast<int>(std::to_chars(digits, digits + sizeof digits, s).ptr - digits);
  int const x = e + n - 1;  // the exponent of the scientific form d.ddd x 10^x
  // Lengths without the sign: scientific d[.ddd]e(+|-)XX (float exponents have 2 digits);
  // fixed: ddd.ddd when x >= 0 (e <= 0 here), 0.000ddd when x < 0.
  int const scientific = n + (n > 1 ? 1 : 0) + 4;
  int const fixed = x >= 0 ? (e == 0 ? n : n + 1) : n + 1 - x;
  if (fixed <= scientific) {
    if (x < 0) {
      *o++ = '0';
      *o++ = '.';
      for (int i = 0; i < -x - 1; ++i) *o++ = '0';
      std::memcpy(o, digits, static_cast<std::size_t>(n));
      o += n;
    } else {
      std::memcpy(o, digits, static_cast<std::size_t>(x + 1));
      o += x + 1;
      if (x + 1 < n) {
        *o++ = '.';
        std::memcpy(o, digits + x + 1, static_cast<std::size_t>(n - x - 1));
        o += n - x - 1;
      }
    }
  } else {
    *o++ = digits[0];
    if (n > 1) {
      *o++ = '.';
      std::memcpy(o, digits + 1, static_cast<std::size_t>(n - 1));
      o += n - 1;
    }
    *o++ = 'e';
    *o++ = x < 0 ? '-' : '+';
    int const a = x < 0 ? -x : x;
    *o++ = static_cast<char>('0' + a / 10);
    *o++ = static_cast<char>('0' + a % 10);
  }
  return {o, std::errc{}};
#endif
}

/// Any other arithmetic type: std::to_chars(first, last, v) itself.
template <class V>
  requires(!std::is_same_v<V, float>)
std::to_chars_result to_chars_shortest(char* first, char* last, V v) noexcept {
  return std::to_chars(first, last, v);
}

}  // namespace mgpu::backend::cpu
