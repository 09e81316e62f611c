#!/usr/bin/python3
"""Runs spmv_bench over matrix sizes and device counts and draws the sparse-core
figures of docs/_parts/sparse-performance.md (matplotlib, small PNGs):

  docs/img/sparse-throughput.png  SpMV GB/s vs nnz, random and banded columns,
                                  with the STREAM triad measured in the same run
  docs/img/sparse-scaling.png     SpMV speed-up of cpu:N over cpu:1 (4M x 4M, band)

    benchmarks/sparse/make_plots.py BUILD_DIR [--max-log-rows 22] [--repeat 7]
"""
import argparse
import re
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return {k: v for k, v in re.findall(r"(\w+)=([^ \n]+)", out)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--max-log-rows", type=int, default=22)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    bench = str(Path(args.build) / "benchmarks/sparse/spmv_bench")
    triad = run([str(Path(args.build) / "benchmarks/sparse/stream_triad")])
    root = Path(__file__).resolve().parents[2]
    cmd = "benchmarks/sparse/make_plots.py " + " ".join(sys.argv[1:])

    fig, ax = plt.subplots(figsize=(5.2, 3.4), dpi=90)
    for label, band in (("random columns", []), ("band ±1000", ["--band", "1000"])):
        xs, ys = [], []
        for log_rows in range(16, args.max_log_rows + 1, 2):
            r = run([bench, "--rows", str(2 ** log_rows), "--nnz-per-row", "16", *band, "--repeat", str(args.repeat)])
            xs.append(int(r["nnz"]))
            ys.append(float(r["GBps"]))
            print(label, r, flush=True)
        ax.plot(xs, ys, marker="o", label=f"mgpu spmv, {label}")
    ax.axhline(float(triad["GBps"]), color="gray", ls="--", label="STREAM triad (same run)")
    ax.set_xscale("log")
    ax.set_xlabel("nnz (16 per row, square, float32/int32)")
    ax.set_ylabel("GB/s (8 B/nnz + offsets + x + y)")
    ax.legend(fontsize=7)
    ax.set_title(cmd, fontsize=6)
    fig.tight_layout()
    fig.savefig(root / "docs/img/sparse-throughput.png")

    fig, ax = plt.subplots(figsize=(5.2, 3.4), dpi=90)
    n_max = 4
    base = None
    xs, ys = [], []
    for n in range(1, n_max + 1):
        r = run([bench, "--rows", str(2 ** args.max_log_rows), "--nnz-per-row", "16", "--band", "1000",
                 "--devices", f"cpu:{n}", "--repeat", str(args.repeat)])
        ms = float(r["median_ms"])
        base = base or ms
        xs.append(n)
        ys.append(base / ms)
        print(n, r, flush=True)
    ax.plot(xs, ys, marker="o", label="cpu:N over cpu:1")
    ax.set_xticks(xs)
    ax.set_xlabel("host devices N (cpu:N) on 2 cores")
    ax.set_ylabel("speed-up")
    ax.legend(fontsize=7)
    ax.set_title(cmd, fontsize=6)
    fig.tight_layout()
    fig.savefig(root / "docs/img/sparse-scaling.png")


if __name__ == "__main__":
    main()
