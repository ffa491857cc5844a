#!/usr/bin/env bash
# `make run`: starts the mock provider, the control plane and the data plane
# connected to it over nanomsg on local ipc sockets (run/data/*.ipc), then
# creates the demo tenant, team, key, providers (the mock speaking as OpenAI,
# Anthropic and Gemini), models and route aliases through the admin API,
# prints the URLs and secrets and writes run/switchyard.env. Ctrl-C or
# SIGTERM stops everything. Each run starts from a fresh run/data.
#
# SWITCHYARD_NO_CONTROL=1 instead runs the data plane alone on a static demo
# snapshot file (no admin API, no usage accounting).
#
# Environment:
#   SWITCHYARD_PORT        data plane port (default 8080)
#   SWITCHYARD_ADMIN_PORT  admin API port (default 8081)
#   SWITCHYARD_MOCK_PORT   mock provider port (default 8090)
#   SWITCHYARD_HOST        address to bind (default 127.0.0.1)
#   SWITCHYARD_WORKERS     data plane workers (default: one per core)
#   SWITCHYARD_DEMO_KEY    demo API key for SWITCHYARD_NO_CONTROL (default: random sk-demo-...)
#   SWITCHYARD_ADMIN_TOKEN platform admin token (default: a random one per run)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
RUN_DIR=${SWITCHYARD_RUN_DIR:-$ROOT/run}
mkdir -p "$RUN_DIR"

HOST=${SWITCHYARD_HOST:-127.0.0.1}
PORT=${SWITCHYARD_PORT:-8080}
MOCK_PORT=${SWITCHYARD_MOCK_PORT:-8090}
ADMIN_PORT=${SWITCHYARD_ADMIN_PORT:-8081}
ADMIN_URL="http://$HOST:$ADMIN_PORT"
ADMIN_TOKEN=${SWITCHYARD_ADMIN_TOKEN:-sy-admin-$(openssl rand -hex 16)}
DATA_DIR=$RUN_DIR/data
STATE_DIR=$RUN_DIR/dataplane-state
KEY=${SWITCHYARD_DEMO_KEY:-sk-demo-$(openssl rand -hex 16)}
KEY_SHA=$(printf '%s' "$KEY" | openssl dgst -sha256 -r | cut -d' ' -f1)
# Without /v1, so `curl $SWITCHYARD_BASE_URL/v1/chat/completions` reads as the API does;
# SDKs take $SWITCHYARD_BASE_URL/v1 as their base URL.
BASE_URL="http://$HOST:$PORT"
MOCK_URL="http://$HOST:$MOCK_PORT"
SNAPSHOT=$RUN_DIR/demo-snapshot.json
NOW=$(date +%s)

# The static demo snapshot (SWITCHYARD_NO_CONTROL=1 only).
write_demo_snapshot() {
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
}

pids=()
stop() {
    trap - INT TERM EXIT
    # The data plane first, so its last usage reports reach the control plane.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[$i]}" 2>/dev/null || true
        wait "${pids[$i]}" 2>/dev/null || true
    done
    echo "switchyard: stopped"
}
trap stop INT TERM EXIT

wait_http() { # url
    for _ in $(seq 1 100); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "switchyard: $1 did not come up (see $RUN_DIR/*.log)" >&2
    return 1
}

