// Specification of host buffers (mgpu/core/buffer.hpp), the host memory resource they
// allocate through (mgpu/backend/cpu/host_memory_resource.hpp) and stream-ordered copies
// (mgpu/core/copy.hpp).
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core_test_support.hpp"
#include "mgpu/backend/cpu/host_memory_resource.hpp"
#include "mgpu/core/buffer.hpp"
#include "mgpu/core/copy.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/core/stream.hpp"

using Catch::Matchers::Contains;

namespace {

bool aligned_64(void const* p) { return reinterpret_cast<std::uintptr_t>(p) % 64 == 0; }

}  // namespace

TEST_CASE("a buffer holds the number of elements it was given", "[core][buffer]") {
  mgpu::buffer<double, mgpu::cpu> b(10);
  CHECK(b.size() == 10);
  CHECK_FALSE(b.empty());
  REQUIRE(b.data() != nullptr);
  CHECK(b.span().size() == 10);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<double>(i) * 0.5;
  CHECK(b.span()[9] == 4.5);
}

TEST_CASE("an empty buffer has no storage", "[core][buffer]") {
  mgpu::buffer<int, mgpu::cpu> const none;
  CHECK(none.size() == 0);
  CHECK(none.empty());
  CHECK(none.data() == nullptr);
  mgpu::buffer<int, mgpu::cpu> const zero(0);
  CHECK(zero.empty());
  CHECK(zero.span().empty());
}

TEST_CASE("buffer storage is aligned to 64 bytes", "[core][buffer]") {
  for (std::size_t n : {1u, 3u, 17u, 1000u, 4097u}) {
    INFO("size " << n);
    mgpu::buffer<char, mgpu::cpu> c(n);
    mgpu::buffer<float, mgpu::cpu> f(n);
    mgpu::buffer<double, mgpu::cpu> d(n);
    CHECK(aligned_64(c.data()));
    CHECK(aligned_64(f.data()));
    CHECK(aligned_64(d.data()));
  }
}

TEST_CASE("a buffer built from a span holds an independent copy", "[core][buffer]") {
  std::vector<int> source{4, 8, 15, 16, 23, 42};
  mgpu::buffer<int, mgpu::cpu> const b{std::span<int const>(source)};
  source[0] = -1;
  REQUIRE(b.size() == 6);
  CHECK(std::vector<int>(b.span().begin(), b.span().end()) ==
        std::vector<int>{4, 8, 15, 16, 23, 42});
  CHECK(mgpu::buffer<int, mgpu::cpu>(std::span<int const>()).empty());
}

