// make_interactions — writes a synthetic interaction matrix shaped like MovieLens-20M
// (ratings >= 4) or Last.fm 360k (see make_interactions.hpp) as Matrix Market, e.g.
//
//   make_interactions movielens-20m out/ml20m-shaped.mtx [scale] [seed]
//   als_recommend --input out/ml20m-shaped.mtx --solver cg --iterations 5
#include <cstdio>
#include <string>

#include <mgpu/io/matrix_market.hpp>

#include "make_interactions.hpp"

int main(int argc, char** argv) {
  if (argc < 3 || argc > 5) {
    std::fprintf(stderr, "usage: make_interactions movielens-20m|lastfm-360k OUTPUT.mtx [scale] [seed]\n");
    return 2;
  }
  try {
    std::string const which = argv[1];
    if (which != "movielens-20m" && which != "lastfm-360k") throw std::runtime_error("unknown shape " + which);
    auto const& shape = which == "movielens-20m" ? mgpu_bench::movielens_20m : mgpu_bench::lastfm_360k;
    double const scale = argc > 3 ? std::stod(argv[3]) : 1.0;
    auto const seed = argc > 4 ? std::stoull(argv[4]) : 1ULL;
    auto const r = mgpu_bench::make_interactions(shape, scale, seed);
    mgpu::write_matrix_market(std::filesystem::path(argv[2]), r);
    std::fprintf(stderr, "%s: %d x %d, %d entries\n", argv[2], r.rows(), r.cols(), r.nnz());
    return 0;
  } catch (std::exception const& e) {
    std::fprintf(stderr, "make_interactions: error: %s\n", e.what());
    return 1;
  }
}
