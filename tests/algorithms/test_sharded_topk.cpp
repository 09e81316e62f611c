// Specification of the sharded top-k skeleton (mgpu/algorithms/detail/sharded_topk.hpp)
// and of the leaf contracts (mgpu/algorithms/detail/*_leaf.hpp) the host leaves meet.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
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
#include "mgpu/sparse/coo.hpp"
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
/// score for query q is -(|q - row|) (nearest row index first).
struct recording_batches {
  std::int64_t base = 0;
  std::size_t devices = 1;
  std::size_t k = 1;
  std::vector<std::vector<entry>> emitted;  // per query, as merged

  void prepare(int, std::int64_t, std::int64_t) noexcept {}

  void search(mgpu::device_context<mgpu::cpu>&, std::size_t dev, int, std::int64_t q0, std::int64_t q1,
              std::span<entry> out, std::span<std::int32_t> counts) const {
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

  void emit(std::int64_t, std::span<entry const> merged, std::span<std::int32_t const> counts) {
    for (std::size_t r = 0; r < counts.size(); ++r) {
      emitted.emplace_back(merged.begin() + static_cast<std::ptrdiff_t>(r * k),
                           merged.begin() + static_cast<std::ptrdiff_t>(r * k) + counts[r]);
    }
  }
};

/// The skeleton's batch events in the order the observer saw them (one sequence, under a
/// mutex). With `hold_merges`, the merge of batch b does not begin until a device task of
/// batch b + 1 has started: a latch, released by that task's device_started event (the
/// 60 s bound only turns a skeleton that never submits b + 1 early into a failure
/// instead of a hang; nothing is timed).
struct timeline {
  using event = mgpu::detail::batch_event;
  struct record {
    event what;
    std::int64_t batch;
    std::size_t device;
  };
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<record> records;
  bool hold_merges = false;
  std::int64_t batches = 0;

  void operator()(event what, std::int64_t batch, std::size_t device) {
    std::unique_lock lock(mutex);
    if (hold_merges && what == event::merge_started && batch + 1 < batches) {
      changed.wait_for(lock, 60s, [&] { return first(event::device_started, batch + 1) >= 0; });
    }
    records.push_back({what, batch, device});
    changed.notify_all();
  }

  /// Position of the first record of `what` for `batch` (any device), -1 if none.
  std::ptrdiff_t first(event what, std::int64_t batch) const {
    for (std::size_t i = 0; i < records.size(); ++i) {
      if (records[i].what == what && records[i].batch == batch) return static_cast<std::ptrdiff_t>(i);
    }
    return -1;
  }
  /// Position of the last record of `what` for `batch`, -1 if none.
  std::ptrdiff_t last(event what, std::int64_t batch) const {
    for (std::size_t i = records.size(); i-- > 0;) {
      if (records[i].what == what && records[i].batch == batch) return static_cast<std::ptrdiff_t>(i);
    }
    return -1;
  }
  std::size_t count(event what, std::int64_t batch) const {
    return static_cast<std::size_t>(std::count_if(records.begin(), records.end(), [&](record const& r) {
      return r.what == what && r.batch == batch;
    }));
  }

