// Upstream connection churn under load: 64 connections of wrk through two
// workers while the mock alternates between closing every kept-alive
// connection silently after its answer (silent_close) and answering with
// Connection: close (conn_close). Every upstream request then meets a
// connection being torn down or a fresh one being set up. Before the fix in
// dataplane/upstream.c (owned sockets polled through a private duplicate),
// libcurl 7.88 closing connection attempts without its close-socket callback
// made libuv abort the worker within seconds (an epoll_ctl ADD of a closed
// descriptor): the master restarted it and clients saw reset connections.
// Runs under both engines (make test's e2e and e2e-curl suites).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { startMock, startDataplane, ROOT } from './lib/procs.mjs';

let mock, dp;

function wrk(seconds) {
  return new Promise((resolve, reject) => {
    const p = spawn('wrk', ['-t2', '-c64', `-d${seconds}s`, '-s', path.join(ROOT, 'tests/bench/chat.lua'),
      `${dp.baseURL}/chat/completions`], { env: { ...process.env, BENCH_KEY: dp.key } });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.on('error', reject);
    p.on('exit', () => {
      const line = out.split('\n').find((l) => l.startsWith('BENCH_JSON '));
      if (!line) return reject(new Error(`wrk printed no summary:\n${out}`));
      resolve(JSON.parse(line.slice('BENCH_JSON '.length)));
    });
  });
}

async function setFault(fault) {
  await (await fetch(`${mock.url}/_mock/faults`, { method: 'DELETE' })).arrayBuffer();
  const res = await fetch(`${mock.url}/_mock/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ fault, endpoint: 'chat_completions' }),
  });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
}

before(async () => {
  mock = await startMock();
  dp = await startDataplane(mock.url, { workers: 2, args: ['--access-log=false'] });
});

after(async () => {
  await dp?.stop();
  await mock?.stop();
});

test('workers survive upstream connection churn and every request succeeds', async () => {
  let requests = 0;
  for (const fault of ['silent_close', 'conn_close', 'silent_close', 'conn_close', 'silent_close', 'conn_close']) {
    await setFault(fault);
    const r = await wrk(2);
    requests += r.requests;
    assert.deepEqual(r.errors, { connect: 0, read: 0, write: 0, status: 0, timeout: 0 },
      `${fault}: ${JSON.stringify(r)}`);
  }
  assert.ok(requests > 1000, `only ${requests} requests`);
  assert.doesNotMatch(dp.proc.output(), /worker_died/);
  const stats = await (await fetch(`${mock.url}/_mock/stats`)).json();
  assert.ok(stats.connections > 1000, `the faults forced new connections (${stats.connections})`);
});
