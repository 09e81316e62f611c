// What the TF-IDF tests against scikit-learn share: a CSR matrix as scikit-learn's
// fixtures store it (shape, indptr, indices, data), the readers of the fixtures' JSON
// (tests/data/tfidf/make_fixtures.py and make_sklearn_fixtures.py write them), and the
// comparison of an mgpu matrix with one.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "mgpu/algorithms/tfidf.hpp"

namespace mgpu_test::sklearn {

/// A scipy.sparse CSR matrix as the fixtures hold it.
struct sparse_rows {
  std::vector<std::int64_t> shape;
  std::vector<std::int64_t> indptr;
  std::vector<std::int64_t> indices;
  std::vector<double> data;
};

inline std::vector<std::string> strings(simdjson::dom::array a) {
  std::vector<std::string> out;
  for (std::string_view s : a) out.emplace_back(s);
  return out;
}

inline sparse_rows read_csr(simdjson::dom::object o) {
  sparse_rows m;
  for (std::int64_t v : o["shape"].get_array()) m.shape.push_back(v);
  for (std::int64_t v : o["indptr"].get_array()) m.indptr.push_back(v);
  for (std::int64_t v : o["indices"].get_array()) m.indices.push_back(v);
  for (double v : o["data"].get_array()) m.data.push_back(v);
  return m;
}

/// TfidfVectorizer's keyword arguments as the fixtures write them, as tfidf_options; an
/// unknown key fails the test.
inline mgpu::tfidf_options read_options(simdjson::dom::object o) {
  mgpu::tfidf_options opts;
  for (auto [key, value] : o) {
    if (key == "sublinear_tf") {
      opts.sublinear_tf = bool(value);
    } else if (key == "binary") {
      opts.binary = bool(value);
    } else if (key == "use_idf") {
      opts.use_idf = bool(value);
    } else if (key == "smooth_idf") {
      opts.smooth_idf = bool(value);
    } else if (key == "lowercase") {
      opts.lowercase = bool(value);
    } else if (key == "max_features") {
      opts.max_features = std::int64_t(value);
    } else if (key == "norm") {
      std::string_view const n = value;
      opts.norm = n == "l1" ? mgpu::tfidf_norm::l1 : n == "l2" ? mgpu::tfidf_norm::l2 : mgpu::tfidf_norm::none;
    } else if (key == "min_df" || key == "max_df") {
      mgpu::df_bound const bound = value.is_int64() ? mgpu::df_bound(std::int64_t(value))
                                                    : mgpu::df_bound(double(value));
      (key == "min_df" ? opts.min_df : opts.max_df) = bound;
    } else if (key == "ngram_range") {
      simdjson::dom::array const r = value;
      opts.ngram_range = {static_cast<int>(std::int64_t(r.at(0))), static_cast<int>(std::int64_t(r.at(1)))};
    } else if (key == "analyzer") {
      std::string_view const a = value;
      opts.analyzer = a == "char" ? mgpu::tfidf_analyzer::char_ : mgpu::tfidf_analyzer::char_wb;
    } else if (key == "stop_words") {
      opts.stop_words = value.is_string() ? mgpu::english_stop_words() : strings(value);
      if (value.is_string()) REQUIRE(std::string_view(value) == "english");
    } else if (key == "token_pattern") {
      opts.token_pattern = std::string(std::string_view(value));
    } else if (key == "strip_accents") {
      std::string_view const s = value;
      opts.strip_accents = s == "ascii" ? mgpu::strip_accents_mode::ascii : mgpu::strip_accents_mode::unicode;
    } else if (key == "vocabulary") {
      opts.vocabulary = strings(value);
    } else {
      FAIL("unknown option in the fixture: " << key);
    }
  }
  return opts;
}

/// `got` has `want`'s shape and structure exactly and its values within `tol`.
template <class T, class I>
void require_equal(mgpu::csr_matrix<mgpu::cpu, T, I> const& got, sparse_rows const& want, double tol) {
  REQUIRE(got.rows() == want.shape[0]);
  REQUIRE(got.cols() == want.shape[1]);
  REQUIRE(std::vector<std::int64_t>(got.row_offsets().begin(), got.row_offsets().end()) == want.indptr);
  REQUIRE(std::vector<std::int64_t>(got.col_indices().begin(), got.col_indices().end()) == want.indices);
  for (std::size_t p = 0; p < want.data.size(); ++p) {
    INFO("entry " << p);
    REQUIRE(static_cast<double>(got.values()[p]) == Approx(want.data[p]).margin(tol).epsilon(0));
  }
}

}  // namespace mgpu_test::sklearn
