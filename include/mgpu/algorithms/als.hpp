// mgpu/algorithms/als.hpp — alternating least squares for implicit and weighted
// feedback, on every policy.
//
// Model. From an interaction matrix R (users × items), find user factors X and item
// factors Y (f columns each) minimising
//
//   L = Σ_{u,i} w_ui (t_ui − x_u·y_i)² + λ (Σ_u ‖x_u‖² + Σ_i ‖y_i‖²)
//
// over ALL pairs, where for an observed entry (r_ui stored in R) w_ui = 1 + α·r_ui and
// t_ui = 1 (`als_model::implicit`, Hu, Koren & Volinsky 2008, "Collaborative filtering
// for implicit feedback datasets") or t_ui = r_ui (`als_model::weighted`), and for an
// unobserved pair w_ui = w0 (the unobserved weight) and t_ui = 0. λ is added to the
// diagonal as is (not scaled by row counts). Each iteration solves every user with Y
// fixed, then every item with X fixed; row u's normal equations are
//
//   (w0·YᵀY + Σ_{i∈obs(u)} (w_ui − w0) y_i y_iᵀ + λI) x_u = Σ_{i∈obs(u)} w_ui t_ui y_i.
//
// With w0 = 1 and the implicit model this is exactly the `implicit` library's
// AlternatingLeastSquares (its `regularization` is our λ, its `alpha` our α).
//
// Allowed parameters (what keeps every system symmetric positive semi-definite): λ ≥ 0,
// w0 ≥ 0, any finite α such that every observed weight 1 + α·r_ui ≥ 0. λ > 0 makes
// every system positive definite; with λ = 0 a rank-deficient row raises
// numerical_error naming it. Stored zeros in R count as observed with r = 0.
//
// Solvers. `cholesky` forms each system in double (the shared w0·YᵀY + λI plus rank-k
// updates), factors and solves it (LAPACK potrf/potrs per row on host devices,
// cuSOLVER potrfBatched/potrsBatched on GPUs) and stores the result in float: each
// half-step is exact, so L never increases. `conjugate_gradient` runs `cg_steps` CG
// steps per row in float from the previous factors without forming the system
// (Takács, Pilászy & Tikk 2011, as in `implicit`): much cheaper, approximate.
//
// Devices. Users (and items) are split into nnz-balanced row blocks, one per device
// of the policy (partition_rows_by_nnz). Both sides' factors stay on the devices for the
// whole fit as distributed_dense: each side in those row blocks, plus a replicated copy
// on every device. A half-step has every device compute the fixed side's Gram matrix from
// its own copy (double, syrk; redundant, but it moves nothing) and solve its block, then
// all_gathers the solved blocks into every device's copy: the half-step's only transfer
// (execution/collectives.hpp). The initial factors are scattered (and the items
// broadcast) once, and the blocks gathered into user_factors()/item_factors() once at
// the end. Each row's solve and every Gram matrix are independent of the partition, so
// the factors for `cpu:3` are bitwise those for `cpu`.
//
// Initial factors: uniform in [0, 0.01) from a hash of (seed, side, row, column), as
// `implicit` scales its random start, except that users and items without any entry
// start (and stay) at zero. They never depend on the partition either.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include <omp.h>

#include "mgpu/algorithms/detail/als_leaf.hpp"
#include "mgpu/backend/cpu/als.hpp"
#include "mgpu/backend/cpu/blas.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/dense/distributed_dense.hpp"
#include "mgpu/execution/collectives.hpp"
#include "mgpu/detail/topk_heap.hpp"
#include "mgpu/execution/fork_join.hpp"
#include "mgpu/execution/policy.hpp"
#include "mgpu/sparse/csr_matrix.hpp"
#include "mgpu/sparse/partition.hpp"
#include "mgpu/sparse/transpose.hpp"

