// The shared term dictionary of TF-IDF counting (detail/text_term_table.hpp): dense ids,
// lookups, the load limit and growth, concurrent inserts, renumbering to columns.
// Labelled `concurrency`, so the concurrent cases also run under ThreadSanitizer.
// Terms are compared as std::string: the shared Catch2 main may be built without
// std::string_view support (Clang 14 defaults to C++14).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "mgpu/detail/text_term_table.hpp"

using mgpu::detail::hash_term;
using mgpu::detail::term_arena;
using mgpu::detail::term_table;

namespace {

// Terms as the tokenizer hands them over: 16 readable bytes from each start, 8 after.
struct padded_terms {
  std::vector<std::string> storage;
  explicit padded_terms(std::vector<std::string> terms) : storage(std::move(terms)) {
    for (auto& t : storage) t.reserve(t.size() + 16);
  }
  [[nodiscard]] std::string_view operator[](std::size_t i) const { return storage[i]; }
  [[nodiscard]] std::size_t size() const { return storage.size(); }
};

// Distinct terms of 2..23 bytes; many share their first 8 bytes and their length.
std::vector<std::string> distinct_terms(std::size_t n) {
  std::vector<std::string> terms;
  for (std::size_t i = 0; i < n; ++i) {
    std::string t = "t" + std::to_string(i);
    if (i % 3 == 1) t = "prefixed" + t;            // > 8 bytes, equal first 8 bytes
    if (i % 3 == 2) t = "prefixed_and_longer" + t;  // > 16 bytes
    terms.push_back(std::move(t));
  }
  return terms;
}

std::uint32_t intern(term_table& table, std::string_view term, term_arena& arena) {
  return table.intern(term, hash_term<true>(term), arena);
}

}  // namespace

TEST_CASE("term table: one thread's ids are dense in insertion order and lookups find them", "[term_table]") {
  padded_terms const terms(distinct_terms(3000));
  term_table table(terms.size());
  term_arena arena;
  for (std::size_t i = 0; i < terms.size(); ++i) REQUIRE(intern(table, terms[i], arena) == i);
  // Interning again returns the same ids and adds nothing.
  for (std::size_t i = 0; i < terms.size(); ++i) REQUIRE(intern(table, terms[i], arena) == i);
  // size() counts whole id blocks; the ids beyond the last term hold none.
  REQUIRE(table.size() == (terms.size() + term_table::id_block - 1) / term_table::id_block * term_table::id_block);
  CHECK_FALSE(table.holds(static_cast<std::uint32_t>(terms.size())));
  auto const stored = table.stored_terms();
  for (std::size_t i = 0; i < terms.size(); ++i) {
    CHECK(std::string(table.term(static_cast<std::uint32_t>(i))) == terms.storage[i]);
    CHECK(table.find(terms[i], hash_term<true>(terms[i]), stored) == i);
  }
  padded_terms const absent({"t", "prefixed", "prefixedt", "prefixed_and_longert3000", "t3000", "zz"});
  for (std::size_t i = 0; i < absent.size(); ++i) {
    CHECK(table.find(absent[i], hash_term<true>(absent[i]), stored) == term_table::npos);
  }
}

TEST_CASE("term table: an insert beyond the load limit fails until the table grows", "[term_table]") {
  padded_terms const terms(distinct_terms(1000));
  term_table table(10);
  term_arena arena;
  std::size_t const limit = table.limit();
  REQUIRE(limit >= 10);
  REQUIRE(limit * 4 <= 3 * 256);  // at most 3/4 of the smallest table's 256 slots
  for (std::size_t i = 0; i < limit; ++i) REQUIRE(intern(table, terms[i], arena) == i);
  CHECK(intern(table, terms[limit], arena) == term_table::full);
  CHECK(table.size() == limit);
  // Terms already in are still found while the table is full.
  CHECK(intern(table, terms[0], arena) == 0);
  table.grow(terms.size());
  REQUIRE(table.limit() >= terms.size());
  for (std::size_t i = 0; i < terms.size(); ++i) REQUIRE(intern(table, terms[i], arena) == i);
}

