// A program that fails on one rank, for run_fault.sh: every rank must end with a non-zero
// status, within a time limit, and the message must come out.
//
//   mpi_fault_program library     the last rank passes a short x to a distributed SpMV
//                                 inside main_guard: every rank prints the agreed error
//                                 and exits 1
//   mpi_fault_program user        the last rank throws in the program's own code while the
//                                 others wait in an all_gather; main_guard aborts the job
//   mpi_fault_program library-unguarded / user-unguarded
//                                 the same without main_guard: the exception leaves main
//   mpi_fault_program cosine      the last rank's corpus rows hold a NaN in an exact
//                                 cosine top-k over ranks: every rank prints the agreed
//                                 error and exits 1
//   mpi_fault_program tfidf       the last rank's documents hold invalid UTF-8 in a TF-IDF
//                                 over ranks: the same
#include <mpi.h>

#include <cstdio>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "mgpu/mpi.hpp"

namespace {

int run(std::string_view what) {
  mgpu::mpi::distributed_policy<mgpu::cpu> policy("cpu:2");
  bool const failing = policy.rank() == policy.ranks() - 1;
  if (what == "cosine") {
    // Each rank: two corpus rows of its own; the queries the same everywhere.
    std::vector<int> const offsets{0, 2, 3};
    std::vector<int> const columns{0, 2, 1};
    std::vector<float> values{1.0f, 2.0f, 3.0f};
    if (failing) values[1] = std::numeric_limits<float>::quiet_NaN();
    mgpu::csr_matrix<mgpu::cpu, float, int> const mine(2, 3, offsets, columns, values);
    mgpu::csr_matrix<mgpu::cpu, float, int> const queries(1, 3, std::vector<int>{0, 1}, std::vector<int>{2},
                                                          std::vector<float>{1.0f});
    (void)mgpu::mpi::cosine_topk(policy, queries.view(), mine.view(), 2);
    std::printf("rank %d: no error\n", policy.rank());
    return 0;
  }
  if (what == "tfidf") {
    std::vector<std::string> docs{"one document", "another one"};
    if (failing) docs.emplace_back("bad \xC3 byte");
    (void)mgpu::mpi::tfidf_fit_transform<float>(policy, docs);
    std::printf("rank %d: no error\n", policy.rank());
    return 0;
  }
  // A 6 x 6 tridiagonal matrix; every rank holds all of it and keeps its share.
  std::vector<int> offsets{0};
  std::vector<int> columns;
  std::vector<float> values;
  for (int r = 0; r < 6; ++r) {
    for (int c = r - 1; c <= r + 1; ++c) {
      if (c < 0 || c >= 6) continue;
      columns.push_back(c);
      values.push_back(c == r ? 2.0f : -1.0f);
    }
    offsets.push_back(static_cast<int>(columns.size()));
  }
  mgpu::csr_matrix<mgpu::cpu, float, int> const a(6, 6, offsets, columns, values);
  auto m = mgpu::mpi::distributed_csr<mgpu::cpu, float, int>::from_whole(policy, a.view());
  if (what.starts_with("library")) {
    std::vector<float> x(failing ? 5 : 6, 1.0f);
    std::vector<float> y(static_cast<std::size_t>(m.local_rows()));
    m.spmv(1.0f, std::span<float const>(x), 0.0f, std::span<float>(y));
  } else {
    auto x = mgpu::mpi::distributed_dense<mgpu::cpu, float>::replicated(policy, 6, 1);
    auto y = mgpu::mpi::distributed_dense<mgpu::cpu, float>::row_blocks(policy, 6, 1, m.row_bounds());
    if (failing) throw std::runtime_error("the program's own code failed on rank " + std::to_string(policy.rank()));
    m.spmv(1.0f, x, 0.0f, y);
    mgpu::mpi::all_gather(y, x);  // waits for the failing rank
  }
  std::printf("rank %d: no error\n", policy.rank());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  mgpu::mpi::environment env(argc, argv);
  std::string_view const what = argc > 1 ? argv[1] : "";
  if (what.ends_with("-unguarded")) return run(what);
  return mgpu::mpi::main_guard([&] { return run(what); });
}
