// to_chars_shortest (mgpu/backend/cpu/format/shortest_float.hpp), the writers' float
// formatting, against the C++ standard's std::to_chars, whose bytes it promises: values
// worked out by hand from [charconv.to.chars] (fewest digits that read back, `%f` or `%e`
// whichever is shorter, `%f` on a tie), then every 1021st float bit pattern and random
// ones compared with std::to_chars. The test tagged [.exhaustive] compares all 2^32 bit
// patterns (94 s on 2 cores; run it with `test_shortest_float "[.exhaustive]"`).
#include <catch2/catch.hpp>

#include <atomic>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "mgpu/backend/cpu/format/shortest_float.hpp"

namespace {

using mgpu::backend::cpu::to_chars_shortest;

std::string shortest(float v) {
  char text[64];
  auto const result = to_chars_shortest(text, text + sizeof text, v);
  REQUIRE(result.ec == std::errc{});
  return std::string(text, result.ptr);
}

std::string standard(float v) {
  char text[64];
  return std::string(text, std::to_chars(text, text + sizeof text, v).ptr);
}

// Whether bit pattern `bits` formats as std::to_chars does.
bool same_as_standard(std::uint32_t bits) {
  float const v = std::bit_cast<float>(bits);
  char a[64];
  char b[64];
  auto const ea = std::to_chars(a, a + sizeof a, v).ptr;
  auto const eb = to_chars_shortest(b, b + sizeof b, v).ptr;
  return ea - a == eb - b && std::memcmp(a, b, static_cast<std::size_t>(ea - a)) == 0;
}

}  // namespace

TEST_CASE("to_chars_shortest: values worked out by hand", "[io][format]") {
  CHECK(shortest(0.1f) == "0.1");
  CHECK(shortest(0.3f) == "0.3");
  CHECK(shortest(1.0f / 3.0f) == "0.33333334");
  CHECK(shortest(1.0f) == "1");
  CHECK(shortest(1.5f) == "1.5");
  CHECK(shortest(100.0f) == "100");
  CHECK(shortest(0.001f) == "0.001");           // fixed (5) beats 1e-03 (5): a tie goes to fixed
  CHECK(shortest(0.0001f) == "1e-04");          // 1e-04 (5) beats 0.0001 (6)
  CHECK(shortest(1e-05f) == "1e-05");
  CHECK(shortest(0.00012f) == "0.00012");       // 7 against 1.2e-04 (7): fixed
  CHECK(shortest(0.000123f) == "0.000123");     // 8 against 1.23e-04 (8): fixed
  CHECK(shortest(-2.5e-7f) == "-2.5e-07");
  CHECK(shortest(12345.678f) == "12345.678");
  CHECK(shortest(1e6f) == "1e+06");             // 1e+06 (5) beats 1000000 (7)
  CHECK(shortest(1e9f) == "1e+09");
  CHECK(shortest(123000.0f) == "123000");       // exact integer, 6 against 1.23e+05 (8)
  CHECK(shortest(2147483648.0f) == "2147483648");  // 2^31: the exact integer, fixed (10 < 13)
  CHECK(shortest(std::numeric_limits<float>::max()) == "3.4028235e+38");
  CHECK(shortest(std::numeric_limits<float>::denorm_min()) == "1e-45");
  CHECK(shortest(0.0f) == "0");
  CHECK(shortest(-0.0f) == "-0");
  CHECK(shortest(std::numeric_limits<float>::infinity()) == "inf");
  CHECK(shortest(-std::numeric_limits<float>::infinity()) == "-inf");
  CHECK(shortest(std::numeric_limits<float>::quiet_NaN()) == "nan");
}

TEST_CASE("to_chars_shortest: the bytes of std::to_chars over the whole float range", "[io][format]") {
  // Every 1021st bit pattern: all exponents, both signs, subnormals, infinities, NaNs.
  std::uint64_t differ = 0;
  std::uint32_t first_bad = 0;
  for (std::uint64_t bits = 0; bits < (std::uint64_t{1} << 32); bits += 1021) {
    if (!same_as_standard(static_cast<std::uint32_t>(bits)) && differ++ == 0) {
      first_bad = static_cast<std::uint32_t>(bits);
    }
  }
  INFO("first differing bit pattern " << first_bad << ": " << shortest(std::bit_cast<float>(first_bad)) << " vs "
                                      << standard(std::bit_cast<float>(first_bad)));
  CHECK(differ == 0);

  // Scores as the writers see them: uniform in [0, 1), and powers of ten around each decade.
  std::mt19937 rng(21);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  for (int i = 0; i < 1'000'000; ++i) {
    float const v = unit(rng);
    INFO(standard(v));
    REQUIRE(same_as_standard(std::bit_cast<std::uint32_t>(v)));
  }
  for (int e = -45; e <= 38; ++e) {
    float const p = std::strtof(("1e" + std::to_string(e)).c_str(), nullptr);
    for (float v : {p, std::nextafter(p, 0.0f), std::nextafter(p, std::numeric_limits<float>::infinity()), -p}) {
      INFO(standard(v));
      REQUIRE(same_as_standard(std::bit_cast<std::uint32_t>(v)));
    }
  }
}

TEST_CASE("to_chars_shortest: too little room is std::to_chars's error", "[io][format]") {
  char text[4];
  auto const mine = to_chars_shortest(text, text + sizeof text, 0.123456f);
  auto const theirs = std::to_chars(text, text + sizeof text, 0.123456f);
  CHECK(mine.ec == std::errc::value_too_large);
  CHECK(mine.ec == theirs.ec);
  CHECK(mine.ptr == theirs.ptr);
}

TEST_CASE("to_chars_shortest: doubles and integers are std::to_chars itself", "[io][format]") {
  char a[64];
  char b[64];
  for (double v : {0.1, 1.0 / 3.0, 1e-300, 2.5e17}) {
    auto const ea = to_chars_shortest(a, a + sizeof a, v).ptr;
    auto const eb = std::to_chars(b, b + sizeof b, v).ptr;
    CHECK(std::string(a, ea) == std::string(b, eb));
  }
  CHECK(std::string(a, to_chars_shortest(a, a + sizeof a, std::int64_t{-1234567890123}).ptr) == "-1234567890123");
}

TEST_CASE("to_chars_shortest: all 2^32 float bit patterns", "[.exhaustive]") {
  std::atomic<std::uint64_t> differ{0};
#pragma omp parallel for schedule(dynamic, 1 << 16)
  for (std::int64_t bits = 0; bits < (std::int64_t{1} << 32); ++bits) {
    if (!same_as_standard(static_cast<std::uint32_t>(bits))) differ.fetch_add(1, std::memory_order_relaxed);
  }
  CHECK(differ.load() == 0);
}