namespace mgpu {

/// Options of mgpu::als (defaults as in the `implicit` library, 64 factors).
struct als_options {
  /// Factors per user and item (f), >= 1. No fixed upper bound: the f x f systems (8 f²
  /// bytes each, several per fit and one per solver thread) make memory the limit, and
  /// fit checks it before allocating (out_of_memory naming the bytes).
  std::int64_t factors = 64;
  /// Iterations (each solves all users, then all items), >= 0.
  int iterations = 15;
  /// λ, added to every system's diagonal; >= 0.
  double regularization = 0.01;
  /// α in the observed weight 1 + α·r; 1 + α·r must be >= 0 for every entry.
  double alpha = 1.0;
  /// w0, the weight of every unobserved pair; >= 0.
  double unobserved_weight = 1.0;
  als_model model = als_model::implicit;
  als_solver solver = als_solver::cholesky;
  /// Conjugate-gradient steps per row and half-step (solver conjugate_gradient), >= 1.
  int cg_steps = 3;
  /// Seed of the initial factors.
  std::uint64_t seed = 42;
  /// Compute the objective after every iteration (an extra O(nnz f + (users + items) f²)).
  bool compute_loss = true;
  /// Called after every iteration with (iteration, 1-based; loss, NaN when not
  /// computed; seconds of the two half-steps, the loss excluded).
  std::function<void(int, double, double)> on_iteration{};
};

/// One recommendation or neighbour: a row index and its score.
struct als_match {
  std::int64_t index = 0;
  float score = 0;
};

namespace detail {

/// FᵀF (f x f, full symmetric) in double: syrk over blocks of rows converted to double.
inline std::vector<double> als_gram(dense_view<float const> a) {
  auto const f = a.cols;
  auto const fs = static_cast<std::size_t>(f);
  std::vector<double> g(fs * fs, 0.0);
  constexpr std::int64_t rows_per_block = 4096;
  std::vector<double> block(static_cast<std::size_t>(std::min<std::int64_t>(a.rows, rows_per_block)) * fs);
  for (std::int64_t r0 = 0; r0 < a.rows; r0 += rows_per_block) {
    auto const n = std::min(rows_per_block, a.rows - r0);
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < n; ++r) {
      auto const src = a.row(r0 + r);
      std::copy(src.begin(), src.end(), block.begin() + r * f);
    }
    backend::cpu::blas::syrk_at_a(f, n, 1.0, block.data(), f, 1.0, g.data(), f);
  }
  for (std::size_t i = 0; i < fs; ++i) {
    for (std::size_t j = 0; j < i; ++j) g[i * fs + j] = g[j * fs + i];
  }
  return g;
}

/// Host devices: the kernels of backend/cpu/als.hpp on the device's blocks of the
/// resident factors (host memory first touched by the device's worker).
template <>
struct als_leaf<cpu> {
  template <class T, class I>
  struct block {
    csr_view<T, I> rows;
    I first = 0;
    I last = 0;
  };
  /// B in double (Cholesky) and in float (CG).
  struct system {
    std::vector<double> base;
    std::vector<float> base_single;
  };

  template <class T, class I>
  static block<T, I> make_block(device_context<cpu>&, csr_view<T, I> m, I first, I last) {
    return {m, first, last};
  }

  static constexpr bool host_memory = true;

  /// The Gram matrix on the device's worker (its share of the threads) from its own copy
  /// of F; every device runs the same operations on the same values.
  static void prepare(device_context<cpu>&, system& s, dense_view<float const> fixed, double unobserved_weight,
                      double regularization) {
    s.base = als_gram(fixed);
    auto const fs = static_cast<std::size_t>(fixed.cols);
    for (auto& v : s.base) v *= unobserved_weight;
    for (std::size_t j = 0; j < fs; ++j) s.base[j * fs + j] += regularization;
    s.base_single.assign(s.base.begin(), s.base.end());
  }

