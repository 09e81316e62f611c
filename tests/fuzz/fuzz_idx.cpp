// libFuzzer target: the IDX reader (mgpu/io/idx.hpp), RELIABILITY.md row 13 for binary
// files. Each input is written to a scratch file (the reader takes paths, and gzread
// decides between plain and gzip data by content) and read as float, as int and as a
// matrix.
//
// Properties: only parse_error escapes the reader; a parse error names the file, line 0,
// and a byte offset; a file read successfully holds exactly the product of its sizes in
// elements, and the matrix view of it has rows = first size, cols = product of the rest.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include <unistd.h>

#include "fuzz_support.hpp"
#include "mgpu/io/idx.hpp"

namespace {

std::string const& scratch_path() {
  static std::string const path = "/tmp/mgpu_fuzz_idx_" + std::to_string(::getpid()) + ".idx";
  return path;
}

template <class T>
void read_as(std::string const& path) {
  try {
    auto const a = mgpu::read_idx<T>(path);
    mgpu_fuzz::check(!a.header.dims.empty(), "a file read has at least one dimension");
    mgpu_fuzz::check(static_cast<std::int64_t>(a.values.size()) == a.header.elements(),
                     "a file read holds the product of its sizes in elements");
    auto const m = mgpu::read_idx_matrix<T>(path);
    mgpu_fuzz::check(m.rows() == a.header.dims[0], "matrix rows are the first size");
    mgpu_fuzz::check(m.rows() * m.cols() == a.header.elements(), "matrix holds every element");
  } catch (mgpu::parse_error const& e) {
    mgpu_fuzz::check(e.file() == path, "parse_error names the input", e.what());
    mgpu_fuzz::check(e.line() == 0, "parse_error of a binary file has line 0", e.what());
    mgpu_fuzz::check(std::string_view(e.what()).starts_with(path + ":0: byte "),
                     "parse_error message gives the byte offset", e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  std::string const& path = scratch_path();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  bool const written = std::fwrite(data, 1, size, f) == size;
  std::fclose(f);
  if (!written) return 0;
  read_as<float>(path);
  read_as<std::int32_t>(path);
  read_as<double>(path);
  return 0;
}
