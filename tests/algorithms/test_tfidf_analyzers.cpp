// TF-IDF's analyzer options against scikit-learn (mgpu/algorithms/tfidf.hpp): analyzer
// char / char_wb with ngram_range, stop_words, token_pattern, strip_accents, lowercase,
// a fixed vocabulary, binary, the preprocessor / tokenizer hooks, get_feature_names_out,
// inverse_transform, and the saved options (file version 2, version 1 still read).
//
// Expected values come from scikit-learn (tests/data/tfidf/make_sklearn_fixtures.py wrote
// tests/data/tfidf/sklearn/analyzers.json; its versions are in the file) or are worked
// out by hand from sklearn's definitions.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "mgpu/algorithms/tfidf.hpp"
#include "mgpu/execution/policy.hpp"
#include "mgpu/io/binary_file.hpp"
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

std::string const data_dir = std::string(MGPU_TEST_DATA_DIR) + "/tfidf/sklearn/";

struct sklearn_case {
  tfidf_options options;
  std::vector<std::string> feature_names;
  std::vector<double> idf;
  sparse_rows fit_transform;
  sparse_rows transform;
  std::vector<std::vector<std::string>> inverse_transform;
};

struct sklearn_fixture {
  std::vector<std::string> corpus;
  std::vector<std::string> transform_documents;
  std::map<std::string, sklearn_case, std::less<>> cases;
};

sklearn_fixture const& fixture() {
  static sklearn_fixture const f = [] {
    simdjson::dom::parser parser;
    simdjson::dom::element root = parser.load(data_dir + "analyzers.json");
    sklearn_fixture out;
    out.corpus = strings(root["corpus"]);
    out.transform_documents = strings(root["transform_documents"]);
    for (simdjson::dom::object c : root["cases"].get_array()) {
      sklearn_case k;
      k.options = read_options(c["options"]);
      k.feature_names = strings(c["feature_names"]);
      for (double v : c["idf"].get_array()) k.idf.push_back(v);
      k.fit_transform = read_csr(c["fit_transform"]);
      k.transform = read_csr(c["transform"]);
      for (simdjson::dom::array row : c["inverse_transform"].get_array()) k.inverse_transform.push_back(strings(row));
      out.cases.emplace(std::string(std::string_view(c["name"])), std::move(k));
    }
    return out;
  }();
  return f;
}

template <class T, class I>
void require_identical(mgpu::csr_matrix<mgpu::cpu, T, I> const& a, mgpu::csr_matrix<mgpu::cpu, T, I> const& b) {
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  REQUIRE(std::vector<I>(a.row_offsets().begin(), a.row_offsets().end()) ==
          std::vector<I>(b.row_offsets().begin(), b.row_offsets().end()));
  REQUIRE(std::vector<I>(a.col_indices().begin(), a.col_indices().end()) ==
          std::vector<I>(b.col_indices().begin(), b.col_indices().end()));
  REQUIRE(std::vector<T>(a.values().begin(), a.values().end()) == std::vector<T>(b.values().begin(), b.values().end()));
}

std::vector<std::string> names(mgpu::term_list const& terms) {
  std::vector<std::string> out;
  for (auto t : terms) out.emplace_back(t);
  return out;
}

