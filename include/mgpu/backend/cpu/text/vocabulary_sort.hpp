// mgpu/backend/cpu/text/vocabulary_sort.hpp — a fitted vocabulary's terms in byte
// (= code point) order, on the calling thread's OpenMP threads.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace mgpu::detail {

/// The first 8 bytes of `term` (zero-padded) as a big-endian integer: integer order is
/// byte order.
inline std::uint64_t big_endian_head(std::string_view term) noexcept {
  std::uint64_t head = 0;
  std::memcpy(&head, term.data(), std::min<std::size_t>(term.size(), 8));
  if constexpr (std::endian::native == std::endian::little) head = __builtin_bswap64(head);
  return head;
}

/// `ids` in byte order of their terms `term_of(id)` (char_traits<char>: unsigned bytes,
/// which is code point order for UTF-8; terms are not empty). One pass splits the ids by
/// their term's first byte; then every thread takes whole first-byte buckets and sorts
/// each on keys built in its own (cache-resident, reused) buffers: the next 8 bytes as a
/// big-endian integer (zero-padded: terms hold no NUL, so a proper prefix sorts first)
/// by an LSD radix sort, then each run of equal keys by a comparison sort of the
/// remaining bytes. O(n) for the short terms that dominate a vocabulary; no n-sized key
/// arrays (their fresh pages were half the sort's time).
template <class TermOf>
std::vector<std::uint32_t> sorted_terms(std::span<std::uint32_t const> ids, TermOf const& term_of) {
  struct key {
    std::uint64_t head;
    std::uint32_t id;
  };
  std::size_t const n = ids.size();
  auto const count = static_cast<std::int64_t>(n);
  std::vector<unsigned char> first(n);
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < count; ++i) {
    first[static_cast<std::size_t>(i)] = static_cast<unsigned char>(term_of(ids[static_cast<std::size_t>(i)])[0]);
  }
  std::array<std::size_t, 257> bucket{};
  for (unsigned char const b : first) ++bucket[b + 1u];
  std::partial_sum(bucket.begin(), bucket.end(), bucket.begin());
  std::vector<std::uint32_t> order(n);
  {
    auto next = bucket;
    for (std::size_t i = 0; i < n; ++i) order[next[first[i]]++] = ids[i];
  }
#pragma omp parallel
  {
    std::vector<key> keys;
    std::vector<key> scratch;
    std::array<std::array<std::size_t, 256>, 8> counts{};
#pragma omp for schedule(dynamic, 1)
    for (int b = 0; b < 256; ++b) {
      std::size_t const begin = bucket[static_cast<std::size_t>(b)];
      std::size_t const size = bucket[static_cast<std::size_t>(b) + 1] - begin;
      if (size <= 1) continue;
      keys.resize(size);
      scratch.resize(size);
      for (std::size_t i = 0; i < size; ++i) {
        std::uint32_t const id = order[begin + i];
        keys[i] = {big_endian_head(term_of(id).substr(1)), id};
      }
      key* from = keys.data();
      key* to = scratch.data();
      for (auto& c : counts) c.fill(0);
      for (std::size_t i = 0; i < size; ++i) {
        for (unsigned d = 0; d < 8; ++d) ++counts[d][(from[i].head >> (8 * d)) & 0xFF];
      }
      for (unsigned d = 0; d < 8; ++d) {
        auto& c = counts[d];
        // A digit that is the same in every key leaves the order as it is.
        if (std::find(c.begin(), c.end(), size) != c.end()) continue;
        std::size_t sum = 0;
        for (auto& x : c) sum += std::exchange(x, sum);
        for (std::size_t i = 0; i < size; ++i) to[c[(from[i].head >> (8 * d)) & 0xFF]++] = from[i];
        std::swap(from, to);
      }
      for (std::size_t lo = 0; lo < size;) {
        std::size_t hi = lo + 1;
        while (hi < size && from[hi].head == from[lo].head) ++hi;
        if (hi - lo > 1) {
          // Equal keys: both terms have at least 9 bytes.
          std::sort(from + lo, from + hi, [&](key const& x, key const& y) {
            return term_of(x.id).substr(9) < term_of(y.id).substr(9);
          });
        }
        lo = hi;
      }
      for (std::size_t i = 0; i < size; ++i) order[begin + i] = from[i].id;
    }
  }
  return order;
}

}  // namespace mgpu::detail
