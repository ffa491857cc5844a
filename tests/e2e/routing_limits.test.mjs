// Rate limits and hard budgets exact across 2 data-plane workers (each
// enforces its share; the snapshot announces 2 live workers).
//  - a key limited to 600 requests per (compressed, 20 s) minute, 50
//    concurrent clients for 5 s: accepted within ±10% of 150, the rest 429
//    with Retry-After and x-ratelimit-* headers;
//  - a hard budget of $1.00 under concurrent load priced by the mock's usage:
//    billed spend <= $1.00 + the estimate error of requests in flight, later
//    requests refused, and a fresh window (fake clock) allows again;
//  - per-model limits follow the target actually attempted: a fallback
//    model's limit holds under failover (the rest 429, scope model), and a
//    first-choice model at its limit hands requests to the next target.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { startMock, startDataplane, tempDir, sleep } from './lib/procs.mjs';
import { KEY, chat, chatStats, resetStats, answeredBy, routingSnapshot } from './routing_lib.mjs';

let a, b, c;
const figures = {};

before(async () => {
  [a, b, c] = await Promise.all([startMock(['--name', 'a']), startMock(['--name', 'b']),
    startMock(['--name', 'c'])]);
});

after(async () => {
  console.log('routing limits figures:', JSON.stringify(figures));
  await Promise.all([a?.stop(), b?.stop(), c?.stop()]);
});

test('600 RPM (20 s window), 50 concurrent clients for 5 s: accepted within ±10%', async () => {
  // Each worker enforces half the limit, so each must see more demand than
  // its share: a 20 s "minute" (15 accepted per second per worker) keeps that
  // true even when the shared CI machine slows the 50 clients down.
  const windowMs = 20000;
  const snap = await routingSnapshot({ a, b, c }, { key: { limits: { rpm: 600, tpm: 0 } } });
  const dp = await startDataplane(b.url, { workers: 2, key: KEY, snapshot: snap,
    env: { SWITCHYARD_RATELIMIT_WINDOW_MS: String(windowMs) } });
  try {
    const durationMs = 5000;
    let ok = 0, limited = 0, other = 0;
    let sample429 = null, sample200 = null;
    const t0 = Date.now();
    const client = async () => {
      while (Date.now() - t0 < durationMs) {
        const r = await chat(dp, { model: 'm-good', messages: [{ role: 'user', content: 'hi' }] });
        if (r.status === 200) { ok++; sample200 ??= r; }
        else if (r.status === 429) { limited++; sample429 ??= r; }
        else other++;
      }
    };
    await Promise.all(Array.from({ length: 50 }, client));
    const elapsed = Date.now() - t0;
    // Every request started within durationMs, and the gateway decides at
    // arrival: the window that counts is durationMs long.
    const expected = 600 * (durationMs / windowMs);
    const accuracy = ok / expected;
    figures.ratelimit = { accepted: ok, refused: limited, other, elapsed_ms: elapsed,
      expected: Math.round(expected), accuracy: Number(accuracy.toFixed(3)) };
    assert.equal(other, 0);
    assert.ok(accuracy >= 0.9 && accuracy <= 1.1, JSON.stringify(figures.ratelimit));
    assert.ok(limited > ok, 'the clients asked for much more than the limit');
    // A refusal: OpenAI's shape, Retry-After and the figures.
    assert.equal(sample429.json.error.code, 'rate_limit_exceeded');
    assert.equal(sample429.json.error.type, 'requests');
    assert.match(sample429.json.error.message, /Rate limit reached for api key on requests per min: limit 600/);
    assert.ok(Number(sample429.headers.get('retry-after')) >= 1);
    assert.equal(sample429.headers.get('x-ratelimit-limit-requests'), '600');
    assert.equal(sample429.headers.get('x-ratelimit-remaining-requests'), '0');
    assert.match(sample429.headers.get('x-ratelimit-reset-requests'), /^\d+(ms|s)$/);
    // Allowed answers carry the remaining figures too.
    assert.equal(sample200.headers.get('x-ratelimit-limit-requests'), '600');
    assert.match(sample200.headers.get('x-ratelimit-remaining-requests'), /^\d+$/);
  } finally {
    const code = await dp.stop();
    assert.equal(code, 0, `data plane exited with ${code}:\n${dp.proc.output().slice(-4000)}`);
  }
});

