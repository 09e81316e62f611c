// TF-IDF with the documents spread over ranks equals the single-process fit_transform of
// the whole corpus: the same vocabulary, document frequencies and idf, and each rank's
// rows of the same matrix, bitwise; for every pruning and weighting option, ranks holding
// no documents, and faults on one rank.
#include <catch2/catch.hpp>

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "../test_support.hpp"
#include "mgpu/algorithms/tfidf.hpp"
#include "mgpu/mpi/tfidf.hpp"
#include "mpi_test_support.hpp"

namespace {

using mgpu_mpi_test::world_rank;
using mgpu_mpi_test::world_size;
using policy_type = mgpu::mpi::distributed_policy<mgpu::cpu>;

bool contains(std::string const& text, std::string const& part) { return text.find(part) != std::string::npos; }

/// A corpus with repeated and rare words, non-ASCII words (UTF-8 byte order differs from
/// naive char order for them), empty documents and documents of one letter words only.
std::vector<std::string> corpus(std::size_t n, unsigned seed) {
  std::vector<std::string> const words{"alpha", "beta",  "gamma", "delta", "Alpha",  "épée",  "zeta",
                                       "naïve", "über",  "sigma", "ΣΟΦΙΑ", "data",   "mpi",   "rank",
                                       "x",     "y",     "rare1", "rare2", "common", "common"};
  std::mt19937 gen(seed);
  std::uniform_int_distribution<std::size_t> pick(0, words.size() - 1);
  std::uniform_int_distribution<int> length(0, 12);
  std::vector<std::string> docs;
  for (std::size_t i = 0; i < n; ++i) {
    std::string d;
    int const len = i % 9 == 4 ? 0 : length(gen);
    for (int w = 0; w < len; ++w) d += words[pick(gen)] + (w % 3 == 2 ? ". " : " ");
    docs.push_back(d);
  }
  return docs;
}

std::vector<std::string> part_of(std::vector<std::string> const& docs, std::vector<int> const& split, int rank) {
  return {docs.begin() + split[static_cast<std::size_t>(rank)], docs.begin() + split[static_cast<std::size_t>(rank) + 1]};
}

void check_part(mgpu::mpi::tfidf_part<float> const& got, mgpu::tfidf_vectorizer<float> const& fitted,
                mgpu::csr_matrix<mgpu::cpu, float> const& whole, std::int64_t first, std::int64_t last) {
  CHECK(got.vocabulary == fitted.vocabulary());
  CHECK(got.vocabulary.size() == fitted.vocabulary().size());
  CHECK(std::vector<std::uint64_t>(fitted.document_frequency().begin(), fitted.document_frequency().end()) ==
        got.document_frequency);
  CHECK(std::vector<double>(fitted.idf().begin(), fitted.idf().end()) == got.idf);
  CHECK(got.documents == whole.rows());
  CHECK(got.first_document == first);
  CHECK(got.rows.rows() == last - first);
  CHECK(got.rows.cols() == whole.cols());
  auto const w = whole.view();
  auto const g = got.rows.view();
  bool same = g.rows == last - first;
  for (std::int64_t r = 0; same && r < last - first; ++r) {
    auto const wr = static_cast<int>(first + r);
    auto const gr = static_cast<int>(r);
    same = w.row_offsets[wr + 1] - w.row_offsets[wr] == g.row_offsets[gr + 1] - g.row_offsets[gr];
    for (int p = 0; same && p < g.row_offsets[gr + 1] - g.row_offsets[gr]; ++p) {
      same = w.col_indices[w.row_offsets[wr] + p] == g.col_indices[g.row_offsets[gr] + p] &&
             w.values[w.row_offsets[wr] + p] == g.values[g.row_offsets[gr] + p];
    }
  }
  CHECK(same);
}

}  // namespace

