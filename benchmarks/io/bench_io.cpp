// bench_io — the I/O stages of document_similarity, timed one at a time and together
// (issue 21): reading a corpus, tokenising + counting it, the two pipelined, and writing
// neighbour rows and a Matrix Market file.
//
//   bench_io --input out/linux-doc.ndjson [--repeat 5] [--format ndjson|lines]
//            [--write-dir /tmp] [--write-null] [--skip-in-memory] [--write-only]
//            [--no-early-writeback]
//
// Stages (each run --repeat times; every run and then the median are printed):
//   read          corpus_reader into corpus_text_batch (4 MiB batches, buffers reused),
//                 every document visited; MB/s of the (decompressed) file
//   count         tfidf_vectorizer::count over the texts held in memory (skipped with
//                 --skip-in-memory, for corpora larger than memory)
//   read+count    corpus_prefetcher + corpus_text_range feeding count (what
//                 document_similarity does); MB/s of the file
//   read,count    the same with depth 0: reading and counting take turns on one thread
//   write-tsv     10 neighbour rows per document (ids of the corpus, neighbours drawn at
//                 random, float scores in (0, 1)) through write_neighbor_rows (formatted
//                 on the host's threads, written in order) into an output_set file in
//                 --write-dir; MB/s of the file written
//   write-tsv-1t  the same rows one at a time through neighbor_writer (one thread)
//   write-mtx     the count matrix as Matrix Market through an output_set file
//   write-tfidf   the TF-IDF matrix (default options) as Matrix Market, likewise
//   write-vocab   the vocabulary, one term per line, likewise
// --write-only reads and counts once (untimed) and times the write stages alone.
// --no-early-writeback writes the files without starting their disk writeback while they
// are written (the fsync at the end then waits for all of it). With --write-null the
// files go to /dev/null (a character device, written in place: no page cache, no
// fsync), which times the formatting alone. The written files are removed at the end.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <random>
#include <streambuf>
#include <string_view>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <mgpu/algorithms/tfidf.hpp>
#include <mgpu/io/corpus.hpp>
#include <mgpu/io/matrix_market.hpp>
#include <mgpu/io/output_file.hpp>
#include <mgpu/io/pipeline.hpp>
#include <mgpu/io/text_output.hpp>

