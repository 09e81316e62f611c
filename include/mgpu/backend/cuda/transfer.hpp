// mgpu/backend/cuda/transfer.hpp — the GPU overloads of execution/transfer.hpp (upload,
// download, peer_copy of csr_matrix and dense_matrix) and the CUDA implementation of the
// collectives (execution/collectives.hpp: detail::collective_transport<gpu>).
//
// Transfers are cudaMemcpy(2D)Async calls on the stream the caller names, followed by
// `done.record(stream)`. Copies from or to pageable host memory are asynchronous only with
// respect to the device (the runtime stages them; copy.hpp's file comment), so a host
// source may be reused once the call returns; pinned memory gives real overlap.
// Device-to-device copies between a pair with peer access (device_set<gpu>::peer_access)
// are single peer copies ordered after the source's stream by an event; other pairs are
// staged through the set's pinned staging buffer, and then the call waits for its copy
// (the buffer is shared).
//
// Collectives: every copy of a call is issued before anything waits — host -> device on
// the destination's stream, device -> host on the source's, device -> device on the
// destination's stream after an event of the source's (peer), or down on the source's and
// up on the destination's stream through one region of the staging buffer (no peer
// access) — and then the streams are synchronised. reduce_sum is staged through the host:
// each partial is downloaded, summed in device order on the host, and (for a root device)
// uploaded; what it moves is counted as such (device -> host, host -> root).
//
// Host-compilable: this header needs the CUDA Toolkit's headers, not nvcc. Compiled, not
// run on a GPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "mgpu/backend/cuda/buffer.hpp"
#include "mgpu/backend/cuda/copy.hpp"
#include "mgpu/backend/cuda/csr_matrix.hpp"
#include "mgpu/backend/cuda/dense_matrix.hpp"
#include "mgpu/backend/cuda/device_set.hpp"
#include "mgpu/backend/cuda/runtime.hpp"
#include "mgpu/backend/cuda/stream.hpp"
#include "mgpu/execution/transfer.hpp"
#include "mgpu/execution/collectives.hpp"

