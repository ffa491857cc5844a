#!/usr/bin/env bash
# The benchmark harness behind `make bench` (run it from anywhere; the Makefile
# builds bin/ first). In one run, against the same mock upstream, side by side:
#   direct      wrk straight to bin/switchyard-mockprovider
#   nginx       nginx as a plain keep-alive reverse proxy (generated config)
#   switchyard  bin/switchyard-dataplane with a snapshot: a bench tenant and key, the mock as provider
#   portkey     the Portkey open-source gateway (@portkey-ai/gateway from npm, tests/bench/package.json)
# Each target gets wrk at BENCH_CONNS connections and at 1 connection: requests/s,
# p50/p99, and CPU microseconds per request of the gateway's process tree
# (utime+stime+cutime+cstime from /proc/PID/stat of the process and all its
# descendants, before/after), with ratios against nginx. Then a streaming
# scenario: BENCH_STREAMS concurrent SSE streams through Switchyard (and nginx
# for reference), reporting RSS per open stream and CPU per relayed event.
# The table is printed at the end and written to build/bench/results.md.
#
# It is a benchmark, never a test: nothing here asserts a figure.
#
# Environment (defaults in brackets):
#   BENCH_DURATION [8]        seconds of each measured wrk run
#   BENCH_WARMUP [2]          seconds of unmeasured wrk warm-up before each run
#   BENCH_CONNS [64]          connections of the loaded run (the other run uses 1)
#   BENCH_ONE_CPU [0]         CPU that wrk, the mock and the gateway share during the
#                             1-connection run ("" = no pinning); see tests/bench/README.md
#   BENCH_THREADS [2]         wrk threads of the loaded run
#   BENCH_TARGETS [direct nginx switchyard portkey]   (empty: none)
#   BENCH_REPEAT [1]          rounds over the targets (interleaved); the table shows each
#                             figure's median over the rounds, which tames a busy machine
#   BENCH_WORKERS [nproc]     worker processes of nginx and Switchyard alike
#   BENCH_STREAMS [2000]      concurrent streams (BENCH_STREAMS=20000 for the full run; 0 skips)
#   BENCH_STREAM_TARGETS [switchyard nginx]           (empty: none)
#   BENCH_STREAM_DELAY_MS [max(2000, streams/5)]  mock delay between the 12 SSE events of each
#                             stream: long enough for every stream to open before the first ends
#   BENCH_STREAM_WORKERS      nginx and Switchyard workers of the stream run [BENCH_WORKERS, or
#                             more when one worker's client+upstream sockets would not fit
#                             under the fd limit]
#   BENCH_MOCK_STREAMS [12000]  streams per mock instance: one process cannot hold more sockets
#                             than the fd limit, so several mocks serve a large stream run,
#                             one model each, and the stream client alternates the models
#   BENCH_RAMP [512]          streams connecting at once
#   BENCH_ACCESS_LOG [0]      1 turns the access log on in nginx and Switchyard alike
#   BENCH_KEEP [0]            1 keeps the temp dir (configs, logs) for inspection
#   SWITCHYARD_BIN_DIR [bin]  where the binaries are
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BENCH=$ROOT/tests/bench
OUT=$ROOT/build/bench
BIN=${SWITCHYARD_BIN_DIR:-$ROOT/bin}

DURATION=${BENCH_DURATION:-8}
WARMUP=${BENCH_WARMUP:-2}
CONNS=${BENCH_CONNS:-64}
ONE_CPU=${BENCH_ONE_CPU-0}
THREADS=${BENCH_THREADS:-2}
TARGETS=${BENCH_TARGETS-"direct nginx switchyard portkey"}
WORKERS=${BENCH_WORKERS:-$(nproc)}
STREAMS=${BENCH_STREAMS:-2000}
STREAM_TARGETS=${BENCH_STREAM_TARGETS-"switchyard nginx"}
STREAM_DELAY_MS=${BENCH_STREAM_DELAY_MS:-$((STREAMS / 5 > 2000 ? STREAMS / 5 : 2000))}
MOCK_STREAMS=${BENCH_MOCK_STREAMS:-12000}
RAMP=${BENCH_RAMP:-512}
ACCESS_LOG=${BENCH_ACCESS_LOG:-0}
REPEAT=${BENCH_REPEAT:-1}
MODEL=gpt-4o-mini
KEY="sk-sy-bench-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
MOCK_KEY=sk-mock-upstream

