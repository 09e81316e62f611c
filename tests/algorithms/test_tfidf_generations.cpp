// TF-IDF of a corpus counted batch by batch, its entries kept in sealed generations and
// assembled a generation at a time (backend/cpu/text/counter.hpp, assemble.hpp): the
// result must not depend on where batches and generations end.
//
// Expected values: the hand-counted matrix of a seven-document fixture, and otherwise
// the vectorizer's result on the whole corpus in memory (one batch, one generation),
// which test_tfidf.cpp checks against scikit-learn.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <omp.h>

#include "mgpu/algorithms/tfidf.hpp"
#include "mgpu/io/pipeline.hpp"
#include "../test_support.hpp"

namespace {

using mgpu::tfidf_options;
using mgpu::tfidf_vectorizer;
using matrix = mgpu::csr_matrix<mgpu::cpu, float, std::int32_t>;
using array = mgpu::detail::growable_array<mgpu::detail::term_count>;

// Sets the OpenMP threads of the calling thread for a scope.
class omp_threads {
 public:
  explicit omp_threads(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~omp_threads() { omp_set_num_threads(saved_); }
  omp_threads(omp_threads const&) = delete;
  omp_threads& operator=(omp_threads const&) = delete;

 private:
  int saved_;
};

// Counts `docs` through the detail stages, `batch` documents at a time, sealing a
// generation whenever `seal` bytes of entries are held (0: after every batch). `fitted`: a
// vocabulary to look terms up in (a fixed vocabulary's fit), else one is built.
struct staged_count {
  std::vector<std::string> vocabulary;
  std::vector<std::uint64_t> df;
  std::size_t generations = 0;  // sealed before assembling
  std::size_t generations_after = 0;
  mgpu::detail::count_matrix<std::int32_t, float> m;
};

staged_count count_in_stages(std::vector<std::string> const& docs, std::size_t batch, std::size_t seal,
                             tfidf_options const& options, mgpu::detail::row_values what,
                             std::span<double const> idf = {},
                             mgpu::detail::fitted_vocabulary const* fitted = nullptr) {
  mgpu::detail::corpus_counter counter(options, true, fitted, fitted != nullptr, seal);
  std::vector<std::string_view> views;
  for (std::size_t first = 0; first < docs.size(); first += batch) {
    views.assign(docs.begin() + static_cast<std::ptrdiff_t>(first),
                 docs.begin() + static_cast<std::ptrdiff_t>(std::min(docs.size(), first + batch)));
    counter.add_batch(views);
  }
  staged_count out;
  mgpu::detail::vocabulary_columns columns;
  mgpu::detail::fitted_vocabulary built;
  mgpu::detail::fitted_vocabulary const* vocabulary = fitted;
  if (fitted == nullptr) {
    built = mgpu::detail::build_vocabulary(counter, columns);
    vocabulary = &built;
  } else {
    out.df.resize(fitted->terms.size());
    for (std::size_t c = 0; c < out.df.size(); ++c) out.df[c] = counter.document_frequency(c);
  }
  for (auto const term : vocabulary->terms) out.vocabulary.emplace_back(term);
  if (fitted == nullptr) out.df.assign(built.df.begin(), built.df.end());
  counter.seal_rows();
  out.generations = counter.generations();
  out.m = mgpu::detail::assemble<std::int32_t, float>(counter, fitted == nullptr ? &columns : nullptr, what, idf);
  out.generations_after = counter.generations();
  return out;
}

template <class A, class B>
bool same(A const& a, B const& b) {
  return std::ranges::equal(a, b);
}

// Bitwise equality of an assembled matrix and a vectorizer's.
void require_identical(mgpu::detail::count_matrix<std::int32_t, float> const& a, matrix const& b) {
  REQUIRE(a.rows == b.rows());
  REQUIRE(a.cols == b.cols());
  REQUIRE(same(a.row_offsets.span(), b.row_offsets()));
  REQUIRE(same(a.col_indices.span(), b.col_indices()));
  REQUIRE(same(a.counts.span(), b.values()));
}

std::vector<std::string> synthetic_corpus(std::size_t n) {
  std::vector<std::string> docs;
  std::uint64_t state = 987654321;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  for (std::size_t i = 0; i < n; ++i) {
    std::string d;
    auto const words = next() % 40;
    for (std::uint64_t w = 0; w < words; ++w) d += "t" + std::to_string(next() % (1 + next() % 900)) + " ";
    docs.push_back(std::move(d));
  }
  return docs;
}

}  // namespace

TEST_CASE("growable_array keeps its elements through growth, shrink_to_fit and moves", "[tfidf]") {
  // 300,000 entries (2.4 MB) are a mapping of their own; 100 stay on the heap.
  for (std::size_t const n : {std::size_t{0}, std::size_t{100}, std::size_t{300000}}) {
    INFO("n = " << n);
    array a;
    a.reserve(16);
    for (std::size_t i = 0; i < n; ++i) *a.extend(1) = {static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(3 * i)};
    a.reserve(2 * n + 1000000);  // grows past the large-allocation size
    REQUIRE(a.size() == n);
    a.shrink_to_fit();
    REQUIRE(a.capacity() == n);
    array b(std::move(a));
    REQUIRE(a.size() == 0);
    REQUIRE(b.size() == n);
    array c;
    c.resize(7);
    c = std::move(b);
    REQUIRE(c.size() == n);
    bool all = true;
    for (std::size_t i = 0; i < n; ++i) all = all && c[i].term == i && c[i].count == 3 * i;
    CHECK(all);
  }
  array large;  // a mapping shrunk to a heap block
  large.resize(200000);
  for (std::size_t i = 0; i < 200000; ++i) large[i] = {static_cast<std::uint32_t>(i), 1u};
  large.resize(10);
  large.shrink_to_fit();
  REQUIRE(large.capacity() == 10);
  for (std::uint32_t i = 0; i < 10; ++i) CHECK(large[i].term == i);
}

TEST_CASE("counts streamed in batches of every size, a generation per batch, equal the hand-counted matrix",
          "[tfidf]") {
  // Tokens: words of two or more word characters, lowercased.
  std::vector<std::string> const docs{
      "Apple banana apple",             // apple 2, banana 1
      "",                               // nothing
      "cherry banana banana, banana!",  // banana 3, cherry 1
      "a apple x cherry date",          // apple, cherry, date (a and x are too short)
      "date DATE date date",            // date 4
      "zz",                             // zz
      "banana zz apple",                // apple, banana, zz
  };
  std::vector<std::string> const vocabulary{"apple", "banana", "cherry", "date", "zz"};
  std::vector<std::uint64_t> const df{3, 3, 2, 2, 2};
  std::vector<std::int32_t> const offsets{0, 2, 2, 4, 7, 8, 9, 12};
  std::vector<std::int32_t> const columns{0, 1, 1, 2, 0, 2, 3, 3, 4, 0, 1, 4};
  std::vector<float> const counts{2, 1, 3, 1, 1, 1, 1, 4, 1, 1, 1, 1};
  for (int const threads : {1, 2, 3}) {
    omp_threads const scope(threads);
    for (std::size_t batch = 1; batch <= docs.size(); ++batch) {
      for (std::size_t const seal : {std::size_t{0}, std::size_t{1}, std::size_t{9}, mgpu::detail::generation_bytes}) {
        INFO(threads << " threads, batches of " << batch << ", sealed at " << seal << " bytes");
        auto const r = count_in_stages(docs, batch, seal, {}, mgpu::detail::row_values::counts);
        std::size_t const batches = (docs.size() + batch - 1) / batch;
        // Sealed after every batch (seal 0): one generation per batch.
        if (seal == 0) CHECK(r.generations == batches);
        if (seal == mgpu::detail::generation_bytes) CHECK(r.generations == 1);
        CHECK(r.generations_after == 0);  // assembling freed them
        CHECK(r.vocabulary == vocabulary);
        CHECK(r.df == df);
        REQUIRE(r.m.rows == 7);
        REQUIRE(r.m.cols == 5);
        CHECK(same(r.m.row_offsets.span(), offsets));
        CHECK(same(r.m.col_indices.span(), columns));
        CHECK(same(r.m.counts.span(), counts));
      }
    }
  }
}

TEST_CASE("tf-idf assembled a generation at a time equals the in-memory fit_transform bitwise", "[tfidf]") {
  auto const docs = synthetic_corpus(400);
  std::vector<tfidf_options> variants(5);
  variants[1].sublinear_tf = true;
  variants[1].norm = mgpu::tfidf_norm::l1;
  variants[2].min_df = std::int64_t{3};  // pruned terms dropped from the kept entries
  variants[2].max_df = 0.1;
  variants[3].max_features = 50;
  variants[4].binary = true;
  variants[4].ngram_range = {1, 2};
  for (std::size_t k = 0; k < variants.size(); ++k) {
    auto const& options = variants[k];
    tfidf_vectorizer<float> whole(options);
    auto const expected = whole.fit_transform(docs);
    auto const expected_counts = tfidf_vectorizer<float>(options).count(docs);
    for (int const threads : {1, 2}) {
      omp_threads const scope(threads);
      for (std::size_t const batch : {std::size_t{1}, std::size_t{3}, std::size_t{64}, std::size_t{400}}) {
        for (std::size_t const seal : {std::size_t{0}, std::size_t{500}, mgpu::detail::generation_bytes}) {
          INFO("options " << k << ", " << threads << " threads, batches of " << batch << ", sealed at " << seal);
          auto const r = count_in_stages(docs, batch, seal, options, mgpu::detail::row_values::weighted, whole.idf());
          REQUIRE(r.vocabulary == std::vector<std::string>(whole.vocabulary().begin(), whole.vocabulary().end()));
          REQUIRE(same(r.df, whole.document_frequency()));
          require_identical(r.m, expected);
          auto const c = count_in_stages(docs, batch, seal, options, mgpu::detail::row_values::counts);
          require_identical(c.m, expected_counts);
        }
      }
    }
  }
}

TEST_CASE("terms looked up in a given vocabulary, assembled a generation at a time, equal transform bitwise",
          "[tfidf]") {
  auto const docs = synthetic_corpus(300);
  auto const fit_docs = synthetic_corpus(120);  // a smaller vocabulary: some terms are unknown
  tfidf_vectorizer<float> fitted;
  fitted.fit(fit_docs);
  auto const expected = fitted.transform(docs);
  std::vector<std::string> terms(fitted.vocabulary().begin(), fitted.vocabulary().end());
  auto const lookup = mgpu::detail::lookup_vocabulary(terms);
  for (std::size_t const batch : {std::size_t{1}, std::size_t{5}, std::size_t{300}}) {
    for (std::size_t const seal : {std::size_t{0}, std::size_t{200}}) {
      INFO("batches of " << batch << ", sealed at " << seal);
      auto const r =
          count_in_stages(docs, batch, seal, {}, mgpu::detail::row_values::weighted, fitted.idf(), &lookup);
      CHECK(r.vocabulary == terms);
      require_identical(r.m, expected);
    }
  }
}

TEST_CASE("a batch source of one document per batch gives the in-memory result", "[tfidf]") {
  auto const docs = synthetic_corpus(500);
  for (std::size_t const batch : {std::size_t{1}, std::size_t{2}, std::size_t{37}}) {
    INFO("batches of " << batch);
    auto source = [&] {
      return mgpu::tfidf_batch_source([&docs, batch, next = std::size_t{0}](std::vector<std::string>& out) mutable {
        for (std::size_t i = 0; i < batch && next < docs.size(); ++i) out.push_back(docs[next++]);
        return next < docs.size();
      });
    };
    tfidf_vectorizer<float> streamed;
    tfidf_vectorizer<float> whole;
    auto const a = streamed.fit_transform(source());
    auto const b = whole.fit_transform(docs);
    REQUIRE(streamed.vocabulary() == whole.vocabulary());
    REQUIRE(same(a.row_offsets(), b.row_offsets()));
    REQUIRE(same(a.col_indices(), b.col_indices()));
    REQUIRE(same(a.values(), b.values()));
    auto const c = tfidf_vectorizer<float>().count(source());
    auto const d = tfidf_vectorizer<float>().count(docs);
    REQUIRE(same(c.col_indices(), d.col_indices()));
    REQUIRE(same(c.values(), d.values()));
    auto const t = whole.transform(source());
    REQUIRE(same(t.values(), b.values()));
  }
}

TEST_CASE("packed entries round-trip at every width", "[tfidf]") {
  std::vector<std::uint32_t> const values{0, 1, 255, 256, 65535, 65536, 16777215, 16777216, 4294967295u, 77};
  for (unsigned width = 1; width <= 4; ++width) {
    INFO("width " << width);
    std::vector<std::uint32_t> fits;
    for (auto const v : values) {
      if (mgpu::detail::packed_bytes(v) <= width) fits.push_back(v);
    }
    std::vector<unsigned char> bytes(fits.size() * width + 1, 0xAB);  // + 1: width 3 writes a byte past
    mgpu::detail::pack_values(bytes.data(), fits.data(), fits.size(), width);
    for (std::size_t i = 0; i < fits.size(); ++i) CHECK(mgpu::detail::unpack_value(bytes.data(), i, width) == fits[i]);
  }
  CHECK(mgpu::detail::packed_bytes(255) == 1);
  CHECK(mgpu::detail::packed_bytes(256) == 2);
  CHECK(mgpu::detail::packed_bytes(65536) == 3);
  CHECK(mgpu::detail::packed_bytes(16777216) == 4);
}

TEST_CASE("counts of 256 and 65,536 and term ids beyond 2^16 survive packing", "[tfidf]") {
  // Document 0: "aa" 70,000 times and "bb" 300 times (counts of 3 and 2 bytes); then
  // 70,000 documents of one distinct term each, so that ids need 3 bytes; last, bb and u7
  // 300 times each (a largest count of 2 bytes).
  std::vector<std::string> docs;
  std::string first;
  for (int i = 0; i < 70000; ++i) first += "aa ";
  for (int i = 0; i < 300; ++i) first += "bb ";
  docs.push_back(first);
  for (int i = 0; i < 70000; ++i) docs.push_back("u" + std::to_string(i) + " bb");
  std::string last;  // a largest count of 2 bytes
  for (int i = 0; i < 300; ++i) last += "bb u7 ";
  docs.push_back(last);
  for (std::size_t const seal : {std::size_t{0}, std::size_t{1} << 16, mgpu::detail::generation_bytes}) {
    INFO("sealed at " << seal);
    auto const r = count_in_stages(docs, 4096, seal, {}, mgpu::detail::row_values::counts);
    REQUIRE(r.vocabulary.size() == 70002);
    REQUIRE(r.vocabulary[0] == "aa");
    REQUIRE(r.vocabulary[1] == "bb");
    REQUIRE(r.m.row_offsets[1] == 2);
    CHECK(r.m.col_indices[0] == 0);
    CHECK(r.m.counts[0] == 70000.0f);
    CHECK(r.m.col_indices[1] == 1);
    CHECK(r.m.counts[1] == 300.0f);
    // Document 1 + i holds bb and u<i> once each.
    bool all = true;
    for (std::size_t d = 1; d + 1 < docs.size(); ++d) {
      auto const p = static_cast<std::size_t>(r.m.row_offsets[d]);
      all = all && r.m.row_offsets[d + 1] - r.m.row_offsets[d] == 2 && r.m.col_indices[p] == 1 &&
            r.m.counts[p] == 1.0f && r.m.counts[p + 1] == 1.0f &&
            r.vocabulary[static_cast<std::size_t>(r.m.col_indices[p + 1])] == "u" + std::to_string(d - 1);
    }
    CHECK(all);
    auto const p = static_cast<std::size_t>(r.m.row_offsets[docs.size() - 1]);
    REQUIRE(r.m.row_offsets[docs.size()] - r.m.row_offsets[docs.size() - 1] == 2);
    CHECK(r.m.col_indices[p] == 1);
    CHECK(r.m.counts[p] == 300.0f);
    CHECK(r.vocabulary[static_cast<std::size_t>(r.m.col_indices[p + 1])] == "u7");
    CHECK(r.m.counts[p + 1] == 300.0f);
    tfidf_vectorizer<float> whole;
    auto const expected = whole.fit_transform(docs);
    auto const w = count_in_stages(docs, 4096, seal, {}, mgpu::detail::row_values::weighted, whole.idf());
    require_identical(w.m, expected);
  }
}

TEST_CASE("a corpus file streamed through the prefetcher in small batches gives the in-memory result",
          "[tfidf][io]") {
  auto const docs = synthetic_corpus(300);
  mgpu_test::temp_dir dir;
  auto const path = dir / "corpus.ndjson";
  {
    std::ofstream out(path);
    for (std::size_t i = 0; i < docs.size(); ++i) out << R"({"id": "d)" << i << R"(", "text": ")" << docs[i] << "\"}\n";
  }
  tfidf_vectorizer<float> whole;
  auto const expected = whole.fit_transform(docs);
  for (std::size_t const depth : {std::size_t{0}, std::size_t{2}}) {
    for (std::size_t const bytes : {std::size_t{1}, std::size_t{100}, std::size_t{1} << 20}) {
      INFO("depth " << depth << ", batches of " << bytes << " bytes");
      mgpu::corpus_options options;
      options.batch_bytes = bytes;
      mgpu::corpus_prefetcher reader(path, options, depth);
      std::vector<std::string> ids;
      mgpu::corpus_text_range texts(reader, &ids);
      tfidf_vectorizer<float> streamed;
      auto const a = streamed.fit_transform(texts);
      REQUIRE(ids.size() == docs.size());
      CHECK(ids.back() == "d299");
      REQUIRE(streamed.vocabulary() == whole.vocabulary());
      REQUIRE(same(a.row_offsets(), expected.row_offsets()));
      REQUIRE(same(a.col_indices(), expected.col_indices()));
      REQUIRE(same(a.values(), expected.values()));
      // At the end of the stream the batch's buffers are given back.
      mgpu::corpus_text_batch batch;
      batch.text_ends.reserve(1000);
      CHECK_FALSE(reader.next(batch));
      CHECK(batch.text_ends.capacity() == 0);
      CHECK(batch.id_ends.capacity() == 0);
    }
  }
}
