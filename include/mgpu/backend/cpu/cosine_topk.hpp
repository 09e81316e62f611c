// mgpu/backend/cpu/cosine_topk.hpp — host leaf kernel of cosine top-k: one corpus shard
// against a block of queries.
//
// The shard is stored transposed (terms x shard documents) with each document's
// values already divided by its L2 norm, so a query scores the shard by sparse
// accumulation over the posting lists of its terms (Gustavson's row-wise product).
//
// Exact pruning (when every value is non-negative, as in TF-IDF). Each long posting
// list is cut by value into impact tiers (its few largest values, then bands of smaller
// ones), and the query's tiers are taken in decreasing order of their largest possible
// contribution b = w_t · max c_dt over the tier (the MaxScore idea of Turtle & Flood,
// 1995, applied to impact-ordered segments as in Anh & Moffat's impact layouts). After
// each tier, θ = the k-th largest score known so far is a lower bound of the final k-th
// score: the tracker keeps the k best partial scores, and those documents are completed
// (their other terms looked up in their own rows) so that θ is the k-th best *full*
// score seen. R = Σ over terms of the bound of their first tier left bounds what any
// document not yet touched can score. Once R < θ no untouched document can enter the
// top k, so the bulk of the common terms' postings are never walked; the touched
// documents whose partial score plus their own bound can still reach θ are then
// completed best bound first. Bounds carry a relative slack far above float round-off,
// so the pruning never drops a true top-k document.
//
// Every reported score is the *canonical* dot product Σ_t (q_t/‖q‖)·(c_dt/‖c_d‖) summed
// in ascending column order in T, whichever path found the document. Scores are
// therefore bitwise identical whatever the sharding and the pruning, which is what
// makes `cpu`, `cpu:2`, `cpu:3` agree exactly.
//
// Thresholds: a search may keep only scores >= τ. With pruning, τ (less the bounds'
// slack) is the initial θ, so documents that cannot reach τ are never completed; the
// reported scores are filtered exactly (canonical score >= τ). With k = 0 (unbounded,
// cosine_matches_shard) every document whose canonical score is >= τ is listed.
//
// A shard owns everything it reads (its documents' normalised rows, the posting lists),
// so it outlives the matrix it was built from, and it keeps one scratch area per OpenMP
// thread of its device between searches (a search of one query does not allocate and
// clear O(shard documents + terms) per thread). The device's stream runs one task at a
// time, so the scratch is never shared by two searches.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <span>
#include <vector>

#include <omp.h>

#include "mgpu/backend/cpu/simd/posting_walk.hpp"
#include "mgpu/detail/topk_heap.hpp"
#include "mgpu/sparse/csr_matrix.hpp"
#include "mgpu/sparse/csr_view.hpp"
#include "mgpu/sparse/transpose.hpp"

namespace mgpu::backend::cpu {

namespace detail {
// Posting lists shorter than this keep one impact tier; longer ones are cut at the
// values ranked length / 64 and length / 8 (tuned on WordNet glosses: cuts at
// 1/256, 1/32, 1/4 or four tiers walked about as many postings and completed more
// candidates).
inline constexpr std::size_t min_tiered_postings = 256;
inline constexpr std::size_t tier_cuts[] = {64, 8};
}  // namespace detail

namespace detail {

/// Per-thread scratch for scoring one shard.
template <class T, class I>
struct cosine_scratch {
  std::vector<T> acc;
  std::vector<unsigned char> seen;  // only with negative values (else acc != 0 says it); see need_seen
  // The first n_touched entries are the touched documents; one spare slot takes the
  // branch-free append's write past the last document.
  std::vector<I> touched;
  std::size_t n_touched = 0;
  // A lower bound of the k-th best partial score, kept during accumulation: up to k
  // distinct documents (a min-heap) whose recorded partial scores never exceed their
  // current ones, because with non-negative values partial scores only grow.
  std::vector<mgpu::detail::scored<T, I>> tracker;
  std::vector<unsigned char> tracked;  // bit 1: in the tracker; bit 2: completed already
  std::vector<I> completed;            // the documents completed during the walk
  T tracker_min = -std::numeric_limits<T>::infinity();
  std::vector<mgpu::detail::scored<T, I>> candidates;  // (completed score, corpus row)
  // Touched documents to complete: a bound of the full score, the partial score.
  struct pending {
    T bound;
    T score;
    I row;  // in the shard
  };
  std::vector<pending> partial;
  // Per term with tiers not walked: its query weight, and the largest value of those
  // tiers (a document's value is in them iff it is at most that); else weight 0.
  struct rest_term {
    T weight;
    T limit;
  };
  std::vector<rest_term> rest;
  // Bit t set iff rest[t] is: a completion reads this 1/64 as large map (in L1) for
  // each entry of the candidate's row, and rest (which misses cache) only on a hit.
  std::vector<std::uint64_t> rest_bits;
  // One impact tier of a query term, as walked.
  struct term {
    I column;
    T weight;
    T bound;       // weight x the tier's largest value
    T next_max;    // the largest value of the term's next tier (0 if none)
    T max;         // the tier's largest value
    I begin;
    I end;
    bool last;  // the term's last tier
  };
  std::vector<term> terms;
  // Suffix sums over the tiers j..: remaining[j] bounds what a document can still gain
  // (per term, only the first tier left counts: a document is in one tier of a term),
  // remaining_weight[j] sums the query weights of the terms with a tier left, and
  // postings[j] is the number of postings left to walk.
  std::vector<T> remaining;
  std::vector<T> remaining_weight;
  std::vector<std::int64_t> postings;

