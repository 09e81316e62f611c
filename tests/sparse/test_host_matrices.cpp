// Specification of the host matrices as host code names them (issue 18):
// `csr_matrix<T>`, `csr_matrix<T, I>` and `dense_matrix<T>` without a kind argument,
// accepted by every algorithm that takes the csr_matrix<cpu, T, I> / dense_matrix<cpu, T>
// forms, results moved into them without a copy; and user vectors moved into a matrix
// without a copy (mgpu/sparse/csr_matrix.hpp, mgpu/dense/dense_matrix.hpp). Expected
// values are worked out by hand in the comments, or from a dense reference.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "mgpu/algorithms/cosine_topk.hpp"
#include "mgpu/algorithms/knn.hpp"
#include "mgpu/algorithms/tfidf.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/execution/policy.hpp"
#include "mgpu/io/matrix_market.hpp"
#include "mgpu/sparse/csr_matrix.hpp"
#include "mgpu/sparse/scaling.hpp"
#include "mgpu/sparse/spgemm.hpp"
#include "mgpu/sparse/spmm.hpp"
#include "mgpu/sparse/spmv.hpp"
#include "mgpu/sparse/transpose.hpp"
#include "sparse_test_support.hpp"

using Catch::Matchers::Contains;
using mgpu_test::message_of;
using mgpu_test::to_vector;

namespace {

using policy_t = mgpu::execution_policy<mgpu::cpu>;

//  A = [1 0 2]
//      [0 3 0]
mgpu::csr_matrix<float> matrix_a() { return {2, 3, {0, 2, 3}, {0, 2, 1}, {1.f, 2.f, 3.f}}; }

}  // namespace

// --- The names without a kind --------------------------------------------------------

TEST_CASE("csr_matrix<T> and csr_matrix<T, I> are the host matrices, complete types", "[sparse][host-types]") {
  STATIC_REQUIRE(sizeof(mgpu::csr_matrix<float>) == sizeof(mgpu::csr_matrix<mgpu::cpu, float>));
  STATIC_REQUIRE(std::is_base_of_v<mgpu::csr_matrix<mgpu::cpu, float, std::int32_t>, mgpu::csr_matrix<float>>);
  STATIC_REQUIRE(std::is_base_of_v<mgpu::csr_matrix<mgpu::cpu, float, std::int64_t>,
                                   mgpu::csr_matrix<float, std::int64_t>>);
  STATIC_REQUIRE(std::is_base_of_v<mgpu::csr_matrix<mgpu::cpu, double, std::int32_t>, mgpu::csr_matrix<double>>);
  STATIC_REQUIRE(std::is_same_v<mgpu::csr_matrix<float, std::int64_t>::index_type, std::int64_t>);
  STATIC_REQUIRE(std::is_same_v<mgpu::csr_matrix<float>::kind, mgpu::cpu>);
  STATIC_REQUIRE(std::is_same_v<decltype(mgpu::csr_matrix<float, std::int64_t>().rows()), std::int64_t>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<mgpu::csr_matrix<float>>);
  STATIC_REQUIRE(!std::is_copy_constructible_v<mgpu::csr_matrix<float>>);
  STATIC_REQUIRE(std::is_base_of_v<mgpu::dense_matrix<mgpu::cpu, float>, mgpu::dense_matrix<float>>);
  STATIC_REQUIRE(std::is_base_of_v<mgpu::dense_matrix<mgpu::cpu, std::int64_t>, mgpu::dense_matrix<std::int64_t>>);
  STATIC_REQUIRE(sizeof(mgpu::dense_matrix<double>) == sizeof(mgpu::dense_matrix<mgpu::cpu, double>));
}

TEST_CASE("csr_matrix<float> is built as the cpu form is, canonicalising its rows", "[sparse][host-types]") {
  // Row 1 given as columns {2, 0, 2}: sorted, and the two entries of column 2 summed.
  mgpu::csr_matrix<float> const m(2, 3, {0, 1, 4}, {1, 2, 0, 2}, {5.f, 1.f, 2.f, 3.f});
  CHECK(m.rows() == 2);
  CHECK(m.cols() == 3);
  CHECK(to_vector(m.row_offsets()) == std::vector<std::int32_t>{0, 1, 3});
  CHECK(to_vector(m.col_indices()) == std::vector<std::int32_t>{1, 0, 2});
  CHECK(to_vector(m.values()) == std::vector<float>{5, 2, 4});
  mgpu::csr_view<float, std::int32_t> const v = m;
  CHECK(v.row_nnz(1) == 2);
  CHECK(mgpu::csr_matrix<float>().rows() == 0);
  mgpu::csr_matrix<double, std::int64_t> const empty(4, 7);
  CHECK(empty.rows() == 4);
  CHECK(empty.nnz() == 0);
  CHECK(to_vector(empty.row_offsets()) == std::vector<std::int64_t>{0, 0, 0, 0, 0});
  CHECK_THAT(message_of<mgpu::format_error>([] { mgpu::csr_matrix<float> bad(1, 2, {0, 1}, {2}, {1.f}); }),
             Contains("column index 2"));
}

