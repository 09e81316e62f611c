#!/usr/bin/env bash
# als_recommend_check.sh BINARY TEST_DATA_DIR
#
# examples/als_recommend end to end, inside a fresh `mktemp -d` directory removed at the
# end: --recommend-all's rows against a brute force in Python (double dot products of the
# factors the same run saved, seen items removed, ranking allowing only exchanges between
# scores equal within float round-off); a model saved with --save-model and loaded with
# --load-model recommends byte-identically without fitting; names in TSV and NDJSON; a
# progress line on a terminal (script(1)) and nothing on stderr otherwise. Needs python3.
set -u
bin=$(realpath "$1")
data=$(realpath "$2")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1

failures=0
fail() {
  echo "FAIL [als_recommend]: $*" >&2
  failures=$((failures + 1))
}
attempt() {  # attempt NAME ARGS...: stdout to NAME.out, stderr to NAME.err; sets rc
  local name=$1
  shift
  timeout 120 "$bin" "$@" >"$name.out" 2>"$name.err"
  rc=$?
}
run() {  # run NAME ARGS...: attempt, which must succeed
  attempt "$@"
  [ "$rc" -eq 0 ] || fail "$1: exit code $rc; stderr: $(head -c 400 "$1.err")"
}

m="$data/als/dpkg-status.mtx"
fast=(--input "$m" --iterations 2 --factors 4)

# 1. Every user's top 5 unseen items, against the brute force on the saved factors.
run all "${fast[@]}" --recommend-all --top-k 5 --output recs.tsv --save-factors f --save-model model
[ -s all.err ] && fail "all: stderr is not a terminal but holds: $(head -c 200 all.err)"
grep -q '^wrote recs.tsv: ' all.out || fail "all: no 'wrote recs.tsv' line"
python3 - "$m" <<'EOF' || fail "all: recs.tsv differs from the brute force"
import sys

def read_coordinate(path):
    with open(path) as f:
        lines = [l for l in f if not l.startswith("%")]
    rows, cols, _ = map(int, lines[0].split())
    seen = [set() for _ in range(rows)]
    for l in lines[1:]:
        r, c, _ = l.split()
        seen[int(r) - 1].add(int(c) - 1)
    return rows, cols, seen

def read_array(path):  # Matrix Market array: values column by column
    with open(path) as f:
        lines = [l for l in f if not l.startswith("%")]
    rows, cols = map(int, lines[0].split())
    v = [float(l) for l in lines[1:]]
    return [[v[j * rows + i] for j in range(cols)] for i in range(rows)]

users, items, seen = read_coordinate(sys.argv[1])
x, y = read_array("f.users.mtx"), read_array("f.items.mtx")
got = {}
for line in open("recs.tsv"):
    u, i, s = line.rstrip("\n").split("\t")
    got.setdefault(int(u), []).append((int(i), float(s)))
assert sorted(got) == [u for u in range(users) if items - len(seen[u]) > 0], "users listed"
eps = 2.0 ** -24
for u in range(users):
    exact = {i: sum(a * b for a, b in zip(x[u], y[i])) for i in range(items) if i not in seen[u]}
    tol = {i: 2 * (len(x[u]) + 2) * eps * sum(abs(a * b) for a, b in zip(x[u], y[i])) + 1e-8 for i in exact}
    row = got.get(u, [])
    assert len(row) == min(5, len(exact)), (u, len(row))
    ids = [i for i, _ in row]
    assert len(set(ids)) == len(ids) and all(i in exact for i in ids), (u, ids)
    for i, s in row:
        assert abs(s - exact[i]) <= tol[i] + 1e-8 * abs(exact[i]), (u, i, s, exact[i])
    for a, b in zip(row, row[1:]):
        assert exact[a[0]] >= exact[b[0]] - tol[a[0]] - tol[b[0]], (u, a, b)
    last = ids[-1]
    for i in exact:
        if i not in ids:
            assert exact[i] <= exact[last] + tol[i] + tol[last], (u, i, last)
EOF

