// mgpu/core/device.hpp — device kinds, devices, and the device-string grammar.
//
// A device kind is a tag type (`mgpu::cpu`, `mgpu::gpu`); a device is a kind plus an
// ordinal. Containers and algorithms are templates on the kind, so dispatch is decided
// at compile time. Device strings are the ones people already write:
//
//   "cpu"          one host device using every core
//   "cpu:N"        N logical host devices, each with its own worker thread (its stream)
//                  and 1/N of the cores: every multi-device path runs without a GPU
//   "cuda"         every visible CUDA device
//   "cuda:0,1,3"   those CUDA devices, in that order
//
// Parsing only checks the grammar; whether the devices exist is checked when a
// device_set is built from the spec. The grammar has no blanks: " cpu" or "cuda:0, 1"
// is rejected, quoting the string, rather than read as something else.
#pragma once

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "mgpu/core/error.hpp"

namespace mgpu {

/// The host kind: memory is ordinary host memory, a stream is a worker thread.
struct cpu {
  static constexpr std::string_view name = "cpu";
};

/// The CUDA kind. Usable only where `mgpu/cuda.hpp` is included and linked.
struct gpu {
  static constexpr std::string_view name = "cuda";
};

/// A device of kind `Kind`: its ordinal within the kind (a CUDA device id, or the index
/// of a logical host device).
template <class Kind>
struct device {
  using kind = Kind;
  int ordinal = 0;
  friend bool operator==(device, device) = default;
};

/// What a device string asks for, before any device is opened.
struct device_spec {
  enum class kind_id { cpu, cuda };
  kind_id kind = kind_id::cpu;
  /// cpu: the number of logical host devices. cuda: empty when every visible device
  /// was asked for ("cuda"), otherwise the ordinals in the order given.
  int count = 1;
  std::vector<int> ordinals;
  /// The string as the user wrote it, quoted in errors.
  std::string text;
};

/// Largest N accepted in "cpu:N".
inline constexpr int max_host_devices = 256;

namespace detail {

[[noreturn]] inline void bad_device_string(std::string_view text, std::string_view why) {
  throw invalid_argument(message("invalid device string \"", text, "\": ", why,
                                 " (expected \"cpu\", \"cpu:N\", \"cuda\" or \"cuda:I,J,...\")"));
}

/// True when MGPU_CUDA_SHARED_DEVICES=1: a CUDA device string may then list an ordinal
/// more than once, each a logical device of its own (stream, pool, worker) on the same
/// GPU, so that multi-device code runs on one card. For tests only.
inline bool shared_cuda_devices_allowed() {
  char const* v = std::getenv("MGPU_CUDA_SHARED_DEVICES");
  return v != nullptr && std::string_view(v) == "1";
}

/// A whole number of decimal digits in [min, max]; `what` names it in errors.
inline int parse_device_number(std::string_view text, std::string_view digits, int min, int max,
                               std::string_view what) {
  bool const all_digits =
      !digits.empty() && digits.find_first_not_of("0123456789") == std::string_view::npos;
  if (!all_digits) bad_device_string(text, message("\"", digits, "\" is not a non-negative integer"));
  std::uint64_t value = 0;
  auto const [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc{} || value < static_cast<std::uint64_t>(min) ||
      value > static_cast<std::uint64_t>(max)) {
    bad_device_string(text, message(what, " ", digits, " is out of range [", min, ", ", max, "]"));
  }
  return static_cast<int>(value);
}

}  // namespace detail

/// Parses a device string (grammar above). The string is taken exactly as written:
/// blanks anywhere in it are errors rather than silently trimmed.
/// @throws invalid_argument quoting the string: empty string, whitespace, unknown kind
///         (e.g. "gpu"), a host count outside [1, max_host_devices] (e.g. "cpu:0",
///         "cpu:4294967297"), a CUDA ordinal outside [0, INT_MAX], a repeated CUDA ordinal.
inline device_spec parse_device_string(std::string_view text) {
  if (text.empty()) detail::bad_device_string(text, "it is empty");
  if (auto const blank = text.find_first_of(" \t\r\n\v\f"); blank != std::string_view::npos) {
    detail::bad_device_string(text, detail::message("it contains whitespace at position ", blank));
  }
  auto const colon = text.find(':');
  auto const kind = text.substr(0, colon);
  device_spec spec;
  spec.text = std::string(text);
  if (kind == cpu::name) {
    spec.kind = device_spec::kind_id::cpu;
    if (colon != std::string_view::npos) {
      spec.count = detail::parse_device_number(text, text.substr(colon + 1), 1, max_host_devices,
                                               "the number of host devices");
    }
    return spec;
  }
  if (kind == gpu::name) {
    spec.kind = device_spec::kind_id::cuda;
    if (colon == std::string_view::npos) return spec;
    auto rest = text.substr(colon + 1);
    while (true) {
      auto const comma = rest.find(',');
      int const id = detail::parse_device_number(text, rest.substr(0, comma), 0,
                                                 std::numeric_limits<int>::max(), "CUDA device");
      for (int seen : spec.ordinals) {
        if (seen == id && !detail::shared_cuda_devices_allowed()) {
          detail::bad_device_string(text, detail::message("device ", id,
                                                          " is listed twice (tests may set "
                                                          "MGPU_CUDA_SHARED_DEVICES=1 to run "
                                                          "several logical devices on one GPU)"));
        }
      }
      spec.ordinals.push_back(id);
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
    }
    spec.count = static_cast<int>(spec.ordinals.size());
    return spec;
  }
  detail::bad_device_string(text, detail::message("unknown device kind \"", kind, "\""));
}

/// The device string in the environment variable MGPU_DEVICES, or `fallback` when it
/// is unset or empty. Any other value is returned as it is, so that parsing it reports
/// a malformed value (blanks included) instead of silently using the fallback.
inline std::string device_string_from_environment(std::string_view fallback = "cpu") {
  char const* value = std::getenv("MGPU_DEVICES");
  if (value == nullptr || *value == '\0') return std::string(fallback);
  return value;
}

}  // namespace mgpu
