// mgpu/execution/transfer.hpp — explicit, asynchronous transfers of whole matrices between
// the host and the devices of a set, and between two devices of a set.
//
//   upload(set, d, host_view, stream, done)        host -> device d: a new owning matrix
//   download(set, d, device_matrix, stream, done)  device d -> host: a new host matrix
//   download(set, d, device_view, host_view, stream, done)   into the caller's array
//   peer_copy(set, to, from, matrix, stream, done) device `from` -> device `to`
//
// Each call checks the shapes, allocates the destination (uninitialised), enqueues the
// copy on the stream the caller names, records `done` after it and returns at once. The
// destination's contents are valid, and the source may be released or overwritten, once
// `done` has completed (done.synchronize(), or stream.wait(done) for later work).
// Every call adds the bytes it moves to set.transfers() (core/device_set.hpp), with the
// host's user memory as `host_endpoint`.
//
// This file is the host kind's implementation: a host "device" is a logical device of a
// cpu:N set, its memory the process's memory, and the copy runs as a task on the stream
// given, normally the destination device's own (`set[d].work`), so the copy's pages are
// first touched by that device's worker (Linux places them on its NUMA node). Buffers are
// allocated without touching a page, so the task's copy is the first touch. The CUDA
// overloads (mgpu/backend/cuda/transfer.hpp) take device_set<gpu> and stream<gpu>.
//
// CSR matrices are copied as their three arrays; a source view that is a block of rows
// (row_offsets[0] != 0) gives a matrix whose offsets start at 0. A CSR transfer moves
// (rows + 1 + nnz)·sizeof(I) + nnz·sizeof(T) bytes, a dense one rows·cols·sizeof(T).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "mgpu/core/buffer.hpp"
#include "mgpu/core/device_set.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/core/stream.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/sparse/csr_matrix.hpp"
#include "mgpu/sparse/csr_view.hpp"

