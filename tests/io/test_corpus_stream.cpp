// The fast corpus paths of issue 21: NDJSON chunks parsed as one simdjson document stream,
// corpus_text_batch, and the pipeline (bounded_queue, corpus_prefetcher, corpus_text_range). Expected
// documents are built by the test itself (texts and ids chosen first, then encoded as
// JSON by the test's own encoder), or written by hand for the small fixture.
#include <catch2/catch.hpp>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <ranges>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../test_support.hpp"
#include "gzip_test_support.hpp"
#include "mgpu/algorithms/tfidf.hpp"
#include "mgpu/io/bounded_queue.hpp"
#include "mgpu/io/corpus.hpp"
#include "mgpu/io/pipeline.hpp"

namespace {

using Catch::Matchers::Contains;
namespace fs = std::filesystem;

struct document {
  std::string id;
  std::string text;
  std::size_t line;
  friend bool operator==(document const&, document const&) = default;
};

void write_bytes(fs::path const& p, std::string const& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

using mgpu_test::gzip;

// RFC 8259 string encoding, written independently of the library: every non-ASCII code
// point below U+10000 as \uXXXX taken from the UTF-8 bytes, the rest raw, so that both
// escaped and raw UTF-8 occur.
std::string json_string(std::string const& s, bool escape_non_ascii) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto const c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20) {
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else if (escape_non_ascii && (c & 0xE0) == 0xC0) {  // two-byte sequence
      unsigned const cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu);
      out += "\\u0";
      out += hex[(cp >> 8) & 15];
      out += hex[(cp >> 4) & 15];
      out += hex[cp & 15];
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// A corpus of `count` documents with blank lines, CRLF ends, ids that are strings,
// integers or absent, escapes, raw and escaped UTF-8, and four documents longer than a
// reader chunk; returns the file bytes and fills `docs`.
std::string make_corpus(std::size_t count, std::vector<document>& docs) {
  std::vector<std::string> const pieces = {"plain words", "tab\there", "quote \" and \\ backslash",
                                           "line\nbreak", "caf\xC3\xA9 na\xC3\xAFve", "\xF0\x9F\x98\x80 grin",
                                           "ctl \x01 byte", ""};
  std::string file;
  std::size_t line = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (i % 17 == 3) {
      file += "\n";
      ++line;
    }
    if (i % 29 == 5) {
      file += "  \t \r\n";
      ++line;
    }
    std::string text = pieces[i % pieces.size()] + " #" + std::to_string(i);
    if (i % (count / 4) == count / 8) text += std::string(mgpu::corpus_reader::chunk_bytes + 1000, 'x');
    ++line;
    document d{"", text, line};
    std::string object;
    switch (i % 3) {
      case 0:
        d.id = "doc-" + std::to_string(i);
        object = "{\"id\":" + json_string(d.id, false) + ",\"text\":" + json_string(text, i % 2 == 0) + "}";
        break;
      case 1:
        d.id = std::to_string(i * 1000);
        object = "{ \"text\" : " + json_string(text, true) + " , \"other\": [1, {\"a\": null}], \"id\": " + d.id + " }";
        break;
      default:
        d.id = std::to_string(line);
        object = "{\"text\":" + json_string(text, false) + "}";
    }
    file += object;
    file += i % 5 == 0 ? "\r\n" : "\n";
    docs.push_back(std::move(d));
  }
  return file;
}

std::vector<document> read_text_batches(fs::path const& p, mgpu::corpus_options const& o, std::size_t* batches = nullptr) {
  mgpu::corpus_reader reader(p, o);
  mgpu::corpus_text_batch batch;
  std::vector<document> out;
  std::size_t n = 0;
  while (reader.next(batch)) {
    ++n;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      // Lines of later documents are not in the batch; the first one's is.
      out.push_back({std::string(batch.id(i)), std::string(batch.text(i)), i == 0 ? batch.first_line : 0});
    }
  }
  if (batches != nullptr) *batches = n;
  return out;
}

std::vector<document> without_lines_but_first(std::vector<document> docs, std::vector<document> const& got) {
  // Keeps the line only where `got` recorded one (a batch's first document).
  for (std::size_t i = 0; i < docs.size() && i < got.size(); ++i) {
    if (got[i].line == 0) docs[i].line = 0;
  }
  return docs;
}

}  // namespace

