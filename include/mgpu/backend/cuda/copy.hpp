// mgpu/backend/cuda/copy.hpp — copies to, from and between GPUs, ordered on streams.
//
//   copy(device_buffer, host_span, stream)      host -> device
//   copy(host_span, device_buffer, stream)      device -> host
//   copy(device_buffer, device_buffer, stream)  same device, or a peer copy between two
//   broadcast(set, root, targets, host_copy)    one device's buffer to several others at
//                                               once: peer copies all queued before any
//                                               wait; staged pairs are uploaded from
//                                               `host_copy` when the caller has the data
//                                               on the host, else staged once through the
//                                               set's reusable pinned buffer
//   copy_between(set, dst, dst_buffer, src, src_buffer)
//                                               a broadcast to one device
//
// broadcast and copy_between add what they move to set.transfers() (per ordered pair of
// set positions; a staged pair counts its two legs, root -> host and host -> device, or
// host -> device when the caller's host copy is uploaded); the plain `copy` calls know no
// set and count nothing (backend/cuda/transfer.hpp's transfers do).
//
// Asynchronous copies from or to pageable host memory are only asynchronous with
// respect to the device: the runtime copies through its own staging buffer, so the host
// span may be reused as soon as a host -> device call returns, and a device -> host call
// into pageable memory returns when the data is there. Use pinned_buffer for overlap.
//
// Host-compilable: this header needs the CUDA Toolkit's headers, not nvcc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

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
  device_guard guard(s.ordinal());
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
    backend::cuda::device_guard guard(s.ordinal());
    MGPU_CUDA_TRY(cudaMemcpyPeerAsync(dst.data(), dst.ordinal(), src.data(), src.ordinal(),
                                      src.size() * sizeof(T), s.handle()));
  }
}

/// Copies `src`, on set position `root`, into `*targets[d]` for every position d with a
/// non-null target (d != root), after the work queued so far on the streams involved;
/// later work on any of them runs after its copy. Pairs with peer access (and logical
/// devices of one GPU) get one device copy each, all queued before anything waits.
/// Staged pairs get `host_copy` uploaded directly when it is given (the same data the
/// caller still has on the host: sending it device -> host -> device would copy it twice),
/// else one download into the set's pinned staging buffer and one upload per device;
/// this call then waits for those uploads, as the staging buffer is shared.
/// @throws dimension_mismatch, out_of_memory (staging), cuda_error.
template <class T>
void broadcast(device_set<gpu>& set, std::size_t root, std::vector<buffer<T, gpu>*> const& targets,
               buffer<T, gpu> const& src, std::span<T const> host_copy = {}) {
  namespace bc = backend::cuda;
  if (!host_copy.empty()) bc::detail::check_copy_sizes(host_copy.size(), src.size());
  std::vector<std::size_t> staged;
  for (std::size_t d = 0; d < targets.size(); ++d) {
    if (targets[d] == nullptr || d == root) continue;
    bc::detail::check_copy_sizes(targets[d]->size(), src.size());
    if (!set.peer_access(d, root)) staged.push_back(d);
  }
  if (src.empty()) return;
  auto& counter = set.transfers();
  auto const src_bytes = static_cast<std::uint64_t>(src.size() * sizeof(T));
  auto& from = set[root];
  event<gpu> src_ready;
  src_ready.record(from.work);
  std::vector<event<gpu>> copied;
  copied.reserve(targets.size());
  for (std::size_t d = 0; d < targets.size(); ++d) {
    if (targets[d] == nullptr || d == root || !set.peer_access(d, root)) continue;
    auto& to = set[d];
    bc::device_guard guard(to.dev.ordinal);
    to.work.wait(src_ready);
    copy(*targets[d], src, to.work);
    copied.emplace_back().record(to.work);
    counter.add(static_cast<int>(root), static_cast<int>(d), src_bytes);
  }
  if (!staged.empty()) {
    if (!host_copy.empty()) {
      // Pageable host memory: each call returns once the runtime has taken the data.
      for (std::size_t d : staged) {
        auto& to = set[d];
        bc::device_guard guard(to.dev.ordinal);
        copy(*targets[d], host_copy, to.work);
        copied.emplace_back().record(to.work);
        counter.add(host_endpoint, static_cast<int>(d), src_bytes);
      }
    } else {
      auto [lock, bytes] = set.staging(src.size() * sizeof(T));
      auto* staging = reinterpret_cast<T*>(bytes);
      {
        bc::device_guard guard(from.dev.ordinal);
        bc::detail::copy_async(staging, src.data(), src.size(), from.work);
        src_ready.record(from.work);
        counter.add(static_cast<int>(root), host_endpoint, src_bytes);
      }
      std::vector<event<gpu>> uploaded(staged.size());
      for (std::size_t i = 0; i < staged.size(); ++i) {
        auto& to = set[staged[i]];
        bc::device_guard guard(to.dev.ordinal);
        to.work.wait(src_ready);
        bc::detail::copy_async(targets[staged[i]]->data(), staging, src.size(), to.work);
        uploaded[i].record(to.work);
        counter.add(host_endpoint, static_cast<int>(staged[i]), src_bytes);
      }
      for (auto const& e : uploaded) e.synchronize();  // the staging buffer is released below
    }
  }
  // `src` is not reused on the root's stream before every copy from it has finished.
  bc::device_guard guard(from.dev.ordinal);
  for (auto const& e : copied) from.work.wait(e);
}

/// Copies `src` on device `src_index` of `set` into `dst` on device `dst_index`: a
/// broadcast to one device (ordering and staging as there).
/// @throws dimension_mismatch, out_of_memory (staging), cuda_error.
template <class T>
void copy_between(device_set<gpu>& set, std::size_t dst_index, buffer<T, gpu>& dst,
                  std::size_t src_index, buffer<T, gpu> const& src) {
  backend::cuda::detail::check_copy_sizes(dst.size(), src.size());
  if (dst_index == src_index) {
    backend::cuda::device_guard guard(set[dst_index].dev.ordinal);
    copy(dst, src, set[dst_index].work);
    return;
  }
  std::vector<buffer<T, gpu>*> targets(set.size(), nullptr);
  targets[dst_index] = &dst;
  broadcast(set, src_index, targets, src);
}

}  // namespace mgpu
