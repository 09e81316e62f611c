// mgpu/backend/cpu/host_memory_resource.hpp — where host buffers (buffer<T, cpu>) get
// their storage, and how much more the process can get.
//
// `host_memory_resource` is the narrow interface core/buffer.hpp allocates through:
// allocate / deallocate by size, 64-byte alignment, nullptr (never an exception) on
// failure, and the free-memory figure an out_of_memory error reports. The policy behind
// it is the CPU backend's:
//   - allocations of detail::large_allocation_bytes (1 MiB) and more get a mapping of
//     their own, 2 MiB aligned and advised onto transparent huge pages
//     (detail/large_pages.hpp: one fault per 2 MiB instead of one per 4 KiB when the
//     memory is first written); such memory is zero-filled;
//   - smaller ones, and every allocation of a sanitizer build, come from operator new
//     with 64-byte alignment, uninitialised;
//   - available_bytes() is detail::host_free_bytes() (detail/host_memory.hpp:
//     MemAvailable, the cgroup limits' headroom and RLIMIT_AS).
// The text stages use the same large-page machinery for their growing arrays
// (detail::large_page_allocator, detail::host_allocate).
//
// Thread safety: every function may be called concurrently.
#pragma once

#include <cstddef>

#include "mgpu/detail/host_memory.hpp"  // host_free_bytes
#include "mgpu/detail/large_pages.hpp"  // host_allocate, host_free

namespace mgpu::backend::cpu {

/// The host memory resource (see the file comment). Stateless: all members are static.
struct host_memory_resource {
  /// Alignment of every block allocate returns, in bytes.
  static constexpr std::size_t alignment = 64;

  /// `bytes` (> 0) of host memory, `alignment`-aligned, uninitialised (zero-filled when
  /// large); nullptr when the system has none to give. Free with deallocate(p, bytes).
  [[nodiscard]] static void* allocate(std::size_t bytes) noexcept { return ::mgpu::detail::host_allocate(bytes); }

  /// Frees what allocate(bytes) returned (nullptr: nothing).
  static void deallocate(void* p, std::size_t bytes) noexcept {
    if (p != nullptr) ::mgpu::detail::host_free(p, bytes);
  }

  /// Bytes of host memory this process can still allocate; 0 if unknown. Reads a few
  /// /proc and /sys files: for error messages and checks before large allocations.
  [[nodiscard]] static std::size_t available_bytes() noexcept { return ::mgpu::detail::host_free_bytes(); }
};

}  // namespace mgpu::backend::cpu
