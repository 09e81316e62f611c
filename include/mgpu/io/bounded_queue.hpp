// mgpu/io/bounded_queue.hpp — a fixed-capacity queue between threads: the joint between
// the stages of the reading pipeline (corpus.hpp's inflate stage, pipeline.hpp).
//
// Thread safety: every member function may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>

#include "mgpu/core/error.hpp"

namespace mgpu {

/// A first-in first-out queue between threads holding at most `capacity` items: push
/// waits while it is full, pop while it is empty; close() wakes both for good.
template <class T>
class bounded_queue {
 public:
  /// @throws invalid_argument when capacity is 0.
  explicit bounded_queue(std::size_t capacity) : capacity_(capacity) {
    MGPU_EXPECTS(capacity > 0, "bounded_queue: capacity must be positive");
  }

  /// Appends `item`, waiting for room. @returns false (dropping the item) once closed.
  bool push(T item) {
    std::unique_lock lock(mutex_);
    not_full_.wait(lock, [&] { return closed_ || items_.size() < capacity_; });
    if (closed_) return false;
    items_.push_back(std::move(item));
    lock.unlock();
    not_empty_.notify_one();
    return true;
  }

  /// Appends `item` if there is room and the queue is open, without waiting.
  /// @returns whether it was appended (if not, `item` is left as it was).
  bool try_push(T& item) {
    {
      std::lock_guard lock(mutex_);
      if (closed_ || items_.size() >= capacity_) return false;
      items_.push_back(std::move(item));
    }
    not_empty_.notify_one();
    return true;
  }

  /// The oldest item, waiting for one; nullopt once the queue is closed and empty.
  std::optional<T> pop() {
    std::unique_lock lock(mutex_);
    not_empty_.wait(lock, [&] { return closed_ || !items_.empty(); });
    if (items_.empty()) return std::nullopt;
    std::optional<T> item(std::move(items_.front()));
    items_.pop_front();
    lock.unlock();
    not_full_.notify_one();
    return item;
  }

  /// The oldest item if there is one, without waiting.
  std::optional<T> try_pop() {
    std::lock_guard lock(mutex_);
    if (items_.empty()) return std::nullopt;
    std::optional<T> item(std::move(items_.front()));
    items_.pop_front();
    not_full_.notify_one();
    return item;
  }

  /// Refuses further pushes; items already queued can still be popped.
  void close() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    not_full_.notify_all();
    not_empty_.notify_all();
  }

 private:
  std::size_t capacity_;
  std::mutex mutex_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::deque<T> items_;
  bool closed_ = false;
};

}  // namespace mgpu
