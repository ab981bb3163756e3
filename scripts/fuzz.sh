#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/*_fuzz.cpp) in build/fuzz with clang++ and runs each
# for CORIO_FUZZ_SECONDS (default 20) over its seed corpus, one after the other; then prints
# one line per fuzzer: executions, executions per second, coverage (cov: edges, ft: features)
# and the size of the corpus it ended with.
#
#   bash scripts/fuzz.sh                           # every fuzzer, 20 s each
#   CORIO_FUZZ_SECONDS=300 bash scripts/fuzz.sh stream_reader   # one fuzzer, 5 minutes
#
# What a run finds goes to build/fuzz/tests/fuzz/found/<name>/ (never into the corpus in the
# repo); a crashing input to build/fuzz/tests/fuzz/<name>-crash-*, and the script then exits
# non-zero, naming it. Reproduce with: build/fuzz/tests/fuzz/<name>_fuzz <that file>.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

export CORIO_WERROR=${CORIO_WERROR:-1}
seconds=${CORIO_FUZZ_SECONDS:-20}
[[ $seconds =~ ^[1-9][0-9]*$ ]] || corio_die "CORIO_FUZZ_SECONDS must be a number of seconds, not '$seconds'"

command -v clang++ >/dev/null 2>&1 ||
    corio_die "the fuzzers need clang++ (libFuzzer is clang's -fsanitize=fuzzer): apt-get install clang"

dir=build/fuzz
out="$dir/tests/fuzz"

names=("$@")
if [[ ${#names[@]} -eq 0 ]]; then
    for source in tests/fuzz/*_fuzz.cpp; do
        [[ -e $source ]] || continue
        names+=("$(basename "$source" _fuzz.cpp)")
    done
fi
[[ ${#names[@]} -gt 0 ]] || corio_die "no tests/fuzz/*_fuzz.cpp"
for name in "${names[@]}"; do
    [[ -e tests/fuzz/${name}_fuzz.cpp ]] || corio_die "no fuzzer tests/fuzz/${name}_fuzz.cpp"
done

corio_banner "configure $dir (clang++, libFuzzer with ASan and UBSan)"
corio_configure . "$dir" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCORIO_BUILD_TESTS=OFF -DCORIO_BUILD_EXAMPLES=OFF -DCORIO_BUILD_BENCHMARKS=OFF \
    -DCORIO_BUILD_FUZZERS=ON
corio_banner "build"
targets=()
for name in "${names[@]}"; do targets+=("${name}_fuzz"); done
cmake --build "$dir" -j2 --target "${targets[@]}"

# stat_of <log> <pattern>: the number after "<pattern>" in libFuzzer's final statistics.
stat_of() {
    sed -n "s/^$2:[[:space:]]*\([0-9]*\).*/\1/p" "$1" | tail -n 1
}
# or_dash <value>: the value, or "-" when the log did not have it (a crash before any status).
or_dash() {
    printf '%s\n' "${1:--}"
}
# status_field <log> <field>: the number after "<field>: " in libFuzzer's last status line
# ("#N DONE cov: X ft: Y corp: Z/..."; the last "#N ..." line if it stopped before DONE).
status_field() {
    grep -E '^#[0-9]+' "$1" | tail -n 1 | sed -n "s/.* $2: \([0-9]*\).*/\1/p"
}

summary=()
crashes=()
for name in "${names[@]}"; do
    found="$out/found/$name"
    log="$out/$name.log"
    rm -rf "$found"
    mkdir -p "$found"
    corio_banner "${name}_fuzz: ${seconds} s over tests/fuzz/corpus/$name (log: $log)"
    rc=0
    "$out/${name}_fuzz" "$found" "tests/fuzz/corpus/$name" -max_total_time="$seconds" \
        -timeout=10 -print_final_stats=1 -artifact_prefix="$out/$name-" >"$log" 2>&1 || rc=$?
    tail -n 5 "$log"
    line=$(printf '%-22s %-7s %10s execs %7s exec/s  cov %6s  ft %7s  corpus %6s' "${name}_fuzz" \
        "$([[ $rc -eq 0 ]] && echo ok || echo CRASHED)" \
        "$(or_dash "$(stat_of "$log" stat::number_of_executed_units)")" \
        "$(or_dash "$(stat_of "$log" stat::average_exec_per_sec)")" \
        "$(or_dash "$(status_field "$log" cov)")" "$(or_dash "$(status_field "$log" ft)")" \
        "$(or_dash "$(status_field "$log" corp)")")
    summary+=("$line")
    if [[ $rc -ne 0 ]]; then
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        crashes+=("${name}_fuzz (exit $rc): input ${artifact:-not written, see $log}; reproduce: $out/${name}_fuzz ${artifact:-<input>}")
    fi
done

corio_banner "summary (${seconds} s each)"
printf '  %s\n' "${summary[@]}"
if [[ ${#crashes[@]} -gt 0 ]]; then
    printf '\ncorio: fuzzers failed:\n' >&2
    printf '  %s\n' "${crashes[@]}" >&2
    exit 1
fi
echo "corio: no fuzzer found anything."