TEST_CASE("a csr_matrix<cpu, T, I> moves into csr_matrix<T> without copying its arrays, both ways",
          "[sparse][host-types]") {
  mgpu::csr_matrix<mgpu::cpu, float> cpu_form(2, 2, {0, 1, 2}, {1, 0}, {7.f, 8.f});
  auto const* offsets = cpu_form.row_offsets().data();
  auto const* values = cpu_form.values().data();
  mgpu::csr_matrix<float> m = std::move(cpu_form);
  CHECK(m.row_offsets().data() == offsets);
  CHECK(m.values().data() == values);
  CHECK(to_vector(m.values()) == std::vector<float>{7, 8});

  mgpu::csr_matrix<float> assigned;
  assigned = std::move(m);
  CHECK(assigned.values().data() == values);
  mgpu::csr_matrix<mgpu::cpu, float> back = std::move(assigned);
  CHECK(back.values().data() == values);

  auto const copy = mgpu::csr_matrix<float>(2, 2, {0, 1, 2}, {1, 0}, {7.f, 8.f}).clone();
  STATIC_REQUIRE(std::is_same_v<decltype(copy), mgpu::csr_matrix<float> const>);
  CHECK(to_vector(copy.col_indices()) == std::vector<std::int32_t>{1, 0});
}

// --- Passing them to the algorithms ----------------------------------------------------

TEST_CASE("csr_matrix<float> goes to spmv, spmm, spgemm, transpose and scale_rows", "[sparse][host-types]") {
  policy_t const policy("cpu:2");
  auto a = matrix_a();
  // y = A·(1, 2, 3) = (1 + 6, 6)
  std::vector<float> const x{1, 2, 3};
  std::vector<float> y(2);
  mgpu::spmv(policy, 1.0, a, x, 0.0, y);
  CHECK(y == std::vector<float>{7, 6});

  // C = A·B, B = [1 0; 0 1; 1 1]: row 0 = (1, 0) + 2·(1, 1) = (3, 2), row 1 = 3·(0, 1)
  mgpu::dense_matrix<float> const b(3, 2, {1.f, 0.f, 0.f, 1.f, 1.f, 1.f});
  mgpu::dense_matrix<float> c(2, 2, 0.f);
  mgpu::spmm(policy, 1.0, a, b, 0.0, c.view());
  CHECK(std::vector<float>(c.data(), c.data() + 4) == std::vector<float>{3, 2, 0, 3});

  // Aᵀ = [1 0; 0 3; 2 0]; A·Aᵀ = [1+4 0; 0 9]
  mgpu::csr_matrix<float> const at = mgpu::transpose(a);
  CHECK(to_vector(at.row_offsets()) == std::vector<std::int32_t>{0, 1, 2, 3});
  CHECK(to_vector(at.col_indices()) == std::vector<std::int32_t>{0, 1, 0});
  CHECK(to_vector(at.values()) == std::vector<float>{1, 3, 2});
  mgpu::csr_matrix<float> const gram = mgpu::spgemm(policy, a, at);
  CHECK(to_vector(gram.col_indices()) == std::vector<std::int32_t>{0, 1});
  CHECK(to_vector(gram.values()) == std::vector<float>{5, 9});

  std::vector<float> const d{2, 10};
  mgpu::scale_rows(policy, a, std::span<float const>(d));
  CHECK(to_vector(a.values()) == std::vector<float>{2, 4, 30});
}

