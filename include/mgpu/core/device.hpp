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
// device_set is built from the spec.
#pragma once

#include <charconv>
#include <cstdlib>
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

inline int parse_device_number(std::string_view text, std::string_view digits) {
  int value = -1;
  auto const* end = digits.data() + digits.size();
  auto [ptr, ec] = std::from_chars(digits.data(), end, value);
  if (digits.empty() || ec != std::errc{} || ptr != end || value < 0) {
    bad_device_string(text, message("\"", digits, "\" is not a non-negative integer"));
  }
  return value;
}

inline std::string_view trim(std::string_view s) {
  auto const first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

}  // namespace detail

/// Parses a device string (grammar above). Surrounding blanks are ignored.
/// @throws invalid_argument quoting the string: empty string, unknown kind (e.g.
///         "gpu"), "cpu:0", N > max_host_devices, a repeated CUDA ordinal.
inline device_spec parse_device_string(std::string_view text) {
  auto const s = detail::trim(text);
  if (s.empty()) detail::bad_device_string(text, "it is empty");
  auto const colon = s.find(':');
  auto const kind = s.substr(0, colon);
  device_spec spec;
  spec.text = std::string(text);
  if (kind == cpu::name) {
    spec.kind = device_spec::kind_id::cpu;
    if (colon != std::string_view::npos) {
      spec.count = detail::parse_device_number(text, s.substr(colon + 1));
      if (spec.count < 1 || spec.count > max_host_devices) {
        detail::bad_device_string(
            text, detail::message("the number of host devices must be in [1, ",
                                  max_host_devices, "]"));
      }
    }
    return spec;
  }
  if (kind == gpu::name) {
    spec.kind = device_spec::kind_id::cuda;
    if (colon == std::string_view::npos) return spec;
    auto rest = s.substr(colon + 1);
    while (true) {
      auto const comma = rest.find(',');
      int const id = detail::parse_device_number(text, detail::trim(rest.substr(0, comma)));
      for (int seen : spec.ordinals) {
        if (seen == id) {
          detail::bad_device_string(text, detail::message("device ", id, " is listed twice"));
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
/// is unset or empty.
inline std::string device_string_from_environment(std::string_view fallback = "cpu") {
  char const* value = std::getenv("MGPU_DEVICES");
  if (value == nullptr || detail::trim(value).empty()) return std::string(fallback);
  return value;
}

}  // namespace mgpu
