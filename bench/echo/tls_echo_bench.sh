#!/usr/bin/env bash
# The TLS echo benchmark: one TLS load generator driving each TLS echo server in turn.
#
#   bench/echo/tls_echo_bench.sh [--brief] [--duration S] [--slices K] [--connections N] \
#       <tls_echo_load> <tls_plain_echo_server> <corio_tls_echo_server> \
#       [<echo_load> <corio_echo_server>]
#
# echo_bench.sh over TLS 1.3. Builds nothing: give it the programs built by
# bench/echo/CMakeLists.txt (the targets run_tls_echo_benchmark and
# run_tls_echo_benchmark_briefly do). It makes a throwaway self-signed certificate (P-256)
# with `openssl req` in a temporary directory, removed at exit, and starts three servers,
# each pinned to CPU 0 (taskset), on ports the kernel chooses: the plain C OpenSSL + epoll
# server, and corio's on epoll and on io_uring (CORIO_BACKEND); given the last two programs,
# also corio's plain (no TLS) server on epoll, for reference, driven by echo_load. Then the
# load generator, pinned to CPU 1, drives them in turn: 50 connections, each sending a 64-byte
# message and waiting for its echo before sending the next, for S seconds per server (5; 1
# with --brief), in K slices (5; 1 with --brief) taken round-robin, so that a machine getting
# busier or quieter during the run weighs on every server alike. Each slice opens its own
# connections; their TLS handshakes (and one echo each) are done before the clock starts, and
# tls_echo_load reads the server's CPU time (utime + stime, /proc/<pid>/stat) when the clock
# starts and stops, so that the handshakes are not counted (for the plain server, the script
# reads it around echo_load, as echo_bench.sh does). It prints requests per second, the
# server's CPU time per request, and both as ratios to the plain C server's: the load
# generator is the same C program for every TLS server, so the server's CPU per request is the
# number to compare. The load generator does not verify the server's certificate (a benchmark
# on loopback with a throwaway certificate); the cipher suite is OpenSSL's default choice.
#
# A corio backend the kernel refuses (io_uring in some containers) is reported and skipped
# (the server exits with 77 then); any other failure makes the script exit non-zero.
# On a busy machine the numbers vary from run to run; `chrt -f 10` steadies them (see
# echo_bench.sh).
set -euo pipefail

usage() {
    sed -n '4,6p' "$0" | sed 's/^# \{0,1\}//' >&2
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
    -*) echo "tls_echo_bench.sh: unknown option $1" >&2; usage ;;
    *) break ;;
    esac