  template <class T, class I>
  static void solve(device_context<cpu>&, block<T, I> const& b, dense_view<float const> fixed, system const& s,
                    dense_view<float> out, als_step const& step) {
    if (step.solver == als_solver::cholesky) {
      backend::cpu::als_solve_cholesky(b.rows, b.first, b.last, fixed, s.base, out, step);
    } else {
      backend::cpu::als_solve_cg(b.rows, b.first, b.last, fixed, s.base_single, out, step);
    }
  }
};

static_assert(als_leaf_for<als_leaf<cpu>, float, std::int32_t> && als_leaf_for<als_leaf<cpu>, double, std::int64_t>);

/// a * b and a + b saturated at UINT64_MAX, for memory estimates from user-given sizes.
constexpr std::uint64_t als_mul(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t out = 0;
  return __builtin_mul_overflow(a, b, &out) ? std::numeric_limits<std::uint64_t>::max() : out;
}
constexpr std::uint64_t als_add(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t out = 0;
  return __builtin_add_overflow(a, b, &out) ? std::numeric_limits<std::uint64_t>::max() : out;
}

/// 64-bit mix of splitmix64 (Steele, Lea & Flood 2014): a stateless, well-spread hash.
constexpr std::uint64_t splitmix64(std::uint64_t z) noexcept {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// The initial factors of one side (see the file comment): rows x f, zero where
/// `empty[row]`.
inline dense_matrix<cpu, float> als_initial_factors(std::vector<char> const& empty, std::int64_t f,
                                                    std::uint64_t seed, std::uint64_t side) {
  auto const rows = static_cast<std::int64_t>(empty.size());
  dense_matrix<cpu, float> out(rows, f);
  auto const key = splitmix64(seed ^ splitmix64(side));
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < rows; ++r) {
    bool const zero = empty[static_cast<std::size_t>(r)] != 0;
    for (std::int64_t j = 0; j < f; ++j) {
      auto const h = splitmix64(key ^ static_cast<std::uint64_t>(r * f + j));
      // 24 random bits: exactly representable in float.
      out(r, j) = zero ? 0.0f : static_cast<float>(h >> 40) * (0.01f / 16777216.0f);
    }
  }
  return out;
}

}  // namespace detail

/// Alternating least squares for implicit and weighted feedback (model, solvers and
/// devices: see the file comment). Usage:
///
///   mgpu::als model({.factors = 64, .iterations = 15, .solver = mgpu::als_solver::conjugate_gradient});
///   model.fit(mgpu::execution_policy<mgpu::cpu>("cpu"), interactions);
///   auto top = model.recommend(user, 10);
///
/// Thread safety: const member functions may run concurrently; fit may not run
/// concurrently with anything else on the same object.
class als {
 public:
  /// @throws invalid_argument for options outside their documented domains.
  explicit als(als_options options = {}) : options_(std::move(options)) { check_options(); }

  [[nodiscard]] als_options const& options() const noexcept { return options_; }

