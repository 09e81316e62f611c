// mgpu/backend/cuda/csr_matrix.hpp — the CSR matrix that lives on one GPU.
//
// `csr_matrix<gpu, T, I>` owns row_offsets (rows + 1), col_indices and values (nnz) in
// `buffer<T, gpu>`s of one device, allocated on a stream of that device (stream-ordered,
// backend/cuda/buffer.hpp). It holds the same canonical contents as the host matrix it
// was uploaded from (mgpu::upload, backend/cuda/transfer.hpp); its view is a
// `csr_view<T, I, gpu>`, which carries device pointers to kernels and cannot be read on
// the host. Move-only; destroying it frees the arrays in order on their stream.
//
// Host-compilable: this header needs the CUDA Toolkit's headers, not nvcc. Compiled, not
// run on a GPU.
#pragma once

#include <cstddef>
#include <utility>

#include "mgpu/backend/cuda/buffer.hpp"
#include "mgpu/backend/cuda/stream.hpp"
#include "mgpu/sparse/csr_matrix.hpp"
#include "mgpu/sparse/csr_view.hpp"

namespace mgpu {

/// A CSR matrix in one GPU's memory (see the file comment).
template <class T, class I>
class csr_matrix<gpu, T, I> {
 public:
  using kind = gpu;
  using value_type = T;
  using index_type = I;
  using view_type = csr_view<T, I, gpu>;

  csr_matrix() = default;

  /// Uninitialised arrays for a rows x cols matrix with nnz entries on `s`'s device,
  /// allocated in order on `s`. For the transfers and kernels that fill every entry
  /// with canonical contents. @throws out_of_memory, cuda_error.
  [[nodiscard]] static csr_matrix allocate(I rows, I cols, I nnz, stream<gpu> const& s) {
    csr_matrix m;
    m.rows_ = rows;
    m.cols_ = cols;
    m.row_offsets_ = buffer<I, gpu>(static_cast<std::size_t>(rows) + 1, s);
    m.col_indices_ = buffer<I, gpu>(static_cast<std::size_t>(nnz), s);
    m.values_ = buffer<T, gpu>(static_cast<std::size_t>(nnz), s);
    return m;
  }

  csr_matrix(csr_matrix&&) noexcept = default;
  csr_matrix& operator=(csr_matrix&&) noexcept = default;

  [[nodiscard]] I rows() const noexcept { return rows_; }
  [[nodiscard]] I cols() const noexcept { return cols_; }
  [[nodiscard]] I nnz() const noexcept { return static_cast<I>(col_indices_.size()); }
  /// The CUDA device the arrays live on.
  [[nodiscard]] int ordinal() const noexcept { return row_offsets_.ordinal(); }

  [[nodiscard]] buffer<I, gpu>& row_offsets() noexcept { return row_offsets_; }
  [[nodiscard]] buffer<I, gpu> const& row_offsets() const noexcept { return row_offsets_; }
  [[nodiscard]] buffer<I, gpu>& col_indices() noexcept { return col_indices_; }
  [[nodiscard]] buffer<I, gpu> const& col_indices() const noexcept { return col_indices_; }
  [[nodiscard]] buffer<T, gpu>& values() noexcept { return values_; }
  [[nodiscard]] buffer<T, gpu> const& values() const noexcept { return values_; }

  [[nodiscard]] view_type view() const noexcept {
    return {rows_, cols_, row_offsets_.data(), col_indices_.data(), values_.data()};
  }

 private:
  I rows_ = 0;
  I cols_ = 0;
  buffer<I, gpu> row_offsets_;
  buffer<I, gpu> col_indices_;
  buffer<T, gpu> values_;
};

}  // namespace mgpu
