// mgpu/io/idx.hpp — reading IDX files, the format of the MNIST and Fashion-MNIST data
// sets, plain or gzip-compressed.
//
// Format (LeCun, Cortes & Burges, http://yann.lecun.com/exdb/mnist/): two zero bytes,
// a type byte (0x08 unsigned byte, 0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D
// float32, 0x0E float64), the number of dimensions (1..255), then one 4-byte
// big-endian size per dimension, then the elements in row-major order, big-endian.
// A file is read through zlib's gzread, so gzip files (magic 1f 8b) are decompressed
// and other files are read as they are; the format is decided by content, not by the
// file name.
//
// Errors (RELIABILITY.md row 13 applied to a binary format): anything malformed raises
// `parse_error(file, 0, "byte N: what")`: a missing file, an empty or truncated file, a
// bad magic number or type, zero dimensions, a size of 2^31 or more, sizes whose product
// overflows, bytes left after the data (the sizes do not describe the file), corrupt
// gzip data or a gzip CRC mismatch (zlib's message is quoted), and values that do not
// fit the requested element type; read_idx_labels also rejects labels outside the
// declared classes. The line number of these errors is 0 because binary
// files have no lines; the byte offset is in the message. Memory is committed only as
// data actually arrives (in blocks of at most 16 MiB), so a header claiming a huge size
// cannot make the reader allocate it: a truncated file fails after reading what it holds.
//
// Conversion: elements are converted to the requested T. Integers read into a
// floating-point T are rounded to nearest (exact for the 8- and 16-bit types); integral
// T accepts integer data only, and only values it can hold; float64 data read into float
// is rounded to nearest.
//
// Thread safety: the functions share no state and may run concurrently on different files.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <zlib.h>

#include "mgpu/core/error.hpp"
#include "mgpu/dense/dense_matrix.hpp"

namespace mgpu {

/// The element types an IDX file can hold (the type byte of its magic number).
enum class idx_type : std::uint8_t {
  u8 = 0x08,
  s8 = 0x09,
  i16 = 0x0B,
  i32 = 0x0C,
  f32 = 0x0D,
  f64 = 0x0E,
};

/// The header of an IDX file: element type and sizes (all >= 0, at least one).
struct idx_header {
  idx_type type = idx_type::u8;
  std::vector<std::int64_t> dims;

  /// Number of elements: the product of the sizes.
  [[nodiscard]] std::int64_t elements() const noexcept {
    std::int64_t n = 1;
    for (auto d : dims) n *= d;
    return n;
  }
};

/// A whole IDX file: its header and its elements in row-major order, converted to T.
template <class T>
struct idx_array {
  idx_header header;
  std::vector<T> values;
};

namespace detail::idx {

inline std::size_t element_bytes(idx_type t) noexcept {
  switch (t) {
    case idx_type::u8:
    case idx_type::s8: return 1;
    case idx_type::i16: return 2;
    case idx_type::i32:
    case idx_type::f32: return 4;
    case idx_type::f64: return 8;
  }
  return 0;
}

inline char const* type_name(idx_type t) noexcept {
  switch (t) {
    case idx_type::u8: return "unsigned byte";
    case idx_type::s8: return "signed byte";
    case idx_type::i16: return "int16";
    case idx_type::i32: return "int32";
    case idx_type::f32: return "float32";
    case idx_type::f64: return "float64";
  }
  return "unknown";
}

/// A gzread-based reader that counts the bytes it has consumed, for error messages.
class source {
 public:
  explicit source(std::filesystem::path const& path) : name_(path.string()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) fail(0, "no such file");
    file_ = gzopen(name_.c_str(), "rb");
    if (file_ == nullptr) fail(0, "cannot open the file");
    gzbuffer(file_, 1 << 17);
  }
  source(source const&) = delete;
  source& operator=(source const&) = delete;
  ~source() {
    if (file_ != nullptr) gzclose_r(file_);
  }

  [[nodiscard]] std::string const& name() const noexcept { return name_; }
  [[nodiscard]] std::uint64_t offset() const noexcept { return offset_; }

