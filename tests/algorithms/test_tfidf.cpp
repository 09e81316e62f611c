// TF-IDF: scikit-learn's TfidfVectorizer semantics (mgpu/algorithms/tfidf.hpp).
//
// Expected values come from scikit-learn 1.2.1 on Python 3.11
// (tests/data/tfidf/make_fixtures.py writes them) or are computed by hand from the
// formulas sklearn documents.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <map>
#include <ranges>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "mgpu/algorithms/tfidf.hpp"
#include "mgpu/detail/text_unicode.hpp"
#include "../test_support.hpp"
#include "sklearn_fixture_support.hpp"

namespace {

using mgpu_test::sklearn::read_csr;
using mgpu_test::sklearn::read_options;
using mgpu_test::sklearn::require_equal;
using mgpu_test::sklearn::sparse_rows;
using mgpu_test::sklearn::strings;

using mgpu::tfidf_options;
using mgpu::tfidf_vectorizer;

std::string const data_dir = std::string(MGPU_TEST_DATA_DIR) + "/tfidf/";

struct sklearn_case {
  tfidf_options options;
  std::vector<std::string> vocabulary;
  std::vector<double> idf;
  sparse_rows fit_transform;
  sparse_rows transform;
};

struct sklearn_fixture {
  std::vector<std::string> corpus;
  std::vector<std::string> transform_documents;
  std::map<std::string, sklearn_case, std::less<>> cases;
};

sklearn_fixture const& fixture() {
  static sklearn_fixture const f = [] {
    simdjson::dom::parser parser;
    simdjson::dom::element root = parser.load(data_dir + "expected.json");
    sklearn_fixture out;
    out.corpus = strings(root["corpus"]);
    out.transform_documents = strings(root["transform_documents"]);
    for (simdjson::dom::object c : root["cases"].get_array()) {
      sklearn_case k;
      k.options = read_options(c["options"]);
      k.vocabulary = strings(c["vocabulary"]);
      for (double v : c["idf"].get_array()) k.idf.push_back(v);
      k.fit_transform = read_csr(c["fit_transform"]);
      k.transform = read_csr(c["transform"]);
      out.cases.emplace(std::string(std::string_view(c["name"])), std::move(k));
    }
    return out;
  }();
  return f;
}

void check_against_sklearn(std::string_view name) {
  auto const& f = fixture();
  auto const& c = f.cases.at(std::string(name));
  tfidf_vectorizer<double> vectorizer(c.options);
  auto const x = vectorizer.fit_transform(f.corpus);
  REQUIRE(vectorizer.vocabulary() == c.vocabulary);
  REQUIRE(vectorizer.idf().size() == c.idf.size());
  for (std::size_t j = 0; j < c.idf.size(); ++j) REQUIRE(vectorizer.idf()[j] == Approx(c.idf[j]).epsilon(1e-12));
  require_equal(x, c.fit_transform, 1e-12);
  require_equal(vectorizer.transform(f.transform_documents), c.transform, 1e-12);

  tfidf_vectorizer<float> single(c.options);
  require_equal(single.fit_transform(f.corpus), c.fit_transform, 1e-6);
}

std::vector<std::pair<char32_t, char32_t>> read_ranges(std::string const& file) {
  std::ifstream in(data_dir + file);
  REQUIRE(in);
  std::vector<std::pair<char32_t, char32_t>> out;
  std::uint32_t a = 0;
  std::uint32_t b = 0;
  while (in >> std::hex >> a >> b) out.emplace_back(a, b);
  return out;
}

bool in_ranges(std::vector<std::pair<char32_t, char32_t>> const& ranges, char32_t cp) {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), cp,
                             [](char32_t c, auto const& r) { return c < r.first; });
  return it != ranges.begin() && cp <= std::prev(it)->second;
}

std::vector<double> row_values(mgpu::csr_matrix<mgpu::cpu, double> const& m, int r) {
  auto const v = m.view().row_values(r);
  return {v.begin(), v.end()};
}

}  // namespace

// ---- scikit-learn reference data: vocabulary exact, values to 1e-12 (double), 1e-6 (float)

