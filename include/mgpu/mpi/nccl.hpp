// mgpu/mpi/nccl.hpp — the collectives of mpi/collectives.hpp for GPU buffers (Kind = gpu),
// moved by NCCL between the CUDA devices of a set spanning MPI ranks.
//
//   mgpu::mpi::distributed_policy<mgpu::gpu> policy("cuda:0,1,2,3");   // every rank: 4 GPUs
//   auto x = mgpu::mpi::distributed_dense<mgpu::gpu, float>::replicated(policy, n, 1);
//   mgpu::mpi::broadcast(host_x, x);          // the same calls as for host devices
//
// Same signatures and semantics as the host versions (mpi/collectives.hpp): broadcast,
// scatter, gather, all_gather, reduce_sum to a root's host and reduce_sum to a global
// device, and the span overloads; the host buffer is host memory on rank `root` (any
// leading dimension); every call is collective, returns when this rank's part is
// complete (results readable, sources reusable) and either returns on every rank or
// throws the same exception on every rank. Algorithm code written against
// mpi::distributed_dense<Kind, T> therefore runs unchanged on GPU ranks.
//
// Communicators. One NCCL communicator per global device: NCCL rank g is global device g
// (ranks x local GPUs, in the policy's order), so NCCL's ranks are the set's devices.
// They are made on the first GPU collective over a policy: rank 0 calls ncclGetUniqueId,
// MPI_Bcast sends the id over the policy's communicator, and every rank calls
// ncclCommInitRank for each of its local devices inside one ncclGroupStart/End. They are
// cached on the policy's MPI communicator as an MPI attribute (MPI_Comm_set_attr), so
// every copy of the policy shares them, and they are released (ncclCommAbort) when the
// policy's communicator is freed, i.e. with the policy's last copy. A failed collective
// releases them on every rank (the next call makes new ones). Before the first
// communicator is made the ranks exchange their GPUs' UUIDs: NCCL needs every NCCL rank
// on a distinct GPU, so two global devices on one GPU (ranks sharing device 0, or
// "cuda:0,0" under MGPU_CUDA_SHARED_DEVICES) are refused with invalid_argument, naming
// them, on every rank. nccl_communicator(policy, d) hands a communicator to the
// program's own NCCL calls.
//
// What NCCL moves (every NCCL operation moves bytes, ncclUint8, on each device's work
// stream, the one every other operation of the device is ordered on):
//   broadcast   root uploads its host rows to its first device (cudaMemcpy2DAsync), then
//               ncclBroadcast from that device to every device.
//   scatter     root uploads its own devices' blocks straight to them, and the other
//               ranks' blocks into one temporary on its first device, which ncclSends
//               each block to its device (ncclRecv there), all in one group.
//   gather      the inverse: other ranks' devices ncclSend their blocks to a temporary on
//               root's first device, which is downloaded with root's own blocks.
//   all_gather  one ncclBroadcast per non-empty block, rooted at the block's device,
//               into every device's copy at the block's rows, all in one group (blocks
//               have different sizes, which ncclAllGather does not allow).
//   reduce_sum  a chain over the global devices in order: device 0 ncclSends its partial
//               to device 1, which adds its own (cuBLAS axpy with alpha = 1, into a
//               temporary: partials are not changed) and sends the running sum on, and so
//               on up to device G-1, which sends the total to the destination device (or
//               downloads it, when the destination is its own rank's host). Each element
//               is added in global device order, p_0 + p_1 + ... + p_{G-1} from left to
//               right, as the host version and the single-process reduce_sum do:
//               axpy computes 1·p + s, and 1·p is exact, so with or without a fused
//               multiply-add each element is rounded once, as s + p is (IEEE arithmetic,
//               no flush of subnormals assumed). ncclReduce is not used: NCCL does not
//               promise an order of operations. Latency: G - 1 sequential hops (not
//               R - 1 as on host devices; hops inside a rank are device-to-device),
//               plus one to the destination; not pipelined. Float and double only.
//
// What it counts in policy.transfers() (the host version's rules: global endpoints, each
// rank counts what arrives at its own endpoints, sum_transfers adds them up; b =
// rows·cols·sizeof(T), b_g = device g's block, f = first_device(root), "remote" = the
// devices of ranks other than root):
//   broadcast   host_of(root) -> f: b; f -> g: b for every other device g.
//               All pairs G·b; network (G - n_root)·b, n_root being root's devices:
//               every GPU of the other ranks receives it ((R-1)·b with one GPU per rank).
//   scatter     host_of(root) -> g: b_g for root's own devices; host_of(root) -> f: the
//               remote blocks' bytes (one upload); f -> g: b_g for every remote g.
//               Network: the remote blocks (as on host devices).
//   gather      g -> host_of(root): b_g for root's own devices; g -> f: b_g for every
//               remote g; f -> host_of(root): the remote blocks' bytes.
//   all_gather  e -> d: b_e for every device d and every other device e with rows (a
//               block's copy on its own device is not counted): (G-1)·b in all, as one
//               process; network Σ_r n_r·(b - B_r) for rank r's n_r devices and B_r bytes
//               of rows (more than the host version's ·b when ranks hold several
//               GPUs: every GPU receives every foreign block).
//   reduce_sum  g-1 -> g: b for g = 1..G-1; then G-1 -> the destination device: b (none
//               when it is G-1), or to a host: G-1 -> host_of(root): b when G-1 is on
//               root, else G-1 -> f: b and f -> host_of(root): b.
//               Network: the hops between ranks, R-1 of them, plus the final one if the
//               destination is on another rank than G-1's.
// Memory: scatter and gather hold the remote blocks in one temporary on root's first
// GPU; reduce_sum holds one rows x cols temporary per local GPU. Calls: O(G) NCCL
// operations per collective and rank (all_gather: one broadcast per block and local GPU).
//
// NCCL's own routing (rings, trees, proxies) is not seen; counts are from the logical
// source to the logical destination. These rules are written once, as
// detail::transfer_plan (every rank's moves of a call; each rank counts those arriving
// at its endpoints once its part is complete).
//
// Errors. Shapes, roots and whether the communicators exist are agreed first (as on host
// devices: a difference is reported by name on every rank). NCCL calls go through
// MGPU_NCCL_TRY, which throws nccl_error (a device_call_error: ncclResult_t name, call,
// file:line, NCCL's description and last error). While a rank waits for its streams it
// polls ncclCommGetAsyncError (NCCL's documented pattern for remote and network
// failures); on any error it aborts its communicators (ncclCommAbort: its queued NCCL
// kernels end, and its peers see a remote error instead of waiting for ever), drains its
// streams, and the outcome is agreed over MPI: every rank throws the first failing
// rank's error, prefixed "rank R of N: " (rebuilt by the agreement: an nccl_error or
// cuda_error arrives as device_error with its message), and releases its communicators. Not caught: a rank that fails inside ncclCommInitRank
// while the others wait in NCCL's bootstrap (blocking communicators are used), and a
// peer whose NCCL never reports the remote failure: both can hang, as NCCL does.
//
// Threads: as the host version; NCCL and MPI are called by the calling thread only,
// which issues the work of every local device (ncclGroupStart/End around the calls of a
// rank's several devices). Needs: CUDA, MPI, NCCL (link mgpu::mpi_nccl); the header is
// host-compilable (no kernels: the sum is cuBLAS's). CUDA-aware MPI is not used.
// Compiled, not run on a GPU.
#pragma once

