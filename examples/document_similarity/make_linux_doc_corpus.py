#!/usr/bin/python3
"""Writes the Linux kernel documentation as an NDJSON corpus, one document per file.

Source: Debian's linux-doc package (`apt-get install linux-doc`), whose Documentation
tree holds gzip-compressed reStructuredText and text files. Every `*.rst.gz` and
`*.txt.gz` becomes one line `{"id": "<path relative to root, .gz removed>", "text": ...}`,
in order of path so that the output is the same on every run (about 5,100 documents,
about 40 MB for linux-doc 6.1). Bytes that are not UTF-8 become U+FFFD.

The output is written to a temporary file beside it and renamed into place, so an
interrupted run never leaves a truncated corpus behind.

Python standard library only.
"""

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_ROOT = "/usr/share/doc/linux-doc-6.1/Documentation"
SUFFIXES = (".rst.gz", ".txt.gz")


def find_documents(root: Path) -> list[Path]:
    """Every .rst.gz / .txt.gz file under root, sorted by relative POSIX path."""
    found = [p for p in root.rglob("*.gz") if p.name.endswith(SUFFIXES) and p.is_file()]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def write_corpus(root: Path, documents: list[Path], output: Path) -> int:
    """Writes the NDJSON corpus atomically; returns the number of bytes written."""
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=output.name + ".", suffix=".tmp", dir=output.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            for path in documents:
                doc_id = path.relative_to(root).as_posix()[: -len(".gz")]
                with gzip.open(path, "rb") as compressed:
                    text = compressed.read().decode("utf-8", errors="replace")
                # ensure_ascii=False keeps the corpus readable and its byte count honest.
                out.write(json.dumps({"id": doc_id, "text": text}, ensure_ascii=False))
                out.write("\n")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp_name, 0o666 & ~umask)  # mkstemp's 0600 would hide the corpus
        os.replace(temp_name, output)
    except BaseException:
        os.unlink(temp_name)
        raise
    return output.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=DEFAULT_ROOT,
                        help="the linux-doc Documentation directory (default: %(default)s)")
    parser.add_argument("--output", default="linux_doc.ndjson",
                        help="NDJSON file to write (default: %(default)s)")
    args = parser.parse_args()

    root = Path(args.root)
    if not root.is_dir():
        print(f"error: {root} not found; install the kernel documentation with "
              "`apt-get install linux-doc` or pass --root", file=sys.stderr)
        return 1
    documents = find_documents(root)
    if not documents:
        print(f"error: no *.rst.gz or *.txt.gz files under {root}", file=sys.stderr)
        return 1
    start = time.perf_counter()
    size = write_corpus(root, documents, Path(args.output))
    seconds = time.perf_counter() - start
    print(f"wrote {len(documents)} documents, {size / 1e6:.1f} MB, to {args.output} "
          f"in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
