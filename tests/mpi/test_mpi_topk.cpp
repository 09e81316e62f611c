// Cosine top-k and k-NN with the corpus / base sharded over ranks equal the single-process
// results bitwise (ids, scores, counts), including ranks holding no rows, ties across
// ranks, thresholds, the all-pairs form with exclude_self, and mismatched arguments.
#include <catch2/catch.hpp>

#include <mpi.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "../test_support.hpp"
#include "mgpu/algorithms/cosine_topk.hpp"
#include "mgpu/algorithms/knn.hpp"
#include "mgpu/mpi/cosine.hpp"
#include "mgpu/mpi/knn.hpp"
#include "mpi_test_support.hpp"

namespace {

using mgpu_mpi_test::world_rank;
using mgpu_mpi_test::world_size;
using csr = mgpu::csr_matrix<mgpu::cpu, float, int>;
using policy_type = mgpu::mpi::distributed_policy<mgpu::cpu>;

bool contains(std::string const& text, std::string const& part) { return text.find(part) != std::string::npos; }

/// A corpus whose second half repeats its first half: every score is tied between a row
/// and its copy, which sits on another rank for most splits (the merge must prefer the
/// smaller global id, as one process does).
csr doubled_corpus(int half, int cols, unsigned seed) {
  auto const a = mgpu_mpi_test::random_csr(half, cols, 0.08, seed);
  auto const v = a.view();
  std::vector<int> offsets{0};
  std::vector<int> columns;
  std::vector<float> values;
  for (int copy = 0; copy < 2; ++copy) {
    for (int r = 0; r < half; ++r) {
      for (int p = v.row_offsets[r]; p < v.row_offsets[r + 1]; ++p) {
        columns.push_back(v.col_indices[p]);
        values.push_back(v.values[p]);
      }
      offsets.push_back(static_cast<int>(columns.size()));
    }
  }
  return {2 * half, cols, std::move(offsets), std::move(columns), std::move(values)};
}

template <class T>
void check_same(mgpu::topk_result<T> const& got, mgpu::topk_result<T> const& want) {
  CHECK(got.k == want.k);
  CHECK(got.candidates == want.candidates);
  CHECK(got.larger_is_better == want.larger_is_better);
  CHECK(got.row_offsets == want.row_offsets);
  CHECK(got.ids == want.ids);
  CHECK(got.scores == want.scores);  // bitwise for finite floats (no NaN in results)
}

/// Rank `rank`'s rows of a split.
mgpu::csr_view<float, int> my_rows(csr const& a, std::vector<int> const& split, int rank) {
  return a.view().row_block(split[static_cast<std::size_t>(rank)], split[static_cast<std::size_t>(rank) + 1]);
}

/// A row-major matrix of small integers in [-3, 3]: dot products and norms are exact in
/// float, so a pair's value is the same in every split. Rows [rows/2, rows) repeat the first.
mgpu::dense_matrix<mgpu::cpu, float> small_integers(std::int64_t rows, std::int64_t cols, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> value(-3, 3);
  mgpu::dense_matrix<mgpu::cpu, float> m(rows, cols);
  auto const half = rows / 2;
  for (std::int64_t i = 0; i < rows; ++i) {
    for (std::int64_t j = 0; j < cols; ++j) {
      m.view()(i, j) = i < half || i >= 2 * half ? static_cast<float>(value(gen)) : m.view()(i - half, j);
    }
  }
  return m;
}

mgpu::dense_view<float const> row_block(mgpu::dense_matrix<mgpu::cpu, float> const& m, std::int64_t first,
                                        std::int64_t last) {
  auto const v = mgpu::const_view(m);
  return {last - first, v.cols, v.ld, v.data + first * v.ld};
}

}  // namespace

