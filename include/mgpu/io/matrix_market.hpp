// mgpu/io/matrix_market.hpp — reading and writing NIST Matrix Market files.
//
// Semantics follow the NIST format description
// (https://math.nist.gov/MatrixMarket/formats.html), with SciPy's `scipy.io.mmread` /
// `mmwrite` as the behavioural peer:
//   - the first line is the banner `%%MatrixMarket matrix <format> <field> <symmetry>`;
//     `%%MatrixMarket` is case-sensitive, the four words after it are not (as in NIST's
//     mmio.c); a UTF-8 byte order mark before it is skipped;
//   - `coordinate` files (read into `csr_matrix`): fields `real`, `integer`, `pattern`
//     (every value 1); symmetries `general`, `symmetric`, `skew-symmetric`. Off-diagonal
//     entries of a symmetric file are mirrored, negated for skew-symmetric, whichever
//     triangle they are stored in (as SciPy does); duplicate coordinates are summed;
//   - `array` files (read into `dense_matrix`): fields `real`, `integer`; `general` holds
//     all rows * cols values column by column, `symmetric` the lower triangle with the
//     diagonal and `skew-symmetric` the strict lower triangle, column by column;
//   - `%` comment lines and blank lines are accepted anywhere after the banner, and so
//     are CRLF line endings, tabs and leading or trailing blanks;
//   - `complex` / `hermitian` files, `vector` objects and `pattern` arrays are rejected.
// Real values are rounded to the nearest T (std::from_chars); magnitudes beyond T's range
// become ±inf and below it ±0, as with strtod (hence SciPy); `nan` and `inf` are read.
// Integer values and real values holding whole numbers can be read into an integral T
// when they fit it.
//
// Errors (RELIABILITY.md row 13): malformed input raises `parse_error(file, line, what)`
// with the 1-based number of the offending line. Missing lines at the end of the file
// are reported at the line after the last one; line 0 is used only for an empty file or
// a file that cannot be opened or read. Sizes beyond int64 are parse errors; sizes that
// fit int64 but not the index type I raise `index_overflow` (message "file:line: ...")
// before anything is allocated. Writers raise `mgpu::error` when the output fails.
//
// Performance: a reader loads the whole input into memory once and parses it with
// std::from_chars: O(bytes + nnz log(row length)) time, about bytes + 3 copies of the
// entries in memory at the peak. The coordinate writer formats chunks of rows on the
// host's threads with std::to_chars's shortest round-trip bytes (floats through
// backend::cpu::to_chars_shortest, the same bytes faster) into large buffers and
// writes them in row order (mgpu/io/output_file.hpp's write_in_order).
//
// Memory from untrusted headers (RELIABILITY.md row 23): what a reader allocates follows
// what the file holds, never what its header declares. Entry arrays grow with the
// entries read (at most what the remaining bytes can hold is reserved ahead), a dense
// matrix is allocated only once all of its values have been read, and the one need that
// follows the declared shape — the CSR row offsets, rows + 1 indices — is checked before
// anything is allocated: against a limit tied to the file's size (matrix_market_options:
// by default max(64 MiB, 16 bytes per file byte), so a 72-byte file cannot ask for
// 8 GB) and against the memory the process can actually get (detail::host_free_bytes).
// Either failure is `out_of_memory` naming the file, the declared size, the bytes it
// needs and how to raise the limit.
//
// Thread safety: the functions share no mutable state and may run concurrently on
// different files.
#pragma once

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <istream>
#include <limits>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <unistd.h>

#include "mgpu/backend/cpu/format/shortest_float.hpp"
#include "mgpu/core/buffer.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/io/output_file.hpp"
#include "mgpu/sparse/coo.hpp"
#include "mgpu/sparse/csr_matrix.hpp"
#include "mgpu/sparse/csr_view.hpp"

