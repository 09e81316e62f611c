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
//   als_recommend --recommend-all --top-k 10 --output recs.tsv --save-model out/model
//   als_recommend --load-model out/model --recommend vim
//
// When PREFIX.users.txt and PREFIX.items.txt sit beside PREFIX.mtx (one name per line),
// results are printed by name and --recommend accepts names; otherwise row numbers.
//
// Output: one line per iteration, `iteration N: loss=L seconds=S`; with the Cholesky
// solver, the largest relative residual of the item factors' normal equations over a
// sample of items (a check that the last half-step solved its systems); then, for
// every --recommend ID, its top-k unseen items and, when ID also names an item, the k
// items whose factors are most similar to it (k = --top-k, 10 by default).
// --recommend-all writes every user's top-k unseen items to --output as
// `user<TAB>item<TAB>score` lines (names when the input has them, else 0-based rows;
// TSV escapes, or NDJSON with --output-format ndjson), best first, users in order.
// --save-factors PREFIX writes PREFIX.users.mtx and PREFIX.items.mtx (Matrix Market
// array, rows x factors). --save-model DIR (made if missing; its parent must exist) writes
// DIR/model.als (mgpu::als::save: options, factors and seen items) and, when the input
// has names, DIR/users.txt and DIR/items.txt (names files of an earlier model are removed
// otherwise); --load-model DIR reads them back instead of reading an input and fitting,
// and recommends exactly as the saved model did. All outputs are one commit
// (mgpu/io/output_file.hpp): all new, or, on any failure (a full disk, a bad path,
// SIGINT/SIGTERM/SIGHUP), none changed and no temporary left.
// Before the model is fitted: the output paths and --devices are checked first, and
// every --recommend ID is resolved once the matrix (or model) and names are read.
// On a terminal, stderr shows a progress line for the fit and for --recommend-all
// (mgpu::progress_line); elsewhere nothing is added.
// Any error ends the program with a one-line message (naming what ran out when memory
// does) and exit code 1.
//
// MPI (built with mgpu's mpi component, MGPU_ENABLE_MPI): started by mpirun / srun, the fit
// runs over the ranks (docs/distributed.md): every rank reads the interactions, keeps its
// nnz-balanced share of the users' rows and of the items' rows (mpi::als_halves) and
// mpi::als_fit solves them on its own --devices (host devices), the solved factor rows
// all-gathered after each half-step; rank 0 then holds the whole factors, which are the
// single-process fit's with either --solver, and does everything after the fit as the
// single process does (--recommend, --recommend-all, --save-factors: the same bytes).
// --save-model and --load-model are refused there (a model file records the fit's loss
// history, which is only equal to round-off). Started without a launcher, the program is
// the single-process one.
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
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <CLI/CLI.hpp>

#include <mgpu/algorithms/als.hpp>
#include <mgpu/io/matrix_market.hpp>
#include <mgpu/io/output_file.hpp>
#include <mgpu/io/progress_line.hpp>
#include <mgpu/io/text_output.hpp>
#include <mgpu/mgpu.hpp>
#ifdef MGPU_EXAMPLE_WITH_MPI
#include <mgpu/mpi/als.hpp>
#include <mgpu/mpi/environment.hpp>
#include <mgpu/mpi/policy.hpp>
#endif
#ifdef MGPU_EXAMPLE_WITH_CUDA
// The GPU backend: --devices cuda, cuda:0,1. Its kernels are instantiated in
// als_recommend_cuda.cu; this file stays host code.
#include <mgpu/backend/cuda/als.hpp>
#include <mgpu/backend/cuda/knn.hpp>
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
  std::string save_model;
  std::string load_model;
  std::vector<std::string> recommend;
  bool recommend_all = false;
  std::string output;
  std::string output_format = "tsv";
  int top = 10;
  mgpu::als_options als;
};

// What the program is doing, for the message when memory runs out.
char const* stage = "starting";

// Under an MPI launcher: whether this process is rank 0 (the one that writes and prints
// after the fit), and the fit over the ranks.
bool distributed = false;
bool root = true;

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

/// Writes one name per line.
void write_names(std::ostream& out, std::vector<std::string> const& names) {
  for (auto const& n : names) out << n << '\n';
}

/// --recommend-all's rows: user, item, score; names when there are names, else rows.
void write_recommendations(std::ostream& out, mgpu::text_format format, mgpu::topk_result<float> const& recs,
                           std::vector<std::string> const& user_names, std::vector<std::string> const& item_names) {
  // Formatted on the host's threads, written in order (mgpu/io/text_output.hpp).
  mgpu::neighbor_fields const names{"user", "item", "score"};
  if (user_names.empty() || item_names.empty()) {
    mgpu::write_neighbor_rows(out, format, recs, names);
  } else {
    mgpu::write_neighbor_rows(out, format, recs, user_names, item_names, names);
  }
}

void print_matches(mgpu::topk_result<float> const& found, std::vector<std::string> const& item_names) {
  auto const items = found.neighbors(0);
  auto const scores = found.scores_of(0);
  for (std::size_t j = 0; j < items.size(); ++j) {
    std::printf("  %-40s %.4f\n", name_of(item_names, items[j]).c_str(), static_cast<double>(scores[j]));
  }
}

