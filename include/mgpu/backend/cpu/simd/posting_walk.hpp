// mgpu/backend/cpu/simd/posting_walk.hpp — the cosine kernel's plain walk of one posting
// list: acc[d] += w · v for every posting (d, v) of a term, and the documents whose
// partial score just left zero appended to a touched list.
//
//   n = walk_postings(level, acc, touched, n, docs, values, begin, end, w);
//
// Shapes: acc has one float per document of the shard (all +0 before a query's walk;
// never -0, since +0 + -0 is +0); touched has room for one index per document; postings
// [begin, end) of docs/values. Returns the new length of touched. A document enters
// touched when its old partial score is +0 and its new one is not, in posting order, so
// the list holds each touched document once when values and w are non-negative.
// O(end − begin).
//
// The postings of one term name distinct documents, so 16 of them can be gathered,
// updated and scattered at once with no conflict (AVX-512F gather/scatter, the fresh
// documents compressed into the list in lane order). Each document's sum is formed in the
// same order as the scalar loop's, one fused multiply-add per posting; the scalar loop's
// `old + w * v` is fused too where the compiler contracts it (GCC's default for a target
// with FMA), and only the candidates' choice, never a reported score, depends on that
// rounding (the kernel rescores its candidates canonically). Levels below avx512 (and
// other index/value types) take the scalar loop. Thread safety: none needed (the caller's
// own buffers).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "mgpu/backend/cpu/simd/isa.hpp"

namespace mgpu::backend::cpu::simd {

namespace scalar {

/// True when every bit of x is zero (+0 only; -0 is not zero here).
template <class T>
[[nodiscard]] inline bool zero_bits(T x) noexcept {
  using bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  static_assert(sizeof(T) == sizeof(bits));
  return std::bit_cast<bits>(x) == 0;
}

/// The walk, one posting at a time (see the file comment).
template <class T, class I>
inline std::size_t walk_postings(T* acc, I* touched, std::size_t n, I const* docs, T const* values, I begin, I end,
                                 T w) noexcept {
  for (I p = begin; p < end; ++p) {
    I const d = docs[p];
    auto const i = static_cast<std::size_t>(d);
    T const old = acc[i];
    T const partial = old + w * values[p];
    acc[i] = partial;
    touched[n] = d;
    n += static_cast<std::size_t>(zero_bits(old)) & static_cast<std::size_t>(!zero_bits(partial));
  }
  return n;
}

}  // namespace scalar

}  // namespace mgpu::backend::cpu::simd

#if MGPU_SIMD_X86
MGPU_SIMD_BEGIN_AVX512
namespace mgpu::backend::cpu::simd::avx512 {

/// As scalar::walk_postings for float values and 32-bit document indices, 16 postings a
/// step; the tail (fewer than 16) is masked.
inline std::size_t walk_postings(float* acc, std::int32_t* touched, std::size_t n, std::int32_t const* docs,
                                 float const* values, std::int32_t begin, std::int32_t end, float w) noexcept {
  __m512 const vw = _mm512_set1_ps(w);
  __m512i const zero = _mm512_setzero_si512();
  std::int32_t p = begin;
  auto const step = [&](__mmask16 lanes) {
    __m512i const idx = _mm512_maskz_loadu_epi32(lanes, docs + p);
    __m512 const old = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes, idx, acc, 4);
    __m512 const partial = _mm512_fmadd_ps(vw, _mm512_maskz_loadu_ps(lanes, values + p), old);
    _mm512_mask_i32scatter_ps(acc, lanes, idx, partial, 4);
    __mmask16 const fresh = _mm512_mask_cmpeq_epi32_mask(lanes, _mm512_castps_si512(old), zero) &
                            _mm512_cmpneq_epi32_mask(_mm512_castps_si512(partial), zero);
    _mm512_mask_compressstoreu_epi32(touched + n, fresh, idx);
    n += static_cast<std::size_t>(std::popcount(static_cast<unsigned>(fresh)));
  };
  for (; p + 16 <= end; p += 16) step(static_cast<__mmask16>(0xFFFF));
  if (p < end) step(static_cast<__mmask16>((1u << (end - p)) - 1u));
  return n;
}

}  // namespace mgpu::backend::cpu::simd::avx512
MGPU_SIMD_END
#endif

namespace mgpu::backend::cpu::simd {

/// The walk on `level`'s kernel (see the file comment); the caller reads simd::active()
/// once per search, not per call.
template <class T, class I>
inline std::size_t walk_postings(isa level, T* acc, I* touched, std::size_t n, I const* docs, T const* values,
                                 I begin, I end, T w) noexcept {
#if MGPU_SIMD_X86
  if constexpr (std::is_same_v<T, float> && std::is_same_v<I, std::int32_t>) {
    if (level >= isa::avx512) return avx512::walk_postings(acc, touched, n, docs, values, begin, end, w);
  }
#endif
  (void)level;
  return scalar::walk_postings(acc, touched, n, docs, values, begin, end, w);
}

}  // namespace mgpu::backend::cpu::simd
