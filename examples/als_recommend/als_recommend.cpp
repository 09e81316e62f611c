// als_recommend — fit an implicit- or weighted-feedback ALS model and recommend.
//
// Input: an interaction matrix (Matrix Market coordinate; rows = users, columns =
// items, values = counts or ratings). By default, a real one built from the Debian
// package lists apt already has: packages x the packages and debtags they name, made by
// make_package_matrix.py beside this file, with the names kept so that --recommend
// takes package names:
//
//   python3 examples/als_recommend/make_package_matrix.py --output out/debian-packages
//   als_recommend --solver cg --recommend vim python3-numpy
//
// When PREFIX.users.txt and PREFIX.items.txt sit beside PREFIX.mtx (one name per line),
// results are printed by name and --recommend accepts names; otherwise row numbers.
//
// Output: one line per iteration, `iteration N: loss=L seconds=S`; with the Cholesky
// solver, the largest relative residual of the item factors' normal equations over a
// sample of items (a check that the last half-step solved its systems); then, for
// every --recommend ID, its top-10 unseen items and, when ID also names an item, the 10
// items whose factors are most similar to it. --save-factors PREFIX writes
// PREFIX.users.mtx and PREFIX.items.mtx (Matrix Market array, rows x factors) as one
// commit (mgpu/io/output_file.hpp): both new, or, on any failure (a full disk, a bad
// path, SIGINT/SIGTERM/SIGHUP), neither changed and no temporary left.
// Before the model is fitted: the --save-factors paths and --devices are checked first,
// and every --recommend ID is resolved once the matrix and names are read.
// Any error ends the program with a one-line message (naming what ran out when memory
// does) and exit code 1.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <new>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <CLI/CLI.hpp>

#include <mgpu/algorithms/als.hpp>
#include <mgpu/io/matrix_market.hpp>
#include <mgpu/io/output_file.hpp>
#include <mgpu/mgpu.hpp>
#ifdef MGPU_EXAMPLE_WITH_CUDA
// The GPU backend: --devices cuda, cuda:0,1. Its kernels are instantiated in
// als_recommend_cuda.cu; this file stays host code.
#include <mgpu/backend/cuda/als.hpp>
#include <mgpu/cuda.hpp>
#endif

namespace {

namespace fs = std::filesystem;
using interactions_t = mgpu::csr_matrix<mgpu::cpu, float, std::int32_t>;

struct settings {
  fs::path input = "out/debian-packages.mtx";
  std::string model = "implicit";
  std::string solver = "cholesky";
  std::string devices = "cpu";
  std::string save_factors;
  std::vector<std::string> recommend;
  int top = 10;
  mgpu::als_options als;
};

// What the program is doing, for the message when memory runs out.
char const* stage = "starting";

// A CLI11 check for an integer in [lo, hi] whose message shows the bounds, not a
// 309-digit numeric limit: "--factors: must be an integer in [1, 4096], got 0".
CLI::Validator integer_in(long long lo, long long hi) {
  std::string const range = "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  return CLI::Validator(
      [lo, hi, range](std::string& text) -> std::string {
        long long v = 0;
        auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec == std::errc() && end == text.data() + text.size() && v >= lo && v <= hi) return {};
        return "must be an integer in " + range + ", got " + text.substr(0, 40);
      },
      "INT in " + range);
}

/// One name per line, or nothing when the file does not exist.
std::vector<std::string> read_names(fs::path const& path, std::int64_t expected) {
  std::vector<std::string> names;
  if (!fs::exists(path)) return names;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) names.push_back(line);
  if (static_cast<std::int64_t>(names.size()) != expected) {
    throw std::runtime_error(path.string() + ": " + std::to_string(names.size()) + " names for " +
                             std::to_string(expected) + " rows of the matrix");
  }
  return names;
}

std::string name_of(std::vector<std::string> const& names, std::int64_t i) {
  return names.empty() ? std::to_string(i) : names[static_cast<std::size_t>(i)];
}

/// The row an ID names: a name from the list, else a row number; nullopt if neither.
std::optional<std::int64_t> find_row(std::vector<std::string> const& names, std::int64_t rows,
                                     std::string const& id) {
  if (!names.empty()) {
    auto const it = std::find(names.begin(), names.end(), id);
    if (it != names.end()) return it - names.begin();
  }
  try {
    std::size_t used = 0;
    long long const v = std::stoll(id, &used);
    if (used == id.size() && v >= 0 && v < rows) return v;
  } catch (std::exception const&) {
  }
  return std::nullopt;
}