TEST_CASE("tfidf matches sklearn TfidfVectorizer() with default options", "[tfidf]") {
  check_against_sklearn("default");
}
TEST_CASE("tfidf matches sklearn with sublinear_tf=True", "[tfidf]") { check_against_sklearn("sublinear_tf"); }
TEST_CASE("tfidf matches sklearn with binary=True, norm=None", "[tfidf]") {
  check_against_sklearn("binary_no_norm");
}
TEST_CASE("tfidf matches sklearn with use_idf=False", "[tfidf]") { check_against_sklearn("no_idf"); }
TEST_CASE("tfidf matches sklearn with smooth_idf=False", "[tfidf]") { check_against_sklearn("no_smooth_idf"); }
TEST_CASE("tfidf matches sklearn with min_df=2, max_df=0.5", "[tfidf]") {
  check_against_sklearn("min_df_2_max_df_half");
}
TEST_CASE("tfidf matches sklearn with max_features=11", "[tfidf]") { check_against_sklearn("max_features_11"); }
TEST_CASE("tfidf matches sklearn with ngram_range=(1, 2)", "[tfidf]") { check_against_sklearn("ngram_1_2"); }
TEST_CASE("tfidf matches sklearn with norm='l1'", "[tfidf]") { check_against_sklearn("norm_l1"); }
TEST_CASE("tfidf matches sklearn with lowercase=False", "[tfidf]") { check_against_sklearn("no_lowercase"); }
TEST_CASE("tfidf matches sklearn with ngram_range=(2, 3), min_df=0.05", "[tfidf]") {
  check_against_sklearn("ngram_2_3_min_df_proportion");
}
TEST_CASE("tfidf matches sklearn with binary=True, max_features=3 (ranked by df)", "[tfidf]") {
  check_against_sklearn("binary_max_features_3");
}

// ---- Unicode: Python 3.11's re `\w` and str.lower(), every code point

TEST_CASE("word characters are Python's \\w except code points new in Unicode 15", "[tfidf][unicode]") {
  auto const word = read_ranges("unicode_word.txt");
  auto const unassigned = read_ranges("unicode_unassigned.txt");
  std::size_t differences = 0;
  for (char32_t cp = 0; cp < 0x110000; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    if (mgpu::detail::is_word_code_point(cp) != in_ranges(word, cp)) {
      INFO("code point U+" << std::hex << static_cast<std::uint32_t>(cp));
      REQUIRE(in_ranges(unassigned, cp));
      ++differences;
    }
  }
  CHECK(differences == 4388);  // Unicode 15.0's new letters and digits (utf8proc 2.8)
}

TEST_CASE("lowercasing is Python's str.lower() for every code point", "[tfidf][unicode]") {
  std::map<char32_t, std::vector<char32_t>> python;
  std::ifstream in(data_dir + "unicode_lower.txt");
  REQUIRE(in);
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::uint32_t cp = 0;
    char colon = 0;
    fields >> std::hex >> cp >> colon;
    auto& lowered = python[cp];
    for (std::uint32_t l = 0; fields >> std::hex >> l;) lowered.push_back(l);
  }
  REQUIRE(python.size() > 1400);
  for (char32_t cp = 0; cp < 0x110000; ++cp) {
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp == 0x03A3) continue;  // Σ: context, tested below
    char buf[4];
    auto const* b = reinterpret_cast<unsigned char const*>(buf);
    auto const* e = reinterpret_cast<unsigned char const*>(mgpu::detail::encode_utf8(cp, buf));
    char32_t out[2] = {0, 0};
    int const n = mgpu::detail::lower_full(cp, b, b, e, out);
    auto const it = python.find(cp);
    std::vector<char32_t> const want = it == python.end() ? std::vector<char32_t>{cp} : it->second;
    INFO("code point U+" << std::hex << static_cast<std::uint32_t>(cp));
    REQUIRE(std::vector<char32_t>(out, out + n) == want);
  }
}

TEST_CASE("capital sigma lowers to final sigma only after a cased letter at a word end", "[tfidf][unicode]") {
  // Python: "ΟΔΟΣ".lower() == "οδος", "ΣΑΣ".lower() == "σας", "ΑΣ'Β".lower() == "ασ'β"
  // (apostrophe is case-ignorable, Β cased), "ΑΣ.".lower() == "ας.", "Σ1Σ".lower() == "σ1σ"
  // (a digit is not cased); the vocabulary sorts '1' before 'α'.
  tfidf_vectorizer<double> v;
  v.fit(std::vector<std::string>{"ΟΔΟΣ", "ΣΑΣ", "ΑΣ'Β", "ΑΣ.", "Σ1Σ"});
  CHECK(v.vocabulary() == std::vector<std::string>{"ας", "ασ", "οδος", "σ1σ", "σας"});
}

TEST_CASE("dotted capital I lowers to i + combining dot, which splits the token", "[tfidf][unicode]") {
  // "İstanbul".lower() == "i̇stanbul": U+0307 is a combining mark, not \w, so "DİYARBAKIR"
  // gives "di" and "yarbakir" (sklearn's vocabulary for this document).
  tfidf_vectorizer<double> v;
  v.fit(std::vector<std::string>{"İstanbul DİYARBAKIR"});
  CHECK(v.vocabulary() == std::vector<std::string>{"di", "stanbul", "yarbakir"});
}

// ---- hand-computed cases

