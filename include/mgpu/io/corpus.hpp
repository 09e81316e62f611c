// mgpu/io/corpus.hpp — streaming readers for text corpora: NDJSON and one document per line.
//
// Documents come off disk in batches of about `batch_bytes`, so a corpus larger than memory
// can be vectorised batch by batch. The file is read in large blocks (`read_bytes`) and split
// into lines in place; a line that straddles two blocks is completed by growing the buffer,
// never by reading line by line. Memory in use is about two blocks plus twice the longest
// line seen (at most `max_line_bytes`), plus the current batch.
//
// Formats
// - `corpus_format::ndjson` (https://github.com/ndjson/ndjson-spec): one JSON object per line,
//   parsed with simdjson, which decodes every JSON escape (\n, \", \uXXXX, surrogate pairs).
//   The text is the string member `text_field`. The id is the member `id_field`, a string or
//   an integer (written back in decimal); without that member the id is the document's
//   1-based line number in decimal. Other members are ignored; of repeated members the first
//   counts. Lines holding only JSON whitespace are skipped. JSON is read strictly (RFC 8259):
//   e.g. a raw tab inside a string is an error.
// - `corpus_format::lines`: every line is one document, empty lines included (an empty
//   document), and its id is its 1-based line number in decimal.
// Both accept "\n" and "\r\n" line ends, a last line without a line end, and a UTF-8 byte
// order mark at the start of the file (ignored). An empty file is a valid corpus with no
// documents.
//
// Compression: a file that starts with gzip's magic bytes (1f 8b) is decompressed while it
// is read (zlib's inflate, one block at a time, never the whole file), whatever its name,
// on a thread of its own a few blocks ahead of the parsing (detail::inflate_stage);
// several gzip members one after another (`cat a.gz b.gz`) are one corpus, as for gzip -d.
// Everything else about the corpus is as for the uncompressed file: the same documents,
// ids, line numbers and errors. A truncated or corrupted stream (a bad deflate block or a
// CRC-32 that does not match) and bytes after the last member that are not a gzip member
// are parse_errors naming the compressed byte offset. The stream is checked as it is read,
// so damaged data may first surface as an error in the text it garbles (invalid UTF-8 or
// JSON on its line); damage that still parses is caught by the member's CRC-32 at its
// end. A damaged corpus is never read to its end without an error.
//
// Errors (RELIABILITY.md row 14): every problem is a `mgpu::parse_error` carrying the file and
// the 1-based line number — invalid UTF-8 anywhere in a line, invalid JSON, a line that is not
// an object, a missing or non-string text member, an id that is neither a string nor an
// integer, a line longer than `max_line_bytes`, a read error. There is no skip-and-count mode:
// a corpus is either read completely or rejected at its first bad line. A missing file is a
// `parse_error` with line 0.
//
// Byte ranges (for splitting one file between processes, e.g. MPI ranks): with
// `first_byte` / `last_byte` set, a reader returns only the lines that START at a byte
// offset in [first_byte, last_byte) — a line starts at offset 0 or just after a "\n" — the
// split of Hadoop's TextInputFormat: consecutive ranges that cover [0, file size) return
// every line exactly once, whatever the offsets. The reader seeks to the range; only the
// bytes of its lines (plus the look for the first "\n" at each end) are read.
// `first_line` gives the lines of the file before the range (count_corpus_lines of the
// earlier ranges), so that line numbers — in errors, and as the ids of `lines` documents
// or of NDJSON documents without an id — are those of the whole file. A byte order mark is
// recognised only at offset 0. Plain files only: a gzip stream cannot be entered in the
// middle (invalid_argument).
//
// Thread safety: a reader is a single-threaded cursor; distinct readers are independent.
#pragma once

#include <simdjson.h>
#include <sys/types.h>
#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "mgpu/core/error.hpp"
#include "mgpu/io/bounded_queue.hpp"

namespace mgpu {

/// How each line of a corpus file is turned into a document.
enum class corpus_format { ndjson, lines };

/// Options of `corpus_reader` and `read_corpus`.
struct corpus_options {
  corpus_format format = corpus_format::ndjson;
  /// NDJSON member holding the document text (must be a JSON string).
  std::string text_field = "text";
  /// NDJSON member holding the document id (a JSON string or integer; optional).
  std::string id_field = "id";
  /// A batch is closed once its ids and texts reach this many bytes (at least one document).
  std::size_t batch_bytes = std::size_t{32} << 20;
  /// Longest accepted line in bytes, not counting its "\n" or "\r\n".
  std::size_t max_line_bytes = std::size_t{64} << 20;
  /// Bytes asked of the operating system per read; a tuning knob (must be > 0).
  std::size_t read_bytes = std::size_t{4} << 20;
  /// Read only the lines starting in [first_byte, last_byte) of a plain file (see the file
  /// comment, "Byte ranges"); the defaults read the whole file.
  std::uint64_t first_byte = 0;
  std::uint64_t last_byte = std::numeric_limits<std::uint64_t>::max();
  /// Lines of the file before the range (line numbers continue from it); 0 for a whole file.
  std::size_t first_line = 0;
};

/// A run of consecutive documents: `ids[i]` and `texts[i]` describe one document.
struct corpus_batch {
  std::vector<std::string> ids;
  /// UTF-8 text of each document, JSON escapes decoded.
  std::vector<std::string> texts;
  /// 1-based line number of the first document (0 while the batch is empty).
  std::size_t first_line = 0;