  cosine_scratch(std::size_t docs, std::size_t terms)
      : acc(docs, T{0}), touched(docs + 1), tracked(docs, 0), rest(terms, rest_term{T{0}, T{0}}),
        rest_bits(terms / 64 + 1, 0) {}

  /// `seen` is needed only by searches with negative values; sized on first use.
  void need_seen() {
    if (seen.size() < acc.size()) seen.assign(acc.size(), 0);
  }

  static bool worse(mgpu::detail::scored<T, I> const& a, mgpu::detail::scored<T, I> const& b) {
    return a.score > b.score;  // heap order: the lowest score on top
  }

  void track(T partial, I d, std::size_t k) {
    if (tracker.size() == k) {
      std::pop_heap(tracker.begin(), tracker.end(), worse);
      tracked[static_cast<std::size_t>(tracker.back().index)] &= 2;
      tracker.pop_back();
    }
    tracker.push_back({partial, d});
    std::push_heap(tracker.begin(), tracker.end(), worse);
    tracked[static_cast<std::size_t>(d)] |= 1;
    if (tracker.size() == k) tracker_min = tracker.front().score;
  }

  /// Whether fewer than `limit` touched documents have a partial score of at least
  /// `floor`. Only the decision to stop walking depends on it, not the results, so it
  /// counts without the bounds' slack, in blocks, and stops as soon as it knows.
  bool fewer_candidates(T floor, std::int64_t limit) const {
    std::int64_t n = 0;
    T const* const a = acc.data();
    I const* const t = touched.data();
    for (std::size_t c = 0; c < n_touched; c += 256) {
      std::size_t const end = std::min(n_touched, c + 256);
      for (std::size_t i = c; i < end; ++i) n += static_cast<std::int64_t>(a[static_cast<std::size_t>(t[i])] >= floor);
      if (n >= limit) return false;
    }
    return n < limit;
  }

