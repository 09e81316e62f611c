// The cosine kernel's posting walk (backend/cpu/simd/posting_walk.hpp) on every level the
// CPU has: hand-worked sums and touched lists, and every length of a posting list against
// a plain loop written here.
#include <catch2/catch.hpp>

#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "mgpu/backend/cpu/simd/posting_walk.hpp"

namespace simd = mgpu::backend::cpu::simd;

namespace {

std::vector<simd::isa> levels() {
  std::vector<simd::isa> out;
  for (auto l : {simd::isa::scalar, simd::isa::avx2, simd::isa::avx512, simd::isa::avx512vbmi2}) {
    if (l <= simd::best_supported()) out.push_back(l);
  }
  return out;
}

}  // namespace

TEST_CASE("walk_postings: two terms by hand", "[simd]") {
  for (auto level : levels()) {
    CAPTURE(simd::name(level));
    std::vector<float> acc(6, 0.0f);
    std::vector<std::int32_t> touched(6, -1);
    // Term 1: documents 4, 1, 3 with values 1, 2, 0.5; weight 2.
    std::vector<std::int32_t> const docs1{4, 1, 3};
    std::vector<float> const vals1{1.0f, 2.0f, 0.5f};
    auto n = simd::walk_postings<float, std::int32_t>(level, acc.data(), touched.data(), 0, docs1.data(),
                                                      vals1.data(), 0, 3, 2.0f);
    REQUIRE(n == 3);
    CHECK(acc == std::vector<float>{0, 4, 0, 1, 2, 0});
    CHECK(std::vector<std::int32_t>(touched.begin(), touched.begin() + 3) == std::vector<std::int32_t>{4, 1, 3});
    // Term 2: documents 1, 5 and 0 (a stored zero: not touched), weight 0.5.
    std::vector<std::int32_t> const docs2{1, 5, 0};
    std::vector<float> const vals2{4.0f, 8.0f, 0.0f};
    n = simd::walk_postings<float, std::int32_t>(level, acc.data(), touched.data(), n, docs2.data(), vals2.data(),
                                                 0, 3, 0.5f);
    REQUIRE(n == 4);
    CHECK(acc == std::vector<float>{0, 6, 0, 1, 2, 4});
    CHECK(std::vector<std::int32_t>(touched.begin(), touched.begin() + 4) == std::vector<std::int32_t>{4, 1, 3, 5});
  }
}

TEST_CASE("walk_postings: every list length and offset equals a plain loop", "[simd]") {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> value(0.0f, 1.0f);
  int const docs_n = 100;
  for (auto level : levels()) {
    CAPTURE(simd::name(level));
    for (std::int32_t length = 0; length <= 40; ++length) {
      for (std::int32_t begin : {0, 3}) {
        CAPTURE(length, begin);
        // Distinct documents per list, as a term's postings are; some already touched.
        std::vector<std::int32_t> perm(docs_n);
        std::iota(perm.begin(), perm.end(), 0);
        std::shuffle(perm.begin(), perm.end(), rng);
        std::vector<std::int32_t> docs(perm.begin(), perm.begin() + begin + length);
        std::vector<float> vals(docs.size());
        for (auto& v : vals) v = value(rng) < 0.1f ? 0.0f : value(rng);
        std::vector<float> acc(docs_n, 0.0f);
        for (int d = 0; d < docs_n; d += 3) acc[static_cast<std::size_t>(d)] = 0.25f;
        auto expected_acc = acc;
        std::vector<std::int32_t> expected_touched;
        for (std::int32_t p = begin; p < begin + length; ++p) {
          auto const d = static_cast<std::size_t>(docs[static_cast<std::size_t>(p)]);
          float const old = expected_acc[d];
          expected_acc[d] = old + 0.75f * vals[static_cast<std::size_t>(p)];
          if (old == 0.0f && expected_acc[d] != 0.0f) expected_touched.push_back(static_cast<std::int32_t>(d));
        }
        std::vector<std::int32_t> touched(docs_n + 1, -1);
        touched[0] = 99;  // entries before n stay
        auto const n = simd::walk_postings<float, std::int32_t>(level, acc.data(), touched.data(), 1, docs.data(),
                                                                vals.data(), begin, begin + length, 0.75f);
        REQUIRE(n == expected_touched.size() + 1);
        CHECK(touched[0] == 99);
        CHECK(std::vector<std::int32_t>(touched.begin() + 1, touched.begin() + static_cast<std::ptrdiff_t>(n)) ==
              expected_touched);
        // One multiply-add per posting, fused or not: equal within one rounding.
        for (std::size_t d = 0; d < acc.size(); ++d) CHECK(acc[d] == Approx(expected_acc[d]).epsilon(1e-6));
      }
    }
  }
}
