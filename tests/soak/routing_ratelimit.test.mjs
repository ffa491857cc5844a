// Soak (make soak, not part of make test): the exact scenario with a
// real minute. 2 workers, a key limited to 600 RPM, 50 concurrent clients for
// 30 s: accepted requests within ±10% of 300 (600/min x 0.5 min); the rest
// 429 with Retry-After.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startDataplane } from '../e2e/lib/procs.mjs';
import { KEY, chat, routingSnapshot } from '../e2e/routing_lib.mjs';

let a, b, c;
before(async () => {
  [a, b, c] = await Promise.all([startMock(['--name', 'a']), startMock(['--name', 'b']),
    startMock(['--name', 'c'])]);
});
after(async () => Promise.all([a?.stop(), b?.stop(), c?.stop()]));

test('600 RPM, 2 workers, 50 clients, 30 s', { timeout: 90000 }, async () => {
  const snap = await routingSnapshot({ a, b, c }, { key: { limits: { rpm: 600, tpm: 0 } } });
  const dp = await startDataplane(b.url, { workers: 2, key: KEY, snapshot: snap });
  try {
    let ok = 0, limited = 0, other = 0, noRetryAfter = 0;
    const t0 = Date.now();
    const client = async () => {
      while (Date.now() - t0 < 30000) {
        const r = await chat(dp, { model: 'm-good', messages: [{ role: 'user', content: 'hi' }] });
        if (r.status === 200) ok++;
        else if (r.status === 429) {
          limited++;
          if (!(Number(r.headers.get('retry-after')) >= 1)) noRetryAfter++;
        } else other++;
      }
    };
    await Promise.all(Array.from({ length: 50 }, client));
    const elapsed = Date.now() - t0;
    const expected = 600 * (30000 / 60000); // requests start within 30 s, decided on arrival
    console.log('soak ratelimit:', JSON.stringify({ accepted: ok, refused: limited, other, elapsed_ms: elapsed,
      expected: Math.round(expected), accuracy: Number((ok / expected).toFixed(3)) }));
    assert.equal(other, 0);
    assert.equal(noRetryAfter, 0);
    assert.ok(ok >= expected * 0.9 && ok <= expected * 1.1);
  } finally {
    await dp.stop();
  }
});