#include <mpi.h>
#include <nccl.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "mgpu/backend/cuda/dense_matrix.hpp"
#include "mgpu/backend/cuda/device_set.hpp"
#include "mgpu/backend/cuda/runtime.hpp"
#include "mgpu/backend/cuda/stream.hpp"
#include "mgpu/backend/cuda/transfer.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/mpi/collectives.hpp"
#include "mgpu/mpi/distributed_dense.hpp"
#include "mgpu/mpi/error.hpp"
#include "mgpu/mpi/policy.hpp"

namespace mgpu::mpi {

namespace detail {

/// The name of an ncclResult_t ("ncclRemoteError", ...), for messages.
constexpr char const* nccl_status_name(ncclResult_t s) noexcept {
  switch (s) {
    case ncclSuccess: return "ncclSuccess";
    case ncclUnhandledCudaError: return "ncclUnhandledCudaError";
    case ncclSystemError: return "ncclSystemError";
    case ncclInternalError: return "ncclInternalError";
    case ncclInvalidArgument: return "ncclInvalidArgument";
    case ncclInvalidUsage: return "ncclInvalidUsage";
    case ncclRemoteError: return "ncclRemoteError";
    case ncclInProgress: return "ncclInProgress";
    default: return "ncclResult_t (unknown)";
  }
}

/// NCCL's description of a status, and its last error message when it has one.
inline std::string nccl_description(ncclResult_t s) {
  std::string text = ncclGetErrorString(s);
  char const* last = ncclGetLastError(nullptr);
  if (last != nullptr && last[0] != '\0') text += std::string("; last error: ") + last;
  return text;
}

}  // namespace detail

/// A failed NCCL call: the ncclResult_t's name, the call as written, its file:line, and
/// NCCL's description with its last error. Thrown by MGPU_NCCL_TRY and by the collectives
/// when a communicator reports an asynchronous error.
class nccl_error : public device_call_error {
 public:
  nccl_error(ncclResult_t status, std::string call, std::string file, int line)
      : device_call_error("NCCL", detail::nccl_status_name(status), std::move(call), std::move(file), line,
                          detail::nccl_description(status)),
        status_(status) {}
  /// The status the call returned (or the communicator reported).
  [[nodiscard]] ncclResult_t status() const noexcept { return status_; }

 private:
  ncclResult_t status_;
};

}  // namespace mgpu::mpi

