// mgpu/execution/collectives.hpp — the steps that move data between the host and the
// devices of a set, or between devices: the only way distributed data crosses devices.
//
//   broadcast(host, x)         host rows -> every device's full copy (x replicated)
//   scatter(host, y)           host rows -> row blocks (y row_blocks)
//   gather(y, host)            row blocks -> host rows
//   all_gather(y, x)           row blocks -> every device's full copy
//   reduce_sum(p, host)        per-device partials (p replicated) -> their sum on the host
//   reduce_sum(p, root)        ... -> their sum in device root's copy
//
// Semantics are MPI's (MPI_Bcast, MPI_Scatterv, MPI_Gatherv, MPI_Allgatherv, MPI_Reduce
// with MPI_SUM), over the distributed_dense containers of dense/distributed_dense.hpp.
// Each call returns when every copy is complete (its results may be read, its sources
// reused); errors are rethrown as fork_join does. The sum adds the partials in device
// order (0, 1, ..., n-1) for every element, so it does not depend on how the work is
// split, only on the partials.
//
// Every call counts what it moves in the set's transfer_counter: per (source,
// destination) endpoint pair, the bytes of each block sent (rows·cols·sizeof(T); the host
// is `host_endpoint`). A block's copy into another part of its own device's memory (the
// local part of an all_gather) is not a transfer and is not counted. Complexity: the bytes
// counted, spread over the devices.
//
// The interface has no transport types: the implementation is chosen by the kind through
// detail::collective_transport<Kind>. Host devices (here): every copy is a task on the
// *destination* device's worker (gather: the source's), so a device's copy of the data is
// first touched by its own worker; the host reads other devices' blocks in place, as they
// share one memory. CUDA (backend/cuda/transfer.hpp): peer copies issued to every
// destination before anything waits, staged through the set's pinned buffer where a pair
// has no peer access. Sets spanning MPI ranks have their own overloads on
// mpi::distributed_dense (mgpu/mpi/collectives.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "mgpu/core/device_set.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/execution/transfer.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/dense/distributed_dense.hpp"
#include "mgpu/execution/fork_join.hpp"
#include "mgpu/execution/policy.hpp"

namespace mgpu {

namespace detail {

/// One rectangular copy of a collective: rows x cols elements from endpoint `from` to
/// endpoint `to` (device positions, or host_endpoint), between row-major arrays with
/// leading dimensions. Pointers are in the endpoints' memory spaces.
template <class T>
struct copy_job {
  int from = host_endpoint;
  int to = host_endpoint;
  T* dst = nullptr;
  std::int64_t dst_ld = 0;
  T const* src = nullptr;
  std::int64_t src_ld = 0;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
};

/// How a kind's devices run collectives: `copy(policy, jobs)` runs every job and returns
/// when all are complete; `sum(policy, partials, dst, to)` writes the element-wise sum of
/// the partials (device order) into `dst` on endpoint `to`. Both count their bytes.
template <class Kind>
struct collective_transport;

/// Host devices (see the file comment).
template <>
struct collective_transport<cpu> {
  template <class T>
  static void copy(execution_policy<cpu> const& policy, std::vector<copy_job<T>> const& jobs) {
    fork_join(policy, [&](device_context<cpu>&, std::size_t d) {
      auto const self = static_cast<int>(d);
      for (auto const& j : jobs) {
        if (j.to == self || (j.to == host_endpoint && j.from == self)) {
          copy_rows<T>(j.dst, j.dst_ld, j.src, j.src_ld, j.rows, j.cols);
        }
      }
    });
    count(policy, jobs);
  }

  template <class T>
  static void sum(execution_policy<cpu> const& policy, std::vector<dense_view<T const>> const& partials,
                  dense_view<T> dst, int to) {
    auto const bounds = even_row_bounds(dst.rows, policy.device_count());
    fork_join(policy, [&](device_context<cpu>&, std::size_t d) {
      std::vector<T> row(static_cast<std::size_t>(dst.cols));
      for (std::int64_t i = bounds[d]; i < bounds[d + 1]; ++i) {
        for (std::int64_t j = 0; j < dst.cols; ++j) row[j] = partials[0](i, j);
        for (std::size_t e = 1; e < partials.size(); ++e) {
          for (std::int64_t j = 0; j < dst.cols; ++j) row[j] += partials[e](i, j);
        }
        for (std::int64_t j = 0; j < dst.cols; ++j) dst(i, j) = row[j];
      }
    });
    auto& counter = policy.devices().transfers();
    for (std::size_t e = 0; e < partials.size(); ++e) {
      if (static_cast<int>(e) != to) counter.add(static_cast<int>(e), to, dense_bytes<T>(dst.rows, dst.cols));
    }
  }