TEST_CASE("moving a buffer transfers the storage and leaves the source empty", "[core][buffer]") {
  mgpu::buffer<float, mgpu::cpu> a(8);
  float const* storage = a.data();
  mgpu::buffer<float, mgpu::cpu> b(std::move(a));
  CHECK(b.data() == storage);
  CHECK(b.size() == 8);
  CHECK(a.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  CHECK(a.data() == nullptr);

  mgpu::buffer<float, mgpu::cpu> c(3);
  c = std::move(b);
  CHECK(c.data() == storage);
  CHECK(c.size() == 8);
  CHECK(b.empty());  // NOLINT(bugprone-use-after-move)
  CHECK(b.data() == nullptr);
}

TEST_CASE("a buffer too large for size_t bytes is out_of_memory", "[core][buffer]") {
  CHECK_THROWS_AS((mgpu::buffer<double, mgpu::cpu>(SIZE_MAX / 4)), mgpu::out_of_memory);
  auto const what = mgpu_test::message_of<mgpu::out_of_memory>(
      [] { mgpu::buffer<double, mgpu::cpu> b(SIZE_MAX / 4); });
  CHECK_THAT(what, Contains("cannot allocate"));
}

TEST_CASE("the host memory resource gives 64-byte aligned, writable blocks of any size",
          "[core][buffer]") {
  using resource = mgpu::backend::cpu::host_memory_resource;
  STATIC_REQUIRE(resource::alignment == 64);
  // Below, at and above the 1 MiB from which blocks get a mapping of their own.
  for (std::size_t const bytes : {std::size_t{1}, std::size_t{100}, (std::size_t{1} << 20) - 1,
                                  std::size_t{1} << 20, (std::size_t{3} << 20) + 5}) {
    INFO(bytes << " bytes");
    void* const p = resource::allocate(bytes);
    REQUIRE(p != nullptr);
    CHECK(aligned_64(p));
    auto* const c = static_cast<unsigned char*>(p);
    c[bytes - 1] = 2;
    c[0] = 1;
    CHECK(c[0] == 1);
    CHECK(c[bytes - 1] == (bytes == 1 ? 1 : 2));
    resource::deallocate(p, bytes);
  }
  resource::deallocate(nullptr, 0);  // nothing to free
  // What no allocator can give is nullptr, not an exception.
  CHECK(resource::allocate(SIZE_MAX / 2) == nullptr);
  // The free-memory figure is the one out_of_memory reports (some memory is free here).
  CHECK(resource::available_bytes() > 0);
}

TEST_CASE("a failed host allocation is out_of_memory giving the requested bytes",
          "[core][buffer]") {
  // Half the address space fits size_t but no allocator can provide it.
  std::size_t const bytes = SIZE_MAX / 2;
  try {
    mgpu::buffer<char, mgpu::cpu> b(bytes);
    FAIL("allocating " << bytes << " bytes succeeded");
  } catch (mgpu::out_of_memory const& e) {
    CHECK(e.requested_bytes() == bytes);
    CHECK_THAT(std::string(e.what()), Contains(std::to_string(bytes)));
  }
}

TEST_CASE("copy on a stream copies the elements in stream order", "[core][buffer][copy]") {
  mgpu::stream<mgpu::cpu> s;
  mgpu::buffer<int, mgpu::cpu> src(5);
  mgpu::buffer<int, mgpu::cpu> dst(5);
  // Filled by an earlier task on the same stream: the copy must see these values.
  s.enqueue([&] {
    for (std::size_t i = 0; i < 5; ++i) src[i] = static_cast<int>(i * i);
  });
  mgpu::copy(dst.span(), std::as_const(src).span(), s);
  s.synchronize();
  CHECK(std::vector<int>(dst.span().begin(), dst.span().end()) ==
        std::vector<int>{0, 1, 4, 9, 16});
}

TEST_CASE("copy of an empty span does nothing", "[core][buffer][copy]") {
  mgpu::stream<mgpu::cpu> s;
  CHECK_NOTHROW(mgpu::copy(std::span<int>(), std::span<int const>(), s));
  s.synchronize();
}

TEST_CASE("copy between spans of different sizes is dimension_mismatch giving both",
          "[core][buffer][copy]") {
  mgpu::stream<mgpu::cpu> s;
  mgpu::buffer<double, mgpu::cpu> src(7);
  mgpu::buffer<double, mgpu::cpu> dst(5);
  auto const what = mgpu_test::message_of<mgpu::dimension_mismatch>(
      [&] { mgpu::copy(dst.span(), std::as_const(src).span(), s); });
  CHECK_THAT(what, Contains("7"));
  CHECK_THAT(what, Contains("5"));
}


namespace {

/// Runs `child` in a forked process (so that limits it sets leave this one alone) and
/// returns its exit status: 0 when every check in it held, otherwise the failed check.
template <class F>
[[maybe_unused]] int in_child(F const& child) {
  pid_t const pid = ::fork();
  if (pid == 0) ::_exit(child());
  int status = 0;
  REQUIRE(pid > 0);
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

[[maybe_unused]] std::size_t virtual_size_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  unsigned long long pages = 0;
  if (f != nullptr) {
    if (std::fscanf(f, "%llu", &pages) != 1) pages = 0;
    std::fclose(f);
  }
  return static_cast<std::size_t>(pages) * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace

TEST_CASE("reliability row 11: available host memory respects RLIMIT_AS (ulimit -v)",
          "[core][buffer][reliability]") {
#ifdef MGPU_TEST_SANITIZED
  WARN("skipped: sanitizers reserve terabytes of address space; an RLIMIT_AS cannot be set under them");
#else
  constexpr std::size_t headroom = std::size_t{64} << 20;
  // Without a limit the figure is the machine's (far above 64 MiB on any test machine).
  REQUIRE(mgpu::detail::host_free_bytes() > 4 * headroom);
  int const failed = in_child([] {
    rlimit const limit{virtual_size_bytes() + headroom, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_AS, &limit) != 0) return 10;
    std::size_t const free = mgpu::detail::host_free_bytes();
    // The address space left: the 64 MiB less what this child mapped since measuring.
    if (free > headroom) return 1;
    if (free < headroom - (std::size_t{16} << 20)) return 2;
    try {
      mgpu::detail::require_host_memory(4 * headroom, "256 MiB of test data");
      return 3;
    } catch (mgpu::out_of_memory const& e) {
      if (e.requested_bytes() != 4 * headroom || e.available_bytes() > headroom) return 4;
      if (std::string(e.what()).find("256 MiB of test data: cannot allocate 268435456 bytes") ==
          std::string::npos) {
        return 5;
      }
    }
    try {
      mgpu::detail::require_host_memory(headroom / 4, "16 MiB");
    } catch (...) {
      return 6;
    }
    return 0;
  });
  CHECK(failed == 0);
#endif
}

TEST_CASE("reliability row 11: require_host_memory passes what the machine has", "[core][buffer][reliability]") {
  CHECK_NOTHROW(mgpu::detail::require_host_memory(std::size_t{1} << 20, "1 MiB"));
  auto const what = mgpu_test::message_of<mgpu::out_of_memory>(
      [] { mgpu::detail::require_host_memory(SIZE_MAX / 2, "half the address space"); });
  CHECK_THAT(what, Contains("half the address space: cannot allocate " + std::to_string(SIZE_MAX / 2)));
}

TEST_CASE("reliability row 11: the cgroup limit is the least headroom of the cgroup and its ancestors",
          "[core][buffer][reliability]") {
  namespace fs = std::filesystem;
  auto const root = fs::temp_directory_path() / ("mgpu-cgroup-" + std::to_string(::getpid()));
  auto const write = [](fs::path const& p, char const* text) {
    std::FILE* f = std::fopen(p.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fputs(text, f);
    std::fclose(f);
  };
  fs::create_directories(root / "v2" / "a" / "b");
  // a: 1000 MB limit, 300 MB used of which 100 MB inactive file cache: 800 MB left.
  write(root / "v2" / "a" / "memory.max", "1000000000\n");
  write(root / "v2" / "a" / "memory.current", "300000000\n");
  write(root / "v2" / "a" / "memory.stat", "anon 200000000\nfile 100000000\ninactive_file 100000000\n");
  // b (the process's own): no limit of its own.
  write(root / "v2" / "a" / "b" / "memory.max", "max\n");
  write(root / "v2" / "a" / "b" / "memory.current", "250000000\n");
  CHECK(mgpu::detail::host_memory::cgroup_headroom((root / "v2" / "a" / "b").string(), (root / "v2").string(),
                                                   true) == 800'000'000);

  fs::create_directories(root / "v1" / "job");
  // v1: 2 GB limit, 1.5 GB used, 0.25 GB inactive file cache; the root's "unlimited".
  write(root / "v1" / "memory.limit_in_bytes", "9223372036854771712\n");
  write(root / "v1" / "memory.usage_in_bytes", "9000000000\n");
  write(root / "v1" / "job" / "memory.limit_in_bytes", "2000000000\n");
  write(root / "v1" / "job" / "memory.usage_in_bytes", "1500000000\n");
  write(root / "v1" / "job" / "memory.stat", "cache 1\ninactive_file 7\ntotal_inactive_file 250000000\n");
  CHECK(mgpu::detail::host_memory::cgroup_headroom((root / "v1" / "job").string(), (root / "v1").string(),
                                                   false) == 750'000'000);
  // Usage above the limit leaves nothing, not a wrapped-around huge number.
  write(root / "v1" / "job" / "memory.usage_in_bytes", "2500000000\n");
  CHECK(mgpu::detail::host_memory::cgroup_headroom((root / "v1" / "job").string(), (root / "v1").string(),
                                                   false) == 0);
  fs::remove_all(root);
}

TEST_CASE("a buffer adopts a moved-in vector's storage without copying it", "[core][buffer]") {
  std::vector<double> v{1.5, 2.5, 3.5};
  double const* storage = v.data();
  mgpu::buffer<double, mgpu::cpu> b(std::move(v));
  CHECK(b.data() == storage);
  CHECK(b.size() == 3);
  CHECK(v.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  CHECK(std::vector<double>(b.span().begin(), b.span().end()) == std::vector<double>{1.5, 2.5, 3.5});
  b[1] = -1.0;
  CHECK(storage[1] == -1.0);

  // Moving and move-assigning keep the adopted storage; the buffer assigned over frees
  // its own allocation (AddressSanitizer's leak and mismatch checks watch both kinds).
  mgpu::buffer<double, mgpu::cpu> moved(std::move(b));
  CHECK(moved.data() == storage);
  CHECK(b.data() == nullptr);  // NOLINT(bugprone-use-after-move)
  mgpu::buffer<double, mgpu::cpu> allocated(1000);
  allocated = std::move(moved);
  CHECK(allocated.data() == storage);
  CHECK(allocated.size() == 3);
  mgpu::buffer<double, mgpu::cpu> other(std::vector<double>(2, 0.0));
  other = mgpu::buffer<double, mgpu::cpu>(5);
  CHECK(other.size() == 5);
}

TEST_CASE("a buffer adopting an empty vector is empty", "[core][buffer]") {
  mgpu::buffer<int, mgpu::cpu> const none(std::vector<int>{});
  CHECK(none.empty());
  CHECK(none.data() == nullptr);
  std::vector<int> reserved;
  reserved.reserve(100);  // storage but no elements
  mgpu::buffer<int, mgpu::cpu> const still_none(std::move(reserved));
  CHECK(still_none.empty());
  CHECK(still_none.data() == nullptr);
}
