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
// Output (--output): one line per (query, neighbour), best first. --output-format tsv:
//   query_id <TAB> neighbor_id <TAB> cosine score (9 significant digits)
// with backslash escapes in the ids (`\\` for a backslash, `\t` tab, `\n` line feed,
// `\r` carriage return; mgpu/io/text_output.hpp), so every row has exactly three fields.
// --output-format ndjson: {"query":"...","neighbor":"...","score":0.5} per line (JSON
// string escapes). Ids that occur more than once are reported once on stderr (their rows
// cannot be told apart) but not changed.
//
// Outputs (--output, --save-tfidf, --save-vocabulary) are one commit
// (mgpu/io/output_file.hpp): their paths and --devices are checked before the corpus is
// read; at the end all of them are written, or, on any failure, none is changed and no
// temporary is left (also on SIGINT/SIGTERM/SIGHUP). A symbolic link's target is
// replaced; a FIFO or a character device (/dev/stdout, /dev/null) is written in place.
// Stage timings and progress go to stderr. Any bad input or failure ends the program
// with a one-line error naming the file and line or what ran out, and exit code 1.
#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include <mgpu/algorithms/tfidf.hpp>
#include <mgpu/io/corpus.hpp>
#include <mgpu/io/matrix_market.hpp>
#include <mgpu/io/output_file.hpp>
#include <mgpu/io/text_output.hpp>
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
  std::string output_format = "tsv";
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

// What the program is doing, for the message when memory runs out.
char const* stage = "starting";

// A CLI11 check for an integer in [lo, hi] whose message shows the bounds, not a
// 309-digit numeric limit: "--top-k: must be an integer in [0, 100000], got -1".
CLI::Validator integer_in(long long lo, long long hi) {
  std::string const range = "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  return CLI::Validator(
      [lo, hi, range](std::string& text) -> std::string {
        long long v = 0;
        auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec == std::errc() && end == text.data() + text.size() && v >= lo && v <= hi) return {};
        return "must be an integer in " + range + ", got " + text.substr(0, 40);
      },
      "INT in " + range);
}

template <class T>
void write_neighbors(std::ostream& out, mgpu::text_format format, std::vector<std::string> const& ids,
                     mgpu::topk_result<T> const& top) {
  mgpu::neighbor_writer rows(out, format);
  for (std::int64_t q = 0; q < top.rows(); ++q) {
    auto const nb = top.neighbors(q);
    auto const sc = top.scores_of(q);
    for (std::size_t j = 0; j < nb.size(); ++j) {
      rows.write(ids[static_cast<std::size_t>(q)], ids[static_cast<std::size_t>(nb[j])],
                 static_cast<double>(sc[j]));
    }
  }
}

int run(settings const& s) {
  stopwatch clock;
  auto const format = mgpu::parse_text_format(s.output_format);
  // Every output path is checked before the long work; all are written in one commit.
  mgpu::output_set outs;
  std::optional<mgpu::output_set::output_id> neighbors_out, tfidf_out, vocabulary_out;
  if (s.top_k > 0) neighbors_out = outs.add(s.output, "--output");
  if (!s.save_tfidf.empty()) tfidf_out = outs.add(s.save_tfidf, "--save-tfidf");
  if (!s.save_vocabulary.empty()) vocabulary_out = outs.add(s.save_vocabulary, "--save-vocabulary");
  outs.check();
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

  return mgpu::with_policy(s.devices, [&](auto const& policy) {
    stage = "reading the corpus";
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
    if (neighbors_out) {
      if (auto const dup = mgpu::find_duplicate_ids(ids); dup.count > 0) {
        std::fprintf(stderr,
                     "document_similarity: warning: %zu document ids repeat an earlier id (first: %s); "
                     "their rows in --output cannot be told apart\n",
                     dup.count, mgpu::escape_tsv_field(dup.first).c_str());
      }
    }

    stage = "vectorising the corpus";
    mgpu::tfidf_vectorizer<float, std::int32_t> vectorizer(s.tfidf);
    auto counts = vectorizer.count(texts);
    double const t_count = clock.lap();
    std::fprintf(stderr, "tokenise+count:  %8.3f s  %.1f MB/s, %zu terms, %lld nonzeros\n", t_count,
                 static_cast<double>(bytes) / 1e6 / t_count, vectorizer.vocabulary().size(),
                 static_cast<long long>(counts.nnz()));
    auto const tfidf = mgpu::tfidf_weight(policy, std::move(counts), vectorizer.idf(), vectorizer.options());
    std::fprintf(stderr, "weight:          %8.3f s\n", clock.lap());

    if (tfidf_out) {
      outs.set_writer(*tfidf_out, [&](std::ostream& out) { mgpu::write_matrix_market(out, tfidf); });
    }
    if (vocabulary_out) {
      outs.set_writer(*vocabulary_out, [&](std::ostream& out) {
        for (auto const& term : vectorizer.vocabulary()) out << term << '\n';
      });
    }
    std::optional<decltype(mgpu::cosine_topk(policy, tfidf, 1))> top;
    if (neighbors_out) {
      stage = "finding the most similar documents";
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
      top.emplace(mgpu::cosine_topk(policy, tfidf, s.top_k, opts));
      std::fprintf(stderr, "similarity:      %8.3f s  top-%d on %s (%zu device%s)\n", clock.lap(), s.top_k,
                   s.devices.c_str(), policy.device_count(), policy.device_count() == 1 ? "" : "s");
      outs.set_writer(*neighbors_out, [&](std::ostream& out) { write_neighbors(out, format, ids, *top); });
    }
    stage = "writing the outputs";
    outs.commit();
    if (outs.size() > 0) std::fprintf(stderr, "write:           %8.3f s\n", clock.lap());
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
      ->check(integer_in(0, 100000))
      ->capture_default_str();
  app.add_option("--devices", s.devices, "cpu, cpu:N, cuda, cuda:0,1,...")
      ->envname("MGPU_DEVICES")
      ->capture_default_str();
  app.add_flag("--include-self", s.include_self, "let a document be its own neighbour");
  app.add_option("--output", s.output, "neighbours: query_id, neighbor_id, score")->capture_default_str();
  app.add_option("--output-format", s.output_format, "tsv (ids with backslash escapes) or ndjson")
      ->check(CLI::IsMember({"tsv", "ndjson"}))
      ->capture_default_str();
  app.add_option("--save-tfidf", s.save_tfidf, "write the TF-IDF matrix (Matrix Market)");
  app.add_option("--save-vocabulary", s.save_vocabulary, "write the vocabulary, one term per line");
  app.add_flag("--sublinear-tf", s.tfidf.sublinear_tf, "use 1 + ln(tf) instead of tf");
  app.add_option("--min-df", s.tfidf.min_df, "ignore terms in fewer documents than this");
  app.add_option("--max-df", s.tfidf.max_df, "ignore terms in more than this fraction of documents");
  app.add_option("--max-features", s.tfidf.max_features, "keep only the N most frequent terms");
  CLI11_PARSE(app, argc, argv);
  mgpu::remove_temporaries_on_signal();
  try {
    return run(s);
  } catch (std::bad_alloc const&) {
    std::fprintf(stderr, "document_similarity: error: out of host memory while %s\n", stage);
    return 1;
  } catch (mgpu::out_of_memory const& e) {
    std::fprintf(stderr, "document_similarity: error: out of memory while %s: %s\n", stage, e.what());
    return 1;
  } catch (std::exception const& e) {
    std::fprintf(stderr, "document_similarity: error: %s\n", e.what());
    return 1;
  }
}
