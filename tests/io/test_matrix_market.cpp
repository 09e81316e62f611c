// Matrix Market reader and writer: NIST format semantics, SciPy mmread/mmwrite as peer.
// Expected CSR arrays of the fixtures in tests/data/mm were computed by hand from the
// comments in each file and agree with scipy.io.mmread (SciPy 1.10) followed by
// tocsr().sum_duplicates().
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../test_support.hpp"
#include "mgpu/io/matrix_market.hpp"

namespace {

using Catch::Matchers::Contains;

std::filesystem::path fixture(char const* name) {
  return std::filesystem::path(MGPU_TEST_DATA_DIR) / "mm" / name;
}

template <class T>
std::vector<T> to_vector(std::span<T const> s) {
  return {s.begin(), s.end()};
}

/// A fresh directory under the system temp directory, removed with its contents.
class temp_dir {
 public:
  temp_dir() {
    static int counter = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("mgpu_mm_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  temp_dir(temp_dir const&) = delete;
  temp_dir& operator=(temp_dir const&) = delete;
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  [[nodiscard]] std::filesystem::path const& path() const { return path_; }
  [[nodiscard]] std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (auto const& e : std::filesystem::directory_iterator(path_)) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::filesystem::path path_;
};

std::string slurp(std::filesystem::path const& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

template <class I = std::int32_t>
std::optional<mgpu::parse_error> sparse_error(std::string const& text) {
  std::istringstream in(text);
  try {
    (void)mgpu::read_matrix_market<double, I>(in, "inline.mtx");
  } catch (mgpu::parse_error const& e) {
    return e;
  }
  return std::nullopt;
}

std::optional<mgpu::parse_error> dense_error(std::string const& text) {
  std::istringstream in(text);
  try {
    (void)mgpu::read_matrix_market_dense<double>(in, "inline.mtx");
  } catch (mgpu::parse_error const& e) {
    return e;
  }
  return std::nullopt;
}

/// The error exists, is tied to `line`, says so as "inline.mtx:<line>: " and mentions `words`.
void require_error_at(std::optional<mgpu::parse_error> const& e, std::size_t line,
                      std::string const& words) {
  REQUIRE(e.has_value());
  CHECK(e->file() == "inline.mtx");
  CHECK(e->line() == line);
  CHECK_THAT(std::string(e->what()),
             Contains("inline.mtx:" + std::to_string(line) + ": ") && Contains(words));
}

mgpu::csr_matrix<mgpu::cpu, double> read_text(std::string const& text) {
  std::istringstream in(text);
  return mgpu::read_matrix_market<double>(in, "inline.mtx");
}

constexpr char const* general_banner = "%%MatrixMarket matrix coordinate real general\n";

/// A random rows x cols CSR matrix built from a dense reference; values are multiples
/// of 1/8 in [-8, 8], exactly representable in float and double.
template <class T>
mgpu::csr_matrix<mgpu::cpu, T> random_eighths(std::mt19937& rng, std::int32_t rows,
                                              std::int32_t cols) {
  std::bernoulli_distribution present(0.2);
  std::uniform_int_distribution<int> eighths(-64, 64);
  std::vector<std::int32_t> offsets{0};
  std::vector<std::int32_t> columns;
  std::vector<T> values;
  for (std::int32_t r = 0; r < rows; ++r) {
    for (std::int32_t c = 0; c < cols; ++c) {
      if (!present(rng)) continue;
      columns.push_back(c);
      values.push_back(static_cast<T>(eighths(rng)) / T{8});
    }
    offsets.push_back(static_cast<std::int32_t>(columns.size()));
  }
  return {rows, cols, offsets, columns, values};
}

template <class T, class I>
void require_same(mgpu::csr_matrix<mgpu::cpu, T, I> const& a,
                  mgpu::csr_matrix<mgpu::cpu, T, I> const& b) {
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  REQUIRE(to_vector(a.row_offsets()) == to_vector(b.row_offsets()));
  REQUIRE(to_vector(a.col_indices()) == to_vector(b.col_indices()));
  REQUIRE(to_vector(a.values()) == to_vector(b.values()));
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Reading coordinate files

TEST_CASE("read_matrix_market reads a general real file, summing duplicates",
          "[io][matrix_market]") {
  auto const a = mgpu::read_matrix_market<double>(fixture("general_real.mtx"));
  CHECK(a.rows() == 3);
  CHECK(a.cols() == 4);
  CHECK(to_vector(a.row_offsets()) == std::vector<std::int32_t>{0, 2, 3, 5});
  CHECK(to_vector(a.col_indices()) == std::vector<std::int32_t>{0, 1, 0, 1, 3});
  CHECK(to_vector(a.values()) == std::vector<double>{10.0, 2.0, 0.25, 4.0, -1.0});
}

TEST_CASE("read_matrix_market mirrors the off-diagonal entries of a symmetric file",
          "[io][matrix_market]") {
  auto const a = mgpu::read_matrix_market<float>(fixture("symmetric_real.mtx"));
  CHECK(a.rows() == 3);
  CHECK(a.cols() == 3);
  CHECK(to_vector(a.row_offsets()) == std::vector<std::int32_t>{0, 2, 4, 6});
  CHECK(to_vector(a.col_indices()) == std::vector<std::int32_t>{0, 1, 0, 2, 1, 2});
  CHECK(to_vector(a.values()) == std::vector<float>{2, -1, -1, -1, -1, 2});
}

TEST_CASE("read_matrix_market mirrors skew-symmetric entries negated", "[io][matrix_market]") {
  auto const a = mgpu::read_matrix_market<double>(fixture("skew_symmetric_integer.mtx"));
  CHECK(to_vector(a.row_offsets()) == std::vector<std::int32_t>{0, 2, 3, 4});
  CHECK(to_vector(a.col_indices()) == std::vector<std::int32_t>{1, 2, 0, 0});
  CHECK(to_vector(a.values()) == std::vector<double>{-5, 7, 5, -7});
}

TEST_CASE("read_matrix_market reads an integer file into an integral value type",
          "[io][matrix_market]") {
  auto const a = mgpu::read_matrix_market<std::int32_t>(fixture("skew_symmetric_integer.mtx"));
  CHECK(to_vector(a.values()) == std::vector<std::int32_t>{-5, 7, 5, -7});
}

TEST_CASE("read_matrix_market gives pattern entries the value 1", "[io][matrix_market]") {
  auto const a = mgpu::read_matrix_market<float>(fixture("pattern_general.mtx"));
  CHECK(a.rows() == 2);
  CHECK(a.cols() == 3);
  CHECK(to_vector(a.row_offsets()) == std::vector<std::int32_t>{0, 1, 3});
  CHECK(to_vector(a.col_indices()) == std::vector<std::int32_t>{0, 0, 2});
  CHECK(to_vector(a.values()) == std::vector<float>{1, 1, 1});
}

TEST_CASE("read_matrix_market accepts the banner's words in any case", "[io][matrix_market]") {
  auto const a = read_text("%%MatrixMarket MATRIX Coordinate Real SYMMETRIC\n2 2 1\n2 1 3\n");
  CHECK(to_vector(a.col_indices()) == std::vector<std::int32_t>{1, 0});
  CHECK(to_vector(a.values()) == std::vector<double>{3, 3});
}

TEST_CASE("read_matrix_market accepts a leading plus sign and a byte order mark",
          "[io][matrix_market]") {
  auto const a =
      read_text("\xEF\xBB\xBF%%MatrixMarket matrix coordinate real general\n1 2 1\n+1 +2 +2.5\n");
  CHECK(to_vector(a.col_indices()) == std::vector<std::int32_t>{1});
  CHECK(to_vector(a.values()) == std::vector<double>{2.5});
}

TEST_CASE("read_matrix_market reads a 0 x n matrix with no entries", "[io][matrix_market]") {
  auto const a = read_text(std::string(general_banner) + "0 5 0\n");
  CHECK(a.rows() == 0);
  CHECK(a.cols() == 5);
  CHECK(a.nnz() == 0);
  CHECK(to_vector(a.row_offsets()) == std::vector<std::int32_t>{0});
}

TEST_CASE("read_matrix_market reads an n x 0 matrix and empty rows", "[io][matrix_market]") {
  auto const empty = read_text(std::string(general_banner) + "3 0 0\n");
  CHECK(empty.rows() == 3);
  CHECK(empty.cols() == 0);
  CHECK(to_vector(empty.row_offsets()) == std::vector<std::int32_t>{0, 0, 0, 0});
  auto const sparse = read_text(std::string(general_banner) + "4 2 1\n3 2 7\n");
  CHECK(to_vector(sparse.row_offsets()) == std::vector<std::int32_t>{0, 0, 0, 1, 1});
}

TEST_CASE("read_matrix_market reads real values with strtod's range rules", "[io][matrix_market]") {
  auto const a = read_text(std::string(general_banner) +
                           "1 5 5\n1 1 1e400\n1 2 -1e400\n1 3 1e-400\n"
                           "1 4 nan\n1 5 -inf\n");
  auto const v = a.values();
  CHECK(v[0] == std::numeric_limits<double>::infinity());
  CHECK(v[1] == -std::numeric_limits<double>::infinity());
  CHECK(v[2] == 0.0);
  CHECK(std::isnan(v[3]));
  CHECK(v[4] == -std::numeric_limits<double>::infinity());
}

TEST_CASE("read_matrix_market rounds real values to the nearest float", "[io][matrix_market]") {
  std::istringstream in(std::string(general_banner) + "1 2 2\n1 1 0.1\n1 2 1e-40\n");
  auto const a = mgpu::read_matrix_market<float>(in, "inline.mtx");
  CHECK(a.values()[0] == 0.1f);
  CHECK(a.values()[1] == 1e-40f);  // a subnormal float, not an error
}

TEST_CASE("read_matrix_market reads whole real values into an integral type, and only those",
          "[io][matrix_market]") {
  std::istringstream whole(std::string(general_banner) + "1 1 1\n1 1 -3.0\n");
  CHECK(mgpu::read_matrix_market<std::int64_t>(whole, "inline.mtx").values()[0] == -3);
  std::istringstream fraction(std::string(general_banner) + "1 1 1\n1 1 1.5\n");
  CHECK_THROWS_AS(mgpu::read_matrix_market<std::int64_t>(fraction, "inline.mtx"),
                  mgpu::parse_error);
}

TEST_CASE("read_matrix_market reads files with 64-bit indices", "[io][matrix_market]") {
  auto const text = std::string(general_banner) + "2 3000000000 2\n1 3000000000 1.5\n2 1 -2\n";
  std::istringstream in(text);
  auto const a = mgpu::read_matrix_market<double, std::int64_t>(in, "inline.mtx");
  CHECK(a.cols() == 3000000000LL);
  CHECK(to_vector(a.row_offsets()) == std::vector<std::int64_t>{0, 1, 2});
  CHECK(to_vector(a.col_indices()) == std::vector<std::int64_t>{2999999999LL, 0});
  CHECK(to_vector(a.values()) == std::vector<double>{1.5, -2});
}

TEST_CASE("read_matrix_market names a file that cannot be opened", "[io][matrix_market]") {
  auto const missing = fixture("no_such_file.mtx");
  CHECK_THROWS_WITH(mgpu::read_matrix_market(missing),
                    Contains(missing.string() + ":0: cannot open"));
}

// ---------------------------------------------------------------------------------------
// Reading array files

TEST_CASE("read_matrix_market_dense reads a general array column by column",
          "[io][matrix_market]") {
  auto const a = mgpu::read_matrix_market_dense<double>(fixture("array_general.mtx"));
  REQUIRE(a.rows() == 2);
  REQUIRE(a.cols() == 3);
  CHECK(std::vector<double>(a.data(), a.data() + 6) == std::vector<double>{1, 2, 3, 4, 5, 6});
}

TEST_CASE("read_matrix_market_dense expands a symmetric array's lower triangle",
          "[io][matrix_market]") {
  auto const a = mgpu::read_matrix_market_dense<float>(fixture("array_symmetric.mtx"));
  REQUIRE(a.rows() == 3);
  REQUIRE(a.cols() == 3);
  CHECK(std::vector<float>(a.data(), a.data() + 9) ==
        std::vector<float>{1, 2, 3, 2, 4, 5, 3, 5, 6});
}

TEST_CASE("read_matrix_market_dense expands a skew-symmetric array with a zero diagonal",
          "[io][matrix_market]") {
  std::istringstream in("%%MatrixMarket matrix array integer skew-symmetric\n3 3\n1\n2\n3\n");
  auto const a = mgpu::read_matrix_market_dense<double>(in, "inline.mtx");
  CHECK(std::vector<double>(a.data(), a.data() + 9) ==
        std::vector<double>{0, -1, -2, 1, 0, -3, 2, 3, 0});
}

TEST_CASE("read_matrix_market_dense reads 0 x n and n x 0 arrays", "[io][matrix_market]") {
  std::istringstream zero_rows("%%MatrixMarket matrix array real general\n0 4\n");
  auto const a = mgpu::read_matrix_market_dense<double>(zero_rows, "inline.mtx");
  CHECK(a.rows() == 0);
  CHECK(a.cols() == 4);
  std::istringstream zero_cols("%%MatrixMarket matrix array real general\n4 0\n");
  auto const b = mgpu::read_matrix_market_dense<double>(zero_cols, "inline.mtx");
  CHECK(b.rows() == 4);
  CHECK(b.cols() == 0);
}

// ---------------------------------------------------------------------------------------
// Writing

TEST_CASE("write_matrix_market writes 1-based coordinate entries in row order",
          "[io][matrix_market]") {
  mgpu::csr_matrix<mgpu::cpu, double> const a(2, 3, std::vector<std::int32_t>{0, 1, 3},
                                              std::vector<std::int32_t>{1, 0, 2},
                                              std::vector<double>{0.5, 1e-300, -3});
  std::ostringstream out;
  mgpu::write_matrix_market(out, a);
  CHECK(out.str() ==
        "%%MatrixMarket matrix coordinate real general\n"
        "2 3 3\n"
        "1 2 0.5\n"
        "2 1 1e-300\n"
        "2 3 -3\n");
}

TEST_CASE("write_matrix_market labels integral values 'integer'", "[io][matrix_market]") {
  mgpu::csr_matrix<mgpu::cpu, std::int32_t> const a(1, 2, std::vector<std::int32_t>{0, 1},
                                                    std::vector<std::int32_t>{1},
                                                    std::vector<std::int32_t>{-7});
  std::ostringstream out;
  mgpu::write_matrix_market(out, a);
  CHECK(out.str() == "%%MatrixMarket matrix coordinate integer general\n1 2 1\n1 2 -7\n");
}

TEST_CASE("write_matrix_market writes a row block of a view with its own row numbers",
          "[io][matrix_market]") {
  mgpu::csr_matrix<mgpu::cpu, float> const a(3, 2, std::vector<std::int32_t>{0, 1, 2, 3},
                                             std::vector<std::int32_t>{0, 1, 0},
                                             std::vector<float>{1, 2, 3});
  std::ostringstream out;
  mgpu::write_matrix_market(out, a.view().row_block(1, 3));
  CHECK(out.str() == "%%MatrixMarket matrix coordinate real general\n2 2 2\n1 2 2\n2 1 3\n");
}

TEST_CASE("write_matrix_market writes a dense matrix as an array, column by column",
          "[io][matrix_market]") {
  mgpu::dense_matrix<mgpu::cpu, double> a(2, 2);
  a(0, 0) = 1;
  a(0, 1) = 2;
  a(1, 0) = 3;
  a(1, 1) = 0.125;
  std::ostringstream out;
  mgpu::write_matrix_market(out, a);
  CHECK(out.str() == "%%MatrixMarket matrix array real general\n2 2\n1\n3\n2\n0.125\n");
}

TEST_CASE("write_matrix_market refuses a view with a column outside the matrix",
          "[io][matrix_market]") {
  std::vector<std::int32_t> const offsets{0, 1};
  std::vector<std::int32_t> const columns{5};
  std::vector<double> const values{1};
  mgpu::csr_view<double, std::int32_t> const bad{1, 2, offsets.data(), columns.data(),
                                                 values.data()};
  std::ostringstream out;
  CHECK_THROWS_AS(mgpu::write_matrix_market(out, bad), mgpu::format_error);
}

TEST_CASE("write_matrix_market reports a failed stream", "[io][matrix_market]") {
  std::ofstream closed;
  CHECK_THROWS_AS(mgpu::write_matrix_market(closed, mgpu::csr_matrix<mgpu::cpu, double>(1, 1)),
                  mgpu::error);
}

TEST_CASE("write_matrix_market then read_matrix_market gives back the same matrix",
          "[io][matrix_market]") {
  temp_dir dir;
  std::mt19937 rng(20240601);
  std::uniform_int_distribution<std::int32_t> extent(0, 40);
  for (int trial = 0; trial < 20; ++trial) {
    auto const a = random_eighths<double>(rng, extent(rng), extent(rng));
    auto const path = dir.path() / "round_trip.mtx";
    mgpu::write_matrix_market(path, a);
    require_same(mgpu::read_matrix_market<double>(path), a);
  }
}

TEST_CASE("write_matrix_market keeps every bit of double and float values", "[io][matrix_market]") {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> uniform(-1e6, 1e6);
  std::vector<std::int32_t> offsets{0};
  std::vector<std::int32_t> columns;
  std::vector<double> doubles;
  std::vector<float> floats;
  for (std::int32_t r = 0; r < 50; ++r) {
    for (std::int32_t c = 0; c < 4; ++c) {
      columns.push_back(c);
      doubles.push_back(uniform(rng) * std::pow(10.0, static_cast<double>(r % 11) * 30 - 150));
      floats.push_back(static_cast<float>(uniform(rng)) *
                       std::pow(10.0f, static_cast<float>(r % 5) * 8 - 20));
    }
    offsets.push_back(static_cast<std::int32_t>(columns.size()));
  }
  mgpu::csr_matrix<mgpu::cpu, double> const a(50, 4, offsets, columns, doubles);
  mgpu::csr_matrix<mgpu::cpu, float> const b(50, 4, offsets, columns, floats);
  std::stringstream da;
  std::stringstream fb;
  mgpu::write_matrix_market(da, a);
  mgpu::write_matrix_market(fb, b);
  require_same(mgpu::read_matrix_market<double>(da, "doubles"), a);
  require_same(mgpu::read_matrix_market<float>(fb, "floats"), b);
}

TEST_CASE("write_matrix_market then read_matrix_market_dense gives back a dense matrix",
          "[io][matrix_market]") {
  temp_dir dir;
  mgpu::dense_matrix<mgpu::cpu, double> a(3, 5);
  for (std::int64_t i = 0; i < 3; ++i) {
    for (std::int64_t j = 0; j < 5; ++j) a(i, j) = static_cast<double>(i * 10 + j) / 3.0;
  }
  auto const path = dir.path() / "dense.mtx";
  mgpu::write_matrix_market(path, a);
  auto const b = mgpu::read_matrix_market_dense<double>(path);
  REQUIRE(b.rows() == 3);
  REQUIRE(b.cols() == 5);
  CHECK(std::equal(a.data(), a.data() + 15, b.data()));
}

TEST_CASE("write_matrix_market to a path replaces an existing file and leaves no temporary",
          "[io][matrix_market]") {
  temp_dir dir;
  auto const path = dir.path() / "a.mtx";
  std::ofstream(path) << std::string(10000, 'x');
  mgpu::write_matrix_market(path, mgpu::csr_matrix<mgpu::cpu, double>(2, 2));
  CHECK(slurp(path) == "%%MatrixMarket matrix coordinate real general\n2 2 0\n");
  CHECK(dir.entries() == std::vector<std::string>{"a.mtx"});
}

TEST_CASE("write_matrix_market to a path leaves the old file untouched when writing fails",
          "[io][matrix_market]") {
  temp_dir dir;
  auto const path = dir.path() / "a.mtx";
  std::ofstream(path) << "old contents";
  // Row 0 is written before row 1's bad column is found, so a direct write would
  // leave a half-written file behind.
  std::vector<std::int32_t> const offsets{0, 1, 2};
  std::vector<std::int32_t> const columns{0, 9};
  std::vector<double> const values{1, 2};
  mgpu::csr_view<double, std::int32_t> const bad{2, 2, offsets.data(), columns.data(),
                                                 values.data()};
  CHECK_THROWS_AS(mgpu::write_matrix_market(path, bad), mgpu::format_error);
  CHECK(slurp(path) == "old contents");
  CHECK(dir.entries() == std::vector<std::string>{"a.mtx"});
}

TEST_CASE("write_matrix_market to a path in a missing directory throws and creates nothing",
          "[io][matrix_market]") {
  temp_dir dir;
  auto const path = dir.path() / "missing" / "a.mtx";
  CHECK_THROWS_AS(mgpu::write_matrix_market(path, mgpu::csr_matrix<mgpu::cpu, double>(1, 1)),
                  mgpu::error);
  CHECK(dir.entries().empty());
}

TEST_CASE("write_matrix_market to a path that is a directory throws and cleans up",
          "[io][matrix_market]") {
  temp_dir dir;
  std::filesystem::create_directory(dir.path() / "a.mtx");
  CHECK_THROWS_AS(
      mgpu::write_matrix_market(dir.path() / "a.mtx", mgpu::csr_matrix<mgpu::cpu, double>(1, 1)),
      mgpu::error);
  CHECK(dir.entries() == std::vector<std::string>{"a.mtx"});
  CHECK(std::filesystem::is_directory(dir.path() / "a.mtx"));
}

// ---------------------------------------------------------------------------------------
// RELIABILITY.md row 13: malformed input raises parse_error with the file and line.

TEST_CASE("reliability row 13: an empty file is a parse error at line 0",
          "[io][matrix_market][reliability]") {
  require_error_at(sparse_error(""), 0, "empty file");
  require_error_at(dense_error(""), 0, "empty file");
}

TEST_CASE("reliability row 13: a misspelt banner is rejected on line 1",
          "[io][matrix_market][reliability]") {
  require_error_at(sparse_error("%%MatrixMarkt matrix coordinate real general\n1 1 0\n"), 1,
                   "missing '%%MatrixMarket' banner");
  require_error_at(sparse_error("%%matrixmarket matrix coordinate real general\n1 1 0\n"), 1,
                   "missing '%%MatrixMarket' banner");
}

TEST_CASE("reliability row 13: a file without a banner is rejected on line 1",
          "[io][matrix_market][reliability]") {
  require_error_at(sparse_error("1 1 1\n1 1 1\n"), 1, "missing '%%MatrixMarket' banner");
  require_error_at(sparse_error("\n%%MatrixMarket matrix coordinate real general\n1 1 0\n"), 1,
                   "missing '%%MatrixMarket' banner");
}

TEST_CASE("reliability row 13: a banner with missing or extra words is rejected",
          "[io][matrix_market][reliability]") {
  require_error_at(sparse_error("%%MatrixMarket matrix coordinate real\n1 1 0\n"), 1,
                   "4 words, expected 5");
  require_error_at(sparse_error("%%MatrixMarket matrix coordinate real general extra\n1 1 0\n"), 1,
                   "'extra'");
}

TEST_CASE("reliability row 13: an unknown object is rejected", "[io][matrix_market][reliability]") {
  require_error_at(sparse_error("%%MatrixMarket vector coordinate real general\n1 1 0\n"), 1,
                   "unknown object 'vector'");
}

TEST_CASE("reliability row 13: an unknown format is rejected", "[io][matrix_market][reliability]") {
  require_error_at(sparse_error("%%MatrixMarket matrix sparse real general\n1 1 0\n"), 1,
                   "unknown format 'sparse'");
}

TEST_CASE("reliability row 13: an unknown or unsupported field is rejected",
          "[io][matrix_market][reliability]") {
  require_error_at(sparse_error("%%MatrixMarket matrix coordinate quaternion general\n1 1 0\n"), 1,
                   "unknown field 'quaternion'");
  require_error_at(sparse_error("%%MatrixMarket matrix coordinate complex general\n1 1 0\n"), 1,
                   "'complex' is not supported");
  require_error_at(dense_error("%%MatrixMarket matrix array pattern general\n1 1\n"), 1,
                   "'pattern' is not allowed with format 'array'");
  require_error_at(sparse_error("%%MatrixMarket matrix coordinate pattern skew-symmetric\n1 1 0\n"),
                   1, "'pattern' is not allowed with symmetry 'skew-symmetric'");
}

TEST_CASE("reliability row 13: an unknown or unsupported symmetry is rejected",
          "[io][matrix_market][reliability]") {
  require_error_at(sparse_error("%%MatrixMarket matrix coordinate real upper\n1 1 0\n"), 1,
                   "unknown symmetry 'upper'");
  require_error_at(sparse_error("%%MatrixMarket matrix coordinate real hermitian\n1 1 0\n"), 1,
                   "'hermitian' is not supported");
}

TEST_CASE("reliability row 13: a file of the other format is rejected on its banner",
          "[io][matrix_market][reliability]") {
  require_error_at(sparse_error("%%MatrixMarket matrix array real general\n1 1\n1\n"), 1,
                   "read it with read_matrix_market_dense");
  require_error_at(dense_error("%%MatrixMarket matrix coordinate real general\n1 1 0\n"), 1,
                   "read it with read_matrix_market");
}

TEST_CASE("reliability row 13: a missing size line is reported after the last line",
          "[io][matrix_market][reliability]") {
  require_error_at(sparse_error(std::string(general_banner) + "% only a comment\n\n"), 4,
                   "expected the size line");
  require_error_at(sparse_error("%%MatrixMarket matrix coordinate real general"), 2,
                   "expected the size line");
}

TEST_CASE("reliability row 13: a size line with too few or too many numbers is rejected",
          "[io][matrix_market][reliability]") {
  require_error_at(sparse_error(std::string(general_banner) + "%\n3 3\n"), 3,
                   "2 numbers, expected 3");
  require_error_at(dense_error("%%MatrixMarket matrix array real general\n2 2 4\n"), 2,
                   "unexpected '4' after the size line");
}

TEST_CASE("reliability row 13: negative sizes are rejected", "[io][matrix_market][reliability]") {
  require_error_at(sparse_error(std::string(general_banner) + "-1 3 0\n"), 2, "negative rows -1");
  require_error_at(sparse_error(std::string(general_banner) + "3 -2 0\n"), 2, "negative cols -2");
  require_error_at(sparse_error(std::string(general_banner) + "3 3 -5\n"), 2,
                   "negative entries -5");
  require_error_at(dense_error("%%MatrixMarket matrix array real general\n2 -2\n"), 2,
                   "negative cols -2");
}

TEST_CASE("reliability row 13: non-numeric sizes are rejected",
          "[io][matrix_market][reliability]") {
  require_error_at(sparse_error(std::string(general_banner) + "3 three 0\n"), 2,
                   "invalid cols 'three'");
  require_error_at(sparse_error(std::string(general_banner) + "3.0 3 0\n"), 2,
                   "invalid rows '3.0'");
}

TEST_CASE("reliability row 13: sizes beyond 64 bits are parse errors",
          "[io][matrix_market][reliability]") {
  require_error_at(
      sparse_error<std::int64_t>(std::string(general_banner) + "99999999999999999999 1 0\n"), 2,
      "does not fit in 64 bits");
  require_error_at(
      sparse_error<std::int64_t>(std::string(general_banner) + "1 1 -99999999999999999999\n"), 2,
      "does not fit in 64 bits");
}

TEST_CASE("reliability row 13: sizes beyond the index type raise index_overflow before allocating",
          "[io][matrix_market][reliability]") {
  for (char const* size_line : {"3000000000 1 0\n", "1 3000000000 0\n", "1 1 3000000000\n"}) {
    std::istringstream in(std::string(general_banner) + "% comment\n" + size_line);
    CHECK_THROWS_MATCHES(mgpu::read_matrix_market<double>(in, "inline.mtx"), mgpu::index_overflow,
                         Catch::Matchers::Predicate<mgpu::index_overflow>(
                             [](auto const& e) {
                               return std::string(e.what()).find("inline.mtx:3:") !=
                                      std::string::npos;
                             },
                             "message starts with inline.mtx:3:"));
  }
}

TEST_CASE("reliability row 13: an array size beyond 64 bits raises index_overflow",
          "[io][matrix_market][reliability]") {
  std::istringstream in("%%MatrixMarket matrix array real general\n9223372036854775807 2\n");
  CHECK_THROWS_AS(mgpu::read_matrix_market_dense<double>(in, "inline.mtx"), mgpu::index_overflow);
}

TEST_CASE("reliability row 13: a header announcing vast entries does not allocate them",
          "[io][matrix_market][reliability]") {
  // 10^15 entries would need petabytes; the short body must end in a parse error.
  require_error_at(
      sparse_error<std::int64_t>(std::string(general_banner) + "2 2 1000000000000000\n1 1 1\n"), 4,
      "after 1 of the 1000000000000000 entries");
  require_error_at(
      dense_error("%%MatrixMarket matrix array real general\n1000000000 1000000000\n1\n"), 4,
      "after 1 of the 1000000000000000000 values");
}

TEST_CASE("reliability row 13: fewer entries than the header declares are reported at the end",
          "[io][matrix_market][reliability]") {
  require_error_at(sparse_error(std::string(general_banner) + "3 3 3\n1 1 1\n2 2 2\n"), 5,
                   "after 2 of the 3 entries declared on line 2");
  require_error_at(
      sparse_error(std::string(general_banner) + "3 3 3\n1 1 1\n2 2 2\n% trailing comment\n\n"), 7,
      "after 2 of the 3 entries");
  require_error_at(dense_error("%%MatrixMarket matrix array real general\n2 2\n1\n2\n3"), 6,
                   "after 3 of the 4 values");
}

TEST_CASE(
    "reliability row 13: more entries than the header declares are reported at the first extra",
    "[io][matrix_market][reliability]") {
  require_error_at(sparse_error(std::string(general_banner) + "3 3 2\n1 1 1\n%\n2 2 2\n3 3 3\n"), 6,
                   "more entries than the 2 declared on line 2");
  require_error_at(dense_error("%%MatrixMarket matrix array real symmetric\n2 2\n1\n2\n3\n4\n"), 6,
                   "more values than the 3");
}

TEST_CASE("reliability row 13: a truncated entry line is rejected",
          "[io][matrix_market][reliability]") {
  require_error_at(sparse_error(std::string(general_banner) + "3 3 2\n1 1 1\n2 2\n"), 4,
                   "truncated entry: expected 3 fields 'row col value', found 2");
  require_error_at(sparse_error(std::string(general_banner) + "3 3 1\n1\n"), 3, "found 1");
  require_error_at(sparse_error("%%MatrixMarket matrix coordinate pattern general\n3 3 1\n2\n"), 3,
                   "expected 2 fields 'row col', found 1");
}

TEST_CASE("reliability row 13: non-numeric tokens in entries are rejected",
          "[io][matrix_market][reliability]") {
  require_error_at(sparse_error(std::string(general_banner) + "3 3 1\nx 1 1\n"), 3,
                   "invalid row index 'x'");
  require_error_at(sparse_error(std::string(general_banner) + "3 3 1\n1 1.5 1\n"), 3,
                   "invalid column index '1.5'");
  require_error_at(sparse_error(std::string(general_banner) + "3 3 1\n1 1 one\n"), 3,
                   "invalid real value 'one'");
  require_error_at(sparse_error(std::string(general_banner) + "3 3 1\n1 1 1.0x\n"), 3,
                   "invalid real value '1.0x'");
  require_error_at(
      sparse_error("%%MatrixMarket matrix coordinate integer general\n3 3 1\n1 1 2.5\n"), 3,
      "invalid integer value '2.5'");
  require_error_at(dense_error("%%MatrixMarket matrix array real general\n1 2\n1\nabc\n"), 4,
                   "invalid real value 'abc'");
}

TEST_CASE("reliability row 13: index 0 is rejected as 1-based data",
          "[io][matrix_market][reliability]") {
  require_error_at(sparse_error(std::string(general_banner) + "3 3 2\n1 1 1\n0 2 1\n"), 4,
                   "row index '0' is outside [1, 3]");
  require_error_at(sparse_error(std::string(general_banner) + "3 3 1\n2 0 1\n"), 3,
                   "column index '0' is outside [1, 3]");
}

TEST_CASE("reliability row 13: indices beyond the shape are rejected",
          "[io][matrix_market][reliability]") {
  require_error_at(sparse_error(std::string(general_banner) + "3 4 1\n4 1 1\n"), 3,
                   "row index '4' is outside [1, 3]");
  require_error_at(sparse_error(std::string(general_banner) + "3 4 1\n1 5 1\n"), 3,
                   "column index '5' is outside [1, 4]");
  require_error_at(sparse_error(std::string(general_banner) + "3 4 1\n-1 1 1\n"), 3,
                   "row index '-1' is outside");
  require_error_at(sparse_error(std::string(general_banner) + "3 4 1\n99999999999999999999 1 1\n"),
                   3, "is outside [1, 3]");
}

TEST_CASE("reliability row 13: extra tokens on an entry line are rejected",
          "[io][matrix_market][reliability]") {
  require_error_at(sparse_error(std::string(general_banner) + "3 3 1\n1 1 1 7\n"), 3,
                   "unexpected extra field '7'");
  require_error_at(sparse_error("%%MatrixMarket matrix coordinate pattern general\n3 3 1\n1 1 1\n"),
                   3, "unexpected extra field '1'");
  require_error_at(dense_error("%%MatrixMarket matrix array real general\n1 2\n1 2\n"), 3,
                   "unexpected extra field '2'");
}

TEST_CASE("reliability row 13: a symmetric matrix must be square",
          "[io][matrix_market][reliability]") {
  require_error_at(sparse_error("%%MatrixMarket matrix coordinate real symmetric\n3 4 0\n"), 2,
                   "must be square, got 3 x 4");
  require_error_at(dense_error("%%MatrixMarket matrix array real skew-symmetric\n%\n2 3\n"), 3,
                   "must be square, got 2 x 3");
}

TEST_CASE("reliability row 13: an integer value outside the value type is rejected",
          "[io][matrix_market][reliability]") {
  std::istringstream in(
      "%%MatrixMarket matrix coordinate integer general\n1 1 1\n1 1 3000000000\n");
  CHECK_THROWS_WITH(mgpu::read_matrix_market<std::int32_t>(in, "inline.mtx"),
                    Contains("inline.mtx:3: ") && Contains("does not fit the value type"));
}

TEST_CASE(
    "reliability row 13: comment lines and blank lines are accepted anywhere after the banner",
    "[io][matrix_market][reliability]") {
  auto const a = read_text(std::string(general_banner) +
                           "% comment\n\n   \t\n%another\n2 2 2\n\n% in the body\n1 1 5\n   % "
                           "indented comment\n\n2 2 6\n\n");
  CHECK(to_vector(a.row_offsets()) == std::vector<std::int32_t>{0, 1, 2});
  CHECK(to_vector(a.values()) == std::vector<double>{5, 6});
}

TEST_CASE("reliability row 13: CRLF line endings, tabs and surrounding blanks are accepted",
          "[io][matrix_market][reliability]") {
  auto const a = read_text(
      "  %%MatrixMarket  matrix\tcoordinate real general  \r\n"
      "% comment\r\n"
      "\r\n"
      "  2 3 2 \r\n"
      "\t1  3\t-2.5\t\r\n"
      " 2 1 4 \r\n");
  CHECK(a.rows() == 2);
  CHECK(a.cols() == 3);
  CHECK(to_vector(a.row_offsets()) == std::vector<std::int32_t>{0, 1, 2});
  CHECK(to_vector(a.col_indices()) == std::vector<std::int32_t>{2, 0});
  CHECK(to_vector(a.values()) == std::vector<double>{-2.5, 4});

  std::istringstream dense("%%MatrixMarket matrix array real general\r\n1 2\r\n 7 \r\n8\r\n");
  auto const b = mgpu::read_matrix_market_dense<double>(dense, "inline.mtx");
  CHECK(std::vector<double>(b.data(), b.data() + 2) == std::vector<double>{7, 8});
}

TEST_CASE("reliability row 13: a last line without a newline is read",
          "[io][matrix_market][reliability]") {
  auto const a = read_text(std::string(general_banner) + "1 1 1\n1 1 9");
  CHECK(to_vector(a.values()) == std::vector<double>{9});
}

TEST_CASE("reliability row 13: errors from a file name the file",
          "[io][matrix_market][reliability]") {
  temp_dir dir;
  auto const path = dir.path() / "bad.mtx";
  std::ofstream(path) << general_banner << "2 2 1\n3 1 1\n";
  CHECK_THROWS_WITH(mgpu::read_matrix_market<double>(path),
                    Contains(path.string() + ":3: ") && Contains("row index '3'"));
}

TEST_CASE("reliability row 13: a 0 x n array file with a vast n is read at once", "[io][matrix_market][reliability]") {
  // Found by fuzzing: the reader used to loop over all n (empty) columns.
  std::istringstream in("%%MatrixMarket matrix array real general\n0 9223372036854775807\n");
  auto const a = mgpu::read_matrix_market_dense<double>(in, "inline.mtx");
  CHECK(a.rows() == 0);
  CHECK(a.cols() == INT64_MAX);
}

// ---------------------------------------------------------------------------------------
// Memory from untrusted headers (RELIABILITY.md row 23)

namespace {

/// Peak resident memory of this process so far, in bytes.
std::size_t peak_rss_bytes() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<std::size_t>(usage.ru_maxrss) * 1024;
}

mgpu::csr_matrix<mgpu::cpu, double> read_with(std::string const& text, mgpu::matrix_market_options const& o) {
  std::istringstream in(text);
  return mgpu::read_matrix_market<double>(in, "inline.mtx", o);
}

}  // namespace

TEST_CASE("reliability row 23: a 78-byte file declaring 2000000000 x 2000000000 is out_of_memory before allocating",
          "[io][matrix_market][reliability]") {
  // 2e9 + 1 row offsets of int32: 8000000004 bytes, far above max(64 MiB, 16 x 78 bytes).
  std::string const text = std::string(general_banner) + "2000000000 2000000000 1\n1 1 1.5\n";
  REQUIRE(text.size() == 78);
  auto const before = peak_rss_bytes();
  try {
    std::istringstream in(text);
    (void)mgpu::read_matrix_market<float, std::int32_t>(in, "inline.mtx");
    FAIL("the file was read");
  } catch (mgpu::out_of_memory const& e) {
    CHECK(e.requested_bytes() == 8000000004u);
    CHECK_THAT(std::string(e.what()),
               Contains("inline.mtx:2: declares 2000000000 rows: CSR row offsets need 8000000004 bytes, above "
                        "the limit of 67108864 bytes for a file of 78 bytes") &&
                   Contains("raise shape_memory_floor"));
  }
  // Nothing near the 8 GB was touched (the old reader reached 7.8 GB).
  CHECK(peak_rss_bytes() - before < (std::size_t{100} << 20));
}

TEST_CASE("reliability row 23: the row limit is max(shape_memory_floor, shape_memory_per_file_byte x file bytes)",
          "[io][matrix_market][reliability]") {
  // 62 bytes at 16 bytes per file byte: 992 bytes of int32 offsets, i.e. at most 247 rows
  // (248 offsets = 992 bytes); 248 rows need 249 * 4 = 996.
  mgpu::matrix_market_options const per_byte_only{.shape_memory_floor = 0, .shape_memory_per_file_byte = 16};
  std::string const fits = std::string(general_banner) + "247 3 1\n2 3 2.5\n";
  std::string const too_many = std::string(general_banner) + "248 3 1\n2 3 2.5\n";
  REQUIRE(fits.size() == 62);
  REQUIRE(too_many.size() == 62);
  auto const a = read_with(fits, per_byte_only);
  CHECK(a.rows() == 247);
  CHECK(to_vector(a.row_offsets()).back() == 1);
  CHECK(to_vector(a.values()) == std::vector<double>{2.5});
  auto const what = mgpu_test::message_of<mgpu::out_of_memory>([&] { (void)read_with(too_many, per_byte_only); });
  CHECK_THAT(what, Contains("declares 248 rows: CSR row offsets need 996 bytes, above the limit of 992 bytes"));
  // A floor above the scaled figure wins.
  CHECK(read_with(too_many, {.shape_memory_floor = 996, .shape_memory_per_file_byte = 16}).rows() == 248);
}

TEST_CASE("reliability row 23: a raised floor reads a 17000000-row file with one entry per end row exactly",
          "[io][matrix_market][reliability]") {
  // 17000001 int32 offsets are 68000004 bytes: just above the default 64 MiB (67108864).
  std::string const text = std::string(general_banner) + "17000000 3 2\n1 2 0.1\n17000000 3 -7.25e-3\n";
  auto const what = mgpu_test::message_of<mgpu::out_of_memory>([&] { (void)read_with(text, {}); });
  CHECK_THAT(what, Contains("declares 17000000 rows: CSR row offsets need 68000004 bytes, above the limit of 67108864"));

  auto const a = read_with(text, {.shape_memory_floor = std::size_t{128} << 20});
  REQUIRE(a.rows() == 17000000);
  REQUIRE(a.cols() == 3);
  auto const offsets = a.row_offsets();
  CHECK(offsets[0] == 0);
  CHECK(offsets[1] == 1);
  CHECK(offsets[16999999] == 1);
  CHECK(offsets[17000000] == 2);
  CHECK(to_vector(a.col_indices()) == std::vector<std::int32_t>{1, 2});
  CHECK(to_vector(a.values()) == std::vector<double>{0.1, -7.25e-3});
}


#ifndef MGPU_TEST_SANITIZED
TEST_CASE("reliability row 23: rows within the limit are still checked against the memory available (RLIMIT_AS)",
          "[io][matrix_market][reliability]") {
  // 16000000 rows: 64000004 bytes of offsets, under the 64 MiB default, 4 copies of them
  // while building; with 128 MiB of address space left that cannot fit.
  std::string const text = std::string(general_banner) + "16000000 2 1\n1 1 1\n";
  pid_t const pid = ::fork();
  if (pid == 0) {
    std::FILE* statm = std::fopen("/proc/self/statm", "r");
    unsigned long long pages = 0;
    if (statm == nullptr || std::fscanf(statm, "%llu", &pages) != 1) ::_exit(10);
    std::fclose(statm);
    rlimit const limit{pages * static_cast<rlim_t>(::sysconf(_SC_PAGESIZE)) + (rlim_t{128} << 20), RLIM_INFINITY};
    if (::setrlimit(RLIMIT_AS, &limit) != 0) ::_exit(11);
    try {
      (void)read_with(text, {});
      ::_exit(1);
    } catch (mgpu::out_of_memory const& e) {
      bool const named = std::string(e.what()).find("inline.mtx:2: declares 16000000 rows: CSR row offsets need "
                                                    "64000004 bytes, 4 times that while the matrix is built") !=
                         std::string::npos;
      ::_exit(named && e.requested_bytes() == 256000016u && e.available_bytes() <= (std::size_t{128} << 20) ? 0
                                                                                                           : 2);
    } catch (...) {
      ::_exit(3);
    }
  }
  REQUIRE(pid > 0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
#endif
