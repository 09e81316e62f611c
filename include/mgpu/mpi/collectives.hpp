// mgpu/mpi/collectives.hpp — the collectives of execution/collectives.hpp over a device
// set spanning MPI ranks, for host memory (Kind = cpu).
//
//   broadcast(host, x, root)       rank root's host rows -> every device's copy (x replicated)
//   scatter(host, y, root)         rank root's host rows -> the row blocks of y
//   gather(y, host, root)          the row blocks of y -> rank root's host rows
//   all_gather(y, x)               the row blocks of y -> every device's full copy x
//   reduce_sum(p, host, root)      every device's partial (p replicated) -> their sum, rank root's host
//   reduce_sum(p, device)          ... -> their sum, in global device `device`'s copy
//
// Semantics are MPI's and those of the single-process collectives: the host buffer is read
// (or written) on rank `root` only; the other ranks pass an empty view ({}) or anything,
// unused. Every call is collective over the policy's communicator, returns when this
// rank's part is complete, and either returns on every rank or throws the same exception
// on every rank: it agrees on the shapes and root before moving data, and on the outcome
// afterwards (mpi/error.hpp). A difference in rows, cols or root between ranks is reported
// by name.
//
// The sum is deterministic: every element is added in global device order, p_0 + p_1 +
// ... + p_{G-1} from left to right, which is exactly the single-process reduce_sum's
// order over the same partials, so the result is bitwise the one of a single process
// holding those G devices. It is a chain along the ranks: rank 0 adds its devices'
// partials, sends the running sum to rank 1, which adds its own and passes it on; the last
// rank sends the total to the destination. (MPI_Reduce does not promise an order of
// operations, so it is not used.) Latency: ranks - 1 sequential hops; bytes: one partial
// per hop.
//
// What moves, and how it is counted in policy.transfers() (global endpoints: devices g,
// hosts host_of(r); b = rows·cols·sizeof(T), b_g = device g's rows·cols·sizeof(T); each
// rank counts what arrives at its endpoints; sum_transfers() adds them up):
//   broadcast   MPI_Bcast from root's host, received by device first_device(r) of every
//               other rank r (host_of(root) -> first_device(r): b), then copied to the
//               rank's other devices (first_device(r) -> first_device(r) + i: b); root's
//               own devices: host_of(root) -> g: b. Network: (ranks - 1)·b.
//   scatter     one message per device block: host_of(root) -> g: b_g for every g with
//               rows. Network: the blocks of other ranks' devices.
//   gather      g -> host_of(root): b_g for every g with rows. Network: as scatter.
//   all_gather  each rank gathers its devices' blocks into its first device's copy
//               (first + i -> first: b_{first+i}), MPI_Allgatherv exchanges the ranks' row
//               ranges between the first devices (first_device(s) -> first_device(r):
//               rank s's rows), and the first device's copy goes to the rank's other
//               devices (first -> first + i: b - b_{first+i}). Network: (ranks - 1)·b.
//   reduce_sum  every partial is read by its rank's host (g -> host_of(rank of g): b);
//               the running sum goes host_of(r) -> host_of(r + 1): b for r < ranks - 1;
//               the total goes host_of(ranks - 1) -> the destination: b, unless the
//               destination is rank ranks - 1's host (choose that root to save a hop).
//               Network: (ranks - 1)·b, plus b if the destination is on another rank.
// Messages carry whole rows (an MPI datatype of one row, strided on the host by its
// leading dimension), so a rank's rows and a row's bytes must each fit an int; beyond
// that the call throws index_overflow. Inside a rank, copies between devices run on the
// devices' workers (fork_join) while the calling thread does the MPI calls; the workers
// never call MPI.
//
// GPU buffers (Kind = gpu): the same calls, moved by NCCL, in mgpu/mpi/nccl.hpp; it is
// included at the end of this header when MGPU_WITH_NCCL is defined (the target
// mgpu::mpi_nccl defines it), so kind-generic code that calls mpi::broadcast & co. finds
// both kinds' overloads. Not here yet: CUDA-aware MPI; all_reduce.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "mgpu/core/device.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/dense/distributed_dense.hpp"
#include "mgpu/execution/fork_join.hpp"
#include "mgpu/execution/transfer.hpp"
#include "mgpu/mpi/distributed_dense.hpp"
#include "mgpu/mpi/error.hpp"
#include "mgpu/mpi/policy.hpp"

