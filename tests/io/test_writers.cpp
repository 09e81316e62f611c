// Writers at memory speed (issue 21): the numbers they write read back bit-identical, the
// neighbour scores are the shortest string that does (no shorter printf "%e" or "%f"
// form reads back to the same float), and output_set's double-buffered file writer (a writer thread)
// keeps every byte in order and reports a failed write(2) on the caller's thread.
#include <catch2/catch.hpp>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "../test_support.hpp"
#include "mgpu/io/matrix_market.hpp"
#include "mgpu/io/output_file.hpp"
#include "mgpu/io/text_output.hpp"

namespace {

using Catch::Matchers::Contains;
namespace fs = std::filesystem;

// Finite floats of every kind: random bit patterns over the whole range (normal and
// subnormal, both signs), plus the edge values.
std::vector<float> awkward_floats(std::size_t random_count) {
  std::vector<float> v = {0.0f,
                          -0.0f,
                          1.0f,
                          -1.0f,
                          0.1f,
                          1.0f / 3.0f,
                          std::numeric_limits<float>::min(),
                          -std::numeric_limits<float>::min(),
                          std::numeric_limits<float>::denorm_min(),
                          -std::numeric_limits<float>::denorm_min(),
                          std::numeric_limits<float>::max(),
                          -std::numeric_limits<float>::max(),
                          std::nextafter(std::numeric_limits<float>::min(), 0.0f),
                          1e-30f,
                          3.4e38f,
                          123456789.0f,
                          1e9f,
                          1e-5f,
                          0.0001f,
                          100000.0f,
                          1234567.0f};
  std::mt19937 gen(21);
  std::uniform_int_distribution<std::uint32_t> bits;
  while (v.size() < random_count) {
    auto const f = std::bit_cast<float>(bits(gen));
    if (std::isfinite(f)) v.push_back(f);
  }
  return v;
}

std::string slurp(fs::path const& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// True if `text` is the shortest string reading back to f: it reads back to f, and no
// printf form with fewer characters does, of either style to_chars chooses from: "%.*e"
// with 1 to 9 significant digits and "%.*f" with 0 to 60 decimals (printf rounds
// correctly, so a shorter decimal of a style reading back to f would show up there).
bool is_shortest_round_trip(std::string const& text, float f) {
  auto const same = [f](char const* s) {
    return std::bit_cast<std::uint32_t>(std::strtof(s, nullptr)) == std::bit_cast<std::uint32_t>(f);
  };
  if (!same(text.c_str())) return false;
  char shorter[128];
  for (int d = 1; d <= 9; ++d) {
    std::snprintf(shorter, sizeof shorter, "%.*e", d - 1, static_cast<double>(f));
    if (std::strlen(shorter) < text.size() && same(shorter)) return false;
  }
  for (int p = 0; p <= 60; ++p) {
    std::snprintf(shorter, sizeof shorter, "%.*f", p, static_cast<double>(f));
    if (std::strlen(shorter) < text.size() && same(shorter)) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("neighbour scores are the shortest text reading back to the same float bits", "[io][text_output]") {
  auto values = awkward_floats(20000);
  // Near 1 from below (cosine scores of near-duplicates) and near the float edges.
  for (float f = 1.0f; f > 0.9999f; f = std::nextafter(f, 0.0f)) values.push_back(f);
  std::ostringstream out;
  mgpu::neighbor_writer rows(out, mgpu::text_format::tsv);
  for (float const f : values) rows.write("q", "n", f);
  std::istringstream in(out.str());
  std::string line;
  std::size_t i = 0;
  std::size_t not_shortest = 0, mismatched_bits = 0;
  while (std::getline(in, line)) {
    REQUIRE(i < values.size());
    REQUIRE(line.rfind("q\tn\t", 0) == 0);
    std::string const field = line.substr(4);
    float back = 0;
    auto const [end, ec] = std::from_chars(field.data(), field.data() + field.size(), back);
    if (ec != std::errc() || end != field.data() + field.size() ||
        std::bit_cast<std::uint32_t>(back) != std::bit_cast<std::uint32_t>(values[i])) {
      ++mismatched_bits;
    }
    if (!is_shortest_round_trip(field, values[i])) ++not_shortest;
    ++i;
  }
  CHECK(i == values.size());
  CHECK(mismatched_bits == 0);
  CHECK(not_shortest == 0);
}

TEST_CASE("neighbour scores: worked examples of the shortest form", "[io][text_output]") {
  // Worked out by hand: the float nearest 1/3 is 0.3333333432674408, and 0.3333333 lies
  // closer to its lower neighbour (floats there are 2.98e-8 apart); the float below 1 is
  // 1 - 2^-24 = 0.99999994039535522.
  std::vector<std::pair<float, std::string>> const cases = {
      {0.0f, "0"},           {-0.0f, "-0"},           {1.0f, "1"},
      {-1.0f, "-1"},         {0.1f, "0.1"},           {0.5f, "0.5"},
      {1.0f / 3.0f, "0.33333334"},                    {std::nextafter(1.0f, 0.0f), "0.99999994"},
      {1e-5f, "1e-05"},      {1e9f, "1e+09"},         {123000.0f, "123000"},
      {2147483648.0f, "2147483648"},  // 2^31: 10 characters, fewer than 2.1474836e+09
      {std::numeric_limits<float>::denorm_min(), "1e-45"},
      {-std::numeric_limits<float>::denorm_min(), "-1e-45"},
      {std::numeric_limits<float>::max(), "3.4028235e+38"},
      {std::numeric_limits<float>::infinity(), "inf"}};
  for (auto const& [value, text] : cases) {
    std::ostringstream out;
    mgpu::neighbor_writer rows(out, mgpu::text_format::tsv);
    rows.write("a", "b", value);
    CHECK(out.str() == "a\tb\t" + text + "\n");
  }
  // A double is written as a double: 0.1 stays 0.1, the float 0.1f widened to double
  // needs all 17 digits (0.100000001490116119384765625 exactly).
  std::ostringstream out;
  mgpu::neighbor_writer rows(out, mgpu::text_format::tsv);
  rows.write("a", "b", 0.1);
  rows.write("a", "b", static_cast<double>(0.1f));
  CHECK(out.str() == "a\tb\t0.1\na\tb\t0.10000000149011612\n");
}

TEST_CASE("NDJSON neighbour rows carry the same shortest scores, integer ids in decimal", "[io][text_output]") {
  std::ostringstream out;
  mgpu::neighbor_writer rows(out, mgpu::text_format::ndjson);
  rows.write(std::int64_t{-9223372036854775807LL - 1}, std::int64_t{9223372036854775807LL},
             std::numeric_limits<float>::denorm_min());
  rows.write(std::int64_t{0}, std::int64_t{42}, -0.0f);
  rows.write(std::int64_t{1}, std::int64_t{2}, std::numeric_limits<float>::quiet_NaN());
  CHECK(out.str() ==
        "{\"query\":-9223372036854775808,\"neighbor\":9223372036854775807,\"score\":1e-45}\n"
        "{\"query\":0,\"neighbor\":42,\"score\":-0}\n"
        "{\"query\":1,\"neighbor\":2,\"score\":null}\n");
}

TEST_CASE("Matrix Market coordinate values written and read back are bit-identical", "[io][matrix_market]") {
  auto const values = awkward_floats(50000);
  // One row per 100 values, columns 0..99: a 500 x 100 matrix holding every value.
  std::int32_t const cols = 100;
  auto const rows = static_cast<std::int32_t>(values.size() / static_cast<std::size_t>(cols));
  std::vector<std::int32_t> offsets(static_cast<std::size_t>(rows) + 1), columns;
  std::vector<float> kept;
  for (std::int32_t r = 0; r < rows; ++r) {
    for (std::int32_t c = 0; c < cols; ++c) {
      columns.push_back(c);
      kept.push_back(values[static_cast<std::size_t>(r * cols + c)]);
    }
    offsets[static_cast<std::size_t>(r) + 1] = static_cast<std::int32_t>(kept.size());
  }
  mgpu::csr_view<float, std::int32_t> const view{rows, cols, offsets.data(), columns.data(), kept.data()};
  std::stringstream text;
  mgpu::write_matrix_market(text, view);
  auto const back = mgpu::read_matrix_market<float, std::int32_t>(text, "round trip");
  REQUIRE(back.rows() == rows);
  REQUIRE(back.nnz() == static_cast<std::int64_t>(kept.size()));
  auto const v = back.view();
  std::size_t mismatched = 0;
  for (std::size_t p = 0; p < kept.size(); ++p) {
    if (std::bit_cast<std::uint32_t>(v.values[p]) != std::bit_cast<std::uint32_t>(kept[p])) ++mismatched;
  }
  CHECK(mismatched == 0);
}

TEST_CASE("output_set's writer thread keeps every byte of a many-buffer output in order", "[io][output]") {
  mgpu_test::temp_dir dir;
  // 9.5 buffers of the file writer, written in pieces of awkward sizes, some larger
  // than a buffer.
  std::string expected;
  std::mt19937 gen(7);
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<std::size_t> const pieces = {1, 7, 4095, (std::size_t{1} << 20) + 3, 65536, 3 << 20, 13};
  std::size_t const total = mgpu::detail::out::fd_streambuf::buffer_bytes * 19 / 2;
  for (std::size_t i = 0; expected.size() < total; ++i) {
    auto const n = std::min(pieces[i % pieces.size()], total - expected.size());
    for (std::size_t j = 0; j < n; ++j) expected += static_cast<char>(byte(gen));
  }
  mgpu::output_set outs;
  outs.add(dir / "big.bin", [&](std::ostream& out) {
    std::size_t at = 0;
    for (std::size_t i = 0; at < expected.size(); ++i) {
      auto const n = std::min(pieces[i % pieces.size()], expected.size() - at);
      if (n == 1) {
        out.put(expected[at]);
      } else {
        out.write(expected.data() + at, static_cast<std::streamsize>(n));
      }
      at += n;
    }
  });
  outs.commit();
  CHECK(slurp(dir / "big.bin") == expected);
}

TEST_CASE("a write(2) failing in output_set's writer thread is reported by commit, naming the reason", "[io][output]") {
  mgpu_test::temp_dir dir;
  if (::mknod((dir / "full").c_str(), S_IFCHR | 0666, makedev(1, 7)) != 0) {
    WARN("skipped: mknod of a character device is not permitted here");
    return;
  }
  // Blocks below fd_streambuf::direct_bytes go through the buffers and the writer thread;
  // larger ones are written on this thread.
  for (std::size_t const block_bytes : {std::size_t{1} << 12, mgpu::detail::out::fd_streambuf::direct_bytes}) {
    INFO("blocks of " << block_bytes << " bytes");
    std::string const block(block_bytes, 'x');
    int const blocks = static_cast<int>((std::size_t{64} << 20) / block_bytes);
    int written_blocks = 0;
    mgpu::output_set outs;
    outs.add(dir / "full", [&](std::ostream& out) {
      // 64 MiB: many buffers, so the failure happens on the writer thread; the stream goes
      // bad on this thread soon after and the writer stops early.
      for (int i = 0; i < blocks && out; ++i) {
        out.write(block.data(), static_cast<std::streamsize>(block.size()));
        ++written_blocks;
      }
    }, "--output");
    CHECK_THROWS_WITH(outs.commit(), Contains("--output: cannot write") && Contains("No space left on device"));
    CHECK(written_blocks < blocks);
  }
}
