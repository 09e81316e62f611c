// mgpu/detail/host_memory.hpp — how much host memory this process can still allocate,
// and a check to run before an allocation whose size comes from untrusted input.
//
// "Available" is the smallest of the limits that can stop an allocation (RELIABILITY.md
// rows 11 and 23):
//   - the kernel's MemAvailable (/proc/meminfo): free memory plus what it can reclaim;
//   - the memory cgroup of the process, at every level up to the root of the mounted
//     hierarchy: cgroup v2 memory.max − memory.current, cgroup v1 memory.limit_in_bytes −
//     memory.usage_in_bytes, where the usage counts reclaimable inactive file pages as
//     free (memory.stat inactive_file), as MemAvailable does;
//   - the address-space limit (RLIMIT_AS, `ulimit -v`) less the process's current
//     virtual size (/proc/self/statm).
// Mount points come from /proc/self/mountinfo, so hybrid (v1 + v2) and namespaced
// hierarchies are found where they are mounted. Off Linux, or where none of these can
// be read, the physical pages sysconf reports free are used.
//
// Reading costs a few small /proc and /sys files (tens of microseconds): meant for checks
// before large allocations and for error messages, not for hot loops.
// Thread safety: the functions keep no state and may run concurrently.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>

#include <sys/resource.h>
#include <unistd.h>

#include "mgpu/core/error.hpp"

namespace mgpu::detail {

namespace host_memory {

inline constexpr std::uint64_t unknown = std::numeric_limits<std::uint64_t>::max();

/// A file opened for reading, closed on every path out (exceptions included).
class input_file {
 public:
  explicit input_file(char const* path) noexcept : file_(std::fopen(path, "re")) {}
  input_file(input_file const&) = delete;
  input_file& operator=(input_file const&) = delete;
  ~input_file() {
    if (file_ != nullptr) std::fclose(file_);
  }
  [[nodiscard]] std::FILE* get() const noexcept { return file_; }