namespace mgpu::mpi {

namespace detail {

using ::mgpu::detail::copy_rows;
using ::mgpu::detail::dense_bytes;

/// One rectangular copy inside a rank, run by local device `device`'s worker.
template <class T>
struct local_copy {
  std::size_t device = 0;
  T* dst = nullptr;
  std::int64_t dst_ld = 0;
  T const* src = nullptr;
  std::int64_t src_ld = 0;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
};

/// Starts `copies` on their devices' workers; `copies` must outlive the handle's wait.
template <class T>
[[nodiscard]] ::mgpu::detail::fork_join_handle<cpu> start_copies(execution_policy<cpu> const& local,
                                                                 std::vector<local_copy<T>> const& copies) {
  return ::mgpu::detail::fork_join_async(local, [&copies](device_context<cpu>&, std::size_t d) {
    for (auto const& c : copies) {
      if (c.device == d) copy_rows<T>(c.dst, c.dst_ld, c.src, c.src_ld, c.rows, c.cols);
    }
  });
}

/// An MPI datatype of one row of `cols` elements of T, consecutive rows `ld` elements
/// apart (resized, so that a count of rows walks a strided host matrix).
template <class T>
class row_datatype {
 public:
  row_datatype(std::int64_t cols, std::int64_t ld, char const* what) {
    auto const bytes = mpi_count(cols * static_cast<std::int64_t>(sizeof(T)), what);
    MGPU_MPI_TRY(MPI_Type_contiguous(bytes, MPI_BYTE, &type_));
    if (ld != cols) {
      MPI_Datatype resized = MPI_DATATYPE_NULL;
      int const rc = MPI_Type_create_resized(type_, 0, static_cast<MPI_Aint>(ld) * static_cast<MPI_Aint>(sizeof(T)),
                                             &resized);
      MPI_Type_free(&type_);
      MGPU_MPI_TRY(rc);
      type_ = resized;
    }
    MGPU_MPI_TRY(MPI_Type_commit(&type_));
  }
  row_datatype(row_datatype const&) = delete;
  row_datatype& operator=(row_datatype const&) = delete;
  ~row_datatype() {
    if (type_ != MPI_DATATYPE_NULL) MPI_Type_free(&type_);
  }
  [[nodiscard]] MPI_Datatype get() const noexcept { return type_; }

