// mgpu/detail/tokenizer.hpp — scikit-learn's default word analyzer on UTF-8 text.
//
// `word_tokenizer::tokenize(doc)` does what `CountVectorizer().build_analyzer()` does:
// `doc.lower()` (optional) on the whole document, then `re.findall(r"(?u)\b\w\w+\b")`,
// i.e. the maximal runs of at least two word code points *after* lowercasing (see
// text_unicode.hpp for both definitions). Lowering happens code point by code point
// as the text is scanned, which is equivalent because Python's lower() is a per-code-
// point mapping whose only context, Final_Sigma, reads the original text.
//
// The lowered text is written into one buffer and the tokens are spans of it, at least
// one byte apart, each with at least 16 readable bytes from its start and 8 after its
// end (hashing loads two 8-byte words whatever the token's length). `join()` then moves
// the tokens so that each is followed by a single space:
// the word n-gram of tokens i..j (sklearn's `" ".join(tokens[i:j+1])`) becomes the
// contiguous bytes from the start of token i to the end of token j, so n-grams cost
// no copies. Unigram counting skips that pass.
//
// Speed: the text is classified 64 bytes at a time (AVX-512BW or AVX2 when the CPU has
// them, a table otherwise; chosen at run time, see backend/cpu/simd/isa.hpp) into a bit
// mask of ASCII word bytes and one of non-ASCII bytes; an ASCII stretch is lowered with one store. Its runs of word bytes are found
// without a branch per run: with `prev` the word mask shifted up by one (bit 0 = whether
// a run is open from before), `word & ~prev` marks where runs start and `~word & prev`
// where they stop, and the positions of both kinds of bits are written out wholesale
// as the begin and end offsets of the runs (AVX-512 VBMI2 compresses the 64 byte indices
// in one instruction; otherwise eight positions are written per round whether or not
// that many bits are set). A run still open at the end of a stretch has its end written
// later. Non-ASCII code points go one at a time, through utf8proc except for the CJK
// ideographs, which are copied; they open and close runs the same way. A run of one
// code point is not a token: one of a multi-byte code point is taken back when it ends,
// and a last branch-free pass drops the runs of one byte.
//
// The scan itself lives in backend/cpu/simd/tokenizer_kernels.hpp, compiled once per
// instruction-set level; a tokenizer picks its level when constructed (the process's
// simd::active() unless told otherwise) and switches on it once per document, so the
// tokens are the same whatever the level, the -march of the translation unit, or the
// CPU.
//
// Offsets are 32-bit, so documents are limited to less than 2 GiB (their lowered text
// is then at most 3 GiB).
//
// Thread safety: one tokenizer per thread.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

#include "mgpu/backend/cpu/simd/isa.hpp"
#include "mgpu/backend/cpu/simd/tokenizer_kernels.hpp"
#include "mgpu/core/error.hpp"

namespace mgpu::detail {

using backend::cpu::simd::cjk_count;
using backend::cpu::simd::cjk_first;
using backend::cpu::simd::max_positions;

class word_tokenizer {
 public:
  /// A tokenizer lowering (or not) on the instruction-set `level` (the best this process
  /// may use by default; a level above simd::best_supported() is capped to it).
  /// @throws invalid_argument if MGPU_SIMD names no level (see simd/isa.hpp).
  explicit word_tokenizer(bool lowercase, backend::cpu::simd::isa level = backend::cpu::simd::active())
      : lowercase_(lowercase), level_(std::min(level, backend::cpu::simd::best_supported())) {}

  /// The instruction-set level the scan runs on.
  [[nodiscard]] backend::cpu::simd::isa level() const noexcept { return level_; }

  /// Tokenizes `doc` (replacing the previous document's tokens).
  /// @throws invalid_argument if `doc` is 2 GiB or larger, or is not valid UTF-8 (naming
  ///         `doc_index` and the byte offset; sklearn's strict decoding raises there too).
  void tokenize(std::string_view doc, std::size_t doc_index) {
    if (doc.size() >= (std::size_t{1} << 31)) {
      throw invalid_argument(message("document ", doc_index, " has ", doc.size(),
                                     " bytes; documents of 2 GiB or more are not supported"));
    }
    // Lowering grows a code point by at most half (2-byte U+023A -> 3-byte U+2C65;
    // İ: 2 -> 3 bytes); a block store writes 64 bytes past the text at most, and
    // hashing reads 8 bytes past a token.
    std::size_t const need = 2 * doc.size() + 160;
    if (need > capacity_) {
      buffer_ = std::make_unique_for_overwrite<char[]>(need);
      capacity_ = need;
    }
    // A run of word code points and the separator after it come from two input bytes at
    // least (İ alone: its lowered form "i̇" is both); write_positions and keep_tokens
    // store up to max_positions values past the last run.
    std::size_t const most_runs = doc.size() / 2 + 2 + max_positions;
    if (most_runs > run_capacity_) {
      begins_ = std::make_unique_for_overwrite<std::uint32_t[]>(most_runs);
      ends_ = std::make_unique_for_overwrite<std::uint32_t[]>(most_runs);
      run_capacity_ = most_runs;
    }
    joined_ = false;
    count_ = lowercase_ ? backend::cpu::simd::scan_words<true>(level_, doc, doc_index, buffer_.get(),
                                                               begins_.get(), ends_.get())
                        : backend::cpu::simd::scan_words<false>(level_, doc, doc_index, buffer_.get(),
                                                                begins_.get(), ends_.get());
  }

  [[nodiscard]] std::size_t size() const noexcept { return count_; }

  /// Token i; 16 bytes from its start and the 8 bytes after it are readable.
  [[nodiscard]] std::string_view token(std::size_t i) const noexcept {
    return {buffer_.get() + begins_[i], ends_[i] - begins_[i]};
  }

  /// Moves the tokens so that each is followed by one space (needed by ngram).
  void join() noexcept {
    if (joined_) return;
    char* const base = buffer_.get();
    std::uint32_t out = 0;
    for (std::size_t i = 0; i < count_; ++i) {
      // Tokens are ordered and at least one byte apart, so out + length < next begin.
      std::uint32_t const length = ends_[i] - begins_[i];
      std::memmove(base + out, base + begins_[i], length);
      begins_[i] = out;
      out += length;
      ends_[i] = out;
      base[out++] = ' ';
    }
    joined_ = true;
  }

  /// Tokens first..last (inclusive) joined by single spaces; needs join() unless
  /// first == last.
  [[nodiscard]] std::string_view ngram(std::size_t first, std::size_t last) const noexcept {
    return {buffer_.get() + begins_[first], ends_[last] - begins_[first]};
  }

  /// Calls `f(term)` for every word n-gram with min_n <= n <= max_n, as sklearn's
  /// `_word_ngrams` (order differs; counts do not).
  template <class F>
  void for_each_ngram(int min_n, int max_n, F&& f) {
    if (max_n > 1) join();
    std::size_t const count = size();
    for (auto n = static_cast<std::size_t>(min_n); n <= static_cast<std::size_t>(max_n) && n <= count;
         ++n) {
      for (std::size_t i = 0; i + n <= count; ++i) f(ngram(i, i + n - 1));
    }
  }

 private:
  bool lowercase_;
  backend::cpu::simd::isa level_;
  bool joined_ = false;
  std::unique_ptr<char[]> buffer_;
  std::size_t capacity_ = 0;
  std::unique_ptr<std::uint32_t[]> begins_;
  std::unique_ptr<std::uint32_t[]> ends_;
  std::size_t run_capacity_ = 0;
  std::size_t count_ = 0;
};

}  // namespace mgpu::detail
