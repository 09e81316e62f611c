// mgpu/io/binary_file.hpp — the versioned, checksummed binary container of every file mgpu
// saves (indexes, fitted vectorizers, ALS models).
//
// Layout (all integers little-endian; docs/formats.md has the full description):
//   header   8-byte magic 89 4D 47 50 55 0D 0A 1A ("\x89MGPU\r\n\x1a"),
//            u32 container version (1), u32 n + n bytes: the kind ("cosine_index", ...),
//            u32 kind version, u32 CRC-32 of the header's previous bytes
//   section  u32 n + n bytes: the name (n >= 1), u8 element type, u64 element count,
//            count x sizeof(element) bytes of data, u32 CRC-32 of the section's previous bytes
//   trailer  u32 0, u64 number of sections, 8 bytes "MGPU-END", u32 CRC-32 of every
//            previous byte of the file
// Element types: 1 int8, 2 uint8, 3 int32, 4 uint32, 5 int64, 6 uint64, 7 float32,
// 8 float64, 9 UTF-8 text. Sections are read back in the order they were written, each by
// name and type, so a reader checks the structure as it goes; every count is checked
// against the bytes left in the file before anything is allocated, so a corrupted count
// cannot ask for more memory than the file's size. A reader accepts kind versions up to
// the one it knows and rejects newer ones by name.
#pragma once

#include <zlib.h>

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <istream>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "mgpu/core/error.hpp"
#include "mgpu/io/output_file.hpp"

namespace mgpu {

static_assert(std::endian::native == std::endian::little,
              "mgpu's binary files are little-endian; a big-endian reader is not written yet");

namespace detail::bin {

inline constexpr std::array<unsigned char, 8> magic{0x89, 'M', 'G', 'P', 'U', '\r', '\n', 0x1a};
inline constexpr std::array<unsigned char, 8> end_magic{'M', 'G', 'P', 'U', '-', 'E', 'N', 'D'};
inline constexpr std::uint32_t container_version = 1;

template <class T>
constexpr std::uint8_t type_code() {
  if constexpr (std::is_same_v<T, std::int8_t>) return 1;
  else if constexpr (std::is_same_v<T, std::uint8_t>) return 2;
  else if constexpr (std::is_same_v<T, std::int32_t>) return 3;
  else if constexpr (std::is_same_v<T, std::uint32_t>) return 4;
  else if constexpr (std::is_same_v<T, std::int64_t>) return 5;
  else if constexpr (std::is_same_v<T, std::uint64_t>) return 6;
  else if constexpr (std::is_same_v<T, float>) return 7;
  else if constexpr (std::is_same_v<T, double>) return 8;
  else if constexpr (std::is_same_v<T, char>) return 9;
  else static_assert(sizeof(T) == 0, "binary_file: unsupported element type");
}

inline std::uint32_t crc_update(std::uint32_t crc, void const* data, std::size_t n) {
  auto const* p = static_cast<unsigned char const*>(data);
  while (n > 0) {
    auto const chunk = static_cast<uInt>(std::min<std::size_t>(n, std::size_t{1} << 30));
    crc = static_cast<std::uint32_t>(::crc32(crc, p, chunk));
    p += chunk;
    n -= chunk;
  }
  return crc;
}

}  // namespace detail::bin

/// Writes one binary file's header, sections and trailer to a stream (file comment).
/// Usually used through write_binary_file, which makes the write all-or-nothing.
class binary_writer {
 public:
  /// Writes the header. @throws invalid_argument for an empty kind.
  binary_writer(std::ostream& out, std::string_view kind, std::uint32_t kind_version) : out_(out) {
    MGPU_EXPECTS(!kind.empty(), "binary_writer: the kind must not be empty");
    section_crc_ = 0;
    raw(detail::bin::magic.data(), detail::bin::magic.size());
    pod(detail::bin::container_version);
    pod(static_cast<std::uint32_t>(kind.size()));
    raw(kind.data(), kind.size());
    pod(kind_version);
    pod(section_crc_);
  }