  /// Fits the model to `interactions` (users × items, host CSR, any arithmetic value
  /// type) from the seeded initial factors, on the policy's devices.
  /// @throws invalid_argument (NaN/Inf in R, an observed weight 1 + α·r < 0),
  ///         numerical_error (a system that is not SPD, named by side and row),
  ///         out_of_memory, before anything is allocated, when the host memory the fit
  ///         needs (below) exceeds what the process can get (detail::host_free_bytes),
  ///         naming the bytes and what they are for; index_overflow for sizes beyond the
  ///         index types.
  /// Cost per iteration: Cholesky O(nnz f² + (users + items) f³/3), CG
  /// O(cg_steps (nnz f + (users + items) f²)). Host memory: 4 (users + items) f bytes of
  /// factors, and on host devices (devices + 1) times that for the resident row blocks and
  /// each device's replica; 8 f² bytes for each of the loss's 2 Gram matrices and (host
  /// devices) 20 f² for each device's Gram matrix and system; per solver thread 8 f² +
  /// 4104 f (Cholesky) or 12 f + 16 MiB (CG); O(nnz + users + items) for Rᵀ and the seen
  /// lists. Transfers (set.transfers()): the scatter of both sides and the broadcast of
  /// the items once, per iteration one all_gather of each side, the final gather once;
  /// on kinds without host memory, compute_loss adds a gather of both sides per iteration.
  template <class Kind, class T, class I>
  void fit(execution_policy<Kind> const& policy, csr_view<T, I> interactions) {
    validate(interactions);
    check_fit_memory(policy, interactions, true);
    std::vector<char> empty_users(static_cast<std::size_t>(interactions.rows));
    std::vector<char> empty_items(static_cast<std::size_t>(interactions.cols), 1);
    for (I u = 0; u < interactions.rows; ++u) {
      empty_users[static_cast<std::size_t>(u)] = interactions.row_nnz(u) == 0 ? 1 : 0;
      for (auto c : interactions.row_columns(u)) empty_items[static_cast<std::size_t>(c)] = 0;
    }
    fit_from(policy, interactions, detail::als_initial_factors(empty_users, options_.factors, options_.seed, 0),
             detail::als_initial_factors(empty_items, options_.factors, options_.seed, 1));
  }

  /// As above, starting from given factors (e.g. a previous model, to train further).
  /// @throws dimension_mismatch unless users is rows(R) x factors and items is
  ///         cols(R) x factors; the exceptions of fit otherwise.
  template <class Kind, class T, class I>
  void fit(execution_policy<Kind> const& policy, csr_view<T, I> interactions,
           dense_matrix<cpu, float> users, dense_matrix<cpu, float> items) {
    validate(interactions);
    if (users.rows() != interactions.rows || items.rows() != interactions.cols ||
        users.cols() != options_.factors || items.cols() != options_.factors) {
      throw dimension_mismatch(detail::message(
          "als::fit: initial factors are ", users.rows(), " x ", users.cols(), " and ", items.rows(),
          " x ", items.cols(), " but R is ", static_cast<std::int64_t>(interactions.rows), " x ",
          static_cast<std::int64_t>(interactions.cols), " with ", options_.factors, " factors"));
    }
    check_fit_memory(policy, interactions, false);
    fit_from(policy, interactions, std::move(users), std::move(items));
  }

  /// Overloads for owning matrices.
  template <class Kind, class T, class I>
  void fit(execution_policy<Kind> const& policy, csr_matrix<cpu, T, I> const& interactions) {
    fit(policy, interactions.view());
  }
  template <class Kind, class T, class I>
  void fit(execution_policy<Kind> const& policy, csr_matrix<cpu, T, I> const& interactions,
           dense_matrix<cpu, float> users, dense_matrix<cpu, float> items) {
    fit(policy, interactions.view(), std::move(users), std::move(items));
  }

  /// X, users × factors (0 x 0 before fit).
  [[nodiscard]] dense_matrix<cpu, float> const& user_factors() const noexcept { return users_; }
  /// Y, items × factors (0 x 0 before fit).
  [[nodiscard]] dense_matrix<cpu, float> const& item_factors() const noexcept { return items_; }
  /// The objective L after each iteration of the last fit (empty if compute_loss is off).
  [[nodiscard]] std::vector<double> const& loss_history() const noexcept { return loss_; }
  /// Seconds of each iteration's two half-steps in the last fit.
  [[nodiscard]] std::vector<double> const& iteration_seconds() const noexcept { return seconds_; }

