// Two translation units built with different -march flags (tu_baseline.cpp: x86-64,
// tu_native.cpp: native) in one program, each running TF-IDF (tfidf_vectorizer, the
// defaults) and the word tokenizer on the same corpus. mgpu's kernels are compiled per
// instruction set in target regions and chosen at run time (mgpu/backend/cpu/simd/
// isa.hpp), so no inline function has two different definitions in this program and
// both units must give the same bytes: the same vocabulary, the same CSR arrays with
// bitwise-equal values, and the same tokens on every instruction-set level this CPU has.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "simd_link_tu.hpp"

namespace {

// Deterministic documents: ASCII words of every case, digits, punctuation, accented and
// CJK words, lengths from empty to past several 64-byte blocks (the tokenizer's unit),
// and rows longer and shorter than 16 terms (the row sort's AVX-512 branch).
std::vector<std::string> corpus() {
  std::vector<std::string> const words{
      "the",  "Kernel", "MEMORY", "page", "fault", "x86_64", "42",   "a",     "I",   "naïve", "café",
      "Ärger", "中文",   "的",     "ΟΔΟΣ", "İstanbul", "dma_buf", "v2", "—",     "(",   ")",     ",",
      "Linux", "driver", "module", "irq",  "struct", "void",   "NULL", "errno", "CPU", "cpu"};
  std::vector<std::string> docs{"Hello, WORLD! naïve café 中文 x_y a 42", ""};
  std::uint32_t state = 12345;
  auto next = [&] {
    state = state * 1664525u + 1013904223u;
    return state >> 8;
  };
  for (int d = 0; d < 60; ++d) {
    std::string doc;
    auto const n = next() % 120;
    for (std::uint32_t i = 0; i < n; ++i) {
      doc += words[next() % words.size()];
      doc += next() % 5 == 0 ? "\n" : " ";
    }
    docs.push_back(doc);
  }
  return docs;
}

}  // namespace

TEST_CASE("units built for x86-64 and for this CPU give the same TF-IDF and tokens", "[simd]") {
  auto const docs = corpus();
  auto const base = simd_link::run_baseline_tu(docs);
  auto const native = simd_link::run_native_tu(docs);
  INFO("baseline unit compiled for " << base.compiled_for << ", native unit for " << native.compiled_for
                                     << "; kernels run at " << base.active);
  // The flags did reach the units: the baseline one has no AVX2.
  CHECK(base.compiled_for == "x86-64");
  if (native.compiled_for == base.compiled_for) {
    WARN("skipped in part: this CPU has no AVX2, both units were compiled alike");
  }
  // Both see the one process-wide level.
  CHECK(base.active == native.active);

  // By hand: the first document's tokens (sklearn's default analyzer).
  REQUIRE(!base.tokens_per_level.empty());
  std::vector<std::string> const first(base.tokens_per_level[0].begin(), base.tokens_per_level[0].begin() + 8);
  CHECK(first == std::vector<std::string>{"hello", "world", "naïve", "café", "中文", "x_y", "42", "|"});

  REQUIRE(base.vocabulary == native.vocabulary);
  REQUIRE(base.row_offsets == native.row_offsets);
  REQUIRE(base.col_indices == native.col_indices);
  REQUIRE(base.values == native.values);  // bitwise: no tolerance
  REQUIRE(base.tokens_per_level.size() == native.tokens_per_level.size());
  for (std::size_t level = 0; level < base.tokens_per_level.size(); ++level) {
    INFO("level " << level);
    CHECK(base.tokens_per_level[level] == base.tokens_per_level[0]);
    CHECK(native.tokens_per_level[level] == base.tokens_per_level[0]);
  }

  // Independent sanity of the matrix: one row per document, columns increasing within
  // a row, unit L2 norm for every non-empty row.
  REQUIRE(base.row_offsets.size() == docs.size() + 1);
  for (std::size_t r = 0; r + 1 < base.row_offsets.size(); ++r) {
    double sum = 0;
    for (auto p = base.row_offsets[r]; p < base.row_offsets[r + 1]; ++p) {
      auto const i = static_cast<std::size_t>(p);
      if (p > base.row_offsets[r]) CHECK(base.col_indices[i - 1] < base.col_indices[i]);
      sum += double{base.values[i]} * double{base.values[i]};
    }
    if (base.row_offsets[r + 1] > base.row_offsets[r]) CHECK(std::sqrt(sum) == Approx(1.0).epsilon(1e-5));
  }
}