TEST_CASE("csr_matrix<float> goes to cosine_topk, alone and with a cpu-form corpus", "[sparse][host-types]") {
  policy_t const policy("cpu");
  // r0 = (1, 0, 0), r1 = (1, 1, 0), r2 = (0, 0, 1): cos(r0, r1) = 1/√2, r2 orthogonal
  // to both, so it has no neighbour with a positive score.
  mgpu::csr_matrix<float> const rows(3, 3, {0, 1, 3, 4}, {0, 0, 1, 2}, {1.f, 1.f, 1.f, 1.f});
  auto const top = mgpu::cosine_topk(policy, rows, 1);
  REQUIRE(top.rows() == 3);
  CHECK(top.neighbors(0)[0] == 1);
  CHECK(top.scores_of(0)[0] == Approx(1 / std::sqrt(2.0)));
  CHECK(top.neighbors(1)[0] == 0);
  CHECK(top.count(2) == 0);

  mgpu::csr_matrix<mgpu::cpu, float> const corpus = rows.clone();
  auto const mixed = mgpu::cosine_topk(policy, rows, corpus, 1);
  CHECK(mixed.neighbors(2)[0] == 2);  // itself, cosine 1: not excluded across two matrices
}

TEST_CASE("dense_matrix<float> goes to knn, mixed with a view of the caller's array", "[sparse][host-types]") {
  policy_t const policy("cpu:2");
  mgpu::dense_matrix<float> const base(3, 2, {0.f, 0.f, 1.f, 0.f, 5.f, 5.f});
  float query[] = {0.9f, 0.1f};  // nearest: base row 1, squared distance 0.01 + 0.01
  mgpu::dense_view<float const> const queries{1, 2, 2, query};
  auto const result = mgpu::knn(policy, base, queries, 1);
  REQUIRE(result.rows() == 1);
  CHECK(result.neighbors(0)[0] == 1);
  CHECK(result.scores_of(0)[0] == Approx(0.02).epsilon(1e-5));
  auto const both = mgpu::knn(policy, base, base, 1);
  CHECK(both.neighbors(2)[0] == 2);

  // The padded layout's matrices move into the kind-less names without a copy.
  auto padded = both.padded();
  auto const* ids = padded.ids.data();
  mgpu::dense_matrix<std::int64_t> const id_matrix = std::move(padded.ids);
  CHECK(id_matrix.data() == ids);
  CHECK(id_matrix(1, 0) == 1);
  std::vector<int> const labels{7, 8, 9};
  CHECK(mgpu::knn_vote(id_matrix, std::span<int const>(labels)) == std::vector<int>{7, 8, 9});
}

TEST_CASE("TF-IDF results are assigned to csr_matrix<float> without a copy", "[sparse][host-types]") {
  // scikit-learn semantics: vocabulary apple, banana, cherry; idf(apple) = ln(3/3) + 1 = 1,
  // idf(banana) = idf(cherry) = ln(3/2) + 1; row 0 = (1, idf(banana)) / ‖·‖.
  std::vector<std::string> const docs{"apple banana", "apple cherry"};
  double const idf = std::log(1.5) + 1.0;
  double const banana = idf / std::sqrt(1.0 + idf * idf);

  mgpu::tfidf_vectorizer<float> vectorizer;
  mgpu::csr_matrix<float> x = vectorizer.fit_transform(docs);
  REQUIRE(x.rows() == 2);
  CHECK(to_vector(x.col_indices()) == std::vector<std::int32_t>{0, 1, 0, 2});
  CHECK(x.values()[1] == Approx(banana).epsilon(1e-6));

  auto result = vectorizer.transform(docs);
  auto const* values = result.values().data();
  auto const* columns = result.col_indices().data();
  x = std::move(result);
  CHECK(x.values().data() == values);
  CHECK(x.col_indices().data() == columns);
  auto again = vectorizer.transform(docs);
  values = again.values().data();
  mgpu::csr_matrix<float> const y = std::move(again);
  CHECK(y.values().data() == values);
  CHECK(y.values()[3] == Approx(banana).epsilon(1e-6));  // cherry has banana's idf

  mgpu::tfidf_vectorizer<float, std::int64_t> wide;
  mgpu::csr_matrix<float, std::int64_t> const w = wide.fit_transform(docs);
  CHECK(to_vector(w.row_offsets()) == std::vector<std::int64_t>{0, 2, 4});
}

TEST_CASE("csr_matrix<float> is written and read as Matrix Market", "[sparse][host-types]") {
  mgpu_test::temp_dir dir;
  mgpu::write_matrix_market(dir / "a.mtx", matrix_a());
  mgpu::csr_matrix<float> const back = mgpu::read_matrix_market<float, std::int32_t>(dir / "a.mtx");
  CHECK(to_vector(back.row_offsets()) == std::vector<std::int32_t>{0, 2, 3});
  CHECK(to_vector(back.col_indices()) == std::vector<std::int32_t>{0, 2, 1});
  CHECK(to_vector(back.values()) == std::vector<float>{1, 2, 3});
}

