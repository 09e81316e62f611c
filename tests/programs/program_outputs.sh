#!/usr/bin/env bash
# program_outputs.sh PROGRAM BINARY TEST_DATA_DIR
#
# Runs one example program against hostile output paths and inputs (RELIABILITY.md rows
# 21, 22, 24) inside a fresh `mktemp -d` directory, removed at the end. Device nodes
# are made in that directory with mknod (checks needing them are skipped, with a
# message, where that is not permitted); nothing outside it is written.
set -u
program=$1
bin=$(realpath "$2")
data=$(realpath "$3")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1

failures=0
fail() {
  echo "FAIL [$program]: $*" >&2
  failures=$((failures + 1))
}

# run NAME ARGS...: runs the program, stdout to NAME.out, stderr to NAME.err; sets rc.
run() {
  local name=$1
  shift
  timeout 120 "$bin" "$@" >"$name.out" 2>"$name.err"
  rc=$?
}

expect_rc() {  # expect_rc NAME WANT
  if [ "$rc" -ne "$2" ]; then fail "$1: exit code $rc, expected $2; stderr: $(head -c 400 "$1.err")"; fi
}

expect_failure() {  # expect_failure NAME: a non-zero exit code
  if [ "$rc" -eq 0 ]; then fail "$1: succeeded, expected a failure"; fi
}

expect_err() {  # expect_err NAME TEXT: stderr contains TEXT
  grep -qF -- "$2" "$1.err" || fail "$1: stderr lacks '$2': $(head -c 400 "$1.err")"
}

expect_absent() {  # expect_absent NAME PATH...
  local name=$1
  shift
  for p in "$@"; do
    if [ -e "$p" ] || [ -L "$p" ]; then fail "$name: '$p' exists"; fi
  done
}

expect_content() {  # expect_content NAME PATH TEXT
  [ "$(cat "$2")" = "$3" ] || fail "$1: '$2' holds '$(head -c 200 "$2")', expected '$3'"
}

no_temporaries() {  # no_temporaries NAME: no hidden temporaries or backups anywhere here
  local left
  left=$(find . -name '.*.tmp-*' -o -name '.*.bak-*' -o -name '*.tmp')
  [ -z "$left" ] || fail "$1: temporaries left: $left"
}

no_long_number() {  # no_long_number NAME: a range error does not print a numeric limit
  if grep -Eq '[0-9]{30}' "$1.err"; then fail "$1: stderr holds a 30-digit number"; fi
  [ "$(wc -l <"$1.err")" -le 3 ] || fail "$1: more than 3 lines on stderr"
}

have_mknod=1
if ! mknod probe c 1 3 2>/dev/null; then
  have_mknod=0
  echo "SKIP [$program]: mknod is not permitted here; the character-device checks are skipped"
fi
rm -f probe

fifo_reader() {  # fifo_reader FIFO FILE: copies what is written to FIFO into FILE
  timeout 30 cat "$1" >"$2" &
  reader=$!
}