  mgpu::detail::sharded_options options(mgpu::detail::batch_join join) {
    return {join, [this](event what, std::int64_t batch, std::size_t device) { (*this)(what, batch, device); }};
  }
};

/// Checks what holds in both joins: per batch, one device_started and one device_finished
/// per device with a shard (none from the others), then one merge_started and one
/// merge_finished on the calling thread (device = device count), after every task of
/// the batch returned; merges in batch order.
void check_complete(timeline const& t, std::int64_t batches, std::vector<bool> const& has_shard) {
  using event = timeline::event;
  std::size_t const shards = static_cast<std::size_t>(std::count(has_shard.begin(), has_shard.end(), true));
  CHECK(t.records.size() == static_cast<std::size_t>(batches) * (2 * shards + 2));
  for (auto const& r : t.records) {
    if (r.what == event::device_started || r.what == event::device_finished) {
      REQUIRE(r.device < has_shard.size());
      CHECK(has_shard[r.device]);
    } else {
      CHECK(r.device == has_shard.size());
    }
  }
  for (std::int64_t b = 0; b < batches; ++b) {
    INFO("batch " << b);
    CHECK(t.count(event::device_started, b) == shards);
    CHECK(t.count(event::device_finished, b) == shards);
    CHECK(t.count(event::merge_started, b) == 1);
    CHECK(t.count(event::merge_finished, b) == 1);
    CHECK(t.last(event::device_finished, b) < t.first(event::merge_started, b));
    CHECK(t.first(event::merge_started, b) < t.first(event::merge_finished, b));
    if (b > 0) CHECK(t.first(event::merge_finished, b - 1) < t.first(event::merge_started, b));
  }
}

}  // namespace

