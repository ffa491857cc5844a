// Budget leases granted by the control plane: 2 data-plane workers spend a
// hard $1.00 budget only from the slices the control plane grants them, under
// concurrent load priced by the mock's usage. Total billed spend (from the
// responses and from the control plane's usage API) stays within $1.00 plus
// the estimate error of the requests in flight; later requests are refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startMock, tempDir, freePort } from './lib/procs.mjs';
import {
  startControl, startDataplane, writeKey, createTenantWithKey, waitKeyWorks, waitUsage, must, sleep,
  chat,
} from './control_lib.mjs';

let dir, keyFile, mock, cp, dp;

before(async () => {
  dir = tempDir('sy-leases-');
  keyFile = writeKey(path.join(dir, 'cluster.key'));
  mock = await startMock(['--name', 'lease']);
  cp = await startControl(dir, { clusterKeyFile: keyFile });
  dp = await startDataplane({ controlDir: dir, clusterKeyFile: keyFile, stateDir: path.join(dir, 'dp') });
});

after(async () => {
  // Clean exits after SIGTERM (under ASan: no leak, no error report).
  const dpCode = dp ? await dp.proc.stop() : 0;
  const cpCode = cp ? await cp.proc.stop() : 0;
  await mock?.stop();
  assert.equal(dpCode, 0, `data plane exited with ${dpCode}:\n${dp && dp.proc.output().slice(-4000)}`);
  assert.equal(cpCode, 0, `control plane exited with ${cpCode}:\n${cp && cp.proc.output().slice(-4000)}`);
});

