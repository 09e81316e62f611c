// The collectives over NCCL (mgpu/mpi/nccl.hpp) against the host ones over MPI
// (mgpu/mpi/collectives.hpp) on the same data: every result downloaded from the GPUs must
// equal the host version's bit for bit (the sum too: both add in global device order), and
// the bytes counted must follow the file comment of nccl.hpp. Run under mpirun with 1-4
// ranks (tests/mpi/CMakeLists.txt). Without a CUDA device on every rank the GPU case reports
// "skipped" (and the run exits 77); the cases on NCCL's error mapping, its agreement over
// ranks and the bytes each collective counts need no GPU (run alone with "~[gpu]").
#include <catch2/catch.hpp>

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../test_support.hpp"
#include "mgpu/backend/cuda/device_set.hpp"
#include "mgpu/mpi/collectives.hpp"
#include "mgpu/mpi/nccl.hpp"
#include "mpi_test_support.hpp"

namespace mgpu_mpi_test {
extern bool nccl_gpu_case_skipped;  // test_mpi_nccl_main.cpp: makes the run exit 77 (skipped)
}  // namespace mgpu_mpi_test

namespace {

using mgpu::mpi::host_of;
using mgpu_mpi_test::element;
using mgpu_mpi_test::world_rank;
using mgpu_mpi_test::world_size;
using gpu_dense = mgpu::mpi::distributed_dense<mgpu::gpu, float>;
using cpu_dense = mgpu::mpi::distributed_dense<mgpu::cpu, float>;
using gpu_policy = mgpu::mpi::distributed_policy<mgpu::gpu>;
using cpu_policy = mgpu::mpi::distributed_policy<mgpu::cpu>;

bool contains(std::string const& text, std::string const& part) { return text.find(part) != std::string::npos; }

ncclResult_t failing_call(ncclResult_t s) { return s; }

/// The CUDA devices visible on the rank with the fewest (0 when any rank has none).
int fewest_visible_devices() {
  int const mine = mgpu::backend::cuda::visible_device_count();
  int fewest = 0;
  MPI_Allreduce(&mine, &fewest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return fewest;
}

/// This rank's index among the ranks of its node, and their number.
std::pair<int, int> node_rank() {
  MPI_Comm node = MPI_COMM_NULL;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank(), MPI_INFO_NULL, &node);
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(node, &rank);
  MPI_Comm_size(node, &size);
  MPI_Comm_free(&node);
  return {rank, size};
}

/// Row bounds in which device 0 holds no rows and the others share the rest (as the host
/// collectives' test).
std::vector<std::int64_t> bounds_with_empty_first(std::int64_t rows, std::size_t devices) {
  if (devices == 1) return {0, rows};
  auto rest = mgpu::even_row_bounds(rows, devices - 1);
  std::vector<std::int64_t> b{0};
  b.insert(b.end(), rest.begin(), rest.end());
  return b;
}

/// Device g's partial: a large first partial and small later ones, so that the order of
/// the additions shows in the rounding (every product exact, as in the host test).
float partial_value(std::size_t g, std::int64_t i, std::int64_t j) {
  float const base = g == 0 ? 1.0e7f : 0.1875f * static_cast<float>(g + 1);
  return base + static_cast<float>(i * 4 + j) * 0.125f;
}

std::vector<float> download(mgpu::dense_view<float const, mgpu::gpu> v, int ordinal) {
  std::vector<float> out(static_cast<std::size_t>(v.rows * v.cols));
  mgpu::backend::cuda::device_guard guard(ordinal);
  MGPU_CUDA_TRY(cudaDeviceSynchronize());
  if (!out.empty()) MGPU_CUDA_TRY(cudaMemcpy(out.data(), v.data, out.size() * sizeof(float), cudaMemcpyDeviceToHost));
  return out;
}

void upload(mgpu::dense_view<float, mgpu::gpu> v, int ordinal, std::vector<float> const& values) {
  mgpu::backend::cuda::device_guard guard(ordinal);
  MGPU_CUDA_TRY(cudaDeviceSynchronize());
  if (!values.empty()) {
    MGPU_CUDA_TRY(cudaMemcpy(v.data, values.data(), values.size() * sizeof(float), cudaMemcpyHostToDevice));
  }
}

std::vector<float> host_block(mgpu::dense_view<float const> v) {
  std::vector<float> out;
  for (std::int64_t i = 0; i < v.rows; ++i) {
    for (std::int64_t j = 0; j < v.cols; ++j) out.push_back(v(i, j));
  }
  return out;
}

/// True if every local device's block (or copy) of g equals the host version's c.
bool same_blocks(gpu_dense const& g, cpu_dense const& c) {
  bool same = true;
  auto const& set = g.policy().local().devices();
  for (std::size_t d = 0; d < g.policy().local_device_count(); ++d) {
    same = same && download(g.local().view(d), set.device_at(d).ordinal) == host_block(c.local().view(d));
  }
  return same;
}

void fill_partials(gpu_dense& g, cpu_dense& c) {
  auto const& set = g.policy().local().devices();
  for (std::size_t d = 0; d < g.policy().local_device_count(); ++d) {
    auto const global = g.policy().first_device() + d;
    std::vector<float> values;
    auto v = c.local().view(d);
    for (std::int64_t i = 0; i < g.rows(); ++i) {
      for (std::int64_t j = 0; j < g.cols(); ++j) {
        v(i, j) = partial_value(global, i, j);
        values.push_back(v(i, j));
      }
    }
    upload(g.local().view(d), set.device_at(d).ordinal, values);
  }
}

}  // namespace