TEST_CASE("term table: threads interning the same terms at once agree on one id each", "[term_table][concurrency]") {
  padded_terms const terms(distinct_terms(20000));
  constexpr std::size_t threads = 4;
  term_table table(0);  // grows many times
  std::vector<term_arena> arenas(threads);
  std::vector<std::vector<std::uint32_t>> ids(threads, std::vector<std::uint32_t>(terms.size(), term_table::npos));
  // Each thread walks the terms in its own order (a different stride through them),
  // stopping when the table is full; the table grows between rounds, as in counting.
  std::vector<std::size_t> next(threads, 0);
  bool done = false;
  int rounds = 0;
  while (!done) {
    std::vector<std::thread> team;
    for (std::size_t t = 0; t < threads; ++t) {
      team.emplace_back([&, t] {
        std::size_t const stride = 2 * t + 1;
        for (; next[t] < terms.size(); ++next[t]) {
          std::size_t const i = (next[t] * stride + 7 * t) % terms.size();
          std::uint32_t const id = intern(table, terms[i], arenas[t]);
          if (id == term_table::full) return;
          ids[t][i] = id;
        }
      });
    }
    for (auto& th : team) th.join();
    done = std::all_of(next.begin(), next.end(), [&](std::size_t n) { return n == terms.size(); });
    if (!done) table.grow(2 * table.limit());
    ++rounds;
  }
  CHECK(rounds > 3);
  // Every term has one id whichever thread met it (strides 1, 3 and 7 are coprime with
  // 20000, so those threads met every term; stride 5 is not); ids are distinct, below
  // size(), and the ids that hold no term are what is left of the threads' id blocks.
  std::set<std::uint32_t> all;
  for (std::size_t i = 0; i < terms.size(); ++i) {
    std::uint32_t const id = ids[0][i];
    REQUIRE(id < table.size());
    for (std::size_t t = 1; t < threads; ++t) {
      if (ids[t][i] != term_table::npos) REQUIRE(ids[t][i] == id);
    }
    REQUIRE(table.holds(id));
    CHECK(std::string(table.term(id)) == terms.storage[i]);
    all.insert(id);
  }
  CHECK(all.size() == terms.size());
  std::size_t held = 0;
  for (std::uint32_t id = 0; id < table.size(); ++id) held += table.holds(id) ? 1 : 0;
  CHECK(held == terms.size());
  CHECK(table.size() - held < threads * term_table::id_block);
  CHECK(table.size() % term_table::id_block == 0);
}

TEST_CASE("term table: remap renumbers to columns and dropped terms are never found", "[term_table]") {
  padded_terms const terms(distinct_terms(500));
  term_table table(terms.size());
  term_arena arena;
  for (std::size_t i = 0; i < terms.size(); ++i) REQUIRE(intern(table, terms[i], arena) == i);
  // Columns: the terms with even ids, in reverse order; odd ids are dropped.
  std::vector<std::uint32_t> column(terms.size(), term_table::npos);
  std::vector<std::string> kept;
  for (std::size_t i = terms.size(); i-- > 0;) {
    if (i % 2 == 1) continue;
    column[i] = static_cast<std::uint32_t>(kept.size());
    kept.push_back(terms.storage[i]);
  }
  table.remap(column);
  padded_terms const columns(kept);
  auto const by_column = [&](std::uint32_t c) { return columns[c]; };
  for (std::size_t i = 0; i < terms.size(); ++i) {
    std::uint32_t const found = table.find(terms[i], hash_term<true>(terms[i]), by_column);
    if (i % 2 == 1) {
      CHECK(found == term_table::npos);
    } else {
      REQUIRE(found != term_table::npos);
      CHECK(columns.storage[found] == terms.storage[i]);
    }
  }
}