TEST_CASE("ndjson stream: a corpus of many chunks reads as built, in text batches, string batches, gzip and the pipeline",
          "[io][corpus][pipeline]") {
  mgpu_test::temp_dir dir;
  std::vector<document> docs;
  auto const bytes = make_corpus(3000, docs);
  REQUIRE(bytes.size() > 2 * mgpu::corpus_reader::chunk_bytes);
  write_bytes(dir / "c.ndjson", bytes);
  write_bytes(dir / "c.ndjson.gz", gzip(bytes));
  for (char const* name : {"c.ndjson", "c.ndjson.gz"}) {
    CAPTURE(name);
    mgpu::corpus_options o;
    o.batch_bytes = 100000;
    std::size_t batches = 0;
    auto const got = read_text_batches(dir / name, o, &batches);
    CHECK(batches > 3);
    CHECK(got == without_lines_but_first(docs, got));

    auto const all = mgpu::read_corpus(dir / name);
    REQUIRE(all.size() == docs.size());
    bool same = all.first_line == 1;
    for (std::size_t i = 0; i < docs.size(); ++i) same = same && all.ids[i] == docs[i].id && all.texts[i] == docs[i].text;
    CHECK(same);

    mgpu::corpus_prefetcher reader(dir / name, o, std::string_view(name).ends_with(".gz") ? 0 : 2);
    std::vector<std::string> ids;
    mgpu::corpus_text_range texts(reader, &ids);
    static_assert(std::ranges::input_range<mgpu::corpus_text_range>);
    std::size_t i = 0;
    bool texts_match = true;
    for (std::string_view t : texts) texts_match = texts_match && i < docs.size() && t == docs[i++].text;
    CHECK(texts_match);
    CHECK(i == docs.size());
    CHECK(texts.documents() == docs.size());
    REQUIRE(ids.size() == docs.size());
    bool ids_match = true;
    for (std::size_t j = 0; j < docs.size(); ++j) ids_match = ids_match && ids[j] == docs[j].id;
    CHECK(ids_match);
    CHECK(reader.bytes_read() == bytes.size());
  }
}

TEST_CASE("ndjson stream: split at every read and batch boundary of a small fixture, the documents are the same",
          "[io][corpus]") {
  mgpu_test::temp_dir dir;
  // By hand: line 2 blank, line 4 blank (spaces), CRLF on line 3; ids "a", 3 (the line of
  // a document without id), 7 (an integer), "z".
  std::string const bytes =
      "{\"id\":\"a\",\"text\":\"x\\ty\"}\n\n{\"text\":\"no id\"}\r\n  \n{\"id\":7,\"text\":\"caf\\u00e9\"}\n"
      "{\"id\":\"z\",\"text\":\"\"}";
  std::vector<document> const expected = {
      {"a", "x\ty", 1}, {"3", "no id", 3}, {"7", "caf\xC3\xA9", 5}, {"z", "", 6}};
  write_bytes(dir / "s.ndjson", bytes);
  write_bytes(dir / "s.ndjson.gz", gzip(bytes));
  for (char const* name : {"s.ndjson", "s.ndjson.gz"}) {
    for (std::size_t read_bytes = 1; read_bytes <= bytes.size() + 1; ++read_bytes) {
      for (std::size_t batch_bytes = 0; batch_bytes <= 14; ++batch_bytes) {
        CAPTURE(name, read_bytes, batch_bytes);
        mgpu::corpus_options o;
        o.read_bytes = read_bytes;
        o.batch_bytes = batch_bytes;
        mgpu::corpus_reader reader(dir / name, o);
        mgpu::corpus_text_batch batch;
        std::vector<document> got;
        while (reader.next(batch)) {
          std::size_t bytes_in_batch = 0;
          for (std::size_t i = 0; i < batch.size(); ++i) {
            // A batch closes at the first document that brings it to batch_bytes.
            REQUIRE((i == 0 || bytes_in_batch < batch_bytes));
            bytes_in_batch += batch.id(i).size() + batch.text(i).size();
            got.push_back({std::string(batch.id(i)), std::string(batch.text(i)),
                           i == 0 ? batch.first_line : expected[got.size()].line});
          }
        }
        REQUIRE(got == expected);
        CHECK(reader.lines_read() == 6);
      }
    }
  }
}

