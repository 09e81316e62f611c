// mgpu/cuda.hpp — the GPU backend. Include it (it includes the core, the CPU backend
// and the algorithms it extends) and link mgpu::cuda.
//
// It makes `mgpu::gpu` a usable kind: device_set<gpu> ("cuda", "cuda:0,1"), streams,
// events, device buffers, copies, and the gpu leaves of the algorithms, so that
// `execution_policy<gpu>` and `with_policy("cuda:...")` run tfidf_weight and
// cosine_topk on GPUs. See docs/gpu.md.
//
// Which compiler: this header compiles with any C++20 compiler given the CUDA
// Toolkit's include directory (mgpu::cuda provides it). The few functions that launch
// device code (CUB, Thrust) live in backend/cuda/*.cuh:
//   - in a translation unit compiled by nvcc (-std=c++20 --expt-relaxed-constexpr, as
//     mgpu::cuda sets), this header includes them, and everything is header-only;
//   - host-compiled code that runs algorithms on GPUs needs them instantiated once per
//     program in a .cu file: MGPU_CUDA_INSTANTIATE(T, I) from
//     mgpu/backend/cuda/instantiate.cuh (examples/document_similarity does this).
// Host-compiled code is the way to combine the GPU backend with headers nvcc cannot
// parse (simdjson's intrinsics in mgpu/io/corpus.hpp).
#pragma once

#include <type_traits>

#include "mgpu/execution/policy.hpp"

namespace mgpu {

/// The GPU backend is compiled into this program.
template <>
struct backend_available<gpu> : std::true_type {};

}  // namespace mgpu

#include "mgpu/algorithms/als.hpp"
#include "mgpu/algorithms/cosine_topk.hpp"
#include "mgpu/algorithms/knn.hpp"
#include "mgpu/algorithms/tfidf.hpp"
#include "mgpu/backend/cuda/als.hpp"
#include "mgpu/backend/cuda/buffer.hpp"
#include "mgpu/backend/cuda/copy.hpp"
#include "mgpu/backend/cuda/csr_matrix.hpp"
#include "mgpu/backend/cuda/dense_matrix.hpp"
#include "mgpu/backend/cuda/cosine_topk.hpp"
#include "mgpu/backend/cuda/device_set.hpp"
#include "mgpu/backend/cuda/functors.hpp"
#include "mgpu/backend/cuda/knn.hpp"
#include "mgpu/backend/cuda/runtime.hpp"
#include "mgpu/backend/cuda/sparse_csr.hpp"
#include "mgpu/backend/cuda/stream.hpp"
#include "mgpu/backend/cuda/tfidf.hpp"
#include "mgpu/backend/cuda/transfer.hpp"

#if defined(__CUDACC__)
#include "mgpu/backend/cuda/als.cuh"
#include "mgpu/backend/cuda/cosine_topk.cuh"
#include "mgpu/backend/cuda/knn.cuh"
#include "mgpu/backend/cuda/tfidf.cuh"
#endif
