// Specification of the device-string grammar (mgpu/core/device.hpp), of
// MGPU_DEVICES, and of choosing a policy from a runtime string (with_policy).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "core_test_support.hpp"
#include "mgpu/core/device.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/execution/policy.hpp"

using Catch::Matchers::Contains;
using kind_id = mgpu::device_spec::kind_id;
using mgpu_test::message_of;

namespace {

/// Sets MGPU_DEVICES for one test and restores the previous value afterwards.
class scoped_devices_env {
 public:
  explicit scoped_devices_env(char const* value) {
    if (char const* old = std::getenv("MGPU_DEVICES")) old_ = old;
    if (value != nullptr) {
      ::setenv("MGPU_DEVICES", value, 1);
    } else {
      ::unsetenv("MGPU_DEVICES");
    }
  }
  scoped_devices_env(scoped_devices_env const&) = delete;
  scoped_devices_env& operator=(scoped_devices_env const&) = delete;
  ~scoped_devices_env() {
    if (old_) {
      ::setenv("MGPU_DEVICES", old_->c_str(), 1);
    } else {
      ::unsetenv("MGPU_DEVICES");
    }
  }

 private:
  std::optional<std::string> old_;
};

/// The message of the invalid_argument that parsing `text` throws.
std::string parse_error_message(std::string const& text) {
  return message_of<mgpu::invalid_argument>([&] { (void)mgpu::parse_device_string(text); });
}

}  // namespace

TEST_CASE("device string cpu is one host device", "[core][device]") {
  auto const spec = mgpu::parse_device_string("cpu");
  CHECK(spec.kind == kind_id::cpu);
  CHECK(spec.count == 1);
  CHECK(spec.ordinals.empty());
  CHECK(spec.text == "cpu");
}

TEST_CASE("device string cpu:N is N logical host devices", "[core][device]") {
  CHECK(mgpu::parse_device_string("cpu:1").count == 1);
  CHECK(mgpu::parse_device_string("cpu:4").count == 4);
  CHECK(mgpu::parse_device_string("cpu:256").count == mgpu::max_host_devices);
  auto const spec = mgpu::parse_device_string("cpu:4");
  CHECK(spec.kind == kind_id::cpu);
  CHECK(spec.ordinals.empty());
}

TEST_CASE("reliability row 15: whitespace anywhere in a device string is invalid_argument quoting it",
          "[core][device][reliability]") {
  for (std::string text : {" cpu", "cpu ", " cpu:2 ", "cpu: 2", "cpu:2\n", "\tcuda", "cuda :0",
                           "cuda:0, 1", "cuda:0,1\r"}) {
    INFO("device string \"" << text << "\"");
    auto const what = parse_error_message(text);
    CHECK_THAT(what, Contains("\"" + text + "\""));
    CHECK_THAT(what, Contains("whitespace at position " + std::to_string(text.find_first_of(" \t\r\n"))));
  }
}

TEST_CASE("reliability row 15: a host-device count beyond int is out of range, naming the range",
          "[core][device][reliability]") {
  // 2^32 + 1 wraps to 1 in 32 bits; 2^64 + 1 does not fit any integer type.
  for (std::string count : {"4294967297", "18446744073709551617", "99999999999", "257", "0"}) {
    INFO("count " << count);
    auto const what = parse_error_message("cpu:" + count);
    CHECK_THAT(what, Contains("\"cpu:" + count + "\""));
    CHECK_THAT(what, Contains("the number of host devices " + count + " is out of range [1, 256]"));
  }
  CHECK_THAT(parse_error_message("cuda:0,2147483648"),
             Contains("CUDA device 2147483648 is out of range [0, 2147483647]"));
  CHECK(mgpu::parse_device_string("cuda:2147483647").ordinals == std::vector<int>{2147483647});
}

TEST_CASE("device string cuda is every visible CUDA device", "[core][device]") {
  auto const spec = mgpu::parse_device_string("cuda");
  CHECK(spec.kind == kind_id::cuda);
  CHECK(spec.ordinals.empty());
}

TEST_CASE("device string cuda:I lists CUDA devices in the order given", "[core][device]") {
  auto const one = mgpu::parse_device_string("cuda:0");
  CHECK(one.kind == kind_id::cuda);
  CHECK(one.ordinals == std::vector<int>{0});
  CHECK(one.count == 1);

  auto const three = mgpu::parse_device_string("cuda:0,1,3");
  CHECK(three.kind == kind_id::cuda);
  CHECK(three.ordinals == std::vector<int>{0, 1, 3});
  CHECK(three.count == 3);

  CHECK(mgpu::parse_device_string("cuda:3,1").ordinals == std::vector<int>{3, 1});
}

TEST_CASE("reliability row 15: an empty device string is invalid_argument", "[core][device]") {
  for (std::string text : {"", "   "}) {
    INFO("device string \"" << text << "\"");
    CHECK_THAT(parse_error_message(text), Contains("\"" + text + "\""));
  }
}

