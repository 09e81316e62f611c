#!/usr/bin/env bash
# document_similarity_analyzers.sh BINARY
#
# examples/document_similarity's scikit-learn analyzer flags reach the vectorizer: the
# vocabularies written by --save-vocabulary for --stop-words english, --analyzer char_wb
# --ngram-range 2,3 and --no-lowercase equal the ones worked out by hand below (what
# scikit-learn's TfidfVectorizer gives for the same options: feature names in sorted
# order); a bad --ngram-range and analyzer flags with --load-index end with exit code 1
# and a message. Runs in a fresh `mktemp -d` directory, removed at the end.
set -u
bin=$(realpath "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1

failures=0
fail() {
  echo "FAIL [document_similarity_analyzers]: $*" >&2
  failures=$((failures + 1))
}

vocabulary_is() {  # vocabulary_is NAME EXPECTED(one term per line) ARGS...
  local name=$1 expected=$2
  shift 2
  if ! timeout 60 "$bin" --top-k 0 --save-vocabulary "$name.txt" "$@" >"$name.out" 2>"$name.err"; then
    fail "$name: exit code $?; stderr: $(head -c 400 "$name.err")"
    return
  fi
  printf '%s\n' "$expected" >"$name.expected"
  cmp -s "$name.expected" "$name.txt" || fail "$name: vocabulary $(tr '\n' '|' <"$name.txt"), expected $(tr '\n' '|' <"$name.expected")"
}

printf '%s\n' '{"id":"a","text":"The cat and the hat"}' '{"id":"b","text":"Cat cat"}' >words.ndjson
printf '%s\n' '{"id":"a","text":"ab  cd"}' >chars.ndjson

# "the" and "and" are on scikit-learn's English list; lowercase first.
vocabulary_is stop "$(printf '%s\n' cat hat)" --input words.ndjson --stop-words english
# Case kept: "The" and "the", "Cat" and "cat" are different terms (byte order: upper case first).
vocabulary_is case "$(printf '%s\n' Cat The and cat hat the)" --input words.ndjson --no-lowercase
# char_wb (2, 3): each word padded with one space on either side (" ab ", " cd "), its 2-
# and 3-character windows; the double space between the words is not a word.
vocabulary_is char_wb "$(printf '%s\n' ' a' ' ab' ' c' ' cd' 'ab' 'ab ' 'b ' 'cd' 'cd ' 'd ')" \
  --input chars.ndjson --analyzer char_wb --ngram-range 2,3
# A user stop list, one word per line.
printf '%s\n' cat >stop.txt
vocabulary_is user_stop "$(printf '%s\n' and hat the)" --input words.ndjson --stop-words stop.txt

timeout 60 "$bin" --input words.ndjson --top-k 0 --ngram-range 3,2 >bad.out 2>bad.err
rc=$?
[ "$rc" -eq 1 ] || fail "ngram-range 3,2: exit code $rc, expected 1"
grep -q "ngram_range" bad.err || fail "ngram-range 3,2: no message naming ngram_range: $(head -c 300 bad.err)"

timeout 60 "$bin" --load-index idx --queries words.ndjson --analyzer char >li.out 2>li.err
rc=$?
[ "$rc" -eq 1 ] || fail "--load-index with --analyzer: exit code $rc, expected 1"
grep -q -- "--analyzer cannot be combined with --load-index" li.err || fail "--load-index with --analyzer: $(head -c 300 li.err)"

[ "$failures" -eq 0 ] && echo "document_similarity_analyzers: all checks passed"
exit $((failures > 0))
