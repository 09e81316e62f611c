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
// `solve_rows` is that half-step for any block of rows against a given fixed side, on host
// devices, warm-starting conjugate gradient from the factors passed in: the public piece
// mpi/als.hpp composes the fit over MPI ranks from, bitwise equal to fit.
//
// Initial factors: uniform in [0, 0.01) from a hash of (seed, side, row, column), as
// `implicit` scales its random start, except that users and items without any entry
// start (and stay) at zero. They never depend on the partition either.
//
// Serving. A fitted model answers top-k queries for many rows at once on a policy's
// devices, returning topk_result<float> (the library's one top-k result type):
// `recommend` ranks items by x_u·y_i, `similar_items` / `similar_users` rank rows of the
// same side by the cosine of their factors. Each is a dense product fused with top-k
// selection: mgpu::knn (inner_product or cosine metric) over the item (or user) factors,
// the query rows gathered in batches. Excluded items (those a user has seen; the query
// row itself for similar_*) are removed exactly as the `implicit` library does: the
// search asks for k + (the most excluded items of any row in the batch) and drops the
// excluded ones, so every row keeps its true k best. Rows are batched in order of their
// exclusion counts, so that one very active user does not widen the search of the others.
// `recalculate_user` solves one new user's system against the fitted item factors
// without refitting; `save` / `load` write and read a fitted model as one binary file
// (io/binary_file.hpp, kind "als_model", sections listed at `save`).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <numeric>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>


#include "mgpu/algorithms/detail/als_leaf.hpp"
#include "mgpu/algorithms/knn.hpp"
#include "mgpu/algorithms/topk_result.hpp"
#include "mgpu/detail/host_memory.hpp"  // require_host_memory
#include "mgpu/backend/cpu/als.hpp"
#include "mgpu/backend/cpu/blas.hpp"
#include "mgpu/backend/cpu/parallel.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/core/progress.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/dense/distributed_dense.hpp"
#include "mgpu/execution/collectives.hpp"
#include "mgpu/execution/fork_join.hpp"
#include "mgpu/execution/policy.hpp"
#include "mgpu/io/binary_file.hpp"
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
  /// Early stopping: the fit ends after the first iteration i >= 2 whose loss L_i changed
  /// by less than this fraction of the previous one, |L_{i-1} − L_i| < tol · L_{i-1}.
  /// 0 (the default) runs every iteration; > 0 computes the loss whatever compute_loss
  /// says. iteration_seconds().size() (and loss_history().size()) tell how many ran.
  /// Finite and >= 0.
  double loss_tolerance = 0;
  /// Called after every iteration with (iteration, 1-based; loss, NaN when not
  /// computed; seconds of the two half-steps, the loss excluded).
  std::function<void(int, double, double)> on_iteration{};
  /// Progress of fit in iterations (core/progress.hpp): (i, iterations) after iteration i
  /// on the calling thread, after on_iteration; when early stopping ends the fit at
  /// iteration i, the last call is (i, i). Not called when iterations is 0.
  progress_callback progress{};
};

/// The side whose rows als::solve_rows solves (names the rows in its errors).
enum class als_side {
  /// Rows of R (users), solved against the item factors.
  users,
  /// Rows of Rᵀ (items), solved against the user factors.
  items,
};

/// Options of als::recommend.
struct als_recommend_options {
  /// Leave out the items each user has interacted with: the fitted R's row, or the row
  /// of the interactions passed to recommend.
  bool exclude_seen = true;
  /// Candidate items (item rows, any order; repeats count once): only these are ranked.
  /// Empty: every item.
  std::span<std::int64_t const> items{};
  /// Progress in users (core/progress.hpp), called on the calling thread after each batch.
  progress_callback progress{};
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
    backend::cpu::parallel_for(n, [&](std::int64_t r) {
      auto const src = a.row(r0 + r);
      std::copy(src.begin(), src.end(), block.begin() + r * f);
    });
    backend::cpu::blas::syrk_at_a(f, n, 1.0, block.data(), f, 1.0, g.data(), f);
  }
  for (std::size_t i = 0; i < fs; ++i) {
    for (std::size_t j = 0; j < i; ++j) g[i * fs + j] = g[j * fs + i];
  }
  return g;
}

/// B = w0·FᵀF + λI (f x f, full symmetric, double), the part of every row's system that
/// the fixed side F gives.
inline std::vector<double> als_system_base(dense_view<float const> fixed, double unobserved_weight,
                                           double regularization) {
  auto base = als_gram(fixed);
  auto const fs = static_cast<std::size_t>(fixed.cols);
  for (auto& v : base) v *= unobserved_weight;
  for (std::size_t j = 0; j < fs; ++j) base[j * fs + j] += regularization;
  return base;
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
    s.base = als_system_base(fixed, unobserved_weight, regularization);
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
  backend::cpu::parallel_for(rows, [&](std::int64_t r) {
    bool const zero = empty[static_cast<std::size_t>(r)] != 0;
    for (std::int64_t j = 0; j < f; ++j) {
      auto const h = splitmix64(key ^ static_cast<std::uint64_t>(r * f + j));
      // 24 random bits: exactly representable in float.
      out(r, j) = zero ? 0.0f : static_cast<float>(h >> 40) * (0.01f / 16777216.0f);
    }
  });
  return out;
}

}  // namespace detail

