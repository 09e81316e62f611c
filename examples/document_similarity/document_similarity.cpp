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
//   query_id <TAB> neighbor_id <TAB> cosine score (the float's shortest round-trip form)
// with backslash escapes in the ids (`\\` for a backslash, `\t` tab, `\n` line feed,
// `\r` carriage return; mgpu/io/text_output.hpp), so every row has exactly three fields.
// --output-format ndjson: {"query":"...","neighbor":"...","score":0.5} per line (JSON
// string escapes). Ids that occur more than once are reported once on stderr (their rows
// cannot be told apart) but not changed.
//
// --threshold S reports only scores >= S; with --top-k 0 it reports every pair scoring
// >= S (--top-k 0 without a threshold only vectorises).
//
// A saved index answers new queries without the corpus:
//
//   document_similarity --input corpus.ndjson --save-index DIR [--top-k 0]
//   document_similarity --load-index DIR --queries queries.ndjson [--top-k 10]
//                       [--threshold S] --output neighbors.tsv
//
// --save-index DIR (created if missing) writes the fitted vectorizer (DIR/vectorizer.mgpu,
// kind "tfidf_vectorizer"), the cosine index of the corpus's TF-IDF rows (DIR/index.mgpu,
// kind "cosine_index") and the document ids (DIR/ids.mgpu, kind "document_ids", version 1:
// sections count int64 [1], ids text [bytes] (the ids end to end), offsets uint64
// [count + 1]), all in mgpu's binary container (mgpu/io/binary_file.hpp). --load-index
// reads them, vectorises the queries (read with the same --format, --text-field and
// --id-field rules as --input) with the saved vocabulary and idf (terms outside the
// vocabulary are dropped) and writes, per query in file order, its matches best first:
// query_id <TAB> neighbor_id <TAB> score. Every match is reported, a query identical to an
// indexed document included (--include-self applies to the --input run, where a query is
// a corpus row); so the rows of a query that is also a corpus document are those of an
// --input run with --include-self.
//
// Outputs (--output, --save-tfidf, --save-vocabulary, --save-index) are one commit
// (mgpu/io/output_file.hpp): their paths and --devices are checked before the corpus is
// read; at the end all of them are written, or, on any failure, none is changed and no
// temporary is left (also on SIGINT/SIGTERM/SIGHUP). A symbolic link's target is
// replaced; a FIFO or a character device (/dev/stdout, /dev/null) is written in place.
// The corpus is read (and gunzipped: a .gz input is recognised by its magic bytes) on a
// thread of its own, a few 4 MB batches ahead of the tokenising and counting
// (mgpu/io/pipeline.hpp); the ids are kept, the texts are dropped once counted, so the
// text of the corpus is never held whole: memory is what counting builds (the count
// matrix, the vocabulary) plus those batches.
// Stage timings go to stderr (the reader's MB/s, and the write stage's MB/s over the
// regular files written), and progress lines for TF-IDF and the search when stderr
// is a terminal (nothing extra otherwise). Any bad input or failure ends the program
// with a one-line error naming the file and line or what ran out, and exit code 1.
//
// MPI (built with mgpu's mpi component, MGPU_ENABLE_MPI): started by mpirun / srun, the
// program runs over the ranks (docs/distributed.md). Rank r of R reads the lines of
// --input that start in its byte range [r·size/R, (r+1)·size/R) (corpus_options'
// first_byte / last_byte: every line read by exactly one rank, line numbers — in errors,
// and as ids — those of the whole file, from count_corpus_lines of the earlier ranges);
// a gzip --input cannot be entered in the middle, so there every rank parses the whole
// stream and keeps documents r·n/R to (r+1)·n/R. mgpu::mpi::tfidf_fit_transform fits
// TF-IDF over the ranks (the whole corpus's vocabulary and idf, each rank's own rows) and
// mgpu::mpi::cosine_topk finds every document's matches over the ranks (--top-k,
// --threshold, --top-k 0 with --threshold, --include-self as in one process) on each
// rank's --devices (host devices: cpu or cpu:N). Rank 0 checks and writes --output (the
// ranks' ids gathered in order), --save-tfidf (the ranks' rows gathered in order) and
// --save-vocabulary: the bytes of the single-process run. --save-index, --load-index,
// --queries and a fixed --vocabulary are refused under MPI. A bad line is the error of
// the rank that read it, and every rank ends with it. Started without a launcher, the
// program is the single-process one.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include <mgpu/algorithms/cosine_index.hpp>
#include <mgpu/algorithms/tfidf.hpp>
#include <mgpu/io/binary_file.hpp>
#include <mgpu/io/corpus.hpp>
#include <mgpu/io/matrix_market.hpp>
#include <mgpu/io/output_file.hpp>
#include <mgpu/io/pipeline.hpp>
#include <mgpu/io/progress_line.hpp>
#include <mgpu/io/text_output.hpp>
#include <mgpu/mgpu.hpp>

