// Inbound HTTP/1.1 edge cases against the data plane, over raw TCP sockets.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startMock, startDataplane, sleep } from './lib/procs.mjs';

let mock, dp, workerPid;

before(async () => {
  mock = await startMock();
  dp = await startDataplane(mock.url, {
    args: ['--max-body-size', '64k', '--max-header-size', '8k', '--header-timeout', '1s', '--body-timeout', '1s'],
  });
  workerPid = Number(/"worker_started".*?"pid":(\d+)/.exec(dp.proc.output())[1]);
});

after(async () => {
  await dp?.stop();
  await mock?.stop();
});

// Parses as many complete HTTP/1.1 responses as buf holds.
function parseResponses(buf) {
  const out = [];
  let off = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', off);
    if (end < 0) break;
    const head = buf.subarray(off, end).toString('latin1');
    const [statusLine, ...lines] = head.split('\r\n');
    const status = Number(statusLine.split(' ')[1]);
    const headers = {};
    for (const l of lines) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    let p = end + 4;
    let body;
    if (status === 100) {
      off = p;
      out.push({ status, headers, body: '' });
      continue;
    }
    if (headers['transfer-encoding'] === 'chunked') {
      const parts = [];
      for (;;) {
        const le = buf.indexOf('\r\n', p);
        if (le < 0) return out;
        const n = parseInt(buf.subarray(p, le).toString(), 16);
        if (buf.length < le + 2 + n + 2) return out;
        parts.push(buf.subarray(le + 2, le + 2 + n));
        p = le + 2 + n + 2;
        if (n === 0) break;
      }
      body = Buffer.concat(parts).toString();
    } else {
      const n = Number(headers['content-length'] || 0);
      if (buf.length < p + n) break;
      body = buf.subarray(p, p + n).toString();
      p += n;
    }
    out.push({ status, headers, body });
    off = p;
  }
  return out;
}

// Sends chunks (strings or Buffers) with optional delays, collects the bytes
// until `want` responses parsed, the server closes, or timeoutMs.
function raw(chunks, { want = 1, delayMs = 0, timeoutMs = 5000, yieldEach = false } = {}) {
  return new Promise((resolve, reject) => {
    const sock = connect(dp.port, '127.0.0.1');
    sock.setNoDelay(true);
    let data = Buffer.alloc(0);
    let closed = false;
    const t = setTimeout(() => finish(), timeoutMs);
    const finish = () => {
      clearTimeout(t);
      sock.destroy();
      resolve({ responses: parseResponses(data), closed, raw: data.toString('latin1') });
    };
    sock.on('data', (d) => {
      data = Buffer.concat([data, d]);
      if (parseResponses(data).filter((r) => r.status !== 100).length >= want) finish();
    });
    sock.on('close', () => {
      closed = true;
      finish();
    });
    sock.on('error', () => {});
    sock.on('connect', async () => {
      for (const c of chunks) {
        if (sock.destroyed) return;
        sock.write(c);
        if (delayMs) await sleep(delayMs);
        else if (yieldEach) await new Promise((r) => setImmediate(r));
      }
    });
    sock.on('timeout', reject);
  });
}

const chatBody = (text) => JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }] });
const post = (body, extra = '') =>
  `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${dp.key}\r\n` +
  `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
const errorOf = (r) => JSON.parse(r.body).error;

test('healthz, readyz, 404 and 405 in OpenAI shape', async () => {
  const { responses } = await raw(
    ['GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\n\r\n' +
      'GET /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n'],
    { want: 4 },
  );
  assert.deepEqual(responses.map((r) => r.status), [200, 200, 404, 405]);
  assert.equal(JSON.parse(responses[1].body).status, 'ready');
  for (const r of responses.slice(2)) {
    const e = errorOf(r);
    assert.ok(e.message && e.type && 'param' in e && 'code' in e);
    assert.match(r.headers['x-request-id'], /^req_/);
  }
});

test('malformed JSON is 400 invalid_json', async () => {
  const { responses } = await raw([post('{"model": "gpt-4o-mini", "messages": [')]);
  assert.equal(responses[0].status, 400);
  assert.equal(errorOf(responses[0]).code, 'invalid_json');
});

test('wrong content type is 415', async () => {
  const body = chatBody('x');
  const req = `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${dp.key}\r\n` +
    `Content-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  const { responses } = await raw([req]);
  assert.equal(responses[0].status, 415);
  assert.equal(errorOf(responses[0]).type, 'invalid_request_error');
});

test('missing key is 401', async () => {
  const body = chatBody('x');
  const { responses } = await raw([`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`]);
  assert.equal(responses[0].status, 401);
  assert.equal(errorOf(responses[0]).code, 'invalid_api_key');
});