/// Largest ‖A y_i − b_i‖ / ‖b_i‖ over up to `samples` items spread over the item range,
/// with the item normal equations of mgpu::als formed from scratch in double.
double item_residual(interactions_t const& r, mgpu::als const& model, std::int64_t samples) {
  auto const& o = model.options();
  auto const& x = model.user_factors();
  auto const& y = model.item_factors();
  auto const f = static_cast<std::size_t>(o.factors);
  auto const rt = mgpu::transpose(r);
  std::vector<double> gram(f * f, 0.0);
  for (std::int64_t u = 0; u < x.rows(); ++u)
    for (std::size_t j = 0; j < f; ++j)
      for (std::size_t k = 0; k < f; ++k)
        gram[j * f + k] += static_cast<double>(x(u, static_cast<std::int64_t>(j))) * x(u, static_cast<std::int64_t>(k));
  double worst = 0;
  auto const items = static_cast<std::int64_t>(rt.rows());
  auto const stride = std::max<std::int64_t>(1, items / std::max<std::int64_t>(samples, 1));
  std::vector<double> a(f * f), b(f);
  for (std::int64_t i = 0; i < items; i += stride) {
    auto const v = rt.view();
    if (v.row_nnz(static_cast<std::int32_t>(i)) == 0) continue;
    for (std::size_t e = 0; e < f * f; ++e) a[e] = o.unobserved_weight * gram[e];
    for (std::size_t j = 0; j < f; ++j) a[j * f + j] += o.regularization;
    std::fill(b.begin(), b.end(), 0.0);
    for (auto p = v.row_begin(static_cast<std::int32_t>(i)); p < v.row_end(static_cast<std::int32_t>(i)); ++p) {
      double const rv = v.values[p];
      double const w = 1 + o.alpha * rv;
      double const t = o.model == mgpu::als_model::weighted ? rv : 1.0;
      auto const u = static_cast<std::int64_t>(v.col_indices[p]);
      for (std::size_t j = 0; j < f; ++j) {
        double const xj = x(u, static_cast<std::int64_t>(j));
        b[j] += w * t * xj;
        for (std::size_t k = 0; k < f; ++k) a[j * f + k] += (w - o.unobserved_weight) * xj * x(u, static_cast<std::int64_t>(k));
      }
    }
    double res = 0, nb = 0;
    for (std::size_t j = 0; j < f; ++j) {
      double ay = 0;
      for (std::size_t k = 0; k < f; ++k) ay += a[j * f + k] * y(i, static_cast<std::int64_t>(k));
      res += (ay - b[j]) * (ay - b[j]);
      nb += b[j] * b[j];
    }
    if (nb > 0) worst = std::max(worst, std::sqrt(res / nb));
  }
  return worst;
}

/// What one --recommend ID names: a user (row), an item (column), or both.
struct recommend_target {
  std::string id;
  std::optional<std::int64_t> user, item;
};

