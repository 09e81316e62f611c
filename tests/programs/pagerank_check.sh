#!/usr/bin/env bash
# pagerank_check.sh BINARY TEST_DATA_DIR
#
# examples/pagerank against networkx: tests/data/pagerank/graph.mtx ranked with the
# damping and iteration counts of the committed expected files (made by
# tests/data/pagerank/make_expected.py with networkx's power iteration) must agree to
# 1e-4 relative per node on cpu and cpu:3, with the same bits on both; and the bytes the
# program reports per device must be exactly: x broadcast once, then per iteration only
# the all-gather of the new rank vector, and the final vector gathered once. Needs bash
# and python3 (no networkx). Runs in a fresh `mktemp -d` directory, removed at the end.
set -u
bin=$(realpath "$1")
data=$(realpath "$2")/pagerank
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
failures=0
fail() {
  echo "FAIL [pagerank]: $*" >&2
  failures=$((failures + 1))
}

# compare RANKS EXPECTED: every node's score within 1e-4 relative of networkx's.
compare() {
  python3 - "$1" "$2" <<'PY' || fail "$1 differs from networkx ($2)"
import sys
def read(path):
    rows = [l.rstrip("\n").split("\t") for l in open(path) if not l.startswith("#")]
    return [(r[0], float(r[1])) for r in rows]
got, want = read(sys.argv[1]), read(sys.argv[2])
assert [n for n, _ in got] == [n for n, _ in want], "node lists differ"
bad = [(n, g, w) for (n, g), (_, w) in zip(got, want) if abs(g - w) > 1e-4 * abs(w)]
if bad:
    print("nodes off by more than 1e-4 relative:", bad, file=sys.stderr)
    sys.exit(1)
PY
}

for run in "0.85 50" "0.5 3"; do
  set -- $run
  expected="$data/expected_$1_$2.tsv"
  for devices in cpu cpu:3; do
    out="ranks_$1_$2_$devices.tsv"
    if ! timeout 120 "$bin" --input "$data/graph.mtx" --damping "$1" --iterations "$2" --devices "$devices" \
        --output "$out" >"$out.log" 2>&1; then
      fail "damping $1, $2 iterations on $devices: exit code $?: $(head -c 400 "$out.log")"
      continue
    fi
    compare "$out" "$expected"
  done
  cmp -s "ranks_$1_$2_cpu.tsv" "ranks_$1_$2_cpu:3.tsv" || fail "cpu and cpu:3 give different bits (damping $1)"
done

# What moved on cpu:3 in 3 iterations of a 10-node graph (8-byte doubles): the host sends
# x to each device and receives the final vector once; device d, holding m_d rows, gets
# x once plus the other blocks in each of the 2 all-gathers, and sends its block to the 2
# other devices in each all-gather plus once to the host.
python3 - "ranks_0.5_3_cpu:3.tsv.log" <<'PY' || fail "bytes moved on cpu:3 are not the all-gathers alone"
import re, sys
log = open(sys.argv[1]).read()
n, k, devices, size = 10, 3, 3, 8
host = re.search(r"host sent (\d+) received (\d+)", log)
assert host and int(host[1]) == devices * n * size and int(host[2]) == n * size, log
rows = re.findall(r"device (\d+): rows \[(\d+), (\d+)\) sent (\d+) received (\d+)", log)
assert len(rows) == devices, log
assert sum(int(b) - int(a) for _, a, b, _, _ in rows) == n, log
for _, a, b, sent, received in rows:
    m = int(b) - int(a)
    assert int(sent) == ((k - 1) * (devices - 1) * m + m) * size, (log, m, sent)
    assert int(received) == (n + (k - 1) * (n - m)) * size, (log, m, received)
PY

# A matrix that is not square is refused with a message, and nothing is written.
printf '%%%%MatrixMarket matrix coordinate pattern general\n2 3 1\n1 3\n' >wide.mtx
if timeout 60 "$bin" --input wide.mtx --output wide.tsv >wide.log 2>&1; then fail "a 2 x 3 graph was accepted"; fi
grep -q "square" wide.log || fail "no message about the shape: $(head -c 300 wide.log)"
[ ! -e wide.tsv ] || fail "wide.tsv was written for a refused input"

[ "$failures" -eq 0 ] || exit 1
echo "pagerank: all checks passed"
