// recommend_all — top-k recommendations for every user of a synthetic MovieLens-20M-shaped
// matrix (make_interactions.hpp), seen items excluded, in users per second; exports the
// factors, the interactions and the result as .npy files so that compare_implicit.py can
// time the `implicit` library's recommend on the very same factors and check the lists.
//
//   recommend_all [--devices cpu,cpu:2] [--factors 64] [--k 10] [--repeat 3] [--scale 1]
//                 [--export DIR]
//
// The model is fitted with 3 conjugate-gradient iterations (what the factors are does not
// matter for the timing, only their shape). Each repetition times one
// `als::recommend(policy, {}, k)` call (all users, fitted R's items excluded) on each
// device string in turn; prints per device the median wall seconds, the median process
// CPU seconds (all threads; less disturbed by other load on a shared machine) and users
// per (wall) second.
// --export writes DIR/user_factors.npy (users x f float32), item_factors.npy,
// indptr.npy, indices.npy (the CSR interactions, int64) and, for the first device string,
// ids.npy (users x k int64, -1 padded) and scores.npy (float32, -inf padded).
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include <mgpu/algorithms/als.hpp>

#include "make_interactions.hpp"

namespace {

/// Writes an array as a NumPy .npy file (format version 1.0, little-endian, C order).
template <class T>
void write_npy(std::filesystem::path const& path, T const* data, std::vector<std::int64_t> const& shape) {
  char const* descr = std::is_same_v<T, float> ? "<f4" : "<i8";
  std::ostringstream dims;
  std::int64_t count = 1;
  for (auto d : shape) {
    dims << d << ", ";
    count *= d;
  }
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (" + dims.str() + "), }";
  // Magic (6) + version (2) + length (2) + header, padded with spaces to a multiple of 64,
  // ending with a newline.
  header.append(63 - (10 + header.size()) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  auto const length = static_cast<std::uint16_t>(header.size());
  out.write(reinterpret_cast<char const*>(&length), 2);
  out << header;
  out.write(reinterpret_cast<char const*>(data), static_cast<std::streamsize>(count * static_cast<std::int64_t>(sizeof(T))));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::vector<std::string> split(std::string const& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, ',');) out.push_back(part);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string devices = "cpu,cpu:2";
  std::int64_t factors = 64, k = 10;
  int repeat = 3;
  double scale = 1.0;
  std::filesystem::path export_dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string const flag = argv[i], value = argv[i + 1];
    if (flag == "--devices") devices = value;
    else if (flag == "--factors") factors = std::stoll(value);
    else if (flag == "--k") k = std::stoll(value);
    else if (flag == "--repeat") repeat = std::stoi(value);
    else if (flag == "--scale") scale = std::stod(value);
    else if (flag == "--export") export_dir = value;
    else {
      std::fprintf(stderr, "recommend_all: unknown option %s\n", flag.c_str());
      return 2;
    }
  }
  try {
    auto const r = mgpu_bench::make_interactions(mgpu_bench::movielens_20m, scale);
    std::int64_t most = 0;
    for (std::int32_t u = 0; u < r.rows(); ++u) most = std::max<std::int64_t>(most, r.view().row_nnz(u));
    std::printf("interactions: %d users x %d items, %d entries, at most %lld per user\n", r.rows(), r.cols(), r.nnz(),
                static_cast<long long>(most));
    mgpu::als model({.factors = factors, .iterations = 3, .solver = mgpu::als_solver::conjugate_gradient,
                     .compute_loss = false});
    model.fit(mgpu::execution_policy<mgpu::cpu>("cpu"), r);
    auto const names = split(devices);
    std::vector<std::vector<double>> seconds(names.size()), cpu(names.size());
    mgpu::topk_result<float> first;
    for (int rep = 0; rep < repeat; ++rep) {
      for (std::size_t d = 0; d < names.size(); ++d) {
        mgpu::execution_policy<mgpu::cpu> const policy(names[d]);
        auto const start = std::chrono::steady_clock::now();
        double const cpu_start = process_cpu_seconds();
        auto result = model.recommend(policy, {}, k);
        seconds[d].push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        cpu[d].push_back(process_cpu_seconds() - cpu_start);
        if (rep == 0 && d == 0) first = std::move(result);
      }
    }
    for (std::size_t d = 0; d < names.size(); ++d) {
      double const wall = median(seconds[d]);
      std::printf("mgpu recommend-all devices=%s k=%lld: median %.3f s wall, %.3f s cpu over %d runs, %.0f users/s "
                  "(wall runs:",
                  names[d].c_str(), static_cast<long long>(k), wall, median(cpu[d]), repeat,
                  static_cast<double>(r.rows()) / wall);
      for (double v : seconds[d]) std::printf(" %.3f", v);
      std::printf(")\n");
    }
    if (!export_dir.empty()) {
      std::filesystem::create_directories(export_dir);
      auto const& x = model.user_factors();
      auto const& y = model.item_factors();
      write_npy(export_dir / "user_factors.npy", x.data(), {x.rows(), x.cols()});
      write_npy(export_dir / "item_factors.npy", y.data(), {y.rows(), y.cols()});
      auto const v = r.view();
      std::vector<std::int64_t> indptr(v.row_offsets, v.row_offsets + r.rows() + 1);
      std::vector<std::int64_t> indices(v.col_indices, v.col_indices + r.nnz());
      write_npy(export_dir / "indptr.npy", indptr.data(), {static_cast<std::int64_t>(indptr.size())});
      write_npy(export_dir / "indices.npy", indices.data(), {static_cast<std::int64_t>(indices.size())});
      auto const padded = first.padded();
      write_npy(export_dir / "ids.npy", padded.ids.data(), {padded.ids.rows(), padded.ids.cols()});
      write_npy(export_dir / "scores.npy", padded.scores.data(), {padded.scores.rows(), padded.scores.cols()});
      std::printf("exported factors, interactions and recommendations to %s\n", export_dir.c_str());
    }
    return 0;
  } catch (std::exception const& e) {
    std::fprintf(stderr, "recommend_all: error: %s\n", e.what());
    return 1;
  }
}