/// Runs an NCCL call and throws mgpu::mpi::nccl_error unless it returns ncclSuccess.
#define MGPU_NCCL_TRY(call)                                                             \
  do {                                                                                  \
    ncclResult_t const mgpu_nccl_status_ = (call);                                      \
    if (mgpu_nccl_status_ != ncclSuccess) {                                             \
      throw ::mgpu::mpi::nccl_error(mgpu_nccl_status_, #call, __FILE__, __LINE__);      \
    }                                                                                   \
  } while (false)

namespace mgpu::mpi {

namespace detail {

/// The NCCL communicators of one rank: one per local device, NCCL rank = global device.
/// Released with ncclCommAbort (never waits for peers; every collective has completed
/// its work before it returns, so nothing is left to abort in normal use).
class nccl_communicators {
 public:
  explicit nccl_communicators(std::vector<ncclComm_t> comms) : comms_(std::move(comms)) {}
  nccl_communicators(nccl_communicators const&) = delete;
  nccl_communicators& operator=(nccl_communicators const&) = delete;
  ~nccl_communicators() { abort(); }

  [[nodiscard]] ncclComm_t operator[](std::size_t d) const noexcept { return comms_[d]; }
  [[nodiscard]] std::size_t size() const noexcept { return comms_.size(); }

  /// Aborts every communicator and forgets them (ncclCommAbort frees a communicator's
  /// local resources without synchronising with other ranks).
  void abort() noexcept {
    for (auto& c : comms_) {
      if (c != nullptr) static_cast<void>(ncclCommAbort(c));
      c = nullptr;
    }
  }

 private:
  std::vector<ncclComm_t> comms_;
};

/// MPI's delete callback of the cache attribute: runs when the policy's communicator is
/// freed (or the attribute deleted).
inline int delete_nccl_communicators(MPI_Comm, int, void* value, void*) {
  delete static_cast<nccl_communicators*>(value);
  return MPI_SUCCESS;
}

/// The attribute key under which a communicator caches its NCCL communicators (made once
/// per process, after MPI_Init).
inline int nccl_keyval() {
  static int const key = [] {
    int k = MPI_KEYVAL_INVALID;
    MGPU_MPI_TRY(MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, &delete_nccl_communicators, &k, nullptr));
    return k;
  }();
  return key;
}

/// The cached communicators of the policy's communicator, or null.
inline nccl_communicators* cached_nccl(distributed_policy<gpu> const& policy) {
  void* value = nullptr;
  int found = 0;
  MGPU_MPI_TRY(MPI_Comm_get_attr(policy.comm(), nccl_keyval(), &value, &found));
  return found != 0 ? static_cast<nccl_communicators*>(value) : nullptr;
}

/// Releases the cached communicators (aborting them), if any.
inline void drop_nccl(distributed_policy<gpu> const& policy) noexcept {
  void* value = nullptr;
  int found = 0;
  if (MPI_Comm_get_attr(policy.comm(), nccl_keyval(), &value, &found) == MPI_SUCCESS && found != 0) {
    MPI_Comm_delete_attr(policy.comm(), nccl_keyval());
  }
}

/// Every global device's GPU UUID, exchanged over the policy's communicator (16 bytes
/// per device, global order). Collective. @throws cuda_error, mpi_error.
inline std::vector<unsigned char> global_uuids(distributed_policy<gpu> const& policy, std::exception_ptr& error) {
  auto const& set = policy.local().devices();
  constexpr std::size_t width = 16;
  std::vector<unsigned char> mine(set.size() * width, 0);
  error = capture([&] {
    for (std::size_t d = 0; d < set.size(); ++d) {
      cudaDeviceProp prop{};
      MGPU_CUDA_TRY(cudaGetDeviceProperties(&prop, set.device_at(d).ordinal));
      std::memcpy(mine.data() + d * width, &prop.uuid, width);
    }
  });
  std::vector<int> counts(static_cast<std::size_t>(policy.ranks()));
  std::vector<int> displs(counts.size());
  for (int r = 0; r < policy.ranks(); ++r) {
    counts[static_cast<std::size_t>(r)] = mpi_count(static_cast<std::int64_t>(policy.device_count(r) * width), "NCCL");
    displs[static_cast<std::size_t>(r)] =
        mpi_count(static_cast<std::int64_t>(policy.first_device(r) * width), "NCCL");
  }
  std::vector<unsigned char> all(policy.device_count() * width, 0);
  MGPU_MPI_TRY(MPI_Allgatherv(mine.data(), static_cast<int>(mine.size()), MPI_BYTE, all.data(), counts.data(),
                              displs.data(), MPI_BYTE, policy.comm()));
  return all;
}

/// Runs `issue` (NCCL calls through MGPU_NCCL_TRY) between ncclGroupStart and
/// ncclGroupEnd; the group is ended on every path. @throws nccl_error.
template <class F>
void nccl_group(F&& issue) {
  MGPU_NCCL_TRY(ncclGroupStart());
  try {
    issue();
  } catch (...) {
    static_cast<void>(ncclGroupEnd());
    throw;
  }
  MGPU_NCCL_TRY(ncclGroupEnd());
}

/// Makes this rank's communicators (see the file comment). Collective over the policy's
/// communicator; every step that can fail on one rank is agreed.
/// @throws invalid_argument (two global devices on one GPU), nccl_error, cuda_error,
///         mpi_error; every rank throws the same.
inline std::unique_ptr<nccl_communicators> make_nccl(distributed_policy<gpu> const& policy) {
  auto const comm = policy.comm();
  std::exception_ptr error;
  auto const uuids = global_uuids(policy, error);
  if (!error) {
    error = capture([&] {
      constexpr std::size_t width = 16;
      for (std::size_t a = 0; a < policy.device_count(); ++a) {
        for (std::size_t b = a + 1; b < policy.device_count(); ++b) {
          if (std::memcmp(uuids.data() + a * width, uuids.data() + b * width, width) != 0) continue;
          throw invalid_argument(message(
              "mpi NCCL collectives: global devices ", a, " (rank ", policy.rank_of(a), ") and ", b, " (rank ",
              policy.rank_of(b), ") are the same GPU; NCCL needs every global device on its own GPU (run one rank "
              "per GPU, or give each rank distinct GPUs)"));
        }
      }
    });
  }
  ncclUniqueId id{};
  if (policy.rank() == 0 && !error) error = capture([&] { MGPU_NCCL_TRY(ncclGetUniqueId(&id)); });
  agree(comm, "mpi NCCL communicators", {{"global devices", static_cast<std::int64_t>(policy.device_count())}},
        error);
  MGPU_MPI_TRY(MPI_Bcast(&id, static_cast<int>(sizeof(id)), MPI_BYTE, 0, comm));
  auto const& set = policy.local().devices();
  auto const n = set.size();
  auto const global = static_cast<int>(policy.device_count());
  auto const first = static_cast<int>(policy.first_device());
  std::vector<ncclComm_t> comms(n, nullptr);
  error = capture([&] {
    nccl_group([&] {
      for (std::size_t d = 0; d < n; ++d) {
        backend::cuda::device_guard guard(set.device_at(d).ordinal);
        MGPU_NCCL_TRY(ncclCommInitRank(&comms[d], global, id, first + static_cast<int>(d)));
      }
    });
  });
  auto made = std::make_unique<nccl_communicators>(std::move(comms));
  if (error) made->abort();
  agree(comm, "mpi NCCL communicators (made)", {}, error);
  return made;
}

/// The policy's communicators, made (collectively) on first use and cached on its MPI
/// communicator. Every rank must be in the same state (`exists` was agreed).
inline nccl_communicators& nccl_of(distributed_policy<gpu> const& policy) {
  if (auto* cached = cached_nccl(policy)) return *cached;
  auto made = make_nccl(policy);
  MGPU_MPI_TRY(MPI_Comm_set_attr(policy.comm(), nccl_keyval(), made.get()));
  return *made.release();
}

/// Waits for every local device's work stream, polling the communicators for
/// asynchronous errors meanwhile. @throws cuda_error, nccl_error.
inline void wait_streams(nccl_communicators const& comms, device_set<gpu> const& set) {
  std::vector<char> done(set.size(), 0);
  std::size_t remaining = set.size();
  unsigned polls = 0;
  while (remaining > 0) {
    for (std::size_t d = 0; d < set.size(); ++d) {
      if (done[d] != 0) continue;
      backend::cuda::device_guard guard(set.device_at(d).ordinal);
      cudaError_t const s = cudaStreamQuery(set[d].work.handle());
      if (s == cudaSuccess) {
        done[d] = 1;
        --remaining;
        continue;
      }
      if (s != cudaErrorNotReady) {
        backend::cuda::detail::throw_cuda(s, "cudaStreamQuery(work)", __FILE__, __LINE__);
      }
      ncclResult_t async = ncclSuccess;
      MGPU_NCCL_TRY(ncclCommGetAsyncError(comms[d], &async));
      if (async != ncclSuccess && async != ncclInProgress) {
        throw nccl_error(async, "ncclCommGetAsyncError (an asynchronous error of the communicator)", __FILE__,
                         __LINE__);
      }
    }
    if (remaining == 0) break;
    if (++polls < 1000) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
}

/// One move of a GPU collective as policy.transfers() counts it: `bytes` from endpoint
/// `from` to endpoint `to` (global devices, or host_of(rank)).
struct planned_move {
  int from = 0;
  int to = 0;
  std::uint64_t bytes = 0;
};

/// The moves of each GPU collective, every rank's (the rules of the file comment, in one
/// place: the collectives count these, and the tests check them by hand without a GPU).
/// `first`: ranks + 1 entries, rank r holding global devices [first[r], first[r + 1]);
/// `bounds`: device_count() + 1 row bounds; `row_bytes`: cols·sizeof(T); `b`: a whole
/// matrix's bytes. Moves of 0 bytes are left out. O(G) (all_gather: O(G²)).
struct transfer_plan {
  static int rank_of(std::span<std::size_t const> first, std::size_t g) {
    return static_cast<int>(std::upper_bound(first.begin(), first.end(), g) - first.begin()) - 1;
  }

  static std::vector<planned_move> broadcast(std::span<std::size_t const> first, int root, std::uint64_t b) {
    auto const f = first[static_cast<std::size_t>(root)];
    std::vector<planned_move> moves{{host_of(root), static_cast<int>(f), b}};
    for (std::size_t g = 0; g < first.back(); ++g) {
      if (g != f) moves.push_back({static_cast<int>(f), static_cast<int>(g), b});
    }
    return prune(std::move(moves));
  }

  static std::vector<planned_move> scatter(std::span<std::size_t const> first, std::span<std::int64_t const> bounds,
                                           int root, std::uint64_t row_bytes) {
    auto const f = first[static_cast<std::size_t>(root)];
    std::vector<planned_move> moves{{host_of(root), static_cast<int>(f), remote_bytes(first, bounds, root, row_bytes)}};
    for (std::size_t g = 0; g < first.back(); ++g) {
      auto const bytes = block_bytes(bounds, g, row_bytes);
      moves.push_back({rank_of(first, g) == root ? host_of(root) : static_cast<int>(f), static_cast<int>(g), bytes});
    }
    return prune(std::move(moves));
  }

  static std::vector<planned_move> gather(std::span<std::size_t const> first, std::span<std::int64_t const> bounds,
                                          int root, std::uint64_t row_bytes) {
    auto const f = first[static_cast<std::size_t>(root)];
    std::vector<planned_move> moves;
    for (std::size_t g = 0; g < first.back(); ++g) {
      auto const bytes = block_bytes(bounds, g, row_bytes);
      moves.push_back({static_cast<int>(g), rank_of(first, g) == root ? host_of(root) : static_cast<int>(f), bytes});
    }
    moves.push_back({static_cast<int>(f), host_of(root), remote_bytes(first, bounds, root, row_bytes)});
    return prune(std::move(moves));
  }

  static std::vector<planned_move> all_gather(std::span<std::size_t const> first,
                                              std::span<std::int64_t const> bounds, std::uint64_t row_bytes) {
    std::vector<planned_move> moves;
    for (std::size_t d = 0; d < first.back(); ++d) {
      for (std::size_t e = 0; e < first.back(); ++e) {
        if (e != d) moves.push_back({static_cast<int>(e), static_cast<int>(d), block_bytes(bounds, e, row_bytes)});
      }
    }
    return prune(std::move(moves));
  }

  /// reduce_sum to rank root's host.
  static std::vector<planned_move> reduce_to_host(std::span<std::size_t const> first, int root, std::uint64_t b) {
    auto moves = chain(first, b);
    auto const last = first.back() - 1;
    auto const f = first[static_cast<std::size_t>(root)];
    if (rank_of(first, last) == root) {
      moves.push_back({static_cast<int>(last), host_of(root), b});
    } else {
      moves.push_back({static_cast<int>(last), static_cast<int>(f), b});
      moves.push_back({static_cast<int>(f), host_of(root), b});
    }
    return prune(std::move(moves));
  }

  /// reduce_sum to global device `device`.
  static std::vector<planned_move> reduce_to_device(std::span<std::size_t const> first, std::size_t device,
                                                    std::uint64_t b) {
    auto moves = chain(first, b);
    auto const last = first.back() - 1;
    if (device != last) moves.push_back({static_cast<int>(last), static_cast<int>(device), b});
    return prune(std::move(moves));
  }

 private:
  static std::uint64_t block_bytes(std::span<std::int64_t const> bounds, std::size_t g, std::uint64_t row_bytes) {
    return static_cast<std::uint64_t>(bounds[g + 1] - bounds[g]) * row_bytes;
  }
  /// The bytes of the blocks of devices on other ranks than root.
  static std::uint64_t remote_bytes(std::span<std::size_t const> first, std::span<std::int64_t const> bounds,
                                    int root, std::uint64_t row_bytes) {
    std::uint64_t sum = 0;
    for (std::size_t g = 0; g < first.back(); ++g) {
      if (rank_of(first, g) != root) sum += block_bytes(bounds, g, row_bytes);
    }
    return sum;
  }
  static std::vector<planned_move> chain(std::span<std::size_t const> first, std::uint64_t b) {
    std::vector<planned_move> moves;
    for (std::size_t g = 1; g < first.back(); ++g) moves.push_back({static_cast<int>(g - 1), static_cast<int>(g), b});
    return moves;
  }
  static std::vector<planned_move> prune(std::vector<planned_move> moves) {
    std::erase_if(moves, [](planned_move const& m) { return m.bytes == 0; });
    return moves;
  }
};

/// Counts the moves of `plan` that arrive at this rank's endpoints.
inline void count_plan(distributed_policy<gpu> const& policy, std::vector<planned_move> const& plan) {
  for (auto const& m : plan) {
    auto const to_rank =
        m.to < 0 ? -1 - m.to : transfer_plan::rank_of(policy.first_devices(), static_cast<std::size_t>(m.to));
    if (to_rank == policy.rank()) policy.transfers().add(m.from, m.to, m.bytes);
  }
}

/// The NCCL part of a collective: `issue(comms)` queues this rank's work on its devices'
/// streams; once it is complete (waited for while polling NCCL's asynchronous errors),
/// `finish()` runs the steps that block the host (downloads into the caller's pageable
/// memory, which would otherwise wait inside the CUDA runtime for the NCCL operations
/// before them, out of reach of the polling), and the moves of `plan` arriving at this
/// rank are counted; then the outcome is agreed. On any error the communicators are
/// aborted, the streams drained, and every rank releases its communicators before throwing.
template <class Issue, class Finish>
void run_nccl(distributed_policy<gpu> const& policy, char const* what, Issue&& issue,
              std::vector<planned_move> const& plan, Finish&& finish) {
  auto const& set = policy.local().devices();
  auto& comms = nccl_of(policy);
  auto error = capture([&] {
    issue(comms);
    wait_streams(comms, set);
    finish();
    count_plan(policy, plan);
  });
  if (error) {
    comms.abort();
    for (std::size_t d = 0; d < set.size(); ++d) {
      backend::cuda::device_guard guard(set.device_at(d).ordinal, std::nothrow);
      static_cast<void>(cudaStreamSynchronize(set[d].work.handle()));
    }
  }
  try {
    agree(policy.comm(), std::string(what) + " (completion)", {}, error);
  } catch (...) {
    drop_nccl(policy);
    throw;
  }
}

template <class Issue>
void run_nccl(distributed_policy<gpu> const& policy, char const* what, Issue&& issue,
              std::vector<planned_move> const& plan) {
  run_nccl(policy, what, std::forward<Issue>(issue), plan, [] {});
}

/// Bytes of `rows` rows of `cols` elements of T, as NCCL's count of ncclUint8.
template <class T>
std::size_t nccl_bytes(std::int64_t rows, std::int64_t cols) {
  return static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols) * sizeof(T);
}

template <class T>
void check_gpu_distribution(distributed_dense<gpu, T> const& x, distribution how, char const* what,
                            char const* name) {
  MGPU_EXPECTS(x.distribution() == how, what, ": ", name, " must be ",
               how == distribution::replicated ? "replicated" : "in row blocks", ", but it is ",
               x.distribution() == distribution::replicated ? "replicated" : "in row blocks");
}

/// The running sum on `s`'s device: acc += p (n elements), by cuBLAS axpy with alpha = 1.
template <class T>
void add_into(cublasHandle_t handle, T* acc, T const* p, std::int64_t n) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "mpi::reduce_sum on GPUs adds with cuBLAS axpy: float or double elements");
  T const one = 1;
  MGPU_CUBLAS_TRY(cublasSetPointerMode(handle, CUBLAS_POINTER_MODE_HOST));
  if constexpr (std::is_same_v<T, float>) {
    MGPU_CUBLAS_TRY(cublasSaxpy_v2_64(handle, n, &one, p, 1, acc, 1));
  } else {
    MGPU_CUBLAS_TRY(cublasDaxpy_v2_64(handle, n, &one, p, 1, acc, 1));
  }
}

