#!/usr/bin/env bash
# Builds examples/document_similarity and runs it on its default real corpus: the Linux
# kernel documentation from Debian's linux-doc package (about 5,100 documents). Writes
# out/neighbors.tsv (top-10 similar documents for each) and prints stage timings.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build=${MGPU_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMGPU_BUILD_EXAMPLES=ON
cmake --build "$build" --parallel "$(nproc)" --target document_similarity
mkdir -p out
[ -s out/linux-doc.ndjson ] ||
  python3 examples/document_similarity/make_linux_doc_corpus.py --output out/linux-doc.ndjson
"$build/examples/document_similarity/document_similarity" --input out/linux-doc.ndjson \
  --output out/neighbors.tsv "$@"
echo "wrote out/neighbors.tsv" >&2
