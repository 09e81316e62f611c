// The body of tu_baseline.cpp and tu_native.cpp (included once by each, with
// SIMD_LINK_FUNCTION naming the function to define): identical source, different -march.
#include <string>
#include <vector>

#include "mgpu/algorithms/tfidf.hpp"
#include "mgpu/backend/cpu/simd/isa.hpp"
#include "mgpu/detail/tokenizer.hpp"
#include "simd_link_tu.hpp"

namespace simd_link {

tu_report SIMD_LINK_FUNCTION(std::vector<std::string> const& corpus) {
  namespace simd = mgpu::backend::cpu::simd;
  tu_report r;
#if defined(__AVX512BW__)
  r.compiled_for = "avx512bw";
#elif defined(__AVX2__)
  r.compiled_for = "avx2";
#else
  r.compiled_for = "x86-64";
#endif
  r.active = std::string(simd::name(simd::active()));

  mgpu::tfidf_vectorizer<float> vectorizer;
  auto const x = vectorizer.fit_transform(corpus);
  for (auto const term : vectorizer.vocabulary()) r.vocabulary.emplace_back(term);
  for (auto const o : x.row_offsets()) r.row_offsets.push_back(static_cast<std::int64_t>(o));
  for (auto const c : x.col_indices()) r.col_indices.push_back(static_cast<std::int32_t>(c));
  r.values.assign(x.values().begin(), x.values().end());

  for (auto const level : {simd::isa::scalar, simd::isa::avx2, simd::isa::avx512, simd::isa::avx512vbmi2}) {
    if (level > simd::best_supported()) break;
    mgpu::detail::word_tokenizer t(true, level);
    std::vector<std::string> tokens;
    for (std::size_t d = 0; d < corpus.size(); ++d) {
      t.tokenize(corpus[d], d);
      for (std::size_t i = 0; i < t.size(); ++i) tokens.emplace_back(t.token(i));
      tokens.emplace_back("|");  // document boundary
    }
    r.tokens_per_level.push_back(std::move(tokens));
  }
  return r;
}

}  // namespace simd_link
