// The GPU kernels knn_classify.cpp calls (float values), instantiated once here because
// that file is compiled by the host compiler.
#include <mgpu/backend/cuda/knn.cuh>

MGPU_CUDA_INSTANTIATE_KNN(float);
