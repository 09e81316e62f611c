// mgpu/backend/cpu/text/row_sort.hpp — sorting one row of a count matrix by column,
// the inner step of assembling the rows (backend/cpu/text/assemble.hpp).
//
// A row's columns are distinct. Short rows are sorted by rank (each entry's place is the
// number of smaller columns: branch-free, where an insertion sort mispredicts about
// every other comparison), with one 16-lane comparison per entry when the CPU has
// AVX-512 (simd::active(), read once per assembly into row_sort_digits; the kernel is
// compiled for AVX-512 in every translation unit, see backend/cpu/simd/isa.hpp); rows of
// up to 64 entries by std::sort; longer rows by an LSD radix sort on the column
// (branch-free), in passes of at most 10 bits. Every path gives the same order (columns
// are distinct).
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "mgpu/backend/cpu/simd/isa.hpp"
#include "mgpu/backend/cpu/text/entry_array.hpp"

#if MGPU_SIMD_X86
MGPU_SIMD_BEGIN_AVX512
namespace mgpu::detail::row_sort_avx512 {

/// The `length` (<= 16) entries of `row`, with distinct terms, written to `out` in
/// increasing term order: entry i goes to the number of smaller terms, counted by one
/// 16-lane comparison.
inline void rank_sort_16(term_count const* row, std::size_t length, term_count* out) noexcept {
  alignas(64) std::uint32_t terms[16];
  for (std::size_t i = 0; i < 16; ++i) terms[i] = i < length ? row[i].term : ~std::uint32_t{0};
  __m512i const all = _mm512_load_si512(terms);
  for (std::size_t i = 0; i < length; ++i) {
    __mmask16 const smaller = _mm512_cmplt_epu32_mask(all, _mm512_set1_epi32(static_cast<int>(row[i].term)));
    out[static_cast<std::size_t>(std::popcount(static_cast<unsigned>(smaller)))] = row[i];
  }
}

}  // namespace mgpu::detail::row_sort_avx512
MGPU_SIMD_END
#endif

namespace mgpu::detail {

/// The radix-sort digits for columns below `cols`: `passes` passes of `digit_bits` bits,
/// and whether the AVX-512 rank sort may run (`wide`: simd::active() >= avx512).
struct row_sort_digits {
  unsigned passes;
  unsigned digit_bits;
  bool wide = false;

  /// @throws invalid_argument if MGPU_SIMD names no instruction-set level.
  static row_sort_digits for_columns(std::size_t cols) {
    auto const column_bits = static_cast<unsigned>(std::bit_width(cols));
    unsigned const passes = std::max(1u, (column_bits + 9) / 10);
    return {passes, std::max(1u, (column_bits + passes - 1) / passes),
            MGPU_SIMD_X86 && backend::cpu::simd::active() >= backend::cpu::simd::isa::avx512};
  }
};

/// Sorts `row` (distinct columns in term_count::term) by column. `scratch` and `bucket`
/// are the caller's reusable buffers; `bucket` has 2^digits.digit_bits entries.
/// O(length^2) for length <= 32, O(length log length) up to 64, O(passes * length) above.
inline void sort_row(std::vector<term_count>& row, std::vector<term_count>& scratch,
                     std::vector<std::uint32_t>& bucket, row_sort_digits digits) {
  std::size_t const length = row.size();
#if MGPU_SIMD_X86
  if (digits.wide && length <= 16) {
    // As below, one 16-lane comparison per entry.
    scratch.resize(length);
    row_sort_avx512::rank_sort_16(row.data(), length, scratch.data());
    row.swap(scratch);
    return;
  }
#endif
  if (length <= 32) {
    scratch.resize(length);
    term_count const* const e = row.data();
    for (std::size_t i = 0; i < length; ++i) {
      std::size_t rank = 0;
      for (std::size_t j = 0; j < length; ++j) rank += static_cast<std::size_t>(e[j].term < e[i].term);
      scratch[rank] = e[i];
    }
    row.swap(scratch);
  } else if (length <= 64) {
    std::sort(row.begin(), row.end(), [](term_count a, term_count b) { return a.term < b.term; });
  } else {
    scratch.resize(length);
    std::uint32_t const mask = (std::uint32_t{1} << digits.digit_bits) - 1;
    for (unsigned pass = 0; pass < digits.passes; ++pass) {
      unsigned const shift = pass * digits.digit_bits;
      std::fill(bucket.begin(), bucket.end(), 0u);
      for (auto const& e : row) ++bucket[(e.term >> shift) & mask];
      std::uint32_t sum = 0;
      for (auto& b : bucket) sum += std::exchange(b, sum);
      for (auto const& e : row) scratch[bucket[(e.term >> shift) & mask]++] = e;
      row.swap(scratch);
    }
  }
}

}  // namespace mgpu::detail
