// benchmarks/zipf_corpus.hpp — the synthetic text-like corpus of the cosine benchmarks
// (bench_cosine, bench_overlap): `rows` documents of `terms_per_row` terms drawn from a
// Zipf(1) vocabulary of `vocabulary` terms (a term drawn twice in a row is summed by
// csr_from_coo), values uniform in [0.1, 1); seed 42, so every program builds the same.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include <mgpu/sparse/coo.hpp>
#include <mgpu/sparse/csr_matrix.hpp>

namespace mgpu_bench {

inline mgpu::csr_matrix<mgpu::cpu, float, std::int32_t> zipf_corpus(std::int32_t rows, std::int32_t vocabulary,
                                                                   int terms_per_row) {
  std::mt19937 rng(42);
  std::vector<double> weights(static_cast<std::size_t>(vocabulary));
  for (std::size_t t = 0; t < weights.size(); ++t) weights[t] = 1.0 / static_cast<double>(t + 1);
  std::discrete_distribution<std::int32_t> term(weights.begin(), weights.end());
  std::uniform_real_distribution<float> value(0.1f, 1.0f);
  std::vector<std::int32_t> r, c;
  std::vector<float> v;
  for (std::int32_t i = 0; i < rows; ++i) {
    for (int j = 0; j < terms_per_row; ++j) {
      r.push_back(i);
      c.push_back(term(rng));
      v.push_back(value(rng));
    }
  }
  return mgpu::csr_from_coo<float, std::int32_t>(rows, vocabulary, r, c, v);
}

}  // namespace mgpu_bench
