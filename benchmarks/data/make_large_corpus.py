#!/usr/bin/python3
"""Writes a large NDJSON corpus by repeating a smaller one, with unique ids.

Used to time document_similarity and bench_io on a corpus larger than the memory one
wants to spend on text (issue 21). The source is an NDJSON corpus whose lines are
{"id": ..., "text": ...} objects, by default out/linux-doc.ndjson from
examples/document_similarity/make_linux_doc_corpus.py. Copy k (k = 0, 1, ...) of source
document `id` gets the id "<id>#<k>" and the same text; copies are written whole, in
source order, until the output holds at least --size bytes (default 2 GB = 2e9 bytes;
suffixes K, M, G are powers of 1000). With --gzip the same bytes are also written
gzip-compressed to OUTPUT.gz (by the gzip program, level --level) for the compressed
runs. The output is deterministic.

    python3 benchmarks/data/make_large_corpus.py --output out/large.ndjson [--size 2G] [--gzip]

Python standard library (plus the gzip program for --gzip).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys


def parse_size(text: str) -> int:
    scale = {"K": 10**3, "M": 10**6, "G": 10**9}
    text = text.strip().upper()
    if text and text[-1] in scale:
        return int(float(text[:-1]) * scale[text[-1]])
    return int(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default="out/linux-doc.ndjson", help="NDJSON corpus to repeat")
    parser.add_argument("--output", required=True, help="NDJSON file to write")
    parser.add_argument("--size", default="2G", help="least bytes to write (default 2G)")
    parser.add_argument("--gzip", action="store_true", help="also write OUTPUT.gz")
    parser.add_argument("--level", type=int, default=6, choices=range(1, 10), help="gzip level (default 6)")
    args = parser.parse_args()

    target = parse_size(args.size)
    documents = []  # (id, text as a JSON string literal)
    with open(args.source, encoding="utf-8") as source:
        for number, line in enumerate(source, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            documents.append((str(record.get("id", number)), json.dumps(record["text"], ensure_ascii=False)))
    if not documents:
        print(f"{args.source}: no documents", file=sys.stderr)
        return 1

    written = 0
    count = 0
    copy = 0
    temporary = args.output + ".tmp"
    with open(temporary, "w", encoding="utf-8", newline="\n") as out:
        while written < target:
            lines = []
            for doc_id, text in documents:
                lines.append('{"id": %s, "text": %s}\n' % (json.dumps(f"{doc_id}#{copy}", ensure_ascii=False), text))
            block = "".join(lines)
            out.write(block)
            written += len(block.encode("utf-8"))
            count += len(documents)
            copy += 1
    os.replace(temporary, args.output)
    print(f"wrote {count} documents ({copy} copies of {len(documents)}), {written / 1e6:.1f} MB, to {args.output}")

    if args.gzip:
        gzip = shutil.which("gzip")
        if gzip is None:
            print("--gzip: the gzip program is not installed", file=sys.stderr)
            return 1
        with open(args.output, "rb") as src, open(args.output + ".gz.tmp", "wb") as dst:
            subprocess.run([gzip, f"-{args.level}", "-c", "-n"], stdin=src, stdout=dst, check=True)
        os.replace(args.output + ".gz.tmp", args.output + ".gz")
        print(f"wrote {args.output}.gz, {os.path.getsize(args.output + '.gz') / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
