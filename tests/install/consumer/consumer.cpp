// A downstream program built against the installed package. It vectorises two
// documents and checks one TF-IDF value computed by hand (scikit-learn semantics):
// idf(banana) = ln(3/2) + 1, idf(apple) = 1, so row 0 = (1, 1.405465) / 1.724914.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <mgpu/mgpu.hpp>

int main() {
  std::vector<std::string> const docs{"apple banana", "apple cherry"};
  mgpu::tfidf_vectorizer<float> vectorizer;
  auto const x = vectorizer.fit_transform(docs);
  auto const expected = std::log(1.5) + 1.0;
  auto const want = expected / std::sqrt(1.0 + expected * expected);
  bool const ok = x.rows() == 2 && x.cols() == 3 && vectorizer.vocabulary().at(1) == "banana" &&
                  x.col_indices()[1] == 1 && std::abs(x.values()[1] - want) < 1e-6;
  std::printf("consumer: tfidf(doc 0, banana) = %.7f, expected %.7f: %s\n",
              static_cast<double>(x.values()[1]), want, ok ? "ok" : "MISMATCH");
  return ok ? 0 : 1;
}
