#!/usr/bin/python3
"""SciPy peer of spmv_bench: y = A @ x (scipy.sparse.csr_matrix, float32, int32) on the
raw CSR arrays spmv_bench --save-csr writes. SciPy's CSR matvec is single-threaded.
Prints the median of REPEAT runs in spmv_bench's format.

    scipy_spmv.py FILE REPEAT
"""
import sys
import time

import numpy as np
import scipy.sparse


def main():
    path, repeat = sys.argv[1], int(sys.argv[2])
    with open(path, "rb") as f:
        rows, cols, nnz = np.fromfile(f, dtype=np.int64, count=3)
        offsets = np.fromfile(f, dtype=np.int32, count=rows + 1)
        columns = np.fromfile(f, dtype=np.int32, count=nnz)
        values = np.fromfile(f, dtype=np.float32, count=nnz)
    a = scipy.sparse.csr_matrix((values, columns, offsets), shape=(rows, cols))
    # x[i] as sparse_gen_x computes it is not needed for timing; any dense float32 vector
    # costs the same.
    x = np.linspace(0.5, 1.5, cols, dtype=np.float32)
    y = a @ x
    ms = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        y = a @ x
        ms.append((time.perf_counter() - t0) * 1e3)
    median = sorted(ms)[len(ms) // 2]
    nbytes = 8.0 * nnz + 4.0 * (rows + 1) + 8.0 * rows
    print(f"peer=scipy threads=1 nnz={nnz} median_ms={median:.3f} GBps={nbytes / median / 1e6:.2f} "
          f"GFLOPs={2.0 * nnz / median / 1e6:.3f} checksum={float(y[::997].sum()):.6g}")


if __name__ == "__main__":
    main()
