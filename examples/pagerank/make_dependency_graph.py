#!/usr/bin/python3
"""Writes the Debian package dependency graph (edge i -> j when package i depends on j).

Source: the package lists apt already has (`/var/lib/apt/lists/*_Packages*`) and/or
dpkg's database (`/var/lib/dpkg/status`), parsed exactly as
examples/als_recommend/make_package_matrix.py parses them (its functions are imported):
a package listed more than once is taken from the first list that has it; of each
`a | b` relation only the first alternative counts (the one apt installs by default);
version constraints and architecture qualifiers are dropped.

Nodes are every package in the lists plus every name a Depends or Pre-Depends field
names (virtual packages such as `awk` are nodes too, without edges of their own: they
are the dangling nodes PageRank spreads uniformly), sorted by name. An edge i -> j is
stored once however many fields name j. Recommends and Suggests are not dependencies.

Output (each written to a temporary file and renamed into place):
    PREFIX.mtx         Matrix Market coordinate pattern general, nodes x nodes,
                       entry (i, j) = edge i -> j
    PREFIX.names.txt   one node name per line, row order

Python standard library only.
"""

import argparse
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def package_matrix_module():
    """examples/als_recommend/make_package_matrix.py, whose parsing this reuses."""
    path = os.path.join(HERE, "..", "als_recommend", "make_package_matrix.py")
    spec = importlib.util.spec_from_file_location("make_package_matrix", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    pm = package_matrix_module()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="out/debian-dependencies",
                        help="output prefix (default: out/debian-dependencies)")
    parser.add_argument("--source", action="append", dest="sources",
                        help="a Packages list or /var/lib/dpkg/status; repeatable "
                             "(default: every /var/lib/apt/lists/*_Packages*)")
    args = parser.parse_args()
    sources = args.sources or pm.DEFAULT_SOURCES
    if not sources:
        sys.exit("make_dependency_graph.py: no package lists found; run apt-get update or pass --source")

    depends = {}
    for path in sources:
        for fields in pm.stanzas(pm.read_text(path)):
            name = fields["package"]
            if name in depends:
                continue
            targets = set()
            for field in ("pre-depends", "depends"):
                targets.update(pm.relation_targets(fields.get(field, "")))
            depends[name] = targets

    names = sorted(set(depends) | {t for targets in depends.values() for t in targets})
    index = {name: i for i, name in enumerate(names)}
    edges = sum(len(t) for t in depends.values())
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)

    def write_matrix(out):
        out.write("%%MatrixMarket matrix coordinate pattern general\n")
        out.write("% Debian packages: edge i -> j when package i depends on j; made by "
                  "examples/pagerank/make_dependency_graph.py\n")
        out.write(f"{len(names)} {len(names)} {edges}\n")
        for i, name in enumerate(names):
            for j in sorted(index[t] for t in depends.get(name, ())):
                out.write(f"{i + 1} {j + 1}\n")

    pm.write_atomically(args.output + ".mtx", write_matrix)
    pm.write_atomically(args.output + ".names.txt", lambda out: out.writelines(n + "\n" for n in names))
    print(f"{args.output}.mtx: {len(names)} nodes, {edges} edges", file=sys.stderr)


if __name__ == "__main__":
    main()
