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
};

/// Builds the shard for corpus rows [first, last). `inv_norms[d]` is 1/‖c_d‖ (0 for a
/// zero row); `non_negative` says whether queries and corpus have no negative value.
/// O(shard nnz + terms).
template <class T, class I>
cosine_shard<T, I> make_cosine_shard(csr_view<T, I> corpus, std::span<T const> inv_norms, I first,
                                     I last, bool non_negative) {
  cosine_shard<T, I> shard{first, transpose(corpus.row_block(first, last)), {}, corpus, inv_norms,
                           non_negative};
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
  return shard;
}

namespace detail {

/// Per-thread scratch for scoring one shard.
template <class T, class I>
struct cosine_scratch {
  std::vector<T> acc;
  std::vector<unsigned char> seen;
  std::vector<I> touched;
  // A lower bound of the k-th best partial score, kept during accumulation: up to k
  // distinct documents (a min-heap) whose recorded partial scores never exceed their
  // current ones, because with non-negative values partial scores only grow.
  std::vector<mgpu::detail::scored<T, I>> tracker;
  std::vector<unsigned char> tracked;
  T tracker_min = -std::numeric_limits<T>::infinity();
  std::vector<mgpu::detail::scored<T, I>> candidates;  // (completed score, corpus row)
  std::vector<T> rest_weight;  // per term: the query weight of a term not walked, else 0
  struct term {
    I column;
    T weight;
    T bound;
  };
  std::vector<term> terms;
  std::vector<T> remaining;            // remaining[j] = Σ bound of terms j.. (suffix sums)
  std::vector<std::int64_t> postings;  // postings[j] = Σ posting lengths of terms j..

  cosine_scratch(std::size_t docs, std::size_t terms)
      : acc(docs, T{0}), seen(docs, 0), tracked(docs, 0), rest_weight(terms, T{0}) {
    touched.reserve(docs);
  }

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

  /// Brings the tracked scores up to date; returns the smallest (a lower bound of θ).
  T refresh_tracker() {
    for (auto& e : tracker) e.score = acc[static_cast<std::size_t>(e.index)];
    std::make_heap(tracker.begin(), tracker.end(), worse);
    tracker_min = tracker.front().score;
    return tracker_min;
  }
};

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
  auto const shard_docs = static_cast<std::size_t>(post.cols);
  auto const n_queries = static_cast<std::int64_t>(q_last - q_first);
#pragma omp parallel
  {
    detail::cosine_scratch<T, I> s(shard_docs, static_cast<std::size_t>(post.rows));
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
      s.postings.assign(s.terms.size() + 1, 0);
      for (std::size_t j = s.terms.size(); j-- > 0;) {
        s.remaining[j] = s.remaining[j + 1] + s.terms[j].bound;
        s.postings[j] = s.postings[j + 1] + static_cast<std::int64_t>(post.row_nnz(s.terms[j].column));
      }

      // Accumulate term by term until no untouched document can reach the top k.
      T theta = -std::numeric_limits<T>::infinity();
      std::size_t j = 0;
      for (; j < s.terms.size(); ++j) {
        if (shard.non_negative && j > 0 && s.tracker.size() == k) {
          theta = detail::lower(s.refresh_tracker());
          // Stop when no untouched document can reach θ and the walk left is longer than
          // completing the touched documents would be (about 4 postings each).
          if (detail::upper(s.remaining[j]) < theta &&
              static_cast<std::int64_t>(s.touched.size()) * 4 < s.postings[j]) {
            break;
          }
        }
        auto const& term = s.terms[j];
        for (I p = post.row_begin(term.column); p < post.row_end(term.column); ++p) {
          auto const d = static_cast<std::size_t>(post.col_indices[p]);
          if (!s.seen[d]) {
            s.seen[d] = 1;
            s.touched.push_back(static_cast<I>(d));
          }
          T const partial = s.acc[d] += term.weight * post.values[p];
          if (partial > s.tracker_min && !s.tracked[d] && static_cast<I>(d) != self) s.track(partial, static_cast<I>(d), k);
        }
      }

      // Complete the touched documents that can still reach θ: add the terms not walked
      // by looking them up in each candidate's own row (query weights of those terms in
      // a dense per-thread map), then keep the k best completed scores.
      T const rest = detail::upper(s.remaining[j]);
      for (std::size_t r = j; r < s.terms.size(); ++r) {
        s.rest_weight[static_cast<std::size_t>(s.terms[r].column)] = s.terms[r].weight;
      }
      bool const completed = j == s.terms.size();
      for (I d : s.touched) {
        auto const i = static_cast<std::size_t>(d);
        T score = s.acc[i];
        s.acc[i] = T{0};
        s.seen[i] = 0;
        s.tracked[i] = 0;
        if (d == self || detail::upper(score) + rest < theta) continue;
        I const global = static_cast<I>(shard.first + d);
        if (!completed) {
          T const scale = shard.inv_norms[static_cast<std::size_t>(global)];
          T extra = 0;
          for (I p = shard.corpus.row_begin(global); p < shard.corpus.row_end(global); ++p) {
            extra += s.rest_weight[static_cast<std::size_t>(shard.corpus.col_indices[p])] *
                     (shard.corpus.values[p] * scale);
          }
          score += extra;
        }
        if (score != T{0} && approx.admits(detail::upper(score))) {
          s.candidates.push_back({score, global});
          approx.push({score, global});
        }
      }
      for (std::size_t r = j; r < s.terms.size(); ++r) {
        s.rest_weight[static_cast<std::size_t>(s.terms[r].column)] = T{0};
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
      s.touched.clear();
      s.tracker.clear();
      s.tracker_min = -std::numeric_limits<T>::infinity();
      counts[static_cast<std::size_t>(qi)] = static_cast<std::int32_t>(heap.size());
      heap.drain_sorted(out.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(qi) * k));
    }
  }
}

}  // namespace mgpu::backend::cpu