done
[[ $# -eq 3 || $# -eq 5 ]] || usage
tls_load=$1 plain=$2 corio=$3 load=${4:-} corio_plain=${5:-}
for program in "$@"; do
    [[ -x $program ]] || { echo "tls_echo_bench.sh: $program is not an executable" >&2; exit 2; }
done
command -v openssl >/dev/null 2>&1 ||
    { echo "tls_echo_bench.sh: needs the openssl program (Debian: openssl)" >&2; exit 2; }
slice=$(awk -v d="$duration" -v k="$slices" 'BEGIN { if (d <= 0 || k < 1) exit 1; print d / k }') ||
    { echo "tls_echo_bench.sh: bad --duration or --slices" >&2; exit 2; }

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
labels=() pids=() ports=() notes=() loads=()
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

# The certificate and its key: made here, for this run only, never kept.
cert="$workdir/cert.pem" key="$workdir/key.pem"
if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$key" -out "$cert" -days 2 -subj /CN=localhost >"$workdir/req.out" 2>&1; then
    cat "$workdir/req.out" >&2
    echo "tls_echo_bench.sh: openssl req could not make the certificate" >&2
    exit 1
fi

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
# start <label> <env assignment or -> <load program> <server program> [args...]: starts a
# server and waits until it prints "port <n>"; a server that cannot start gets a note
# instead of a pid.
start() {
    local label=$1 env_assignment=$2 load_program=$3 index=${#labels[@]}
    shift 3
    local env_args=()
    [[ $env_assignment != - ]] && env_args=("$env_assignment")
    local out="$workdir/server$index.out" err="$workdir/server$index.err"
    : >"$out"
    env "${env_args[@]}" "${server_pin[@]}" "$@" >"$out" 2>"$err" &
    local pid=$! port="" i
    for ((i = 0; i < 100; ++i)); do
        read -r _ port _ <"$out" 2>/dev/null || true
        [[ -n $port ]] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    labels+=("$label") loads+=("$load_program")
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

start "C OpenSSL epoll" - "$tls_load" "$plain" "$cert" "$key" 0
start "corio epoll" CORIO_BACKEND=epoll "$tls_load" "$corio" "$cert" "$key" 0
start "corio io_uring" CORIO_BACKEND=io_uring "$tls_load" "$corio" "$cert" "$key" 0
if [[ -n $corio_plain ]]; then
    start "corio epoll, no TLS" CORIO_BACKEND=epoll "$load" "$corio_plain" 0
fi

requests=() seconds=() ticks=()
tls_line=""
for i in "${!labels[@]}"; do requests+=(0) seconds+=(0) ticks+=(0); done
for ((round = 0; round < slices; ++round)); do
    for i in "${!labels[@]}"; do
        [[ -z ${notes[$i]} ]] || continue
        pid_args=()
        [[ ${loads[$i]} == "$tls_load" ]] && pid_args=(-p "${pids[$i]}")
        before=$(cpu_ticks "${pids[$i]}")
        if ! result=$("${load_pin[@]}" "${loads[$i]}" -c "$connections" -d "$slice" \
            "${pid_args[@]}" 127.0.0.1 "${ports[$i]}"); then
            failed=1
            notes[i]="FAILED (see the load generator's message above)"
            continue
        fi
        after=$(cpu_ticks "${pids[$i]}")
        requests[i]=$((requests[i] + $(sed -n 's/.*requests=\([0-9]*\) .*/\1/p' <<<"$result")))
        seconds[i]=$(awk -v a="${seconds[$i]}" -v b="$(sed -n \
            's/.*seconds=\([0-9.]*\) .*/\1/p' <<<"$result")" 'BEGIN { print a + b }')
        if [[ ${#pid_args[@]} -gt 0 ]]; then
            # The server's CPU while the clock ran, handshakes left out (tls_echo_load -p).
            ticks[i]=$((ticks[i] + $(sed -n 's/.*server_ticks=\([0-9]*\).*/\1/p' <<<"$result")))
            [[ -n $tls_line ]] ||
                tls_line=$(sed -n 's/.*\(protocol=.*\)/\1/p' <<<"$result" | tr '=' ' ')
        else
            ticks[i]=$((ticks[i] + after - before))
        fi
    done
done

printf '\nTLS echo benchmark: %s connections, 64-byte messages, %s s per server in %s slices, ' \
    "$connections" "$duration" "$slices"
printf '%s\n' "$pinning"
printf '(%s; certificate not verified; handshakes not timed nor counted)\n' \
    "${tls_line:-no TLS connection made}"
printf '%-20s %12s %18s %11s %11s %14s\n' "server" "requests/s" "server CPU us/req" \
    "server CPU" "req/s vs C" "CPU/req vs C"
# The plain C server's figures, the base of the ratios (when it ran).
base_rate="" base_cpu=""
if [[ -z ${notes[0]} && ${requests[0]} -gt 0 ]]; then
    base_rate=$(awk -v r="${requests[0]}" -v s="${seconds[0]}" 'BEGIN { print r / s }')
    base_cpu=$(awk -v r="${requests[0]}" -v t="${ticks[0]}" -v hz="$ticks_per_second" \
        'BEGIN { print t / hz * 1e6 / r }')
fi
for i in "${!labels[@]}"; do
    if [[ -n ${notes[$i]} ]]; then
        printf '%-20s %s\n' "${labels[$i]}" "${notes[$i]}"
        continue
    fi
    awk -v label="${labels[$i]}" -v r="${requests[$i]}" -v s="${seconds[$i]}" \
        -v t="${ticks[$i]}" -v hz="$ticks_per_second" -v base_rate="$base_rate" \
        -v base_cpu="$base_cpu" 'BEGIN {
            cpu = t / hz
            rate = r / s
            per = cpu * 1e6 / r
            rate_ratio = base_rate != "" ? sprintf("%.2fx", rate / base_rate) : "-"
            cpu_ratio = base_cpu != "" && base_cpu > 0 ? sprintf("%.2fx", per / base_cpu) : "-"
            printf "%-20s %12.0f %18.2f %10.0f%% %11s %14s\n", label, rate, per, 100 * cpu / s,
                rate_ratio, cpu_ratio
        }'
done
exit "$failed"
