#!/usr/bin/env python3
"""Extracts docs/tour.md's ```cpp blocks into one program per `## ` section.

The blocks of a section, in order, become the body of that program's main(); lines of a
block that start with `#include` move above main(). Prints the path of each program, one a line,
for tests/tour/CMakeLists.txt. A file is rewritten only when its text
changes, so an unchanged section is not recompiled.
"""
import pathlib
import re
import sys

PRELUDE = """// Generated from docs/tour.md by tests/tour/extract_tour.py; edit the tour, not this file.
#include <mgpu/mgpu.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include <unistd.h>
"""


def sections(text):
    title, blocks, block = None, [], None
    for number, line in enumerate(text.splitlines(), 1):
        if block is not None:
            if line.strip() == "```":
                blocks.append(block)
                block = None
            else:
                block.append((number, line))
        elif line.startswith("## "):
            if title and blocks:
                yield title, blocks
            title, blocks = line[3:].strip(), []
        elif line.strip() == "```cpp":
            if title is None:
                sys.exit("tour: a cpp block before the first '## ' section")
            block = []
    if block is not None:
        sys.exit("tour: an unterminated ```cpp block")
    if title and blocks:
        yield title, blocks


def program(source, title, blocks):
    includes, body = [], []
    for block in blocks:
        for number, line in block:
            if line.startswith("#include"):
                includes.append(line + "\n")
            else:
                # Each line says where it came from, so errors name the tour's lines.
                body.append(f'#line {number} "{source}"\n  {line}\n')
    return (PRELUDE + "".join(includes) + f"\n// {title}\nint main() {{\n" + "".join(body) +
            "  return 0;\n}\n")


def main():
    tour, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    for title, blocks in sections(tour.read_text(encoding="utf-8")):
        number = re.match(r"(\d+)", title)
        slug = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")
        name = f"tour_{slug}" if not number else f"tour_{int(number.group(1)):02d}_{slug[len(number.group(1)):].strip('_')}"
        path = out / f"{name}.cpp"
        text = program(tour.as_posix(), title, blocks)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        print(path.as_posix())


if __name__ == "__main__":
    main()
