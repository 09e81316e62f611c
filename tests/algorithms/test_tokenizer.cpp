// The word tokenizer (mgpu/detail/tokenizer.hpp) against a plain scalar reference: decode
// each code point, lower it, split on non-word code points, keep the runs of two or more.
// Its block scanner handles ASCII by 64-byte masks and everything else one code point at
// a time, so the random documents mix both at every offset from a block boundary. Every
// instruction-set level this CPU has (scalar, avx2, avx512, avx512vbmi2: see
// mgpu/backend/cpu/simd/isa.hpp) runs each case, whatever MGPU_SIMD says.
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "mgpu/backend/cpu/simd/isa.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/detail/text_unicode.hpp"
#include "mgpu/detail/tokenizer.hpp"

namespace {

using mgpu::detail::word_tokenizer;
namespace simd = mgpu::backend::cpu::simd;

// The levels this CPU supports, lowest first.
std::vector<simd::isa> levels() {
  std::vector<simd::isa> out;
  for (auto level : {simd::isa::scalar, simd::isa::avx2, simd::isa::avx512, simd::isa::avx512vbmi2}) {
    if (level <= simd::best_supported()) out.push_back(level);
  }
  return out;
}

// sklearn's analyzer the simple way (valid UTF-8 only).
std::vector<std::string> reference_tokens(std::string_view doc, bool lowercase) {
  auto const* const begin = reinterpret_cast<unsigned char const*>(doc.data());
  auto const* const end = begin + doc.size();
  std::vector<std::string> tokens;
  std::string run;
  std::size_t code_points = 0;
  auto flush = [&] {
    if (code_points >= 2) tokens.push_back(run);
    run.clear();
    code_points = 0;
  };
  for (auto const* p = begin; p < end;) {
    char32_t cp = 0;
    int const len = mgpu::detail::decode_utf8(p, end, cp);
    REQUIRE(len > 0);
    char32_t lowered[2] = {cp, 0};
    int const n = lowercase ? mgpu::detail::lower_full(cp, begin, p, end, lowered) : 1;
    p += len;
    for (int i = 0; i < n; ++i) {
      if (mgpu::detail::is_word_code_point(lowered[i])) {
        char buf[4];
        run.append(buf, mgpu::detail::encode_utf8(lowered[i], buf));
        ++code_points;
      } else {
        flush();
      }
    }
  }
  flush();
  return tokens;
}

std::vector<std::string> tokens_of(word_tokenizer& t) {
  std::vector<std::string> tokens;
  for (std::size_t i = 0; i < t.size(); ++i) tokens.emplace_back(t.token(i));
  return tokens;
}

// Pieces of text: ASCII words, digits, underscores and punctuation, and multi-byte word
// characters (é, Σ, İ, Ⱥ whose lowercase is longer, ǅ, Ⅻ, CJK inside and outside the
// copied block U+4E00..U+9FFF, a 4-byte digit) and non-word ones (—, “, ”, a combining
// acute, an emoji, the hexagram just below U+4E00).
std::vector<std::string> const pieces{
    "a", "b", "Z", "x", "Qu", "the", "Word", "HTTP", "ab12", "_", "__", "7", "42", " ", " ", " ", "  ",
    ",", ".", "-", "'", "\n", "(", ")", "é", "É", "Σ", "σ", "İ", "Ⱥ", "ǅ", "Ⅻ", "ß", "中", "文", "的",
    "一", "鿿", "〇", "の", "가", "ꀀ", "𝟘", "—", "“", "”", "\u0301", "😀", "䷿", "ΟΔΟΣ", "naïve",
    "İstanbul"};

std::string random_text(std::mt19937& rng, std::size_t bytes) {
  std::uniform_int_distribution<std::size_t> pick(0, pieces.size() - 1);
  std::string text;
  while (text.size() < bytes) text += pieces[pick(rng)];
  return text;
}

// `k` bytes of ASCII text whose last word may run into what follows.
std::string random_prefix(std::mt19937& rng, std::size_t k) {
  static constexpr std::string_view chars = "ab Z_9,. ";
  std::uniform_int_distribution<std::size_t> pick(0, chars.size() - 1);
  std::string prefix;
  for (std::size_t i = 0; i < k; ++i) prefix += chars[pick(rng)];
  return prefix;
}

void check_document(word_tokenizer& t, std::string const& doc, bool lowercase) {
  INFO("document \"" << doc << "\", lowercase " << lowercase);
  auto const want = reference_tokens(doc, lowercase);
  t.tokenize(doc, 0);
  REQUIRE(tokens_of(t) == want);
  // The 8 bytes after each token are readable (hashing loads whole words).
  for (std::size_t i = 0; i < t.size(); ++i) {
    char tail[8];
    std::memcpy(tail, t.token(i).data() + t.token(i).size(), sizeof tail);
  }
  // Uni-, bi- and trigrams, in the order for_each_ngram gives them.
  std::vector<std::string> ngrams;
  for (std::size_t n = 1; n <= 3; ++n) {
    for (std::size_t i = 0; i + n <= want.size(); ++i) {
      std::string gram = want[i];
      for (std::size_t j = i + 1; j < i + n; ++j) gram += " " + want[j];
      ngrams.push_back(gram);
    }
  }
  std::vector<std::string> got;
  t.for_each_ngram(1, 3, [&](std::string_view gram) { got.emplace_back(gram); });
  CHECK(got == ngrams);
}

}  // namespace

