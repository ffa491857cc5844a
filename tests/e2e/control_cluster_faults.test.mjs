// Faults on the cluster channels, with real processes: kill -9 of the
// control plane under load (no client request may fail, and usage stays
// exact: nothing lost, nothing counted twice), and kill -9 of a worker
// holding unacked usage reports (they come back with its successor).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readdirSync, statSync } from 'node:fs';
import { startMock, tempDir } from './lib/procs.mjs';
import {
  startControl, startDataplane, writeKey, createTenantWithKey, load, expectedCost, waitUsage,
  workerPids, waitKeyWorks, must, sleep,
} from './control_lib.mjs';

let dir, keyFile, mock, cp, dp, demo, warm;

before(async () => {
  dir = tempDir('sy-faults-');
  keyFile = writeKey(path.join(dir, 'cluster.key'));
  mock = await startMock();
  cp = await startControl(dir, { clusterKeyFile: keyFile });
  dp = await startDataplane({ controlDir: dir, clusterKeyFile: keyFile, stateDir: path.join(dir, 'dp') });
  demo = await createTenantWithKey(cp.api, mock.url);
  // The warm-up request that proves the key arrived is billed too.
  const r = await waitKeyWorks(dp.url, demo.secret, demo.model.id);
  warm = { ok: 1, prompt: r.body.usage.prompt_tokens, completion: r.body.usage.completion_tokens, cached: 0 };
});

after(async () => {
  // Clean exits after SIGTERM, even after the faults (and under ASan).
  const dpCode = dp ? await dp.proc.stop() : 0;
  const cpCode = cp ? await cp.proc.stop() : 0;
  if (mock) await mock.stop();
  assert.equal(dpCode, 0, `data plane exited with ${dpCode}:\n${dp && dp.proc.output().slice(-4000)}`);
  assert.equal(cpCode, 0, `control plane exited with ${cpCode}:\n${cp && cp.proc.output().slice(-4000)}`);
});

function assertTotals(totals, t, price, what) {
  assert.ok(totals, `${what}: usage API never answered`);
  assert.equal(totals.requests, t.ok, `${what}: requests`);
  assert.equal(totals.prompt_tokens, t.prompt, `${what}: prompt tokens`);
  assert.equal(totals.completion_tokens, t.completion, `${what}: completion tokens`);
  const want = expectedCost(t, price);
  assert.ok(Math.abs(totals.cost_usd - want) < 1e-9, `${what}: cost ${totals.cost_usd} != ${want}`);
}

test('kill -9 of the control plane under load: zero failed requests, exact totals', async (t) => {
  const n = Number(process.env.SY_E2E_REQUESTS || 1000);
  const t0 = Date.now();
  let killed = false;
  let restarted = null;
  const tally = await load(dp.url, demo.secret, demo.model.id, n, 16, (x) => {
    if (!killed && x.ok >= n / 4) {
      killed = true;
      // SIGKILL, no chance to flush or commit anything more.
      process.kill(cp.proc.pid, 'SIGKILL');
      restarted = (async () => {
        await new Promise((r) => (cp.proc.exitCode !== null || cp.proc.signalCode !== null ? r() : cp.proc.once('exit', r)));
        await sleep(300);
        cp = await startControl(dir, { port: cp.port, clusterKeyFile: keyFile });
      })();
    }
  });
  assert.ok(killed);
  const tLoad = Date.now() - t0;
  await restarted;
  assert.equal(tally.failed, 0, tally.errors.join('\n') + '\n' + dp.proc.output().split('\n').filter((l) => !l.includes('access')).slice(-30).join('\n'));
  assert.equal(tally.ok, n);
  const want = {
    ok: warm.ok + tally.ok, prompt: warm.prompt + tally.prompt,
    completion: warm.completion + tally.completion, cached: 0,
  };
  const totals = await waitUsage(cp.api, demo.key.id, { requests: want.ok, prompt_tokens: want.prompt }, 15000);
  const tExact = Date.now() - t0;
  assertTotals(totals, want, demo.price, 'after control plane restart');
  const stats = await must(cp.api, 'GET', '/stats');
  t.diagnostic(`${n} requests in ${tLoad} ms, usage exact after ${tExact} ms; ${JSON.stringify(stats.cluster)}`);
});