 private:
  std::FILE* file_;
};

/// The first whitespace-separated number in the file at `path`; `unknown` if the file
/// cannot be read or starts with "max" (cgroup v2's "no limit").
inline std::uint64_t read_number(std::string const& path) noexcept {
  input_file const f(path.c_str());
  if (f.get() == nullptr) return unknown;
  unsigned long long v = 0;
  int const got = std::fscanf(f.get(), "%llu", &v);
  return got == 1 ? static_cast<std::uint64_t>(v) : unknown;
}

/// The value of the line `key value` in a `key value` file (memory.stat, /proc/meminfo
/// with `key` ending in ':'); `unknown` if absent.
inline std::uint64_t read_keyed(std::string const& path, char const* key) noexcept {
  input_file const f(path.c_str());
  if (f.get() == nullptr) return unknown;
  char line[256];
  std::uint64_t out = unknown;
  std::size_t const key_length = std::strlen(key);
  while (std::fgets(line, sizeof line, f.get()) != nullptr) {
    if (std::strncmp(line, key, key_length) == 0 && (line[key_length] == ' ' || line[key_length] == '\t')) {
      unsigned long long v = 0;
      if (std::sscanf(line + key_length, "%llu", &v) == 1) out = static_cast<std::uint64_t>(v);
      break;
    }
  }
  return out;
}

/// limit − (usage − reclaimable), or `unknown` when there is no limit at this level.
inline std::uint64_t headroom(std::uint64_t limit, std::uint64_t usage, std::uint64_t reclaimable) noexcept {
  // cgroup v1 writes "no limit" as the largest page-aligned int64.
  if (limit == unknown || usage == unknown || limit >= (std::uint64_t{1} << 62)) return unknown;
  if (reclaimable != unknown) usage -= std::min(usage, reclaimable);
  return limit > usage ? limit - usage : 0;
}

/// The smallest headroom of the cgroup directory `dir` and its ancestors up to `mount`.
inline std::uint64_t cgroup_headroom(std::string dir, std::string const& mount, bool v2) {
  std::uint64_t least = unknown;
  while (true) {
    std::uint64_t const room =
        v2 ? headroom(read_number(dir + "/memory.max"), read_number(dir + "/memory.current"),
                      read_keyed(dir + "/memory.stat", "inactive_file"))
           : headroom(read_number(dir + "/memory.limit_in_bytes"), read_number(dir + "/memory.usage_in_bytes"),
                      read_keyed(dir + "/memory.stat", "total_inactive_file"));
    least = std::min(least, room);
    if (dir.size() <= mount.size()) break;
    dir.resize(dir.find_last_of('/'));
  }
  return least;
}

/// The process's cgroup path in the v2 hierarchy (id 0, no controller list) or in the
/// v1 hierarchy whose controller list holds "memory"; empty if none.
inline std::string cgroup_path(bool v2) {
  input_file const f("/proc/self/cgroup");
  if (f.get() == nullptr) return {};
  std::string found;
  char line[4096 + 64];
  while (found.empty() && std::fgets(line, sizeof line, f.get()) != nullptr) {
    char* first = std::strchr(line, ':');
    char* second = first != nullptr ? std::strchr(first + 1, ':') : nullptr;
    if (second == nullptr) continue;
    std::string const controllers(first + 1, second);
    bool const match = v2 ? controllers.empty() && std::strncmp(line, "0:", 2) == 0
                          : ("," + controllers + ",").find(",memory,") != std::string::npos;
    if (!match) continue;
    found.assign(second + 1);
    while (!found.empty() && (found.back() == '\n' || found.back() == '/')) found.pop_back();
    if (found.empty()) found = "/";
  }
  return found;
}

/// The headroom of every mounted memory cgroup hierarchy this process belongs to.
inline std::uint64_t cgroups_headroom() {
  input_file const f("/proc/self/mountinfo");
  if (f.get() == nullptr) return unknown;
  std::uint64_t least = unknown;
  char line[4096 * 2];
  while (std::fgets(line, sizeof line, f.get()) != nullptr) {
    // ID parent major:minor root mount-point options [optional...] - fstype source super-options
    char root[4096], mount[4096], fstype[64], super[1024];
    char const* dash = std::strstr(line, " - ");
    if (dash == nullptr ||
        std::sscanf(line, "%*s %*s %*s %4095s %4095s", root, mount) != 2 ||
        std::sscanf(dash + 3, "%63s %*s %1023s", fstype, super) != 2) {
      continue;
    }
    bool const v2 = std::strcmp(fstype, "cgroup2") == 0;
    bool const v1 = std::strcmp(fstype, "cgroup") == 0 &&
                    ("," + std::string(super) + ",").find(",memory,") != std::string::npos;
    if (!v1 && !v2) continue;
    std::string path = cgroup_path(v2);
    if (path.empty()) continue;
    // The mount shows the hierarchy from `root` down; a path outside it (another
    // namespace's view) is looked up from the mount point, falling back to it.
    std::string const mount_root = std::strcmp(root, "/") == 0 ? std::string() : std::string(root);
    if (!mount_root.empty() && path.starts_with(mount_root)) path.erase(0, mount_root.size());
    if (path == "/") path.clear();
    least = std::min(least, cgroup_headroom(std::string(mount) + path, mount, v2));
  }
  return least;
}

/// RLIMIT_AS less the current virtual size; `unknown` without a limit.
inline std::uint64_t address_space_headroom() noexcept {
  rlimit limit{};
  if (::getrlimit(RLIMIT_AS, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return unknown;
  long const page = ::sysconf(_SC_PAGESIZE);
  std::uint64_t const pages = read_number("/proc/self/statm");
  if (pages == unknown || page <= 0) return 0;
  std::uint64_t const used = pages * static_cast<std::uint64_t>(page);
  auto const cap = static_cast<std::uint64_t>(limit.rlim_cur);
  return cap > used ? cap - used : 0;
}

/// MemAvailable, or the free physical pages where /proc/meminfo cannot be read.
inline std::uint64_t physical_available() noexcept {
  std::uint64_t const kib = read_keyed("/proc/meminfo", "MemAvailable:");
  if (kib != unknown) return kib * 1024;
  long const pages = ::sysconf(_SC_AVPHYS_PAGES);
  long const page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) : unknown;
}

/// The smallest of the limits above, or `unknown`.
inline std::uint64_t available() noexcept {
  std::uint64_t least = std::min(physical_available(), address_space_headroom());
  try {
    least = std::min(least, cgroups_headroom());
  } catch (...) {  // std::string could not allocate: no cgroup figure
  }
  return least;
}

}  // namespace host_memory

/// Bytes of host memory this process can still allocate: the smallest of MemAvailable,
/// the cgroup limits' headroom and the RLIMIT_AS headroom (see the file comment);
/// 0 if none of them is known.
inline std::size_t host_free_bytes() noexcept {
  auto const bytes = host_memory::available();
  if (bytes == host_memory::unknown) return 0;
  return static_cast<std::size_t>(std::min<std::uint64_t>(bytes, std::numeric_limits<std::size_t>::max()));
}

/// Checks, before a large allocation whose size comes from input, that `bytes` can be
/// allocated: `what` says what they are for ("Matrix Market 'f.mtx': CSR row offsets
/// for 2000000000 rows"). Nothing is checked when the available memory is unknown.
/// @throws out_of_memory(bytes, available, what) when they exceed host_free_bytes().
inline void require_host_memory(std::size_t bytes, std::string const& what) {
  auto const available = host_memory::available();
  if (available != host_memory::unknown && bytes > available) {
    throw out_of_memory(bytes, static_cast<std::size_t>(available), what);
  }
}

}  // namespace mgpu::detail