inline std::int64_t has_nccl(distributed_policy<gpu> const& policy) { return cached_nccl(policy) != nullptr ? 1 : 0; }

/// The chain of reduce_sum over the global devices (file comment): returns with the
/// total queued into `sums[d]` on the local device holding global device G-1 (if this
/// rank holds it); `sums` has a rows x cols temporary per local device.
template <class T>
void queue_reduce_chain(distributed_policy<gpu> const& policy, nccl_communicators const& comms,
                        distributed_dense<gpu, T> const& partials, std::vector<dense_matrix<gpu, T>>& sums) {
  auto const& set = policy.local().devices();
  auto const first = policy.first_device();
  auto const n = policy.local_device_count();
  auto const global = policy.device_count();
  auto const bytes = nccl_bytes<T>(partials.rows(), partials.cols());
  auto const elements = partials.rows() * partials.cols();
  auto const mine = [&](std::size_t g) { return g >= first && g < first + n; };
  // The running sum after device g: partial 0 itself, then sums[g].
  auto const running = [&](std::size_t g) -> T const* {
    return g == 0 ? partials.local().view(0).data : sums[g - first].data();
  };
  if (global == 1) {
    backend::cuda::detail::copy_rows_async<T>(sums[0].data(), partials.cols(), partials.local().view(0).data,
                                              partials.cols(), partials.rows(), partials.cols(), set[0].work);
    return;
  }
  for (std::size_t g = 1; g < global; ++g) {
    if (!mine(g - 1) && !mine(g)) continue;
    nccl_group([&] {
      if (mine(g - 1)) {
        auto const d = g - 1 - first;
        MGPU_NCCL_TRY(ncclSend(running(g - 1), bytes, ncclUint8, static_cast<int>(g), comms[d], set[d].work.handle()));
      }
      if (mine(g)) {
        auto const d = g - first;
        MGPU_NCCL_TRY(
            ncclRecv(sums[d].data(), bytes, ncclUint8, static_cast<int>(g - 1), comms[d], set[d].work.handle()));
      }
    });
    if (mine(g)) {
      auto const d = g - first;
      backend::cuda::device_guard guard(set.device_at(d).ordinal);
      add_into<T>(set[d].libraries.cublas(), sums[d].data(), partials.local().view(d).data, elements);
    }
  }
}

