// gzip for the reader tests: one gzip member holding a text, made with zlib directly
// (deflate with the gzip wrapper, windowBits 15 + 16), independently of mgpu's reader.
#pragma once

#include <catch2/catch.hpp>

#include <string>

#include <zlib.h>

namespace mgpu_test {

/// One gzip member holding `text`.
inline std::string gzip(std::string const& text) {
  z_stream z{};
  REQUIRE(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&z, static_cast<uLong>(text.size())) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace mgpu_test
