// mgpu/detail/text_term_table.hpp — a string dictionary: term -> dense id (0, 1, ...
// in insertion order), for counting tokens.
//
// Open addressing with linear probing over 16-byte slots that hold each term's first
// eight bytes and length, so most probes are decided without touching the term
// bytes; the terms live in one arena. std::unordered_map<std::string, ...> costs an allocation per term and a
// pointer chase per probe, which dominates tokenising. The table stores offsets, not
// pointers, so it may be copied and moved freely.
//
// Thread safety: none; counting uses one table per thread and merges them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "mgpu/core/error.hpp"

namespace mgpu::detail {

/// A fast 64-bit hash of a short byte string (8-byte words, multiply-xorshift mixing).
inline std::uint64_t hash_term(std::string_view s) noexcept {
  constexpr std::uint64_t k = 0x9E3779B97F4A7C15ull;
  auto mix = [](std::uint64_t x) {
    x ^= x >> 32;
    x *= 0xD6E8FEB86659FD93ull;
    x ^= x >> 32;
    return x;
  };
  std::uint64_t h = k ^ (s.size() * 0xBF58476D1CE4E5B9ull);
  char const* p = s.data();
  std::size_t n = s.size();
  while (n >= 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * k;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n != 0) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * k;
  }
  return mix(h);
}

class term_table {
 public:
  static constexpr std::uint32_t npos = 0xFFFFFFFFu;

  term_table() { rehash(64); }

  [[nodiscard]] std::size_t size() const noexcept { return hashes_.size(); }

  [[nodiscard]] std::string_view term(std::uint32_t id) const noexcept {
    return {arena_.data() + offsets_[id], static_cast<std::size_t>(offsets_[id + 1] - offsets_[id])};
  }
  [[nodiscard]] std::uint64_t hash(std::uint32_t id) const noexcept { return hashes_[id]; }

  /// Starts loading the slot where a lookup of hash `h` begins: counting prefetches a
  /// few terms ahead, because at corpus scale nearly every first probe misses cache.
  void prefetch(std::uint64_t h) const noexcept { __builtin_prefetch(&slots_[h & mask_]); }

  /// The id of `term` (whose hash_term is `h`), or npos.
  [[nodiscard]] std::uint32_t find(std::string_view term, std::uint64_t h) const noexcept {
    std::uint64_t const prefix = prefix_of(term);
    auto const length = static_cast<std::uint32_t>(term.size());
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      slot const& s = slots_[i];
      if (s.id == npos) return npos;
      if (matches(s, prefix, length, term)) return s.id;
    }
  }

  /// The id of `term`, inserted with the next id if absent.
  /// @throws index_overflow beyond 2^32 - 2 distinct terms or a term of 4 GiB.
  std::uint32_t intern(std::string_view term, std::uint64_t h) {
    std::uint64_t const prefix = prefix_of(term);
    auto const length = static_cast<std::uint32_t>(term.size());
    std::size_t i = h & mask_;
    for (;; i = (i + 1) & mask_) {
      slot const& s = slots_[i];
      if (s.id == npos) break;
      if (matches(s, prefix, length, term)) return s.id;
    }
    if (hashes_.size() >= npos - 1 || term.size() >= npos) {
      throw index_overflow(message("a term table holds at most ", npos - 1,
                                   " distinct terms of less than 4 GiB each"));
    }
    auto const id = static_cast<std::uint32_t>(hashes_.size());
    arena_.insert(arena_.end(), term.begin(), term.end());
    offsets_.push_back(arena_.size());
    hashes_.push_back(h);
    slots_[i] = {prefix, id, length};
    if (2 * hashes_.size() > slots_.size()) rehash(2 * slots_.size());
    return id;
  }

 private:
  // Tokens never contain NUL (it is not a word character), so the zero-padded first
  // eight bytes plus the length identify a term of up to eight bytes: most lookups
  // touch one slot and no term bytes.
  struct slot {
    std::uint64_t prefix;
    std::uint32_t id;
    std::uint32_t length;
  };

  static std::uint64_t prefix_of(std::string_view term) noexcept {
    std::uint64_t p = 0;
    std::memcpy(&p, term.data(), term.size() < 8 ? term.size() : 8);
    return p;
  }

  bool matches(slot const& s, std::uint64_t prefix, std::uint32_t length,
               std::string_view term) const noexcept {
    if (s.prefix != prefix || s.length != length) return false;
    return length <= 8 || std::memcmp(arena_.data() + offsets_[s.id] + 8, term.data() + 8, length - 8) == 0;
  }

  void rehash(std::size_t capacity) {
    slots_.assign(capacity, slot{0, npos, 0});
    mask_ = capacity - 1;
    for (std::uint32_t id = 0; id < hashes_.size(); ++id) {
      std::size_t i = hashes_[id] & mask_;
      while (slots_[i].id != npos) i = (i + 1) & mask_;
      auto const t = term(id);
      slots_[i] = {prefix_of(t), id, static_cast<std::uint32_t>(t.size())};
    }
  }

  std::vector<slot> slots_;
  std::size_t mask_ = 0;
  std::vector<char> arena_;
  std::vector<std::size_t> offsets_{0};
  std::vector<std::uint64_t> hashes_;
};

}  // namespace mgpu::detail
