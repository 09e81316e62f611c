#!/usr/bin/python3
"""Writes WordNet 3.0 as an NDJSON corpus of many short documents, one per synset.

Source: Debian's wordnet-base package (`apt-get install wordnet-base`), files
/usr/share/wordnet/data.{noun,verb,adj,adv} in the format of wndb(5WN):

    offset lex_filenum ss_type w_cnt word lex_id [word lex_id ...] p_cnt [ptr ...] ... | gloss

Each synset becomes `{"id": "<pos>.<offset>", "text": "<words>: <gloss>"}` where pos is
n, v, a or r (the file's part of speech, as in NLTK's synset names), offset is the
8-digit byte offset that identifies the synset within its file, words are the synset's
lemmas with underscores turned into spaces and adjective markers such as "(p)" removed,
and gloss is the text after "|". The license header (lines starting with two spaces)
is skipped. About 117,000 documents, 15 MB; files are taken in the order noun, verb,
adj, adv and lines in file order, so the output is deterministic.

Python standard library only.
"""

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

DEFAULT_DIR = "/usr/share/wordnet"
PARTS_OF_SPEECH = (("noun", "n"), ("verb", "v"), ("adj", "a"), ("adv", "r"))
ADJECTIVE_MARKER = re.compile(r"\((?:a|p|ip)\)$")


def parse_synset(line: str, pos: str, path: Path, line_number: int) -> dict:
    """One data-file line -> {"id", "text"}; raises ValueError naming file:line."""
    head, bar, gloss = line.partition("|")
    fields = head.split()
    try:
        if not bar or len(fields) < 4:
            raise ValueError("expected 'offset lex_filenum ss_type w_cnt ... | gloss'")
        word_count = int(fields[3], 16)
        words = fields[4 : 4 + 2 * word_count : 2]
        if len(words) != word_count:
            raise ValueError(f"w_cnt is {word_count} but fewer words follow")
    except ValueError as e:
        raise ValueError(f"{path}:{line_number}: {e}") from None
    lemmas = [ADJECTIVE_MARKER.sub("", w).replace("_", " ") for w in words]
    return {"id": f"{pos}.{fields[0]}", "text": f"{', '.join(lemmas)}: {gloss.strip()}"}


def synsets(directory: Path):
    for name, pos in PARTS_OF_SPEECH:
        path = directory / f"data.{name}"
        with open(path, encoding="utf-8", errors="replace") as data:
            for line_number, line in enumerate(data, start=1):
                if line.startswith("  ") or not line.strip():
                    continue
                yield parse_synset(line, pos, path, line_number)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet-dir", default=DEFAULT_DIR,
                        help="directory holding data.noun etc. (default: %(default)s)")
    parser.add_argument("--output", default="wordnet.ndjson",
                        help="NDJSON file to write (default: %(default)s)")
    args = parser.parse_args()

    directory = Path(args.wordnet_dir)
    missing = [f"data.{name}" for name, _ in PARTS_OF_SPEECH
               if not (directory / f"data.{name}").is_file()]
    if missing:
        print(f"error: {', '.join(missing)} not found in {directory}; install WordNet with "
              "`apt-get install wordnet-base` or pass --wordnet-dir", file=sys.stderr)
        return 1

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=output.name + ".", suffix=".tmp", dir=output.parent)
    count = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            for synset in synsets(directory):
                out.write(json.dumps(synset, ensure_ascii=False))
                out.write("\n")
                count += 1
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp_name, 0o666 & ~umask)  # mkstemp's 0600 would hide the corpus
        os.replace(temp_name, output)
    except ValueError as e:
        os.unlink(temp_name)
        print(f"error: {e}", file=sys.stderr)
        return 1
    except BaseException:
        os.unlink(temp_name)
        raise
    print(f"wrote {count} documents, {output.stat().st_size / 1e6:.1f} MB, to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
