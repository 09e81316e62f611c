// What each translation unit of test_simd_link computes: the same calls, compiled once
// with -march=x86-64 (tu_baseline.cpp) and once with -march=native (tu_native.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace simd_link {

struct tu_report {
  std::string compiled_for;  // the widest x86 extension the TU's flags enable
  std::string active;        // simd::name(simd::active()) seen from the TU
  // TfidfVectorizer() defaults (float values) on the corpus.
  std::vector<std::string> vocabulary;
  std::vector<std::int64_t> row_offsets;
  std::vector<std::int32_t> col_indices;
  std::vector<float> values;
  // The default word tokenizer's tokens of every document, lowercased, for each
  // instruction-set level this CPU has (lowest first), one list per level.
  std::vector<std::vector<std::string>> tokens_per_level;
};

tu_report run_baseline_tu(std::vector<std::string> const& corpus);
tu_report run_native_tu(std::vector<std::string> const& corpus);

}  // namespace simd_link
