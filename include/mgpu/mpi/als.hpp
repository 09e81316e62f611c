// mgpu/mpi/als.hpp — implicit / weighted ALS (algorithms/als.hpp) with users and items
// sharded over MPI ranks, equal to the single-process fit.
//
//   auto halves = mpi::als_halves(policy, whole_r);            // or each rank builds its own
//   auto fit = mpi::als_fit(policy, halves.users, halves.items, options);
//   fit.user_factors, fit.item_factors                          // all rows, on every rank
//
// Every rank holds the interaction rows of its users (users_r x items, rows of R) and of
// its items (items_r x users, rows of Rᵀ); ranks' users (and items) follow each other in
// rank order. An iteration, as mgpu::als::fit's (users solved with Y fixed, then items
// with the new X fixed), with no new solver code:
//   1. every rank solves its users' normal equations against the whole Y it holds, with
//      the public als::recalculate_users of a model whose item factors are Y (built by
//      als::fit with 0 iterations and 0 users: w0·YᵀY + λI formed once per half-step, in
//      double, from the rank's whole copy of Y — the Gram matrix is computed redundantly
//      on every rank, as every device of one process computes it from its replica, so
//      nothing is reduced and nothing but the solved rows moves);
//   2. the ranks' solved rows are gathered on every rank (MPI_Allgatherv): the whole X;
//   3. the same for the items against X, then the whole Y is gathered.
// The initial item factors are mgpu::als's (hash of seed, side, row and column; zero for
// items without entries), computed on every rank from the items' emptiness, which is
// gathered once (one byte per item). Each row's solve is the single-process kernel
// (backend/cpu als_solve_cholesky) on the same system and the same fixed side, so the
// factors equal the single-process fit's on host devices (the tests check 1e-5 relative,
// as issue 20 asks, and also find them bitwise equal).
//
// The loss (compute_loss, loss_tolerance): w0·Σ (XᵀX)∘(YᵀY) + λ (tr XᵀX + tr YᵀY) from
// the whole copies, plus the observed corrections Σ_{(u,i) observed} w_ui (t_ui − x_u·y_i)²
// − w0 (x_u·y_i)², each rank over its users in double, the ranks' sums gathered and added
// in rank order: the same value on every rank, equal to the single-process loss up to
// round-off (the observed sum is added in another order).
//
// Solver: Cholesky only. The conjugate-gradient solver starts each row from its previous
// factors inside als::fit, while als::recalculate_users starts from zero, so a CG fit over
// ranks would not be the single-process one; it throws invalid_argument.
//
// What crosses between ranks per iteration: the two all-gathers, (ranks − 1)·(users +
// items)·f·4 bytes arriving at each rank (counted in policy.transfers() as host_of(s) ->
// host_of(r)); with the loss, one double per rank; once: the items' emptiness (1 byte per
// item) and the agreements. Memory per rank: the whole X and Y (4 (users + items) f bytes,
// as each device of one process holds a replica) plus its interaction rows.
#pragma once

#include <mpi.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <span>
#include <utility>
#include <vector>

#include "mgpu/algorithms/als.hpp"
#include "mgpu/core/error.hpp"
#include "mgpu/core/progress.hpp"
#include "mgpu/dense/dense_matrix.hpp"
#include "mgpu/mpi/error.hpp"
#include "mgpu/mpi/policy.hpp"
#include "mgpu/mpi/topk_merge.hpp"
#include "mgpu/sparse/csr_matrix.hpp"
#include "mgpu/sparse/partition.hpp"
#include "mgpu/sparse/transpose.hpp"

