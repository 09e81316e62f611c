// libFuzzer target: the Matrix Market readers (mgpu/io/matrix_market.hpp), RELIABILITY.md
// row 13. Each input is read as a whole file by the coordinate reader (three value/index
// type pairs) and by the array reader (two value types).
//
// Properties: only parse_error and index_overflow escape the readers, and out_of_memory
// from the coordinate reader only when the declared rows need more offsets than its
// limit (RELIABILITY.md row 23); a parse error names the input and a line inside it (or
// one past its end); a matrix read is canonical CSR of the declared shape; the 32- and
// 64-bit index readers agree on the structure and on the line of a parse error.
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "fuzz_support.hpp"
#include "mgpu/io/matrix_market.hpp"

namespace {

constexpr std::string_view input_name = "fuzz.mtx";

// A valid header may declare a matrix with billions of empty rows. The reader's own limit
// on row offsets (matrix_market_options) keeps such inputs from allocating more than it
// allows; the fuzzer sets a 1 MiB floor (the default's 64 MiB would make every input that
// declares millions of rows slow), so row counts beyond 262143 (int32) or 131071 (int64)
// must raise out_of_memory, and beyond the index type index_overflow, before allocating.
constexpr mgpu::matrix_market_options limits{.shape_memory_floor = std::size_t{1} << 20,
                                             .shape_memory_per_file_byte = 16};

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// The row count on the size line (the first line after the banner that is neither blank
// nor a comment), parsed as the reader does; nullopt when there is none or it is not a
// number (the reader then fails before allocating).
std::optional<std::int64_t> declared_rows(std::string_view text) {
  auto newline = text.find('\n');
  while (newline != std::string_view::npos) {
    text.remove_prefix(newline + 1);
    newline = text.find('\n');
    auto line = text.substr(0, newline);
    std::size_t first = 0;
    while (first < line.size() && is_blank(line[first])) ++first;
    if (first == line.size() || line[first] == '%') continue;
    line.remove_prefix(first);
    std::size_t end = 0;
    while (end < line.size() && !is_blank(line[end])) ++end;
    auto token = line.substr(0, end);
    if (token.size() > 1 && token[0] == '+' && token[1] != '+' && token[1] != '-') {
      token.remove_prefix(1);
    }
    std::int64_t rows = 0;
    auto const [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), rows);
    if (ec != std::errc{} || ptr != token.data() + token.size()) return std::nullopt;
    return rows;
  }
  return std::nullopt;
}

/// True when `rows` + 1 offsets of I exceed the fuzzer's limit for an input of `bytes`.
template <class I>
bool beyond_limit(std::optional<std::int64_t> rows, std::size_t bytes) {
  auto const limit = std::max(limits.shape_memory_floor, limits.shape_memory_per_file_byte * bytes);
  return rows && static_cast<std::uint64_t>(*rows) + 1 > limit / sizeof(I);
}

// What a coordinate read gave: the matrix's structure, or the line of its parse error,
// or nothing comparable (index_overflow or out_of_memory, whose limits depend on I).
struct sparse_outcome {
  std::variant<std::monostate, std::size_t, std::pair<std::vector<std::int64_t>,
                                                      std::vector<std::int64_t>>>
      result;
};

// The public readers copy the stream into a std::string, whose terminating NUL hides a
// read one past the end from AddressSanitizer; `exact` parses the fuzzer's own buffer,
// which ends where the input does, through the readers' internal entry point.
enum class path { stream, exact };

template <class T, class I>
sparse_outcome read_sparse(std::string_view text, path via, std::optional<std::int64_t> rows) {
  std::string const name(input_name);
  try {
    std::istringstream in{std::string(text)};
    auto const a = via == path::stream ? mgpu::read_matrix_market<T, I>(in, name, limits)
                                       : mgpu::detail::mm::parse_coordinate<T, I>(text, name, limits);
    mgpu_fuzz::check_csr_invariants(a);
    if (rows) mgpu_fuzz::check(a.rows() == *rows, "the declared number of rows");
    return {std::pair(std::vector<std::int64_t>(a.row_offsets().begin(), a.row_offsets().end()),
                      std::vector<std::int64_t>(a.col_indices().begin(), a.col_indices().end()))};
  } catch (mgpu::parse_error const& e) {
    mgpu_fuzz::check_error_line(e, text, input_name);
    return {e.line()};
  } catch (mgpu::index_overflow const&) {
    return {};
  } catch (mgpu::out_of_memory const& e) {
    mgpu_fuzz::check(beyond_limit<I>(rows, text.size()), "out_of_memory only for rows beyond the limit",
                     e.what());
    return {};
  }
}

template <class T>
void read_dense(std::string_view text, path via) {
  std::string const name(input_name);
  try {
    std::istringstream in{std::string(text)};
    auto const a = via == path::stream ? mgpu::read_matrix_market_dense<T>(in, name)
                                       : mgpu::detail::mm::parse_array<T>(text, name);
    mgpu_fuzz::check(a.rows() >= 0 && a.cols() >= 0, "non-negative dense shape");
  } catch (mgpu::parse_error const& e) {
    mgpu_fuzz::check_error_line(e, text, input_name);
  } catch (mgpu::index_overflow const&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  std::string_view const text(reinterpret_cast<char const*>(data), size);
  auto const rows = declared_rows(text);

  auto const narrow = read_sparse<double, std::int32_t>(text, path::stream, rows);
  auto const wide = read_sparse<float, std::int64_t>(text, path::exact, rows);
  read_sparse<std::int16_t, std::int32_t>(text, path::exact, rows);
  read_dense<double>(text, path::stream);
  read_dense<int>(text, path::exact);

  // Index width only decides index_overflow; otherwise both readers see the same file.
  if (narrow.result.index() != 0 && wide.result.index() != 0) {
    mgpu_fuzz::check(narrow.result == wide.result,
                     "32- and 64-bit index readers agree on the structure or the error line");
  }
  return 0;
}