/// Alternating least squares for implicit and weighted feedback (model, solvers and
/// devices: see the file comment). Usage:
///
///   mgpu::execution_policy<mgpu::cpu> const policy("cpu");
///   mgpu::als model({.factors = 64, .iterations = 15, .solver = mgpu::als_solver::conjugate_gradient});
///   model.fit(policy, interactions);
///   auto top = model.recommend(policy, {}, 10);  // a topk_result<float>: every user's 10 best unseen items
///   model.save("model.als");
///
/// Thread safety: const member functions may run concurrently; fit may not run
/// concurrently with anything else on the same object.
class als {
 public:
  /// @throws invalid_argument for options outside their documented domains.
  explicit als(als_options options = {}) : options_(std::move(options)) { check_options(); }

  [[nodiscard]] als_options const& options() const noexcept { return options_; }

  /// Fits the model to `interactions` (users × items, host CSR, any arithmetic value
  /// type) from the seeded initial factors, on the policy's devices: options().iterations
  /// iterations, fewer when loss_tolerance stops it early; after each, on_iteration and
  /// progress are called on the calling thread. Remembers each user's items (sorted) for
  /// recommend's exclusion and save.
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

  /// Whether the model holds factors (after fit or load).
  [[nodiscard]] bool fitted() const noexcept { return fitted_; }

  /// The k items with the largest x_u·y_i for each user u of `users`, best first, ties
  /// toward the smaller item; with options.exclude_seen (the default), the items of u's
  /// row of the fitted R are left out (method: see the file comment).
  ///
  /// @param policy   devices of the products (cpu, cpu:N, or gpu with mgpu/cuda.hpp and
  ///                 mgpu/backend/cuda/knn.hpp); the candidate items are split across them.
  /// @param users    user rows; result row q belongs to users[q] (repeats allowed).
  ///                 Empty: every user, in order.
  /// @param k        items per user, >= 1.
  /// @returns one row per user of min(k, candidates not excluded) (item row, x_u·y_i)
  ///          pairs; `candidates` = the number of candidate items, `k` = k.
  /// @throws invalid_argument (not fitted, k < 1, a user or candidate item out of range);
  ///         what mgpu::knn throws (out_of_memory, ...).
  /// Scores are float products from knn's GEMM, so items whose exact products differ by
  /// less than float round-off may be ordered otherwise than in exact arithmetic; the
  /// kept set is exact for those scores. Complexity: O(users · candidates · f) flops;
  /// memory O(users · k) for the result plus, per batch of at most 4096 users, 2^20
  /// (user, item) pairs of knn's lists (a user with more seen items has a batch alone).
  /// Each batch is one mgpu::knn call: on GPUs it uploads the candidate factors and the
  /// batch's user rows.
  template <class Kind>
  [[nodiscard]] topk_result<float> recommend(execution_policy<Kind> const& policy,
                                             std::span<std::int64_t const> users, std::int64_t k,
                                             als_recommend_options const& options = {}) const {
    check_query("als::recommend", users, users_.rows(), "user", k);
    auto const rows = all_if_empty(users, users_.rows());
    return recommend_rows(policy, rows, k, options, [&](std::size_t q) {
      auto const u = static_cast<std::size_t>(rows[q]);
      auto const first = static_cast<std::size_t>(seen_offsets_[u]);
      return std::span<std::int64_t const>(seen_items_.data() + first,
                                           static_cast<std::size_t>(seen_offsets_[u + 1]) - first);
    });
  }

  /// As above, the items to leave out taken from `user_items` instead of the fitted R
  /// (its values are not read): row q holds users[q]'s interactions, or user q's when
  /// `users` is empty, as the `implicit` library's recommend(userid, user_items) takes them.
  /// @throws dimension_mismatch unless user_items is (users.size(), or every user) x items;
  ///         the exceptions above.
  template <class Kind, class T, class I>
  [[nodiscard]] topk_result<float> recommend(execution_policy<Kind> const& policy,
                                             std::span<std::int64_t const> users, std::int64_t k,
                                             csr_view<T, I> user_items,
                                             als_recommend_options const& options = {}) const {
    check_query("als::recommend", users, users_.rows(), "user", k);
    auto const rows = all_if_empty(users, users_.rows());
    if (static_cast<std::int64_t>(user_items.rows) != static_cast<std::int64_t>(rows.size()) ||
        static_cast<std::int64_t>(user_items.cols) != items_.rows()) {
      throw dimension_mismatch(detail::message(
          "als::recommend: user_items is ", static_cast<std::int64_t>(user_items.rows), " x ",
          static_cast<std::int64_t>(user_items.cols), " but ", rows.size(), " users are asked for and the model has ",
          items_.rows(), " items"));
    }
    // Each row's items sorted, for the membership test.
    std::vector<std::int64_t> offsets(rows.size() + 1, 0), seen;
    if (options.exclude_seen) {
      seen.reserve(static_cast<std::size_t>(user_items.nnz()));
      for (I q = 0; q < user_items.rows; ++q) {
        auto const begin = seen.size();
        for (auto c : user_items.row_columns(q)) seen.push_back(static_cast<std::int64_t>(c));
        std::sort(seen.begin() + static_cast<std::ptrdiff_t>(begin), seen.end());
        offsets[static_cast<std::size_t>(q) + 1] = static_cast<std::int64_t>(seen.size());
      }
    }
    return recommend_rows(policy, rows, k, options, [&](std::size_t q) {
      auto const first = static_cast<std::size_t>(offsets[q]);
      return std::span<std::int64_t const>(seen.data() + first, static_cast<std::size_t>(offsets[q + 1]) - first);
    });
  }
  template <class Kind, class T, class I>
  [[nodiscard]] topk_result<float> recommend(execution_policy<Kind> const& policy,
                                             std::span<std::int64_t const> users, std::int64_t k,
                                             csr_matrix<cpu, T, I> const& user_items,
                                             als_recommend_options const& options = {}) const {
    return recommend(policy, users, k, user_items.view(), options);
  }