/// The row blocks of a scatter from (or gather to) rank `root`: global device g holds
/// rows [bounds[g], bounds[g + 1]); the blocks of devices on other ranks than root are
/// "remote" and travel through root's staging matrix, in global order (the rows before
/// root's first device, then those after its last): block g at stage_row[g].
struct root_blocks {
  std::span<std::int64_t const> bounds;  // the matrix's, which outlives this
  std::size_t root_first = 0;             // root's first global device
  std::size_t root_end = 0;    // one past root's last
  std::vector<std::int64_t> stage_row;
  std::int64_t remote_rows = 0;  // rows in root's staging matrix

  template <class Policy>
  root_blocks(Policy const& policy, std::span<std::int64_t const> row_bounds, int root)
      : bounds(row_bounds),
        root_first(policy.first_device(root)),
        root_end(policy.first_device(root + 1)),
        stage_row(policy.device_count() + 1, 0) {
    for (std::size_t g = 0; g < policy.device_count(); ++g) {
      stage_row[g + 1] = stage_row[g] + (remote(g) ? rows(g) : 0);
    }
    remote_rows = stage_row.back();
  }
  [[nodiscard]] bool remote(std::size_t g) const noexcept { return g < root_first || g >= root_end; }
  [[nodiscard]] std::int64_t rows(std::size_t g) const noexcept { return bounds[g + 1] - bounds[g]; }
};

}  // namespace detail

/// The NCCL communicator of this rank's local device `local_device` (NCCL rank: its
/// global index), for the program's own NCCL calls on that device. Collective on the
/// first use over a policy (it makes every rank's communicators); they stay owned by
/// the policy. @throws invalid_argument (local_device, two devices on one GPU),
/// nccl_error, cuda_error, mpi_error.
inline ncclComm_t nccl_communicator(distributed_policy<gpu> const& policy, std::size_t local_device) {
  auto error = detail::capture([&] {
    MGPU_EXPECTS(local_device < policy.local_device_count(), "mpi::nccl_communicator: local device ",
                 local_device, " is not in this rank's ", policy.local_device_count(), " devices");
  });
  detail::agree(policy.comm(), "mpi::nccl_communicator", {{"NCCL communicators made", detail::has_nccl(policy)}},
                error);
  return detail::nccl_of(policy)[local_device];
}