TEST_CASE("mpi cosine_topk: a sharded corpus gives the single-process result bitwise", "[mpi]") {
  int const rank = world_rank();
  int const ranks = world_size();
  auto const corpus = doubled_corpus(101, 64, 11);
  auto const queries = mgpu_mpi_test::random_csr(37, 64, 0.1, 12);
  mgpu::execution_policy<mgpu::cpu> one("cpu");
  for (auto const& config : mgpu_mpi_test::device_configs()) {
    policy_type policy(mgpu_mpi_test::local_devices(config, rank));
    // Rank 1 holds no rows; and a split where every row is on the last rank.
    std::vector<std::vector<int>> splits{mgpu_mpi_test::uneven_split(corpus.rows(), ranks),
                                         std::vector<int>(static_cast<std::size_t>(ranks), 0)};
    splits[1].push_back(corpus.rows());
    for (auto const& split : splits) {
      for (std::int64_t k : {1, 5, 300}) {
        INFO("config " << config << ", k " << k << ", last split bound " << split[1]);
        auto const want = mgpu::cosine_topk(one, queries, corpus, k);
        auto const got = mgpu::mpi::cosine_topk(policy, queries.view(), my_rows(corpus, split, rank), k);
        check_same(got, want);
      }
      mgpu::cosine_topk_options threshold;
      threshold.threshold = 0.25;
      auto const want = mgpu::cosine_topk(one, queries, corpus, 0, threshold);
      auto const got = mgpu::mpi::cosine_topk(policy, queries.view(), my_rows(corpus, split, rank), 0, threshold);
      CHECK(want.size() > 0);
      check_same(got, want);
      threshold.exclude_self = false;
      auto const want3 = mgpu::cosine_topk(one, queries, corpus, 3, threshold);
      check_same(mgpu::mpi::cosine_topk(policy, queries.view(), my_rows(corpus, split, rank), 3, threshold), want3);
    }
  }
}

TEST_CASE("mpi cosine_topk: all pairs of a sharded matrix skip the self match as one process does", "[mpi]") {
  int const rank = world_rank();
  int const ranks = world_size();
  auto const corpus = doubled_corpus(60, 40, 21);
  auto const split = mgpu_mpi_test::uneven_split(corpus.rows(), ranks);
  mgpu::execution_policy<mgpu::cpu> one("cpu");
  policy_type policy(mgpu_mpi_test::local_devices("mixed", rank));
  for (std::int64_t k : {1, 4, 200}) {
    INFO("k " << k);
    // The self match is skipped: a row's copy (score 1, a tie with itself) comes first.
    auto const want = mgpu::cosine_topk(one, corpus, k);
    auto const got = mgpu::mpi::cosine_topk(policy, my_rows(corpus, split, rank), k);
    check_same(got, want);
    CHECK(want.neighbors(0)[0] == 60);
  }
  mgpu::cosine_topk_options keep_self;
  keep_self.exclude_self = false;
  check_same(mgpu::mpi::cosine_topk(policy, my_rows(corpus, split, rank), 4, keep_self),
             mgpu::cosine_topk(one, corpus, 4, keep_self));
  // The gathered rows are the whole matrix.
  auto const whole = mgpu::mpi::all_gather_rows(policy, my_rows(corpus, split, rank));
  CHECK(whole.rows() == corpus.rows());
  CHECK(std::vector<int>(whole.row_offsets().begin(), whole.row_offsets().end()) ==
        std::vector<int>(corpus.row_offsets().begin(), corpus.row_offsets().end()));
  CHECK(std::vector<float>(whole.values().begin(), whole.values().end()) ==
        std::vector<float>(corpus.values().begin(), corpus.values().end()));
}

TEST_CASE("mpi cosine_topk: the merge's bytes between ranks are the ranks' lists", "[mpi]") {
  int const rank = world_rank();
  int const ranks = world_size();
  auto const corpus = doubled_corpus(80, 50, 31);
  auto const queries = mgpu_mpi_test::random_csr(23, 50, 0.12, 32);
  auto const split = mgpu_mpi_test::uneven_split(corpus.rows(), ranks);
  policy_type policy("cpu");
  mgpu::execution_policy<mgpu::cpu> one("cpu");
  // Rank s sends its lists: 8 bytes per query (counts), 12 per pair (id + float score);
  // the pairs of each rank's part, found here by the single-process search of that part.
  std::uint64_t model = 0;
  for (int s = 0; s < ranks; ++s) {
    auto const part = mgpu::cosine_topk(one, queries.view(), my_rows(corpus, split, s), 6);
    model += static_cast<std::uint64_t>(ranks - 1) *
             (8u * static_cast<std::uint64_t>(queries.rows()) + 12u * static_cast<std::uint64_t>(part.size()));
  }
  policy.transfers().reset();
  (void)mgpu::mpi::cosine_topk(policy, queries.view(), my_rows(corpus, split, rank), 6);
  auto const counts = mgpu::mpi::sum_transfers(policy);
  CHECK(counts.network() == model);
  CHECK(counts.total() == model);
}

