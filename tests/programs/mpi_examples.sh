#!/usr/bin/env bash
# mpi_examples.sh PROGRAM BINARY TEST_DATA_DIR MPIRUN [MPIRUN_FLAGS...]
#
# An example built as an MPI program (docs/distributed.md), run under MPIRUN with 1 to 4
# ranks (oversubscribed on a small machine), must write the same bytes as its
# single-process run (started without a launcher), and a bad input must end every rank
# with a non-zero status and the message, within the time limit (no hang). PROGRAM is
# knn_classify (the tests/data/knn fixture: 300 training images, 20 queries; l2 and
# cosine), pagerank (tests/data/pagerank/graph.mtx) or als_recommend
# (tests/data/als/dpkg-status.mtx) or document_similarity (a 40-document corpus written
# here from a seeded generator, and tests/data/corpus/lines.txt). Every run is bounded by
# `timeout`.
# Runs in a fresh `mktemp -d` directory, removed at the end. Needs bash and python3.
set -u
program=$1
bin=$(realpath "$2")
data=$(realpath "$3")
shift 3
mpirun=("$@")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1

failures=0
fail() {
  echo "FAIL [mpi $program]: $*" >&2
  failures=$((failures + 1))
}

# single NAME ARGS...: the program alone; mpi NAME RANKS ARGS...: under the launcher.
single() {
  local name=$1
  shift
  timeout 120 "$bin" "$@" >"$name.out" 2>"$name.err"
  rc=$?
}
mpi() {
  local name=$1 ranks=$2
  shift 2
  timeout 120 "${mpirun[@]}" -np "$ranks" "$bin" "$@" >"$name.out" 2>"$name.err"
  rc=$?
}
expect_rc() {  # expect_rc NAME WANT
  if [ "$rc" -ne "$2" ]; then fail "$1: exit code $rc, expected $2; stderr: $(head -c 600 "$1.err")"; fi
}
same() {  # same A B: identical files
  cmp -s "$1" "$2" || fail "$2 differs from $1: $(diff "$1" "$2" | head -5)"
}

case "$program" in
  knn_classify)
    mkdir data
    ln -s "$data/knn/fashion-train-300-images.idx3-ubyte.gz" data/train-images-idx3-ubyte.gz
    ln -s "$data/knn/fashion-train-300-labels.idx1-ubyte.gz" data/train-labels-idx1-ubyte.gz
    ln -s "$data/knn/fashion-test-20-images.idx3-ubyte.gz" data/t10k-images-idx3-ubyte.gz
    python3 -c '
