#!/usr/bin/env bash
# The echo benchmark: one load generator driving each echo server in turn, on loopback.
#
#   bench/echo/echo_bench.sh [--brief] [--duration S] [--slices K] [--connections N] \
#       [--shards N] [--client epoll|io_uring|both] \
#       <echo_load> <plain_echo_server> <corio_echo_server>
#
# Builds nothing: give it the three programs built by bench/echo/CMakeLists.txt (the
# targets run_echo_benchmark and run_echo_benchmark_briefly do). It starts five servers on
# ports the kernel chooses: the plain C epoll server, and corio's on epoll and on io_uring
# (CORIO_BACKEND), each pinned to CPU 0 (taskset); and corio's on each backend again with
# N shards (2; `--shards 1` leaves them out): `corio_echo_server --shards N`, N loops
# (run_sharded, shard i pinned to CPU i) sharing the port with SO_REUSEPORT, allowed every CPU.
# Then echo_load, pinned to CPU 1, drives them in turn: 50 connections, each sending a 64-byte
# message and waiting for its echo before sending the next, for S seconds per server (5; 1
# with --brief), in K slices (5; 1 with --brief) taken round-robin, so that a machine getting
# busier or quieter during the run weighs on every server alike. It does so once as the epoll
# client (a recv and a send system call per message) and once as the io_uring client
# (`echo_load -u`: sends and receives submitted in batches, one io_uring_enter per batch),
# unless --client says one. Around each slice it reads the server's CPU time (utime + stime of
# all its threads, /proc/<pid>/stat). It prints requests per second, the server's CPU time
# per request, and the load generator's (its getrusage). The load generator is the same C
# program for every server, so the server's CPU per request is the number to compare: what
# each server spends on top of the syscalls the plain C one makes. An idle server waits in
# the kernel and costs nothing meanwhile.
#
# On two CPUs, the sharded servers share them with the load generator (shard 1 and echo_load
# on CPU 1): their requests/s says what a second loop is worth when nothing is left over for
# it, not how shards scale; their CPU per request (both shards together) is comparable.
#
# A corio backend the kernel refuses (io_uring in some containers), or an io_uring client it
# refuses, is reported and skipped (status 77 then); any other failure makes the script exit
# non-zero. On a machine busy with other work, the numbers vary from run to run; running the
# whole script at a real-time priority (`chrt -f 10 bench/echo/echo_bench.sh ...`) steadies
# them (the kernel's real-time throttle then leaves each CPU 5% for other work, so every
# server looks a little slower than on an idle machine).
set -euo pipefail

usage() {
    sed -n '4,6p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

duration=5
slices=5
connections=50
shards=2
client=both
while [[ $# -gt 0 ]]; do
    case $1 in
    --brief) duration=1 slices=1; shift ;;
    --duration) duration=${2:?}; shift 2 ;;
    --slices) slices=${2:?}; shift 2 ;;
    --connections) connections=${2:?}; shift 2 ;;
    --shards) shards=${2:?}; shift 2 ;;
    --client) client=${2:?}; shift 2 ;;
    -h | --help) usage ;;
    -*) echo "echo_bench.sh: unknown option $1" >&2; usage ;;
    *) break ;;
    esac
done
[[ $# -eq 3 ]] || usage
[[ $shards =~ ^[1-9][0-9]*$ ]] || { echo "echo_bench.sh: bad --shards $shards" >&2; exit 2; }
case $client in
epoll) clients=(epoll) ;;
io_uring) clients=(io_uring) ;;
both) clients=(epoll io_uring) ;;
*) echo "echo_bench.sh: --client is epoll, io_uring or both, not $client" >&2; exit 2 ;;
esac
load=$1 plain=$2 corio=$3
for program in "$load" "$plain" "$corio"; do
    [[ -x $program ]] || { echo "echo_bench.sh: $program is not an executable" >&2; exit 2; }
done
slice=$(awk -v d="$duration" -v k="$slices" 'BEGIN { if (d <= 0 || k < 1) exit 1; print d / k }') ||
    { echo "echo_bench.sh: bad --duration or --slices" >&2; exit 2; }

# Pinning: servers on CPU 0 (the sharded ones on every CPU, a shard per CPU), load on CPU 1,
# when there are two CPUs and taskset.
server_cpus="" load_pin=()
if command -v taskset >/dev/null 2>&1 && taskset -c 1 true 2>/dev/null; then
    server_cpus=0 load_pin=(taskset -c 1)
    pinning="servers on CPU 0, load on CPU 1"
    if [[ $shards -gt 1 ]]; then
        pinning+="; $shards shards: shard i on CPU i, sharing them with the load"
    fi
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