TEST_CASE("ndjson stream: a bad line deep in a chunk is reported at its own line", "[io][corpus][reliability]") {
  mgpu_test::temp_dir dir;
  std::vector<document> docs;
  auto const good = make_corpus(400, docs);
  // Lines of the good corpus, then the bad line, then more good lines.
  struct bad_case {
    char const* line;
    char const* reason;
  };
  std::vector<bad_case> const cases = {
      {"{\"text\":\"a\"} {\"text\":\"b\"}", "invalid JSON"},
      {"{\"text\":", "invalid JSON"},
      {"[1, 2]", "expected a JSON object, got an array"},
      {"{\"id\":\"x\"}", "missing text field \"text\""},
      {"{\"text\":3}", "text field \"text\" must be a string, got an integer"},
      {"{\"text\":\"x\",\"id\":true}", "id field \"id\" must be a string or an integer, got a boolean"},
      {"{\"text\":\"bad \xC3\x28 utf8\"}", "invalid UTF-8"},
      {"{\"text\":\"a\",\"x\":[1,]}", "invalid JSON"},
      {"17", "expected a JSON object, got an integer"},
  };
  std::size_t const good_lines = static_cast<std::size_t>(std::count(good.begin(), good.end(), '\n'));
  for (auto const& c : cases) {
    CAPTURE(c.line);
    write_bytes(dir / "bad.ndjson", good + c.line + "\n{\"text\":\"after\"}\n");
    try {
      (void)mgpu::read_corpus(dir / "bad.ndjson");
      FAIL("no error");
    } catch (mgpu::parse_error const& e) {
      CHECK(e.line() == good_lines + 1);
      CHECK_THAT(e.what(), Contains(c.reason));
    }
  }
  // A value spanning two lines: its first line is the bad one.
  write_bytes(dir / "bad.ndjson", good + "{\"text\":\n\"split\"}\n");
  CHECK(mgpu_test::message_of<mgpu::parse_error>([&] { (void)mgpu::read_corpus(dir / "bad.ndjson"); })
            .find(":" + std::to_string(good_lines + 1) + ": invalid JSON") != std::string::npos);
}

TEST_CASE("pipeline: every batch before a bad line is delivered, then the reader's error", "[io][pipeline][reliability]") {
  mgpu_test::temp_dir dir;
  std::string bytes;
  for (int i = 0; i < 5000; ++i) bytes += "{\"text\":\"document number " + std::to_string(i) + "\"}\n";
  bytes += "{\"text\": nope}\n";
  write_bytes(dir / "bad.ndjson", bytes);
  mgpu::corpus_options o;
  o.batch_bytes = 1000;
  for (std::size_t const depth : {std::size_t{0}, std::size_t{1}, std::size_t{2}}) {
    CAPTURE(depth);
    mgpu::corpus_prefetcher reader(dir / "bad.ndjson", o, depth);
    mgpu::corpus_text_batch batch;
    std::size_t documents = 0;
    std::string const message = mgpu_test::message_of<mgpu::parse_error>([&] {
      while (reader.next(batch)) documents += batch.size();
    });
    CHECK(documents == 5000);
    CHECK_THAT(message, Contains(":5001: invalid JSON"));
  }
}

TEST_CASE("pipeline: a truncated gzip file is an error naming the compressed byte, after the good batches",
          "[io][pipeline][gzip][reliability]") {
  mgpu_test::temp_dir dir;
  std::vector<document> docs;
  auto const packed = gzip(make_corpus(3000, docs));
  write_bytes(dir / "cut.gz", packed.substr(0, packed.size() / 2));
  mgpu::corpus_options o;
  o.batch_bytes = 10000;
  o.read_bytes = 65536;
  mgpu::corpus_prefetcher reader(dir / "cut.gz", o);
  std::vector<std::string> ids;
  mgpu::corpus_text_range texts(reader, &ids);
  std::size_t seen = 0;
  std::string const message = mgpu_test::message_of<mgpu::parse_error>([&] {
    for (std::string_view t : texts) seen += t.empty() ? 0 : 1;
  });
  CHECK_THAT(message, Contains("at compressed byte"));
  CHECK(seen > 0);
  CHECK(seen < docs.size());
}

TEST_CASE("pipeline: a prefetcher destroyed before the end stops its thread", "[io][pipeline]") {
  mgpu_test::temp_dir dir;
  std::string bytes;
  for (int i = 0; i < 20000; ++i) bytes += "{\"text\":\"x " + std::to_string(i) + "\"}\n";
  write_bytes(dir / "c.ndjson", bytes);
  mgpu::corpus_options o;
  o.batch_bytes = 100;
  for (int round = 0; round < 20; ++round) {
    mgpu::corpus_prefetcher reader(dir / "c.ndjson", o, 1);
    mgpu::corpus_text_batch batch;
    REQUIRE(reader.next(batch));
    CHECK(batch.text(0) == "x 0");
  }
  CHECK_THROWS_AS(mgpu::corpus_prefetcher(dir / "missing.ndjson"), mgpu::parse_error);
}