/// Rank root's host rows -> every GPU's copy of `x` (replicated, same shape; `host` read
/// on root only, any leading dimension). Collective; moves and counts as the file
/// comment says. @throws invalid_argument (root, x not replicated, ranks disagreeing,
/// two devices on one GPU), dimension_mismatch (root's host shape), index_overflow,
/// out_of_memory, nccl_error, cuda_error, mpi_error; every rank throws the same.
template <class T>
void broadcast(dense_view<std::type_identity_t<T> const> host, distributed_dense<gpu, T>& x, int root = 0) {
  static_assert(std::is_trivially_copyable_v<T>, "collectives move elements as bytes");
  auto const& policy = x.policy();
  auto const rank = policy.rank();
  auto error = detail::capture([&] {
    detail::check_root(root, policy.ranks(), "mpi::broadcast");
    detail::check_gpu_distribution(x, distribution::replicated, "mpi::broadcast", "the destination");
    if (rank == root) detail::check_host_shape(host.rows, host.cols, host.ld, x.rows(), x.cols(), "mpi::broadcast");
  });
  detail::agree(policy.comm(), "mpi::broadcast",
                {{"rows", x.rows()}, {"cols", x.cols()}, {"the root", root},
                 {"NCCL communicators made", detail::has_nccl(policy)}},
                error);
  if (x.rows() == 0 || x.cols() == 0) return;
  auto const& set = policy.local().devices();
  auto const n = policy.local_device_count();
  auto const f = policy.first_device(root);
  auto const bytes = detail::nccl_bytes<T>(x.rows(), x.cols());
  auto const b = ::mgpu::detail::dense_bytes<T>(x.rows(), x.cols());
  auto& local = x.local();
  detail::run_nccl(
      policy, "mpi::broadcast",
      [&](detail::nccl_communicators const& comms) {
        if (rank == root) {
          backend::cuda::detail::copy_rows_async<T>(local.view(0).data, x.cols(), host.data, host.ld, x.rows(),
                                                    x.cols(), set[0].work);
        }
        detail::nccl_group([&] {
          for (std::size_t d = 0; d < n; ++d) {
            T* data = local.view(d).data;
            MGPU_NCCL_TRY(
                ncclBroadcast(data, data, bytes, ncclUint8, static_cast<int>(f), comms[d], set[d].work.handle()));
          }
        });
      },
      detail::transfer_plan::broadcast(policy.first_devices(), root, b));
}

/// Rank root's host rows -> the row blocks of `y` (global device g gets rows
/// [bounds[g], bounds[g + 1])); `host` read on root only. Collective.
/// @throws as broadcast (y must be in row blocks).
template <class T>
void scatter(dense_view<std::type_identity_t<T> const> host, distributed_dense<gpu, T>& y, int root = 0) {
  static_assert(std::is_trivially_copyable_v<T>, "collectives move elements as bytes");
  auto const& policy = y.policy();
  auto const rank = policy.rank();
  auto error = detail::capture([&] {
    detail::check_root(root, policy.ranks(), "mpi::scatter");
    detail::check_gpu_distribution(y, distribution::row_blocks, "mpi::scatter", "the destination");
    if (rank == root) detail::check_host_shape(host.rows, host.cols, host.ld, y.rows(), y.cols(), "mpi::scatter");
  });
  detail::agree(policy.comm(), "mpi::scatter",
                {{"rows", y.rows()}, {"cols", y.cols()}, {"the root", root},
                 {"NCCL communicators made", detail::has_nccl(policy)}},
                error);
  if (y.rows() == 0 || y.cols() == 0) return;
  auto const& set = policy.local().devices();
  auto const cols = y.cols();
  auto const row_bytes = static_cast<std::uint64_t>(cols) * sizeof(T);
  detail::root_blocks const blocks(policy, y.row_bounds(), root);
  auto const& bounds = blocks.bounds;
  auto const& stage_row = blocks.stage_row;
  auto const first = policy.first_device();
  auto const n = policy.local_device_count();
  auto const f = blocks.root_first;
  auto const root_end = blocks.root_end;
  auto const remote = [&](std::size_t g) { return blocks.remote(g); };
  auto const block_rows = [&](std::size_t g) { return blocks.rows(g); };
  auto const remote_rows = blocks.remote_rows;
  auto& local = y.local();
  // Root's temporary: the remote blocks, in global order (rows before f, then after).
  std::optional<dense_matrix<gpu, T>> stage;
  detail::run_nccl(
      policy, "mpi::scatter",
      [&](detail::nccl_communicators const& comms) {
        namespace bd = backend::cuda::detail;
        if (rank == root) {
          for (std::size_t d = 0; d < n; ++d) {
            auto const g = first + d;
            bd::copy_rows_async<T>(local.view(d).data, cols, host.data + bounds[g] * host.ld, host.ld, block_rows(g),
                                   cols, set[d].work);
          }
          if (remote_rows > 0) {
            stage.emplace(remote_rows, cols, set[0].work);
            bd::copy_rows_async<T>(stage->data(), cols, host.data, host.ld, bounds[f], cols, set[0].work);
            bd::copy_rows_async<T>(stage->data() + bounds[f] * cols, cols, host.data + bounds[root_end] * host.ld,
                                   host.ld, y.rows() - bounds[root_end], cols, set[0].work);
          }
        }
        if (remote_rows == 0) return;
        detail::nccl_group([&] {
          for (std::size_t g = 0; g < policy.device_count(); ++g) {
            if (!remote(g) || block_rows(g) == 0) continue;
            auto const count = detail::nccl_bytes<T>(block_rows(g), cols);
            if (rank == root) {
              MGPU_NCCL_TRY(ncclSend(stage->data() + stage_row[g] * cols, count, ncclUint8, static_cast<int>(g),
                                     comms[0], set[0].work.handle()));
            }
            if (g >= first && g < first + n) {
              auto const d = g - first;
              MGPU_NCCL_TRY(ncclRecv(local.view(d).data, count, ncclUint8, static_cast<int>(f), comms[d],
                                     set[d].work.handle()));
            }
          }
        });
      },
      detail::transfer_plan::scatter(policy.first_devices(), bounds, root, row_bytes));
}

