#!/usr/bin/env bash
# Side-by-side runs of mgpu and its peers on the same real corpora, in one go
# (shared/PERFORMANCE.md): TF-IDF against scikit-learn's TfidfVectorizer, and all-pairs
# cosine top-10 against SciPy's blocked sparse product with argpartition. Each peer
# script also checks that mgpu's output equals its own.
#
#   benchmarks/compare_peers.sh [--quick | --tfidf-only]
#
# --quick times SciPy on the first 5,000 WordNet queries only (the full run takes
# about a quarter of an hour on 2 cores); --tfidf-only runs the TF-IDF comparison
# alone. Needs Debian's python3-sklearn, python3-scipy, linux-doc and wordnet-base.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
tfidf_only=0
[ "${1:-}" = "--quick" ] && quick=1
[ "${1:-}" = "--tfidf-only" ] && tfidf_only=1
py=/usr/bin/python3
build=${MGPU_BUILD_DIR:-build-bench}
# CUDA off: a CUDA build compiles the example as a CUDA TU, whose host code is not
# built for this machine (-march=native), and these are host measurements.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMGPU_BUILD_BENCHMARKS=ON -DMGPU_ENABLE_CUDA=OFF >/dev/null
cmake --build "$build" --target document_similarity tfidf_corpus >/dev/null
app="$build/examples/document_similarity/document_similarity"
tfidf="$build/benchmarks/tfidf_corpus"
mkdir -p out
[ -s out/linux-doc.ndjson ] || $py examples/document_similarity/make_linux_doc_corpus.py --output out/linux-doc.ndjson
[ -s out/wordnet.ndjson ] || $py benchmarks/data/make_wordnet_corpus.py --output out/wordnet.ndjson

# TF-IDF: fit_transform timed as scikit-learn's is, the median of repeated runs in one
# process after reading the corpus (mgpu 5 runs, the first of them cold; sklearn 3).
for corpus in linux-doc wordnet; do
  echo "== TF-IDF, $corpus"
  secs=$("$tfidf" --input "out/$corpus.ndjson" --repeat 5 --save-tfidf "out/$corpus.tfidf.mtx" \
    --save-vocabulary "out/$corpus.vocab.txt" | awk '/^median/ {print $2}')
  $py benchmarks/tfidf_vs_sklearn.py --corpus "out/$corpus.ndjson" --repeat 3 \
    --mgpu-tfidf "out/$corpus.tfidf.mtx" --mgpu-vocab "out/$corpus.vocab.txt" --mgpu-seconds "$secs"
done

[ $tfidf_only = 1 ] && exit 0
for corpus in linux-doc wordnet; do
  echo "== cosine top-10 (all pairs), $corpus"
  for devices in cpu cpu:2; do
    "$app" --input "out/$corpus.ndjson" --devices "$devices" --output "out/$corpus.$devices.tsv" 2>&1 |
      grep '^similarity:'
  done
  cmp "out/$corpus.cpu.tsv" "out/$corpus.cpu:2.tsv" && echo "cpu and cpu:2 outputs are identical"
  limit=()
  [ $quick = 1 ] && [ "$corpus" = wordnet ] && limit=(--max-queries 5000)
  $py benchmarks/cosine_reference.py --tfidf "out/$corpus.tfidf.mtx" --k 10 \
    --corpus "out/$corpus.ndjson" --check "out/$corpus.cpu.tsv" "${limit[@]}"
done