namespace mgpu::mpi {

/// The result of als_fit: both sides' factors, whole, on every rank.
struct als_fit_result {
  /// X, users x f, and Y, items x f (all rows; the same on every rank).
  dense_matrix<cpu, float> user_factors;
  dense_matrix<cpu, float> item_factors;
  /// This rank's users are rows [first_user, first_user + its user rows) of X; its items
  /// likewise of Y.
  std::int64_t first_user = 0;
  std::int64_t first_item = 0;
  /// The loss after each iteration (empty unless compute_loss or loss_tolerance).
  std::vector<double> loss_history;
  /// Iterations run (fewer than options.iterations when loss_tolerance stopped the fit).
  int iterations = 0;
};

/// One rank's halves of an interaction matrix: its users' rows of R and its items' rows of Rᵀ.
template <class T, class I>
struct als_halves_result {
  csr_matrix<cpu, T, I> users;
  csr_matrix<cpu, T, I> items;
};

namespace detail {

/// The whole matrix of every rank's rows (rows x f each, in rank order), on every rank.
template <class Kind>
dense_matrix<cpu, float> all_gather_factor_rows(distributed_policy<Kind> const& policy,
                                                dense_matrix<cpu, float> const& mine, std::int64_t f,
                                                char const* what) {
  std::vector<std::int64_t> displs;
  auto all = all_gather_values<float>(policy, std::span<float const>(mine.data(), static_cast<std::size_t>(mine.rows() * f)),
                                      displs, what);
  dense_matrix<cpu, float> out(static_cast<std::int64_t>(all.size()) / std::max<std::int64_t>(f, 1), f);
  std::copy(all.begin(), all.end(), out.data());
  return out;
}

/// A model whose item factors are `fixed`: its recalculate_users solves rows against it.
template <class Kind>
als fixed_side_model(execution_policy<Kind> const& local, als_options options, dense_matrix<cpu, float> fixed) {
  options.iterations = 0;
  options.compute_loss = false;
  options.loss_tolerance = 0;
  options.on_iteration = {};
  options.progress = {};
  als model(options);
  auto const n = fixed.rows();
  csr_matrix<cpu, float, std::int64_t> const none(0, n);
  model.fit(local, none.view(), dense_matrix<cpu, float>(0, options.factors), std::move(fixed));
  return model;
}

/// Σ over observed (u, i) of rows [0, r.rows) of w (t − x·y)² − w0 (x·y)², in double.
template <class T, class I>
double observed_correction(csr_view<T, I> r, dense_view<float const> x, std::int64_t first_user,
                           dense_view<float const> y, als_options const& o) {
  double sum = 0;
  for (I u = 0; u < r.rows; ++u) {
    double row = 0;
    for (I p = r.row_offsets[u]; p < r.row_offsets[u + 1]; ++p) {
      auto const i = static_cast<std::int64_t>(r.col_indices[p]);
      double dot = 0;
      for (std::int64_t j = 0; j < x.cols; ++j) {
        dot += static_cast<double>(x(first_user + u, j)) * static_cast<double>(y(i, j));
      }
      auto const v = static_cast<double>(r.values[p]);
      double const w = 1.0 + o.alpha * v;
      double const t = o.model == als_model::weighted ? v : 1.0;
      row += w * (t - dot) * (t - dot) - o.unobserved_weight * dot * dot;
    }
    sum += row;
  }
  return sum;
}

/// The Gram matrix XᵀX of a host matrix, in double (row by row).
inline std::vector<double> gram(dense_view<float const> a) {
  auto const f = static_cast<std::size_t>(a.cols);
  std::vector<double> g(f * f, 0.0);
  for (std::int64_t r = 0; r < a.rows; ++r) {
    for (std::size_t i = 0; i < f; ++i) {
      auto const ai = static_cast<double>(a(r, static_cast<std::int64_t>(i)));
      for (std::size_t j = 0; j < f; ++j) g[i * f + j] += ai * static_cast<double>(a(r, static_cast<std::int64_t>(j)));
    }
  }
  return g;
}

}  // namespace detail

/// Fits ALS (mgpu::als's model and options) with users and items sharded over the ranks
/// (see the file comment). Collective over the policy's communicator.
///
/// @param my_users  this rank's users' rows of R: users_r x items (items = the whole
///                  item count, equal on every rank).
/// @param my_items  this rank's items' rows of Rᵀ: items_r x users (the whole user count).
/// @param options   als_options, the same on every rank (checked: f, iterations, λ, α, w0,
///                  model, solver, seed); solver must be cholesky. on_iteration and
///                  progress are called on every rank, after each iteration.
/// @returns the whole X and Y on every rank, the loss history, this rank's first rows.
/// @throws on every rank alike: invalid_argument (the conjugate-gradient solver; ranks
///         disagreeing on an option; the halves' shapes not adding up: Σ users_r must be
///         the columns of my_items, Σ items_r the columns of my_users, and the nnz of both
///         halves equal), and what als::fit / recalculate_users throw on any rank (NaN,
///         negative weights, numerical_error), prefixed "rank R of N: "; mpi_error.
/// Cost per iteration and rank: the solves of its rows, O(nnz_r f² + (users_r + items_r)
/// f³/3), two Gram matrices O((users + items) f²), and the two all-gathers.
template <class Kind, class T, class I>
als_fit_result als_fit(distributed_policy<Kind> const& policy, csr_view<T, I> my_users, csr_view<T, I> my_items,
                       als_options const& options = {}) {
  constexpr char const* what = "mpi::als_fit";
  auto const comm = policy.comm();
  auto error = detail::capture([&] {
    (void)als(options);  // the options' own checks
    MGPU_EXPECTS(options.solver == als_solver::cholesky, what,
                 ": only the cholesky solver runs over ranks (conjugate_gradient starts each row from its previous "
                 "factors inside als::fit, which a rank cannot reproduce)");
  });
  detail::agree(comm, what,
                {{"the option factors", options.factors},
                 {"the option iterations", options.iterations},
                 detail::floating_value("the option regularization", options.regularization),
                 detail::floating_value("the option alpha", options.alpha),
                 detail::floating_value("the option unobserved_weight", options.unobserved_weight),
                 {"the options model and solver", static_cast<std::int64_t>(options.model) * 2 +
                                                      static_cast<std::int64_t>(options.solver)},
                 {"the option seed", static_cast<std::int64_t>(options.seed)},
                 detail::floating_value("the option loss_tolerance (loss computed if set, or compute_loss)",
                                        options.loss_tolerance > 0 || options.compute_loss ? options.loss_tolerance
                                                                                           : -1.0)},
                error);
  auto const f = options.factors;
  auto const user_starts = detail::gather_row_starts(policy, static_cast<std::int64_t>(my_users.rows));
  auto const item_starts = detail::gather_row_starts(policy, static_cast<std::int64_t>(my_items.rows));
  auto const users = user_starts.back();
  auto const items = item_starts.back();
  std::array<std::int64_t, 2> const nnz_mine{static_cast<std::int64_t>(my_users.nnz()),
                                             static_cast<std::int64_t>(my_items.nnz())};
  std::array<std::int64_t, 2> nnz{};
  MGPU_MPI_TRY(MPI_Allreduce(nnz_mine.data(), nnz.data(), 2, MPI_INT64_T, MPI_SUM, comm));
  error = detail::capture([&] {
    MGPU_EXPECTS(static_cast<std::int64_t>(my_users.cols) == items && static_cast<std::int64_t>(my_items.cols) == users &&
                     nnz[0] == nnz[1],
                 what, ": the halves do not add up: the ranks hold ", users, " users and ", items,
                 " items, this rank's user rows have ", static_cast<std::int64_t>(my_users.cols),
                 " columns and its item rows ", static_cast<std::int64_t>(my_items.cols), "; the user rows hold ",
                 nnz[0], " entries, the item rows ", nnz[1]);
  });
  detail::agree(comm, "mpi::als_fit (shapes)", {}, error);

  als_fit_result result;
  auto const rank = static_cast<std::size_t>(policy.rank());
  result.first_user = user_starts[rank];
  result.first_item = item_starts[rank];

  // The initial items, from every item's emptiness.
  std::vector<char> my_empty(static_cast<std::size_t>(my_items.rows));
  for (I i = 0; i < my_items.rows; ++i) my_empty[static_cast<std::size_t>(i)] = my_items.row_nnz(i) == 0 ? 1 : 0;
  std::vector<std::int64_t> displs;
  auto const empty_items = detail::all_gather_values<char>(policy, my_empty, displs, what);
  auto y = ::mgpu::detail::als_initial_factors(empty_items, f, options.seed, 1);
  dense_matrix<cpu, float> x(users, f, 0.0f);

  bool const track_loss = options.compute_loss || options.loss_tolerance > 0;
  for (int it = 1; it <= options.iterations; ++it) {
    auto const start = std::chrono::steady_clock::now();
    dense_matrix<cpu, float> mine;
    error = detail::capture([&] {
      auto const by_items = detail::fixed_side_model(policy.local(), options, std::move(y));
      mine = by_items.recalculate_users(my_users);
      y = dense_matrix<cpu, float>(by_items.item_factors().rows(), f);
      std::copy_n(by_items.item_factors().data(), y.rows() * f, y.data());
    });
    detail::agree(comm, "mpi::als_fit (users)", {}, error);
    x = detail::all_gather_factor_rows(policy, mine, f, what);
    error = detail::capture([&] {
      auto const by_users = detail::fixed_side_model(policy.local(), options, std::move(x));
      mine = by_users.recalculate_users(my_items);
      x = dense_matrix<cpu, float>(by_users.item_factors().rows(), f);
      std::copy_n(by_users.item_factors().data(), x.rows() * f, x.data());
    });
    detail::agree(comm, "mpi::als_fit (items)", {}, error);
    y = detail::all_gather_factor_rows(policy, mine, f, what);
    double const seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.iterations = it;
    double loss = std::numeric_limits<double>::quiet_NaN();
    if (track_loss) {
      double const part = detail::observed_correction(my_users, const_view(x), result.first_user, const_view(y), options);
      std::vector<double> parts(static_cast<std::size_t>(policy.ranks()));
      MGPU_MPI_TRY(MPI_Allgather(&part, 1, MPI_DOUBLE, parts.data(), 1, MPI_DOUBLE, comm));
      double observed = 0;
      for (double p : parts) observed += p;
      auto const gx = detail::gram(const_view(x));
      auto const gy = detail::gram(const_view(y));
      double all_pairs = 0;
      for (std::size_t i = 0; i < gx.size(); ++i) all_pairs += gx[i] * gy[i];
      double trace = 0;
      auto const fs = static_cast<std::size_t>(f);
      for (std::size_t j = 0; j < fs; ++j) trace += gx[j * fs + j] + gy[j * fs + j];
      loss = options.unobserved_weight * all_pairs + observed + options.regularization * trace;
      result.loss_history.push_back(loss);
    }
    if (options.on_iteration) options.on_iteration(it, loss, seconds);
    auto const& l = result.loss_history;
    bool const converged = options.loss_tolerance > 0 && l.size() >= 2 &&
                           std::abs(l[l.size() - 2] - loss) < options.loss_tolerance * l[l.size() - 2];
    report_progress(options.progress, it, converged ? it : options.iterations);
    if (converged) break;
  }
  result.user_factors = std::move(x);
  result.item_factors = std::move(y);
  return result;
}

/// Overload for owning matrices.
template <class Kind, class T, class I>
als_fit_result als_fit(distributed_policy<Kind> const& policy, csr_matrix<cpu, T, I> const& my_users,
                       csr_matrix<cpu, T, I> const& my_items, als_options const& options = {}) {
  return als_fit(policy, my_users.view(), my_items.view(), options);
}

/// This rank's halves of an interaction matrix every rank holds whole: users split over
/// the ranks by nnz (partition_rows_by_nnz of R over ranks() parts), items likewise (of
/// Rᵀ). Not collective (every rank computes the same splits). O(nnz).
template <class Kind, class T, class I>
als_halves_result<T, I> als_halves(distributed_policy<Kind> const& policy, csr_view<T, I> whole) {
  auto const rank = static_cast<std::size_t>(policy.rank());
  auto const ranks = static_cast<std::size_t>(policy.ranks());
  auto const rt = transpose(whole);
  auto const ub = partition_rows_by_nnz(whole, ranks);
  auto const ib = partition_rows_by_nnz(rt.view(), ranks);
  auto copy = [](csr_view<T, I> v) {
    auto const base = v.rows > 0 ? v.row_offsets[0] : I{0};
    std::vector<I> offsets(static_cast<std::size_t>(v.rows) + 1);
    for (I r = 0; r <= v.rows; ++r) offsets[static_cast<std::size_t>(r)] = v.rows > 0 ? v.row_offsets[r] - base : I{0};
    auto const nnz = static_cast<std::size_t>(v.nnz());
    std::vector<I> cols(v.col_indices + base, v.col_indices + base + nnz);
    std::vector<T> values(v.values + base, v.values + base + nnz);
    return csr_matrix<cpu, T, I>(static_cast<std::int64_t>(v.rows), static_cast<std::int64_t>(v.cols), std::move(offsets),
                                 std::move(cols), std::move(values));
  };
  return {copy(whole.row_block(static_cast<I>(ub[rank]), static_cast<I>(ub[rank + 1]))),
          copy(rt.view().row_block(static_cast<I>(ib[rank]), static_cast<I>(ib[rank + 1])))};
}

}  // namespace mgpu::mpi
