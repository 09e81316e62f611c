// mgpu/execution/policy.hpp — execution policies and choosing one from a string.
//
// Every algorithm takes a policy first, as Thrust and the C++ parallel algorithms do:
//
//   mgpu::execution_policy<mgpu::cpu> policy{"cpu:2"};
//   auto top = mgpu::cosine_topk(policy, queries, corpus, 10);
//
// A policy is a cheap, immutable value: it shares its device_set (copies of a policy
// use the same devices and streams) and carries options. Algorithms are overloaded on
// the policy's kind, so dispatch to a backend happens at compile time.
#pragma once

#include <cstddef>
#include <memory>
#include <string_view>
#include <type_traits>
#include <utility>

#include "mgpu/core/device.hpp"
#include "mgpu/core/device_set.hpp"

namespace mgpu {

template <class Kind>
class execution_policy {
 public:
  using kind = Kind;

  /// A policy over the devices a device string names, e.g. "cpu:4".
  /// @throws invalid_argument for a malformed string or one of another kind.
  explicit execution_policy(std::string_view devices)
      : devices_(std::make_shared<device_set<Kind>>(parse_device_string(devices))) {}
  explicit execution_policy(device_spec const& spec)
      : devices_(std::make_shared<device_set<Kind>>(spec)) {}
  explicit execution_policy(std::shared_ptr<device_set<Kind>> devices)
      : devices_(std::move(devices)) {
    MGPU_EXPECTS(devices_ != nullptr, "an execution policy needs a device set");
  }

  [[nodiscard]] device_set<Kind>& devices() const noexcept { return *devices_; }
  [[nodiscard]] std::size_t device_count() const noexcept { return devices_->size(); }

  /// Bytes each device may use for an algorithm's working memory; 0 means "decide from
  /// the device's free memory".
  [[nodiscard]] std::size_t memory_budget() const noexcept { return memory_budget_; }

  /// The same devices with another memory budget (bytes per device; 0: automatic).
  [[nodiscard]] execution_policy with_memory_budget(std::size_t bytes) const {
    execution_policy p = *this;
    p.memory_budget_ = bytes;
    return p;
  }

 private:
  std::shared_ptr<device_set<Kind>> devices_;
  std::size_t memory_budget_ = 0;
};

/// True for the kinds whose backend is compiled into this program. The CUDA backend
/// specialises it for `gpu` in `mgpu/cuda.hpp`.
template <class Kind>
struct backend_available : std::false_type {};
template <>
struct backend_available<cpu> : std::true_type {};

namespace detail {
// Dependent on `Context`, so that `with_policy` reads backend_available<gpu> when it is
// instantiated (after mgpu/cuda.hpp has specialised it), not when it is defined.
template <class Kind, class Context>
inline constexpr bool backend_available_for = backend_available<Kind>::value;
}  // namespace detail

/// Calls `f(policy)` with a policy for the devices a runtime string names, e.g. a
/// command-line flag or MGPU_DEVICES. `f` must accept a policy of every available kind
/// (a generic lambda); it is instantiated once per kind and returns that call's result.
/// @throws invalid_argument for a malformed string, or for "cuda..." when the program
///         was built without the GPU backend.
template <class F>
decltype(auto) with_policy(std::string_view devices, F&& f) {
  device_spec const spec = parse_device_string(devices);
  if (spec.kind == device_spec::kind_id::cuda) {
    if constexpr (detail::backend_available_for<gpu, F>) {
      return std::forward<F>(f)(execution_policy<gpu>(spec));
    } else {
      throw invalid_argument(detail::message(
          "device string \"", devices,
          "\" names CUDA devices, but this program was built without the GPU backend "
          "(include <mgpu/cuda.hpp> and link mgpu::cuda); devices available: cpu, cpu:N"));
    }
  }
  return std::forward<F>(f)(execution_policy<cpu>(spec));
}

}  // namespace mgpu
