// bench_io — the I/O stages of document_similarity, timed one at a time and together
// (issue 21): reading a corpus, tokenising + counting it, the two pipelined, and writing
// neighbour rows and a Matrix Market file.
//
//   bench_io --input out/linux-doc.ndjson [--repeat 5] [--format ndjson|lines]
//            [--write-dir /tmp] [--skip-in-memory]
//
// Stages (each run --repeat times; every run and then the median are printed):
//   read          corpus_reader into corpus_text_batch (4 MiB batches, buffers reused),
//                 every document visited; MB/s of the (decompressed) file
//   count         tfidf_vectorizer::count over the texts held in memory (skipped with
//                 --skip-in-memory, for corpora larger than memory)
//   read+count    corpus_prefetcher + corpus_text_range feeding count (what
//                 document_similarity does); MB/s of the file
//   read,count    the same with depth 0: reading and counting take turns on one thread
//   write-tsv     10 neighbour rows per document (ids of the corpus, float scores in
//                 (0, 1]) through neighbor_writer into an output_set file in --write-dir;
//                 MB/s of the file written
//   write-mtx     the count matrix as Matrix Market through an output_set file
// The written files are removed at the end.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <random>
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
  CLI::App app{"Time reading, counting and writing of document_similarity's I/O (mgpu)"};
  app.add_option("--input", input, "corpus file (NDJSON or lines, plain or gzip)")->required();
  app.add_option("--format", format, "ndjson or lines")->check(CLI::IsMember({"ndjson", "lines"}));
  app.add_option("--repeat", repeat, "runs of each stage")->check(CLI::PositiveNumber);
  app.add_option("--write-dir", write_dir, "directory for the written files (removed at the end)");
  app.add_flag("--skip-in-memory", skip_in_memory, "skip the stages that hold the whole corpus in memory");
  CLI11_PARSE(app, argc, argv);

  try {
    mgpu::corpus_options options;
    options.format = format == "lines" ? mgpu::corpus_format::lines : mgpu::corpus_format::ndjson;
    options.batch_bytes = std::size_t{32} << 20;  // as document_similarity reads
    std::printf("input %s\n", input.c_str());

    // The batch's buffers are kept from run to run, as corpus_prefetcher recycles them:
    // the steady state, not the first touch of fresh pages.
    mgpu::corpus_text_batch batch;
    stage("read", repeat, [&] {
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
    if (!skip_in_memory) {
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
    stage("read+count", repeat, [&] {
      vectorizer_t v;
      std::vector<std::string> kept;
      mgpu::corpus_prefetcher reader(input, options, 2);
      mgpu::corpus_text_range texts(reader, &kept);
      counts = v.count(texts);
      ids = std::move(kept);
      file_bytes = static_cast<double>(reader.bytes_read());
      return file_bytes;
    });

    stage("read,count", repeat, [&] {
      vectorizer_t v;
      std::vector<std::string> kept;
      mgpu::corpus_prefetcher reader(input, options, 0);
      mgpu::corpus_text_range texts(reader, &kept);
      auto const c = v.count(texts);
      return static_cast<double>(reader.bytes_read());
    });

    auto const tsv = write_dir / "bench_io_neighbors.tsv";
    auto const mtx = write_dir / "bench_io_counts.mtx";
    // The neighbours and scores are drawn before the timing.
    std::vector<std::size_t> neighbors(ids.size() * 10);
    std::vector<float> scores(neighbors.size());
    {
      std::mt19937 gen(1);
      std::uniform_real_distribution<float> score(0.0f, 1.0f);
      std::uniform_int_distribution<std::size_t> pick(0, ids.empty() ? 0 : ids.size() - 1);
      for (auto& n : neighbors) n = pick(gen);
      for (auto& x : scores) x = score(gen);
    }
    stage("write-tsv", repeat, [&] {
      mgpu::output_set outs;
      outs.add(tsv, [&](std::ostream& out) {
        mgpu::neighbor_writer rows(out, mgpu::text_format::tsv);
        for (std::size_t q = 0; q < ids.size(); ++q) {
          for (std::size_t j = q * 10; j < q * 10 + 10; ++j) {
            rows.write(ids[q], ids[neighbors[j]], static_cast<double>(scores[j]));
          }
        }
      });
      outs.commit();
      return static_cast<double>(fs::file_size(tsv));
    });
    stage("write-mtx", repeat, [&] {
      mgpu::write_matrix_market(mtx, counts);
      return static_cast<double>(fs::file_size(mtx));
    });
    fs::remove(tsv);
    fs::remove(mtx);
    return 0;
  } catch (std::exception const& e) {
    std::fprintf(stderr, "bench_io: error: %s\n", e.what());
    return 1;
  }
}