test('oversized body is 413 (declared and chunked)', async () => {
  const big = 'x'.repeat(100 * 1024);
  const r1 = await raw([post(chatBody(big))]);
  assert.equal(r1.responses[0].status, 413);
  const chunk = Buffer.alloc(16 * 1024, 'a').toString();
  let req = `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${dp.key}\r\n` +
    'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
  for (let i = 0; i < 6; i++) req += `${chunk.length.toString(16)}\r\n${chunk}\r\n`;
  const r2 = await raw([req + '0\r\n\r\n']);
  assert.equal(r2.responses[0].status, 413);
  assert.equal(errorOf(r2.responses[0]).code, 'request_too_large');
});

test('oversized headers are 431', async () => {
  const { responses } = await raw([`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(16 * 1024)}\r\n\r\n`]);
  assert.equal(responses[0].status, 431);
});

test('chunked request body and Expect: 100-continue', async () => {
  const body = chatBody('chunked body works');
  const half = Math.floor(body.length / 2);
  const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${dp.key}\r\n` +
    'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n';
  const { responses } = await raw(
    [head, `${half.toString(16)}\r\n${body.slice(0, half)}\r\n`, `${(body.length - half).toString(16)}\r\n${body.slice(half)}\r\n0\r\n\r\n`],
    { delayMs: 50 },
  );
  assert.equal(responses[0].status, 100);
  const final = responses.find((r) => r.status !== 100);
  assert.equal(final.status, 200);
  assert.match(JSON.parse(final.body).choices[0].message.content, /chunked body works/);
});

test('a request split into 1-byte TCP writes', async () => {
  const req = post(chatBody('byte by byte'));
  const bytes = [...Buffer.from(req)].map((b) => Buffer.from([b]));
  // One write (one TCP segment, no Nagle) per byte, yielding to the event
  // loop in between, so the server reads the request in many tiny pieces.
  const { responses } = await raw(bytes, { yieldEach: true, timeoutMs: 10000 });
  assert.equal(responses[0].status, 200);
  assert.match(JSON.parse(responses[0].body).choices[0].message.content, /byte by byte/);
});

test('100 pipelined requests on one connection are answered in order', async () => {
  let all = '';
  for (let i = 0; i < 100; i++) all += post(chatBody(`pipelined-${i}`));
  const { responses } = await raw([all], { want: 100, timeoutMs: 10000 });
  assert.equal(responses.length, 100);
  responses.forEach((r, i) => {
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).choices[0].message.content, `Echo: pipelined-${i}`);
  });
});

test('slowloris gets 408 and the worker keeps serving others', async () => {
  const slow = raw(['GET /healthz HTTP/1.1\r\n', 'Host: x\r\n', 'X-A: 1\r\n', 'X-B: 2\r\n', 'X-C: 3\r\n', 'X-D: 4\r\n', 'X-E: 5\r\n', 'X-F: 6\r\n'], {
    delayMs: 300,
    timeoutMs: 4000,
  });
  await sleep(200);
  // Meanwhile a normal request is served at once by the same (only) worker.
  const t0 = Date.now();
  const ok = await raw([post(chatBody('not blocked'))]);
  assert.equal(ok.responses[0].status, 200);
  assert.ok(Date.now() - t0 < 1000);
  const { responses, closed } = await slow;
  assert.equal(responses[0]?.status, 408);
  assert.equal(errorOf(responses[0]).code, 'request_timeout');
  assert.ok(closed || responses[0].headers.connection === 'close');
});

test('garbage and truncated requests never crash the worker', async () => {
  // Deterministic pseudo-random inputs: mutations of a valid request plus raw noise.
  let seed = 12345;
  const rnd = (n) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  const valid = Buffer.from(post(chatBody('fuzz')));
  const inputs = [];
  for (let i = 0; i < 120; i++) {
    const b = Buffer.from(valid);
    const flips = 1 + rnd(8);
    for (let j = 0; j < flips; j++) b[rnd(b.length)] = rnd(256);
    inputs.push(i % 3 === 0 ? b.subarray(0, rnd(b.length)) : b);
  }
  for (let i = 0; i < 30; i++) inputs.push(Buffer.from(Array.from({ length: 1 + rnd(300) }, () => rnd(256))));
  const results = await Promise.all(inputs.map((b) => raw([b], { timeoutMs: 2000 })));
  for (const r of results) {
    for (const resp of r.responses) {
      assert.ok(resp.status >= 100 && resp.status < 600);
      if (resp.status >= 400 && resp.headers['content-type'] === 'application/json') assert.ok(JSON.parse(resp.body).error);
    }
  }
  const res = await fetch(`${dp.url}/healthz`);
  assert.equal(res.status, 200);
  process.kill(workerPid, 0); // throws if the worker died (it would have been replaced)
  assert.ok(!/"worker_died"/.test(dp.proc.output()), 'no worker died');
});
