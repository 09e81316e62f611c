#!/usr/bin/env bash
# Recommendations for every user of the MovieLens-20M-shaped matrix (138,493 users x
# 26,744 items, 10M entries; make_interactions.hpp), k = 10, seen items excluded: mgpu's
# batched als::recommend (cpu and cpu:2) against the `implicit` library's
# recommend(userids, user_items, N=10, filter_already_liked_items=True) on the same
# factors, in users per second; then the lists are checked against each other and against
# float64 (compare_implicit.py). implicit runs in a venv made here from the pinned
# requirements-implicit.txt (benchmark only), twice: with OpenBLAS's default threads and
# with OPENBLAS_NUM_THREADS=1, the setting implicit's own warning asks for.
#
#   benchmarks/als/compare_implicit.sh [build-dir]          (default: build)
#   REPS=5 VENV=out/venv-implicit KEEP_DIR=out/recs benchmarks/als/compare_implicit.sh build-alsserve
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-build}"
exe="$build/benchmarks/als/recommend_all"
reps="${REPS:-3}"
k="${K:-10}"
venv="${VENV:-out/venv-implicit}"
out="${KEEP_DIR:-$(mktemp -d)}"
mkdir -p "$out"
[[ -n "${KEEP_DIR:-}" ]] || trap 'rm -rf "$out"' EXIT
[[ -x "$exe" ]] || { echo "compare_implicit.sh: $exe not built (cmake -DMGPU_BUILD_BENCHMARKS=ON, target recommend_all)" >&2; exit 1; }
if [[ ! -x "$venv/bin/python" ]]; then
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r "$here/requirements-implicit.txt"
fi

echo "machine: $(nproc) threads, load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$exe" --devices cpu,cpu:2 --k "$k" --repeat "$reps" --export "$out"
"$venv/bin/python" -W ignore "$here/compare_implicit.py" "$out" --k "$k" --repeat "$reps"
OPENBLAS_NUM_THREADS=1 "$venv/bin/python" -W ignore "$here/compare_implicit.py" "$out" --k "$k" --repeat "$reps"
