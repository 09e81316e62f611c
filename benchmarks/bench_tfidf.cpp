// TF-IDF throughput: tokenising + counting (bytes of text per second), and weighting +
// normalising a count matrix, on a synthetic corpus with a Zipf-like word distribution
// (mostly ASCII, a few accented and Greek words, mixed case and punctuation).
//
//   bench_tfidf --benchmark_counters_tabular=true
// Compare with scikit-learn: benchmarks/ peer scripts, TfidfVectorizer().fit_transform.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "mgpu/algorithms/tfidf.hpp"
#include "mgpu/detail/tokenizer.hpp"

namespace {

std::vector<std::string> make_corpus(std::size_t documents, std::size_t words_per_document) {
  std::vector<std::string> lexicon;
  std::uint64_t state = 42;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  for (int i = 0; i < 50000; ++i) {
    std::string w;
    auto const len = 2 + next() % 9;
    for (std::uint64_t c = 0; c < len; ++c) w += static_cast<char>('a' + next() % 26);
    if (i % 10 == 0) w[0] = static_cast<char>(w[0] - 32);
    if (i % 97 == 0) w += "é";
    if (i % 389 == 0) w = "Σοφός" + w;
    lexicon.push_back(std::move(w));
  }
  std::vector<std::string> docs(documents);
  for (auto& d : docs) {
    for (std::size_t k = 0; k < words_per_document; ++k) {
      // Zipf-like: rank ~ exp(uniform * ln(N))
      double const u = static_cast<double>(next() % 1000000) / 1e6;
      auto const rank = static_cast<std::size_t>(std::exp(u * std::log(50000.0))) - 1;
      d += lexicon[rank];
      d += (next() % 13 == 0) ? ", " : " ";
    }
  }
  return docs;
}

std::vector<std::string> const& corpus() {
  static auto const docs = make_corpus(20000, 200);
  return docs;
}

// Called before each timed loop, so that building the corpus is never timed.
std::int64_t corpus_bytes() {
  std::int64_t bytes = 0;
  for (auto const& d : corpus()) bytes += static_cast<std::int64_t>(d.size());
  return bytes;
}

void bm_tokenize_one_thread(benchmark::State& state) {
  auto const bytes = corpus_bytes();
  mgpu::detail::word_tokenizer tokens(true);
  for (auto _ : state) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < corpus().size(); ++i) {
      tokens.tokenize(corpus()[i], i);
      n += tokens.size();
    }
    benchmark::DoNotOptimize(n);
  }
  state.SetBytesProcessed(state.iterations() * bytes);
}
BENCHMARK(bm_tokenize_one_thread)->Unit(benchmark::kMillisecond)->UseRealTime();

void bm_tfidf_count(benchmark::State& state) {
  auto const bytes = corpus_bytes();
  for (auto _ : state) {
    mgpu::tfidf_vectorizer<float> v;
    auto counts = v.count(corpus());
    benchmark::DoNotOptimize(counts.values().data());
  }
  state.SetBytesProcessed(state.iterations() * bytes);
}
BENCHMARK(bm_tfidf_count)->Unit(benchmark::kMillisecond)->UseRealTime();

void bm_tfidf_fit_transform(benchmark::State& state) {
  auto const bytes = corpus_bytes();
  for (auto _ : state) {
    mgpu::tfidf_vectorizer<float> v;
    auto x = v.fit_transform(corpus());
    benchmark::DoNotOptimize(x.values().data());
  }
  state.SetBytesProcessed(state.iterations() * bytes);
}
BENCHMARK(bm_tfidf_fit_transform)->Unit(benchmark::kMillisecond)->UseRealTime();

void bm_tfidf_weight(benchmark::State& state) {
  mgpu::tfidf_vectorizer<float> v;
  auto const counts = v.count(corpus());
  for (auto _ : state) {
    auto x = v.weight(counts);
    benchmark::DoNotOptimize(x.values().data());
  }
  state.counters["nnz"] = static_cast<double>(counts.nnz());
  state.SetItemsProcessed(state.iterations() * counts.nnz());
}
BENCHMARK(bm_tfidf_weight)->Unit(benchmark::kMillisecond)->UseRealTime();

void bm_tfidf_weight_policy(benchmark::State& state) {
  mgpu::tfidf_vectorizer<float> v;
  auto const counts = v.count(corpus());
  mgpu::execution_policy<mgpu::cpu> const policy("cpu:" + std::to_string(state.range(0)));
  for (auto _ : state) {
    auto x = mgpu::tfidf_weight(policy, counts, v.idf(), v.options());
    benchmark::DoNotOptimize(x.values().data());
  }
  state.SetItemsProcessed(state.iterations() * counts.nnz());
}
BENCHMARK(bm_tfidf_weight_policy)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