 private:
  MPI_Datatype type_ = MPI_DATATYPE_NULL;
};

/// Waits for every request; @throws mpi_error.
inline void wait_all(std::vector<MPI_Request>& requests) {
  if (requests.empty()) return;
  MGPU_MPI_TRY(MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE));
}

inline void check_root(int root, int ranks, char const* what) {
  MGPU_EXPECTS(root >= 0 && root < ranks, what, ": root rank ", root, " is not in [0, ", ranks, ")");
}

template <class T>
void check_distribution(distributed_dense<cpu, T> const& x, distribution how, char const* what, char const* name) {
  MGPU_EXPECTS(x.distribution() == how, what, ": ", name, " must be ",
               how == distribution::replicated ? "replicated" : "in row blocks", ", but it is ",
               x.distribution() == distribution::replicated ? "replicated" : "in row blocks");
}

inline void check_host_shape(std::int64_t rows, std::int64_t cols, std::int64_t ld, std::int64_t want_rows,
                             std::int64_t want_cols, char const* what) {
  if (rows != want_rows || cols != want_cols) {
    throw dimension_mismatch(message(what, ": the host matrix on the root rank is ", rows, " x ", cols,
                                     " but the distributed one is ", want_rows, " x ", want_cols));
  }
  MGPU_EXPECTS(ld >= cols, what, ": the host matrix's leading dimension ", ld, " is below its ", cols, " columns");
}

inline constexpr int scatter_tag = 1;
inline constexpr int gather_tag = 1 << 12;
inline constexpr int chain_tag = 1 << 13;
inline constexpr int total_tag = (1 << 13) + 1;

/// The element-wise sum of this rank's partials added onto `acc` (or starting from the
/// first partial on rank 0), in device order, rows spread over the local workers.
template <class T>
void add_partials(distributed_dense<cpu, T> const& partials, T* acc, bool first_rank) {
  auto const& local = partials.local();
  auto const rows = partials.rows();
  auto const cols = partials.cols();
  auto const bounds = even_row_bounds(rows, local.device_count());
  ::mgpu::detail::fork_join(partials.policy().local(), [&](device_context<cpu>&, std::size_t w) {
    for (std::int64_t i = bounds[w]; i < bounds[w + 1]; ++i) {
      T* out = acc + i * cols;
      for (std::size_t e = 0; e < local.device_count(); ++e) {
        T const* p = local.view(e).data + i * cols;
        if (e == 0 && first_rank) {
          for (std::int64_t j = 0; j < cols; ++j) out[j] = p[j];
        } else {
          for (std::int64_t j = 0; j < cols; ++j) out[j] += p[j];
        }
      }
    }
  });
}

/// The chain of reduce_sum up to the last rank: returns on the last rank with the total in
/// `acc` (rows x cols, ld = cols); other ranks have passed their running sum on.
template <class T>
void reduce_chain(distributed_dense<cpu, T> const& partials, T* acc) {
  auto const& policy = partials.policy();
  auto const comm = policy.comm();
  auto const rank = policy.rank();
  auto const last = policy.ranks() - 1;
  auto const rows = mpi_count(partials.rows(), "mpi::reduce_sum");
  auto const b = dense_bytes<T>(partials.rows(), partials.cols());
  row_datatype<T> const row(partials.cols(), partials.cols(), "mpi::reduce_sum");
  if (rank > 0) {
    MGPU_MPI_TRY(MPI_Recv(acc, rows, row.get(), rank - 1, chain_tag, comm, MPI_STATUS_IGNORE));
    policy.transfers().add(host_of(rank - 1), host_of(rank), b);
  }
  add_partials(partials, acc, rank == 0);
  for (std::size_t e = 0; e < policy.local_device_count(); ++e) {
    policy.transfers().add(static_cast<int>(policy.first_device() + e), host_of(rank), b);
  }
  if (rank < last) MGPU_MPI_TRY(MPI_Send(acc, rows, row.get(), rank + 1, chain_tag, comm));
}

}  // namespace detail

