#!/usr/bin/env bash
# Compiles the README's opening program with a plain compiler line, as a user without CMake
# would, runs it and checks that it prints what the README says it prints (the ```text block
# that follows the program).
#   bash scripts/check_readme_program.sh [compiler...]   # default: g++ clang++
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

corio_readme_program "$tmp/readme.cpp" "$tmp/expected.txt"

compilers=("$@")
[[ ${#compilers[@]} -gt 0 ]] || compilers=(g++ clang++)
for cxx in "${compilers[@]}"; do
    # The line the README gives for a build without CMake (epoll only: no liburing needed).
    command=("$cxx" -std=c++20 -O2 -Iinclude -pthread "$tmp/readme.cpp" -o "$tmp/readme")
    echo "+ ${command[*]}"
    "${command[@]}"
    "$tmp/readme" >"$tmp/actual.txt"
    if ! diff -u "$tmp/expected.txt" "$tmp/actual.txt"; then
        corio_die "the README program built with $cxx printed something else than the README says"
    fi
    echo "README program ($cxx): prints what the README says"
done