#include "analyzer_flags.hpp"
#ifdef MGPU_EXAMPLE_WITH_MPI
#include <mgpu/mpi/cosine.hpp>
#include <mgpu/mpi/environment.hpp>
#include <mgpu/mpi/error.hpp>
#include <mgpu/mpi/policy.hpp>
#include <mgpu/mpi/tfidf.hpp>
#endif
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
  fs::path save_index;
  fs::path load_index;
  fs::path queries;
  std::optional<double> threshold;
  mgpu::tfidf_options tfidf;
};

using vectorizer_t = mgpu::tfidf_vectorizer<float, std::int32_t>;
template <class Kind>
using index_t = mgpu::cosine_index<Kind, float, std::int32_t>;

// The files of a saved index.
struct index_files {
  fs::path vectorizer, index, ids;
  explicit index_files(fs::path const& dir)
      : vectorizer(dir / "vectorizer.mgpu"), index(dir / "index.mgpu"), ids(dir / "ids.mgpu") {}
};

constexpr std::uint32_t ids_version = 1;

void write_ids(std::ostream& out, std::vector<std::string> const& ids) {
  std::string bytes;
  std::vector<std::uint64_t> offsets{0};
  for (auto const& id : ids) {
    bytes += id;
    offsets.push_back(bytes.size());
  }
  mgpu::binary_writer w(out, "document_ids", ids_version);
  w.write_value<std::int64_t>("count", static_cast<std::int64_t>(ids.size()));
  w.write_text("ids", bytes);
  w.write("offsets", offsets);
  w.finish();
}

std::vector<std::string> read_ids(fs::path const& path) {
  mgpu::binary_reader r(path, "document_ids", ids_version);
  auto const count = r.read_value<std::int64_t>("count");
  auto const bytes = r.read_text("ids");
  auto const offsets = r.read<std::uint64_t>("offsets");
  r.finish();
  if (count < 0 || offsets.size() != static_cast<std::size_t>(count) + 1 || offsets.front() != 0 ||
      offsets.back() != bytes.size() || !std::is_sorted(offsets.begin(), offsets.end())) {
    throw mgpu::file_format_error("'" + path.string() + "': the id offsets do not match the ids");
  }
  std::vector<std::string> ids;
  ids.reserve(static_cast<std::size_t>(count));
  for (std::size_t i = 0; i + 1 < offsets.size(); ++i) ids.emplace_back(bytes.substr(offsets[i], offsets[i + 1] - offsets[i]));
  return ids;
}

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

// --output's rows: formatted on the host's threads, written in order (text_output.hpp).
template <class T>
void write_neighbors(std::ostream& out, mgpu::text_format format, std::vector<std::string> const& query_ids,
                     std::vector<std::string> const& ids, mgpu::topk_result<T> const& top) {
  mgpu::write_neighbor_rows(out, format, top, query_ids, ids);
}

// --save-vocabulary: one term per line, in column order, as they are (no escaping);
// formatted in chunks of terms on the host's threads and written in order.
template <class Terms>
void write_vocabulary(std::ostream& out, Terms const& terms) {
  constexpr std::size_t terms_per_chunk = 16384;
  auto const n = terms.size();
  mgpu::write_in_order(
      out, static_cast<std::int64_t>((n + terms_per_chunk - 1) / terms_per_chunk),
      [&](mgpu::text_buffer& text, std::int64_t chunk) {
        auto const first = static_cast<std::size_t>(chunk) * terms_per_chunk;
        for (std::size_t i = first; i < std::min(n, first + terms_per_chunk); ++i) {
          text.append(std::string_view(terms[i]));
          text += '\n';
        }
      },
      {}, "writing the vocabulary");
}

