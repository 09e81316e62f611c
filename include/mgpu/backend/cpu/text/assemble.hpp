// mgpu/backend/cpu/text/assemble.hpp — the assemble stage: the counted documents' entries
// become CSR rows sorted by column (entries of pruned terms dropped, counts 1 when
// `binary`), on the calling thread's OpenMP threads. With row_values::weighted each row
// is weighted and normalised as it is written (the weight stage's row kernel, fused here
// because the row is in cache), and the values are T.
//
// Memory: the rows are read one entry generation of the counter at a time (counter.hpp),
// and each generation is freed once its rows are written; the matrix's arrays are
// allocated once, at their exact size, and their pages are first touched as the rows
// are written. So the counts and the matrix are never both held whole: the peak is the
// matrix plus one generation (plus 8 bytes per document for the row offsets).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#include "mgpu/algorithms/tfidf_options.hpp"
#include "mgpu/backend/cpu/text/counter.hpp"
#include "mgpu/backend/cpu/text/entry_array.hpp"
#include "mgpu/backend/cpu/text/row_sort.hpp"
#include "mgpu/backend/cpu/text/vocabulary.hpp"
#include "mgpu/backend/cpu/text/weight.hpp"
#include "mgpu/core/buffer.hpp"
#include "mgpu/core/device.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/sparse/csr_view.hpp"

namespace mgpu::detail {

/// A count matrix as assembling produces it: exact integer counts, or the values already
/// weighted (V = T) when assembling applied the weighting.
template <class I, class V = std::uint32_t>
struct count_matrix {
  I rows = 0;
  I cols = 0;
  buffer<I, cpu> row_offsets;
  buffer<I, cpu> col_indices;
  buffer<V, cpu> counts;