/// Rank root's host rows -> every device's copy of `x` (replicated, same shape; `host` is
/// read on root only, any leading dimension). Collective; see the file comment for what
/// moves. @throws invalid_argument (root, x not replicated, ranks disagreeing on rows,
/// cols or root), dimension_mismatch (root's host shape), index_overflow (MPI counts),
/// mpi_error; every rank throws the same.
template <class T>
void broadcast(dense_view<std::type_identity_t<T> const> host, distributed_dense<cpu, T>& x, int root = 0) {
  static_assert(std::is_trivially_copyable_v<T>, "collectives move elements as bytes");
  auto const& policy = x.policy();
  auto const comm = policy.comm();
  auto const rank = policy.rank();
  auto error = detail::capture([&] {
    detail::check_root(root, policy.ranks(), "mpi::broadcast");
    detail::check_distribution(x, distribution::replicated, "mpi::broadcast", "the destination");
    if (rank == root) detail::check_host_shape(host.rows, host.cols, host.ld, x.rows(), x.cols(), "mpi::broadcast");
    detail::mpi_count(x.rows(), "mpi::broadcast: rows");
  });
  detail::agree(comm, "mpi::broadcast", {{"rows", x.rows()}, {"cols", x.cols()}, {"the root", root}}, error);
  if (x.rows() == 0 || x.cols() == 0) return;
  auto const rows = static_cast<int>(x.rows());
  auto const cols = x.cols();
  auto const b = detail::dense_bytes<T>(x.rows(), cols);
  auto& local = x.local();
  auto const first = static_cast<int>(policy.first_device());
  auto const n = policy.local_device_count();
  error = detail::capture([&] {
    std::vector<detail::local_copy<T>> copies;
    if (rank == root) {
      for (std::size_t d = 0; d < n; ++d) copies.push_back({d, local.view(d).data, cols, host.data, host.ld, rows, cols});
      auto running = detail::start_copies(policy.local(), copies);
      detail::row_datatype<T> const row(cols, host.ld, "mpi::broadcast");
      MGPU_MPI_TRY(MPI_Bcast(const_cast<T*>(host.data), rows, row.get(), root, comm));
      running.wait();
      for (std::size_t d = 0; d < n; ++d) policy.transfers().add(host_of(root), first + static_cast<int>(d), b);
      return;
    }
    T* const received = local.view(0).data;
    detail::row_datatype<T> const row(cols, cols, "mpi::broadcast");
    MGPU_MPI_TRY(MPI_Bcast(received, rows, row.get(), root, comm));
    policy.transfers().add(host_of(root), first, b);
    for (std::size_t d = 1; d < n; ++d) copies.push_back({d, local.view(d).data, cols, received, cols, rows, cols});
    detail::start_copies(policy.local(), copies).wait();
    for (std::size_t d = 1; d < n; ++d) policy.transfers().add(first, first + static_cast<int>(d), b);
  });
  detail::agree(comm, "mpi::broadcast (completion)", {}, error);
}

/// Rank root's host rows -> the row blocks of `y` (global device g gets rows
/// [bounds[g], bounds[g + 1])); `host` is read on root only. Collective.
/// @throws as broadcast (y must be in row blocks).
template <class T>
void scatter(dense_view<std::type_identity_t<T> const> host, distributed_dense<cpu, T>& y, int root = 0) {
  static_assert(std::is_trivially_copyable_v<T>, "collectives move elements as bytes");
  auto const& policy = y.policy();
  auto const comm = policy.comm();
  auto const rank = policy.rank();
  auto error = detail::capture([&] {
    detail::check_root(root, policy.ranks(), "mpi::scatter");
    detail::check_distribution(y, distribution::row_blocks, "mpi::scatter", "the destination");
    if (rank == root) detail::check_host_shape(host.rows, host.cols, host.ld, y.rows(), y.cols(), "mpi::scatter");
    detail::mpi_count(y.rows(), "mpi::scatter: rows");
  });
  detail::agree(comm, "mpi::scatter", {{"rows", y.rows()}, {"cols", y.cols()}, {"the root", root}}, error);
  if (y.rows() == 0 || y.cols() == 0) return;
  auto const cols = y.cols();
  auto const bounds = y.row_bounds();
  auto& local = y.local();
  auto const first = policy.first_device();
  auto const n = policy.local_device_count();
  auto const block_rows = [&](std::size_t g) { return bounds[g + 1] - bounds[g]; };
  error = detail::capture([&] {
    std::vector<MPI_Request> requests;
    std::vector<detail::local_copy<T>> copies;
    if (rank == root) {
      for (std::size_t d = 0; d < n; ++d) {
        if (block_rows(first + d) == 0) continue;
        copies.push_back({d, local.view(d).data, cols, host.data + bounds[first + d] * host.ld, host.ld,
                          block_rows(first + d), cols});
      }
      auto running = detail::start_copies(policy.local(), copies);
      detail::row_datatype<T> const row(cols, host.ld, "mpi::scatter");
      for (std::size_t g = 0; g < policy.device_count(); ++g) {
        auto const to = policy.rank_of(g);
        if (to == root || block_rows(g) == 0) continue;
        requests.emplace_back();
        MGPU_MPI_TRY(MPI_Isend(host.data + bounds[g] * host.ld, static_cast<int>(block_rows(g)), row.get(), to,
                               detail::scatter_tag + static_cast<int>(g - policy.first_device(to)), comm,
                               &requests.back()));
      }
      detail::wait_all(requests);
      running.wait();
    } else {
      detail::row_datatype<T> const row(cols, cols, "mpi::scatter");
      for (std::size_t d = 0; d < n; ++d) {
        if (block_rows(first + d) == 0) continue;
        requests.emplace_back();
        MGPU_MPI_TRY(MPI_Irecv(local.view(d).data, static_cast<int>(block_rows(first + d)), row.get(), root,
                               detail::scatter_tag + static_cast<int>(d), comm, &requests.back()));
      }
      detail::wait_all(requests);
    }
    for (std::size_t d = 0; d < n; ++d) {
      auto const g = first + d;
      if (block_rows(g) != 0) {
        policy.transfers().add(host_of(root), static_cast<int>(g), detail::dense_bytes<T>(block_rows(g), cols));
      }
    }
  });
  detail::agree(comm, "mpi::scatter (completion)", {}, error);
}

