// The data plane's upstream HTTP client against HTTP/1.1 wire-level upstream
// behaviour (the mock's wire faults, tests/mockprovider/README.md): framing it
// must accept (Connection: close, close-delimited bodies, small chunks with an
// extension and a trailer, 1-byte writes, 1xx interim responses), connections
// the upstream closes under a pooled client (silent_close), and answers it must
// refuse with a 502 (not HTTP, oversized head, short body). The same file runs
// under every upstream engine (--upstream-engine / SWITCHYARD_UPSTREAM_ENGINE):
// nothing here depends on which one is in use.
//
// The gateway does not forward client headers upstream, so faults are set as
// the mock's per-instance rules (POST /_mock/faults, with count). Tests run in
// order in one file, so one rule is consumed by the one request meant for it;
// the mock's `faults` counter proves that it was. One worker, so the pooled
// upstream connections that the faults leave behind are the ones the next
// requests reuse. Direct model names (no route) give one target: no failover
// or retry at the routing layer can hide what the client did.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock, startDataplane, sleep } from './lib/procs.mjs';

let mock, dp, client;

const TIMEOUT_MS = 10000;
const MESSAGES = [{ role: 'user', content: 'wire level check of the upstream client' }];
const MODEL = 'gpt-4o-mini';

// --- helpers -------------------------------------------------------------------

const mockStats = async () => (await fetch(`${mock.url}/_mock/stats`, { signal: AbortSignal.timeout(TIMEOUT_MS) })).json();
const faultCount = async () => (await mockStats()).endpoints.chat_completions.faults;