  /// One user's recommendations as a one-row result: the batched call on a host policy
  /// "cpu" made for the call (it starts and joins a worker thread; for many users use the
  /// batched overload). The exceptions of the batched call.
  [[nodiscard]] topk_result<float> recommend(std::int64_t user, std::int64_t k, bool exclude_seen = true) const {
    return recommend(execution_policy<cpu>("cpu"), std::span<std::int64_t const>(&user, 1), k,
                     als_recommend_options{.exclude_seen = exclude_seen});
  }

  /// For each item i of `items`, the k other items whose factor rows have the largest
  /// cosine similarity y_i·y_j / (‖y_i‖ ‖y_j‖), best first, ties toward the smaller item;
  /// a row of zero factors has similarity 0 with every item. The item itself is left out
  /// exactly (the search asks for k + 1 and drops it). Empty `items`: every item.
  /// @returns one row per item of min(k, items − 1) (item row, cosine) pairs.
  /// @throws invalid_argument (not fitted, k < 1, an item out of range); what knn throws.
  /// Complexity: O(items.size() · items · f) flops, as GEMM.
  template <class Kind>
  [[nodiscard]] topk_result<float> similar_items(execution_policy<Kind> const& policy,
                                                 std::span<std::int64_t const> items, std::int64_t k) const {
    check_query("als::similar_items", items, items_.rows(), "item", k);
    return similar_rows(policy, const_view(items_), all_if_empty(items, items_.rows()), k);
  }
  /// The same for users by their factor rows x_u.
  template <class Kind>
  [[nodiscard]] topk_result<float> similar_users(execution_policy<Kind> const& policy,
                                                 std::span<std::int64_t const> users, std::int64_t k) const {
    check_query("als::similar_users", users, users_.rows(), "user", k);
    return similar_rows(policy, const_view(users_), all_if_empty(users, users_.rows()), k);
  }
  /// One item's (user's) neighbours as a one-row result, on a host policy "cpu" made for
  /// the call (as recommend(user, k)).
  [[nodiscard]] topk_result<float> similar_items(std::int64_t item, std::int64_t k) const {
    return similar_items(execution_policy<cpu>("cpu"), std::span<std::int64_t const>(&item, 1), k);
  }
  [[nodiscard]] topk_result<float> similar_users(std::int64_t user, std::int64_t k) const {
    return similar_users(execution_policy<cpu>("cpu"), std::span<std::int64_t const>(&user, 1), k);
  }

  /// The factors of a user whose interactions are (items[j], values[j]), solved against
  /// the fitted item factors Y without refitting: the system a user row gets in fit,
  ///   (w0·YᵀY + λI + Σ_j (w_j − w0) y_j y_jᵀ) x = Σ_j w_j t_j y_j,   w_j = 1 + α r_j,
  /// with the model's options (t_j = 1, or r_j for the weighted model), by the fit's
  /// solver: Cholesky (exact), or cg_steps conjugate-gradient steps from x = 0 (as the
  /// `implicit` library's recalculate_user starts). Repeated items are summed, as a CSR
  /// matrix sums duplicates. No interactions: zero factors. Runs on the calling thread's
  /// OpenMP team. O(n f² + f³) (Cholesky) or O(cg_steps (n f + f²)) (CG); w0·YᵀY + λI is
  /// computed once per fit or load.
  /// @returns f floats.
  /// @throws invalid_argument (not fitted; an item outside [0, items); a non-finite value;
  ///         an observed weight 1 + α r < 0), dimension_mismatch (the spans' sizes
  ///         differ), numerical_error (a system that is not SPD, with λ = 0).
  [[nodiscard]] std::vector<float> recalculate_user(std::span<std::int64_t const> items,
                                                    std::span<float const> values) const {
    MGPU_EXPECTS(fitted_, "als::recalculate_user: the model is not fitted");
    if (items.size() != values.size()) {
      throw dimension_mismatch(detail::message("als::recalculate_user: ", items.size(), " items but ",
                                               values.size(), " values"));
    }
    for (std::size_t j = 0; j < items.size(); ++j) {
      MGPU_EXPECTS(items[j] >= 0 && items[j] < items_.rows(), "als::recalculate_user: item ", items[j],
                   " (position ", j, ") is outside [0, ", items_.rows(), ")");
    }
    std::vector<std::int64_t> const offsets{0, static_cast<std::int64_t>(items.size())};
    csr_matrix<cpu, float, std::int64_t> const row(1, items_.rows(), std::span<std::int64_t const>(offsets), items,
                                                   values);
    auto const x = recalculate_users(row.view());
    return {x.data(), x.data() + x.cols()};
  }

