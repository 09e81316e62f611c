// mgpu/io/pipeline.hpp — a corpus read on a thread of its own and handed on in batches
// through a bounded queue, so that reading (and decompressing) overlaps the work done on
// the documents, and only a fixed number of batches is ever in memory.
//
//   mgpu::corpus_prefetcher reader(path, options);          // opens the file (errors here)
//   std::vector<std::string> ids;
//   mgpu::corpus_text_range texts(reader, &ids);              // single-pass range of views
//   auto counts = vectorizer.count(texts);                    // counts while the next batches are read
//
// Memory: at most `depth` filled batches wait in the queue, one is being read and one is
// being consumed, each of about corpus_options::batch_bytes (plus the reader's own
// buffers, corpus.hpp); batch buffers are recycled, not reallocated, and freed once
// the corpus has been read to its end (so that what follows reading, e.g. assembling a
// TF-IDF matrix, does not share the memory with them). The texts of documents already
// consumed are not kept (the ids are, when asked for).
//
// Errors: anything the reader throws (parse_error naming the file and line, a gzip
// error naming the compressed byte, bad_alloc) is raised by the consumer's next() (or the
// range's increment) once every document before the failure has been handed on (the
// last batch may be short), i.e. at the place in the stream where it happened. Destroying a prefetcher early stops its thread
// (after the batch it is reading) without raising anything.
//
// Thread safety: a prefetcher and a range are used by one consumer thread; the reader
// thread touches only the queues and its own reader.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "mgpu/backend/cpu/parallel.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/io/bounded_queue.hpp"
#include "mgpu/io/corpus.hpp"

namespace mgpu {

/// Reads a corpus file (corpus.hpp: NDJSON or lines, plain or gzip) on a background
/// thread, at most `depth` batches ahead of the consumer; depth 0 reads on the consumer's
/// thread inside next() (no thread; for one core). Not copyable or movable.
///
/// A corpus of one or two batches cannot be counted while it is read (the first batch is
/// the whole first half of it), so a whole plain file of split_min_bytes up to two
/// batches is read by two threads at once, the second from the first line start at or
/// after its middle (as corpus_options::first_byte reads, with the lines before it
/// counted first, so that line numbers and default ids are the file's): the consumer
/// gets the first half's batches, then the second's, the same documents in the same
/// order as from one reader, and an error in either half surfaces where one reader would
/// raise it. On 2 cores this halves the wait before counting starts (linux-doc: docs/
/// performance.md, "Reading and writing").
class corpus_prefetcher {
 public:
  /// Opens `file` on the calling thread and starts reading it.
  /// @throws parse_error (line 0) when the file cannot be opened; invalid_argument for
  ///         bad options or depth 0.
  explicit corpus_prefetcher(std::filesystem::path file, corpus_options options = {}, std::size_t depth = 2)
      : corpus_prefetcher(file, options, depth, split_offset(file, options, depth)) {}
  corpus_prefetcher(corpus_prefetcher const&) = delete;
  corpus_prefetcher& operator=(corpus_prefetcher const&) = delete;
  ~corpus_prefetcher() {
    if (second_) {
      second_->filled.close();
      second_->spare.close();
      if (second_->thread.joinable()) second_->thread.join();
    }
    filled_.close();
    spare_.close();
    if (thread_.joinable()) thread_.join();
  }

  /// Plain files from this size up to two batches (corpus_options::batch_bytes) are read
  /// by two threads, one per half (see the class comment).
  static constexpr std::uint64_t split_min_bytes = std::uint64_t{4} << 20;

  /// Replaces `batch` with the next batch in file order (its old buffers go back to the
  /// reader for reuse). @returns false, with `batch` empty and its buffers and the
  /// reader's spare ones freed, after the last batch.
  /// @throws whatever reading the file threw (see the file comment), once every document
  ///         before the failure has been returned.
  bool next(corpus_text_batch& batch) {
    if (!thread_.joinable()) return next_here(batch);
    if (finished_) {
      finish(batch);
      return false;
    }
    if (!first_done_) {
      auto filled = filled_.pop();
      batch.clear();
      if (filled) {
        (void)spare_.try_push(batch);  // a full spare queue just lets the buffers go
        batch = std::move(*filled);
        return true;
      }
      // The first reader has closed filled_: it touches the spare queue no more.
      first_done_ = true;
      while (spare_.try_pop()) {
      }
      if (failure_ || !second_) {
        finish(batch);
        return false;
      }
    }
    // The second half, once the first has been handed on whole.
    auto filled = second_->filled.pop();
    batch.clear();
    if (filled) {
      (void)second_->spare.try_push(batch);
      batch = std::move(*filled);
      return true;
    }
    while (second_->spare.try_pop()) {
    }
    failure_ = second_->failure;
    read_seconds_ = std::max(read_seconds_, second_->read_seconds);
    bytes_read_ += second_->bytes_read;
    finish(batch);
    return false;
  }

