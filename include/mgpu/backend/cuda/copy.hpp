// mgpu/backend/cuda/copy.hpp — copies to, from and between GPUs, ordered on streams.
//
//   copy(device_buffer, host_span, stream)      host -> device
//   copy(host_span, device_buffer, stream)      device -> host
//   copy(device_buffer, device_buffer, stream)  same device, or a peer copy between two
//   copy_between(set, dst, dst_buffer, src, src_buffer)
//                                               between two devices of a set, ordered
//                                               on both devices' streams, staged through
//                                               pinned memory for staged_pairs()
//
// Asynchronous copies from or to pageable host memory are only asynchronous with
// respect to the device: the runtime copies through its own staging buffer, so the host
// span may be reused as soon as a host -> device call returns, and a device -> host call
// into pageable memory returns when the data is there. Use pinned_buffer for overlap.
//
// Host-compilable: this header needs the CUDA Toolkit's headers, not nvcc.
#pragma once

#include <cstddef>
#include <span>

#include "mgpu/backend/cuda/buffer.hpp"
#include "mgpu/backend/cuda/device_set.hpp"
#include "mgpu/backend/cuda/stream.hpp"
#include "mgpu/core/error.hpp"

namespace mgpu {

namespace backend::cuda::detail {

inline void check_copy_sizes(std::size_t dst, std::size_t src) {
  if (dst != src) {
    throw dimension_mismatch(mgpu::detail::message("copy: destination has ", dst,
                                                   " elements, source ", src));
  }
}

/// cudaMemcpyAsync of `n` elements with the direction inferred from the pointers
/// (unified virtual addressing).
template <class T>
void copy_async(T* dst, T const* src, std::size_t n, stream<gpu> const& s) {
  if (n == 0) return;
  MGPU_CUDA_TRY(cudaMemcpyAsync(dst, src, n * sizeof(T), cudaMemcpyDefault, s.handle()));
}

}  // namespace backend::cuda::detail

/// Host to device, ordered on `s`. @throws dimension_mismatch if the sizes differ.
template <class T>
void copy(buffer<T, gpu>& dst, std::span<T const> src, stream<gpu> const& s) {
  backend::cuda::detail::check_copy_sizes(dst.size(), src.size());
  backend::cuda::detail::copy_async(dst.data(), src.data(), src.size(), s);
}

/// Device to host, ordered on `s`; `dst` must stay alive until `s` reaches the copy.
/// @throws dimension_mismatch if the sizes differ.
template <class T>
void copy(std::span<T> dst, buffer<T, gpu> const& src, stream<gpu> const& s) {
  backend::cuda::detail::check_copy_sizes(dst.size(), src.size());
  backend::cuda::detail::copy_async(dst.data(), src.data(), src.size(), s);
}

/// Device to device, ordered on `s`: a plain copy on one device, a peer copy
/// (cudaMemcpyPeerAsync) between two. The caller orders `s` after the work that writes
/// `src` on its device (copy_between does that). @throws dimension_mismatch.
template <class T>
void copy(buffer<T, gpu>& dst, buffer<T, gpu> const& src, stream<gpu> const& s) {
  backend::cuda::detail::check_copy_sizes(dst.size(), src.size());
  if (src.empty()) return;
  if (dst.ordinal() == src.ordinal()) {
    backend::cuda::detail::copy_async(dst.data(), src.data(), src.size(), s);
  } else {
    MGPU_CUDA_TRY(cudaMemcpyPeerAsync(dst.data(), dst.ordinal(), src.data(), src.ordinal(),
                                      src.size() * sizeof(T), s.handle()));
  }
}

/// Copies `src` on device `src_index` of `set` into `dst` on device `dst_index`, after
/// the work queued so far on both devices' streams; later work on either stream runs
/// after the copy. Pairs with peer access use one peer copy; the others (staged_pairs)
/// go device -> pinned host -> device and this call waits for them.
/// @throws dimension_mismatch, out_of_memory (staging), cuda_error.
template <class T>
void copy_between(device_set<gpu>& set, std::size_t dst_index, buffer<T, gpu>& dst,
                  std::size_t src_index, buffer<T, gpu> const& src) {
  backend::cuda::detail::check_copy_sizes(dst.size(), src.size());
  if (src.empty()) return;
  auto& to = set[dst_index];
  auto& from = set[src_index];
  pinned_buffer<T> staging;
  event<gpu> src_ready;
  if (set.peer_access(dst_index, src_index)) {
    src_ready.record(from.work);
  } else {
    staging = pinned_buffer<T>(src.size());
    backend::cuda::device_guard guard(from.dev.ordinal);
    backend::cuda::detail::copy_async(staging.data(), src.data(), src.size(), from.work);
    src_ready.record(from.work);
  }
  event<gpu> copied;
  {
    backend::cuda::device_guard guard(to.dev.ordinal);
    to.work.wait(src_ready);
    if (staging.size() == 0) {
      copy(dst, src, to.work);
    } else {
      backend::cuda::detail::copy_async(dst.data(), staging.data(), src.size(), to.work);
    }
    copied.record(to.work);
  }
  from.work.wait(copied);
  if (staging.size() != 0) copied.synchronize();  // the staging buffer dies here
}

}  // namespace mgpu
