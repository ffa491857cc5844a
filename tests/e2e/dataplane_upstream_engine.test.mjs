// The data plane's upstream client as the upstream sees it: the request on
// the wire (headers, length, request id), kept-alive connections reused across
// sequential and concurrent requests, host names resolved (localhost), an
// unresolvable host answered with a gateway error in OpenAI's shape, and the
// --upstream-engine flag checked. Engine-agnostic: make test runs it with the
// built-in HTTP/1.1 client (default for plain http) and again with libcurl
// (SWITCHYARD_UPSTREAM_ENGINE=curl, the e2e-curl suite).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock, startDataplane, startProcess, bin } from './lib/procs.mjs';

const TIMEOUT_MS = 10000;
const MESSAGES = [{ role: 'user', content: 'what does the upstream see' }];
let mock, dp, client;

const stats = async (m = mock) =>
  (await fetch(`${m.url}/_mock/stats`, { signal: AbortSignal.timeout(TIMEOUT_MS) })).json();

before(async () => {
  mock = await startMock();
  dp = await startDataplane(mock.url, { workers: 1 });
  client = new OpenAI({ baseURL: dp.baseURL, apiKey: dp.key, maxRetries: 0, timeout: TIMEOUT_MS });
});

after(async () => {
  await dp?.stop();
  await mock?.stop();
});

test('the upstream gets Host, the provider key, the JSON body with its length and our request id', async () => {
  const { response } = await client.chat.completions
    .create({ model: 'gpt-4o-mini', messages: MESSAGES })
    .withResponse();
  const last = (await stats()).endpoints.chat_completions.last;
  const h = last.headers;
  assert.equal(h.host, `127.0.0.1:${mock.port}`);
  assert.equal(h.authorization, 'Bearer mock-key');
  assert.match(h['content-type'], /^application\/json/);
  assert.equal(Number(h['content-length']), last.body_bytes);
  assert.equal(h['x-request-id'], response.headers.get('x-request-id'));
  assert.equal(last.path, '/v1/chat/completions');
  assert.equal(last.body.model, 'gpt-4o-mini');
  assert.equal(last.stream, false);
  assert.equal(h.expect, undefined, 'no 100-continue round trip');

  const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: MESSAGES, stream: true });
  for await (const _ of stream);
  const s = (await stats()).endpoints.chat_completions.last;
  assert.equal(s.headers.accept, 'text/event-stream');
  assert.equal(s.include_usage, true, 'usage is always asked upstream');
});

test('sequential requests reuse one kept-alive upstream connection', async () => {
  await client.chat.completions.create({ model: 'gpt-4o-mini', messages: MESSAGES }); // warm
  const before = (await stats()).connections;
  for (let i = 0; i < 30; i++) {
    const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: MESSAGES });
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  }
  const after = (await stats()).connections;
  assert.ok(after - before <= 1, `30 sequential requests opened ${after - before} upstream connections`);
});

test('concurrent requests each get a connection, and come back to the pool', async () => {
  // The mock holds each answer 300 ms, so the 16 requests of a burst overlap
  // at the gateway for certain.
  const rule = await fetch(`${mock.url}/_mock/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ fault: 'latency=300', endpoint: 'chat_completions', count: 32 }),
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
  assert.equal(rule.status, 200);
  await rule.arrayBuffer();
  const burst = () =>
    Promise.all(Array.from({ length: 16 }, () => client.chat.completions.create({ model: 'gpt-4o-mini', messages: MESSAGES })));
  const c0 = (await stats()).connections;
  for (const r of await burst()) assert.equal(r.choices[0].finish_reason, 'stop');
  const c1 = (await stats()).connections;
  assert.ok(c1 - c0 >= 14 && c1 - c0 <= 16, `16 overlapping requests opened ${c1 - c0} connections`);
  for (const r of await burst()) assert.equal(r.choices[0].finish_reason, 'stop');
  const c2 = (await stats()).connections;
  // The second burst finds the first one's connections idle in the pool.
  assert.ok(c2 - c1 <= 2, `the second burst opened ${c2 - c1} more connections`);
  assert.equal((await stats()).endpoints.chat_completions.faults >= 32, true);
});

test('a host name is resolved: an upstream at http://localhost:PORT', async () => {
  const m = await startMock();
  const d = await startDataplane(m.url, { workers: 1, provider: { base_url: `http://localhost:${m.port}/v1` } });
  try {
    const c = new OpenAI({ baseURL: d.baseURL, apiKey: d.key, maxRetries: 0, timeout: TIMEOUT_MS });
    for (let i = 0; i < 3; i++) {
      const r = await c.chat.completions.create({ model: 'gpt-4o-mini', messages: MESSAGES });
      assert.match(r.choices[0].message.content, /^Echo: /);
    }
    const s = await stats(m);
    assert.equal(s.endpoints.chat_completions.completed, 3);
    assert.equal(s.endpoints.chat_completions.last.headers.host, `localhost:${m.port}`);
  } finally {
    await d.stop();
    await m.stop();
  }
});

test('an unresolvable upstream host is a gateway error in OpenAI shape, not a hang', async () => {
  const d = await startDataplane(mock.url, {
    workers: 1,
    provider: { base_url: 'http://no-such-upstream.invalid:9/v1', connect_timeout_ms: 2000 },
  });
  try {
    const t0 = Date.now();
    const res = await fetch(`${d.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${d.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: MESSAGES }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const body = await res.json();
    assert.ok([502, 504].includes(res.status), `status ${res.status}`);
    assert.equal(body.error.type, 'upstream_error');
    assert.ok(['upstream_unavailable', 'upstream_timeout'].includes(body.error.code), body.error.code);
    assert.equal(typeof body.error.message, 'string');
    assert.ok(Date.now() - t0 < 8000, 'bounded by the connect timeout');
  } finally {
    await d.stop();
  }
});

test('--upstream-engine takes auto or curl and refuses anything else', async () => {
  const p = startProcess(bin('switchyard-dataplane'), ['--upstream-engine', 'fast', '--listen', '127.0.0.1:1']);
  const code = await new Promise((resolve) => p.once('exit', resolve));
  assert.equal(code, 2);
  assert.match(p.output(), /--upstream-engine fast/);
});
