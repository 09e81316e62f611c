#!/usr/bin/env python3
"""The `implicit` library's batched recommend on the factors benchmarks/als/recommend_all
exported, timed the same way, and a check of mgpu's lists (run by compare_implicit.sh in
the venv it makes).

  compare_implicit.py DIR [--k 10] [--repeat 3] [--sample 2000]

DIR holds user_factors.npy, item_factors.npy, indptr.npy, indices.npy (the interactions)
and ids.npy / scores.npy (mgpu's lists, -1 / -inf padded). Each repetition times
`model.recommend(all user ids, user_items, N=k, filter_already_liked_items=True)`;
prints the median wall and process CPU seconds and users per (wall) second. Then checks that mgpu's lists equal
implicit's up to exchanges between scores equal within float32 round-off, and mgpu's
against an exact float64 ranking (seen items removed) on a sample of users."""
import argparse
import os
import time

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares


def same_up_to_ties(a_ids, a_scores, b_ids, b_scores, tol):
    """Rows agree position by position, except where the scores there tie within tol."""
    bad = 0
    for q in range(a_ids.shape[0]):
        differ = a_ids[q] != b_ids[q]
        if not differ.any():
            continue
        # Every differing position's scores must be within tol of each other and of the
        # other list's score there (an exchange between near-equal scores).
        if np.any(np.abs(a_scores[q][differ] - b_scores[q][differ]) > tol * max(1.0, np.abs(a_scores[q]).max())):
            bad += 1
    return bad


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sample", type=int, default=2000)
    a = parser.parse_args()
    d = a.dir
    x = np.load(os.path.join(d, "user_factors.npy"))
    y = np.load(os.path.join(d, "item_factors.npy"))
    indptr = np.load(os.path.join(d, "indptr.npy"))
    indices = np.load(os.path.join(d, "indices.npy"))
    users, items = x.shape[0], y.shape[0]
    user_items = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(users, items))
    model = AlternatingLeastSquares(factors=x.shape[1])
    model.user_factors = x
    model.item_factors = y
    userids = np.arange(users)
    seconds, cpu = [], []
    for _ in range(a.repeat):
        start, cpu_start = time.perf_counter(), time.process_time()
        ids, scores = model.recommend(userids, user_items, N=a.k, filter_already_liked_items=True)
        seconds.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    median = sorted(seconds)[len(seconds) // 2]
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(f"implicit recommend OPENBLAS_NUM_THREADS={threads} k={a.k}: median {median:.3f} s wall, "
          f"{sorted(cpu)[len(cpu) // 2]:.3f} s cpu over {a.repeat} runs, {users / median:.0f} users/s "
          f"(wall runs: {' '.join(f'{s:.3f}' for s in seconds)})")

    mgpu_ids = np.load(os.path.join(d, "ids.npy"))
    mgpu_scores = np.load(os.path.join(d, "scores.npy"))
    bad = same_up_to_ties(mgpu_ids, mgpu_scores, ids, scores, 1e-5)
    print(f"mgpu vs implicit: {users - bad} of {users} users agree (exchanges only between scores within 1e-5)")

    rng = np.random.default_rng(0)
    sample = rng.choice(users, size=min(a.sample, users), replace=False)
    wrong = 0
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    for u in sample:
        exact = y64 @ x64[u]
        exact[indices[indptr[u]:indptr[u + 1]]] = -np.inf
        # Round-off of a float32 dot of f products: about f * 2^-24 * sum |x_j y_j|.
        tol = 2 * (x.shape[1] + 2) * 2.0**-24 * (np.abs(y64) @ np.abs(x64[u]))
        got = mgpu_ids[u][mgpu_ids[u] >= 0]
        kth = np.sort(exact)[::-1][len(got) - 1]
        ok = np.all(np.isfinite(exact[got]))  # no seen item
        ok &= np.all(exact[got] >= kth - 2 * tol[got])  # nothing better left out
        ok &= np.all(np.abs(mgpu_scores[u][: len(got)] - exact[got]) <= tol[got])
        wrong += not ok
    print(f"mgpu vs float64 on {len(sample)} sampled users: {len(sample) - wrong} exact up to round-off")
    return 1 if bad or wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
