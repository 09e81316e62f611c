#!/usr/bin/python3
"""TF-IDF side by side: scikit-learn's TfidfVectorizer (the peer) against mgpu's output.

Runs `TfidfVectorizer.fit_transform` on the texts of an NDJSON corpus, timing it, and,
when mgpu's results are given, checks them against scikit-learn's:

    document_similarity --corpus C.ndjson --top-k 0 --save-tfidf X.mtx --save-vocabulary V.txt
    /usr/bin/python3 benchmarks/tfidf_vs_sklearn.py --corpus C.ndjson \\
        --mgpu-tfidf X.mtx --mgpu-vocab V.txt [--mgpu-seconds S]

The check passes when the vocabularies are identical (same terms in the same order; V.txt
holds one term per line, UTF-8) and every entry of the two documents x terms matrices
differs by at most --tolerance (default 1e-6). It ends with one verdict line, PASS or
FAIL, and exits 1 on a mismatch. Throughput counts the UTF-8 bytes of the texts (not of
the JSON file), the same way for both systems. Vectoriser options mirror mgpu's; the
defaults are scikit-learn's.

Needs python3-sklearn and python3-scipy (Debian): run with /usr/bin/python3.
"""

import argparse
import json
import statistics
import sys
import time


def read_texts(path: str, text_field: str) -> list[str]:
    """Texts of an NDJSON corpus in file order; blank lines hold no document (as in mgpu)."""
    texts = []
    with open(path, encoding="utf-8") as corpus:
        for line in corpus:
            if line.strip():
                texts.append(json.loads(line)[text_field])
    return texts


def document_frequency(value: str):
    """sklearn's min_df / max_df: an integer is a count of documents, a float a proportion."""
    return float(value) if any(c in value for c in ".eE") else int(value)


def read_vocabulary(path: str) -> list[str]:
    with open(path, encoding="utf-8", newline="\n") as vocabulary:
        return [line[:-1] if line.endswith("\n") else line for line in vocabulary]


def first_difference(expected: list[str], actual: list[str]) -> str:
    for i, (e, a) in enumerate(zip(expected, actual)):
        if e != a:
            return f"first difference at term {i}: sklearn {e!r}, mgpu {a!r}"
    return f"sklearn has {len(expected)} terms, mgpu {len(actual)}"


def vocabulary_agrees(path: str, expected: list[str]) -> bool:
    vocabulary = read_vocabulary(path)
    if vocabulary != expected:
        print(f"MISMATCH vocabulary: {first_difference(expected, vocabulary)}")
        return False
    print(f"vocabulary identical: {len(vocabulary)} terms")
    return True


def values_agree(path: str, reference, vocabulary: list[str], tolerance: float) -> bool:
    import numpy as np
    import scipy.io

    start = time.perf_counter()
    mine = scipy.io.mmread(path).tocsr()
    print(f"loaded {path}: {mine.shape[0]} x {mine.shape[1]}, nnz {mine.nnz} "
          f"({time.perf_counter() - start:.1f} s)")
    if mine.shape != reference.shape:
        print(f"MISMATCH shape: sklearn {reference.shape}, mgpu {mine.shape}")
        return False
    difference = abs(reference.astype(np.float64) - mine.astype(np.float64)).tocsr()
    worst = difference.max() if difference.nnz else 0.0
    if worst <= tolerance:
        print(f"values agree: max |difference| {worst:.3g} <= {tolerance:g} "
              f"(nnz sklearn {reference.nnz}, mgpu {mine.nnz})")
        return True
    row = int(difference.max(axis=1).toarray().ravel().argmax())
    worst_row = difference.getrow(row)
    col = int(worst_row.indices[worst_row.data.argmax()])
    term = vocabulary[col] if col < len(vocabulary) else "?"
    print(f"MISMATCH values: max |difference| {worst:.3g} > {tolerance:g} at document {row}, "
          f"term {col} ({term!r}): sklearn {reference[row, col]:.9g}, mgpu {mine[row, col]:.9g}")
    return False


def time_and_check(args, texts, make_vectorizer, label) -> int:
    """Times make_vectorizer().fit_transform(texts) args.repeat times (median printed, with
    mgpu's --mgpu-seconds ratio when given), then checks --mgpu-vocab / --mgpu-tfidf against
    the last fit. Returns the exit code: 1 on a mismatch."""
    text_bytes = sum(len(t.encode("utf-8")) for t in texts)
    seconds = []
    for _ in range(max(1, args.repeat)):
        vectorizer = make_vectorizer()
        start = time.perf_counter()
        reference = vectorizer.fit_transform(texts)
        seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    print(f"sklearn {label}.fit_transform: {median:.3f} s (median of {len(seconds)}), "
          f"{text_bytes / 1e6 / median:.2f} MB/s; {reference.shape[0]} x {reference.shape[1]}, "
          f"nnz {reference.nnz}")
    if args.mgpu_seconds:
        print(f"mgpu: {args.mgpu_seconds:.3f} s, {text_bytes / 1e6 / args.mgpu_seconds:.1f} MB/s, "
              f"{median / args.mgpu_seconds:.1f}x sklearn")
    if not (args.mgpu_tfidf or args.mgpu_vocab):
        return 0
    vocabulary = list(vectorizer.get_feature_names_out())
    ok = True
    if args.mgpu_vocab:
        ok = vocabulary_agrees(args.mgpu_vocab, vocabulary) and ok
    if args.mgpu_tfidf:
        ok = values_agree(args.mgpu_tfidf, reference, vocabulary, args.tolerance) and ok
    print("PASS: mgpu matches scikit-learn" if ok else "FAIL: mgpu differs from scikit-learn")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True, help="NDJSON corpus")
    parser.add_argument("--text-field", default="text")
    parser.add_argument("--mgpu-tfidf", help="mgpu's TF-IDF matrix (Matrix Market)")
    parser.add_argument("--mgpu-vocab", help="mgpu's vocabulary, one term per line")
    parser.add_argument("--mgpu-seconds", type=float,
                        help="mgpu's fit_transform time on the same corpus, to print the ratio")
    parser.add_argument("--tolerance", type=float, default=1e-6)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the median is shown")
    parser.add_argument("--sublinear-tf", action="store_true")
    parser.add_argument("--no-idf", action="store_true", help="use_idf=False")
    parser.add_argument("--no-smooth-idf", action="store_true", help="smooth_idf=False")
    parser.add_argument("--binary", action="store_true")
    parser.add_argument("--norm", choices=("l2", "l1", "none"), default="l2")
    parser.add_argument("--min-df", type=document_frequency, default=1)
    parser.add_argument("--max-df", type=document_frequency, default=1.0)
    parser.add_argument("--max-features", type=int)
    parser.add_argument("--ngram-range", type=int, nargs=2, default=(1, 1), metavar=("MIN", "MAX"))
    args = parser.parse_args()

    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = read_texts(args.corpus, args.text_field)
    text_bytes = sum(len(t.encode("utf-8")) for t in texts)
    print(f"corpus {args.corpus}: {len(texts)} documents, {text_bytes / 1e6:.1f} MB of text")

    return time_and_check(args, texts, lambda: TfidfVectorizer(
        sublinear_tf=args.sublinear_tf, use_idf=not args.no_idf,
        smooth_idf=not args.no_smooth_idf, binary=args.binary,
        norm=None if args.norm == "none" else args.norm, min_df=args.min_df,
        max_df=args.max_df, max_features=args.max_features,
        ngram_range=tuple(args.ngram_range)), "TfidfVectorizer")


if __name__ == "__main__":
    sys.exit(main())