TEST_CASE("reliability row 15: unknown kind gpu is invalid_argument quoting the string",
          "[core][device]") {
  auto const what = parse_error_message("gpu");
  CHECK_THAT(what, Contains("\"gpu\""));
  // The message lists what is accepted, so the user can correct the string.
  CHECK_THAT(what, Contains("cpu"));
  CHECK_THAT(what, Contains("cuda"));
}

TEST_CASE("reliability row 15: a repeated CUDA ordinal is invalid_argument", "[core][device]") {
  ::unsetenv("MGPU_CUDA_SHARED_DEVICES");
  CHECK_THAT(parse_error_message("cuda:0,0"), Contains("\"cuda:0,0\"") && Contains("listed twice"));
  CHECK_THAT(parse_error_message("cuda:1,0,1"), Contains("\"cuda:1,0,1\""));
}

TEST_CASE("with MGPU_CUDA_SHARED_DEVICES=1 a CUDA ordinal may repeat (logical devices on one GPU)",
          "[core][device]") {
  ::setenv("MGPU_CUDA_SHARED_DEVICES", "1", 1);
  auto const spec = mgpu::parse_device_string("cuda:0,0");
  ::unsetenv("MGPU_CUDA_SHARED_DEVICES");
  CHECK(spec.ordinals == std::vector<int>{0, 0});
  CHECK(spec.count == 2);
  ::setenv("MGPU_CUDA_SHARED_DEVICES", "0", 1);
  CHECK_THAT(parse_error_message("cuda:0,0"), Contains("listed twice"));
  ::unsetenv("MGPU_CUDA_SHARED_DEVICES");
}

TEST_CASE("device strings with a bad host-device count are invalid_argument quoting the string",
          "[core][device]") {
  for (std::string text :
       {"cpu:0", "cpu:-1", "cpu:x", "cpu:257", "cpu:", "cpu:2x", "cpu:+2", "cpu:99999999999"}) {
    INFO("device string \"" << text << "\"");
    CHECK_THAT(parse_error_message(text), Contains("\"" + text + "\""));
  }
}

TEST_CASE("device strings with a bad CUDA ordinal list are invalid_argument quoting the string",
          "[core][device]") {
  for (std::string text : {"cuda:", "cuda:a", "cuda:0,", "cuda:-1", "cuda:0;1"}) {
    INFO("device string \"" << text << "\"");
    CHECK_THAT(parse_error_message(text), Contains("\"" + text + "\""));
  }
}

TEST_CASE("MGPU_DEVICES supplies the device string", "[core][device]") {
  scoped_devices_env env("cpu:3");
  CHECK(mgpu::device_string_from_environment() == "cpu:3");
  CHECK(mgpu::device_string_from_environment("cuda") == "cpu:3");
}

TEST_CASE("without MGPU_DEVICES the fallback device string is used", "[core][device]") {
  {
    scoped_devices_env env(nullptr);
    CHECK(mgpu::device_string_from_environment() == "cpu");
    CHECK(mgpu::device_string_from_environment("cpu:2") == "cpu:2");
  }
  {
    scoped_devices_env env("");
    CHECK(mgpu::device_string_from_environment("cpu:2") == "cpu:2");
  }
}

TEST_CASE("reliability row 15: MGPU_DEVICES with blanks is reported, not replaced by the fallback",
          "[core][device][reliability]") {
  for (char const* value : {"  ", " cpu:2"}) {
    INFO("MGPU_DEVICES=\"" << value << "\"");
    scoped_devices_env env(value);
    CHECK(mgpu::device_string_from_environment("cpu:2") == value);
    CHECK_THAT(parse_error_message(mgpu::device_string_from_environment("cpu:2")),
               Contains("\"" + std::string(value) + "\"") && Contains("whitespace"));
  }
}

TEST_CASE("reliability row 15: with_policy on cuda without the GPU backend is invalid_argument",
          "[core][device][policy]") {
  bool called = false;
  auto const what = message_of<mgpu::invalid_argument>(
      [&] { mgpu::with_policy("cuda:0", [&](auto const&) { called = true; }); });
  CHECK_FALSE(called);
  CHECK_THAT(what, Contains("\"cuda:0\""));
  CHECK_THAT(what, Contains("GPU backend"));
  // It says what does exist on this build.
  CHECK_THAT(what, Contains("cpu"));
}

TEST_CASE("reliability row 15: with_policy on a malformed string is invalid_argument",
          "[core][device][policy]") {
  bool called = false;
  auto const what = message_of<mgpu::invalid_argument>(
      [&] { mgpu::with_policy("gpu", [&](auto const&) { called = true; }); });
  CHECK_FALSE(called);
  CHECK_THAT(what, Contains("\"gpu\""));
}

TEST_CASE("with_policy on cpu:3 calls the function with a policy of three host devices",
          "[core][device][policy]") {
  int calls = 0;
  auto const devices = mgpu::with_policy("cpu:3", [&](auto const& policy) {
    ++calls;
    using policy_kind = typename std::decay_t<decltype(policy)>::kind;
    STATIC_REQUIRE(std::is_same_v<policy_kind, mgpu::cpu>);
    return policy.device_count();
  });
  CHECK(calls == 1);
  CHECK(devices == 3);
}