  /// Brings the tracked scores up to date; returns the smallest (a lower bound of θ).
  T refresh_tracker() {
    for (auto& e : tracker) e.score = acc[static_cast<std::size_t>(e.index)];
    std::make_heap(tracker.begin(), tracker.end(), worse);
    tracker_min = tracker.front().score;
    return tracker_min;
  }
};

}  // namespace detail

/// One corpus shard, resident on a host device: documents [first, first + docs) of
/// the corpus, transposed and row-normalised, with each term's largest value. Owns all
/// its data. Movable, not copyable (the scratch areas are per shard).
template <class T, class I>
struct cosine_shard {
  I first = 0;
  I terms = 0;                           // columns of the corpus
  I docs = 0;                            // documents in the shard
  // The posting lists (terms x shard documents, values c_dt / ‖c_d‖), split into impact
  // tiers: when pruning is exact, a long list is cut by value into up to three ranges of
  // decreasing values, each sorted by document; term t's tiers are
  // tiers[tier_first[t] .. tier_first[t + 1]), and every value of a tier exceeds every
  // value of the later tiers of the same term. A tier's bound (its largest value) is far
  // below the term's for the bulk of a common term's postings, so pruning stops sooner.
  std::vector<I> post_docs;
  std::vector<T> post_values;
  struct tier {
    I begin;
    I end;
    T max;  // largest value in the tier
  };
  std::vector<I> tier_first;  // terms + 1 offsets
  std::vector<tier> tiers;
  bool non_negative = true;  // every corpus value >= 0: tiers are built, pruning may apply
  // The shard's documents row by row, normalised (c_dt / ‖c_d‖), for completing
  // candidates and for the canonical scores: one contiguous run per document, so a
  // lookup touches one or two cache lines.
  struct entry {
    I column;
    T value;
  };
  std::vector<I> row_offsets;  // docs + 1 offsets into rows
  std::vector<entry> rows;
  std::vector<T> doc_max;  // per document: its largest normalised value
  // One scratch area per OpenMP thread of the device, kept between searches (file comment).
  mutable std::vector<std::unique_ptr<detail::cosine_scratch<T, I>>> scratch;
};

/// Builds the shard of `block`, the rows of corpus documents [first, first + block.rows)
/// as held on the device (offsets from 0). With `normalise`, each row is divided by its
/// L2 norm (summed in double, rounded to T; zero rows stay zero); without, the rows are
/// taken as already normalised (values used as they are: a saved index). `non_negative`
/// says whether the corpus has no negative value (then long posting lists are tiered).
/// O(shard nnz·log + terms).
template <class T, class I>
cosine_shard<T, I> make_cosine_shard(csr_view<T, I> block, I first, bool non_negative, bool normalise) {
  cosine_shard<T, I> shard;
  shard.first = first;
  shard.non_negative = non_negative;
  auto const n_docs = static_cast<std::size_t>(block.rows);
  std::vector<T> scale(n_docs, T{1});
  if (normalise) {
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < static_cast<std::int64_t>(n_docs); ++r) {
      double sum = 0;
      for (auto v : block.row_values(static_cast<I>(r))) sum += static_cast<double>(v) * static_cast<double>(v);
      scale[static_cast<std::size_t>(r)] = sum > 0 ? static_cast<T>(1.0 / std::sqrt(sum)) : T{0};
    }
  }
  auto const transposed = transpose(block);
  auto const post = transposed.view();
  shard.terms = post.rows;
  shard.docs = post.cols;
  shard.post_docs.resize(static_cast<std::size_t>(post.nnz()));
  shard.post_values.resize(static_cast<std::size_t>(post.nnz()));
  shard.tier_first.reserve(static_cast<std::size_t>(post.rows) + 1);
  shard.tier_first.push_back(0);
  std::vector<T> sorted;
  std::vector<T> cuts;
  // Posting p's value divided by its document's norm.
  auto const normalised = [&](I p) { return post.values[p] * scale[static_cast<std::size_t>(post.col_indices[p])]; };
  for (I t = 0; t < post.rows; ++t) {
    I const begin = post.row_begin(t), end = post.row_end(t);
    T m = 0;
    for (I p = begin; p < end; ++p) {
      T const v = normalised(p);
      shard.post_docs[static_cast<std::size_t>(p)] = post.col_indices[p];
      shard.post_values[static_cast<std::size_t>(p)] = v;
      m = std::max(m, v);
    }
    auto const length = static_cast<std::size_t>(end - begin);
    if (length == 0) {
      // No tier: queries skip terms absent from the shard.
    } else if (!non_negative || length < detail::min_tiered_postings) {
      shard.tiers.push_back({begin, end, m});
    } else {
      // Cuts at the values ranked length / 64 and length / 8 (decreasing).
      auto const at = shard.post_values.begin() + begin;
      sorted.assign(at, at + static_cast<std::ptrdiff_t>(length));
      std::sort(sorted.begin(), sorted.end(), std::greater<>());
      cuts.clear();
      for (std::size_t divisor : detail::tier_cuts) {
        std::size_t const rank = length / divisor;
        if (cuts.empty() || sorted[rank] < cuts.back()) cuts.push_back(sorted[rank]);
      }
      // Stable partition: values > cuts[0], then in (cuts[1], cuts[0]], then the rest.
      I out = begin;
      for (std::size_t level = 0; level <= cuts.size(); ++level) {
        T const high = level == 0 ? std::numeric_limits<T>::infinity() : cuts[level - 1];
        T const low = level == cuts.size() ? -std::numeric_limits<T>::infinity() : cuts[level];
        I const tier_begin = out;
        T tier_max = -std::numeric_limits<T>::infinity();
        for (I p = begin; p < end; ++p) {
          T const v = normalised(p);
          if (v <= high && v > low) {
            shard.post_docs[static_cast<std::size_t>(out)] = post.col_indices[p];
            shard.post_values[static_cast<std::size_t>(out)] = v;
            tier_max = std::max(tier_max, v);
            ++out;
          }
        }
        if (out > tier_begin) shard.tiers.push_back({tier_begin, out, tier_max});
      }
    }
    shard.tier_first.push_back(static_cast<I>(shard.tiers.size()));
  }
  shard.row_offsets.reserve(n_docs + 1);
  shard.row_offsets.push_back(0);
  shard.rows.reserve(static_cast<std::size_t>(block.nnz()));
  shard.doc_max.reserve(n_docs);
  for (I d = 0; d < block.rows; ++d) {
    T const s = scale[static_cast<std::size_t>(d)];
    T m = 0;
    for (I p = block.row_begin(d); p < block.row_end(d); ++p) {
      shard.rows.push_back({block.col_indices[p], block.values[p] * s});
      m = std::max(m, shard.rows.back().value);
    }
    shard.doc_max.push_back(m);
    shard.row_offsets.push_back(static_cast<I>(shard.rows.size()));
  }
  return shard;
}