  [[nodiscard]] csr_view<V, I> view() const noexcept {
    return {rows, cols, row_offsets.data(), col_indices.data(), counts.data()};
  }
};

/// What becomes of a finished row of counts (sorted by column) in `assemble`.
enum class row_values { counts, weighted };

/// An all-zero documents x cols matrix. @throws index_overflow if a size exceeds I.
template <class I, class V>
count_matrix<I, V> empty_counts(std::size_t documents, std::size_t cols) {
  check_fits_index<I>(static_cast<std::int64_t>(documents), "documents");
  check_fits_index<I>(static_cast<std::int64_t>(cols), "vocabulary size");
  count_matrix<I, V> m;
  m.rows = static_cast<I>(documents);
  m.cols = static_cast<I>(cols);
  m.row_offsets = buffer<I, cpu>(documents + 1);
  std::fill_n(m.row_offsets.data(), documents + 1, I{0});
  return m;
}

/// The count matrix of the counted documents (file comment). `columns`: the fit's map of
/// table ids to columns (after build_vocabulary), or null when the counter looked up a
/// fitted vocabulary (its entries are columns already). `idf`: one entry per column, read
/// with row_values::weighted and use_idf. O(nnz) plus the row sorts.
/// Consumes the counter's rows and its threads' counting state (corpus_counter::
/// release_workers, release_rows): call once, after the vocabulary stage.
/// @throws index_overflow when the documents, columns or nnz exceed I (the counter is
///         then left as it was); out_of_memory when the matrix cannot be allocated.
template <class I, class V = std::uint32_t>
count_matrix<I, V> assemble(corpus_counter& counter, vocabulary_columns const* columns,
                            row_values what = row_values::counts, std::span<double const> idf = {}) {
  tfidf_options const& options = counter.options();
  std::size_t const documents = counter.documents();
  std::size_t const cols = counter.fitted() != nullptr ? counter.fitted()->terms.size() : columns->kept;
  if (!counter.keeps_rows()) return empty_counts<I, V>(documents, cols);
  check_fits_index<I>(static_cast<std::int64_t>(documents), "documents");
  check_fits_index<I>(static_cast<std::int64_t>(cols), "vocabulary size");
  counter.seal_rows();
  std::size_t const generations = counter.generations();
  // Entries hold table ids in a fit (-> column, npos for pruned terms), columns in a
  // transform.
  std::uint32_t const* const column = counter.fitted() == nullptr ? columns->column.data() : nullptr;
  bool const pruned = column != nullptr && cols < columns->terms;
  std::vector<std::size_t> offsets(documents + 1, 0);
#pragma omp parallel
  for (std::size_t g = 0; g < generations; ++g) {
    auto const first = static_cast<std::int64_t>(counter.generation(g).first_document);
    auto const last = static_cast<std::int64_t>(counter.generation_end(g));
#pragma omp for schedule(static)
    for (std::int64_t d = first; d < last; ++d) {
      auto const& row = counter.row(static_cast<std::size_t>(d));
      std::size_t kept = row.length;
      if (pruned) {
        unsigned char const* const e = counter.entries(g, row);
        kept = 0;
        for (std::size_t p = 0; p < row.length; ++p) kept += column[packed_term(e, row, p)] != term_table::npos ? 1 : 0;
      }
      offsets[static_cast<std::size_t>(d) + 1] = kept;
    }
  }
  std::partial_sum(offsets.begin(), offsets.end(), offsets.begin());
  std::size_t const nnz = offsets.back();
  check_fits_index<I>(static_cast<std::int64_t>(nnz), "nnz");

  count_matrix<I, V> m;
  m.rows = static_cast<I>(documents);
  m.cols = static_cast<I>(cols);
  m.row_offsets = buffer<I, cpu>(documents + 1);
  m.col_indices = buffer<I, cpu>(nnz);
  m.counts = buffer<V, cpu>(nnz);
  for (std::size_t d = 0; d <= documents; ++d) m.row_offsets[d] = static_cast<I>(offsets[d]);
  offsets = {};
  // The threads' per-term counters are not needed any more.
  counter.release_workers();
  bool const binary = options.binary;
  bool const weighted = what == row_values::weighted;
  auto const digits = row_sort_digits::for_columns(cols);
#pragma omp parallel
  {
    std::vector<term_count> row_entries;
    std::vector<term_count> scratch;
    std::vector<std::uint32_t> row_counts;
    std::vector<std::uint32_t> bucket(std::size_t{1} << digits.digit_bits);
    for (std::size_t g = 0; g < generations; ++g) {
      auto const first = static_cast<std::int64_t>(counter.generation(g).first_document);
      auto const last = static_cast<std::int64_t>(counter.generation_end(g));
#pragma omp for schedule(dynamic, 256)
      for (std::int64_t d = first; d < last; ++d) {
        auto const di = static_cast<std::size_t>(d);
        auto const& row = counter.row(di);
        unsigned char const* const e = counter.entries(g, row);
        // The next row's column lookups miss cache (the map is vocabulary-sized and the
        // entries and output stream through): start them while this row is sorted, and
        // its idf lookups while this row is weighted.
        unsigned char const* next = nullptr;
        document_entries const* next_row = nullptr;
        std::size_t next_length = 0;
        if (column != nullptr && d + 1 < last) {
          next_row = &counter.row(di + 1);
          next = counter.entries(g, *next_row);
          next_length = next_row->length;
          for (std::size_t p = 0; p < next_length; ++p) __builtin_prefetch(column + packed_term(next, *next_row, p));
        }
        row_entries.resize(row.length);
        std::size_t kept = 0;
        for (std::size_t p = 0; p < row.length; ++p) {
          std::uint32_t const t = packed_term(e, row, p);
          std::uint32_t const c = column == nullptr ? t : column[t];
          row_entries[kept] = {c, packed_count(e, row, p)};
          kept += c != term_table::npos ? 1 : 0;
        }
        row_entries.resize(kept);
        sort_row(row_entries, scratch, bucket, digits);
        auto const begin = static_cast<std::size_t>(m.row_offsets[di]);
        std::size_t const length = row_entries.size();
        I* const out_cols = m.col_indices.data() + begin;
        for (std::size_t p = 0; p < length; ++p) out_cols[p] = static_cast<I>(row_entries[p].term);
        if (weighted) {
          if (options.use_idf) {
            for (std::size_t p = 0; p < next_length; ++p) {
              std::uint32_t const c = column[packed_term(next, *next_row, p)];
              __builtin_prefetch(idf.data() + (c != term_table::npos ? c : 0));
            }
          }
          row_counts.resize(length);
          for (std::size_t p = 0; p < length; ++p) row_counts[p] = binary ? 1u : row_entries[p].count;
          I const bounds[2] = {I{0}, static_cast<I>(length)};
          tfidf_row_weighting<std::uint32_t, V, I> const weigh{bounds, out_cols, row_counts.data(), idf.data(),
                                                               options.sublinear_tf, options.use_idf,
                                                               options.norm, m.counts.data() + begin};
          weigh(I{0});
        } else {
          V* const out = m.counts.data() + begin;
          for (std::size_t p = 0; p < length; ++p) out[p] = static_cast<V>(binary ? 1u : row_entries[p].count);
        }
      }
      // Every row of generation g is written (the loop's barrier): its entries go.
#pragma omp single
      counter.release_generation(g);
    }
  }
  counter.release_rows();
  return m;
}

}  // namespace mgpu::detail
