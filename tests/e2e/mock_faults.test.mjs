// Faults and stats of the mock provider: latency, chunk delay, resets before
// and in the middle of a stream, stall, malformed SSE, rate-limit headers,
// per-instance rules, abort counting, keep-alive + pipelining, clean exit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import OpenAI from 'openai';
import { startMock } from './lib/procs.mjs';

let mock;
let client;

before(async () => {
  mock = await startMock(['--name', 'faulty']);
  client = new OpenAI({ apiKey: 'mock-key', baseURL: `${mock.url}/v1`, maxRetries: 0, timeout: 5000 });
});

after(async () => {
  const code = await mock.stop();
  assert.equal(code, 0, `mock exited with ${code}:\n${mock.proc.output()}`);
});

const chat = (content = 'one two three four') => ({ model: 'gpt-4o', messages: [{ role: 'user', content }] });
const stats = async () => (await fetch(`${mock.url}/_mock/stats`)).json();
const setFaults = (body) =>
  fetch(`${mock.url}/_mock/faults`, { method: 'POST', body: JSON.stringify(body) }).then((r) => r.json());
const fault = (spec) => ({ headers: { 'x-mock-fault': spec } });

test('latency before the first byte and delay between chunks', async () => {
  let t = Date.now();
  await client.chat.completions.create(chat(), fault('latency=250'));
  assert.ok(Date.now() - t >= 240, `latency ${Date.now() - t}ms`);

  t = Date.now();
  const stream = await client.chat.completions.create({ ...chat(), stream: true }, fault('chunk_delay=40'));
  const arrivals = [];
  for await (const _ of stream) arrivals.push(Date.now() - t); // eslint-disable-line no-unused-vars
  // 1 role + 5 words + 1 finish chunk: 6 gaps of 40 ms.
  assert.equal(arrivals.length, 7);
  assert.ok(arrivals.at(-1) >= 6 * 40 - 10, `stream took ${arrivals.at(-1)}ms`);
});

test('connection reset before the response and in the middle of a stream', async () => {
  await assert.rejects(client.chat.completions.create(chat(), fault('reset=before')), (e) => {
    assert.ok(e instanceof OpenAI.APIConnectionError, e.constructor.name);
    return true;
  });
  const stream = await client.chat.completions.create({ ...chat(), stream: true }, fault('reset=3'));
  const got = [];
  await assert.rejects(
    (async () => {
      for await (const chunk of stream) got.push(chunk);
    })(),
  );
  assert.equal(got.length, 3); // exactly the events before the reset
  assert.equal(got[1].choices[0].delta.content, 'Echo:');
});

test('in-stream error after the 200 surfaces as an SDK APIError', async () => {
  const stream = await client.chat.completions.create({ ...chat(), stream: true }, fault('stream_error=2'));
  const got = [];
  await assert.rejects(
    (async () => {
      for await (const chunk of stream) got.push(chunk);
    })(),
    (e) => {
      assert.ok(e instanceof OpenAI.APIError, e.constructor.name);
      assert.match(e.message, /server had an error/);
      return true;
    },
  );
  assert.equal(got.length, 2);
});