// --- Moving user vectors in -------------------------------------------------------------

TEMPLATE_TEST_CASE("moved-in canonical vectors become the matrix's arrays, not copies", "[sparse][host-types]",
                   MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  std::vector<I> offsets{0, 2, 2, 3};
  std::vector<I> columns{0, 3, 1};
  std::vector<T> values{1, 2, 3};
  I const* o = offsets.data();
  I const* c = columns.data();
  T const* v = values.data();
  mgpu::csr_matrix<mgpu::cpu, T, I> const m(3, 4, std::move(offsets), std::move(columns), std::move(values));
  CHECK(m.row_offsets().data() == o);
  CHECK(m.col_indices().data() == c);
  CHECK(m.values().data() == v);
  CHECK(to_vector(m.row_offsets()) == std::vector<I>{0, 2, 2, 3});
  CHECK(to_vector(m.col_indices()) == std::vector<I>{0, 3, 1});
  CHECK(to_vector(m.values()) == std::vector<T>{1, 2, 3});
  CHECK(m.nnz() == 3);
}

TEST_CASE("moved-in rows are canonicalised in the vectors' own storage", "[sparse][host-types]") {
  // Row 0: (3, 1) (0, 2) (3, 4) -> (0, 2) (3, 5); row 1: (2, 7) (1, 1) (2, 1) -> (1, 1) (2, 8).
  std::vector<std::int32_t> offsets{0, 3, 6};
  std::vector<std::int32_t> columns{3, 0, 3, 2, 1, 2};
  std::vector<float> values{1, 2, 4, 7, 1, 1};
  auto const* o = offsets.data();
  auto const* c = columns.data();
  auto const* v = values.data();
  mgpu::csr_matrix<float> const m(2, 4, std::move(offsets), std::move(columns), std::move(values));
  CHECK(m.row_offsets().data() == o);
  CHECK(m.col_indices().data() == c);
  CHECK(m.values().data() == v);
  CHECK(to_vector(m.row_offsets()) == std::vector<std::int32_t>{0, 2, 4});
  CHECK(to_vector(m.col_indices()) == std::vector<std::int32_t>{0, 3, 1, 2});
  CHECK(to_vector(m.values()) == std::vector<float>{2, 5, 1, 8});
}

TEMPLATE_TEST_CASE("moved-in random arrays hold the matrix they describe, canonical", "[sparse][host-types]",
                   MGPU_TEST_CSR_TYPES) {
  using T = typename TestType::T;
  using I = typename TestType::I;
  std::mt19937 rng(18);
  for (int trial = 0; trial < 20; ++trial) {
    auto const d = mgpu_test::random_dense(rng, 1 + trial % 7, 1 + (trial * 5) % 11, 0.4);
    auto const canonical = mgpu_test::csr_of<T, I>(d);
    // The same entries, each row shuffled and some entries split in two duplicates.
    std::vector<I> offsets{0};
    std::vector<I> columns;
    std::vector<T> values;
    for (std::int64_t r = 0; r < d.rows; ++r) {
      std::vector<std::pair<I, T>> row;
      for (auto p = canonical.row_offsets[r]; p < canonical.row_offsets[r + 1]; ++p) {
        auto const col = canonical.col_indices[static_cast<std::size_t>(p)];
        auto const value = canonical.values[static_cast<std::size_t>(p)];
        if (rng() % 2 == 0) {
          row.emplace_back(col, value);
        } else {
          row.emplace_back(col, value - T{1});
          row.emplace_back(col, T{1});
        }
      }
      std::shuffle(row.begin(), row.end(), rng);
      for (auto const& [col, value] : row) {
        columns.push_back(col);
        values.push_back(value);
      }
      offsets.push_back(static_cast<I>(columns.size()));
    }
    auto const* v = values.data();
    mgpu::csr_matrix<mgpu::cpu, T, I> const m(d.rows, d.cols, std::move(offsets), std::move(columns),
                                              std::move(values));
    INFO("trial " << trial);
    CHECK(mgpu_test::to_dense(m.view()) == d);
    CHECK(mgpu_test::columns_strictly_increase(m.view()));
    CHECK(to_vector(m.row_offsets()) == canonical.row_offsets);
    if (!canonical.values.empty()) CHECK(m.values().data() == v);
  }
}