void check_against_sklearn(std::string_view name) {
  auto const& f = fixture();
  auto const& c = f.cases.at(std::string(name));
  tfidf_vectorizer<double> vectorizer(c.options);
  auto const x = vectorizer.fit_transform(f.corpus);
  REQUIRE(names(vectorizer.get_feature_names_out()) == c.feature_names);
  REQUIRE(vectorizer.idf().size() == c.idf.size());
  for (std::size_t j = 0; j < c.idf.size(); ++j) REQUIRE(vectorizer.idf()[j] == Approx(c.idf[j]).epsilon(1e-12));
  require_equal(x, c.fit_transform, 1e-12);
  require_equal(vectorizer.transform(f.transform_documents), c.transform, 1e-12);
  CHECK(vectorizer.inverse_transform(x) == c.inverse_transform);

  // float values to 1e-6; the same result on two host devices (threads).
  tfidf_vectorizer<float> single(c.options);
  auto const y = single.fit_transform(f.corpus);
  require_equal(y, c.fit_transform, 1e-6);
  tfidf_vectorizer<float> two(c.options);
  require_identical(two.fit_transform(mgpu::execution_policy<mgpu::cpu>("cpu:2"), f.corpus), y);

  // The options are saved: the loaded vectorizer transforms bitwise as the fitted one.
  mgpu_test::temp_dir dir;
  single.save(dir / "v.mgpu");
  auto const loaded = tfidf_vectorizer<float>::load(dir / "v.mgpu");
  CHECK(names(loaded.vocabulary()) == c.feature_names);
  CHECK(loaded.options().analyzer == c.options.analyzer);
  CHECK(loaded.options().stop_words == c.options.stop_words);
  CHECK(loaded.options().token_pattern == c.options.token_pattern);
  CHECK(loaded.options().strip_accents == c.options.strip_accents);
  CHECK(loaded.options().vocabulary == c.options.vocabulary);
  require_identical(loaded.transform(f.transform_documents), single.transform(f.transform_documents));
  require_identical(loaded.transform(f.corpus), single.transform(f.corpus));
}

std::vector<char> file_bytes(std::filesystem::path const& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

// ---- scikit-learn reference data: names exact, values to 1e-12 (double), 1e-6 (float)

TEST_CASE("analyzer='char', ngram_range=(1, 3) matches sklearn", "[tfidf][analyzers]") {
  check_against_sklearn("char_1_3");
}
TEST_CASE("analyzer='char_wb', ngram_range=(2, 5) matches sklearn", "[tfidf][analyzers]") {
  check_against_sklearn("char_wb_2_5");
}
TEST_CASE("word n-grams (1, 2) with stop_words='english' match sklearn", "[tfidf][analyzers]") {
  check_against_sklearn("word_1_2_stop_english");
}
TEST_CASE("token_pattern (?u)\\b\\w+\\b matches sklearn", "[tfidf][analyzers]") {
  check_against_sklearn("pattern_unicode_words");
}
TEST_CASE("token_pattern [A-Za-z]+ matches sklearn", "[tfidf][analyzers]") {
  check_against_sklearn("pattern_ascii_letters");
}
TEST_CASE("a token_pattern with one capturing group takes the group, as sklearn", "[tfidf][analyzers]") {
  check_against_sklearn("pattern_one_group");
}
TEST_CASE("strip_accents='ascii' matches sklearn", "[tfidf][analyzers]") { check_against_sklearn("strip_accents_ascii"); }
TEST_CASE("strip_accents='unicode' matches sklearn", "[tfidf][analyzers]") {
  check_against_sklearn("strip_accents_unicode");
}
TEST_CASE("char_wb (2, 3) with strip_accents='unicode' matches sklearn", "[tfidf][analyzers]") {
  check_against_sklearn("char_wb_strip_accents_unicode");
}
TEST_CASE("char_wb (1, 3) with lowercase=False matches sklearn", "[tfidf][analyzers]") {
  check_against_sklearn("no_lowercase_char_wb");
}
TEST_CASE("a token_pattern with lowercase=False matches sklearn", "[tfidf][analyzers]") {
  check_against_sklearn("no_lowercase_pattern");
}
TEST_CASE("a fixed vocabulary matches sklearn (column order kept, absent terms get columns)", "[tfidf][analyzers]") {
  check_against_sklearn("fixed_vocabulary");
}
TEST_CASE("binary=True with char (2, 4) matches sklearn", "[tfidf][analyzers]") { check_against_sklearn("binary_char_2_4"); }
TEST_CASE("binary=True with a user stop list and word (1, 3) matches sklearn", "[tfidf][analyzers]") {
  check_against_sklearn("binary_word_stop_list");
}

TEST_CASE("english_stop_words() is sklearn's ENGLISH_STOP_WORDS", "[tfidf][analyzers]") {
  std::ifstream in(data_dir + "english_stop_words.txt");
  REQUIRE(in);
  std::vector<std::string> expected;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] != '#') expected.push_back(line);
  }
  CHECK(expected.size() == 318);
  CHECK(mgpu::english_stop_words() == expected);
}