# Admin API call: prints the body, fails on a status >= 300.
admin() { # method path [json]
    local out status
    out=$(curl -sS -w '\n%{http_code}' -X "$1" "$ADMIN_URL/admin/v1$2" \
        -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
        ${3:+--data "$3"})
    status=${out##*$'\n'}
    out=${out%$'\n'*}
    if [ "$status" -ge 300 ]; then
        echo "switchyard: $1 $2 -> $status $out" >&2
        return 1
    fi
    printf '%s' "$out"
}
json_field() { # name (from stdin): the first "name":"value" member of a JSON object
    grep -o "\"$1\":\"[^\"]*\"" | head -1 | cut -d'"' -f4
}

bin/switchyard-mockprovider --listen "$HOST:$MOCK_PORT" >"$RUN_DIR/mock.log" 2>&1 &
pids+=($!)
wait_http "$MOCK_URL/_mock/stats"

if [ -n "${SWITCHYARD_NO_CONTROL:-}" ]; then
    write_demo_snapshot
    dp_args=(--listen "$HOST:$PORT" --snapshot-file "$SNAPSHOT" --log-file "$RUN_DIR/dataplane.log")
    [ -n "${SWITCHYARD_WORKERS:-}" ] && dp_args+=(--workers "$SWITCHYARD_WORKERS")
    bin/switchyard-dataplane "${dp_args[@]}" &
    pids+=($!)
    wait_http "http://$HOST:$PORT/readyz"
    ADMIN_URL=
    ADMIN_TOKEN=
else
    rm -rf "$DATA_DIR" "$STATE_DIR"
    mkdir -p "$DATA_DIR" "$STATE_DIR"
    SWITCHYARD_ADMIN_TOKEN=$ADMIN_TOKEN bin/switchyard-control --data-dir "$DATA_DIR" \
        --admin-listen "$HOST:$ADMIN_PORT" --migrations-dir "$ROOT/migrations" \
        --log-file "$RUN_DIR/control.log" &
    pids+=($!)
    wait_http "$ADMIN_URL/admin/v1/healthz"

    # The demo, through the admin API as an operator would create it.
    TENANT=$(admin POST /tenants '{"name":"demo","tier":"standard"}' | json_field id)
    TEAM=$(admin POST "/tenants/$TENANT/teams" '{"name":"demo-team"}' | json_field id)
    P_OA=$(admin POST /providers "{\"name\":\"mock-openai\",\"kind\":\"openai\",\"base_url\":\"$MOCK_URL/v1\",\"api_key\":\"mock-key\"}" | json_field id)
    P_AN=$(admin POST /providers "{\"name\":\"mock-anthropic\",\"kind\":\"anthropic\",\"base_url\":\"$MOCK_URL\",\"api_key\":\"mock-key\",\"headers\":{\"anthropic-version\":\"2023-06-01\"}}" | json_field id)
    P_GE=$(admin POST /providers "{\"name\":\"mock-gemini\",\"kind\":\"gemini\",\"base_url\":\"$MOCK_URL\",\"api_key\":\"mock-key\"}" | json_field id)
    model() { # id provider upstream input output [cached] [capabilities]
        admin POST /models "{\"id\":\"$1\",\"provider_id\":\"$2\",\"upstream_name\":\"$3\",\"capabilities\":${7:-[\"chat\",\"tools\"]},\"prices\":[{\"valid_from\":0,\"input_per_mtok\":$4,\"output_per_mtok\":$5,\"cached_input_per_mtok\":${6:-0}}]}" >/dev/null
    }
    model gpt-4o-mini "$P_OA" gpt-4o-mini 0.15 0.6 0.075
    model mock-fast "$P_OA" mock-fast-001 0.05 0.1
    model text-embedding-3-small "$P_OA" text-embedding-3-small 0.02 0 0 '["embeddings"]'
    model claude-3-5-haiku "$P_AN" claude-3-5-haiku-latest 0.8 4 0.08
    model gemini-2.0-flash "$P_GE" gemini-2.0-flash 0.1 0.4 0.025
    route() { # alias strategy targets
        admin POST /routes "{\"alias\":\"$1\",\"rules\":[{\"name\":\"default\",\"strategy\":\"$2\",\"targets\":$3}]}" >/dev/null
    }
    route auto priority '[{"model_id":"gpt-4o-mini"},{"model_id":"claude-3-5-haiku"},{"model_id":"gemini-2.0-flash"}]'
    route fast weighted '[{"model_id":"mock-fast","weight":3},{"model_id":"gemini-2.0-flash","weight":1}]'
    route reasoning priority '[{"model_id":"claude-3-5-haiku"},{"model_id":"gpt-4o-mini"}]'
    KEY=$(admin POST "/tenants/$TENANT/keys" "{\"name\":\"demo key\",\"team_id\":\"$TEAM\"}" | json_field secret)

    dp_args=(--listen "$HOST:$PORT" --control "ipc://$DATA_DIR"
        --cluster-key-file "$DATA_DIR/cluster.key" --state-dir "$STATE_DIR"
        --log-file "$RUN_DIR/dataplane.log")
    [ -n "${SWITCHYARD_WORKERS:-}" ] && dp_args+=(--workers "$SWITCHYARD_WORKERS")
    bin/switchyard-dataplane "${dp_args[@]}" &
    pids+=($!)
    wait_http "http://$HOST:$PORT/readyz"
    # Ready once a request with the demo key authenticates.
    for _ in $(seq 1 50); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "http://$HOST:$PORT/v1/models" \
            -H "Authorization: Bearer $KEY")
        [ "$code" = 200 ] && break
        sleep 0.1
    done
fi

cat >"$RUN_DIR/switchyard.env" <<EOF
SWITCHYARD_BASE_URL=$BASE_URL
SWITCHYARD_API_KEY=$KEY
SWITCHYARD_MOCK_URL=$MOCK_URL
SWITCHYARD_ADMIN_URL=$ADMIN_URL
SWITCHYARD_ADMIN_TOKEN=$ADMIN_TOKEN
EOF
chmod 600 "$RUN_DIR/switchyard.env"

cat <<EOF
switchyard: data plane  $BASE_URL   (logs: run/dataplane.log)
switchyard: admin API   ${ADMIN_URL:-(none)}${ADMIN_URL:+/admin/v1/   (logs: run/control.log)}
switchyard: mock        $MOCK_URL
switchyard: api key     $KEY
switchyard: admin token ${ADMIN_TOKEN:-(none)}
switchyard: env file    run/switchyard.env
try:
  set -a; . run/switchyard.env; set +a
  curl \$SWITCHYARD_BASE_URL/v1/chat/completions -H "Authorization: Bearer \$SWITCHYARD_API_KEY" \\
       -H 'Content-Type: application/json' -d '{"model":"auto","messages":[{"role":"user","content":"hello"}]}'
  curl "\$SWITCHYARD_ADMIN_URL/admin/v1/usage?group_by=model" -H "Authorization: Bearer \$SWITCHYARD_ADMIN_TOKEN"
Ctrl-C stops everything.
EOF
wait -n "${pids[@]}" || true
