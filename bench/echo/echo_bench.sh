#!/usr/bin/env bash
# The echo benchmark: one load generator driving each echo server in turn, on loopback.
#
#   bench/echo/echo_bench.sh [--brief] [--duration S] [--slices K] [--connections N] \
#       <echo_load> <plain_echo_server> <corio_echo_server>
#
# Builds nothing: give it the three programs built by bench/echo/CMakeLists.txt (the
# targets run_echo_benchmark and run_echo_benchmark_briefly do). It starts three servers,
# each pinned to CPU 0 (taskset), on ports the kernel chooses: the plain C epoll server, and
# corio's on epoll and on io_uring (CORIO_BACKEND). Then echo_load, pinned to CPU 1, drives
# them in turn: 50 connections, each sending a 64-byte message and waiting for its echo
# before sending the next, for S seconds per server (5; 1 with --brief), in K slices (5; 1
# with --brief) taken round-robin, so that a machine getting busier or quieter during the
# run weighs on every server alike. Around each slice it reads the server's CPU time (utime +
# stime, /proc/<pid>/stat). It prints requests per second and the server's CPU time per
# request. The load generator is the same C program for every server, so the server's CPU
# per request is the number to compare: what each server spends on top of the syscalls the
# plain C one makes. An idle server waits in the kernel and costs nothing meanwhile.
#
# A corio backend the kernel refuses (io_uring in some containers) is reported and skipped
# (the server exits with 77 then); any other failure makes the script exit non-zero.
# On a machine busy with other work, the numbers vary from run to run; running the whole
# script at a real-time priority (`chrt -f 10 bench/echo/echo_bench.sh ...`) steadies them
# (the kernel's real-time throttle then leaves each CPU 5% for other work, so every server
# looks a little slower than on an idle machine).
set -euo pipefail

usage() {
    sed -n '4,5p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

duration=5
slices=5
connections=50
while [[ $# -gt 0 ]]; do
    case $1 in
    --brief) duration=1 slices=1; shift ;;
    --duration) duration=${2:?}; shift 2 ;;
    --slices) slices=${2:?}; shift 2 ;;
    --connections) connections=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    -*) echo "echo_bench.sh: unknown option $1" >&2; usage ;;
    *) break ;;
    esac
done
[[ $# -eq 3 ]] || usage
load=$1 plain=$2 corio=$3
for program in "$load" "$plain" "$corio"; do
    [[ -x $program ]] || { echo "echo_bench.sh: $program is not an executable" >&2; exit 2; }
done
slice=$(awk -v d="$duration" -v k="$slices" 'BEGIN { if (d <= 0 || k < 1) exit 1; print d / k }') ||
    { echo "echo_bench.sh: bad --duration or --slices" >&2; exit 2; }

# Pinning: servers on CPU 0, load on CPU 1, when there are two CPUs and taskset.
server_pin=() load_pin=()
if command -v taskset >/dev/null 2>&1 && taskset -c 1 true 2>/dev/null; then
    server_pin=(taskset -c 0) load_pin=(taskset -c 1)
    pinning="servers on CPU 0, load on CPU 1"
else
    pinning="not pinned (needs taskset and two CPUs)"
fi
ticks_per_second=$(getconf CLK_TCK)

workdir=$(mktemp -d)
labels=() pids=() ports=() notes=()
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        [[ -n $pid ]] || continue
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$workdir"
}
trap cleanup EXIT

# utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/<pid>/stat; the
# name in field 2 may hold spaces, so the fields are counted after its closing ')').
cpu_ticks() {
    local stat fields
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    read -r -a fields <<<"$stat"
    echo $((fields[11] + fields[12]))
}

failed=0
# start <label> <env assignment or -> <server program>: starts a server and waits until it
# prints "port <n>"; a server that cannot start gets a note instead of a pid.
start() {
    local label=$1 env_assignment=$2 program=$3 index=${#labels[@]}
    local env_args=()
    [[ $env_assignment != - ]] && env_args=("$env_assignment")
    local out="$workdir/server$index.out" err="$workdir/server$index.err"
    : >"$out"
    env "${env_args[@]}" "${server_pin[@]}" "$program" 0 >"$out" 2>"$err" &
    local pid=$! port="" i
    for ((i = 0; i < 100; ++i)); do
        read -r _ port _ <"$out" 2>/dev/null || true
        [[ -n $port ]] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    labels+=("$label")
    if [[ -n $port ]]; then
        pids+=("$pid") ports+=("$port") notes+=("")
        return 0
    fi
    local status=0
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || status=$?
    pids+=("") ports+=("")
    local why
    why=$(head -c 200 "$err" | tr '\n' ' ')
    if [[ $status -eq 77 ]]; then  # the server's "this backend is unavailable here"
        notes+=("skipped: $why")
    else
        failed=1
        notes+=("FAILED to start: $why")
    fi
}

start "plain C epoll" - "$plain"
start "corio epoll" CORIO_BACKEND=epoll "$corio"
start "corio io_uring" CORIO_BACKEND=io_uring "$corio"

requests=() seconds=() ticks=()
for i in "${!labels[@]}"; do requests+=(0) seconds+=(0) ticks+=(0); done
for ((round = 0; round < slices; ++round)); do
    for i in "${!labels[@]}"; do
        [[ -z ${notes[$i]} ]] || continue
        before=$(cpu_ticks "${pids[$i]}")
        if ! result=$("${load_pin[@]}" "$load" -c "$connections" -d "$slice" 127.0.0.1 \
            "${ports[$i]}"); then
            failed=1
            notes[i]="FAILED (see the load generator's message above)"
            continue
        fi
        after=$(cpu_ticks "${pids[$i]}")
        requests[i]=$((requests[i] + $(sed -n 's/.*requests=\([0-9]*\) .*/\1/p' <<<"$result")))
        seconds[i]=$(awk -v a="${seconds[$i]}" -v b="$(sed -n \
            's/.*seconds=\([0-9.]*\) .*/\1/p' <<<"$result")" 'BEGIN { print a + b }')
        ticks[i]=$((ticks[i] + after - before))
    done
done

printf '\necho benchmark: %s connections, 64-byte messages, %s s per server in %s slices, %s\n' \
    "$connections" "$duration" "$slices" "$pinning"
printf '%-16s %12s %18s %11s\n' "server" "requests/s" "server CPU us/req" "server CPU"
for i in "${!labels[@]}"; do
    if [[ -n ${notes[$i]} ]]; then
        printf '%-16s %s\n' "${labels[$i]}" "${notes[$i]}"
        continue
    fi
    awk -v label="${labels[$i]}" -v r="${requests[$i]}" -v s="${seconds[$i]}" \
        -v t="${ticks[$i]}" -v hz="$ticks_per_second" 'BEGIN {
            cpu = t / hz
            printf "%-16s %12.0f %18.2f %10.0f%%\n", label, r / s, cpu * 1e6 / r, 100 * cpu / s
        }'
done
exit "$failed"
