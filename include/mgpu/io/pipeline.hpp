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
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "mgpu/core/error.hpp"
#include "mgpu/io/bounded_queue.hpp"
#include "mgpu/io/corpus.hpp"

namespace mgpu {

/// Reads a corpus file (corpus.hpp: NDJSON or lines, plain or gzip) on a background
/// thread, at most `depth` batches ahead of the consumer; depth 0 reads on the consumer's
/// thread inside next() (no thread; for one core). Not copyable or movable.
class corpus_prefetcher {
 public:
  /// Opens `file` on the calling thread and starts reading it.
  /// @throws parse_error (line 0) when the file cannot be opened; invalid_argument for
  ///         bad options or depth 0.
  explicit corpus_prefetcher(std::filesystem::path file, corpus_options options = {}, std::size_t depth = 2)
      : reserve_bytes_(std::min(options.batch_bytes, std::size_t{64} << 20) + (std::size_t{1} << 16)),
        reader_(std::move(file), std::move(options)),
        filled_(std::max<std::size_t>(depth, 1)),
        spare_(depth + 2) {
    if (depth > 0) thread_ = std::thread([this] { read_all(); });
  }
  corpus_prefetcher(corpus_prefetcher const&) = delete;
  corpus_prefetcher& operator=(corpus_prefetcher const&) = delete;
  ~corpus_prefetcher() {
    filled_.close();
    spare_.close();
    if (thread_.joinable()) thread_.join();
  }

  /// Replaces `batch` with the next batch in file order (its old buffers go back to the
  /// reader for reuse). @returns false, with `batch` empty and its buffers and the
  /// reader's spare ones freed, after the last batch.
  /// @throws whatever reading the file threw (see the file comment), once every document
  ///         before the failure has been returned.
  bool next(corpus_text_batch& batch) {
    if (!thread_.joinable()) return next_here(batch);
    auto filled = filled_.pop();
    batch.clear();
    if (!filled) {
      // The reader thread has closed filled_: it touches the spare queue no more.
      finished_ = true;
      batch = corpus_text_batch{};
      while (spare_.try_pop()) {
      }
      if (failure_) std::rethrow_exception(failure_);
      return false;
    }
    (void)spare_.try_push(batch);  // a full spare queue just lets the buffers go
    batch = std::move(*filled);
    return true;
  }

  /// Seconds the reader thread spent reading and parsing (not waiting for room in the
  /// queue), and bytes of the (decompressed) file it read; final once next() has
  /// returned false.
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

  void read_all() noexcept {
    corpus_text_batch batch;
    try {
      for (;;) {
        if (auto spare = spare_.try_pop()) {
          batch = std::move(*spare);
        } else {
          batch = corpus_text_batch{};
          // A batch ends at the document that reaches batch_bytes: room for that, up to a cap.
          batch.text_bytes.reserve(reserve_bytes_);
        }
        auto const start = std::chrono::steady_clock::now();
        bool const more = reader_.next(batch);
        read_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (!more || !filled_.push(std::move(batch))) break;
      }
    } catch (...) {
      failure_ = std::current_exception();
      // The documents before the bad line (corpus_reader leaves them in the batch).
      try {
        if (!batch.empty()) (void)filled_.push(std::move(batch));
      } catch (...) {
      }
    }
    bytes_read_ = reader_.bytes_read();
    filled_.close();  // publishes failure_, read_seconds_ and bytes_read_ to the consumer
  }

  std::size_t reserve_bytes_;
  corpus_reader reader_;
  bounded_queue<corpus_text_batch> filled_;
  bounded_queue<corpus_text_batch> spare_;
  std::exception_ptr failure_;
  double read_seconds_ = 0.0;
  std::uint64_t bytes_read_ = 0;
  bool finished_ = false;
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
