// Specification of the sharded top-k skeleton (mgpu/algorithms/detail/sharded_topk.hpp)
// and of the leaf contracts (mgpu/algorithms/detail/*_leaf.hpp) the host leaves meet.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "mgpu/algorithms/als.hpp"
#include "mgpu/algorithms/cosine_topk.hpp"
#include "mgpu/algorithms/detail/sharded_topk.hpp"
#include "mgpu/algorithms/knn.hpp"
#include "mgpu/sparse/detail/sparse_leaf.hpp"
#include "mgpu/sparse/detail/spgemm_leaf.hpp"
#include "mgpu/algorithms/tfidf.hpp"
#include "mgpu/sparse/distributed_csr.hpp"
#include "mgpu/sparse/spgemm.hpp"
#include "mgpu/core/device_set.hpp"
#include "mgpu/execution/policy.hpp"

using namespace std::chrono_literals;
using host_set = mgpu::device_set<mgpu::cpu>;
using host_policy = mgpu::execution_policy<mgpu::cpu>;
using entry = mgpu::detail::scored<float, std::int64_t>;

TEST_CASE("the host leaves meet the leaf contracts", "[algorithms][leaf][concepts]") {
  using namespace mgpu::detail;
  STATIC_REQUIRE(cosine_leaf_for<cosine_leaf<mgpu::cpu>, float, std::int32_t>);
  STATIC_REQUIRE(cosine_leaf_for<cosine_leaf<mgpu::cpu>, double, std::int64_t>);
  STATIC_REQUIRE(knn_leaf_for<knn_leaf<mgpu::cpu>, float>);
  STATIC_REQUIRE(knn_leaf_for<knn_leaf<mgpu::cpu>, double>);
  STATIC_REQUIRE(als_leaf_for<als_leaf<mgpu::cpu>, float, std::int32_t>);
  STATIC_REQUIRE(weighting_leaf_for<weighting_leaf<mgpu::cpu>, float, std::uint32_t, std::int32_t>);
  STATIC_REQUIRE(sparse_leaf_for<sparse_leaf<mgpu::cpu>, float, std::int32_t>);
  STATIC_REQUIRE(sparse_leaf_for<sparse_leaf<mgpu::cpu>, double, std::int64_t>);
  STATIC_REQUIRE(spgemm_leaf_for<spgemm_leaf<mgpu::cpu>, float, std::int32_t>);
  STATIC_REQUIRE(spgemm_leaf_for<spgemm_leaf<mgpu::cpu>, double, std::int64_t>);
}

namespace {

struct not_a_leaf {};

/// A cosine leaf whose score lacks the shared bounds argument (the drift issue 14 names);
/// everything else is as the contract asks.
struct leaf_without_bounds {
  template <class T, class I>
  struct shard {};
  template <class T, class I>
  struct staged {};
  template <class T, class I>
  static staged<T, I> stage(mgpu::device_set<mgpu::cpu>&, std::size_t, mgpu::csr_view<T, I>, bool,
                            mgpu::event<mgpu::cpu>&) {
    return {};
  }
  template <class T, class I>
  static shard<T, I> make_shard(mgpu::device_context<mgpu::cpu>&, staged<T, I>&, I, bool, bool, std::size_t) {
    return {};
  }
  template <class T, class I>
  static void score(mgpu::device_context<mgpu::cpu>&, mgpu::csr_view<T, I>, std::span<T const>, shard<T, I> const&,
                    I, I, std::size_t, bool, bool, T, std::span<mgpu::detail::scored<T, I>>, std::span<std::int32_t>,
                    std::size_t) {}
  template <class T, class I>
  static void score_all(mgpu::device_context<mgpu::cpu>&, mgpu::csr_view<T, I>, std::span<T const>,
                        shard<T, I> const&, I, I, bool, bool, T, std::vector<std::int64_t>&,
                        std::vector<mgpu::detail::scored<T, I>>&, std::size_t) {}
  template <class T, class I>
  static void export_rows(mgpu::device_set<mgpu::cpu>&, std::size_t, shard<T, I> const&, std::vector<std::int64_t>&,
                          std::vector<I>&, std::vector<T>&) {}
};

/// The same leaf with the shared bounds: it meets the contract.
struct leaf_with_bounds : leaf_without_bounds {
  template <class T, class I>
  static void score(mgpu::device_context<mgpu::cpu>&, mgpu::csr_view<T, I>, std::span<T const>, shard<T, I> const&,
                    I, I, std::size_t, bool, bool, T, std::span<mgpu::detail::scored<T, I>>, std::span<std::int32_t>,
                    std::size_t, std::span<std::atomic<T>>) {}
};

}  // namespace

