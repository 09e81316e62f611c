"""TF-IDF fit_transform: mgpu (benchmarks/tfidf_corpus) against scikit-learn's
TfidfVectorizer (defaults on both sides) on the same NDJSON corpora; values compared.

Per repetition: one tfidf_corpus process (--repeat 2: the corpus is read once, fit_transform
runs twice, the second, warm run is the time, as sklearn's in-process warm run is), then
one sklearn fit_transform in this process on texts read once. Both sides: reading the
corpus is not timed. mgpu on `cpu` (OpenMP, 2 threads); sklearn is single-threaded.

    python benchmarks/report/tfidf.py --build build-19 --reps 5 --out out/report/results/tfidf.json \
        out/linux-doc.ndjson out/wordnet.ndjson
"""

import argparse
import json
import os
import time

import numpy as np
import scipy.io
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer

from common import build_path, field, log, pin_threads, run, write_result


def read_texts(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def compare(mtx, vocab_path, reference, vocabulary, tolerance=1e-6):
    with open(vocab_path, encoding="utf-8", newline="\n") as f:
        mine_vocab = [line[:-1] if line.endswith("\n") else line for line in f]
    if mine_vocab != vocabulary:
        diff = next((i for i, (a, b) in enumerate(zip(vocabulary, mine_vocab)) if a != b), min(len(vocabulary), len(mine_vocab)))
        return False, f"vocabularies differ (sklearn {len(vocabulary)} terms, mgpu {len(mine_vocab)}; first difference at term {diff})"
    mine = scipy.io.mmread(mtx).tocsr()
    if mine.shape != reference.shape:
        return False, f"shapes differ: sklearn {reference.shape}, mgpu {mine.shape}"
    worst = abs(reference.astype(np.float64) - mine.astype(np.float64)).max()
    ok = worst <= tolerance and mine.nnz == reference.nnz
    return ok, (f"vocabulary identical ({len(vocabulary)} terms); {reference.shape[0]} x {reference.shape[1]}, "
                f"nnz sklearn {reference.nnz}, mgpu {mine.nnz}; max |difference| {worst:.2g} "
                f"({'<=' if worst <= tolerance else '>'} {tolerance:g})")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("corpora", nargs="+")
    p.add_argument("--build", required=True)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--out", required=True)
    p.add_argument("--work", default="out/report/work")
    a = p.parse_args()
    pin_threads()
    exe = build_path(a.build, "benchmarks", "tfidf_corpus")
    os.makedirs(a.work, exist_ok=True)
    datasets = []
    for corpus in a.corpora:
        name = os.path.basename(corpus).split(".")[0]
        texts = read_texts(corpus)
        mb = sum(len(t.encode()) for t in texts) / 1e6
        times = {"mgpu cpu": [], "scikit-learn": []}
        mtx, vocab = os.path.join(a.work, f"{name}.tfidf.mtx"), os.path.join(a.work, f"{name}.vocab.txt")
        reference = None
        for r in range(a.reps):
            save = ["--save-tfidf", mtx, "--save-vocabulary", vocab] if r == 0 else []
            _, err, _ = run([exe, "--input", corpus, "--repeat", "2", "--devices", "cpu", *save])
            times["mgpu cpu"].append(field(err, r"run 2: ([0-9.]+) s"))
            v = TfidfVectorizer()
            start = time.perf_counter()
            x = v.fit_transform(texts)
            times["scikit-learn"].append(time.perf_counter() - start)
            if reference is None:
                reference, vocabulary = x, list(v.get_feature_names_out())
            log(f"tfidf {name} rep {r + 1}: mgpu {times['mgpu cpu'][-1]:.3f} s, sklearn {times['scikit-learn'][-1]:.3f} s")
        ok, text = compare(mtx, vocab, reference, vocabulary)
        log(f"tfidf {name}: {text}")
        datasets.append({"dataset": name, "unit": "s", "what": f"fit_transform of {len(texts)} documents ({mb:.1f} MB)",
                         "times": times, "mgpu": "mgpu cpu", "peer": "scikit-learn", "agree": bool(ok),
                         "agreement": text, "versions": {"scikit-learn": sklearn.__version__},
                         "notes": ["scikit-learn's TfidfVectorizer is single-threaded; mgpu uses both cores"]})
    write_result(a.out, "TF-IDF", datasets)


if __name__ == "__main__":
    main()
