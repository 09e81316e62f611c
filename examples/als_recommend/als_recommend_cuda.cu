// The ALS and k-NN GPU kernels als_recommend.cpp calls (float factors; the queries of a
// fitted model are k-NN searches), instantiated once here because that file is compiled
// by the host compiler.
#include <cstdint>

#include <mgpu/backend/cuda/als.cuh>
#include <mgpu/backend/cuda/knn.cuh>

MGPU_CUDA_INSTANTIATE_ALS(float);
MGPU_CUDA_INSTANTIATE_KNN(float);