template <>
struct mgpu::detail::leaf_kind<leaf_without_bounds> {
  using type = mgpu::cpu;
};
template <>
struct mgpu::detail::leaf_kind<leaf_with_bounds> {
  using type = mgpu::cpu;
};

TEST_CASE("the leaf contracts reject a leaf with other arguments", "[algorithms][leaf][concepts]") {
  STATIC_REQUIRE(mgpu::detail::cosine_leaf_for<leaf_with_bounds, float, std::int32_t>);
  STATIC_REQUIRE_FALSE(mgpu::detail::cosine_leaf_for<leaf_without_bounds, float, std::int32_t>);
  STATIC_REQUIRE_FALSE(mgpu::detail::knn_leaf_for<mgpu::detail::cosine_leaf<mgpu::cpu>, float>);
}

namespace {

/// A fake search: shard d of `devices` holds base rows {d, d + devices, ...} < base, whose
/// score for query q is -(|q - row|) (nearest row index first). It records, in one
/// sequence, when each batch's device tasks start and when each batch's merge ends.
struct recording_batches {
  std::int64_t base = 0;
  std::size_t devices = 1;
  std::size_t k = 1;
  std::vector<std::vector<entry>> emitted;  // per query, as merged
  std::atomic<int> clock{0};
  std::vector<std::atomic<int>> search_started;  // per batch, first task start (0: not yet)
  std::vector<int> merge_ended;                  // per batch
  std::int64_t batch = 1;
  bool slow_merge = false;

  void prepare(int, std::int64_t, std::int64_t) noexcept {}

  void search(mgpu::device_context<mgpu::cpu>&, std::size_t dev, int, std::int64_t q0, std::int64_t q1,
              std::span<entry> out, std::span<std::int32_t> counts) {
    int expected = 0;
    search_started[static_cast<std::size_t>(q0 / batch)].compare_exchange_strong(expected, ++clock);
    for (std::int64_t q = q0; q < q1; ++q) {
      std::vector<entry> all;
      for (auto row = static_cast<std::int64_t>(dev); row < base; row += static_cast<std::int64_t>(devices)) {
        all.push_back({-static_cast<float>(row > q ? row - q : q - row), row});
      }
      std::sort(all.begin(), all.end(), [](entry const& a, entry const& b) { return mgpu::detail::ranks_before(a, b); });
      auto const n = std::min(all.size(), k);
      auto const r = static_cast<std::size_t>(q - q0);
      std::copy_n(all.begin(), n, out.begin() + static_cast<std::ptrdiff_t>(r * k));
      counts[r] = static_cast<std::int32_t>(n);
    }
  }

  void emit(std::int64_t q0, std::span<entry const> merged, std::span<std::int32_t const> counts) {
    auto const b = static_cast<std::size_t>(q0 / batch);
    if (slow_merge && b + 1 < search_started.size()) {
      // The next batch was submitted before this merge: wait (bounded) for it to start.
      for (int i = 0; i < 10000 && search_started[b + 1].load() == 0; ++i) std::this_thread::sleep_for(1ms);
    }
    for (std::size_t r = 0; r < counts.size(); ++r) {
      emitted.emplace_back(merged.begin() + static_cast<std::ptrdiff_t>(r * k),
                           merged.begin() + static_cast<std::ptrdiff_t>(r * k) + counts[r]);
    }
    merge_ended[b] = ++clock;
  }
};

}  // namespace

TEST_CASE("sharded_topk merges the devices' lists exactly, in batch order, with fewer than k rows",
          "[algorithms][sharded_topk]") {
  for (std::size_t devices : {1u, 2u, 3u}) {
    host_policy const policy(std::make_shared<host_set>(devices, devices));
    recording_batches a;
    a.base = 5;
    a.devices = devices;
    a.k = 3;
    a.batch = 2;
    std::int64_t const queries = 7;
    a.search_started = std::vector<std::atomic<int>>(4);
    a.merge_ended.assign(4, 0);
    std::vector<bool> const has_shard(devices, true);
    mgpu::detail::sharded_topk<float, std::int64_t>(policy, has_shard, queries, a.batch, a.k, a);
    REQUIRE(a.emitted.size() == 7);
    // Query q's nearest rows of 0..4 by |q - row|, ties toward the smaller row.
    std::vector<std::vector<std::int64_t>> const expected{{0, 1, 2}, {1, 0, 2}, {2, 1, 3}, {3, 2, 4},
                                                          {4, 3, 2}, {4, 3, 2}, {4, 3, 2}};
    for (std::size_t q = 0; q < 7; ++q) {
      std::vector<std::int64_t> got;
      for (auto const& e : a.emitted[q]) got.push_back(e.index);
      CHECK(got == expected[q]);
    }
    CHECK(a.emitted[6][0].score == -2.0f);
  }
}

