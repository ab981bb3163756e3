#!/usr/bin/env bash
# Checks examples/15_http_hello against a client corio did not write: curl.
#
#   bash scripts/check_http_example.sh <path to the built example_15_http_hello>
#
# Builds nothing. Starts the example with `--port 0` (it serves for ever on a port the kernel
# chooses and prints it), waits until it listens, then checks with curl:
#   - GET /: status 200, the body "Hello, world!\n", a Content-Length equal to its size;
#   - two requests on one connection (`curl URL URL`): both answered, the second over the
#     connection the first opened (keep-alive);
#   - HTTP/1.0, a 404 for an unknown path, a 400 for a request line that is not HTTP;
# and stops the server. Exits non-zero on the first failure. Needs curl.
set -euo pipefail

if [[ $# -ne 1 || ! -x $1 ]]; then
    echo "usage: $0 <path to example_15_http_hello>" >&2
    exit 2
fi
program=$1
command -v curl >/dev/null 2>&1 || { echo "check_http_example: curl is not installed" >&2; exit 2; }

workdir=$(mktemp -d)
server_pid=""
cleanup() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$workdir"
}
trap cleanup EXIT

fail() {
    echo "check_http_example: FAILED: $*" >&2
    exit 1
}

"$program" --port 0 >"$workdir/server.out" 2>"$workdir/server.err" &
server_pid=$!
port=""
for ((i = 0; i < 200; ++i)); do
    port=$(sed -n 's|^serving http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$workdir/server.out")
    [[ -n $port ]] && break
    kill -0 "$server_pid" 2>/dev/null || fail "the server exited: $(cat "$workdir/server.err")"
    sleep 0.05
done
[[ -n $port ]] || fail "the server did not start listening within 10 s"
url="http://127.0.0.1:$port"
echo "check_http_example: server listening on $url"

curl_() {
    curl -sS --max-time 10 "$@"
}

# $1: a whole `curl -i` response. Sets status, content_length and body.
split_response() {
    local response=$1 head
    head=${response%%$'\r\n\r\n'*}
    [[ $head != "$response" ]] || fail "no end of head in: $response"
    body=${response#*$'\r\n\r\n'}
    status=${head%%$'\r'*}
    content_length=$(printf '%s\n' "$head" | tr -d '\r' |
        sed -n 's/^[Cc]ontent-[Ll]ength: *\([0-9]*\)$/\1/p')
}

expected_body=$'Hello, world!\n'

# 1. One GET.
response=$(curl_ -i "$url/"; printf x)  # the x keeps the body's trailing newline
response=${response%x}
split_response "$response"
[[ $status == "HTTP/1.1 200 OK" ]] || fail "GET /: status line '$status'"
[[ $body == "$expected_body" ]] || fail "GET /: body '$body'"
[[ $content_length == "${#body}" ]] ||
    fail "GET /: Content-Length '$content_length' for a body of ${#body} bytes"
echo "ok: GET / -> $status, Content-Length $content_length, body '${body%$'\n'}'"

# 2. Keep-alive: two requests, one connection (num_connects is 0 for a reused connection).
both=$(curl_ -i "$url/" "$url/"; printf x)
both=${both%x}
[[ $both == *"$expected_body"*"HTTP/1.1 200 OK"*"$expected_body" ]] ||
    fail "two requests on one connection: $both"
connects=$(curl_ -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\n' "$url/" "$url/")
[[ $connects == $'200 1\n200 0' ]] ||
    fail "the second request did not reuse the connection (code, new connections): $connects"
echo "ok: two requests on one keep-alive connection"

# 3. HTTP/1.0, 404, 400.
code=$(curl_ -0 -o /dev/null -w '%{http_code}' "$url/")
[[ $code == 200 ]] || fail "HTTP/1.0 GET /: $code"
code=$(curl_ -o /dev/null -w '%{http_code}' "$url/missing")
[[ $code == 404 ]] || fail "GET /missing: $code"
code=$(curl_ -o /dev/null -w '%{http_code}' -X 'NOT HTTP' "$url/")
[[ $code == 400 ]] || fail "a request line that is not HTTP: $code"
echo "ok: HTTP/1.0 -> 200, /missing -> 404, garbage -> 400"

kill -0 "$server_pid" 2>/dev/null || fail "the server died: $(cat "$workdir/server.err")"
echo "check_http_example: all checks passed"
