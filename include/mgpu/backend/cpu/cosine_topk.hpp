// mgpu/backend/cpu/cosine_topk.hpp — host leaf kernel of cosine top-k: one corpus shard
// against a block of queries.
//
// The shard is stored transposed (terms x shard documents) with each document's
// values already divided by its L2 norm, so a query scores the shard by sparse
// accumulation over the posting lists of its terms (Gustavson's row-wise product).
//
// Exact pruning (when every value is non-negative, as in TF-IDF). Query terms are taken
// in decreasing order of their largest possible contribution b_t = w_t · max_d c_dt
// (the MaxScore idea of Turtle & Flood, 1995). After each term, θ = the k-th largest
// partial score is a lower bound of the final k-th score, and R = Σ b_t over the terms
// not yet taken bounds the score of any document not yet touched. Once R < θ no
// untouched document can enter the top k, so the long posting lists of common terms
// are never walked; the touched documents whose partial score plus R can still reach θ
// are then scored in full. Bounds carry a relative slack far above float round-off, so
// the pruning never drops a true top-k document.
//
// Every reported score is the *canonical* dot product Σ_t (q_t/‖q‖)·(c_dt/‖c_d‖) summed
// in ascending column order in T, whichever path found the document. Scores are
// therefore bitwise identical whatever the sharding and the pruning, which is what
// makes `cpu`, `cpu:2`, `cpu:3` agree exactly.
#pragma once

#include <algorithm>
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

