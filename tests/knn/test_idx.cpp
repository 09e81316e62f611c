// The IDX (MNIST format) reader: every element type, gzip and plain files, and the
// malformed files of tests/data/idx (made by make_idx_fixtures.py with Python's struct
// and gzip modules; expected values are the ones that script wrote).
#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <unistd.h>

#include <mgpu/io/idx.hpp>

#include "../test_support.hpp"

namespace {

using Catch::Matchers::Contains;

std::string fixture(char const* name) { return std::string(MGPU_TEST_DATA_DIR) + "/idx/" + name; }

template <class T = float>
std::string parse_error_of(char const* name) {
  return mgpu_test::message_of<mgpu::parse_error>([&] { mgpu::read_idx<T>(fixture(name)); });
}

}  // namespace

TEST_CASE("read_idx_matrix flattens an n x 2 x 3 unsigned byte file to n x 6 rows", "[idx]") {
  for (char const* name : {"u8_2x2x3.idx", "u8_2x2x3.idx.gz"}) {
    auto const m = mgpu::read_idx_matrix<float>(fixture(name));
    REQUIRE(m.rows() == 2);
    REQUIRE(m.cols() == 6);
    CHECK(m(0, 0) == 0.0f);
    CHECK(m(0, 5) == 5.0f);
    CHECK(m(1, 0) == 6.0f);
    CHECK(m(1, 5) == 255.0f);
  }
}

TEST_CASE("read_idx reports the header's type and sizes", "[idx]") {
  auto const a = mgpu::read_idx<std::uint8_t>(fixture("u8_2x2x3.idx.gz"));
  CHECK(a.header.type == mgpu::idx_type::u8);
  CHECK(a.header.dims == std::vector<std::int64_t>{2, 2, 3});
  CHECK(a.header.elements() == 12);
  CHECK(a.values.back() == 255);
}

TEST_CASE("read_idx_vector reads a one-dimensional label file", "[idx]") {
  CHECK(mgpu::read_idx_vector<int>(fixture("labels_5.idx1.gz")) == std::vector<int>{3, 1, 4, 1, 5});
}

TEST_CASE("read_idx_vector rejects a file with more than one dimension", "[idx]") {
  auto const msg = mgpu_test::message_of<mgpu::parse_error>(
      [] { mgpu::read_idx_vector<int>(fixture("u8_2x2x3.idx")); });
  CHECK_THAT(msg, Contains("one-dimensional") && Contains("3 dimensions"));
}

TEST_CASE("every IDX element type is read big-endian", "[idx]") {
  CHECK(mgpu::read_idx<int>(fixture("s8_1x3.idx")).values == std::vector<int>{-128, 0, 127});
  CHECK(mgpu::read_idx<int>(fixture("i16_1x3.idx")).values == std::vector<int>{-32768, 2, 32767});
  CHECK(mgpu::read_idx<std::int64_t>(fixture("i32_1x3.idx")).values ==
        std::vector<std::int64_t>{-2147483648LL, 3, 2147483647LL});
  CHECK(mgpu::read_idx<float>(fixture("f32_1x3.idx")).values == std::vector<float>{-1.5f, 0.25f, 3.0e38f});
  CHECK(mgpu::read_idx<double>(fixture("f64_1x3.idx")).values == std::vector<double>{-1.5, 0.1, 1.0e300});
}

TEST_CASE("float64 data read as float is rounded, and overflows to infinity", "[idx]") {
  auto const v = mgpu::read_idx<float>(fixture("f64_1x3.idx")).values;
  CHECK(v[1] == 0.1f);
  CHECK(v[2] == std::numeric_limits<float>::infinity());
}

TEST_CASE("a file with zero rows is an empty matrix with the other sizes as columns", "[idx]") {
  auto const m = mgpu::read_idx_matrix<float>(fixture("u8_0x2x2.idx"));
  CHECK(m.rows() == 0);
  CHECK(m.cols() == 4);
}

TEST_CASE("reliability row 13: values that do not fit the requested integer type", "[idx][reliability]") {
  CHECK_THAT(parse_error_of<std::int8_t>("i16_1x3.idx"), Contains("value -32768 does not fit"));
  CHECK_THAT(parse_error_of<std::uint8_t>("s8_1x3.idx"), Contains("byte 12") && Contains("-128"));
  CHECK_THAT(parse_error_of<int>("f32_1x3.idx"), Contains("floating-point"));
}

TEST_CASE("reliability row 13: a missing, empty or short file", "[idx][reliability]") {
  CHECK_THAT(parse_error_of("no_such_file.idx"), Contains("no_such_file.idx:0: byte 0: no such file"));
  CHECK_THAT(parse_error_of("empty.idx"), Contains("empty.idx:0: byte 0: empty file"));
  CHECK_THAT(parse_error_of("short_magic.idx"), Contains("ends inside the 4-byte magic number"));
}

TEST_CASE("reliability row 13: bad magic number, element type or dimension count", "[idx][reliability]") {
  CHECK_THAT(parse_error_of("bad_magic.idx"), Contains("byte 0: bad magic number") && Contains("0x1 0x2"));
  CHECK_THAT(parse_error_of("bad_type.idx"), Contains("byte 2: unknown element type 0x7"));
  CHECK_THAT(parse_error_of("zero_dims.idx"), Contains("byte 3: zero dimensions"));
}

TEST_CASE("reliability row 13: truncated sizes or data, plain and gzip", "[idx][reliability]") {
  CHECK_THAT(parse_error_of("truncated_dims.idx"), Contains("byte 4: the file ends inside the dimension sizes"));
  CHECK_THAT(parse_error_of("truncated_data.idx"),
             Contains("truncated: the header announces 12 bytes of data after byte 16, the file holds 7"));
  CHECK_THAT(parse_error_of("truncated_data.idx.gz"), Contains("truncated") && Contains("holds 7"));
}

