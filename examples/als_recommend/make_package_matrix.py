#!/usr/bin/python3
"""Writes a package x dependency/tag interaction matrix from Debian package metadata.

Source: the package lists apt already has (`/var/lib/apt/lists/*_Packages*`, read with
`/usr/lib/apt/apt-helper cat-file`, which undoes apt's lz4/gz/xz compression) and/or
dpkg's database of installed packages (`/var/lib/dpkg/status`). Each package is a
"user"; the "items" it interacts with are the packages it names in its relationship
fields and its debtags:

    Pre-Depends, Depends   value 3
    Recommends             value 2
    Suggests               value 1
    Tag (debtags)          value 1, item named "tag:<facet::tag>"

Only the first alternative of `a | b` counts (the one apt installs by default); version
constraints and architecture qualifiers are dropped; a package named by several fields
keeps the largest value. A package listed more than once (e.g. in bookworm and in
bookworm-security) is taken from the first list that has it. Packages without any item
are left out. Users and items are sorted by name, so the output is the same on every
run over the same lists. For bookworm (main, updates, security; amd64): 59,732 packages
x 50,207 items, 436,801 entries.

Output (each written to a temporary file and renamed into place):
    PREFIX.mtx        Matrix Market coordinate integer general, users x items
    PREFIX.users.txt  one package name per line, row order
    PREFIX.items.txt  one item name per line, column order

Python standard library only.
"""

import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile

FIELD_VALUES = {"pre-depends": 3, "depends": 3, "recommends": 2, "suggests": 1}
DEFAULT_SOURCES = sorted(glob.glob("/var/lib/apt/lists/*_Packages*"))


def read_text(path):
    """The decompressed text of a package list."""
    if path.endswith((".lz4", ".gz", ".xz", ".bz2", ".zst")):
        return subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", path], check=True,
                              capture_output=True).stdout.decode("utf-8", "replace")
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def stanzas(text):
    """Yields each stanza as {lowercase field: value with continuation lines joined}."""
    for block in re.split(r"\n\s*\n", text):
        fields = {}
        name = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t"):
                if name is not None:
                    fields[name] += " " + line.strip()
            elif ":" in line:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                fields[name] = value.strip()
        if "package" in fields:
            yield fields


def relation_targets(value):
    """Package names of the first alternative of each comma-separated relation."""
    out = []
    for relation in value.split(","):
        first = relation.split("|")[0].strip()
        name = re.split(r"[\s(\[<]", first, maxsplit=1)[0].split(":")[0]
        if name:
            out.append(name)
    return out


def interactions(fields):
    items = {}
    for field, value in FIELD_VALUES.items():
        for target in relation_targets(fields.get(field, "")):
            items[target] = max(items.get(target, 0), value)
    for tag in fields.get("tag", "").split(","):
        tag = tag.strip()
        if tag:
            items["tag:" + tag] = max(items.get("tag:" + tag, 0), 1)
    return items


def write_atomically(path, write):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            write(out)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="out/debian-packages",
                        help="output prefix (default: out/debian-packages)")
    parser.add_argument("--source", action="append", dest="sources",
                        help="a Packages list or /var/lib/dpkg/status; repeatable "
                             "(default: every /var/lib/apt/lists/*_Packages*)")
    parser.add_argument("--no-tags", action="store_true", help="leave debtags out")
    args = parser.parse_args()
    sources = args.sources or DEFAULT_SOURCES
    if not sources:
        sys.exit("make_package_matrix.py: no package lists found; run apt-get update or pass --source")

    users = {}
    for path in sources:
        for fields in stanzas(read_text(path)):
            if fields["package"] in users:
                continue
            if args.no_tags:
                fields.pop("tag", None)
            items = interactions(fields)
            if items:
                users[fields["package"]] = items

    user_names = sorted(users)
    item_names = sorted({item for items in users.values() for item in items})
    item_index = {name: i for i, name in enumerate(item_names)}
    nnz = sum(len(items) for items in users.values())

    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)

    def write_matrix(out):
        out.write("%%MatrixMarket matrix coordinate integer general\n")
        out.write("% Debian packages x the packages and debtags they name; made by "
                  "examples/als_recommend/make_package_matrix.py\n")
        out.write(f"{len(user_names)} {len(item_names)} {nnz}\n")
        for u, name in enumerate(user_names, start=1):
            entries = sorted((item_index[i], v) for i, v in users[name].items())
            for i, v in entries:
                out.write(f"{u} {i + 1} {v}\n")

    write_atomically(args.output + ".mtx", write_matrix)
    write_atomically(args.output + ".users.txt", lambda out: out.writelines(n + "\n" for n in user_names))
    write_atomically(args.output + ".items.txt", lambda out: out.writelines(n + "\n" for n in item_names))
    print(f"{args.output}.mtx: {len(user_names)} packages x {len(item_names)} items, {nnz} entries",
          file=sys.stderr)


if __name__ == "__main__":
    main()