TEST_CASE("moved-in arrays are checked as copied ones are, and left as they were on a throw",
          "[sparse][host-types]") {
  std::vector<std::int32_t> offsets{0, 1, 2};
  std::vector<std::int32_t> columns{0, 5};  // 5 is outside [0, 3)
  std::vector<float> values{1, 2};
  auto const what = message_of<mgpu::format_error>([&] {
    mgpu::csr_matrix<float> m(2, 3, std::move(offsets), std::move(columns), std::move(values));
  });
  CHECK_THAT(what, Contains("column index 5 at position 1 (row 1)"));
  CHECK(offsets == std::vector<std::int32_t>{0, 1, 2});  // NOLINT(bugprone-use-after-move): specified
  CHECK(columns == std::vector<std::int32_t>{0, 5});     // NOLINT(bugprone-use-after-move)
  CHECK(values == std::vector<float>{1, 2});             // NOLINT(bugprone-use-after-move)

  CHECK_THAT((message_of<mgpu::dimension_mismatch>([] {
               mgpu::csr_matrix<float> m(2, 3, std::vector<std::int32_t>{0, 1}, std::vector<std::int32_t>{0},
                                         std::vector<float>{1});
             })),
             Contains("expected rows + 1 = 3"));
  CHECK_THROWS_AS((mgpu::csr_matrix<float>(-1, 3, std::vector<std::int32_t>{0}, std::vector<std::int32_t>{},
                                           std::vector<float>{})),
                  mgpu::invalid_argument);
}

TEST_CASE("lvalue vectors are copied and stay the caller's", "[sparse][host-types]") {
  std::vector<std::int32_t> const offsets{0, 2};
  std::vector<std::int32_t> const columns{1, 0};
  std::vector<float> const values{3, 4};
  mgpu::csr_matrix<float> const m(1, 2, offsets, columns, values);
  CHECK(m.values().data() != values.data());
  CHECK(to_vector(m.col_indices()) == std::vector<std::int32_t>{0, 1});
  CHECK(to_vector(m.values()) == std::vector<float>{4, 3});
  CHECK(columns == std::vector<std::int32_t>{1, 0});
}

TEST_CASE("a moved-in vector becomes a dense matrix's elements, not a copy", "[dense][host-types]") {
  std::vector<double> elements{1, 2, 3, 4, 5, 6};
  double const* p = elements.data();
  mgpu::dense_matrix<double> const m(2, 3, std::move(elements));
  CHECK(m.data() == p);
  CHECK(m.rows() == 2);
  CHECK(m.cols() == 3);
  CHECK(m(1, 0) == 4.0);
  CHECK(m(0, 2) == 3.0);

  std::vector<float> cpu_elements{1, 2};
  float const* q = cpu_elements.data();
  mgpu::dense_matrix<mgpu::cpu, float> const column(2, 1, std::move(cpu_elements));
  CHECK(column.data() == q);
  CHECK(column(1, 0) == 2.0f);
  CHECK(mgpu::dense_matrix<float>(0, 5, std::vector<float>{}).rows() == 0);
}

TEST_CASE("a moved-in vector of the wrong length is dimension_mismatch and stays the caller's",
          "[dense][host-types]") {
  std::vector<float> elements{1, 2, 3, 4, 5};
  CHECK_THAT(message_of<mgpu::dimension_mismatch>([&] { mgpu::dense_matrix<float> m(2, 3, std::move(elements)); }),
             Contains("5 values for a 2 x 3 matrix"));
  CHECK(elements.size() == 5);  // NOLINT(bugprone-use-after-move): specified
  CHECK_THROWS_AS((mgpu::dense_matrix<float>(0, 0, std::vector<float>{1})), mgpu::dimension_mismatch);
  CHECK_THROWS_AS((mgpu::dense_matrix<float>(3, 0, std::vector<float>{1})), mgpu::dimension_mismatch);
  CHECK_THROWS_AS((mgpu::dense_matrix<float>(-2, -3, std::vector<float>(6))), mgpu::invalid_argument);
  // rows·cols overflows size_t: must not wrap around to the vector's length.
  CHECK_THROWS_AS((mgpu::dense_matrix<float>(std::int64_t{1} << 62, 8, std::vector<float>{})),
                  mgpu::dimension_mismatch);
}