TEST_CASE("sharded_topk merges the devices' lists exactly, in batch order, with fewer than k rows",
          "[algorithms][sharded_topk]") {
  for (std::size_t devices : {1u, 2u, 3u}) {
    host_policy const policy(std::make_shared<host_set>(devices, devices));
    recording_batches a;
    a.base = 5;
    a.devices = devices;
    a.k = 3;
    std::int64_t const queries = 7;
    std::vector<bool> const has_shard(devices, true);
    mgpu::detail::sharded_topk<float, std::int64_t>(policy, has_shard, queries, 2, a.k, a);
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
  using event = mgpu::detail::batch_event;
  host_policy const policy(std::make_shared<host_set>(2, 2));
  recording_batches a;
  a.base = 6;
  a.devices = 2;
  a.k = 2;
  std::int64_t const queries = 4;
  std::vector<bool> const has_shard{true, true};
  timeline t;
  t.hold_merges = true;
  t.batches = queries;
  {
    auto const options = t.options(mgpu::detail::batch_join::overlapped);
    mgpu::detail::sharded_options_scope const scope(options);
    mgpu::detail::sharded_topk<float, std::int64_t>(policy, has_shard, queries, 1, a.k, a);
  }
  check_complete(t, queries, has_shard);
  for (std::int64_t b = 0; b + 1 < queries; ++b) {
    INFO("batch " << b);
    CHECK(t.first(event::device_started, b + 1) >= 0);
    CHECK(t.first(event::device_started, b + 1) < t.first(event::merge_finished, b));
  }
  // Query q's two nearest rows of 0..5, by hand.
  std::vector<std::vector<std::int64_t>> const expected{{0, 1}, {1, 0}, {2, 1}, {3, 2}};
  REQUIRE(a.emitted.size() == 4);
  for (std::size_t q = 0; q < 4; ++q) {
    std::vector<std::int64_t> got;
    for (auto const& e : a.emitted[q]) got.push_back(e.index);
    CHECK(got == expected[q]);
  }
}

TEST_CASE("sharded_topk's synchronous join submits batch i+1 only after batch i is merged",
          "[algorithms][sharded_topk][concurrency]") {
  using event = mgpu::detail::batch_event;
  for (std::size_t devices : {1u, 3u}) {
    host_policy const policy(std::make_shared<host_set>(devices, devices));
    recording_batches a;
    a.base = 7;
    a.devices = devices;
    a.k = 3;
    std::int64_t const queries = 7;
    // Device 1 of 3 holds no shard: it reports nothing.
    std::vector<bool> has_shard(devices, true);
    if (devices == 3) has_shard[1] = false;
    timeline t;
    auto const options = t.options(mgpu::detail::batch_join::synchronous);
    mgpu::detail::sharded_topk<float, std::int64_t>(policy, has_shard, queries, 2, a.k, a, options);
    check_complete(t, 4, has_shard);
    for (std::int64_t b = 0; b + 1 < 4; ++b) {
      INFO("devices " << devices << ", batch " << b);
      CHECK(t.first(event::device_started, b + 1) > t.first(event::merge_finished, b));
    }
    // The same lists as the overlapped join: query q's nearest rows of the shards held.
    REQUIRE(a.emitted.size() == 7);
    for (std::size_t q = 0; q < 7; ++q) {
      std::vector<std::int64_t> rows;
      for (std::int64_t row = 0; row < 7; ++row) {
        if (has_shard[static_cast<std::size_t>(row) % devices]) rows.push_back(row);
      }
      auto const distance = [&](std::int64_t row) { return row > static_cast<std::int64_t>(q) ? row - static_cast<std::int64_t>(q) : static_cast<std::int64_t>(q) - row; };
      std::stable_sort(rows.begin(), rows.end(), [&](std::int64_t x, std::int64_t y) { return distance(x) < distance(y); });
      rows.resize(3);
      std::vector<std::int64_t> got;
      for (auto const& e : a.emitted[q]) got.push_back(e.index);
      CHECK(got == rows);
    }
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

TEST_CASE("a sharded_options_scope reaches knn and cosine_topk: both joins give the brute-force lists",
          "[algorithms][sharded_topk][concurrency]") {
  using event = mgpu::detail::batch_event;
  host_policy const policy(std::make_shared<host_set>(2, 2));
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> value(0.0f, 1.0f);

  SECTION("knn, l2, k = 3, batches of 2 queries") {
    std::int64_t const n = 11, q = 5, d = 3, k = 3;
    mgpu::dense_matrix<mgpu::cpu, float> base(n, d), queries(q, d);
    for (auto* m : {&base, &queries}) std::generate(m->data(), m->data() + m->rows() * m->cols(), [&] { return value(gen); });
    // Brute force: squared distances in double, ascending, ties to the smaller row.
    std::vector<std::vector<std::int64_t>> expected(static_cast<std::size_t>(q));
    for (std::int64_t i = 0; i < q; ++i) {
      std::vector<std::pair<double, std::int64_t>> all;
      for (std::int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (std::int64_t c = 0; c < d; ++c) {
          double const diff = static_cast<double>(queries.data()[i * d + c]) - static_cast<double>(base.data()[j * d + c]);
          s += diff * diff;
        }
        all.emplace_back(s, j);
      }
      std::sort(all.begin(), all.end());
      for (std::int64_t j = 0; j < k; ++j) expected[static_cast<std::size_t>(i)].push_back(all[static_cast<std::size_t>(j)].second);
    }
    for (auto join : {mgpu::detail::batch_join::overlapped, mgpu::detail::batch_join::synchronous}) {
      INFO("synchronous " << (join == mgpu::detail::batch_join::synchronous));
      timeline t;
      auto const options = t.options(join);
      mgpu::detail::sharded_options_scope const scope(options);
      auto const r = mgpu::knn(policy, base.view(), queries.view(), k, mgpu::knn_metric::l2, {.query_batch = 2});
      check_complete(t, 3, {true, true});
      if (join == mgpu::detail::batch_join::synchronous) {
        for (std::int64_t b = 0; b < 2; ++b) CHECK(t.first(event::device_started, b + 1) > t.first(event::merge_finished, b));
      }
      for (std::int64_t i = 0; i < q; ++i) {
        auto const ids = r.neighbors(i);
        CHECK(std::vector<std::int64_t>(ids.begin(), ids.end()) == expected[static_cast<std::size_t>(i)]);
      }
    }
  }

  SECTION("cosine_topk, every match >= 0.5 (k = 0), batches of 3 queries") {
    std::int32_t const rows = 8, cols = 5;
    std::vector<std::int32_t> r, c;
    std::vector<float> v;
    for (std::int32_t i = 0; i < rows; ++i) {
      for (std::int32_t j = 0; j < cols; ++j) {
        if ((i + j) % 3 == 0) continue;  // a sparse pattern
        r.push_back(i);
        c.push_back(j);
        v.push_back(value(gen) + 0.05f);
      }
    }
    auto const x = mgpu::csr_from_coo<float, std::int32_t>(rows, cols, r, c, v);
    // Brute force on the dense rows, in double: other rows with cosine >= 0.5, best first.
    std::vector<std::vector<double>> dense(static_cast<std::size_t>(rows), std::vector<double>(static_cast<std::size_t>(cols)));
    for (std::size_t e = 0; e < v.size(); ++e) dense[static_cast<std::size_t>(r[e])][static_cast<std::size_t>(c[e])] = v[e];
    std::vector<std::vector<std::int64_t>> expected(static_cast<std::size_t>(rows));
    for (std::size_t i = 0; i < dense.size(); ++i) {
      std::vector<std::pair<double, std::int64_t>> matches;
      for (std::size_t j = 0; j < dense.size(); ++j) {
        if (j == i) continue;
        double dot = 0, ni = 0, nj = 0;
        for (std::size_t col = 0; col < dense[i].size(); ++col) {
          dot += dense[i][col] * dense[j][col];
          ni += dense[i][col] * dense[i][col];
          nj += dense[j][col] * dense[j][col];
        }
        double const cosine = dot / std::sqrt(ni * nj);
        if (cosine >= 0.5) matches.emplace_back(-cosine, static_cast<std::int64_t>(j));
      }
      std::sort(matches.begin(), matches.end());
      for (auto const& m : matches) expected[i].push_back(m.second);
    }
    for (auto join : {mgpu::detail::batch_join::overlapped, mgpu::detail::batch_join::synchronous}) {
      INFO("synchronous " << (join == mgpu::detail::batch_join::synchronous));
      timeline t;
      auto const options = t.options(join);
      mgpu::detail::sharded_options_scope const scope(options);
      auto const top = mgpu::cosine_topk(policy, x, 0, {.query_batch = 3, .threshold = 0.5});
      check_complete(t, 3, {true, true});
      for (std::int64_t i = 0; i < rows; ++i) {
        auto const ids = top.neighbors(i);
        CHECK(std::vector<std::int64_t>(ids.begin(), ids.end()) == expected[static_cast<std::size_t>(i)]);
      }
    }
  }

  // Outside every scope: the defaults again (no observer is called).
  CHECK(mgpu::detail::current_sharded_options().join == mgpu::detail::batch_join::overlapped);
  CHECK_FALSE(mgpu::detail::current_sharded_options().observer);
}

TEST_CASE("each skeleton task grants one deferral of results, to its first leaf call only",
          "[algorithms][sharded_topk]") {
  // What a GPU leaf relies on (backend/cuda/knn.hpp): the first take in a task gets the
  // grant, a second take in the same task (a device's later shard) does not, nor does a
  // call outside any task.
  CHECK_FALSE(mgpu::detail::take_deferred_results());
  host_policy const policy(std::make_shared<host_set>(2, 2));
  struct taking {
    std::mutex mutex;
    std::vector<std::vector<bool>> takes;  // per (batch, device) task, in call order
    void prepare(int, std::int64_t, std::int64_t) noexcept {}
    void search(mgpu::device_context<mgpu::cpu>&, std::size_t, int, std::int64_t, std::int64_t, std::span<entry>,
                std::span<std::int32_t> counts) {
      bool const first = mgpu::detail::take_deferred_results();
      bool const second = mgpu::detail::take_deferred_results();
      std::fill(counts.begin(), counts.end(), 0);
      std::lock_guard lock(mutex);
      takes.push_back({first, second});
    }
    void emit(std::int64_t, std::span<entry const>, std::span<std::int32_t const>) {}
  } a;
  mgpu::detail::sharded_topk<float, std::int64_t>(policy, std::vector<bool>{true, true}, 3, 1, 1, a);
  REQUIRE(a.takes.size() == 6);
  for (auto const& t : a.takes) CHECK(t == std::vector<bool>{true, false});
  CHECK_FALSE(mgpu::detail::take_deferred_results());
}
