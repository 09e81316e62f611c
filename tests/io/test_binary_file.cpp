// The binary container of saved indexes and models (mgpu/io/binary_file.hpp): round trips,
// and every truncation, every flipped byte, another kind and a newer version are
// rejected with file_format_error.
#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "mgpu/io/binary_file.hpp"
#include "../test_support.hpp"

namespace {

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

std::vector<char> read_all(fs::path const& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_all(fs::path const& p, std::vector<char> const& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void write_sample(fs::path const& p, std::uint32_t version = 2) {
  mgpu::write_binary_file(p, "sample", version, [](mgpu::binary_writer& w) {
    w.write_value<std::int64_t>("rows", 3);
    w.write("values", std::vector<float>{1.5f, -2.0f, 0.25f});
    w.write_text("name", "caf\xc3\xa9");
    w.write("empty", std::vector<double>{});
  });
}

struct sample {
  std::int64_t rows;
  std::vector<float> values;
  std::string name;
  std::vector<double> empty;
};

sample read_sample(fs::path const& p, std::uint32_t max_version = 2) {
  mgpu::binary_reader r(p, "sample", max_version);
  sample s;
  s.rows = r.read_value<std::int64_t>("rows");
  s.values = r.read<float>("values");
  s.name = r.read_text("name");
  s.empty = r.read<double>("empty");
  r.finish();
  return s;
}

}  // namespace

TEST_CASE("binary_file: what is written reads back bit for bit", "[io][binary]") {
  mgpu_test::temp_dir dir;
  write_sample(dir / "a.bin");
  auto const s = read_sample(dir / "a.bin");
  CHECK(s.rows == 3);
  CHECK(s.values == std::vector<float>{1.5f, -2.0f, 0.25f});
  CHECK(s.name == "caf\xc3\xa9");
  CHECK(s.empty.empty());
  // The header by hand: magic, container version 1, kind "sample", version 2.
  auto const bytes = read_all(dir / "a.bin");
  REQUIRE(bytes.size() > 24);
  CHECK(static_cast<unsigned char>(bytes[0]) == 0x89);
  CHECK(std::string(bytes.begin() + 1, bytes.begin() + 4) == "MGP");
  CHECK(bytes[8] == 1);
  CHECK(bytes[12] == 6);
  CHECK(std::string(bytes.begin() + 16, bytes.begin() + 22) == "sample");
  CHECK(bytes[22] == 2);
}

TEST_CASE("binary_file: every truncation is a file_format_error", "[io][binary][reliability]") {
  mgpu_test::temp_dir dir;
  write_sample(dir / "a.bin");
  auto const bytes = read_all(dir / "a.bin");
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    write_all(dir / "cut.bin", std::vector<char>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n)));
    INFO("truncated to " << n << " of " << bytes.size() << " bytes");
    CHECK_THROWS_AS(read_sample(dir / "cut.bin"), mgpu::file_format_error);
  }
  auto longer = bytes;
  longer.push_back('x');
  write_all(dir / "long.bin", longer);
  CHECK_THROWS_WITH(read_sample(dir / "long.bin"), Contains("follow the end marker"));
}

TEST_CASE("binary_file: every flipped byte is a file_format_error", "[io][binary][reliability]") {
  mgpu_test::temp_dir dir;
  write_sample(dir / "a.bin");
  auto const bytes = read_all(dir / "a.bin");
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (unsigned bit : {0x01u, 0x80u}) {
      auto bad = bytes;
      bad[i] = static_cast<char>(static_cast<unsigned char>(bad[i]) ^ bit);
      write_all(dir / "bad.bin", bad);
      INFO("byte " << i << " xor " << bit);
      CHECK_THROWS_AS(read_sample(dir / "bad.bin"), mgpu::file_format_error);
    }
  }
}

TEST_CASE("binary_file: another kind, a newer version, not an mgpu file", "[io][binary][reliability]") {
  mgpu_test::temp_dir dir;
  write_sample(dir / "a.bin", 3);
  CHECK_THROWS_WITH(read_sample(dir / "a.bin", 2), Contains("sample version 3 is not supported") &&
                                                       Contains("versions 1 to 2"));
  CHECK_THROWS_WITH(mgpu::binary_reader(dir / "a.bin", "knn_index", 1), Contains("holds a sample, not a knn_index"));
  write_all(dir / "text.bin", {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '\n'});
  CHECK_THROWS_WITH(read_sample(dir / "text.bin"), Contains("not an mgpu binary file"));
  CHECK_THROWS_AS(read_sample(dir / "missing.bin"), mgpu::error);
  // Sections are read in order, by name and type.
  write_sample(dir / "b.bin");
  mgpu::binary_reader r(dir / "b.bin", "sample", 2);
  CHECK_THROWS_WITH(r.read<std::int32_t>("rows"), Contains("element type 5, expected 3"));
}

TEST_CASE("binary_file: a failed save leaves the old file", "[io][binary][reliability]") {
  mgpu_test::temp_dir dir;
  write_sample(dir / "a.bin");
  auto const before = read_all(dir / "a.bin");
  CHECK_THROWS_AS(mgpu::write_binary_file(dir / "a.bin", "sample", 1,
                                          [](mgpu::binary_writer& w) {
                                            w.write_value<std::int64_t>("rows", 1);
                                            throw mgpu::invalid_argument("stop");
                                          }),
                  mgpu::invalid_argument);
  CHECK(read_all(dir / "a.bin") == before);
}