TEST_CASE("pipeline: counting a prefetched corpus gives the counts of the corpus held in memory", "[io][pipeline]") {
  mgpu_test::temp_dir dir;
  std::vector<document> docs;
  write_bytes(dir / "c.ndjson", make_corpus(2000, docs));
  std::vector<std::string> texts;
  for (auto const& d : docs) texts.push_back(d.text);
  mgpu::tfidf_vectorizer<float, std::int32_t> in_memory, streamed;
  auto const expected = in_memory.count(texts);
  mgpu::corpus_options o;
  o.batch_bytes = 50000;
  mgpu::corpus_prefetcher reader(dir / "c.ndjson", o, 2);
  mgpu::corpus_text_range range(reader);
  auto const got = streamed.count(range);
  CHECK(streamed.vocabulary() == in_memory.vocabulary());
  REQUIRE(got.nnz() == expected.nnz());
  auto const a = got.view();
  auto const b = expected.view();
  CHECK(std::equal(a.row_offsets, a.row_offsets + a.rows + 1, b.row_offsets));
  CHECK(std::equal(a.col_indices, a.col_indices + a.nnz(), b.col_indices));
  CHECK(std::equal(a.values, a.values + a.nnz(), b.values));
}

TEST_CASE("pipeline: next_views hands out every document once, batch by batch, with the ids",
          "[io][pipeline]") {
  mgpu_test::temp_dir dir;
  std::vector<document> docs;
  write_bytes(dir / "c.ndjson", make_corpus(1500, docs));
  mgpu::corpus_options o;
  o.batch_bytes = 20000;
  mgpu::corpus_prefetcher reader(dir / "c.ndjson", o, 2);
  std::vector<std::string> ids;
  mgpu::corpus_text_range range(reader, &ids);
  std::vector<std::string_view> views;
  std::size_t seen = 0;
  std::size_t batches = 0;
  bool same = true;
  while (range.next_views(views)) {
    ++batches;
    for (auto v : views) same = same && seen < docs.size() && v == docs[seen++].text;
  }
  CHECK(same);
  CHECK(views.empty());
  CHECK(batches > 2);
  CHECK(seen == docs.size());
  CHECK(range.documents() == docs.size());
  REQUIRE(ids.size() == docs.size());
  for (std::size_t i = 0; i < docs.size(); ++i) REQUIRE(ids[i] == docs[i].id);
  CHECK_FALSE(range.next_views(views));  // stays at the end
}

TEST_CASE("ndjson stream: a byte after a document on its line is that line's error, whatever the batch size",
          "[io][corpus][reliability]") {
  // Found by fuzz_corpus: with one document per batch the fast path returned before it
  // looked at the rest of the line, so `}\xFF` passed with small batches and failed with
  // large ones. By hand: line 2 holds a document, then a byte that is not UTF-8; line 3 a
  // document, then an 'x'. Whitespace after a document is fine (line 1).
  mgpu_test::temp_dir dir;
  write_bytes(dir / "bad_utf8.ndjson", "{\"text\":\"a\"} \t\r\n{\"text\": \"b\"}\xFF\n{\"text\":\"c\"}\n");
  write_bytes(dir / "bad_x.ndjson", "{\"text\":\"a\"}\n\n{\"text\":\"c\"}x\n");
  for (std::size_t const batch_bytes : {std::size_t{1}, std::size_t{1} << 20}) {
    for (std::size_t const read_bytes : {std::size_t{3}, std::size_t{1} << 16}) {
      CAPTURE(batch_bytes, read_bytes);
      mgpu::corpus_options o;
      o.batch_bytes = batch_bytes;
      o.read_bytes = read_bytes;
      auto read_all = [&](char const* name) {
        mgpu::corpus_reader reader(dir / name, o);
        mgpu::corpus_batch batch;
        while (reader.next(batch)) {
        }
      };
      CHECK_THAT(mgpu_test::message_of<mgpu::parse_error>([&] { read_all("bad_utf8.ndjson"); }),
                 Contains("bad_utf8.ndjson:2:"));
      CHECK_THAT(mgpu_test::message_of<mgpu::parse_error>([&] { read_all("bad_x.ndjson"); }),
                 Contains("bad_x.ndjson:3:"));
    }
  }
}

