// document_similarity — for every document of a corpus, its most similar documents.
//
// The pipeline people otherwise glue together from scikit-learn and SciPy, in one
// program: read a corpus (NDJSON or one document per line), vectorise it with TF-IDF
// (scikit-learn's TfidfVectorizer semantics), then find each document's top-k
// neighbours by exact cosine similarity, sharded over the devices chosen by --devices.
//
// Default input: the Linux kernel documentation from Debian's linux-doc package,
// assembled into NDJSON by make_linux_doc_corpus.py beside this file:
//
//   python3 examples/document_similarity/make_linux_doc_corpus.py --output out/linux-doc.ndjson
//   document_similarity --input out/linux-doc.ndjson --top-k 10 --devices cpu:2
//                       --output neighbors.tsv
//
// Output (--output): one line per (query, neighbour), best first:
//   query_id <TAB> neighbor_id <TAB> cosine score (9 significant digits)
// Stage timings and progress go to stderr. Any bad input ends the program with a
// one-line error naming the file and line, exit code 1, and no output file written.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include <mgpu/algorithms/tfidf.hpp>
#include <mgpu/io/corpus.hpp>
#include <mgpu/io/matrix_market.hpp>
#include <mgpu/mgpu.hpp>
#ifdef MGPU_EXAMPLE_WITH_CUDA
// The GPU backend: --devices cuda, cuda:0,1. Its kernels are instantiated in
// document_similarity_cuda.cu; this file stays host code.
#include <mgpu/cuda.hpp>
#endif

namespace {

namespace fs = std::filesystem;

struct settings {
  fs::path input = "out/linux-doc.ndjson";
  std::string format = "ndjson";
  std::string text_field = "text";
  std::string id_field = "id";
  int top_k = 10;
  std::string devices = "cpu";
  bool include_self = false;
  fs::path output = "neighbors.tsv";
  fs::path save_tfidf;
  fs::path save_vocabulary;
  mgpu::tfidf_options tfidf;
};

class stopwatch {
 public:
  double lap() {
    auto const now = std::chrono::steady_clock::now();
    double const s = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    return s;
  }

