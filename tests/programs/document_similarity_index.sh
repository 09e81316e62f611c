#!/usr/bin/env bash
# document_similarity_index.sh BINARY TEST_DATA_DIR
#
# examples/document_similarity's saved index: `--save-index DIR` on a small corpus, then
# `--load-index DIR --queries Q` with queries that are documents of the corpus (same ids,
# same texts), must give exactly the rows the one-shot run (--include-self: a query that is
# a corpus document is its own best match in both) gives for those ids, in the queries'
# order: top-k, top-k with a threshold, every match above a threshold (--top-k 0), on cpu
# and cpu:3. The threshold is also checked against the scores written. Runs in a fresh
# `mktemp -d` directory, removed at the end; needs bash, python3 and awk.
set -u
bin=$(realpath "$1")
data=$(realpath "$2")

work=$(mktemp -d)
trap '[ -n "${KEEP_WORK:-}" ] || rm -rf "$work"' EXIT
cd "$work" || exit 1

failures=0
fail() {
  echo "FAIL [document_similarity_index]: $*" >&2
  failures=$((failures + 1))
}

run() {  # run NAME ARGS...: stdout to NAME.out, stderr to NAME.err; sets rc
  local name=$1
  shift
  timeout 120 "$bin" "$@" >"$name.out" 2>"$name.err"
  rc=$?
}

expect_rc() {  # expect_rc NAME WANT
  if [ "$rc" -ne "$2" ]; then fail "$1: exit code $rc, expected $2; stderr: $(head -c 400 "$1.err")"; fi
}

expect_err() {  # expect_err NAME TEXT
  grep -qF -- "$2" "$1.err" || fail "$1: stderr lacks '$2': $(head -c 400 "$1.err")"
}