int run(settings& s) {
  // The outputs are checked before the long work and written as one commit.
  mgpu::output_set outs;
  std::optional<mgpu::output_set::output_id> users_out, items_out;
  if (!s.save_factors.empty()) {
    users_out = outs.add(s.save_factors + ".users.mtx", "--save-factors");
    items_out = outs.add(s.save_factors + ".items.mtx", "--save-factors");
  }
  outs.check();
  if (!fs::exists(s.input)) {
    throw std::runtime_error(s.input.string() +
                             ": no such file (for the default input run: python3 "
                             "examples/als_recommend/make_package_matrix.py --output out/debian-packages)");
  }
  return mgpu::with_policy(s.devices, [&](auto const& policy) {
    stage = "reading the interactions";
    auto const r = mgpu::read_matrix_market<float, std::int32_t>(s.input);
    auto stem = s.input;
    stem.replace_extension();
    auto const user_names = read_names(stem.string() + ".users.txt", r.rows());
    auto const item_names = read_names(stem.string() + ".items.txt", r.cols());
    std::vector<recommend_target> targets;
    for (auto const& id : s.recommend) {
      auto& t = targets.emplace_back(recommend_target{id, find_row(user_names, r.rows(), id),
                                                      find_row(item_names, r.cols(), id)});
      if (!t.user && !t.item) {
        throw std::runtime_error("--recommend " + id + ": no such user or item (" + std::to_string(r.rows()) +
                                 " users, " + std::to_string(r.cols()) + " items)");
      }
    }
    std::printf("%s: %d users x %d items, %d entries\n", s.input.c_str(), r.rows(), r.cols(), r.nnz());

    s.als.model = s.model == "weighted" ? mgpu::als_model::weighted : mgpu::als_model::implicit;
    s.als.solver = s.solver == "cg" ? mgpu::als_solver::conjugate_gradient : mgpu::als_solver::cholesky;
    s.als.on_iteration = [](int it, double loss, double seconds) {
      std::printf("iteration %d: loss=%.9g seconds=%.3f\n", it, loss, seconds);
      std::fflush(stdout);
    };
    stage = "fitting the model";
    mgpu::als model(s.als);
    model.fit(policy, r);

    if (s.als.solver == mgpu::als_solver::cholesky && r.nnz() > 0) {
      stage = "checking the residuals";
      std::printf("normal equations of the item factors: max relative residual %.3g over a sample of items\n",
                  item_residual(r, model, 500));
    }
    if (users_out) {
      stage = "writing the factors";
      outs.set_writer(*users_out, [&](std::ostream& out) { mgpu::write_matrix_market(out, model.user_factors()); });
      outs.set_writer(*items_out, [&](std::ostream& out) { mgpu::write_matrix_market(out, model.item_factors()); });
      outs.commit();
      std::printf("wrote %s.users.mtx and %s.items.mtx\n", s.save_factors.c_str(), s.save_factors.c_str());
    }
    stage = "recommending";
    for (auto const& t : targets) {
      if (t.user) {
        std::printf("recommended for %s:\n", t.id.c_str());
        for (auto const& m : model.recommend(*t.user, s.top)) {
          std::printf("  %-40s %.4f\n", name_of(item_names, m.index).c_str(), static_cast<double>(m.score));
        }
      }
      if (t.item) {
        std::printf("items similar to %s:\n", t.id.c_str());
        for (auto const& m : model.similar_items(*t.item, s.top)) {
          std::printf("  %-40s %.4f\n", name_of(item_names, m.index).c_str(), static_cast<double>(m.score));
        }
      }
    }
    return 0;
  });
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  CLI::App app{"Implicit / weighted ALS recommendations (mgpu)"};
  app.add_option("--input", s.input, "interactions, Matrix Market coordinate: users x items")
      ->capture_default_str();
  app.add_option("--model", s.model, "implicit: targets 1; weighted: targets r")
      ->check(CLI::IsMember({"implicit", "weighted"}))
      ->capture_default_str();
  app.add_option("--factors", s.als.factors, "factors per user and item")->check(integer_in(1, 4096))->capture_default_str();
  app.add_option("--iterations", s.als.iterations, "ALS iterations")->check(integer_in(0, 100000))->capture_default_str();
  app.add_option("--regularization", s.als.regularization, "lambda, added to every diagonal")->capture_default_str();
  app.add_option("--alpha", s.als.alpha, "observed weight 1 + alpha * r")->capture_default_str();
  app.add_option("--unobserved-weight", s.als.unobserved_weight, "weight w0 of unobserved pairs")->capture_default_str();
  app.add_option("--solver", s.solver, "cholesky (exact) or cg (conjugate gradient)")
      ->check(CLI::IsMember({"cholesky", "cg"}))
      ->capture_default_str();
  app.add_option("--cg-steps", s.als.cg_steps, "conjugate-gradient steps per row")
      ->check(integer_in(1, 10000))
      ->capture_default_str();
  app.add_option("--devices", s.devices, "cpu, cpu:N, cuda, cuda:0,1,...")
      ->envname("MGPU_DEVICES")
      ->capture_default_str();
  app.add_option("--seed", s.als.seed, "seed of the initial factors")->capture_default_str();
  app.add_option("--save-factors", s.save_factors, "write PREFIX.users.mtx and PREFIX.items.mtx");
  app.add_option("--recommend", s.recommend, "users (names or rows) to recommend for");
  CLI11_PARSE(app, argc, argv);
  mgpu::remove_temporaries_on_signal();
  try {
    return run(s);
  } catch (std::bad_alloc const&) {
    std::fprintf(stderr, "als_recommend: error: out of host memory while %s\n", stage);
    return 1;
  } catch (mgpu::out_of_memory const& e) {
    std::fprintf(stderr, "als_recommend: error: out of memory while %s: %s\n", stage, e.what());
    return 1;
  } catch (std::exception const& e) {
    std::fprintf(stderr, "als_recommend: error: %s\n", e.what());
    return 1;
  }
}
