// mgpu/core/copy.hpp — copies between buffers, ordered on a stream.
#pragma once

#include <cstring>
#include <span>

#include "mgpu/core/error.hpp"
#include "mgpu/core/stream.hpp"

namespace mgpu {

/// Copies `src` into `dst` (host to host) as a task on `s`; both must stay alive until
/// the task has run. @throws dimension_mismatch if the sizes differ.
template <class T>
void copy(std::span<T> dst, std::span<T const> src, stream<cpu>& s) {
  if (dst.size() != src.size()) {
    throw dimension_mismatch(
        detail::message("copy: destination has ", dst.size(), " elements, source ", src.size()));
  }
  if (src.empty()) return;
  s.enqueue([dst, src] { std::memcpy(dst.data(), src.data(), src.size_bytes()); });
}

}  // namespace mgpu
