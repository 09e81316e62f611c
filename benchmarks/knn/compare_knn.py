#!/usr/bin/env python3
"""Peers and checks for benchmarks/knn/compare_knn.sh (run with /usr/bin/python3, which has
numpy, faiss and scikit-learn).

  compare_knn.py faiss   --data-dir D --k 10 --output faiss.tsv    FAISS IndexFlatL2
  compare_knn.py sklearn --data-dir D --k 10 --output sklearn.tsv  NearestNeighbors(brute)
  compare_knn.py check   --data-dir D --k 10 mgpu.tsv faiss.tsv [other.tsv ...]

Each peer is a whole program like knn_classify: read the IDX files, search, vote, print
accuracy=..., write query<TAB>train<TAB>squared distance lines, best first.
`check` compares the first file's neighbours with every other file's (same rows, or a
swap between distances equal within float32 round-off), verifies the first file against
an exact float64 numpy computation on a sample of queries, and recomputes the majority-
vote accuracy from the first file's neighbours."""
import argparse
import gzip
import os
import sys
import time

import numpy as np


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndims = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndims).reshape(dims)


def load(data_dir):
    def f(stem):
        path = os.path.join(data_dir, stem + ".gz")
        return path if os.path.exists(path) else os.path.join(data_dir, stem)

    xb = read_idx(f("train-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32)
    yb = read_idx(f("train-labels-idx1-ubyte")).astype(np.int64)
    xq = read_idx(f("t10k-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32)
    yq = read_idx(f("t10k-labels-idx1-ubyte")).astype(np.int64)
    return xb, yb, xq, yq


def vote(indices, labels):
    # Majority label; np.argmax takes the first, i.e. the smallest, of tied labels.
    return np.array([np.argmax(np.bincount(labels[row[row >= 0]], minlength=10)) for row in indices])


def write_tsv(path, distances, indices):
    k = indices.shape[1]
    q = np.repeat(np.arange(indices.shape[0]), k)
    with open(path, "w") as f:
        for a, b, c in zip(q, indices.ravel(), distances.ravel()):
            f.write(f"{a}\t{b}\t{c:.9g}\n")


def read_tsv(path, k):
    a = np.loadtxt(path, dtype=np.float64, ndmin=2)
    return a[:, 2].reshape(-1, k), a[:, 1].astype(np.int64).reshape(-1, k)


def run_peer(args):
    t0 = time.perf_counter()
    xb, yb, xq, yq = load(args.data_dir)
    if args.limit_queries:
        xq, yq = xq[: args.limit_queries], yq[: args.limit_queries]
    t1 = time.perf_counter()
    if args.peer == "faiss":
        import faiss

        index = faiss.IndexFlatL2(xb.shape[1])
        index.add(xb)
        distances, indices = index.search(xq, args.k)
    else:
        from sklearn.neighbors import NearestNeighbors

        nn = NearestNeighbors(n_neighbors=args.k, algorithm="brute", metric="sqeuclidean", n_jobs=-1)
        nn.fit(xb)
        distances, indices = nn.kneighbors(xq)
    t2 = time.perf_counter()
    accuracy = float(np.mean(vote(indices, yb) == yq))
    print(f"accuracy={accuracy:.4f}")
    print(f"search_seconds={t2 - t1:.3f}")
    print(f"gflops={2.0 * len(xq) * len(xb) * xb.shape[1] / (t2 - t1) * 1e-9:.1f}")
    print(f"read: {t1 - t0:.3f} s", file=sys.stderr)
    if args.output:
        write_tsv(args.output, distances, indices)


def check(args):
    xb, yb, xq, yq = load(args.data_dir)
    k = args.k
    dist, idx = read_tsv(args.files[0], k)
    xq = xq[: len(idx)]
    yq = yq[: len(idx)]
    xb64 = xb.astype(np.float64)
    bn = np.einsum("ij,ij->i", xb64, xb64)
    ok = True

    # ‖q‖² + ‖b‖² − 2 q·b in float64: exact for 8-bit pixels (every term below 2^53), and
    # far below float32 round-off for any other data.
    def exact(qi, cols):
        q = xq[qi].astype(np.float64)
        return float(q @ q) + bn[cols] - 2.0 * (xb64[cols] @ q)

    # float32 round-off of ‖q‖² + ‖b‖² − 2 q·b: relative to the norms, not the distance.
    def tolerance(qi, cols):
        qn = float(np.dot(xq[qi].astype(np.float64), xq[qi].astype(np.float64)))
        return 1e-5 * (qn + bn[cols])

    for other in args.files[1:]:
        odist, oidx = read_tsv(other, k)
        differ = 0
        unexplained = 0
        for qi in np.nonzero((oidx != idx).any(axis=1))[0]:
            differ += 1
            # Accept a differing row only if the exact distances of the two lists agree
            # rank by rank within round-off (near-ties swapped).
            a, b = exact(qi, idx[qi]), exact(qi, oidx[qi])
            if np.any(np.abs(np.sort(a) - np.sort(b)) > tolerance(qi, idx[qi])):
                unexplained += 1
        rel = np.max(np.abs(odist - dist) / np.maximum(np.abs(dist), 1.0))
        print(f"{os.path.basename(other)}: {differ} of {len(idx)} queries list other rows "
              f"({unexplained} not explained by near-ties); max relative distance difference {rel:.2e}")
        ok &= unexplained == 0

    # Exact float64 reference on a sample of queries.
    rng = np.random.default_rng(0)
    sample = rng.choice(len(idx), size=min(args.sample, len(idx)), replace=False)
    bad = 0
    for qi in sample:
        d = exact(qi, np.arange(len(xb)))
        kth = np.sort(d)[k - 1]
        mine = exact(qi, idx[qi])
        tol = tolerance(qi, idx[qi])
        if np.any(mine > kth + tol) or np.any(np.abs(dist[qi] - mine) > tol) or len(set(idx[qi])) != k:
            bad += 1
    print(f"float64 reference: {len(sample) - bad} of {len(sample)} sampled queries exact up to round-off")
    ok &= bad == 0
    accuracy = float(np.mean(vote(idx, yb) == yq))
    print(f"majority vote over {os.path.basename(args.files[0])}'s neighbours: accuracy={accuracy:.4f}")
    if args.accuracy is not None:
        match = abs(accuracy - args.accuracy) < 5e-5
        print(f"reported accuracy {args.accuracy:.4f}: {'matches' if match else 'DIFFERS'}")
        ok &= match
    return 0 if ok else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("peer", choices=["faiss", "sklearn", "check"])
    parser.add_argument("files", nargs="*")
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--output")
    parser.add_argument("--limit-queries", type=int, default=0)
    parser.add_argument("--sample", type=int, default=300, help="queries checked against float64")
    parser.add_argument("--accuracy", type=float, help="accuracy the first file's program reported")
    args = parser.parse_intermixed_args()
    if args.peer == "check":
        sys.exit(check(args))
    run_peer(args)


if __name__ == "__main__":
    main()