test('kill -9 of a worker: its unacked reports come back with its successor', async (t) => {
  const before = (await must(cp.api, 'GET', `/usage?key=${demo.key.id}`)).totals;
  const n = 400;
  const tally = await load(dp.url, demo.secret, demo.model.id, n, 8);
  assert.equal(tally.failed, 0, tally.errors.join('\n'));
  // Freeze the control plane so nothing is acked, let the workers drain
  // their aggregates into spooled reports, then kill worker 0 outright.
  process.kill(cp.proc.pid, 'SIGSTOP');
  let victim = null;
  try {
    // Wait until a worker has spooled a report the control plane cannot ack.
    const stateDir = path.join(dir, 'dp');
    const deadline = Date.now() + 5000;
    while (victim === null && Date.now() < deadline) {
      await sleep(100);
      for (const f of readdirSync(stateDir)) {
        const m = /_(\d+)\.spool$/.exec(f);
        if (m && statSync(path.join(stateDir, f)).size > 0) victim = Number(m[1]);
      }
    }
    assert.notEqual(victim, null, 'no worker spooled a report');
    const pids = workerPids(dp.proc);
    assert.ok(pids[victim], JSON.stringify(pids));
    process.kill(pids[victim], 'SIGKILL');
    // The master restarts it under the same worker id; its successor finds
    // the spooled reports.
    const restartBy = Date.now() + 5000;
    while (workerPids(dp.proc)[victim] === pids[victim] && Date.now() < restartBy) await sleep(50);
    assert.notEqual(workerPids(dp.proc)[victim], pids[victim], `worker ${victim} was not restarted`);
    const seenBy = Date.now() + 3000;
    const replayed = () => /"usage_spool_reloaded"/.test(dp.proc.output());
    while (!replayed() && Date.now() < seenBy) await sleep(50);
    assert.ok(replayed(), 'the restarted worker did not reload its spool');
  } finally {
    process.kill(cp.proc.pid, 'SIGCONT');
  }
  const want = {
    ok: before.requests + tally.ok,
    prompt: before.prompt_tokens + tally.prompt,
    completion: before.completion_tokens + tally.completion,
    cached: 0,
  };
  const totals = await waitUsage(cp.api, demo.key.id, { requests: want.ok, prompt_tokens: want.prompt }, 20000);
  assertTotals(totals, want, demo.price, 'after worker kill');
  // The restarted worker serves again.
  const again = await load(dp.url, demo.secret, demo.model.id, 50, 4);
  assert.equal(again.failed, 0, again.errors.join('\n'));
  t.diagnostic(`totals ${JSON.stringify(totals)}`);
});

// Usage totals once every report in flight has landed (two equal reads
// more than a report interval apart).
async function settledTotals() {
  let prev = (await must(cp.api, 'GET', `/usage?key=${demo.key.id}`)).totals;
  for (;;) {
    await sleep(1300);
    const cur = (await must(cp.api, 'GET', `/usage?key=${demo.key.id}`)).totals;
    if (cur.requests === prev.requests && cur.prompt_tokens === prev.prompt_tokens) return cur;
    prev = cur;
  }
}

test('kill -9 of every worker right after a burst: journaled usage is replayed, totals exact', async (t) => {
  const before = await settledTotals();
  const tally = await load(dp.url, demo.secret, demo.model.id, 300, 8);
  assert.equal(tally.failed, 0, tally.errors.join('\n'));
  // Within the report interval: most of this usage is still in the workers'
  // aggregators (and their journals) when they die.
  const pids = workerPids(dp.proc);
  for (const w of Object.keys(pids)) process.kill(pids[w], 'SIGKILL');
  const deadline = Date.now() + 5000;
  const restarted = () => Object.keys(pids).every((w) => workerPids(dp.proc)[w] !== pids[w]);
  while (!restarted() && Date.now() < deadline) await sleep(50);
  assert.ok(restarted(), 'workers were not restarted');
  const want = {
    ok: before.requests + tally.ok,
    prompt: before.prompt_tokens + tally.prompt,
    completion: before.completion_tokens + tally.completion,
    cached: 0,
  };
  const totals = await waitUsage(cp.api, demo.key.id, { requests: want.ok, prompt_tokens: want.prompt }, 15000);
  assertTotals(totals, want, demo.price, 'after killing every worker');
  const replays = (dp.proc.output().match(/usage_journal_replayed/g) || []).length;
  t.diagnostic(`journal replays: ${replays}; totals ${JSON.stringify(totals)}`);
});
