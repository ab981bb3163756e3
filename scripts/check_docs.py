#!/usr/bin/env python3
"""Checks that the C++ in the documentation is code that CI compiles.

  python3 scripts/check_docs.py

Every ```cpp block of examples/README.md and examples/README.ru.md must be a run of
consecutive lines of one of examples/*.cpp, copied verbatim (the examples are built and
run by CI, so a block that is found there is compiled and run too). A block that is not
found is reported with the closest example and the first line that differs, so that a
README cannot drift from the code it shows.

The README's opening program is checked by scripts/check_readme_program.sh: it is a whole
program, compiled and run on its own.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
READMES = [ROOT / "examples" / "README.md", ROOT / "examples" / "README.ru.md"]
# A fence may be indented (a block inside a list item): its lines carry the same indent.
BLOCK = re.compile(r"^( *)```cpp\n(.*?)^\1```", re.S | re.M)


def blocks(path):
    text = path.read_text(encoding="utf-8")
    for match in BLOCK.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        indent = len(match.group(1))
        yield line, [l[indent:] for l in match.group(2).rstrip("\n").split("\n")]


def find(block, sources):
    """The source holding `block` as consecutive lines, or (None, best guess, line)."""
    best = (None, -1, "")
    for name, lines in sources.items():
        for start, line in enumerate(lines):
            if line != block[0]:
                continue
            same = 0
            while (same < len(block) and start + same < len(lines)
                   and lines[start + same] == block[same]):
                same += 1
            if same == len(block):
                return name, None
            if same > best[1]:
                best = (name, same, block[same])
    return None, best


def main():
    sources = {p.name: p.read_text(encoding="utf-8").split("\n")
               for p in sorted((ROOT / "examples").glob("*.cpp"))}
    checked = failed = 0
    for readme in READMES:
        for line, block in blocks(readme):
            checked += 1
            name, best = find(block, sources)
            if name is not None:
                continue
            failed += 1
            where = f"{readme.relative_to(ROOT)}:{line}"
            if best[0] is None:
                print(f"{where}: block not found in any example (first line: {block[0]!r})")
            else:
                print(f"{where}: block differs from examples/{best[0]} at its line "
                      f"{best[1] + 1}: {best[2]!r}")
    print(f"docs: {checked} C++ blocks checked against the examples, {failed} not found")
    if checked == 0:
        print("docs: no C++ blocks found; is the README where this script looks?")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