TEST_CASE("mpi nccl: a failed NCCL call is an nccl_error naming status, call and line", "[mpi][nccl]") {
  int const line = __LINE__ + 3;
  std::string what;
  try {
    MGPU_NCCL_TRY(failing_call(ncclRemoteError));
  } catch (mgpu::mpi::nccl_error const& e) {
    CHECK(e.status() == ncclRemoteError);
    CHECK(e.status_name() == "ncclRemoteError");
    CHECK(e.call() == "failing_call(ncclRemoteError)");
    CHECK(e.line() == line);
    CHECK(contains(e.file(), "test_mpi_nccl.cpp"));
    what = e.what();
  }
  CHECK(contains(what, "NCCL call failing_call(ncclRemoteError) failed: ncclRemoteError ("));
  CHECK(std::string(mgpu::mpi::detail::nccl_status_name(ncclSystemError)) == "ncclSystemError");
  CHECK(std::string(mgpu::mpi::detail::nccl_status_name(ncclInvalidUsage)) == "ncclInvalidUsage");
  CHECK(std::string(mgpu::mpi::detail::nccl_status_name(ncclUnhandledCudaError)) == "ncclUnhandledCudaError");
}

TEST_CASE("mpi nccl: an NCCL error on the last rank is thrown on every rank", "[mpi][nccl]") {
  int const rank = world_rank();
  int const ranks = world_size();
  MPI_Comm comm = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &comm);
  auto const local = mgpu::mpi::detail::capture([&] {
    if (rank == ranks - 1) MGPU_NCCL_TRY(failing_call(ncclSystemError));
  });
  auto const what = mgpu_test::message_of<mgpu::device_error>(
      [&] { mgpu::mpi::detail::agree(comm, "an NCCL step", {}, local); });
  INFO(what);
  CHECK(contains(what, "rank " + std::to_string(ranks - 1) + " of " + std::to_string(ranks) + ": "));
  CHECK(contains(what, "NCCL call failing_call(ncclSystemError) failed: ncclSystemError"));
  MPI_Comm_free(&comm);
}

namespace {

using moves = std::vector<mgpu::mpi::detail::planned_move>;
using plan = mgpu::mpi::detail::transfer_plan;

/// The moves as a pair map, to compare with one written out by hand.
mgpu::mpi::transfer_counts::pair_map as_pairs(moves const& m) {
  mgpu::mpi::transfer_counts::pair_map out;
  for (auto const& x : m) out[{x.from, x.to}] += x.bytes;
  return out;
}

}  // namespace

