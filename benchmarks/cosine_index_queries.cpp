// Single-query cosine searches: a built cosine_index against the one-shot cosine_topk
// (which builds the shards again on every call), on a real corpus's TF-IDF rows.
//
//   python3 benchmarks/data/make_wordnet_corpus.py --output out/wordnet.ndjson
//   cosine_index_queries --input out/wordnet.ndjson [--queries 10000] [--one-shot-queries 200]
//                        [--top-k 10] [--devices cpu] [--repeat 3]
//
// The corpus is vectorised once (TF-IDF, scikit-learn's defaults); the queries are
// corpus rows spread evenly over it (row i * rows / queries), each searched alone as a
// 1-row matrix (its self match included). Timed, in the same process:
//   build      constructing the cosine_index (shards moved to the devices and built)
//   index      --queries single-query index.search(row, k) calls
//   one-shot   --one-shot-queries single-query cosine_topk(policy, row, corpus, k) calls
//              (the first ones of the same queries; a call costs about one build, so
//              fewer are timed and the time per query is what compares)
//   batched    one index.search of all --queries rows at once
// The index's and the one-shot's results are compared (bitwise) for the one-shot
// queries. Each timing is the median of --repeat runs; milliseconds per query and the
// ratio one-shot / index are printed on stdout.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <mgpu/mgpu.hpp>

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string input;
  std::string devices = "cpu";
  std::int64_t queries = 10000;
  std::int64_t one_shot_queries = 200;
  std::int64_t top_k = 10;
  int repeat = 3;
  CLI::App app{"Single-query cosine searches: a built cosine_index against the one-shot cosine_topk"};
  app.add_option("--input", input, "NDJSON corpus (field \"text\")")->required();
  app.add_option("--queries", queries, "single-query index searches")->check(CLI::PositiveNumber);
  app.add_option("--one-shot-queries", one_shot_queries, "single-query one-shot calls (the first queries)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--top-k", top_k, "neighbours per query")->check(CLI::PositiveNumber);
  app.add_option("--devices", devices, "device string");
  app.add_option("--repeat", repeat, "runs of each timing (median)")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  try {
    auto const corpus = mgpu::read_corpus(input);
    mgpu::tfidf_vectorizer<float, std::int32_t> vectorizer;
    auto const tfidf = vectorizer.fit_transform(corpus.texts);
    auto const rows = static_cast<std::int64_t>(tfidf.rows());
    queries = std::min(queries, rows);
    one_shot_queries = std::min(one_shot_queries, queries);
    std::vector<std::int32_t> picked(static_cast<std::size_t>(queries));
    for (std::int64_t i = 0; i < queries; ++i) picked[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i * rows / queries);
    auto const one_row = [&](std::int64_t i) {
      auto const r = picked[static_cast<std::size_t>(i)];
      return tfidf.view().row_block(r, r + 1);
    };
    // The batched form: the picked rows as one matrix.
    std::vector<std::int32_t> offsets{0}, columns;
    std::vector<float> values;
    for (auto r : picked) {
      auto const row = tfidf.view().row_block(r, r + 1);
      columns.insert(columns.end(), row.col_indices + row.row_offsets[0], row.col_indices + row.row_offsets[1]);
      values.insert(values.end(), row.values + row.row_offsets[0], row.values + row.row_offsets[1]);
      offsets.push_back(static_cast<std::int32_t>(columns.size()));
    }
    mgpu::csr_matrix<mgpu::cpu, float, std::int32_t> const batch(queries, tfidf.cols(), offsets, columns, values);
    std::fprintf(stderr, "corpus: %lld x %lld, nnz %lld; %lld queries, %lld one-shot, top-%lld on %s\n",
                 static_cast<long long>(rows), static_cast<long long>(tfidf.cols()),
                 static_cast<long long>(tfidf.nnz()), static_cast<long long>(queries),
                 static_cast<long long>(one_shot_queries), static_cast<long long>(top_k), devices.c_str());

    return mgpu::with_policy(devices, [&](auto const& policy) {
      using kind = typename std::decay_t<decltype(policy)>::kind;
      std::vector<double> build, index_time, one_shot, batched;
      std::int64_t mismatches = 0;
      std::int64_t pairs = 0;
      for (int run = 0; run < repeat; ++run) {
        auto start = std::chrono::steady_clock::now();
        mgpu::cosine_index<kind, float, std::int32_t> const index(policy, tfidf);
        build.push_back(seconds_since(start));

        std::vector<mgpu::topk_result<float>> first(static_cast<std::size_t>(one_shot_queries));
        start = std::chrono::steady_clock::now();
        for (std::int64_t i = 0; i < queries; ++i) {
          auto top = index.search(one_row(i), top_k);
          pairs += top.size();
          if (i < one_shot_queries) first[static_cast<std::size_t>(i)] = std::move(top);
        }
        index_time.push_back(seconds_since(start));

        start = std::chrono::steady_clock::now();
        for (std::int64_t i = 0; i < one_shot_queries; ++i) {
          auto const top = mgpu::cosine_topk(policy, one_row(i), tfidf.view(), top_k);
          auto const& mine = first[static_cast<std::size_t>(i)];
          if (top.ids != mine.ids || top.scores != mine.scores) ++mismatches;
        }
        if (one_shot_queries > 0) one_shot.push_back(seconds_since(start));

        start = std::chrono::steady_clock::now();
        auto const all = index.search(batch, top_k);
        batched.push_back(seconds_since(start));
        std::fprintf(stderr,
                     "run %d: build %.3f s, %lld index searches %.3f s, %lld one-shot calls %.3f s, batched %.3f s\n",
                     run + 1, build.back(), static_cast<long long>(queries), index_time.back(),
                     static_cast<long long>(one_shot_queries), one_shot.empty() ? 0.0 : one_shot.back(),
                     batched.back());
        (void)all;
      }
      double const per_index = median(index_time) / static_cast<double>(queries) * 1e3;
      std::printf("build_s %.4f\n", median(build));
      std::printf("index_ms_per_query %.4f (%lld queries, %.3f s)\n", per_index, static_cast<long long>(queries),
                  median(index_time));
      if (!one_shot.empty()) {
        double const per_one_shot = median(one_shot) / static_cast<double>(one_shot_queries) * 1e3;
        std::printf("one_shot_ms_per_query %.4f (%lld queries, %.3f s)\n", per_one_shot,
                    static_cast<long long>(one_shot_queries), median(one_shot));
        std::printf("one_shot_over_index %.1f\n", per_one_shot / per_index);
      }
      std::printf("batched_ms_per_query %.4f (%lld queries in one search, %.3f s)\n",
                  median(batched) / static_cast<double>(queries) * 1e3, static_cast<long long>(queries),
                  median(batched));
      std::printf("mismatches %lld\n", static_cast<long long>(mismatches));
      return mismatches == 0 ? 0 : 1;
    });
  } catch (std::exception const& e) {
    std::fprintf(stderr, "cosine_index_queries: error: %s\n", e.what());
    return 1;
  }
}