namespace mgpu {

namespace detail {

/// Bytes of a CSR transfer: offsets, columns and values.
template <class T, class I>
constexpr std::uint64_t csr_bytes(std::int64_t rows, std::int64_t nnz) noexcept {
  return static_cast<std::uint64_t>(rows + 1 + nnz) * sizeof(I) + static_cast<std::uint64_t>(nnz) * sizeof(T);
}

/// Bytes of a dense transfer (packed: the leading dimension's gaps are not sent).
template <class T>
constexpr std::uint64_t dense_bytes(std::int64_t rows, std::int64_t cols) noexcept {
  return static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(cols) * sizeof(T);
}

/// @throws invalid_argument unless `device` is a position of a set of `size` devices.
inline void check_device_position(std::size_t device, std::size_t size, char const* what) {
  MGPU_EXPECTS(device < size, what, ": device ", device, " is not in a set of ", size, " devices");
}

/// Transfers wait on the set's streams (the caller's event), so one started from inside a
/// task of the same set could wait for a device that is busy running that very task (or a
/// sibling task waiting in turn): refused, as fork_join refuses a nested call.
/// @throws invalid_argument when the calling thread is a worker of a device of `set`.
inline void require_outside_tasks(device_set<cpu>& set, char const* what) {
  for (std::size_t d = 0; d < set.size(); ++d) {
    if (set[d].work.runs_on_this_thread()) {
      throw invalid_argument(message(what, " was called from inside a task of device ", d, " of the same device set (",
                                     set.to_string(), "); a device runs one task at a time, so waiting for the "
                                     "transfer could wait for itself. This happens when an algorithm runs inside a "
                                     "fork_join task on the same set: run the inner work inline, or on another set"));
    }
  }
}

/// Copies rows (`rows` x `cols`, leading dimensions given) between host arrays.
template <class T>
void copy_rows(T* dst, std::int64_t dst_ld, T const* src, std::int64_t src_ld, std::int64_t rows,
               std::int64_t cols) noexcept {
  if (rows == 0 || cols == 0) return;
  if (dst_ld == cols && src_ld == cols) {
    std::memcpy(dst, src, static_cast<std::size_t>(rows * cols) * sizeof(T));
    return;
  }
  for (std::int64_t i = 0; i < rows; ++i) {
    std::memcpy(dst + i * dst_ld, src + i * src_ld, static_cast<std::size_t>(cols) * sizeof(T));
  }
}

/// An uninitialised host CSR matrix of the given shape, to be filled by a copy task.
template <class T, class I>
csr_matrix<cpu, T, I> csr_shell(I rows, I cols, I nnz) {
  return csr_matrix<cpu, T, I>::adopt_canonical(rows, cols, buffer<I, cpu>(static_cast<std::size_t>(rows) + 1),
                                                buffer<I, cpu>(static_cast<std::size_t>(nnz)),
                                                buffer<T, cpu>(static_cast<std::size_t>(nnz)));
}

/// Fills `dst` (a csr_shell of src's shape) with `src`'s rows, offsets rebased to 0.
template <class T, class I>
void fill_csr(I* offsets, I* columns, T* values, csr_view<T, I> src) noexcept {
  auto const base = src.rows == 0 ? I{0} : src.row_offsets[0];
  for (I r = 0; r <= src.rows; ++r) offsets[r] = static_cast<I>(src.row_offsets[r] - base);
  auto const nnz = static_cast<std::size_t>(src.nnz());
  if (nnz == 0) return;
  std::memcpy(columns, src.col_indices + base, nnz * sizeof(I));
  std::memcpy(values, src.values + base, nnz * sizeof(T));
}

/// A host copy of `src` (rebased), made on the calling thread: its pages are first
/// touched there. O(rows + nnz).
template <class T, class I>
csr_matrix<cpu, T, I> copy_csr(csr_view<T, I> src) {
  auto m = csr_shell<T, I>(src.rows, src.cols, src.nnz());
  auto* offsets = const_cast<I*>(m.row_offsets().data());
  auto* columns = const_cast<I*>(m.col_indices().data());
  fill_csr(offsets, columns, m.values().data(), src);
  return m;
}

/// Enqueues the copy of `src` into the shell `dst` on `s` and records `done`.
template <class T, class I>
void enqueue_csr_copy(csr_matrix<cpu, T, I>& dst, csr_view<T, I> src, stream<cpu>& s, event<cpu>& done) {
  auto* offsets = const_cast<I*>(dst.row_offsets().data());
  auto* columns = const_cast<I*>(dst.col_indices().data());
  auto* values = dst.values().data();
  s.enqueue([offsets, columns, values, src] { fill_csr(offsets, columns, values, src); });
  done.record(s);
}

}  // namespace detail

/// Host CSR rows -> a matrix on host device `device` of `set`, copied by a task on `s`
/// (normally set[device].work, which first-touches the copy). O(rows + nnz) on the stream.
/// `src` must stay alive until `done` completes. @throws invalid_argument (device).
template <class T, class I>
[[nodiscard]] csr_matrix<cpu, T, I> upload(device_set<cpu>& set, std::size_t device, csr_view<T, I> src,
                                           stream<cpu>& s, event<cpu>& done) {
  detail::check_device_position(device, set.size(), "upload");
  detail::require_outside_tasks(set, "upload");
  auto dst = detail::csr_shell<T, I>(src.rows, src.cols, src.nnz());
  detail::enqueue_csr_copy(dst, src, s, done);
  set.transfers().add(host_endpoint, static_cast<int>(device), detail::csr_bytes<T, I>(src.rows, src.nnz()));
  return dst;
}

/// Host rows (any leading dimension) -> a dense matrix (ld = cols) on host device
/// `device`, copied by a task on `s`. `src` must stay alive until `done` completes.
/// @throws invalid_argument (device).
template <class T>
[[nodiscard]] dense_matrix<cpu, std::remove_const_t<T>> upload(device_set<cpu>& set, std::size_t device,
                                                               dense_view<T> src, stream<cpu>& s,
                                                               event<cpu>& done) {
  using U = std::remove_const_t<T>;
  detail::check_device_position(device, set.size(), "upload");
  detail::require_outside_tasks(set, "upload");
  dense_matrix<cpu, U> dst(src.rows, src.cols);
  s.enqueue([d = dst.data(), src] { detail::copy_rows<U>(d, src.cols, src.data, src.ld, src.rows, src.cols); });
  done.record(s);
  set.transfers().add(host_endpoint, static_cast<int>(device), detail::dense_bytes<U>(src.rows, src.cols));
  return dst;
}

/// A matrix on host device `device` -> a new host matrix, copied by a task on `s`.
/// `src` must stay alive until `done` completes. @throws invalid_argument (device).
template <class T, class I>
[[nodiscard]] csr_matrix<cpu, T, I> download(device_set<cpu>& set, std::size_t device,
                                             csr_matrix<cpu, T, I> const& src, stream<cpu>& s, event<cpu>& done) {
  detail::check_device_position(device, set.size(), "download");
  detail::require_outside_tasks(set, "download");
  auto dst = detail::csr_shell<T, I>(src.rows(), src.cols(), src.nnz());
  detail::enqueue_csr_copy(dst, src.view(), s, done);
  set.transfers().add(static_cast<int>(device), host_endpoint, detail::csr_bytes<T, I>(src.rows(), src.nnz()));
  return dst;
}

/// Device rows -> the caller's host rows (same shape, any leading dimensions), by a task
/// on `s`. Both must stay alive until `done` completes.
/// @throws invalid_argument (device), dimension_mismatch (shapes).
template <class T>
void download(device_set<cpu>& set, std::size_t device, dense_view<T const> src, dense_view<T> dst,
              stream<cpu>& s, event<cpu>& done) {
  detail::check_device_position(device, set.size(), "download");
  detail::require_outside_tasks(set, "download");
  if (src.rows != dst.rows || src.cols != dst.cols) {
    throw dimension_mismatch(detail::message("download: the device matrix is ", src.rows, " x ", src.cols,
                                             " but the host matrix is ", dst.rows, " x ", dst.cols));
  }
  s.enqueue([src, dst] { detail::copy_rows<T>(dst.data, dst.ld, src.data, src.ld, src.rows, src.cols); });
  done.record(s);
  set.transfers().add(static_cast<int>(device), host_endpoint, detail::dense_bytes<T>(src.rows, src.cols));
}

/// A dense matrix on host device `device` -> a new host matrix, by a task on `s`.
template <class T>
[[nodiscard]] dense_matrix<cpu, T> download(device_set<cpu>& set, std::size_t device,
                                            dense_matrix<cpu, T> const& src, stream<cpu>& s, event<cpu>& done) {
  dense_matrix<cpu, T> dst(src.rows(), src.cols());
  download(set, device, src.view(), dst.view(), s, done);
  return dst;
}

/// A matrix on host device `from` -> a new matrix on host device `to`, by a task on `s`
/// (normally set[to].work: the destination's worker first-touches the copy). `src` must
/// stay alive and unchanged until `done` completes; order `s` after the work that writes
/// `src` (s.wait(event recorded on its stream)). @throws invalid_argument (devices).
template <class T, class I>
[[nodiscard]] csr_matrix<cpu, T, I> peer_copy(device_set<cpu>& set, std::size_t to, std::size_t from,
                                              csr_matrix<cpu, T, I> const& src, stream<cpu>& s, event<cpu>& done) {
  detail::check_device_position(to, set.size(), "peer_copy");
  detail::check_device_position(from, set.size(), "peer_copy");
  detail::require_outside_tasks(set, "peer_copy");
  auto dst = detail::csr_shell<T, I>(src.rows(), src.cols(), src.nnz());
  detail::enqueue_csr_copy(dst, src.view(), s, done);
  if (to != from) {
    set.transfers().add(static_cast<int>(from), static_cast<int>(to), detail::csr_bytes<T, I>(src.rows(), src.nnz()));
  }
  return dst;
}

/// Dense overload of peer_copy (same rules).
template <class T>
[[nodiscard]] dense_matrix<cpu, T> peer_copy(device_set<cpu>& set, std::size_t to, std::size_t from,
                                             dense_matrix<cpu, T> const& src, stream<cpu>& s, event<cpu>& done) {
  detail::check_device_position(to, set.size(), "peer_copy");
  detail::check_device_position(from, set.size(), "peer_copy");
  detail::require_outside_tasks(set, "peer_copy");
  dense_matrix<cpu, T> dst(src.rows(), src.cols());
  s.enqueue([d = dst.data(), v = src.view()] { detail::copy_rows<T>(d, v.cols, v.data, v.ld, v.rows, v.cols); });
  done.record(s);
  if (to != from) {
    set.transfers().add(static_cast<int>(from), static_cast<int>(to), detail::dense_bytes<T>(src.rows(), src.cols()));
  }
  return dst;
}

}  // namespace mgpu