document_similarity_checks() {
  printf 'the cat sat\nthe dog sat\na cat and a dog\n' >corpus.txt
  run ref --input corpus.txt --format lines --top-k 2 --output ref.tsv
  expect_rc ref 0
  [ "$(wc -l <ref.tsv)" -eq 6 ] || fail "ref: expected 6 rows"

  # A missing output directory fails before the corpus is read; nothing is written.
  run missing --input corpus.txt --format lines --output nodir/n.tsv \
    --save-tfidf tfidf.mtx --save-vocabulary vocab.txt
  expect_rc missing 1
  expect_err missing "--output: cannot write 'nodir/n.tsv'"
  expect_err missing "No such file or directory"
  if grep -q '^read:' missing.err; then fail "missing: the corpus was read before the output was checked"; fi
  expect_absent missing tfidf.mtx vocab.txt
  no_temporaries missing

  # The same with --devices naming no device: refused before the corpus is read.
  run baddev --input corpus.txt --format lines --devices gpu --output n.tsv
  expect_rc baddev 1
  expect_err baddev 'device string "gpu"'
  if grep -q '^read:' baddev.err; then fail "baddev: the corpus was read before --devices was checked"; fi

  # A FIFO is written in place and stays a FIFO.
  mkfifo pipe
  fifo_reader pipe piped.tsv
  run fifo --input corpus.txt --format lines --top-k 2 --output pipe --save-vocabulary vocab.txt
  wait "$reader"
  expect_rc fifo 0
  [ -p pipe ] || fail "fifo: the FIFO was replaced"
  cmp -s piped.tsv ref.tsv || fail "fifo: what came through the FIFO differs from the regular output"
  expect_content fifo vocab.txt "$(printf 'and\ncat\ndog\nsat\nthe')"

  # A symbolic link: its target is replaced, the link stays.
  mkdir real
  echo old >real/n.tsv
  ln -s real/n.tsv link.tsv
  run link --input corpus.txt --format lines --top-k 2 --output link.tsv
  expect_rc link 0
  [ -L link.tsv ] || fail "link: the symbolic link was replaced"
  cmp -s real/n.tsv ref.tsv || fail "link: the link's target does not hold the output"

  # Directories, empty paths and one file named twice are refused.
  run dir --input corpus.txt --format lines --output real
  expect_rc dir 1
  expect_err dir "it is a directory"
  run empty --input corpus.txt --format lines --output ""
  expect_rc empty 1
  expect_err empty "--output: the output path is empty"
  run twice --input corpus.txt --format lines --output same.txt --save-vocabulary same.txt
  expect_rc twice 1
  expect_err twice "are the same file"
  expect_absent twice same.txt

  # A full device as --output (like /dev/full): the regular outputs are not changed.
  if [ "$have_mknod" = 1 ]; then
    mknod full c 1 7
    echo old >vocab.txt
    run full --input corpus.txt --format lines --top-k 2 --output full \
      --save-vocabulary vocab.txt --save-tfidf tfidf.mtx
    expect_rc full 1
    expect_err full "No space left on device"
    expect_content full vocab.txt old
    expect_absent full tfidf.mtx
    [ -c full ] || fail "full: the device node was replaced"
    mknod null c 1 3
    run null --input corpus.txt --format lines --top-k 2 --output null
    expect_rc null 0
    [ -c null ] || fail "null: the device node was replaced"
  fi
  no_temporaries devices

  # --save-index: a path that is a file, or a bad --output beside it, fails before the
  # corpus is read, and no index file is written.
  echo file >afile
  run idxfile --input corpus.txt --format lines --save-index afile
  expect_rc idxfile 1
  expect_err idxfile "--save-index"
  if grep -q '^read:' idxfile.err; then fail "idxfile: the corpus was read before --save-index was checked"; fi
  run idxout --input corpus.txt --format lines --save-index idx --output nodir/n.tsv
  expect_rc idxout 1
  if grep -q '^read:' idxout.err; then fail "idxout: the corpus was read before the outputs were checked"; fi
  expect_absent idxout idx/index.mgpu idx/vectorizer.mgpu idx/ids.mgpu
  no_temporaries idxout
  # --load-index checks --output before loading anything.
  run idxload --load-index idx --queries corpus.txt --format lines --output nodir/n.tsv
  expect_rc idxload 1
  expect_err idxload "--output: cannot write 'nodir/n.tsv'"

  # Range errors are short.
  run topk --input corpus.txt --format lines --top-k -1
  expect_failure topk
  expect_err topk "--top-k: must be an integer in [0, 100000], got -1"
  no_long_number topk
  run threshold --input corpus.txt --format lines --threshold nan
  expect_failure threshold
  expect_err threshold "--threshold: must be a finite number, got nan"
  no_long_number threshold

  # Ids with tabs and newlines are escaped in TSV; duplicates are reported once.
  python3 - <<'EOF'
import json
docs = [("a\tb", "the cat sat"), ("c\nd", "the dog sat"), ("a\tb", "a cat and a dog"), ("e\\f", "cat dog")]
with open("ids.ndjson", "w") as f:
    for i, t in docs:
        f.write(json.dumps({"id": i, "text": t}) + "\n")
EOF
  run ids --input ids.ndjson --top-k 2 --output ids.tsv
  expect_rc ids 0
  expect_err ids "1 document ids repeat an earlier id"
  [ "$(grep -c 'repeat an earlier id' ids.err)" -eq 1 ] || fail "ids: the duplicate warning is not given once"
  [ "$(wc -l <ids.tsv)" -eq 8 ] || fail "ids: expected 8 rows, got $(wc -l <ids.tsv)"
  awk -F'\t' 'NF != 3 { bad = 1 } END { exit bad }' ids.tsv || fail "ids: a TSV row without exactly 3 fields"
  grep -qF 'a\tb' ids.tsv || fail "ids: the tab in an id is not written as \\t"
  grep -qF 'c\nd' ids.tsv || fail "ids: the newline in an id is not written as \\n"
  grep -qF 'e\\f' ids.tsv || fail "ids: the backslash in an id is not written as \\\\"

  # NDJSON: every line is one JSON object with the original ids.
  run ndjson --input ids.ndjson --top-k 2 --output ids.ndjson.out --output-format ndjson
  expect_rc ndjson 0
  python3 - <<'EOF' || fail "ndjson: the output does not parse back to the ids and scores"
import json, sys
rows = [json.loads(line) for line in open("ids.ndjson.out", encoding="utf-8")]
assert len(rows) == 8, len(rows)
ids = {"a\tb", "c\nd", "e\\f"}
for r in rows:
    assert set(r) == {"query", "neighbor", "score"}, r
    assert r["query"] in ids and r["neighbor"] in ids, r
    assert 0.0 <= r["score"] <= 1.0, r
assert rows[0]["query"] == "a\tb", rows[0]
EOF
}

