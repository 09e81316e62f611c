// mgpu/algorithms/term_list.hpp — an immutable list of strings stored end to end in one
// buffer: a fitted vocabulary (tfidf_vectorizer::vocabulary()).
//
// A vocabulary of 10^5–10^6 short terms as std::vector<std::string> costs a 32-byte
// object per term plus an allocation for every term longer than 15 bytes; here a term
// costs its bytes and one offset, so building it is two parallel passes and a
// quarter of the memory (fresh pages are a measurable part of a TF-IDF fit). Terms are
// read as std::string_view; `to_strings()` gives the std::vector<std::string> form.
//
// Thread safety: const member functions may run concurrently.
#pragma once

#include <algorithm>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <ranges>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mgpu/core/error.hpp"

namespace mgpu {

class term_list {
 public:
  /// Random-access iterator over the terms, yielding std::string_view.
  class iterator {
   public:
    using iterator_category = std::random_access_iterator_tag;
    using iterator_concept = std::random_access_iterator_tag;
    using value_type = std::string_view;
    using difference_type = std::ptrdiff_t;
    using reference = std::string_view;

    iterator() = default;
    iterator(term_list const* list, std::size_t i) noexcept : list_(list), i_(i) {}

    std::string_view operator*() const noexcept { return (*list_)[i_]; }
    std::string_view operator[](difference_type n) const noexcept {
      return (*list_)[static_cast<std::size_t>(static_cast<difference_type>(i_) + n)];
    }
    iterator& operator++() noexcept { ++i_; return *this; }
    iterator operator++(int) noexcept { auto t = *this; ++i_; return t; }
    iterator& operator--() noexcept { --i_; return *this; }
    iterator operator--(int) noexcept { auto t = *this; --i_; return t; }
    iterator& operator+=(difference_type n) noexcept {
      i_ = static_cast<std::size_t>(static_cast<difference_type>(i_) + n);
      return *this;
    }
    iterator& operator-=(difference_type n) noexcept { return *this += -n; }
    friend iterator operator+(iterator it, difference_type n) noexcept { return it += n; }
    friend iterator operator+(difference_type n, iterator it) noexcept { return it += n; }
    friend iterator operator-(iterator it, difference_type n) noexcept { return it -= n; }
    friend difference_type operator-(iterator a, iterator b) noexcept {
      return static_cast<difference_type>(a.i_) - static_cast<difference_type>(b.i_);
    }
    friend bool operator==(iterator a, iterator b) noexcept { return a.i_ == b.i_; }
    friend auto operator<=>(iterator a, iterator b) noexcept { return a.i_ <=> b.i_; }

   private:
    term_list const* list_ = nullptr;
    std::size_t i_ = 0;
  };

  term_list() = default;

  /// Adopts `bytes` (the terms end to end) and `offsets` (size() + 1 non-decreasing
  /// entries: term i is bytes[offsets[i], offsets[i + 1])).
  /// @throws invalid_argument if the offsets do not start at 0 or end beyond the bytes.
  term_list(std::vector<char> bytes, std::vector<std::size_t> offsets)
      : bytes_(std::move(bytes)), offsets_(std::move(offsets)) {
    MGPU_EXPECTS(!offsets_.empty() && offsets_.front() == 0 && offsets_.back() <= bytes_.size(),
                 "term_list: offsets must start at 0 and end within the bytes");
  }

  [[nodiscard]] std::size_t size() const noexcept { return offsets_.size() - 1; }
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }

  /// Term i (i < size()).
  [[nodiscard]] std::string_view operator[](std::size_t i) const noexcept {
    return {bytes_.data() + offsets_[i], offsets_[i + 1] - offsets_[i]};
  }
  /// Term i. @throws std::out_of_range if i >= size().
  [[nodiscard]] std::string_view at(std::size_t i) const {
    if (i >= size()) throw std::out_of_range(detail::message("term_list::at: ", i, " >= size ", size()));
    return (*this)[i];
  }

  [[nodiscard]] iterator begin() const noexcept { return {this, 0}; }
  [[nodiscard]] iterator end() const noexcept { return {this, size()}; }

  /// The terms as strings (one allocation per long term).
  [[nodiscard]] std::vector<std::string> to_strings() const {
    return {begin(), end()};
  }

  /// Term-by-term equality with any range of things that convert to std::string_view
  /// (e.g. a std::vector<std::string>).
  template <std::ranges::input_range R>
    requires std::convertible_to<std::ranges::range_reference_t<R const&>, std::string_view>
  friend bool operator==(term_list const& list, R const& other) {
    auto it = std::ranges::begin(other);
    auto const last = std::ranges::end(other);
    for (std::size_t i = 0; i < list.size(); ++i, ++it) {
      if (it == last || list[i] != std::string_view(*it)) return false;
    }
    return it == last;
  }
  friend bool operator==(term_list const& a, term_list const& b) {
    return a.size() == b.size() && std::ranges::equal(a, b);
  }

 private:
  std::vector<char> bytes_;
  std::vector<std::size_t> offsets_{0};
};

}  // namespace mgpu
