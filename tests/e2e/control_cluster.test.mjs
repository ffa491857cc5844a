// The control plane and a 2-worker data plane over nanomsg ipc, with the mock
// provider upstream: a key created through the admin API works on the data
// plane within 1 s, a revoked key is refused within 1 s, and usage through
// both workers adds up exactly, in tokens and in cost, in the usage API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startMock, tempDir } from './lib/procs.mjs';
import {
  startControl, startDataplane, writeKey, createTenantWithKey, chat, load, expectedCost,
  waitUsage, waitKeyWorks, must, sleep,
} from './control_lib.mjs';

let dir, mock, cp, dp, demo;

before(async () => {
  dir = tempDir('sy-cluster-');
  const keyFile = writeKey(path.join(dir, 'cluster.key'));
  mock = await startMock();
  cp = await startControl(dir, { clusterKeyFile: keyFile });
  dp = await startDataplane({ controlDir: dir, clusterKeyFile: keyFile, stateDir: path.join(dir, 'dp') });
  demo = await createTenantWithKey(cp.api, mock.url);
});

after(async () => {
  // A clean exit after SIGTERM (under ASan also: no leak, no error report).
  const dpCode = dp ? await dp.proc.stop() : 0;
  const cpCode = cp ? await cp.proc.stop() : 0;
  if (mock) await mock.stop();
  assert.equal(dpCode, 0, `data plane exited with ${dpCode}:\n${dp && dp.proc.output().slice(-4000)}`);
  assert.equal(cpCode, 0, `control plane exited with ${cpCode}:\n${cp && cp.proc.output().slice(-4000)}`);
});

async function timeUntil(fn, limitMs) {
  const t0 = Date.now();
  while (Date.now() - t0 < limitMs + 2000) {
    if (await fn()) return Date.now() - t0;
    await sleep(20);
  }
  return Infinity;
}

test('a new key works within 1 s, a revoked key gets 401 within 1 s', async (t) => {
  const key = await must(cp.api, 'POST', `/tenants/${demo.tenant.id}/keys`, { name: 'fresh' });
  assert.match(key.secret, /^sk-/);
  const works = await timeUntil(async () => (await chat(dp.url, key.secret, demo.model.id)).status === 200, 1000);
  assert.ok(works < 1000, `key took ${works} ms to work`);
  // Both workers know it: 20 requests spread by SO_REUSEPORT over new connections.
  for (let i = 0; i < 20; i++) {
    const r = await fetch(`${dp.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key.secret}`, 'content-type': 'application/json', connection: 'close' },
      body: JSON.stringify({ model: demo.model.id, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(r.status, 200, await r.text());
  }

  await must(cp.api, 'DELETE', `/keys/${key.id}`);
  let last;
  const refused = await timeUntil(async () => {
    last = await chat(dp.url, key.secret, demo.model.id);
    return last.status === 401;
  }, 1000);
  assert.ok(refused < 1000, `revocation took ${refused} ms`);
  t.diagnostic(`key usable after ${works} ms, refused after ${refused} ms`);
  assert.equal(last.body.error.code, 'invalid_api_key', last.text);
  // Every worker refuses it now.
  for (let i = 0; i < 10; i++) {
    const r = await fetch(`${dp.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key.secret}`, 'content-type': 'application/json', connection: 'close' },
      body: JSON.stringify({ model: demo.model.id, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(r.status, 401);
    await r.text();
  }
});

test('usage through 2 workers: exact tokens and cost in the usage API', async (tc) => {
  const n = Number(process.env.SY_E2E_REQUESTS || 2000);
  const t = await load(dp.url, demo.secret, demo.model.id, n, 16);
  assert.equal(t.failed, 0, t.errors.join('\n'));
  assert.equal(t.ok, n);
  const totals = await waitUsage(cp.api, demo.key.id, { requests: n, prompt_tokens: t.prompt });
  assert.ok(totals, 'usage API never answered');
  assert.equal(totals.requests, n);
  assert.equal(totals.errors, 0);
  assert.equal(totals.prompt_tokens, t.prompt);
  assert.equal(totals.completion_tokens, t.completion);
  const want = expectedCost(t, demo.price);
  assert.ok(Math.abs(totals.cost_usd - want) < 1e-9, `cost ${totals.cost_usd} != ${want}`);
  tc.diagnostic(`${n} requests: ${t.prompt} prompt + ${t.completion} completion tokens, $${want.toFixed(6)}; usage API ${JSON.stringify(totals)}`);

  // Both workers reported (each has its own worker id), and nothing was rejected.
  const stats = await must(cp.api, 'GET', '/stats');
  assert.equal(stats.cluster.live_workers, 2);
  assert.equal(stats.cluster.rejected_messages, 0);
  // The rollups agree with each other: minute, hour and day sum to the same.
  for (const g of ['minute', 'hour', 'day']) {
    const r = await must(cp.api, 'GET', `/usage?key=${demo.key.id}&granularity=${g}`);
    assert.equal(r.totals.prompt_tokens, t.prompt, g);
    assert.equal(r.totals.completion_tokens, t.completion, g);
  }
  // Grouped by team, the one team carries everything.
  const byTeam = await must(cp.api, 'GET', `/usage?tenant=${demo.tenant.id}&group_by=team`);
  const row = byTeam.data.find((d) => d.team_id === demo.team.id);
  assert.ok(row, JSON.stringify(byTeam));
  assert.ok(row.prompt_tokens >= t.prompt);
});

test('a hard budget already exhausted by recorded usage blocks the key within 1 s', async (t) => {
  const key = await must(cp.api, 'POST', `/tenants/${demo.tenant.id}/keys`, { name: 'metered' });
  await waitKeyWorks(dp.url, key.secret, demo.model.id);
  // Spend: the warm-up request plus 10 more, all reported to the control plane.
  const tally = await load(dp.url, key.secret, demo.model.id, 10, 2);
  assert.equal(tally.failed, 0, tally.errors.join('\n'));
  const seen = await waitUsage(cp.api, key.id, { requests: 11, prompt_tokens: tally.prompt });
  assert.equal(seen.requests, 11);
  const spent = seen.cost_usd;
  assert.ok(spent > 0);
  // A daily hard budget below what the key has spent today: the snapshot
  // that follows carries the key as blocked.
  await must(cp.api, 'POST', '/budgets', {
    scope: 'key', scope_id: key.id, period: 'daily', amount_usd: spent / 2, hard: true,
  });
  let last;
  const blocked = await timeUntil(async () => {
    last = await chat(dp.url, key.secret, demo.model.id);
    return last.status === 403;
  }, 1000);
  assert.ok(blocked < 1000, `not blocked after ${blocked} ms: ${last.status} ${last.text}`);
  assert.equal(last.body.error.code, 'blocked');
  t.diagnostic(`blocked ${blocked} ms after the budget was created (spent $${spent}, budget $${spent / 2})`);
  // The tenant's other key is not affected.
  assert.equal((await chat(dp.url, demo.secret, demo.model.id)).status, 200);
});