// Batches of the corpus read ahead of the counting, and their size. Counting takes each
// batch as it comes (in place) and its threads wait at a batch's end for its longest
// document, so batches are large enough to keep the threads busy (docs/performance.md,
// "Reading and writing"); memory stays bounded by (depth + 1) batches of text.
constexpr std::size_t prefetch_depth = 2;
constexpr std::size_t prefetch_batch_bytes = std::size_t{32} << 20;

mgpu::corpus_options corpus_options_of(settings const& s) {
  mgpu::corpus_options copts;
  copts.batch_bytes = prefetch_batch_bytes;
  copts.format = s.format == "lines" ? mgpu::corpus_format::lines : mgpu::corpus_format::ndjson;
  copts.text_field = s.text_field;
  copts.id_field = s.id_field;
  return copts;
}

// Reads a whole corpus: ids and texts, and the number of bytes of text.
std::size_t read_corpus(fs::path const& path, settings const& s, std::vector<std::string>& ids,
                        std::vector<std::string>& texts) {
  std::size_t bytes = 0;
  mgpu::corpus_reader reader(path, corpus_options_of(s));
  mgpu::corpus_batch batch;
  while (reader.next(batch)) {
    for (std::size_t i = 0; i < batch.texts.size(); ++i) {
      bytes += batch.texts[i].size();
      ids.push_back(std::move(batch.ids[i]));
      texts.push_back(std::move(batch.texts[i]));
    }
  }
  return bytes;
}

// The write stage's time, and its rate over the regular files among `paths` (devices and
// FIFOs have no size to count).
void report_write(double seconds, std::initializer_list<fs::path> paths) {
  std::uintmax_t bytes = 0;
  for (auto const& p : paths) {
    std::error_code ec;
    if (!p.empty() && fs::is_regular_file(p, ec)) bytes += fs::file_size(p, ec);
  }
  if (bytes == 0) {
    std::fprintf(stderr, "write:           %8.3f s\n", seconds);
  } else {
    std::fprintf(stderr, "write:           %8.3f s  %.1f MB, %.1f MB/s\n", seconds, static_cast<double>(bytes) / 1e6,
                 static_cast<double>(bytes) / 1e6 / std::max(seconds, 1e-9));
  }
}

void warn_duplicates(std::vector<std::string> const& ids, char const* what) {
  if (auto const dup = mgpu::find_duplicate_ids(ids); dup.count > 0) {
    std::fprintf(stderr,
                 "document_similarity: warning: %zu %s ids repeat an earlier id (first: %s); "
                 "their rows in --output cannot be told apart\n",
                 dup.count, what, mgpu::escape_tsv_field(dup.first).c_str());
  }
}

// The search options of both modes: the threshold and a progress line on a terminal.
mgpu::cosine_topk_options search_options(settings const& s, mgpu::progress_line const& line) {
  mgpu::cosine_topk_options opts;
  opts.threshold = s.threshold;
  opts.progress = line.callback();
  return opts;
}

