// mgpu/mpi.hpp — the mpi component: device sets spanning MPI ranks (docs/distributed.md).
// Needs MPI (link mgpu::mpi: find_package(mgpu COMPONENTS mpi)); the rest of mgpu does not.
//
//   environment          MPI_Init_thread / MPI_Finalize as an object    mpi/environment.hpp
//   distributed_policy   ranks x local devices as one ordered set       mpi/policy.hpp
//   distributed_dense    row blocks or replicas over that set           mpi/distributed_dense.hpp
//   broadcast, scatter, gather, all_gather, reduce_sum over MPI          mpi/collectives.hpp
//   ... the same over NCCL for GPU buffers (with mgpu::mpi_nccl)         mpi/nccl.hpp
//   distributed_csr      SpMV / SpMM with row blocks over ranks         mpi/distributed_csr.hpp
//   agreement, mpi_error every call ends alike on every rank             mpi/error.hpp
//   cosine_topk          exact cosine top-k, corpus rows sharded over ranks mpi/cosine.hpp
//   knn                  exact k-NN, base rows sharded over ranks           mpi/knn.hpp
//   tfidf_fit_transform  TF-IDF of documents spread over ranks              mpi/tfidf.hpp
//   als_fit              ALS with users and items sharded over ranks        mpi/als.hpp
#pragma once

#include "mgpu/mpi/als.hpp"
#include "mgpu/mpi/collectives.hpp"
#include "mgpu/mpi/cosine.hpp"
#include "mgpu/mpi/distributed_csr.hpp"
#include "mgpu/mpi/distributed_dense.hpp"
#include "mgpu/mpi/environment.hpp"
#include "mgpu/mpi/error.hpp"
#include "mgpu/mpi/knn.hpp"
#include "mgpu/mpi/policy.hpp"
#include "mgpu/mpi/tfidf.hpp"
