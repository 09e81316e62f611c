// Specification of the NDJSON and plain-lines corpus readers (mgpu/io/corpus.hpp).
//
// Expected documents are written by hand from the fixture bytes in tests/data/corpus
// (see its README.md); JSON escapes are decoded by hand following RFC 8259.
#include <catch2/catch.hpp>

#include <cstddef>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "mgpu/io/corpus.hpp"

namespace {

std::filesystem::path fixture(char const* name) {
  return std::filesystem::path(MGPU_TEST_DATA_DIR) / "corpus" / name;
}

mgpu::corpus_options with_format(mgpu::corpus_format format) {
  mgpu::corpus_options options;
  options.format = format;
  return options;
}

// The parse_error raised by reading the whole file, if any.
std::optional<mgpu::parse_error> parse_failure(std::filesystem::path const& file,
                                               mgpu::corpus_options options = {}) {
  try {
    (void)mgpu::read_corpus(file, std::move(options));
  } catch (mgpu::parse_error const& e) {
    return e;
  }
  return std::nullopt;
}

void require_failure_at(std::filesystem::path const& file, std::size_t line,
                        std::string const& reason, mgpu::corpus_options options = {}) {
  auto const failure = parse_failure(file, std::move(options));
  REQUIRE(failure.has_value());
  CHECK(failure->file() == file.string());
  CHECK(failure->line() == line);
  std::string const what = failure->what();
  CHECK_THAT(what, Catch::StartsWith(file.string() + ":" + std::to_string(line) + ": "));
  CHECK_THAT(what, Catch::Contains(reason));
}

// basic.ndjson, decoded by hand: blank lines 2 and 7 hold no document.
std::vector<std::string> const basic_ids = {"doc-a", "42", "4", "-7", "emoji",
                                            "18446744073709551615", "z"};
std::vector<std::string> const basic_texts = {
    "Hello, world",
    "Tab\there\nnewline \"quoted\" back\\slash",
    "no id here",
    "caf\xC3\xA9 na\xC3\xAFve",
    "\xF0\x9F\x98\x80 grin and raw \xC3\x9F",
    "",
    "last line without newline"};
std::vector<std::size_t> const basic_lines = {1, 3, 4, 5, 6, 8, 9};

}  // namespace

TEST_CASE("ndjson: texts are decoded, ids are strings or decimal integers", "[io][corpus]") {
  auto const corpus = mgpu::read_corpus(fixture("basic.ndjson"));
  CHECK(corpus.ids == basic_ids);
  CHECK(corpus.texts == basic_texts);
  CHECK(corpus.first_line == 1);
}

TEST_CASE("ndjson: a document without an id member takes its 1-based line number",
          "[io][corpus]") {
  auto const corpus = mgpu::read_corpus(fixture("basic.ndjson"));
  REQUIRE(corpus.size() > 2);
  CHECK(corpus.texts[2] == "no id here");
  CHECK(corpus.ids[2] == "4");
}

TEST_CASE("ndjson: text and id members can be renamed", "[io][corpus]") {
  mgpu::corpus_options options;
  options.text_field = "body";
  options.id_field = "key";
  auto const corpus = mgpu::read_corpus(fixture("custom_fields.ndjson"), options);
  CHECK(corpus.ids == std::vector<std::string>{"k1", "7"});
  CHECK(corpus.texts == std::vector<std::string>{"first body", "second body"});
}

TEST_CASE("ndjson: a leading UTF-8 byte order mark is ignored", "[io][corpus]") {
  auto const corpus = mgpu::read_corpus(fixture("bom.ndjson"));
  CHECK(corpus.ids == std::vector<std::string>{"x"});
  CHECK(corpus.texts == std::vector<std::string>{"after a byte order mark"});
}

TEST_CASE("reliability row 14: an empty file is a valid corpus with no documents",
          "[io][corpus][reliability]") {
  for (auto const format : {mgpu::corpus_format::ndjson, mgpu::corpus_format::lines}) {
    mgpu::corpus_reader reader(fixture("empty.ndjson"), with_format(format));
    mgpu::corpus_batch batch;
    CHECK_FALSE(reader.next(batch));
    CHECK(batch.empty());
    CHECK(reader.lines_read() == 0);
  }
}

TEST_CASE("ndjson: a file of blank lines has no documents but counts its lines",
          "[io][corpus]") {
  mgpu::corpus_reader reader(fixture("blank_only.ndjson"));
  mgpu::corpus_batch batch;
  CHECK_FALSE(reader.next(batch));
  CHECK(reader.lines_read() == 3);
}