namespace mgpu {

namespace backend::cuda::detail {

/// cudaMemcpy2DAsync of rows x cols elements between row-major arrays (UVA direction).
template <class T>
void copy_rows_async(T* dst, std::int64_t dst_ld, T const* src, std::int64_t src_ld, std::int64_t rows,
                     std::int64_t cols, stream<gpu> const& s) {
  if (rows == 0 || cols == 0) return;
  device_guard guard(s.ordinal());
  MGPU_CUDA_TRY(cudaMemcpy2DAsync(dst, static_cast<std::size_t>(dst_ld) * sizeof(T), src,
                                  static_cast<std::size_t>(src_ld) * sizeof(T),
                                  static_cast<std::size_t>(cols) * sizeof(T), static_cast<std::size_t>(rows),
                                  cudaMemcpyDefault, s.handle()));
}

/// Copies `n` elements from device `from` to device `to` of `set` on `s` (a stream of
/// `to`), after the work queued so far on `from`'s stream: one peer copy, or staged
/// through the set's pinned buffer (waiting for it). Counts the bytes.
template <class T>
void device_to_device(device_set<gpu>& set, std::size_t to, std::size_t from, T* dst, T const* src, std::size_t n,
                      stream<gpu> const& s) {
  if (n == 0) return;
  auto const bytes = static_cast<std::uint64_t>(n * sizeof(T));
  event<gpu> ready;
  ready.record(set[from].work);
  s.wait(ready);
  if (set.peer_access(to, from)) {
    copy_async(dst, src, n, s);
    if (to != from) set.transfers().add(static_cast<int>(from), static_cast<int>(to), bytes);
    return;
  }
  auto [lock, staging] = set.staging(n * sizeof(T));
  auto* stage = reinterpret_cast<T*>(staging);
  copy_async(stage, src, n, s);
  copy_async(dst, stage, n, s);
  s.synchronize();  // the staging buffer is released with `lock`
  set.transfers().add(static_cast<int>(from), host_endpoint, bytes);
  set.transfers().add(host_endpoint, static_cast<int>(to), bytes);
}

}  // namespace backend::cuda::detail

/// Host CSR rows -> a csr_matrix on GPU `device` of `set`, allocated and copied on `s`
/// (a stream of that device, normally set[device].work); offsets rebased to 0.
/// @throws invalid_argument (device), out_of_memory, cuda_error.
template <class T, class I>
[[nodiscard]] csr_matrix<gpu, T, I> upload(device_set<gpu>& set, std::size_t device, csr_view<T, I> src,
                                           stream<gpu> const& s, event<gpu>& done) {
  namespace bd = backend::cuda::detail;
  detail::check_device_position(device, set.size(), "upload");
  auto dst = csr_matrix<gpu, T, I>::allocate(src.rows, src.cols, src.nnz(), s);
  std::vector<I> offsets(static_cast<std::size_t>(src.rows) + 1);
  auto const base = src.rows == 0 ? I{0} : src.row_offsets[0];
  for (I r = 0; r <= src.rows; ++r) offsets[static_cast<std::size_t>(r)] = static_cast<I>(src.row_offsets[r] - base);
  auto const nnz = static_cast<std::size_t>(src.nnz());
  bd::copy_async(dst.row_offsets().data(), offsets.data(), offsets.size(), s);  // pageable: staged now
  bd::copy_async(dst.col_indices().data(), src.col_indices + base, nnz, s);
  bd::copy_async(dst.values().data(), src.values + base, nnz, s);
  done.record(s);
  set.transfers().add(host_endpoint, static_cast<int>(device), detail::csr_bytes<T, I>(src.rows, src.nnz()));
  return dst;
}

/// Host rows (any leading dimension) -> a dense_matrix on GPU `device`, on `s`.
template <class T>
[[nodiscard]] dense_matrix<gpu, std::remove_const_t<T>> upload(device_set<gpu>& set, std::size_t device,
                                                               dense_view<T> src, stream<gpu> const& s,
                                                               event<gpu>& done) {
  using U = std::remove_const_t<T>;
  detail::check_device_position(device, set.size(), "upload");
  dense_matrix<gpu, U> dst(src.rows, src.cols, s);
  backend::cuda::detail::copy_rows_async<U>(dst.data(), src.cols, src.data, src.ld, src.rows, src.cols, s);
  done.record(s);
  set.transfers().add(host_endpoint, static_cast<int>(device), detail::dense_bytes<U>(src.rows, src.cols));
  return dst;
}

/// A csr_matrix on GPU `device` -> a new host matrix, copied on `s`; valid once `done`
/// has completed.
template <class T, class I>
[[nodiscard]] csr_matrix<cpu, T, I> download(device_set<gpu>& set, std::size_t device,
                                             csr_matrix<gpu, T, I> const& src, stream<gpu> const& s,
                                             event<gpu>& done) {
  namespace bd = backend::cuda::detail;
  detail::check_device_position(device, set.size(), "download");
  auto dst = detail::csr_shell<T, I>(src.rows(), src.cols(), src.nnz());
  bd::copy_async(const_cast<I*>(dst.row_offsets().data()), src.row_offsets().data(), src.row_offsets().size(), s);
  bd::copy_async(const_cast<I*>(dst.col_indices().data()), src.col_indices().data(), src.col_indices().size(), s);
  bd::copy_async(dst.values().data(), src.values().data(), src.values().size(), s);
  done.record(s);
  set.transfers().add(static_cast<int>(device), host_endpoint, detail::csr_bytes<T, I>(src.rows(), src.nnz()));
  return dst;
}

/// Device rows -> the caller's host rows (same shape), on `s`.
/// @throws invalid_argument (device), dimension_mismatch, cuda_error.
template <class T>
void download(device_set<gpu>& set, std::size_t device, dense_view<T const, gpu> src, dense_view<T> dst,
              stream<gpu> const& s, event<gpu>& done) {
  detail::check_device_position(device, set.size(), "download");
  if (src.rows != dst.rows || src.cols != dst.cols) {
    throw dimension_mismatch(detail::message("download: the device matrix is ", src.rows, " x ", src.cols,
                                             " but the host matrix is ", dst.rows, " x ", dst.cols));
  }
  backend::cuda::detail::copy_rows_async<T>(dst.data, dst.ld, src.data, src.ld, src.rows, src.cols, s);
  done.record(s);
  set.transfers().add(static_cast<int>(device), host_endpoint, detail::dense_bytes<T>(src.rows, src.cols));
}

/// A dense_matrix on GPU `device` -> a new host matrix, on `s`.
template <class T>
[[nodiscard]] dense_matrix<cpu, T> download(device_set<gpu>& set, std::size_t device,
                                            dense_matrix<gpu, T> const& src, stream<gpu> const& s, event<gpu>& done) {
  dense_matrix<cpu, T> dst(src.rows(), src.cols());
  download(set, device, src.view(), dst.view(), s, done);
  return dst;
}

/// A csr_matrix on GPU `from` -> a new one on GPU `to`, allocated and copied on `s` (a
/// stream of `to`) after the work queued on `from`'s stream: peer copies, or staged.
template <class T, class I>
[[nodiscard]] csr_matrix<gpu, T, I> peer_copy(device_set<gpu>& set, std::size_t to, std::size_t from,
                                              csr_matrix<gpu, T, I> const& src, stream<gpu> const& s,
                                              event<gpu>& done) {
  namespace bd = backend::cuda::detail;
  detail::check_device_position(to, set.size(), "peer_copy");
  detail::check_device_position(from, set.size(), "peer_copy");
  auto dst = csr_matrix<gpu, T, I>::allocate(src.rows(), src.cols(), src.nnz(), s);
  bd::device_to_device(set, to, from, dst.row_offsets().data(), src.row_offsets().data(), src.row_offsets().size(), s);
  bd::device_to_device(set, to, from, dst.col_indices().data(), src.col_indices().data(), src.col_indices().size(), s);
  bd::device_to_device(set, to, from, dst.values().data(), src.values().data(), src.values().size(), s);
  done.record(s);
  return dst;
}

/// Dense overload of peer_copy (same rules).
template <class T>
[[nodiscard]] dense_matrix<gpu, T> peer_copy(device_set<gpu>& set, std::size_t to, std::size_t from,
                                             dense_matrix<gpu, T> const& src, stream<gpu> const& s, event<gpu>& done) {
  detail::check_device_position(to, set.size(), "peer_copy");
  detail::check_device_position(from, set.size(), "peer_copy");
  dense_matrix<gpu, T> dst(src.rows(), src.cols(), s);
  backend::cuda::detail::device_to_device(set, to, from, dst.data(), src.data(),
                                          static_cast<std::size_t>(src.rows() * src.cols()), s);
  done.record(s);
  return dst;
}

namespace detail {

/// The collectives on GPUs (see the file comment).
template <>
struct collective_transport<gpu> {
  template <class T>
  static void copy(execution_policy<gpu> const& policy, std::vector<copy_job<T>> const& jobs) {
    namespace bd = backend::cuda::detail;
    auto& set = policy.devices();
    auto const n = set.size();
    auto const job_bytes = [](copy_job<T> const& j) { return dense_bytes<T>(j.rows, j.cols); };
    auto const staged = [&](copy_job<T> const& j) {
      return j.from != host_endpoint && j.to != host_endpoint && j.from != j.to &&
             !set.peer_access(static_cast<std::size_t>(j.to), static_cast<std::size_t>(j.from));
    };
    std::vector<event<gpu>> ready(n);
    for (std::size_t d = 0; d < n; ++d) ready[d].record(set[d].work);
    std::uint64_t staging_bytes = 0;
    for (auto const& j : jobs) {
      if (staged(j)) staging_bytes += job_bytes(j);
    }
    std::optional<std::pair<std::unique_lock<std::mutex>, std::byte*>> staging;
    if (staging_bytes > 0) staging.emplace(set.staging(static_cast<std::size_t>(staging_bytes)));
    std::size_t staging_used = 0;
    auto& counter = set.transfers();
    try {
      for (auto const& j : jobs) {
        if (j.rows == 0 || j.cols == 0) continue;
        if (j.from == host_endpoint) {
          bd::copy_rows_async(j.dst, j.dst_ld, j.src, j.src_ld, j.rows, j.cols, set[j.to].work);
        } else if (j.to == host_endpoint) {
          bd::copy_rows_async(j.dst, j.dst_ld, j.src, j.src_ld, j.rows, j.cols, set[j.from].work);
        } else if (!staged(j)) {
          auto const& to = set[j.to].work;
          if (j.from != j.to) to.wait(ready[j.from]);
          bd::copy_rows_async(j.dst, j.dst_ld, j.src, j.src_ld, j.rows, j.cols, to);
        } else {
          auto* stage = reinterpret_cast<T*>(staging->second + staging_used);
          staging_used += static_cast<std::size_t>(job_bytes(j));
          bd::copy_rows_async(stage, j.cols, j.src, j.src_ld, j.rows, j.cols, set[j.from].work);
          event<gpu> down;
          down.record(set[j.from].work);
          set[j.to].work.wait(down);
          bd::copy_rows_async(j.dst, j.dst_ld, stage, j.cols, j.rows, j.cols, set[j.to].work);
          counter.add(j.from, host_endpoint, job_bytes(j));
          counter.add(host_endpoint, j.to, job_bytes(j));
          continue;
        }
        if (j.from != j.to) counter.add(j.from, j.to, job_bytes(j));
      }
    } catch (...) {
      for (std::size_t d = 0; d < n; ++d) static_cast<void>(cudaStreamSynchronize(set[d].work.handle()));
      throw;
    }
    for (std::size_t d = 0; d < n; ++d) set[d].work.synchronize();
  }

