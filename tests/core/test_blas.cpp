// The row-major BLAS/LAPACK wrappers against hand-computed products and solves.
#include <catch2/catch.hpp>

#include <vector>

#include "mgpu/backend/cpu/blas.hpp"

namespace blas = mgpu::backend::cpu::blas;

TEMPLATE_TEST_CASE("gemm multiplies row-major matrices with either operand transposed", "[blas]",
                   float, double) {
  // A = [1 2 3; 4 5 6] (2x3), B = [1 0; 0 1; 1 1] (3x2): A B = [4 5; 10 11].
  std::vector<TestType> const a{1, 2, 3, 4, 5, 6};
  std::vector<TestType> const b{1, 0, 0, 1, 1, 1};
  std::vector<TestType> c(4, TestType(100));
  blas::gemm(blas::op::none, blas::op::none, 2, 2, 3, TestType(1), a.data(), 3, b.data(), 2,
             TestType(0), c.data(), 2);
  CHECK(c == std::vector<TestType>{4, 5, 10, 11});
  // A A^T = [14 32; 32 77]; with alpha 2 and beta 1 over C = I: [29 64; 64 155].
  std::vector<TestType> d{1, 0, 0, 1};
  blas::gemm(blas::op::none, blas::op::transpose, 2, 2, 3, TestType(2), a.data(), 3, a.data(), 3,
             TestType(1), d.data(), 2);
  CHECK(d == std::vector<TestType>{29, 64, 64, 155});
  // A^T A's first row: [17 22 27].
  std::vector<TestType> e(9);
  blas::gemm(blas::op::transpose, blas::op::none, 3, 3, 2, TestType(1), a.data(), 3, a.data(), 3,
             TestType(0), e.data(), 3);
  CHECK(std::vector<TestType>(e.begin(), e.begin() + 3) == std::vector<TestType>{17, 22, 27});
}

TEMPLATE_TEST_CASE("syrk_at_a writes the upper triangle of A^T A", "[blas]", float, double) {
  std::vector<TestType> const a{1, 2, 3, 4, 5, 6};  // 2x3
  std::vector<TestType> c(9, TestType(-1));
  blas::syrk_at_a(3, 2, TestType(1), a.data(), 3, TestType(0), c.data(), 3);
  // A^T A = [17 22 27; 22 29 36; 27 36 45]; the strict lower triangle is untouched.
  CHECK(c == std::vector<TestType>{17, 22, 27, -1, 29, 36, -1, -1, 45});
}

TEMPLATE_TEST_CASE("potrf and potrs solve a symmetric positive definite system", "[blas]", float,
                   double) {
  // A = [4 2; 2 3], x = [1 -1] gives b = [2 -1]; two right-hand sides as rows.
  std::vector<TestType> a{4, 2, 2, 3};
  REQUIRE(blas::potrf(2, a.data(), 2) == 0);
  std::vector<TestType> b{2, -1, 8, 7};  // second: x = [1.25 1.5]
  REQUIRE(blas::potrs(2, 2, a.data(), 2, b.data(), 2) == 0);
  CHECK(b[0] == Approx(1.0));
  CHECK(b[1] == Approx(-1.0));
  CHECK(b[2] == Approx(1.25));
  CHECK(b[3] == Approx(1.5));
}

TEMPLATE_TEST_CASE("potrf reports the order of the first non-positive leading minor", "[blas]",
                   float, double) {
  std::vector<TestType> a{1, 2, 2, 1};  // leading minors 1 and -3
  CHECK(blas::potrf(2, a.data(), 2) == 2);
}

TEST_CASE("BLAS sizes beyond the LP64 range are rejected as index_overflow", "[blas]") {
  float x = 0;
  CHECK_THROWS_AS(blas::gemm(blas::op::none, blas::op::none, std::int64_t{1} << 31, 1, 1, 1.0f,
                             &x, 1, &x, 1, 0.0f, &x, 1),
                  mgpu::index_overflow);
}

TEST_CASE("blas_single_threaded guards nest and restore the thread count", "[blas]") {
  if (openblas_get_num_threads == nullptr) {
    SUCCEED("not OpenBLAS: the guard has nothing to switch");
    return;
  }
  int const before = openblas_get_num_threads();
  {
    blas::blas_single_threaded outer;
    CHECK(openblas_get_num_threads() == 1);
    {
      blas::blas_single_threaded inner;
      CHECK(openblas_get_num_threads() == 1);
    }
    CHECK(openblas_get_num_threads() == 1);
  }
  CHECK(openblas_get_num_threads() == before);
}