TEST_CASE("tokens equal the scalar reference on random text at every block offset", "[tokenizer]") {
  std::mt19937 rng(20240601);
  std::uniform_int_distribution<std::size_t> length(0, 300);
  for (auto const level : levels()) {
    INFO("level " << simd::name(level));
    for (bool const lowercase : {true, false}) {
      word_tokenizer t(lowercase, level);
      REQUIRE(t.level() == level);
      for (int d = 0; d < 50; ++d) {
        std::string const body = random_text(rng, length(rng));
        for (std::size_t k = 0; k < 64; ++k) check_document(t, random_prefix(rng, k) + body, lowercase);
      }
    }
  }
}

TEST_CASE("a run of one multi-byte code point is not a token, wherever it ends", "[tokenizer]") {
  // "é" is two bytes but one code point; "éa", "aé" and "éé" are tokens.
  for (auto const level : levels()) {
    INFO("level " << simd::name(level));
    for (bool const lowercase : {true, false}) {
      word_tokenizer t(lowercase, level);
      for (std::size_t k = 0; k < 130; ++k) {
        std::string const pad(k, ' ');
        for (std::string const tail :
             {"é", "é ", "é,a", "éa", "aé", "éé", "中", "中.", "中文", "𝟘", "𝟘9", "İ", "İİ"}) {
          check_document(t, pad + tail, lowercase);
          check_document(t, pad + tail + pad + tail, lowercase);
        }
      }
    }
  }
}

TEST_CASE("the copied CJK block holds only word characters that lower to themselves",
          "[tokenizer][unicode]") {
  using mgpu::detail::cjk_count;
  using mgpu::detail::cjk_first;
  for (char32_t cp = cjk_first; cp < cjk_first + cjk_count; ++cp) {
    INFO("code point U+" << std::hex << static_cast<std::uint32_t>(cp));
    char buf[4];
    REQUIRE(mgpu::detail::encode_utf8(cp, buf) - buf == 3);
    auto const* b = reinterpret_cast<unsigned char const*>(buf);
    char32_t out[2] = {0, 0};
    REQUIRE(mgpu::detail::lower_full(cp, b, b, b + 3, out) == 1);
    REQUIRE(out[0] == cp);
    REQUIRE(mgpu::detail::is_word_code_point(cp));
  }
}

TEST_CASE("tokenize reports invalid UTF-8 with the document and byte offset", "[tokenizer]") {
  for (auto const level : levels()) {
    INFO("level " << simd::name(level));
    word_tokenizer t(true, level);
    for (std::size_t k : {0, 1, 62, 63, 64, 65, 127, 128, 200}) {
      std::string const doc = std::string(k, 'x') + "\xC3\x28 tail";
      CHECK_THROWS_WITH(t.tokenize(doc, 5), Catch::Contains("document 5") &&
                                                Catch::Contains("offset " + std::to_string(k)));
    }
    // A sequence cut short by the end of the document.
    CHECK_THROWS_WITH(t.tokenize(std::string(70, 'y') + "\xE4\xB8", 2),
                      Catch::Contains("document 2") && Catch::Contains("offset 70"));
  }
}

TEST_CASE("documents of 2 GiB or more are rejected before any byte is read", "[tokenizer]") {
  word_tokenizer t(true);
  char const byte = 'a';
  std::string_view const huge(&byte, std::size_t{1} << 31);  // never read
  CHECK_THROWS_AS(t.tokenize(huge, 3), mgpu::invalid_argument);
  CHECK_THROWS_WITH(t.tokenize(huge, 3),
                    "document 3 has 2147483648 bytes; documents of 2 GiB or more are not supported");
}