  template <class T>
  static void sum(execution_policy<gpu> const& policy, std::vector<dense_view<T const, gpu>> const& partials,
                  dense_view<T, gpu> root_block, int to) {
    auto const rows = root_block.rows;
    auto const cols = root_block.cols;
    auto const total = sum_on_host(policy, partials, rows, cols);
    auto& set = policy.devices();
    auto const& s = set[static_cast<std::size_t>(to)].work;
    backend::cuda::detail::copy_rows_async<T>(root_block.data, root_block.ld, total.data(), cols, rows, cols, s);
    s.synchronize();
    set.transfers().add(host_endpoint, to, dense_bytes<T>(rows, cols));
  }

  template <class T>
  static void sum(execution_policy<gpu> const& policy, std::vector<dense_view<T const, gpu>> const& partials,
                  dense_view<T> host, int) {
    auto const total = sum_on_host(policy, partials, host.rows, host.cols);
    copy_rows<T>(host.data, host.ld, total.data(), host.cols, host.rows, host.cols);
  }

 private:
  /// The partials downloaded and added in device order, rows x cols packed.
  template <class T>
  static std::vector<T> sum_on_host(execution_policy<gpu> const& policy,
                                    std::vector<dense_view<T const, gpu>> const& partials, std::int64_t rows,
                                    std::int64_t cols) {
    auto& set = policy.devices();
    auto const count = static_cast<std::size_t>(rows * cols);
    std::vector<std::vector<T>> host(partials.size(), std::vector<T>(count));
    for (std::size_t e = 0; e < partials.size(); ++e) {
      backend::cuda::detail::copy_rows_async<T>(host[e].data(), cols, partials[e].data, partials[e].ld, rows, cols,
                                                set[e].work);
    }
    for (std::size_t e = 0; e < partials.size(); ++e) {
      set[e].work.synchronize();
      set.transfers().add(static_cast<int>(e), host_endpoint, dense_bytes<T>(rows, cols));
    }
    std::vector<T> total(host[0]);
    for (std::size_t e = 1; e < host.size(); ++e) {
      for (std::size_t i = 0; i < count; ++i) total[i] += host[e][i];
    }
    return total;
  }
};

}  // namespace detail
}  // namespace mgpu
