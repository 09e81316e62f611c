// A downstream program that includes <mgpu/mgpu.hpp> and calls every algorithm once, on
// the host matrices named without a kind (csr_matrix<float>, dense_matrix<float>): TF-IDF,
// cosine top-k, k-NN and its vote, ALS fit and recommend, SpMV, SpMM, SpGEMM, transpose,
// scaling, COO conversion, and the Matrix Market, corpus and IDX readers and writers. The
// install test builds it against the installed package with -Wall -Wextra -Werror and no
// -march: the library must leave a user's warning-clean build clean. Expected values are
// worked out by hand in the comments. Exit code 0 when every check holds.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include <mgpu/mgpu.hpp>

namespace {

int failures = 0;

void check(bool ok, char const* what) {
  if (!ok) {
    std::printf("consumer_all: FAILED: %s\n", what);
    ++failures;
  }
}

bool near(double a, double b) { return std::abs(a - b) <= 1e-5 * (1.0 + std::abs(b)); }

}  // namespace

int main() {
  mgpu::execution_policy<mgpu::cpu> const policy("cpu:2");

  // TF-IDF (scikit-learn): vocabulary apple, banana, cherry; idf(apple) = 1, idf(banana)
  // = idf(cherry) = ln(3/2) + 1; row 0 = (1, idf) / sqrt(1 + idf²). The result moves
  // into the kind-less name without a copy.
  std::vector<std::string> const docs{"apple banana", "apple cherry"};
  mgpu::tfidf_vectorizer<float> vectorizer;
  mgpu::csr_matrix<float> x = vectorizer.fit_transform(docs);
  double const idf = std::log(1.5) + 1.0;
  check(x.rows() == 2 && x.cols() == 3 && near(x.values()[1], idf / std::sqrt(1.0 + idf * idf)), "tfidf");
  mgpu::csr_matrix<float> counts = vectorizer.count(docs);
  x = mgpu::tfidf_weight(policy, std::move(counts), vectorizer.idf(), mgpu::tfidf_options{});
  check(near(x.values()[3], idf / std::sqrt(1.0 + idf * idf)), "tfidf_weight");

  // Cosine top-k: the two rows share only apple, cos = 1 / (1 + idf²).
  mgpu::progress_line const progress("cosine top-k", "queries");  // draws only on a terminal
  mgpu::cosine_topk_options options;
  options.progress = progress.callback();
  auto const similar = mgpu::cosine_topk(policy, x, 1, options);
  check(similar.neighbors(0)[0] == 1 && near(similar.scores_of(0)[0], 1.0 / (1.0 + idf * idf)), "cosine_topk");

  // A = [1 0 2; 0 3 0], from moved-in vectors (adopted, no copy).
  std::vector<std::int32_t> offsets{0, 2, 3};
  std::vector<std::int32_t> columns{0, 2, 1};
  std::vector<float> values{1, 2, 3};
  mgpu::csr_matrix<float> a(2, 3, std::move(offsets), std::move(columns), std::move(values));
  std::vector<float> const v{1, 2, 3};
  std::vector<float> y(2);
  mgpu::spmv(policy, 1.0, a, v, 0.0, y);  // (1 + 6, 6)
  check(y[0] == 7 && y[1] == 6, "spmv");
  mgpu::dense_matrix<float> const b(3, 2, {1.f, 0.f, 0.f, 1.f, 1.f, 1.f});
  mgpu::dense_matrix<float> c(2, 2, 0.f);
  mgpu::spmm(policy, 1.0, a, b, 0.0, c.view());  // [3 2; 0 3]
  check(c(0, 0) == 3 && c(0, 1) == 2 && c(1, 0) == 0 && c(1, 1) == 3, "spmm");
  mgpu::csr_matrix<float> const at = mgpu::transpose(a);
  mgpu::csr_matrix<float> const gram = mgpu::spgemm(policy, a, at);  // diag(5, 9)
  check(at.rows() == 3 && gram.nnz() == 2 && gram.values()[0] == 5 && gram.values()[1] == 9, "transpose, spgemm");
  std::vector<std::int32_t> const coo_rows{1, 0, 1};
  std::vector<std::int32_t> const coo_cols{0, 1, 0};
  std::vector<float> const coo_values{3, 4, 5};
  mgpu::csr_matrix<float> z = mgpu::csr_from_coo<float, std::int32_t>(2, 2, coo_rows, coo_cols, coo_values);
  mgpu::normalize_rows(policy, z);  // row 1 = (3 + 5) -> 1
  check(z.nnz() == 2 && z.values()[0] == 1 && z.values()[1] == 1, "csr_from_coo, normalize_rows");

  // k-NN: the query (0.9, 0.1) is nearest base row 1 (squared distance 0.02); the vote
  // of every base row's own nearest neighbour is its own label.
  mgpu::dense_matrix<float> const base(3, 2, {0.f, 0.f, 1.f, 0.f, 5.f, 5.f});
  std::vector<float> query{0.9f, 0.1f};
  mgpu::dense_view<float const> const queries{1, 2, 2, query.data()};
  auto const found = mgpu::knn(policy, base, queries, 1);
  check(found.neighbors(0)[0] == 1 && near(found.scores_of(0)[0], 0.02), "knn");
  std::vector<int> const labels{4, 5, 6};
  auto const votes = mgpu::knn_vote(mgpu::knn(policy, base, base, 1), labels);
  check(votes == std::vector<int>{4, 5, 6}, "knn_vote");

  // ALS: users 0 and 1 like items 0 and 1; user 2 likes items 2 and 3.
  mgpu::csr_matrix<float> const r(3, 4, {0, 2, 3, 5}, {0, 1, 0, 2, 3}, {1.f, 1.f, 1.f, 1.f, 1.f});
  mgpu::als model({.factors = 4, .iterations = 5});
  model.fit(policy, r);
  auto const recommended = model.recommend(1, 2);  // a vector or a topk_result: both have size()
  check(model.user_factors().rows() == 3 && static_cast<std::int64_t>(recommended.size()) >= 1, "als");

  // Readers and writers, in a directory of this process's own.
  auto const dir = std::filesystem::temp_directory_path() / ("mgpu-consumer-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  mgpu::write_matrix_market(dir / "a.mtx", a);
  mgpu::csr_matrix<float> const read_back = mgpu::read_matrix_market<float, std::int32_t>(dir / "a.mtx");
  check(read_back.nnz() == 3 && read_back.values()[2] == 3, "matrix market csr");
  mgpu::write_matrix_market(dir / "b.mtx", b);
  mgpu::dense_matrix<float> const dense_back = mgpu::read_matrix_market_dense<float>(dir / "b.mtx");
  check(dense_back(2, 1) == 1, "matrix market dense");
  std::ofstream(dir / "docs.txt") << "apple banana\napple cherry\n";
  mgpu::corpus_options lines;
  lines.format = mgpu::corpus_format::lines;
  auto const corpus = mgpu::read_corpus(dir / "docs.txt", lines);
  check(corpus.size() == 2 && vectorizer.transform(corpus.texts).nnz() == 4, "corpus");
  unsigned char const idx[] = {0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6};  // u8, 2 x 3
  std::ofstream(dir / "m.idx", std::ios::binary).write(reinterpret_cast<char const*>(idx), sizeof idx);
  mgpu::dense_matrix<float> const m = mgpu::read_idx_matrix<float>(dir / "m.idx");
  check(m(1, 2) == 6, "idx");
  std::filesystem::remove_all(dir);

  std::printf("consumer_all: %s\n", failures == 0 ? "every algorithm ok" : "FAILED");
  return failures == 0 ? 0 : 1;
}
