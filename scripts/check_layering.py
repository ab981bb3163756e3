#!/usr/bin/env python3
"""Checks corio's layering from the includes: which folder may include which.

  python3 scripts/check_layering.py

The headers under include/corio/ sit on floors, lowest first (docs/architecture.md draws them):

  0  ground floor   config.hpp, errors.hpp, detail/      the standard library only
  1  reactor        reactor/                             the concept, epoll, io_uring
  2  core           coro, task, future, event_loop,      tasks, the loop, the combinators,
                    sleep, gather, wait, ..., impl/      and their shared machinery (impl/)
  3  sync           sync/                                locks, events, queues, ...
  4  net            net/                                 streams, servers, datagrams, ...
  5  system         system/                              processes, signals, files
  6  debug          debug/                               call graph, virtual time
  7  entry          run.hpp, core.hpp, corio.hpp, tls.hpp, the program's way in, and
                    shard/                               one loop per core

The rules:
- a header includes corio headers only from its own floor and the floors below;
- a topic's `detail/` (`sync/detail/`, `net/detail/`, ...) is that topic's: only headers of
  the same topic include it (the top `detail/` and `impl/` are for everyone above them);
- a corio include is spelt "corio/...", names a header that exists, and every header starts
  with `#pragma once`;
- no header is longer than MAX_LINES lines: a longer one holds more than one concept.

Each violation is printed as file:line and the rule; the exit status is 1 if there was one.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
INCLUDE = ROOT / "include"
MAX_LINES = 700

FLOORS = ["ground floor", "reactor", "core", "sync", "net", "system", "debug", "entry"]
TOPIC_FLOOR = {"detail": 0, "reactor": 1, "impl": 2, "sync": 3, "net": 4, "system": 5, "debug": 6,
               "shard": 7}
TOP_FLOOR = {"config.hpp": 0, "errors.hpp": 0, "run.hpp": 7, "core.hpp": 7, "corio.hpp": 7,
             "tls.hpp": 7}
CORIO_INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])(corio/[^>"]+)[>"]', re.M)


def floor_of(rel):
    """The floor of a header, from its path under include/ ("corio/net/stream.hpp")."""
    parts = rel.split("/")[1:]
    if len(parts) == 1:
        return TOP_FLOOR.get(parts[0], 2)
    return TOPIC_FLOOR.get(parts[0])


def private_topic(rel):
    """The topic whose private detail/ holds `rel` ("net" for corio/net/detail/x.hpp), or None."""
    parts = rel.split("/")[1:]
    if len(parts) >= 3 and parts[1] == "detail":
        return parts[0]
    return None


def topic_of(rel):
    parts = rel.split("/")[1:]
    return parts[0] if len(parts) > 1 else None


def check():
    problems = []
    headers = sorted(INCLUDE.rglob("*.hpp"))
    known = {h.relative_to(INCLUDE).as_posix() for h in headers}
    for header in headers:
        rel = header.relative_to(INCLUDE).as_posix()
        text = header.read_text(encoding="utf-8")
        lines = text.count("\n")
        floor = floor_of(rel)
        if floor is None:
            problems.append(f"include/{rel}: in no known folder ({', '.join(TOPIC_FLOOR)})")
            continue
        if not text.startswith("#pragma once"):
            problems.append(f"include/{rel}:1: does not start with #pragma once")
        if lines > MAX_LINES:
            problems.append(f"include/{rel}: {lines} lines, more than {MAX_LINES}: split it")
        for match in CORIO_INCLUDE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            where = f"include/{rel}:{line}"
            target = match.group(2)
            if match.group(1) != '"':
                problems.append(f"{where}: spell corio includes \"{target}\"")
            if target not in known:
                problems.append(f"{where}: {target} does not exist")
                continue
            target_floor = floor_of(target)
            if target_floor > floor:
                problems.append(
                    f"{where}: {rel} ({FLOORS[floor]}) includes {target} "
                    f"({FLOORS[target_floor]}), a floor above it")
            owner = private_topic(target)
            if owner is not None and topic_of(rel) != owner:
                problems.append(f"{where}: {target} is private to {owner}/")
    return problems, len(headers)


def main():
    problems, count = check()
    for problem in problems:
        print(problem)
    if problems:
        print(f"check_layering: {len(problems)} problem(s) in {count} headers")
        return 1
    print(f"check_layering: {count} headers, layering and sizes as docs/architecture.md says")
    return 0


if __name__ == "__main__":
    sys.exit(main())
