// Rate limits and hard budgets exact across 2 data-plane workers (each
// enforces its share; the snapshot announces 2 live workers).
//  - a key limited to 600 requests per (compressed, 20 s) minute, 50
//    concurrent clients for 5 s: accepted within ±10% of 150, the rest 429
//    with Retry-After and x-ratelimit-* headers;
//  - a hard budget of $1.00 under concurrent load priced by the mock's usage:
//    billed spend <= $1.00 + the estimate error of requests in flight, later
//    requests refused, and a fresh window (fake clock) allows again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { startMock, startDataplane, tempDir, sleep } from './lib/procs.mjs';
import { KEY, chat, routingSnapshot } from './routing_lib.mjs';

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