TEST_CASE("mpi knn: a sharded base gives the single-process result bitwise on exact data", "[mpi]") {
  int const rank = world_rank();
  int const ranks = world_size();
  auto const base = small_integers(150, 8, 41);
  auto const queries = small_integers(21, 8, 42);
  mgpu::execution_policy<mgpu::cpu> one("cpu");
  for (auto const& config : mgpu_mpi_test::device_configs()) {
    policy_type policy(mgpu_mpi_test::local_devices(config, rank));
    auto const split = mgpu_mpi_test::uneven_split(150, ranks);
    auto const mine = row_block(base, split[static_cast<std::size_t>(rank)], split[static_cast<std::size_t>(rank) + 1]);
    for (auto metric : {mgpu::knn_metric::l2, mgpu::knn_metric::inner_product, mgpu::knn_metric::cosine}) {
      for (std::int64_t k : {1, 7, 200}) {
        INFO("config " << config << ", metric " << static_cast<int>(metric) << ", k " << k);
        auto const want = mgpu::knn(one, base, queries, k, metric);
        auto const got = mgpu::mpi::knn(policy, mine, mgpu::const_view(queries), k, metric);
        check_same(got, want);
      }
    }
  }
}

TEST_CASE("mpi top-k: bad input on one rank or mismatched arguments throw on every rank", "[mpi]") {
  int const rank = world_rank();
  int const ranks = world_size();
  auto const corpus = doubled_corpus(30, 20, 51);
  auto const queries = mgpu_mpi_test::random_csr(9, 20, 0.2, 52);
  auto const split = mgpu_mpi_test::uneven_split(corpus.rows(), ranks);
  policy_type policy("cpu");
  auto const mine = my_rows(corpus, split, rank);
  auto const last = std::to_string(ranks - 1);
  auto const of = " of " + std::to_string(ranks);
  {  // A NaN in the rows of the last rank that holds rows (rank 1 holds none).
    int const bad_rank = ranks == 2 ? 0 : ranks - 1;
    auto copy = corpus.clone();
    auto const bad = copy.view().row_offsets[split[static_cast<std::size_t>(bad_rank) + 1]] - 1;  // its last entry
    if (rank == bad_rank) copy.values()[static_cast<std::size_t>(bad)] = std::nanf("");
    auto const what = mgpu_test::message_of<mgpu::invalid_argument>(
        [&] { (void)mgpu::mpi::cosine_topk(policy, queries.view(), my_rows(copy, split, rank), 3); });
    INFO(what);
    CHECK(contains(what, "rank " + std::to_string(bad_rank) + of + ": "));
    CHECK(contains(what, "non-finite value"));
  }
  if (ranks > 1) {
    auto const k_what = mgpu_test::message_of<mgpu::invalid_argument>(
        [&] { (void)mgpu::mpi::cosine_topk(policy, queries.view(), mine, rank == ranks - 1 ? 4 : 3); });
    CHECK(contains(k_what, "mpi::cosine_topk: the ranks disagree on k: rank 0 has 3 but rank " + last + " has 4"));
    auto other = queries.clone();
    if (rank == ranks - 1) other.values()[0] += 1.0f;
    auto const q_what = mgpu_test::message_of<mgpu::invalid_argument>(
        [&] { (void)mgpu::mpi::cosine_topk(policy, other.view(), mine, 3); });
    CHECK(contains(q_what, "the ranks disagree on the queries' contents (hash)"));
    mgpu::cosine_topk_options threshold;
    if (rank == 0) threshold.threshold = 0.5;
    auto const t_what = mgpu_test::message_of<mgpu::invalid_argument>(
        [&] { (void)mgpu::mpi::cosine_topk(policy, queries.view(), mine, 3, threshold); });
    CHECK(contains(t_what, "the ranks disagree on the option threshold (set)"));
    auto const base = small_integers(20, 4, 53);
    auto const qs = small_integers(3, 4, 54);
    auto const m_what = mgpu_test::message_of<mgpu::invalid_argument>([&] {
      (void)mgpu::mpi::knn(policy, row_block(base, 0, rank == 0 ? 20 : 0), mgpu::const_view(qs), 2,
                           rank == 0 ? mgpu::knn_metric::l2 : mgpu::knn_metric::cosine);
    });
    CHECK(contains(m_what, "mpi::knn: the ranks disagree on the metric"));
  }
  // A k that every rank gets wrong: the library's own message, from rank 0.
  auto const what = mgpu_test::message_of<mgpu::invalid_argument>(
      [&] { (void)mgpu::mpi::cosine_topk(policy, queries.view(), mine, 0); });
  CHECK(contains(what, "rank 0" + of));
  CHECK(contains(what, "k must be at least 1"));
  // The communicator still works.
  mgpu::execution_policy<mgpu::cpu> one("cpu");
  check_same(mgpu::mpi::cosine_topk(policy, queries.view(), mine, 2), mgpu::cosine_topk(one, queries, corpus, 2));
}