make_knn_data() {
  mkdir data
  ln -s "$data/knn/fashion-train-300-images.idx3-ubyte.gz" data/train-images-idx3-ubyte.gz
  ln -s "$data/knn/fashion-train-300-labels.idx1-ubyte.gz" data/train-labels-idx1-ubyte.gz
  ln -s "$data/knn/fashion-test-20-images.idx3-ubyte.gz" data/t10k-images-idx3-ubyte.gz
  python3 -c '
import struct
open("data/t10k-labels-idx1-ubyte", "wb").write(struct.pack(">II", 0x801, 20) + bytes(i % 10 for i in range(20)))'
}

knn_classify_checks() {
  make_knn_data
  run ref --data-dir data --k 3 --output ref.tsv
  expect_rc ref 0
  [ "$(wc -l <ref.tsv)" -eq 60 ] || fail "ref: expected 60 rows"

  run missing --data-dir data --k 3 --output nodir/n.tsv
  expect_rc missing 1
  expect_err missing "--output: cannot write 'nodir/n.tsv'"
  if grep -q '^read:' missing.err; then fail "missing: the data were read before the output was checked"; fi

  mkfifo pipe
  fifo_reader pipe piped.tsv
  run fifo --data-dir data --k 3 --output pipe
  wait "$reader"
  expect_rc fifo 0
  [ -p pipe ] || fail "fifo: the FIFO was replaced"
  cmp -s piped.tsv ref.tsv || fail "fifo: what came through the FIFO differs from the regular output"

  echo old >target.tsv
  ln -s target.tsv link.tsv
  run link --data-dir data --k 3 --output link.tsv
  expect_rc link 0
  [ -L link.tsv ] || fail "link: the symbolic link was replaced"
  cmp -s target.tsv ref.tsv || fail "link: the link's target does not hold the output"

  if [ "$have_mknod" = 1 ]; then
    mknod full c 1 7
    run full --data-dir data --k 3 --output full
    expect_rc full 1
    expect_err full "No space left on device"
    [ -c full ] || fail "full: the device node was replaced"
  fi
  no_temporaries knn

  run k0 --data-dir data --k 0
  expect_failure k0
  expect_err k0 "--k: must be an integer in [1, 1048576], got 0"
  no_long_number k0
  run limit --data-dir data --limit-queries -1
  expect_failure limit
  expect_err limit "--limit-queries: must be an integer >= 0, got -1"
  no_long_number limit

  run ndjson --data-dir data --k 3 --metric cosine --output n.ndjson --output-format ndjson
  expect_rc ndjson 0
  python3 - <<'EOF' || fail "ndjson: the output does not parse back to the TSV's rows"
import json
rows = [json.loads(line) for line in open("n.ndjson")]
assert len(rows) == 60, len(rows)
for i, r in enumerate(rows):
    assert set(r) == {"query", "train", "cosine"}, r
    assert r["query"] == i // 3 and 0 <= r["train"] < 300, r
    assert -1.0 <= r["cosine"] <= 1.0 + 1e-6, r
EOF
}

