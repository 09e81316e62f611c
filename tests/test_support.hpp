// Helpers shared by the test programs.
#pragma once

#include <catch2/catch.hpp>

#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>

// MGPU_TEST_SANITIZED: defined under AddressSanitizer, ThreadSanitizer or
// MemorySanitizer, which reserve terabytes of address space, so tests that set an
// RLIMIT_AS cannot run under them.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MGPU_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define MGPU_TEST_SANITIZED 1
#endif
#endif

namespace mgpu_test {

/// A fresh directory under the system's temporary directory, removed with everything
/// in it when the object dies. Tests write files only inside one of these.
class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "mgpu-test-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  temp_dir(temp_dir const&) = delete;
  temp_dir& operator=(temp_dir const&) = delete;
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  [[nodiscard]] std::filesystem::path const& path() const { return path_; }
  std::filesystem::path operator/(char const* name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

/// The message of the exception of type E that `f` throws; fails the test if it
/// throws nothing (another exception type propagates and fails the test too).
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (E const& e) {
    return e.what();
  }
  FAIL("expected an exception, none was thrown");
  return {};
}

}  // namespace mgpu_test
