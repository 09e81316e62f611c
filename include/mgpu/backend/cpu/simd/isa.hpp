// mgpu/backend/cpu/simd/isa.hpp — which x86-64 vector instruction set the host kernels
// use, chosen once per process at run time (as simdjson does), not by compiler flags.
//
// Every kernel with intrinsics (the tokenizer's byte classification, the SpMV gathers,
// TF-IDF's row sort, the cosine kernel's posting walk) is compiled once per instruction set, each copy in a namespace of
// its own (`scalar`, `avx2`, `avx512`, `avx512vbmi2`) inside a target region
// (MGPU_SIMD_BEGIN_AVX2 ... MGPU_SIMD_END below: GCC's `#pragma GCC target`, Clang's
// `#pragma clang attribute`), so the code is the same in every translation unit whatever
// its -march, no two definitions of one inline function differ, and a program built
// without -march=native still runs the AVX2 / AVX-512 kernels on a CPU that has them.
// Callers switch on `simd::active()` once per document, row range or chunk group, never
// per vector.
//
// Levels, each a superset of the one before:
//   scalar       portable C++ (the compiler may still vectorize it for the TU's -march)
//   avx2         AVX2, FMA, BMI1, BMI2, POPCNT (x86-64-v3's vector part; Haswell, Zen 1)
//   avx512       AVX-512 F, BW, VL, DQ, CD (x86-64-v4; Skylake-SP, Zen 4)
//   avx512vbmi2  avx512 + VBMI, VBMI2 (Ice Lake, Sapphire Rapids, Zen 4)
// `best_supported()` asks the CPU (CPUID, through __builtin_cpu_supports, which also
// checks that the OS saves the AVX / AVX-512 registers).
//
// Environment: MGPU_SIMD=scalar|avx2|avx512|avx512vbmi2 caps the level (read once, at the
// first call of active()); a level the CPU lacks gives the best one it has, never an
// illegal instruction. Empty or unset: the best supported. Used by CI to run the suite on
// the scalar path. Other architectures and compilers (AArch64, MSVC) always get scalar.
//
// A translation unit built with -march=native may let the compiler use wider
// instructions inside the lower levels' copies as well (a target region adds features to
// the command line's, it never removes any); such a program runs only where it was
// built, as any -march=native program.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "mgpu/core/error.hpp"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
/// 1 where the per-ISA kernels are compiled (x86 with GCC, Clang or a compiler that
/// mimics them, nvcc's host pass included).
#define MGPU_SIMD_X86 1
#include <immintrin.h>
#else
#define MGPU_SIMD_X86 0
#endif

#if MGPU_SIMD_X86
#define MGPU_SIMD_AVX2_FEATURES "avx2,fma,bmi,bmi2,popcnt"
#define MGPU_SIMD_AVX512_FEATURES MGPU_SIMD_AVX2_FEATURES ",avx512f,avx512bw,avx512vl,avx512dq,avx512cd"
#define MGPU_SIMD_AVX512VBMI2_FEATURES MGPU_SIMD_AVX512_FEATURES ",avx512vbmi,avx512vbmi2"
#define MGPU_SIMD_PRAGMA(x) _Pragma(#x)
#if defined(__clang__)
#define MGPU_SIMD_BEGIN(features) \
  MGPU_SIMD_PRAGMA(clang attribute push(__attribute__((target(features))), apply_to = function))
#define MGPU_SIMD_END _Pragma("clang attribute pop")
#else
#define MGPU_SIMD_BEGIN(features) _Pragma("GCC push_options") MGPU_SIMD_PRAGMA(GCC target(features))
#define MGPU_SIMD_END _Pragma("GCC pop_options")
#endif
/// Every function defined between BEGIN and END (lambdas included) may use the level's
/// instructions. Include no standard or system header inside a region.
#define MGPU_SIMD_BEGIN_AVX2 MGPU_SIMD_BEGIN(MGPU_SIMD_AVX2_FEATURES)
#define MGPU_SIMD_BEGIN_AVX512 MGPU_SIMD_BEGIN(MGPU_SIMD_AVX512_FEATURES)
#define MGPU_SIMD_BEGIN_AVX512VBMI2 MGPU_SIMD_BEGIN(MGPU_SIMD_AVX512VBMI2_FEATURES)
#endif

namespace mgpu::backend::cpu::simd {

/// The instruction-set levels, in increasing order (see the file comment).
enum class isa : std::uint8_t { scalar = 0, avx2 = 1, avx512 = 2, avx512vbmi2 = 3 };

/// The level's name as MGPU_SIMD spells it.
[[nodiscard]] constexpr std::string_view name(isa level) noexcept {
  switch (level) {
    case isa::avx2: return "avx2";
    case isa::avx512: return "avx512";
    case isa::avx512vbmi2: return "avx512vbmi2";
    case isa::scalar: break;
  }
  return "scalar";
}

/// The highest level this CPU (and OS) supports; scalar off x86 or without GCC/Clang.
[[nodiscard]] inline isa best_supported() noexcept {
#if MGPU_SIMD_X86
  __builtin_cpu_init();  // needed when called before the runtime's own constructors ran
  bool const v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                  __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
                  __builtin_cpu_supports("popcnt");
  if (!v3) return isa::scalar;
  bool const v4 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                  __builtin_cpu_supports("avx512cd");
  if (!v4) return isa::avx2;
  if (__builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512vbmi2")) return isa::avx512vbmi2;
  return isa::avx512;
#else
  return isa::scalar;
#endif
}

/// The level a request names, capped at `best`: "" or null gives `best`.
/// @throws invalid_argument for any other name than scalar, avx2, avx512, avx512vbmi2.
[[nodiscard]] inline isa capped_level(char const* request, isa best) {
  if (request == nullptr || *request == '\0') return best;
  std::string_view const r(request);
  for (auto level : {isa::scalar, isa::avx2, isa::avx512, isa::avx512vbmi2}) {
    if (r == name(level)) return level < best ? level : best;
  }
  throw invalid_argument(::mgpu::detail::message("MGPU_SIMD=", r, " is not one of scalar, avx2, avx512, avx512vbmi2"));
}

/// The level the host kernels use in this process: best_supported(), capped by
/// MGPU_SIMD. Computed once (thread-safe); O(1) afterwards.
/// @throws invalid_argument (at every call) if MGPU_SIMD names no level.
[[nodiscard]] inline isa active() {
  static isa const level = capped_level(std::getenv("MGPU_SIMD"), best_supported());
  return level;
}

}  // namespace mgpu::backend::cpu::simd