/// The row blocks of `y` -> rank root's host rows (the inverse of scatter); `host` is
/// written on root only. Collective. @throws as scatter.
template <class T>
void gather(distributed_dense<cpu, T> const& y, dense_view<std::type_identity_t<T>> host, int root = 0) {
  static_assert(std::is_trivially_copyable_v<T>, "collectives move elements as bytes");
  auto const& policy = y.policy();
  auto const comm = policy.comm();
  auto const rank = policy.rank();
  auto error = detail::capture([&] {
    detail::check_root(root, policy.ranks(), "mpi::gather");
    detail::check_distribution(y, distribution::row_blocks, "mpi::gather", "the source");
    if (rank == root) detail::check_host_shape(host.rows, host.cols, host.ld, y.rows(), y.cols(), "mpi::gather");
    detail::mpi_count(y.rows(), "mpi::gather: rows");
  });
  detail::agree(comm, "mpi::gather", {{"rows", y.rows()}, {"cols", y.cols()}, {"the root", root}}, error);
  if (y.rows() == 0 || y.cols() == 0) return;
  auto const cols = y.cols();
  auto const bounds = y.row_bounds();
  auto const& local = y.local();
  auto const first = policy.first_device();
  auto const n = policy.local_device_count();
  auto const block_rows = [&](std::size_t g) { return bounds[g + 1] - bounds[g]; };
  error = detail::capture([&] {
    std::vector<MPI_Request> requests;
    std::vector<detail::local_copy<T>> copies;
    if (rank == root) {
      for (std::size_t d = 0; d < n; ++d) {
        if (block_rows(first + d) == 0) continue;
        copies.push_back({d, host.data + bounds[first + d] * host.ld, host.ld, local.view(d).data, cols,
                          block_rows(first + d), cols});
      }
      auto running = detail::start_copies(policy.local(), copies);
      detail::row_datatype<T> const row(cols, host.ld, "mpi::gather");
      for (std::size_t g = 0; g < policy.device_count(); ++g) {
        auto const from = policy.rank_of(g);
        if (from == root || block_rows(g) == 0) continue;
        requests.emplace_back();
        MGPU_MPI_TRY(MPI_Irecv(host.data + bounds[g] * host.ld, static_cast<int>(block_rows(g)), row.get(), from,
                               detail::gather_tag + static_cast<int>(g - policy.first_device(from)), comm,
                               &requests.back()));
      }
      detail::wait_all(requests);
      running.wait();
      for (std::size_t g = 0; g < policy.device_count(); ++g) {
        if (block_rows(g) != 0) {
          policy.transfers().add(static_cast<int>(g), host_of(root), detail::dense_bytes<T>(block_rows(g), cols));
        }
      }
    } else {
      detail::row_datatype<T> const row(cols, cols, "mpi::gather");
      for (std::size_t d = 0; d < n; ++d) {
        if (block_rows(first + d) == 0) continue;
        requests.emplace_back();
        MGPU_MPI_TRY(MPI_Isend(local.view(d).data, static_cast<int>(block_rows(first + d)), row.get(), root,
                               detail::gather_tag + static_cast<int>(d), comm, &requests.back()));
      }
      detail::wait_all(requests);
    }
  });
  detail::agree(comm, "mpi::gather (completion)", {}, error);
}