/// One corpus shard, resident on a host device: documents [first, first + count) of
/// the corpus, transposed and row-normalised, with each term's largest value.
template <class T, class I>
struct cosine_shard {
  I first = 0;
  csr_matrix<mgpu::cpu, T, I> postings;  // terms x count, values c_dt / ‖c_d‖
  std::vector<T> term_max;               // per term: max over the shard's documents
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
  cosine_shard<T, I> shard{first, transpose(corpus.row_block(first, last)), {}, corpus, inv_norms,
                           non_negative, {}, {}, {}};
  auto const post = shard.postings.view();
  auto vals = shard.postings.values();
  shard.term_max.assign(static_cast<std::size_t>(post.rows), T{0});
  for (I t = 0; t < post.rows; ++t) {
    T m = 0;
    for (I p = post.row_begin(t); p < post.row_end(t); ++p) {
      auto const i = static_cast<std::size_t>(p);
      vals[i] *= inv_norms[static_cast<std::size_t>(first + post.col_indices[p])];
      m = std::max(m, vals[i]);
    }
    shard.term_max[static_cast<std::size_t>(t)] = m;
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

// Postings walked that cost about as much as completing one candidate by row lookup:
// a fixed part (the cache misses of reaching the row) plus the row's mean length, since
// completion reads the whole row (tuned on WordNet glosses and the kernel docs).
template <class T, class I>
std::int64_t lookup_cost(cosine_shard<T, I> const& shard) {
  auto const docs = static_cast<std::int64_t>(shard.row_offsets.size()) - 1;
  return 20 + (docs > 0 ? static_cast<std::int64_t>(shard.rows.size()) / docs : 0);
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
  std::vector<unsigned char> tracked;  // 1: in the tracker; 2: also completed already
  T tracker_min = -std::numeric_limits<T>::infinity();
  std::vector<mgpu::detail::scored<T, I>> candidates;  // (completed score, corpus row)
  std::vector<mgpu::detail::scored<T, I>> partial;     // (bound of the full score, shard row)
  std::vector<T> partial_score;                        // the partial score of each of those
  std::vector<T> rest_weight;  // per term: the query weight of a term not walked, else 0
  struct term {
    I column;
    T weight;
    T bound;
  };
  std::vector<term> terms;
  std::vector<T> remaining;            // remaining[j] = Σ bound of terms j.. (suffix sums)
  std::vector<T> remaining_weight;     // remaining_weight[j] = Σ weight of terms j..
  std::vector<std::int64_t> postings;  // postings[j] = Σ posting lengths of terms j..

  cosine_scratch(std::size_t docs, std::size_t terms, bool non_negative)
      : acc(docs, T{0}), seen(non_negative ? 0 : docs, 0), touched(docs + 1), tracked(docs, 0),
        rest_weight(terms, T{0}) {}

  static bool worse(mgpu::detail::scored<T, I> const& a, mgpu::detail::scored<T, I> const& b) {
    return a.score > b.score;  // heap order: the lowest score on top
  }

  void track(T partial, I d, std::size_t k) {
    if (tracker.size() == k) {
      std::pop_heap(tracker.begin(), tracker.end(), worse);
      tracked[static_cast<std::size_t>(tracker.back().index)] = 0;
      tracker.pop_back();
    }
    tracker.push_back({partial, d});
    std::push_heap(tracker.begin(), tracker.end(), worse);
    tracked[static_cast<std::size_t>(d)] = 1;
    if (tracker.size() == k) tracker_min = tracker.front().score;
  }

  /// How many touched documents can still reach θ with at most `rest` more.
  std::int64_t count_candidates(T rest, T theta) const {
    std::int64_t n = 0;
    for (std::size_t c = 0; c < n_touched; ++c) {
      n += static_cast<std::int64_t>(upper(acc[static_cast<std::size_t>(touched[c])]) + rest >= theta);
    }
    return n;
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
template <class T, class I>
void cosine_topk_shard(csr_view<T, I> queries, std::span<T const> query_inv_norms,
                       cosine_shard<T, I> const& shard, I q_first, I q_last, std::size_t k,
                       bool exclude_self, std::span<mgpu::detail::scored<T, I>> out,
                       std::span<std::int32_t> counts) {
  auto const post = shard.postings.view();
  std::int64_t const completion_cost = detail::lookup_cost(shard);
  auto const shard_docs = static_cast<std::size_t>(post.cols);
  auto const n_queries = static_cast<std::int64_t>(q_last - q_first);
#pragma omp parallel
  {
    detail::cosine_scratch<T, I> s(shard_docs, static_cast<std::size_t>(post.rows), shard.non_negative);
    mgpu::detail::topk_heap<T, I> heap(k);
    mgpu::detail::topk_heap<T, I> approx(k);
#pragma omp for schedule(dynamic, 16)
    for (std::int64_t qi = 0; qi < n_queries; ++qi) {
      auto const q = static_cast<I>(q_first + qi);
      T const q_scale = query_inv_norms[static_cast<std::size_t>(q)];
      I const self = exclude_self ? static_cast<I>(q - shard.first) : I{-1};

      // Terms by decreasing bound (ties by column), and the suffix sums of the bounds.
      s.terms.clear();
      for (I p = queries.row_begin(q); p < queries.row_end(q); ++p) {
        I const t = queries.col_indices[p];
        T const w = queries.values[p] * q_scale;
        s.terms.push_back({t, w, w * shard.term_max[static_cast<std::size_t>(t)]});
      }
      if (shard.non_negative) {
        std::sort(s.terms.begin(), s.terms.end(), [](auto const& a, auto const& b) {
          return a.bound > b.bound || (a.bound == b.bound && a.column < b.column);
        });
      }
      s.remaining.assign(s.terms.size() + 1, T{0});
      s.remaining_weight.assign(s.terms.size() + 1, T{0});
      s.postings.assign(s.terms.size() + 1, 0);
      for (std::size_t j = s.terms.size(); j-- > 0;) {
        s.remaining[j] = s.remaining[j + 1] + s.terms[j].bound;
        s.remaining_weight[j] = s.remaining_weight[j + 1] + s.terms[j].weight;
        s.postings[j] = s.postings[j + 1] + static_cast<std::int64_t>(post.row_nnz(s.terms[j].column));
      }

      // Long queries (long documents) spread their score over many terms, so the bound
      // of the terms left stays above θ until late and the pruning costs more than it
      // saves (kernel docs: 2.7x slower pruned); they take the plain walk.
      bool const prune = shard.non_negative && s.terms.size() <= detail::max_pruned_terms;

      // Accumulate term by term until no untouched document can reach the top k.
      T theta = -std::numeric_limits<T>::infinity();
      std::size_t j = 0;
      for (; j < s.terms.size(); ++j) {
        if (prune && j > 0 && s.tracker.size() == k) {
          theta = detail::lower(s.refresh_tracker());
          // Stop when no untouched document can reach θ and the walk left is longer than
          // completing the candidates would be: a lookup costs about as much as
          // `completion_cost` postings. Counting the candidates costs a pass over the touched
          // documents, so it is done only when that is cheaper than the walk left.
          if (detail::upper(s.remaining[j]) < theta) {
            if (static_cast<std::int64_t>(s.n_touched) < s.postings[j] &&
                s.count_candidates(detail::upper(s.remaining[j]), theta) * completion_cost <
                    s.postings[j]) {
              break;
            }
          }
        }
        auto const& term = s.terms[j];
        I const* const cols = post.col_indices;
        T const* const vals = post.values;
        T* const acc = s.acc.data();
        I* const touched = s.touched.data();
        std::size_t n = s.n_touched;
        if (shard.non_negative) {
          // Partial scores only grow, so acc == 0 means "not touched yet" and the
          // touched list is appended without a branch.
          T tracker_min = prune ? s.tracker_min : std::numeric_limits<T>::infinity();
          for (I p = post.row_begin(term.column); p < post.row_end(term.column); ++p) {
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
          for (I p = post.row_begin(term.column); p < post.row_end(term.column); ++p) {
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
      }

      // Complete the touched documents that can still reach θ: add the terms not walked
      // by looking them up in each candidate's own row (query weights of those terms in
      // a dense per-thread map), then keep the k best completed scores. The k tracked
      // documents (the best partial scores) are completed first: their k-th completed
      // score lifts θ close to its final value, so most touched documents are then
      // dismissed on their bound without a lookup.
      T const rest = detail::upper(s.remaining[j]);
      auto const keep = [&](T score, I d) {
        I const global = static_cast<I>(shard.first + d);
        if (score != T{0} && approx.admits(detail::upper(score))) {
          s.candidates.push_back({score, global});
          approx.push({score, global});
        }
      };
      std::span<I const> const touched(s.touched.data(), s.n_touched);
      if (j == s.terms.size()) {
        for (I d : touched) {
          auto const i = static_cast<std::size_t>(d);
          T const score = s.acc[i];
          s.acc[i] = T{0};
          if (!shard.non_negative) s.seen[i] = 0;
          if (d == self || detail::upper(score) + rest < theta) continue;
          keep(score, d);
        }
      } else {
        for (std::size_t r = j; r < s.terms.size(); ++r) {
          s.rest_weight[static_cast<std::size_t>(s.terms[r].column)] = s.terms[r].weight;
        }
        auto const complete = [&](I d, T partial) {
          auto const i = static_cast<std::size_t>(d);
          T extra = 0;
          for (I p = shard.row_offsets[i]; p < shard.row_offsets[i + 1]; ++p) {
            auto const& e = shard.rows[static_cast<std::size_t>(p)];
            extra += s.rest_weight[static_cast<std::size_t>(e.column)] * e.value;
          }
          keep(partial + extra, d);
        };
        auto const cutoff = [&] {
          return approx.size() == k ? std::max(theta, detail::lower(approx.worst_score())) : theta;
        };
        for (auto const& e : s.tracker) {
          auto const i = static_cast<std::size_t>(e.index);
          s.tracked[i] = 2;  // completed already
          complete(e.index, s.acc[i]);
        }
        T bar = cutoff();
        T const rest_weight_sum = detail::upper(s.remaining_weight[j]);
        for (I d : touched) {
          auto const i = static_cast<std::size_t>(d);
          T const score = s.acc[i];
          s.acc[i] = T{0};
          if (s.tracked[i] == 2 || d == self || detail::upper(score) + rest < bar) continue;
          // A document's values are at most its largest, so the terms not walked add
          // at most that times their total query weight: often far below `rest`.
          T const own = std::min(rest, detail::upper(shard.doc_max[i] * rest_weight_sum));
          if (detail::upper(score) + own < bar) continue;
          s.partial.push_back({detail::upper(score) + own, d});
          s.partial_score.push_back(score);
        }
        // The lookups are random accesses: prefetch a few candidates ahead.
        auto const& cand = s.partial;
        for (std::size_t c = 0; c < cand.size(); ++c) {
          if (c + 16 < cand.size()) detail::prefetch(&shard.row_offsets[static_cast<std::size_t>(cand[c + 16].index)]);
          if (c + 8 < cand.size()) {
            auto const ahead = shard.row_offsets[static_cast<std::size_t>(cand[c + 8].index)];
            detail::prefetch(&shard.rows[static_cast<std::size_t>(ahead)]);
          }
          if (cand[c].score < bar) continue;
          complete(cand[c].index, s.partial_score[c]);
          bar = cutoff();
        }
        s.partial.clear();
        s.partial_score.clear();
        for (std::size_t r = j; r < s.terms.size(); ++r) {
          s.rest_weight[static_cast<std::size_t>(s.terms[r].column)] = T{0};
        }
      }

      // Report canonical scores: rescore exactly the candidates within round-off of
      // the k-th completed score.
      T const kth = approx.size() == k ? detail::lower(approx.worst_score())
                                       : -std::numeric_limits<T>::infinity();
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
      s.tracker.clear();
      s.tracker_min = -std::numeric_limits<T>::infinity();
      counts[static_cast<std::size_t>(qi)] = static_cast<std::int32_t>(heap.size());
      heap.drain_sorted(out.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(qi) * k));
    }
  }
}

}  // namespace mgpu::backend::cpu
