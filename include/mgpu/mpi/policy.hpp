// mgpu/mpi/policy.hpp — a device set spanning MPI ranks: each rank's local devices, seen
// together as one ordered set.
//
//   mgpu::mpi::environment env(argc, argv);
//   mgpu::mpi::distributed_policy<mgpu::cpu> policy("cpu:2");   // every rank: 2 host devices
//   policy.device_count();   // 2 x ranks: the global set
//   policy.first_device();   // this rank's first global device = 2 x rank
//
// The global set is ranks x local devices in rank order: global device g of rank r is
// first_device(r) + i for its local device i, first_device(r) being the sum of the local
// device counts of ranks 0..r-1. Ranks may hold different counts ("cpu:2" on one, "cpu"
// on another); the counts are exchanged with MPI_Allgather when the policy is made, which
// is collective over the communicator: every rank constructs its policy at the same point.
//
// Relation to execution_policy: composition. A distributed_policy<Kind> holds the rank's
// execution_policy<Kind> (local(): its device_set, streams and memory budget) and the
// library's own communicator, an MPI_Comm_dup of the one given (MPI_COMM_WORLD by
// default), so the component's messages never match the program's. The algorithms of the
// mpi component take a distributed_policy; inside a rank they run the ordinary per-device
// code on local(). Like execution_policy it is a cheap value: copies share the
// communicator, the device set and the transfer counter.
//
// Lifetime: a policy's communicator is freed with its last copy; destroy the policies
// before the environment finalises MPI (afterwards the communicator is left alone).
//
// Transfers: `transfers()` counts the bytes the component's collectives move, per
// (source, destination) pair of *global* endpoints: global devices 0..device_count()-1,
// and each rank's host memory (the buffers the program passes) as host_of(rank) = -1 - rank,
// so that rank 0's host is mgpu::host_endpoint. Each rank counts what arrives at its own
// endpoints; sum_transfers(policy) adds the counts of every rank (a collective), giving
// the whole job's traffic with every move counted once. `network()` is the part between
// endpoints of different ranks: what crosses process (and, between nodes, network)
// boundaries. The local device set's own counter (local().devices().transfers()) is not
// touched by the component's collectives.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "mgpu/core/device.hpp"
#include "mgpu/core/device_set.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/execution/policy.hpp"
#include "mgpu/mpi/error.hpp"

namespace mgpu::mpi {

/// The transfer endpoint of rank `rank`'s host memory: -1 - rank (rank 0's is
/// mgpu::host_endpoint). Global devices are endpoints 0, 1, ...
[[nodiscard]] constexpr int host_of(int rank) noexcept { return -1 - rank; }

/// Bytes moved per ordered pair of global endpoints (a snapshot; see the file comment).
class transfer_counts {
 public:
  using pair_map = std::map<std::pair<int, int>, std::uint64_t>;

  transfer_counts() = default;
  /// `first_device`: ranks + 1 entries, rank r holding global devices
  /// [first_device[r], first_device[r + 1]).
  transfer_counts(std::vector<std::size_t> first_device, pair_map bytes)
      : first_device_(std::move(first_device)), bytes_(std::move(bytes)) {}

