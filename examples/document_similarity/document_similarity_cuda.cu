// The GPU kernels document_similarity.cpp calls (float values, 32-bit indices),
// instantiated once here because that file is compiled by the host compiler.
#include <cstdint>

#include <mgpu/backend/cuda/instantiate.cuh>

MGPU_CUDA_INSTANTIATE(float, std::int32_t);
