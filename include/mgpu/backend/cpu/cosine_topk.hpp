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
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <vector>

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

/// One corpus shard, resident on a host device: documents [first, first + count) of
/// the corpus, transposed and row-normalised, with each term's largest value.
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
  csr_view<T, I> corpus;                 // the whole corpus, for canonical rescoring
  std::span<T const> inv_norms;          // 1/‖c_d‖ for the whole corpus
  bool non_negative = true;              // every value >= 0: pruning is exact
  // The shard's documents row by row, normalised, for completing candidates: one
  // contiguous run per document, so a lookup touches one or two cache lines.
  struct entry {
    I column;
    T value;
  };
  std::vector<I> row_offsets;  // count + 1 offsets into rows
  std::vector<entry> rows;
  std::vector<T> doc_max;  // per document: its largest normalised value
};

/// Builds the shard for corpus rows [first, last). `inv_norms[d]` is 1/‖c_d‖ (0 for a
/// zero row); `non_negative` says whether queries and corpus have no negative value.
/// O(shard nnz + terms).
template <class T, class I>
cosine_shard<T, I> make_cosine_shard(csr_view<T, I> corpus, std::span<T const> inv_norms, I first,
                                     I last, bool non_negative) {
  cosine_shard<T, I> shard;
  shard.first = first;
  shard.corpus = corpus;
  shard.inv_norms = inv_norms;
  shard.non_negative = non_negative;
  auto const transposed = transpose(corpus.row_block(first, last));
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
  auto const normalised = [&](I p) {
    return post.values[p] * inv_norms[static_cast<std::size_t>(first + post.col_indices[p])];
  };
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
  shard.row_offsets.reserve(static_cast<std::size_t>(last - first) + 1);
  shard.row_offsets.push_back(0);
  shard.rows.reserve(static_cast<std::size_t>(corpus.row_begin(last) - corpus.row_begin(first)));
  shard.doc_max.reserve(static_cast<std::size_t>(last - first));
  for (I d = first; d < last; ++d) {
    T const scale = inv_norms[static_cast<std::size_t>(d)];
    T m = 0;
    for (I p = corpus.row_begin(d); p < corpus.row_end(d); ++p) {
      shard.rows.push_back({corpus.col_indices[p], corpus.values[p] * scale});
      m = std::max(m, shard.rows.back().value);
    }
    shard.doc_max.push_back(m);
    shard.row_offsets.push_back(static_cast<I>(shard.rows.size()));
  }
  return shard;
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

/// Per-thread scratch for scoring one shard.
template <class T, class I>
struct cosine_scratch {
  std::vector<T> acc;
  std::vector<unsigned char> seen;  // only with negative values (else acc != 0 says it)
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

  cosine_scratch(std::size_t docs, std::size_t terms, bool non_negative)
      : acc(docs, T{0}), seen(non_negative ? 0 : docs, 0), touched(docs + 1), tracked(docs, 0),
        rest(terms, rest_term{T{0}, T{0}}), rest_bits(terms / 64 + 1, 0) {}

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

inline void prefetch(void const* p) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p);
#else
  static_cast<void>(p);
#endif
}

/// Canonical score of query row q against corpus row d (see the file comment).
template <class T, class I>
T canonical_score(csr_view<T, I> queries, I q, T q_scale, csr_view<T, I> corpus, I d, T d_scale) {
  I a = queries.row_begin(q), a_end = queries.row_end(q);
  I b = corpus.row_begin(d), b_end = corpus.row_end(d);
  T sum = 0;
  while (a < a_end && b < b_end) {
    I const ca = queries.col_indices[a], cb = corpus.col_indices[b];
    if (ca < cb) {
      ++a;
    } else if (cb < ca) {
      ++b;
    } else {
      sum += (queries.values[a] * q_scale) * (corpus.values[b] * d_scale);
      ++a;
      ++b;
    }
  }
  return sum;
}

}  // namespace detail

