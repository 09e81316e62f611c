#!/usr/bin/env bash
# Side by side on Fashion-MNIST (60,000 x 784 base, 10,000 queries, k = 10, squared L2):
# mgpu's knn_classify (cpu and cpu:2) against FAISS IndexFlatL2 and scikit-learn's
# brute-force NearestNeighbors, each a whole process (read the IDX files, search, vote,
# write the neighbours), interleaved and repeated; prints medians and ratios, then checks
# that the neighbours agree (compare_knn.py check: other peers' lists, an exact float64
# reference on sampled queries, and the reported accuracy).
#
#   benchmarks/knn/compare_knn.sh [build-dir]        (default: build)
#   REPS=5 SKLEARN_REPS=1 LIMIT_QUERIES=0 KEEP_DIR=out/knn benchmarks/knn/compare_knn.sh build-knn
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-build}"
exe="$build/examples/knn_classify/knn_classify"
data="${DATA_DIR:-/usr/share/datasets/fashion-mnist}"
reps="${REPS:-3}"
sklearn_reps="${SKLEARN_REPS:-1}"
limit="${LIMIT_QUERIES:-0}"
k="${K:-10}"
py=/usr/bin/python3  # Debian's python, with numpy, faiss and scikit-learn
out="${KEEP_DIR:-$(mktemp -d)}"
mkdir -p "$out"
[[ -n "${KEEP_DIR:-}" ]] || trap 'rm -rf "$out"' EXIT
[[ -x "$exe" ]] || { echo "compare_knn.sh: $exe not built (cmake --build $build --target knn_classify)" >&2; exit 1; }

declare -A times cpu
# run NAME COMMAND...: wall time and CPU time (user + system) of the whole process,
# appended to times[NAME] and cpu[NAME]. CPU time is less disturbed by other load on a
# shared machine; both are reported.
run() {
  local name="$1"; shift
  /usr/bin/time -f "%e %U %S" -o "$out/$name.time" "$@" > "$out/$name.stdout" 2> "$out/$name.stderr" ||
    { cat "$out/$name.stderr" >&2; exit 1; }
  read -r wall user sys < "$out/$name.time"
  times[$name]+="$wall "
  cpu[$name]+="$(echo "$user + $sys" | bc) "
}
median() { tr ' ' '\n' <<< "$1" | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "machine: $(nproc) threads, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 0; r < reps; ++r)); do
  run mgpu "$exe" --data-dir "$data" --k "$k" --devices cpu --limit-queries "$limit" --output "$out/mgpu.tsv"
  run faiss "$py" "$here/compare_knn.py" faiss --data-dir "$data" --k "$k" --limit-queries "$limit" --output "$out/faiss.tsv"
  run mgpu_cpu2 "$exe" --data-dir "$data" --k "$k" --devices cpu:2 --limit-queries "$limit" --output "$out/mgpu_cpu2.tsv"
done
for ((r = 0; r < sklearn_reps; ++r)); do
  run sklearn "$py" "$here/compare_knn.py" sklearn --data-dir "$data" --k "$k" --limit-queries "$limit" --output "$out/sklearn.tsv"
done

printf '\n%-10s %8s %8s %9s %8s %8s  %s\n' program "wall s" "cpu s" "search s" GFLOP/s accuracy "wall runs (s)"
for name in mgpu mgpu_cpu2 faiss sklearn; do
  [[ -n "${times[$name]:-}" ]] || continue
  printf '%-10s %8.2f %8.2f %9s %8s %8s  %s\n' "$name" "$(median "${times[$name]}")" "$(median "${cpu[$name]}")" \
    "$(sed -n 's/^search_seconds=//p' "$out/$name.stdout")" "$(sed -n 's/^gflops=//p' "$out/$name.stdout")" \
    "$(sed -n 's/^accuracy=//p' "$out/$name.stdout")" "${times[$name]}"
done
ratio() { echo "scale=2; $(median "$1") / $(median "$2")" | bc; }
echo
echo "whole process, medians: FAISS IndexFlatL2 / mgpu cpu   = $(ratio "${times[faiss]}" "${times[mgpu]}")x wall, $(ratio "${cpu[faiss]}" "${cpu[mgpu]}")x cpu"
echo "whole process, medians: FAISS IndexFlatL2 / mgpu cpu:2 = $(ratio "${times[faiss]}" "${times[mgpu_cpu2]}")x wall, $(ratio "${cpu[faiss]}" "${cpu[mgpu_cpu2]}")x cpu"
if [[ -n "${times[sklearn]:-}" ]]; then
  echo "whole process, medians: scikit-learn / mgpu cpu       = $(ratio "${times[sklearn]}" "${times[mgpu]}")x wall, $(ratio "${cpu[sklearn]}" "${cpu[mgpu]}")x cpu"
fi
echo
if cmp -s "$out/mgpu.tsv" "$out/mgpu_cpu2.tsv"; then echo "mgpu cpu:2 output is identical to cpu"; else echo "mgpu cpu:2 output DIFFERS from cpu"; fi
accuracy=$(sed -n 's/^accuracy=//p' "$out/mgpu.stdout")
others=("$out/faiss.tsv" "$out/mgpu_cpu2.tsv")
[[ -f "$out/sklearn.tsv" ]] && others+=("$out/sklearn.tsv")
"$py" "$here/compare_knn.py" check --data-dir "$data" --k "$k" --accuracy "$accuracy" "$out/mgpu.tsv" "${others[@]}"