/// The shard's documents as normalised rows (what make_cosine_shard(..., normalise =
/// false) takes back): offsets from 0, columns, values, appended to the three vectors
/// (offsets continue from offsets.back()). O(shard nnz).
template <class T, class I>
void append_normalised_rows(cosine_shard<T, I> const& shard, std::vector<std::int64_t>& offsets,
                            std::vector<I>& columns, std::vector<T>& values) {
  std::int64_t const base = offsets.empty() ? 0 : offsets.back();
  if (offsets.empty()) offsets.push_back(0);
  for (std::size_t d = 0; d + 1 < shard.row_offsets.size(); ++d) {
    offsets.push_back(base + static_cast<std::int64_t>(shard.row_offsets[d + 1]));
  }
  for (auto const& e : shard.rows) {
    columns.push_back(e.column);
    values.push_back(e.value);
  }
}

namespace detail {

// The walk stops once the touched documents that might reach θ, times this, are fewer
// than the postings left: a fixed part (the cache misses of reaching a row) plus the
// row's mean length, since completion reads the whole row, times 16, because the count
// (partial score + bound of everything left >= θ) far exceeds the completions made
// (against the rising k-th completed score, with each document's own bound). Tuned on
// WordNet glosses: 16x walks 2.5x the postings of 1x and completes 6x fewer candidates,
// 1.7x faster; 8x to 16x are within the noise, 32x is slower.
template <class T, class I>
std::int64_t lookup_cost(cosine_shard<T, I> const& shard) {
  auto const docs = static_cast<std::int64_t>(shard.row_offsets.size()) - 1;
  return 16 * (20 + (docs > 0 ? static_cast<std::int64_t>(shard.rows.size()) / docs : 0));
}

// Queries with more terms than this are scored without pruning (see the kernel).
inline constexpr std::size_t max_pruned_terms = 64;

// Slack on the pruning bounds, relative plus absolute: far above the round-off of
// summing a few thousand float products, far below any meaningful score gap.
template <class T>
inline constexpr T bound_slack = T(1e-4);

/// x rounded up by the slack (a safe upper bound of a score computed as x).
template <class T>
T upper(T x) noexcept {
  return x + (x < T{0} ? -x : x) * bound_slack<T> + bound_slack<T> * bound_slack<T>;
}

/// x rounded down by the slack (a safe lower bound of a score computed as x).
template <class T>
T lower(T x) noexcept {
  return x - (x < T{0} ? -x : x) * bound_slack<T> - bound_slack<T> * bound_slack<T>;
}

inline void prefetch(void const* p) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p);
#else
  static_cast<void>(p);
#endif
}

/// Canonical score of query row q against the shard's document d (local; see the file
/// comment): the products of the normalised values, summed in ascending column order.
template <class T, class I>
T canonical_score(csr_view<T, I> queries, I q, T q_scale, cosine_shard<T, I> const& shard, I d) {
  I a = queries.row_begin(q);
  I const a_end = queries.row_end(q);
  auto const* b = shard.rows.data() + shard.row_offsets[static_cast<std::size_t>(d)];
  auto const* const b_end = shard.rows.data() + shard.row_offsets[static_cast<std::size_t>(d) + 1];
  T sum = 0;
  while (a < a_end && b < b_end) {
    I const ca = queries.col_indices[a], cb = b->column;
    if (ca < cb) {
      ++a;
    } else if (cb < ca) {
      ++b;
    } else {
      sum += (queries.values[a] * q_scale) * b->value;
      ++a;
      ++b;
    }
  }
  return sum;
}

/// A bound of |accumulated − canonical| for a score summed from `terms` products of
/// normalised values (|Σ q_t c_t| <= 1): both sums are within γ_(terms + 2) of the exact
/// one (Higham, Accuracy and Stability of Numerical Algorithms, §3.1), so twice that,
/// generously rounded up. Used where the bounds' relative slack does not apply (long
/// queries, negative values).
template <class T>
T accumulation_margin(std::size_t terms) noexcept {
  return T(4) * static_cast<T>(terms + 2) * std::numeric_limits<T>::epsilon() + std::numeric_limits<T>::min();
}

/// The per-call part of a shard search (see cosine_topk_shard / cosine_matches_shard).
template <class T, class I>
struct shard_search {
  csr_view<T, I> queries;
  std::span<T const> query_inv_norms;
  I q_first;
  I q_last;
  std::size_t k;            // 0: unbounded (every score >= threshold)
  bool exclude_self;
  bool queries_non_negative;
  T threshold;              // -inf: none
};

