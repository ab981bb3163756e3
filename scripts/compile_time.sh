#!/usr/bin/env bash
# Prints the wall time and peak memory of compiling (-c, -O2) the README's opening program,
# a file that only includes <corio/corio.hpp>, and the same for <asio.hpp> (Debian's
# libasio-dev) for comparison, with g++ and clang++. Compile time is part of the product.
#   bash scripts/compile_time.sh [runs]   # each figure the best of `runs` (default 1)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

runs=${1:-1}
[[ -x /usr/bin/time ]] || corio_die "/usr/bin/time is missing (Debian package: time)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

corio_readme_program "$tmp/readme.cpp"
printf '#include <corio/corio.hpp>\n' >"$tmp/corio_include.cpp"
printf '#include <asio.hpp>\n' >"$tmp/asio_include.cpp"

# measure <compiler> <source> [flags...]: "<seconds> <peak MiB>", the best of $runs.
measure() {
    local cxx=$1 source=$2 best_s="" best_m="" i line
    shift 2
    for ((i = 0; i < runs; ++i)); do
        /usr/bin/time -f '%e %M' -o "$tmp/time.txt" \
            "$cxx" -std=c++20 -O2 -Iinclude -pthread -DCORIO_HAS_URING=1 "$@" \
            -c "$source" -o "$tmp/out.o"
        read -r line <"$tmp/time.txt"
        local s=${line% *} kib=${line#* }
        if [[ -z $best_s ]] || awk "BEGIN { exit !($s < $best_s) }"; then best_s=$s; fi
        if [[ -z $best_m ]] || ((kib < best_m)); then best_m=$kib; fi
    done
    printf '%6.2f s %6d MiB' "$best_s" "$((best_m / 1024))"
}

printf '%-10s %-36s %s\n' compiler "file (-c -O2)" "wall, peak memory"
for cxx in g++ clang++; do
    printf '%-10s %-36s %s\n' "$cxx" "README program" "$(measure "$cxx" "$tmp/readme.cpp")"
    printf '%-10s %-36s %s\n' "$cxx" "#include <corio/corio.hpp>" \
        "$(measure "$cxx" "$tmp/corio_include.cpp")"
    if [[ -e /usr/include/asio.hpp ]]; then
        printf '%-10s %-36s %s\n' "$cxx" "#include <asio.hpp>" \
            "$(measure "$cxx" "$tmp/asio_include.cpp")"
    else
        printf '%-10s %-36s %s\n' "$cxx" "#include <asio.hpp>" "(libasio-dev not installed)"
    fi
done