  /// The same for several users at once: row u of the result (users x factors) solves row
  /// u of `interactions` (users x items, host CSR, any value type). The exceptions of
  /// recalculate_user; dimension_mismatch unless interactions has the model's item count
  /// of columns.
  template <class T, class I>
  [[nodiscard]] dense_matrix<cpu, float> recalculate_users(csr_view<T, I> interactions) const {
    MGPU_EXPECTS(fitted_, "als::recalculate_users: the model is not fitted");
    if (static_cast<std::int64_t>(interactions.cols) != items_.rows()) {
      throw dimension_mismatch(detail::message("als::recalculate_users: the interactions have ",
                                               static_cast<std::int64_t>(interactions.cols),
                                               " columns but the model has ", items_.rows(), " items"));
    }
    validate(interactions);
    dense_matrix<cpu, float> out(static_cast<std::int64_t>(interactions.rows), options_.factors, 0.0f);
    auto const step = solve_step("user");
    if (options_.solver == als_solver::cholesky) {
      backend::cpu::als_solve_cholesky(interactions, I{0}, interactions.rows, const_view(items_), item_system_,
                                       out.view(), step);
    } else {
      std::vector<float> const base(item_system_.begin(), item_system_.end());
      backend::cpu::als_solve_cg(interactions, I{0}, interactions.rows, const_view(items_), base, out.view(), step);
    }
    return out;
  }

  /// One half-step of fit for a block of rows, with this model's options (the model need
  /// not be fitted; its factors are neither read nor changed): row u of `factors` becomes
  /// the solution for row u of `interactions` against the fixed side F = `fixed`,
  ///   (w0·FᵀF + λI + Σ_{i∈obs(u)} (w_ui − w0) f_i f_iᵀ) x_u = Σ_{i∈obs(u)} w_ui t_ui f_i,
  /// by the operations fit applies to that row in a half-step on host devices: the rows
  /// split over the policy's devices by nnz, each device forming B = w0·FᵀF + λI in double
  /// from F (as fit does from its replica) and solving its rows by the options' solver:
  /// Cholesky (exact; the entry values of `factors` are not read), or cg_steps
  /// conjugate-gradient steps in float started from the entry values of the row of
  /// `factors`, as fit starts each row from its factors of the previous iteration (the
  /// initial factors in the first). Rows without entries get zero factors. Each row's
  /// result depends only on its row of R, its row of `factors`, F and the options — not
  /// on the other rows or the partition — so, from the factors of a fit's iteration,
  ///   solve_rows(policy, R, Y, X, als_side::users); solve_rows(policy, Rᵀ, X, Y, als_side::items);
  /// gives bitwise the X and Y of fit's next iteration on host devices, whichever blocks
  /// of rows are solved by whichever call (mpi/als.hpp solves each rank's rows so).
  ///
  /// @param policy        host devices (cpu, cpu:N).
  /// @param interactions  rows x n, host CSR, any value type: the rows to solve (rows of R
  ///                      for users, rows of Rᵀ for items).
  /// @param fixed         n x f (f = options().factors): the other side's factors. Must
  ///                      not overlap `factors`.
  /// @param factors       rows x f: read (conjugate gradient's starting point), then
  ///                      overwritten with the solution.
  /// @param side          which side the rows are, for the errors ("user 7", "item 7"; the
  ///                      row is the row of `interactions`).
  /// @throws dimension_mismatch (shapes other than the above), invalid_argument (NaN/Inf in
  ///         the interactions, an observed weight 1 + α·r < 0), numerical_error (a system
  ///         that is not SPD or a solution that is not finite, naming the smallest such
  ///         row), out_of_memory before allocating when the devices' systems and the
  ///         solver threads' workspaces (below) exceed what the process can get.
  /// Cost: B on each device with rows, O(n f²); Cholesky O(nnz f² + rows f³/3), CG
  /// O(cg_steps (nnz f + rows f²)). Memory: 20 f² bytes per device (B in double and
  /// float, its Gram matrix), per solver thread 8 f² + 4104 f (Cholesky) or 12 f + 16 MiB
  /// (CG). Moves nothing between devices (every device reads the host's F and writes
  /// its rows of `factors` in place).
  template <class T, class I>
  void solve_rows(execution_policy<cpu> const& policy, csr_view<T, I> interactions, dense_view<float const> fixed,
                  dense_view<float> factors, als_side side = als_side::users) const {
    auto const f = options_.factors;
    if (static_cast<std::int64_t>(interactions.cols) != fixed.rows || fixed.cols != f ||
        factors.rows != static_cast<std::int64_t>(interactions.rows) || factors.cols != f) {
      throw dimension_mismatch(detail::message(
          "als::solve_rows: the interactions are ", static_cast<std::int64_t>(interactions.rows), " x ",
          static_cast<std::int64_t>(interactions.cols), ", the fixed side ", fixed.rows, " x ", fixed.cols,
          " and the factors ", factors.rows, " x ", factors.cols, "; expected rows x n, n x ", f, " and rows x ", f));
    }
    validate(interactions);
    using detail::als_add;
    using detail::als_mul;
    auto const n_dev = policy.device_count();
    auto const square = als_mul(als_mul(static_cast<std::uint64_t>(f), static_cast<std::uint64_t>(f)), sizeof(double));
    auto const uf = static_cast<std::uint64_t>(f);
    auto const per_thread = options_.solver == als_solver::cholesky
                                ? als_add(square, als_mul(uf, (1 + 2 * 256) * sizeof(double)))
                                : als_add(als_mul(uf, 3 * sizeof(float)), std::uint64_t{16} << 20);
    auto const total = als_add(als_mul(n_dev, als_add(als_mul(2, square), square / 2)),
                               als_mul(static_cast<std::uint64_t>(backend::cpu::host_threads()), per_thread));
    detail::require_host_memory(static_cast<std::size_t>(std::min<std::uint64_t>(total, SIZE_MAX)),
                                detail::message("als::solve_rows with ", f, " factors needs ", total,
                                                " bytes for the devices' f x f systems and the solver threads' "
                                                "workspaces; use fewer factors"));
    using leaf = detail::als_leaf<cpu>;
    auto const bounds = partition_rows_by_nnz(interactions, n_dev);
    auto const step = solve_step(side == als_side::users ? "user" : "item", policy.memory_budget());
    std::vector<leaf::system> systems(n_dev);
    detail::fork_join(policy, [&](device_context<cpu>& ctx, std::size_t d) {
      if (bounds[d] == bounds[d + 1]) return;
      auto const block = leaf::make_block(ctx, interactions, bounds[d], bounds[d + 1]);
      auto const first = static_cast<std::int64_t>(bounds[d]);
      dense_view<float> const out{static_cast<std::int64_t>(bounds[d + 1]) - first, f, factors.ld,
                                  factors.data + first * factors.ld};
      leaf::prepare(ctx, systems[d], fixed, options_.unobserved_weight, options_.regularization);
      leaf::solve(ctx, block, fixed, std::as_const(systems[d]), out, step);
    });
  }
  template <class T, class I>
  void solve_rows(execution_policy<cpu> const& policy, csr_matrix<cpu, T, I> const& interactions,
                  dense_view<float const> fixed, dense_view<float> factors, als_side side = als_side::users) const {
    solve_rows(policy, interactions.view(), fixed, factors, side);
  }