// What the GPU collectives count, worked out by hand from the rules of nccl.hpp's file
// comment for one layout: 3 ranks holding 2, 1 and 2 GPUs (global devices 0-1 | 2 | 3-4),
// 10 rows of 3 floats (12 bytes a row, b = 120) in row blocks 0, 3, 2, 3, 2 (device 0
// empty). Host endpoints: rank r's host is -1 - r. Needs no GPU.
TEST_CASE("mpi nccl: the bytes each GPU collective counts, worked out by hand", "[mpi][nccl]") {
  std::vector<std::size_t> const first{0, 2, 3, 5};
  std::vector<std::int64_t> const bounds{0, 0, 3, 5, 8, 10};
  std::uint64_t const row = 12;
  std::uint64_t const b = 120;
  using pairs = mgpu::mpi::transfer_counts::pair_map;

  // broadcast from rank 2 (its first GPU is 3): its host -> 3, then 3 -> every other GPU.
  CHECK(as_pairs(plan::broadcast(first, 2, b)) == pairs{{{-3, 3}, 120}, {{3, 0}, 120}, {{3, 1}, 120},
                                                        {{3, 2}, 120}, {{3, 4}, 120}});
  // scatter from rank 0: its own GPUs' blocks straight from its host (device 0's is empty),
  // the other ranks' 24 + 36 + 24 bytes uploaded to GPU 0 at once, then sent on.
  CHECK(as_pairs(plan::scatter(first, bounds, 0, row)) ==
        pairs{{{-1, 0}, 84}, {{-1, 1}, 36}, {{0, 2}, 24}, {{0, 3}, 36}, {{0, 4}, 24}});
  // gather to rank 2: GPUs 1 and 2 send to GPU 3, which downloads their 60 bytes with its
  // own 36; GPU 4 downloads its own 24.
  CHECK(as_pairs(plan::gather(first, bounds, 2, row)) ==
        pairs{{{1, 3}, 36}, {{2, 3}, 24}, {{3, -3}, 96}, {{4, -3}, 24}});
  // all_gather: every non-empty block to every other GPU; 4 x 120 in all.
  auto const all = plan::all_gather(first, bounds, row);
  pairs expected;
  std::uint64_t const block[] = {0, 36, 24, 36, 24};
  for (int d = 0; d < 5; ++d) {
    for (int e = 0; e < 5; ++e) {
      if (e != d && block[e] > 0) expected[{e, d}] = block[e];
    }
  }
  CHECK(as_pairs(all) == expected);
  CHECK(as_pairs(all).size() == 16);  // 4 non-empty blocks x 4 other GPUs
  // reduce_sum: the chain 0 -> 1 -> 2 -> 3 -> 4, then the total from GPU 4 (rank 2) to rank
  // 0's host through its first GPU, or straight down to rank 2's host, or to GPU 1.
  pairs const chain{{{0, 1}, 120}, {{1, 2}, 120}, {{2, 3}, 120}, {{3, 4}, 120}};
  auto with = [&](pairs extra) {
    for (auto const& [k, v] : chain) extra[k] += v;
    return extra;
  };
  CHECK(as_pairs(plan::reduce_to_host(first, 0, b)) == with({{{4, 0}, 120}, {{0, -1}, 120}}));
  CHECK(as_pairs(plan::reduce_to_host(first, 2, b)) == with({{{4, -3}, 120}}));
  CHECK(as_pairs(plan::reduce_to_device(first, 1, b)) == with({{{4, 1}, 120}}));
  CHECK(as_pairs(plan::reduce_to_device(first, 4, b)) == chain);
  // One rank with one GPU: a broadcast is one upload, a sum one download.
  std::vector<std::size_t> const one{0, 1};
  CHECK(as_pairs(plan::broadcast(one, 0, b)) == pairs{{{-1, 0}, 120}});
  CHECK(as_pairs(plan::reduce_to_host(one, 0, b)) == pairs{{{0, -1}, 120}});
  CHECK(plan::reduce_to_device(one, 0, b).empty());
}

