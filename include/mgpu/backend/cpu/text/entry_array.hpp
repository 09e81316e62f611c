// mgpu/backend/cpu/text/entry_array.hpp — the memory of counting: per-document
// (term, count) entries, appended by each counting thread.
//
// An entry_array grows without touching the capacity it reserves ahead and without
// copying what it holds: a std::vector's doubling copies touch twice the final size, and
// faulting fresh pages in is a large part of counting a corpus. Large arrays are
// mappings onto transparent huge pages (detail/large_pages.hpp) that grow by mremap;
// small ones grow by realloc.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <utility>

#include "mgpu/detail/large_pages.hpp"

namespace mgpu::detail {

/// A term (an id or a column) and its count in one document.
struct term_count {
  std::uint32_t term;
  std::uint32_t count;
};

/// A growable array of term_count (file comment). Not copyable.
class entry_array {
 public:
  entry_array() = default;
  entry_array(entry_array const&) = delete;
  entry_array& operator=(entry_array const&) = delete;
  ~entry_array() { release(); }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] term_count* data() noexcept { return data_; }
  [[nodiscard]] term_count const* data() const noexcept { return data_; }

  /// Room for `n` entries in all; the pages beyond size() are not touched.
  /// @throws std::bad_alloc.
  void reserve(std::size_t n) {
    if (n <= capacity_) return;
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(term_count)) throw std::bad_alloc();
    std::size_t const bytes = n * sizeof(term_count);
    std::size_t const old_bytes = capacity_ * sizeof(term_count);
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
        if (size_ > 0) std::memcpy(grown, data_, size_ * sizeof(term_count));
        std::free(data_);
      }
    }
    if (grown == nullptr) throw std::bad_alloc();
    data_ = static_cast<term_count*>(grown);
    capacity_ = n;
  }

  /// Appends `n` uninitialised entries and returns the first. @throws std::bad_alloc.
  term_count* extend(std::size_t n) {
    if (size_ + n > capacity_) reserve(std::max(size_ + n, 2 * capacity_));
    return data_ + std::exchange(size_, size_ + n);
  }

 private:
  void release() noexcept {
    std::size_t const bytes = capacity_ * sizeof(term_count);
    if (is_large_allocation(bytes)) {
      large_free(data_, bytes);
    } else {
      std::free(data_);
    }
  }

  term_count* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

/// Where a document's (term, count) entries are: in worker `worker`'s entry_array.
struct document_entries {
  std::uint32_t worker = 0;
  std::uint32_t length = 0;
  std::size_t begin = 0;
};

}  // namespace mgpu::detail