namespace {

namespace fs = std::filesystem;
using vectorizer_t = mgpu::tfidf_vectorizer<float, std::int32_t>;

double seconds_of(std::function<void()> const& f) {
  auto const start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto const n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// CPU seconds used by the whole process so far (all threads).
double process_cpu_seconds() {
  timespec t{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Runs `f` `repeat` times; prints each run and the median as seconds and MB/s of `bytes`,
// wall clock and per CPU second of the process (all its threads; on a loaded machine the
// latter is the steadier figure for a one-thread stage).
void stage(char const* name, int repeat, std::function<double()> const& f) {
  if (repeat <= 0) return;
  std::vector<double> times, rates, cpu_times, cpu_rates;
  for (int r = 0; r < repeat; ++r) {
    double bytes = 0;
    double const cpu0 = process_cpu_seconds();
    double const t = seconds_of([&] { bytes = f(); });
    double const cpu = process_cpu_seconds() - cpu0;
    times.push_back(t);
    rates.push_back(bytes / 1e6 / t);
    cpu_times.push_back(cpu);
    cpu_rates.push_back(bytes / 1e6 / cpu);
    std::fprintf(stderr, "  %-11s run %d: %8.3f s  %9.1f MB/s  cpu %8.3f s  (%.1f MB)\n", name, r + 1, t,
                 bytes / 1e6 / t, cpu, bytes / 1e6);
  }
  std::printf("%-11s median %8.3f s  %9.1f MB/s   cpu %8.3f s  %9.1f MB/cpu-s\n", name, median(times), median(rates),
              median(cpu_times), median(cpu_rates));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::string input;
  std::string format = "ndjson";
  fs::path write_dir = fs::temp_directory_path();
  int repeat = 5;
  bool skip_in_memory = false;
  bool write_null = false;
  bool write_only = false;
  CLI::App app{"Time reading, counting and writing of document_similarity's I/O (mgpu)"};
  app.add_option("--input", input, "corpus file (NDJSON or lines, plain or gzip)")->required();
  app.add_option("--format", format, "ndjson or lines")->check(CLI::IsMember({"ndjson", "lines"}));
  app.add_option("--repeat", repeat, "runs of each stage")->check(CLI::PositiveNumber);
  app.add_option("--write-dir", write_dir, "directory for the written files (removed at the end)");
  app.add_flag("--skip-in-memory", skip_in_memory, "skip the stages that hold the whole corpus in memory");
  app.add_flag("--write-null", write_null, "write the outputs to /dev/null (formatting alone)");
  app.add_flag("--write-only", write_only, "read and count once, untimed; time the write stages only");
  bool no_early_writeback = false;
  app.add_flag("--no-early-writeback", no_early_writeback,
               "do not start the disk writeback of a file while it is written (output_file.hpp)");
  CLI11_PARSE(app, argc, argv);

  mgpu::detail::out::early_writeback = !no_early_writeback;
  try {
    mgpu::corpus_options options;
    options.format = format == "lines" ? mgpu::corpus_format::lines : mgpu::corpus_format::ndjson;
    options.batch_bytes = std::size_t{32} << 20;  // as document_similarity reads
    std::printf("input %s\n", input.c_str());

    // The batch's buffers are kept from run to run, as corpus_prefetcher recycles them:
    // the steady state, not the first touch of fresh pages.
    mgpu::corpus_text_batch batch;
    int const read_repeat = write_only ? 0 : repeat;
    stage("read", read_repeat, [&] {
      mgpu::corpus_reader reader(input, options);
      std::size_t visited = 0;
      while (reader.next(batch)) {
        for (std::size_t i = 0; i < batch.size(); ++i) visited += batch.text(i).size() > 0 ? 1 : 0;
      }
      if (visited == std::size_t(-1)) std::puts("");  // keeps the loop
      return static_cast<double>(reader.bytes_read());
    });

    std::vector<std::string> ids;
    double file_bytes = 0;
    if (!skip_in_memory && !write_only) {
      auto const corpus = mgpu::read_corpus(input, options);
      ids = corpus.ids;
      double text_bytes = 0;
      for (auto const& t : corpus.texts) text_bytes += static_cast<double>(t.size());
      stage("count", repeat, [&] {
        vectorizer_t v;
        auto const counts = v.count(corpus.texts);
        return text_bytes;
      });
    }

    mgpu::csr_matrix<mgpu::cpu, float, std::int32_t> counts;
    vectorizer_t fitted;
    stage("read+count", write_only ? 1 : repeat, [&] {
      vectorizer_t v;
      std::vector<std::string> kept;
      mgpu::corpus_prefetcher reader(input, options, 2);
      mgpu::corpus_text_range texts(reader, &kept);
      counts = v.count(texts);
      fitted = std::move(v);
      ids = std::move(kept);
      file_bytes = static_cast<double>(reader.bytes_read());
      return file_bytes;
    });

    stage("read,count", read_repeat, [&] {
      vectorizer_t v;
      std::vector<std::string> kept;
      mgpu::corpus_prefetcher reader(input, options, 0);
      mgpu::corpus_text_range texts(reader, &kept);
      auto const c = v.count(texts);
      return static_cast<double>(reader.bytes_read());
    });

    auto const target = [&](char const* name) { return write_null ? fs::path("/dev/null") : write_dir / name; };
    auto const tsv = target("bench_io_neighbors.tsv");
    auto const mtx = target("bench_io_counts.mtx");
    auto const tfidf_mtx = target("bench_io_tfidf.mtx");
    auto const vocab = target("bench_io_vocabulary.txt");
    // Bytes of a written file; /dev/null has none, so a run's text is counted instead.
    auto const size_of = [&](fs::path const& p, double counted) {
      return write_null ? counted : static_cast<double>(fs::file_size(p));
    };
    // A stream buffer that counts what goes through it (for --write-null).
    struct counting_buffer : std::streambuf {
      std::streambuf* next;
      double bytes = 0;
      explicit counting_buffer(std::streambuf* n) : next(n) {}
      std::streamsize xsputn(char const* p, std::streamsize n) override {
        bytes += static_cast<double>(n);
        return next->sputn(p, n);
      }
      int_type overflow(int_type c) override {
        if (!traits_type::eq_int_type(c, traits_type::eof())) bytes += 1;
        return next->sputc(traits_type::to_char_type(c));
      }
      int sync() override { return next->pubsync(); }
    };
    // Writes one output through an output_set with `write`; returns the bytes written.
    auto const write_one = [&](fs::path const& path, std::function<void(std::ostream&)> const& write) {
      double counted = 0;
      mgpu::output_set outs;
      outs.add(path, [&](std::ostream& out) {
        counting_buffer counter(out.rdbuf());
        std::ostream through(&counter);
        write(through);
        through.flush();
        if (!through) out.setstate(std::ios::badbit);
        counted = counter.bytes;
      });
      outs.commit();
      return size_of(path, counted);
    };

    // The neighbours and scores are drawn before the timing.
    mgpu::topk_result<float> top;
    top.k = 10;
    top.candidates = static_cast<std::int64_t>(ids.size());
    {
      std::mt19937 gen(1);
      std::uniform_real_distribution<float> score(0.0f, 1.0f);
      std::uniform_int_distribution<std::int64_t> pick(0, ids.empty() ? 0 : static_cast<std::int64_t>(ids.size()) - 1);
      top.ids.resize(ids.size() * 10);
      top.scores.resize(top.ids.size());
      for (auto& n : top.ids) n = pick(gen);
      for (auto& x : top.scores) x = score(gen);
      top.row_offsets.resize(ids.size() + 1);
      for (std::size_t q = 0; q <= ids.size(); ++q) top.row_offsets[q] = static_cast<std::int64_t>(q * 10);
    }
    stage("write-tsv", repeat, [&] {
      return write_one(tsv, [&](std::ostream& out) { mgpu::write_neighbor_rows(out, mgpu::text_format::tsv, top, ids, ids); });
    });
    stage("write-tsv-1t", repeat, [&] {
      return write_one(tsv, [&](std::ostream& out) {
        mgpu::neighbor_writer rows(out, mgpu::text_format::tsv);
        for (std::size_t q = 0; q < ids.size(); ++q) {
          for (std::size_t j = q * 10; j < q * 10 + 10; ++j) {
            rows.write(ids[q], ids[static_cast<std::size_t>(top.ids[j])], top.scores[j]);
          }
        }
      });
    });
    stage("write-mtx", repeat, [&] {
      return write_one(mtx, [&](std::ostream& out) { mgpu::write_matrix_market(out, counts); });
    });
    auto const tfidf = mgpu::tfidf_weight(counts, fitted.idf(), fitted.options());
    stage("write-tfidf", repeat, [&] {
      return write_one(tfidf_mtx, [&](std::ostream& out) { mgpu::write_matrix_market(out, tfidf); });
    });
    stage("write-vocab", repeat, [&] {
      return write_one(vocab, [&](std::ostream& out) {
        auto const& terms = fitted.vocabulary();
        mgpu::write_in_order(
            out, static_cast<std::int64_t>((terms.size() + 16383) / 16384),
            [&](mgpu::text_buffer& text, std::int64_t chunk) {
              auto const first = static_cast<std::size_t>(chunk) * 16384;
              for (std::size_t i = first; i < std::min(terms.size(), first + 16384); ++i) {
                text.append(std::string_view(terms[i]));
                text += '\n';
              }
            });
      });
    });
    if (!write_null) {
      for (auto const& p : {tsv, mtx, tfidf_mtx, vocab}) fs::remove(p);
    }
    return 0;
  } catch (std::exception const& e) {
    std::fprintf(stderr, "bench_io: error: %s\n", e.what());
    return 1;
  }
}
