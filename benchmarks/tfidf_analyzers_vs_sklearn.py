#!/usr/bin/python3
"""TF-IDF with scikit-learn's analyzer options, side by side: TfidfVectorizer (the peer)
timed on an NDJSON corpus, and mgpu's output checked against it.

    tfidf_corpus --input C.ndjson --repeat 3 --analyzer char_wb --ngram-range 2,5 \\
        --save-tfidf X.mtx --save-vocabulary V.txt
    /usr/bin/python3 benchmarks/tfidf_analyzers_vs_sklearn.py --corpus C.ndjson \\
        --analyzer char_wb --ngram-range 2 5 --mgpu-tfidf X.mtx --mgpu-vocab V.txt \\
        [--mgpu-seconds S]

The flags carry scikit-learn's names (as examples/document_similarity/analyzer_flags.hpp).
The check passes when the vocabularies are identical and every entry differs by at most
--tolerance (default 1e-6); the last line is PASS or FAIL, and a mismatch exits 1.
V.txt holds one term per line, so analyzers whose terms can hold a newline (char) are
timed, not checked. Throughput counts the UTF-8 bytes of the texts.

Needs python3-sklearn and python3-scipy (Debian): run with /usr/bin/python3.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tfidf_vs_sklearn import read_texts, time_and_check  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True, help="NDJSON corpus")
    parser.add_argument("--text-field", default="text")
    parser.add_argument("--mgpu-tfidf", help="mgpu's TF-IDF matrix (Matrix Market)")
    parser.add_argument("--mgpu-vocab", help="mgpu's vocabulary, one term per line")
    parser.add_argument("--mgpu-seconds", type=float, help="mgpu's time on the same corpus, for the ratio")
    parser.add_argument("--tolerance", type=float, default=1e-6)
    parser.add_argument("--repeat", type=int, default=1, help="timed runs; the median is shown")
    parser.add_argument("--analyzer", choices=("word", "char", "char_wb"), default="word")
    parser.add_argument("--ngram-range", type=int, nargs=2, default=(1, 1), metavar=("MIN", "MAX"))
    parser.add_argument("--stop-words", help="english, or a file with one word per line")
    parser.add_argument("--token-pattern", default=r"(?u)\b\w\w+\b")
    parser.add_argument("--strip-accents", choices=("ascii", "unicode"))
    parser.add_argument("--no-lowercase", action="store_true")
    parser.add_argument("--binary", action="store_true")
    parser.add_argument("--no-idf", action="store_true")
    parser.add_argument("--no-smooth-idf", action="store_true")
    parser.add_argument("--norm", choices=("l2", "l1", "none"), default="l2")
    args = parser.parse_args()

    from sklearn.feature_extraction.text import TfidfVectorizer

    stop_words = args.stop_words
    if stop_words and stop_words != "english":
        with open(stop_words, encoding="utf-8") as f:
            stop_words = [line.rstrip("\n") for line in f]
    texts = read_texts(args.corpus, args.text_field)
    text_bytes = sum(len(t.encode("utf-8")) for t in texts)
    print(f"corpus {args.corpus}: {len(texts)} documents, {text_bytes / 1e6:.1f} MB of text")

    return time_and_check(args, texts, lambda: TfidfVectorizer(
        analyzer=args.analyzer, ngram_range=tuple(args.ngram_range), stop_words=stop_words,
        token_pattern=args.token_pattern, strip_accents=args.strip_accents,
        lowercase=not args.no_lowercase, binary=args.binary, use_idf=not args.no_idf,
        smooth_idf=not args.no_smooth_idf, norm=None if args.norm == "none" else args.norm),
        f"TfidfVectorizer(analyzer={args.analyzer!r}, ngram_range={tuple(args.ngram_range)})")


if __name__ == "__main__":
    sys.exit(main())