namespace mgpu {

/// Limits of read_matrix_market against files whose size line declares far more rows
/// than the file holds entries for (RELIABILITY.md row 23). The rows cost memory however
/// few entries there are: (rows + 1) CSR row offsets of the index type, which may take at
/// most max(shape_memory_floor, shape_memory_per_file_byte × file bytes); beyond that the
/// reader throws out_of_memory before allocating anything. The default lets any file
/// declare up to 16 M rows with 32-bit indices (8 M with 64-bit ones) and a real file
/// four (two) more rows per byte it holds, which every matrix but one with far more empty
/// rows than entries stays below; raise shape_memory_floor (SIZE_MAX: no limit) to read
/// such a matrix. Columns cost the reader nothing (a 2 x 3000000000 file with hashed
/// feature columns reads in bytes); what a later transpose allocates for them is that
/// operation's to check.
struct matrix_market_options {
  /// Bytes of row offsets any file may ask for; 64 MiB.
  std::size_t shape_memory_floor = std::size_t{64} << 20;
  /// Bytes of row offsets allowed per byte of the file.
  std::size_t shape_memory_per_file_byte = 16;
};

namespace detail::mm {

enum class format { coordinate, array };
enum class field { real, integer, pattern };
enum class symmetry { general, symmetric, skew_symmetric };

struct header {
  format fmt = format::coordinate;
  field fld = field::real;
  symmetry sym = symmetry::general;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t entries = 0;  // declared nnz (coordinate) or number of stored values (array)
  std::size_t size_line = 0;
};

inline std::string system_reason(int code) {
  return std::error_code(code, std::generic_category()).message();
}

/// A token quoted for an error message, shortened so that a garbage line cannot
/// produce a megabyte-long message.
inline std::string quoted(std::string_view token) {
  constexpr std::size_t max_shown = 40;
  if (token.size() <= max_shown) return "'" + std::string(token) + "'";
  return "'" + std::string(token.substr(0, max_shown)) + "...'";
}

inline std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

constexpr bool is_blank(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/// Splits one line into blank-separated tokens.
class tokenizer {
 public:
  explicit tokenizer(std::string_view line) noexcept : rest_(line) {}

  bool next(std::string_view& token) noexcept {
    std::size_t begin = 0;
    while (begin < rest_.size() && is_blank(rest_[begin])) ++begin;
    if (begin == rest_.size()) return false;
    std::size_t end = begin;
    while (end < rest_.size() && !is_blank(rest_[end])) ++end;
    token = rest_.substr(begin, end - begin);
    rest_.remove_prefix(end);
    return true;
  }

 private:
  std::string_view rest_;
};

/// Walks a text line by line, numbering lines from 1, and raises parse errors tied to
/// the current line.
class line_reader {
 public:
  line_reader(std::string_view text, std::string name) : text_(text), name_(std::move(name)) {}

  /// The next line without its line ending; false at the end of the text.
  bool next_line(std::string_view& line) noexcept {
    if (pos_ >= text_.size()) return false;
    auto const newline = text_.find('\n', pos_);
    auto const end = newline == std::string_view::npos ? text_.size() : newline;
    line = text_.substr(pos_, end - pos_);
    pos_ = newline == std::string_view::npos ? text_.size() : newline + 1;
    ++line_;
    return true;
  }

  /// The next line that is neither blank nor a `%` comment; false at the end.
  bool next_content_line(std::string_view& line) noexcept {
    while (next_line(line)) {
      std::size_t first = 0;
      while (first < line.size() && is_blank(line[first])) ++first;
      if (first < line.size() && line[first] != '%') return true;
    }
    return false;
  }

  [[nodiscard]] std::size_t line_number() const noexcept { return line_; }
  [[nodiscard]] std::size_t bytes_left() const noexcept { return text_.size() - pos_; }
  [[nodiscard]] std::string const& name() const noexcept { return name_; }

  [[noreturn]] void fail(std::string const& what) const { throw parse_error(name_, line_, what); }
  /// For input that ended too early: the error belongs to the line after the last.
  [[noreturn]] void fail_at_end(std::string const& what) const {
    throw parse_error(name_, line_ + 1, what);
  }

 private:
  std::string_view text_;
  std::string name_;
  std::size_t pos_ = 0;
  std::size_t line_ = 0;
};

enum class number_status { ok, invalid, out_of_range };

/// Parses a whole token as a number; a leading '+' is allowed (std::from_chars alone
/// rejects it, strtod and SciPy accept it).
template <class V>
number_status parse_number(std::string_view token, V& value) noexcept {
  if (token.size() > 1 && token[0] == '+' && token[1] != '+' && token[1] != '-') {
    token.remove_prefix(1);
  }
  auto const [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
  if (ec == std::errc::result_out_of_range) return number_status::out_of_range;
  if (ec != std::errc{} || ptr != token.data() + token.size()) return number_status::invalid;
  return number_status::ok;
}

/// Floating-point parse with strtod's treatment of range: std::from_chars reports
/// overflow and underflow without a value, so those tokens are re-read in long double
/// and saturated to ±inf or rounded towards ±0.
template <class T>
number_status parse_real(std::string_view token, T& value) noexcept {
  auto const status = parse_number(token, value);
  if (status != number_status::out_of_range) return status;
  long double wide = 0;
  if (parse_number(token, wide) != number_status::ok) return number_status::out_of_range;
  if (std::fabs(wide) > static_cast<long double>(std::numeric_limits<T>::max())) {
    value = wide < 0 ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
  } else {
    value = static_cast<T>(wide);
  }
  return number_status::ok;
}

/// True when the whole number `v` is representable in the integral type T.
template <class T>
bool whole_fits(double v) noexcept {
  double const limit = std::ldexp(1.0, std::numeric_limits<T>::digits);
  double const lowest = std::is_signed_v<T> ? -limit : 0.0;
  return std::trunc(v) == v && v >= lowest && v < limit;
}

template <class T>
T parse_value(line_reader const& in, field fld, std::string_view token) {
  if (fld == field::pattern) return T{1};
  if (fld == field::integer) {
    std::int64_t v = 0;
    auto const status = parse_number(token, v);
    if (status == number_status::invalid) in.fail("invalid integer value " + quoted(token));
    if (status == number_status::out_of_range) {
      in.fail("integer value " + quoted(token) + " does not fit in 64 bits");
    }
    if constexpr (std::is_integral_v<T>) {
      if (!std::in_range<T>(v))
        in.fail(message("integer value ", v, " does not fit the value type"));
    }
    return static_cast<T>(v);
  }
  if constexpr (std::is_floating_point_v<T>) {
    T v = 0;
    auto const status = parse_real(token, v);
    if (status == number_status::invalid) in.fail("invalid real value " + quoted(token));
    if (status == number_status::out_of_range)
      in.fail("real value " + quoted(token) + " is out of range");
    return v;
  } else {
    double v = 0;
    if (parse_real(token, v) != number_status::ok) in.fail("invalid real value " + quoted(token));
    if (!whole_fits<T>(v)) {
      in.fail("real value " + quoted(token) +
              " is not a whole number that fits the integral value type; read the file with a "
              "floating-point value type");
    }
    return static_cast<T>(v);
  }
}

/// Skew-symmetric values are negated when mirrored; the most negative integer has no
/// negation in its own type.
template <class T>
void check_negatable(line_reader const& in, symmetry sym, T v) {
  if constexpr (std::is_integral_v<T>) {
    if (sym == symmetry::skew_symmetric && v == std::numeric_limits<T>::min()) {
      in.fail(message("value ", static_cast<std::int64_t>(v),
                      " of a skew-symmetric matrix cannot be negated in the value type"));
    }
  }
}

template <class I>
void check_fits(line_reader const& in, std::int64_t value, char const* what) {
  auto const max = static_cast<std::int64_t>(std::numeric_limits<I>::max());
  if (value > max) {
    throw index_overflow(message(in.name(), ":", in.line_number(), ": ", what, " = ", value,
                                 " does not fit the index type (max ", max,
                                 "); use 64-bit indices"));
  }
}

inline std::int64_t parse_size(line_reader const& in, std::string_view token, char const* what) {
  std::int64_t v = 0;
  auto const status = parse_number(token, v);
  if (status == number_status::invalid)
    in.fail(message("invalid ", what, " ", quoted(token), " in the size line"));
  if (status == number_status::out_of_range) {
    in.fail(message(what, " ", quoted(token), " in the size line does not fit in 64 bits"));
  }
  if (v < 0) in.fail(message("negative ", what, " ", v, " in the size line"));
  return v;
}

/// a * b, or index_overflow naming the current line when the product exceeds int64.
inline std::int64_t checked_product(line_reader const& in, std::int64_t a, std::int64_t b,
                                    char const* what) {
  std::int64_t product = 0;
  if (__builtin_mul_overflow(a, b, &product)) {
    throw index_overflow(message(in.name(), ":", in.line_number(), ": ", what, " (", a, " * ", b,
                                 ") does not fit in 64 bits"));
  }
  return product;
}

inline void read_banner(line_reader& in, header& h) {
  std::string_view line;
  if (!in.next_line(line)) {
    throw parse_error(in.name(), 0, "empty file; expected a '%%MatrixMarket' banner");
  }
  if (line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
  tokenizer words(line);
  std::string_view word[5];
  std::size_t count = 0;
  while (count < 5 && words.next(word[count])) ++count;
  if (count == 0 || word[0] != "%%MatrixMarket") {
    in.fail("missing '%%MatrixMarket' banner; the first line is " + quoted(line));
  }
  if (count < 5) {
    in.fail(message("the banner has ", count,
                    " words, expected 5: %%MatrixMarket matrix <format> <field> <symmetry>"));
  }
  std::string_view extra;
  if (words.next(extra))
    in.fail("unexpected word " + quoted(extra) + " after the banner's symmetry");

  auto const object = lowercase(word[1]);
  if (object != "matrix") in.fail("unknown object " + quoted(word[1]) + "; expected 'matrix'");

  auto const fmt = lowercase(word[2]);
  if (fmt == "coordinate") {
    h.fmt = format::coordinate;
  } else if (fmt == "array") {
    h.fmt = format::array;
  } else {
    in.fail("unknown format " + quoted(word[2]) + "; expected 'coordinate' or 'array'");
  }

  auto const fld = lowercase(word[3]);
  if (fld == "real") {
    h.fld = field::real;
  } else if (fld == "integer") {
    h.fld = field::integer;
  } else if (fld == "pattern") {
    h.fld = field::pattern;
  } else if (fld == "complex") {
    in.fail("field 'complex' is not supported; mgpu reads real, integer and pattern files");
  } else {
    in.fail("unknown field " + quoted(word[3]) + "; expected 'real', 'integer' or 'pattern'");
  }

  auto const sym = lowercase(word[4]);
  if (sym == "general") {
    h.sym = symmetry::general;
  } else if (sym == "symmetric") {
    h.sym = symmetry::symmetric;
  } else if (sym == "skew-symmetric") {
    h.sym = symmetry::skew_symmetric;
  } else if (sym == "hermitian") {
    in.fail("symmetry 'hermitian' is not supported; it needs a complex field");
  } else {
    in.fail("unknown symmetry " + quoted(word[4]) +
            "; expected 'general', 'symmetric' or 'skew-symmetric'");
  }

  if (h.fmt == format::array && h.fld == field::pattern) {
    in.fail("field 'pattern' is not allowed with format 'array'");
  }
  if (h.fld == field::pattern && h.sym == symmetry::skew_symmetric) {
    in.fail("field 'pattern' is not allowed with symmetry 'skew-symmetric'");
  }
}

inline void read_size_line(line_reader& in, header& h) {
  bool const coordinate = h.fmt == format::coordinate;
  char const* const expected = coordinate ? "'rows cols entries'" : "'rows cols'";
  std::string_view line;
  if (!in.next_content_line(line)) {
    in.fail_at_end(message("unexpected end of file; expected the size line ", expected));
  }
  h.size_line = in.line_number();
  tokenizer tokens(line);
  std::string_view token[3];
  std::size_t const want = coordinate ? 3 : 2;
  std::size_t count = 0;
  while (count < want && tokens.next(token[count])) ++count;
  if (count < want) {
    in.fail(message("the size line has ", count, " numbers, expected ", want, " ", expected));
  }
  std::string_view extra;
  if (tokens.next(extra))
    in.fail("unexpected " + quoted(extra) + " after the size line " + expected);
  h.rows = parse_size(in, token[0], "rows");
  h.cols = parse_size(in, token[1], "cols");
  if (h.sym != symmetry::general && h.rows != h.cols) {
    in.fail(message("a symmetric or skew-symmetric matrix must be square, got ", h.rows, " x ",
                    h.cols));
  }
  if (coordinate) {
    h.entries = parse_size(in, token[2], "entries");
  } else if (h.sym == symmetry::general) {
    h.entries = checked_product(in, h.rows, h.cols, "rows * cols");
  } else {
    // n(n+1)/2 stored values with the diagonal, n(n-1)/2 without it, computed so that
    // no intermediate (such as n + 1 for n = INT64_MAX) overflows.
    std::int64_t const n = h.rows;
    std::int64_t const half = n / 2;
    bool const diagonal = h.sym == symmetry::symmetric;
    h.entries = n % 2 == 0
                    ? checked_product(in, half, diagonal ? n + 1 : n - 1, "the triangle's size")
                    : checked_product(in, n, diagonal ? half + 1 : half, "the triangle's size");
  }
}

/// Reads the banner and the size line. A file of the other format is rejected on the
/// banner's line, before its size line could be misread.
inline header read_header(line_reader& in, format expected) {
  header h;
  read_banner(in, h);
  if (h.fmt != expected) {
    in.fail(expected == format::coordinate
                ? "this is an 'array' (dense) file; read it with read_matrix_market_dense"
                : "this is a 'coordinate' (sparse) file; read it with read_matrix_market");
  }
  read_size_line(in, h);
  return h;
}

/// Splits an entry line into exactly `want` tokens or fails naming the problem.
inline void split_entry(line_reader const& in, std::string_view line, std::string_view* token,
                        std::size_t want, char const* layout) {
  tokenizer tokens(line);
  std::size_t count = 0;
  while (count < want && tokens.next(token[count])) ++count;
  if (count < want) {
    in.fail(message("truncated entry: expected ", want, " fields ", layout, ", found ", count));
  }
  std::string_view extra;
  if (tokens.next(extra)) in.fail("unexpected extra field " + quoted(extra) + " after " + layout);
}

template <class I>
I parse_index(line_reader const& in, std::string_view token, std::int64_t extent,
              char const* what) {
  std::int64_t v = 0;
  auto const status = parse_number(token, v);
  if (status == number_status::invalid)
    in.fail(message("invalid ", what, " index ", quoted(token)));
  if (status == number_status::out_of_range || v < 1 || v > extent) {
    in.fail(message(what, " index ", quoted(token), " is outside [1, ", extent,
                    "] (Matrix Market indices are 1-based)"));
  }
  return static_cast<I>(v - 1);
}

/// Entries a body of `bytes` bytes can hold at most, each at least `min_bytes` long
/// (the last one possibly without its newline): a bound for reserving memory.
inline std::size_t max_entries(std::int64_t declared, std::size_t bytes, std::size_t min_bytes) {
  auto const possible = bytes / min_bytes + 1;
  return static_cast<std::uint64_t>(declared) < possible ? static_cast<std::size_t>(declared)
                                                         : possible;
}

/// (extent + 1) * width bytes, saturated at SIZE_MAX.
inline std::size_t offsets_bytes(std::int64_t extent, std::size_t width) noexcept {
  std::size_t bytes = 0;
  return __builtin_mul_overflow(static_cast<std::uint64_t>(extent) + 1, width, &bytes) ? SIZE_MAX
                                                                                        : bytes;
}

/// The row limit of matrix_market_options, then whether the row offsets and the
/// reader's working copies of them (up to 4 arrays of rows + 1 at once while the CSR
/// matrix is built) fit the memory the process can get.
/// @throws out_of_memory naming the file, the declared size and the bytes it needs.
template <class I>
void check_shape_memory(line_reader const& in, header const& h, std::size_t file_bytes,
                        matrix_market_options const& options) {
  std::size_t scaled = 0;
  if (__builtin_mul_overflow(options.shape_memory_per_file_byte, file_bytes, &scaled)) {
    scaled = SIZE_MAX;
  }
  auto const limit = std::max(options.shape_memory_floor, scaled);
  auto const rows_bytes = offsets_bytes(h.rows, sizeof(I));
  if (rows_bytes > limit) {
    throw out_of_memory(
        rows_bytes, host_free_bytes(),
        message(in.name(), ":", in.line_number(), ": declares ", h.rows,
                " rows: CSR row offsets need ", rows_bytes, " bytes, above the limit of ", limit,
                " bytes for a file of ", file_bytes, " bytes (the larger of "
                "matrix_market_options::shape_memory_floor = ", options.shape_memory_floor,
                " and shape_memory_per_file_byte = ", options.shape_memory_per_file_byte,
                " x the file's size); raise shape_memory_floor to read a matrix with this many "
                "empty rows"));
  }
  require_host_memory(rows_bytes > SIZE_MAX / 4 ? SIZE_MAX : 4 * rows_bytes,
                      message(in.name(), ":", in.line_number(), ": declares ", h.rows,
                              " rows: CSR row offsets need ", rows_bytes,
                              " bytes, 4 times that while the matrix is built"));
}

template <class T, class I>
csr_matrix<cpu, T, I> parse_coordinate(std::string_view text, std::string const& name,
                                       matrix_market_options const& options = {}) {
  line_reader in(text, name);
  auto const h = read_header(in, format::coordinate);
  check_fits<I>(in, h.rows, "rows");
  check_fits<I>(in, h.cols, "cols");
  check_fits<I>(in, h.entries, "entries");
  check_shape_memory<I>(in, h, text.size(), options);

  // "1 1\n" is the shortest possible entry line.
  auto const capacity = max_entries(h.entries, in.bytes_left(), 4);
  std::vector<I> row_indices;
  std::vector<I> col_indices;
  std::vector<T> values;
  row_indices.reserve(capacity);
  col_indices.reserve(capacity);
  values.reserve(capacity);

  bool const pattern = h.fld == field::pattern;
  char const* const layout = pattern ? "'row col'" : "'row col value'";
  std::size_t const want = pattern ? 2 : 3;
  std::string_view token[3];
  std::string_view line;
  std::int64_t count = 0;
  while (in.next_content_line(line)) {
    if (count == h.entries) {
      in.fail(message("more entries than the ", h.entries, " declared on line ", h.size_line));
    }
    split_entry(in, line, token, want, layout);
    row_indices.push_back(parse_index<I>(in, token[0], h.rows, "row"));
    col_indices.push_back(parse_index<I>(in, token[1], h.cols, "column"));
    values.push_back(parse_value<T>(in, h.fld, token[2]));
    check_negatable(in, h.sym, values.back());
    ++count;
  }
  if (count < h.entries) {
    in.fail_at_end(message("unexpected end of file after ", count, " of the ", h.entries,
                           " entries declared on line ", h.size_line));
  }

  if (h.sym != symmetry::general) {
    auto const stored = row_indices.size();
    std::size_t off_diagonal = 0;
    for (std::size_t p = 0; p < stored; ++p)
      off_diagonal += row_indices[p] != col_indices[p] ? 1 : 0;
    row_indices.reserve(stored + off_diagonal);
    col_indices.reserve(stored + off_diagonal);
    values.reserve(stored + off_diagonal);
    for (std::size_t p = 0; p < stored; ++p) {
      if (row_indices[p] == col_indices[p]) continue;
      row_indices.push_back(col_indices[p]);
      col_indices.push_back(row_indices[p]);
      // Negation happens in T: integral promotion would otherwise make -v an int.
      values.push_back(h.sym == symmetry::symmetric ? values[p] : static_cast<T>(-values[p]));
    }
  }
  return csr_from_coo<T, I>(h.rows, h.cols, row_indices, col_indices, values);
}

template <class T>
dense_matrix<cpu, T> parse_array(std::string_view text, std::string const& name) {
  line_reader in(text, name);
  auto const h = read_header(in, format::array);
  // "1\n" is the shortest possible value line.
  std::vector<T> values;
  values.reserve(max_entries(h.entries, in.bytes_left(), 2));
  std::string_view token;
  std::string_view line;
  std::int64_t count = 0;
  while (in.next_content_line(line)) {
    if (count == h.entries) {
      in.fail(message("more values than the ", h.entries, " implied by line ", h.size_line));
    }
    split_entry(in, line, &token, 1, "'value'");
    values.push_back(parse_value<T>(in, h.fld, token));
    check_negatable(in, h.sym, values.back());
    ++count;
  }
  if (count < h.entries) {
    in.fail_at_end(message("unexpected end of file after ", count, " of the ", h.entries,
                           " values implied by line ", h.size_line));
  }

  // Every value is there, so rows * cols follows the file's size (at most twice the
  // values read, for a triangle); what is left to check is the memory itself.
  std::size_t bytes = 0;
  if (__builtin_mul_overflow(static_cast<std::uint64_t>(h.rows) * static_cast<std::uint64_t>(h.cols),
                             sizeof(T), &bytes)) {
    bytes = SIZE_MAX;
  }
  require_host_memory(bytes, message(name, ": a ", h.rows, " x ", h.cols, " dense matrix of ",
                                     sizeof(T), "-byte values"));
  dense_matrix<cpu, T> a(h.rows, h.cols);
  std::size_t k = 0;
  // A 0 x n file holds no values however large n is; walking its n empty columns would
  // take as long as n says (a hang for n near INT64_MAX).
  for (std::int64_t j = 0; h.rows > 0 && j < h.cols; ++j) {
    if (h.sym == symmetry::general) {
      for (std::int64_t i = 0; i < h.rows; ++i) a(i, j) = values[k++];
    } else if (h.sym == symmetry::symmetric) {
      for (std::int64_t i = j; i < h.rows; ++i) a(i, j) = a(j, i) = values[k++];
    } else {
      a(j, j) = T{0};
      for (std::int64_t i = j + 1; i < h.rows; ++i) {
        a(i, j) = values[k];
        a(j, i) = static_cast<T>(-values[k++]);
      }
    }
  }
  return a;
}

/// Reads the rest of a stream; `size_hint` bytes are read in one call first.
inline std::string read_all(std::istream& in, std::string const& name, std::size_t size_hint) {
  std::string text(size_hint, '\0');
  in.read(text.data(), static_cast<std::streamsize>(size_hint));
  text.resize(static_cast<std::size_t>(in.gcount()));
  std::vector<char> chunk(std::size_t{1} << 16);
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    text.append(chunk.data(), static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) throw parse_error(name, 0, "read error");
  return text;
}

inline std::string read_file(std::filesystem::path const& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw parse_error(path.string(), 0, "cannot open: " + system_reason(errno));
  std::error_code ec;
  auto const size = std::filesystem::file_size(path, ec);
  return read_all(in, path.string(), ec ? 0 : static_cast<std::size_t>(size));
}

/// Collects output text in large chunks so that the stream sees few, big writes.
class output_buffer {
 public:
  explicit output_buffer(std::ostream& out) : out_(out) { text_.reserve(capacity + 128); }

  void put(std::string_view s) {
    text_.append(s);
    if (text_.size() >= capacity) flush();
  }
  /// Appends v's shortest round-trip form (std::to_chars) directly into the buffer.
  template <class V>
  void put_number(V v) {
    auto const size = text_.size();
    text_.resize(size + 64);
    auto const end = backend::cpu::to_chars_shortest(text_.data() + size, text_.data() + text_.size(), v).ptr;
    text_.resize(static_cast<std::size_t>(end - text_.data()));
    if (text_.size() >= capacity) flush();
  }
  void flush() {
    out_.write(text_.data(), static_cast<std::streamsize>(text_.size()));
    text_.clear();
    if (!out_)
      throw error("writing a Matrix Market file failed: the output stream is in a failed state");
  }

 private:
  static constexpr std::size_t capacity = std::size_t{1} << 20;
  std::ostream& out_;
  std::string text_;
};

template <class T>
constexpr char const* field_name() noexcept {
  return std::is_integral_v<T> ? "integer" : "real";
}

// Entries of a coordinate file per chunk formatted by one thread.
inline constexpr std::int64_t coordinate_entries_per_chunk = 32768;

template <class T, class I>
void write_coordinate(std::ostream& out, csr_view<T, I> const& a, parallel_write_options const& options) {
  static_assert(!std::is_same_v<T, bool>, "bool values cannot be written; convert them first");
  // A view is unchecked, so it is checked here rather than written out malformed: the
  // offsets before anything is written, the columns chunk by chunk (the first bad one
  // in row order is reported, after the rows before it).
  for (I r = 0; r < a.rows; ++r) {
    if (a.row_end(r) < a.row_begin(r)) {
      throw format_error(message("row_offsets decrease at row ", static_cast<std::int64_t>(r)));
    }
  }
  {
    output_buffer head(out);
    head.put("%%MatrixMarket matrix coordinate ");
    head.put(field_name<T>());
    head.put(" general\n");
    head.put_number(static_cast<std::int64_t>(a.rows));
    head.put(" ");
    head.put_number(static_cast<std::int64_t>(a.cols));
    head.put(" ");
    head.put_number(static_cast<std::int64_t>(a.nnz()));
    head.put("\n");
    head.flush();
  }
  if (a.rows <= 0) return;
  auto const bounds = split_rows_by_entries(
      std::span<I const>(a.row_offsets, static_cast<std::size_t>(a.rows) + 1),
      options.entries_per_chunk > 0 ? options.entries_per_chunk : coordinate_entries_per_chunk);
  auto const cols = static_cast<std::int64_t>(a.cols);
  write_in_order(
      out, static_cast<std::int64_t>(bounds.size()) - 1,
      [&](text_buffer& text, std::int64_t chunk) {
        auto const r0 = static_cast<I>(bounds[static_cast<std::size_t>(chunk)]);
        auto const r1 = static_cast<I>(bounds[static_cast<std::size_t>(chunk) + 1]);
        text.reserve(static_cast<std::size_t>(a.row_offsets[r1] - a.row_offsets[r0]) * 24);
        char row[24];  // "<r + 1> "
        for (I r = r0; r < r1; ++r) {
          auto const row_end = std::to_chars(row, row + sizeof row - 1, static_cast<std::int64_t>(r) + 1).ptr;
          *row_end = ' ';
          auto const row_bytes = static_cast<std::size_t>(row_end + 1 - row);
          for (I p = a.row_begin(r); p < a.row_end(r); ++p) {
            auto const c = static_cast<std::int64_t>(a.col_indices[p]);
            if (c < 0 || c >= cols) {
              throw format_error(message("column index ", c, " at position ", static_cast<std::int64_t>(p), " (row ",
                                         static_cast<std::int64_t>(r), ") is outside [0, ", cols, ")"));
            }
            // row, column and value: at most 20 + 1 + 20 + 1 + 64 + 1 bytes
            char* q = text.room(row_bytes + 128);
            std::memcpy(q, row, row_bytes);
            q = std::to_chars(q + row_bytes, q + row_bytes + 24, c + 1).ptr;
            *q++ = ' ';
            q = backend::cpu::to_chars_shortest(q, q + 64, a.values[p]).ptr;
            *q++ = '\n';
            text.advance(q);
          }
        }
      },
      options, "writing a Matrix Market file");
}

template <class T>
void write_array(std::ostream& out, dense_view<T> const& a) {
  using value_type = std::remove_const_t<T>;
  static_assert(!std::is_same_v<value_type, bool>,
                "bool values cannot be written; convert them first");
  MGPU_EXPECTS(a.rows >= 0 && a.cols >= 0 && (a.rows == 0 || a.ld >= a.cols),
               "invalid dense view: ", a.rows, " x ", a.cols, " with leading dimension ", a.ld);
  output_buffer buf(out);
  buf.put("%%MatrixMarket matrix array ");
  buf.put(field_name<value_type>());
  buf.put(" general\n");
  buf.put_number(a.rows);
  buf.put(" ");
  buf.put_number(a.cols);
  buf.put("\n");
  for (std::int64_t j = 0; j < a.cols; ++j) {
    for (std::int64_t i = 0; i < a.rows; ++i) {
      buf.put_number(a(i, j));
      buf.put("\n");
    }
  }
  buf.flush();
}

/// Writes through `write(std::ostream&)` as a one-output commit of mgpu::output_set:
/// a regular file (or a symbolic link's target) is replaced atomically by a complete
/// temporary written in its directory, so readers never see a half-written file and a
/// failed write leaves any previous file untouched and no temporary; a character device
/// or FIFO is written in place; a directory is refused (see mgpu/io/output_file.hpp).
template <class Write>
void write_file_atomically(std::filesystem::path const& path, Write const& write) {
  output_set outs;
  outs.add(path, [&](std::ostream& out) { write(out); });
  outs.commit();
}

}  // namespace detail::mm

/// Reads a Matrix Market `coordinate` file into a canonical CSR matrix (rows x cols as
/// declared; symmetric and skew-symmetric files expanded, duplicates summed, pattern
/// values 1). Semantics of NIST Matrix Market / SciPy `mmread`; see the file comment.
/// O(file bytes + nnz log(row length)) time; memory O(file bytes + nnz + rows), where
/// the rows may cost at most what `options` allows for the file's size (by default
/// (rows + 1) indices of I within max(64 MiB, 16 x the file's bytes)).
/// @throws parse_error (file, 1-based line) for malformed input, an `array` file, or a
///         file that cannot be read (line 0); index_overflow when rows, cols or the
///         number of entries exceed I (before allocating); out_of_memory, before
///         allocating, when the declared rows need more offsets than `options` allows
///         for a file of this size, or more than the memory available (the message
///         names the size and how to raise the limit).
template <class T = float, class I = std::int32_t>
csr_matrix<cpu, T, I> read_matrix_market(std::istream& in, std::string const& name,
                                         matrix_market_options const& options = {}) {
  static_assert(std::is_signed_v<T>, "Matrix Market values are read into a signed value type");
  return detail::mm::parse_coordinate<T, I>(detail::mm::read_all(in, name, 0), name, options);
}

/// As above, reading the file at `path`; errors name the file by `path`.
template <class T = float, class I = std::int32_t>
csr_matrix<cpu, T, I> read_matrix_market(std::filesystem::path const& path,
                                         matrix_market_options const& options = {}) {
  static_assert(std::is_signed_v<T>, "Matrix Market values are read into a signed value type");
  return detail::mm::parse_coordinate<T, I>(detail::mm::read_file(path), path.string(), options);
}

/// Reads a Matrix Market `array` file (values column by column; symmetric and
/// skew-symmetric store the lower triangle) into a row-major rows x cols dense matrix.
/// O(rows * cols). Semantics of NIST Matrix Market / SciPy `mmread`. The matrix is
/// allocated only after all its values have been read, so its size follows the file's
/// (a header alone allocates nothing).
/// @throws parse_error (file, 1-based line) for malformed input, a `coordinate` file,
///         or a file that cannot be read (line 0); index_overflow when rows * cols
///         exceeds int64; out_of_memory when the matrix cannot fit the available memory.
template <class T = float>
dense_matrix<cpu, T> read_matrix_market_dense(std::istream& in, std::string const& name) {
  static_assert(std::is_signed_v<T>, "Matrix Market values are read into a signed value type");
  return detail::mm::parse_array<T>(detail::mm::read_all(in, name, 0), name);
}

/// As above, reading the file at `path`.
template <class T = float>
dense_matrix<cpu, T> read_matrix_market_dense(std::filesystem::path const& path) {
  static_assert(std::is_signed_v<T>, "Matrix Market values are read into a signed value type");
  return detail::mm::parse_array<T>(detail::mm::read_file(path), path.string());
}

/// Writes `a` as `%%MatrixMarket matrix coordinate real general` (`integer` for an
/// integral T): the size line, then one 1-based `row col value` entry per line in row
/// order. Floating-point values are written in the shortest form that reads back to
/// the same value (std::to_chars; never more than max_digits10 digits), as `nan`,
/// `inf` or `-inf` when not finite. O(nnz). The entries are formatted on the host's
/// threads in chunks of `options.entries_per_chunk` (default 32768) and written in row
/// order (write_in_order, mgpu/io/output_file.hpp): the bytes do not depend on the
/// threads or the chunks.
/// @throws format_error when the view's offsets decrease (before writing anything) or a
///         column lies outside [0, cols) (after the entries before it); mgpu::error when
///         the stream fails.
template <class T, class I>
void write_matrix_market(std::ostream& out, csr_view<T, I> const& a, parallel_write_options const& options = {}) {
  detail::mm::write_coordinate(out, a, options);
}

/// The same for an owning CSR matrix (which is always valid, so only the stream can fail).
template <class T, class I>
void write_matrix_market(std::ostream& out, csr_matrix<cpu, T, I> const& a,
                         parallel_write_options const& options = {}) {
  detail::mm::write_coordinate(out, a.view(), options);
}

/// As above, to the file at `path`, replaced atomically: the text goes to a temporary
/// file in the same directory that is renamed over `path` only once complete, so on
/// any error the previous file (if any) is left as it was and no partial file remains.
/// @throws format_error as above; mgpu::error when the file cannot be written.
template <class T, class I>
void write_matrix_market(std::filesystem::path const& path, csr_view<T, I> const& a) {
  detail::mm::write_file_atomically(
      path, [&](std::ostream& out) { detail::mm::write_coordinate(out, a, parallel_write_options{}); });
}

/// The same for an owning CSR matrix. @throws mgpu::error when the file cannot be written.
template <class T, class I>
void write_matrix_market(std::filesystem::path const& path, csr_matrix<cpu, T, I> const& a) {
  write_matrix_market(path, a.view());
}

/// Writes a dense matrix as `%%MatrixMarket matrix array real general` (`integer` for an
/// integral T): the size line `rows cols`, then the values column by column, one per
/// line, in the same shortest round-trip form as the coordinate writer. O(rows * cols).
/// @throws invalid_argument for a malformed view; mgpu::error when the stream fails.
template <class T>
void write_matrix_market(std::ostream& out, dense_view<T> const& a) {
  detail::mm::write_array(out, a);
}

/// The same for an owning dense matrix. @throws mgpu::error when the stream fails.
template <class T>
void write_matrix_market(std::ostream& out, dense_matrix<cpu, T> const& a) {
  detail::mm::write_array(out, a.view());
}

/// As above, to the file at `path`, replaced atomically (see the coordinate writer).
/// @throws invalid_argument for a malformed view; mgpu::error when the file cannot be
///         written.
template <class T>
void write_matrix_market(std::filesystem::path const& path, dense_view<T> const& a) {
  detail::mm::write_file_atomically(path,
                                    [&](std::ostream& out) { detail::mm::write_array(out, a); });
}

/// The same for an owning dense matrix. @throws mgpu::error when the file cannot be written.
template <class T>
void write_matrix_market(std::filesystem::path const& path, dense_matrix<cpu, T> const& a) {
  write_matrix_market(path, a.view());
}

}  // namespace mgpu
