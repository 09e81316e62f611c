#!/usr/bin/python3
"""Runs spmv_bench over matrix sizes and device counts and draws the sparse-core
figures of docs/_parts/sparse-performance.md (matplotlib, small PNGs):

  docs/img/sparse-throughput.png  SpMV GB/s vs nnz: random columns (automatic layout:
                                  tiled), banded columns with the automatic layout
                                  (sell) and with the plain csr layout, and the STREAM
                                  triad measured in the same run
  docs/img/sparse-scaling.png     SpMV speed-up of cpu:N run with OMP_NUM_THREADS=N
                                  (N devices of one thread each) over cpu:1 with one
                                  thread, 4M x 4M, band and random columns

    benchmarks/sparse/make_plots.py BUILD_DIR [--max-log-rows 22] [--repeat 7] [--max-devices 4]

Device counts above the machine's cores (os.cpu_count()) oversubscribe: N single-thread
devices then share fewer cores, so those points are drawn hollow and measure the cost of
oversubscription, not scaling.
"""
import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def run(cmd, threads=None):
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return {k: v for k, v in re.findall(r"(\w+)=([^ \n]+)", out)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--max-log-rows", type=int, default=22)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--max-devices", type=int, default=4)
    args = ap.parse_args()
    bench = str(Path(args.build) / "benchmarks/sparse/spmv_bench")
    triad_cmd = [str(Path(args.build) / "benchmarks/sparse/stream_triad"), "--repeat", "10"]
    root = Path(__file__).resolve().parents[2]
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    cmd = f"benchmarks/sparse/make_plots.py {' '.join(sys.argv[1:])} (1-min load at start: {load} on {os.cpu_count()} cores)"
    cores = os.cpu_count() or 1

    triads = [float(run(triad_cmd)["GBps"])]
    fig, ax = plt.subplots(figsize=(5.2, 3.4), dpi=90)
    series = (("random columns (auto: tiled from 2^20 rows)", [], "auto"),
              ("band ±1000 (auto: sell)", ["--band", "1000"], "auto"),
              ("band ±1000, csr layout", ["--band", "1000"], "csr"))
    for label, band, layout in series:
        xs, ys = [], []
        for log_rows in range(16, args.max_log_rows + 1, 2):
            r = run([bench, "--rows", str(2 ** log_rows), "--nnz-per-row", "16", *band, "--layout", layout,
                     "--repeat", str(args.repeat)])
            xs.append(int(r["nnz"]))
            ys.append(float(r["GBps"]))
            print(label, r, flush=True)
        ax.plot(xs, ys, marker="o", label=f"mgpu spmv, {label}")
    triads.append(float(run(triad_cmd)["GBps"]))
    print("triad GB/s before and after:", triads, flush=True)
    ax.axhspan(min(triads), max(triads), color="gray", alpha=0.25, label="STREAM triad (same run, before/after)")
    ax.set_xscale("log")
    ax.set_xlabel("nnz (16 per row, square, float32/int32)")
    ax.set_ylabel("GB/s (8 B/nnz + offsets + x + y)")
    ax.legend(fontsize=7)
    ax.set_title(cmd, fontsize=6)
    fig.tight_layout()
    fig.savefig(root / "docs/img/sparse-throughput.png")

    fig, ax = plt.subplots(figsize=(5.2, 3.4), dpi=90)
    devices = list(range(1, args.max_devices + 1))
    for label, band in (("band ±1000 (sell)", ["--band", "1000"]), ("random columns (tiled)", [])):
        speedups = []
        base = None
        for n in devices:
            r = run([bench, "--rows", str(2 ** args.max_log_rows), "--nnz-per-row", "16", *band,
                     "--devices", f"cpu:{n}", "--repeat", str(args.repeat)], threads=n)
            ms = float(r["median_ms"])
            base = base or ms
            speedups.append(base / ms)
            print(f"OMP_NUM_THREADS={n} cpu:{n}", label, r, flush=True)
        line, = ax.plot([n for n in devices if n <= cores], [s for n, s in zip(devices, speedups) if n <= cores],
                        marker="o", label=label)
        over = [(n, s) for n, s in zip(devices, speedups) if n >= cores]
        if len(over) > 1:
            ax.plot([n for n, _ in over], [s for _, s in over], ls=":", marker="o", mfc="none",
                    color=line.get_color())
    ax.plot([1, cores], [1, cores], color="gray", ls="--", lw=0.8, label="ideal")
    if args.max_devices > cores:
        ax.axvspan(cores + 0.5, args.max_devices + 0.5, color="gray", alpha=0.12,
                   label=f"more devices than the {cores} cores (oversubscribed)")
    ax.set_xticks(devices)
    ax.set_xlabel("cpu:N with OMP_NUM_THREADS=N (one thread per device)")
    ax.set_ylabel("speed-up over cpu:1, 1 thread")
    ax.legend(fontsize=7)
    ax.set_title(cmd, fontsize=6)
    fig.tight_layout()
    fig.savefig(root / "docs/img/sparse-scaling.png")


if __name__ == "__main__":
    main()