TEST_CASE("lines: every line is a document, empty ones included, with CRLF stripped",
          "[io][corpus]") {
  auto const corpus =
      mgpu::read_corpus(fixture("lines.txt"), with_format(mgpu::corpus_format::lines));
  CHECK(corpus.ids == std::vector<std::string>{"1", "2", "3", "4", "5"});
  CHECK(corpus.texts == std::vector<std::string>{"first line", "", "  spaced  ",
                                                 "na\xC3\xAFve caf\xC3\xA9",
                                                 "no newline at end"});
}

TEST_CASE("batches: every document arrives once, in order, whatever the batch and read sizes",
          "[io][corpus]") {
  // read_bytes of 1..13 makes every line straddle a read boundary at every offset.
  for (std::size_t read_bytes : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{7},
                                 std::size_t{13}, std::size_t{4} << 20}) {
    for (std::size_t batch_bytes : {std::size_t{0}, std::size_t{1}, std::size_t{20},
                                    std::size_t{60}, std::size_t{1} << 20}) {
      CAPTURE(read_bytes, batch_bytes);
      mgpu::corpus_options options;
      options.read_bytes = read_bytes;
      options.batch_bytes = batch_bytes;
      mgpu::corpus_reader reader(fixture("basic.ndjson"), options);
      std::vector<std::string> ids;
      std::vector<std::string> texts;
      mgpu::corpus_batch batch;
      while (reader.next(batch)) {
        REQUIRE_FALSE(batch.empty());
        CHECK(batch.first_line == basic_lines[ids.size()]);
        std::size_t bytes = 0;
        for (std::size_t i = 0; i < batch.size(); ++i) {
          // A batch closes at the first document that brings it to batch_bytes.
          CHECK((i == 0 || bytes < batch_bytes));
          bytes += batch.ids[i].size() + batch.texts[i].size();
        }
        ids.insert(ids.end(), batch.ids.begin(), batch.ids.end());
        texts.insert(texts.end(), batch.texts.begin(), batch.texts.end());
        if (ids.size() < basic_ids.size()) CHECK(bytes >= batch_bytes);
      }
      CHECK(batch.empty());
      CHECK(ids == basic_ids);
      CHECK(texts == basic_texts);
      CHECK(reader.lines_read() == 9);
    }
  }
}

TEST_CASE("batches: one-byte batches hold one document each", "[io][corpus]") {
  mgpu::corpus_options options;
  options.batch_bytes = 1;
  mgpu::corpus_reader reader(fixture("basic.ndjson"), options);
  mgpu::corpus_batch batch;
  std::vector<std::size_t> first_lines;
  while (reader.next(batch)) {
    CHECK(batch.size() == 1);
    first_lines.push_back(batch.first_line);
  }
  CHECK(first_lines == basic_lines);
}

TEST_CASE("lines: a line straddling read boundaries is reassembled", "[io][corpus]") {
  auto options = with_format(mgpu::corpus_format::lines);
  options.read_bytes = 3;
  auto const corpus = mgpu::read_corpus(fixture("lines.txt"), options);
  CHECK(corpus.texts == std::vector<std::string>{"first line", "", "  spaced  ",
                                                 "na\xC3\xAFve caf\xC3\xA9",
                                                 "no newline at end"});
}

TEST_CASE("max_line_bytes: a line of exactly the limit is accepted, CRLF not counted",
          "[io][corpus]") {
  // lines.txt: "first line\r\n" is 10 bytes without its line end; the longest line,
  // "no newline at end", is 17 bytes.
  auto options = with_format(mgpu::corpus_format::lines);
  options.max_line_bytes = 17;
  CHECK(mgpu::read_corpus(fixture("lines.txt"), options).size() == 5);
  options.max_line_bytes = 10;
  options.read_bytes = 4;
  // "na\xC3\xAFve caf\xC3\xA9" (line 4) is 12 bytes; line 1 must pass despite its "\r".
  require_failure_at(fixture("lines.txt"), 4, "longer than max_line_bytes (10 bytes)", options);
}

TEST_CASE("reliability row 14: a huge line is rejected with its line number",
          "[io][corpus][reliability]") {
  // Line 3 of long_line.ndjson is 212 bytes. With small reads the reader must stop
  // before buffering the whole line; with large reads it sees the line at once.
  for (std::size_t read_bytes : {std::size_t{16}, std::size_t{4} << 20}) {
    CAPTURE(read_bytes);
    mgpu::corpus_options options;
    options.max_line_bytes = 100;
    options.read_bytes = read_bytes;
    require_failure_at(fixture("long_line.ndjson"), 3, "longer than max_line_bytes (100 bytes)",
                       options);
  }
  mgpu::corpus_options options;
  options.max_line_bytes = 212;
  CHECK(mgpu::read_corpus(fixture("long_line.ndjson"), options).size() == 4);
}

