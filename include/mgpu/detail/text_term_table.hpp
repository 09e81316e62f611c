// mgpu/detail/text_term_table.hpp — a string dictionary: term -> dense id (0, 1, ...
// in insertion order), for counting tokens.
//
// Open addressing with linear probing over 16-byte slots that hold each term's first
// eight bytes and length, so most probes are decided without touching the term
// bytes; the terms live in one arena, followed by 8 zero bytes so that lookups may
// compare whole 8-byte words. std::unordered_map<std::string, ...> costs an allocation
// per term and a pointer chase per probe, which dominates tokenising. The table stores offsets, not
// pointers, so it may be copied and moved freely. The table grows at a load of 3/4, not
// 1/2: a hit is still one or two probes in one cache line, and the half-size table
// keeps more of a vocabulary's slots in cache (TF-IDF counting ~6-14% faster on the
// kernel docs and WordNet).
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

/// The first `n` (< 8) bytes at `p`, zero-extended, read with one 8-byte load: the
/// caller guarantees that 8 bytes at `p` are readable.
inline std::uint64_t load_padded(char const* p, std::size_t n) noexcept {
  std::uint64_t w = 0;
  std::memcpy(&w, p, 8);
  return n >= 8 ? w : w & ((std::uint64_t{1} << (8 * n)) - 1);
}

/// A fast 64-bit hash of a short byte string: each 8-byte word is folded in with one
/// 64 x 64 -> 128-bit multiply whose halves are xored (the wyhash / mum mixing), so a
/// term of up to 8 bytes costs one multiply and every output bit depends on every input
/// bit. Padded: the 8 bytes after the end of `s` are readable, so the last partial word
/// is one load.
template <bool Padded = false>
inline std::uint64_t hash_term(std::string_view s) noexcept {
  __extension__ using u128 = unsigned __int128;
  auto fold = [](std::uint64_t a, std::uint64_t b) {
    u128 const product = static_cast<u128>(a) * b;
    return static_cast<std::uint64_t>(product) ^ static_cast<std::uint64_t>(product >> 64);
  };
  constexpr std::uint64_t k0 = 0x9E3779B97F4A7C15ull;
  constexpr std::uint64_t k1 = 0xD6E8FEB86659FD93ull;
  std::uint64_t h = k0 ^ s.size();
  char const* p = s.data();
  std::size_t n = s.size();
  while (n > 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, p, 8);
    h = fold(h ^ w, k1);
    p += 8;
    n -= 8;
  }
  std::uint64_t w = 0;
  if constexpr (Padded) {
    w = load_padded(p, n);
  } else {
    std::memcpy(&w, p, n);
  }
  return fold(h ^ w, k1);
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

  /// The id of `term` (whose hash_term is `h`), or npos. Padded: the 8 bytes after
  /// the end of `term` are readable (term() of a table satisfies this).
  template <bool Padded = false>
  [[nodiscard]] std::uint32_t find(std::string_view term, std::uint64_t h) const noexcept {
    std::uint64_t const prefix = prefix_of<Padded>(term);
    auto const length = static_cast<std::uint32_t>(term.size());
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      slot const& s = slots_[i];
      if (s.id == npos) return npos;
      if (matches<Padded>(s, prefix, length, term)) return s.id;
    }
  }

  /// The id of `term`, inserted with the next id if absent. Padded as for find.
  /// @throws index_overflow beyond 2^32 - 2 distinct terms or a term of 4 GiB.
  template <bool Padded = false>
  std::uint32_t intern(std::string_view term, std::uint64_t h) {
    std::uint64_t const prefix = prefix_of<Padded>(term);
    auto const length = static_cast<std::uint32_t>(term.size());
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      slot const& s = slots_[i];
      if (s.id == npos) return insert(i, term, h, prefix);
      if (matches<Padded>(s, prefix, length, term)) return s.id;
    }
  }

  /// Sizes the table for `terms` terms without rehashing.
  void reserve(std::size_t terms) {
    std::size_t capacity = slots_.size();
    while (4 * terms > 3 * capacity) capacity *= 2;
    if (capacity != slots_.size()) rehash(capacity);
    hashes_.reserve(terms);
    offsets_.reserve(terms + 1);
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

  // Out of line: the lookup loop stays small enough to inline into counting.
  [[gnu::noinline]] std::uint32_t insert(std::size_t i, std::string_view term, std::uint64_t h,
                                         std::uint64_t prefix) {
    if (hashes_.size() >= npos - 1 || term.size() >= npos) {
      throw index_overflow(message("a term table holds at most ", npos - 1,
                                   " distinct terms of less than 4 GiB each"));
    }
    auto const id = static_cast<std::uint32_t>(hashes_.size());
    // The arena keeps 8 zero bytes after the last term, so that every term is padded.
    std::size_t const at = offsets_.back();
    arena_.resize(at + term.size() + 8);
    std::memcpy(arena_.data() + at, term.data(), term.size());
    offsets_.push_back(at + term.size());
    hashes_.push_back(h);
    slots_[i] = {prefix, id, static_cast<std::uint32_t>(term.size())};
    if (4 * hashes_.size() > 3 * slots_.size()) rehash(2 * slots_.size());
    return id;
  }

  template <bool Padded = false>
  static std::uint64_t prefix_of(std::string_view term) noexcept {
    if constexpr (Padded) return load_padded(term.data(), term.size());
    std::uint64_t p = 0;
    std::memcpy(&p, term.data(), term.size() < 8 ? term.size() : 8);
    return p;
  }

  template <bool Padded>
  bool matches(slot const& s, std::uint64_t prefix, std::uint32_t length,
               std::string_view term) const noexcept {
    if (s.prefix != prefix || s.length != length) return false;
    if (length <= 8) return true;
    char const* const stored = arena_.data() + offsets_[s.id];
    if constexpr (Padded) {
      // Both sides are padded: compare 8 bytes at a time, the last word masked.
      for (std::size_t k = 8; k < length; k += 8) {
        if (load_padded(stored + k, length - k) != load_padded(term.data() + k, length - k)) return false;
      }
      return true;
    } else {
      return std::memcmp(stored + 8, term.data() + 8, length - 8) == 0;
    }
  }

  void rehash(std::size_t capacity) {
    slots_.assign(capacity, slot{0, npos, 0});
    mask_ = capacity - 1;
    for (std::uint32_t id = 0; id < hashes_.size(); ++id) {
      std::size_t i = hashes_[id] & mask_;
      while (slots_[i].id != npos) i = (i + 1) & mask_;
      auto const t = term(id);
      slots_[i] = {prefix_of<true>(t), id, static_cast<std::uint32_t>(t.size())};
    }
  }

  std::vector<slot> slots_;
  std::size_t mask_ = 0;
  std::vector<char> arena_ = std::vector<char>(8, 0);
  std::vector<std::size_t> offsets_{0};
  std::vector<std::uint64_t> hashes_;
};