  /// The (up to) k items with the largest x_user·y_i, best first, ties toward the smaller
  /// item index; with `exclude_seen`, items the user interacted with in the fitted R
  /// are skipped. O(items f + items log k).
  /// @throws invalid_argument (not fitted, user out of range, k < 1).
  [[nodiscard]] std::vector<als_match> recommend(std::int64_t user, std::int64_t k,
                                                 bool exclude_seen = true) const {
    MGPU_EXPECTS(fitted_, "als::recommend: the model is not fitted");
    MGPU_EXPECTS(user >= 0 && user < users_.rows(), "als::recommend: user ", user,
                 " is outside [0, ", users_.rows(), ")");
    MGPU_EXPECTS(k >= 1, "als::recommend: k must be at least 1, got ", k);
    auto const x = users_.view().row(user);
    std::vector<char> skip(static_cast<std::size_t>(items_.rows()), 0);
    if (exclude_seen) {
      auto const u = static_cast<std::size_t>(user);
      for (auto p = seen_offsets_[u]; p < seen_offsets_[u + 1]; ++p) {
        skip[static_cast<std::size_t>(seen_items_[static_cast<std::size_t>(p)])] = 1;
      }
    }
    return top_items(k, [&](std::int64_t i) {
      if (skip[static_cast<std::size_t>(i)] != 0) return std::optional<float>{};
      return std::optional<float>(dot(x, items_.view().row(i)));
    });
  }

  /// The (up to) k other items most similar to `item` by cosine similarity of their
  /// factor rows, best first, ties toward the smaller index; rows of zero factors have
  /// similarity 0. O(items f + items log k).
  /// @throws invalid_argument (not fitted, item out of range, k < 1).
  [[nodiscard]] std::vector<als_match> similar_items(std::int64_t item, std::int64_t k) const {
    MGPU_EXPECTS(fitted_, "als::similar_items: the model is not fitted");
    MGPU_EXPECTS(item >= 0 && item < items_.rows(), "als::similar_items: item ", item,
                 " is outside [0, ", items_.rows(), ")");
    MGPU_EXPECTS(k >= 1, "als::similar_items: k must be at least 1, got ", k);
    auto const y = items_.view().row(item);
    auto const norm = [](std::span<float const> v) {
      double s = 0;
      for (float e : v) s += static_cast<double>(e) * static_cast<double>(e);
      return std::sqrt(s);
    };
    double const ny = norm(y);
    return top_items(k, [&](std::int64_t i) {
      if (i == item) return std::optional<float>{};
      auto const other = items_.view().row(i);
      double const denom = ny * norm(other);
      return std::optional<float>(denom > 0 ? static_cast<float>(static_cast<double>(dot(y, other)) / denom)
                                            : 0.0f);
    });
  }

 private:
  void check_options() const {
    auto const& o = options_;
    MGPU_EXPECTS(o.factors >= 1, "als: factors must be at least 1, got ", o.factors);
    MGPU_EXPECTS(o.iterations >= 0, "als: iterations must be non-negative, got ", o.iterations);
    MGPU_EXPECTS(std::isfinite(o.regularization) && o.regularization >= 0,
                 "als: regularization must be finite and >= 0 (it keeps the systems positive "
                 "definite), got ", o.regularization);
    MGPU_EXPECTS(std::isfinite(o.unobserved_weight) && o.unobserved_weight >= 0,
                 "als: the unobserved weight must be finite and >= 0, got ", o.unobserved_weight);
    MGPU_EXPECTS(std::isfinite(o.alpha), "als: alpha must be finite, got ", o.alpha);
    MGPU_EXPECTS(o.solver != als_solver::conjugate_gradient || o.cg_steps >= 1,
                 "als: cg_steps must be at least 1, got ", o.cg_steps);
  }

