// Checks shared by the libFuzzer targets. A violated property aborts, which libFuzzer
// reports as a crash and saves the input that caused it; an exception that escapes a
// target is reported the same way (std::terminate), so each target catches only the
// exception types its function documents.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>

#include "mgpu/core/error.hpp"
#include "mgpu/sparse/csr_matrix.hpp"

namespace mgpu_fuzz {

[[noreturn]] inline void fail(char const* property, std::string_view detail = {}) {
  std::fprintf(stderr, "fuzz property violated: %s %.*s\n", property,
               static_cast<int>(detail.size()), detail.data());
  std::abort();
}

inline void check(bool ok, char const* property, std::string_view detail = {}) {
  if (!ok) fail(property, detail);
}

/// The line a parse error may name: 0 (no line, e.g. an empty file) up to one past the
/// last line of `text` (input that ended too early).
inline void check_error_line(mgpu::parse_error const& e, std::string_view text,
                             std::string_view name) {
  std::size_t newlines = 0;
  for (char c : text) newlines += c == '\n' ? 1 : 0;
  check(e.file() == name, "parse_error names the input", e.what());
  check(e.line() <= newlines + 2, "parse_error line within the input", e.what());
  check(std::string_view(e.what()).starts_with(std::string(name) + ":"),
        "parse_error message starts with file:line:", e.what());
}

/// Every invariant csr_matrix promises (see its file comment), checked on the arrays.
template <class T, class I>
void check_csr_invariants(mgpu::csr_matrix<mgpu::cpu, T, I> const& a) {
  auto const offsets = a.row_offsets();
  auto const cols = a.col_indices();
  check(a.rows() >= 0 && a.cols() >= 0, "non-negative shape");
  check(offsets.size() == static_cast<std::size_t>(a.rows()) + 1, "rows + 1 offsets");
  check(cols.size() == a.values().size(), "as many values as column indices");
  check(offsets[0] == 0, "row_offsets[0] == 0");
  check(static_cast<std::size_t>(offsets[offsets.size() - 1]) == cols.size(),
        "last offset == nnz");
  for (std::size_t r = 0; r + 1 < offsets.size(); ++r) {
    check(offsets[r] <= offsets[r + 1], "offsets non-decreasing");
    for (auto p = offsets[r]; p < offsets[r + 1]; ++p) {
      auto const c = cols[static_cast<std::size_t>(p)];
      check(c >= 0 && c < a.cols(), "column inside [0, cols)");
      if (p > offsets[r]) {
        check(cols[static_cast<std::size_t>(p) - 1] < c, "columns strictly increase in a row");
      }
    }
  }
}

}  // namespace mgpu_fuzz
