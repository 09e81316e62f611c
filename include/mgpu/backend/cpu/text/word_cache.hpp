// mgpu/backend/cpu/text/word_cache.hpp — one counting thread's memory of the term ids of
// a word's character n-grams (analyzer char_wb), so that a word met again costs one
// lookup instead of one per n-gram: a char_wb n-gram depends on its word alone, and most
// words of a text are repeats of a few thousand.
//
// Open addressing over slots holding each word's hash, its bytes (in an arena) and its
// ids (in another); the slots double from 2^10 up to 2^18, half used at most; once that
// or the arenas' limits are reached, no more words are added (the words met first are
// mostly the frequent ones). Ids are whatever counting stores: table ids in a
// fit (stable until the vocabulary is renumbered, after counting), columns or npos in a
// transform.
//
// Thread safety: one cache per thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace mgpu::detail {

class word_cache {
 public:
  word_cache() : slots_(first_capacity) {}

  /// Whether `word` (hash `h`) is known; if so `ids` is set to its ids (valid until the
  /// next insert).
  [[nodiscard]] bool find(std::string_view word, std::uint64_t h, std::span<std::uint32_t const>& ids) const noexcept {
    std::size_t const mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      slot const& s = slots_[i];
      if (s.length == 0) return false;
      if (s.hash == h && s.length == word.size() && std::memcmp(bytes_.data() + s.bytes, word.data(), word.size()) == 0) {
        ids = {ids_.data() + s.ids, s.count};
        return true;
      }
    }
  }

  /// Remembers `ids` for `word` (not empty; hash `h`, not known yet), unless the cache
  /// is full. O(word + ids).
  void insert(std::string_view word, std::uint64_t h, std::span<std::uint32_t const> ids) {
    if (bytes_.size() + word.size() > max_bytes || ids_.size() + ids.size() > max_ids) return;
    if (words_ >= slots_.size() / 2) {
      if (slots_.size() == max_capacity) return;
      std::vector<slot> old(2 * slots_.size());
      old.swap(slots_);
      for (slot const& s : old) {
        if (s.length != 0) place(s);
      }
    }
    place({h, static_cast<std::uint32_t>(bytes_.size()), static_cast<std::uint32_t>(word.size()),
           static_cast<std::uint32_t>(ids_.size()), static_cast<std::uint32_t>(ids.size())});
    bytes_.insert(bytes_.end(), word.begin(), word.end());
    ids_.insert(ids_.end(), ids.begin(), ids.end());
    ++words_;
  }

 private:
  static constexpr std::size_t first_capacity = std::size_t{1} << 10;
  static constexpr std::size_t max_capacity = std::size_t{1} << 18;
  static constexpr std::size_t max_bytes = std::size_t{4} << 20;
  static constexpr std::size_t max_ids = std::size_t{4} << 20;

  struct slot {
    std::uint64_t hash = 0;
    std::uint32_t bytes = 0;
    std::uint32_t length = 0;  // 0: empty (words are never empty)
    std::uint32_t ids = 0;
    std::uint32_t count = 0;
  };

  void place(slot const& s) noexcept {
    std::size_t const mask = slots_.size() - 1;
    std::size_t i = s.hash & mask;
    while (slots_[i].length != 0) i = (i + 1) & mask;
    slots_[i] = s;
  }

  std::vector<slot> slots_;
  std::vector<char> bytes_;
  std::vector<std::uint32_t> ids_;
  std::size_t words_ = 0;
};

}  // namespace mgpu::detail
