#!/usr/bin/env bash
# One command for the minutes a GPU is lent: checks the CUDA backend on a machine with a
# GPU and writes a Markdown report (docs/gpu.md says how to read it).
#
#   scripts/gpu-check.sh [--build DIR] [--out DIR] [--seconds N] [--dry-run]
#
#   --build DIR   a CUDA-enabled build tree (default build-gpu-check). If DIR has no
#                 CMakeCache.txt it is configured here (Release, the GPU's own
#                 architecture); either way the GPU tests and the examples are (re)built.
#                 Carry a tree built elsewhere to save the minutes of nvcc.
#   --out DIR     where the report and the logs go (default: $OUT if set, else
#                 out/gpu-check). Report: DIR/report.md; one log per step in DIR/logs/.
#   --seconds N   the whole run stops itself after N seconds (default 480); each step
#                 gets what is left, and the steps not reached are listed as such.
#   --dry-run     prints and reports every step without running it (no build, no GPU
#                 needed beyond nvidia-smi answering); the test suite runs it with a fake
#                 nvidia-smi to check the steps.
#
# Steps: the GPUs (nvidia-smi -L); build; shared libraries of every program (ldd: a
# "not found" fails); every GPU test program; compute-sanitizer memcheck and racecheck
# on the cosine and ALS cases; the three examples on small real data from the
# repository on `cpu`, on `cuda:0` and on `cuda:0,0` (two logical devices of GPU 0,
# MGPU_CUDA_SHARED_DEVICES=1, so the multi-device paths run on one card), outputs
# compared; the GPU benchmarks (bench_gpu: SpMV, cosine, k-NN, ALS against the roofline).
#
# Exit: 0 when every step passed, 1 when one failed or timed out, 77 when no GPU is
# visible (nvidia-smi missing, failing, or listing none), 2 for bad arguments.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

build=build-gpu-check
out=${OUT:-out/gpu-check}
seconds=480
dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=${2:?--build needs a directory}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    *) echo "gpu-check.sh: unknown argument '$1' (see the comment at the top of the script)" >&2; exit 2 ;;
  esac
done
case "$seconds" in '' | *[!0-9]*) echo "gpu-check.sh: --seconds must be a whole number, got '$seconds'" >&2; exit 2 ;; esac

mkdir -p "$out/logs"
out=$(cd "$out" && pwd)
report="$out/report.md"
deadline=$(($(date +%s) + seconds))
failures=0

{
  echo "# GPU check"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "- build tree: $build"
  [ "$dry_run" = 1 ] && echo "- **dry run**: the steps were listed, not run"
  echo
} >"$report"

gpus=$(nvidia-smi -L 2>/dev/null | grep '^GPU ' || true)
if [ -z "$gpus" ]; then
  echo "gpu-check.sh: no GPU is visible (nvidia-smi is missing, failed or lists none)" >&2
  echo "No GPU is visible (nvidia-smi is missing, failed or lists none); nothing was run." >>"$report"
  exit 77
fi
{
  echo '## GPUs'
  echo
  echo '```'
  echo "$gpus"
  echo '```'
  echo
  echo '## Steps'
  echo
  echo '| step | result | seconds | log |'
  echo '|---|---|---|---|'
} >>"$report"

# step NAME COMMAND...: runs COMMAND with what is left of the time limit, its output in
# logs/NAME.log, and adds a row to the report. Exit code 77 means "skipped".
step() {
  local name=$1; shift
  local log="$out/logs/$name.log" left=$((deadline - $(date +%s))) started result rc
  if [ "$dry_run" = 1 ]; then
    printf 'would run: %s\n' "$*" | tee "$log"
    echo "| $name | dry run | 0 | logs/$name.log |" >>"$report"
    return 0
  fi
  if [ "$left" -le 0 ]; then
    echo "| $name | not reached (time limit) | 0 | |" >>"$report"
    failures=$((failures + 1))
    return 1
  fi
  started=$(date +%s)
  # Through bash -c, so that a step may be one of the functions below (exported).
  timeout --kill-after=5 "$left" bash -c '"$@"' "$name" "$@" >"$log" 2>&1
  rc=$?
  case $rc in
    0) result=pass ;;
    77) result=skipped ;;
    124 | 137) result="**timed out**"; failures=$((failures + 1)) ;;
    *) result="**FAILED** (exit $rc)"; failures=$((failures + 1)) ;;
  esac
  echo "| $name | $result | $(($(date +%s) - started)) | logs/$name.log |" >>"$report"
  echo "gpu-check.sh: $name: $result" >&2
  return $rc
}