  /// The host memory of a fit (see fit) against what the process can get, before any of
  /// it is allocated: a large factor count asks for f² doubles per system and thread.
  /// @throws out_of_memory naming the factor count, the bytes and what they are for.
  template <class Kind, class T, class I>
  void check_fit_memory(execution_policy<Kind> const& policy, csr_view<T, I> r, bool new_factors) const {
    using detail::als_add;
    using detail::als_mul;
    auto const f = static_cast<std::uint64_t>(options_.factors);
    auto const rows = static_cast<std::uint64_t>(r.rows) + static_cast<std::uint64_t>(r.cols);
    auto const nnz = static_cast<std::uint64_t>(r.nnz());
    auto const square = als_mul(als_mul(f, f), sizeof(double));
    bool const host_devices = detail::als_leaf<Kind>::host_memory;
    auto const devices = static_cast<std::uint64_t>(policy.device_count());
    // The loss's two Gram matrices on the host, plus each host device's Gram matrix and its
    // B in double and float.
    auto const systems =
        als_add(als_mul(2, square), host_devices ? als_mul(devices, als_add(als_mul(2, square), square / 2)) : 0);
    auto const threads = host_devices ? static_cast<std::uint64_t>(std::max(1, omp_get_max_threads())) : 0;
    auto const per_thread = options_.solver == als_solver::cholesky
                                ? als_add(square, als_mul(f, (1 + 2 * 256) * sizeof(double)))
                                : als_add(als_mul(f, 3 * sizeof(float)), std::uint64_t{16} << 20);
    auto const workspaces = als_mul(threads, per_thread);
    auto const one_copy = als_mul(als_mul(rows, f), sizeof(float));
    auto const factors = new_factors ? one_copy : 0;
    // Host devices: the row blocks (one copy in all) and every device's replicated copy.
    auto const resident = host_devices ? als_mul(devices + 1, one_copy) : 0;
    auto const others = als_add(als_mul(nnz, sizeof(T) + sizeof(I) + sizeof(std::int64_t)),
                                als_mul(rows + 2, sizeof(I) + sizeof(std::int64_t) + 1));
    auto const total = als_add(als_add(als_add(factors, resident), systems), als_add(workspaces, others));
    auto const bytes = static_cast<std::size_t>(std::min<std::uint64_t>(total, SIZE_MAX));
    detail::require_host_memory(
        bytes, detail::message("ALS with ", options_.factors, " factors needs ", total, " bytes for ", factors,
                               " of user and item factors (", rows, " rows x ", f, " floats), ", resident,
                               " of their copies on the devices (row blocks and one replica each), ", systems,
                               " of f x f systems (", square, " bytes each in double), ", workspaces, " of ",
                               threads, " solver threads' workspaces and ", others,
                               " for the transposed interactions and the seen lists; use fewer factors"));
  }

  /// NaN/Inf and negative observed weights, which no solver can use.
  template <class T, class I>
  void validate(csr_view<T, I> r) const {
    for (I u = 0; u < r.rows; ++u) {
      for (I p = r.row_begin(u); p < r.row_end(u); ++p) {
        auto const v = static_cast<double>(r.values[p]);
        MGPU_EXPECTS(std::isfinite(v), "als: interactions have a non-finite value (", v, ") at row ",
                     static_cast<std::int64_t>(u), ", column ", static_cast<std::int64_t>(r.col_indices[p]));
        MGPU_EXPECTS(1.0 + options_.alpha * v >= 0, "als: the observed weight 1 + alpha * r = ",
                     1.0 + options_.alpha * v, " at row ", static_cast<std::int64_t>(u), ", column ",
                     static_cast<std::int64_t>(r.col_indices[p]),
                     " is negative (alpha = ", options_.alpha, ", r = ", v,
                     "); weights must be >= 0 for the systems to stay positive definite");
      }
    }
  }

  /// One side's factors on the devices: `rows`, the row blocks this side is solved into
  /// (the nnz-balanced bounds of its solve), and `all`, every device's full copy, read
  /// when the other side is solved.
  template <class Kind>
  struct resident_factors {
    distributed_dense<Kind, float> rows;
    distributed_dense<Kind, float> all;
  };

  template <class Kind, class I>
  static resident_factors<Kind> make_resident(execution_policy<Kind> const& policy,
                                              dense_matrix<cpu, float> const& host, std::vector<I> const& bounds) {
    return {distributed_dense<Kind, float>::row_blocks(policy, host.rows(), host.cols(), bounds),
            distributed_dense<Kind, float>::replicated(policy, host.rows(), host.cols())};
  }