  [[nodiscard]] std::size_t size() const noexcept { return texts.size(); }
  [[nodiscard]] bool empty() const noexcept { return texts.empty(); }
  void clear() noexcept {
    ids.clear();
    texts.clear();
    first_line = 0;
  }
};

/// A run of consecutive documents stored end to end: no allocation per document, and the
/// buffers are reused when the batch is refilled. `text(i)` and `id(i)` are views into the
/// batch, valid until it is next changed. Same documents, ids and `first_line` as a
/// `corpus_batch` read with the same options.
struct corpus_text_batch {
  /// The texts end to end; text i is [text_ends[i - 1], text_ends[i]) (from 0 for i = 0).
  std::string text_bytes;
  std::vector<std::size_t> text_ends;
  /// The ids end to end, delimited by id_ends likewise.
  std::string id_bytes;
  std::vector<std::size_t> id_ends;
  /// 1-based line number of the first document (0 while the batch is empty).
  std::size_t first_line = 0;

  [[nodiscard]] std::size_t size() const noexcept { return text_ends.size(); }
  [[nodiscard]] bool empty() const noexcept { return text_ends.empty(); }
  [[nodiscard]] std::string_view text(std::size_t i) const noexcept {
    std::size_t const begin = i == 0 ? 0 : text_ends[i - 1];
    return std::string_view(text_bytes).substr(begin, text_ends[i] - begin);
  }
  [[nodiscard]] std::string_view id(std::size_t i) const noexcept {
    std::size_t const begin = i == 0 ? 0 : id_ends[i - 1];
    return std::string_view(id_bytes).substr(begin, id_ends[i] - begin);
  }
  /// Appends one document. Amortised O(id + text bytes).
  void push(std::string_view id, std::string_view text) {
    id_bytes.append(id);
    id_ends.push_back(id_bytes.size());
    text_bytes.append(text);
    text_ends.push_back(text_bytes.size());
  }
  /// Keeps the first `n` documents (n <= size()).
  void truncate(std::size_t n) {
    text_ends.resize(n);
    id_ends.resize(n);
    text_bytes.resize(n == 0 ? 0 : text_ends.back());
    id_bytes.resize(n == 0 ? 0 : id_ends.back());
    if (n == 0) first_line = 0;
  }
  /// Empties the batch, keeping its buffers.
  void clear() noexcept {
    text_bytes.clear();
    text_ends.clear();
    id_bytes.clear();
    id_ends.clear();
    first_line = 0;
  }
};

namespace detail {

struct file_closer {
  void operator()(std::FILE* file) const noexcept { std::fclose(file); }
};

/// The offset of the first line starting at or after `offset` in `file` (a line starts at 0
/// or just after a "\n"): 0 for offset 0, else one past the first "\n" at or after
/// offset - 1, or the file's size when there is none. O(bytes to that "\n").
/// @throws parse_error (line 0) on a seek or read error.
inline std::uint64_t line_start_at_or_after(std::FILE* file, std::string const& name, std::uint64_t offset,
                                            std::uint64_t size) {
  if (offset == 0) return 0;
  if (offset > size) return size;
  if (::fseeko(file, static_cast<off_t>(offset - 1), SEEK_SET) != 0) {
    throw parse_error(name, 0, "cannot seek: " + std::error_code(errno, std::generic_category()).message());
  }
  std::vector<char> block(std::size_t{64} << 10);
  std::uint64_t pos = offset - 1;
  for (;;) {
    auto const got = std::fread(block.data(), 1, block.size(), file);
    if (got == 0) {
      if (std::ferror(file)) throw parse_error(name, 0, "read error: " + std::error_code(errno, std::generic_category()).message());
      return size;
    }
    if (auto const* nl = static_cast<char const*>(std::memchr(block.data(), '\n', got))) {
      return pos + static_cast<std::uint64_t>(nl - block.data()) + 1;
    }
    pos += got;
  }
}

/// The aligned range [begin, end) of the lines starting in [first_byte, last_byte) of an
/// open plain file, and its size. @throws parse_error (line 0) on an I/O error;
/// invalid_argument for a gzip file or first_byte > last_byte.
struct line_range {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  std::uint64_t size = 0;
};
inline line_range aligned_line_range(std::FILE* file, std::string const& name, std::uint64_t first_byte,
                                     std::uint64_t last_byte) {
  MGPU_EXPECTS(first_byte <= last_byte, "corpus_options: first_byte (", first_byte, ") is after last_byte (",
               last_byte, ")");
  auto const fail = [&](char const* what) {
    throw parse_error(name, 0, std::string(what) + ": " + std::error_code(errno, std::generic_category()).message());
  };
  unsigned char magic[2] = {0, 0};
  if (::fseeko(file, 0, SEEK_SET) != 0) fail("cannot seek");
  auto const got = std::fread(magic, 1, 2, file);
  if (got < 2 && std::ferror(file)) fail("read error");
  MGPU_EXPECTS(!(got == 2 && magic[0] == 0x1f && magic[1] == 0x8b), "'", name,
               "': a byte range of a gzip-compressed corpus cannot be read (a gzip stream cannot be entered in "
               "the middle)");
  if (::fseeko(file, 0, SEEK_END) != 0) fail("cannot seek");
  auto const end_offset = ::ftello(file);
  if (end_offset < 0) fail("cannot tell the size");
  line_range r;
  r.size = static_cast<std::uint64_t>(end_offset);
  r.begin = line_start_at_or_after(file, name, first_byte, r.size);
  r.end = std::max(r.begin, line_start_at_or_after(file, name, std::min(last_byte, r.size), r.size));
  return r;
}

/// zlib's inflate over a gzip stream read from a FILE in blocks (see corpus.hpp's
/// "Compression"). `read` fills `out` with up to `wanted` decompressed bytes.
class gzip_source {
 public:
  /// `head`: bytes already read from the file (they start with the gzip magic).
  gzip_source(std::string name, std::FILE* file, std::size_t block, std::string_view head)
      : name_(std::move(name)), file_(file), in_(std::max(block, head.size())) {
    if (::inflateInit2(&z_, 15 + 16) != Z_OK) throw error("zlib: inflateInit2 failed");
    std::memcpy(in_.data(), head.data(), head.size());
    z_.next_in = in_.data();
    z_.avail_in = static_cast<uInt>(head.size());
  }
  gzip_source(gzip_source const&) = delete;
  gzip_source& operator=(gzip_source const&) = delete;
  ~gzip_source() { ::inflateEnd(&z_); }