TEST_CASE("sharded_topk searches batch i+1 on the devices while the host merges batch i",
          "[algorithms][sharded_topk][concurrency]") {
  host_policy const policy(std::make_shared<host_set>(2, 2));
  recording_batches a;
  a.base = 6;
  a.devices = 2;
  a.k = 2;
  a.batch = 1;
  a.slow_merge = true;
  std::int64_t const queries = 4;
  a.search_started = std::vector<std::atomic<int>>(4);
  a.merge_ended.assign(4, 0);
  mgpu::detail::sharded_topk<float, std::int64_t>(policy, std::vector<bool>{true, true}, queries, a.batch, a.k, a);
  for (std::size_t b = 0; b + 1 < 4; ++b) {
    INFO("batch " << b);
    CHECK(a.search_started[b + 1].load() != 0);
    CHECK(a.search_started[b + 1].load() < a.merge_ended[b]);
  }
}

TEST_CASE("sharded_topk reports a device's error and joins the batch in flight",
          "[algorithms][sharded_topk][errors]") {
  host_policy const policy(std::make_shared<host_set>(2, 2));
  struct failing {
    std::atomic<int> searches{0};
    void prepare(int, std::int64_t, std::int64_t) noexcept {}
    void search(mgpu::device_context<mgpu::cpu>&, std::size_t dev, int, std::int64_t q0, std::int64_t,
                std::span<entry>, std::span<std::int32_t> counts) {
      ++searches;
      counts[0] = 0;
      if (q0 == 1 && dev == 1) throw std::runtime_error("device 1 failed on batch 1");
    }
    void emit(std::int64_t, std::span<entry const>, std::span<std::int32_t const>) {}
  } a;
  CHECK_THROWS_WITH((mgpu::detail::sharded_topk<float, std::int64_t>(policy, std::vector<bool>{true, true}, 4, 1, 1, a)),
                    "device 1 failed on batch 1");
  // Batch 2 was in flight when batch 1's error surfaced: its tasks ran before the throw.
  CHECK(a.searches.load() == 6);
}

TEST_CASE("sharded_matches merges the devices' variable-length lists exactly, in batch order",
          "[algorithms][sharded_topk]") {
  // Device d holds rows {d, d + devices, ...} < 7; a row matches query q when |q - row| <= 2,
  // scored -|q - row|. Expected, by hand: the rows within 2 of q, nearest first, ties to
  // the smaller row.
  std::vector<std::vector<std::int64_t>> const expected{
      {0, 1, 2}, {1, 0, 2, 3}, {2, 1, 3, 0, 4}, {3, 2, 4, 1, 5}, {4, 3, 5, 2, 6}};
  for (std::size_t devices : {1u, 2u, 3u}) {
    host_policy const policy(std::make_shared<host_set>(devices, devices));
    struct unbounded {
      std::size_t devices;
      std::vector<std::vector<entry>> emitted;
      void prepare(int, std::int64_t, std::int64_t) noexcept {}
      void search_all(mgpu::device_context<mgpu::cpu>&, std::size_t dev, int, std::int64_t q0, std::int64_t q1,
                      mgpu::detail::match_lists<float, std::int64_t>& lists) const {
        lists.offsets.assign(1, 0);
        lists.entries.clear();
        for (std::int64_t q = q0; q < q1; ++q) {
          std::vector<entry> row;
          for (auto r = static_cast<std::int64_t>(dev); r < 7; r += static_cast<std::int64_t>(devices)) {
            auto const distance = r > q ? r - q : q - r;
            if (distance <= 2) row.push_back({-static_cast<float>(distance), r});
          }
          std::sort(row.begin(), row.end(), mgpu::detail::ranks_before<float, std::int64_t>);
          lists.entries.insert(lists.entries.end(), row.begin(), row.end());
          lists.offsets.push_back(static_cast<std::int64_t>(lists.entries.size()));
        }
      }
      void emit_all(std::int64_t q0, std::span<std::int64_t const> offsets, std::span<entry const> entries) {
        CHECK(static_cast<std::size_t>(q0) == emitted.size());
        for (std::size_t r = 0; r + 1 < offsets.size(); ++r) {
          emitted.emplace_back(entries.begin() + offsets[r], entries.begin() + offsets[r + 1]);
        }
      }
    } a{devices, {}};
    mgpu::detail::sharded_matches<float, std::int64_t>(policy, std::vector<bool>(devices, true), 5, 2, a);
    REQUIRE(a.emitted.size() == 5);
    for (std::size_t q = 0; q < 5; ++q) {
      std::vector<std::int64_t> got;
      for (auto const& e : a.emitted[q]) got.push_back(e.index);
      CHECK(got == expected[q]);
    }
  }
}