  /// The kind and version of the files save() writes.
  static constexpr std::string_view file_kind = "als_model";
  static constexpr std::uint32_t file_version = 1;

  /// Writes the fitted model to `path` as one binary file (io/binary_file.hpp; all or
  /// nothing: the old file stays unless the new one is complete), kind "als_model",
  /// version 1, with these sections in this order:
  ///
  ///   factors            int64    f
  ///   iterations         int64    options().iterations
  ///   regularization     float64  λ
  ///   alpha              float64  α
  ///   unobserved_weight  float64  w0
  ///   model              int32    0 implicit, 1 weighted
  ///   solver             int32    0 cholesky, 1 conjugate_gradient
  ///   cg_steps           int64
  ///   seed               uint64
  ///   compute_loss       uint8    0 or 1
  ///   loss_tolerance     float64
  ///   users              int64    number of users U
  ///   items              int64    number of items N
  ///   user_factors       float32  U x f, row-major (X)
  ///   item_factors       float32  N x f, row-major (Y)
  ///   seen_offsets       int64    U + 1 offsets into seen_items (0 first, nondecreasing)
  ///   seen_items         int64    each user's items in the fitted R, sorted per user
  ///   loss_history       float64  the loss after each iteration of the fit (may be empty)
  ///
  /// The callbacks (on_iteration, progress) are not saved.
  /// @throws invalid_argument (not fitted); mgpu::error naming the path when it cannot be
  ///         written.
  void save(std::filesystem::path const& path) const {
    MGPU_EXPECTS(fitted_, "als::save: the model is not fitted");
    write_binary_file(path, file_kind, file_version, [&](binary_writer& w) { write_sections(w); });
  }
  /// The same file written to a stream (e.g. a writer of an output_set).
  void save(std::ostream& out) const {
    MGPU_EXPECTS(fitted_, "als::save: the model is not fitted");
    binary_writer w(out, file_kind, file_version);
    write_sections(w);
    w.finish();
  }