# utime + stime of a process (all its threads), in clock ticks (fields 14 and 15 of
# /proc/<pid>/stat; the name in field 2 may hold spaces, so the fields are counted after its
# closing ')').
cpu_ticks() {
    local stat fields
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    read -r -a fields <<<"$stat"
    echo $((fields[11] + fields[12]))
}

failed=0
# start <label> <env assignment or -> <pinned: yes or no> <server program> [options...]:
# starts a server (pinned to CPU 0, or allowed every CPU the script may use) and waits until it prints
# "port <n>"; a server that cannot start gets a note instead of a pid.
start() {
    local label=$1 env_assignment=$2 pinned=$3 program=$4 index=${#labels[@]}
    shift 4
    local env_args=() pin=()
    [[ $env_assignment != - ]] && env_args=("$env_assignment")
    [[ -n $server_cpus && $pinned == yes ]] && pin=(taskset -c "$server_cpus")
    local out="$workdir/server$index.out" err="$workdir/server$index.err"
    : >"$out"
    env "${env_args[@]}" "${pin[@]}" "$program" "$@" 0 >"$out" 2>"$err" &
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

start "plain C epoll" - yes "$plain"
start "corio epoll" CORIO_BACKEND=epoll yes "$corio"
start "corio io_uring" CORIO_BACKEND=io_uring yes "$corio"
if [[ $shards -gt 1 ]]; then
    start "corio epoll x$shards" CORIO_BACKEND=epoll no "$corio" --shards "$shards"
    start "corio io_uring x$shards" CORIO_BACKEND=io_uring no "$corio" --shards "$shards"
fi

# One run per server and client: its server, its client, and what it measured.
run_server=() run_client=() run_notes=() requests=() seconds=() ticks=() load_us=()
for c in "${clients[@]}"; do
    for i in "${!labels[@]}"; do
        run_server+=("$i") run_client+=("$c") run_notes+=("${notes[$i]}")
        requests+=(0) seconds+=(0) ticks+=(0) load_us+=(0)
    done
done
for ((round = 0; round < slices; ++round)); do
    for r in "${!run_server[@]}"; do
        [[ -z ${run_notes[$r]} ]] || continue
        i=${run_server[$r]}
        client_args=()
        [[ ${run_client[$r]} == io_uring ]] && client_args=(-u)
        before=$(cpu_ticks "${pids[$i]}")
        status=0
        result=$("${load_pin[@]}" "$load" "${client_args[@]}" -c "$connections" -d "$slice" \
            127.0.0.1 "${ports[$i]}" 2>"$workdir/load.err") || status=$?
        if [[ $status -ne 0 ]]; then
            why=$(head -c 200 "$workdir/load.err" | tr '\n' ' ')
            if [[ $status -eq 77 ]]; then  # the io_uring client, refused here
                run_notes[r]="skipped: $why"
            else
                failed=1
                run_notes[r]="FAILED: $why"
            fi
            continue
        fi
        after=$(cpu_ticks "${pids[$i]}")
        requests[r]=$((requests[r] + $(sed -n 's/.*requests=\([0-9]*\) .*/\1/p' <<<"$result")))
        seconds[r]=$(awk -v a="${seconds[$r]}" -v b="$(sed -n \
            's/.*seconds=\([0-9.]*\) .*/\1/p' <<<"$result")" 'BEGIN { print a + b }')
        ticks[r]=$((ticks[r] + after - before))
        load_us[r]=$((load_us[r] + $(sed -n 's/.*load_cpu_us=\([0-9]*\).*/\1/p' <<<"$result")))
    done
done

printf '\necho benchmark: %s connections, 64-byte messages, %s s per server and client in %s slices,\n' \
    "$connections" "$duration" "$slices"
printf '  %s\n' "$pinning"
printf '%-18s %-9s %11s %18s %11s %16s\n' "server" "client" "requests/s" "server CPU us/req" \
    "server CPU" "load CPU us/req"
for r in "${!run_server[@]}"; do
    label=${labels[${run_server[$r]}]}
    if [[ -n ${run_notes[$r]} ]]; then
        printf '%-18s %-9s %s\n' "$label" "${run_client[$r]}" "${run_notes[$r]}"
        continue
    fi
    awk -v label="$label" -v client="${run_client[$r]}" -v r="${requests[$r]}" \
        -v s="${seconds[$r]}" -v t="${ticks[$r]}" -v hz="$ticks_per_second" \
        -v load="${load_us[$r]}" 'BEGIN {
            cpu = t / hz
            printf "%-18s %-9s %11.0f %18.2f %10.0f%% %16.2f\n", label, client, r / s,
                cpu * 1e6 / r, 100 * cpu / s, load / r
        }'
done
exit "$failed"