  /// Decompressed bytes written to out (fewer than `wanted` only at the end of the stream).
  /// @throws parse_error (line `line`) for a read error, a truncated or corrupted stream.
  std::size_t read(char* out, std::size_t wanted, std::size_t line) {
    wanted = std::min<std::size_t>(wanted, std::numeric_limits<uInt>::max());
    z_.next_out = reinterpret_cast<Bytef*>(out);
    z_.avail_out = static_cast<uInt>(wanted);
    while (z_.avail_out > 0) {
      if (z_.avail_in == 0) {
        if (raw_eof_) break;
        errno = 0;
        auto const got = std::fread(in_.data(), 1, in_.size(), file_);
        if (got < in_.size()) {
          if (std::ferror(file_)) {
            throw parse_error(name_, line, "read error: " + std::error_code(errno, std::generic_category()).message());
          }
          raw_eof_ = true;
        }
        z_.next_in = in_.data();
        z_.avail_in = static_cast<uInt>(got);
        if (got == 0) break;
      }
      if (member_ended_) {
        // Another member follows: it must start with the gzip magic (gzip -d refuses other
        // trailing bytes too, with a warning).
        if (z_.next_in[0] != 0x1f || (z_.avail_in > 1 && z_.next_in[1] != 0x8b)) {
          fail(line, offset(), "bytes after the last gzip member are not a gzip member");
        }
        member_base_ += z_.total_in;
        ::inflateReset(&z_);
        member_ended_ = false;
      }
      int const rc = ::inflate(&z_, Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        member_ended_ = true;
      } else if (rc == Z_BUF_ERROR) {
        if (z_.avail_in != 0) fail(line, offset(), "zlib made no progress");
      } else if (rc != Z_OK) {
        fail(line, offset(), std::string("corrupt gzip data (") + (z_.msg != nullptr ? z_.msg : "zlib error") + ")");
      }
    }
    auto const produced = wanted - z_.avail_out;
    if (produced < wanted && !member_ended_) fail(line, offset(), "truncated gzip stream");
    return produced;
  }

 private:
  [[nodiscard]] std::uint64_t offset() const noexcept { return member_base_ + z_.total_in; }
  [[noreturn]] void fail(std::size_t line, std::uint64_t at, std::string const& what) const {
    throw parse_error(name_, line, detail::message(what, " at compressed byte ", at));
  }

  std::string name_;
  std::FILE* file_;
  std::vector<unsigned char> in_;
  z_stream z_{};
  bool raw_eof_ = false;
  bool member_ended_ = false;
  std::uint64_t member_base_ = 0;
};

/// gzip_source on a thread of its own — decompression as a stage of the reading
/// pipeline: blocks of `block` decompressed bytes are inflated up to inflate_depth blocks
/// ahead of the reader, which copies them out. read() has gzip_source::read's contract;
/// an error of the stream is raised when the reader reaches it (after every good block),
/// as a parse_error at the reader's line.
class inflate_stage {
 public:
  static constexpr std::size_t inflate_depth = 3;

