// Sealed channels: a worker holding the wrong cluster key is refused by the
// control plane (counted in /admin/v1/stats) and refuses the control plane's
// snapshots; a worker started while the control plane is unreachable serves
// from its cached sealed snapshot, unless one byte of it was flipped, in
// which case the cache is refused and the worker stays not-ready.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { startMock, tempDir, freePort } from './lib/procs.mjs';
import {
  startControl, startDataplane, writeKey, createTenantWithKey, waitKeyWorks, chat, must, sleep,
} from './control_lib.mjs';

let dir, keyFile, mock, cp, demo;
const planes = [];

before(async () => {
  dir = tempDir('sy-tamper-');
  keyFile = writeKey(path.join(dir, 'cluster.key'));
  mock = await startMock();
  cp = await startControl(dir, { clusterKeyFile: keyFile });
  demo = await createTenantWithKey(cp.api, mock.url);
});

after(async () => {
  const codes = [];
  for (const p of planes) codes.push(await p.proc.stop());
  const cpCode = cp ? await cp.proc.stop() : 0;
  if (mock) await mock.stop();
  codes.forEach((c, i) => assert.equal(c, 0, `data plane ${i} exited with ${c}:\n${planes[i].proc.output().slice(-4000)}`));
  assert.equal(cpCode, 0, `control plane exited with ${cpCode}`);
});

async function plane(opts) {
  const p = await startDataplane({ workers: 1, ...opts });
  planes.push(p);
  return p;
}

async function readyz(url) {
  const r = await fetch(`${url}/readyz`);
  return { status: r.status, body: await r.json().catch(() => null) };
}

test('a worker with the wrong cluster key is refused and refuses, both sides count it', async () => {
  const good = await plane({ controlDir: dir, clusterKeyFile: keyFile, stateDir: path.join(dir, 'good') });
  await waitKeyWorks(good.url, demo.secret, demo.model.id);
  const before = (await must(cp.api, 'GET', '/stats')).cluster.rejected_messages;

  const wrongKey = writeKey(path.join(dir, 'wrong.key'));
  const bad = await plane({ controlDir: dir, clusterKeyFile: wrongKey, stateDir: path.join(dir, 'bad') });
  // Its Hello cannot be opened by the control plane: dropped and counted.
  let rejected = before;
  const deadline = Date.now() + 3000;
  while (rejected <= before && Date.now() < deadline) {
    await sleep(50);
    rejected = (await must(cp.api, 'GET', '/stats')).cluster.rejected_messages;
  }
  assert.ok(rejected > before, `control plane rejected ${rejected - before} messages`);
  // The snapshots it receives (PUB, heartbeat every 200 ms) fail to open:
  // it never installs one, logs and counts the refusals.
  await sleep(600);
  assert.equal((await readyz(bad.url)).status, 503);
  assert.equal((await chat(bad.url, demo.secret, demo.model.id)).status >= 500, true);
  assert.match(bad.proc.output(), /control_message_rejected/);
  // The good worker is unaffected.
  assert.equal((await chat(good.url, demo.secret, demo.model.id)).status, 200);
});

