#!/usr/bin/env bash
# run_fault.sh <seconds> <expected text> <minimum count> -- <mpirun command...>
# Runs an MPI job that fails on one rank and checks that it ends within <seconds> with a
# non-zero status and that <expected text> appears at least <minimum count> times in its
# output (stdout and stderr together).
set -u
limit=$1 text=$2 count=$3
shift 4
out=$(timeout --kill-after=10 "$limit" "$@" 2>&1)
rc=$?
printf '%s\n' "$out"
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "FAIL: the job did not end within $limit s (a hang)" >&2
  exit 1
fi
if [ "$rc" -eq 0 ]; then
  echo "FAIL: the job exited with status 0" >&2
  exit 1
fi
found=$(grep -c -F -- "$text" <<<"$out")
if [ "$found" -lt "$count" ]; then
  echo "FAIL: \"$text\" appears $found times, expected at least $count" >&2
  exit 1
fi
echo "ok: status $rc, \"$text\" $found times"