TEST_CASE("reliability row 13: data beyond what the sizes announce (wrong dimensions)", "[idx][reliability]") {
  CHECK_THAT(parse_error_of("trailing_data.idx"),
             Contains("byte 28: data continues after the 12 bytes the header announces"));
}

TEST_CASE("reliability row 13: huge or overflowing sizes fail without allocating them", "[idx][reliability]") {
  // 2^31-1 x 10^6 floats is 8.6 PB: only the 16 bytes present may be read.
  CHECK_THAT(parse_error_of("huge_claim.idx"), Contains("truncated") && Contains("the file holds 16"));
  CHECK_THAT(parse_error_of<double>("overflow_dims.idx"), Contains("multiply past the addressable range"));
  CHECK_THAT(parse_error_of("negative_dim.idx"),
             Contains("byte 8: size of dimension 1 is 2147483648 (negative as a signed 32-bit integer)"));
}

TEST_CASE("reliability row 13: corrupt gzip data, CRC mismatch and a cut stream", "[idx][reliability]") {
  CHECK_THAT(parse_error_of("corrupt.idx.gz"), Contains("corrupt.idx.gz:0: byte 0: corrupt data: "));
  CHECK_THAT(parse_error_of("bad_crc.idx.gz"), Contains("corrupt data") && Contains("check"));
  CHECK_THAT(parse_error_of("cut.idx.gz"), Contains("cut.idx.gz:0: byte "));
}

namespace {

/// A one-dimensional IDX file of `type` (0x08 unsigned byte, 0x0B int16) holding
/// `elements` (already big-endian bytes), in a fresh temporary file.
std::filesystem::path label_file(char const* name, unsigned char type, std::uint32_t count,
                                 std::vector<unsigned char> const& elements) {
  auto const path = std::filesystem::temp_directory_path() / (std::to_string(::getpid()) + "_" + name);
  std::ofstream out(path, std::ios::binary);
  unsigned char const header[8] = {0, 0, type, 1, static_cast<unsigned char>(count >> 24),
                                   static_cast<unsigned char>(count >> 16), static_cast<unsigned char>(count >> 8),
                                   static_cast<unsigned char>(count)};
  out.write(reinterpret_cast<char const*>(header), sizeof header);
  out.write(reinterpret_cast<char const*>(elements.data()), static_cast<std::streamsize>(elements.size()));
  return path;
}

}  // namespace

TEST_CASE("read_idx_labels reads MNIST-format labels in [0, 10)", "[idx]") {
  CHECK(mgpu::read_idx_labels<int>(fixture("labels_5.idx1.gz")) == std::vector<int>{3, 1, 4, 1, 5});
  // Fewer classes than the default, as long as every label is one of them.
  CHECK(mgpu::read_idx_labels<int>(fixture("labels_5.idx1.gz"), 6) == std::vector<int>{3, 1, 4, 1, 5});
}

TEST_CASE("reliability row 13: an MNIST label outside 0-9 is a parse_error naming its byte, position and value",
          "[idx][reliability]") {
  // Labels 3 1 10 2 as unsigned bytes: the 10 is element 2, at byte 8 + 2 = 10.
  auto const path = label_file("labels_with_10.idx1", 0x08, 4, {3, 1, 10, 2});
  auto const what = mgpu_test::message_of<mgpu::parse_error>([&] { (void)mgpu::read_idx_labels<int>(path); });
  CHECK_THAT(what, Contains(path.string() + ":0: byte 10: label 10 at position 2 is outside [0, 10)"));
  // 255 is read as unsigned, never as -1.
  auto const high = label_file("labels_with_255.idx1", 0x08, 2, {0, 255});
  CHECK_THAT(mgpu_test::message_of<mgpu::parse_error>([&] { (void)mgpu::read_idx_labels<int>(high); }),
             Contains("byte 9: label 255 at position 1 is outside [0, 10)"));
  std::filesystem::remove(path);
  std::filesystem::remove(high);
}

TEST_CASE("reliability row 13: a negative label or one beyond the declared classes is a parse_error",
          "[idx][reliability]") {
  // int16 labels 0, -1: the -1 (0xFFFF) is element 1, at byte 8 + 2 = 10.
  auto const path = label_file("labels_negative.idx1", 0x0B, 2, {0x00, 0x00, 0xFF, 0xFF});
  CHECK_THAT(mgpu_test::message_of<mgpu::parse_error>([&] { (void)mgpu::read_idx_labels<int>(path); }),
             Contains("byte 10: label -1 at position 1 is outside [0, 10)"));
  std::filesystem::remove(path);
  // 3 1 4 1 5 with 4 classes: the 4 at position 2 (byte 10) is the first outside [0, 4).
  CHECK_THAT(mgpu_test::message_of<mgpu::parse_error>(
                 [] { (void)mgpu::read_idx_labels<int>(fixture("labels_5.idx1.gz"), 4); }),
             Contains("byte 10: label 4 at position 2 is outside [0, 4)"));
  CHECK_THROWS_AS(mgpu::read_idx_labels<int>(fixture("labels_5.idx1.gz"), 0), mgpu::invalid_argument);
  CHECK_THAT(mgpu_test::message_of<mgpu::parse_error>(
                 [] { (void)mgpu::read_idx_labels<int>(fixture("u8_2x2x3.idx")); }),
             Contains("one-dimensional label file, found 3 dimensions"));
}