TEST_CASE("two documents weighted by hand: smooth idf and unit L2 rows", "[tfidf]") {
  // doc 0 "A cat and a dog": tokens cat, and, dog ("a" is one character);
  // doc 1 "the dog.": tokens the, dog. Vocabulary sorted: and, cat, dog, the.
  tfidf_vectorizer<double> v;
  auto const x = v.fit_transform(std::vector<std::string>{"A cat and a dog", "the dog."});
  REQUIRE(v.vocabulary() == std::vector<std::string>{"and", "cat", "dog", "the"});
  double const rare = std::log(3.0 / 2.0) + 1.0;  // df = 1 of n = 2
  double const common = 1.0;                       // df = 2: ln(3/3) + 1
  REQUIRE(v.idf().size() == 4);
  CHECK(v.idf()[0] == Approx(rare));
  CHECK(v.idf()[2] == Approx(common));
  double const n0 = std::sqrt(2 * rare * rare + common * common);
  double const n1 = std::sqrt(rare * rare + common * common);
  REQUIRE(x.rows() == 2);
  REQUIRE(x.cols() == 4);
  CHECK(std::vector<int>(x.col_indices().begin(), x.col_indices().end()) == std::vector<int>{0, 1, 2, 2, 3});
  auto const r0 = row_values(x, 0);
  auto const r1 = row_values(x, 1);
  CHECK(r0[0] == Approx(rare / n0));
  CHECK(r0[1] == Approx(rare / n0));
  CHECK(r0[2] == Approx(common / n0));
  CHECK(r1[0] == Approx(common / n1));
  CHECK(r1[1] == Approx(rare / n1));
}

TEST_CASE("count returns term counts and weight(count(docs)) equals fit_transform(docs)", "[tfidf]") {
  std::vector<std::string> const docs{"dog dog cat", "cat bird", "dog"};
  tfidf_vectorizer<double> v;
  auto const counts = v.count(docs);
  REQUIRE(v.vocabulary() == std::vector<std::string>{"bird", "cat", "dog"});
  CHECK(std::vector<double>(counts.values().begin(), counts.values().end()) ==
        std::vector<double>{1, 2, 1, 1, 1});
  auto const weighted = v.weight(counts);
  auto const direct = tfidf_vectorizer<double>().fit_transform(docs);
  REQUIRE(weighted.nnz() == direct.nnz());
  for (int p = 0; p < direct.nnz(); ++p) CHECK(weighted.values()[p] == Approx(direct.values()[p]));
}

// ---- the block scanner: text is classified 64 bytes at a time, non-ASCII code points
// one at a time, so a token may start, end or continue at any block boundary.

namespace {

// The same tokens at every offset 0..129 from the start of a document (so across every
// position relative to a 64-byte block): "Ab", "cD", "naïve", 150 q's, "é" + "x" (one
// token), "Z9_", and one-letter words, which are not tokens.
std::vector<std::string> shifted_documents() {
  std::vector<std::string> docs;
  for (std::size_t k = 0; k < 130; ++k) {
    docs.push_back(std::string(k, ' ') + "Ab cD a naïve " + std::string(150, 'q') + " éx, Z9_ b");
  }
  return docs;
}

// Every row of `counts` has one entry per column, each 1.
void check_each_term_once_per_row(mgpu::csr_matrix<mgpu::cpu, double, std::int32_t> const& counts,
                                  std::size_t terms) {
  REQUIRE(static_cast<std::size_t>(counts.cols()) == terms);
  for (std::int32_t r = 0; r < counts.rows(); ++r) {
    INFO("document " << r);
    auto const begin = counts.row_offsets()[static_cast<std::size_t>(r)];
    auto const end = counts.row_offsets()[static_cast<std::size_t>(r) + 1];
    REQUIRE(static_cast<std::size_t>(end - begin) == terms);
    for (auto p = begin; p < end; ++p) {
      CHECK(counts.col_indices()[static_cast<std::size_t>(p)] == p - begin);
      CHECK(counts.values()[static_cast<std::size_t>(p)] == 1.0);
    }
  }
}

}  // namespace

TEST_CASE("tokens are the same at every offset from a 64-byte block boundary", "[tfidf]") {
  // Byte order: 'é' (0xC3 0xA9) sorts after every ASCII letter.
  tfidf_vectorizer<double> v;
  auto const counts = v.count(shifted_documents());
  CHECK(v.vocabulary() ==
        std::vector<std::string>{"ab", "cd", "naïve", std::string(150, 'q'), "z9_", "éx"});
  check_each_term_once_per_row(counts, 6);
}

TEST_CASE("bigrams join tokens found across 64-byte block boundaries", "[tfidf]") {
  tfidf_options o;
  o.ngram_range = {2, 2};
  tfidf_vectorizer<double> v(o);
  auto const counts = v.count(shifted_documents());
  std::string const q(150, 'q');
  CHECK(v.vocabulary() == std::vector<std::string>{"ab cd", "cd naïve", "naïve " + q, q + " éx", "éx z9_"});
  check_each_term_once_per_row(counts, 5);
}