  inflate_stage(std::string name, std::FILE* file, std::size_t block, std::string_view head)
      : name_(name), source_(std::move(name), file, block, head), block_(block), blocks_(inflate_depth),
        spare_(inflate_depth + 2) {
    thread_ = std::thread([this] { run(); });
  }
  inflate_stage(inflate_stage const&) = delete;
  inflate_stage& operator=(inflate_stage const&) = delete;
  ~inflate_stage() {
    blocks_.close();
    spare_.close();
    thread_.join();
  }

  std::size_t read(char* out, std::size_t wanted, std::size_t line) {
    std::size_t done = 0;
    while (done < wanted) {
      if (pos_ == current_.size()) {
        if (ended_) break;
        auto next = blocks_.pop();
        if (!next) {
          ended_ = true;
          if (failure_) std::rethrow_exception(failure_);
          if (!reason_.empty()) throw parse_error(name_, line, reason_);
          break;
        }
        (void)spare_.try_push(current_);
        current_ = std::move(*next);
        pos_ = 0;
        continue;
      }
      auto const take = std::min(wanted - done, current_.size() - pos_);
      std::memcpy(out + done, current_.data() + pos_, take);
      pos_ += take;
      done += take;
    }
    return done;
  }

 private:
  void run() noexcept {
    try {
      for (;;) {
        std::vector<char> block;
        if (auto spare = spare_.try_pop()) block = std::move(*spare);
        block.resize(block_);
        auto const got = source_.read(block.data(), block_, 0);
        block.resize(got);
        if (got > 0 && !blocks_.push(std::move(block))) break;
        if (got < block_) break;
      }
    } catch (parse_error const& e) {
      // The reason without "file:0: ": the reader names its own line.
      std::string const what = e.what();
      reason_ = what.substr(std::min(what.size(), e.file().size() + std::to_string(e.line()).size() + 3));
    } catch (...) {
      failure_ = std::current_exception();
    }
    blocks_.close();  // publishes reason_ and failure_
  }

  std::string name_;
  gzip_source source_;
  std::size_t block_;
  bounded_queue<std::vector<char>> blocks_;
  bounded_queue<std::vector<char>> spare_;
  std::vector<char> current_;
  std::size_t pos_ = 0;
  bool ended_ = false;
  std::string reason_;
  std::exception_ptr failure_;
  std::thread thread_;
};

[[nodiscard]] inline char const* json_type_name(simdjson::dom::element_type type) noexcept {
  switch (type) {
    case simdjson::dom::element_type::ARRAY: return "an array";
    case simdjson::dom::element_type::OBJECT: return "an object";
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64: return "an integer";
    case simdjson::dom::element_type::DOUBLE: return "a non-integer number";
    case simdjson::dom::element_type::STRING: return "a string";
    case simdjson::dom::element_type::BOOL: return "a boolean";
    case simdjson::dom::element_type::NULL_VALUE: return "null";
  }
  return "an unknown JSON value";
}

}  // namespace detail

/// Streams the documents of one corpus file in batches. Move-only.
///
/// Usage: `corpus_reader reader(path); corpus_batch batch; while (reader.next(batch)) {...}`,
/// or with a `corpus_text_batch` (no allocation per document). After an exception the
/// reader's position is unspecified; destroy it.
///
/// How NDJSON is read: whole lines are taken from the buffer in chunks of about
/// `chunk_bytes` and parsed as one stream of documents by simdjson's DOM document stream
/// (`dom::parser::parse_many`: one SIMD pass finds the structure of the whole chunk, then
/// each document is validated and decoded completely, as a single parse would). Each
/// document must sit on a line of its own; the text and id are copied into the batch. A
/// chunk in which anything departs from that (an error of any kind, two values on one line,
/// a value spanning lines, a line over max_line_bytes, a byte order mark) is read again one
/// line at a time, which raises the error of the first bad line with its line number; the
/// documents and errors are thus exactly those of reading one line at a time.
class corpus_reader {
 public:
  /// Bytes of whole lines parsed as one simdjson document stream (a chunk holds at least
  /// one line, however long).
  static constexpr std::size_t chunk_bytes = std::size_t{1} << 20;
  /// Bytes read at a time by next(corpus_batch&) before they are copied into strings.
  static constexpr std::size_t string_batch_piece = std::size_t{4} << 20;

