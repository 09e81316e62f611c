#!/usr/bin/env bash
# scripts/gpu-check.sh without a GPU: with a fake nvidia-smi that lists one GPU, a dry
# run must list every step in its report and exit 0; with one that fails (as on a
# machine without a driver) the script must say so and exit 77. Runs in its own
# temporary directory.
set -euo pipefail
source_dir=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$tmp/gpu" "$tmp/nogpu"
printf '#!/bin/sh\ncase "$*" in *compute_cap*) echo 9.0 ;; *) echo "GPU 0: Fake GPU (UUID: GPU-0)" ;; esac\n' >"$tmp/gpu/nvidia-smi"
printf '#!/bin/sh\necho "NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver." >&2\nexit 9\n' >"$tmp/nogpu/nvidia-smi"
chmod +x "$tmp/gpu/nvidia-smi" "$tmp/nogpu/nvidia-smi"

PATH="$tmp/gpu:$PATH" bash "$source_dir/scripts/gpu-check.sh" --dry-run --build "$tmp/build" --out "$tmp/out" \
  >"$tmp/dry.log" 2>&1 || fail "dry run exited $? ($(cat "$tmp/dry.log"))"
report="$tmp/out/report.md"
grep -q 'Fake GPU' "$report" || fail "the report does not list the GPU"
for s in configure build shared-libraries test_cuda test_sparse_cuda test_knn_cuda test_als_cuda \
  memcheck-cosine racecheck-cosine memcheck-als racecheck-als document_similarity knn-data knn_classify \
  als_recommend bench_gpu; do
  grep -q "^| $s | dry run |" "$report" || fail "step $s missing from the dry-run report"
  [ -s "$tmp/out/logs/$s.log" ] || fail "step $s has no log"
done
grep -q 'would run: cmake -S .* -DCMAKE_CUDA_ARCHITECTURES=90' "$tmp/out/logs/configure.log" ||
  fail "configure does not build for the GPU's architecture"
[ ! -e "$tmp/build" ] || fail "a dry run built something"

rc=0
PATH="$tmp/nogpu:$PATH" bash "$source_dir/scripts/gpu-check.sh" --out "$tmp/out2" >"$tmp/nogpu.log" 2>&1 || rc=$?
[ "$rc" = 77 ] || fail "without a GPU the script exited $rc, expected 77"
grep -q 'no GPU is visible' "$tmp/nogpu.log" || fail "without a GPU the script does not say so"

rc=0
bash "$source_dir/scripts/gpu-check.sh" --seconds soon >"$tmp/bad.log" 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "a bad --seconds exited $rc, expected 2"
echo "gpu-check.sh: dry run, no-GPU exit and argument check as specified"
