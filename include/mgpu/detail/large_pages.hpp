// mgpu/detail/large_pages.hpp — large host allocations backed by transparent huge pages.
//
// A fresh 4 KiB page costs a fault the first time it is written: 1.5–6 µs each on the
// development VM, so an 8 MiB array costs ~3.5 ms to touch (2,048 faults), which was a
// fifth of a TF-IDF fit of the kernel docs (40 MB touched in all). An anonymous mapping
// advised with MADV_HUGEPAGE is faulted in 2 MiB at a time: the same 8 MiB take ~1.2 ms
// (`mmap` + `madvise` + one write per 4 KiB, measured on that VM). Allocations of at
// least `large_allocation_bytes` therefore get their own 2 MiB-aligned mapping; smaller
// ones, and every allocation in sanitizer builds (whose shadow memory and interceptors
// expect the heap), stay on the heap. Where the kernel has transparent huge pages off,
// the advice is ignored and the mapping behaves as ordinary memory. Mapped memory is
// zero-filled, so callers that need zeros may skip clearing it (term_table does).
//
// Thread safety: the functions may be called concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace mgpu::detail {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MGPU_DETAIL_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define MGPU_DETAIL_SANITIZED 1
#endif
#endif

/// Whether large allocations are mapped onto huge pages in this build.
#if defined(__linux__) && !defined(MGPU_DETAIL_SANITIZED)
inline constexpr bool large_pages_enabled = true;
#else
inline constexpr bool large_pages_enabled = false;
#endif

inline constexpr std::size_t huge_page_bytes = std::size_t{2} << 20;
/// Allocations from this size up get a mapping of their own.
inline constexpr std::size_t large_allocation_bytes = std::size_t{1} << 20;

/// Whether an allocation of `bytes` is mapped (large_allocate) rather than on the heap.
[[nodiscard]] constexpr bool is_large_allocation(std::size_t bytes) noexcept {
  return large_pages_enabled && bytes >= large_allocation_bytes;
}

[[nodiscard]] constexpr std::size_t mapped_bytes(std::size_t bytes) noexcept {
  return (bytes + huge_page_bytes - 1) / huge_page_bytes * huge_page_bytes;
}

/// `bytes` of zero-filled memory, 2 MiB aligned, advised onto huge pages; nullptr if the
/// system has none to give. Only for is_large_allocation(bytes); free with large_free.
[[nodiscard]] inline void* large_allocate(std::size_t bytes) noexcept {
#if defined(__linux__)
  if (bytes > std::numeric_limits<std::size_t>::max() - 2 * huge_page_bytes) return nullptr;
  std::size_t const size = mapped_bytes(bytes);
  std::size_t const reserved = size + huge_page_bytes;  // room to align
  void* const p = ::mmap(nullptr, reserved, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  auto const first = reinterpret_cast<std::uintptr_t>(p);
  auto const aligned = (first + huge_page_bytes - 1) & ~(std::uintptr_t{huge_page_bytes} - 1);
  if (aligned > first) ::munmap(p, aligned - first);
  std::size_t const tail = first + reserved - (aligned + size);
  if (tail > 0) ::munmap(reinterpret_cast<void*>(aligned + size), tail);
  ::madvise(reinterpret_cast<void*>(aligned), size, MADV_HUGEPAGE);  // advice: failure is harmless
  return reinterpret_cast<void*>(aligned);
#else
  (void)bytes;
  return nullptr;
#endif
}

/// Frees what large_allocate(bytes) returned.
inline void large_free(void* p, std::size_t bytes) noexcept {
#if defined(__linux__)
  if (p != nullptr) ::munmap(p, mapped_bytes(bytes));
#else
  (void)p;
  (void)bytes;
#endif
}

/// `bytes` (> 0) of host memory, uninitialised but for large allocations (zero-filled
/// mappings, 2 MiB aligned), 64-byte aligned otherwise; nullptr on failure. Free with
/// host_free(p, bytes).
[[nodiscard]] inline void* host_allocate(std::size_t bytes) noexcept {
  if (is_large_allocation(bytes)) return large_allocate(bytes);
  return ::operator new(bytes, std::align_val_t{64}, std::nothrow);
}

inline void host_free(void* p, std::size_t bytes) noexcept {
  if (is_large_allocation(bytes)) {
    large_free(p, bytes);
  } else {
    ::operator delete(p, std::align_val_t{64});
  }
}

/// unique_ptr deleter for host_allocate(bytes).
struct host_delete {
  std::size_t bytes = 0;
  void operator()(void* p) const noexcept { host_free(p, bytes); }
};

/// A std::allocator for containers that may grow large (vocabulary-sized arrays): their
/// large blocks are mapped onto huge pages, the rest come from operator new.
template <class T>
struct large_page_allocator {
  using value_type = T;

  large_page_allocator() = default;
  template <class U>
  large_page_allocator(large_page_allocator<U> const&) noexcept {}

  [[nodiscard]] T* allocate(std::size_t n) {
    if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_array_new_length();
    std::size_t const bytes = n * sizeof(T);
    if (is_large_allocation(bytes)) {
      if (void* const p = large_allocate(bytes)) return static_cast<T*>(p);
      throw std::bad_alloc();
    }
    return static_cast<T*>(::operator new(bytes, std::align_val_t{alignof(T)}));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    std::size_t const bytes = n * sizeof(T);
    if (is_large_allocation(bytes)) {
      large_free(p, bytes);
    } else {
      ::operator delete(p, std::align_val_t{alignof(T)});
    }
  }

  template <class U>
  friend bool operator==(large_page_allocator const&, large_page_allocator<U> const&) noexcept {
    return true;
  }
};

}  // namespace mgpu::detail
