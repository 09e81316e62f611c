"""SpMV y = A·x (float32 values, int32 indices) on generated square matrices
(benchmarks/sparse/sparse_gen.h: ROWS rows, NNZ_PER_ROW entries each, uniformly random
columns or within a band): mgpu's spmv_bench against SuiteSparse:GraphBLAS (GrB_mxv),
Eigen and the current SciPy (single-threaded CSR matvec, in this process), as
benchmarks/sparse/compare_sparse.sh runs them. Each program generates the same matrix
and times --inner repetitions, reporting the median; the outer repetitions are
interleaved. Agreement: each peer's checksum (the sum of y over every 997th row, x as
sparse_gen_x) against mgpu's.

    python benchmarks/report/spmv.py --build build-19 --rows 4194304 --reps 5 --out out/report/results/spmv.json
"""

import argparse
import os
import tempfile
import time

import numpy as np
import scipy
import scipy.sparse

from common import build_path, field, log, median, pin_threads, run, write_result


def sparse_gen_x(n):
    with np.errstate(over="ignore"):
        state = np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(12345)
        z = state + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (0.5 + (z >> np.uint64(11)).astype(np.float64) / 9007199254740992.0).astype(np.float32)


def scipy_spmv(path, inner):
    with open(path, "rb") as f:
        rows, cols, nnz = np.fromfile(f, dtype=np.int64, count=3)
        offsets = np.fromfile(f, dtype=np.int32, count=rows + 1)
        columns = np.fromfile(f, dtype=np.int32, count=nnz)
        values = np.fromfile(f, dtype=np.float32, count=nnz)
    a = scipy.sparse.csr_matrix((values, columns, offsets), shape=(rows, cols))
    x = sparse_gen_x(int(cols))
    y = a @ x
    ms = []
    for _ in range(inner):
        t0 = time.perf_counter()
        y = a @ x
        ms.append((time.perf_counter() - t0) * 1e3)
    return median(ms), float(y[::997].astype(np.float64).sum())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", required=True)
    p.add_argument("--rows", type=int, default=4194304)
    p.add_argument("--nnz-per-row", type=int, default=16)
    p.add_argument("--band", type=int, default=1000)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--inner", type=int, default=5)
    p.add_argument("--scaling", action="store_true", help="also mgpu on cpu:2")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    pin_threads()
    b = lambda name: build_path(a.build, "benchmarks", "sparse", name)
    spmv, graphblas, eigen, triad = b("spmv_bench"), b("graphblas_spmv"), b("eigen_spmv"), b("stream_triad")
    tmp = tempfile.mkdtemp()
    datasets = []
    triads = []
    for band in (-1, a.band):
        label = "random columns" if band < 0 else f"band {band}"
        gen = [str(a.rows), str(a.nnz_per_row), str(band), str(a.inner)]
        band_arg = [] if band < 0 else ["--band", str(band)]
        csr = os.path.join(tmp, "a.bin")
        mgpu_runs = [("mgpu cpu", "cpu")] + ([("mgpu cpu:2", "cpu:2")] if a.scaling else [])
        times = {**{s: [] for s, _ in mgpu_runs}, "GraphBLAS": [], "Eigen": [], "SciPy (1 thread)": []}
        sums = {}
        for r in range(a.reps):
            for system, devices in mgpu_runs:
                save = ["--save-csr", csr] if r == 0 and devices == "cpu" else []
                out, _, _ = run([spmv, "--rows", str(a.rows), "--nnz-per-row", str(a.nnz_per_row), *band_arg,
                                 "--repeat", str(a.inner), "--devices", devices, *save])
                times[system].append(field(out, r"median_ms=([0-9.]+)") / 1e3)
                sums[system] = field(out, r"checksum=([-0-9.e+]+)")
            for system, exe in (("GraphBLAS", graphblas), ("Eigen", eigen)):
                out, _, _ = run([exe, *gen])
                times[system].append(field(out, r"median_ms=([0-9.]+)") / 1e3)
                sums[system] = field(out, r"checksum=([-0-9.e+]+)")
            ms, sums["SciPy (1 thread)"] = scipy_spmv(csr, a.inner)
            times["SciPy (1 thread)"].append(ms / 1e3)
            log(f"spmv {label} rep {r + 1}: " + ", ".join(f"{s} {t[-1] * 1e3:.2f} ms" for s, t in times.items()))
        os.remove(csr)
        triads.append(field(run([triad, "--repeat", "10"])[0], r"GBps=([0-9.]+)"))
        ref = sums["mgpu cpu"]
        rel = {s: abs(v - ref) / abs(ref) for s, v in sums.items() if s != "mgpu cpu"}
        ok = all(v <= 1e-4 for v in rel.values())
        text = "checksum of y (every 997th row) vs mgpu's: " + ", ".join(f"{s} {v:.1e}" for s, v in rel.items())
        nnz = a.rows * a.nnz_per_row
        gbytes = (8.0 * nnz + 4.0 * (a.rows + 1) + 8.0 * a.rows) / 1e9
        med = median(times["mgpu cpu"])
        datasets.append({"dataset": label, "unit": "s",
                         "what": f"{a.rows} x {a.rows}, {a.nnz_per_row} per row, {label}; one y = A·x "
                                 f"(median of {a.inner} inside each program)",
                         "times": times, "mgpu": "mgpu cpu", "peer": "GraphBLAS",
                         "agree": ok, "agreement": text,
                         "versions": {"SciPy": scipy.__version__},
                         "notes": [f"mgpu cpu: {gbytes / med:.1f} GB/s; STREAM triad on this machine afterwards "
                                   f"{triads[-1]:.1f} GB/s"]})
    write_result(a.out, "SpMV", datasets)


if __name__ == "__main__":
    main()