  /// Opens `file`; nothing is read until `next`.
  /// @throws parse_error (line 0) when the file cannot be opened, with the system's reason;
  ///         invalid_argument when `options.read_bytes` is 0.
  explicit corpus_reader(std::filesystem::path file, corpus_options options = {})
      : path_(std::move(file)), name_(path_.string()), options_(std::move(options)) {
    MGPU_EXPECTS(options_.read_bytes > 0, "corpus_options::read_bytes must be positive");
    errno = 0;
    file_.reset(std::fopen(name_.c_str(), "rb"));
    if (!file_) throw parse_error(name_, 0, "cannot open: " + system_reason(errno));
    if (options_.first_byte != 0 || options_.last_byte != std::numeric_limits<std::uint64_t>::max()) {
      auto const range = detail::aligned_line_range(file_.get(), name_, options_.first_byte, options_.last_byte);
      if (::fseeko(file_.get(), static_cast<off_t>(range.begin), SEEK_SET) != 0) {
        throw parse_error(name_, 0, "cannot seek: " + system_reason(errno));
      }
      ranged_ = true;
      from_offset_0_ = range.begin == 0;
      remaining_ = range.end - range.begin;
      started_ = true;  // not a gzip file (checked)
      at_eof_ = remaining_ == 0;
    }
    lines_read_ = options_.first_line;
  }

  /// Replaces `batch` with the next documents, in file order, until their ids and texts
  /// hold at least `batch_bytes` bytes or the file ends. O(bytes read).
  /// @returns false, with `batch` empty, once every document has been returned.
  /// @throws parse_error with the file and the 1-based line of the first bad line; `batch`
  ///         then holds the documents of this call before that line.
  bool next(corpus_text_batch& batch) {
    batch.clear();
    std::size_t bytes = 0;
    while (batch.empty() || bytes < options_.batch_bytes) {
      auto const chunk = next_chunk();
      if (!chunk) break;
      begin_ += take_lines(batch, *chunk, bytes);
      scanned_ = std::max(scanned_, begin_);
    }
    return !batch.empty();
  }

  /// As above, into a batch of strings (one allocation per id and text). The documents are
  /// read in pieces of at most string_batch_piece bytes, so no second copy of a large batch
  /// is ever held.
  bool next(corpus_batch& batch) {
    batch.clear();
    auto const limit = options_.batch_bytes;
    std::size_t bytes = 0;
    try {
      while (batch.empty() || bytes < limit) {
        options_.batch_bytes = std::min(string_batch_piece, limit - bytes);
        if (!next(scratch_)) break;
        if (batch.empty()) batch.first_line = scratch_.first_line;
        for (std::size_t i = 0; i < scratch_.size(); ++i) {
          batch.ids.emplace_back(scratch_.id(i));
          batch.texts.emplace_back(scratch_.text(i));
          bytes += batch.ids.back().size() + batch.texts.back().size();
        }
      }
    } catch (...) {
      options_.batch_bytes = limit;
      throw;
    }
    options_.batch_bytes = limit;
    return !batch.empty();
  }

  /// Lines consumed so far, blank and skipped ones included.
  [[nodiscard]] std::size_t lines_read() const noexcept { return lines_read_; }

  /// Bytes of the (decompressed) file read from it so far, including bytes buffered but not
  /// yet returned as documents.
  [[nodiscard]] std::uint64_t bytes_read() const noexcept { return bytes_read_; }

  [[nodiscard]] std::filesystem::path const& path() const noexcept { return path_; }

 private:
  static constexpr std::size_t padding = simdjson::SIMDJSON_PADDING;

  [[nodiscard]] static std::string system_reason(int code) {
    return std::error_code(code, std::generic_category()).message();
  }

  // Whole lines at the front of the unconsumed input: [begin_, e) where e follows a "\n"
  // (or is the end of the file), holding about chunk_bytes or one line if longer; nullopt
  // at the end. Consumes nothing: the caller advances begin_.
  std::optional<std::string_view> next_chunk() {
    for (;;) {
      auto* const data = buffer_.data();
      auto* const newline =
          scanned_ < end_ ? static_cast<char*>(std::memchr(data + scanned_, '\n', end_ - scanned_))
                          : nullptr;
      if (newline != nullptr) {
        scanned_ = static_cast<std::size_t>(newline - data);
        auto const limit = std::min(end_, std::max(begin_ + chunk_bytes, scanned_ + 1));
        auto const* last =
            static_cast<char const*>(::memrchr(newline, '\n', static_cast<std::size_t>(data + limit - newline)));
        return std::string_view(data + begin_, static_cast<std::size_t>(last - data) + 1 - begin_);
      }
      scanned_ = end_;
      // One byte of slack for a "\r" that may precede the "\n" still to come; written so that
      // max_line_bytes = SIZE_MAX (no limit) cannot overflow.
      if (auto const pending = end_ - begin_; pending > 1 && pending - 1 > options_.max_line_bytes) {
        throw_too_long(lines_read_ + 1);
      }
      if (at_eof_) {
        if (begin_ == end_) return std::nullopt;
        return std::string_view(data + begin_, end_ - begin_);
      }
      fill();
    }
  }

  // Appends the documents of the chunk's lines to `batch` until `bytes` reaches batch_bytes;
  // returns the bytes of the chunk consumed (whole lines).
  std::size_t take_lines(corpus_text_batch& batch, std::string_view chunk, std::size_t& bytes) {
    if (options_.format == corpus_format::ndjson &&
        !(from_offset_0_ && lines_read_ == options_.first_line && chunk.starts_with("\xEF\xBB\xBF"))) {
      auto const size = batch.size();
      auto const lines = lines_read_;
      auto const first = batch.first_line;
      auto const counted = bytes;
      if (auto const used = take_ndjson_stream(batch, chunk, bytes)) return *used;
      batch.truncate(size);
      batch.first_line = first;
      lines_read_ = lines;
      bytes = counted;
    }
    return take_lines_one_by_one(batch, chunk, bytes);
  }

