// libFuzzer target: CSR validation from raw arrays (the csr_matrix array constructor in
// mgpu/sparse/csr_matrix.hpp) and csr_from_coo (mgpu/sparse/coo.hpp), RELIABILITY.md
// rows 1–5.
//
// Input layout (bytes past the end read as 0):
//   byte 0      flags: bit 0 64-bit indices (else 32-bit), bit 1 float values (else
//               double), bit 2 COO (the first array holds row indices for csr_from_coo)
//   bytes 1, 2  rows, cols: 0x00–0xEF as is; 0xF0–0xF5 the extremes in `special`
//   byte n      then n signed bytes: row_offsets (CSR) or row indices (COO)
//   byte m      then m signed bytes: column indices; 0x7F stands for cols - 1 and 0x80
//               for cols, so that columns near a 2^31 or 2^63 boundary are reachable
//   byte k      then k signed bytes: values; k = 0xFF means as many as columns. Value
//               0x7F stands for +Inf and 0x80 for NaN.
//
// Properties: only invalid_argument, index_overflow, dimension_mismatch and format_error
// escape; the arrays are rejected exactly when this file's own reading of the contract
// says they are invalid; an accepted matrix is canonical and holds, at each (row, col),
// the sum of the entries given there (SciPy `sum_duplicates`).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "fuzz_support.hpp"
#include "mgpu/sparse/coo.hpp"
#include "mgpu/sparse/csr_matrix.hpp"

namespace {

constexpr std::int64_t special[] = {
    -1,
    std::numeric_limits<std::int32_t>::max(),
    std::int64_t{std::numeric_limits<std::int32_t>::max()} + 1,
    std::numeric_limits<std::int64_t>::max(),
    std::numeric_limits<std::int64_t>::min(),
    std::int64_t{1} << 40,
};

// csr_from_coo allocates rows + 1 offsets before looking at the entries, as it must for
// a valid request; a row count this large but within the index type is a legitimate
// multi-gigabyte matrix, which libFuzzer would report as out-of-memory. Skipped.
constexpr std::int64_t max_coo_rows = std::int64_t{1} << 16;

class reader {
 public:
  reader(std::uint8_t const* data, std::size_t size) : data_(data), size_(size) {}
  std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : std::uint8_t{0}; }
  std::int8_t signed_byte() { return static_cast<std::int8_t>(byte()); }
  std::int64_t extent() {
    auto const code = byte();
    auto const j = static_cast<std::size_t>(code) - 0xF0;
    return code >= 0xF0 && j < std::size(special) ? special[j] : std::int64_t{code};
  }