/// The row blocks of `y` -> every device's full copy `x` (same shape, same policy).
/// Collective; see the file comment for what moves.
/// @throws invalid_argument (distributions, policies, ranks disagreeing on the shape),
///         dimension_mismatch (x and y shapes), index_overflow, mpi_error.
template <class T>
void all_gather(distributed_dense<cpu, T> const& y, distributed_dense<cpu, T>& x) {
  static_assert(std::is_trivially_copyable_v<T>, "collectives move elements as bytes");
  auto const& policy = x.policy();
  auto const comm = policy.comm();
  auto error = detail::capture([&] {
    MGPU_EXPECTS(y.policy().same_devices(policy),
                 "mpi::all_gather: the two containers live on different distributed policies");
    detail::check_distribution(y, distribution::row_blocks, "mpi::all_gather", "the source");
    detail::check_distribution(x, distribution::replicated, "mpi::all_gather", "the destination");
    if (y.rows() != x.rows() || y.cols() != x.cols()) {
      throw dimension_mismatch(detail::message("mpi::all_gather: the source is ", y.rows(), " x ", y.cols(),
                                       " but the destination is ", x.rows(), " x ", x.cols()));
    }
    detail::mpi_count(x.rows(), "mpi::all_gather: rows");
  });
  detail::agree(comm, "mpi::all_gather", {{"rows", x.rows()}, {"cols", x.cols()}}, error);
  if (x.rows() == 0 || x.cols() == 0) return;
  auto const rows = x.rows();
  auto const cols = x.cols();
  auto const bounds = y.row_bounds();
  auto const first = policy.first_device();
  auto const n = policy.local_device_count();
  auto const& from = y.local();
  auto& to = x.local();
  auto const block_rows = [&](std::size_t g) { return bounds[g + 1] - bounds[g]; };
  auto& counter = policy.transfers();
  error = detail::capture([&] {
    // 1. Each device's block into its own copy and into the first device's copy.
    T* const gathered = to.view(0).data;
    std::vector<detail::local_copy<T>> copies;
    for (std::size_t d = 0; d < n; ++d) {
      auto const g = first + d;
      if (block_rows(g) == 0) continue;
      copies.push_back({d, to.view(d).data + bounds[g] * cols, cols, from.view(d).data, cols, block_rows(g), cols});
      if (d == 0) continue;
      copies.push_back({d, gathered + bounds[g] * cols, cols, from.view(d).data, cols, block_rows(g), cols});
      counter.add(static_cast<int>(g), static_cast<int>(first), detail::dense_bytes<T>(block_rows(g), cols));
    }
    detail::start_copies(policy.local(), copies).wait();
    // 2. The ranks' row ranges between their first devices.
    std::vector<int> counts(static_cast<std::size_t>(policy.ranks()));
    std::vector<int> displs(counts.size());
    for (int r = 0; r < policy.ranks(); ++r) {
      auto const begin = bounds[policy.first_device(r)];
      counts[static_cast<std::size_t>(r)] = static_cast<int>(bounds[policy.first_device(r + 1)] - begin);
      displs[static_cast<std::size_t>(r)] = static_cast<int>(begin);
    }
    detail::row_datatype<T> const row(cols, cols, "mpi::all_gather");
    MGPU_MPI_TRY(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, gathered, counts.data(), displs.data(), row.get(),
                                comm));
    for (int r = 0; r < policy.ranks(); ++r) {
      if (r == policy.rank() || counts[static_cast<std::size_t>(r)] == 0) continue;
      counter.add(static_cast<int>(policy.first_device(r)), static_cast<int>(first),
                  detail::dense_bytes<T>(counts[static_cast<std::size_t>(r)], cols));
    }
    // 3. The first device's copy to the rank's other devices, less their own blocks.
    copies.clear();
    for (std::size_t d = 1; d < n; ++d) {
      auto const g = first + d;
      T* const dst = to.view(d).data;
      copies.push_back({d, dst, cols, gathered, cols, bounds[g], cols});
      copies.push_back({d, dst + bounds[g + 1] * cols, cols, gathered + bounds[g + 1] * cols, cols,
                        rows - bounds[g + 1], cols});
      counter.add(static_cast<int>(first), static_cast<int>(g), detail::dense_bytes<T>(rows - block_rows(g), cols));
    }
    detail::start_copies(policy.local(), copies).wait();
  });
  detail::agree(comm, "mpi::all_gather (completion)", {}, error);
}