  template <class T>
  static void count(execution_policy<cpu> const& policy, std::vector<copy_job<T>> const& jobs) {
    auto& counter = policy.devices().transfers();
    for (auto const& j : jobs) {
      if (j.from != j.to) counter.add(j.from, j.to, dense_bytes<T>(j.rows, j.cols));
    }
  }
};

template <class Kind, class A, class B>
void require_same_devices(distributed_dense<Kind, A> const& a, distributed_dense<Kind, B> const& b,
                          char const* what) {
  MGPU_EXPECTS(&a.policy().devices() == &b.policy().devices(), what,
               ": the two containers live on different device sets (", a.policy().devices().to_string(), " and ",
               b.policy().devices().to_string(), ")");
}

template <class Kind, class T>
void require_distribution(distributed_dense<Kind, T> const& x, distribution how, char const* what,
                          char const* name) {
  MGPU_EXPECTS(x.distribution() == how, what, ": ", name, " must be ",
               how == distribution::replicated ? "replicated" : "in row blocks", ", but it is ",
               x.distribution() == distribution::replicated ? "replicated" : "in row blocks");
}

inline void require_shape(std::int64_t rows, std::int64_t cols, std::int64_t want_rows, std::int64_t want_cols,
                          char const* what) {
  if (rows != want_rows || cols != want_cols) {
    throw dimension_mismatch(message(what, ": the host matrix is ", rows, " x ", cols,
                                     " but the distributed one is ", want_rows, " x ", want_cols));
  }
}

}  // namespace detail

/// Host rows -> every device's copy of `x` (x replicated, same shape as `host`; any
/// leading dimension on the host). Moves rows·cols·sizeof(T) bytes host -> each device.
/// @throws invalid_argument (x not replicated), dimension_mismatch, device errors.
template <class Kind, class T>
void broadcast(dense_view<T const> host, distributed_dense<Kind, T>& x) {
  detail::require_distribution(x, distribution::replicated, "broadcast", "the destination");
  detail::require_shape(host.rows, host.cols, x.rows(), x.cols(), "broadcast");
  std::vector<detail::copy_job<T>> jobs;
  for (std::size_t d = 0; d < x.device_count(); ++d) {
    jobs.push_back({host_endpoint, static_cast<int>(d), x.view(d).data, x.cols(), host.data, host.ld, x.rows(),
                    x.cols()});
  }
  detail::collective_transport<Kind>::copy(x.policy(), jobs);
}

/// Host rows -> the row blocks of `y` (device d gets rows [bounds[d], bounds[d + 1])).
/// Moves each block's bytes host -> its device once.
/// @throws invalid_argument (y replicated), dimension_mismatch, device errors.
template <class Kind, class T>
void scatter(dense_view<T const> host, distributed_dense<Kind, T>& y) {
  detail::require_distribution(y, distribution::row_blocks, "scatter", "the destination");
  detail::require_shape(host.rows, host.cols, y.rows(), y.cols(), "scatter");
  std::vector<detail::copy_job<T>> jobs;
  auto const b = y.row_bounds();
  for (std::size_t d = 0; d < y.device_count(); ++d) {
    if (b[d] == b[d + 1]) continue;
    jobs.push_back({host_endpoint, static_cast<int>(d), y.view(d).data, y.cols(), host.data + b[d] * host.ld,
                    host.ld, b[d + 1] - b[d], y.cols()});
  }
  detail::collective_transport<Kind>::copy(y.policy(), jobs);
}

/// The row blocks of `y` -> host rows (the inverse of scatter). Each block's bytes move
/// device -> host once. @throws invalid_argument (y replicated), dimension_mismatch.
template <class Kind, class T>
void gather(distributed_dense<Kind, T> const& y, dense_view<T> host) {
  detail::require_distribution(y, distribution::row_blocks, "gather", "the source");
  detail::require_shape(host.rows, host.cols, y.rows(), y.cols(), "gather");
  std::vector<detail::copy_job<T>> jobs;
  auto const b = y.row_bounds();
  for (std::size_t d = 0; d < y.device_count(); ++d) {
    if (b[d] == b[d + 1]) continue;
    jobs.push_back({static_cast<int>(d), host_endpoint, host.data + b[d] * host.ld, host.ld, y.view(d).data,
                    y.cols(), b[d + 1] - b[d], y.cols()});
  }
  detail::collective_transport<Kind>::copy(y.policy(), jobs);
}

/// The row blocks of `y` -> every device's full copy `x` (same shape and devices). Block
/// e's bytes move e -> d for every other device d; its copy on e is local (not counted).
/// @throws invalid_argument (distributions, device sets), dimension_mismatch.
template <class Kind, class T>
void all_gather(distributed_dense<Kind, T> const& y, distributed_dense<Kind, T>& x) {
  detail::require_same_devices(y, x, "all_gather");
  detail::require_distribution(y, distribution::row_blocks, "all_gather", "the source");
  detail::require_distribution(x, distribution::replicated, "all_gather", "the destination");
  detail::require_shape(y.rows(), y.cols(), x.rows(), x.cols(), "all_gather");
  std::vector<detail::copy_job<T>> jobs;
  auto const b = y.row_bounds();
  for (std::size_t d = 0; d < x.device_count(); ++d) {
    for (std::size_t e = 0; e < y.device_count(); ++e) {
      if (b[e] == b[e + 1]) continue;
      jobs.push_back({static_cast<int>(e), static_cast<int>(d), x.view(d).data + b[e] * x.cols(), x.cols(),
                      y.view(e).data, y.cols(), b[e + 1] - b[e], y.cols()});
    }
  }
  detail::collective_transport<Kind>::copy(x.policy(), jobs);
}

/// host = the element-wise sum of every device's copy in `partials` (replicated; each
/// device's copy is its partial), added in device order. Each partial's bytes move
/// device -> host once. @throws invalid_argument (partials not replicated), dimension_mismatch.
template <class Kind, class T>
void reduce_sum(distributed_dense<Kind, T> const& partials, dense_view<T> host) {
  detail::require_distribution(partials, distribution::replicated, "reduce_sum", "the partials");
  detail::require_shape(host.rows, host.cols, partials.rows(), partials.cols(), "reduce_sum");
  std::vector<dense_view<T const, Kind>> views;
  for (std::size_t d = 0; d < partials.device_count(); ++d) views.push_back(partials.view(d));
  if (host.rows == 0 || host.cols == 0) return;
  detail::collective_transport<Kind>::sum(partials.policy(), views, host, host_endpoint);
}

/// Device root's copy in `partials` = the element-wise sum of every device's copy (device
/// order); the other copies are unchanged. Each other partial's bytes move to root once.
/// @throws invalid_argument (not replicated, root outside the set), device errors.
template <class Kind, class T>
void reduce_sum(distributed_dense<Kind, T>& partials, std::size_t root) {
  detail::require_distribution(partials, distribution::replicated, "reduce_sum", "the partials");
  detail::check_device_position(root, partials.device_count(), "reduce_sum");
  std::vector<dense_view<T const, Kind>> views;
  for (std::size_t d = 0; d < partials.device_count(); ++d) views.push_back(std::as_const(partials).view(d));
  if (partials.rows() == 0 || partials.cols() == 0) return;
  detail::collective_transport<Kind>::sum(partials.policy(), views, partials.view(root), static_cast<int>(root));
}

/// Vector overloads: a host span as an n x 1 matrix.
template <class Kind, class T>
void broadcast(std::span<T const> host, distributed_dense<Kind, T>& x) {
  broadcast(column_view(host), x);
}
template <class Kind, class T>
void scatter(std::span<T const> host, distributed_dense<Kind, T>& y) {
  scatter(column_view(host), y);
}
template <class Kind, class T>
void gather(distributed_dense<Kind, T> const& y, std::span<T> host) {
  gather(y, column_view(host));
}
template <class Kind, class T>
void reduce_sum(distributed_dense<Kind, T> const& partials, std::span<T> host) {
  reduce_sum(partials, column_view(host));
}

}  // namespace mgpu
