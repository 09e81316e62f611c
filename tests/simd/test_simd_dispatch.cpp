// The choice of instruction-set level (mgpu/backend/cpu/simd/isa.hpp): names, the cap
// MGPU_SIMD sets, and what an unknown name does.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "mgpu/backend/cpu/simd/isa.hpp"
#include "mgpu/core/error.hpp"

namespace simd = mgpu::backend::cpu::simd;
using simd::isa;

TEST_CASE("levels are named as MGPU_SIMD spells them, in increasing order", "[simd]") {
  CHECK(simd::name(isa::scalar) == "scalar");
  CHECK(simd::name(isa::avx2) == "avx2");
  CHECK(simd::name(isa::avx512) == "avx512");
  CHECK(simd::name(isa::avx512vbmi2) == "avx512vbmi2");
  CHECK(isa::scalar < isa::avx2);
  CHECK(isa::avx2 < isa::avx512);
  CHECK(isa::avx512 < isa::avx512vbmi2);
}

TEST_CASE("MGPU_SIMD caps the level and never raises it above the CPU's", "[simd]") {
  CHECK(simd::capped_level(nullptr, isa::avx512) == isa::avx512);
  CHECK(simd::capped_level("", isa::avx2) == isa::avx2);
  CHECK(simd::capped_level("scalar", isa::avx512vbmi2) == isa::scalar);
  CHECK(simd::capped_level("avx2", isa::avx512vbmi2) == isa::avx2);
  CHECK(simd::capped_level("avx512", isa::avx512vbmi2) == isa::avx512);
  // A level the CPU lacks gives the best it has.
  CHECK(simd::capped_level("avx512vbmi2", isa::avx2) == isa::avx2);
  CHECK(simd::capped_level("avx512", isa::scalar) == isa::scalar);
}

TEST_CASE("an unknown MGPU_SIMD value is invalid_argument naming it and the choices", "[simd]") {
  CHECK_THROWS_AS(simd::capped_level("AVX2", isa::avx2), mgpu::invalid_argument);
  CHECK_THROWS_WITH(simd::capped_level("sse4", isa::avx2),
                    Catch::Contains("MGPU_SIMD=sse4") && Catch::Contains("scalar, avx2, avx512, avx512vbmi2"));
}

TEST_CASE("the active level is the environment's cap on what the CPU supports", "[simd]") {
  char const* const request = std::getenv("MGPU_SIMD");
  INFO("MGPU_SIMD=" << (request != nullptr ? request : "(unset)") << ", CPU best "
                    << simd::name(simd::best_supported()));
  CHECK(simd::active() <= simd::best_supported());
  if (request == nullptr || *request == '\0') CHECK(simd::active() == simd::best_supported());
  if (request != nullptr && std::string(request) == "scalar") CHECK(simd::active() == isa::scalar);
  CHECK(simd::active() == simd::active());  // computed once
#if !MGPU_SIMD_X86
  CHECK(simd::best_supported() == isa::scalar);
#endif
}

TEST_CASE("the CPU's best level agrees with the kernel's /proc/cpuinfo flags", "[simd]") {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  std::set<std::string> flags;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    for (std::string w; words >> w;) flags.insert(w);
    break;
  }
  if (flags.empty()) {
    WARN("skipped: no /proc/cpuinfo flags (not Linux on x86)");
    return;
  }
  auto has = [&](std::initializer_list<char const*> names) {
    for (auto const* n : names) {
      if (flags.count(n) == 0) return false;
    }
    return true;
  };
  isa expected = isa::scalar;
  if (has({"avx2", "fma", "bmi1", "bmi2", "popcnt"})) {
    expected = isa::avx2;
    if (has({"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"})) {
      expected = has({"avx512vbmi", "avx512_vbmi2"}) ? isa::avx512vbmi2 : isa::avx512;
    }
  }
  CHECK(simd::best_supported() == expected);
}
