// The ALS GPU kernels als_recommend.cpp calls (float factors),
// instantiated once here because that file is compiled by the host compiler.
#include <cstdint>

#include <mgpu/backend/cuda/als.cuh>

MGPU_CUDA_INSTANTIATE_ALS(float);
