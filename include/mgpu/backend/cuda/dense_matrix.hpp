// mgpu/backend/cuda/dense_matrix.hpp — the row-major dense matrix that lives on one GPU,
// and distributed_dense's GPU blocks.
//
// `dense_matrix<gpu, T>` owns rows·cols elements (ld == cols) in one `buffer<T, gpu>`,
// allocated in order on a stream of its device; `view()` is a `dense_view<T, gpu>`
// (device pointer: not readable on the host). Move-only. Elements start uninitialised;
// distributed_dense's blocks are zero-filled on their device's stream.
//
// Host-compilable: this header needs the CUDA Toolkit's headers, not nvcc. Compiled, not
// run on a GPU.
#pragma once

#include <cstddef>
#include <cstdint>

#include "mgpu/backend/cuda/buffer.hpp"
#include "mgpu/backend/cuda/device_set.hpp"
#include "mgpu/backend/cuda/runtime.hpp"
#include "mgpu/backend/cuda/stream.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/dense/distributed_dense.hpp"

namespace mgpu {

/// A row-major rows x cols matrix (ld == cols) in one GPU's memory.
template <class T>
class dense_matrix<gpu, T> {
 public:
  using kind = gpu;
  using value_type = T;

  dense_matrix() = default;
  /// Uninitialised, on `s`'s device, allocated in order on `s`.
  /// @throws invalid_argument (negative shape), index_overflow, out_of_memory, cuda_error.
  dense_matrix(std::int64_t rows, std::int64_t cols, stream<gpu> const& s) : rows_(rows), cols_(cols) {
    MGPU_EXPECTS(rows >= 0 && cols >= 0, "matrix shape must be non-negative, got ", rows, " x ", cols);
    if (cols > 0 && rows > static_cast<std::int64_t>(SIZE_MAX / sizeof(T)) / cols) {
      throw index_overflow(detail::message("dense matrix ", rows, " x ", cols, " is too large"));
    }
    data_ = buffer<T, gpu>(static_cast<std::size_t>(rows * cols), s);
  }
  dense_matrix(dense_matrix&&) noexcept = default;
  dense_matrix& operator=(dense_matrix&&) noexcept = default;

  [[nodiscard]] std::int64_t rows() const noexcept { return rows_; }
  [[nodiscard]] std::int64_t cols() const noexcept { return cols_; }
  [[nodiscard]] std::int64_t ld() const noexcept { return cols_; }
  [[nodiscard]] int ordinal() const noexcept { return data_.ordinal(); }
  [[nodiscard]] T* data() noexcept { return data_.data(); }
  [[nodiscard]] T const* data() const noexcept { return data_.data(); }
  [[nodiscard]] dense_view<T, gpu> view() noexcept { return {rows_, cols_, cols_, data_.data()}; }
  [[nodiscard]] dense_view<T const, gpu> view() const noexcept { return {rows_, cols_, cols_, data_.data()}; }

 private:
  std::int64_t rows_ = 0;
  std::int64_t cols_ = 0;
  buffer<T, gpu> data_;
};

namespace detail {

/// distributed_dense on GPUs: each block allocated and zeroed on its device's stream.
template <>
struct dense_leaf<gpu> {
  template <class T>
  static dense_matrix<gpu, T> zeros(device_context<gpu>& ctx, std::int64_t rows, std::int64_t cols) {
    dense_matrix<gpu, T> m(rows, cols, ctx.work);
    if (rows > 0 && cols > 0) {
      backend::cuda::device_guard guard(ctx.dev.ordinal);
      MGPU_CUDA_TRY(cudaMemsetAsync(m.data(), 0, static_cast<std::size_t>(rows * cols) * sizeof(T), ctx.work.handle()));
    }
    return m;
  }
};

}  // namespace detail
}  // namespace mgpu