// --load-index DIR --queries FILE: the saved vectorizer, index and ids answer the queries.
int run_queries(settings const& s, mgpu::text_format format) {
  stopwatch clock;
  mgpu::output_set outs;
  auto const neighbors_out = outs.add(s.output, "--output");
  outs.check();
  index_files const files(s.load_index);
  return mgpu::with_policy(s.devices, [&](auto const& policy) {
    using kind = typename std::decay_t<decltype(policy)>::kind;
    stage = "loading the index";
    auto const vectorizer = vectorizer_t::load(files.vectorizer);
    auto const index = index_t<kind>::load(policy, files.index);
    auto const ids = read_ids(files.ids);
    if (static_cast<std::int64_t>(ids.size()) != index.rows() ||
        vectorizer.vocabulary().size() != static_cast<std::size_t>(index.cols())) {
      throw std::runtime_error(s.load_index.string() + ": the vectorizer, index and ids do not belong together (" +
                               std::to_string(vectorizer.vocabulary().size()) + " terms, index " +
                               std::to_string(index.rows()) + " x " + std::to_string(index.cols()) + ", " +
                               std::to_string(ids.size()) + " ids)");
    }
    std::fprintf(stderr, "load:            %8.3f s  %lld documents, %zu terms\n", clock.lap(),
                 static_cast<long long>(index.rows()), vectorizer.vocabulary().size());

    stage = "reading the queries";
    std::vector<std::string> query_ids, texts;
    std::size_t const bytes = read_corpus(s.queries, s, query_ids, texts);
    std::fprintf(stderr, "read:            %8.3f s  %zu queries, %.1f MB\n", clock.lap(), texts.size(),
                 static_cast<double>(bytes) / 1e6);
    warn_duplicates(query_ids, "query");

    stage = "vectorising the queries";
    auto const queries = vectorizer.transform(policy, texts);
    std::fprintf(stderr, "vectorise:       %8.3f s  %lld nonzeros\n", clock.lap(),
                 static_cast<long long>(queries.nnz()));

    stage = "searching the index";
    mgpu::progress_line line("similarity", "queries");
    auto const top = index.search(queries, s.top_k, search_options(s, line));
    std::fprintf(stderr, "similarity:      %8.3f s  %s on %s (%zu device%s)\n", clock.lap(),
                 s.top_k > 0 ? ("top-" + std::to_string(s.top_k)).c_str() : "every match", s.devices.c_str(),
                 policy.device_count(), policy.device_count() == 1 ? "" : "s");
    outs.set_writer(neighbors_out, [&](std::ostream& out) { write_neighbors(out, format, query_ids, ids, top); });
    stage = "writing the outputs";
    outs.commit();
    report_write(clock.lap(), {s.output});
    return 0;
  });
}

#ifdef MGPU_EXAMPLE_WITH_MPI
// True if the file starts with gzip's magic bytes (corpus_reader then inflates it).
bool is_gzip(fs::path const& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[2] = {0, 0};
  in.read(magic, 2);
  return in.gcount() == 2 && static_cast<unsigned char>(magic[0]) == 0x1f && static_cast<unsigned char>(magic[1]) == 0x8b;
}

