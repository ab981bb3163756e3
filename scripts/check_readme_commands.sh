#!/usr/bin/env bash
# Fails unless .ci/run runs the README's two commands (the ```sh block under "## Two
# commands"), spelled as the README spells them and in the README's order, so that what the
# README tells a new user to run is what CI runs.
#   bash scripts/check_readme_commands.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

python3 - <<'PY'
import pathlib, re, sys

readme = pathlib.Path("README.md").read_text(encoding="utf-8")
section = re.search(r"^## Two commands\n(.*?)(?=^## )", readme, re.S | re.M)
block = section and re.search(r"^```sh\n(.*?)^```", section.group(1), re.S | re.M)
if not block:
    sys.exit('README.md: no ```sh block under "## Two commands"')
commands = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
commands = [c for c in commands if c]
if len(commands) != 2:
    sys.exit(f"README.md: expected two commands under \"## Two commands\", found {commands}")

ci = [line.strip() for line in pathlib.Path(".ci/run").read_text(encoding="utf-8").splitlines()]
position = 0
for command in commands:
    try:
        position = ci.index(command, position) + 1
    except ValueError:
        sys.exit(f".ci/run does not run the README's command {command!r} as a line of its own "
                 "(after the one before it)")
print("README commands: .ci/run runs", " then ".join(repr(c) for c in commands))
PY
