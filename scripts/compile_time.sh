#!/usr/bin/env bash
# Prints the wall time and peak memory of compiling (-c, -O2) the README's opening program, a
# file that only includes <corio/core.hpp>, one that only includes <corio/corio.hpp>, and one
# that only includes <asio.hpp> (Debian's libasio-dev), with g++ and clang++. Compile time is
# part of the product.
#   bash scripts/compile_time.sh [runs]   # each figure the best of `runs` (default 1)
#
# With <asio.hpp> present, each corio figure must also stay under a ceiling relative to asio's
# in the same run (so that the load of a shared machine cancels out): CEILINGS below, about half
# again the ratios measured when they were set, so that a regression by half fails and noise
# does not. CORIO_COMPILE_CEILINGS=0 only prints.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

runs=${1:-1}
[[ -x /usr/bin/time ]] || corio_die "/usr/bin/time is missing (Debian package: time)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

corio_readme_program "$tmp/readme.cpp"
printf '#include <corio/core.hpp>\n' >"$tmp/core_include.cpp"
printf '#include <corio/corio.hpp>\n' >"$tmp/corio_include.cpp"
printf '#include <asio.hpp>\n' >"$tmp/asio_include.cpp"

# The ceilings, as multiples of `#include <asio.hpp>` with the same compiler. Measured on
# 2026-12-04 (g++ 12 / clang 14, the 2-core VM, best of 3): README 2.17 / 1.83, core.hpp
# 0.68 / 0.69, corio.hpp 0.94 / 1.03.
declare -A CEILINGS=([readme.cpp]=3.3 [core_include.cpp]=1.05 [corio_include.cpp]=1.55)

# measure <compiler> <source>: sets `seconds` and `mib`, the best of $runs.
measure() {
    local cxx=$1 source=$2 i line
    seconds="" mib=""
    for ((i = 0; i < runs; ++i)); do
        /usr/bin/time -f '%e %M' -o "$tmp/time.txt" \
            "$cxx" -std=c++20 -O2 -Iinclude -pthread -DCORIO_HAS_URING=1 \
            -c "$source" -o "$tmp/out.o"
        read -r line <"$tmp/time.txt"
        local s=${line% *} kib=${line#* }
        if [[ -z $seconds ]] || awk "BEGIN { exit !($s < $seconds) }"; then seconds=$s; fi
        if [[ -z $mib ]] || ((kib / 1024 < mib)); then mib=$((kib / 1024)); fi
    done
}

failed=0
printf '%-10s %-30s %-22s %s\n' compiler "file (-c -O2)" "wall, peak memory" "x asio (ceiling)"
for cxx in g++ clang++; do
    asio_seconds=""
    if [[ -e /usr/include/asio.hpp ]]; then
        measure "$cxx" "$tmp/asio_include.cpp"
        asio_seconds=$seconds asio_mib=$mib
    fi
    for file in readme.cpp core_include.cpp corio_include.cpp; do
        case $file in
            readme.cpp) label="README program" ;;
            core_include.cpp) label="#include <corio/core.hpp>" ;;
            corio_include.cpp) label="#include <corio/corio.hpp>" ;;
        esac
        measure "$cxx" "$tmp/$file"
        ratio="" verdict=""
        if [[ -n $asio_seconds ]]; then
            ratio=$(awk "BEGIN { printf \"%.2f\", $seconds / $asio_seconds }")
            verdict=" ($ratio, at most ${CEILINGS[$file]})"
            if [[ ${CORIO_COMPILE_CEILINGS:-1} != 0 ]] &&
                awk "BEGIN { exit !($ratio > ${CEILINGS[$file]}) }"; then
                verdict+="  ABOVE THE CEILING"
                failed=1
            fi
        fi
        printf '%-10s %-30s %6.2f s %6d MiB      %s\n' "$cxx" "$label" "$seconds" "$mib" "$verdict"
    done
    if [[ -n $asio_seconds ]]; then
        printf '%-10s %-30s %6.2f s %6d MiB\n' "$cxx" "#include <asio.hpp>" "$asio_seconds" \
            "$asio_mib"
    else
        printf '%-10s %-30s %s\n' "$cxx" "#include <asio.hpp>" "(libasio-dev not installed)"
    fi
done
if ((failed)); then
    corio_die "a compile time is above its ceiling (see the table; a regression, or a ceiling" \
        "to revisit in scripts/compile_time.sh with the figures that justify it)"
fi