TEST_CASE("max_line_bytes: the largest size_t means no limit", "[io][corpus]") {
  mgpu::corpus_options options;
  options.max_line_bytes = std::numeric_limits<std::size_t>::max();
  options.read_bytes = 5;
  CHECK(mgpu::read_corpus(fixture("long_line.ndjson"), options).size() == 4);
}

TEST_CASE("reliability row 14: invalid UTF-8 inside an NDJSON string names the line",
          "[io][corpus][reliability]") {
  require_failure_at(fixture("invalid_utf8.ndjson"), 3, "invalid UTF-8");
}

TEST_CASE("reliability row 14: invalid UTF-8 in an NDJSON key names the line",
          "[io][corpus][reliability]") {
  require_failure_at(fixture("invalid_utf8_key.ndjson"), 2, "invalid UTF-8");
}

TEST_CASE("reliability row 14: invalid UTF-8 in a plain-lines corpus names the line",
          "[io][corpus][reliability]") {
  require_failure_at(fixture("invalid_utf8.txt"), 2, "invalid UTF-8",
                     with_format(mgpu::corpus_format::lines));
}

TEST_CASE("reliability row 14: an invalid JSON line names the line",
          "[io][corpus][reliability]") {
  require_failure_at(fixture("invalid_json.ndjson"), 2, "invalid JSON");
}

TEST_CASE("reliability row 14: two JSON values on one line are invalid",
          "[io][corpus][reliability]") {
  require_failure_at(fixture("trailing_content.ndjson"), 3, "invalid JSON");
}

TEST_CASE("reliability row 14: a line that is not a JSON object is rejected",
          "[io][corpus][reliability]") {
  require_failure_at(fixture("not_object.ndjson"), 2, "expected a JSON object, got an array");
}

TEST_CASE("reliability row 14: a missing text member is rejected", "[io][corpus][reliability]") {
  require_failure_at(fixture("missing_text.ndjson"), 2, "missing text field \"text\"");
}

TEST_CASE("reliability row 14: a text member that is not a string is rejected",
          "[io][corpus][reliability]") {
  require_failure_at(fixture("text_not_string.ndjson"), 2,
                     "text field \"text\" must be a string, got an integer");
}

TEST_CASE("reliability row 14: an id that is neither string nor integer is rejected",
          "[io][corpus][reliability]") {
  require_failure_at(fixture("bad_id.ndjson"), 3,
                     "id field \"id\" must be a string or an integer, got a non-integer number");
}

TEST_CASE("reliability row 14: errors are reported only when their line is reached",
          "[io][corpus][reliability]") {
  mgpu::corpus_options options;
  options.batch_bytes = 1;
  mgpu::corpus_reader reader(fixture("invalid_json.ndjson"), options);
  mgpu::corpus_batch batch;
  REQUIRE(reader.next(batch));
  CHECK(batch.texts == std::vector<std::string>{"fine"});
  CHECK_THROWS_AS(reader.next(batch), mgpu::parse_error);
}

TEST_CASE("a missing file is a parse_error at line 0 with the system's reason", "[io][corpus]") {
  auto const missing = fixture("no_such_file.ndjson");
  try {
    mgpu::corpus_reader reader(missing);
    FAIL("opening a missing file did not throw");
  } catch (mgpu::parse_error const& e) {
    CHECK(e.line() == 0);
    CHECK(e.file() == missing.string());
    CHECK_THAT(std::string(e.what()), Catch::Contains("cannot open: No such file or directory"));
  }
}

TEST_CASE("reading a directory is a parse_error, not a crash or an empty corpus",
          "[io][corpus]") {
  require_failure_at(fixture(""), 1, "read error");
}

TEST_CASE("read_bytes must be positive", "[io][corpus]") {
  mgpu::corpus_options options;
  options.read_bytes = 0;
  CHECK_THROWS_AS(mgpu::corpus_reader(fixture("basic.ndjson"), options), mgpu::invalid_argument);
}

TEST_CASE("corpus_reader is move-only", "[io][corpus]") {
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<mgpu::corpus_reader>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<mgpu::corpus_reader>);
  mgpu::corpus_reader first(fixture("basic.ndjson"));
  mgpu::corpus_reader second(std::move(first));
  mgpu::corpus_batch batch;
  REQUIRE(second.next(batch));
  CHECK(batch.ids.front() == "doc-a");
}
