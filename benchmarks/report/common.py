"""Shared helpers of the side-by-side report's runners (benchmarks/report.sh).

Each runner times mgpu's programs and a peer on the same data with the same thread
count, interleaved (repetition r runs every system once before repetition r + 1 starts),
checks the peer's result against mgpu's, and writes one JSON file per workload:

    {"workload": str, "datasets": [{"dataset": str, "unit": "s", "what": str,
      "times": {system: [seconds per repetition]}, "mgpu": system, "peer": system,
      "agree": bool, "agreement": str, "notes": [str], "scaling": {devices: [seconds]}}]}

make_report.py turns those files into docs/report/README.md and its plots.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
THREADS = 2
_START = (time.time(), os.getloadavg())


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def run(cmd, env=None, **kw):
    """Runs cmd (a list), returns (stdout, stderr, wall seconds); raises with its stderr on failure."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    start = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=full_env, **kw)
    wall = time.perf_counter() - start
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return p.stdout, p.stderr, wall


def field(text, pattern):
    """The float captured by regex `pattern` in text (the last match)."""
    found = re.findall(pattern, text)
    if not found:
        raise RuntimeError(f"no match for {pattern!r} in:\n{text[-2000:]}")
    return float(found[-1])


def median(xs):
    return statistics.median(xs)


def pin_threads():
    """Every peer library on THREADS threads (OpenMP, BLAS) for this process and children."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(THREADS)


def write_result(path, workload, datasets):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"workload": workload, "datasets": datasets, "started": _START[0], "seconds": time.time() - _START[0],
                   "load_before": _START[1], "load_after": os.getloadavg()}, f, indent=1)
    log(f"wrote {path}")


def build_path(build, *parts):
    p = os.path.join(build, *parts)
    if not os.access(p, os.X_OK):
        raise SystemExit(f"{p} is not built (benchmarks/report.sh builds it)")
    return p