/// A term dictionary split by hash into independent term_tables, so that several
/// threads can build it at once (each part by one thread) and a lookup still probes
/// one table. Global ids number the parts' terms consecutively: part p's id i is
/// first(p) + i.
class partitioned_term_table {
 public:
  static constexpr std::uint32_t npos = term_table::npos;

  partitioned_term_table() = default;
  explicit partitioned_term_table(std::size_t parts) : parts_(parts == 0 ? 1 : parts), first_(parts_.size() + 1, 0) {}

  /// The part that holds a term of hash `h` (the top 32 bits, scaled: independent of the
  /// low bits that place the term within its part).
  [[nodiscard]] std::size_t part_of(std::uint64_t h) const noexcept {
    return static_cast<std::size_t>(((h >> 32) * parts_.size()) >> 32);
  }
  [[nodiscard]] std::size_t parts() const noexcept { return parts_.size(); }
  [[nodiscard]] term_table& part(std::size_t p) noexcept { return parts_[p]; }
  [[nodiscard]] term_table const& part(std::size_t p) const noexcept { return parts_[p]; }
  /// The global id of part p's first term (valid after number()).
  [[nodiscard]] std::uint32_t first(std::size_t p) const noexcept { return first_[p]; }
  [[nodiscard]] std::size_t size() const noexcept { return first_.empty() ? 0 : first_.back(); }

  /// Fixes the global ids once every part is built.
  /// @throws index_overflow beyond 2^32 - 2 terms in all.
  void number() {
    std::size_t sum = 0;
    for (std::size_t p = 0; p < parts_.size(); ++p) {
      first_[p] = static_cast<std::uint32_t>(sum);
      sum += parts_[p].size();
      if (sum >= npos) throw index_overflow(message("a term table holds at most ", npos - 1, " distinct terms"));
    }
    first_.back() = static_cast<std::uint32_t>(sum);
  }

  void prefetch(std::uint64_t h) const noexcept { parts_[part_of(h)].prefetch(h); }

  /// The global id of `term` (hash `h`), or npos. Padded as for term_table::find.
  template <bool Padded = false>
  [[nodiscard]] std::uint32_t find(std::string_view term, std::uint64_t h) const noexcept {
    std::size_t const p = part_of(h);
    std::uint32_t const id = parts_[p].find<Padded>(term, h);
    return id == npos ? npos : first_[p] + id;
  }

 private:
  std::vector<term_table> parts_;
  std::vector<std::uint32_t> first_;
};

}  // namespace mgpu::detail
