// gzip-compressed corpora (mgpu/io/corpus.hpp, "Compression"): the same documents as the
// uncompressed file at every block size, several members, and clear errors for truncated,
// corrupted and trailing data. The compressed files are made here with zlib's deflate
// (gzip wrapper), independently of the reader's inflate path.
#include <catch2/catch.hpp>

#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "mgpu/io/corpus.hpp"
#include "../test_support.hpp"
#include "gzip_test_support.hpp"

namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

void write_bytes(fs::path const& p, std::string const& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

using mgpu_test::gzip;

std::string sample_ndjson() {
  std::string s = "\xEF\xBB\xBF";
  for (int i = 0; i < 200; ++i) {
    s += "{\"id\": \"d" + std::to_string(i) + "\", \"text\": \"caf\\u00e9 number " + std::to_string(i * 7919 % 1000) +
         " \\\"quoted\\\" " + std::string(static_cast<std::size_t>(i % 37), 'x') + "\"}" + (i % 3 == 0 ? "\r\n" : "\n");
    if (i % 50 == 0) s += "   \n";
  }
  return s;  // no line end after the last line
}

mgpu::corpus_batch read_all(fs::path const& p, mgpu::corpus_format format, std::size_t block) {
  mgpu::corpus_options o;
  o.format = format;
  o.read_bytes = block;
  return mgpu::read_corpus(p, o);
}

}  // namespace

TEST_CASE("corpus: a gzip file reads as the uncompressed file, at every block size", "[io][gzip]") {
  mgpu_test::temp_dir dir;
  auto const text = sample_ndjson();
  write_bytes(dir / "plain.ndjson", text);
  write_bytes(dir / "corpus.ndjson.gz", gzip(text));
  write_bytes(dir / "no-suffix", gzip(text));  // detected by the magic bytes, not the name
  auto const half = text.size() / 2;
  write_bytes(dir / "two.gz", gzip(text.substr(0, half)) + gzip(text.substr(half)));  // cat a.gz b.gz
  for (auto const format : {mgpu::corpus_format::ndjson, mgpu::corpus_format::lines}) {
    for (std::size_t block : {std::size_t{1}, std::size_t{2}, std::size_t{7}, std::size_t{4096}, std::size_t{4} << 20}) {
      INFO("block " << block);
      auto const expected = read_all(dir / "plain.ndjson", format, block);
      REQUIRE(expected.size() == (format == mgpu::corpus_format::ndjson ? 200u : 204u));
      for (char const* name : {"corpus.ndjson.gz", "no-suffix", "two.gz"}) {
        INFO(name);
        auto const got = read_all(dir / name, format, block);
        CHECK(got.ids == expected.ids);
        CHECK(got.texts == expected.texts);
        CHECK(got.first_line == expected.first_line);
      }
    }
  }
  // An empty member and an empty file are empty corpora.
  write_bytes(dir / "empty.gz", gzip(""));
  CHECK(read_all(dir / "empty.gz", mgpu::corpus_format::lines, 4096).empty());
}

TEST_CASE("corpus: errors inside a gzip file keep their line numbers", "[io][gzip]") {
  mgpu_test::temp_dir dir;
  write_bytes(dir / "bad.gz", gzip("{\"text\": \"a\"}\n{\"text\": \"b\"}\nnot json\n"));
  try {
    (void)read_all(dir / "bad.gz", mgpu::corpus_format::ndjson, 3);
    FAIL("no error");
  } catch (mgpu::parse_error const& e) {
    CHECK(e.line() == 3);
    CHECK_THAT(e.what(), Contains("invalid JSON"));
  }
}

TEST_CASE("corpus: truncated, corrupted and trailing gzip data are errors naming the byte", "[io][gzip][reliability]") {
  mgpu_test::temp_dir dir;
  auto const packed = gzip(sample_ndjson());
  // Every truncation after the magic: never a silently shorter corpus.
  for (std::size_t n = 2; n < packed.size(); ++n) {
    write_bytes(dir / "cut.gz", packed.substr(0, n));
    INFO("truncated to " << n << " of " << packed.size());
    CHECK_THROWS_AS(read_all(dir / "cut.gz", mgpu::corpus_format::ndjson, 4096), mgpu::parse_error);
  }
  write_bytes(dir / "cut.gz", packed.substr(0, packed.size() - 3));
  CHECK_THROWS_WITH(read_all(dir / "cut.gz", mgpu::corpus_format::ndjson, 4096),
                    Contains("truncated gzip stream at compressed byte"));
  // A flipped byte anywhere in the deflate data or the trailer: always an error; in the
  // trailer it is the CRC-32 (or length) check that names the byte.
  for (std::size_t at = 10; at < packed.size(); ++at) {
    auto bad = packed;
    bad[at] = static_cast<char>(bad[at] ^ 0x5a);
    write_bytes(dir / "bad.gz", bad);
    INFO("flipped byte " << at);
    CHECK_THROWS_AS(read_all(dir / "bad.gz", mgpu::corpus_format::ndjson, 4096), mgpu::parse_error);
  }
  for (std::size_t from_end : {std::size_t{6}, std::size_t{2}}) {
    auto bad = packed;
    bad[packed.size() - from_end] = static_cast<char>(bad[packed.size() - from_end] ^ 0x01);
    write_bytes(dir / "bad.gz", bad);
    CHECK_THROWS_WITH(read_all(dir / "bad.gz", mgpu::corpus_format::ndjson, 4096),
                      Contains("corrupt gzip data") && Contains("at compressed byte"));
  }
  write_bytes(dir / "trailing.gz", packed + "garbage");
  CHECK_THROWS_WITH(read_all(dir / "trailing.gz", mgpu::corpus_format::ndjson, 4096),
                    Contains("not a gzip member at compressed byte " + std::to_string(packed.size())));
}