TEST_CASE("bounded_queue: first in first out, at most capacity items, close drains then ends", "[io][pipeline]") {
  mgpu::bounded_queue<int> q(2);
  CHECK(q.push(1));
  int three = 3;
  int two = 2;
  CHECK(q.try_push(two));
  CHECK_FALSE(q.try_push(three));  // full: left as it was
  CHECK(three == 3);
  CHECK(q.pop() == 1);
  CHECK(q.try_pop() == 2);
  CHECK_FALSE(q.try_pop().has_value());
  CHECK(q.push(4));
  q.close();
  CHECK_FALSE(q.push(5));
  CHECK(q.pop() == 4);
  CHECK_FALSE(q.pop().has_value());
  CHECK_THROWS_AS(mgpu::bounded_queue<int>(0), mgpu::invalid_argument);

  // A producer thread through a queue of one: every item, in order.
  mgpu::bounded_queue<int> one(1);
  std::thread producer([&] {
    for (int i = 0; i < 10000; ++i) one.push(i);
    one.close();
  });
  int expected = 0;
  bool in_order = true;
  while (auto item = one.pop()) in_order = in_order && *item == expected++;
  producer.join();
  CHECK(in_order);
  CHECK(expected == 10000);
}

TEST_CASE("pipeline: a file of up to two batches, read by two threads, gives one reader's documents, ids and errors",
          "[io][pipeline][reliability]") {
  // make_corpus(6000): about 4.5 MB with four documents of over 1 MiB, documents without an
  // id (whose id is their line number, so the second half must count the lines before
  // it), blank lines and CRLF; within [split_min_bytes, 2 batches] it is read in halves.
  mgpu_test::temp_dir dir;
  std::vector<document> docs;
  auto const bytes = make_corpus(6000, docs);
  REQUIRE(bytes.size() >= mgpu::corpus_prefetcher::split_min_bytes);
  mgpu::corpus_options o;  // 32 MiB batches
  REQUIRE(bytes.size() <= 2 * o.batch_bytes);
  auto const read_all = [&](fs::path const& p, std::string* error) {
    mgpu::corpus_prefetcher reader(p, o, 2);
    std::vector<document> got;
    mgpu::corpus_text_batch batch;
    try {
      while (reader.next(batch)) {
        for (std::size_t i = 0; i < batch.size(); ++i) {
          got.push_back({std::string(batch.id(i)), std::string(batch.text(i)), i == 0 ? batch.first_line : 0});
        }
      }
    } catch (mgpu::parse_error const& e) {
      if (error == nullptr) throw;
      *error = e.what();
    }
    if (mgpu::backend::cpu::host_threads() >= 2) CHECK(reader.readers() == 2);
    return got;
  };

  write_bytes(dir / "c.ndjson", bytes);
  auto const got = read_all(dir / "c.ndjson", nullptr);
  CHECK(got == without_lines_but_first(docs, got));

  // A bad line in the second half: every document before it, then the error one reader
  // raises (its line number counts the first half's lines).
  auto const bad_second = bytes + "{\"text\": }\n" + "{\"text\":\"after\"}\n";
  write_bytes(dir / "bad2.ndjson", bad_second);
  std::string error;
  auto const before_error = read_all(dir / "bad2.ndjson", &error);
  std::string expected_error;
  auto const one_reader = [&](fs::path const& p) {
    std::vector<document> out;
    try {
      out = read_text_batches(p, o);
    } catch (mgpu::parse_error const& e) {
      expected_error = e.what();
    }
    return out;
  };
  (void)one_reader(dir / "bad2.ndjson");
  CHECK(error == expected_error);
  CHECK_THAT(error, Catch::Matchers::Contains(":" + std::to_string(docs.back().line + 1) + ": invalid JSON"));
  REQUIRE(before_error.size() == docs.size());
  CHECK(before_error == without_lines_but_first(docs, before_error));

  // A bad line near the start: the documents before it, none of the second half's.
  auto const first_newline = bytes.find('\n');
  auto const bad_first = bytes.substr(0, first_newline + 1) + "not json\n" + bytes.substr(first_newline + 1);
  write_bytes(dir / "bad1.ndjson", bad_first);
  error.clear();
  expected_error.clear();
  auto const got_first = read_all(dir / "bad1.ndjson", &error);
  (void)one_reader(dir / "bad1.ndjson");
  CHECK_FALSE(error.empty());
  CHECK(error == expected_error);
  CHECK(got_first.size() <= 1);
}