  /// Bytes from endpoint `from` to endpoint `to`.
  [[nodiscard]] std::uint64_t bytes(int from, int to) const {
    auto const it = bytes_.find({from, to});
    return it == bytes_.end() ? 0 : it->second;
  }
  /// Bytes `endpoint` sent to any other endpoint.
  [[nodiscard]] std::uint64_t sent(int endpoint) const {
    std::uint64_t sum = 0;
    for (auto const& [pair, n] : bytes_) sum += pair.first == endpoint ? n : 0;
    return sum;
  }
  /// Bytes `endpoint` received from any other endpoint.
  [[nodiscard]] std::uint64_t received(int endpoint) const {
    std::uint64_t sum = 0;
    for (auto const& [pair, n] : bytes_) sum += pair.second == endpoint ? n : 0;
    return sum;
  }
  /// Bytes between all pairs.
  [[nodiscard]] std::uint64_t total() const noexcept {
    std::uint64_t sum = 0;
    for (auto const& entry : bytes_) sum += entry.second;
    return sum;
  }
  /// Bytes between endpoints of different ranks.
  [[nodiscard]] std::uint64_t network() const {
    std::uint64_t sum = 0;
    for (auto const& [pair, n] : bytes_) sum += rank_of(pair.first) != rank_of(pair.second) ? n : 0;
    return sum;
  }
  /// The rank holding an endpoint (a global device, or host_of(rank)).
  [[nodiscard]] int rank_of(int endpoint) const {
    if (endpoint < 0) return -1 - endpoint;
    auto const it = std::upper_bound(first_device_.begin(), first_device_.end(), static_cast<std::size_t>(endpoint));
    return static_cast<int>(it - first_device_.begin()) - 1;
  }
  /// Every pair with bytes, in (from, to) order.
  [[nodiscard]] pair_map const& pairs() const noexcept { return bytes_; }

 private:
  std::vector<std::size_t> first_device_;
  pair_map bytes_;
};

/// The live count of one rank: what arrived at its endpoints. Thread-safe (a mutex).
class transfer_counter {
 public:
  explicit transfer_counter(std::vector<std::size_t> first_device) : first_device_(std::move(first_device)) {}

  /// Adds `bytes` to (from, to) (nothing for 0 bytes). For the component's collectives.
  /// @throws invalid_argument if an endpoint is not a global device or a rank's host.
  void add(int from, int to, std::uint64_t bytes) {
    check(from);
    check(to);
    if (bytes == 0) return;
    std::lock_guard lock(mutex_);
    bytes_[{from, to}] += bytes;
  }
  /// This rank's counts since the last reset.
  [[nodiscard]] transfer_counts counts() const {
    std::lock_guard lock(mutex_);
    return {first_device_, bytes_};
  }
  void reset() {
    std::lock_guard lock(mutex_);
    bytes_.clear();
  }

 private:
  void check(int endpoint) const {
    auto const ranks = static_cast<int>(first_device_.size()) - 1;
    auto const devices = static_cast<int>(first_device_.back());
    MGPU_EXPECTS(endpoint >= -ranks && endpoint < devices, "transfer endpoint ", endpoint,
                 " is neither a global device in [0, ", devices, ") nor a rank's host in [", -ranks, ", -1]");
  }

  std::vector<std::size_t> first_device_;
  mutable std::mutex mutex_;
  transfer_counts::pair_map bytes_;
};

namespace detail {

/// The library's duplicate of the program's communicator (MPI_ERRORS_RETURN), freed with
/// the object unless MPI is finalised by then.
class communicator {
 public:
  explicit communicator(MPI_Comm user) {
    int initialized = 0;
    MGPU_MPI_TRY(MPI_Initialized(&initialized));
    MGPU_EXPECTS(initialized != 0, "mgpu::mpi: MPI is not initialised; create an mgpu::mpi::environment first");
    MGPU_EXPECTS(user != MPI_COMM_NULL, "mgpu::mpi: the communicator is MPI_COMM_NULL");
    int level = MPI_THREAD_SINGLE;
    MGPU_MPI_TRY(MPI_Query_thread(&level));
    MGPU_EXPECTS(level >= MPI_THREAD_FUNNELED, "mgpu::mpi: MPI was initialised with thread level ", level,
                 ", below MPI_THREAD_FUNNELED = ", MPI_THREAD_FUNNELED,
                 ": mgpu's device workers are threads (use mgpu::mpi::environment or MPI_Init_thread)");
    MGPU_MPI_TRY(MPI_Comm_dup(user, &comm_));
    MGPU_MPI_TRY(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
    MGPU_MPI_TRY(MPI_Comm_rank(comm_, &rank_));
    MGPU_MPI_TRY(MPI_Comm_size(comm_, &size_));
  }
  communicator(communicator const&) = delete;
  communicator& operator=(communicator const&) = delete;
  ~communicator() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized == 0 && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }

  [[nodiscard]] MPI_Comm get() const noexcept { return comm_; }
  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] int size() const noexcept { return size_; }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace detail

/// A device set spanning the ranks of a communicator (see the file comment).
template <class Kind>
class distributed_policy {
 public:
  using kind = Kind;

  /// Every rank passes its own local policy; collective over `comm`.
  /// @throws invalid_argument (MPI not initialised, or below MPI_THREAD_FUNNELED; ranks of
  ///         different device kinds), mpi_error.
  explicit distributed_policy(execution_policy<Kind> local, MPI_Comm comm = MPI_COMM_WORLD)
      : distributed_policy(make([&] { return std::move(local); }, comm)) {}

  /// Every rank opens the devices a device string names ("cpu", "cpu:2", "cuda:0,1"; the
  /// strings may differ between ranks). Collective over `comm`: a rank whose string is
  /// malformed makes every rank throw its error (agreement, mpi/error.hpp).
  /// @throws invalid_argument (as above, or the string), mpi_error.
  explicit distributed_policy(std::string_view local_devices, MPI_Comm comm = MPI_COMM_WORLD)
      : distributed_policy(make([&] { return execution_policy<Kind>(local_devices); }, comm)) {}

  /// This rank's devices, as an ordinary policy.
  [[nodiscard]] execution_policy<Kind> const& local() const noexcept { return local_; }
  /// The library's communicator (a duplicate of the one given; use your own for your
  /// own messages).
  [[nodiscard]] MPI_Comm comm() const noexcept { return state_->comm.get(); }
  [[nodiscard]] int rank() const noexcept { return state_->comm.rank(); }
  [[nodiscard]] int ranks() const noexcept { return state_->comm.size(); }

  /// Devices of the global set (all ranks).
  [[nodiscard]] std::size_t device_count() const noexcept { return state_->first_device.back(); }
  /// Devices of rank `r`. @throws invalid_argument (r outside the ranks).
  [[nodiscard]] std::size_t device_count(int r) const { return first_device(r + 1) - first_device(r); }
  /// This rank's devices.
  [[nodiscard]] std::size_t local_device_count() const noexcept { return local_.device_count(); }
  /// The global index of this rank's local device 0.
  [[nodiscard]] std::size_t first_device() const noexcept {
    return state_->first_device[static_cast<std::size_t>(rank())];
  }
  /// The global index of rank r's local device 0 (r == ranks(): device_count()).
  /// @throws invalid_argument (r outside [0, ranks()]).
  [[nodiscard]] std::size_t first_device(int r) const {
    MGPU_EXPECTS(r >= 0 && r <= ranks(), "first_device: rank ", r, " is not in [0, ", ranks(), "]");
    return state_->first_device[static_cast<std::size_t>(r)];
  }
  /// The rank holding global device g. @throws invalid_argument (g outside the set).
  [[nodiscard]] int rank_of(std::size_t g) const {
    MGPU_EXPECTS(g < device_count(), "rank_of: device ", g, " is not in a set of ", device_count(), " devices");
    auto const& first = state_->first_device;
    return static_cast<int>(std::upper_bound(first.begin(), first.end(), g) - first.begin()) - 1;
  }
  /// first_device(r) for r = 0..ranks(): rank r holds [first_devices()[r], first_devices()[r + 1]).
  [[nodiscard]] std::vector<std::size_t> const& first_devices() const noexcept { return state_->first_device; }

  /// The bytes the component's collectives moved to this rank's endpoints (see the file
  /// comment). Shared by the policy's copies.
  [[nodiscard]] transfer_counter& transfers() const noexcept { return *state_->transfers; }

  /// True if both policies are copies of one (same communicator and devices).
  [[nodiscard]] bool same_devices(distributed_policy const& other) const noexcept { return state_ == other.state_; }

  /// E.g. "5 devices over 3 ranks (2 + 1 + 2)".
  [[nodiscard]] std::string to_string() const {
    std::string counts;
    for (int r = 0; r < ranks(); ++r) counts += (r == 0 ? "" : " + ") + std::to_string(device_count(r));
    return ::mgpu::detail::message(device_count(), " devices over ", ranks(), " ranks (", counts, ")");
  }