async function setFault(fault, count) {
  const res = await fetch(`${mock.url}/_mock/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ fault, endpoint: 'chat_completions', ...(count ? { count } : {}) }),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  assert.equal(res.status, 200, await res.text());
  await res.arrayBuffer().catch(() => {});
}

async function clearFaults() {
  const res = await fetch(`${mock.url}/_mock/faults`, { method: 'DELETE', signal: AbortSignal.timeout(TIMEOUT_MS) });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
}

// A raw chat request through the gateway: status, headers, text and JSON.
async function rawChat(extra = {}) {
  const res = await fetch(`${dp.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${dp.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, messages: MESSAGES, ...extra }),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch {}
  return { status: res.status, headers: res.headers, text, json };
}

// What stays the same between two answers to the same request: all but the
// per-request id and timestamp.
const stable = (o) => {
  const { id, created, ...rest } = o;
  return rest;
};

// A non-streamed answer through the SDK, with the gateway's request id.
async function plain() {
  const { data, response } = await client.chat.completions
    .create({ model: MODEL, messages: MESSAGES }, { signal: AbortSignal.timeout(TIMEOUT_MS) })
    .withResponse();
  return { body: stable(JSON.parse(JSON.stringify(data))), requestId: response.headers.get('x-request-id') };
}

// A streamed answer through the SDK (usage asked for): its chunks without
// ids and timestamps, the text, the usage, and the gateway's request id.
async function streamed() {
  const { data: stream, response } = await client.chat.completions
    .create(
      { model: MODEL, messages: MESSAGES, stream: true, stream_options: { include_usage: true } },
      { signal: AbortSignal.timeout(TIMEOUT_MS) },
    )
    .withResponse();
  const chunks = [];
  let text = '';
  let usage = null;
  for await (const chunk of stream) {
    chunks.push(stable(JSON.parse(JSON.stringify(chunk))));
    text += chunk.choices[0]?.delta?.content || '';
    if (chunk.usage) usage = chunk.usage;
  }
  return { chunks, text, usage, requestId: response.headers.get('x-request-id') };
}

// The access-log line of a request (the gateway's usage record), waiting
// briefly for the log to be read from the pipe.
async function accessLine(requestId) {
  assert.ok(requestId, 'the gateway answers with x-request-id');
  const deadline = Date.now() + 3000;
  for (;;) {
    for (const line of dp.proc.output().split('\n')) {
      if (!line.includes('"access"') || !line.includes(requestId)) continue;
      try {
        const o = JSON.parse(line);
        if (o.event === 'access' && o.request_id === requestId) return o;
      } catch {}
    }
    if (Date.now() > deadline) assert.fail(`no access-log line for ${requestId}`);
    await sleep(20);
  }
}

async function assertUsageLogged(requestId, usage, stream) {
  const line = await accessLine(requestId);
  assert.equal(line.status, 200);
  assert.equal(line.stream, stream);
  assert.equal(line.prompt_tokens, usage.prompt_tokens, 'prompt tokens in the access log');
  assert.equal(line.completion_tokens, usage.completion_tokens, 'completion tokens in the access log');
}

// n ordinary requests in a row, all answered in full.
async function ordinary(n, expected) {
  for (let i = 0; i < n; i++) {
    const r = await rawChat();
    assert.equal(r.status, 200, `ordinary request ${i + 1}/${n} after the fault: ${r.text}`);
    assert.deepEqual(stable(r.json), expected, `ordinary request ${i + 1}/${n}: body`);
  }
}

// --- setup ---------------------------------------------------------------------

let baseline; // { plain, stream } answers without any fault

before(async () => {
  mock = await startMock();
  dp = await startDataplane(mock.url, { workers: 1 });
  client = new OpenAI({ baseURL: dp.baseURL, apiKey: dp.key, maxRetries: 0, timeout: TIMEOUT_MS });
  const p = await plain();
  const s = await streamed();
  baseline = { plain: p.body, stream: s };
  assert.match(p.body.choices[0].message.content, /^Echo: wire level check/);
  assert.ok(p.body.usage.prompt_tokens > 0 && p.body.usage.completion_tokens > 0);
  assert.deepEqual(s.usage, p.body.usage);
  assert.equal(s.text, p.body.choices[0].message.content);
});

after(async () => {
  await dp?.stop();
  await mock?.stop();
});

// --- framing the client must accept ----------------------------------------------

// Each fault: the answer equals the unfaulted one (body, usage, usage record),
// non-streamed and, where the fault applies to streams, streamed; then the
// client keeps working.
const ACCEPTED = [
  { fault: 'conn_close', stream: true },
  { fault: 'no_length', stream: true },
  { fault: 'chunked', stream: false },
  { fault: 'trickle', stream: true },
  { fault: 'interim', stream: true },
];

for (const { fault, stream } of ACCEPTED) {
  test(`${fault}: the answer is the unfaulted one, and the client stays healthy`, async () => {
    const faults0 = await faultCount();
    await setFault(fault, 1);
    const p = await plain();
    assert.equal(await faultCount(), faults0 + 1, 'the mock applied the fault to that request');
    assert.deepEqual(p.body, baseline.plain);
    await assertUsageLogged(p.requestId, baseline.plain.usage, false);

    if (stream) {
      await setFault(fault, 1);
      const s = await streamed();
      assert.equal(await faultCount(), faults0 + 2, 'the mock applied the fault to the stream');
      assert.deepEqual(s.chunks, baseline.stream.chunks);
      assert.equal(s.text, baseline.stream.text);
      assert.deepEqual(s.usage, baseline.plain.usage);
      await assertUsageLogged(s.requestId, baseline.plain.usage, true);
    }
    await ordinary(20, baseline.plain);
  });
}

test('trickle and interim together, streamed: 1xx heads split at every byte', async () => {
  const faults0 = await faultCount();
  await setFault('trickle; interim', 1);
  const s = await streamed();
  assert.equal(await faultCount(), faults0 + 1);
  assert.deepEqual(s.chunks, baseline.stream.chunks);
  await assertUsageLogged(s.requestId, baseline.plain.usage, true);
  await ordinary(5, baseline.plain);
});

// --- answers the client must refuse ---------------------------------------------------

function assertOpenAIError(r, status) {
  assert.equal(r.status, status, r.text);
  assert.ok(r.json && typeof r.json.error === 'object' && r.json.error !== null, `OpenAI error shape: ${r.text}`);
  for (const k of ['message', 'type', 'param', 'code']) assert.ok(k in r.json.error, `error.${k} present: ${r.text}`);
  assert.equal(typeof r.json.error.message, 'string');
  assert.ok(r.json.error.message.length > 0);
  assert.equal(typeof r.json.error.type, 'string');
}

// A refused answer is logged as the 502 it was, with no tokens counted.
async function assertNotBilled(requestId) {
  const line = await accessLine(requestId);
  assert.equal(line.status, 502);
  assert.equal(line.prompt_tokens, 0);
  assert.equal(line.completion_tokens, 0);
}

const REFUSED = [
  { fault: 'garbage', stream: true },
  { fault: 'huge_headers', stream: true },
  { fault: 'short_body', stream: false },
];

for (const { fault, stream } of REFUSED) {
  test(`${fault}: 502 in OpenAI's error shape, no hang, the next request succeeds`, async () => {
    const faults0 = await faultCount();
    await setFault(fault, 1);
    const r = await rawChat();
    assert.equal(await faultCount(), faults0 + 1, 'the mock applied the fault to that request');
    assertOpenAIError(r, 502);
    await assertNotBilled(r.headers.get('x-request-id'));
    await ordinary(1, baseline.plain);

    if (stream) {
      // Nothing reached the client before the failure: a plain 502 too.
      await setFault(fault, 1);
      const s = await rawChat({ stream: true, stream_options: { include_usage: true } });
      assert.equal(await faultCount(), faults0 + 2);
      assertOpenAIError(s, 502);
      await assertNotBilled(s.headers.get('x-request-id'));
      await ordinary(1, baseline.plain);
    }
  });
}

// --- connections closed under the pooled client --------------------------------------

// The upstream answers with keep-alive, then closes the connection 0-20 ms
// later without a word; the next request may be written onto it before the
// close is seen. A pooled client must retry such a request (no response byte
// received on a reused connection) on a fresh connection: no failure may reach
// the caller.
test('silent_close: 40 sequential requests, none fails', async () => {
  const faults0 = await faultCount();
  await setFault('silent_close');
  const failures = [];
  const ok = [];
  try {
    for (let i = 0; i < 40; i++) {
      const r = await rawChat().catch((e) => ({ status: 0, text: String(e) }));
      if (r.status !== 200 || !r.json || JSON.stringify(stable(r.json)) !== JSON.stringify(baseline.plain)) {
        failures.push(`#${i + 1}: ${r.status} ${r.text.slice(0, 300)}`);
      } else {
        ok.push(r.headers.get('x-request-id'));
      }
    }
  } finally {
    await clearFaults();
    await sleep(60); // past the longest silent-close delay: the last connection is closed
  }
  assert.deepEqual(failures, [], `client-visible failures under silent_close:\n${failures.join('\n')}`);
  // Every request the mock parsed got the fault (a request it left unread
  // and the client sent again is counted once).
  assert.ok((await faultCount()) >= faults0 + 40);
  // A request sent twice is counted once.
  for (const id of ok) await assertUsageLogged(id, baseline.plain.usage, false);
  await ordinary(5, baseline.plain);
});

test('silent_close, streamed: 20 sequential streams, none fails', async () => {
  await setFault('silent_close');
  const failures = [];
  const ok = [];
  try {
    // Back to back: a pause here (even to read the log) would let the
    // connection close before it is reused, and hide the race.
    for (let i = 0; i < 20; i++) {
      try {
        const s = await streamed();
        if (JSON.stringify(s.chunks) !== JSON.stringify(baseline.stream.chunks)) {
          failures.push(`#${i + 1}: stream differs: ${JSON.stringify(s.chunks).slice(0, 300)}`);
        } else {
          ok.push(s.requestId);
        }
      } catch (e) {
        failures.push(`#${i + 1}: ${e.status ?? ''} ${String(e.message || e).slice(0, 300)}`);
      }
    }
  } finally {
    await clearFaults();
    await sleep(60); // past the longest silent-close delay: the last connection is closed
  }
  assert.deepEqual(failures, [], `client-visible failures under silent_close (streams):\n${failures.join('\n')}`);
  for (const id of ok) await assertUsageLogged(id, baseline.plain.usage, true);
  await ordinary(5, baseline.plain);
});