/// The kernel behind cosine_topk_shard and cosine_matches_shard: calls
/// emit(qi, candidates) for each query of the block, on the thread that scored it, with
/// the query's reported (canonical score, global row) pairs, unordered (bounded: the
/// best k; unbounded: every score >= threshold). Nonzero scores only.
template <class T, class I, class Emit>
void score_shard(shard_search<T, I> const& c, cosine_shard<T, I> const& shard,
                 std::span<std::atomic<T>> shared_theta, Emit const& emit) {
  std::int64_t const completion_cost = lookup_cost(shard);
  auto const shard_docs = static_cast<std::size_t>(shard.docs);
  auto const n_queries = static_cast<std::int64_t>(c.q_last - c.q_first);
  bool const bounded = c.k > 0;
  std::size_t const k = c.k;
  bool const thresholded = c.threshold > -std::numeric_limits<T>::infinity();
  // Partial scores only grow (acc == 0 means untouched) when corpus and queries have
  // no negative value; else a `seen` flag says it.
  bool const non_negative = shard.non_negative && c.queries_non_negative;
  auto& pool = shard.scratch;
  if (pool.size() < static_cast<std::size_t>(omp_get_max_threads())) pool.resize(static_cast<std::size_t>(omp_get_max_threads()));
  csr_view<T, I> const queries = c.queries;
  auto const walk_level = simd::active();  // read once per search, outside the team
  // One query is one thread's work: starting the team would cost more than it does
  // (single-query searches of an index).
#pragma omp parallel if (n_queries > 1)
  {
    auto& slot = pool[static_cast<std::size_t>(omp_get_thread_num())];
    if (!slot) slot = std::make_unique<cosine_scratch<T, I>>(shard_docs, static_cast<std::size_t>(shard.terms));
    auto& s = *slot;
    if (!non_negative) s.need_seen();
    mgpu::detail::topk_heap<T, I> heap(k);
    mgpu::detail::topk_heap<T, I> approx(k);
    std::vector<mgpu::detail::scored<T, I>> found;
#pragma omp for schedule(dynamic, 16)
    for (std::int64_t qi = 0; qi < n_queries; ++qi) {
      auto const q = static_cast<I>(c.q_first + qi);
      T const q_scale = c.query_inv_norms[static_cast<std::size_t>(q)];
      I const self = c.exclude_self ? static_cast<I>(q - shard.first) : I{-1};

      // Long queries (long documents) spread their score over many terms, so the bound
      // of the terms left stays above θ until late and the pruning costs more than it
      // saves (kernel docs: 2.7x slower pruned); they take the plain walk.
      auto const query_terms = static_cast<std::size_t>(queries.row_nnz(q));
      bool const prune = non_negative && query_terms <= max_pruned_terms;
      // Without pruning, an accumulated score this far below the threshold cannot reach it.
      T const floor = thresholded && !prune ? c.threshold - accumulation_margin<T>(query_terms)
                                            : -std::numeric_limits<T>::infinity();

      // The tiers of the query's terms (a whole term when not pruning), by decreasing
      // bound (ties by column, then tier: a term's tiers stay in order), and the suffix
      // sums of the bounds.
      s.terms.clear();
      for (I p = queries.row_begin(q); p < queries.row_end(q); ++p) {
        I const t = queries.col_indices[p];
        T const w = queries.values[p] * q_scale;
        I const first_tier = shard.tier_first[static_cast<std::size_t>(t)];
        I const last_tier = shard.tier_first[static_cast<std::size_t>(t) + 1];
        if (first_tier == last_tier) continue;  // no posting in this shard
        if (!prune) {
          auto const& a = shard.tiers[static_cast<std::size_t>(first_tier)];
          auto const& z = shard.tiers[static_cast<std::size_t>(last_tier) - 1];
          s.terms.push_back({t, w, T{0}, T{0}, T{0}, a.begin, z.end, true});
          continue;
        }
        for (I r = first_tier; r < last_tier; ++r) {
          auto const& tier = shard.tiers[static_cast<std::size_t>(r)];
          T const next = r + 1 < last_tier ? shard.tiers[static_cast<std::size_t>(r) + 1].max : T{0};
          s.terms.push_back({t, w, w * tier.max, next, tier.max, tier.begin, tier.end, r + 1 == last_tier});
        }
      }
      if (prune) {
        std::sort(s.terms.begin(), s.terms.end(), [](auto const& a, auto const& b) {
          return a.bound > b.bound ||
                 (a.bound == b.bound && (a.column < b.column || (a.column == b.column && a.begin < b.begin)));
        });
      }
      s.remaining.assign(s.terms.size() + 1, T{0});
      s.remaining_weight.assign(s.terms.size() + 1, T{0});
      s.postings.assign(s.terms.size() + 1, 0);
      for (std::size_t j = s.terms.size(); j-- > 0;) {
        auto const& term = s.terms[j];
        // Tier j becomes its term's first tier left, replacing the next one (later).
        s.remaining[j] = s.remaining[j + 1] + term.bound - term.weight * term.next_max;
        s.remaining_weight[j] = s.remaining_weight[j + 1] + (term.last ? term.weight : T{0});
        s.postings[j] = s.postings[j + 1] + static_cast<std::int64_t>(term.end - term.begin);
      }

      // The tiers not walked yet, per term (pruning only): the term's weight and the
      // largest value of its first tier left; a document's value lies in the tiers left
      // iff it is at most that. Completing a document adds them from its own row.
      if (prune) {
        for (auto const& term : s.terms) {
          auto const t = static_cast<std::size_t>(term.column);
          auto& e = s.rest[t];
          e.weight = term.weight;
          e.limit = std::max(e.limit, term.max);
          s.rest_bits[t / 64] |= std::uint64_t{1} << (t % 64);
        }
      }
      auto const keep = [&](T score, I d) {
        I const global = static_cast<I>(shard.first + d);
        if (score == T{0} || score < floor) return;
        if (!bounded) {
          s.candidates.push_back({score, global});
        } else if (approx.admits(upper(score))) {
          s.candidates.push_back({score, global});
          approx.push({score, global});
        }
      };
      auto const complete = [&](I d, T partial) {
        auto const i = static_cast<std::size_t>(d);
        T extra = 0;
        for (I p = shard.row_offsets[i]; p < shard.row_offsets[i + 1]; ++p) {
          auto const& e = shard.rows[static_cast<std::size_t>(p)];
          auto const t = static_cast<std::size_t>(e.column);
          if ((s.rest_bits[t / 64] >> (t % 64) & 1) != 0) {
            auto const& r = s.rest[t];
            if (e.value <= r.limit) extra += r.weight * e.value;
          }
        }
        keep(partial + extra, d);
      };

      std::atomic<T>* const shared = shared_theta.empty() ? nullptr : &shared_theta[static_cast<std::size_t>(qi)];
      auto const publish = [&](T value) {
        if (shared == nullptr) return;
        T current = shared->load(std::memory_order_relaxed);
        while (value > current && !shared->compare_exchange_weak(current, value, std::memory_order_relaxed)) {
        }
      };
      auto const read_shared = [&](T value) {
        return shared == nullptr ? value : std::max(value, shared->load(std::memory_order_relaxed));
      };
      // The k-th completed score known (bounded), less the slack, or the threshold less
      // the slack, whichever is larger: a lower bound of the smallest score reported.
      T const theta_floor = prune && thresholded ? lower(c.threshold) : -std::numeric_limits<T>::infinity();
      auto const approx_full = [&] { return bounded && approx.size() == k; };

      // Accumulate tier by tier until no untouched document can reach the top k.
      T theta = theta_floor;
      std::size_t j = 0;
      for (; j < s.terms.size(); ++j) {
        if (prune && j > 0) {
          if (bounded && s.tracker.size() == k) {
            theta = std::max(theta, lower(s.refresh_tracker()));
            // Complete the tracked documents (the best partial scores): the k-th best
            // completed score is a lower bound of the final k-th score, and a far better
            // one than the tracker's partial scores, so the walk stops sooner.
            for (auto const& e : s.tracker) {
              auto const i = static_cast<std::size_t>(e.index);
              if ((s.tracked[i] & 2) != 0) continue;
              s.tracked[i] |= 2;
              s.completed.push_back(e.index);
              complete(e.index, s.acc[i]);
            }
            if (approx_full()) {
              theta = std::max(theta, lower(approx.worst_score()));
              publish(theta);
            }
          }
          theta = read_shared(theta);
          // Stop when no untouched document can reach θ and the walk left is longer than
          // completing the candidates would be: a lookup costs about as much as
          // `completion_cost` postings. Counting the candidates costs a pass over the touched
          // documents, so it is done only when that is cheaper than the walk left.
          if (upper(s.remaining[j]) < theta && static_cast<std::int64_t>(s.n_touched) < s.postings[j] &&
              s.fewer_candidates(theta - s.remaining[j], (s.postings[j] + completion_cost - 1) / completion_cost)) {
            break;
          }
        }
        auto const& term = s.terms[j];
        I const* const cols = shard.post_docs.data();
        T const* const vals = shard.post_values.data();
        T* const acc = s.acc.data();
        I* const touched = s.touched.data();
        std::size_t n = s.n_touched;
        if (non_negative && !(prune && bounded)) {
          // The plain walk (no tracker): the same sums as below, 16 postings at a time
          // where the CPU has AVX-512 (simd/posting_walk.hpp).
          n = simd::walk_postings(walk_level, acc, touched, n, cols, vals, term.begin, term.end, term.weight);
        } else if (non_negative) {
          // Partial scores only grow, so acc == 0 means "not touched yet" and the
          // touched list is appended without a branch.
          T tracker_min = prune && bounded ? s.tracker_min : std::numeric_limits<T>::infinity();
          for (I p = term.begin; p < term.end; ++p) {
            I const d = cols[p];
            auto const i = static_cast<std::size_t>(d);
            T const old = acc[i];
            T const partial = old + term.weight * vals[p];
            acc[i] = partial;
            touched[n] = d;
            n += static_cast<std::size_t>((old == T{0}) & (partial != T{0}));
            if (partial > tracker_min && !s.tracked[i] && d != self) {
              s.track(partial, d, k);
              tracker_min = s.tracker_min;
            }
          }
        } else {
          for (I p = term.begin; p < term.end; ++p) {
            I const d = cols[p];
            auto const i = static_cast<std::size_t>(d);
            if (!s.seen[i]) {
              s.seen[i] = 1;
              touched[n++] = d;
            }
            acc[i] += term.weight * vals[p];
          }
        }
        s.n_touched = n;
        if (prune) {
          // This tier is walked: the term's next tier, if any, is its first one left.
          auto const t = static_cast<std::size_t>(term.column);
          if (term.last) {
            s.rest[t] = {T{0}, T{0}};
            s.rest_bits[t / 64] &= ~(std::uint64_t{1} << (t % 64));
          } else {
            s.rest[t].limit = term.next_max;
          }
        }
      }

      // Complete the touched documents that can still reach θ: add the tiers not walked
      // by looking them up in each candidate's own row, then keep the k best completed
      // scores. The tracked documents (the best partial scores) are completed first:
      // their k-th completed score lifts θ close to its final value, so most touched
      // documents are then dismissed on their bound without a lookup.
      T const rest = upper(s.remaining[j]);
      std::span<I const> const touched(s.touched.data(), s.n_touched);
      if (j == s.terms.size()) {
        for (I d : touched) {
          auto const i = static_cast<std::size_t>(d);
          T const score = s.acc[i];
          s.acc[i] = T{0};
          if (!non_negative) s.seen[i] = 0;
          // Documents completed during the walk are among the candidates already.
          if ((s.tracked[i] & 2) != 0 || d == self || upper(score) + rest < theta) continue;
          keep(score, d);
        }
      } else {
        auto const cutoff = [&] { return approx_full() ? std::max(theta, lower(approx.worst_score())) : theta; };
        for (auto const& e : s.tracker) {
          auto const i = static_cast<std::size_t>(e.index);
          if ((s.tracked[i] & 2) != 0) continue;
          s.tracked[i] |= 2;
          complete(e.index, s.acc[i]);
        }
        T bar = read_shared(cutoff());
        T const rest_weight_sum = upper(s.remaining_weight[j]);
        for (I d : touched) {
          auto const i = static_cast<std::size_t>(d);
          T const score = s.acc[i];
          s.acc[i] = T{0};
          if ((s.tracked[i] & 2) != 0 || d == self || upper(score) + rest < bar) continue;
          // A document's values are at most its largest, so the terms not walked add
          // at most that times their total query weight: often far below `rest`.
          T const own = std::min(rest, upper(shard.doc_max[i] * rest_weight_sum));
          if (upper(score) + own < bar) continue;
          s.partial.push_back({upper(score) + own, score, d});
        }
        // The lookups are random accesses: prefetch a few candidates ahead.
        // Best bound first: the k-th completed score then rises fastest, and the first
        // candidate whose bound falls below it ends the completion.
        auto& cand = s.partial;
        std::sort(cand.begin(), cand.end(), [](auto const& a, auto const& b) {
          return a.bound > b.bound || (a.bound == b.bound && a.row < b.row);
        });
        for (std::size_t ci = 0; ci < cand.size(); ++ci) {
          if (cand[ci].bound < bar) break;
          if (ci + 16 < cand.size()) prefetch(&shard.row_offsets[static_cast<std::size_t>(cand[ci + 16].row)]);
          if (ci + 8 < cand.size()) {
            auto const ahead = shard.row_offsets[static_cast<std::size_t>(cand[ci + 8].row)];
            prefetch(&shard.rows[static_cast<std::size_t>(ahead)]);
          }
          complete(cand[ci].row, cand[ci].score);
          bar = read_shared(cutoff());
        }
        s.partial.clear();
      }
      if (prune) {
        for (auto const& term : s.terms) {
          auto const t = static_cast<std::size_t>(term.column);
          s.rest[t] = {T{0}, T{0}};
          s.rest_bits[t / 64] = 0;
        }
      }

      // Report canonical scores: rescore exactly the candidates within round-off of
      // the k-th completed score (or of the threshold).
      T const kth = read_shared(approx_full() ? std::max(theta_floor, lower(approx.worst_score())) : theta_floor);
      if (approx_full()) publish(kth);
      found.clear();
      for (auto const& cand : s.candidates) {
        if (upper(cand.score) < kth) continue;
        T const score = canonical_score(queries, q, q_scale, shard, static_cast<I>(cand.index - shard.first));
        if (score == T{0} || score < c.threshold) continue;
        if (!bounded) {
          found.push_back({score, cand.index});
        } else if (heap.admits(score)) {
          heap.push({score, cand.index});
        }
      }
      s.candidates.clear();
      approx.clear();
      s.n_touched = 0;
      // The tracker's members are exactly the flagged documents (a member may have a
      // zero partial score and so be missing from the touched list).
      for (auto const& e : s.tracker) s.tracked[static_cast<std::size_t>(e.index)] = 0;
      for (I d : s.completed) s.tracked[static_cast<std::size_t>(d)] = 0;
      s.completed.clear();
      s.tracker.clear();
      s.tracker_min = -std::numeric_limits<T>::infinity();

      if (bounded) {
        found.resize(heap.size());
        heap.drain_sorted(found.begin());
      } else {
        std::sort(found.begin(), found.end(), mgpu::detail::ranks_before<T, I>);
      }
      emit(qi, std::span<mgpu::detail::scored<T, I> const>(found));
    }
  }
}

}  // namespace detail

