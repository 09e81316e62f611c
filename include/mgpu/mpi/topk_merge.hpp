// mgpu/mpi/topk_merge.hpp — the exchange and exact merge behind the top-k searches over
// ranks (mpi/cosine.hpp, mpi/knn.hpp): every rank searches its own rows of the corpus /
// base set, the ranks' per-query candidate lists are gathered on every rank, and each
// query's lists are merged by the same total order the single-process searches use
// (score first, larger or smaller first as the result says, then the smaller global id),
// so the merged lists are exactly the single-process ones whenever the scores of a pair
// do not depend on where it was computed.
//
// What crosses between ranks: one MPI_Allgather of the list sizes (one int64 per rank),
// then MPI_Allgatherv of each rank's lists: queries int64 counts, and m ids (int64) and
// m scores (T) for its m pairs. Every rank receives every other rank's lists:
// (ranks − 1) · Σ_s (8 q + (8 + sizeof(T)) m_s) bytes arrive at each rank, counted in
// policy.transfers() as host_of(s) -> host_of(r). The merge is O(q · k · ranks) on the
// calling thread.
//
// Also here: all_gather_values, MPI_Allgatherv of trivially copyable values whose count
// differs per rank (used to gather queries, vocabularies, factor rows).
#pragma once

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "mgpu/algorithms/topk_result.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/mpi/error.hpp"
#include "mgpu/mpi/policy.hpp"

