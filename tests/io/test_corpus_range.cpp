// corpus_options first_byte / last_byte / first_line and count_corpus_lines (mgpu/io/corpus.hpp,
// "Byte ranges"): for every split of a file into three consecutive byte ranges, the
// documents of the three readers, one after another, are those of one reader of the whole
// file, with the same ids and line numbers; the line counts of the ranges add up.
// Expected documents are written by hand beside each file.
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "../test_support.hpp"
#include "mgpu/io/corpus.hpp"

namespace {

struct doc {
  std::string id, text;
  bool operator==(doc const&) const = default;
};

std::vector<doc> read_range(std::filesystem::path const& file, mgpu::corpus_format format, std::uint64_t first,
                            std::uint64_t last, std::size_t first_line) {
  mgpu::corpus_options o;
  o.format = format;
  o.first_byte = first;
  o.last_byte = last;
  o.first_line = first_line;
  o.read_bytes = 3;  // lines straddle many reads
  mgpu::corpus_reader reader(file, o);
  mgpu::corpus_batch batch;
  std::vector<doc> docs;
  while (reader.next(batch)) {
    for (std::size_t i = 0; i < batch.size(); ++i) docs.push_back({batch.ids[i], batch.texts[i]});
  }
  return docs;
}

void write(std::filesystem::path const& path, std::string const& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

void check_every_split(std::filesystem::path const& file, mgpu::corpus_format format, std::uint64_t size,
                       std::vector<doc> const& want, std::uint64_t lines) {
  for (std::uint64_t a = 0; a <= size; ++a) {
    for (std::uint64_t b = a; b <= size; ++b) {
      auto const n0 = mgpu::count_corpus_lines(file, 0, a);
      auto const n1 = mgpu::count_corpus_lines(file, a, b);
      auto const n2 = mgpu::count_corpus_lines(file, b, size);
      INFO("split at " << a << ", " << b);
      REQUIRE(n0 + n1 + n2 == lines);
      auto got = read_range(file, format, 0, a, 0);
      auto const part1 = read_range(file, format, a, b, n0);
      auto const part2 = read_range(file, format, b, size, n0 + n1);
      got.insert(got.end(), part1.begin(), part1.end());
      got.insert(got.end(), part2.begin(), part2.end());
      REQUIRE(got == want);
    }
  }
}

}  // namespace

TEST_CASE("corpus byte ranges: every split into three ranges reads every NDJSON document once, ids and lines of the whole file") {
  mgpu_test::temp_dir dir;
  auto const file = dir / "c.ndjson";
  // A byte order mark, a CRLF line, a blank line, documents without an id (their ids are
  // their line numbers: 2 and 5), no line end at the end.
  std::string const bytes = "\xEF\xBB\xBF{\"id\":\"a\",\"text\":\"one\"}\n{\"text\":\"two\"}\r\n  \n{\"id\":7,\"text\":\"\"}\n{\"text\":\"five\"}";
  write(file, bytes);
  std::vector<doc> const want{{"a", "one"}, {"2", "two"}, {"7", ""}, {"5", "five"}};
  REQUIRE(read_range(file, mgpu::corpus_format::ndjson, 0, bytes.size(), 0) == want);
  check_every_split(file, mgpu::corpus_format::ndjson, bytes.size(), want, 5);
}

TEST_CASE("corpus byte ranges: lines format, empty lines are documents, a final line end adds no line") {
  mgpu_test::temp_dir dir;
  auto const file = dir / "c.txt";
  std::string const bytes = "x\n\nthird line\n";
  write(file, bytes);
  std::vector<doc> const want{{"1", "x"}, {"2", ""}, {"3", "third line"}};
  check_every_split(file, mgpu::corpus_format::lines, bytes.size(), want, 3);
}

TEST_CASE("corpus byte ranges: an error names its line in the whole file; gzip and reversed ranges are refused") {
  mgpu_test::temp_dir dir;
  auto const file = dir / "c.ndjson";
  std::string const bytes = "{\"text\":\"ok\"}\n{\"text\":\"ok\"}\n{\"text\": }\n";
  write(file, bytes);
  auto const lines_before = mgpu::count_corpus_lines(file, 0, 20);
  REQUIRE(lines_before == 2);  // lines 1 and 2 start at 0 and 14
  auto const message = mgpu_test::message_of<mgpu::parse_error>(
      [&] { (void)read_range(file, mgpu::corpus_format::ndjson, 20, bytes.size(), lines_before); });
  CHECK_THAT(message, Catch::Contains(":3:"));
  CHECK(read_range(file, mgpu::corpus_format::ndjson, 0, 20, 0).size() == 2);

  auto const gz = dir / "c.gz";
  write(gz, std::string("\x1f\x8b\x08\x00", 4));
  CHECK_THAT(mgpu_test::message_of<mgpu::invalid_argument>([&] { (void)mgpu::count_corpus_lines(gz, 1, 2); }),
             Catch::Contains("gzip"));
  CHECK_THAT(mgpu_test::message_of<mgpu::invalid_argument>(
                 [&] { (void)read_range(file, mgpu::corpus_format::ndjson, 5, 2, 0); }),
             Catch::Contains("first_byte"));
}
