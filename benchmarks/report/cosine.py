"""All-pairs cosine top-10: mgpu's document_similarity against sparse_dot_topn's
sp_matmul_topn (n_threads=2) on the same TF-IDF matrix; neighbours compared.

Both sides search every document's 10 best matches among all documents, itself included
(document_similarity --include-self; sp_matmul_topn(A, Aᵀ, top_n=10)), on the L2-normalised
TF-IDF rows mgpu computed (written by tfidf.py / tfidf_corpus, float32). Timed: mgpu's
"similarity" stage as document_similarity reports it (the search only: its TF-IDF stage
and the output are not counted); sparse_dot_topn's call on float32 CSR matrices, Aᵀ made
CSR beforehand and not timed. One process of document_similarity per repetition and
device string; sparse_dot_topn in this process; interleaved.

Agreement: per query, both score lists, sorted, agree rank by rank within 1e-5, and the
neighbour sets are equal except for documents whose score ties (within 1e-5) with the
10th score.

    python benchmarks/report/cosine.py --build build-19 --reps 5 --tfidf-dir out/report/work \
        --out out/report/results/cosine.json out/wordnet.ndjson out/linux-doc.ndjson
"""

import argparse
import json
import os
import time

import numpy as np
import scipy.io
import scipy.sparse
import sparse_dot_topn
from sparse_dot_topn import sp_matmul_topn

from common import THREADS, build_path, field, log, pin_threads, run, write_result

K = 10
TOL = 1e-5


def read_ids(path):
    with open(path, encoding="utf-8") as f:
        return [str(json.loads(line)["id"]) for line in f if line.strip()]


def unescape(s):
    if "\\" not in s:
        return s
    return s.replace("\\t", "\t").replace("\\n", "\n").replace("\\r", "\r").replace("\\\\", "\\")


def read_mgpu(path):
    """{query id: [(neighbour id, score)]} in file order (best first)."""
    out = {}
    with open(path, encoding="utf-8", newline="\n") as f:
        for line in f:
            q, n, s = line.rstrip("\n").split("\t")
            out.setdefault(unescape(q), []).append((unescape(n), float(s)))
    return out


def compare(mgpu, c, ids):
    """Counts queries whose lists differ beyond ties and round-off."""
    bad, differing, worst = 0, 0, 0.0
    example = None
    for row in range(c.shape[0]):
        lo, hi = c.indptr[row], c.indptr[row + 1]
        peer = sorted(zip(c.data[lo:hi].tolist(), (ids[j] for j in c.indices[lo:hi])), reverse=True)
        peer = [(n, s) for s, n in peer if s > TOL]
        mine = [(n, s) for n, s in mgpu.get(ids[row], []) if s > TOL]
        ps, ms = [s for _, s in peer], [s for _, s in mine]
        if {n for n, _ in peer} == {n for n, _ in mine} and len(ps) == len(ms):
            worst = max(worst, max((abs(a - b) for a, b in zip(sorted(ps), sorted(ms))), default=0.0))
            continue
        differing += 1
        ok = len(ps) == len(ms) and all(abs(a - b) <= TOL for a, b in zip(sorted(ps), sorted(ms)))
        if ok and ps:
            kth = min(ps)
            ok = all(s <= kth + TOL for n, s in peer if n not in {m for m, _ in mine}) and \
                 all(s <= kth + TOL for n, s in mine if n not in {m for m, _ in peer})
        if not ok:
            bad += 1
            if example is None:
                example = f"e.g. query {ids[row]!r}: mgpu {mine[:3]}..., sparse_dot_topn {peer[:3]}..."
    return bad, differing, worst, example


def main():
    p = argparse.ArgumentParser()
    p.add_argument("corpora", nargs="+")
    p.add_argument("--build", required=True)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--devices", default="cpu,cpu:2", help="mgpu device strings, comma-separated")
    p.add_argument("--tfidf-dir", default="out/report/work")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    pin_threads()
    exe = build_path(a.build, "examples", "document_similarity", "document_similarity")
    devices = a.devices.split(",")
    datasets = []
    for corpus in a.corpora:
        name = os.path.basename(corpus).split(".")[0]
        mtx = os.path.join(a.tfidf_dir, f"{name}.tfidf.mtx")
        if not os.path.exists(mtx):
            run([build_path(a.build, "benchmarks", "tfidf_corpus"), "--input", corpus, "--repeat", "1",
                 "--save-tfidf", mtx])
        x = scipy.io.mmread(mtx).tocsr().astype(np.float32)
        xt = x.T.tocsr()
        ids = read_ids(corpus)
        peer_name = f"sparse_dot_topn ({THREADS} threads)"
        times = {**{f"mgpu {d}": [] for d in devices}, peer_name: []}
        outputs = {}
        for r in range(a.reps):
            for d in devices:
                tsv = os.path.join(a.tfidf_dir, f"{name}.cosine.{d}.tsv")
                _, err, _ = run([exe, "--input", corpus, "--top-k", str(K), "--include-self", "--devices", d,
                                 "--output", tsv])
                secs = field(err, r"similarity:\s+([0-9.]+) s")
                if "index:" in err:
                    secs += field(err, r"index:\s+([0-9.]+) s")
                times[f"mgpu {d}"].append(secs)
                outputs[d] = tsv
            start = time.perf_counter()
            c = sp_matmul_topn(x, xt, top_n=K, sort=True, n_threads=THREADS)
            times[peer_name].append(time.perf_counter() - start)
            log(f"cosine {name} rep {r + 1}: " + ", ".join(f"{s} {t[-1]:.3f} s" for s, t in times.items()))
        notes = []
        first = outputs[devices[0]]
        for d in devices[1:]:
            same = open(first, "rb").read() == open(outputs[d], "rb").read()
            notes.append(f"mgpu {d} output {'identical to' if same else 'DIFFERS from'} mgpu {devices[0]}")
        bad, differing, worst, example = compare(read_mgpu(first), c.tocsr(), ids)
        ok = bad == 0
        text = (f"{x.shape[0]} queries: {x.shape[0] - differing} identical neighbour sets, {differing - bad} differ only "
                f"at ties with the 10th score, {bad} unexplained; max score difference {worst:.1e}")
        if example:
            text += f"; {example}"
        log(f"cosine {name}: {text}")
        datasets.append({"dataset": name, "unit": "s",
                         "what": f"top-{K} of {x.shape[0]} x {x.shape[0]} cosine ({x.shape[1]} terms, nnz {x.nnz})",
                         "times": times, "mgpu": f"mgpu {devices[0]}", "peer": peer_name, "agree": ok,
                         "agreement": text, "versions": {"sparse_dot_topn": sparse_dot_topn.__version__},
                         "notes": notes + ["sparse_dot_topn's Aᵀ is made CSR before the clock starts"]})
    write_result(a.out, "Cosine top-10", datasets)


if __name__ == "__main__":
    main()
