// mgpu/backend/cpu/format/prefetch.hpp — the cache hint of the text writers' lookups.
//
// A neighbour file names neighbours in random order, so each row's id is a load from a
// table of about the corpus's id bytes (WordNet: 2.5 MB, more than a core's L2 cache):
// the writer asks for the id of the row a few rows ahead with prefetch_read (docs/
// performance.md, "Reading and writing").
//
// Thread safety: pure.
#pragma once

namespace mgpu::backend::cpu {

/// A hint that `p` will be read soon (no effect on results; `p` need not be valid).
inline void prefetch_read(void const* p) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p, 0, 3);
#else
  (void)p;
#endif
}

}  // namespace mgpu::backend::cpu