  /// The fit on the devices: both sides' factors are scattered into their row blocks once
  /// and the items broadcast once; each half-step then solves every device's block from
  /// its copy of the fixed side and all_gathers the blocks it solved (its only transfer);
  /// the blocks are gathered into users_ and items_ once at the end.
  template <class Kind, class T, class I>
  void fit_from(execution_policy<Kind> const& policy, csr_view<T, I> r, dense_matrix<cpu, float> users,
                dense_matrix<cpu, float> items) {
    static_assert(backend_available<Kind>::value,
                  "als: this device kind's backend is not compiled in (for gpu, include "
                  "<mgpu/cuda.hpp> in a CUDA translation unit and link mgpu::cuda)");
    using leaf = detail::als_leaf<Kind>;
    auto const rt = transpose(r);
    auto const n_dev = policy.device_count();
    auto const user_bounds = partition_rows_by_nnz(r, n_dev);
    auto const item_bounds = partition_rows_by_nnz(rt.view(), n_dev);
    std::vector<std::optional<typename leaf::template block<T, I>>> user_blocks(n_dev), item_blocks(n_dev);
    detail::fork_join(policy, [&](auto& ctx, std::size_t d) {
      if (user_bounds[d] < user_bounds[d + 1]) {
        user_blocks[d].emplace(leaf::make_block(ctx, r, user_bounds[d], user_bounds[d + 1]));
      }
      if (item_bounds[d] < item_bounds[d + 1]) {
        item_blocks[d].emplace(leaf::make_block(ctx, rt.view(), item_bounds[d], item_bounds[d + 1]));
      }
    });
    auto x = make_resident(policy, users, user_bounds);
    auto y = make_resident(policy, items, item_bounds);
    scatter(std::as_const(users).view(), x.rows);
    scatter(std::as_const(items).view(), y.rows);
    broadcast(std::as_const(items).view(), y.all);

    fitted_ = false;
    remember_seen(r);
    loss_.clear();
    seconds_.clear();
    users_ = std::move(users);
    items_ = std::move(items);
    detail::als_step step{options_.factors,
                          options_.alpha,
                          options_.unobserved_weight,
                          options_.model == als_model::weighted,
                          options_.solver,
                          options_.cg_steps,
                          "user",
                          policy.memory_budget()};
    std::vector<typename leaf::system> systems(n_dev);
    for (int it = 1; it <= options_.iterations; ++it) {
      auto const start = std::chrono::steady_clock::now();
      step.side = "user";
      half_step(policy, user_blocks, systems, y.all, x, step);
      step.side = "item";
      half_step(policy, item_blocks, systems, x.all, y, step);
      double const seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      seconds_.push_back(seconds);
      double loss = std::numeric_limits<double>::quiet_NaN();
      if (options_.compute_loss) {
        loss = resident_objective(r, x, y, step);
        loss_.push_back(loss);
      }
      if (options_.on_iteration) options_.on_iteration(it, loss, seconds);
    }
    gather(x.rows, users_.view());
    gather(y.rows, items_.view());
    fitted_ = true;
  }

  /// Every device with rows to solve forms its system from its copy of the fixed side and
  /// solves its block; then the solved blocks are all_gathered into every device's copy.
  template <class Kind, class Block, class System>
  void half_step(execution_policy<Kind> const& policy, std::vector<std::optional<Block>> const& blocks,
                 std::vector<System>& systems, distributed_dense<Kind, float> const& fixed,
                 resident_factors<Kind>& solving, detail::als_step const& step) const {
    using leaf = detail::als_leaf<Kind>;
    detail::fork_join(policy, [&](auto& ctx, std::size_t d) {
      if (!blocks[d]) return;
      leaf::prepare(ctx, systems[d], fixed.view(d), options_.unobserved_weight, options_.regularization);
      leaf::solve(ctx, *blocks[d], fixed.view(d), std::as_const(systems[d]), solving.rows.view(d), step);
    });
    all_gather(solving.rows, solving.all);
  }