# 2. The saved model recommends the same bytes, without reading an input or fitting.
[ -f model/model.als ] || fail "save: model/model.als is missing"
[ -e model/users.txt ] && fail "save: users.txt written for an input without names"
run loaded --load-model model --recommend-all --top-k 5 --output recs2.tsv --recommend 3
grep -q '^iteration' loaded.out && fail "loaded: the model was fitted again"
grep -q '^model: a model of 820 users x 1111 items, 4 factors' loaded.out || fail "loaded: no model line: $(head -c 200 loaded.out)"
cmp -s recs.tsv recs2.tsv || fail "loaded: recs2.tsv differs from the saved model's recs.tsv"
run again "${fast[@]}" --top-k 5 --recommend 3
diff <(sed -n '/^recommended for 3:/,$p' again.out) <(sed -n '/^recommended for 3:/,$p' loaded.out) >/dev/null ||
  fail "loaded: --recommend 3 prints otherwise than the fitting run"
attempt rejects --load-model model --input "$m"
[ "$rc" -ne 0 ] && grep -q 'excludes' rejects.err || fail "--load-model with --input: not refused ($(head -c 200 rejects.err))"

# 3. Names: TSV escapes and NDJSON strings; a named model round-trips with its names.
printf '%%%%MatrixMarket matrix coordinate real general\n3 3 4\n1 1 1\n1 2 1\n2 2 1\n3 3 1\n' >named.mtx
printf 'ann\nbob\ncy\tz\n' >named.users.txt
printf 'tea\ncoffee\nmilk\n' >named.items.txt
run named --input named.mtx --iterations 2 --factors 2 --recommend-all --top-k 2 --output named.tsv --save-model nm
awk -F'\t' 'NF != 3 { bad = 1 } END { exit bad }' named.tsv || fail "named: a row without exactly 3 fields"
grep -q '^cy\\tz	' named.tsv || fail "named: the tab in a user name is not written as \\t"
[ "$(cut -f1 named.tsv | sort -u | wc -l)" -eq 3 ] || fail "named: expected rows for 3 users"
grep -q '^ann	' named.tsv && [ "$(grep -c '^ann	' named.tsv)" -eq 1 ] || fail "named: ann has seen 2 of 3 items, so 1 row"
run named_json --input named.mtx --iterations 2 --factors 2 --recommend-all --top-k 2 --output named.ndjson \
  --output-format ndjson
python3 - <<'EOF' || fail "named_json: NDJSON rows do not match the TSV rows"
import json
rows = [json.loads(l) for l in open("named.ndjson")]
tsv = [l.rstrip("\n").split("\t") for l in open("named.tsv")]
assert len(rows) == len(tsv)
for r, t in zip(rows, tsv):
    assert set(r) == {"user", "item", "score"}, r
    assert r["user"] == t[0].replace("\\t", "\t") and r["item"] == t[1], (r, t)
EOF
cmp -s nm/users.txt named.users.txt || fail "named: nm/users.txt is not the input's names"
run named_loaded --load-model nm --recommend cy$'\t'z --recommend-all --top-k 2 --output named2.tsv
cmp -s named.tsv named2.tsv || fail "named_loaded: recommendations differ from the saved model's"
grep -q '^recommended for cy' named_loaded.out || fail "named_loaded: --recommend by name failed"
# Overwriting a named model with one without names removes the old names.
run unnamed "${fast[@]}" --save-model nm
[ -e nm/users.txt ] && fail "unnamed: nm/users.txt of the earlier model was left"

# 4. On a terminal, a progress line for the fit and for --recommend-all on stderr.
if script -qec "true" /dev/null >/dev/null 2>&1; then
  script -qec "$(printf '%q ' "$bin" "${fast[@]}" --recommend-all --output tty.tsv)" tty.log >/dev/null 2>&1
  grep -q 'ALS fit: 2/2 iterations' tty.log || fail "tty: no fit progress line"
  grep -q 'recommend: 820/820 users' tty.log || fail "tty: no recommend progress line"
else
  echo "SKIP [als_recommend]: script(1) cannot allocate a terminal here; the progress line is not checked"
fi

if [ "$failures" -ne 0 ]; then
  echo "als_recommend: $failures check(s) failed" >&2
  exit 1
fi
echo "als_recommend: all recommendation checks passed"
