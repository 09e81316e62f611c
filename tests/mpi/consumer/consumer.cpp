// A program built against the installed mgpu::mpi (find_package(mgpu COMPONENTS mpi), or
// pkg-config mgpu-mpi) and run under mpirun: every rank holds cpu:2; a vector goes from
// rank 0 to every device, row blocks are gathered on every device, and the devices'
// partials are summed on rank 0. Prints "ok" on rank 0; exits 1 on a wrong value.
#include <cstdint>
#include <cstdio>
#include <vector>

#include <mgpu/mpi/collectives.hpp>
#include <mgpu/mpi/environment.hpp>

int main(int argc, char** argv) {
  mgpu::mpi::environment env(argc, argv);
  return mgpu::mpi::main_guard([] {
    mgpu::mpi::distributed_policy<mgpu::cpu> policy("cpu:2");
    auto const n = static_cast<std::int64_t>(policy.device_count());  // one row per device
    using dense = mgpu::mpi::distributed_dense<mgpu::cpu, double>;
    std::vector<double> host(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) host[static_cast<std::size_t>(i)] = static_cast<double>(i + 1);
    auto x = dense::replicated(policy, n, 1);
    mgpu::mpi::broadcast(host, x);
    auto y = dense::row_blocks(policy, n, 1, mgpu::even_row_bounds(n, policy.device_count()));
    for (std::size_t d = 0; d < policy.local_device_count(); ++d) {
      y.local().view(d)(0, 0) = 10.0 * static_cast<double>(policy.first_device() + d);
    }
    mgpu::mpi::all_gather(y, x);
    bool ok = true;
    for (std::size_t d = 0; d < policy.local_device_count(); ++d) {
      for (std::int64_t i = 0; i < n; ++i) ok = ok && x.local().view(d)(i, 0) == 10.0 * static_cast<double>(i);
    }
    // Sum of the devices' copies: each row i is 10·i on all n devices, so n·10·i.
    std::vector<double> sum(static_cast<std::size_t>(n));
    mgpu::mpi::reduce_sum(x, std::span<double>(sum));
    if (policy.rank() == 0) {
      for (std::int64_t i = 0; i < n; ++i) ok = ok && sum[static_cast<std::size_t>(i)] == static_cast<double>(n * 10 * i);
      if (ok) std::printf("ok: %lld devices over %d ranks\n", static_cast<long long>(n), policy.ranks());
    }
    return ok ? 0 : 1;
  });
}
