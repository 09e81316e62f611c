// mgpu/detail/text_term_table.hpp — the string dictionary that counting tokens goes
// through: term -> dense id, shared by every counting thread.
//
// Open addressing with linear probing over 16-byte slots that hold each term's first
// eight bytes and length, so most probes are decided without touching the term bytes
// (std::unordered_map<std::string, ...> costs an allocation per term and a pointer
// chase per probe, which dominates tokenising). The table holds at most 3/4 of its
// slots: a hit is still one or two probes in one cache line, and the smaller table
// keeps more of a vocabulary's slots in cache.
//
// One table for all threads, not one per thread merged at the end: the merge was a
// tenth of a TF-IDF fit (the kernel docs: 14 ms of ~130), and per-thread tables hold the
// common terms once per thread. Inserts are rare next to lookups (the kernel docs:
// 174 k terms for 3.6 M tokens), so they take a compare-and-swap on the slot while
// lookups are plain (acquire) loads: a slot goes empty -> busy -> id exactly once, and
// its prefix and length are written before the id is published with release order.
// The table never grows while threads use it: an insert beyond the load limit fails
// (returns `full`), the caller finishes its other work, grows the table at a quiescent
// point (`grow`, one thread) and retries.
//
// During a fit a term's bytes live in the inserting thread's term_arena and the table
// keeps, per id, a pointer to them and the term's second 8 bytes (a 9–16 byte term is
// then matched with one access by id instead of two dependent ones); after the fit
// `remap` renumbers the slots to vocabulary columns (pruned terms stay as slots that
// never match, so probe chains stay intact) and lookups compare against the
// vocabulary's term_list instead. Slots live in memory zeroed by all threads (empty is
// 0, a slot holds 1 + its id), huge pages for large tables (detail/large_pages.hpp).
//
// Thread safety: `find` and `intern` may run concurrently with each other; `grow`,
// `remap` and the rest need exclusive access.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>
#include <utility>
#include <vector>

#include "mgpu/core/error.hpp"
#include "mgpu/detail/large_pages.hpp"

namespace mgpu::detail {

/// The first `n` bytes at `p` (all 8 when n >= 8), zero-extended, read with one 8-byte
/// load and no branch: the caller guarantees that 8 bytes at `p` are readable.
inline std::uint64_t load_padded(char const* p, std::size_t n) noexcept {
  std::uint64_t w = 0;
  std::memcpy(&w, p, 8);
  std::uint64_t const keep_all = 0 - static_cast<std::uint64_t>(n >= 8);
  std::uint64_t const mask = (std::uint64_t{1} << ((8 * n) & 63)) - 1;
  return w & (mask | keep_all);
}

/// A fast 64-bit hash of a short byte string: its 8-byte words are folded in with
/// 64 x 64 -> 128-bit multiplies whose halves are xored (the wyhash / mum mixing), so
/// every output bit depends on every input bit. A term of up to 16 bytes (97% of the
/// kernel docs' tokens) is one multiply of its two zero-padded words and no branch that
/// depends on its length. Padded: the 16 bytes from the start of `s` and the 8 after its
/// end are readable, so partial words are single loads.
template <bool Padded = false>
inline std::uint64_t hash_term(std::string_view s) noexcept {
  __extension__ using u128 = unsigned __int128;
  auto fold = [](std::uint64_t a, std::uint64_t b) {
    u128 const product = static_cast<u128>(a) * b;
    return static_cast<std::uint64_t>(product) ^ static_cast<std::uint64_t>(product >> 64);
  };
  constexpr std::uint64_t k0 = 0x9E3779B97F4A7C15ull;
  constexpr std::uint64_t k1 = 0xD6E8FEB86659FD93ull;
  char const* p = s.data();
  std::size_t n = s.size();
  auto partial = [](char const* q, std::size_t m) {  // the first min(m, 8) bytes
    if constexpr (Padded) return load_padded(q, m);
    std::uint64_t w = 0;
    std::memcpy(&w, q, m < 8 ? m : 8);
    return w;
  };
  std::uint64_t h = k0 ^ n;
  if (n > 16) [[unlikely]] {
    do {
      std::uint64_t w = 0;
      std::memcpy(&w, p, 8);
      h = fold(h ^ w, k1);
      p += 8;
      n -= 8;
    } while (n > 16);
  }
  // k1 ^ second is never 0: k1 holds the byte 0xFD, which valid UTF-8 never does.
  std::uint64_t const first = partial(p, n);
  std::uint64_t const second = Padded ? load_padded(p + 8, n > 8 ? n - 8 : 0) : (n > 8 ? partial(p + 8, n - 8) : 0);
  return fold(h ^ first, k1 ^ second);
}

/// What one thread inserting into a term_table owns: the ids it hands out next (a block
/// taken from the table at a time, so that threads do not contend for one counter and
/// do not write the same cache lines of the id -> term array), and the bytes of its
/// terms, in blocks that never move (other threads read them while this one adds more).
/// Each term is preceded by its 4-byte length; 16 bytes from its start and 8 after its
/// end are readable (hash_term<true>).
class term_arena {
 public:
  /// Copies `term` (< 4 GiB; the table checks) and returns where its bytes are.
  char const* store(std::string_view term) {
    std::size_t const need = 4 + term.size() + 16;
    if (need > left_) {
      std::size_t const size = std::max(block_bytes, need);
      blocks_.push_back(std::make_unique<char[]>(size));  // zeroed: padding is defined
      next_ = blocks_.back().get();
      left_ = size;
    }
    auto const length = static_cast<std::uint32_t>(term.size());
    std::memcpy(next_, &length, 4);
    char* const bytes = next_ + 4;
    std::memcpy(bytes, term.data(), term.size());
    // The next term (or the 16 bytes kept free at the block's end) pads this one.
    next_ = bytes + term.size();
    left_ -= 4 + term.size();
    return bytes;
  }

