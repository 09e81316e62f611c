"""Exact k-NN (k = 10, squared L2) on Fashion-MNIST (60,000 x 784 base, 10,000 queries):
mgpu's knn_classify against faiss-cpu's IndexFlatL2, both on 2 threads; neighbours compared.

Timed: mgpu's search as knn_classify reports it (mgpu::knn on the loaded images, reading
and voting excluded); FAISS's IndexFlatL2 add + search in this process on the same float32
images (faiss.omp_set_num_threads(2), its BLAS limited to 2 threads). Interleaved: one
knn_classify process per device string, then FAISS, per repetition.

Agreement (as benchmarks/knn/compare_knn.py check): queries whose id lists differ are
accepted only when the exact float64 distances of both lists agree rank by rank within
float32 round-off (1e-5 of the norms); plus the largest relative distance difference.

    python benchmarks/report/knn.py --build build-19 --reps 5 --out out/report/results/knn.json
"""

import argparse
import gzip
import os
import time

import faiss
import numpy as np
from threadpoolctl import threadpool_limits

from common import THREADS, build_path, field, log, pin_threads, run, write_result

K = 10


def read_idx(path):
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(data[3])]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * data[3]).reshape(dims)


def load(data_dir):
    def f(stem):
        p = os.path.join(data_dir, stem + ".gz")
        return p if os.path.exists(p) else os.path.join(data_dir, stem)
    xb = read_idx(f("train-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32)
    xq = read_idx(f("t10k-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32)
    return xb, xq


def read_tsv(path):
    a = np.loadtxt(path, dtype=np.float64, ndmin=2)
    return a[:, 2].reshape(-1, K), a[:, 1].astype(np.int64).reshape(-1, K)


def compare(xb, xq, dist, idx, fdist, fidx):
    xb64 = xb.astype(np.float64)
    bn = np.einsum("ij,ij->i", xb64, xb64)
    differ = unexplained = 0
    for qi in np.nonzero((fidx != idx).any(axis=1))[0]:
        differ += 1
        q = xq[qi].astype(np.float64)
        exact = lambda cols: float(q @ q) + bn[cols] - 2.0 * (xb64[cols] @ q)
        tol = 1e-5 * (float(q @ q) + bn[idx[qi]])
        if np.any(np.abs(np.sort(exact(idx[qi])) - np.sort(exact(fidx[qi]))) > tol):
            unexplained += 1
    rel = float(np.max(np.abs(fdist - dist) / np.maximum(np.abs(dist), 1.0)))
    text = (f"{len(idx)} queries: {len(idx) - differ} identical lists, {differ - unexplained} differ only by "
            f"near-ties (exact float64 distances equal within round-off), {unexplained} unexplained; "
            f"max relative distance difference {rel:.1e}")
    return unexplained == 0, text


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", required=True)
    p.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--devices", default="cpu,cpu:2")
    p.add_argument("--limit-queries", type=int, default=0, help="only the first N queries (0: all)")
    p.add_argument("--work", default="out/report/work")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    pin_threads()
    faiss.omp_set_num_threads(THREADS)
    exe = build_path(a.build, "examples", "knn_classify", "knn_classify")
    devices = a.devices.split(",")
    xb, xq = load(a.data_dir)
    if a.limit_queries:
        xq = xq[:a.limit_queries]
    os.makedirs(a.work, exist_ok=True)
    peer = f"faiss IndexFlatL2 ({THREADS} threads)"
    times = {**{f"mgpu {d}": [] for d in devices}, peer: []}
    outputs = {}
    for r in range(a.reps):
        for d in devices:
            tsv = os.path.join(a.work, f"knn.{d}.tsv")
            out, _, _ = run([exe, "--data-dir", a.data_dir, "--k", str(K), "--devices", d, "--output", tsv,
                              "--limit-queries", str(a.limit_queries)])
            times[f"mgpu {d}"].append(field(out, r"search_seconds=([0-9.]+)"))
            outputs[d] = tsv
        with threadpool_limits(THREADS):
            start = time.perf_counter()
            index = faiss.IndexFlatL2(xb.shape[1])
            index.add(xb)
            fdist, fidx = index.search(xq, K)
            times[peer].append(time.perf_counter() - start)
        log(f"knn rep {r + 1}: " + ", ".join(f"{s} {t[-1]:.3f} s" for s, t in times.items()))
    notes = []
    for d in devices[1:]:
        same = open(outputs[devices[0]], "rb").read() == open(outputs[d], "rb").read()
        notes.append(f"mgpu {d} output {'identical to' if same else 'DIFFERS from'} mgpu {devices[0]}")
    dist, idx = read_tsv(outputs[devices[0]])
    ok, text = compare(xb, xq, dist, idx, fdist, fidx)
    log(f"knn: {text}")
    write_result(a.out, "k-NN", [{
        "dataset": "fashion-mnist", "unit": "s",
        "what": f"k = {K} exact squared-L2 neighbours of {len(xq)} queries among {len(xb)} x {xb.shape[1]}",
        "times": times, "mgpu": f"mgpu {devices[0]}", "peer": peer, "agree": ok, "agreement": text,
        "versions": {"faiss-cpu": faiss.__version__}, "notes": notes}])


if __name__ == "__main__":
    main()