// The run over MPI ranks (see the file comment). The program's own steps that can fail on
// one rank (the outputs, reading the corpus) end with an agreement, so that every rank
// throws the same error instead of waiting for the others in a collective.
int run_distributed(settings const& s) {
  stopwatch clock;
  mgpu::mpi::distributed_policy<mgpu::cpu> const policy(s.devices);
  bool const root = policy.rank() == 0;
  auto const format = mgpu::parse_text_format(s.output_format);
  bool const search = s.top_k > 0 || s.threshold.has_value();
  mgpu::output_set outs;
  std::optional<mgpu::output_set::output_id> neighbors_out, tfidf_out, vocabulary_out;
  // 1. Rank 0's outputs checked; every rank finds its part of --input: the lines starting
  //    in its byte range of a plain file (and the lines before it, for the line numbers),
  //    or, for a gzip file, the number of documents (its share is counted in documents).
  stage = "finding this rank's part of the corpus";
  auto const ranks = static_cast<std::int64_t>(policy.ranks());
  auto const rank = static_cast<std::int64_t>(policy.rank());
  bool gzip = false;
  std::uint64_t first_byte = 0;
  std::uint64_t last_byte = 0;
  std::int64_t my_lines = 0;
  std::int64_t documents = 0;
  auto error = mgpu::mpi::detail::capture([&] {
    if (root) {
      if (search) neighbors_out = outs.add(s.output, "--output");
      if (!s.save_tfidf.empty()) tfidf_out = outs.add(s.save_tfidf, "--save-tfidf");
      if (!s.save_vocabulary.empty()) vocabulary_out = outs.add(s.save_vocabulary, "--save-vocabulary");
      outs.check();
    }
    if (!fs::exists(s.input)) throw std::runtime_error(s.input.string() + ": no such file");
    gzip = is_gzip(s.input);
    if (gzip) {
      mgpu::corpus_reader reader(s.input, corpus_options_of(s));
      mgpu::corpus_batch batch;
      while (reader.next(batch)) documents += static_cast<std::int64_t>(batch.size());
    } else {
      auto const size = static_cast<std::uint64_t>(fs::file_size(s.input));
      first_byte = size / static_cast<std::uint64_t>(ranks) * static_cast<std::uint64_t>(rank) +
                   size % static_cast<std::uint64_t>(ranks) * static_cast<std::uint64_t>(rank) / static_cast<std::uint64_t>(ranks);
      last_byte = rank + 1 == ranks ? size
                                    : size / static_cast<std::uint64_t>(ranks) * static_cast<std::uint64_t>(rank + 1) +
                                          size % static_cast<std::uint64_t>(ranks) * static_cast<std::uint64_t>(rank + 1) /
                                              static_cast<std::uint64_t>(ranks);
      my_lines = static_cast<std::int64_t>(mgpu::count_corpus_lines(s.input, first_byte, last_byte));
    }
  });
  mgpu::mpi::detail::agree(policy.comm(), "document_similarity: finding the parts of the corpus",
                           {{"the documents of a gzip --input", documents}, {"--input is gzip", gzip ? 1 : 0}}, error);
  auto const lines_before = mgpu::mpi::detail::gather_row_starts(policy, my_lines);
  // 2. This rank's ids and texts: its byte range, or its share r·n/R to (r+1)·n/R of a
  //    gzip file's documents (every rank then parses the whole stream).
  stage = "reading the corpus";
  auto const first = documents * rank / ranks;
  auto const last = documents * (rank + 1) / ranks;
  std::vector<std::string> ids;
  std::vector<std::string> texts;
  std::size_t text_bytes = 0;
  error = mgpu::mpi::detail::capture([&] {
    auto copts = corpus_options_of(s);
    if (!gzip) {
      copts.first_byte = first_byte;
      copts.last_byte = last_byte;
      copts.first_line = static_cast<std::size_t>(lines_before[static_cast<std::size_t>(rank)]);
    }
    mgpu::corpus_reader reader(s.input, copts);
    mgpu::corpus_batch batch;
    std::int64_t next = 0;
    while ((!gzip || next < last) && reader.next(batch)) {
      for (std::size_t i = 0; i < batch.size(); ++i, ++next) {
        if (!gzip || (next >= first && next < last)) {
          text_bytes += batch.texts[i].size();
          ids.push_back(std::move(batch.ids[i]));
          texts.push_back(std::move(batch.texts[i]));
        }
      }
    }
  });
  mgpu::mpi::detail::agree(policy.comm(), "document_similarity: reading the corpus", {}, error);
  // Every rank's ids, in rank order (rank 0 names the documents of --output).
  std::int64_t my_documents = static_cast<std::int64_t>(texts.size());
  if (search) {
    std::string my_id_bytes;
    std::vector<std::uint64_t> my_id_lengths;
    for (auto const& id : ids) {
      my_id_bytes += id;
      my_id_lengths.push_back(id.size());
    }
    std::vector<std::int64_t> displs;
    auto const all_bytes = mgpu::mpi::detail::all_gather_values<char>(
        policy, std::span<char const>(my_id_bytes.data(), my_id_bytes.size()), displs, "document_similarity: ids");
    auto const all_lengths = mgpu::mpi::detail::all_gather_values<std::uint64_t>(
        policy, std::span<std::uint64_t const>(my_id_lengths), displs, "document_similarity: ids");
    ids.clear();
    if (root) {
      ids.reserve(all_lengths.size());
      std::size_t offset = 0;
      for (auto const length : all_lengths) {
        ids.emplace_back(all_bytes.data() + offset, static_cast<std::size_t>(length));
        offset += static_cast<std::size_t>(length);
      }
    }
  }
  auto const document_starts = mgpu::mpi::detail::gather_row_starts(policy, my_documents);
  documents = document_starts.back();
  if (root) {
    std::string per_rank;
    for (std::size_t r = 0; r + 1 < document_starts.size(); ++r) {
      per_rank += (r > 0 ? " " : "") + std::to_string(document_starts[r + 1] - document_starts[r]);
    }
    std::fprintf(stderr, "read:            %8.3f s  %lld documents over %lld ranks (%s; %.1f MB of text on rank 0)\n",
                 clock.lap(), static_cast<long long>(documents), static_cast<long long>(ranks), per_rank.c_str(),
                 static_cast<double>(text_bytes) / 1e6);
    if (neighbors_out) warn_duplicates(ids, "document");
  }
  // 3. TF-IDF over the ranks.
  stage = "fitting TF-IDF over the ranks";
  mgpu::progress_line tfidf_line("TF-IDF", "documents");
  auto tfidf_options = s.tfidf;
  if (root) tfidf_options.progress = tfidf_line.callback();
  auto const part = mgpu::mpi::tfidf_fit_transform<float, std::int32_t>(policy, texts, tfidf_options);
  texts = {};
  if (root) {
    std::fprintf(stderr, "tf-idf:          %8.3f s  %zu terms, %lld nonzeros on rank 0\n", clock.lap(),
                 part.vocabulary.size(), static_cast<long long>(part.rows.nnz()));
  }
  std::optional<mgpu::csr_matrix<mgpu::cpu, float, std::int32_t>> whole;
  if (!s.save_tfidf.empty()) {
    stage = "gathering the TF-IDF rows";
    whole.emplace(mgpu::mpi::all_gather_rows(policy, part.rows.view()));
  }
  // 4. The search over the ranks.
  std::optional<mgpu::topk_result<float>> top;
  if (search) {
    stage = "finding the most similar documents";
    mgpu::progress_line line("similarity", "queries");
    mgpu::cosine_topk_options opts;
    opts.threshold = s.threshold;
    if (root) opts.progress = line.callback();
    opts.exclude_self = !s.include_self;
    top.emplace(mgpu::mpi::cosine_topk(policy, part.rows, s.top_k, opts));
    if (root) {
      std::fprintf(stderr, "similarity:      %8.3f s  %s on %s per rank, %lld ranks\n", clock.lap(),
                   s.top_k > 0 ? ("top-" + std::to_string(s.top_k)).c_str() : "every match", s.devices.c_str(),
                   static_cast<long long>(ranks));
    }
  }
  if (!root) return 0;
  // 5. Rank 0 writes.
  if (tfidf_out) outs.set_writer(*tfidf_out, [&](std::ostream& out) { mgpu::write_matrix_market(out, *whole); });
  if (vocabulary_out) {
    outs.set_writer(*vocabulary_out, [&](std::ostream& out) { write_vocabulary(out, part.vocabulary); });
  }
  if (neighbors_out) outs.set_writer(*neighbors_out, [&](std::ostream& out) { write_neighbors(out, format, ids, ids, *top); });
  stage = "writing the outputs";
  outs.commit();
  if (outs.size() > 0) report_write(clock.lap(), {neighbors_out ? s.output : fs::path(), s.save_tfidf, s.save_vocabulary});
  return 0;
}
#endif

