// Specification of host buffers (mgpu/core/buffer.hpp) and stream-ordered copies
// (mgpu/core/copy.hpp).
#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core_test_support.hpp"
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
