// Failover, the stream contract and circuit breakers through 2 data-plane
// workers, with three mock instances as distinct providers: "a" plays the
// broken providers, "b" is the healthy fallback, "c" holds the rules' targets.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock, startDataplane, sleep } from './lib/procs.mjs';
import { KEY, chat, chatStats, resetStats, answeredBy, routingSnapshot } from './routing_lib.mjs';

let a, b, c, dp;
const figures = {};

before(async () => {
  [a, b, c] = await Promise.all([startMock(['--name', 'a']), startMock(['--name', 'b']),
    startMock(['--name', 'c'])]);
  dp = await startDataplane(a.url, {
    workers: 2,
    key: KEY,
    snapshot: await routingSnapshot({ a, b, c }),
    env: { SWITCHYARD_BREAKER_FAILURES: '3', SWITCHYARD_BREAKER_OPEN_MS: '1000' },
  });
});

after(async () => {
  console.log('routing failover figures:', JSON.stringify(figures));
  const code = dp ? await dp.stop() : 0;
  await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
  assert.equal(code, 0, `data plane exited with ${code}:\n${dp && dp.proc.output().slice(-4000)}`);
});

const msg = (text) => ({ messages: [{ role: 'user', content: text }] });
const attemptsOf = (rs) => rs.reduce((n, r) => n + Number(r.headers.get('x-switchyard-attempts') || 0), 0);

async function burst(model, n, extra = {}) {
  return Promise.all(Array.from({ length: n }, (_, i) => chat(dp, { model, ...msg(`req ${i} hello`), ...extra })));
}

test('primary down (connection refused): every answer comes from the next target', async () => {
  await resetStats(a, b);
  const rs = await burst('down-first', 20);
  for (const r of rs) {
    assert.equal(r.status, 200, r.text);
    assert.equal(answeredBy(r.json.id), 'b');
    assert.equal(r.headers.get('x-switchyard-route'), 'down-first');
    assert.equal(r.headers.get('x-switchyard-target'), 'p-good/m-good');
  }
  assert.equal((await chatStats(b)).completed, 20);
  const attempts = attemptsOf(rs);
  // Each request tried the refused target first until its breaker opened (3 failures per worker).
  assert.ok(attempts >= 22 && attempts <= 40, `attempts ${attempts}`);
  figures.refused = { requests: 20, client_errors: 0, attempts, failovers: attempts - 20 };
});

test('429 storm: zero client errors, the throttled provider saw the attempts', async () => {
  await resetStats(a, b);
  const rs = await burst('throttled', 20);
  for (const r of rs) {
    assert.equal(r.status, 200, r.text);
    assert.equal(answeredBy(r.json.id), 'b');
  }
  const sa = await chatStats(a), sb = await chatStats(b);
  assert.ok(sa.received >= 1, 'the throttled target was tried');
  assert.equal(sa.faults, sa.received); // every attempt there was a 429
  assert.equal(sb.completed, 20);
  // Later requests skip the throttled target (Retry-After cooldown, breaker).
  const later = [];
  for (let i = 0; i < 5; i++) later.push(await chat(dp, { model: 'throttled', ...msg(`later ${i}`) }));
  assert.ok(later.every((r) => r.status === 200 && r.headers.get('x-switchyard-attempts') === '1'));
  figures.throttled = { requests: 25, client_errors: 0, attempts: attemptsOf(rs) + attemptsOf(later),
    tried_429: (await chatStats(a)).received };
});

test('a stream reset before its first byte fails over invisibly', async () => {
  await resetStats(a, b);
  const client = new OpenAI({ baseURL: dp.baseURL, apiKey: KEY, maxRetries: 0, timeout: 10000 });
  const stream = await client.chat.completions.create({ model: 'rst', stream: true, ...msg('one two three') });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content || '';
  assert.equal(text, 'Echo: one two three');
  // libcurl itself may retry a reset on a reused connection once.
  assert.ok((await chatStats(a)).received >= 1);
  assert.equal((await chatStats(b)).completed, 1);
});

test('failing mid-stream: an explicit error event, never a clean-looking end', async () => {
  await resetStats(a, b);
  const r = await chat(dp, { model: 'cut', stream: true, ...msg('alpha beta gamma delta epsilon zeta eta theta') });
  assert.equal(r.status, 200);
  const events = r.text.split('\n\n').filter((e) => e.startsWith('data: '));
  const last = events[events.length - 1];
  assert.ok(events.length >= 2, r.text);
  assert.match(last, /^data: \{"error":/);
  const err = JSON.parse(last.slice(6)).error;
  assert.equal(typeof err.message, 'string');
  assert.ok(!r.text.includes('[DONE]'));
  assert.equal((await chatStats(b)).received, 0, 'no failover after the first byte');
  // The SDK surfaces it as an error, not as a short answer.
  const client = new OpenAI({ baseURL: dp.baseURL, apiKey: KEY, maxRetries: 0, timeout: 10000 });
  await assert.rejects(async () => {
    const s = await client.chat.completions.create({ model: 'cut', stream: true, ...msg('a b c d e f g h') });
    for await (const _ of s);
  });
  figures.midstream = { events_before_error: events.length - 1, error_event: true };
});

test("a caller's 4xx is never retried", async () => {
  await resetStats(a, b);
  const r = await chat(dp, { model: 'caller-error', ...msg('x') });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.type !== undefined, true);
  assert.equal((await chatStats(a)).received, 1);
  assert.equal((await chatStats(b)).received, 0);
});