/// Scores queries [q_first, q_last) against one shard and writes each query's best
/// (up to) k nonzero scores that are >= `threshold` (-inf: no threshold), best first, to
/// out[(q - q_first) * k ...], with the number written in counts[q - q_first]. Corpus
/// indices are global. With `exclude_self`, corpus row q is skipped for query q.
/// `queries_non_negative` says whether the queries have no negative value (pruning needs
/// it as well as a non-negative corpus). Uses the calling thread's OpenMP thread count
/// (its device's share of the cores) and the shard's scratch areas.
///
/// `shared_theta` (empty, or one entry per query, starting at -inf) is shared by the
/// shards that score the same queries at the same time: each publishes a lower bound of
/// its k-th best score (the global k-th score is at least that) and prunes with the
/// largest one published, so a shard whose own k-th score is low does not walk and
/// complete what another shard has already outscored. The lists a shard returns then
/// depend on timing, but never lose a document of the global top k (its score is at
/// least every published bound), so their exact merge does not.
template <class T, class I>
void cosine_topk_shard(csr_view<T, I> queries, std::span<T const> query_inv_norms,
                       cosine_shard<T, I> const& shard, I q_first, I q_last, std::size_t k,
                       bool exclude_self, bool queries_non_negative, T threshold,
                       std::span<mgpu::detail::scored<T, I>> out, std::span<std::int32_t> counts,
                       std::span<std::atomic<T>> shared_theta = {}) {
  detail::shard_search<T, I> const search{queries, query_inv_norms, q_first, q_last, k,
                                          exclude_self, queries_non_negative, threshold};
  detail::score_shard(search, shard, shared_theta,
                      [&](std::int64_t qi, std::span<mgpu::detail::scored<T, I> const> found) {
                        auto const row = static_cast<std::size_t>(qi);
                        std::copy(found.begin(), found.end(), out.begin() + static_cast<std::ptrdiff_t>(row * k));
                        counts[row] = static_cast<std::int32_t>(found.size());
                      });
}