  /// Writes a section of `values` under `name` (not empty).
  template <class T>
  void write(std::string_view name, std::span<T const> values) {
    MGPU_EXPECTS(!name.empty(), "binary_writer: a section needs a name");
    section_crc_ = 0;
    pod(static_cast<std::uint32_t>(name.size()));
    raw(name.data(), name.size());
    pod(detail::bin::type_code<T>());
    pod(static_cast<std::uint64_t>(values.size()));
    raw(values.data(), values.size_bytes());
    pod(section_crc_);
    ++sections_;
  }
  template <class T>
  void write(std::string_view name, std::vector<T> const& values) {
    write(name, std::span<T const>(values));
  }
  /// One value as a section of one element.
  template <class T>
    requires std::is_arithmetic_v<T>
  void write_value(std::string_view name, T value) {
    write(name, std::span<T const>(&value, 1));
  }
  void write_text(std::string_view name, std::string_view text) {
    write(name, std::span<char const>(text.data(), text.size()));
  }

  /// Writes the trailer; call once, after the last section.
  void finish() {
    pod(std::uint32_t{0});
    pod(static_cast<std::uint64_t>(sections_));
    raw(detail::bin::end_magic.data(), detail::bin::end_magic.size());
    auto const crc = file_crc_;
    out_.write(reinterpret_cast<char const*>(&crc), sizeof crc);
  }

 private:
  void raw(void const* p, std::size_t n) {
    out_.write(static_cast<char const*>(p), static_cast<std::streamsize>(n));
    section_crc_ = detail::bin::crc_update(section_crc_, p, n);
    file_crc_ = detail::bin::crc_update(file_crc_, p, n);
  }
  template <class T>
  void pod(T v) {
    raw(&v, sizeof v);
  }

  std::ostream& out_;
  std::uint32_t section_crc_ = 0;
  std::uint32_t file_crc_ = 0;
  std::uint64_t sections_ = 0;
};

/// Reads a file written by binary_writer, checking each part as it goes (file comment).
/// Every check throws file_format_error naming the file and the byte offset.
class binary_reader {
 public:
  /// Opens `path` and reads its header.
  /// @param kind          the kind the caller loads; another kind is an error naming both.
  /// @param max_version   the newest kind version the caller understands.
  /// @throws mgpu::error when the file cannot be opened; file_format_error otherwise.
  binary_reader(std::filesystem::path path, std::string_view kind, std::uint32_t max_version)
      : path_(std::move(path)), in_(path_, std::ios::binary) {
    if (!in_) throw error(detail::message("cannot open '", path_.string(), "' for reading"));
    std::error_code ec;
    size_ = std::filesystem::file_size(path_, ec);
    if (ec) throw error(detail::message("cannot read the size of '", path_.string(), "': ", ec.message()));
    section_crc_ = 0;
    std::array<unsigned char, 8> m{};
    raw(m.data(), m.size(), "the file header");
    if (m != detail::bin::magic) fail(0, "not an mgpu binary file (wrong magic bytes)");
    auto const version = pod<std::uint32_t>("the container version");
    if (version != detail::bin::container_version) {
      fail(8, detail::message("container version ", version, " is not supported (this build reads version ",
                              detail::bin::container_version, ")"));
    }
    auto const found = text(pod<std::uint32_t>("the kind's length"), "the kind");
    if (found != kind) fail(12, detail::message("holds a ", found, ", not a ", kind));
    version_ = pod<std::uint32_t>("the kind version");
    if (version_ == 0 || version_ > max_version) {
      fail(16 + found.size(), detail::message(kind, " version ", version_, " is not supported (this build reads versions 1 to ",
                                               max_version, ")"));
    }
    check_crc("the header");
  }

  /// The kind version of the file (1 .. max_version).
  [[nodiscard]] std::uint32_t version() const noexcept { return version_; }
  [[nodiscard]] std::filesystem::path const& path() const noexcept { return path_; }