TEST_CASE("mpi nccl: every collective on GPUs equals the host version, bytes as documented", "[mpi][nccl][gpu]") {
  int const visible = fewest_visible_devices();
  if (visible == 0) {
    WARN("skipped: no CUDA device visible on every rank (compiled, not run on a GPU)");
    mgpu_mpi_test::nccl_gpu_case_skipped = true;
    return;
  }
  auto const [on_node, node_ranks] = node_rank();
  int const rank = world_rank();
  int const ranks = world_size();
  // One GPU per rank, then two per rank where the node has enough.
  std::vector<int> per_rank{1};
  if (2 * node_ranks <= visible) per_rank.push_back(2);
  if (node_ranks > visible) {
    // Ranks share a GPU: NCCL refuses that, and the library says so on every rank.
    gpu_policy policy("cuda:" + std::to_string(on_node % visible));
    auto x = gpu_dense::replicated(policy, 4, 2);
    std::vector<float> host(8, 1.0f);
    auto const what = mgpu_test::message_of<mgpu::invalid_argument>(
        [&] { mgpu::mpi::broadcast(mgpu::dense_view<float const>{4, 2, 2, host.data()}, x); });
    CHECK(contains(what, "are the same GPU"));
    WARN("skipped: " << node_ranks << " ranks on this node share " << visible
                     << " GPUs; NCCL needs one GPU per NCCL rank, so the comparison needs a GPU per rank");
    mgpu_mpi_test::nccl_gpu_case_skipped = true;
    return;
  }
  for (int n : per_rank) {
    std::string devices = "cuda:";
    for (int i = 0; i < n; ++i) devices += (i == 0 ? "" : ",") + std::to_string(on_node * n + i);
    INFO("local devices: " << devices);
    gpu_policy gp(devices);
    cpu_policy cp("cpu:" + std::to_string(n));
    auto const G = gp.device_count();
    auto const R = static_cast<std::uint64_t>(ranks);
    int const last = ranks - 1;
    std::int64_t const rows = 3 * static_cast<std::int64_t>(G) + 2;
    std::int64_t const cols = 3;
    std::uint64_t const b = static_cast<std::uint64_t>(rows * cols) * sizeof(float);
    auto const bounds = bounds_with_empty_first(rows, G);
    auto const block_bytes = [&](std::size_t g) {
      return static_cast<std::uint64_t>((bounds[g + 1] - bounds[g]) * cols) * sizeof(float);
    };

    // Host rows with a leading dimension larger than the row (read or written on roots).
    mgpu::dense_matrix<mgpu::cpu, float> host(rows, cols + 2, -7.0f);
    for (std::int64_t i = 0; i < rows; ++i) {
      for (std::int64_t j = 0; j < cols; ++j) host(i, j) = element(i, j);
    }
    mgpu::dense_view<float const> const strided{rows, cols, cols + 2, host.data()};

    // broadcast from the last rank.
    auto xg = gpu_dense::replicated(gp, rows, cols);
    auto xc = cpu_dense::replicated(cp, rows, cols);
    gp.transfers().reset();
    mgpu::mpi::broadcast(strided, xg, last);
    mgpu::mpi::broadcast(strided, xc, last);
    CHECK(same_blocks(xg, xc));
    auto counts = mgpu::mpi::sum_transfers(gp);
    CHECK(counts.total() == G * b);
    CHECK(counts.network() == (G - gp.device_count(last)) * b);  // every GPU of the other ranks
    CHECK(counts.bytes(host_of(last), static_cast<int>(gp.first_device(last))) == b);

    // scatter from rank 0, gather to the last rank.
    auto yg = gpu_dense::row_blocks(gp, rows, cols, bounds);
    auto yc = cpu_dense::row_blocks(cp, rows, cols, bounds);
    gp.transfers().reset();
    mgpu::mpi::scatter(strided, yg, 0);
    mgpu::mpi::scatter(strided, yc, 0);
    CHECK(same_blocks(yg, yc));
    std::uint64_t remote = 0;
    for (std::size_t g = gp.first_device(1); g < G; ++g) remote += block_bytes(g);
    counts = mgpu::mpi::sum_transfers(gp);
    CHECK(counts.total() == b + remote);
    CHECK(counts.network() == remote);
    CHECK(counts.bytes(host_of(0), 0) == remote + block_bytes(0));  // one upload to rank 0's first GPU

    mgpu::dense_matrix<mgpu::cpu, float> out_g(rows, cols + 1, -7.0f);
    mgpu::dense_matrix<mgpu::cpu, float> out_c(rows, cols + 1, -7.0f);
    gp.transfers().reset();
    mgpu::mpi::gather(yg, mgpu::dense_view<float>{rows, cols, cols + 1, out_g.data()}, last);
    mgpu::mpi::gather(yc, mgpu::dense_view<float>{rows, cols, cols + 1, out_c.data()}, last);
    if (rank == last) CHECK(host_block(out_g.view()) == host_block(out_c.view()));  // the ld gap included
    std::uint64_t remote_of_last = 0;
    for (std::size_t g = 0; g < gp.first_device(last); ++g) remote_of_last += block_bytes(g);
    counts = mgpu::mpi::sum_transfers(gp);
    CHECK(counts.total() == b + remote_of_last);
    CHECK(counts.network() == remote_of_last);

    // all_gather.
    auto ag = gpu_dense::replicated(gp, rows, cols);
    auto ac = cpu_dense::replicated(cp, rows, cols);
    gp.transfers().reset();
    mgpu::mpi::all_gather(yg, ag);
    mgpu::mpi::all_gather(yc, ac);
    CHECK(same_blocks(ag, ac));
    counts = mgpu::mpi::sum_transfers(gp);
    CHECK(counts.total() == (G - 1) * b);
    std::uint64_t network = 0;
    for (int r = 0; r < ranks; ++r) {
      std::uint64_t own = 0;
      for (std::size_t g = gp.first_device(r); g < gp.first_device(r + 1); ++g) own += block_bytes(g);
      network += gp.device_count(r) * (b - own);
    }
    CHECK(counts.network() == network);

    // reduce_sum to a host (roots 0 and last) and to a device (0 and G - 1).
    std::int64_t const prow = 5;
    std::int64_t const pcol = 4;
    std::uint64_t const pb = static_cast<std::uint64_t>(prow * pcol) * sizeof(float);
    auto pg = gpu_dense::replicated(gp, prow, pcol);
    auto pc = cpu_dense::replicated(cp, prow, pcol);
    fill_partials(pg, pc);
    for (int root : {0, last}) {
      mgpu::dense_matrix<mgpu::cpu, float> sum_g(prow, pcol, -1.0f);
      mgpu::dense_matrix<mgpu::cpu, float> sum_c(prow, pcol, -1.0f);
      gp.transfers().reset();
      mgpu::mpi::reduce_sum(pg, sum_g.view(), root);
      mgpu::mpi::reduce_sum(pc, sum_c.view(), root);
      if (rank == root) {
        CHECK(host_block(sum_g.view()) == host_block(sum_c.view()));
        bool serial = true;
        for (std::int64_t i = 0; i < prow; ++i) {
          for (std::int64_t j = 0; j < pcol; ++j) {
            float s = partial_value(0, i, j);
            for (std::size_t g = 1; g < G; ++g) s += partial_value(g, i, j);
            serial = serial && sum_g(i, j) == s;
          }
        }
        CHECK(serial);
      }
      counts = mgpu::mpi::sum_transfers(gp);
      CHECK(counts.total() == (G - 1) * pb + (root == last ? pb : 2 * pb));
      CHECK(counts.network() == (R - 1) * pb + (root == last ? 0 : pb));
    }
    for (std::size_t target : {G - 1, std::size_t{0}}) {
      fill_partials(pg, pc);
      gp.transfers().reset();
      mgpu::mpi::reduce_sum(pg, target);
      mgpu::mpi::reduce_sum(pc, target);
      CHECK(same_blocks(pg, pc));
      counts = mgpu::mpi::sum_transfers(gp);
      CHECK(counts.total() == (G - 1) * pb + (target == G - 1 ? 0 : pb));
    }

    // A root outside the ranks: every rank throws the same, and the next call works.
    auto const what = mgpu_test::message_of<mgpu::invalid_argument>(
        [&] { mgpu::mpi::broadcast(strided, xg, ranks); });
    CHECK(contains(what, "root rank " + std::to_string(ranks) + " is not in"));
    mgpu::mpi::all_gather(yg, ag);
    CHECK(same_blocks(ag, ac));
    CHECK(mgpu::mpi::nccl_communicator(gp, 0) != nullptr);
  }
}