  /// A model saved by save(): the same options (without callbacks), factors, seen lists
  /// and loss history, so it recommends exactly as the saved one did; iteration_seconds()
  /// is empty.
  /// @throws mgpu::error when the file cannot be opened; file_format_error (naming the file)
  ///         for another kind, a newer version, a truncated or corrupted file, or sections
  ///         that do not fit together (sizes, offsets, item ids, non-finite factors,
  ///         options outside their domains).
  [[nodiscard]] static als load(std::filesystem::path const& path) {
    binary_reader r(path, file_kind, file_version);
    als_options o;
    o.factors = r.read_value<std::int64_t>("factors");
    auto const iterations = r.read_value<std::int64_t>("iterations");
    o.regularization = r.read_value<double>("regularization");
    o.alpha = r.read_value<double>("alpha");
    o.unobserved_weight = r.read_value<double>("unobserved_weight");
    auto const model = r.read_value<std::int32_t>("model");
    auto const solver = r.read_value<std::int32_t>("solver");
    auto const cg_steps = r.read_value<std::int64_t>("cg_steps");
    o.seed = r.read_value<std::uint64_t>("seed");
    auto const compute_loss = r.read_value<std::uint8_t>("compute_loss");
    o.loss_tolerance = r.read_value<double>("loss_tolerance");
    auto const users = r.read_value<std::int64_t>("users");
    auto const items = r.read_value<std::int64_t>("items");
    auto user_factors = r.read<float>("user_factors");
    auto item_factors = r.read<float>("item_factors");
    auto seen_offsets = r.read<std::int64_t>("seen_offsets");
    auto seen_items = r.read<std::int64_t>("seen_items");
    auto loss = r.read<double>("loss_history");
    r.finish();

    auto const bad = [&](auto const&... what) {
      throw file_format_error(detail::message("'", path.string(), "': ", what...));
    };
    if (model != 0 && model != 1) bad("model ", model, " is neither 0 (implicit) nor 1 (weighted)");
    if (solver != 0 && solver != 1) bad("solver ", solver, " is neither 0 (cholesky) nor 1 (conjugate_gradient)");
    if (compute_loss > 1) bad("compute_loss is ", int{compute_loss}, ", not 0 or 1");
    if (iterations < 0 || iterations > std::numeric_limits<int>::max() || cg_steps < 0 ||
        cg_steps > std::numeric_limits<int>::max()) {
      bad("iterations ", iterations, " or cg_steps ", cg_steps, " is out of range");
    }
    o.iterations = static_cast<int>(iterations);
    o.cg_steps = static_cast<int>(cg_steps);
    o.model = model == 0 ? als_model::implicit : als_model::weighted;
    o.solver = solver == 0 ? als_solver::cholesky : als_solver::conjugate_gradient;
    o.compute_loss = compute_loss != 0;
    als out;
    try {
      out = als(o);
    } catch (invalid_argument const& e) {
      bad("the options are invalid: ", e.what());
    }
    auto const f = static_cast<std::uint64_t>(o.factors);
    auto const holds = [&](std::size_t values, std::int64_t rows) {
      return rows >= 0 && values % f == 0 && values / f == static_cast<std::uint64_t>(rows);
    };
    if (!holds(user_factors.size(), users)) {
      bad("user_factors holds ", user_factors.size(), " values, not users x factors = ", users, " x ", o.factors);
    }
    if (!holds(item_factors.size(), items)) {
      bad("item_factors holds ", item_factors.size(), " values, not items x factors = ", items, " x ", o.factors);
    }
    for (auto const* side : {&user_factors, &item_factors}) {
      auto const it = std::find_if(side->begin(), side->end(), [](float v) { return !std::isfinite(v); });
      if (it != side->end()) {
        bad(side == &user_factors ? "user" : "item", "_factors has a non-finite value at row ",
            (it - side->begin()) / o.factors, ", column ", (it - side->begin()) % o.factors);
      }
    }
    if (seen_offsets.size() != static_cast<std::size_t>(users) + 1 || seen_offsets.front() != 0 ||
        seen_offsets.back() != static_cast<std::int64_t>(seen_items.size())) {
      bad("seen_offsets has ", seen_offsets.size(), " entries from ", seen_offsets.empty() ? 0 : seen_offsets.front(),
          " to ", seen_offsets.empty() ? 0 : seen_offsets.back(), "; expected users + 1 = ", users + 1,
          " from 0 to the ", seen_items.size(), " seen items");
    }
    for (std::size_t u = 0; u < static_cast<std::size_t>(users); ++u) {
      if (seen_offsets[u + 1] < seen_offsets[u]) bad("seen_offsets decrease at user ", u);
      for (auto p = seen_offsets[u]; p < seen_offsets[u + 1]; ++p) {
        auto const i = seen_items[static_cast<std::size_t>(p)];
        if (i < 0 || i >= items || (p > seen_offsets[u] && i <= seen_items[static_cast<std::size_t>(p) - 1])) {
          bad("seen_items of user ", u, " are not increasing item rows in [0, ", items, ") at entry ", p);
        }
      }
    }
    out.users_ = dense_matrix<cpu, float>(users, o.factors, std::span<float const>(user_factors));
    out.items_ = dense_matrix<cpu, float>(items, o.factors, std::span<float const>(item_factors));
    out.seen_offsets_ = std::move(seen_offsets);
    out.seen_items_ = std::move(seen_items);
    out.loss_ = std::move(loss);
    out.finish_fit();
    return out;
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
    MGPU_EXPECTS(std::isfinite(o.loss_tolerance) && o.loss_tolerance >= 0,
                 "als: loss_tolerance must be finite and >= 0, got ", o.loss_tolerance);
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
    auto const threads = host_devices ? static_cast<std::uint64_t>(backend::cpu::host_threads()) : 0;
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
    auto step = solve_step("user", policy.memory_budget());
    bool const track_loss = options_.compute_loss || options_.loss_tolerance > 0;
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
      if (track_loss) {
        loss = resident_objective(r, x, y, step);
        loss_.push_back(loss);
      }
      if (options_.on_iteration) options_.on_iteration(it, loss, seconds);
      // Strict, so that tolerance 0 never stops and neither does a loss of 0.
      bool const converged = options_.loss_tolerance > 0 && loss_.size() >= 2 &&
                             std::abs(loss_[loss_.size() - 2] - loss) < options_.loss_tolerance * loss_[loss_.size() - 2];
      report_progress(options_.progress, it, converged ? it : options_.iterations);
      if (converged) break;
    }
    gather(x.rows, users_.view());
    gather(y.rows, items_.view());
    finish_fit();
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
      // Sorted and unique per user (a view need not be canonical): recommend's test and save's layout.
      auto const begin = static_cast<std::ptrdiff_t>(seen_items_.size());
      for (auto c : r.row_columns(u)) seen_items_.push_back(static_cast<std::int64_t>(c));
      std::sort(seen_items_.begin() + begin, seen_items_.end());
      seen_items_.erase(std::unique(seen_items_.begin() + begin, seen_items_.end()), seen_items_.end());
      seen_offsets_[static_cast<std::size_t>(u) + 1] = static_cast<std::int64_t>(seen_items_.size());
    }
  }

  /// The users of a batched query that fit in one knn call: at most this many, and at
  /// most batch_entries (user, item) pairs of lists.
  static constexpr std::int64_t batch_rows = 4096;
  static constexpr std::int64_t batch_entries = std::int64_t{1} << 20;

  void check_query(char const* what, std::span<std::int64_t const> ids, std::int64_t count, char const* name,
                   std::int64_t k) const {
    MGPU_EXPECTS(fitted_, what, ": the model is not fitted");
    MGPU_EXPECTS(k >= 1, what, ": k must be at least 1, got ", k);
    for (std::size_t q = 0; q < ids.size(); ++q) {
      MGPU_EXPECTS(ids[q] >= 0 && ids[q] < count, what, ": ", name, " ", ids[q], " (position ", q,
                   ") is outside [0, ", count, ")");
    }
  }

  /// `ids`, or 0 .. count − 1 when it is empty.
  static std::vector<std::int64_t> all_if_empty(std::span<std::int64_t const> ids, std::int64_t count) {
    if (!ids.empty()) return {ids.begin(), ids.end()};
    std::vector<std::int64_t> all(static_cast<std::size_t>(count));
    std::iota(all.begin(), all.end(), std::int64_t{0});
    return all;
  }

  /// recommend for the user rows `rows`, whose seen items (sorted) are seen_of(q).
  template <class Kind, class Seen>
  topk_result<float> recommend_rows(execution_policy<Kind> const& policy, std::vector<std::int64_t> const& rows,
                                    std::int64_t k, als_recommend_options const& options, Seen const& seen_of) const {
    // Candidates sorted, so that ties toward the smaller position are ties toward the
    // smaller item; their factor rows gathered.
    std::vector<std::int64_t> candidates(options.items.begin(), options.items.end());
    for (std::size_t j = 0; j < candidates.size(); ++j) {
      MGPU_EXPECTS(candidates[j] >= 0 && candidates[j] < items_.rows(), "als::recommend: candidate item ",
                   candidates[j], " (position ", j, ") is outside [0, ", items_.rows(), ")");
    }
    std::sort(candidates.begin(), candidates.end());
    candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
    dense_matrix<cpu, float> gathered;
    auto base = const_view(items_);
    if (!candidates.empty()) {
      gathered = dense_matrix<cpu, float>(static_cast<std::int64_t>(candidates.size()), options_.factors);
      for (std::size_t j = 0; j < candidates.size(); ++j) {
        auto const src = items_.view().row(candidates[j]);
        std::copy(src.begin(), src.end(), gathered.view().row(static_cast<std::int64_t>(j)).begin());
      }
      base = const_view(gathered);
    }
    // How many of each row's seen items are candidates: the extra width of its search.
    std::vector<std::int64_t> extra(rows.size(), 0);
    if (options.exclude_seen) {
      std::vector<char> is_candidate;
      if (!candidates.empty()) {
        is_candidate.assign(static_cast<std::size_t>(items_.rows()), 0);
        for (auto i : candidates) is_candidate[static_cast<std::size_t>(i)] = 1;
      }
      for (std::size_t q = 0; q < rows.size(); ++q) {
        auto const seen = seen_of(q);
        extra[q] = candidates.empty()
                       ? static_cast<std::int64_t>(seen.size())
                       : std::count_if(seen.begin(), seen.end(),
                                       [&](std::int64_t i) { return is_candidate[static_cast<std::size_t>(i)] != 0; });
      }
      return rank_rows(policy, base, candidates, const_view(users_), rows, extra, seen_of, k,
                       knn_metric::inner_product, options.progress);
    }
    return rank_rows(policy, base, candidates, const_view(users_), rows, extra,
                     [](std::size_t) { return std::span<std::int64_t const>{}; }, k, knn_metric::inner_product,
                     options.progress);
  }

  /// similar_items / similar_users: the rows `rows` of `side` against all of it by cosine,
  /// each row itself left out.
  template <class Kind>
  static topk_result<float> similar_rows(execution_policy<Kind> const& policy, dense_view<float const> side,
                                         std::vector<std::int64_t> const& rows, std::int64_t k) {
    std::vector<std::int64_t> const extra(rows.size(), 1);
    return rank_rows(policy, side, {}, side, rows, extra,
                     [&](std::size_t q) { return std::span<std::int64_t const>(&rows[q], 1); }, k, knn_metric::cosine,
                     {});
  }

  /// The batched top-k search every query shares (see the file comment). For result row q
  /// the query is `queries.row(rows[q])`, ranked against the rows of `base` (whose ids are
  /// `base_ids`, increasing, or the row numbers when empty) by mgpu::knn with `metric`,
  /// leaving out the ids in excluded(q) (sorted), extra[q] of which are base ids. Rows go
  /// through in increasing order of extra[q], in batches of at most batch_rows rows and
  /// batch_entries pairs; a batch searches k + max extra[q] and keeps the first k ids
  /// not excluded, which are exactly the best k not excluded.
  template <class Kind, class Excluded>
  static topk_result<float> rank_rows(execution_policy<Kind> const& policy, dense_view<float const> base,
                                      std::span<std::int64_t const> base_ids, dense_view<float const> queries,
                                      std::vector<std::int64_t> const& rows, std::vector<std::int64_t> const& extra,
                                      Excluded const& excluded, std::int64_t k, knn_metric metric,
                                      progress_callback const& progress) {
    auto const n = rows.size();
    auto const candidates = base.rows;
    topk_result<float> result;
    result.k = k;
    result.candidates = candidates;
    result.larger_is_better = true;
    result.row_offsets.assign(n + 1, 0);
    if (n == 0 || candidates == 0) {
      if (n > 0) report_progress(progress, static_cast<std::int64_t>(n), static_cast<std::int64_t>(n));
      return result;
    }
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return extra[a] < extra[b]; });
    auto const width = static_cast<std::size_t>(std::min(k, candidates));
    std::vector<std::int64_t> ids(n * width);
    std::vector<float> scores(n * width);
    std::vector<std::size_t> counts(n, 0);
    for (std::size_t begin = 0; begin < n;) {
      std::size_t end = begin;
      std::int64_t search = 1;
      while (end < n && static_cast<std::int64_t>(end - begin) < batch_rows) {
        auto const wanted = std::min(candidates, k + extra[order[end]]);
        if (end > begin && static_cast<std::int64_t>(end - begin + 1) * std::max(search, wanted) > batch_entries) break;
        search = std::max(search, wanted);
        ++end;
      }
      dense_matrix<cpu, float> block(static_cast<std::int64_t>(end - begin), queries.cols);
      for (std::size_t b = begin; b < end; ++b) {
        auto const src = queries.row(rows[order[b]]);
        std::copy(src.begin(), src.end(), block.view().row(static_cast<std::int64_t>(b - begin)).begin());
      }
      auto const found = knn(policy, base, const_view(block), search, metric);
      for (std::size_t b = begin; b < end; ++b) {
        auto const q = order[b];
        auto const skip = excluded(q);
        auto const near = found.neighbors(static_cast<std::int64_t>(b - begin));
        auto const near_scores = found.scores_of(static_cast<std::int64_t>(b - begin));
        std::size_t kept = 0;
        for (std::size_t j = 0; j < near.size() && kept < width; ++j) {
          auto const id = base_ids.empty() ? near[j] : base_ids[static_cast<std::size_t>(near[j])];
          if (std::binary_search(skip.begin(), skip.end(), id)) continue;
          ids[q * width + kept] = id;
          scores[q * width + kept] = near_scores[j];
          ++kept;
        }
        counts[q] = kept;
      }
      begin = end;
      report_progress(progress, static_cast<std::int64_t>(begin), static_cast<std::int64_t>(n));
    }
    for (std::size_t q = 0; q < n; ++q) {
      result.row_offsets[q + 1] = result.row_offsets[q] + static_cast<std::int64_t>(counts[q]);
    }
    result.ids.resize(static_cast<std::size_t>(result.row_offsets[n]));
    result.scores.resize(result.ids.size());
    for (std::size_t q = 0; q < n; ++q) {
      auto const at = static_cast<std::ptrdiff_t>(result.row_offsets[q]);
      std::copy_n(ids.begin() + static_cast<std::ptrdiff_t>(q * width), counts[q], result.ids.begin() + at);
      std::copy_n(scores.begin() + static_cast<std::ptrdiff_t>(q * width), counts[q], result.scores.begin() + at);
    }
    return result;
  }

  /// What the solver kernels need to solve one side with the model's options.
  [[nodiscard]] detail::als_step solve_step(char const* side, std::size_t memory_budget = 0) const {
    return {options_.factors,
            options_.alpha,
            options_.unobserved_weight,
            options_.model == als_model::weighted,
            options_.solver,
            options_.cg_steps,
            side,
            memory_budget};
  }

  /// What a fitted or loaded model derives from its factors: the item side's system base
  /// for recalculate_user.
  void finish_fit() {
    item_system_ = detail::als_system_base(const_view(items_), options_.unobserved_weight, options_.regularization);
    fitted_ = true;
  }

  /// The sections of save() (listed there), in order.
  void write_sections(binary_writer& w) const {
    auto const& o = options_;
    w.write_value<std::int64_t>("factors", o.factors);
    w.write_value<std::int64_t>("iterations", o.iterations);
    w.write_value<double>("regularization", o.regularization);
    w.write_value<double>("alpha", o.alpha);
    w.write_value<double>("unobserved_weight", o.unobserved_weight);
    w.write_value<std::int32_t>("model", o.model == als_model::implicit ? 0 : 1);
    w.write_value<std::int32_t>("solver", o.solver == als_solver::cholesky ? 0 : 1);
    w.write_value<std::int64_t>("cg_steps", o.cg_steps);
    w.write_value<std::uint64_t>("seed", o.seed);
    w.write_value<std::uint8_t>("compute_loss", o.compute_loss ? 1 : 0);
    w.write_value<double>("loss_tolerance", o.loss_tolerance);
    w.write_value<std::int64_t>("users", users_.rows());
    w.write_value<std::int64_t>("items", items_.rows());
    w.write("user_factors", std::span<float const>(users_.data(), static_cast<std::size_t>(users_.rows() * users_.cols())));
    w.write("item_factors", std::span<float const>(items_.data(), static_cast<std::size_t>(items_.rows() * items_.cols())));
    w.write("seen_offsets", seen_offsets_);
    w.write("seen_items", seen_items_);
    w.write("loss_history", loss_);
  }

  als_options options_;
  dense_matrix<cpu, float> users_;
  dense_matrix<cpu, float> items_;
  std::vector<double> loss_;
  std::vector<double> seconds_;
  std::vector<std::int64_t> seen_offsets_;
  std::vector<std::int64_t> seen_items_;
  /// w0·YᵀY + λI of the fitted item factors (recalculate_user).
  std::vector<double> item_system_;
  bool fitted_ = false;
};

}  // namespace mgpu