int run(settings& s) {
  auto const format = mgpu::parse_text_format(s.output_format);
  if (distributed && (!s.save_model.empty() || !s.load_model.empty())) {
    throw std::runtime_error(
        "under MPI, the fit runs over the ranks without --save-model or --load-model (docs/distributed.md)");
  }
  if (!root) {  // the other ranks take part in the fit only
    s.save_factors.clear();
    s.output.clear();
    s.recommend_all = false;
    s.recommend.clear();
  }
  // The outputs are checked before the long work and written as one commit.
  mgpu::output_set outs;
  std::optional<mgpu::output_set::output_id> users_out, items_out, recs_out, model_out, user_names_out,
      item_names_out;
  if (!s.save_factors.empty()) {
    users_out = outs.add(s.save_factors + ".users.mtx", "--save-factors");
    items_out = outs.add(s.save_factors + ".items.mtx", "--save-factors");
  }
  if (!s.output.empty()) recs_out = outs.add(s.output, "--output");
  if (!s.save_model.empty()) {
    fs::path const dir = s.save_model;
    std::error_code ec;
    if (!fs::is_directory(dir) && !fs::create_directory(dir, ec) && ec) {  // its parent must exist
      throw std::runtime_error("--save-model: cannot make the directory '" + s.save_model + "': " + ec.message());
    }
    model_out = outs.add(dir / "model.als", "--save-model");
  }
  outs.check();
  bool const loading = !s.load_model.empty();
  if (loading && !fs::exists(fs::path(s.load_model) / "model.als")) {
    throw std::runtime_error(s.load_model + ": no model.als in it (write one with --save-model)");
  }
  if (!loading && !fs::exists(s.input)) {
    throw std::runtime_error(s.input.string() +
                             ": no such file (for the default input run: python3 "
                             "examples/als_recommend/make_package_matrix.py --output out/debian-packages)");
  }
  return mgpu::with_policy(s.devices, [&](auto const& policy) {
    std::optional<interactions_t> r;
    std::optional<mgpu::als> loaded;
    std::vector<std::string> user_names, item_names;
    std::int64_t users = 0, items = 0;
    if (loading) {
      stage = "reading the model";
      fs::path const dir = s.load_model;
      loaded.emplace(mgpu::als::load(dir / "model.als"));
      users = loaded->user_factors().rows();
      items = loaded->item_factors().rows();
      user_names = read_names(dir / "users.txt", users);
      item_names = read_names(dir / "items.txt", items);
    } else {
      stage = "reading the interactions";
      r.emplace(mgpu::read_matrix_market<float, std::int32_t>(s.input));
      auto stem = s.input;
      stem.replace_extension();
      users = r->rows();
      items = r->cols();
      user_names = read_names(stem.string() + ".users.txt", users);
      item_names = read_names(stem.string() + ".items.txt", items);
    }
    if (model_out) {
      // The names files, when there are names, join the commit (checked before the fit).
      fs::path const dir = s.save_model;
      if (!user_names.empty()) user_names_out = outs.add(dir / "users.txt", "--save-model");
      if (!item_names.empty()) item_names_out = outs.add(dir / "items.txt", "--save-model");
      outs.check();
    }
    std::vector<recommend_target> targets;
    for (auto const& id : s.recommend) {
      auto& t = targets.emplace_back(recommend_target{id, find_row(user_names, users, id),
                                                      find_row(item_names, items, id)});
      if (!t.user && !t.item) {
        throw std::runtime_error("--recommend " + id + ": no such user or item (" + std::to_string(users) +
                                 " users, " + std::to_string(items) + " items)");
      }
    }

    mgpu::als model;
    if (loaded) {
      model = std::move(*loaded);
      std::printf("%s: a model of %lld users x %lld items, %lld factors\n", s.load_model.c_str(),
                  static_cast<long long>(users), static_cast<long long>(items),
                  static_cast<long long>(model.options().factors));
    } else {
      if (root) std::printf("%s: %d users x %d items, %d entries\n", s.input.c_str(), r->rows(), r->cols(), r->nnz());
      s.als.model = s.model == "weighted" ? mgpu::als_model::weighted : mgpu::als_model::implicit;
      s.als.solver = s.solver == "cg" ? mgpu::als_solver::conjugate_gradient : mgpu::als_solver::cholesky;
      s.als.on_iteration = [](int it, double loss, double seconds) {
        std::printf("iteration %d: loss=%.9g seconds=%.3f\n", it, loss, seconds);
        std::fflush(stdout);
      };
      mgpu::progress_line const fit_progress("ALS fit", "iterations");
      s.als.progress = fit_progress.callback();
      stage = "fitting the model";
      model = mgpu::als(s.als);
#ifdef MGPU_EXAMPLE_WITH_MPI
      if (distributed) {
        // The fit over the ranks; then a model of its factors (0 iterations from them) serves
        // as the single-process one would. Every rank prints its own iteration lines only on
        // rank 0.
        if constexpr (std::is_same_v<typename std::decay_t<decltype(policy)>::kind, mgpu::cpu>) {
          mgpu::mpi::distributed_policy<mgpu::cpu> const ranks(policy);
          if (!root) {
            s.als.on_iteration = {};
            s.als.progress = {};
          }
          auto const halves = mgpu::mpi::als_halves(ranks, r->view());
          auto fitted = mgpu::mpi::als_fit(ranks, halves.users, halves.items, s.als);
          if (!root) return 0;
          auto serving = s.als;
          serving.iterations = 0;
          serving.on_iteration = {};
          serving.progress = {};
          model = mgpu::als(serving);
          model.fit(policy, *r, std::move(fitted.user_factors), std::move(fitted.item_factors));
        } else {
          throw std::runtime_error("under MPI, --devices must name host devices (cpu or cpu:N)");
        }
      } else {
        model.fit(policy, *r);
      }
#else
      model.fit(policy, *r);
#endif
      if (s.als.solver == mgpu::als_solver::cholesky && r->nnz() > 0) {
        stage = "checking the residuals";
        std::printf("normal equations of the item factors: max relative residual %.3g over a sample of items\n",
                    item_residual(*r, model, 500));
      }
    }

    mgpu::topk_result<float> all;
    if (s.recommend_all) {
      stage = "recommending for every user";
      mgpu::progress_line const progress("recommend", "users");
      all = model.recommend(policy, {}, s.top, {.progress = progress.callback()});
    }
    if (users_out || recs_out || model_out) {
      stage = "writing the outputs";
      if (users_out) {
        outs.set_writer(*users_out, [&](std::ostream& out) { mgpu::write_matrix_market(out, model.user_factors()); });
        outs.set_writer(*items_out, [&](std::ostream& out) { mgpu::write_matrix_market(out, model.item_factors()); });
      }
      if (recs_out) {
        outs.set_writer(*recs_out, [&](std::ostream& out) {
          write_recommendations(out, format, all, user_names, item_names);
        });
      }
      if (model_out) outs.set_writer(*model_out, [&](std::ostream& out) { model.save(out); });
      if (user_names_out) outs.set_writer(*user_names_out, [&](std::ostream& out) { write_names(out, user_names); });
      if (item_names_out) outs.set_writer(*item_names_out, [&](std::ostream& out) { write_names(out, item_names); });
      outs.commit();
      if (model_out) {
        // Names left by an earlier model in DIR would name this one's rows wrongly.
        fs::path const dir = s.save_model;
        if (!user_names_out) fs::remove(dir / "users.txt");
        if (!item_names_out) fs::remove(dir / "items.txt");
      }
      if (users_out) {
        std::printf("wrote %s.users.mtx and %s.items.mtx\n", s.save_factors.c_str(), s.save_factors.c_str());
      }
      if (recs_out) {
        std::printf("wrote %s: %lld recommendations for %lld users\n", s.output.c_str(),
                    static_cast<long long>(all.size()), static_cast<long long>(all.rows()));
      }
      if (model_out) std::printf("wrote the model to %s\n", s.save_model.c_str());
    }
    stage = "recommending";
    for (auto const& t : targets) {
      if (t.user) {
        std::printf("recommended for %s:\n", t.id.c_str());
        print_matches(model.recommend(policy, std::span<std::int64_t const>(&*t.user, 1), s.top), item_names);
      }
      if (t.item) {
        std::printf("items similar to %s:\n", t.id.c_str());
        print_matches(model.similar_items(policy, std::span<std::int64_t const>(&*t.item, 1), s.top), item_names);
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
  app.add_option("--save-model", s.save_model, "write the fitted model (and names) into directory DIR");
  auto* load = app.add_option("--load-model", s.load_model,
                              "recommend from the model saved in DIR instead of reading --input and fitting");
  app.add_option("--recommend", s.recommend, "users (names or rows) to recommend for");
  app.add_option("--top-k", s.top, "recommendations and similar items per query")
      ->check(integer_in(1, 100000))
      ->capture_default_str();
  auto* all = app.add_flag("--recommend-all", s.recommend_all, "every user's top-k unseen items into --output");
  auto* output = app.add_option("--output", s.output, "where --recommend-all writes user<TAB>item<TAB>score rows");
  app.add_option("--output-format", s.output_format, "tsv or ndjson")
      ->check(CLI::IsMember({"tsv", "ndjson"}))
      ->capture_default_str();
  all->needs(output);
  output->needs(all);
  for (auto const* fit_option : {"--model", "--factors", "--iterations", "--regularization", "--alpha",
                                 "--unobserved-weight", "--solver", "--cg-steps", "--seed", "--input"}) {
    load->excludes(app.get_option(fit_option));
  }
  CLI11_PARSE(app, argc, argv);
  mgpu::remove_temporaries_on_signal();
#ifdef MGPU_EXAMPLE_WITH_MPI
  if (mgpu::mpi::launched_by_mpi()) {
    mgpu::mpi::environment env(argc, argv);
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    distributed = true;
    root = rank == 0;
    return mgpu::mpi::main_guard([&] { return run(s); });
  }
#endif
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