  std::size_t take_lines_one_by_one(corpus_text_batch& batch, std::string_view chunk, std::size_t& bytes) {
    std::size_t pos = 0;
    while (pos < chunk.size() && (batch.empty() || bytes < options_.batch_bytes)) {
      auto const* newline = static_cast<char const*>(std::memchr(chunk.data() + pos, '\n', chunk.size() - pos));
      std::size_t const end = newline != nullptr ? static_cast<std::size_t>(newline - chunk.data()) : chunk.size();
      auto const line = finish_line(chunk.substr(pos, end - pos));
      pos = newline != nullptr ? end + 1 : end;
      auto const before = batch.size();
      if (options_.format == corpus_format::ndjson) {
        if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
        append_ndjson(batch, line);
      } else {
        append_plain(batch, line);
      }
      if (before == 0) batch.first_line = lines_read_;
      bytes += batch.id(before).size() + batch.text(before).size();
    }
    return pos;
  }

  // Lines in [from, to) of `chunk`, which hold only JSON whitespace; false if one of them is
  // longer than max_line_bytes. `to` is just after a "\n" or the end of the chunk.
  bool count_blank_lines(std::string_view chunk, std::size_t from, std::size_t to) {
    while (from < to) {
      auto const* newline = static_cast<char const*>(std::memchr(chunk.data() + from, '\n', to - from));
      std::size_t const end = newline != nullptr ? static_cast<std::size_t>(newline - chunk.data()) : to;
      std::size_t bytes = end - from;
      if (bytes > 0 && chunk[end - 1] == '\r') --bytes;
      if (bytes > options_.max_line_bytes) return false;
      ++lines_read_;
      from = end + 1;
    }
    return true;
  }

  // The fast path (see the class comment): nullopt when the chunk must be read line by line.
  std::optional<std::size_t> take_ndjson_stream(corpus_text_batch& batch, std::string_view chunk, std::size_t& bytes) {
    simdjson::dom::document_stream stream;
    if (parser_.parse_many(chunk.data(), chunk.size(), std::max(chunk.size(), chunk_bytes)).get(stream)) {
      return std::nullopt;
    }
    std::size_t pos = 0;  // start of the first line not yet consumed
    char digits[24];
    for (auto it = stream.begin(); it != stream.end(); ++it) {
      simdjson::dom::element root;
      if ((*it).get(root) != simdjson::SUCCESS) return std::nullopt;
      std::size_t const start = it.current_index();
      if (start < pos || start >= chunk.size()) return std::nullopt;  // two values on one line
      // Blank lines before the document, then the start of its own line.
      auto const* before = static_cast<char const*>(::memrchr(chunk.data() + pos, '\n', start - pos));
      std::size_t const line_start = before != nullptr ? static_cast<std::size_t>(before - chunk.data()) + 1 : pos;
      if (!count_blank_lines(chunk, pos, line_start)) return std::nullopt;
      simdjson::dom::object object;
      if (root.get(object) != simdjson::SUCCESS) return std::nullopt;
      auto const source = it.source();
      std::size_t const doc_end = start + source.size();
      if (doc_end > chunk.size() || std::memchr(source.data(), '\n', source.size()) != nullptr) return std::nullopt;
      auto const* after = static_cast<char const*>(std::memchr(chunk.data() + doc_end, '\n', chunk.size() - doc_end));
      std::size_t const line_end = after != nullptr ? static_cast<std::size_t>(after - chunk.data()) : chunk.size();
      // Only JSON whitespace may follow the document on its line (anything else, e.g. a
      // byte that is not UTF-8, is the line reader's error to report).
      for (std::size_t i = doc_end; i < line_end; ++i) {
        char const c = chunk[i];
        if (c != ' ' && c != '\t' && c != '\r') return std::nullopt;
      }
      std::size_t line_bytes = line_end - line_start;
      if (line_bytes > 0 && chunk[line_end - 1] == '\r') --line_bytes;
      if (line_bytes > options_.max_line_bytes) return std::nullopt;
      ++lines_read_;
      std::string_view text;
      if (object.at_key(options_.text_field).get(text) != simdjson::SUCCESS) return std::nullopt;
      std::string_view id;
      simdjson::dom::element id_element;
      if (object.at_key(options_.id_field).get(id_element) != simdjson::SUCCESS) {
        id = decimal(digits, lines_read_);
      } else if (id_element.get(id) != simdjson::SUCCESS) {
        std::int64_t i = 0;
        std::uint64_t u = 0;
        if (id_element.type() == simdjson::dom::element_type::INT64 && id_element.get(i) == simdjson::SUCCESS) {
          id = decimal(digits, i);
        } else if (id_element.type() == simdjson::dom::element_type::UINT64 && id_element.get(u) == simdjson::SUCCESS) {
          id = decimal(digits, u);
        } else {
          return std::nullopt;
        }
      }
      if (batch.empty()) batch.first_line = lines_read_;
      batch.push(id, text);
      bytes += id.size() + text.size();
      pos = after != nullptr ? line_end + 1 : chunk.size();
      if (bytes >= options_.batch_bytes) return pos;
    }
    if (stream.truncated_bytes() != 0) return std::nullopt;
    // Only blank lines may follow the last document (an unfinished one is not skipped).
    for (std::size_t i = pos; i < chunk.size(); ++i) {
      char const c = chunk[i];
      if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return std::nullopt;
    }
    if (!count_blank_lines(chunk, pos, chunk.size())) return std::nullopt;
    return chunk.size();
  }