  /// Reader threads: 0 (depth 0), 1, or 2 (a file read in two halves, class comment).
  [[nodiscard]] int readers() const noexcept { return second_ ? 2 : (thread_.joinable() ? 1 : 0); }

  /// Seconds the reader thread spent reading and parsing (not waiting for room in the
  /// queue; with two readers, the longer of their times), and bytes of the
  /// (decompressed) file read; final once next() has returned false.
  [[nodiscard]] double read_seconds() const noexcept { return finished_ ? read_seconds_ : 0.0; }
  [[nodiscard]] std::uint64_t bytes_read() const noexcept { return finished_ ? bytes_read_ : 0; }

 private:
  // Depth 0: reads on the caller's thread.
  bool next_here(corpus_text_batch& batch) {
    if (finished_) {
      batch = corpus_text_batch{};
      if (failure_) std::rethrow_exception(failure_);
      return false;
    }
    auto const start = std::chrono::steady_clock::now();
    bool more = false;
    try {
      more = reader_.next(batch);
    } catch (...) {
      finished_ = true;
      if (batch.empty()) throw;
      failure_ = std::current_exception();  // raised by the next call, as with a thread
      return true;
    }
    read_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!more) {
      finished_ = true;
      bytes_read_ = reader_.bytes_read();
      batch = corpus_text_batch{};
    }
    return more;
  }

  // `split`: 0, or the offset where the second half starts (split_offset).
  corpus_prefetcher(std::filesystem::path const& file, corpus_options options, std::size_t depth, std::uint64_t split)
      : reserve_bytes_(std::min(options.batch_bytes, std::size_t{64} << 20) + (std::size_t{1} << 16)),
        reader_(file, first_half(options, split)),
        filled_(std::max<std::size_t>(depth, 1)),
        spare_(depth + 2) {
    if (depth == 0) return;
    if (split > 0) {
      second_ = std::make_unique<lane>(depth);
      // The second thread counts the lines before its half (for line numbers and the ids
      // of documents without one), then reads it.
      second_->thread = std::thread([this, file, options, split] {
        auto& l = *second_;
        try {
          auto o = options;
          o.first_line = options.first_line + static_cast<std::size_t>(count_corpus_lines(file, 0, split));
          o.first_byte = split;
          corpus_reader reader(file, std::move(o));
          read_all(reader, l.filled, l.spare, l.failure, l.read_seconds);
          l.bytes_read = reader.bytes_read();
        } catch (...) {
          l.failure = std::current_exception();
        }
        l.filled.close();  // publishes the lane's results to the consumer
      });
    }
    thread_ = std::thread([this] {
      read_all(reader_, filled_, spare_, failure_, read_seconds_);
      bytes_read_ = reader_.bytes_read();
      filled_.close();  // publishes failure_, read_seconds_ and bytes_read_ to the consumer
    });
  }

  // Where the second reader starts, or 0 for one reader: a threaded prefetcher (depth >
  // 0) over a whole plain (not gzip) regular file of split_min_bytes to two batches, on
  // a host with two threads or more. The halves meet at a line start at or after the
  // middle (corpus_options::first_byte's rule).
  static std::uint64_t split_offset(std::filesystem::path const& file, corpus_options const& options,
                                    std::size_t depth) {
    if (depth == 0 || options.first_byte != 0 || options.last_byte != std::numeric_limits<std::uint64_t>::max() ||
        backend::cpu::host_threads() < 2) {
      return 0;
    }
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) return 0;
    auto const size = std::filesystem::file_size(file, ec);
    if (ec || size < split_min_bytes || size > 2 * static_cast<std::uint64_t>(options.batch_bytes)) return 0;
    std::unique_ptr<std::FILE, detail::file_closer> f(std::fopen(file.string().c_str(), "rb"));
    if (!f) return 0;  // the reader reports it
    unsigned char magic[2] = {0, 0};
    if (std::fread(magic, 1, 2, f.get()) == 2 && magic[0] == 0x1f && magic[1] == 0x8b) return 0;  // gzip
    return size / 2;
  }

  static corpus_options first_half(corpus_options options, std::uint64_t split) {
    if (split > 0) options.last_byte = split;
    return options;
  }

  void finish(corpus_text_batch& batch) {
    finished_ = true;
    batch = corpus_text_batch{};
    if (failure_) std::rethrow_exception(failure_);
  }

  // One reader thread's loop: batches into `filled`, buffers back from `spare`.
  void read_all(corpus_reader& reader, bounded_queue<corpus_text_batch>& filled,
                bounded_queue<corpus_text_batch>& spare, std::exception_ptr& failure, double& seconds) noexcept {
    corpus_text_batch batch;
    try {
      for (;;) {
        if (auto recycled = spare.try_pop()) {
          batch = std::move(*recycled);
        } else {
          batch = corpus_text_batch{};
          // A batch ends at the document that reaches batch_bytes: room for that, up to a cap.
          batch.text_bytes.reserve(reserve_bytes_);
        }
        auto const start = std::chrono::steady_clock::now();
        bool const more = reader.next(batch);
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (!more || !filled.push(std::move(batch))) break;
      }
    } catch (...) {
      failure = std::current_exception();
      // The documents before the bad line (corpus_reader leaves them in the batch).
      try {
        if (!batch.empty()) (void)filled.push(std::move(batch));
      } catch (...) {
      }
    }
  }

  // The second reader's queues and results (published by closing `filled`).
  struct lane {
    explicit lane(std::size_t depth) : filled(std::max<std::size_t>(depth, 1)), spare(depth + 2) {}
    bounded_queue<corpus_text_batch> filled;
    bounded_queue<corpus_text_batch> spare;
    std::exception_ptr failure;
    double read_seconds = 0.0;
    std::uint64_t bytes_read = 0;
    std::thread thread;
  };

  std::size_t reserve_bytes_;
  corpus_reader reader_;
  bounded_queue<corpus_text_batch> filled_;
  bounded_queue<corpus_text_batch> spare_;
  std::exception_ptr failure_;
  double read_seconds_ = 0.0;
  std::uint64_t bytes_read_ = 0;
  bool finished_ = false;
  bool first_done_ = false;
  std::unique_ptr<lane> second_;
  std::thread thread_;
};

