#!/usr/bin/env bash
# `make run`: starts the mock provider and the data plane with a demo
# snapshot generated here (a demo tenant and key, the mock as an
# OpenAI-compatible provider), prints the base URL and key and writes
# run/switchyard.env. Ctrl-C or SIGTERM stops everything.
#
# Environment:
#   SWITCHYARD_PORT        data plane port (default 8080)
#   SWITCHYARD_MOCK_PORT   mock provider port (default 8090)
#   SWITCHYARD_HOST        address to bind (default 127.0.0.1)
#   SWITCHYARD_WORKERS     data plane workers (default: one per core)
#   SWITCHYARD_DEMO_KEY    demo API key (default: a random sk-demo-... per run)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
RUN_DIR=$ROOT/run
mkdir -p "$RUN_DIR"

HOST=${SWITCHYARD_HOST:-127.0.0.1}
PORT=${SWITCHYARD_PORT:-8080}
MOCK_PORT=${SWITCHYARD_MOCK_PORT:-8090}
KEY=${SWITCHYARD_DEMO_KEY:-sk-demo-$(openssl rand -hex 16)}
KEY_SHA=$(printf '%s' "$KEY" | openssl dgst -sha256 -r | cut -d' ' -f1)
BASE_URL="http://$HOST:$PORT/v1"
MOCK_URL="http://$HOST:$MOCK_PORT"
SNAPSHOT=$RUN_DIR/demo-snapshot.json
NOW=$(date +%s)

cat >"$SNAPSHOT" <<EOF
{
  "version": 1,
  "created_at": ${NOW}000,
  "live_workers": 1,
  "tenants": [{"id": "demo", "name": "Demo tenant", "tier": "standard", "time_zone": "UTC"}],
  "teams": [{"id": "demo-team", "tenant_id": "demo", "name": "Demo team"}],
  "keys": [{"id": "demo-key", "sha256": "$KEY_SHA", "prefix": "${KEY:0:12}", "tenant_id": "demo",
            "team_id": "demo-team", "name": "demo key"}],
  "providers": [{"id": "mock", "name": "mock", "kind": "PROVIDER_KIND_OPENAI_COMPATIBLE",
                 "base_url": "$MOCK_URL/v1", "api_key": "mock-key"}],
  "models": [
    {"id": "gpt-4o-mini", "provider_id": "mock", "upstream_name": "gpt-4o-mini",
     "capabilities": ["chat", "tools"],
     "prices": [{"valid_from": 0, "input_per_mtok": 0.15, "output_per_mtok": 0.6,
                 "cached_input_per_mtok": 0.075}]},
    {"id": "mock-fast", "provider_id": "mock", "upstream_name": "mock-fast-001",
     "capabilities": ["chat"],
     "prices": [{"valid_from": 0, "input_per_mtok": 0.05, "output_per_mtok": 0.1}]},
    {"id": "text-embedding-3-small", "provider_id": "mock", "capabilities": ["embeddings"],
     "prices": [{"valid_from": 0, "input_per_mtok": 0.02}]}
  ],
  "routes": [{"id": "auto", "alias": "auto", "rules": [{"name": "default", "strategy": "priority",
              "targets": [{"provider_id": "mock", "model_id": "gpt-4o-mini", "weight": 1}]}]}]
}
EOF

pids=()
stop() {
    trap - INT TERM EXIT
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    echo "switchyard: stopped"
}
trap stop INT TERM EXIT

bin/switchyard-mockprovider --listen "$HOST:$MOCK_PORT" >"$RUN_DIR/mock.log" 2>&1 &
pids+=($!)
dp_args=(--listen "$HOST:$PORT" --snapshot-file "$SNAPSHOT" --log-file "$RUN_DIR/dataplane.log")
[ -n "${SWITCHYARD_WORKERS:-}" ] && dp_args+=(--workers "$SWITCHYARD_WORKERS")
bin/switchyard-dataplane "${dp_args[@]}" &
pids+=($!)

wait_http() { # url
    for _ in $(seq 1 100); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "switchyard: $1 did not come up (see $RUN_DIR/*.log)" >&2
    return 1
}
wait_http "$MOCK_URL/_mock/stats"
wait_http "http://$HOST:$PORT/readyz"

cat >"$RUN_DIR/switchyard.env" <<EOF
SWITCHYARD_BASE_URL=$BASE_URL
SWITCHYARD_API_KEY=$KEY
SWITCHYARD_MOCK_URL=$MOCK_URL
SWITCHYARD_ADMIN_URL=
SWITCHYARD_ADMIN_TOKEN=
EOF

cat <<EOF
switchyard: data plane  $BASE_URL   (logs: run/dataplane.log)
switchyard: mock        $MOCK_URL
switchyard: api key     $KEY
switchyard: env file    run/switchyard.env
try:
  set -a; . run/switchyard.env; set +a
  curl \$SWITCHYARD_BASE_URL/chat/completions -H "Authorization: Bearer \$SWITCHYARD_API_KEY" \\
       -H 'Content-Type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}'
Ctrl-C stops everything.
EOF
wait -n "${pids[@]}" || true