/// Scores queries [q_first, q_last) against one shard and writes each query's best
/// (up to) k nonzero scores, best first, to out[(q - q_first) * k ...], with the
/// number written in counts[q - q_first]. Corpus indices are global. With
/// `exclude_self`, corpus row q is skipped for query q. Uses the calling thread's
/// OpenMP thread count (its device's share of the cores).
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
                       bool exclude_self, std::span<mgpu::detail::scored<T, I>> out,
                       std::span<std::int32_t> counts, std::span<std::atomic<T>> shared_theta = {}) {
  std::int64_t const completion_cost = detail::lookup_cost(shard);
  auto const shard_docs = static_cast<std::size_t>(shard.docs);
  auto const n_queries = static_cast<std::int64_t>(q_last - q_first);
#pragma omp parallel
  {
    detail::cosine_scratch<T, I> s(shard_docs, static_cast<std::size_t>(shard.terms), shard.non_negative);
    mgpu::detail::topk_heap<T, I> heap(k);
    mgpu::detail::topk_heap<T, I> approx(k);
#pragma omp for schedule(dynamic, 16)
    for (std::int64_t qi = 0; qi < n_queries; ++qi) {
      auto const q = static_cast<I>(q_first + qi);
      T const q_scale = query_inv_norms[static_cast<std::size_t>(q)];
      I const self = exclude_self ? static_cast<I>(q - shard.first) : I{-1};

      // Long queries (long documents) spread their score over many terms, so the bound
      // of the terms left stays above θ until late and the pruning costs more than it
      // saves (kernel docs: 2.7x slower pruned); they take the plain walk.
      auto const query_terms = static_cast<std::size_t>(queries.row_nnz(q));
      bool const prune = shard.non_negative && query_terms <= detail::max_pruned_terms;

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
        if (score != T{0} && approx.admits(detail::upper(score))) {
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

      // Accumulate tier by tier until no untouched document can reach the top k.
      T theta = -std::numeric_limits<T>::infinity();
      std::size_t j = 0;
      for (; j < s.terms.size(); ++j) {
        if (prune && j > 0) {
          if (s.tracker.size() == k) {
            theta = std::max(theta, detail::lower(s.refresh_tracker()));
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
            if (approx.size() == k) {
              theta = std::max(theta, detail::lower(approx.worst_score()));
              publish(theta);
            }
          }
          theta = read_shared(theta);
          // Stop when no untouched document can reach θ and the walk left is longer than
          // completing the candidates would be: a lookup costs about as much as
          // `completion_cost` postings. Counting the candidates costs a pass over the touched
          // documents, so it is done only when that is cheaper than the walk left.
          if (detail::upper(s.remaining[j]) < theta && static_cast<std::int64_t>(s.n_touched) < s.postings[j] &&
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
        if (shard.non_negative) {
          // Partial scores only grow, so acc == 0 means "not touched yet" and the
          // touched list is appended without a branch.
          T tracker_min = prune ? s.tracker_min : std::numeric_limits<T>::infinity();
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
      T const rest = detail::upper(s.remaining[j]);
      std::span<I const> const touched(s.touched.data(), s.n_touched);
      if (j == s.terms.size()) {
        for (I d : touched) {
          auto const i = static_cast<std::size_t>(d);
          T const score = s.acc[i];
          s.acc[i] = T{0};
          if (!shard.non_negative) s.seen[i] = 0;
          // Documents completed during the walk are among the candidates already.
          if ((s.tracked[i] & 2) != 0 || d == self || detail::upper(score) + rest < theta) continue;
          keep(score, d);
        }
      } else {
        auto const cutoff = [&] {
          return approx.size() == k ? std::max(theta, detail::lower(approx.worst_score())) : theta;
        };
        for (auto const& e : s.tracker) {
          auto const i = static_cast<std::size_t>(e.index);
          if ((s.tracked[i] & 2) != 0) continue;
          s.tracked[i] |= 2;
          complete(e.index, s.acc[i]);
        }
        T bar = read_shared(cutoff());
        T const rest_weight_sum = detail::upper(s.remaining_weight[j]);
        for (I d : touched) {
          auto const i = static_cast<std::size_t>(d);
          T const score = s.acc[i];
          s.acc[i] = T{0};
          if ((s.tracked[i] & 2) != 0 || d == self || detail::upper(score) + rest < bar) continue;
          // A document's values are at most its largest, so the terms not walked add
          // at most that times their total query weight: often far below `rest`.
          T const own = std::min(rest, detail::upper(shard.doc_max[i] * rest_weight_sum));
          if (detail::upper(score) + own < bar) continue;
          s.partial.push_back({detail::upper(score) + own, score, d});
        }
        // The lookups are random accesses: prefetch a few candidates ahead.
        // Best bound first: the k-th completed score then rises fastest, and the first
        // candidate whose bound falls below it ends the completion.
        auto& cand = s.partial;
        std::sort(cand.begin(), cand.end(), [](auto const& a, auto const& b) {
          return a.bound > b.bound || (a.bound == b.bound && a.row < b.row);
        });
        for (std::size_t c = 0; c < cand.size(); ++c) {
          if (cand[c].bound < bar) break;
          if (c + 16 < cand.size()) detail::prefetch(&shard.row_offsets[static_cast<std::size_t>(cand[c + 16].row)]);
          if (c + 8 < cand.size()) {
            auto const ahead = shard.row_offsets[static_cast<std::size_t>(cand[c + 8].row)];
            detail::prefetch(&shard.rows[static_cast<std::size_t>(ahead)]);
          }
          complete(cand[c].row, cand[c].score);
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
      // the k-th completed score.
      T const kth = read_shared(approx.size() == k ? detail::lower(approx.worst_score())
                                                   : -std::numeric_limits<T>::infinity());
      if (approx.size() == k) publish(kth);
      for (auto const& c : s.candidates) {
        if (detail::upper(c.score) < kth) continue;
        T const score = detail::canonical_score(queries, q, q_scale, shard.corpus, c.index,
                                                shard.inv_norms[static_cast<std::size_t>(c.index)]);
        if (score != T{0} && heap.admits(score)) heap.push({score, c.index});
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
     
      counts[static_cast<std::size_t>(qi)] = static_cast<std::int32_t>(heap.size());
      heap.drain_sorted(out.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(qi) * k));
    }
  }
}

}  // namespace mgpu::backend::cpu