TEST_CASE("mpi tfidf: documents over ranks give the single-process vocabulary, idf and rows bitwise", "[mpi]") {
  int const rank = world_rank();
  int const ranks = world_size();
  auto const docs = corpus(83, 5);
  std::vector<std::pair<std::string, mgpu::tfidf_options>> cases;
  cases.emplace_back("defaults", mgpu::tfidf_options{});
  {
    mgpu::tfidf_options o;
    o.min_df = std::int64_t{3};
    o.max_df = 0.4;
    cases.emplace_back("min_df 3, max_df 0.4", o);
  }
  {
    mgpu::tfidf_options o;
    o.max_features = 6;
    cases.emplace_back("max_features 6", o);
  }
  {
    mgpu::tfidf_options o;
    o.max_features = 9;
    o.binary = true;
    o.sublinear_tf = true;
    o.norm = mgpu::tfidf_norm::l1;
    cases.emplace_back("binary, sublinear, l1, max_features 9", o);
  }
  {
    mgpu::tfidf_options o;
    o.ngram_range = {1, 2};
    o.smooth_idf = false;
    o.lowercase = false;
    o.max_df = std::int64_t{20};
    cases.emplace_back("bigrams, no smoothing, case kept, max_df 20 documents", o);
  }
  {
    mgpu::tfidf_options o;
    o.use_idf = false;
    o.norm = mgpu::tfidf_norm::none;
    cases.emplace_back("no idf, no norm", o);
  }
  {
    mgpu::tfidf_options o;
    o.min_df = 0.99;  // no term is in 99% of the documents: an empty vocabulary
    cases.emplace_back("empty vocabulary", o);
  }
  std::vector<std::vector<int>> splits{mgpu_mpi_test::uneven_split(83, ranks),
                                       std::vector<int>(static_cast<std::size_t>(ranks), 0)};
  splits[1].push_back(83);  // every document on the last rank
  for (auto const& config : mgpu_mpi_test::device_configs()) {
    policy_type policy(mgpu_mpi_test::local_devices(config, rank));
    for (auto const& [name, options] : cases) {
      mgpu::tfidf_vectorizer<float> single(options);
      auto const whole = single.fit_transform(docs);
      for (auto const& split : splits) {
        INFO(config << ", " << name << ", split ending " << split[1]);
        auto const mine = part_of(docs, split, rank);
        auto const got = mgpu::mpi::tfidf_fit_transform<float>(policy, mine, options);
        check_part(got, single, whole, split[static_cast<std::size_t>(rank)],
                   split[static_cast<std::size_t>(rank) + 1]);
      }
    }
  }
}

TEST_CASE("mpi tfidf: a batch source per rank", "[mpi]") {
  int const rank = world_rank();
  int const ranks = world_size();
  auto const docs = corpus(40, 9);
  auto const split = mgpu_mpi_test::uneven_split(40, ranks);
  policy_type policy("cpu");
  auto const mine = part_of(docs, split, rank);
  std::size_t next = 0;
  mgpu::tfidf_batch_source source = [&](std::vector<std::string>& batch) {
    for (int i = 0; i < 3 && next < mine.size(); ++i) batch.push_back(mine[next++]);
    return next < mine.size();
  };
  mgpu::tfidf_vectorizer<float> single;
  auto const whole = single.fit_transform(docs);
  auto const got = mgpu::mpi::tfidf_fit_transform<float>(policy, source);
  check_part(got, single, whole, split[static_cast<std::size_t>(rank)], split[static_cast<std::size_t>(rank) + 1]);
}

TEST_CASE("mpi tfidf: invalid UTF-8 on one rank and mismatched options throw on every rank", "[mpi]") {
  int const rank = world_rank();
  int const ranks = world_size();
  policy_type policy("cpu");
  std::vector<std::string> mine{"one document", "another document"};
  if (rank == ranks - 1) mine.emplace_back("bad \xC3 byte");
  auto const what = mgpu_test::message_of<mgpu::invalid_argument>(
      [&] { (void)mgpu::mpi::tfidf_fit_transform<float>(policy, mine); });
  INFO(what);
  CHECK(contains(what, "rank " + std::to_string(ranks - 1) + " of " + std::to_string(ranks) + ": "));
  CHECK(contains(what, "UTF-8"));
  mine.resize(2);
  if (ranks > 1) {
    mgpu::tfidf_options o;
    if (rank == 1) o.min_df = std::int64_t{2};
    auto const m = mgpu_test::message_of<mgpu::invalid_argument>(
        [&] { (void)mgpu::mpi::tfidf_fit_transform<float>(policy, mine, o); });
    CHECK(contains(m, "mpi::tfidf_fit_transform: the ranks disagree on the option min_df: rank 0 has 1 but rank 1 has 2"));
    mgpu::tfidf_options b;
    if (rank == 1) b.binary = true;
    auto const f = mgpu_test::message_of<mgpu::invalid_argument>(
        [&] { (void)mgpu::mpi::tfidf_fit_transform<float>(policy, mine, b); });
    CHECK(contains(f, "the ranks disagree on the flags of the options"));
  }
  // max_df below min_df for the whole corpus (2 documents per rank): every rank, agreed.
  mgpu::tfidf_options o;
  o.min_df = std::int64_t{2};
  o.max_df = 0.2;
  auto const m = mgpu_test::message_of<mgpu::invalid_argument>(
      [&] { (void)mgpu::mpi::tfidf_fit_transform<float>(policy, mine, o); });
  CHECK(contains(m, "max_df corresponds to fewer documents"));
  CHECK(contains(m, "for a corpus of " + std::to_string(2 * ranks) + " documents"));
}