als_recommend_checks() {
  local m="$data/als/dpkg-status.mtx"
  local fast=(--input "$m" --iterations 2 --factors 4)
  run ref "${fast[@]}" --save-factors ref
  expect_rc ref 0
  head -n 1 ref.users.mtx | grep -q '^%%MatrixMarket matrix array real general' || fail "ref: users file"
  head -n 1 ref.items.mtx | grep -q '^%%MatrixMarket matrix array real general' || fail "ref: items file"

  # Bad output paths and --recommend ids fail before the model is fitted.
  run missing "${fast[@]}" --save-factors nodir/f
  expect_rc missing 1
  expect_err missing "--save-factors: cannot write 'nodir/f.users.mtx'"
  if grep -q '^iteration' missing.out; then fail "missing: the model was fitted before the output was checked"; fi
  run norec "${fast[@]}" --save-factors f --recommend no-such-package
  expect_rc norec 1
  expect_err norec "--recommend no-such-package: no such user or item"
  if grep -q '^iteration' norec.out; then fail "norec: the model was fitted before --recommend was checked"; fi
  expect_absent norec f.users.mtx f.items.mtx
  mkdir dir.items.mtx
  run dir "${fast[@]}" --save-factors dir
  expect_rc dir 1
  expect_err dir "it is a directory"
  if grep -q '^iteration' dir.out; then fail "dir: the model was fitted before the output was checked"; fi
  expect_absent dir dir.users.mtx

  # The items file fails at the end (a full device): the users file is not written.
  if [ "$have_mknod" = 1 ]; then
    mknod full.items.mtx c 1 7
    run full "${fast[@]}" --save-factors full
    expect_rc full 1
    expect_err full "No space left on device"
    expect_absent full full.users.mtx
    echo old >old.users.mtx
    mknod old.items.mtx c 1 7
    run old "${fast[@]}" --save-factors old
    expect_rc old 1
    expect_content old old.users.mtx old
  fi
  no_temporaries als

  # --recommend-all's --output and --save-model fail before the fit too; a FIFO is written
  # in place; a full device as --output leaves the factors and the model unwritten.
  run recs "${fast[@]}" --recommend-all --top-k 3 --output recs.tsv
  expect_rc recs 0
  [ "$(wc -l <recs.tsv)" -gt 0 ] || fail "recs: recs.tsv is empty"
  [ -s recs.err ] && fail "recs: stderr is not a terminal but holds '$(head -c 200 recs.err)'"
  run recsmissing "${fast[@]}" --recommend-all --output nodir/r.tsv --save-model model1
  expect_rc recsmissing 1
  expect_err recsmissing "--output: cannot write 'nodir/r.tsv'"
  if grep -q '^iteration' recsmissing.out; then fail "recsmissing: the model was fitted before the output was checked"; fi
  expect_absent recsmissing model1/model.als
  run modelmissing "${fast[@]}" --save-model nodir/model
  expect_rc modelmissing 1
  expect_err modelmissing "--save-model: cannot make the directory 'nodir/model': No such file or directory"
  if grep -q '^iteration' modelmissing.out; then fail "modelmissing: the model was fitted before --save-model was checked"; fi
  mkfifo recs.pipe
  fifo_reader recs.pipe piped.tsv
  run recsfifo "${fast[@]}" --recommend-all --top-k 3 --output recs.pipe
  wait "$reader"
  expect_rc recsfifo 0
  [ -p recs.pipe ] || fail "recsfifo: the FIFO was replaced"
  cmp -s piped.tsv recs.tsv || fail "recsfifo: what came through the FIFO differs from the regular output"
  if [ "$have_mknod" = 1 ]; then
    mknod recs.full c 1 7
    run recsfull "${fast[@]}" --recommend-all --output recs.full --save-factors rf --save-model model2
    expect_rc recsfull 1
    expect_err recsfull "No space left on device"
    expect_absent recsfull rf.users.mtx rf.items.mtx model2/model.als
  fi
  no_temporaries recs

  # Options that need each other, and models that are not there or not whole.
  run alone "${fast[@]}" --recommend-all
  expect_failure alone
  expect_err alone "--recommend-all requires --output"
  run topk0 "${fast[@]}" --top-k 0
  expect_failure topk0
  expect_err topk0 "--top-k: must be an integer in [1, 100000], got 0"
  no_long_number topk0
  run nomodel --load-model nowhere
  expect_rc nomodel 1
  expect_err nomodel "nowhere: no model.als in it"
  mkdir broken
  printf 'not a model' >broken/model.als
  run broken --load-model broken --recommend 1
  expect_rc broken 1
  expect_err broken "broken/model.als"
  [ "$(wc -l <broken.err)" -le 1 ] || fail "broken: more than one line on stderr"

  run factors --input "$m" --iterations 2 --factors 0
  expect_failure factors
  expect_err factors "--factors: must be an integer in [1, 4096], got 0"
  no_long_number factors
  run iterations --input "$m" --iterations -1
  expect_failure iterations
  expect_err iterations "--iterations: must be an integer in [0, 100000], got -1"
  no_long_number iterations
}

case "$program" in
  document_similarity) document_similarity_checks ;;
  knn_classify) knn_classify_checks ;;
  als_recommend) als_recommend_checks ;;
  *)
    echo "unknown program '$program'" >&2
    exit 2
    ;;
esac

if [ "$failures" -ne 0 ]; then
  echo "$program: $failures check(s) failed" >&2
  exit 1
fi
echo "$program: all output checks passed"
