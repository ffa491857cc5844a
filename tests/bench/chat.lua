-- wrk script of the benchmark harness: every request POSTs one non-streaming
-- chat completion; done() prints one JSON line (prefixed "BENCH_JSON ") that
-- tests/bench/run.sh parses.
--
-- Environment:
--   BENCH_KEY      API key sent as "Authorization: Bearer <key>" (omitted if empty)
--   BENCH_HEADERS  extra headers, "Name: value" separated by "|"
--   BENCH_BODY     request body (default: a small gpt-4o-mini chat request)

local body = os.getenv("BENCH_BODY")
if body == nil or body == "" then
    body = '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},' ..
        '{"role":"user","content":"Name three colours of the rainbow, please."}]}'
end

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"

local key = os.getenv("BENCH_KEY")
if key ~= nil and key ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. key
end

local extra = os.getenv("BENCH_HEADERS")
if extra ~= nil and extra ~= "" then
    for pair in string.gmatch(extra, "[^|]+") do
        local name, value = string.match(pair, "^%s*([^:]+):%s*(.-)%s*$")
        if name ~= nil then
            wrk.headers[name] = value
        end
    end
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
        '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
        '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
        summary.requests, summary.duration, summary.bytes,
        e.connect, e.read, e.write, e.status, e.timeout,
        latency.mean, latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency.max))
end
