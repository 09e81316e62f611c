// Formatting text outputs on several threads (issue 21): write_in_order, and the writers
// built on it (write_neighbor_rows, the Matrix Market coordinate writer), give the bytes
// of a simple serial writer written here, whatever the number of threads, the chunk size
// and the chunks in flight; errors are those of the first failing chunk in order.
#include <catch2/catch.hpp>
#include <omp.h>

#include <charconv>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <streambuf>
#include <string>
#include <type_traits>
#include <vector>

#include "../test_support.hpp"
#include "mgpu/io/matrix_market.hpp"
#include "mgpu/io/output_file.hpp"
#include "mgpu/io/text_output.hpp"

namespace {

using Catch::Matchers::Contains;
namespace fs = std::filesystem;

// Runs the case's body with `threads` OpenMP threads on this thread, then restores.
class thread_count {
 public:
  explicit thread_count(int threads) : before_(omp_get_max_threads()) { omp_set_num_threads(threads); }
  thread_count(thread_count const&) = delete;
  thread_count& operator=(thread_count const&) = delete;
  ~thread_count() { omp_set_num_threads(before_); }

 private:
  int before_;
};

std::string slurp(fs::path const& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

template <class V>
std::string shortest(V v) {
  char digits[64];
  auto const end = std::to_chars(digits, digits + sizeof digits, v).ptr;
  return {digits, end};
}

// A stream buffer that accepts `limit` bytes and then fails.
class failing_buffer : public std::streambuf {
 public:
  explicit failing_buffer(std::size_t limit) : limit_(limit) {}
  std::string text;

 protected:
  std::streamsize xsputn(char const* s, std::streamsize n) override {
    auto const take = std::min(static_cast<std::size_t>(n), limit_ - text.size());
    text.append(s, take);
    return static_cast<std::streamsize>(take);
  }
  int_type overflow(int_type ch) override {
    if (text.size() >= limit_ || traits_type::eq_int_type(ch, traits_type::eof())) return traits_type::eof();
    text += traits_type::to_char_type(ch);
    return ch;
  }

 private:
  std::size_t limit_;
};

// The text of chunk c in the write_in_order cases: c's number repeated c % 7 times and
// a line end, so chunks differ in length and some are empty but for the line end.
std::string chunk_text(std::int64_t c) {
  std::string s;
  for (std::int64_t i = 0; i < c % 7; ++i) s += std::to_string(c) + ",";
  return s + "\n";
}

// A top-k result over `queries` rows with 0 to 5 neighbours each (some rows empty), ids
// in [0, ids), scores of every kind (near 1, tiny, subnormal, negative, zero).
mgpu::topk_result<float> random_topk(std::int64_t queries, std::int64_t ids, unsigned seed) {
  mgpu::topk_result<float> r;
  r.k = 5;
  r.candidates = ids;
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> count(0, 5);
  std::uniform_int_distribution<std::int64_t> pick(0, ids - 1);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::vector<float> const special = {1.0f, std::nextafter(1.0f, 0.0f), 0.0f, -0.0f, -0.25f,
                                      std::numeric_limits<float>::denorm_min(), 1e-30f, 0.1f};
  for (std::int64_t q = 0; q < queries; ++q) {
    int const n = count(gen);
    for (int j = 0; j < n; ++j) {
      r.ids.push_back(pick(gen));
      auto const s = gen() % 4 == 0 ? special[gen() % special.size()] : unit(gen);
      r.scores.push_back(s);
    }
    r.row_offsets.push_back(static_cast<std::int64_t>(r.ids.size()));
  }
  return r;
}

// The serial reference for string ids: one row at a time, the escapes of the file
// comment of text_output.hpp, the float's to_chars form.
std::string reference_rows(mgpu::topk_result<float> const& r, std::vector<std::string> const& qids,
                           std::vector<std::string> const& nids, mgpu::text_format format) {
  std::string out;
  for (std::int64_t q = 0; q < r.rows(); ++q) {
    auto const nb = r.neighbors(q);
    auto const sc = r.scores_of(q);
    for (std::size_t j = 0; j < nb.size(); ++j) {
      auto const& a = qids[static_cast<std::size_t>(q)];
      auto const& b = nids[static_cast<std::size_t>(nb[j])];
      if (format == mgpu::text_format::tsv) {
        out += mgpu::escape_tsv_field(a) + "\t" + mgpu::escape_tsv_field(b) + "\t" + shortest(sc[j]) + "\n";
      } else {
        std::string qa, nbq;
        mgpu::append_json_string(qa, a);
        mgpu::append_json_string(nbq, b);
        out += "{\"query\":" + qa + ",\"neighbor\":" + nbq + ",\"score\":" + shortest(sc[j]) + "}\n";
      }
    }
  }
  return out;
}

}  // namespace

TEST_CASE("text_buffer grows keeping its bytes, room/advance write in place", "[io][parallel_format]") {
  mgpu::text_buffer b;
  CHECK(b.empty());
  std::string expected;
  for (int i = 0; i < 5000; ++i) {
    b.append("ab", 2);
    b += 'c';
    char* p = b.room(16);
    p = std::to_chars(p, p + 16, i).ptr;
    b.advance(p);
    expected += "abc" + std::to_string(i);
  }
  CHECK(b.view() == expected);
  CHECK(b.size() == expected.size());
  CHECK(b.capacity() >= b.size());
  b.clear();
  CHECK(b.empty());
  b += std::string_view("x");
  CHECK(b.view() == "x");
}

TEST_CASE("split_rows_by_entries cuts CSR rows into ranges of about n entries", "[io][parallel_format]") {
  // Worked by hand. Rows' entries: 3, 0, 7, 1, 0, 9 (20 in all).
  std::vector<std::int64_t> const offsets = {0, 3, 3, 10, 11, 11, 20};
  using V = std::vector<std::int64_t>;
  // 4 entries: rows 0-2 reach 10 >= 4; from row 3 (start 11), 15 is first reached at 20.
  CHECK(mgpu::split_rows_by_entries(std::span<std::int64_t const>(offsets), 4) == V{0, 3, 6});
  // 1 entry: every range ends at the first row boundary with an entry more; the empty
  // rows 1 and 4 join the ranges after them.
  CHECK(mgpu::split_rows_by_entries(std::span<std::int64_t const>(offsets), 1) == V{0, 1, 3, 4, 6});
  CHECK(mgpu::split_rows_by_entries(std::span<std::int64_t const>(offsets), 100) == V{0, 6});
  std::vector<std::int32_t> const shifted = {5, 7, 9};  // a view into a bigger matrix
  CHECK(mgpu::split_rows_by_entries(std::span<std::int32_t const>(shifted), 2) == V{0, 1, 2});
  std::vector<std::int32_t> const empty_rows = {0, 0, 0};
  CHECK(mgpu::split_rows_by_entries(std::span<std::int32_t const>(empty_rows), 2) == V{0, 2});
  std::vector<std::int32_t> const none = {0};
  CHECK(mgpu::split_rows_by_entries(std::span<std::int32_t const>(none), 2) == V{0});
  CHECK_THROWS_AS(mgpu::split_rows_by_entries(std::span<std::int64_t const>(offsets), 0), mgpu::invalid_argument);
}

TEST_CASE("write_in_order writes the chunks in order whatever the threads and buffers", "[io][parallel_format]") {
  std::int64_t const chunks = 103;
  std::string expected;
  for (std::int64_t c = 0; c < chunks; ++c) expected += chunk_text(c);
  for (int threads : {1, 2, 3, 5}) {
    thread_count const team(threads);
    for (std::int64_t in_flight : {0, 1, 2, 7, 200}) {
      std::ostringstream out;
      mgpu::write_in_order(
          out, chunks, [](mgpu::text_buffer& text, std::int64_t c) { text += chunk_text(c); },
          {.entries_per_chunk = 0, .chunks_in_flight = in_flight});
      INFO("threads " << threads << ", chunks in flight " << in_flight);
      CHECK(out.str() == expected);
    }
  }
  std::ostringstream none;
  mgpu::write_in_order(none, 0, [](mgpu::text_buffer&, std::int64_t) { throw std::logic_error("called"); });
  CHECK(none.str().empty());
}

TEST_CASE("write_in_order: the first failing chunk in order is reported, after the text before it",
          "[io][parallel_format]") {
  // Chunks 9 and 5 fail after appending "partial"; a serial run writes chunks 0..4 and
  // chunk 5's partial text, then throws chunk 5's error.
  std::string expected;
  for (std::int64_t c = 0; c < 5; ++c) expected += chunk_text(c);
  expected += "partial";
  for (int threads : {1, 2, 4}) {
    thread_count const team(threads);
    for (std::int64_t in_flight : {1, 2, 3, 6, 20}) {
      std::ostringstream out;
      auto const format = [](mgpu::text_buffer& text, std::int64_t c) {
        if (c == 5 || c == 9) {
          text += "partial";
          throw std::runtime_error("chunk " + std::to_string(c));
        }
        text += chunk_text(c);
      };
      INFO("threads " << threads << ", chunks in flight " << in_flight);
      CHECK_THROWS_WITH(mgpu::write_in_order(out, 30, format, {.entries_per_chunk = 0, .chunks_in_flight = in_flight}),
                        "chunk 5");
      CHECK(out.str() == expected);
    }
  }
}

TEST_CASE("write_in_order reports a failed stream naming what was written", "[io][parallel_format]") {
  thread_count const team(2);
  failing_buffer buffer(100);
  std::ostream out(&buffer);
  CHECK_THROWS_WITH(mgpu::write_in_order(
                        out, 50, [](mgpu::text_buffer& text, std::int64_t c) { text += chunk_text(c); },
                        {.entries_per_chunk = 0, .chunks_in_flight = 4}, "writing the test rows"),
                    "writing the test rows failed: the output stream is in a failed state");
  CHECK(buffer.text.size() == 100);
}

TEST_CASE("write_neighbor_rows gives the serial writer's bytes for any threads and chunks", "[io][parallel_format]") {
  auto const top = random_topk(500, 300, 21);
  std::vector<std::string> ids;
  for (int i = 0; i < 300; ++i) {
    // Some ids need TSV or JSON escapes.
    ids.push_back(i % 17 == 3 ? "tab\there " + std::to_string(i)
                  : i % 23 == 5 ? "quote\"back\\slash\nline " + std::to_string(i)
                                : "doc-" + std::to_string(i));
  }
  std::vector<std::string> qids;
  for (int q = 0; q < 500; ++q) qids.push_back(q % 31 == 0 ? "query\r" + std::to_string(q) : "q" + std::to_string(q));
  for (auto const format : {mgpu::text_format::tsv, mgpu::text_format::ndjson}) {
    auto const expected = reference_rows(top, qids, ids, format);
    // The row-by-row writer gives the same bytes.
    std::ostringstream one_by_one;
    mgpu::neighbor_writer rows(one_by_one, format);
    for (std::int64_t q = 0; q < top.rows(); ++q) {
      for (std::int64_t p = top.row_offsets[static_cast<std::size_t>(q)];
           p < top.row_offsets[static_cast<std::size_t>(q) + 1]; ++p) {
        rows.write(qids[static_cast<std::size_t>(q)], ids[static_cast<std::size_t>(top.ids[static_cast<std::size_t>(p)])],
                   top.scores[static_cast<std::size_t>(p)]);
      }
    }
    CHECK(one_by_one.str() == expected);
    for (int threads : {1, 2, 4}) {
      thread_count const team(threads);
      for (std::int64_t per_chunk : {0, 1, 3, 64, 100000}) {
        for (std::int64_t in_flight : {0, 1, 5}) {
          std::ostringstream out;
          mgpu::write_neighbor_rows(out, format, top, qids, ids, {}, {per_chunk, in_flight});
          INFO("threads " << threads << ", entries per chunk " << per_chunk << ", chunks in flight " << in_flight);
          CHECK(out.str() == expected);
        }
      }
    }
  }
}

TEST_CASE("write_neighbor_rows with integer ids and custom NDJSON names", "[io][parallel_format]") {
  auto const top = random_topk(200, 1000, 5);
  std::string tsv, ndjson;
  for (std::int64_t q = 0; q < top.rows(); ++q) {
    auto const nb = top.neighbors(q);
    auto const sc = top.scores_of(q);
    for (std::size_t j = 0; j < nb.size(); ++j) {
      tsv += std::to_string(q) + "\t" + std::to_string(nb[j]) + "\t" + shortest(sc[j]) + "\n";
      ndjson += "{\"query\":" + std::to_string(q) + ",\"train\":" + std::to_string(nb[j]) +
                ",\"distance\":" + shortest(sc[j]) + "}\n";
    }
  }
  for (int threads : {1, 3}) {
    thread_count const team(threads);
    for (std::int64_t per_chunk : {1, 7, 0}) {
      std::ostringstream a, b;
      mgpu::write_neighbor_rows(a, mgpu::text_format::tsv, top, {}, {per_chunk, 2});
      mgpu::write_neighbor_rows(b, mgpu::text_format::ndjson, top, {"query", "train", "distance"}, {per_chunk, 2});
      CHECK(a.str() == tsv);
      CHECK(b.str() == ndjson);
    }
  }
  // Not finite: "inf"/"nan" in TSV, null in NDJSON.
  mgpu::topk_result<float> odd;
  odd.ids = {1, 2};
  odd.scores = {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
  odd.row_offsets = {0, 2};
  std::ostringstream t, j;
  mgpu::write_neighbor_rows(t, mgpu::text_format::tsv, odd);
  mgpu::write_neighbor_rows(j, mgpu::text_format::ndjson, odd);
  CHECK(t.str() == "0\t1\tinf\n0\t2\t-inf\n");
  CHECK(j.str() == "{\"query\":0,\"neighbor\":1,\"score\":null}\n{\"query\":0,\"neighbor\":2,\"score\":null}\n");
}

TEST_CASE("write_neighbor_rows refuses ids it cannot name", "[io][parallel_format]") {
  mgpu::topk_result<float> r;
  r.ids = {0, 1, 0, 7};
  r.scores = {0.5f, 0.25f, 0.5f, 0.125f};
  r.row_offsets = {0, 2, 4};
  std::vector<std::string> const ids = {"a", "b"};
  std::ostringstream out;
  CHECK_THROWS_WITH(mgpu::write_neighbor_rows(out, mgpu::text_format::tsv, r, ids, ids, {}, {1, 0}),
                    Contains("neighbour id 7 of query 1 is outside [0, 2)"));
  CHECK(out.str() == "a\ta\t0.5\na\tb\t0.25\nb\ta\t0.5\n");  // the rows before it
  std::vector<std::string> const one = {"a"};
  CHECK_THROWS_WITH(mgpu::write_neighbor_rows(out, mgpu::text_format::tsv, r, one, ids),
                    Contains("2 rows but 1 query ids"));
  r.scores.pop_back();
  CHECK_THROWS_WITH(mgpu::write_neighbor_rows(out, mgpu::text_format::tsv, r, ids, ids),
                    Contains("malformed topk_result"));
}

TEMPLATE_TEST_CASE("Matrix Market coordinate writer: the same bytes for any threads and chunks",
                   "[io][parallel_format][matrix_market]", float, double, std::int32_t) {
  // 700 rows of 0 to 12 entries (empty rows included), 5000 columns.
  std::mt19937 gen(3);
  std::uniform_int_distribution<int> count(0, 12);
  std::uniform_int_distribution<std::int32_t> column(0, 4999);
  std::uniform_real_distribution<double> value(-2.0, 2.0);
  std::int32_t const rows = 700, cols = 5000;
  std::vector<std::int32_t> offsets{0}, columns;
  std::vector<TestType> values;
  for (std::int32_t r = 0; r < rows; ++r) {
    int const n = count(gen);
    for (int j = 0; j < n; ++j) {
      columns.push_back(column(gen));
      values.push_back(static_cast<TestType>(value(gen) * (std::is_integral_v<TestType> ? 1000.0 : 1.0)));
    }
    offsets.push_back(static_cast<std::int32_t>(columns.size()));
  }
  mgpu::csr_view<TestType, std::int32_t> const view{rows, cols, offsets.data(), columns.data(), values.data()};
  // The serial reference: banner, size line, 1-based entries in row order.
  std::string expected = std::string("%%MatrixMarket matrix coordinate ") +
                         (std::is_integral_v<TestType> ? "integer" : "real") + " general\n700 5000 " +
                         std::to_string(columns.size()) + "\n";
  for (std::int32_t r = 0; r < rows; ++r) {
    for (auto p = offsets[static_cast<std::size_t>(r)]; p < offsets[static_cast<std::size_t>(r) + 1]; ++p) {
      expected += std::to_string(r + 1) + " " + std::to_string(columns[static_cast<std::size_t>(p)] + 1) + " " +
                  shortest(values[static_cast<std::size_t>(p)]) + "\n";
    }
  }
  for (int threads : {1, 2, 4}) {
    thread_count const team(threads);
    for (std::int64_t per_chunk : {0, 7, 1000}) {
      for (std::int64_t in_flight : {0, 1, 3}) {
        std::ostringstream out;
        mgpu::write_matrix_market(out, view, {per_chunk, in_flight});
        INFO("threads " << threads << ", entries per chunk " << per_chunk << ", chunks in flight " << in_flight);
        CHECK(out.str() == expected);
      }
    }
  }
}

TEST_CASE("Matrix Market coordinate writer reports the first bad column in row order", "[io][parallel_format][matrix_market]") {
  // Rows 0..9 with one entry each at column r; rows 4 and 8 point outside 10 columns.
  std::vector<std::int32_t> offsets, columns;
  std::vector<float> values;
  for (std::int32_t r = 0; r < 10; ++r) {
    offsets.push_back(r);
    columns.push_back(r == 4 ? 10 : r == 8 ? -1 : r);
    values.push_back(0.5f);
  }
  offsets.push_back(10);
  mgpu::csr_view<float, std::int32_t> const view{10, 10, offsets.data(), columns.data(), values.data()};
  std::string const head = "%%MatrixMarket matrix coordinate real general\n10 10 10\n1 1 0.5\n2 2 0.5\n3 3 0.5\n4 4 0.5\n";
  for (int threads : {1, 3}) {
    thread_count const team(threads);
    for (std::int64_t in_flight : {1, 2, 10}) {
      std::ostringstream out;
      CHECK_THROWS_WITH(mgpu::write_matrix_market(out, view, {1, in_flight}),
                        Contains("column index 10 at position 4 (row 4) is outside [0, 10)"));
      CHECK(out.str() == head);
    }
  }
  // Decreasing offsets are found before anything is written.
  offsets[3] = 1;
  std::ostringstream out;
  CHECK_THROWS_WITH(mgpu::write_matrix_market(out, view), Contains("row_offsets decrease at row 2"));
  CHECK(out.str().empty());
}

TEST_CASE("parallel writers through output_set's writer thread: a many-buffer file, byte for byte",
          "[io][parallel_format][output]") {
  mgpu_test::temp_dir dir;
  // About 8 MB of rows: several of the file writer's 1 MiB buffers, many chunks.
  auto const top = random_topk(120000, 50000, 9);
  std::vector<std::string> ids;
  for (int i = 0; i < 120000; ++i) ids.push_back("document-" + std::to_string(i * 7919 % 1000003));
  auto const expected = reference_rows(top, ids, ids, mgpu::text_format::tsv);
  REQUIRE(expected.size() > (std::size_t{5} << 20));
  thread_count const team(2);
  mgpu::output_set outs;
  outs.add(dir / "rows.tsv", [&](std::ostream& out) { mgpu::write_neighbor_rows(out, mgpu::text_format::tsv, top, ids, ids); });
  outs.commit();
  CHECK(slurp(dir / "rows.tsv") == expected);
}