TEST_CASE("lowercase=False keeps case across 64-byte block boundaries", "[tfidf]") {
  tfidf_options o;
  o.lowercase = false;
  tfidf_vectorizer<double> v(o);
  auto const counts = v.count(shifted_documents());
  // Byte order: digits and capitals before lowercase letters.
  CHECK(v.vocabulary() ==
        std::vector<std::string>{"Ab", "Z9_", "cD", "naïve", std::string(150, 'q'), "éx"});
  check_each_term_once_per_row(counts, 6);
}

TEST_CASE("transform ignores terms outside the fitted vocabulary", "[tfidf]") {
  tfidf_vectorizer<double> v;
  v.fit(std::vector<std::string>{"cat dog", "dog"});
  auto const x = v.transform(std::vector<std::string>{"zebra dog", "zebra", "cat cat"});
  REQUIRE(x.rows() == 3);
  REQUIRE(x.cols() == 2);
  CHECK(std::vector<int>(x.row_offsets().begin(), x.row_offsets().end()) == std::vector<int>{0, 1, 1, 2});
  CHECK(std::vector<int>(x.col_indices().begin(), x.col_indices().end()) == std::vector<int>{1, 0});
  CHECK(x.values()[0] == Approx(1.0));
  CHECK(x.values()[1] == Approx(1.0));
}

TEST_CASE("max_features keeps the most frequent terms, ties to the term sorted first", "[tfidf]") {
  tfidf_options o;
  o.max_features = 2;
  tfidf_vectorizer<double> v(o);
  v.fit(std::vector<std::string>{"cc bb aa dd dd"});
  CHECK(v.vocabulary() == std::vector<std::string>{"aa", "dd"});
}

TEST_CASE("transform ignores terms that min_df pruned from the vocabulary", "[tfidf]") {
  // "cat" and "bird" are in one document each: min_df = 2 keeps only "dog", yet they
  // stay in the lookup table (as pruned terms), which must not give them a column.
  tfidf_options o;
  o.min_df = std::int64_t{2};
  tfidf_vectorizer<double> v(o);
  v.fit(std::vector<std::string>{"cat dog", "dog", "bird dog"});
  REQUIRE(v.vocabulary() == std::vector<std::string>{"dog"});
  auto const x = v.transform(std::vector<std::string>{"cat bird", "dog cat dog", "zebra"});
  REQUIRE(x.rows() == 3);
  REQUIRE(x.cols() == 1);
  CHECK(std::vector<int>(x.row_offsets().begin(), x.row_offsets().end()) == std::vector<int>{0, 0, 1, 1});
  CHECK(std::vector<int>(x.col_indices().begin(), x.col_indices().end()) == std::vector<int>{0});
  CHECK(x.values()[0] == Approx(1.0));
}

TEST_CASE("tfidf_weight of a count matrix given up weights it in place, as the copying form", "[tfidf]") {
  std::vector<std::string> const docs{"dog dog cat", "cat bird bird bird", "dog", "", "emu cat dog bird"};
  for (bool sublinear : {false, true}) {
    INFO("sublinear_tf " << sublinear);
    tfidf_options o;
    o.sublinear_tf = sublinear;
    tfidf_vectorizer<float> v(o);
    auto const counts = v.count(docs);
    auto const policy = mgpu::execution_policy<mgpu::cpu>("cpu:2");
    auto const expected = mgpu::tfidf_weight(policy, counts, v.idf(), v.options());
    auto given_up = v.count(docs);
    float const* const storage = given_up.values().data();
    auto const got = mgpu::tfidf_weight(policy, std::move(given_up), v.idf(), v.options());
    CHECK(got.values().data() == storage);
    CHECK(std::vector<int>(got.row_offsets().begin(), got.row_offsets().end()) ==
          std::vector<int>(expected.row_offsets().begin(), expected.row_offsets().end()));
    CHECK(std::vector<int>(got.col_indices().begin(), got.col_indices().end()) ==
          std::vector<int>(expected.col_indices().begin(), expected.col_indices().end()));
    CHECK(std::vector<float>(got.values().begin(), got.values().end()) ==
          std::vector<float>(expected.values().begin(), expected.values().end()));
  }
}

TEST_CASE("transform before fit throws invalid_argument", "[tfidf]") {
  tfidf_vectorizer<> v;
  CHECK_FALSE(v.is_fitted());
  CHECK_THROWS_AS(v.transform(std::vector<std::string>{"dog"}), mgpu::invalid_argument);
  CHECK_THROWS_AS(v.weight(mgpu::csr_matrix<mgpu::cpu, float>(1, 0)), mgpu::invalid_argument);
}