import struct
open("data/t10k-labels-idx1-ubyte", "wb").write(struct.pack(">II", 0x801, 20) + bytes(i % 10 for i in range(20)))'
    for metric in l2 cosine; do
      single "ref_$metric" --data-dir data --k 7 --metric "$metric" --devices cpu --output "ref_$metric.tsv"
      expect_rc "ref_$metric" 0
      [ "$(wc -l <"ref_$metric.tsv")" -eq 140 ] || fail "ref_$metric: expected 140 rows"
      for ranks in 1 2 3 4; do
        for devices in cpu cpu:2; do
          name="np${ranks}_${metric}_${devices/:/}"
          mpi "$name" "$ranks" --data-dir data --k 7 --metric "$metric" --devices "$devices" --output "$name.tsv"
          expect_rc "$name" 0
          same "ref_$metric.tsv" "$name.tsv"
          grep -q '^accuracy=' "$name.out" || fail "$name: no accuracy line on stdout"
          [ "$(grep -c '^accuracy=' "$name.out")" -eq 1 ] || fail "$name: more than one rank printed the results"
        done
      done
    done
    # A data set missing on every rank: each rank's own error, the job ends non-zero.
    mpi missing 3 --data-dir nowhere --k 3 --output missing.tsv
    [ "$rc" -ne 0 ] || fail "missing: exit code 0"
    grep -qF "nowhere/train-images-idx3-ubyte.gz: no such file" missing.err ||
      fail "missing: stderr lacks the message: $(head -c 600 missing.err)"
    [ ! -e missing.tsv ] || fail "missing: an output was written"
    # Host devices only: a malformed device string is every rank's agreed error.
    mpi devices 2 --data-dir data --k 3 --devices cpu:x --output devices.tsv
    expect_rc devices 1
    [ "$(grep -c 'error:' devices.err)" -eq 2 ] || fail "devices: expected both ranks' messages: $(head -c 600 devices.err)"
    ;;
  pagerank)
    for run in "0.85 50" "0.5 3"; do
      set -- $run
      single "ref_$1" --input "$data/pagerank/graph.mtx" --damping "$1" --iterations "$2" --devices cpu \
        --output "ref_$1.tsv"
      expect_rc "ref_$1" 0
      for ranks in 1 2 3 4; do
        for devices in cpu cpu:2; do
          name="np${ranks}_$1_${devices/:/}"
          mpi "$name" "$ranks" --input "$data/pagerank/graph.mtx" --damping "$1" --iterations "$2" \
            --devices "$devices" --output "$name.tsv"
          expect_rc "$name" 0
          same "ref_$1.tsv" "$name.tsv"
        done
      done
    done
    # Bytes between ranks for 3 iterations of the 10-node graph on 2 ranks x cpu: the
    # broadcast of x (80 bytes to rank 1), 2 all-gathers of the blocks of the other rank
    # (80 bytes in all each), the gather of rank 1's block (its rows x 8 bytes).
    python3 - np2_0.5_cpu.out <<'PY' || fail "the bytes between ranks are not broadcast + all-gathers + gather"
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"between ranks (\d+)", text)
assert m, text
network = int(m.group(1))
# rank 1's rows are unknown here, but bounded: 80 (broadcast) + 2 * 80 (all-gathers) + its block (<= 80).
assert 240 < network <= 320, network
PY
    mpi missing 2 --input nowhere.mtx --output missing.tsv
    [ "$rc" -ne 0 ] || fail "missing: exit code 0"
    grep -qF "nowhere.mtx: no such file" missing.err || fail "missing: stderr lacks the message: $(head -c 600 missing.err)"
    ;;
  als_recommend)
    # tests/data/als/dpkg-status.mtx (820 users x 1111 items): the fit over the ranks, then
    # rank 0's --recommend-all and --save-factors, against the single-process run; with
    # the Cholesky and the conjugate-gradient solver.
    input="$data/als/dpkg-status.mtx"
    args=(--input "$input" --factors 8 --iterations 4 --regularization 0.1 --recommend-all --top-k 5)
    single ref "${args[@]}" --devices cpu --output ref.tsv --save-factors ref
    expect_rc ref 0
    [ "$(wc -l <ref.tsv)" -eq 4100 ] || fail "ref: expected 4100 rows"
    for ranks in 1 2 3 4; do
      for devices in cpu cpu:2; do
        name="np${ranks}_${devices/:/}"
        mpi "$name" "$ranks" "${args[@]}" --devices "$devices" --output "$name.tsv" --save-factors "$name"
        expect_rc "$name" 0
        same ref.tsv "$name.tsv"
        same ref.users.mtx "$name.users.mtx"
        same ref.items.mtx "$name.items.mtx"
        [ "$(grep -c '^iteration 4:' "$name.out")" -eq 1 ] || fail "$name: expected one rank's iteration lines"
      done
    done
    # The conjugate-gradient solver (each row warm-started from its previous factors):
    # the same bytes as its single-process run too.
    cg_args=("${args[@]}" --solver cg --cg-steps 2)
    single ref_cg "${cg_args[@]}" --devices cpu --output ref_cg.tsv --save-factors ref_cg
    expect_rc ref_cg 0
    [ "$(wc -l <ref_cg.tsv)" -eq 4100 ] || fail "ref_cg: expected 4100 rows"
    cmp -s ref.tsv ref_cg.tsv && fail "ref_cg: the CG fit recommends exactly as the Cholesky fit (is --solver read?)"
    for ranks in 1 2 3 4; do
      for devices in cpu cpu:2; do
        name="cg_np${ranks}_${devices/:/}"
        mpi "$name" "$ranks" "${cg_args[@]}" --devices "$devices" --output "$name.tsv" --save-factors "$name"
        expect_rc "$name" 0
        same ref_cg.tsv "$name.tsv"
        same ref_cg.users.mtx "$name.users.mtx"
        same ref_cg.items.mtx "$name.items.mtx"
      done
    done
    # What the fit over ranks refuses, on every rank alike.
    mpi save_model 2 --input "$input" --iterations 1 --save-model model
    expect_rc save_model 1
    grep -qF "under MPI, the fit runs over the ranks without --save-model or --load-model" save_model.err ||
      fail "save_model: stderr lacks the message: $(head -c 600 save_model.err)"
    ;;
  document_similarity)
    # 40 documents of 3 to 12 words over 19 terms (a seeded generator: the same file every
    # run). Each rank reads the lines starting in its byte range; rank 0 writes --output,
    # --save-tfidf and --save-vocabulary, which must be the single-process run's bytes.
    python3 - <<'PY'
