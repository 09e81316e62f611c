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
// Numbers: a score is written in the shortest form that reads back to the same value of
// its own type — `std::to_chars(first, last, value)` without a format or precision
// (C++17 [charconv.to.chars]: the fewest characters that round-trip, in printf's `%f` or
// `%e` style, `%f` on a tie). A float score is formatted as a float, so std::from_chars,
// strtof, Python's float() then numpy.float32, or any correctly rounding reader gives
// back its exact bits: 0.1f is `0.1`, 1 is `1`, 1e-05f is `1e-05`, 1e9f is `1e+09`,
// 123000 is `123000`, 2^31 is `2147483648` (fewer characters than `2.1474836e+09`), the
// smallest subnormal `1e-45`, -0 is `-0`; a non-integral float never needs more than 9
// significant digits (a double 17). In TSV a value that is not finite is `inf`, `-inf`
// or `nan`. (Until 2026-12 scores were printf's `%.9g`: the same values, sometimes with
// more digits, e.g. `0.100000001` for 0.1f.) Floats are formatted by
// backend::cpu::to_chars_shortest, which writes std::to_chars's bytes (checked over all
// 2^32 floats) at about half its cost (Dragonbox, from {fmt}).
//
// write_neighbor_rows() writes a whole topk_result: rows are formatted in chunks on the
// host's threads into large buffers and written in order (mgpu/io/output_file.hpp's
// write_in_order), with the bytes of neighbor_writer writing the rows one by one.
//
// Thread safety: the functions are pure; a neighbor_writer is used by one thread.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_set>
#include <vector>

#include "mgpu/algorithms/topk_result.hpp"
#include "mgpu/backend/cpu/format/prefetch.hpp"
#include "mgpu/backend/cpu/format/shortest_float.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/io/output_file.hpp"