test('the cached snapshot serves while the control plane is away; a flipped byte is refused', async () => {
  const stateA = path.join(dir, 'cache-a');
  const a = await plane({ controlDir: dir, clusterKeyFile: keyFile, stateDir: stateA });
  await waitKeyWorks(a.url, demo.secret, demo.model.id);
  const version = (await readyz(a.url)).body.snapshot_version;
  await a.proc.stop();
  const sealed = readFileSync(path.join(stateA, 'snapshot.sealed'));
  assert.ok(sealed.length > 100);
  // Sealed at rest: neither the provider credential nor the key hash is readable.
  assert.equal(sealed.includes(Buffer.from('mock-key')), false);
  assert.equal(sealed.includes(Buffer.from(demo.tenant.id)), false);

  // No control plane at this address: the worker keeps retrying in the
  // background and serves from the cache at once.
  const nowhere = tempDir('sy-nowhere-');
  const stateC = path.join(dir, 'cache-c');
  mkdirSync(stateC, { recursive: true });
  writeFileSync(path.join(stateC, 'snapshot.sealed'), sealed);
  const c = await plane({ controlDir: nowhere, clusterKeyFile: keyFile, stateDir: stateC });
  const rc = await readyz(c.url);
  assert.equal(rc.status, 200);
  // (usage may have caused a newer snapshot before a stopped)
  assert.ok(rc.body.snapshot_version >= version, JSON.stringify(rc.body));
  assert.equal((await chat(c.url, demo.secret, demo.model.id)).status, 200);

  // The same file with one byte flipped: refused, nothing installed.
  const stateD = path.join(dir, 'cache-d');
  mkdirSync(stateD, { recursive: true });
  const flipped = Buffer.from(sealed);
  flipped[Math.floor(flipped.length / 2)] ^= 0x01;
  writeFileSync(path.join(stateD, 'snapshot.sealed'), flipped);
  const d = await plane({ controlDir: nowhere, clusterKeyFile: keyFile, stateDir: stateD });
  assert.equal((await readyz(d.url)).status, 503);
  assert.match(d.proc.output(), /snapshot_cache_rejected/);
  assert.match(d.proc.output(), /control_message_rejected/);
});

test('a worker started before the control plane keeps retrying and connects when it comes up', async () => {
  const later = tempDir('sy-later-');
  const w = await plane({ controlDir: later, clusterKeyFile: keyFile, stateDir: path.join(later, 'dp') });
  await sleep(300);
  assert.equal((await readyz(w.url)).status, 503);
  // Now the control plane appears, with the same cluster key, and a key is made.
  const cp2 = await startControl(later, { clusterKeyFile: keyFile });
  try {
    const d2 = await createTenantWithKey(cp2.api, mock.url, 'late');
    const r = await waitKeyWorks(w.url, d2.secret, d2.model.id, 5000);
    assert.equal(r.status, 200);
    assert.equal((await readyz(w.url)).status, 200);
    // Its usage reaches the new control plane.
    const deadline = Date.now() + 5000;
    let totals = null;
    while (Date.now() < deadline) {
      totals = (await must(cp2.api, 'GET', `/usage?key=${d2.key.id}`)).totals;
      if (totals.requests >= 1) break;
      await sleep(100);
    }
    assert.equal(totals.requests, 1);
    assert.equal(totals.prompt_tokens, r.body.usage.prompt_tokens);
  } finally {
    await cp2.proc.stop();
  }
});

test('over TCP: --control tcp://host:port reaches PUB on port and REP on port+1', async () => {
  const tdir = tempDir('sy-tcp-');
  // A free port whose successor is free too.
  const free = (p) => new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(p, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
  let port;
  do port = await freePort(); while (!(await free(port + 1)));
  const cp3 = await startControl(tdir, {
    clusterKeyFile: keyFile,
    extra: ['--snapshot-bind', `tcp://127.0.0.1:${port}`, '--report-bind', `tcp://127.0.0.1:${port + 1}`],
  });
  try {
    const d3 = await createTenantWithKey(cp3.api, mock.url, 'tcp');
    const w = await plane({ control: `tcp://127.0.0.1:${port}`, clusterKeyFile: keyFile, stateDir: path.join(tdir, 'dp') });
    const r = await waitKeyWorks(w.url, d3.secret, d3.model.id, 5000);
    const deadline = Date.now() + 5000;
    let totals;
    while (Date.now() < deadline) {
      totals = (await must(cp3.api, 'GET', `/usage?key=${d3.key.id}`)).totals;
      if (totals.requests >= 1) break;
      await sleep(100);
    }
    assert.equal(totals.requests, 1);
    assert.equal(totals.completion_tokens, r.body.usage.completion_tokens);
  } finally {
    await cp3.proc.stop();
  }
});
