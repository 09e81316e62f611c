// libFuzzer target: the device-string grammar (mgpu/core/device.hpp) and choosing a
// policy from a string (mgpu/execution/policy.hpp), RELIABILITY.md row 15. This build
// has no GPU backend, so every "cuda..." string is the "no GPU present" case.
//
// Properties: only invalid_argument escapes, and its message quotes the string; a parsed
// spec keeps the text as written, a host count in [1, max_host_devices] and distinct
// non-negative CUDA ordinals; a host spec builds a policy of that many devices whose
// set prints as a string that parses back to the same count; a CUDA spec is refused by
// with_policy with a message listing the host devices that exist.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "mgpu/core/device.hpp"
#include "mgpu/execution/policy.hpp"

namespace {

// Building a set starts one worker thread per device; larger counts are parsed but not
// built, to keep the fuzzer fast.
constexpr int max_devices_built = 4;

// what() ends at the first NUL, so a string holding one cannot be found in it whole.
bool quoted_in(std::string_view message, std::string_view text) {
  return text.find('\0') != std::string_view::npos ||
         message.find("\"" + std::string(text) + "\"") != std::string_view::npos;
}

void check_policy(std::string_view text, mgpu::device_spec const& spec) {
  bool const cuda = spec.kind == mgpu::device_spec::kind_id::cuda;
  try {
    mgpu::with_policy(text, [&](auto const& policy) {
      mgpu_fuzz::check(!cuda, "a CUDA string is refused without the GPU backend");
      mgpu_fuzz::check(policy.device_count() == static_cast<std::size_t>(spec.count),
                       "the policy has the devices the string asks for");
      auto const again = mgpu::parse_device_string(policy.devices().to_string());
      mgpu_fuzz::check(again.count == spec.count, "a host set prints as its device string");
    });
  } catch (mgpu::invalid_argument const& e) {
    std::string_view const message = e.what();
    mgpu_fuzz::check(cuda, "with_policy accepts every host string that parses", message);
    mgpu_fuzz::check(quoted_in(message, text), "the refusal quotes the string", message);
    mgpu_fuzz::check(message.find("cpu") != std::string_view::npos,
                     "the refusal lists the devices that exist", message);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  std::string_view const text(reinterpret_cast<char const*>(data), size);
  mgpu::device_spec spec;
  try {
    spec = mgpu::parse_device_string(text);
  } catch (mgpu::invalid_argument const& e) {
    mgpu_fuzz::check(quoted_in(e.what(), text), "the error quotes the string", e.what());
    return 0;
  }
  mgpu_fuzz::check(spec.text == text, "the spec keeps the string as written");
  if (spec.kind == mgpu::device_spec::kind_id::cpu) {
    mgpu_fuzz::check(spec.count >= 1 && spec.count <= mgpu::max_host_devices,
                     "a host count in [1, max_host_devices]");
    mgpu_fuzz::check(spec.ordinals.empty(), "a host spec has no CUDA ordinals");
  } else if (!spec.ordinals.empty()) {
    std::set<int> const distinct(spec.ordinals.begin(), spec.ordinals.end());
    mgpu_fuzz::check(distinct.size() == spec.ordinals.size(), "CUDA ordinals are distinct");
    mgpu_fuzz::check(*distinct.begin() >= 0, "CUDA ordinals are non-negative");
    mgpu_fuzz::check(spec.count == static_cast<int>(spec.ordinals.size()),
                     "the CUDA count is the number of ordinals");
  }
  if (spec.kind == mgpu::device_spec::kind_id::cuda || spec.count <= max_devices_built) {
    check_policy(text, spec);
  }
  return 0;
}
