#!/usr/bin/env bash
# Checks that include/, tests/, examples/ and bench/ are formatted as .clang-format says.
#
#   bash scripts/check_format.sh          # check: lists the files that differ, fails if any
#   bash scripts/check_format.sh --fix    # reformat them in place
#
# clang-format 19 (Debian: clang-format-19): 14, Debian 12's default, mangles C++20
# requires-clauses and has not the options .clang-format sets for them. CORIO_CLANG_FORMAT
# names another binary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

format=${CORIO_CLANG_FORMAT:-}
if [[ -z $format ]]; then
    for candidate in clang-format-19 clang-format; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            [[ $("$candidate" --version) =~ version\ (19|[2-9][0-9])\. ]]; then
            format=$candidate
            break
        fi
    done
fi
if [[ -z $format ]]; then
    echo "check_format: needs clang-format 19 or newer (apt-get install clang-format-19)," \
        "or CORIO_CLANG_FORMAT=<binary>" >&2
    exit 1
fi

mapfile -t files < <(git ls-files 'include/*.hpp' 'tests/*.hpp' 'tests/*.cpp' 'examples/*.cpp' \
    'bench/*.hpp' 'bench/*.cpp')
if [[ ${1:-} == --fix ]]; then
    "$format" -i "${files[@]}"
    echo "check_format: formatted ${#files[@]} files with $("$format" --version)"
    exit 0
fi

bad=()
for file in "${files[@]}"; do
    "$format" --dry-run -Werror "$file" >/dev/null 2>&1 || bad+=("$file")
done
if [[ ${#bad[@]} -gt 0 ]]; then
    printf 'check_format: not formatted as .clang-format says: %s\n' "${bad[@]}" >&2
    echo "check_format: bash scripts/check_format.sh --fix reformats them" >&2
    exit 1
fi
echo "check_format: ${#files[@]} files formatted as .clang-format says ($("$format" --version))"
