// mgpu/backend/cpu/text/corpus_batches.hpp — a text_corpus cut into batches of
// documents: the unit that counting hands to its threads.
#pragma once

#include <concepts>
#include <cstddef>
#include <ranges>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "mgpu/algorithms/tfidf_options.hpp"

namespace mgpu::detail {

/// Documents per batch and bytes per batch: enough work to keep every thread busy,
/// little enough that a streamed corpus never sits in memory whole. Documents read in
/// place are in memory already: their batches hold up to in_place_batch_documents
/// (each batch ends with threads waiting for the last long document).
inline constexpr std::size_t batch_documents = 1 << 16;
inline constexpr std::size_t in_place_batch_documents = 1 << 22;
inline constexpr std::size_t batch_bytes = std::size_t{32} << 20;

/// A corpus that hands out whole batches of views itself (e.g. mgpu::corpus_text_range):
/// next_views(v) fills v with the next batch, valid until the next call, and returns false
/// at the end. Its batches are used as they come, in place.
template <class C>
concept view_batch_corpus = requires(std::remove_cvref_t<C>& c, std::vector<std::string_view>& v) {
  { c.next_views(v) } -> std::convertible_to<bool>;
};

/// Calls f(std::span<std::string_view const>) for consecutive batches of the corpus.
template <class C, class F>
void for_each_batch(C&& corpus, F&& f) {
  std::vector<std::string_view> views;
  if constexpr (view_batch_corpus<C>) {
    while (corpus.next_views(views)) {
      if (!views.empty()) f(std::span<std::string_view const>(views));
    }
  } else if constexpr (std::ranges::input_range<C>) {
    using ref = std::ranges::range_reference_t<C>;
    constexpr bool in_place =
        std::ranges::forward_range<C> &&
        (std::is_lvalue_reference_v<ref> || std::same_as<std::remove_cvref_t<ref>, std::string_view>);
    std::string arena;
    std::vector<std::size_t> ends;
    std::size_t bytes = 0;
    auto flush = [&] {
      if constexpr (!in_place) {
        views.clear();
        std::size_t begin = 0;
        for (std::size_t e : ends) {
          views.emplace_back(arena.data() + begin, e - begin);
          begin = e;
        }
        ends.clear();
        f(std::span<std::string_view const>(views));
        arena.clear();
      } else {
        f(std::span<std::string_view const>(views));
        views.clear();
      }
      bytes = 0;
    };
    for (auto&& element : corpus) {
      std::string_view const doc(element);
      if constexpr (in_place) {
        views.push_back(doc);
      } else {
        arena.append(doc);
        ends.push_back(arena.size());
      }
      bytes += doc.size();
      if (bytes >= batch_bytes ||
          views.size() + ends.size() >= (in_place ? in_place_batch_documents : batch_documents)) {
        flush();
      }
    }
    if (!views.empty() || !ends.empty()) flush();
  } else {
    tfidf_batch_source source(std::forward<C>(corpus));
    std::vector<std::string> batch;
    bool more = true;
    while (more) {
      batch.clear();
      more = source(batch);
      views.assign(batch.begin(), batch.end());
      if (!views.empty()) f(std::span<std::string_view const>(views));
    }
  }
}

}  // namespace mgpu::detail
