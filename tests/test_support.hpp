// Helpers shared by the test programs.
#pragma once

#include <catch2/catch.hpp>

#include <string>

namespace mgpu_test {

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