/// The row blocks of `y` -> rank root's host rows (the inverse of scatter); `host`
/// written on root only. Collective. @throws as scatter.
template <class T>
void gather(distributed_dense<gpu, T> const& y, dense_view<std::type_identity_t<T>> host, int root = 0) {
  static_assert(std::is_trivially_copyable_v<T>, "collectives move elements as bytes");
  auto const& policy = y.policy();
  auto const rank = policy.rank();
  auto error = detail::capture([&] {
    detail::check_root(root, policy.ranks(), "mpi::gather");
    detail::check_gpu_distribution(y, distribution::row_blocks, "mpi::gather", "the source");
    if (rank == root) detail::check_host_shape(host.rows, host.cols, host.ld, y.rows(), y.cols(), "mpi::gather");
  });
  detail::agree(policy.comm(), "mpi::gather",
                {{"rows", y.rows()}, {"cols", y.cols()}, {"the root", root},
                 {"NCCL communicators made", detail::has_nccl(policy)}},
                error);
  if (y.rows() == 0 || y.cols() == 0) return;
  auto const& set = policy.local().devices();
  auto const cols = y.cols();
  auto const row_bytes = static_cast<std::uint64_t>(cols) * sizeof(T);
  detail::root_blocks const blocks(policy, y.row_bounds(), root);
  auto const& bounds = blocks.bounds;
  auto const& stage_row = blocks.stage_row;
  auto const first = policy.first_device();
  auto const n = policy.local_device_count();
  auto const f = blocks.root_first;
  auto const root_end = blocks.root_end;
  auto const remote = [&](std::size_t g) { return blocks.remote(g); };
  auto const block_rows = [&](std::size_t g) { return blocks.rows(g); };
  auto const remote_rows = blocks.remote_rows;
  auto const& local = y.local();
  std::optional<dense_matrix<gpu, T>> stage;
  detail::run_nccl(
      policy, "mpi::gather",
      [&](detail::nccl_communicators const& comms) {
        namespace bd = backend::cuda::detail;
        if (rank == root) {
          for (std::size_t d = 0; d < n; ++d) {
            auto const g = first + d;
            bd::copy_rows_async<T>(host.data + bounds[g] * host.ld, host.ld, local.view(d).data, cols, block_rows(g),
                                   cols, set[d].work);
          }
          if (remote_rows > 0) stage.emplace(remote_rows, cols, set[0].work);
        }
        if (remote_rows == 0) return;
        detail::nccl_group([&] {
          for (std::size_t g = 0; g < policy.device_count(); ++g) {
            if (!remote(g) || block_rows(g) == 0) continue;
            auto const count = detail::nccl_bytes<T>(block_rows(g), cols);
            if (g >= first && g < first + n) {
              auto const d = g - first;
              MGPU_NCCL_TRY(ncclSend(local.view(d).data, count, ncclUint8, static_cast<int>(f), comms[d],
                                     set[d].work.handle()));
            }
            if (rank == root) {
              MGPU_NCCL_TRY(ncclRecv(stage->data() + stage_row[g] * cols, count, ncclUint8, static_cast<int>(g),
                                     comms[0], set[0].work.handle()));
            }
          }
        });
      },
      detail::transfer_plan::gather(policy.first_devices(), bounds, root, row_bytes),
      [&] {
        if (rank != root || remote_rows == 0) return;
        namespace bd = backend::cuda::detail;
        bd::copy_rows_async<T>(host.data, host.ld, stage->data(), cols, bounds[f], cols, set[0].work);
        bd::copy_rows_async<T>(host.data + bounds[root_end] * host.ld, host.ld, stage->data() + bounds[f] * cols,
                               cols, y.rows() - bounds[root_end], cols, set[0].work);
        set[0].work.synchronize();
      });
}

/// The row blocks of `y` -> every GPU's full copy `x` (same shape, same policy).
/// Collective. @throws invalid_argument (distributions, policies, ranks disagreeing),
/// dimension_mismatch (x and y shapes), nccl_error, cuda_error, mpi_error.
template <class T>
void all_gather(distributed_dense<gpu, T> const& y, distributed_dense<gpu, T>& x) {
  static_assert(std::is_trivially_copyable_v<T>, "collectives move elements as bytes");
  auto const& policy = x.policy();
  auto error = detail::capture([&] {
    MGPU_EXPECTS(y.policy().same_devices(policy),
                 "mpi::all_gather: the two containers live on different distributed policies");
    detail::check_gpu_distribution(y, distribution::row_blocks, "mpi::all_gather", "the source");
    detail::check_gpu_distribution(x, distribution::replicated, "mpi::all_gather", "the destination");
    if (y.rows() != x.rows() || y.cols() != x.cols()) {
      throw dimension_mismatch(detail::message("mpi::all_gather: the source is ", y.rows(), " x ", y.cols(),
                                               " but the destination is ", x.rows(), " x ", x.cols()));
    }
  });
  detail::agree(policy.comm(), "mpi::all_gather",
                {{"rows", x.rows()}, {"cols", x.cols()}, {"NCCL communicators made", detail::has_nccl(policy)}},
                error);
  if (x.rows() == 0 || x.cols() == 0) return;
  auto const& set = policy.local().devices();
  auto const cols = x.cols();
  auto const row_bytes = static_cast<std::uint64_t>(cols) * sizeof(T);
  auto const bounds = y.row_bounds();
  auto const first = policy.first_device();
  auto const n = policy.local_device_count();
  auto const block_rows = [&](std::size_t g) { return bounds[g + 1] - bounds[g]; };
  auto const& from = y.local();
  auto& to = x.local();
  detail::run_nccl(
      policy, "mpi::all_gather",
      [&](detail::nccl_communicators const& comms) {
        detail::nccl_group([&] {
          for (std::size_t e = 0; e < policy.device_count(); ++e) {
            if (block_rows(e) == 0) continue;
            auto const count = detail::nccl_bytes<T>(block_rows(e), cols);
            for (std::size_t d = 0; d < n; ++d) {
              T* const recv = to.view(d).data + bounds[e] * cols;
              T const* const send = first + d == e ? from.view(d).data : recv;  // read on the root only
              MGPU_NCCL_TRY(
                  ncclBroadcast(send, recv, count, ncclUint8, static_cast<int>(e), comms[d], set[d].work.handle()));
            }
          }
        });
      },
      detail::transfer_plan::all_gather(policy.first_devices(), bounds, row_bytes));
}