int run(settings const& s) {
  auto const format = mgpu::parse_text_format(s.output_format);
  if (!s.load_index.empty()) return run_queries(s, format);
  stopwatch clock;
  bool const search = s.top_k > 0 || s.threshold.has_value();
  // Every output path is checked before the long work; all are written in one commit.
  mgpu::output_set outs;
  std::optional<mgpu::output_set::output_id> neighbors_out, tfidf_out, vocabulary_out;
  std::optional<mgpu::output_set::output_id> vectorizer_out, index_out, ids_out;
  if (search) neighbors_out = outs.add(s.output, "--output");
  if (!s.save_tfidf.empty()) tfidf_out = outs.add(s.save_tfidf, "--save-tfidf");
  if (!s.save_vocabulary.empty()) vocabulary_out = outs.add(s.save_vocabulary, "--save-vocabulary");
  if (!s.save_index.empty()) {
    std::error_code ec;
    fs::create_directories(s.save_index, ec);
    if (ec) throw std::runtime_error("--save-index: cannot create '" + s.save_index.string() + "': " + ec.message());
    index_files const files(s.save_index);
    vectorizer_out = outs.add(files.vectorizer, "--save-index");
    index_out = outs.add(files.index, "--save-index");
    ids_out = outs.add(files.ids, "--save-index");
  }
  outs.check();
  if (!fs::exists(s.input)) {
    throw std::runtime_error(
        s.input.string() +
        ": no such file (for the default corpus run: python3 "
        "examples/document_similarity/make_linux_doc_corpus.py --output out/linux-doc.ndjson)");
  }

  return mgpu::with_policy(s.devices, [&](auto const& policy) {
    using kind = typename std::decay_t<decltype(policy)>::kind;
    // The corpus is read on a thread of its own while the documents already read are
    // tokenised and counted (mgpu/io/pipeline.hpp): a few batches in flight, the ids kept,
    // the texts dropped once counted.
    stage = "reading and counting the corpus";
    std::vector<std::string> ids;
    mgpu::progress_line tfidf_line("TF-IDF", "documents");
    auto tfidf_options = s.tfidf;
    tfidf_options.progress = tfidf_line.callback();
    vectorizer_t vectorizer(tfidf_options);
    mgpu::corpus_prefetcher reader(s.input, corpus_options_of(s), prefetch_depth);
    mgpu::corpus_text_range texts(reader, &ids);
    auto counts = vectorizer.count(texts);
    double const t_count = clock.lap();
    double const bytes = static_cast<double>(texts.text_bytes());
    std::fprintf(stderr, "read:            %8.3f s  %zu documents, %.1f MB of text, %.1f MB read at %.1f MB/s (overlapped with counting)\n",
                 reader.read_seconds(), texts.documents(), bytes / 1e6, static_cast<double>(reader.bytes_read()) / 1e6,
                 static_cast<double>(reader.bytes_read()) / 1e6 / std::max(reader.read_seconds(), 1e-9));
    std::fprintf(stderr, "tokenise+count:  %8.3f s  %.1f MB/s, %zu terms, %lld nonzeros (read and count together)\n", t_count,
                 bytes / 1e6 / t_count, vectorizer.vocabulary().size(), static_cast<long long>(counts.nnz()));
    if (neighbors_out) warn_duplicates(ids, "document");
    auto const tfidf = mgpu::tfidf_weight(policy, std::move(counts), vectorizer.idf(), vectorizer.options());
    std::fprintf(stderr, "weight:          %8.3f s\n", clock.lap());

    if (tfidf_out) {
      outs.set_writer(*tfidf_out, [&](std::ostream& out) { mgpu::write_matrix_market(out, tfidf); });
    }
    if (vocabulary_out) {
      outs.set_writer(*vocabulary_out, [&](std::ostream& out) { write_vocabulary(out, vectorizer.vocabulary()); });
    }
    std::optional<index_t<kind>> index;
    if (search || vectorizer_out) {
      stage = "building the cosine index";
      index.emplace(policy, tfidf);
      std::fprintf(stderr, "index:           %8.3f s  %lld rows on %s\n", clock.lap(),
                   static_cast<long long>(index->rows()), s.devices.c_str());
    }
    if (vectorizer_out) {
      outs.set_writer(*vectorizer_out, [&](std::ostream& out) { vectorizer.save(out); });
      outs.set_writer(*index_out, [&](std::ostream& out) { index->save(out); });
      outs.set_writer(*ids_out, [&](std::ostream& out) { write_ids(out, ids); });
    }
    std::optional<mgpu::topk_result<float>> top;
    if (neighbors_out) {
      stage = "finding the most similar documents";
      mgpu::progress_line line("similarity", "queries");
      auto opts = search_options(s, line);
      opts.exclude_self = !s.include_self;
      top.emplace(index->search(tfidf, s.top_k, opts));
      std::fprintf(stderr, "similarity:      %8.3f s  %s on %s (%zu device%s)\n", clock.lap(),
                   s.top_k > 0 ? ("top-" + std::to_string(s.top_k)).c_str() : "every match", s.devices.c_str(),
                   policy.device_count(), policy.device_count() == 1 ? "" : "s");
      outs.set_writer(*neighbors_out, [&](std::ostream& out) { write_neighbors(out, format, ids, ids, *top); });
    }
    stage = "writing the outputs";
    outs.commit();
    if (outs.size() > 0) report_write(clock.lap(), {neighbors_out ? s.output : fs::path(), s.save_tfidf, s.save_vocabulary});
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
  app.add_option("--top-k", s.top_k,
                 "neighbours per document; 0: every match >= --threshold, or (without one) only vectorise")
      ->check(integer_in(0, 100000))
      ->capture_default_str();
  app.add_option("--threshold", s.threshold, "report only similarities >= this")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            double v = 0;
            auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
            if (ec == std::errc() && end == text.data() + text.size() && std::isfinite(v)) return {};
            return "must be a finite number, got " + text.substr(0, 40);
          },
          "NUMBER"));
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
  auto* save_index = app.add_option("--save-index", s.save_index,
                                    "write the vectorizer, the cosine index and the ids into this directory");
  auto* load_index = app.add_option("--load-index", s.load_index,
                                    "answer --queries from a directory written by --save-index");
  auto* queries = app.add_option("--queries", s.queries, "queries for --load-index (same format as --input)");
  load_index->needs(queries);
  queries->needs(load_index);
  load_index->excludes(save_index);
  app.add_flag("--sublinear-tf", s.tfidf.sublinear_tf, "use 1 + ln(tf) instead of tf");
  app.add_option("--min-df", s.tfidf.min_df, "ignore terms in fewer documents than this");
  app.add_option("--max-df", s.tfidf.max_df, "ignore terms in more than this fraction of documents");
  app.add_option("--max-features", s.tfidf.max_features, "keep only the N most frequent terms");
  analyzer_flags analyzer;
  add_analyzer_flags(app, analyzer);
  CLI11_PARSE(app, argc, argv);
  if (!s.load_index.empty()) {
    // The saved vectorizer brings its own analyzer and weighting.
    for (auto const* option : {"--save-tfidf", "--save-vocabulary", "--input", "--analyzer", "--ngram-range",
                               "--stop-words", "--token-pattern", "--strip-accents", "--no-lowercase",
                               "--vocabulary", "--binary", "--no-idf", "--no-smooth-idf", "--norm",
                               "--sublinear-tf", "--min-df", "--max-df", "--max-features"}) {
      if (app.count(option) > 0) {
        std::fprintf(stderr, "document_similarity: error: %s cannot be combined with --load-index\n", option);
        return 1;
      }
    }
    if (s.top_k == 0 && !s.threshold) {
      std::fprintf(stderr, "document_similarity: error: --load-index with --top-k 0 needs --threshold\n");
      return 1;
    }
  }
  mgpu::remove_temporaries_on_signal();