  /// The loss of the resident factors. Host devices: device 0's copies are read in place
  /// (one memory; not a transfer). Other kinds: the row blocks are gathered to the host
  /// (counted transfers), so compute_loss costs (users + items)·f floats per iteration.
  template <class Kind, class T, class I>
  double resident_objective(csr_view<T, I> r, resident_factors<Kind> const& x, resident_factors<Kind> const& y,
                            detail::als_step const& step) {
    if constexpr (detail::als_leaf<Kind>::host_memory) {
      return objective(r, x.all.view(0), y.all.view(0), step);
    } else {
      gather(x.rows, users_.view());
      gather(y.rows, items_.view());
      return objective(r, std::as_const(users_).view(), std::as_const(items_).view(), step);
    }
  }

  /// L from the Gram matrices (all pairs at weight w0: w0·Σ (XᵀX)∘(YᵀY)), the observed
  /// corrections summed per user in double and then in user order, and λ·(tr XᵀX + tr YᵀY).
  /// X and Y are host views; the Gram matrices are computed here, on the calling thread.
  template <class T, class I>
  double objective(csr_view<T, I> r, dense_view<float const> users, dense_view<float const> items,
                   detail::als_step const& step) const {
    auto const gram_users = detail::als_gram(users);
    auto const gram_items = detail::als_gram(items);
    std::vector<double> per_user(static_cast<std::size_t>(r.rows));
    backend::cpu::als_observed_loss(r, I{0}, r.rows, users, items, step, per_user);
    double observed = 0;
    for (double v : per_user) observed += v;
    double all_pairs = 0;
    for (std::size_t i = 0; i < gram_users.size(); ++i) all_pairs += gram_users[i] * gram_items[i];
    double trace = 0;
    auto const fs = static_cast<std::size_t>(options_.factors);
    for (std::size_t j = 0; j < fs; ++j) trace += gram_users[j * fs + j] + gram_items[j * fs + j];
    return options_.unobserved_weight * all_pairs + observed + options_.regularization * trace;
  }

  template <class T, class I>
  void remember_seen(csr_view<T, I> r) {
    seen_offsets_.assign(static_cast<std::size_t>(r.rows) + 1, 0);
    seen_items_.clear();
    seen_items_.reserve(static_cast<std::size_t>(r.nnz()));
    for (I u = 0; u < r.rows; ++u) {
      for (auto c : r.row_columns(u)) seen_items_.push_back(static_cast<std::int64_t>(c));
      seen_offsets_[static_cast<std::size_t>(u) + 1] = static_cast<std::int64_t>(seen_items_.size());
    }
  }

  static float dot(std::span<float const> a, std::span<float const> b) noexcept {
    double s = 0;
    for (std::size_t j = 0; j < a.size(); ++j) s += static_cast<double>(a[j]) * static_cast<double>(b[j]);
    return static_cast<float>(s);
  }

  template <class Score>
  std::vector<als_match> top_items(std::int64_t k, Score const& score) const {
    if (items_.rows() == 0) return {};
    detail::topk_heap<float, std::int64_t> heap(static_cast<std::size_t>(std::min(k, items_.rows())));
    for (std::int64_t i = 0; i < items_.rows(); ++i) {
      if (auto const s = score(i)) heap.push({*s, i});
    }
    std::vector<detail::scored<float, std::int64_t>> ranked(heap.size());
    heap.drain_sorted(ranked.begin());
    std::vector<als_match> out;
    out.reserve(ranked.size());
    for (auto const& c : ranked) out.push_back({c.index, c.score});
    return out;
  }

  als_options options_;
  dense_matrix<cpu, float> users_;
  dense_matrix<cpu, float> items_;
  std::vector<double> loss_;
  std::vector<double> seconds_;
  std::vector<std::int64_t> seen_offsets_;
  std::vector<std::int64_t> seen_items_;
  bool fitted_ = false;
};

}  // namespace mgpu
