// mgpu/io/text_output.hpp — ids in text outputs: TSV escaping, JSON strings, neighbour rows.
//
// RELIABILITY.md row 24: an id holding a tab or a line end must never split a row, and
// duplicate ids must not pass unnoticed.
//
// TSV: a field is written with four backslash escapes, the convention of PostgreSQL's
// COPY text format and of `mysqldump --tab`: backslash -> `\\`, tab -> `\t`, line feed
// -> `\n`, carriage return -> `\r`; every other byte (UTF-8 included) as it is. So a
// row always has exactly its number of tabs, and unescape_tsv_field() gives back the
// original bytes. Ids without those four characters are written unchanged.
//
// NDJSON (https://github.com/ndjson/ndjson-spec): one JSON object per line. Strings are
// escaped as RFC 8259 requires: `"` and `\` by a backslash, \b \f \n \r \t by their
// short forms, the other control characters U+0000..U+001F as \u00XX; bytes from 0x7F
// up are copied, so UTF-8 passes through (ids are expected to be valid UTF-8, as the
// corpus readers guarantee). Scores that are not finite are written as null.
//
// Numbers: scores with 9 significant digits, the bytes of printf's `%.9g` (enough to
// round-trip a float; written with std::to_chars(first, last, value,
// std::chars_format::general, 9), which the C++ standard defines as printf's `%.9g`).
//
// Thread safety: the functions are pure; a neighbor_writer is used by one thread.
#pragma once

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>

#include "mgpu/core/error.hpp"

namespace mgpu {

/// Appends `field` to `out` with TSV's backslash escapes (see the file comment). O(size).
inline void append_tsv_field(std::string& out, std::string_view field) {
  std::size_t run = 0;  // start of the bytes not yet appended
  for (std::size_t i = 0; i < field.size(); ++i) {
    char const c = field[i];
    char const* escape = c == '\\' ? "\\\\" : c == '\t' ? "\\t" : c == '\n' ? "\\n" : c == '\r' ? "\\r" : nullptr;
    if (escape == nullptr) continue;
    out.append(field.data() + run, i - run);
    out.append(escape, 2);
    run = i + 1;
  }
  out.append(field.data() + run, field.size() - run);
}

/// `field` with TSV's backslash escapes.
[[nodiscard]] inline std::string escape_tsv_field(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  append_tsv_field(out, field);
  return out;
}

/// The inverse of escape_tsv_field().
/// @throws invalid_argument for a backslash at the end or before any other character
///         than `\`, `t`, `n`, `r` (naming the position).
[[nodiscard]] inline std::string unescape_tsv_field(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (std::size_t i = 0; i < field.size(); ++i) {
    if (field[i] != '\\') {
      out += field[i];
      continue;
    }
    char const next = i + 1 < field.size() ? field[i + 1] : '\0';
    switch (next) {
      case '\\': out += '\\'; break;
      case 't': out += '\t'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      default:
        throw invalid_argument(detail::message("TSV field: invalid escape at byte ", i,
                                               " (a backslash must be followed by \\, t, n or r)"));
    }
    ++i;
  }
  return out;
}

/// Appends `s` to `out` as a JSON string, quotes included (see the file comment). O(size).
inline void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  for (char const c : s) {
    auto const u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (u < 0x20) {
          out += "\\u00";
          out += hex[u >> 4];
          out += hex[u & 0xf];
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

/// The layouts of a text result file.
enum class text_format { tsv, ndjson };

/// "tsv" or "ndjson". @throws invalid_argument for anything else, quoting it.
[[nodiscard]] inline text_format parse_text_format(std::string_view name) {
  if (name == "tsv") return text_format::tsv;
  if (name == "ndjson") return text_format::ndjson;
  throw invalid_argument(detail::message("output format \"", name, "\": expected tsv or ndjson"));
}

/// How many ids repeat an earlier one, and the first such id.
struct duplicate_ids {
  std::size_t count = 0;
  std::string first;
};

/// Counts the ids equal to an earlier id (each extra occurrence counts once). O(n)
/// expected time, O(n) memory (views of the ids).
[[nodiscard]] inline duplicate_ids find_duplicate_ids(std::span<std::string const> ids) {
  duplicate_ids result;
  std::unordered_set<std::string_view> seen;
  seen.reserve(ids.size());
  for (auto const& id : ids) {
    if (!seen.insert(id).second && result.count++ == 0) result.first = id;
  }
  return result;
}

/// The NDJSON member names of a neighbor_writer's rows.
struct neighbor_fields {
  std::string_view query = "query";
  std::string_view neighbor = "neighbor";
  std::string_view value = "score";
};

/// Writes (query, neighbour, value) rows in TSV or NDJSON:
///   tsv:    query <TAB> neighbor <TAB> value            (ids escaped, see above)
///   ndjson: {"query":...,"neighbor":...,"score":...}   (key names configurable)
/// String ids are escaped for the format; integer ids are written as decimal numbers.
/// Rows are appended to the stream one at a time (the stream should be buffered).
/// @throws mgpu::error as soon as the stream is in a failed state.
class neighbor_writer {
 public:
  neighbor_writer(std::ostream& out, text_format format, neighbor_fields names = {})
      : out_(out), format_(format), names_(names) {}

  void write(std::string_view query, std::string_view neighbor, double value) {
    line_.clear();
    if (format_ == text_format::tsv) {
      append_tsv_field(line_, query);
      line_ += '\t';
      append_tsv_field(line_, neighbor);
      line_ += '\t';
    } else {
      key(names_.query, true);
      append_json_string(line_, query);
      key(names_.neighbor, false);
      append_json_string(line_, neighbor);
      key(names_.value, false);
    }
    finish(value);
  }

  void write(std::int64_t query, std::int64_t neighbor, double value) {
    line_.clear();
    if (format_ == text_format::tsv) {
      integer(query);
      line_ += '\t';
      integer(neighbor);
      line_ += '\t';
    } else {
      key(names_.query, true);
      integer(query);
      key(names_.neighbor, false);
      integer(neighbor);
      key(names_.value, false);
    }
    finish(value);
  }

 private:
  void integer(std::int64_t v) {
    char digits[24];
    auto const end = std::to_chars(digits, digits + sizeof digits, v).ptr;
    line_.append(digits, static_cast<std::size_t>(end - digits));
  }

  void key(std::string_view name, bool first) {
    line_ += first ? '{' : ',';
    append_json_string(line_, name);
    line_ += ':';
  }

  void finish(double value) {
    if (format_ == text_format::ndjson && !std::isfinite(value)) {
      line_ += "null";
    } else {
      char digits[32];
      auto const end = std::to_chars(digits, digits + sizeof digits, value, std::chars_format::general, 9).ptr;
      line_.append(digits, static_cast<std::size_t>(end - digits));
    }
    if (format_ == text_format::ndjson) line_ += '}';
    line_ += '\n';
    out_.write(line_.data(), static_cast<std::streamsize>(line_.size()));
    if (!out_) throw error("writing neighbour rows failed: the output stream is in a failed state");
  }

  std::ostream& out_;
  text_format format_;
  neighbor_fields names_;
  std::string line_;
};

}  // namespace mgpu