  template <class Int>
  static std::string_view decimal(char (&digits)[24], Int v) noexcept {
    auto const end = std::to_chars(digits, digits + sizeof digits, v).ptr;
    return std::string_view(digits, static_cast<std::size_t>(end - digits));
  }

  std::string_view finish_line(std::string_view line) {
    ++lines_read_;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > options_.max_line_bytes) throw_too_long(lines_read_);
    if (from_offset_0_ && lines_read_ == options_.first_line + 1 && line.starts_with("\xEF\xBB\xBF")) {
      line.remove_prefix(3);
    }
    return line;
  }

  [[noreturn]] void throw_too_long(std::size_t line) const {
    throw parse_error(name_, line,
                      detail::message("line longer than max_line_bytes (", options_.max_line_bytes,
                                      " bytes)"));
  }

  // Moves the unfinished line to the front, grows the buffer if the line fills it, and
  // appends the next block of the file. Keeps `padding` spare bytes after `end_` so that
  // simdjson may read past the end of any line without a copy.
  void fill() {
    if (begin_ > 0) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      scanned_ -= begin_;
      begin_ = 0;
    }
    auto const capacity = buffer_.empty() ? 0 : buffer_.size() - padding;
    if (end_ + options_.read_bytes > capacity) {
      buffer_.resize(std::max(2 * capacity, end_ + options_.read_bytes) + padding);
    }
    auto const wanted = options_.read_bytes;
    if (gzip_) {
      fill_decompressed();
      return;
    }
    // The first read takes at least the two bytes that tell a gzip file.
    auto asked = started_ ? wanted : std::max<std::size_t>(wanted, 2);
    if (ranged_) asked = static_cast<std::size_t>(std::min<std::uint64_t>(asked, remaining_));
    if (end_ + asked + padding > buffer_.size()) buffer_.resize(end_ + asked + padding);
    auto const got = std::fread(buffer_.data() + end_, 1, asked, file_.get());
    if (got < asked && std::ferror(file_.get())) {
      throw parse_error(name_, lines_read_ + 1, "read error: " + system_reason(errno));
    }
    if (!started_) {
      started_ = true;
      if (got >= 2 && static_cast<unsigned char>(buffer_[end_]) == 0x1f &&
          static_cast<unsigned char>(buffer_[end_ + 1]) == 0x8b) {
        // A gzip file: what was read is compressed input; decompress from here on.
        gzip_ = std::make_unique<detail::inflate_stage>(name_, file_.get(), options_.read_bytes,
                                                        std::string_view(buffer_.data() + end_, got));
        fill_decompressed();
        return;
      }
    }
    end_ += got;
    bytes_read_ += got;
    if (got < asked) at_eof_ = true;
    if (ranged_) {
      remaining_ -= got;
      if (remaining_ == 0) at_eof_ = true;
    }
  }

  void fill_decompressed() {
    auto const wanted = options_.read_bytes;
    auto const got = gzip_->read(buffer_.data() + end_, wanted, lines_read_ + 1);
    end_ += got;
    bytes_read_ += got;
    if (got < wanted) at_eof_ = true;
  }

  void check_utf8(std::string_view line) const {
    if (!simdjson::validate_utf8(line.data(), line.size())) {
      throw parse_error(name_, lines_read_, "invalid UTF-8");
    }
  }

  void append_plain(corpus_text_batch& batch, std::string_view line) const {
    check_utf8(line);
    char digits[24];
    batch.push(decimal(digits, lines_read_), line);
  }

  void append_ndjson(corpus_text_batch& batch, std::string_view line) {
    // simdjson also rejects bad UTF-8, but its error codes are not guaranteed to be stable
    // across CPU kernels, so UTF-8 is checked first to name the fault reliably.
    check_utf8(line);
    simdjson::dom::element root;
    if (auto const code = parser_.parse(line.data(), line.size(), false).get(root)) {
      throw parse_error(name_, lines_read_,
                        std::string("invalid JSON: ") + simdjson::error_message(code));
    }
    simdjson::dom::object object;
    if (root.get(object) != simdjson::SUCCESS) {
      throw parse_error(name_, lines_read_,
                        detail::message("expected a JSON object, got ",
                                        detail::json_type_name(root.type())));
    }
    simdjson::dom::element text;
    if (object.at_key(options_.text_field).get(text) != simdjson::SUCCESS) {
      throw parse_error(name_, lines_read_,
                        detail::message("missing text field \"", options_.text_field, '"'));
    }
    std::string_view text_value;
    if (text.get(text_value) != simdjson::SUCCESS) {
      throw parse_error(name_, lines_read_,
                        detail::message("text field \"", options_.text_field,
                                        "\" must be a string, got ",
                                        detail::json_type_name(text.type())));
    }
    batch.push(ndjson_id(object), text_value);
  }

  [[nodiscard]] std::string ndjson_id(simdjson::dom::object const& object) const {
    simdjson::dom::element id;
    if (object.at_key(options_.id_field).get(id) != simdjson::SUCCESS) {
      return std::to_string(lines_read_);
    }
    switch (id.type()) {
      case simdjson::dom::element_type::STRING: return std::string(id.get_string().value_unsafe());
      case simdjson::dom::element_type::INT64: return std::to_string(id.get_int64().value_unsafe());
      case simdjson::dom::element_type::UINT64:
        return std::to_string(id.get_uint64().value_unsafe());
      default:
        throw parse_error(name_, lines_read_,
                          detail::message("id field \"", options_.id_field,
                                          "\" must be a string or an integer, got ",
                                          detail::json_type_name(id.type())));
    }
  }

  std::filesystem::path path_;
  std::string name_;
  corpus_options options_;
  std::unique_ptr<std::FILE, detail::file_closer> file_;
  std::unique_ptr<detail::inflate_stage> gzip_;  // set when the file is gzip-compressed
  bool started_ = false;
  // A byte range (see the file comment): bytes of it not read yet.
  bool ranged_ = false;
  std::uint64_t remaining_ = 0;
  bool from_offset_0_ = true;  // the first line read starts at offset 0 (a byte order mark may open it)
  // Unconsumed input is [begin_, end_); [begin_, scanned_) is known to hold no "\n".
  std::vector<char> buffer_;
  std::size_t begin_ = 0;
  std::size_t scanned_ = 0;
  std::size_t end_ = 0;
  bool at_eof_ = false;
  std::size_t lines_read_ = 0;
  std::uint64_t bytes_read_ = 0;
  simdjson::dom::parser parser_;
  corpus_text_batch scratch_;
};

