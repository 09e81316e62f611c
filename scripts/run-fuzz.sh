#!/usr/bin/env bash
# Builds the libFuzzer targets (build-fuzz, Clang) and runs each for a bounded time,
# starting from a scratch copy of its seed corpus in tests/fuzz/corpus/<target>/ (the
# committed corpus is never written to). Fails on any crash, leak, timeout, out-of-memory
# or sanitizer report; the input that caused it is kept in build-fuzz/fuzz-artifacts/.
#
# usage: scripts/run-fuzz.sh [seconds per target, default 60]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [seconds per target]" >&2; exit 2; }
command -v clang++ >/dev/null || { echo "run-fuzz.sh: clang++ is missing" >&2; exit 1; }

targets=(fuzz_matrix_market fuzz_corpus fuzz_device_string fuzz_csr fuzz_idx)
cmake --preset fuzz
cmake --build --preset fuzz --parallel "$(nproc)"

artifacts=build-fuzz/fuzz-artifacts
rm -rf "$artifacts"
mkdir -p "$artifacts"
work=$(mktemp -d /tmp/mgpu-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
failed=()
for target in "${targets[@]}"; do
  mkdir "$work/$target"
  cp tests/fuzz/corpus/"$target"/* "$work/$target"/
  echo "== $target: ${seconds}s"
  if build-fuzz/tests/fuzz/"$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix="$artifacts/$target-" "$work/$target" \
       >"$work/$target.log" 2>&1; then
    grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units)' "$work/$target.log" || true
  else
    failed+=("$target")
    tail -n 60 "$work/$target.log"
  fi
done

if ((${#failed[@]} > 0)) || [ -n "$(ls -A "$artifacts")" ]; then
  echo "run-fuzz.sh: findings in: ${failed[*]:-see artifacts}" >&2
  ls -l "$artifacts" >&2
  echo "Reproduce with build-fuzz/tests/fuzz/<target> <artifact>; once fixed, add the input to" \
       "tests/fuzz/corpus/<target>/ and a unit test for it." >&2
  exit 1
fi
echo "run-fuzz.sh: no findings"