// ---- by hand

TEST_CASE("char_wb pads each word with one space and counts a short word once", "[tfidf][analyzers]") {
  tfidf_options o;
  o.analyzer = mgpu::tfidf_analyzer::char_wb;
  o.ngram_range = {2, 3};
  o.norm = mgpu::tfidf_norm::none;
  o.use_idf = false;
  tfidf_vectorizer<double> v(o);
  // " ab ": n=2 " a", "ab", "b "; n=3 " ab", "ab ". " a " (3 code points): n=2 " a", "a ";
  // n=3 " a " once, and no longer n-grams.
  auto const x = v.count(std::vector<std::string>{"ab\t\t a"});
  std::vector<std::string> const terms{" a", " a ", " ab", "a ", "ab", "ab ", "b "};
  REQUIRE(names(v.vocabulary()) == terms);
  std::vector<float> const counts{2, 1, 1, 1, 1, 1, 1};
  CHECK(std::vector<float>(x.values().begin(), x.values().end()) == counts);
}

TEST_CASE("char n-grams are over code points, runs of whitespace become one space", "[tfidf][analyzers]") {
  tfidf_options o;
  o.analyzer = mgpu::tfidf_analyzer::char_;
  o.ngram_range = {2, 2};
  tfidf_vectorizer<> v(o);
  // "é \n\tÉ" lowers to "é \n\té", whose run of 3 whitespace code points becomes " ":
  // "é é" -> "é ", " é". A single "\n" stays: "a\nb" -> "a\n", "\nb".
  (void)v.fit(std::vector<std::string>{"\u00e9 \n\t\u00c9", "a\nb"});
  std::vector<std::string> const terms{"\nb", " \u00e9", "a\n", "\u00e9 "};
  CHECK(names(v.vocabulary()) == terms);
}

TEST_CASE("stop words are removed before word n-grams are formed", "[tfidf][analyzers]") {
  tfidf_options o;
  o.ngram_range = {2, 2};
  o.stop_words = {"the"};
  tfidf_vectorizer<> v(o);
  (void)v.fit(std::vector<std::string>{"fox the dog THE cat"});
  // Tokens after the stop list: fox dog cat.
  CHECK(names(v.vocabulary()) == std::vector<std::string>{"dog cat", "fox dog"});
}

TEST_CASE("preprocessor and tokenizer hooks replace lowercasing and the token pattern", "[tfidf][analyzers]") {
  tfidf_options o;
  // sklearn: a preprocessor replaces lowercase (and strip_accents) entirely.
  o.preprocessor = [](std::string_view doc) {
    std::string s(doc);
    for (auto& ch : s) ch = ch == '-' ? ',' : ch;
    return s;
  };
  o.tokenizer = [](std::string_view text) {
    std::vector<std::string> tokens;
    std::string current;
    for (char ch : text) {
      if (ch == ',') {
        tokens.push_back(current);
        current.clear();
      } else {
        current += ch;
      }
    }
    tokens.push_back(current);
    return tokens;
  };
  o.stop_words = {"b"};
  o.norm = mgpu::tfidf_norm::none;
  o.use_idf = false;
  tfidf_vectorizer<> v(o);
  auto const x = v.count(std::vector<std::string>{"A-b,A", "x y-b"});
  // Tokens: "A", "b", "A" and "x y", "b"; "b" is a stop word, empty tokens are dropped.
  CHECK(names(v.vocabulary()) == std::vector<std::string>{"A", "x y"});
  CHECK(std::vector<float>(x.values().begin(), x.values().end()) == std::vector<float>{2, 1});
  mgpu_test::temp_dir dir;
  CHECK_THROWS_AS(v.save(dir / "v.mgpu"), mgpu::invalid_argument);
  std::ostringstream out;
  CHECK_THROWS_AS(v.save(out), mgpu::invalid_argument);
}

