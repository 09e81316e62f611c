// mgpu/backend/cpu/cosine_topk.hpp — host leaf kernel of cosine top-k: one corpus shard
// against a block of queries.
//
// The shard is stored transposed (terms x shard documents) with each document's
// values already divided by its L2 norm, so a query row q scores the shard by a
// Gustavson-style sparse accumulation: for every term t of q, add q_t/‖q‖ · c_dt/‖c_d‖
// to the accumulator of each document d in t's posting list. Each (query, document)
// score therefore sums the same products in the same order (q's column order) whatever
// the sharding, which is what makes `cpu`, `cpu:2`, `cpu:3` agree exactly.
// Work: Σ over the queries' terms of the shard's posting-list lengths.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "mgpu/detail/topk_heap.hpp"
#include "mgpu/sparse/csr_matrix.hpp"
#include "mgpu/sparse/csr_view.hpp"
#include "mgpu/sparse/transpose.hpp"

namespace mgpu::backend::cpu {

/// One corpus shard, resident on a host device: documents [first, first + count) of
/// the corpus, transposed and row-normalised.
template <class T, class I>
struct cosine_shard {
  I first = 0;
  csr_matrix<mgpu::cpu, T, I> postings;  // terms x count
};

/// Builds the shard for corpus rows [first, last). `inv_norms[d]` is 1/‖c_d‖ (0 for a
/// zero row). O(shard nnz + terms).
template <class T, class I>
cosine_shard<T, I> make_cosine_shard(csr_view<T, I> corpus, std::span<T const> inv_norms, I first,
                                     I last) {
  auto const block = corpus.row_block(first, last);
  auto postings = transpose(block);
  auto const docs = postings.col_indices();
  auto vals = postings.values();
  for (std::size_t p = 0; p < vals.size(); ++p) {
    vals[p] *= inv_norms[static_cast<std::size_t>(first + docs[p])];
  }
  return {first, std::move(postings)};
}

/// Scores queries [q_first, q_last) against one shard and writes each query's best
/// (up to) k nonzero scores, best first, to out[(q - q_first) * k ...], with the
/// number written in counts[q - q_first]. Corpus indices are global. With
/// `exclude_self`, corpus row q is skipped for query q. Uses the calling thread's
/// OpenMP thread count (its device's share of the cores).
template <class T, class I>
void cosine_topk_shard(csr_view<T, I> queries, std::span<T const> query_inv_norms,
                       cosine_shard<T, I> const& shard, I q_first, I q_last, std::size_t k,
                       bool exclude_self, std::span<detail::scored<T, I>> out,
                       std::span<std::int32_t> counts) {
  auto const post = shard.postings.view();
  auto const shard_docs = static_cast<std::size_t>(post.cols);
  auto const n_queries = static_cast<std::int64_t>(q_last - q_first);
#pragma omp parallel
  {
    std::vector<T> acc(shard_docs, T{0});
    std::vector<unsigned char> seen(shard_docs, 0);
    std::vector<I> touched;
    touched.reserve(shard_docs);
    detail::topk_heap<T, I> heap(k);
#pragma omp for schedule(dynamic, 16)
    for (std::int64_t qi = 0; qi < n_queries; ++qi) {
      auto const q = static_cast<I>(q_first + qi);
      T const scale = query_inv_norms[static_cast<std::size_t>(q)];
      for (I p = queries.row_begin(q); p < queries.row_end(q); ++p) {
        I const term = queries.col_indices[p];
        T const w = queries.values[p] * scale;
        for (I s = post.row_begin(term); s < post.row_end(term); ++s) {
          auto const d = static_cast<std::size_t>(post.col_indices[s]);
          if (!seen[d]) {
            seen[d] = 1;
            touched.push_back(static_cast<I>(d));
          }
          acc[d] += w * post.values[s];
        }
      }
      I const self = exclude_self ? static_cast<I>(q - shard.first) : I{-1};
      for (I d : touched) {
        auto const i = static_cast<std::size_t>(d);
        T const score = acc[i];
        acc[i] = T{0};
        seen[i] = 0;
        if (score != T{0} && d != self && heap.admits(score)) heap.push({score, static_cast<I>(shard.first + d)});
      }
      touched.clear();
      counts[static_cast<std::size_t>(qi)] = static_cast<std::int32_t>(heap.size());
      heap.drain_sorted(out.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(qi) * k));
    }
  }
}

}  // namespace mgpu::backend::cpu