  /// The same devices with another memory budget per device (bytes; 0: automatic).
  [[nodiscard]] distributed_policy with_memory_budget(std::size_t bytes) const {
    distributed_policy p = *this;
    p.local_ = local_.with_memory_budget(bytes);
    return p;
  }

 private:
  struct shared_state {
    explicit shared_state(MPI_Comm user) : comm(user) {}
    detail::communicator comm;
    std::vector<std::size_t> first_device;
    std::optional<transfer_counter> transfers;  // made once the device counts are known
  };
  using parts = std::pair<execution_policy<Kind>, std::shared_ptr<shared_state>>;

  explicit distributed_policy(parts p) : local_(std::move(p.first)), state_(std::move(p.second)) {}

  template <class MakeLocal>
  static parts make(MakeLocal&& make_local, MPI_Comm comm) {
    auto state = std::make_shared<shared_state>(comm);
    std::optional<execution_policy<Kind>> local;
    auto const error = detail::capture([&] { local.emplace(make_local()); });
    detail::agree(state->comm.get(), "mpi::distributed_policy",
                  {{"the device kind", std::is_same_v<Kind, cpu> ? 0 : 1}}, error);
    auto const mine = static_cast<std::int64_t>(local->device_count());
    std::vector<std::int64_t> counts(static_cast<std::size_t>(state->comm.size()));
    MGPU_MPI_TRY(MPI_Allgather(&mine, 1, MPI_INT64_T, counts.data(), 1, MPI_INT64_T, state->comm.get()));
    state->first_device.assign(counts.size() + 1, 0);
    for (std::size_t r = 0; r < counts.size(); ++r) {
      state->first_device[r + 1] = state->first_device[r] + static_cast<std::size_t>(counts[r]);
    }
    state->transfers.emplace(state->first_device);
    return {std::move(*local), std::move(state)};
  }

  execution_policy<Kind> local_;
  std::shared_ptr<shared_state> state_;
};

/// Every rank's transfer counts added up: the whole job's traffic since the counters'
/// last reset, each move counted once (by the rank it arrived at). Collective.
/// O(pairs) memory and messages. @throws mpi_error.
template <class Kind>
[[nodiscard]] transfer_counts sum_transfers(distributed_policy<Kind> const& policy) {
  auto const comm = policy.comm();
  detail::agree(comm, "mpi::sum_transfers", {}, nullptr);
  auto const mine = policy.transfers().counts();
  std::vector<std::int64_t> flat;
  for (auto const& [pair, n] : mine.pairs()) {
    flat.insert(flat.end(), {pair.first, pair.second, static_cast<std::int64_t>(n)});
  }
  auto const size = detail::mpi_count(static_cast<std::int64_t>(flat.size()), "sum_transfers");
  std::vector<int> sizes(static_cast<std::size_t>(policy.ranks()));
  MGPU_MPI_TRY(MPI_Allgather(&size, 1, MPI_INT, sizes.data(), 1, MPI_INT, comm));
  std::vector<int> displs(sizes.size(), 0);
  std::int64_t all_size = 0;
  for (std::size_t r = 0; r < sizes.size(); ++r) {
    displs[r] = detail::mpi_count(all_size, "sum_transfers");
    all_size += sizes[r];
  }
  std::vector<std::int64_t> all(static_cast<std::size_t>(all_size));
  MGPU_MPI_TRY(MPI_Allgatherv(flat.data(), size, MPI_INT64_T, all.data(), sizes.data(), displs.data(),
                              MPI_INT64_T, comm));
  transfer_counts::pair_map sum;
  for (std::size_t i = 0; i + 2 < all.size(); i += 3) {
    sum[{static_cast<int>(all[i]), static_cast<int>(all[i + 1])}] += static_cast<std::uint64_t>(all[i + 2]);
  }
  return {policy.first_devices(), std::move(sum)};
}

}  // namespace mgpu::mpi