  /// Reads the next section, which must be `name` with elements of type T.
  template <class T>
  std::vector<T> read(std::string_view name) {
    auto const start = offset_;
    section_crc_ = 0;
    auto const length = pod<std::uint32_t>("a section header");
    if (length == 0) fail(start, detail::message("ends where section '", name, "' was expected"));
    auto const found = text(length, "a section name");
    if (found != name) fail(start, detail::message("has section '", found, "' where '", name, "' was expected"));
    auto const type = pod<std::uint8_t>("a section's element type");
    if (type != detail::bin::type_code<T>()) {
      fail(start, detail::message("section '", name, "' has element type ", int{type}, ", expected ",
                                  int{detail::bin::type_code<T>()}));
    }
    auto const count = pod<std::uint64_t>("a section's element count");
    if (count > (size_ - offset_) / sizeof(T)) {
      fail(start, detail::message("section '", name, "' claims ", count, " elements but only ", size_ - offset_,
                                  " bytes are left (truncated or corrupted)"));
    }
    std::vector<T> values(static_cast<std::size_t>(count));
    raw(values.data(), values.size() * sizeof(T), "a section's data");
    check_crc(detail::message("section '", name, "' (at byte ", start, ")"));
    ++sections_;
    return values;
  }
  /// Reads a section that must hold exactly one value.
  template <class T>
    requires std::is_arithmetic_v<T>
  T read_value(std::string_view name) {
    auto const start = offset_;
    auto const v = read<T>(name);
    if (v.size() != 1) fail(start, detail::message("section '", name, "' has ", v.size(), " values, expected 1"));
    return v[0];
  }
  std::string read_text(std::string_view name) {
    auto const v = read<char>(name);
    return {v.begin(), v.end()};
  }

  /// Reads the trailer: the end marker, the section count and the whole file's checksum,
  /// and that nothing follows. Call after the last section, before using what was read.
  void finish() {
    auto const start = offset_;
    if (pod<std::uint32_t>("the trailer") != 0) fail(start, "has more sections than the reader expects");
    auto const sections = pod<std::uint64_t>("the trailer's section count");
    if (sections != sections_) {
      fail(start, detail::message("trailer counts ", sections, " sections, ", sections_, " were read"));
    }
    std::array<unsigned char, 8> m{};
    raw(m.data(), m.size(), "the end marker");
    if (m != detail::bin::end_magic) fail(start + 12, "the end marker is missing (truncated or corrupted)");
    auto const crc = file_crc_;
    std::uint32_t stored = 0;
    raw(&stored, sizeof stored, "the file checksum");
    if (stored != crc) fail(start + 20, "the file checksum does not match (corrupted)");
    if (offset_ != size_) fail(offset_, detail::message(size_ - offset_, " bytes follow the end marker"));
  }

 private:
  [[noreturn]] void fail(std::uint64_t at, std::string const& what) const {
    throw file_format_error(detail::message("'", path_.string(), "', byte ", at, ": ", what));
  }
  void raw(void* p, std::size_t n, char const* what) {
    if (n > size_ - offset_) fail(offset_, detail::message("ends inside ", what, " (truncated)"));
    in_.read(static_cast<char*>(p), static_cast<std::streamsize>(n));
    if (static_cast<std::size_t>(in_.gcount()) != n) fail(offset_, detail::message("ends inside ", what, " (truncated)"));
    section_crc_ = detail::bin::crc_update(section_crc_, p, n);
    file_crc_ = detail::bin::crc_update(file_crc_, p, n);
    offset_ += n;
  }
  template <class T>
  T pod(char const* what) {
    T v{};
    raw(&v, sizeof v, what);
    return v;
  }
  std::string text(std::uint32_t n, char const* what) {
    if (n > size_ - offset_) fail(offset_, detail::message("ends inside ", what, " (truncated)"));
    std::string s(n, '\0');
    raw(s.data(), n, what);
    return s;
  }
  void check_crc(std::string const& what) {
    auto const expected = section_crc_;
    auto const at = offset_;
    std::uint32_t stored = 0;
    raw(&stored, sizeof stored, "a checksum");
    if (stored != expected) fail(at, detail::message("the checksum of ", what, " does not match (corrupted)"));
  }

  std::filesystem::path path_;
  std::ifstream in_;
  std::uint64_t size_ = 0;
  std::uint64_t offset_ = 0;
  std::uint32_t version_ = 0;
  std::uint32_t section_crc_ = 0;
  std::uint32_t file_crc_ = 0;
  std::uint64_t sections_ = 0;
};

/// Writes `path` as one binary file of `kind` (version `kind_version`) whose sections
/// `fill` writes, all or nothing: the file is written to a temporary next to it and
/// renamed over the target only when complete (mgpu::output_set).
/// @throws mgpu::error naming the path when it cannot be written; whatever fill throws.
inline void write_binary_file(std::filesystem::path const& path, std::string_view kind, std::uint32_t kind_version,
                              std::function<void(binary_writer&)> const& fill) {
  output_set outputs;
  outputs.add(path,
              [&](std::ostream& out) {
                binary_writer w(out, kind, kind_version);
                fill(w);
                w.finish();
              },
              std::string(kind));
  outputs.commit();
}

}  // namespace mgpu