test('circuit breaker opens after the failures, stops traffic, closes after a good probe', async () => {
  await resetStats(a, b);
  await fetch(`${a.url}/_mock/faults`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ fault: { status: 500 }, endpoint: 'chat_completions' }) });
  const first = [];
  for (let i = 0; i < 30; i++) first.push(await chat(dp, { model: 'flaky', ...msg(`n ${i}`) }));
  assert.ok(first.every((r) => r.status === 200 && answeredBy(r.json.id) === 'b'));
  const opened = (await chatStats(a)).received;
  // 3 consecutive failures per worker open it: at most 6 attempts reached "a".
  assert.ok(opened >= 3 && opened <= 6, `flaky target got ${opened} requests`);
  const tail = first.slice(-10).map((r) => r.headers.get('x-switchyard-attempts'));
  assert.deepEqual([...new Set(tail)], ['1'], 'open breaker: no more attempts on the flaky target');
  // Heal it; after open_ms the half-open probe succeeds and traffic returns.
  await fetch(`${a.url}/_mock/faults`, { method: 'DELETE' });
  await sleep(1100);
  const later = [];
  for (let i = 0; i < 10; i++) later.push(await chat(dp, { model: 'flaky', ...msg(`m ${i}`) }));
  assert.ok(later.every((r) => r.status === 200));
  assert.ok(later.slice(-4).every((r) => answeredBy(r.json.id) === 'a'), 'closed again: primary answers');
  figures.breaker = { requests_while_failing: 30, reached_failing_target: opened,
    after_recovery_from_primary: later.filter((r) => answeredBy(r.json.id) === 'a').length };
});

test('lowest-latency: once measured, the faster target gets the traffic', async () => {
  await resetStats(a, b);
  const rs = [];
  for (let i = 0; i < 16; i++) rs.push(await chat(dp, { model: 'quick', ...msg(`q ${i}`) }));
  assert.ok(rs.every((r) => r.status === 200));
  // Each worker tries the unmeasured targets first, then sticks to the fast one.
  const tail = rs.slice(-6).map((r) => answeredBy(r.json.id));
  assert.deepEqual([...new Set(tail)], ['b'], tail.join(','));
  const sa = await chatStats(a);
  assert.ok(sa.received >= 1 && sa.received <= 4, `laggy target got ${sa.received}`);
  figures.lowest_latency = { requests: 16, to_laggy: sa.received };
});

test('rules: long prompt, task hint, lowest cost', async () => {
  await resetStats(c);
  const long = await chat(dp, { model: 'auto', ...msg('word '.repeat(3000)) });
  assert.equal(long.status, 200, long.text);
  assert.equal(long.headers.get('x-switchyard-rule'), 'long');
  assert.equal(long.headers.get('x-switchyard-target'), 'p-c/m-long');
  assert.equal(long.json.model, 'm-long');
  const fast = await chat(dp, { model: 'auto', ...msg('classify me') }, { 'x-switchyard-task': 'fast-classify' });
  assert.equal(fast.headers.get('x-switchyard-target'), 'p-c/m-fast');
  const meta = await chat(dp, { model: 'auto', metadata: { task: 'fast-classify' }, ...msg('classify me') });
  assert.equal(meta.headers.get('x-switchyard-rule'), 'fast');
  const cheap = await chat(dp, { model: 'auto', ...msg('summarise this') }, { 'x-switchyard-task': 'bulk' });
  assert.equal(cheap.headers.get('x-switchyard-rule'), 'bulk');
  assert.equal(cheap.headers.get('x-switchyard-target'), 'p-c/m-cheap');
  assert.equal(cheap.json.model, 'm-cheap');
  const dflt = await chat(dp, { model: 'auto', ...msg('anything') });
  assert.equal(dflt.headers.get('x-switchyard-rule'), 'default');
  assert.equal(dflt.headers.get('x-switchyard-target'), 'p-c/m-big');
  // A concrete model: no route, but who served it.
  const concrete = await chat(dp, { model: 'm-cheap', ...msg('direct') });
  assert.equal(concrete.headers.get('x-switchyard-route'), null);
  assert.equal(concrete.headers.get('x-switchyard-target'), 'p-c/m-cheap');
});

// Last: the slow upstream keeps the cancelled requests for a while and would
// blur the other tests' counts on instance a.
test('slow first byte: the first-byte deadline fails over to the next target', async () => {
  await resetStats(a, b);
  const t0 = Date.now();
  const rs = await burst('slow', 6);
  const ms = Date.now() - t0;
  for (const r of rs) {
    assert.equal(r.status, 200, r.text);
    assert.equal(answeredBy(r.json.id), 'b');
  }
  const sa = await chatStats(a);
  assert.ok(sa.received >= 1 && sa.received <= 6, `slow target tried ${sa.received}x`);
  assert.ok(ms < 2900, `failover took ${ms} ms (the slow upstream answers after 3000)`);
  figures.slow = { requests: 6, client_errors: 0, attempts: attemptsOf(rs), tried_slow: sa.received, wall_ms: ms };
});