test('hard budget $1.00 under concurrent load: spend <= $1.00 + estimate error in flight', async () => {
  const dir = tempDir('sy-clock-');
  const clock = path.join(dir, 'now');
  const now = Math.floor(Date.now() / 1000);
  writeFileSync(clock, String(now));
  const snap = await routingSnapshot({ a, b, c }, {
    budgets: [{ id: 'b-key', scope: 'BUDGET_SCOPE_KEY', scope_id: 'k1', period: 'daily', amount_usd: 1.0,
      hard: true }],
  });
  // Expensive model: $1000 / $2000 per million tokens; the provider makes
  // every answer 40 words, more than max_tokens (16) lets the gateway expect.
  snap.providers.push({ id: 'p-pricey', name: 'pricey', kind: 'PROVIDER_KIND_OPENAI_COMPATIBLE',
    base_url: `${b.url}/v1`, api_key: 'mock-key', headers: { 'x-mock-words': '40' } });
  snap.models.push({ id: 'm-pricey', provider_id: 'p-pricey', upstream_name: 'm-pricey', capabilities: ['chat'],
    prices: [{ valid_from: 0, input_per_mtok: 1000, output_per_mtok: 2000 }] });
  const dp = await startDataplane(b.url, { workers: 2, key: KEY, snapshot: snap,
    env: { SWITCHYARD_FAKE_NOW_FILE: clock } });
  try {
    const body = { model: 'm-pricey', max_tokens: 16, messages: [{ role: 'user', content: 'spend some budget now' }] };
    const bodyLen = Buffer.byteLength(JSON.stringify(body));
    const estimate = ((Math.floor(bodyLen / 4) + 1) * 1000 + 16 * 2000) / 1e6;
    let spent = 0, ok = 0, refused = 0, other = 0, maxCost = 0, refusal = null;
    const concurrency = 10;
    const client = async () => {
      for (;;) {
        const r = await chat(dp, body);
        if (r.status === 200) {
          const u = r.json.usage;
          const cost = (u.prompt_tokens * 1000 + u.completion_tokens * 2000) / 1e6;
          spent += cost;
          maxCost = Math.max(maxCost, cost);
          ok++;
        } else if (r.status === 429 && r.json?.error?.code === 'budget_exceeded') {
          refused++;
          refusal ??= r;
          return;
        } else {
          other++;
          return;
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, client));
    // In snapshot-file mode each worker holds half the budget: a client can
    // be refused by a worker whose half is spent while the other still has
    // some. Go on until the whole budget is refused several times in a row.
    for (let i = 0, refusedInARow = 0; i < 100 && refusedInARow < 6; i++) {
      const r = await chat(dp, body);
      if (r.status === 200) {
        const u = r.json.usage;
        const cost = (u.prompt_tokens * 1000 + u.completion_tokens * 2000) / 1e6;
        spent += cost;
        maxCost = Math.max(maxCost, cost);
        ok++;
        refusedInARow = 0;
      } else if (r.status === 429 && r.json?.error?.code === 'budget_exceeded') {
        refusedInARow++;
      } else {
        other++;
        break;
      }
    }
    const errorPerRequest = Math.max(0, maxCost - estimate);
    const bound = 1.0 + concurrency * errorPerRequest;
    figures.budget = { accepted: ok, billed_usd: Number(spent.toFixed(4)), estimate_usd: estimate,
      actual_usd: maxCost, bound_usd: Number(bound.toFixed(4)),
      overshoot_usd: Number(Math.max(0, spent - 1).toFixed(4)) };
    assert.equal(other, 0);
    assert.ok(spent <= bound + 1e-9, JSON.stringify(figures.budget));
    assert.ok(spent >= 0.8, `the budget was used (${spent})`);
    assert.match(refusal.json.error.message, /budget 'b-key' of \$1\.00 is exhausted/);
    assert.equal(refusal.json.error.type, 'insufficient_quota');
    assert.ok(Number(refusal.headers.get('retry-after')) >= 1);
    // Every later request is refused.
    for (let i = 0; i < 6; i++) {
      const r = await chat(dp, body);
      assert.equal(r.status, 429);
      assert.equal(r.json.error.code, 'budget_exceeded');
    }
    // The next daily window (UTC) starts with the whole budget again.
    const tomorrow = Math.floor(now / 86400) * 86400 + 86400 + 5;
    writeFileSync(clock, String(tomorrow));
    await sleep(150);
    let after = 0;
    for (let i = 0; i < 4; i++) after += (await chat(dp, body)).status === 200 ? 1 : 0;
    assert.equal(after, 4);
    figures.budget.after_reset_ok = after;
  } finally {
    const code = await dp.stop();
    assert.equal(code, 0, `data plane exited with ${code}:\n${dp.proc.output().slice(-4000)}`);
  }
});

// Two routes over models with their own RPM limits (cluster-wide 60 per a
// 20 s window: 2 workers x 1.5 per second, a burst of 1 each):
//   lim-fallback: m-lim-a (mock a, every answer a 500) then m-lim-b (mock b, limited)
//   lim-first:    m-lim-c (mock c, limited) then m-lim-d (mock b, unlimited)
// Breakers are off so that every request of lim-fallback tries A first and
// reaches B through failover.
async function modelLimitDataplane() {
  const snap = await routingSnapshot({ a, b, c });
  const prov = (id, url, o = {}) => ({ id, name: id, kind: 'PROVIDER_KIND_OPENAI_COMPATIBLE',
    base_url: `${url}/v1`, api_key: 'mock-key', ...o });
  const model = (id, provider_id, o = {}) => ({ id, provider_id, upstream_name: id, capabilities: ['chat'],
    prices: [{ valid_from: 0, input_per_mtok: 1, output_per_mtok: 2 }], ...o });
  const route = (alias, targets) => ({ id: `r-${alias}`, alias, max_attempts: 2, deadline_ms: 10000,
    rules: [{ name: 'all', strategy: 'priority', targets: targets.map((m) => ({ model_id: m, weight: 1 })) }] });
  snap.providers.push(prov('p-lim-500', a.url, { headers: { 'x-mock-fault': 'status=500' } }),
    prov('p-lim-b', b.url), prov('p-lim-c', c.url));
  snap.models.push(model('m-lim-a', 'p-lim-500'), model('m-lim-b', 'p-lim-b', { limits: { rpm: 60, tpm: 0 } }),
    model('m-lim-c', 'p-lim-c', { limits: { rpm: 60, tpm: 0 } }), model('m-lim-d', 'p-lim-b'));
  snap.routes.push(route('lim-fallback', ['m-lim-a', 'm-lim-b']), route('lim-first', ['m-lim-c', 'm-lim-d']));
  return startDataplane(b.url, { workers: 2, key: KEY, snapshot: snap,
    env: { SWITCHYARD_RATELIMIT_WINDOW_MS: '20000', SWITCHYARD_BREAKER_FAILURES: '0',
      SWITCHYARD_BREAKER_ERROR_RATE: '0' } });
}

// What 60 per 20 s can admit over elapsedMs across the 2 workers: each its
// burst of 1 plus 1.5 per second.
const modelBound = (elapsedMs) => 2 * (1 + Math.ceil(1.5 * (elapsedMs / 1000)));

async function load(dp, model, n, concurrency) {
  const out = [];
  let next = 0;
  const client = async () => {
    while (next < n) {
      const i = next++;
      out.push(await chat(dp, { model, messages: [{ role: 'user', content: `limited ${i}` }] }));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  return out;
}

test('model limit of a fallback target holds under failover: the rest 429 with scope model', async () => {
  const dp = await modelLimitDataplane();
  try {
    await resetStats(a, b);
    const N = 60, sent = 80; // more than the whole window's limit, sent within a few seconds
    const t0 = Date.now();
    const rs = await load(dp, 'lim-fallback', sent, 8);
    const elapsed = Date.now() - t0;
    const ok = rs.filter((r) => r.status === 200);
    const limited = rs.filter((r) => r.status === 429);
    const sb = await chatStats(b), sa = await chatStats(a);
    figures.model_fallback = { sent, ok: ok.length, limited: limited.length, b_received: sb.received,
      a_received: sa.received, elapsed_ms: elapsed, bound: modelBound(elapsed) };
    assert.equal(ok.length + limited.length, sent, JSON.stringify(figures.model_fallback));
    assert.ok(elapsed < 20000, 'within one window');
    // B's mock saw only what its limit admits (before: every request).
    assert.ok(sb.received <= N, JSON.stringify(figures.model_fallback));
    assert.ok(sb.received <= modelBound(elapsed), JSON.stringify(figures.model_fallback));
    assert.equal(sb.received, ok.length);
    assert.ok(ok.length >= 1, 'B served what its limit admits');
    for (const r of ok) {
      assert.equal(answeredBy(r.json.id), 'b');
      assert.equal(r.headers.get('x-switchyard-target'), 'p-lim-b/m-lim-b');
      assert.equal(r.headers.get('x-switchyard-attempts'), '2');
    }
    // Every request went to A first (its failure did not stop B's limit).
    assert.ok(sa.received >= sent, JSON.stringify(figures.model_fallback));
    const r = limited[0];
    assert.equal(r.json.error.code, 'rate_limit_exceeded');
    assert.equal(r.json.error.type, 'requests');
    assert.match(r.json.error.message, /Rate limit reached for model on requests per min: limit 60/);
    assert.ok(Number(r.headers.get('retry-after')) >= 1);
    assert.equal(r.headers.get('x-ratelimit-limit-requests'), '60');
    assert.equal(r.headers.get('x-ratelimit-remaining-requests'), '0');
    // The concrete model keeps its one check: 429 from its own limit.
    const direct = await load(dp, 'm-lim-b', 6, 6);
    const d429 = direct.filter((x) => x.status === 429);
    assert.ok(d429.length >= 1, direct.map((x) => x.status).join(','));
    assert.match(d429[0].json.error.message, /Rate limit reached for model on requests per min: limit 60/);
  } finally {
    const code = await dp.stop();
    assert.equal(code, 0, `data plane exited with ${code}:\n${dp.proc.output().slice(-4000)}`);
  }
});

test('first target\'s model at its limit: the next target serves, nothing refused', async () => {
  const dp = await modelLimitDataplane();
  try {
    await resetStats(b, c);
    const sent = 40;
    const t0 = Date.now();
    const rs = await load(dp, 'lim-first', sent, 4);
    const elapsed = Date.now() - t0;
    const by = { b: 0, c: 0 };
    for (const r of rs) {
      assert.equal(r.status, 200, r.text);
      by[answeredBy(r.json.id)]++;
      const target = r.headers.get('x-switchyard-target');
      assert.equal(target, answeredBy(r.json.id) === 'c' ? 'p-lim-c/m-lim-c' : 'p-lim-b/m-lim-d');
      // Skipping the limited target is no failover: one attempt.
      assert.equal(r.headers.get('x-switchyard-attempts'), '1');
    }
    const sc = await chatStats(c);
    figures.model_first = { sent, c_served: by.c, b_served: by.b, c_received: sc.received, elapsed_ms: elapsed,
      bound: modelBound(elapsed) };
    assert.equal(by.b + by.c, sent);
    assert.equal(sc.received, by.c);
    assert.ok(by.c >= 1 && by.c <= modelBound(elapsed), JSON.stringify(figures.model_first));
    assert.ok(by.b >= sent - modelBound(elapsed), JSON.stringify(figures.model_first));
  } finally {
    const code = await dp.stop();
    assert.equal(code, 0, `data plane exited with ${code}:\n${dp.proc.output().slice(-4000)}`);
  }
});
