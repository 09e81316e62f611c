// libFuzzer target: the corpus reader (mgpu/io/corpus.hpp), RELIABILITY.md row 14. The
// reader takes a file, so each input is written to a temporary file of this process.
//
// Properties: only parse_error escapes; a parse error names the file and a line inside
// it; the block size (`read_bytes`) and batch size change neither the documents read nor
// the line of the error; every text is valid UTF-8. In the plain-lines format the
// documents are checked against the lines of the input, split here independently, and
// the error line against the first line that is too long or not UTF-8.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz_support.hpp"
#include "mgpu/io/corpus.hpp"

namespace {

// Small enough that the fuzzer's inputs (4 KiB by default) reach it.
constexpr std::size_t max_line_bytes = 256;

class temp_file {
 public:
  temp_file() {
    char name[] = "/tmp/mgpu-fuzz-corpus-XXXXXX";
    fd_ = ::mkstemp(name);
    if (fd_ < 0) mgpu_fuzz::fail("cannot create a temporary file");
    path_ = name;
  }
  ~temp_file() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  temp_file(temp_file const&) = delete;
  temp_file& operator=(temp_file const&) = delete;

  void write(std::string_view bytes) const {
    if (::ftruncate(fd_, 0) != 0) mgpu_fuzz::fail("cannot truncate the temporary file");
    std::size_t done = 0;
    while (done < bytes.size()) {
      auto const n = ::pwrite(fd_, bytes.data() + done, bytes.size() - done,
                              static_cast<off_t>(done));
      if (n <= 0) mgpu_fuzz::fail("cannot write the temporary file");
      done += static_cast<std::size_t>(n);
    }
  }
  [[nodiscard]] std::string const& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// RFC 3629 UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto const b = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (b < 0x80) {
      ++i;
      continue;
    } else if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
      cp = b & 0x1Fu;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      cp = b & 0x0Fu;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      cp = b & 0x07u;
    } else {
      return false;
    }
    if (s.size() - i < len) return false;
    for (std::size_t k = 1; k < len; ++k) {
      auto const c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0u) != 0x80u) return false;
      cp = (cp << 6) | (c & 0x3Fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

struct outcome {
  std::vector<std::string> ids;
  std::vector<std::string> texts;
  std::size_t error_line = 0;
  std::string error;
  bool failed = false;
};

outcome read(temp_file const& file, std::string_view text, mgpu::corpus_options options) {
  outcome out;
  try {
    mgpu::corpus_reader reader(file.path(), std::move(options));
    mgpu::corpus_batch batch;
    while (reader.next(batch)) {
      mgpu_fuzz::check(!batch.empty() && batch.ids.size() == batch.texts.size(),
                       "a batch holds an id per text");
      for (std::size_t i = 0; i < batch.size(); ++i) {
        mgpu_fuzz::check(valid_utf8(batch.texts[i]), "texts are valid UTF-8");
        out.ids.push_back(std::move(batch.ids[i]));
        out.texts.push_back(std::move(batch.texts[i]));
      }
    }
  } catch (mgpu::parse_error const& e) {
    mgpu_fuzz::check_error_line(e, text, file.path());
    mgpu_fuzz::check(e.line() > 0, "a corpus error names a line");
    out.failed = true;
    out.error_line = e.line();
    out.error = e.what();
  }
  return out;
}

// The lines of `text` as the plain-lines format defines them, and the 1-based number of
// the first line that must be rejected (0 if none).
std::pair<std::vector<std::string_view>, std::size_t> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t bad = 0;
  while (!text.empty()) {
    auto const newline = text.find('\n');
    auto line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (bad == 0 && (line.size() > max_line_bytes || !valid_utf8(line))) bad = lines.size() + 1;
    if (lines.empty() && line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
    lines.push_back(line);
  }
  return {std::move(lines), bad};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  static temp_file const file;
  std::string_view const text(reinterpret_cast<char const*>(data), size);
  file.write(text);

  mgpu::corpus_options whole;
  whole.max_line_bytes = max_line_bytes;
  whole.read_bytes = std::size_t{1} << 16;
  mgpu::corpus_options pieces = whole;
  pieces.read_bytes = 1 + size % 7;
  pieces.batch_bytes = 1;

  auto const a = read(file, text, whole);
  auto const b = read(file, text, pieces);
  mgpu_fuzz::check(a.failed == b.failed && a.error_line == b.error_line && a.error == b.error,
                   "block and batch sizes do not change the error", a.error + " | " + b.error);
  if (!a.failed) {
    mgpu_fuzz::check(a.ids == b.ids && a.texts == b.texts,
                     "block and batch sizes do not change the documents");
  }

  pieces.format = mgpu::corpus_format::lines;
  auto const plain = read(file, text, pieces);
  auto const [lines, bad] = split_lines(text);
  if (bad != 0) {
    mgpu_fuzz::check(plain.failed && plain.error_line == bad,
                     "plain lines: the first over-long or non-UTF-8 line is reported",
                     plain.error);
  } else {
    mgpu_fuzz::check(!plain.failed, "plain lines: valid input is read", plain.error);
    mgpu_fuzz::check(plain.texts.size() == lines.size(), "plain lines: one document per line");
    for (std::size_t i = 0; i < lines.size(); ++i) {
      mgpu_fuzz::check(plain.texts[i] == lines[i], "plain lines: the text is the line");
      mgpu_fuzz::check(plain.ids[i] == std::to_string(i + 1), "plain lines: the id is the line");
    }
  }
  return 0;
}