/// Reads a whole corpus into one batch: `ids` and `texts` hold every document in file order
/// (`first_line` is the line of the first). For corpora that fit in memory; see
/// `corpus_reader` for formats and errors. `options.batch_bytes` is ignored.
/// @throws parse_error, invalid_argument as `corpus_reader`.
[[nodiscard]] inline corpus_batch read_corpus(std::filesystem::path const& file,
                                              corpus_options options = {}) {
  options.batch_bytes = std::numeric_limits<std::size_t>::max();
  corpus_reader reader(file, std::move(options));
  corpus_batch all;
  reader.next(all);
  return all;
}

/// The lines of a plain file that start in [first_byte, last_byte) (see corpus.hpp's "Byte
/// ranges"): its "\n"s there, plus one for a last line without a line end. Summed over the
/// ranges before a reader's, the reader's `first_line`. Reads only the range. O(bytes).
/// @throws parse_error (line 0) when the file cannot be opened or read; invalid_argument
///         for a gzip file or first_byte > last_byte.
[[nodiscard]] inline std::uint64_t count_corpus_lines(std::filesystem::path const& file, std::uint64_t first_byte,
                                                      std::uint64_t last_byte) {
  auto const name = file.string();
  errno = 0;
  std::unique_ptr<std::FILE, detail::file_closer> f(std::fopen(name.c_str(), "rb"));
  if (!f) throw parse_error(name, 0, "cannot open: " + std::error_code(errno, std::generic_category()).message());
  auto const range = detail::aligned_line_range(f.get(), name, first_byte, last_byte);
  if (::fseeko(f.get(), static_cast<off_t>(range.begin), SEEK_SET) != 0) {
    throw parse_error(name, 0, "cannot seek: " + std::error_code(errno, std::generic_category()).message());
  }
  std::vector<char> block(std::size_t{1} << 20);
  std::uint64_t lines = 0;
  std::uint64_t left = range.end - range.begin;
  char last = '\n';
  while (left > 0) {
    auto const want = static_cast<std::size_t>(std::min<std::uint64_t>(left, block.size()));
    auto const got = std::fread(block.data(), 1, want, f.get());
    if (got < want) throw parse_error(name, 0, "read error: " + std::error_code(errno, std::generic_category()).message());
    lines += static_cast<std::uint64_t>(std::count(block.data(), block.data() + got, '\n'));
    last = block[got - 1];
    left -= got;
  }
  return lines + (last != '\n' ? 1 : 0);
}

}  // namespace mgpu