namespace mgpu {

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

namespace detail::text {

// The escape of a TSV byte, or nullptr when it is written as it is.
inline char const* tsv_escape(char c) noexcept {
  return c == '\\' ? "\\\\" : c == '\t' ? "\\t" : c == '\n' ? "\\n" : c == '\r' ? "\\r" : nullptr;
}

// Appends `field` with TSV's escapes to `out` (std::string or text_buffer).
template <class Out>
void append_tsv(Out& out, std::string_view field) {
  std::size_t run = 0;  // start of the bytes not yet appended
  for (std::size_t i = 0; i < field.size(); ++i) {
    char const* escape = tsv_escape(field[i]);
    if (escape == nullptr) continue;
    out.append(field.data() + run, i - run);
    out.append(escape, 2);
    run = i + 1;
  }
  out.append(field.data() + run, field.size() - run);
}

// Appends `s` as a JSON string, quotes included.
template <class Out>
void append_json(Out& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  std::size_t run = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char const c = s[i];
    auto const u = static_cast<unsigned char>(c);
    if (u >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out.append("\\\"", 2); break;
      case '\\': out.append("\\\\", 2); break;
      case '\b': out.append("\\b", 2); break;
      case '\f': out.append("\\f", 2); break;
      case '\n': out.append("\\n", 2); break;
      case '\r': out.append("\\r", 2); break;
      case '\t': out.append("\\t", 2); break;
      default: {
        char const code[6] = {'\\', 'u', '0', '0', hex[u >> 4], hex[u & 0xf]};
        out.append(code, 6);
      }
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

// Appends an integer in decimal (std::to_chars).
inline void append_number(std::string& out, std::int64_t v) {
  char digits[24];
  auto const end = std::to_chars(digits, digits + sizeof digits, v).ptr;
  out.append(digits, static_cast<std::size_t>(end - digits));
}

// One id of a row: escaped text, or an integer in decimal.
template <class Out>
void append_id(Out& out, text_format format, std::string_view id) {
  if (format == text_format::tsv) {
    append_tsv(out, id);
  } else {
    append_json(out, id);
  }
}
template <class Out>
void append_id(Out& out, text_format, std::int64_t id) {
  append_number(out, id);
}

// An id already escaped (and quoted, for NDJSON) for the format: copied as it is.
struct escaped_id {
  std::string_view text;
};

// Every id of `ids` escaped once for `format`, back to back: id j is
// text[offsets[j], offsets[j + 1]). A neighbour id recurs in many rows, so escaping it
// once takes the per-byte escape test out of the rows' loop. O(total bytes of the ids).
struct escaped_ids {
  std::string text;
  std::vector<std::size_t> offsets;

  escaped_ids(text_format format, std::span<std::string const> ids) {
    std::size_t bytes = 0;
    for (auto const& id : ids) bytes += id.size() + 2;
    text.reserve(bytes);
    offsets.reserve(ids.size() + 1);
    offsets.push_back(0);
    for (auto const& id : ids) {
      append_id(text, format, std::string_view(id));
      offsets.push_back(text.size());
    }
  }

  [[nodiscard]] escaped_id operator[](std::size_t j) const {
    return {std::string_view(text).substr(offsets[j], offsets[j + 1] - offsets[j])};
  }

  // Cache hints for a row ahead: id `far`'s offsets (read by then), id `near`'s text
  // (its offset read, prefetched earlier). Out-of-range ids are skipped.
  void prefetch(std::int64_t far, std::int64_t near) const noexcept {
    auto const n = static_cast<std::int64_t>(offsets.size()) - 1;
    if (far >= 0 && far < n) backend::cpu::prefetch_read(offsets.data() + far);
    if (near >= 0 && near < n) backend::cpu::prefetch_read(text.data() + offsets[static_cast<std::size_t>(near)]);
  }
};

// The parts of a neighbour row that do not depend on its ids and value:
//   tsv:    <query> TAB <neighbor> TAB <value> LF
//   ndjson: {"q":<query>,"n":<neighbor>,"v":<value>} LF
struct row_layout {
  text_format format = text_format::tsv;
  std::string open;    // before the query
  std::string middle;  // between the query and the neighbour
  std::string before_value;
  std::string close;   // after the value

  row_layout(text_format f, std::string_view query, std::string_view neighbor, std::string_view value) : format(f) {
    if (format == text_format::tsv) {
      middle = "\t";
      before_value = "\t";
      close = "\n";
    } else {
      open = "{";
      append_json(open, query);
      open += ':';
      middle = ",";
      append_json(middle, neighbor);
      middle += ':';
      before_value = ",";
      append_json(before_value, value);
      before_value += ':';
      close = "}\n";
    }
  }

  // Appends "open query middle" (a row's start up to its neighbour).
  template <class Out, class Id>
  void start(Out& out, Id query) const {
    out.append(open);
    append_id(out, format, query);
    out.append(middle);
  }

  // The most bytes a number takes in to_chars's shortest form: a float 15
  // (`-1.17549435e-38`), a double 24, an int64 20.
  static constexpr std::size_t number_bytes = 32;

  // The most bytes value_into() writes.
  [[nodiscard]] std::size_t value_bound() const noexcept { return before_value.size() + number_bytes + close.size(); }

  // The most bytes a row takes after `start` (from start()) for `neighbor`.
  [[nodiscard]] std::size_t finish_bound(escaped_id neighbor) const noexcept {
    return neighbor.text.size() + value_bound();
  }
  [[nodiscard]] std::size_t finish_bound(std::int64_t) const noexcept { return number_bytes + value_bound(); }

  // Writes "before_value value close" (a row's end) at `o`, which has room for
  // value_bound() bytes; returns the end. A value that is not finite is `null` in NDJSON.
  template <class V>
  char* value_into(char* o, V value) const {
    if (format == text_format::tsv) {  // the common case, without the layout's strings
      *o++ = '\t';
      o = backend::cpu::to_chars_shortest(o, o + number_bytes, value).ptr;
      *o++ = '\n';
      return o;
    }
    std::memcpy(o, before_value.data(), before_value.size());
    o += before_value.size();
    if (!std::isfinite(value)) {
      std::memcpy(o, "null", 4);
      o += 4;
    } else {
      o = backend::cpu::to_chars_shortest(o, o + number_bytes, value).ptr;
    }
    std::memcpy(o, close.data(), close.size());
    return o + close.size();
  }

  // Writes "start neighbor before_value value close" (a whole row, `start` from start())
  // at `o`, which has room for start.size() + finish_bound(neighbor) bytes; returns the
  // end. One bounds check per row instead of one per part (the hot loop of
  // write_neighbor_rows).
  template <class Id, class V>
  char* row_into(char* o, std::string_view start, Id neighbor, V value) const {
    std::memcpy(o, start.data(), start.size());
    o += start.size();
    if constexpr (std::is_same_v<Id, escaped_id>) {
      std::memcpy(o, neighbor.text.data(), neighbor.text.size());
      o += neighbor.text.size();
    } else {
      o = std::to_chars(o, o + number_bytes, neighbor).ptr;
    }
    return value_into(o, value);
  }
};

}  // namespace detail::text

/// Appends `field` to `out` with TSV's backslash escapes (see the file comment). O(size).
inline void append_tsv_field(std::string& out, std::string_view field) { detail::text::append_tsv(out, field); }

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
inline void append_json_string(std::string& out, std::string_view s) { detail::text::append_json(out, s); }

/// Writes (query, neighbour, value) rows in TSV or NDJSON, one at a time:
///   tsv:    query <TAB> neighbor <TAB> value            (ids escaped, see above)
///   ndjson: {"query":...,"neighbor":...,"score":...}   (key names configurable)
/// String ids are escaped for the format; integer ids are written as decimal numbers;
/// values in their type's shortest round-trip form (a float as a float; see the file
/// comment). Rows are appended to the stream one at a time (the stream should be
/// buffered); for a whole topk_result, write_neighbor_rows() is faster.
/// @throws mgpu::error as soon as the stream is in a failed state.
class neighbor_writer {
 public:
  neighbor_writer(std::ostream& out, text_format format, neighbor_fields names = {})
      : out_(out), layout_(format, names.query, names.neighbor, names.value) {}

  void write(std::string_view query, std::string_view neighbor, float value) { row(query, neighbor, value); }
  void write(std::string_view query, std::string_view neighbor, double value) { row(query, neighbor, value); }
  void write(std::int64_t query, std::int64_t neighbor, float value) { row(query, neighbor, value); }
  void write(std::int64_t query, std::int64_t neighbor, double value) { row(query, neighbor, value); }

 private:
  template <class Id, class V>
  void row(Id query, Id neighbor, V value) {
    line_.clear();
    layout_.start(line_, query);
    detail::text::append_id(line_, layout_.format, neighbor);
    auto const size = line_.size();
    line_.resize(size + layout_.value_bound());
    line_.resize(static_cast<std::size_t>(layout_.value_into(line_.data() + size, value) - line_.data()));
    out_.write(line_.data(), static_cast<std::streamsize>(line_.size()));
    if (!out_) throw error("writing neighbour rows failed: the output stream is in a failed state");
  }

  std::ostream& out_;
  detail::text::row_layout layout_;
  std::string line_;
};

namespace detail::text {

// (query, neighbour) pairs per chunk of write_neighbor_rows.
inline constexpr std::int64_t neighbor_pairs_per_chunk = 8192;

// How many rows ahead write_neighbor_rows asks for a neighbour's id table entry, and its
// text.
inline constexpr std::size_t prefetch_offsets_ahead = 16;
inline constexpr std::size_t prefetch_text_ahead = 8;

// No cache hints (integer ids).
struct no_prefetch {
  void prefetch(std::int64_t, std::int64_t) const noexcept {}
};

template <class T, class QueryId, class NeighborId, class Ahead = no_prefetch>
void write_neighbor_rows(std::ostream& out, text_format format, topk_result<T> const& top, QueryId const& query_id,
                         NeighborId const& neighbor_id, neighbor_fields names, parallel_write_options const& options,
                         Ahead const& ahead = {}) {
  row_layout const layout(format, names.query, names.neighbor, names.value);
  MGPU_EXPECTS(!top.row_offsets.empty() && top.row_offsets.front() == 0 &&
                   top.row_offsets.back() == static_cast<std::int64_t>(top.ids.size()) &&
                   top.ids.size() == top.scores.size() &&
                   std::is_sorted(top.row_offsets.begin(), top.row_offsets.end()),
               "write_neighbor_rows: malformed topk_result (", top.row_offsets.size(), " row offsets, ",
               top.ids.size(), " ids, ", top.scores.size(), " scores)");
  auto const bounds = split_rows_by_entries(std::span<std::int64_t const>(top.row_offsets),
                                            options.entries_per_chunk > 0 ? options.entries_per_chunk
                                                                          : neighbor_pairs_per_chunk);
  write_in_order(
      out, static_cast<std::int64_t>(bounds.size()) - 1,
      [&](text_buffer& text, std::int64_t chunk) {
        auto const q0 = bounds[static_cast<std::size_t>(chunk)];
        auto const q1 = bounds[static_cast<std::size_t>(chunk) + 1];
        text.reserve(static_cast<std::size_t>(top.row_offsets[static_cast<std::size_t>(q1)] -
                                              top.row_offsets[static_cast<std::size_t>(q0)]) * 48);
        std::string start;  // the query's part, the same for all its rows
        for (auto q = q0; q < q1; ++q) {
          auto const b = static_cast<std::size_t>(top.row_offsets[static_cast<std::size_t>(q)]);
          auto const e = static_cast<std::size_t>(top.row_offsets[static_cast<std::size_t>(q) + 1]);
          if (b == e) continue;
          start.clear();
          layout.start(start, query_id(q));
          for (auto p = b; p < e; ++p) {
            auto const far = p + prefetch_offsets_ahead;
            auto const near = p + prefetch_text_ahead;
            ahead.prefetch(far < top.ids.size() ? top.ids[far] : -1, near < top.ids.size() ? top.ids[near] : -1);
            auto const neighbor = neighbor_id(q, top.ids[p]);  // may throw: before the row starts
            char* const o = text.room(start.size() + layout.finish_bound(neighbor));
            text.advance(layout.row_into(o, start, neighbor, top.scores[p]));
          }
        }
      },
      options, "writing neighbour rows");
}

}  // namespace detail::text

/// Writes every (query, neighbour, score) pair of `top` as one row (the layouts of
/// neighbor_writer), query by query in row order and each query's pairs in their order
/// in `top` (best first): query q's id is query_ids[q], a neighbour j's neighbor_ids[j].
/// The rows are formatted on the host's threads in chunks of `options.entries_per_chunk`
/// pairs (default 8192) and written in order (write_in_order in mgpu/io/output_file.hpp):
/// the bytes are those of neighbor_writer writing the rows one by one. Scores in their
/// type's shortest round-trip form (see the file comment). O(pairs + rows) work spread
/// over the threads; memory: options.chunks_in_flight chunks of text.
/// @throws invalid_argument, before writing anything, when `top` is malformed (row
///         offsets not starting at 0, decreasing or not ending at ids.size(), scores and
///         ids of different lengths) or query_ids has fewer than top.rows() ids; when a
///         neighbour id is outside [0, neighbor_ids.size()) (the rows before it are
///         written, as by a serial writer); mgpu::error when the stream fails.
template <class T>
void write_neighbor_rows(std::ostream& out, text_format format, topk_result<T> const& top,
                         std::span<std::string const> query_ids, std::span<std::string const> neighbor_ids,
                         neighbor_fields names = {}, parallel_write_options const& options = {}) {
  MGPU_EXPECTS(static_cast<std::int64_t>(query_ids.size()) >= top.rows(), "write_neighbor_rows: ", top.rows(),
               " rows but ", query_ids.size(), " query ids");
  auto const n = static_cast<std::int64_t>(neighbor_ids.size());
  detail::text::escaped_ids const escaped(format, neighbor_ids);
  detail::text::write_neighbor_rows(
      out, format, top, [&](std::int64_t q) { return std::string_view(query_ids[static_cast<std::size_t>(q)]); },
      [&](std::int64_t q, std::int64_t j) {
        MGPU_EXPECTS(j >= 0 && j < n, "write_neighbor_rows: neighbour id ", j, " of query ", q, " is outside [0, ", n,
                     ")");
        return escaped[static_cast<std::size_t>(j)];
      },
      names, options, escaped);
}

/// The same with integer ids: query q is written as q, a neighbour as its id in `top`.
/// @throws invalid_argument when `top` is malformed (before writing anything);
///         mgpu::error when the stream fails.
template <class T>
void write_neighbor_rows(std::ostream& out, text_format format, topk_result<T> const& top, neighbor_fields names = {},
                         parallel_write_options const& options = {}) {
  detail::text::write_neighbor_rows(
      out, format, top, [](std::int64_t q) { return q; }, [](std::int64_t, std::int64_t j) { return j; }, names,
      options);
}

}  // namespace mgpu
