// mgpu/backend/cpu/text/entry_array.hpp — the memory of counting: per-document
// (term, count) entries, appended by each counting thread, and the per-document records
// that find them.
//
// A document's entries are packed (entry_list): its n term ids, id_bytes each, then its n
// counts, count_bytes each, little-endian, the widths the fewest bytes (1 to 4) that hold
// the document's largest id and count. Vocabularies below 2^24 terms and counts below
// 256 take 4 bytes per entry instead of 8, which halves both the memory the entries hold
// until the matrix is assembled and the fresh pages counting has to fault in.
//
// A growable_array grows without touching the capacity it reserves ahead and without
// copying what it holds: a std::vector's doubling copies touch twice the final size, and
// faulting fresh pages in is a large part of counting a corpus. Large arrays are
// mappings onto transparent huge pages (detail/large_pages.hpp) that grow by mremap;
// small ones grow by realloc. shrink_to_fit gives back the reserved tail (a mapping is
// then its size rounded up to 2 MiB), and the destructor everything, at once (munmap).
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <type_traits>
#include <utility>

#include "mgpu/detail/large_pages.hpp"

namespace mgpu::detail {

/// A term (an id or a column) and its count in one document.
struct term_count {
  std::uint32_t term;
  std::uint32_t count;
};

/// A growable array of trivially copyable T (file comment). Movable, not copyable.
template <class T>
class growable_array {
  static_assert(std::is_trivially_copyable_v<T> && alignof(T) <= alignof(std::max_align_t));

 public:
  growable_array() = default;
  growable_array(growable_array const&) = delete;
  growable_array& operator=(growable_array const&) = delete;
  growable_array(growable_array&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)),
        capacity_(std::exchange(other.capacity_, 0)) {}
  growable_array& operator=(growable_array&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
      capacity_ = std::exchange(other.capacity_, 0);
    }
    return *this;
  }
  ~growable_array() { release(); }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] T* data() noexcept { return data_; }
  [[nodiscard]] T const* data() const noexcept { return data_; }
  T& operator[](std::size_t i) noexcept { return data_[i]; }
  T const& operator[](std::size_t i) const noexcept { return data_[i]; }

  /// Room for `n` elements in all; the pages beyond size() are not touched.
  /// @throws std::bad_alloc.
  void reserve(std::size_t n) {
    if (n <= capacity_) return;
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_alloc();
    std::size_t const bytes = n * sizeof(T);
    std::size_t const old_bytes = capacity_ * sizeof(T);
    void* grown = nullptr;
    if (!is_large_allocation(bytes)) {
      grown = std::realloc(data_, bytes);  // the old block is small too
    } else if (is_large_allocation(old_bytes)) {
#if defined(__linux__)
      grown = ::mremap(data_, mapped_bytes(old_bytes), mapped_bytes(bytes), MREMAP_MAYMOVE);
      if (grown == MAP_FAILED) grown = nullptr;
#endif
    } else {
      grown = large_allocate(bytes);
      if (grown != nullptr) {
        if (size_ > 0) std::memcpy(grown, data_, size_ * sizeof(T));
        std::free(data_);
      }
    }
    if (grown == nullptr) throw std::bad_alloc();
    data_ = static_cast<T*>(grown);
    capacity_ = n;
  }

  /// Appends `n` uninitialised elements and returns the first. @throws std::bad_alloc.
  T* extend(std::size_t n) {
    if (size_ + n > capacity_) reserve(std::max(size_ + n, 2 * capacity_));
    return data_ + std::exchange(size_, size_ + n);
  }

  /// size() elements, uninitialised beyond the old size. @throws std::bad_alloc.
  void resize(std::size_t n) {
    if (n > capacity_) reserve(std::max(n, 2 * capacity_));
    size_ = n;
  }

  /// Gives back the capacity beyond size(): a mapping shrinks in place (to whole 2 MiB
  /// pages), or moves to the heap when what is left is small. Never throws: when the
  /// heap has no room for a small copy, the capacity stays.
  void shrink_to_fit() noexcept {
    if (size_ == capacity_) return;
    std::size_t const bytes = size_ * sizeof(T);
    std::size_t const old_bytes = capacity_ * sizeof(T);
    if (size_ == 0) {
      release();
      data_ = nullptr;
      capacity_ = 0;
      return;
    }
    if (is_large_allocation(old_bytes)) {
      if (is_large_allocation(bytes)) {
#if defined(__linux__)
        if (mapped_bytes(bytes) < mapped_bytes(old_bytes)) {
          // Shrinking a mapping never moves it.
          if (::mremap(data_, mapped_bytes(old_bytes), mapped_bytes(bytes), 0) == MAP_FAILED) return;
        }
#endif
      } else {
        void* const small = std::malloc(bytes);
        if (small == nullptr) return;
        std::memcpy(small, data_, bytes);
        large_free(data_, old_bytes);
        data_ = static_cast<T*>(small);
      }
    } else {
      void* const smaller = std::realloc(data_, bytes);
      if (smaller == nullptr) return;
      data_ = static_cast<T*>(smaller);
    }
    capacity_ = size_;
  }

 private:
  void release() noexcept {
    std::size_t const bytes = capacity_ * sizeof(T);
    if (is_large_allocation(bytes)) {
      large_free(data_, bytes);
    } else {
      std::free(data_);
    }
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

/// A counting thread's packed entries (file comment), documents end to end.
using entry_list = growable_array<unsigned char>;

/// Where a document's entries are: `length` entries packed at byte `begin` of list
/// `worker` of its entry generation (corpus_counter::generation).
struct document_entries {
  std::size_t begin = 0;
  std::uint32_t length = 0;
  std::uint16_t worker = 0;
  std::uint8_t id_bytes = 1;
  std::uint8_t count_bytes = 1;
};

/// The fewest bytes (1 to 4) that hold `v`.
[[nodiscard]] constexpr unsigned packed_bytes(std::uint32_t v) noexcept {
  return v < (1u << 8) ? 1u : v < (1u << 16) ? 2u : v < (1u << 24) ? 3u : 4u;
}

/// Bytes of `n` packed entries of the given widths.
[[nodiscard]] constexpr std::size_t packed_size(std::size_t n, unsigned id_bytes, unsigned count_bytes) noexcept {
  return n * (id_bytes + count_bytes);
}

/// Writes values[0, n) at `out`, `width` bytes each (little-endian). With width 3 the
/// byte after the last value is overwritten too (it must be writable: the counts follow
/// the ids).
inline void pack_values(unsigned char* out, std::uint32_t const* values, std::size_t n, unsigned width) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    switch (width) {
      case 1:
        for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<unsigned char>(values[i]);
        return;
      case 2:
        for (std::size_t i = 0; i < n; ++i) {
          auto const v = static_cast<std::uint16_t>(values[i]);
          std::memcpy(out + 2 * i, &v, 2);
        }
        return;
      case 3:
        for (std::size_t i = 0; i < n; ++i) std::memcpy(out + 3 * i, values + i, 4);
        return;
      default:
        std::memcpy(out, values, 4 * n);
        return;
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      for (unsigned b = 0; b < width; ++b) out[width * i + b] = static_cast<unsigned char>(values[i] >> (8 * b));
    }
  }
}

