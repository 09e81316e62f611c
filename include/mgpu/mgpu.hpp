// mgpu/mgpu.hpp — everything in mgpu for host builds: the core, the CPU backend, the
// algorithms and the readers. `mgpu/cuda.hpp` adds the GPU backend.
#pragma once

#include "mgpu/core/buffer.hpp"
#include "mgpu/core/copy.hpp"
#include "mgpu/core/device.hpp"
#include "mgpu/core/device_set.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/core/stream.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/execution/policy.hpp"
#include "mgpu/sparse/coo.hpp"
#include "mgpu/sparse/csr_matrix.hpp"
#include "mgpu/sparse/csr_view.hpp"
#include "mgpu/sparse/partition.hpp"
#include "mgpu/sparse/transpose.hpp"
#include "mgpu/algorithms/cosine_topk.hpp"
#include "mgpu/execution/fork_join.hpp"
#include "mgpu/io/matrix_market.hpp"
#include "mgpu/algorithms/tfidf.hpp"
#include "mgpu/io/corpus.hpp"