TEST_CASE("invalid UTF-8 throws invalid_argument naming the document", "[tfidf]") {
  tfidf_vectorizer<> v;
  std::vector<std::string> const docs{"fine text", "bad \xC3\x28 byte"};
  CHECK_THROWS_WITH(v.fit(docs), Catch::Contains("document 1") && Catch::Contains("offset 4"));
  CHECK_FALSE(v.is_fitted());
  CHECK_THROWS_AS(v.fit(std::vector<std::string>{"\xED\xA0\x80 surrogate"}), mgpu::invalid_argument);
  CHECK_THROWS_AS(v.fit(std::vector<std::string>{"\xC0\xAF overlong"}), mgpu::invalid_argument);
}

TEST_CASE("options outside sklearn's domain throw invalid_argument", "[tfidf]") {
  auto with = [](auto set) {
    tfidf_options o;
    set(o);
    return o;
  };
  CHECK_THROWS_AS(tfidf_vectorizer<>(with([](auto& o) { o.min_df = std::int64_t{0}; })), mgpu::invalid_argument);
  CHECK_THROWS_AS(tfidf_vectorizer<>(with([](auto& o) { o.max_df = 1.5; })), mgpu::invalid_argument);
  CHECK_THROWS_AS(tfidf_vectorizer<>(with([](auto& o) { o.max_features = 0; })), mgpu::invalid_argument);
  CHECK_THROWS_AS(tfidf_vectorizer<>(with([](auto& o) { o.ngram_range = {2, 1}; })), mgpu::invalid_argument);
  // sklearn: "max_df corresponds to < documents than min_df"
  tfidf_vectorizer<> v(with([](auto& o) {
    o.min_df = std::int64_t{3};
    o.max_df = std::int64_t{2};
  }));
  CHECK_THROWS_AS(v.fit(std::vector<std::string>{"aa", "bb"}), mgpu::invalid_argument);
}

TEST_CASE("weight rejects a count matrix whose columns are not the vocabulary", "[tfidf]") {
  tfidf_vectorizer<> v;
  v.fit(std::vector<std::string>{"aa bb"});
  CHECK_THROWS_AS(v.weight(mgpu::csr_matrix<mgpu::cpu, float>(1, 3)), mgpu::dimension_mismatch);
  std::vector<double> const idf{1.0};
  CHECK_THROWS_AS(mgpu::tfidf_weight(mgpu::csr_matrix<mgpu::cpu, float>(1, 2), idf, tfidf_options{}),
                  mgpu::dimension_mismatch);
}

TEST_CASE("reliability row 9: empty corpus gives a 0 x 0 result", "[tfidf][reliability]") {
  tfidf_vectorizer<> v;
  auto const x = v.fit_transform(std::vector<std::string>{});
  CHECK(x.rows() == 0);
  CHECK(x.cols() == 0);
  CHECK(v.is_fitted());
  CHECK(v.vocabulary().empty());
}

TEST_CASE("reliability row 9: documents without tokens give an n x 0 result, not an error", "[tfidf][reliability]") {
  // sklearn raises "empty vocabulary"; mgpu returns a valid empty-vocabulary result.
  tfidf_vectorizer<> v;
  auto const x = v.fit_transform(std::vector<std::string>{"", "a b c", "!!! ?"});
  CHECK(x.rows() == 3);
  CHECK(x.cols() == 0);
  CHECK(x.nnz() == 0);
  auto const y = v.transform(std::vector<std::string>{"dog"});
  CHECK(y.rows() == 1);
  CHECK(y.cols() == 0);
}

TEST_CASE("reliability row 9: pruning every term gives an n x 0 result", "[tfidf][reliability]") {
  // sklearn raises "After pruning, no terms remain".
  tfidf_options o;
  o.min_df = std::int64_t{2};
  tfidf_vectorizer<> v(o);
  auto const x = v.fit_transform(std::vector<std::string>{"aa bb", "cc dd"});
  CHECK(x.rows() == 2);
  CHECK(x.cols() == 0);
}

TEST_CASE("reliability row 9: empty documents give zero rows, never NaN", "[tfidf][reliability]") {
  for (auto norm : {mgpu::tfidf_norm::l2, mgpu::tfidf_norm::l1, mgpu::tfidf_norm::none}) {
    tfidf_options o;
    o.norm = norm;
    o.sublinear_tf = true;
    tfidf_vectorizer<double> v(o);
    auto const x = v.fit_transform(std::vector<std::string>{"", "dog cat", "x"});
    CHECK(x.view().row_nnz(0) == 0);
    CHECK(x.view().row_nnz(2) == 0);
    for (double value : x.values()) CHECK(std::isfinite(value));
  }
}

TEST_CASE("vocabulary beyond the index type throws index_overflow", "[tfidf][reliability]") {
  std::string doc;
  for (int i = 0; i < 200; ++i) doc += "t" + std::to_string(i) + " ";
  tfidf_vectorizer<float, std::int8_t> v;
  CHECK_THROWS_AS(v.fit_transform(std::vector<std::string>{doc}), mgpu::index_overflow);
  CHECK_FALSE(v.is_fitted());
}

// ---- corpora fed in other shapes, and on several devices