#ifdef MGPU_EXAMPLE_WITH_MPI
  if (mgpu::mpi::launched_by_mpi()) {
    // Every rank prints "rank R of N: error: ..." and the job ends non-zero on an error.
    mgpu::mpi::environment env(argc, argv);
    return mgpu::mpi::main_guard([&] {
      // The options refused under MPI, and the analyzer flags: every rank checks them and
      // the ranks agree, so that every rank ends with the message and exit code 1.
      auto const error = mgpu::mpi::detail::capture([&] {
        for (auto const* option : {"--save-index", "--load-index", "--queries"}) {
          if (app.count(option) > 0) {
            throw std::runtime_error(std::string("under MPI, ") + option +
                                     " is not supported: the program reads --input over the ranks "
                                     "(docs/distributed.md)");
          }
        }
        if (s.devices.rfind("cpu", 0) != 0) {
          throw std::runtime_error("under MPI, --devices must name host devices (cpu or cpu:N)");
        }
        apply_analyzer_flags(analyzer, s.tfidf);
      });
      mgpu::mpi::detail::agree(MPI_COMM_WORLD, "document_similarity: the options", {}, error);
      return run_distributed(s);
    });
  }
#endif
  try {
    apply_analyzer_flags(analyzer, s.tfidf);  // std::runtime_error naming the flag
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