log() { printf 'bench: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# --- limits, temp dir, cleanup --------------------------------------------------------
# 20,000 streams need more descriptors than the usual soft limit; the hard limit
# cannot be raised without CAP_SYS_RESOURCE, so take whatever it allows.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
NMOCKS=$(((STREAMS + MOCK_STREAMS - 1) / MOCK_STREAMS))
[ "$NMOCKS" -ge 1 ] || NMOCKS=1
# A proxy worker holds a client and an upstream socket per stream.
need=$(((2 * STREAMS + NOFILE - 1001) / (NOFILE - 1000)))
STREAM_WORKERS=${BENCH_STREAM_WORKERS:-$((need > WORKERS ? need : WORKERS))}
mkdir -p "$OUT"
TMP=$(mktemp -d /tmp/sy-bench.XXXXXX)
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
declare -A PIDS=()

stop() { # $1 = name; SIGTERM to its process group, SIGKILL after 5 s
    local name=$1 pid=${PIDS[$1]:-} i
    [ -n "$pid" ] || return 0
    kill -TERM -- "-$pid" 2>/dev/null
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    unset "PIDS[$name]"
}
cleanup() {
    local n
    for n in "${!PIDS[@]}"; do stop "$n"; done
    if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts a daemon in its own session (so stop() reaches everything it forks).
start() { # $1 = name, rest = command
    local name=$1
    shift
    setsid "$@" >"$TMP/$name.log" 2>&1 </dev/null &
    PIDS[$name]=$!
}

free_port() {
    local p i
    for i in $(seq 200); do
        p=$((20000 + RANDOM % 12000))
        [ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ] && {
            echo "$p"
            return 0
        }
    done
    die "no free port"
}

wait_http() { # $1 = name, $2 = url: until it answers below 500, 20 s at most; 1 on failure
    local name=$1 url=$2 i code
    for i in $(seq 200); do
        kill -0 "${PIDS[$name]}" 2>/dev/null || {
            tail -20 "$TMP/$name.log" >&2
            log "$name exited during start-up"
            return 1
        }
        code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$url" 2>/dev/null)
        [ -n "$code" ] && [ "$code" != 000 ] && [ "$code" -lt 500 ] && return 0
        sleep 0.1
    done
    tail -20 "$TMP/$name.log" >&2
    log "$name did not answer at $url"
    stop "$name"
    return 1
}

# --- build helpers ------------------------------------------------------------------------
build_streamclient() {
    local sc=$OUT/streamclient f
    if [ ! -x "$sc" ] || [ "$BENCH/streamclient.c" -nt "$sc" ]; then
        mkdir -p "$OUT/obj"
        for f in llhttp api http; do
            cc -O2 -w -I/usr/share/include/llhttp -c "/usr/share/llhttp/$f.c" -o "$OUT/obj/$f.o" ||
                die "cannot build llhttp"
        done
        # shellcheck disable=SC2046
        cc -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wshadow -I/usr/share/include/llhttp \
            "$BENCH/streamclient.c" "$OUT"/obj/llhttp.o "$OUT"/obj/api.o "$OUT"/obj/http.o \
            -o "$sc" $(pkg-config --cflags --libs libuv) || die "cannot build streamclient"
    fi
    SC=$sc
}

npm_portkey() {
    if [ ! -f "$BENCH/node_modules/.stamp" ] || [ "$BENCH/package-lock.json" -nt "$BENCH/node_modules/.stamp" ]; then
        log "installing @portkey-ai/gateway into tests/bench/node_modules"
        (cd "$BENCH" && npm ci --silent --no-audit --no-fund >/dev/null 2>&1) || return 1
        touch "$BENCH/node_modules/.stamp"
    fi
}

probe() { # $1 = pid: {"cpu_us":..,"rss_kib":..,...} of its process tree
    "$SC" --probe "$1" | sed 's/^{"probe"://; s/}$//'
}
field() { # $1 = json, $2 = key: first numeric value of "key"
    printf '%s' "$1" | grep -o "\"$2\":[0-9.]*" | head -1 | cut -d: -f2
}

# --- the upstreams ------------------------------------------------------------------------------
# Mock i serves model $(model_of i) in Switchyard's snapshot; mock 0 is the
# upstream of every wrk run.
model_of() { if [ "$1" = 0 ]; then echo "$MODEL"; else echo "$MODEL-$1"; fi; }

start_mocks() {
    local i
    MOCK_PORTS=()
    for i in $(seq 0 $((NMOCKS - 1))); do
        MOCK_PORTS[i]=$(free_port)
        start "mock$i" "$BIN/switchyard-mockprovider" --listen "127.0.0.1:${MOCK_PORTS[i]}" \
            --name "bench$i" --api-key "$MOCK_KEY" --log-level warn
    done
    for i in $(seq 0 $((NMOCKS - 1))); do
        wait_http "mock$i" "http://127.0.0.1:${MOCK_PORTS[i]}/_mock/stats" || die "the mock did not start"
    done
    MOCK_PORT=${MOCK_PORTS[0]}
    MOCK_URL=http://127.0.0.1:$MOCK_PORT
}

mock_faults() { # $1 = JSON body for POST /_mock/faults on every mock, or "clear"
    local p
    for p in "${MOCK_PORTS[@]}"; do
        if [ "$1" = clear ]; then
            curl -s -m 5 -X DELETE "http://127.0.0.1:$p/_mock/faults" >/dev/null
        else
            curl -s -m 5 -X POST -H 'content-type: application/json' -d "$1" \
                "http://127.0.0.1:$p/_mock/faults" >/dev/null
        fi
    done
}

# --- the gateways ---------------------------------------------------------------------------------
# Each start_<target> sets GW_PID (process tree to measure, empty for direct),
# GW_PORT, GW_URL, GW_KEY (the bearer token clients send) and GW_HEADERS
# (extra request headers, "Name: value" separated by "|").

write_nginx_conf() { # $1 = port, $2 = workers, rest = upstream ports
    local port=$1 workers=$2 servers="" p alog=off
    shift 2
    for p in "$@"; do servers="$servers        server 127.0.0.1:$p;"$'\n'; done
    [ "$ACCESS_LOG" = 1 ] && alog="$TMP/nginx/access.log"
    mkdir -p "$TMP/nginx"
    cat >"$TMP/nginx/nginx.conf" <<EOF
# Generated by tests/bench/run.sh: a plain keep-alive reverse proxy to the mock.
daemon off;
master_process on;
user root;
worker_processes $workers;
worker_rlimit_nofile $NOFILE;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events {
    worker_connections $((NOFILE - 64));
    multi_accept on;
}
http {
    access_log $alog;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    upstream mock {
$servers        keepalive 512;
        keepalive_requests 1000000;
        keepalive_timeout 60s;
    }
    server {
        listen 127.0.0.1:$port reuseport backlog=4096;
        location / {
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # Relay SSE events as they arrive, as Switchyard does.
            proxy_buffering off;
            proxy_read_timeout 600s;
        }
    }
}
EOF
}

start_nginx() { # $1 = workers, $2 = "all" to balance over every mock
    GW_PORT=$(free_port)
    if [ "${2:-}" = all ]; then
        write_nginx_conf "$GW_PORT" "${1:-$WORKERS}" "${MOCK_PORTS[@]}"
    else
        write_nginx_conf "$GW_PORT" "${1:-$WORKERS}" "$MOCK_PORT"
    fi
    start nginx nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log"
    wait_http nginx "http://127.0.0.1:$GW_PORT/_mock/stats" || return 1
    GW_PID=${PIDS[nginx]}
    GW_URL=http://127.0.0.1:$GW_PORT
    GW_KEY=$MOCK_KEY
    GW_HEADERS=""
}

write_snapshot() { # $1 = live workers; one provider and one model per mock
    local sha i providers="" models="" sep=""
    sha=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)
    for i in $(seq 0 $((NMOCKS - 1))); do
        providers+="$sep
    {\"id\": \"mock$i\", \"name\": \"Mock provider $i\", \"kind\": \"PROVIDER_KIND_OPENAI_COMPATIBLE\",
     \"base_url\": \"http://127.0.0.1:${MOCK_PORTS[i]}/v1\", \"api_key\": \"$MOCK_KEY\"}"
        models+="$sep
    {\"id\": \"$(model_of "$i")\", \"provider_id\": \"mock$i\", \"upstream_name\": \"$MODEL\",
     \"capabilities\": [\"chat\"],
     \"prices\": [{\"valid_from\": 0, \"input_per_mtok\": 0.15, \"output_per_mtok\": 0.6}]}"
        sep=,
    done
    cat >"$TMP/snapshot.json" <<EOF
{
  "version": 1,
  "created_at": $(($(date +%s) * 1000)),
  "live_workers": $1,
  "tenants": [{"id": "t-bench", "name": "Bench tenant", "tier": "standard"}],
  "keys": [{"sha256": "$sha", "id": "k-bench", "prefix": "${KEY:0:12}", "tenant_id": "t-bench",
            "name": "bench key"}],
  "providers": [$providers],
  "models": [$models]
}
EOF
}

start_switchyard() { # $1 = workers
    local workers=${1:-$WORKERS}
    GW_PORT=$(free_port)
    write_snapshot "$workers"
    start switchyard "$BIN/switchyard-dataplane" --listen "127.0.0.1:$GW_PORT" \
        --workers "$workers" --snapshot-file "$TMP/snapshot.json" \
        --access-log="$([ "$ACCESS_LOG" = 1 ] && echo true || echo false)"
    wait_http switchyard "http://127.0.0.1:$GW_PORT/readyz" || return 1
    GW_PID=${PIDS[switchyard]}
    GW_URL=http://127.0.0.1:$GW_PORT
    GW_KEY=$KEY
    GW_HEADERS=""
}

start_portkey() {
    npm_portkey || {
        log "portkey: npm ci in tests/bench failed"
        return 1
    }
    GW_PORT=$(free_port)
    start portkey node "$BENCH/portkey.mjs" "--port=$GW_PORT"
    wait_http portkey "http://127.0.0.1:$GW_PORT/" || return 1
    GW_PID=${PIDS[portkey]}
    GW_URL=http://127.0.0.1:$GW_PORT
    GW_KEY=$MOCK_KEY
    GW_HEADERS="x-portkey-provider: openai|x-portkey-custom-host: $MOCK_URL/v1"
}

start_direct() {
    GW_PID=""
    GW_PORT=$MOCK_PORT
    GW_URL=$MOCK_URL
    GW_KEY=$MOCK_KEY
    GW_HEADERS=""
}

# One request through the target, checked by shape, before any load.
check_target() { # $1 = name
    local args=(-s -m 10 -o "$TMP/check.json" -w '%{http_code}' -X POST "$GW_URL/v1/chat/completions"
        -H 'content-type: application/json' -H "authorization: Bearer $GW_KEY"
        -d "{\"model\":\"$MODEL\",\"messages\":[{\"role\":\"user\",\"content\":\"Name three colours.\"}]}")
    local h hs code
    IFS='|' read -ra hs <<<"$GW_HEADERS"
    for h in "${hs[@]}"; do args+=(-H "$h"); done
    code=$(curl "${args[@]}")
    if [ "$code" != 200 ] || ! grep -q '"choices"' "$TMP/check.json" ||
        ! grep -q '"completion_tokens"' "$TMP/check.json"; then
        log "$1: check request failed with HTTP $code: $(head -c 400 "$TMP/check.json")"
        return 1
    fi
}

# --- wrk runs ----------------------------------------------------------------------------------------
tree_pids() { # $1 = pid: it and all its descendants
    local p
    echo "$1"
    for p in $(pgrep -P "$1"); do tree_pids "$p"; done
}

# Sets the CPU affinity ($1, a taskset list) of every thread of the mock and
# the gateway's process tree.
pin_all() {
    local p
    for p in $(tree_pids "${PIDS[mock0]}") ${GW_PID:+$(tree_pids "$GW_PID")}; do
        taskset -a -p -c "$1" "$p" >/dev/null 2>&1 || true
    done
}

run_wrk() { # $1 = target, $2 = connections
    local target=$1 c=$2 t out json gb="" ga="" mb ma gw_cpu=null gw_rss=null mock_cpu
    t=$THREADS
    [ "$c" -lt "$t" ] && t=$c
    local env=(BENCH_KEY="$GW_KEY" BENCH_HEADERS="$GW_HEADERS")
    local pin=()
    if [ "$c" = 1 ] && [ -n "$ONE_CPU" ]; then
        # One request at a time crosses four processes; on this VM a wake-up
        # of an idle vCPU costs hundreds of microseconds, and which hops cross
        # vCPUs changed from round to round (p50 0.11 to 0.68 ms for the same
        # binary). On one CPU every target pays the same context switches.
        pin=(taskset -c "$ONE_CPU")
        pin_all "$ONE_CPU"
    fi
    "${pin[@]}" env "${env[@]}" wrk -t"$t" -c"$c" -d"${WARMUP}s" --timeout 10s -s "$BENCH/chat.lua" \
        "$GW_URL/v1/chat/completions" >/dev/null 2>&1
    [ -n "$GW_PID" ] && gb=$(probe "$GW_PID")
    mb=$(probe "${PIDS[mock0]}")
    out=$("${pin[@]}" env "${env[@]}" wrk -t"$t" -c"$c" -d"${DURATION}s" --timeout 10s -s "$BENCH/chat.lua" \
        "$GW_URL/v1/chat/completions" 2>&1)
    [ -n "$GW_PID" ] && ga=$(probe "$GW_PID")
    ma=$(probe "${PIDS[mock0]}")
    [ ${#pin[@]} -gt 0 ] && pin_all "0-$(($(nproc) - 1))"
    json=$(printf '%s\n' "$out" | sed -n 's/^BENCH_JSON //p')
    if [ -z "$json" ]; then
        log "$target c=$c: wrk failed: $out"
        return 1
    fi
    if [ -n "$GW_PID" ]; then
        gw_cpu=$(($(field "$ga" cpu_us) - $(field "$gb" cpu_us)))
        gw_rss=$(field "$ga" rss_kib)
    fi
    mock_cpu=$(($(field "$ma" cpu_us) - $(field "$mb" cpu_us)))
    printf '{"kind":"http","target":"%s","conns":%d,"threads":%d,"round":%d,"wrk":%s,"gw_cpu_us":%s,"mock_cpu_us":%d,"gw_rss_kib":%s}\n' \
        "$target" "$c" "$t" "$ROUND" "$json" "$gw_cpu" "$mock_cpu" "$gw_rss" >>"$RESULTS"
    log "$target c=$c: $(field "$json" requests) requests in ${DURATION}s, gateway CPU ${gw_cpu} us"
}

bench_target() { # $1 = target
    local target=$1
    log "--- $target"
    "start_$target" || return 1
    if check_target "$target"; then
        run_wrk "$target" "$CONNS"
        run_wrk "$target" 1
    else
        printf '{"kind":"http","target":"%s","failed":true}\n' "$target" >>"$RESULTS"
    fi
    [ "$target" != direct ] && stop "$target"
    return 0
}

# --- streams ------------------------------------------------------------------------------------------
bench_streams() { # $1 = target
    local target=$1 out timeout i h hs
    log "--- $STREAMS streams through $target ($STREAM_WORKERS workers, $NMOCKS mock(s))"
    case $target in
    switchyard) start_switchyard "$STREAM_WORKERS" || return 1 ;;
    nginx) start_nginx "$STREAM_WORKERS" all || return 1 ;;
    *) "start_$target" || return 1 ;;
    esac
    local args=(--port "$GW_PORT" --streams "$STREAMS" --ramp "$RAMP" --tree "$GW_PID"
        --header "Authorization: Bearer $GW_KEY")
    IFS='|' read -ra hs <<<"$GW_HEADERS"
    for h in "${hs[@]}"; do args+=(--header "$h"); done
    # Ten words: the mock echoes eight of them, one SSE event each, plus the
    # role, finish and [DONE] events. nginx balances over the mocks by itself;
    # Switchyard reaches mock i through model i, so its streams alternate models.
    for i in $(seq 0 $((NMOCKS - 1))); do
        printf '{"model":"%s","stream":true,"messages":[{"role":"user","content":"%s"}]}' \
            "$([ "$target" = switchyard ] && model_of "$i" || echo "$MODEL")" \
            "Tell me a story about a ship lost at sea, please." >"$TMP/stream-body-$i.json"
        args+=(--body-file "$TMP/stream-body-$i.json")
        [ "$target" = switchyard ] || break
    done
    # Every chat request of the mocks streams slowly from now on, so the
    # streams overlap however fast they are opened.
    mock_faults "{\"fault\":\"chunk_delay_ms=$STREAM_DELAY_MS\",\"endpoint\":\"chat_completions\"}"
    timeout=$((13 * STREAM_DELAY_MS / 1000 + STREAMS / 200 + 60))
    out=$("$SC" "${args[@]}" --timeout "$timeout" 2>"$TMP/streamclient-$target.log")
    mock_faults clear
    tail -2 "$TMP/streamclient-$target.log" >&2
    if [ -z "$out" ]; then
        log "streamclient failed"
        printf '{"kind":"stream","target":"%s","failed":true}\n' "$target" >>"$RESULTS"
    else
        printf '{"kind":"stream","target":"%s","workers":%d,"mocks":%d,"result":%s}\n' \
            "$target" "$STREAM_WORKERS" "$NMOCKS" "$out" >>"$RESULTS"
    fi
    stop "$target"
}

# --- main --------------------------------------------------------------------------------------------
for b in wrk nginx curl node cc ss setsid; do
    command -v "$b" >/dev/null || die "$b is not installed (make deps)"
done
[ -x "$BIN/switchyard-mockprovider" ] || die "$BIN/switchyard-mockprovider is missing (make)"
build_streamclient
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average $LOAD; workers $WORKERS ($STREAM_WORKERS for streams), wrk ${DURATION}s (+${WARMUP}s warm-up) at $CONNS and 1 connections, $STREAMS streams, fd limit $NOFILE"
start_mocks
for ROUND in $(seq "$REPEAT"); do
    [ "$REPEAT" -gt 1 ] && log "=== round $ROUND of $REPEAT"
    for target in $TARGETS; do
        if [ "$target" = switchyard ] && [ ! -x "$BIN/switchyard-dataplane" ]; then
            log "switchyard: $BIN/switchyard-dataplane is missing, skipped"
            continue
        fi
        bench_target "$target" || printf '{"kind":"http","target":"%s","failed":true}\n' "$target" >>"$RESULTS"
    done
done
if [ "$STREAMS" -gt 0 ]; then
    for target in $STREAM_TARGETS; do
        [ "$target" = switchyard ] && [ ! -x "$BIN/switchyard-dataplane" ] && continue
        bench_streams "$target" || printf '{"kind":"stream","target":"%s","failed":true}\n' "$target" >>"$RESULTS"
    done
fi
for i in $(seq 0 $((NMOCKS - 1))); do stop "mock$i"; done
{
    printf 'Machine: %s cores, Linux %s; %s; load average before the run %s (other work on the machine skews every figure)\n' \
        "$(nproc)" "$(uname -r)" "$(date -u '+%Y-%m-%d %H:%M UTC')" "$LOAD"
    printf 'Workers: %s (nginx and Switchyard; %s in the stream run); wrk %ss per run after %ss warm-up, ' \
        "$WORKERS" "$STREAM_WORKERS" "$DURATION" "$WARMUP"
    printf 'median of %s round(s); ' "$REPEAT"
    [ -n "$ONE_CPU" ] && printf '1-connection runs: wrk, mock and gateway pinned to CPU %s; ' "$ONE_CPU"
    printf 'access log %s; fd limit %s; mock delay between stream events %s ms\n' \
        "$([ "$ACCESS_LOG" = 1 ] && echo on || echo off)" "$NOFILE" "$STREAM_DELAY_MS"
} >"$OUT/header.txt"
node "$BENCH/report.mjs" "$RESULTS" "$OUT/header.txt" >"$OUT/results.md" || die "report failed"
echo
cat "$OUT/results.md"
log "written to build/bench/results.md (raw: build/bench/results.jsonl)"