test('stall: headers then nothing; the client gives up and the mock counts an abort', async () => {
  await fetch(`${mock.url}/_mock/reset`, { method: 'POST' });
  // The SDKs' timeouts stop at the response head, so the client here is fetch
  // with a deadline over the whole body.
  const t = Date.now();
  const res = await fetch(`${mock.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: 'Bearer mock-key', 'x-mock-fault': 'stall' },
    body: JSON.stringify(chat()),
    signal: AbortSignal.timeout(300),
  });
  assert.equal(res.status, 200);
  assert.ok(Number(res.headers.get('content-length')) > 0);
  await assert.rejects(res.text(), (e) => e.name === 'TimeoutError' || e.name === 'AbortError');
  assert.ok(Date.now() - t < 2000);
  // The abort is seen when the client's socket closes.
  let st;
  for (let i = 0; i < 40; i++) {
    st = await stats();
    if (st.endpoints.chat_completions.aborted === 1) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.equal(st.endpoints.chat_completions.aborted, 1);
  assert.equal(st.endpoints.chat_completions.completed, 0);
  assert.equal(st.endpoints.chat_completions.faults, 1);
});

test('malformed SSE makes the SDK fail; rate-limit headers are sent', async () => {
  const stream = await client.chat.completions.create({ ...chat(), stream: true }, fault('malformed'));
  await assert.rejects(
    (async () => {
      for await (const _ of stream); // eslint-disable-line no-unused-vars
    })(),
    SyntaxError,
  );
  const { response } = await client.chat.completions
    .create(chat(), fault('rl_requests=7;rl_tokens=900;rl_reset=2'))
    .withResponse();
  assert.equal(response.headers.get('x-ratelimit-remaining-requests'), '7');
  assert.equal(response.headers.get('x-ratelimit-remaining-tokens'), '900');
  assert.equal(response.headers.get('x-ratelimit-reset-requests'), '2s');
});

test('per-instance rules: count, endpoint filter, clear; bad rules are 400', async () => {
  await fetch(`${mock.url}/_mock/faults`, { method: 'DELETE' });
  const r = await setFaults({ fault: { status: 503 }, count: 2, endpoint: 'chat_completions' });
  assert.equal(r.ok, true);
  assert.equal(r.rules.length, 1);
  // Embeddings are not affected by a chat rule.
  await client.embeddings.create({ model: 'e', input: 'x' });
  for (let i = 0; i < 2; i++) {
    await assert.rejects(client.chat.completions.create(chat()), (e) => e.status === 503);
  }
  const ok = await client.chat.completions.create(chat());
  assert.equal(ok.choices[0].finish_reason, 'stop');

  await setFaults({ fault: 'status=429;retry_after=9' }); // every request until cleared
  await assert.rejects(client.chat.completions.create(chat()), (e) => {
    assert.ok(e instanceof OpenAI.RateLimitError);
    assert.equal(e.headers.get('retry-after'), '9');
    return true;
  });
  await fetch(`${mock.url}/_mock/faults`, { method: 'DELETE' });
  await client.chat.completions.create(chat());

  const bad = await fetch(`${mock.url}/_mock/faults`, { method: 'POST', body: '{"fault":{"volume":11}}' });
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error.message, /unknown fault key/);
  const bad2 = await fetch(`${mock.url}/_mock/faults`, { method: 'POST', body: 'not json' });
  assert.equal(bad2.status, 400);
});

test('stats count received, completed, errors and faults per endpoint; reset zeroes them', async () => {
  await fetch(`${mock.url}/_mock/reset`, { method: 'POST' });
  await client.chat.completions.create(chat());
  await client.chat.completions.create(chat(), fault('latency=1'));
  await assert.rejects(client.chat.completions.create(chat(), fault('status=500')));
  await client.embeddings.create({ model: 'e', input: 'x' });
  const st = await stats();
  assert.deepEqual(
    (({ received, completed, aborted, faults, errors }) => ({ received, completed, aborted, faults, errors }))(
      st.endpoints.chat_completions,
    ),
    { received: 3, completed: 3, aborted: 0, faults: 2, errors: 1 },
  );
  assert.equal(st.endpoints.embeddings.received, 1);
  assert.equal(st.endpoints.messages.received, 0);
  assert.equal(st.requests, 4);
  await fetch(`${mock.url}/_mock/reset`, { method: 'POST' });
  assert.equal((await stats()).requests, 0);
});

test('keep-alive and pipelining: three requests in one write, three answers in order', async () => {
  const body = (w) => JSON.stringify(chat(w));
  const req = (w, extra = '') =>
    `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer mock-key\r\n` +
    `Content-Type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(body(w))}\r\n\r\n${body(w)}`;
  const sock = net.connect(mock.port, '127.0.0.1');
  let data = '';
  sock.on('data', (d) => (data += d));
  const closed = new Promise((r) => sock.on('close', r));
  await new Promise((r) => sock.on('connect', r));
  // The second one is delayed: the third must still come after it.
  sock.write(req('alpha') + req('beta', 'x-mock-fault: latency=50\r\n') + req('gamma', 'Connection: close\r\n'));
  let timer;
  const deadline = new Promise((_, rej) => {
    timer = setTimeout(() => rej(new Error(`timeout: ${data}`)), 3000);
  });
  await Promise.race([closed, deadline]).finally(() => clearTimeout(timer));
  const answers = [...data.matchAll(/"content":"Echo: (\w+)"/g)].map((m) => m[1]);
  assert.deepEqual(answers, ['alpha', 'beta', 'gamma']);
  assert.equal((data.match(/HTTP\/1\.1 200 OK/g) || []).length, 3);
});

test('garbage HTTP gets a 400 and the server keeps serving', async () => {
  const sock = net.connect(mock.port, '127.0.0.1');
  let data = '';
  sock.on('data', (d) => (data += d));
  const closed = new Promise((r) => sock.on('close', r));
  sock.write('HELLO THERE\r\n\r\n');
  await closed;
  assert.match(data, /^HTTP\/1\.1 400 /);
  assert.match(data, /"type":"invalid_request_error"/);
  const res = await client.chat.completions.create(chat());
  assert.equal(res.choices[0].message.content, 'Echo: one two three four');
});

test('SIGTERM exits cleanly with a stream in flight', async () => {
  const m = await startMock(['--name', 'term']);
  const c = new OpenAI({ apiKey: 'mock-key', baseURL: `${m.url}/v1`, maxRetries: 0, timeout: 5000 });
  const stream = await c.chat.completions.create({ ...chat(), stream: true }, fault('chunk_delay=200'));
  const it = stream[Symbol.asyncIterator]();
  await it.next();
  const code = await m.stop();
  assert.equal(code, 0, m.proc.output());
  await assert.rejects(
    (async () => {
      for (;;) if ((await it.next()).done) throw new Error('stream ended without error');
    })(),
  );
});