  /// The term whose bytes `store` put at `bytes`.
  static std::string_view term(char const* bytes) noexcept {
    std::uint32_t length = 0;
    std::memcpy(&length, bytes - 4, 4);
    return {bytes, length};
  }

 private:
  friend class term_table;
  static constexpr std::size_t block_bytes = std::size_t{256} << 10;
  std::vector<std::unique_ptr<char[]>> blocks_;
  char* next_ = nullptr;
  std::size_t left_ = 0;
  std::uint32_t next_id_ = 0;  // ids [next_id_, end_id_) are this thread's to hand out
  std::uint32_t end_id_ = 0;
};

class term_table {
 public:
  /// find: absent; intern: the table is at its load limit (grow it and retry).
  static constexpr std::uint32_t npos = 0xFFFFFFFFu;
  static constexpr std::uint32_t full = npos;
  /// At most this many ids (0 .. max_terms - 1).
  static constexpr std::uint32_t max_terms = 0xFFFFFFFBu;
  /// Ids a thread takes at a time.
  static constexpr std::uint32_t id_block = 64;

  /// A table for `terms` terms before it needs to grow.
  explicit term_table(std::size_t terms = 48) { resize_slots(slots_for(terms)); }
  /// A moved-from table is empty with no slots: only assignment and destruction apply.
  term_table(term_table&& other) noexcept { swap(other); }
  term_table& operator=(term_table&& other) noexcept {
    term_table(std::move(other)).swap(*this);
    return *this;
  }
  term_table(term_table const& other)
      : storage_(allocate(other.capacity_)), slots_(aligned(storage_.get())), capacity_(other.capacity_),
        mask_(other.mask_), limit_(other.limit_), taken_(other.taken_), terms_(other.terms_),
        second_(other.second_) {
    std::memcpy(slots_, other.slots_, capacity_ * sizeof(slot));
  }
  term_table& operator=(term_table const& other) {
    if (this != &other) term_table(other).swap(*this);
    return *this;
  }
  void swap(term_table& other) noexcept {
    std::swap(storage_, other.storage_);
    std::swap(slots_, other.slots_);
    std::swap(capacity_, other.capacity_);
    std::swap(mask_, other.mask_);
    std::swap(limit_, other.limit_);
    std::swap(taken_, other.taken_);
    std::swap(terms_, other.terms_);
    std::swap(second_, other.second_);
  }

  /// One more than the largest id handed out so far (exact at quiescent points). Ids
  /// are taken in blocks, so some ids below may hold no term (`holds`); a single
  /// thread's ids are 0, 1, 2, ... in insertion order.
  [[nodiscard]] std::size_t size() const noexcept { return __atomic_load_n(&taken_, __ATOMIC_RELAXED); }
  /// Ids the table hands out before `intern` returns `full` (3/4 of its slots).
  [[nodiscard]] std::size_t limit() const noexcept { return limit_; }

  /// Whether id `id` (< size()) holds a term, before `remap`. At quiescent points.
  [[nodiscard]] bool holds(std::uint32_t id) const noexcept { return terms_[id] != nullptr; }
  /// Term `id`'s bytes during a fit (before `remap`), padded as hash_term<true> needs.
  [[nodiscard]] std::string_view term(std::uint32_t id) const noexcept { return term_arena::term(terms_[id]); }

  /// Starts loading the slot where a lookup of hash `h` begins: counting prefetches a
  /// few terms ahead, because at corpus scale many first probes miss cache.
  void prefetch(std::uint64_t h) const noexcept { __builtin_prefetch(slots_ + (h & mask_)); }