TEST_CASE("inverse_transform gives each row's terms of nonzero entries", "[tfidf][analyzers]") {
  tfidf_vectorizer<> v;
  auto const x = v.fit_transform(std::vector<std::string>{"bb aa", "", "cc aa"});
  using rows = std::vector<std::vector<std::string>>;
  CHECK(v.inverse_transform(x) == rows{{"aa", "bb"}, {}, {"aa", "cc"}});
  mgpu::csr_matrix<mgpu::cpu, float> const wrong(1, 2);
  CHECK_THROWS_AS(v.inverse_transform(wrong), mgpu::dimension_mismatch);
  tfidf_vectorizer<> unfitted;
  CHECK_THROWS_AS(unfitted.inverse_transform(x), mgpu::invalid_argument);
}

TEST_CASE("invalid analyzer options throw invalid_argument", "[tfidf][analyzers][reliability]") {
  auto make = [](auto change) {
    tfidf_options o;
    change(o);
    return [o] { tfidf_vectorizer<> v(o); };
  };
  CHECK_THROWS_AS(make([](tfidf_options& o) { o.token_pattern = R"((a)(b))"; })(), mgpu::invalid_argument);
  CHECK_THROWS_AS(make([](tfidf_options& o) { o.token_pattern = R"((unclosed)"; })(), mgpu::invalid_argument);
  CHECK_THROWS_AS(make([](tfidf_options& o) { o.token_pattern = R"((?a)\w+)"; })(), mgpu::invalid_argument);
  CHECK_THROWS_AS(make([](tfidf_options& o) { o.vocabulary = std::vector<std::string>{}; })(), mgpu::invalid_argument);
  CHECK_THROWS_AS(make([](tfidf_options& o) { o.vocabulary = std::vector<std::string>{"a", "b", "a"}; })(),
                  mgpu::invalid_argument);
  CHECK_THROWS_AS(make([](tfidf_options& o) { o.vocabulary = std::vector<std::string>{"a", ""}; })(),
                  mgpu::invalid_argument);
  // A mapping with a repeated index, or one missing an index.
  CHECK_THROWS_AS(mgpu::vocabulary_from_mapping({{"a", 0}, {"b", 0}}), mgpu::invalid_argument);
  CHECK_THROWS_AS(mgpu::vocabulary_from_mapping({{"a", 0}, {"b", 2}}), mgpu::invalid_argument);
  CHECK(mgpu::vocabulary_from_mapping({{"a", 1}, {"b", 0}}) == std::vector<std::string>{"b", "a"});
  // Invalid UTF-8 in a document names it, on every analyzer path.
  for (auto analyzer : {mgpu::tfidf_analyzer::char_, mgpu::tfidf_analyzer::char_wb}) {
    tfidf_options o;
    o.analyzer = analyzer;
    tfidf_vectorizer<> v(o);
    CHECK_THROWS_WITH(v.fit(std::vector<std::string>{"ok", "bad \xff"}), Catch::Matchers::Contains("document 1"));
  }
  tfidf_options p;
  p.token_pattern = R"(\w+)";
  tfidf_vectorizer<> v(p);
  CHECK_THROWS_WITH(v.fit(std::vector<std::string>{"bad \xc3"}), Catch::Matchers::Contains("document 0"));
}

TEST_CASE("a fixed vocabulary ignores min_df, max_df and max_features, as sklearn", "[tfidf][analyzers]") {
  tfidf_options o;
  o.vocabulary = std::vector<std::string>{"zz", "aa"};
  o.min_df = std::int64_t{5};
  o.max_features = 1;
  o.use_idf = false;
  o.norm = mgpu::tfidf_norm::none;
  tfidf_vectorizer<> v(o);
  auto const x = v.count(std::vector<std::string>{"aa aa bb", "zz"});
  CHECK(names(v.vocabulary()) == std::vector<std::string>{"zz", "aa"});
  CHECK(std::vector<std::uint64_t>(v.document_frequency().begin(), v.document_frequency().end()) ==
        std::vector<std::uint64_t>{1, 1});
  CHECK(std::vector<std::int32_t>(x.col_indices().begin(), x.col_indices().end()) == std::vector<std::int32_t>{1, 0});
  CHECK(std::vector<float>(x.values().begin(), x.values().end()) == std::vector<float>{2, 1});
}