/// Value i of those pack_values wrote with `width`. With width 3 it reads the byte after
/// the value too (the counts follow the ids; a count is never read with width 3 unless
/// its byte after is in the list: see unpack_count).
[[nodiscard]] inline std::uint32_t unpack_value(unsigned char const* in, std::size_t i, unsigned width) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    switch (width) {
      case 1: return in[i];
      case 2: {
        std::uint16_t v;
        std::memcpy(&v, in + 2 * i, 2);
        return v;
      }
      case 3: {
        std::uint32_t v;
        std::memcpy(&v, in + 3 * i, 4);
        return v & 0xFFFFFFu;
      }
      default: {
        std::uint32_t v;
        std::memcpy(&v, in + 4 * i, 4);
        return v;
      }
    }
  } else {
    std::uint32_t v = 0;
    for (unsigned b = 0; b < width; ++b) v |= std::uint32_t{in[width * i + b]} << (8 * b);
    return v;
  }
}

/// Entry p of a document's packed entries (`row` = its first byte): its term ...
[[nodiscard]] inline std::uint32_t packed_term(unsigned char const* row, document_entries const& r, std::size_t p) noexcept {
  return unpack_value(row, p, r.id_bytes);
}
/// ... and its count (counts are packed with widths 1, 2 or 4 only).
[[nodiscard]] inline std::uint32_t packed_count(unsigned char const* row, document_entries const& r, std::size_t p) noexcept {
  return unpack_value(row + std::size_t{r.length} * r.id_bytes, p, r.count_bytes);
}

}  // namespace mgpu::detail