  /// Reads up to `n` bytes; fewer only at the end of the data.
  /// @throws parse_error for corrupt compressed data.
  std::size_t read(void* dst, std::size_t n) {
    auto* out = static_cast<unsigned char*>(dst);
    std::size_t got = 0;
    while (got < n) {
      auto const step = static_cast<unsigned>(std::min<std::size_t>(n - got, 1u << 30));
      int const r = gzread(file_, out + got, step);
      if (r < 0) fail(offset_ + got, "corrupt data: " + zlib_message());
      if (r == 0) break;
      got += static_cast<std::size_t>(r);
    }
    offset_ += got;
    if (got < n) {
      // zlib reports a gzip stream cut short as an error at its end.
      int errnum = Z_OK;
      gzerror(file_, &errnum);
      if (errnum != Z_OK && errnum != Z_STREAM_END) fail(offset_, "corrupt data: " + zlib_message());
    }
    return got;
  }

  /// Reads exactly `n` bytes. @throws parse_error naming `what` when the file ends first.
  void read_exactly(void* dst, std::size_t n, char const* what) {
    std::uint64_t const at = offset_;
    if (read(dst, n) != n) fail(at, std::string("the file ends inside the ") + what);
  }

  [[noreturn]] void fail(std::uint64_t at, std::string const& what) const {
    throw parse_error(name_, 0, mgpu::detail::message("byte ", at, ": ", what));
  }

 private:
  std::string zlib_message() const {
    int errnum = Z_OK;
    char const* msg = gzerror(file_, &errnum);
    std::string text = msg != nullptr && *msg != '\0' ? std::string(msg) : std::string("unknown zlib error");
    // zlib prefixes the path, which the parse_error already names.
    if (std::string const prefix = name_ + ": "; text.starts_with(prefix)) text.erase(0, prefix.size());
    return text;
  }