import json, random
r = random.Random(7)
words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau".split()
with open("corpus.ndjson", "w") as f:
    for i in range(40):
        n = r.randint(3, 12)
        f.write(json.dumps({"id": f"d{i}", "text": " ".join(r.choice(words) for _ in range(n))}) + "\n")
PY
    runs=("topk|--top-k 5" "ndjson|--top-k 3 --output-format ndjson --sublinear-tf"
          "threshold|--top-k 0 --threshold 0.4" "self|--top-k 4 --threshold 0.2 --include-self --min-df 2 --max-df 0.9")
    for run in "${runs[@]}"; do
      label=${run%%|*}
      read -r -a flags <<<"${run#*|}"
      single "ref_$label" --input corpus.ndjson "${flags[@]}" --devices cpu --output "ref_$label.out.txt" \
        --save-tfidf "ref_$label.mtx" --save-vocabulary "ref_$label.vocab"
      expect_rc "ref_$label" 0
      [ -s "ref_$label.out.txt" ] || fail "ref_$label: empty output"
      for ranks in 1 2 3 4; do
        for devices in cpu cpu:2; do
          name="np${ranks}_${label}_${devices/:/}"
          mpi "$name" "$ranks" --input corpus.ndjson "${flags[@]}" --devices "$devices" --output "$name.out.txt" \
            --save-tfidf "$name.mtx" --save-vocabulary "$name.vocab"
          expect_rc "$name" 0
          same "ref_$label.out.txt" "$name.out.txt"
          same "ref_$label.mtx" "$name.mtx"
          same "ref_$label.vocab" "$name.vocab"
          [ "$(grep -c '^read:' "$name.err")" -eq 1 ] || fail "$name: expected one rank's stage lines"
        done
      done
    done
    # More ranks than documents: 3 documents on 4 ranks, the first one long (about 3/4 of
    # the file), so that the byte ranges of ranks 1 and 2 start inside it: they hold none;
    # and tests/data/corpus/lines.txt (--format lines) on 4 ranks.
    { printf '{"id": "long", "text": "'; for i in $(seq 100); do printf 'alpha beta '; done; printf '"}\n'; head -n 2 corpus.ndjson; } >three.ndjson
    for input in three.ndjson "$data/corpus/lines.txt"; do
      base=$(basename "$input")
      base=${base%%.*}
      format=ndjson
      [ "${input##*.}" = txt ] && format=lines
      single "ref_$base" --input "$input" --format "$format" --top-k 2 --devices cpu --output "ref_$base.tsv" \
        --save-tfidf "ref_$base.mtx" --save-vocabulary "ref_$base.vocab"
      expect_rc "ref_$base" 0
      for devices in cpu cpu:2; do
        name="${base}_np4_${devices/:/}"
        mpi "$name" 4 --input "$input" --format "$format" --top-k 2 --devices "$devices" --output "$name.tsv" \
          --save-tfidf "$name.mtx" --save-vocabulary "$name.vocab"
        expect_rc "$name" 0
        grep -qF "over 4 ranks" "$name.err" || fail "$name: no read line: $(head -c 600 "$name.err")"
        same "ref_$base.tsv" "$name.tsv"
        same "ref_$base.mtx" "$name.mtx"
        same "ref_$base.vocab" "$name.vocab"
      done
    done
    grep -qF "3 documents over 4 ranks (1 0 0 2;" three_np4_cpu.err ||
      fail "three_np4_cpu: ranks 1 and 2 should hold no document: $(head -c 600 three_np4_cpu.err)"
    # Ids that are line numbers (no id member) across byte ranges: a byte order mark, a
    # blank line, no line end at the end; every document its own best match. And a gzip
    # corpus (no byte ranges: every rank keeps its share of the documents).
    printf '\xef\xbb\xbf{"text":"aa bb"}\n{"text":"bb cc"}\n  \n{"text":"cc aa dd"}\n{"text":"dd"}' >numbered.ndjson
    gzip -c corpus.ndjson >corpus.ndjson.gz
    for input in numbered.ndjson corpus.ndjson.gz; do
      single "ref_$input" --input "$input" --include-self --top-k 3 --devices cpu --output "ref_$input.tsv"
      expect_rc "ref_$input" 0
      for ranks in 2 3 4; do
        mpi "np${ranks}_$input" "$ranks" --input "$input" --include-self --top-k 3 --output "np${ranks}_$input.tsv"
        expect_rc "np${ranks}_$input" 0
        same "ref_$input.tsv" "np${ranks}_$input.tsv"
      done
    done
    [ "$(cut -f1 ref_numbered.ndjson.tsv | uniq | tr '\n' ' ')" = "1 2 4 5 " ] ||
      fail "numbered: the ids are not the line numbers 1 2 4 5: $(head -c 300 ref_numbered.ndjson.tsv)"
    # A bad line in the byte range of rank 2 of 3 only (line 35 of 41): the job ends
    # non-zero with that rank's message naming the file and the line in the whole file,
    # and no output is written.
    { head -n 34 corpus.ndjson; echo '{"id": "bad", "text": }'; tail -n 6 corpus.ndjson; } >bad.ndjson
    mpi bad 3 --input bad.ndjson --top-k 3 --output bad.tsv
    [ "$rc" -ne 0 ] || fail "bad: exit code 0"
    grep -qF "bad.ndjson:35: rank 2 of 3: invalid JSON" bad.err || fail "bad: stderr lacks the file and line: $(head -c 600 bad.err)"
    [ ! -e bad.tsv ] || fail "bad: an output was written"
    # What the run over ranks refuses, on every rank alike.
    mpi save_index 2 --input corpus.ndjson --save-index idx --output refused.tsv
    expect_rc save_index 1
    [ ! -e idx ] || fail "save_index: the directory was created"
    [ "$(grep -c 'under MPI, --save-index is not supported' save_index.err)" -eq 2 ] ||
      fail "save_index: expected both ranks' messages: $(head -c 600 save_index.err)"
    [ ! -e refused.tsv ] || fail "save_index: an output was written"
    mpi vocabulary 2 --input corpus.ndjson --vocabulary ref_topk.vocab --output refused.tsv
    expect_rc vocabulary 1
    grep -qF "fixed vocabulary" vocabulary.err || fail "vocabulary: stderr lacks the message: $(head -c 600 vocabulary.err)"
    ;;
  *)
    echo "mpi_examples.sh: unknown program $program" >&2
    exit 2
    ;;
esac

if [ "$failures" -ne 0 ]; then
  echo "mpi $program: $failures check(s) failed" >&2
  exit 1
fi
echo "mpi $program: all checks passed"
