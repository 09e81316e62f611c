// mgpu/execution/fork_join.hpp — the one place that fans work out to devices.
//
// fork_join(policy, f) runs f(context, i) for every device i of the policy's set, each
// as a task on that device's own stream, so the devices work concurrently; then it
// joins: it waits for every device's completion event and rethrows the first error.
// All of the devices finish (or fail) before it returns, so `f` may capture locals by
// reference. Algorithms never loop over devices by hand.
//
// The steps are the ones a collective library would provide (broadcast the inputs,
// run per shard, gather the results), so a set spanning processes can replace them.
// Work must not call fork_join from inside `f` on the same set: a device's stream runs
// one task at a time.
#pragma once

#include <cstddef>
#include <exception>
#include <vector>

#include "mgpu/execution/policy.hpp"

namespace mgpu::detail {

template <class F>
void fork_join(execution_policy<cpu> const& policy, F&& f) {
  auto& set = policy.devices();
  std::vector<event<cpu>> done(set.size());
  for (std::size_t i = 0; i < set.size(); ++i) {
    auto& ctx = set[i];
    ctx.work.enqueue([&f, &ctx] { f(ctx, ctx.index); });
    done[i].record(ctx.work);
  }
  std::exception_ptr first;
  for (auto& e : done) {
    try {
      e.synchronize();
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
  if (first) {
    // The failed task left its error in its stream; clear it so the set stays usable.
    for (std::size_t i = 0; i < set.size(); ++i) {
      try {
        set[i].work.synchronize();
      } catch (...) {
      }
    }
    std::rethrow_exception(first);
  }
}

}  // namespace mgpu::detail
