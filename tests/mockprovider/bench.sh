#!/usr/bin/env bash
# Compares the mock provider's non-streaming chat path with nginx returning
# the same bytes as a fixed body: wrk -t2 -c64 against each, alternating, and
# the server's CPU time per request from /proc (less sensitive to other load
# on the box than requests/second). Loopback only; one process each (the mock
# is one loop, nginx gets one worker).
#   ROUNDS=5 DURATION=5s tests/mockprovider/bench.sh   (MOCK=path/to/other/binary to compare builds)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
MOCK=${MOCK:-bin/switchyard-mockprovider}
dir=$(mktemp -d /tmp/sy-mockbench.XXXXXX)
mock_pid=""
nginx_pid=""
cleanup() {
    [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null || true
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mport=$(free_port)
nport=$(free_port)
body='{"model":"gpt-4o","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"What is the weather like in Paris today?"}]}'
cat >"$dir/chat.lua" <<EOF
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer mock-key"
EOF

"$MOCK" --listen "127.0.0.1:$mport" --name bench --log-level warn >"$dir/mock.log" 2>&1 &
mock_pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$mport/_mock/stats" >/dev/null && break; sleep 0.1; done
# nginx serves exactly what the mock answers (same size, same content type).
curl -sf "http://127.0.0.1:$mport/v1/chat/completions" -H 'Authorization: Bearer mock-key' \
    -d "$body" >"$dir/answer.json"
answer=$(sed "s/'/\\\\'/g" "$dir/answer.json")
mkdir -p "$dir/tmp"
cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process off;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$nport;
    location / { default_type application/json; return 200 '$answer'; }
  }
}
EOF
nginx -c "$dir/nginx.conf" >"$dir/nginx.out" 2>&1 &
nginx_pid=$!
for _ in $(seq 50); do curl -sf -X POST -d x "http://127.0.0.1:$nport/" >/dev/null && break; sleep 0.1; done

hz=$(getconf CLK_TCK)
cpu() { awk '{print $14, $15}' "/proc/$1/stat"; } # utime stime (ticks)
run() { # name pid port
    local t0 t1 out req rps lat
    t0=$(cpu "$2")
    out=$(wrk -t2 -c64 -d"$DURATION" -s "$dir/chat.lua" "http://127.0.0.1:$3/v1/chat/completions")
    t1=$(cpu "$2")
    req=$(echo "$out" | awk '/requests in/{print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
    lat=$(echo "$out" | awk '/Latency/{print $2}')
    echo "$1 req/s=$rps latency_avg=$lat $(echo "$t0 $t1" | awk -v hz="$hz" -v n="$req" \
        '{u=($3-$1)*1e6/hz/n; s=($4-$2)*1e6/hz/n; printf "cpu_us/req=%.1f (user %.1f sys %.1f)", u+s, u, s}')"
}
echo "body: $(wc -c <"$dir/answer.json") bytes; $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq "$ROUNDS"); do
    run mock "$mock_pid" "$mport"
    run nginx "$nginx_pid" "$nport"
done