/// Every nonzero score >= `threshold` of queries [q_first, q_last) against one shard
/// (k = 0: no bound on the number): query q's matches, ranked by ranks_before (best
/// first, ties toward the smaller index), are entries[offsets[q - q_first] ..
/// offsets[q - q_first + 1]); the vectors are overwritten (offsets: queries + 1 entries).
/// Other arguments as cosine_topk_shard. Memory: the matches, plus per OpenMP thread the
/// matches it found.
template <class T, class I>
void cosine_matches_shard(csr_view<T, I> queries, std::span<T const> query_inv_norms,
                          cosine_shard<T, I> const& shard, I q_first, I q_last, bool exclude_self,
                          bool queries_non_negative, T threshold, std::vector<std::int64_t>& offsets,
                          std::vector<mgpu::detail::scored<T, I>>& entries) {
  auto const rows = static_cast<std::size_t>(q_last - q_first);
  // Per query: the thread that found its matches and where they start in its list.
  struct located {
    std::uint32_t thread;
    std::size_t begin;
  };
  std::vector<located> where(rows);
  offsets.assign(rows + 1, 0);
  std::vector<std::vector<mgpu::detail::scored<T, I>>> lists(static_cast<std::size_t>(omp_get_max_threads()));
  detail::shard_search<T, I> const search{queries, query_inv_norms, q_first, q_last, 0,
                                          exclude_self, queries_non_negative, threshold};
  detail::score_shard(search, shard, {}, [&](std::int64_t qi, std::span<mgpu::detail::scored<T, I> const> found) {
    auto const thread = static_cast<std::uint32_t>(omp_get_thread_num());
    auto& list = lists[thread];
    auto const row = static_cast<std::size_t>(qi);
    where[row] = {thread, list.size()};
    offsets[row + 1] = static_cast<std::int64_t>(found.size());
    list.insert(list.end(), found.begin(), found.end());
  });
  for (std::size_t r = 0; r < rows; ++r) offsets[r + 1] += offsets[r];
  entries.resize(static_cast<std::size_t>(offsets[rows]));
  for (std::size_t r = 0; r < rows; ++r) {
    auto const n = static_cast<std::size_t>(offsets[r + 1] - offsets[r]);
    auto const& list = lists[where[r].thread];
    std::copy_n(list.begin() + static_cast<std::ptrdiff_t>(where[r].begin), n,
                entries.begin() + offsets[r]);
  }
}

}  // namespace mgpu::backend::cpu