  std::string name_;
  gzFile file_ = nullptr;
  std::uint64_t offset_ = 0;
};

inline std::uint32_t big_endian_u32(unsigned char const* p) noexcept {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

inline idx_header read_header(source& in) {
  unsigned char magic[4];
  std::size_t const got = in.read(magic, 4);
  if (got == 0) in.fail(0, "empty file (an IDX file starts with a 4-byte magic number)");
  if (got < 4) in.fail(0, "the file ends inside the 4-byte magic number");
  if (magic[0] != 0 || magic[1] != 0) {
    in.fail(0, mgpu::detail::message("bad magic number: an IDX file starts with two zero bytes, "
                                     "found 0x", std::hex, int{magic[0]}, " 0x", int{magic[1]}));
  }
  idx_header h;
  switch (magic[2]) {
    case 0x08: case 0x09: case 0x0B: case 0x0C: case 0x0D: case 0x0E:
      h.type = static_cast<idx_type>(magic[2]);
      break;
    default:
      in.fail(2, mgpu::detail::message("unknown element type 0x", std::hex, int{magic[2]},
                                       " (expected 0x08, 0x09, 0x0b, 0x0c, 0x0d or 0x0e)"));
  }
  int const ndims = magic[3];
  if (ndims == 0) in.fail(3, "zero dimensions (an IDX file has 1 to 255)");
  std::vector<unsigned char> sizes(static_cast<std::size_t>(ndims) * 4);
  in.read_exactly(sizes.data(), sizes.size(), "dimension sizes");
  std::int64_t nonzero_product = 1;  // bounds every partial product, also when a size is 0
  auto const max_bytes = static_cast<std::int64_t>(
      std::min<std::uint64_t>(std::numeric_limits<std::int64_t>::max(), SIZE_MAX));
  auto const width = static_cast<std::int64_t>(element_bytes(h.type));
  for (int d = 0; d < ndims; ++d) {
    std::uint32_t const v = big_endian_u32(sizes.data() + 4 * d);
    std::uint64_t const at = 4 + 4 * static_cast<std::uint64_t>(d);
    if (v > static_cast<std::uint32_t>(std::numeric_limits<std::int32_t>::max())) {
      in.fail(at, mgpu::detail::message("size of dimension ", d, " is ", v,
                                        " (negative as a signed 32-bit integer)"));
    }
    auto const n = static_cast<std::int64_t>(v);
    if (n > 0 && nonzero_product > max_bytes / width / n) {
      in.fail(at, mgpu::detail::message("the sizes multiply past the addressable range at dimension ",
                                        d, " (", n, ")"));
    }
    if (n > 0) nonzero_product *= n;
    h.dims.push_back(n);
  }
  return h;
}

/// Reads `bytes` bytes of element data, committing memory only as the data arrives.
inline std::vector<unsigned char> read_payload(source& in, std::size_t bytes) {
  constexpr std::size_t block = std::size_t{16} << 20;
  std::vector<unsigned char> data;
  std::uint64_t const start = in.offset();
  while (data.size() < bytes) {
    std::size_t const old = data.size();
    std::size_t const step = std::min(block, bytes - old);
    data.resize(old + step);
    std::size_t const got = in.read(data.data() + old, step);
    if (got < step) {
      in.fail(in.offset(), mgpu::detail::message("truncated: the header announces ", bytes,
                                                 " bytes of data after byte ", start,
                                                 ", the file holds ", old + got));
    }
  }
  unsigned char extra[64];
  if (std::size_t const more = in.read(extra, sizeof extra); more > 0) {
    in.fail(in.offset() - more, mgpu::detail::message(
                                    "data continues after the ", bytes,
                                    " bytes the header announces (wrong dimension sizes?)"));
  }
  return data;
}

template <class Raw>
Raw load_big_endian(unsigned char const* p) noexcept {
  using U = std::conditional_t<sizeof(Raw) == 1, std::uint8_t,
            std::conditional_t<sizeof(Raw) == 2, std::uint16_t,
            std::conditional_t<sizeof(Raw) == 4, std::uint32_t, std::uint64_t>>>;
  U u = 0;
  for (std::size_t i = 0; i < sizeof(Raw); ++i) u = static_cast<U>((u << 8) | U{p[i]});
  return std::bit_cast<Raw>(u);
}

template <class T, class Raw>
void convert(source const& in, std::uint64_t data_start, unsigned char const* bytes,
             std::size_t count, T* out) {
  constexpr bool raw_float = std::is_floating_point_v<Raw>;
  if constexpr (std::is_integral_v<T> && raw_float) {
    if (count > 0) {
      in.fail(data_start, "the file holds floating-point values; read it into a floating-point type");
    }
  } else {
    for (std::size_t i = 0; i < count; ++i) {
      Raw const v = load_big_endian<Raw>(bytes + i * sizeof(Raw));
      if constexpr (std::is_integral_v<T>) {
        if (!std::in_range<T>(v)) {
          in.fail(data_start + i * sizeof(Raw),
                  mgpu::detail::message("value ", static_cast<std::int64_t>(v),
                                        " does not fit the requested integer type"));
        }
      }
      out[i] = static_cast<T>(v);
    }
  }
}

/// Reads a whole file: its header and its elements converted into `alloc(elements)`.
template <class T, class Alloc>
idx_header read(std::filesystem::path const& path, Alloc&& alloc) {
  static_assert(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>,
                "read_idx: the element type must be an integer or floating-point type");
  source in(path);
  idx_header h = read_header(in);
  auto const count = static_cast<std::size_t>(h.elements());
  std::uint64_t const start = in.offset();
  auto const raw = read_payload(in, count * element_bytes(h.type));
  T* out = alloc(h);
  switch (h.type) {
    case idx_type::u8: convert<T, std::uint8_t>(in, start, raw.data(), count, out); break;
    case idx_type::s8: convert<T, std::int8_t>(in, start, raw.data(), count, out); break;
    case idx_type::i16: convert<T, std::int16_t>(in, start, raw.data(), count, out); break;
    case idx_type::i32: convert<T, std::int32_t>(in, start, raw.data(), count, out); break;
    case idx_type::f32: convert<T, float>(in, start, raw.data(), count, out); break;
    case idx_type::f64: convert<T, double>(in, start, raw.data(), count, out); break;
  }
  return h;
}

}  // namespace detail::idx

/// Reads an IDX file (plain or gzip) whole: header and elements converted to T.
/// O(file size) time; memory: the raw data plus the converted elements.
/// @throws parse_error(file, 0, "byte N: ...") for any malformed, truncated or corrupt
///         file, or values that do not fit T (see the file comment).
template <class T>
idx_array<T> read_idx(std::filesystem::path const& path) {
  idx_array<T> out;
  out.header = detail::idx::read<T>(path, [&](idx_header const& h) {
    out.values.resize(static_cast<std::size_t>(h.elements()));
    return out.values.data();
  });
  return out;
}

/// Reads an IDX file as a matrix: the first size is the number of rows and the others
/// are flattened into the columns (MNIST's n x 28 x 28 images become n x 784). A 1-D file
/// is a single column.
/// @throws parse_error as read_idx.
template <class T = float>
dense_matrix<cpu, T> read_idx_matrix(std::filesystem::path const& path) {
  dense_matrix<cpu, T> out;
  detail::idx::read<T>(path, [&](idx_header const& h) {
    std::int64_t cols = 1;
    for (std::size_t d = 1; d < h.dims.size(); ++d) cols *= h.dims[d];
    out = dense_matrix<cpu, T>(h.dims[0], cols);
    return out.data();
  });
  return out;
}

/// Reads a one-dimensional IDX file (e.g. MNIST labels) into a vector.
/// @throws parse_error as read_idx, and when the file has more than one dimension.
template <class T = std::int32_t>
std::vector<T> read_idx_vector(std::filesystem::path const& path) {
  auto a = read_idx<T>(path);
  if (a.header.dims.size() != 1) {
    throw parse_error(path.string(), 0,
                      detail::message("byte 3: expected a one-dimensional file, found ",
                                      a.header.dims.size(), " dimensions"));
  }
  return std::move(a.values);
}

/// Reads a one-dimensional IDX file of class labels (MNIST's and Fashion-MNIST's
/// `*-labels-idx1-ubyte`, 10 classes) and checks that every label names one of `classes`
/// classes, [0, classes): a label outside them would otherwise pass unnoticed into
/// votes, accuracies or a per-class array indexed by it. The check belongs to the reader
/// because only the data set knows its classes; knn_vote accepts any integer labels.
/// @throws invalid_argument when classes < 1; parse_error as read_idx_vector, and
///         parse_error(file, 0, "byte N: label L at position P is outside [0, classes)")
///         for the first label outside the classes.
template <class T = std::int32_t>
std::vector<T> read_idx_labels(std::filesystem::path const& path, std::int64_t classes = 10) {
  static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>, "read_idx_labels: labels are integers");
  MGPU_EXPECTS(classes >= 1, "read_idx_labels: the number of classes must be at least 1, got ", classes);
  auto a = read_idx<T>(path);
  if (a.header.dims.size() != 1) {
    throw parse_error(path.string(), 0,
                      detail::message("byte 3: expected a one-dimensional label file, found ",
                                      a.header.dims.size(), " dimensions"));
  }
  for (std::size_t i = 0; i < a.values.size(); ++i) {
    auto const label = static_cast<std::int64_t>(a.values[i]);
    if (label < 0 || label >= classes) {
      // Data start after the 4-byte magic number and the one 4-byte size.
      auto const byte = 8 + i * detail::idx::element_bytes(a.header.type);
      throw parse_error(path.string(), 0,
                        detail::message("byte ", byte, ": label ", label, " at position ", i,
                                        " is outside [0, ", classes, ") (the number of classes is ",
                                        classes, "; pass another to read_idx_labels for other data)"));
    }
  }
  return std::move(a.values);
}

}  // namespace mgpu
