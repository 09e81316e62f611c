#!/usr/bin/env bash
# One report of mgpu side by side with its strongest peers, on the same data and the same
# thread count (2), every peer's result checked against mgpu's: ALS against `implicit`,
# cosine top-10 against `sparse_dot_topn`, k-NN against `faiss-cpu`, TF-IDF against
# scikit-learn, SpMV against SuiteSparse:GraphBLAS, Eigen and SciPy. Writes
# docs/report/README.md (tables: time, ratio, agreement, machine, date, versions, commit,
# load average) and docs/report/*.png (bars with the spread over repetitions; mgpu by
# device string); raw results (every repetition) in out/report/results/*.json.
#
#   scripts/install-bench-deps.sh          # once: Debian peers and data, pinned Python peers
#   benchmarks/report.sh [--quick]
#
# --quick: under 10 minutes on 2 cores once built (2 repetitions; 1 for sparse_dot_topn on
# WordNet, which alone takes about 2 minutes a run; k-NN on the first 2,000 queries; SpMV on
# 1M rows). Full mode: 5 interleaved repetitions of everything at full size, plus mgpu on
# cpu:2 for ALS and SpMV (about 35 minutes on 2 loaded cores). ALS runs 3 iterations in
# both modes. Environment: MGPU_BUILD_DIR (default build-report; configured Release,
# benchmarks on, CUDA off: host measurements), MGPU_PEERS_VENV (default out/venv-peers),
# REPORT_DOCS (default docs/report).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=full
[ "${1:-}" = "--quick" ] && mode=quick
build=${MGPU_BUILD_DIR:-build-report}
venv=${MGPU_PEERS_VENV:-out/venv-peers}
docs=${REPORT_DOCS:-docs/report}
py="$venv/bin/python"
[ -x "$py" ] || { echo "report.sh: no $py: run scripts/install-bench-deps.sh first" >&2; exit 1; }
work=out/report/work
results=out/report/results
mkdir -p "$work" "$results"
rm -f "$results"/*.json

if [ $mode = quick ]; then
  reps=2; wordnet_reps=1; als_iterations=3; knn_limit=2000; spmv_rows=1048576; scaling=()
  cosine_devices=cpu,cpu:2; knn_devices=cpu,cpu:2
  note="--quick: 2 repetitions (cosine on WordNet: 1), ALS 3 iterations,\
 k-NN on the first 2,000 queries, SpMV on 1,048,576 rows; not the full mode the targets are stated for."
else
  reps=5; wordnet_reps=5; als_iterations=3; knn_limit=0; spmv_rows=4194304; scaling=(--scaling)
  cosine_devices=cpu,cpu:2; knn_devices=cpu,cpu:2
  note="full: 5 interleaved repetitions of every system, ALS 3 iterations, all 10,000 k-NN queries, SpMV on\
 4,194,304 rows."
fi

echo "== build ($build)" >&2
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMGPU_BUILD_BENCHMARKS=ON -DMGPU_BUILD_EXAMPLES=ON \
    -DMGPU_BUILD_TESTS=OFF -DMGPU_ENABLE_CUDA=OFF >/dev/null
fi
cmake --build "$build" --target document_similarity tfidf_corpus knn_classify als_recommend make_interactions \
  spmv_bench stream_triad graphblas_spmv eigen_spmv >/dev/null

echo "== data" >&2
[ -s out/linux-doc.ndjson ] || /usr/bin/python3 examples/document_similarity/make_linux_doc_corpus.py --output out/linux-doc.ndjson
[ -s out/wordnet.ndjson ] || /usr/bin/python3 benchmarks/data/make_wordnet_corpus.py --output out/wordnet.ndjson
[ -s out/debian-packages.mtx ] || /usr/bin/python3 examples/als_recommend/make_package_matrix.py --output out/debian-packages
[ -s "$work/ml20m.mtx" ] || "$build/benchmarks/als/make_interactions" movielens-20m "$work/ml20m.mtx"

"$py" benchmarks/report/meta.py --mode $mode --reps "$reps" --out "$results/meta.json" --note "$note" \
  --command "benchmarks/report.sh$([ $mode = quick ] && echo ' --quick')"
r=benchmarks/report
start=$(date +%s)
echo "== TF-IDF" >&2
"$py" $r/tfidf.py --build "$build" --reps "$reps" --work "$work" --out "$results/tfidf.json" \
  out/linux-doc.ndjson out/wordnet.ndjson
echo "== cosine top-10" >&2
"$py" $r/cosine.py --build "$build" --reps "$reps" --devices "$cosine_devices" --tfidf-dir "$work" \
  --out "$results/cosine-linux-doc.json" out/linux-doc.ndjson
"$py" $r/cosine.py --build "$build" --reps "$wordnet_reps" --devices "$cosine_devices" --tfidf-dir "$work" \
  --out "$results/cosine-wordnet.json" out/wordnet.ndjson
echo "== k-NN" >&2
"$py" $r/knn.py --build "$build" --reps "$reps" --devices "$knn_devices" --limit-queries "$knn_limit" \
  --work "$work" --out "$results/knn.json"
echo "== ALS" >&2
"$py" $r/als.py --build "$build" --reps "$reps" --iterations "$als_iterations" "${scaling[@]}" --work "$work" \
  --out "$results/als.json" ml20m="$work/ml20m.mtx" debian=out/debian-packages.mtx
echo "== SpMV" >&2
"$py" $r/spmv.py --build "$build" --rows "$spmv_rows" --reps "$reps" "${scaling[@]}" --out "$results/spmv.json"
echo "== report ($(( $(date +%s) - start )) s of runs)" >&2
"$py" $r/make_report.py --results "$results" --meta "$results/meta.json" --docs "$docs"