# rows_of QUERIES.ndjson FULL.tsv: the rows of FULL.tsv whose first field is a query id,
# grouped by query in the queries' order (ids as the TSV writes them: escaped).
rows_of() {
  python3 - "$1" "$2" <<'EOF'
import json, sys
def escape(s):
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
order = [escape(str(json.loads(line)["id"])) for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
rows = {}
for line in open(sys.argv[2], encoding="utf-8", newline="\n"):
    rows.setdefault(line.split("\t", 1)[0], []).append(line)
sys.stdout.write("".join(line for q in order for line in rows.get(q, [])))
EOF
}

# A corpus of 400 short documents over a Zipf-like vocabulary of 300 words (fixed seed),
# with a few duplicate texts (exact ties) and an id holding a tab; the queries are every
# 7th document, plus one that is not in the corpus (its id is new; unknown words dropped).
python3 - <<'EOF'
import json, random
rng = random.Random(16)
words = ["w%d" % i for i in range(300)]
weights = [1.0 / (i + 1) for i in range(300)]
docs = []
for i in range(400):
    n = rng.randint(3, 15)
    docs.append(" ".join(rng.choices(words, weights, k=n)))
docs[22] = docs[23] = docs[21]  # identical documents: tied scores (21 is a query)
ids = ["d%d" % i for i in range(400)]
ids[14] = "tab\there"
with open("corpus.ndjson", "w") as f:
    for i, t in zip(ids, docs):
        f.write(json.dumps({"id": i, "text": t}) + "\n")
with open("queries.ndjson", "w") as f:
    for i in range(0, 400, 7):
        f.write(json.dumps({"id": ids[i], "text": docs[i]}) + "\n")
    f.write(json.dumps({"id": "new", "text": "w1 w2 w3 unknownword w250"}) + "\n")
EOF
head -n -1 queries.ndjson >corpus_queries.ndjson  # the queries that are corpus documents

# Save the index only (no neighbours), then the same with neighbours in one run.
run save --input corpus.ndjson --save-index idx --top-k 0
expect_rc save 0
for f in vectorizer.mgpu index.mgpu ids.mgpu; do [ -s "idx/$f" ] || fail "save: idx/$f missing"; done
[ ! -e save.out ] || [ ! -s save.out ] || fail "save: wrote to stdout"
[ ! -e neighbors.tsv ] || fail "save: --top-k 0 without a threshold wrote neighbours"
run save2 --input corpus.ndjson --save-index idx2 --top-k 5 --output save2.tsv
expect_rc save2 0
cmp -s idx/index.mgpu idx2/index.mgpu || fail "save2: another index file than the first run's"
cmp -s idx/vectorizer.mgpu idx2/vectorizer.mgpu || fail "save2: another vectorizer file than the first run's"
cmp -s idx/ids.mgpu idx2/ids.mgpu || fail "save2: another ids file than the first run's"

# compare NAME ONE_SHOT_ARGS -- QUERY_ARGS: one-shot rows for the query ids == query rows.
compare() {
  local name=$1
  shift
  local one=() query=()
  while [ "$1" != "--" ]; do one+=("$1"); shift; done
  shift
  query=("$@")
  run "$name.full" --input corpus.ndjson --include-self "${one[@]}" --output "$name.full.tsv"
  expect_rc "$name.full" 0
  for devices in cpu cpu:3; do
    run "$name.$devices" --load-index idx --queries corpus_queries.ndjson --devices "$devices" "${query[@]}" \
      --output "$name.$devices.tsv"
    expect_rc "$name.$devices" 0
    rows_of corpus_queries.ndjson "$name.full.tsv" >"$name.expected.tsv"
    [ -s "$name.expected.tsv" ] || fail "$name: no expected rows"
    cmp -s "$name.expected.tsv" "$name.$devices.tsv" ||
      fail "$name ($devices): --load-index rows differ from the one-shot rows: $(diff "$name.expected.tsv" "$name.$devices.tsv" | head -5)"
  done
}
compare top5 --top-k 5 -- --top-k 5
compare top3_threshold --top-k 3 --threshold 0.2 -- --top-k 3 --threshold 0.2
compare all_above --top-k 0 --threshold 0.35 -- --top-k 0 --threshold 0.35
compare default_k --threshold 0.5 -- --threshold 0.5

# Every score written is >= the threshold; with --top-k 0 some query has more than 10.
awk -F'\t' '$3 < 0.35 { bad = 1 } END { exit bad }' all_above.full.tsv || fail "all_above: a score below 0.35"
[ "$(wc -l <all_above.full.tsv)" -gt 0 ] || fail "all_above: no rows"
awk -F'\t' '{ n[$1]++ } END { for (q in n) if (n[q] > 10) ok = 1; exit !ok }' all_above.full.tsv ||
  fail "all_above: no query has more than 10 matches (the corpus should give some)"
# Without --include-self the one-shot run drops exactly the self rows (the tab id escaped).
run noself --input corpus.ndjson --top-k 0 --threshold 0.35 --output noself.tsv
expect_rc noself 0
awk -F'\t' '$1 != $2' all_above.full.tsv | cmp -s - noself.tsv ||
  fail "noself: the rows without --include-self are not the others minus the self matches"

# A query outside the corpus: its id is reported as given, its unknown word dropped.
run new --load-index idx --queries queries.ndjson --top-k 3 --output new.tsv
expect_rc new 0
grep -q '^new	' new.tsv || fail "new: the query 'new' has no rows"

# Bad uses fail with a message, before any output is written.
run noqueries --load-index idx --output x.tsv
[ "$rc" -ne 0 ] || fail "noqueries: --load-index without --queries succeeded"
run nodir --load-index missing-dir --queries queries.ndjson --output x.tsv
expect_rc nodir 1
expect_err nodir "missing-dir/vectorizer.mgpu"
run k0 --load-index idx --queries queries.ndjson --top-k 0 --output x.tsv
expect_rc k0 1
expect_err k0 "--top-k 0 needs --threshold"
run outdir --load-index idx --queries queries.ndjson --output nodir/x.tsv
expect_rc outdir 1
expect_err outdir "--output: cannot write 'nodir/x.tsv'"
if grep -q '^load:' outdir.err; then fail "outdir: the index was loaded before the output was checked"; fi
[ ! -e x.tsv ] || fail "a failed run wrote x.tsv"
# A damaged index file is a file_format_error naming the file.
cp -r idx damaged
printf 'X' | dd of=damaged/index.mgpu bs=1 seek=100 conv=notrunc status=none
run damaged --load-index damaged --queries queries.ndjson --output x.tsv
expect_rc damaged 1
expect_err damaged "damaged/index.mgpu"

# The reader's fixture corpus (escapes, integer ids, an empty text) round-trips as well.
run basic --input "$data/corpus/basic.ndjson" --save-index basic_idx --top-k 3 --include-self --output basic.full.tsv
expect_rc basic 0
run basic_q --load-index basic_idx --queries "$data/corpus/basic.ndjson" --top-k 3 --output basic.q.tsv
expect_rc basic_q 0
cmp -s basic.full.tsv basic.q.tsv || fail "basic: --load-index rows differ from the one-shot rows"

if [ "$failures" -ne 0 ]; then
  echo "document_similarity_index: $failures check(s) failed" >&2
  exit 1
fi
echo "document_similarity_index: all checks passed"