/// Rank root's host = the element-wise sum of every device's copy in `partials`
/// (replicated; each device's copy is its partial), added in global device order (see
/// the file comment: bitwise the single-process sum). `host` is written on root only.
/// Collective. @throws as broadcast (partials must be replicated), out_of_memory.
template <class T>
void reduce_sum(distributed_dense<cpu, T> const& partials, dense_view<std::type_identity_t<T>> host, int root = 0) {
  static_assert(std::is_trivially_copyable_v<T>, "collectives move elements as bytes");
  auto const& policy = partials.policy();
  auto const comm = policy.comm();
  auto const rank = policy.rank();
  auto const last = policy.ranks() - 1;
  auto error = detail::capture([&] {
    detail::check_root(root, policy.ranks(), "mpi::reduce_sum");
    detail::check_distribution(partials, distribution::replicated, "mpi::reduce_sum", "the partials");
    if (rank == root) {
      detail::check_host_shape(host.rows, host.cols, host.ld, partials.rows(), partials.cols(), "mpi::reduce_sum");
    }
    detail::mpi_count(partials.rows(), "mpi::reduce_sum: rows");
  });
  detail::agree(comm, "mpi::reduce_sum",
                {{"rows", partials.rows()}, {"cols", partials.cols()}, {"the root", root}}, error);
  if (partials.rows() == 0 || partials.cols() == 0) return;
  auto const cols = partials.cols();
  auto const b = detail::dense_bytes<T>(partials.rows(), cols);
  error = detail::capture([&] {
    dense_matrix<cpu, T> acc(partials.rows(), cols);
    detail::reduce_chain(partials, acc.data());
    if (rank == last && root == last) {
      detail::copy_rows<T>(host.data, host.ld, acc.data(), cols, partials.rows(), cols);
    } else if (rank == last) {
      detail::row_datatype<T> const row(cols, cols, "mpi::reduce_sum");
      MGPU_MPI_TRY(MPI_Send(acc.data(), static_cast<int>(partials.rows()), row.get(), root, detail::total_tag, comm));
    } else if (rank == root) {
      detail::row_datatype<T> const row(cols, host.ld, "mpi::reduce_sum");
      MGPU_MPI_TRY(MPI_Recv(host.data, static_cast<int>(partials.rows()), row.get(), last, detail::total_tag, comm,
                            MPI_STATUS_IGNORE));
      policy.transfers().add(host_of(last), host_of(root), b);
    }
  });
  detail::agree(comm, "mpi::reduce_sum (completion)", {}, error);
}

