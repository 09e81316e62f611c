// TF-IDF fit_transform on a real corpus, timed the way benchmarks/tfidf_vs_sklearn.py
// times scikit-learn: the corpus is read once, then `fit_transform` runs --repeat times
// in the same process and the median is reported (the first, cold run — fresh pages,
// an empty allocator — is printed too). Optionally writes the last run's matrix and
// vocabulary for the side-by-side check.
//
//   tfidf_corpus --input out/linux-doc.ndjson [--repeat 5] [--devices cpu]
//                [--save-tfidf X.mtx] [--save-vocabulary V.txt] [analyzer flags]
//
// The analyzer flags are scikit-learn's TfidfVectorizer parameters
// (examples/document_similarity/analyzer_flags.hpp), e.g. --analyzer char_wb
// --ngram-range 2,5.
//
// Prints one line per run to stderr and, last, `median <seconds>` on stdout.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <mgpu/mgpu.hpp>

#include "../examples/document_similarity/analyzer_flags.hpp"

int main(int argc, char** argv) {
  std::string input;
  std::string devices = "cpu";
  std::string save_tfidf;
  std::string save_vocabulary;
  int repeat = 5;
  CLI::App app{"Time TF-IDF fit_transform on an NDJSON corpus (field \"text\")"};
  app.add_option("--input", input, "NDJSON corpus")->required();
  app.add_option("--repeat", repeat, "runs of fit_transform")->check(CLI::PositiveNumber);
  app.add_option("--devices", devices, "device string of the weighting policy");
  app.add_option("--save-tfidf", save_tfidf, "write the last run's matrix (Matrix Market)");
  app.add_option("--save-vocabulary", save_vocabulary, "write the last run's vocabulary, one term per line");
  analyzer_flags analyzer;
  add_analyzer_flags(app, analyzer);
  CLI11_PARSE(app, argc, argv);

  try {
    mgpu::tfidf_options options;
    apply_analyzer_flags(analyzer, options);
    auto const corpus = mgpu::read_corpus(input);
    std::size_t bytes = 0;
    for (auto const& t : corpus.texts) bytes += t.size();
    return mgpu::with_policy(devices, [&](auto const& policy) {
      std::vector<double> seconds;
      for (int r = 0; r < repeat; ++r) {
        mgpu::tfidf_vectorizer<float, std::int32_t> vectorizer(options);
        auto const start = std::chrono::steady_clock::now();
        auto const tfidf = vectorizer.fit_transform(policy, corpus.texts);
        seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        std::fprintf(stderr, "run %d: %.4f s, %.1f MB/s, %lld x %lld, nnz %lld%s\n", r + 1, seconds.back(),
                     static_cast<double>(bytes) / 1e6 / seconds.back(), static_cast<long long>(tfidf.rows()),
                     static_cast<long long>(tfidf.cols()), static_cast<long long>(tfidf.nnz()),
                     r == 0 ? " (cold)" : "");
        if (r + 1 == repeat) {
          if (!save_tfidf.empty()) mgpu::write_matrix_market(save_tfidf, tfidf);
          if (!save_vocabulary.empty()) {
            std::ofstream out(save_vocabulary, std::ios::binary);
            for (auto const term : vectorizer.vocabulary()) out << term << '\n';
            if (!out) throw std::runtime_error("cannot write " + save_vocabulary);
          }
        }
      }
      std::sort(seconds.begin(), seconds.end());
      std::printf("median %.4f\n", seconds[seconds.size() / 2]);
      return 0;
    });
  } catch (std::exception const& e) {
    std::fprintf(stderr, "tfidf_corpus: %s\n", e.what());
    return 1;
  }
}