/// Rank root's host = the element-wise sum of every GPU's copy in `partials`
/// (replicated; each copy is its device's partial), added in global device order: bitwise
/// the host version's and one process's sum (file comment). `host` written on root only.
/// Collective. T: float or double. @throws as broadcast (partials must be replicated).
template <class T>
void reduce_sum(distributed_dense<gpu, T> const& partials, dense_view<std::type_identity_t<T>> host, int root = 0) {
  auto const& policy = partials.policy();
  auto const rank = policy.rank();
  auto error = detail::capture([&] {
    detail::check_root(root, policy.ranks(), "mpi::reduce_sum");
    detail::check_gpu_distribution(partials, distribution::replicated, "mpi::reduce_sum", "the partials");
    if (rank == root) {
      detail::check_host_shape(host.rows, host.cols, host.ld, partials.rows(), partials.cols(), "mpi::reduce_sum");
    }
  });
  detail::agree(policy.comm(), "mpi::reduce_sum",
                {{"rows", partials.rows()}, {"cols", partials.cols()}, {"the root", root},
                 {"NCCL communicators made", detail::has_nccl(policy)}},
                error);
  if (partials.rows() == 0 || partials.cols() == 0) return;
  auto const& set = policy.local().devices();
  auto const cols = partials.cols();
  auto const first = policy.first_device();
  auto const n = policy.local_device_count();
  auto const last = policy.device_count() - 1;
  auto const last_rank = policy.rank_of(last);
  auto const f = policy.first_device(root);
  auto const bytes = detail::nccl_bytes<T>(partials.rows(), cols);
  auto const b = ::mgpu::detail::dense_bytes<T>(partials.rows(), cols);
  std::vector<dense_matrix<gpu, T>> sums;
  detail::run_nccl(
      policy, "mpi::reduce_sum",
      [&](detail::nccl_communicators const& comms) {
        namespace bd = backend::cuda::detail;
        sums.reserve(n);
        for (std::size_t d = 0; d < n; ++d) sums.emplace_back(partials.rows(), cols, set[d].work);
        detail::queue_reduce_chain(policy, comms, partials, sums);
        if (last_rank == root) return;
        detail::nccl_group([&] {
          if (rank == last_rank) {
            MGPU_NCCL_TRY(ncclSend(sums[last - first].data(), bytes, ncclUint8, static_cast<int>(f),
                                   comms[last - first], set[last - first].work.handle()));
          }
          if (rank == root) {
            MGPU_NCCL_TRY(ncclRecv(sums[0].data(), bytes, ncclUint8, static_cast<int>(last), comms[0],
                                   set[0].work.handle()));
          }
        });
      },
      detail::transfer_plan::reduce_to_host(policy.first_devices(), root, b),
      [&] {
        if (rank != root) return;
        // The total: on G - 1 when root holds it, else received on root's first GPU.
        auto const d = last_rank == root ? last - first : std::size_t{0};
        backend::cuda::detail::copy_rows_async<T>(host.data, host.ld, sums[d].data(), cols, partials.rows(), cols,
                                                  set[d].work);
        set[d].work.synchronize();
      });
}

/// Global device `device`'s copy in `partials` = the element-wise sum of every GPU's copy
/// (global device order, as reduce_sum to a host); the other copies are unchanged.
/// Collective. T: float or double. @throws invalid_argument (device outside the set,
/// partials not replicated, ranks disagreeing), out_of_memory, nccl_error, cuda_error,
/// mpi_error.
template <class T>
void reduce_sum(distributed_dense<gpu, T>& partials, std::size_t device) {
  auto const& policy = partials.policy();
  auto error = detail::capture([&] {
    MGPU_EXPECTS(device < policy.device_count(), "mpi::reduce_sum: device ", device, " is not in a set of ",
                 policy.device_count(), " devices");
    detail::check_gpu_distribution(partials, distribution::replicated, "mpi::reduce_sum", "the partials");
  });
  detail::agree(policy.comm(), "mpi::reduce_sum to a device",
                {{"rows", partials.rows()},
                 {"cols", partials.cols()},
                 {"the root device", static_cast<std::int64_t>(device)},
                 {"NCCL communicators made", detail::has_nccl(policy)}},
                error);
  if (partials.rows() == 0 || partials.cols() == 0) return;
  auto const& set = policy.local().devices();
  auto const cols = partials.cols();
  auto const first = policy.first_device();
  auto const n = policy.local_device_count();
  auto const last = policy.device_count() - 1;
  auto const mine = [&](std::size_t g) { return g >= first && g < first + n; };
  auto const bytes = detail::nccl_bytes<T>(partials.rows(), cols);
  auto const b = ::mgpu::detail::dense_bytes<T>(partials.rows(), cols);
  std::vector<dense_matrix<gpu, T>> sums;
  detail::run_nccl(
      policy, "mpi::reduce_sum to a device",
      [&](detail::nccl_communicators const& comms) {
        sums.reserve(n);
        for (std::size_t d = 0; d < n; ++d) sums.emplace_back(partials.rows(), cols, set[d].work);
        detail::queue_reduce_chain(policy, comms, std::as_const(partials), sums);
        if (device == last) {
          if (mine(last)) {
            auto const d = last - first;
            backend::cuda::detail::copy_rows_async<T>(partials.local().view(d).data, cols, sums[d].data(), cols,
                                                      partials.rows(), cols, set[d].work);
          }
          return;
        }
        detail::nccl_group([&] {
          if (mine(last)) {
            MGPU_NCCL_TRY(ncclSend(sums[last - first].data(), bytes, ncclUint8, static_cast<int>(device),
                                   comms[last - first], set[last - first].work.handle()));
          }
          if (mine(device)) {
            auto const d = device - first;
            MGPU_NCCL_TRY(ncclRecv(partials.local().view(d).data, bytes, ncclUint8, static_cast<int>(last), comms[d],
                                   set[d].work.handle()));
          }
        });
      },
      detail::transfer_plan::reduce_to_device(policy.first_devices(), device, b));
}

/// Vector overloads: a host span as an n x 1 matrix (read or written on root only).
template <class T>
void broadcast(std::span<std::type_identity_t<T> const> host, distributed_dense<gpu, T>& x, int root = 0) {
  broadcast(column_view(host), x, root);
}
template <class T>
void scatter(std::span<std::type_identity_t<T> const> host, distributed_dense<gpu, T>& y, int root = 0) {
  scatter(column_view(host), y, root);
}
template <class T>
void gather(distributed_dense<gpu, T> const& y, std::span<std::type_identity_t<T>> host, int root = 0) {
  gather(y, column_view(host), root);
}
template <class T>
void reduce_sum(distributed_dense<gpu, T> const& partials, std::span<std::type_identity_t<T>> host, int root = 0) {
  reduce_sum(partials, column_view(host), root);
}

}  // namespace mgpu::mpi