# The GPU's compute capability as CMake wants it ("90" for 9.0), for a build made here.
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')
[ -n "$arch" ] || arch="80;90"

gpu_tests=(test_cuda test_sparse_cuda test_knn_cuda test_als_cuda)
examples=(document_similarity knn_classify als_recommend)
if [ ! -f "$build/CMakeCache.txt" ]; then
  step configure cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DMGPU_ENABLE_CUDA=ON -DMGPU_BUILD_TESTS=ON -DMGPU_BUILD_EXAMPLES=ON -DMGPU_BUILD_BENCHMARKS=ON \
    "-DCMAKE_CUDA_ARCHITECTURES=$arch"
fi
# A carried tree may have been configured without the benchmarks; build what it has.
targets=("${gpu_tests[@]}" "${examples[@]}")
if [ "$dry_run" = 1 ] || grep -q '^MGPU_BUILD_BENCHMARKS:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  targets+=(bench_gpu)
fi
step build cmake --build "$build" --parallel "$(nproc)" --target "${targets[@]}"

program() {  # the path of a built program, wherever CMake put it
  find "$build" -type f -name "$1" -perm -u+x 2>/dev/null | head -n 1
}
check_libraries() {
  local missing=0 p
  for p in "$@"; do
    [ -n "$p" ] || continue
    echo "== $p"
    ldd "$p" || missing=1
    if ldd "$p" | grep -q 'not found'; then missing=1; fi
  done
  return $missing
}
export build out root
export -f program check_libraries
programs=()
for t in "${gpu_tests[@]}" "${examples[@]}"; do programs+=("$(program "$t")"); done
step shared-libraries check_libraries "${programs[@]}"

for t in "${gpu_tests[@]}"; do
  step "$t" "$(program "$t" || echo "$t")" --durations yes
done

if command -v compute-sanitizer >/dev/null || [ "$dry_run" = 1 ]; then
  step memcheck-cosine compute-sanitizer --tool memcheck --error-exitcode 1 "$(program test_cuda)" '[cosine]'
  step racecheck-cosine compute-sanitizer --tool racecheck --error-exitcode 1 "$(program test_cuda)" '[cosine]'
  step memcheck-als compute-sanitizer --tool memcheck --error-exitcode 1 "$(program test_als_cuda)"
  step racecheck-als compute-sanitizer --tool racecheck --error-exitcode 1 "$(program test_als_cuda)"
else
  echo "| compute-sanitizer | not installed | 0 | |" >>"$report"
fi

# Examples on `cpu` and on `cuda:0`, on the small real data the repository carries.
data=tests/data
mkdir -p "$out/examples"
compare_outputs() {  # FILE_A FILE_B: same rows, ids equal, scores within 1e-4
  python3 - "$1" "$2" <<'EOF'
import sys
a = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
b = [l.rstrip("\n").split("\t") for l in open(sys.argv[2])]
if len(a) != len(b):
    sys.exit(f"{len(a)} rows in {sys.argv[1]}, {len(b)} in {sys.argv[2]}")
bad = 0
for i, (x, y) in enumerate(zip(a, b)):
    if x[:-1] != y[:-1] or abs(float(x[-1]) - float(y[-1])) > 1e-4 * max(1.0, abs(float(x[-1]))):
        bad += 1
        if bad <= 10:
            print(f"row {i + 1}: {x} vs {y}")
print(f"{len(a)} rows, {bad} differ")
sys.exit(1 if bad else 0)
EOF
}
run_pair() {  # NAME OUTPUT_ARG PROGRAM ARGS...: runs on cpu, cuda:0 and cuda:0,0; compares
  local name=$1 outflag=$2 prog; shift 2
  prog=$(program "$1"); shift
  [ -n "$prog" ] || { echo "$name: not built"; return 1; }
  "$prog" "$@" --devices cpu "$outflag" "$out/examples/$name.cpu.tsv" &&
    "$prog" "$@" --devices cuda:0 "$outflag" "$out/examples/$name.cuda0.tsv" &&
    MGPU_CUDA_SHARED_DEVICES=1 "$prog" "$@" --devices cuda:0,0 "$outflag" "$out/examples/$name.cuda00.tsv" &&
    compare_outputs "$out/examples/$name.cpu.tsv" "$out/examples/$name.cuda0.tsv" &&
    compare_outputs "$out/examples/$name.cpu.tsv" "$out/examples/$name.cuda00.tsv"
}
export data
export -f compare_outputs run_pair
step document_similarity run_pair document_similarity --output document_similarity \
  --input "$data/corpus/basic.ndjson" --top-k 3
