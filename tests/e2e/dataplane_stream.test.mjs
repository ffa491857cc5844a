// Backpressure: a client that stops reading pauses the upstream instead of
// making the gateway buffer the whole stream; closing it then cancels the
// paused upstream transfer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { startMock, startDataplane, sleep } from './lib/procs.mjs';

const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

test('a slow client pauses the upstream; closing it cancels the transfer', async () => {
  const mock = await startMock();
  // Every upstream request asks the mock for a very long answer (~40 MB of SSE).
  const dp = await startDataplane(mock.url, { provider: { headers: { 'x-mock-words': '400000' } } });
  try {
    const workerPid = Number(/"worker_started".*?"pid":(\d+)/.exec(dp.proc.output())[1]);
    const rssBefore = rssKiB(workerPid);
    const body = JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'long' }] });
    const sock = connect(dp.port, '127.0.0.1');
    let received = 0;
    sock.on('data', (d) => {
      received += d.length;
      if (received > 64 * 1024) sock.pause(); // then read nothing
    });
    sock.on('error', () => {});
    await new Promise((r) => sock.on('connect', r));
    sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${dp.key}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    await sleep(1500);
    const stats1 = await (await fetch(`${mock.url}/_mock/stats`)).json();
    assert.equal(stats1.endpoints.chat_completions.completed, 0, 'the upstream stream must not have finished');
    const grown = rssKiB(workerPid) - rssBefore;
    assert.ok(grown < 8 * 1024, `worker RSS grew by ${grown} KiB while the client was not reading`);
    sock.destroy();
    const deadline = Date.now() + 3000;
    let aborted = 0;
    while (Date.now() < deadline) {
      aborted = (await (await fetch(`${mock.url}/_mock/stats`)).json()).endpoints.chat_completions.aborted;
      if (aborted) break;
      await sleep(50);
    }
    assert.equal(aborted, 1, 'closing the client cancels the paused upstream');
    // And the worker keeps serving.
    const res = await fetch(`${dp.url}/healthz`);
    assert.equal(res.status, 200);
  } finally {
    await dp.stop();
    await mock.stop();
  }
});

test('upstream timeouts and failures: first byte 504, idle mid-stream error event, refused 502', async () => {
  const mock = await startMock();
  const { demoSnapshot, freePort } = await import('./lib/procs.mjs');
  const key = 'sk-timeouts-test';
  const snap = demoSnapshot(mock.url, key, { provider: { first_byte_timeout_ms: 400 } });
  const deadPort = await freePort();
  snap.providers.push({ id: 'dead', kind: 'PROVIDER_KIND_OPENAI', base_url: `http://127.0.0.1:${deadPort}/v1`, api_key: 'x' });
  snap.models.push({ id: 'dead-model', provider_id: 'dead' });
  const dp = await startDataplane(mock.url, { key, snapshot: snap, args: ['--upstream-idle-timeout', '400ms'] });
  const fault = (f) => fetch(`${mock.url}/_mock/faults`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ fault: f, count: 1 }),
  });
  const chat = (model, stream) => fetch(`${dp.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'one two three four five' }] }),
  });
  try {
    await fault('latency_ms=3000');
    let t0 = Date.now();
    let res = await chat('gpt-4o-mini', false);
    assert.equal(res.status, 504);
    assert.equal((await res.json()).error.code, 'upstream_timeout');
    assert.ok(Date.now() - t0 < 2000, 'first-byte timeout, not the mock latency');

    await fault('chunk_delay_ms=3000');
    t0 = Date.now();
    res = await chat('gpt-4o-mini', true);
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.ok(Date.now() - t0 < 2500, 'idle timeout ends the stream');
    const events = text.split('\n\n').filter(Boolean);
    const last = JSON.parse(events.at(-1).replace(/^data: /, ''));
    assert.equal(last.error.code, 'upstream_timeout');

    res = await chat('dead-model', false);
    assert.equal(res.status, 502);
    assert.equal((await res.json()).error.code, 'upstream_unavailable');
  } finally {
    await dp.stop();
    await mock.stop();
  }
});