namespace mgpu::mpi::detail {

/// Every rank's `mine` on every rank, in rank order (rank r's values start at
/// displs[r], displs having ranks + 1 entries). Collective; no agreement (call it between
/// agreements, where no rank can have failed). Counts the bytes that arrive from other
/// ranks in policy.transfers() (host_of(s) -> host_of(rank)).
/// @throws index_overflow (a rank's bytes beyond an int), mpi_error.
template <class U, class Kind>
std::vector<U> all_gather_values(distributed_policy<Kind> const& policy, std::span<U const> mine,
                                 std::vector<std::int64_t>& displs, char const* what) {
  static_assert(std::is_trivially_copyable_v<U>, "all_gather_values: trivially copyable values only");
  auto const ranks = static_cast<std::size_t>(policy.ranks());
  auto const rank = static_cast<std::size_t>(policy.rank());
  auto const comm = policy.comm();
  std::int64_t const count = static_cast<std::int64_t>(mine.size());
  std::vector<std::int64_t> counts(ranks);
  MGPU_MPI_TRY(MPI_Allgather(&count, 1, MPI_INT64_T, counts.data(), 1, MPI_INT64_T, comm));
  displs.assign(ranks + 1, 0);
  std::vector<int> byte_counts(ranks);
  std::vector<int> byte_displs(ranks);
  for (std::size_t r = 0; r < ranks; ++r) {
    displs[r + 1] = displs[r] + counts[r];
    byte_counts[r] = mpi_count(counts[r] * static_cast<std::int64_t>(sizeof(U)), what);
    byte_displs[r] = mpi_count(displs[r] * static_cast<std::int64_t>(sizeof(U)), what);
  }
  (void)mpi_count(displs[ranks] * static_cast<std::int64_t>(sizeof(U)), what);
  std::vector<U> all(static_cast<std::size_t>(displs[ranks]));
  MGPU_MPI_TRY(MPI_Allgatherv(mine.data(), byte_counts[rank], MPI_BYTE, all.data(), byte_counts.data(),
                              byte_displs.data(), MPI_BYTE, comm));
  for (std::size_t s = 0; s < ranks; ++s) {
    if (s != rank) {
      policy.transfers().add(host_of(static_cast<int>(s)), host_of(static_cast<int>(rank)),
                             static_cast<std::uint64_t>(byte_counts[s]));
    }
  }
  return all;
}

/// FNV-1a of a span's bytes (hashes of arrays that every rank must pass equal).
template <class U>
std::uint64_t hash_values(std::span<U const> values, std::uint64_t h = 1469598103934665603ull) noexcept {
  return values.empty() ? fnv1a(&h, 0, h) : fnv1a(values.data(), values.size_bytes(), h);
}

/// A hash as an agreed value.
inline std::int64_t as_value(std::uint64_t h) noexcept { return static_cast<std::int64_t>(h); }

/// True if (score a, id a) ranks before (score b, id b): the order of every top-k search
/// (the better score first, ties toward the smaller id).
template <class T>
bool ranks_before(T sa, std::int64_t ia, T sb, std::int64_t ib, bool larger_is_better) noexcept {
  if (sa != sb) return larger_is_better ? sa > sb : sa < sb;
  return ia < ib;
}

/// Gathers every rank's lists (`mine`: q rows, global ids, each row in the search's
/// order) and merges them per query: the first k pairs of each query (every pair for
/// k = 0), on every rank. `candidates` and `larger_is_better` go into the result.
/// Collective, no agreement (see all_gather_values). O(q · k · ranks) time and
/// O(ranks · (q + pairs)) memory.
template <class T, class Kind>
topk_result<T> gather_and_merge(distributed_policy<Kind> const& policy, topk_result<T> const& mine,
                                std::int64_t k, std::int64_t candidates, char const* what) {
  auto const q = mine.rows();
  std::vector<std::int64_t> counts(static_cast<std::size_t>(q));
  for (std::int64_t i = 0; i < q; ++i) counts[static_cast<std::size_t>(i)] = mine.count(i);
  std::vector<std::int64_t> count_displs;
  std::vector<std::int64_t> pair_displs;
  std::vector<std::int64_t> score_displs;
  auto const all_counts = all_gather_values<std::int64_t>(policy, counts, count_displs, what);
  auto const all_ids = all_gather_values<std::int64_t>(policy, mine.ids, pair_displs, what);
  auto const all_scores = all_gather_values<T>(policy, mine.scores, score_displs, what);
  auto const ranks = static_cast<std::size_t>(policy.ranks());

  topk_result<T> result;
  result.k = k;
  result.candidates = candidates;
  result.larger_is_better = mine.larger_is_better;
  result.row_offsets.assign(static_cast<std::size_t>(q) + 1, 0);
  // pos[s]: the next pair of rank s for the current query, end[s]: the end of its list.
  std::vector<std::int64_t> pos(ranks);
  for (std::size_t s = 0; s < ranks; ++s) pos[s] = pair_displs[s];
  std::vector<std::int64_t> end(ranks);
  for (std::int64_t i = 0; i < q; ++i) {
    std::int64_t available = 0;
    for (std::size_t s = 0; s < ranks; ++s) {
      auto const c = all_counts[static_cast<std::size_t>(count_displs[s] + i)];
      end[s] = pos[s] + c;
      available += c;
    }
    auto const take = k > 0 ? std::min(k, available) : available;
    for (std::int64_t j = 0; j < take; ++j) {
      std::size_t best = ranks;
      for (std::size_t s = 0; s < ranks; ++s) {
        if (pos[s] == end[s]) continue;
        auto const p = static_cast<std::size_t>(pos[s]);
        if (best == ranks) {
          best = s;
          continue;
        }
        auto const b = static_cast<std::size_t>(pos[best]);
        if (ranks_before(all_scores[p], all_ids[p], all_scores[b], all_ids[b], mine.larger_is_better)) best = s;
      }
      auto const p = static_cast<std::size_t>(pos[best]++);
      result.ids.push_back(all_ids[p]);
      result.scores.push_back(all_scores[p]);
    }
    for (std::size_t s = 0; s < ranks; ++s) pos[s] = end[s];
    result.row_offsets[static_cast<std::size_t>(i) + 1] = static_cast<std::int64_t>(result.ids.size());
  }
  return result;
}

/// The row counts of every rank: rank r's rows are [first[r], first[r + 1]) of the
/// global rows (ranks + 1 entries). Collective (MPI_Allgather of one int64).
template <class Kind>
std::vector<std::int64_t> gather_row_starts(distributed_policy<Kind> const& policy, std::int64_t mine) {
  std::vector<std::int64_t> counts(static_cast<std::size_t>(policy.ranks()));
  MGPU_MPI_TRY(MPI_Allgather(&mine, 1, MPI_INT64_T, counts.data(), 1, MPI_INT64_T, policy.comm()));
  std::vector<std::int64_t> first(counts.size() + 1, 0);
  for (std::size_t r = 0; r < counts.size(); ++r) first[r + 1] = first[r] + counts[r];
  return first;
}

}  // namespace mgpu::mpi::detail