 private:
  std::uint8_t const* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

struct arrays {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::vector<std::int64_t> first;  // row_offsets (CSR) or row indices (COO)
  std::vector<std::int64_t> columns;
  std::vector<double> values;
};

arrays decode(reader& in) {
  arrays a;
  a.rows = in.extent();
  a.cols = in.extent();
  for (auto n = in.byte(); n > 0; --n) a.first.push_back(in.signed_byte());
  for (auto m = in.byte(); m > 0; --m) {
    auto const c = in.signed_byte();
    // With cols <= 0 no column is valid, and cols - 1 might overflow: -1 serves as well.
    auto const last = a.cols > 0 ? a.cols - 1 : std::int64_t{-1};
    a.columns.push_back(c == 0x7F ? last : c == -0x80 ? a.cols : std::int64_t{c});
  }
  auto const k_code = in.byte();
  std::size_t const k = k_code == 0xFF ? a.columns.size() : k_code;
  for (std::size_t i = 0; i < k; ++i) {
    auto const v = in.signed_byte();
    a.values.push_back(v == 0x7F    ? std::numeric_limits<double>::infinity()
                       : v == -0x80 ? std::numeric_limits<double>::quiet_NaN()
                                    : static_cast<double>(v));
  }
  return a;
}

template <class I>
bool fits(std::int64_t v) {
  return v <= static_cast<std::int64_t>(std::numeric_limits<I>::max());
}

// The contract read directly from RELIABILITY.md rows 1–3 and 5; nullopt-like empty map
// with `valid` false when the arrays must be rejected, else the expected entries.
struct expectation {
  bool valid = false;
  std::map<std::pair<std::int64_t, std::int64_t>, double> entries;
};

void add(expectation& e, std::int64_t r, std::int64_t c, double v) {
  auto [it, inserted] = e.entries.try_emplace({r, c}, v);
  if (!inserted) it->second += v;
}

template <class I>
expectation expect_csr(arrays const& a) {
  expectation e;
  auto const nnz = static_cast<std::int64_t>(a.columns.size());
  if (a.rows < 0 || a.cols < 0 || !fits<I>(a.rows) || !fits<I>(a.cols) || !fits<I>(nnz)) return e;
  if (a.first.size() != static_cast<std::size_t>(a.rows) + 1) return e;
  if (a.columns.size() != a.values.size()) return e;
  if (a.first.front() != 0 || a.first.back() != nnz) return e;
  for (std::size_t r = 0; r + 1 < a.first.size(); ++r) {
    if (a.first[r + 1] < a.first[r]) return e;
  }
  for (auto c : a.columns) {
    if (c < 0 || c >= a.cols) return e;
  }
  for (std::size_t r = 0; r + 1 < a.first.size(); ++r) {
    for (auto p = a.first[r]; p < a.first[r + 1]; ++p) {
      auto const q = static_cast<std::size_t>(p);
      add(e, static_cast<std::int64_t>(r), a.columns[q], a.values[q]);
    }
  }
  e.valid = true;
  return e;
}

template <class I>
expectation expect_coo(arrays const& a) {
  expectation e;
  if (a.rows < 0 || a.cols < 0 || !fits<I>(a.rows) || !fits<I>(a.cols)) return e;
  if (a.first.size() != a.columns.size() || a.columns.size() != a.values.size()) return e;
  for (std::size_t p = 0; p < a.first.size(); ++p) {
    if (a.first[p] < 0 || a.first[p] >= a.rows || a.columns[p] < 0 || a.columns[p] >= a.cols) {
      return e;
    }
  }
  for (std::size_t p = 0; p < a.first.size(); ++p) add(e, a.first[p], a.columns[p], a.values[p]);
  e.valid = true;
  return e;
}

bool same_value(double expected, double actual) {
  return (std::isnan(expected) && std::isnan(actual)) || expected == actual;
}

template <class T, class I>
void run(arrays const& a, bool coo) {
  if (coo && a.rows > max_coo_rows && fits<I>(a.rows)) return;
  std::vector<I> first(a.first.size());
  std::vector<I> columns(a.columns.size());
  std::vector<T> values(a.values.size());
  // Values beyond I wrap here; the expectation sees the wrapped value through `a` only
  // when it fits, and a column that does not fit I cannot be inside a shape that does.
  for (std::size_t i = 0; i < first.size(); ++i) first[i] = static_cast<I>(a.first[i]);
  for (std::size_t i = 0; i < columns.size(); ++i) columns[i] = static_cast<I>(a.columns[i]);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<T>(a.values[i]);
  auto const expected = coo ? expect_coo<I>(a) : expect_csr<I>(a);

  try {
    auto const m = coo ? mgpu::csr_from_coo<T, I>(a.rows, a.cols, first, columns, values)
                       : mgpu::csr_matrix<mgpu::cpu, T, I>(a.rows, a.cols, first, columns, values);
    mgpu_fuzz::check(expected.valid, "only arrays that keep the contract are accepted");
    mgpu_fuzz::check_csr_invariants(m);
    mgpu_fuzz::check(m.rows() == a.rows && m.cols() == a.cols, "the shape as given");
    mgpu_fuzz::check(static_cast<std::size_t>(m.nnz()) == expected.entries.size(),
                     "one entry per distinct (row, col)");
    auto const offsets = m.row_offsets();
    for (std::size_t r = 0; r + 1 < offsets.size(); ++r) {
      for (auto p = offsets[r]; p < offsets[r + 1]; ++p) {
        auto const q = static_cast<std::size_t>(p);
        auto const it = expected.entries.find({static_cast<std::int64_t>(r), m.col_indices()[q]});
        mgpu_fuzz::check(it != expected.entries.end(), "only given coordinates are stored");
        mgpu_fuzz::check(same_value(static_cast<double>(static_cast<T>(it->second)),
                                    static_cast<double>(m.values()[q])),
                         "duplicates are summed");
      }
    }
  } catch (mgpu::invalid_argument const&) {
    mgpu_fuzz::check(!expected.valid, "valid arrays are not invalid_argument");
  } catch (mgpu::index_overflow const&) {
    mgpu_fuzz::check(!expected.valid, "valid arrays are not index_overflow");
  } catch (mgpu::dimension_mismatch const&) {
    mgpu_fuzz::check(!expected.valid, "valid arrays are not dimension_mismatch");
  } catch (mgpu::format_error const&) {
    mgpu_fuzz::check(!expected.valid, "valid arrays are not format_error");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
  reader in(data, size);
  auto const flags = in.byte();
  auto const a = decode(in);
  bool const wide = (flags & 1u) != 0;
  bool const single = (flags & 2u) != 0;
  bool const coo = (flags & 4u) != 0;
  if (wide) {
    single ? run<float, std::int64_t>(a, coo) : run<double, std::int64_t>(a, coo);
  } else {
    single ? run<float, std::int32_t>(a, coo) : run<double, std::int32_t>(a, coo);
  }
  return 0;
}
