// knn_index: built once, searched many times, saved and loaded. Its results are checked
// against the one-shot knn() (itself tested against float64 brute force and numpy in
// test_knn.cpp) bit for bit, against the float64 brute force of knn_test_support.hpp on
// small-integer data (every dot product exact in float, so any partition of the rows
// gives the same scores), and its traffic with the set's transfer counter.
#include <catch2/catch.hpp>

#include <bit>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <mgpu/algorithms/knn.hpp>
#include <mgpu/algorithms/knn_index.hpp>
#include <mgpu/io/binary_file.hpp>

#include "../test_support.hpp"
#include "knn_test_support.hpp"

namespace {

using Catch::Matchers::Contains;
using mgpu::knn_metric;

constexpr knn_metric all_metrics[] = {knn_metric::l2, knn_metric::inner_product, knn_metric::cosine};

mgpu::execution_policy<mgpu::cpu> policy_of(char const* devices) { return mgpu::execution_policy<mgpu::cpu>(devices); }

/// rows x cols uniform in [-1, 1): dot products round, so only an identical computation
/// gives identical bits.
template <class T>
mgpu::dense_matrix<mgpu::cpu, T> random_real(std::int64_t rows, std::int64_t cols, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<T> value(T{-1}, T{1});
  mgpu::dense_matrix<mgpu::cpu, T> m(rows, cols);
  for (std::int64_t i = 0; i < rows * cols; ++i) m.data()[i] = value(gen);
  return m;
}

/// Rows [first, last) of m.
template <class T>
mgpu::dense_view<T const> rows_of(mgpu::dense_matrix<mgpu::cpu, T> const& m, std::int64_t first, std::int64_t last) {
  return {last - first, m.cols(), m.ld(), m.data() + first * m.ld()};
}

template <class T>
bool same_bits(std::vector<T> const& a, std::vector<T> const& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

template <class T>
void require_identical(mgpu::topk_result<T> const& a, mgpu::topk_result<T> const& b) {
  REQUIRE(a.k == b.k);
  REQUIRE(a.candidates == b.candidates);
  REQUIRE(a.larger_is_better == b.larger_is_better);
  REQUIRE(a.row_offsets == b.row_offsets);
  REQUIRE(a.ids == b.ids);
  REQUIRE(same_bits(a.scores, b.scores));
}

void require_reference(mgpu::topk_result<float> const& got, std::vector<knn_test::reference_row> const& expected) {
  REQUIRE(got.rows() == static_cast<std::int64_t>(expected.size()));
  for (std::int64_t q = 0; q < got.rows(); ++q) {
    auto const& row = expected[static_cast<std::size_t>(q)];
    auto const ids = got.neighbors(q);
    auto const scores = got.scores_of(q);
    REQUIRE(ids.size() == row.indices.size());
    for (std::size_t j = 0; j < ids.size(); ++j) {
      INFO("query " << q << ", rank " << j);
      REQUIRE(ids[j] == row.indices[j]);
      REQUIRE(static_cast<double>(scores[j]) == Approx(row.values[j]).epsilon(1e-6).margin(1e-6));
    }
  }
}

std::vector<char> read_bytes(std::filesystem::path const& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(std::filesystem::path const& path, std::vector<char> const& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

TEST_CASE("knn_index built by one add searches bitwise like the one-shot knn on cpu and cpu:3",
          "[knn][knn_index]") {
  auto const base = random_real<float>(257, 19, 1);
  auto const queries = random_real<float>(41, 19, 2);
  for (char const* devices : {"cpu", "cpu:3"}) {
    auto const policy = policy_of(devices);
    for (auto metric : all_metrics) {
      INFO(devices << ", metric " << mgpu::detail::knn_metric_name(metric));
      mgpu::knn_options const options{.query_batch = 16};
      mgpu::knn_index<mgpu::cpu, float> index(policy, 19, metric, options);
      index.add(base);
      CHECK(index.size() == 257);
      CHECK(index.dim() == 19);
      CHECK(index.metric() == metric);
      CHECK(&index.policy().devices() == &policy.devices());
      for (std::int64_t k : {1, 10, 300}) {
        require_identical(index.search(queries, k), mgpu::knn(policy, base, queries, k, metric, options));
      }
    }
  }
}

TEST_CASE("knn_index of double values searches bitwise like knn", "[knn][knn_index]") {
  auto const base = random_real<double>(120, 7, 3);
  auto const queries = random_real<double>(9, 7, 4);
  auto const policy = policy_of("cpu:2");
  mgpu::knn_index<mgpu::cpu, double> index(policy, 7, knn_metric::cosine);
  index.add(base.view());
  require_identical(index.search(queries.view(), 6), mgpu::knn(policy, base, queries, 6, knn_metric::cosine));
}

TEST_CASE("knn_index searched three times on cpu:3 moves its base onto the devices once",
          "[knn][knn_index][transfers]") {
  auto const base = knn_test::random_matrix(100, 8, -3, 3, 5);
  auto const queries = knn_test::random_matrix(12, 8, -3, 3, 6);
  auto const policy = policy_of("cpu:3");
  auto& t = policy.devices().transfers();
  t.reset();
  mgpu::knn_index<mgpu::cpu, float> index(policy, 8);
  CHECK(t.total() == 0);
  index.add(base);
  // Equal blocks of 33, 33 and 34 rows; each row is 8 floats plus its norm term.
  std::int64_t const block_rows[] = {33, 33, 34};
  for (int dev = 0; dev < 3; ++dev) {
    CHECK(t.bytes(mgpu::host_endpoint, dev) == static_cast<std::uint64_t>(block_rows[dev] * (8 + 1) * 4));
    CHECK(t.sent(dev) == 0);
  }
  CHECK(t.total() == 100 * 9 * 4);

  auto const expected = knn_test::reference_knn(base.view(), queries.view(), 5, knn_metric::l2);
  for (int i = 0; i < 3; ++i) require_reference(index.search(queries, 5), expected);
  CHECK(t.total() == 100 * 9 * 4);  // the searches moved nothing
}

TEST_CASE("the one-shot knn reads the caller's base in place on host devices: nothing is counted",
          "[knn][knn_index][transfers]") {
  auto const base = knn_test::random_matrix(50, 4, -3, 3, 7);
  auto const policy = policy_of("cpu:3");
  policy.devices().transfers().reset();
  auto const r = mgpu::knn(policy, base, base, 3);
  CHECK(r.rows() == 50);
  CHECK(policy.devices().transfers().total() == 0);
}

TEST_CASE("knn_index keeps its own copy: the caller's rows may change or die after add", "[knn][knn_index]") {
  auto const queries = knn_test::random_matrix(10, 6, -3, 3, 8);
  auto const kept = knn_test::random_matrix(70, 6, -3, 3, 9);
  mgpu::knn_index<mgpu::cpu, float> index(policy_of("cpu:2"), 6);
  {
    auto scratch = knn_test::random_matrix(70, 6, -3, 3, 9);  // the same rows as `kept`
    index.add(scratch.view());
    std::fill(scratch.data(), scratch.data() + 70 * 6, 1000.0f);  // overwritten, then freed
  }
  require_reference(index.search(queries, 4), knn_test::reference_knn(kept.view(), queries.view(), 4, knn_metric::l2));
}

TEST_CASE("knn_index: adding in two parts equals one add of the same rows, ids continuing",
          "[knn][knn_index]") {
  // Small integers: every dot product is exact in float, so the scores do not depend on
  // which rows share a GEMM call, and the two layouts must agree bit for bit.
  auto const base = knn_test::random_matrix(173, 11, -3, 3, 10);
  auto const queries = knn_test::random_matrix(29, 11, -3, 3, 11);
  for (char const* devices : {"cpu", "cpu:3"}) {
    auto const policy = policy_of(devices);
    for (auto metric : all_metrics) {
      INFO(devices << ", metric " << mgpu::detail::knn_metric_name(metric));
      mgpu::knn_options const options{.query_batch = 8};
      mgpu::knn_index<mgpu::cpu, float> once(policy, 11, metric, options);
      once.add(base);
      mgpu::knn_index<mgpu::cpu, float> twice(policy, 11, metric, options);
      twice.add(rows_of(base, 0, 60));
      CHECK(twice.size() == 60);
      twice.add(rows_of(base, 60, 173));
      CHECK(twice.size() == 173);
      for (std::int64_t k : {1, 9, 200}) {
        require_identical(twice.search(queries, k), once.search(queries, k));
      }
      if (metric != knn_metric::cosine) {  // cosine is exact only up to round-off
        require_reference(twice.search(queries, 9), knn_test::reference_knn(base.view(), queries.view(), 9, metric));
      }
    }
  }
}

TEST_CASE("knn_index: an add of a single row after a large one, on more devices than rows", "[knn][knn_index]") {
  auto const base = knn_test::random_matrix(41, 5, -3, 3, 12);
  auto const queries = knn_test::random_matrix(7, 5, -3, 3, 13);
  mgpu::knn_index<mgpu::cpu, float> index(policy_of("cpu:3"), 5, knn_metric::inner_product);
  index.add(rows_of(base, 0, 40));
  index.add(rows_of(base, 40, 41));  // one row: devices 0 and 1 hold no shard of it
  require_reference(index.search(queries, 41),
                    knn_test::reference_knn(base.view(), queries.view(), 41, knn_metric::inner_product));
}

TEST_CASE("knn_index save and load round trip: the loaded index searches bitwise like the saved one",
          "[knn][knn_index][io]") {
  mgpu_test::temp_dir dir;
  auto const base = random_real<float>(150, 13, 14);
  auto const queries = random_real<float>(17, 13, 15);
  auto const policy = policy_of("cpu:3");
  for (auto metric : all_metrics) {
    INFO("metric " << mgpu::detail::knn_metric_name(metric));
    mgpu::knn_index<mgpu::cpu, float> saved(policy, 13, metric);
    saved.add(rows_of(base, 0, 100));
    saved.add(rows_of(base, 100, 150));
    saved.save(dir / "index.knn");
    auto const loaded = mgpu::knn_index<mgpu::cpu, float>::load(policy, dir / "index.knn");
    CHECK(loaded.size() == 150);
    CHECK(loaded.dim() == 13);
    CHECK(loaded.metric() == metric);
    require_identical(loaded.search(queries, 12), saved.search(queries, 12));
  }
}

TEST_CASE("knn_index save/load of an empty add and of rows of width 0", "[knn][knn_index][io]") {
  mgpu_test::temp_dir dir;
  auto const policy = policy_of("cpu:2");
  mgpu::knn_index<mgpu::cpu, float> empty(policy, 3);
  empty.add(mgpu::dense_matrix<mgpu::cpu, float>(0, 3));
  empty.save(dir / "empty.knn");
  auto const e = mgpu::knn_index<mgpu::cpu, float>::load(policy, dir / "empty.knn");
  CHECK(e.size() == 0);
  auto const none = e.search(mgpu::dense_matrix<mgpu::cpu, float>(2, 3, 1.0f), 4);
  CHECK(none.rows() == 2);
  CHECK(none.size() == 0);

  mgpu::knn_index<mgpu::cpu, float> flat(policy, 0);
  flat.add(mgpu::dense_matrix<mgpu::cpu, float>(3, 0));
  flat.save(dir / "flat.knn");
  auto const f = mgpu::knn_index<mgpu::cpu, float>::load(policy, dir / "flat.knn");
  auto const r = f.search(mgpu::dense_matrix<mgpu::cpu, float>(1, 0), 2);
  // d = 0: every distance is 0, so the ranking is by index.
  REQUIRE(r.count(0) == 2);
  CHECK(r.neighbors(0)[0] == 0);
  CHECK(r.neighbors(0)[1] == 1);
}

TEST_CASE("knn_index::load rejects a truncated file, a flipped byte, a newer version and another value type",
          "[knn][knn_index][io][reliability]") {
  mgpu_test::temp_dir dir;
  auto const policy = policy_of("cpu");
  auto const base = knn_test::random_matrix(20, 4, -3, 3, 16);
  mgpu::knn_index<mgpu::cpu, float> index(policy, 4);
  index.add(base);
  index.save(dir / "good.knn");
  auto const good = read_bytes(dir / "good.knn");
  using index_type = mgpu::knn_index<mgpu::cpu, float>;

  auto truncated = good;
  truncated.resize(good.size() - 9);
  write_bytes(dir / "truncated.knn", truncated);
  CHECK_THAT(mgpu_test::message_of<mgpu::file_format_error>([&] { (void)index_type::load(policy, dir / "truncated.knn"); }),
             Contains("truncated.knn"));

  auto flipped = good;
  flipped[good.size() / 2] = static_cast<char>(flipped[good.size() / 2] ^ 0x10);  // inside the rows
  write_bytes(dir / "flipped.knn", flipped);
  CHECK_THAT(mgpu_test::message_of<mgpu::file_format_error>([&] { (void)index_type::load(policy, dir / "flipped.knn"); }),
             Contains("flipped.knn") && Contains("corrupted"));

  // A well-formed file of a newer kind version (written through the container directly).
  mgpu::write_binary_file(dir / "newer.knn", "knn_index", 2, [&](mgpu::binary_writer& w) {
    w.write_text("value_type", "float32");
    w.write_text("metric", "l2");
    w.write_value<std::int64_t>("dim", 4);
    w.write("parts", std::vector<std::int64_t>{0});
    w.write("rows", std::vector<float>{});
  });
  CHECK_THAT(mgpu_test::message_of<mgpu::file_format_error>([&] { (void)index_type::load(policy, dir / "newer.knn"); }),
             Contains("knn_index version 2 is not supported"));

  CHECK_THAT(mgpu_test::message_of<mgpu::file_format_error>(
                 [&] { (void)mgpu::knn_index<mgpu::cpu, double>::load(policy, dir / "good.knn"); }),
             Contains("holds a knn_index of float32 values, not float64"));

  // Sections that do not agree: 3 rows claimed, 2 stored.
  mgpu::write_binary_file(dir / "short.knn", "knn_index", 1, [&](mgpu::binary_writer& w) {
    w.write_text("value_type", "float32");
    w.write_text("metric", "cosine");
    w.write_value<std::int64_t>("dim", 2);
    w.write("parts", std::vector<std::int64_t>{3});
    w.write("rows", std::vector<float>{1, 2, 3, 4});
  });
  CHECK_THAT(mgpu_test::message_of<mgpu::file_format_error>([&] { (void)index_type::load(policy, dir / "short.knn"); }),
             Contains("part 0 claims 3 rows of 2 values but holds 4 values"));
}

TEST_CASE("knn_index: search before add, k < 1 and widths that differ throw the documented exceptions",
          "[knn][knn_index][reliability]") {
  auto const policy = policy_of("cpu:2");
  mgpu::knn_index<mgpu::cpu, float> index(policy, 3);
  mgpu::dense_matrix<mgpu::cpu, float> const queries(2, 3, 1.0f);
  CHECK_THAT(mgpu_test::message_of<mgpu::invalid_argument>([&] { (void)index.search(queries, 1); }),
             Contains("search before add"));
  CHECK_THAT(mgpu_test::message_of<mgpu::invalid_argument>(
                 [&] { mgpu::knn_index<mgpu::cpu, float>(policy, -1); }),
             Contains("dimension must be at least 0, got -1"));

  auto const wide = knn_test::random_matrix(4, 5, -3, 3, 17);
  CHECK_THAT(mgpu_test::message_of<mgpu::dimension_mismatch>([&] { index.add(wide); }),
             Contains("rows of 3 values") && Contains("4 x 5"));
  auto bad = knn_test::random_matrix(4, 3, -3, 3, 18);
  bad(2, 1) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THAT(mgpu_test::message_of<mgpu::invalid_argument>([&] { index.add(bad); }),
             Contains("non-finite value (nan) at row 2, column 1"));
  CHECK(index.size() == 0);  // failed adds leave the index as it was

  index.add(knn_test::random_matrix(6, 3, -3, 3, 19));
  for (std::int64_t k : {0, -2}) {
    CHECK_THAT(mgpu_test::message_of<mgpu::invalid_argument>([&] { (void)index.search(queries, k); }),
               Contains("k must be at least 1, got " + std::to_string(k)));
  }
  CHECK_THAT(mgpu_test::message_of<mgpu::dimension_mismatch>([&] { (void)index.search(wide, 1); }),
             Contains("6 x 3") && Contains("4 x 5"));
}

TEST_CASE("knn_index and knn report progress on the calling thread, done non-decreasing up to the total",
          "[knn][knn_index][progress]") {
  auto const base = knn_test::random_matrix(90, 6, -3, 3, 20);
  auto const queries = knn_test::random_matrix(30, 6, -3, 3, 21);
  auto const caller = std::this_thread::get_id();
  std::vector<std::pair<std::int64_t, std::int64_t>> calls;
  bool on_caller = true;
  mgpu::knn_options options{.query_batch = 7};
  options.progress = [&](std::int64_t done, std::int64_t total) {
    calls.emplace_back(done, total);
    on_caller = on_caller && std::this_thread::get_id() == caller;
  };
  auto const policy = policy_of("cpu:3");
  mgpu::knn_index<mgpu::cpu, float> index(policy, 6, knn_metric::l2, options);
  index.add(base);
  (void)index.search(queries, 4);
  std::vector<std::pair<std::int64_t, std::int64_t>> const batches{{7, 30}, {14, 30}, {21, 30}, {28, 30}, {30, 30}};
  CHECK(calls == batches);
  CHECK(on_caller);

  calls.clear();
  (void)mgpu::knn(policy, base, queries, 4, knn_metric::l2, options);
  CHECK(calls == batches);
  CHECK(on_caller);
}

TEST_CASE("knn_index accepts matrices and views, writable or not, is built from rows directly, and moves", "[knn][knn_index]") {
  auto base = knn_test::random_matrix(30, 4, -3, 3, 22);
  auto queries = knn_test::random_matrix(5, 4, -3, 3, 23);
  mgpu::knn_index<mgpu::cpu, float> index(policy_of("cpu"), 4, knn_metric::inner_product);
  index.add(rows_of(base, 0, 10));                                           // dense_view<float const>
  index.add(mgpu::dense_view<float>{10, 4, 4, base.data() + 10 * 4});        // dense_view<float>
  index.add(mgpu::dense_matrix<mgpu::cpu, float>(10, 4, std::span<float const>(base.data() + 80, 40)));  // matrix
  auto const moved = std::move(index);
  auto const expected = knn_test::reference_knn(base.view(), queries.view(), 5, knn_metric::inner_product);
  require_reference(moved.search(queries, 5), expected);
  require_reference(moved.search(queries.view(), 5), expected);
  require_reference(moved.search(mgpu::const_view(queries.view()), 5), expected);
  mgpu::knn_index<mgpu::cpu, float> const direct(policy_of("cpu"), base, knn_metric::inner_product);  // built from the rows
  CHECK(direct.size() == 30);
  CHECK(direct.dim() == 4);
  require_identical(direct.search(queries, 5), moved.search(queries, 5));
}

TEST_CASE("knn_index: concurrent searches of one index from several threads each get their own result",
          "[knn][knn_index][concurrency]") {
  auto const base = random_real<float>(300, 16, 24);
  mgpu::knn_index<mgpu::cpu, float> index(policy_of("cpu:2"), 16, knn_metric::l2, {.query_batch = 5});
  index.add(rows_of(base, 0, 200));
  index.add(rows_of(base, 200, 300));
  std::vector<mgpu::dense_matrix<mgpu::cpu, float>> queries;
  std::vector<mgpu::topk_result<float>> expected;
  for (unsigned t = 0; t < 4; ++t) {
    queries.push_back(random_real<float>(23, 16, 30 + t));
    expected.push_back(index.search(queries.back(), 7));
  }
  std::vector<std::vector<mgpu::topk_result<float>>> got(4);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) got[t].push_back(index.search(queries[t], 7));
    });
  }
  for (auto& th : threads) th.join();
  for (std::size_t t = 0; t < 4; ++t) {
    REQUIRE(got[t].size() == 5);
    for (auto const& r : got[t]) require_identical(r, expected[t]);
  }
}
