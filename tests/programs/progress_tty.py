#!/usr/bin/env python3
"""progress_tty.py PROGRAM BINARY TEST_DATA_DIR

Runs one example twice on a small input inside a fresh temporary directory (removed at
the end): once with standard error on a pseudo-terminal (Python's pty module), where a
progress line must appear (a count "done/total", a rate "/s", drawn in place with a
carriage return), and once with standard error on a pipe, where no progress text may
appear (no carriage return, no rate). Standard output (timings aside) and the written
output files must be byte-identical between the two runs. Exits 0 on success, 1 with messages otherwise.
"""
import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile

program, binary, data = sys.argv[1], os.path.realpath(sys.argv[2]), os.path.realpath(sys.argv[3])


def make_inputs(work):
    """The program's arguments for a small run in `work`; its output goes to out.tsv."""
    if program == "document_similarity":
        with open(os.path.join(work, "corpus.txt"), "w") as f:
            for i in range(300):
                f.write(f"document {i} about topic {i % 7} and subject {i % 11} with words w{i % 13}\n")
        return ["--input", "corpus.txt", "--format", "lines", "--top-k", "3", "--output", "out.tsv"]
    if program == "knn_classify":
        os.mkdir(os.path.join(work, "data"))
        for src, dst in [("fashion-train-300-images.idx3-ubyte.gz", "train-images-idx3-ubyte.gz"),
                         ("fashion-train-300-labels.idx1-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                         ("fashion-test-20-images.idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz")]:
            os.symlink(os.path.join(data, "knn", src), os.path.join(work, "data", dst))
        import struct
        with open(os.path.join(work, "data", "t10k-labels-idx1-ubyte"), "wb") as f:
            f.write(struct.pack(">II", 0x801, 20) + bytes(i % 10 for i in range(20)))
        return ["--data-dir", "data", "--k", "3", "--output", "out.tsv"]
    if program == "als_recommend":
        return ["--input", os.path.join(data, "als", "dpkg-status.mtx"), "--iterations", "3", "--factors", "4",
                "--save-factors", "out"]
    if program == "pagerank":
        return ["--input", os.path.join(data, "pagerank", "graph.mtx"), "--iterations", "20", "--output", "out.tsv"]
    sys.exit(f"unknown program {program}")


def run_on_pty(args, cwd):
    """Runs with stdout to a file and stderr on a pseudo-terminal; returns (rc, stderr bytes)."""
    master, slave = pty.openpty()
    with open(os.path.join(cwd, "stdout.tty"), "wb") as out:
        proc = subprocess.Popen([binary] + args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed its side
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return proc.wait(timeout=300), b"".join(chunks)


def stable(stdout):
    """Standard output without its timings (seconds=..., search_seconds=..., gflops=...)."""
    return re.sub(rb"(seconds|gflops)=[0-9.e+-]+", b"\\1=T", stdout)


def outputs(work):
    found = {}
    for name in sorted(os.listdir(work)):
        if name.startswith("out"):
            with open(os.path.join(work, name), "rb") as f:
                found[name] = f.read()
    return found


failures = []
work = tempfile.mkdtemp(prefix="mgpu-progress-")
try:
    args = make_inputs(work)
    rc, err = run_on_pty(args, work)
    tty_outputs = outputs(work)
    with open(os.path.join(work, "stdout.tty"), "rb") as f:
        tty_stdout = f.read()
    text = err.decode("utf-8", "replace")
    if rc != 0:
        failures.append(f"on a terminal: exit code {rc}: {text[-400:]}")
    if not re.search(r"\r[^\r\n]*\d+/\d+[^\r\n]*/s", text):
        failures.append(f"on a terminal: no progress line (count and rate, drawn with a carriage return): {text[-600:]!r}")
    for name in list(tty_outputs):
        os.remove(os.path.join(work, name))
    piped = subprocess.run([binary] + args, cwd=work, stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
    if piped.returncode != 0:
        failures.append(f"on a pipe: exit code {piped.returncode}: {piped.stderr[-400:]!r}")
    perr = piped.stderr.decode("utf-8", "replace")
    if "\r" in perr or re.search(r"\d+/\d+ [^\n]*/s", perr):
        failures.append(f"on a pipe: progress text on standard error: {perr[-600:]!r}")
    if stable(piped.stdout) != stable(tty_stdout):
        failures.append("standard output differs between the terminal and the pipe run")
    if outputs(work) != tty_outputs or not tty_outputs:
        failures.append(f"output files differ between the runs (or none was written): {sorted(tty_outputs)}")
finally:
    shutil.rmtree(work, ignore_errors=True)

for f in failures:
    print(f"FAIL [{program}]: {f}", file=sys.stderr)
if not failures:
    print(f"ok [{program}]: progress on a terminal, none on a pipe, identical outputs")
sys.exit(1 if failures else 0)
