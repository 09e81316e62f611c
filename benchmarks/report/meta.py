"""Writes meta.json for make_report.py: machine (lscpu model, cores, memory), OS, compiler,
date, git commit, the mode and the versions of every peer.

    python benchmarks/report/meta.py --mode quick --reps 2 --command "benchmarks/report.sh --quick" --out meta.json
"""

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import subprocess

from common import THREADS


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", required=True)
    p.add_argument("--reps", required=True)
    p.add_argument("--command", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--note", default="", help="what the mode leaves out, for the report")
    a = p.parse_args()
    cpu = sh("lscpu | sed -n 's/^Model name:[ \\t]*//p' | head -1") or platform.processor()
    mem_kb = int(sh("sed -n 's/^MemTotal: *\\([0-9]*\\) kB/\\1/p' /proc/meminfo") or 0)
    versions = {}
    for pkg in ("implicit", "sparse_dot_topn", "faiss-cpu", "scikit-learn", "scipy", "numpy", "threadpoolctl",
                "matplotlib"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    versions["Python"] = platform.python_version()
    for deb, name in (("libgraphblas-dev", "SuiteSparse:GraphBLAS (Debian)"), ("libeigen3-dev", "Eigen (Debian)")):
        versions[name] = sh(f"dpkg-query -W -f='${{Version}}' {deb}") or "not installed"
    meta = {
        "mode": a.mode, "reps": a.reps, "command": a.command, "threads": THREADS,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": sh("git rev-parse --short=12 HEAD"), "dirty": len(sh("git status --porcelain -- include benchmarks examples").splitlines()),
        "cpu": cpu, "cores": os.cpu_count(), "memory": f"{mem_kb / 1048576:.0f} GiB RAM",
        "os": sh(". /etc/os-release && echo \"$PRETTY_NAME\"") + ", Linux " + platform.release(),
        "compiler": sh("c++ --version | head -1"), "versions": versions,
        "note": a.note,
    }
    with open(a.out, "w") as f:
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main()