TEST_CASE("a version-1 vectorizer file is read with the default analyzer options", "[tfidf][analyzers][io]") {
  mgpu_test::temp_dir dir;
  // The sections of version 1 (docs/formats.md), written directly: vocabulary "aa", "bb".
  mgpu::write_binary_file(dir / "v1.mgpu", "tfidf_vectorizer", 1, [](mgpu::binary_writer& w) {
    for (char const* flag : {"lowercase", "use_idf", "smooth_idf"}) w.write_value<std::uint8_t>(flag, 1);
    w.write_value<std::uint8_t>("sublinear_tf", 0);
    w.write_value<std::uint8_t>("binary", 0);
    w.write_value<std::uint8_t>("norm", 0);
    w.write("ngram_range", std::vector<std::int32_t>{1, 1});
    w.write_value<std::uint8_t>("min_df_kind", 0);
    w.write_value<double>("min_df", 1.0);
    w.write_value<std::uint8_t>("max_df_kind", 1);
    w.write_value<double>("max_df", 1.0);
    w.write_value<std::int64_t>("max_features", 0);
    w.write_text("vocabulary", "aabb");
    w.write("vocabulary_offsets", std::vector<std::uint64_t>{0, 2, 4});
    w.write("document_frequency", std::vector<std::uint64_t>{2, 1});
    w.write("idf", std::vector<double>{1.0, 1.5});
  });
  auto const v = tfidf_vectorizer<double>::load(dir / "v1.mgpu");
  CHECK(v.options().analyzer == mgpu::tfidf_analyzer::word);
  CHECK(v.options().token_pattern == mgpu::default_token_pattern);
  CHECK(v.options().stop_words.empty());
  CHECK(!v.options().vocabulary);
  CHECK(names(v.vocabulary()) == std::vector<std::string>{"aa", "bb"});
  // "BB aa bb": tf (1, 2) times idf (1, 1.5) = (1, 3), scaled by 1 / sqrt(10).
  auto const x = v.transform(std::vector<std::string>{"BB aa bb"});
  REQUIRE(x.nnz() == 2);
  CHECK(x.values()[0] == Approx(1.0 / std::sqrt(10.0)));
  CHECK(x.values()[1] == Approx(3.0 / std::sqrt(10.0)));
}

TEST_CASE("version-2 files with analyzer options reject truncation, flipped bytes and a newer version",
          "[tfidf][analyzers][io][reliability]") {
  mgpu_test::temp_dir dir;
  tfidf_options o;
  o.analyzer = mgpu::tfidf_analyzer::char_wb;
  o.ngram_range = {2, 4};
  o.stop_words = {"ignored", "here"};
  o.strip_accents = mgpu::strip_accents_mode::unicode;
  tfidf_vectorizer<> v(o);
  (void)v.fit(fixture().corpus);
  v.save(dir / "v.mgpu");
  auto const bytes = file_bytes(dir / "v.mgpu");
  auto const write = [&](std::vector<char> const& content) {
    auto const path = dir / "bad.mgpu";
    std::ofstream(path, std::ios::binary).write(content.data(), static_cast<std::streamsize>(content.size()));
    return path;
  };
  for (std::size_t cut : {bytes.size() / 2, bytes.size() - 1}) {
    INFO("truncated to " << cut);
    CHECK_THROWS_AS(tfidf_vectorizer<>::load(write({bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(cut)})),
                    mgpu::file_format_error);
  }
  for (std::size_t at : {bytes.size() / 2, bytes.size() - 10}) {
    INFO("byte " << at << " flipped");
    auto flipped = bytes;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x01);
    CHECK_THROWS_AS(tfidf_vectorizer<>::load(write(flipped)), mgpu::file_format_error);
  }
  auto const newer = dir / "newer.mgpu";
  mgpu::write_binary_file(newer, "tfidf_vectorizer", 3, [](mgpu::binary_writer& w) { w.write_value<std::uint8_t>("lowercase", 1); });
  CHECK_THROWS_AS(tfidf_vectorizer<>::load(newer), mgpu::file_format_error);
}
