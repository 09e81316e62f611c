// mgpu/backend/cpu/text/regex_tokenizer.hpp — sklearn's `token_pattern` other than the
// default: `re.compile(pattern).findall(text)` through PCRE2 (JIT-compiled).
//
// Python `re` semantics on str patterns: the pattern is compiled with PCRE2_UTF and
// PCRE2_UCP, so `\w`, `\d`, `\s` and `\b` follow Unicode properties (PCRE2 10.42: `\w` is
// \p{L}, \p{N} and '_', which is Python's str.isalnum() or '_'). Python's inline flag `u`
// (as in `(?u)`) is the default for str patterns and is removed; `a` and `L` (ASCII and
// locale matching) are refused. `\Z` (Python: end of text only) becomes PCRE2's `\z`.
// Other syntax is PCRE2's, which shares Python's for the patterns tokenizers use
// (classes, groups, `(?P<name>...)`, lookaround, quantifiers).
//
// findall: with no capturing group a token is the whole match, with one it is the group
// (unset: empty), more than one group is invalid_argument (as sklearn's ValueError). After
// an empty match the next one may not be empty at the same place (Python 3.7+). Empty
// tokens are not returned (mgpu's terms are never empty; sklearn would count "").
//
// Thread safety: the compiled pattern is shared read-only; each thread has its own
// regex_tokenizer (match data).
#pragma once

// The 8-bit library's names are spelled out (pcre2_compile_8, ...), so this header works
// whatever PCRE2_CODE_UNIT_WIDTH a translation unit chose (pcre2.h declares every width).
#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mgpu/core/error.hpp"

namespace mgpu::detail {

/// A pattern compiled for findall (file comment). Immutable once built.
class compiled_pattern {
 public:
  /// @throws invalid_argument when the pattern does not compile, uses the flags `a` or
  ///         `L`, or has more than one capturing group.
  explicit compiled_pattern(std::string_view python_pattern) {
    std::string const pattern = translate(python_pattern);
    int error = 0;
    PCRE2_SIZE offset = 0;
    code_.reset(pcre2_compile_8(reinterpret_cast<PCRE2_SPTR8>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP,
                              &error, &offset, nullptr));
    if (!code_) {
      PCRE2_UCHAR8 text[256];
      pcre2_get_error_message_8(error, text, sizeof text);
      throw invalid_argument(message("token_pattern '", python_pattern, "' does not compile: ",
                                     reinterpret_cast<char const*>(text), " at offset ", offset));
    }
    std::uint32_t groups = 0;
    pcre2_pattern_info_8(code_.get(), PCRE2_INFO_CAPTURECOUNT, &groups);
    MGPU_EXPECTS(groups <= 1, "token_pattern '", python_pattern,
                 "' has more than 1 capturing group; only a single group should be captured");
    group_ = groups == 1;
    pcre2_jit_compile_8(code_.get(), PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is unavailable
  }

  [[nodiscard]] pcre2_code_8 const* code() const noexcept { return code_.get(); }
  /// Whether the token is capturing group 1 (else the whole match).
  [[nodiscard]] bool group() const noexcept { return group_; }

  /// The PCRE2 form of a Python pattern (file comment).
  /// @throws invalid_argument for the flags `a` and `L`.
  static std::string translate(std::string_view p) {
    std::string out;
    out.reserve(p.size());
    for (std::size_t i = 0; i < p.size(); ++i) {
      char const c = p[i];
      if (c == '\\' && i + 1 < p.size()) {
        out += p[i + 1] == 'Z' ? std::string_view("\\z") : p.substr(i, 2);
        ++i;
      } else if (c == '[') {  // a class: copied as it is up to its closing bracket
        std::size_t j = i + 1;
        if (j < p.size() && p[j] == '^') ++j;
        if (j < p.size() && p[j] == ']') ++j;
        while (j < p.size() && p[j] != ']') j += p[j] == '\\' ? 2 : 1;
        std::size_t const end = std::min(j + 1, p.size());
        out += p.substr(i, end - i);
        i = end - 1;
      } else if (c == '(' && i + 1 < p.size() && p[i + 1] == '?') {
        std::size_t j = i + 2;
        while (j < p.size() && std::string_view("aiLmsux").find(p[j]) != std::string_view::npos) ++j;
        if (j > i + 2 && j < p.size() && p[j] == ')') {  // a flags group such as (?u) or (?iu)
          std::string flags;
          for (std::size_t k = i + 2; k < j; ++k) {
            MGPU_EXPECTS(p[k] != 'a' && p[k] != 'L', "token_pattern: the inline flag '", p[k], "' is not supported");
            if (p[k] != 'u') flags += p[k];
          }
          if (!flags.empty()) out += "(?" + flags + ")";
          i = j;
        } else {
          out += c;
        }
      } else {
        out += c;
      }
    }
    return out;
  }

 private:
  struct code_delete {
    void operator()(pcre2_code_8* c) const noexcept { pcre2_code_free_8(c); }
  };
  std::unique_ptr<pcre2_code_8, code_delete> code_;
  bool group_ = false;
};

/// One thread's matcher of a compiled_pattern.
class regex_tokenizer {
 public:
  explicit regex_tokenizer(compiled_pattern const& pattern)
      : pattern_(&pattern), match_(pcre2_match_data_create_from_pattern_8(pattern.code(), nullptr)) {
    if (!match_) throw std::bad_alloc();
  }

  /// Appends the [begin, end) byte spans of the tokens of `text` (valid UTF-8) to `spans`.
  /// O(text) for the usual patterns (PCRE2's backtracking bounds the rest).
  /// @throws mgpu::error if PCRE2 fails (e.g. its match limit).
  void tokenize(std::string_view text, std::vector<std::pair<std::uint32_t, std::uint32_t>>& spans) {
    auto const* const subject = reinterpret_cast<PCRE2_SPTR8>(text.data());
    PCRE2_SIZE const length = text.size();
    PCRE2_SIZE offset = 0;
    std::uint32_t options = 0;
    while (offset <= length) {
      int const rc = pcre2_match_8(pattern_->code(), subject, length, offset, options | PCRE2_NO_UTF_CHECK,
                                 match_.get(), nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) {
        if (options == 0) break;
        // No non-empty match where the empty one was: go on one code point later.
        options = 0;
        if (offset == length) break;
        ++offset;
        while (offset < length && (text[offset] & 0xC0) == 0x80) ++offset;
        continue;
      }
      if (rc < 0) {
        PCRE2_UCHAR8 what[256];
        pcre2_get_error_message_8(rc, what, sizeof what);
        throw error(message("token_pattern: PCRE2 matching failed: ", reinterpret_cast<char const*>(what)));
      }
      PCRE2_SIZE const* const ov = pcre2_get_ovector_pointer_8(match_.get());
      PCRE2_SIZE begin = ov[0];
      PCRE2_SIZE end = ov[1];
      if (pattern_->group()) {
        begin = ov[2];
        end = ov[3];
        if (begin == PCRE2_UNSET) end = begin = 0;
      }
      if (end > begin) spans.emplace_back(static_cast<std::uint32_t>(begin), static_cast<std::uint32_t>(end));
      options = ov[1] == ov[0] ? PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED : 0;
      offset = ov[1];
    }
  }

 private:
  struct match_delete {
    void operator()(pcre2_match_data_8* m) const noexcept { pcre2_match_data_free_8(m); }
  };
  compiled_pattern const* pattern_;
  std::unique_ptr<pcre2_match_data_8, match_delete> match_;
};

}  // namespace mgpu::detail