test('hard budget $1.00 through control-plane leases, 2 workers, 10 concurrent clients', async () => {
  const demo = await createTenantWithKey(cp.api, mock.url, 'lease');
  // Every answer is 40 words: more than the 16 max_tokens the gateway expects.
  const provider = await must(cp.api, 'POST', '/providers', {
    name: 'pricey', kind: 'openai', base_url: `${mock.url}/v1`, api_key: 'mock-key',
    headers: { 'x-mock-words': '40' },
  });
  const price = { valid_from: 0, input_per_mtok: 1000, output_per_mtok: 2000 };
  await must(cp.api, 'POST', '/models', { id: 'pricey-model', provider_id: provider.id, upstream_name: 'pricey-model', prices: [price] });
  await must(cp.api, 'POST', '/budgets', { scope: 'key', scope_id: demo.key.id, period: 'daily',
    amount_usd: 1.0, hard: true });
  await waitKeyWorks(dp.url, demo.secret, demo.model.id);
  await sleep(600); // a heartbeat or two: both workers have the budget

  const body = { model: 'pricey-model', max_tokens: 16, messages: [{ role: 'user', content: 'spend the budget' }] };
  const bodyLen = Buffer.byteLength(JSON.stringify(body));
  const estimate = ((Math.floor(bodyLen / 4) + 1) * 1000 + 16 * 2000) / 1e6;
  const concurrency = 10;
  let spent = 0, ok = 0, refused = 0, other = 0, maxCost = 0;
  const refusals = {};
  const client = async () => {
    for (;;) {
      const res = await fetch(`${dp.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${demo.secret}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10000),
      });
      const j = await res.json();
      if (res.status === 200) {
        const cost = (j.usage.prompt_tokens * 1000 + j.usage.completion_tokens * 2000) / 1e6;
        spent += cost;
        maxCost = Math.max(maxCost, cost);
        ok++;
      } else if ((res.status === 429 && j.error.code === 'budget_exceeded') || (res.status === 403 && j.error.code === 'blocked')) {
        refused++;
        refusals[j.error.code] = (refusals[j.error.code] || 0) + 1;
        return;
      } else {
        other++;
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  const bound = 1.0 + concurrency * Math.max(0, maxCost - estimate);
  // The control plane's own account of the spend, once the reports are in.
  const usage = await waitUsage(cp.api, demo.key.id, { requests: ok + 1, prompt_tokens: 1 }, 5000);
  const stats = await must(cp.api, 'GET', '/stats');
  const figures = { accepted: ok, billed_usd: Number(spent.toFixed(4)), usage_api_usd: usage?.cost_usd,
    estimate_usd: estimate, actual_usd: maxCost, bound_usd: Number(bound.toFixed(4)),
    overshoot_usd: Number(Math.max(0, spent - 1).toFixed(4)), refusals,
    lease_messages: stats.cluster?.leases_granted ?? stats.leases_granted };
  console.log('routing leases figures:', JSON.stringify(figures));
  assert.equal(other, 0);
  assert.ok(spent <= bound + 1e-9, JSON.stringify(figures));
  assert.ok(spent >= 0.8, `the budget was used: ${spent}`);
  assert.ok(usage.cost_usd <= bound + 1e-6, JSON.stringify(figures));
  assert.ok(figures.lease_messages > 0, 'the workers spent from control-plane grants');
  // Every later request is refused.
  for (let i = 0; i < 4; i++) {
    const res = await fetch(`${dp.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${demo.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.ok(res.status === 429 || res.status === 403, `status ${res.status}`);
    await res.arrayBuffer();
  }
});

test('a route managed through the admin API fails over in the workers', async () => {
  const demo = await createTenantWithKey(cp.api, mock.url, 'routes');
  const down = await must(cp.api, 'POST', '/providers', {
    name: 'down', kind: 'openai', base_url: `http://127.0.0.1:${await freePort()}/v1`, api_key: 'x',
  });
  await must(cp.api, 'POST', '/models', { id: 'down-model', provider_id: down.id, upstream_name: 'gpt-4o',
    prices: [{ valid_from: 0, input_per_mtok: 1, output_per_mtok: 2 }] });
  await must(cp.api, 'POST', '/routes', {
    alias: 'ha', tenant_id: demo.tenant.id, max_attempts: 3, deadline_ms: 5000,
    rules: [
      { name: 'classify', task: 'fast-classify', strategy: 'priority', targets: [{ model_id: demo.model.id }] },
      { name: 'default', strategy: 'priority',
        targets: [{ model_id: 'down-model', weight: 1 }, { model_id: demo.model.id, weight: 1 }] },
    ],
  });
  await waitKeyWorks(dp.url, demo.secret, 'ha');
  for (let i = 0; i < 10; i++) {
    const r = await chat(dp.url, demo.secret, 'ha', `hello ${i}`);
    assert.equal(r.status, 200, r.text);
    assert.match(r.body.id, /^chatcmpl-lease-/);
  }
  const res = await fetch(`${dp.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${demo.secret}`, 'content-type': 'application/json',
      'x-switchyard-task': 'fast-classify' },
    body: JSON.stringify({ model: 'ha', messages: [{ role: 'user', content: 'label this' }] }),
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-switchyard-route'), 'ha');
  assert.equal(res.headers.get('x-switchyard-rule'), 'classify');
  assert.equal(res.headers.get('x-switchyard-target'), `${demo.provider.id}/${demo.model.id}`);
  await res.arrayBuffer();
});

test('a per-model limit set through the admin API is enforced across the workers', async () => {
  const demo = await createTenantWithKey(cp.api, mock.url, 'modelrpm');
  await must(cp.api, 'POST', '/models', { id: 'limited-model', provider_id: demo.provider.id,
    upstream_name: 'gpt-4o', rpm: 60, prices: [{ valid_from: 0, input_per_mtok: 1, output_per_mtok: 2 }] });
  await waitKeyWorks(dp.url, demo.secret, 'limited-model');
  await sleep(1100); // both workers' buckets (one request each per second) are full again
  const rs = await Promise.all(Array.from({ length: 12 }, (_, i) =>
    fetch(`${dp.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${demo.secret}`, 'content-type': 'application/json', connection: 'close' },
      body: JSON.stringify({ model: 'limited-model', messages: [{ role: 'user', content: `m ${i}` }] }),
    }).then(async (r) => ({ status: r.status, headers: r.headers, body: await r.json() }))));
  const ok = rs.filter((r) => r.status === 200).length;
  const limited = rs.filter((r) => r.status === 429);
  // 60 RPM over 2 workers: a burst of one request per worker.
  assert.ok(ok >= 1 && ok <= 3, `accepted ${ok}`);
  assert.equal(ok + limited.length, 12);
  assert.match(limited[0].body.error.message, /Rate limit reached for model on requests per min: limit 60/);
  assert.equal(limited[0].headers.get('x-ratelimit-limit-requests'), '60');
  assert.ok(Number(limited[0].headers.get('retry-after')) >= 1);
});

test('control plane down: a request short of a lease waits, then spends the worker share', async () => {
  const demo = await createTenantWithKey(cp.api, mock.url, 'away');
  await must(cp.api, 'POST', '/budgets', { scope: 'key', scope_id: demo.key.id, period: 'daily',
    amount_usd: 5.0, hard: true });
  await waitKeyWorks(dp.url, demo.secret, demo.model.id);
  await sleep(600);
  // kill -9: no grant can come; the snapshot the workers hold stays.
  process.kill(cp.proc.pid, 'SIGKILL');
  await new Promise((r) => (cp.proc.exitCode !== null || cp.proc.signalCode !== null ? r() : cp.proc.once('exit', r)));
  const t0 = Date.now();
  const rs = await Promise.all(Array.from({ length: 8 }, (_, i) =>
    fetch(`${dp.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${demo.secret}`, 'content-type': 'application/json', connection: 'close' },
      body: JSON.stringify({ model: demo.model.id, messages: [{ role: 'user', content: `while away ${i}` }] }),
      signal: AbortSignal.timeout(10000),
    }).then(async (r) => ({ status: r.status, text: await r.text() }))));
  const ms = Date.now() - t0;
  for (const r of rs) assert.equal(r.status, 200, r.text);
  assert.ok(ms < 5000, `served in ${ms} ms`);
  console.log(`control plane away: 8 requests served in ${ms} ms (lease wait, then the worker share)`);
  // Back again (same port and data), for the clean exit check.
  cp = await startControl(dir, { port: cp.port, clusterKeyFile: keyFile });
});