namespace {

std::vector<std::string> synthetic_corpus(std::size_t n) {
  std::vector<std::string> docs;
  docs.reserve(n);
  std::uint64_t state = 12345;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  for (std::size_t i = 0; i < n; ++i) {
    std::string d;
    auto const words = next() % 12;
    for (std::uint64_t w = 0; w < words; ++w) {
      d += "w" + std::to_string(next() % 5000);
      d += (next() % 7 == 0) ? ", Ünïcödé " : " ";
    }
    docs.push_back(std::move(d));
  }
  return docs;
}

template <class T, class I>
void require_identical(mgpu::csr_matrix<mgpu::cpu, T, I> const& a, mgpu::csr_matrix<mgpu::cpu, T, I> const& b) {
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  REQUIRE(std::ranges::equal(a.row_offsets(), b.row_offsets()));
  REQUIRE(std::ranges::equal(a.col_indices(), b.col_indices()));
  REQUIRE(std::ranges::equal(a.values(), b.values()));
}

}  // namespace

TEST_CASE("a single-pass input range of temporaries gives the same result as a vector", "[tfidf]") {
  std::istringstream words("Alpha beta Gamma alpha BETA delta alpha");
  tfidf_vectorizer<> streamed;
  auto const a = streamed.fit_transform(std::views::istream<std::string>(words));
  std::vector<std::string> const docs{"Alpha", "beta", "Gamma", "alpha", "BETA", "delta", "alpha"};
  tfidf_vectorizer<> stored;
  auto const b = stored.fit_transform(docs);
  CHECK(streamed.vocabulary() == stored.vocabulary());
  require_identical(a, b);
}

TEST_CASE("a batch source gives the same result as the whole corpus at once", "[tfidf]") {
  auto const docs = synthetic_corpus(70000);  // more than one internal batch
  std::size_t next = 0;
  mgpu::tfidf_batch_source source = [&](std::vector<std::string>& batch) {
    for (std::size_t i = 0; i < 997 && next < docs.size(); ++i) batch.push_back(docs[next++]);
    return next < docs.size();
  };
  tfidf_vectorizer<> batched;
  auto const a = batched.fit_transform(source);
  tfidf_vectorizer<> whole;
  auto const b = whole.fit_transform(docs);
  CHECK(batched.vocabulary() == whole.vocabulary());
  require_identical(a, b);
  auto const c = whole.transform(docs | std::views::transform([](std::string const& s) { return s; }));
  require_identical(b, c);
}

TEST_CASE("fit_transform on cpu:2 and cpu:3 equals cpu", "[tfidf]") {
  auto const docs = synthetic_corpus(5000);
  tfidf_options o;
  o.sublinear_tf = true;
  o.ngram_range = {1, 2};
  tfidf_vectorizer<> one(o);
  auto const expected = one.fit_transform(mgpu::execution_policy<mgpu::cpu>("cpu"), docs);
  for (auto const* devices : {"cpu:2", "cpu:3"}) {
    tfidf_vectorizer<> many(o);
    auto const got = many.fit_transform(mgpu::execution_policy<mgpu::cpu>(devices), docs);
    REQUIRE(many.vocabulary() == one.vocabulary());
    require_identical(got, expected);
    require_identical(many.transform(mgpu::execution_policy<mgpu::cpu>(devices), docs), expected);
  }
  require_identical(tfidf_vectorizer<>(o).fit_transform(docs), expected);
}

TEST_CASE("a vocabulary that outgrows the shared term table counts every term once", "[tfidf]") {
  // ~72,000 distinct lowercase ASCII words over 3,000 documents: the table's first guess
  // (from the corpus size) holds 48 k terms, so documents find it full and are counted
  // again after it grows. Expected counts come from a std::map of the words.
  std::vector<std::string> docs;
  std::map<std::string, std::map<std::size_t, std::uint32_t>> expected;  // term -> doc -> count
  std::uint64_t state = 7;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  for (std::size_t d = 0; d < 3000; ++d) {
    std::string doc;
    for (int w = 0; w < 30; ++w) {
      std::string word = "w_";  // then v in base 26: distinct words for distinct v
      for (auto v = next() % 200000; v > 0; v /= 26) word += static_cast<char>('a' + v % 26);
      doc += word + (w % 5 == 0 ? ". " : " ");
      ++expected[word][d];
    }
    docs.push_back(std::move(doc));
  }
  tfidf_vectorizer<> v;
  auto const counts = v.count(docs);
  REQUIRE(v.vocabulary().size() == expected.size());
  std::size_t column = 0;
  std::vector<std::map<std::uint32_t, std::uint32_t>> rows(docs.size());  // doc -> column -> count
  for (auto const& [term, per_doc] : expected) {
    REQUIRE(v.vocabulary()[column] == term);
    for (auto const& [d, c] : per_doc) rows[d][static_cast<std::uint32_t>(column)] = c;
    ++column;
  }
  for (std::size_t d = 0; d < docs.size(); ++d) {
    auto const begin = static_cast<std::size_t>(counts.row_offsets()[d]);
    auto const end = static_cast<std::size_t>(counts.row_offsets()[d + 1]);
    REQUIRE(end - begin == rows[d].size());
    std::size_t p = begin;
    for (auto const& [c, n] : rows[d]) {
      REQUIRE(static_cast<std::uint32_t>(counts.col_indices()[p]) == c);
      REQUIRE(counts.values()[p] == static_cast<float>(n));
      ++p;
    }
  }
  // transform looks every term up in the grown table.
  require_identical(v.transform(docs), v.weight(counts));
}