# knn_classify wants the four MNIST file names; the repository has 300 training and 20
# test images of Fashion-MNIST and the training labels (the test labels only score the
# accuracy, so the first 20 training labels stand in for them).
fashion="$out/examples/fashion"
make_fashion() {
  mkdir -p "$fashion" &&
    ln -sf "$root/$data/knn/fashion-train-300-images.idx3-ubyte.gz" "$fashion/train-images-idx3-ubyte.gz" &&
    ln -sf "$root/$data/knn/fashion-train-300-labels.idx1-ubyte.gz" "$fashion/train-labels-idx1-ubyte.gz" &&
    ln -sf "$root/$data/knn/fashion-test-20-images.idx3-ubyte.gz" "$fashion/t10k-images-idx3-ubyte.gz" &&
    python3 - "$fashion" <<'EOF'
import gzip, struct, sys
labels = gzip.open(sys.argv[1] + "/train-labels-idx1-ubyte.gz").read()[8:28]
open(sys.argv[1] + "/t10k-labels-idx1-ubyte", "wb").write(struct.pack(">II", 2049, 20) + labels)
EOF
}
export fashion
export -f make_fashion
step knn-data make_fashion
step knn_classify run_pair knn_classify --output knn_classify --data-dir "$fashion"
als_factors() {  # ALS factors differ in round-off between devices; compare the losses
  local prog
  prog=$(program als_recommend)
  [ -n "$prog" ] || { echo "als_recommend: not built"; return 1; }
  "$prog" --input "$data/als/dpkg-status.mtx" --iterations 3 --devices cpu | tee "$out/examples/als.cpu.txt" &&
    "$prog" --input "$data/als/dpkg-status.mtx" --iterations 3 --devices cuda:0 | tee "$out/examples/als.cuda0.txt" &&
    MGPU_CUDA_SHARED_DEVICES=1 "$prog" --input "$data/als/dpkg-status.mtx" --iterations 3 --devices cuda:0,0 |
    tee "$out/examples/als.cuda00.txt" &&
    python3 - "$out/examples/als.cpu.txt" "$out/examples/als.cuda0.txt" "$out/examples/als.cuda00.txt" <<'EOF'
import re, sys
loss = lambda f: [float(m) for m in re.findall(r"loss=([0-9.eE+-]+)", open(f).read())]
a = loss(sys.argv[1])
ok = bool(a)
for other in sys.argv[2:]:
    b = loss(other)
    print(sys.argv[1], a, other, b)
    ok = ok and len(a) == len(b) and all(abs(x - y) <= 1e-3 * max(1.0, abs(x)) for x, y in zip(a, b))
sys.exit(0 if ok else 1)
EOF
}
export -f als_factors
step als_recommend als_factors

gpu_benchmarks() {  # short runs; the JSON keeps every counter for the report's reader
  local prog
  prog=$(program bench_gpu)
  [ -n "$prog" ] || { echo "bench_gpu: not built (configure with -DMGPU_BUILD_BENCHMARKS=ON)"; return 1; }
  "$prog" --benchmark_min_time=0.2 --benchmark_out="$out/bench_gpu.json" --benchmark_out_format=json
}
export -f gpu_benchmarks
step bench_gpu gpu_benchmarks

{
  echo
  if [ "$dry_run" = 1 ]; then
    echo "Dry run: nothing was built or run."
  elif [ "$failures" = 0 ]; then
    echo "Every step passed."
  else
    echo "$failures step(s) failed, timed out or were not reached; see the logs."
  fi
} >>"$report"
echo "gpu-check.sh: report in $report" >&2
[ "$failures" = 0 ]
