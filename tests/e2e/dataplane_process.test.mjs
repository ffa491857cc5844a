// Process model: a SIGKILLed worker is restarted by the master under load;
// SIGTERM drains gracefully (a stream in flight completes, exit code 0).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock, startDataplane, sleep } from './lib/procs.mjs';

const workerPids = (out) => {
  const pids = {};
  for (const line of out.split('\n')) {
    if (!line.includes('"worker_started"')) continue;
    try {
      const j = JSON.parse(line);
      pids[j.worker] = j.pid;
    } catch {}
  }
  return pids;
};

async function waitFor(pred, ms, what) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (pred()) return;
    await sleep(25);
  }
  assert.fail(`timed out waiting for ${what}`);
}

test('SIGKILL of a worker during load: the master restarts it', async () => {
  const mock = await startMock();
  const dp = await startDataplane(mock.url, { workers: 2 });
  try {
    await waitFor(() => Object.keys(workerPids(dp.proc.output())).length === 2, 5000, 'two workers');
    const before = workerPids(dp.proc.output());
    const client = new OpenAI({ baseURL: dp.baseURL, apiKey: dp.key, maxRetries: 0, timeout: 5000 });
    let ok = 0;
    let stop = false;
    const load = Promise.all(
      Array.from({ length: 4 }, async () => {
        while (!stop) {
          try {
            await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'load' }] });
            ok++;
          } catch {
            // requests on the killed worker's connections may fail
          }
        }
      }),
    );
    await waitFor(() => ok >= 20, 5000, 'load');
    process.kill(before[0], 'SIGKILL');
    await waitFor(() => {
      const now = workerPids(dp.proc.output());
      return now[0] && now[0] !== before[0];
    }, 5000, 'worker 0 restarted');
    assert.match(dp.proc.output(), /"worker_died"/);
    const okAtRestart = ok;
    await waitFor(() => ok >= okAtRestart + 20, 5000, 'load after the restart');
    stop = true;
    await load;
    // The captured output keeps its last 64 KiB: under load the access log
    // can push the first worker_started lines out, while a restart's line
    // is always recent.
    const after = { ...before, ...workerPids(dp.proc.output()) };
    assert.notEqual(after[0], before[0]);
    assert.equal(after[1], before[1]);
  } finally {
    await dp.stop();
    await mock.stop();
  }
});

test('SIGTERM during a stream: the stream completes and the master exits 0', async () => {
  const mock = await startMock();
  const dp = await startDataplane(mock.url, { workers: 1, args: ['--drain-timeout', '10s'] });
  try {
    await fetch(`${mock.url}/_mock/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ fault: 'chunk_delay_ms=80', count: 1, endpoint: 'chat_completions' }),
    });
    const client = new OpenAI({ baseURL: dp.baseURL, apiKey: dp.key, maxRetries: 0, timeout: 10000 });
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      stream: true,
      messages: [{ role: 'user', content: 'one two three four five six seven' }],
    });
    let text = '';
    let signalled = false;
    const exited = new Promise((r) => dp.proc.once('exit', (code) => r(code)));
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content || '';
      if (!signalled) {
        signalled = true;
        process.kill(dp.proc.pid, 'SIGTERM');
      }
    }
    assert.equal(text, 'Echo: one two three four five six seven');
    assert.equal(await exited, 0);
    assert.match(dp.proc.output(), /"worker_drained"/);
  } finally {
    await dp.stop();
    await mock.stop();
  }
});

test('SIGHUP reloads the snapshot file in every worker', async () => {
  const { demoSnapshot } = await import('./lib/procs.mjs');
  const { writeFileSync } = await import('node:fs');
  const mock = await startMock();
  const dp = await startDataplane(mock.url, { workers: 2 });
  try {
    const version = async () => (await (await fetch(`${dp.url}/readyz`)).json()).snapshot_version;
    assert.equal(await version(), 1);
    // Version 2 replaces the key: the old one stops working, the new one works.
    writeFileSync(dp.snapshotPath, JSON.stringify(demoSnapshot(mock.url, 'sk-rotated-key', { version: 2 })));
    process.kill(dp.proc.pid, 'SIGHUP');
    await waitFor(() => (dp.proc.output().match(/"snapshot_installed"[^\n]*"version":2/g) || []).length === 2, 5000, 'both workers reloaded');
    for (let i = 0; i < 4; i++) assert.equal(await version(), 2);
    const res = await fetch(`${dp.baseURL}/models`, { headers: { authorization: `Bearer ${dp.key}` } });
    assert.equal(res.status, 401);
    const ok = await fetch(`${dp.baseURL}/models`, { headers: { authorization: 'Bearer sk-rotated-key' } });
    assert.equal(ok.status, 200);
  } finally {
    await dp.stop();
    await mock.stop();
  }
});

test('without a routing table: healthz 200, readyz and the API 503', async () => {
  const { startProcess, bin, freePort, waitForHttp } = await import('./lib/procs.mjs');
  const port = await freePort();
  const proc = startProcess(bin('switchyard-dataplane'), ['--listen', `127.0.0.1:${port}`, '--workers', '1']);
  try {
    const url = `http://127.0.0.1:${port}`;
    await waitForHttp(`${url}/healthz`, 10000, proc);
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 503);
    assert.equal((await ready.json()).error.code, 'not_ready');
    const api = await fetch(`${url}/v1/models`, { headers: { authorization: 'Bearer sk-x' } });
    assert.equal(api.status, 503);
  } finally {
    await proc.stop();
  }
});

test('a bad snapshot file fails fast with exit code 1', async () => {
  const { startProcess, bin, freePort, tempDir } = await import('./lib/procs.mjs');
  const { writeFileSync } = await import('node:fs');
  const dir = tempDir();
  writeFileSync(`${dir}/bad.json`, '{"keys": [{"sha256": "nothex"}]}');
  const port = await freePort();
  const bad = startProcess(bin('switchyard-dataplane'), ['--listen', `127.0.0.1:${port}`, '--snapshot-file', `${dir}/bad.json`]);
  const code = await new Promise((r) => bad.once('exit', r));
  assert.equal(code, 1);
  assert.match(bad.output(), /sha256/);
});