TEST_CASE("term_list: indexing, iteration and equality", "[tfidf]") {
  std::string const bytes = "applebananacherry";
  mgpu::term_list const list(std::vector<char>(bytes.begin(), bytes.end()), {0, 5, 11, 17});
  REQUIRE(list.size() == 3);
  CHECK(list[0] == "apple");
  CHECK(list.at(2) == "cherry");
  CHECK_THROWS_AS(list.at(3), std::out_of_range);
  CHECK(std::vector<std::string_view>(list.begin(), list.end()) ==
        std::vector<std::string_view>{"apple", "banana", "cherry"});
  CHECK(list.to_strings() == std::vector<std::string>{"apple", "banana", "cherry"});
  CHECK(list == std::vector<std::string>{"apple", "banana", "cherry"});
  CHECK_FALSE(list == std::vector<std::string>{"apple", "banana"});
  CHECK_FALSE(list == std::vector<std::string>{"apple", "banana", "cherry", "date"});
  CHECK_FALSE(list == std::vector<std::string>{"apple", "banana", "cherries"});
  CHECK(mgpu::term_list().empty());
  CHECK_THROWS_AS(mgpu::term_list(std::vector<char>(3), {0, 5}), mgpu::invalid_argument);
}

namespace {

// The vectorizer's state as observable: options that matter, vocabulary, df, idf.
template <class V>
void require_same_fit(V const& a, V const& b) {
  REQUIRE(a.vocabulary() == b.vocabulary());
  CHECK(std::ranges::equal(a.document_frequency(), b.document_frequency()));
  CHECK(std::ranges::equal(a.idf(), b.idf()));
  auto const& x = a.options();
  auto const& y = b.options();
  CHECK(x.lowercase == y.lowercase);
  CHECK(x.norm == y.norm);
  CHECK(x.use_idf == y.use_idf);
  CHECK(x.smooth_idf == y.smooth_idf);
  CHECK(x.sublinear_tf == y.sublinear_tf);
  CHECK(x.binary == y.binary);
  CHECK(x.min_df == y.min_df);
  CHECK(x.max_df == y.max_df);
  CHECK(x.max_features == y.max_features);
  CHECK(x.ngram_range == y.ngram_range);
}

std::vector<char> file_bytes(std::filesystem::path const& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

TEST_CASE("a saved and loaded vectorizer transforms bitwise as the original", "[tfidf][io]") {
  mgpu_test::temp_dir dir;
  auto const docs = synthetic_corpus(3000);
  // New documents: known terms, unknown terms (dropped), case and accents, an empty one.
  std::vector<std::string> const fresh{"w1 w2 W3 unknownterm w1", "", "Ünïcödé w4999 w0 zzz", "w17, w17 w17"};
  std::vector<tfidf_options> cases(4);
  cases[1].sublinear_tf = true;
  cases[1].ngram_range = {1, 2};
  cases[1].min_df = std::int64_t{2};
  cases[1].max_df = 0.9;
  cases[1].max_features = 3000;
  cases[2].use_idf = false;
  cases[2].norm = mgpu::tfidf_norm::none;
  cases[2].lowercase = false;
  cases[3].binary = true;
  cases[3].smooth_idf = false;
  cases[3].norm = mgpu::tfidf_norm::l1;
  cases[3].min_df = 0.001;
  for (std::size_t c = 0; c < cases.size(); ++c) {
    INFO("options case " << c);
    tfidf_vectorizer<> fitted(cases[c]);
    (void)fitted.fit(docs);
    fitted.save(dir / "v.mgpu");
    auto const loaded = tfidf_vectorizer<>::load(dir / "v.mgpu");
    CHECK(loaded.is_fitted());
    require_same_fit(loaded, fitted);
    require_identical(loaded.transform(docs), fitted.transform(docs));
    require_identical(loaded.transform(fresh), fitted.transform(fresh));
    require_identical(loaded.transform(mgpu::execution_policy<mgpu::cpu>("cpu:2"), fresh), fitted.transform(fresh));
    // The file does not depend on the value and index types.
    auto const wide = tfidf_vectorizer<double, std::int64_t>::load(dir / "v.mgpu");
    tfidf_vectorizer<double, std::int64_t> wide_fitted(cases[c]);
    (void)wide_fitted.fit(docs);
    require_identical(wide.transform(fresh), wide_fitted.transform(fresh));
    // Saving the loaded vectorizer writes the same bytes.
    loaded.save(dir / "again.mgpu");
    auto const bytes = file_bytes(dir / "v.mgpu");
    CHECK(bytes == file_bytes(dir / "again.mgpu"));
    // save(std::ostream&) writes the same bytes as save(path).
    std::ostringstream stream;
    fitted.save(stream);
    CHECK(stream.str() == std::string(bytes.begin(), bytes.end()));
  }
}

TEST_CASE("an empty vocabulary round-trips; saving an unfitted vectorizer is invalid_argument", "[tfidf][io]") {
  mgpu_test::temp_dir dir;
  tfidf_vectorizer<> unfitted;
  CHECK_THROWS_AS(unfitted.save(dir / "v.mgpu"), mgpu::invalid_argument);
  tfidf_vectorizer<> empty;
  (void)empty.fit(std::vector<std::string>{"a", "", "!"});
  REQUIRE(empty.vocabulary().size() == 0);
  empty.save(dir / "v.mgpu");
  auto const loaded = tfidf_vectorizer<>::load(dir / "v.mgpu");
  auto const m = loaded.transform(std::vector<std::string>{"ab cd", "x"});
  CHECK(m.rows() == 2);
  CHECK(m.cols() == 0);
}

TEST_CASE("truncated, corrupted and newer vectorizer files are rejected with file_format_error",
          "[tfidf][io][reliability]") {
  mgpu_test::temp_dir dir;
  tfidf_vectorizer<> v;
  (void)v.fit(synthetic_corpus(200));
  v.save(dir / "v.mgpu");
  auto const bytes = file_bytes(dir / "v.mgpu");
  auto const write = [&](std::vector<char> const& content) {
    auto const path = dir / "bad.mgpu";
    std::ofstream(path, std::ios::binary).write(content.data(), static_cast<std::streamsize>(content.size()));
    return path;
  };
  for (std::size_t cut : {std::size_t{3}, bytes.size() / 3, bytes.size() - 1}) {
    INFO("truncated to " << cut);
    CHECK_THROWS_AS(tfidf_vectorizer<>::load(write({bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(cut)})),
                    mgpu::file_format_error);
  }
  for (std::size_t at : {std::size_t{9}, bytes.size() / 2, bytes.size() - 10}) {
    INFO("byte " << at << " flipped");
    auto flipped = bytes;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x01);
    CHECK_THROWS_AS(tfidf_vectorizer<>::load(write(flipped)), mgpu::file_format_error);
  }
  auto const newer = dir / "newer.mgpu";
  mgpu::write_binary_file(newer, "tfidf_vectorizer", tfidf_vectorizer<>::file_version + 1,
                          [](mgpu::binary_writer& w) { w.write_value<std::uint8_t>("lowercase", 1); });
  CHECK_THROWS_AS(tfidf_vectorizer<>::load(newer), mgpu::file_format_error);
  // Another kind of file.
  auto const other = dir / "other.mgpu";
  mgpu::write_binary_file(other, "cosine_index", 1, [](mgpu::binary_writer& w) { w.write_value<std::int64_t>("rows", 0); });
  CHECK_THROWS_WITH(tfidf_vectorizer<>::load(other), Catch::Matchers::Contains("not a tfidf_vectorizer"));
}

TEST_CASE("progress reports documents counted after every batch, the total when it is known", "[tfidf]") {
  auto const docs = synthetic_corpus(70000);  // a vector: one batch in place, total known
  std::vector<std::pair<std::int64_t, std::int64_t>> calls;
  tfidf_options o;
  o.progress = [&](std::int64_t done, std::int64_t total) { calls.emplace_back(done, total); };
  tfidf_vectorizer<> v(o);
  (void)v.fit(docs);
  REQUIRE(!calls.empty());
  CHECK(calls.back() == std::pair<std::int64_t, std::int64_t>{70000, 70000});
  for (auto const& c : calls) CHECK(c.second == 70000);

  // A batch source: the total is unknown (-1) until the last call, which reports it.
  calls.clear();
  std::size_t next = 0;
  mgpu::tfidf_batch_source source = [&](std::vector<std::string>& batch) {
    for (std::size_t i = 0; i < 30000 && next < docs.size(); ++i) batch.push_back(docs[next++]);
    return next < docs.size();
  };
  (void)v.transform(source);
  std::vector<std::pair<std::int64_t, std::int64_t>> const expected{
      {30000, -1}, {60000, -1}, {70000, -1}, {70000, 70000}};
  CHECK(calls == expected);

  calls.clear();
  (void)v.transform(std::vector<std::string>{});
  CHECK(calls.empty());
}