/// Global device `device`'s copy in `partials` = the element-wise sum of every device's
/// copy (global device order); the other copies are unchanged. Collective.
/// @throws invalid_argument (device outside the set, partials not replicated, ranks
///         disagreeing), index_overflow, out_of_memory, mpi_error.
template <class T>
void reduce_sum(distributed_dense<cpu, T>& partials, std::size_t device) {
  static_assert(std::is_trivially_copyable_v<T>, "collectives move elements as bytes");
  auto const& policy = partials.policy();
  auto const comm = policy.comm();
  auto const rank = policy.rank();
  auto const last = policy.ranks() - 1;
  auto error = detail::capture([&] {
    MGPU_EXPECTS(device < policy.device_count(), "mpi::reduce_sum: device ", device, " is not in a set of ",
                 policy.device_count(), " devices");
    detail::check_distribution(partials, distribution::replicated, "mpi::reduce_sum", "the partials");
    detail::mpi_count(partials.rows(), "mpi::reduce_sum: rows");
  });
  detail::agree(comm, "mpi::reduce_sum to a device",
                {{"rows", partials.rows()}, {"cols", partials.cols()}, {"the root device", static_cast<std::int64_t>(device)}},
                error);
  if (partials.rows() == 0 || partials.cols() == 0) return;
  auto const cols = partials.cols();
  auto const rows = static_cast<int>(partials.rows());
  auto const b = detail::dense_bytes<T>(partials.rows(), cols);
  auto const owner = policy.rank_of(device);
  auto const target = static_cast<int>(device);
  error = detail::capture([&] {
    dense_matrix<cpu, T> acc(partials.rows(), cols);
    detail::reduce_chain(partials, acc.data());
    T* const dst = rank == owner ? partials.local().view(device - policy.first_device()).data : nullptr;
    if (rank == last && owner == last) {
      detail::copy_rows<T>(dst, cols, acc.data(), cols, partials.rows(), cols);
      policy.transfers().add(host_of(last), target, b);
    } else if (rank == last) {
      detail::row_datatype<T> const row(cols, cols, "mpi::reduce_sum");
      MGPU_MPI_TRY(MPI_Send(acc.data(), rows, row.get(), owner, detail::total_tag, comm));
    } else if (rank == owner) {
      detail::row_datatype<T> const row(cols, cols, "mpi::reduce_sum");
      MGPU_MPI_TRY(MPI_Recv(dst, rows, row.get(), last, detail::total_tag, comm, MPI_STATUS_IGNORE));
      policy.transfers().add(host_of(last), target, b);
    }
  });
  detail::agree(comm, "mpi::reduce_sum to a device (completion)", {}, error);
}

/// Vector overloads: a host span as an n x 1 matrix (read or written on root only).
template <class T>
void broadcast(std::span<std::type_identity_t<T> const> host, distributed_dense<cpu, T>& x, int root = 0) {
  broadcast(column_view(host), x, root);
}
template <class T>
void scatter(std::span<std::type_identity_t<T> const> host, distributed_dense<cpu, T>& y, int root = 0) {
  scatter(column_view(host), y, root);
}
template <class T>
void gather(distributed_dense<cpu, T> const& y, std::span<std::type_identity_t<T>> host, int root = 0) {
  gather(y, column_view(host), root);
}
template <class T>
void reduce_sum(distributed_dense<cpu, T> const& partials, std::span<std::type_identity_t<T>> host, int root = 0) {
  reduce_sum(partials, column_view(host), root);
}

}  // namespace mgpu::mpi

#if defined(MGPU_WITH_NCCL)
#include "mgpu/mpi/nccl.hpp"  // the GPU overloads (see the file comment)
#endif
