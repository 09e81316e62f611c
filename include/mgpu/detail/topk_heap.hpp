// mgpu/detail/topk_heap.hpp — bounded selection of the k best (score, index) pairs.
//
// "Better" means a larger score, and for equal scores the smaller index, so results
// never depend on the order candidates arrive in: shards can be searched in any order
// and merged exactly. The comparison is a __host__ __device__-friendly free function
// so a GPU kernel can share it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace mgpu::detail {

template <class T, class I>
struct scored {
  T score;
  I index;
};

/// a ranks before b: larger score first, ties toward the smaller index.
template <class T, class I>
constexpr bool ranks_before(scored<T, I> const& a, scored<T, I> const& b) noexcept {
  return a.score > b.score || (a.score == b.score && a.index < b.index);
}

/// Keeps the best `k` of the candidates pushed into it. Push is O(log k).
template <class T, class I>
class topk_heap {
 public:
  explicit topk_heap(std::size_t k) : k_(k) { heap_.reserve(k); }

  void clear() noexcept { heap_.clear(); }
  [[nodiscard]] std::size_t size() const noexcept { return heap_.size(); }

  /// The score of the worst candidate kept; the heap must not be empty.
  [[nodiscard]] T worst_score() const noexcept { return heap_.front().score; }

  /// True if a candidate with this score could enter (cheap pre-filter).
  [[nodiscard]] bool admits(T score) const noexcept {
    return heap_.size() < k_ || score >= heap_.front().score;
  }

  void push(scored<T, I> c) {
    if (heap_.size() < k_) {
      heap_.push_back(c);
      std::push_heap(heap_.begin(), heap_.end(), ranks_before<T, I>);
    } else if (ranks_before(c, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), ranks_before<T, I>);
      heap_.back() = c;
      std::push_heap(heap_.begin(), heap_.end(), ranks_before<T, I>);
    }
  }

  /// The kept candidates, best first; the heap is left empty.
  template <class Out>
  void drain_sorted(Out out) {
    std::sort_heap(heap_.begin(), heap_.end(), ranks_before<T, I>);
    for (auto const& c : heap_) *out++ = c;
    heap_.clear();
  }

 private:
  std::size_t k_;
  std::vector<scored<T, I>> heap_;  // max-heap under ranks_before: the worst kept is front
};

}  // namespace mgpu::detail