  /// The id of `term` (whose hash_term is `h`), or npos; `terms(id)` gives the bytes of
  /// a stored id (the vocabulary after `remap`, else stored_terms()). The 8 bytes after
  /// `term` are readable.
  template <class Terms>
  [[nodiscard]] std::uint32_t find(std::string_view term, std::uint64_t h, Terms const& terms) const noexcept {
    std::uint64_t const prefix = load_padded(term.data(), term.size());
    auto const length = static_cast<std::uint32_t>(term.size());
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      slot const& s = slots_[i];
      std::uint32_t v = __atomic_load_n(&s.id, __ATOMIC_ACQUIRE);
      while (v == busy) v = wait(s);
      if (v == empty) return npos;
      if (v != dropped && matches(s, prefix, length, term, [&] { return terms(v - 1).data(); })) return v - 1;
    }
  }

  /// A lookup of this table's own terms (before `remap`).
  [[nodiscard]] auto stored_terms() const noexcept {
    return [this](std::uint32_t id) { return term(id); };
  }

  /// The id of `term` (hash `h`), inserted with the next id if absent, its bytes copied
  /// into `arena`; `full` if it is absent and the table is at its limit. May run
  /// concurrently with find and intern. The 8 bytes after `term` are readable.
  /// @throws index_overflow for a term of 4 GiB or more.
  std::uint32_t intern(std::string_view term, std::uint64_t h, term_arena& arena) {
    std::uint64_t const prefix = load_padded(term.data(), term.size());
    auto const length = static_cast<std::uint32_t>(term.size());
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      slot& s = slots_[i];
      for (;;) {  // until slot i holds a term (or the table is full)
        std::uint32_t v = __atomic_load_n(&s.id, __ATOMIC_ACQUIRE);
        while (v == busy) v = wait(s);
        if (v == empty) {
          if (!__atomic_compare_exchange_n(&s.id, &v, busy, false, __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE)) continue;
          return insert(s, term, prefix, arena);
        }
        if (matches_stored(s, prefix, length, term, v - 1)) return v - 1;
        break;
      }
    }
  }

  /// Rebuilds the slots for at least `terms` ids (no-op if they fit). Exclusive.
  void grow(std::size_t terms) {
    if (terms <= limit_) return;
    std::size_t const count = size();
    resize_slots(slots_for(terms));
    for (std::uint32_t id = 0; id < count; ++id) {
      if (!holds(id)) continue;
      std::string_view const t = term(id);
      std::size_t i = hash_term<true>(t) & mask_;
      while (slots_[i].id != empty) i = (i + 1) & mask_;
      slots_[i] = {load_padded(t.data(), t.size()), id + 1, static_cast<std::uint32_t>(t.size())};
    }
  }

  /// Renumbers every slot by `column[id]` (npos: the term is dropped and never matches
  /// again) and forgets the fit's term pointers: lookups then compare against the terms
  /// of the new numbering (find's `terms`). Exclusive.
  void remap(std::vector<std::uint32_t> const& column) {
    auto const n = static_cast<std::int64_t>(capacity_);
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < n; ++i) {
      auto& s = slots_[static_cast<std::size_t>(i)];
      if (s.id != empty) s.id = column[s.id - 1] == npos ? dropped : column[s.id - 1] + 1;
    }
    terms_ = {};
    second_ = {};
  }

 private:
  // A slot's id field holds 1 + the id, or one of these.
  static constexpr std::uint32_t empty = 0;              // all-zero memory is an empty table
  static constexpr std::uint32_t busy = 0xFFFFFFFFu;     // being written by intern
  static constexpr std::uint32_t dropped = 0xFFFFFFFEu;  // a term remap dropped

  // Tokens never contain NUL (it is not a word character), so the zero-padded first
  // eight bytes plus the length identify a term of up to eight bytes: most lookups
  // touch one slot and no term bytes.
  struct slot {
    std::uint64_t prefix;
    std::uint32_t id;
    std::uint32_t length;
  };

  // Zeroed memory for `capacity` slots, 64-byte aligned by aligned(). A large table is
  // mapped (huge pages where the kernel gives them, zero-filled) and its pages are
  // written once by all OpenMP threads at once: faulting fresh pages in is the bulk of
  // the cost, and a page first read as the shared zero page faults again when written.
  static std::unique_ptr<void, host_delete> allocate(std::size_t capacity) {
    std::size_t const bytes = capacity * sizeof(slot) + 64;
    void* const p = host_allocate(bytes);
    if (p == nullptr) throw std::bad_alloc();
    if (is_large_allocation(bytes)) {
      constexpr std::size_t page = 4096;
      auto const pages = static_cast<std::int64_t>((bytes + page - 1) / page);
#pragma omp parallel for schedule(static)
      for (std::int64_t i = 0; i < pages; ++i) static_cast<char*>(p)[static_cast<std::size_t>(i) * page] = 0;
    } else {
      std::memset(p, 0, bytes);
    }
    return std::unique_ptr<void, host_delete>(p, host_delete{bytes});
  }
  static slot* aligned(void* p) noexcept {
    auto const address = (reinterpret_cast<std::uintptr_t>(p) + 63) & ~std::uintptr_t{63};
    return reinterpret_cast<slot*>(address);
  }

  static std::size_t slots_for(std::size_t terms) {
    std::size_t capacity = 256;  // a limit of three id blocks
    while (4 * terms > 3 * capacity) capacity *= 2;
    return capacity;
  }

  void resize_slots(std::size_t capacity) {
    storage_ = allocate(capacity);
    slots_ = aligned(storage_.get());
    capacity_ = capacity;
    mask_ = capacity - 1;
    limit_ = std::min<std::size_t>(3 * (capacity / 4), max_terms);
    terms_.resize(limit_);
    second_.resize(limit_);
  }

  static std::uint32_t wait(slot const& s) noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    return __atomic_load_n(&s.id, __ATOMIC_ACQUIRE);
  }

  // Slot s is ours (busy): give it the next id, or give it back if the table is full.
  [[gnu::noinline]] std::uint32_t insert(slot& s, std::string_view term, std::uint64_t prefix,
                                         term_arena& arena) {
    if (term.size() >= npos) {
      __atomic_store_n(&s.id, empty, __ATOMIC_RELEASE);
      throw index_overflow("a term table holds terms of less than 4 GiB");
    }
    if (arena.next_id_ == arena.end_id_) {
      auto const first = __atomic_fetch_add(&taken_, id_block, __ATOMIC_RELAXED);
      if (first + id_block > limit_) {
        // Later blocks fail too until grow(), so the ids taken stay below the limit.
        __atomic_fetch_sub(&taken_, id_block, __ATOMIC_RELAXED);
        __atomic_store_n(&s.id, empty, __ATOMIC_RELEASE);
        return full;
      }
      arena.next_id_ = first;
      arena.end_id_ = first + id_block;
    }
    std::uint32_t const id = arena.next_id_++;
    terms_[id] = arena.store(term);
    second_[id] = term.size() > 8 ? load_padded(term.data() + 8, term.size() - 8) : 0;
    s.prefix = prefix;
    s.length = static_cast<std::uint32_t>(term.size());
    __atomic_store_n(&s.id, id + 1, __ATOMIC_RELEASE);
    return id;
  }

  // matches() against this table's own term `id`: a term of 9 to 16 bytes is decided by
  // its second word, kept by id, which is one memory access where the term's bytes are
  // two dependent ones (id -> pointer -> bytes).
  bool matches_stored(slot const& s, std::uint64_t prefix, std::uint32_t length, std::string_view term,
                      std::uint32_t id) const noexcept {
    if (((s.prefix ^ prefix) | (s.length ^ length)) != 0) return false;
    if (length <= 8) [[likely]] return true;
    if (length <= 16) return second_[id] == load_padded(term.data() + 8, length - 8);
    return matches(s, prefix, length, term, [&] { return terms_[id]; });
  }

  // `stored()` gives the stored term's bytes, read only when the first 8 match.
  template <class Stored>
  static bool matches(slot const& s, std::uint64_t prefix, std::uint32_t length, std::string_view term,
                      Stored const& stored) noexcept {
    if (((s.prefix ^ prefix) | (s.length ^ length)) != 0) return false;
    if (length <= 8) [[likely]] return true;
    char const* const bytes = stored();
    // 8 bytes at a time, the last word ending at the term's end (overlapping the one
    // before): no read goes past either term, for the bytes after a stored term may be
    // another thread's next term, being written.
    auto const word = [](char const* p) {
      std::uint64_t w = 0;
      std::memcpy(&w, p, 8);
      return w;
    };
    for (std::size_t k = 8; k + 8 < length; k += 8) {
      if (word(bytes + k) != word(term.data() + k)) return false;
    }
    return word(bytes + length - 8) == word(term.data() + length - 8);
  }

  std::unique_ptr<void, host_delete> storage_;
  slot* slots_ = nullptr;
  std::size_t capacity_ = 0;
  std::size_t mask_ = 0;
  std::size_t limit_ = 0;
  std::uint32_t taken_ = 0;         // ids handed out to threads' blocks
  // id -> bytes in an arena (null: none), and bytes 8 .. 15 zero-padded, during a fit
  std::vector<char const*, large_page_allocator<char const*>> terms_;
  std::vector<std::uint64_t, large_page_allocator<std::uint64_t>> second_;
};

}  // namespace mgpu::detail