 private:
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// Writes through a temporary file renamed into place at the end, so a failure never
// leaves a half-written output behind.
template <class Write>
void write_atomically(fs::path const& target, Write&& write) {
  fs::path const tmp = target.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
    write(out);
    out.flush();
    if (!out) {
      std::error_code ignored;
      fs::remove(tmp, ignored);
      throw std::runtime_error("write failed: " + tmp.string());
    }
  }
  fs::rename(tmp, target);
}

template <class T, class I>
void write_neighbors(fs::path const& path, std::vector<std::string> const& ids,
                     mgpu::topk_result<T, I> const& top) {
  write_atomically(path, [&](std::ostream& out) {
    char score[32];
    for (std::int64_t q = 0; q < top.rows(); ++q) {
      auto const nb = top.neighbors(q);
      auto const sc = top.scores_of(q);
      for (std::size_t j = 0; j < nb.size(); ++j) {
        std::snprintf(score, sizeof score, "%.9g", static_cast<double>(sc[j]));
        out << ids[static_cast<std::size_t>(q)] << '\t' << ids[static_cast<std::size_t>(nb[j])] << '\t'
            << score << '\n';
      }
    }
  });
}

int run(settings const& s) {
  stopwatch clock;
  mgpu::corpus_options copts;
  copts.format = s.format == "lines" ? mgpu::corpus_format::lines : mgpu::corpus_format::ndjson;
  copts.text_field = s.text_field;
  copts.id_field = s.id_field;
  if (!fs::exists(s.input)) {
    throw std::runtime_error(
        s.input.string() +
        ": no such file (for the default corpus run: python3 "
        "examples/document_similarity/make_linux_doc_corpus.py --output out/linux-doc.ndjson)");
  }

  std::vector<std::string> ids, texts;
  std::size_t bytes = 0;
  {
    mgpu::corpus_reader reader(s.input, copts);
    mgpu::corpus_batch batch;
    while (reader.next(batch)) {
      for (std::size_t i = 0; i < batch.texts.size(); ++i) {
        bytes += batch.texts[i].size();
        ids.push_back(std::move(batch.ids[i]));
        texts.push_back(std::move(batch.texts[i]));
      }
    }
  }
  std::fprintf(stderr, "read:            %8.3f s  %zu documents, %.1f MB\n", clock.lap(), texts.size(),
               static_cast<double>(bytes) / 1e6);

  return mgpu::with_policy(s.devices, [&](auto const& policy) {
    mgpu::tfidf_vectorizer<float, std::int32_t> vectorizer(s.tfidf);
    auto counts = vectorizer.count(texts);
    double const t_count = clock.lap();
    std::fprintf(stderr, "tokenise+count:  %8.3f s  %.1f MB/s, %zu terms, %lld nonzeros\n", t_count,
                 static_cast<double>(bytes) / 1e6 / t_count, vectorizer.vocabulary().size(),
                 static_cast<long long>(counts.nnz()));
    auto const tfidf = mgpu::tfidf_weight(policy, std::move(counts), vectorizer.idf(), vectorizer.options());
    std::fprintf(stderr, "weight:          %8.3f s\n", clock.lap());

    if (!s.save_tfidf.empty()) {
      mgpu::write_matrix_market(s.save_tfidf, tfidf);
    }
    if (!s.save_vocabulary.empty()) {
      write_atomically(s.save_vocabulary, [&](std::ostream& out) {
        for (auto const& term : vectorizer.vocabulary()) out << term << '\n';
      });
    }
    if (s.top_k == 0) return 0;

    mgpu::cosine_topk_options opts{.exclude_self = !s.include_self};
    stopwatch since_progress;
    double waited = 0;
    opts.progress = [&](std::int64_t done, std::int64_t total) {
      waited += since_progress.lap();
      if (waited < 2.0 && done != total) return;
      waited = 0;
      std::fprintf(stderr, "  similarity: %lld / %lld queries\n", static_cast<long long>(done),
                   static_cast<long long>(total));
    };
    auto const top = mgpu::cosine_topk(policy, tfidf, s.top_k, opts);
    std::fprintf(stderr, "similarity:      %8.3f s  top-%d on %s (%zu device%s)\n", clock.lap(), s.top_k,
                 s.devices.c_str(), policy.device_count(), policy.device_count() == 1 ? "" : "s");
    write_neighbors(s.output, ids, top);
    std::fprintf(stderr, "write:           %8.3f s  %s\n", clock.lap(), s.output.c_str());
    return 0;
  });
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  CLI::App app{"Top-k most similar documents by TF-IDF cosine similarity (mgpu)"};
  app.add_option("--input", s.input, "corpus file")->capture_default_str();
  app.add_option("--format", s.format, "ndjson: one JSON object per line; lines: one document per line")
      ->check(CLI::IsMember({"ndjson", "lines"}))
      ->capture_default_str();
  app.add_option("--text-field", s.text_field, "NDJSON field holding the text")->capture_default_str();
  app.add_option("--id-field", s.id_field, "NDJSON field holding the document id")->capture_default_str();
  app.add_option("--top-k", s.top_k, "neighbours per document; 0 only vectorises")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--devices", s.devices, "cpu, cpu:N, cuda, cuda:0,1,...")
      ->envname("MGPU_DEVICES")
      ->capture_default_str();
  app.add_flag("--include-self", s.include_self, "let a document be its own neighbour");
  app.add_option("--output", s.output, "neighbours TSV: query_id, neighbor_id, score")->capture_default_str();
  app.add_option("--save-tfidf", s.save_tfidf, "write the TF-IDF matrix (Matrix Market)");
  app.add_option("--save-vocabulary", s.save_vocabulary, "write the vocabulary, one term per line");
  app.add_flag("--sublinear-tf", s.tfidf.sublinear_tf, "use 1 + ln(tf) instead of tf");
  app.add_option("--min-df", s.tfidf.min_df, "ignore terms in fewer documents than this");
  app.add_option("--max-df", s.tfidf.max_df, "ignore terms in more than this fraction of documents");
  app.add_option("--max-features", s.tfidf.max_features, "keep only the N most frequent terms");
  CLI11_PARSE(app, argc, argv);
  try {
    return run(s);
  } catch (std::exception const& e) {
    std::fprintf(stderr, "document_similarity: error: %s\n", e.what());
    return 1;
  }
}