/// The texts of a prefetched corpus as a single-pass input range of std::string_view —
/// a `text_corpus` for tfidf_vectorizer's fit / count / transform. Each view is valid
/// until the iterator is next incremented. When `ids` is given, the id of every document
/// the range reaches is appended to it (in file order). Reading errors surface from
/// begin() or an increment.
class corpus_text_range {
 public:
  class iterator {
   public:
    using value_type = std::string_view;
    using difference_type = std::ptrdiff_t;
    using iterator_concept = std::input_iterator_tag;

    iterator() = default;
    explicit iterator(corpus_text_range* range) noexcept : range_(range) {}

    [[nodiscard]] std::string_view operator*() const noexcept { return range_->batch_.text(range_->index_); }
    iterator& operator++() {
      range_->advance();
      return *this;
    }
    void operator++(int) { range_->advance(); }
    friend bool operator==(iterator const& it, std::default_sentinel_t) noexcept { return it.at_end(); }

   private:
    [[nodiscard]] bool at_end() const noexcept { return range_->done_; }

    corpus_text_range* range_ = nullptr;
  };

  explicit corpus_text_range(corpus_prefetcher& source, std::vector<std::string>* ids = nullptr) noexcept
      : source_(&source), ids_(ids) {}
  corpus_text_range(corpus_text_range const&) = delete;
  corpus_text_range& operator=(corpus_text_range const&) = delete;

  /// The first document (reads the first batch). Call once: the range is single-pass.
  iterator begin() {
    if (!started_) {
      started_ = true;
      load();
    }
    return iterator(this);
  }
  [[nodiscard]] std::default_sentinel_t end() const noexcept { return {}; }

  /// The next batch's texts, as views valid until the next call (or the range's end):
  /// the batch-at-a-time form of iteration, which tfidf_vectorizer takes in place (no copy
  /// of the texts). Returns false once the corpus is exhausted (`views` then empty). Use
  /// either this or iteration on one range, not both.
  /// @throws what corpus_prefetcher::next throws.
  bool next_views(std::vector<std::string_view>& views) {
    views.clear();
    started_ = true;
    load();
    if (done_) return false;
    views.reserve(batch_.size());
    for (std::size_t i = 0; i < batch_.size(); ++i) views.push_back(batch_.text(i));
    return true;
  }

  /// Documents and text bytes handed out so far (all of them once the range is exhausted).
  [[nodiscard]] std::size_t documents() const noexcept { return documents_; }
  [[nodiscard]] std::uint64_t text_bytes() const noexcept { return text_bytes_; }

 private:
  void load() {
    index_ = 0;
    done_ = !source_->next(batch_);
    if (done_) return;
    documents_ += batch_.size();
    text_bytes_ += batch_.text_bytes.size();
    if (ids_ != nullptr) {
      for (std::size_t i = 0; i < batch_.size(); ++i) ids_->emplace_back(batch_.id(i));
    }
  }
  void advance() {
    if (++index_ == batch_.size()) load();
  }

  corpus_prefetcher* source_;
  std::vector<std::string>* ids_;
  corpus_text_batch batch_;
  std::size_t index_ = 0;
  bool started_ = false;
  bool done_ = false;
  std::size_t documents_ = 0;
  std::uint64_t text_bytes_ = 0;
};

}  // namespace mgpu
