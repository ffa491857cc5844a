// The request body on its way upstream: read by the non-allocating scanner,
// edited in place (model rename, stream_options.include_usage) instead of
// re-serialized, and unusual bodies (escaped or duplicate keys) handled by the
// json-c path exactly as before. Raw fetch, so the bytes sent are ours.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMock, startDataplane } from './lib/procs.mjs';

let mock, dp;

before(async () => {
  mock = await startMock();
  dp = await startDataplane(mock.url);
});

after(async () => {
  await dp?.stop();
  await mock?.stop();
});

const lastSent = async () => {
  const s = await (await fetch(`${mock.url}/_mock/stats`)).json();
  const b = s.endpoints.chat_completions.last.body;
  return typeof b === 'string' ? JSON.parse(b) : b;
};

async function post(raw) {
  const res = await fetch(`${dp.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${dp.key}` },
    body: raw,
    signal: AbortSignal.timeout(5000),
  });
  return { status: res.status, text: await res.text() };
}

const msgs = [{ role: 'user', content: 'body check' }];

test('a stream is sent with include_usage forced; the client\'s other members are kept', async () => {
  const cases = [
    [{ stream_options: undefined }, { include_usage: true }],
    [{ stream_options: {} }, { include_usage: true }],
    [{ stream_options: { keep: 1, include_usage: false } }, { keep: 1, include_usage: true }],
    [{ stream_options: { keep: 'x' } }, { include_usage: true, keep: 'x' }],
    [{ stream_options: null }, { include_usage: true }],
  ];
  for (const [extra, expected] of cases) {
    const body = { model: 'mock-fast', temperature: 0.5, stream: true, ...extra, messages: msgs, user: 'u\u00e9' };
    const { status, text } = await post(JSON.stringify(body));
    assert.equal(status, 200, text);
    assert.match(text, /data: \[DONE\]/);
    assert.doesNotMatch(text, /"choices":\[\],"usage"/, 'the usage-only chunk is removed');
    const sent = await lastSent();
    assert.equal(sent.model, 'mock-fast-001', 'renamed upstream');
    assert.deepEqual(sent.stream_options, expected);
    assert.equal(sent.temperature, 0.5);
    assert.equal(sent.user, 'u\u00e9');
    assert.deepEqual(sent.messages, msgs);
  }
});

test('whitespace and routing members survive; the answer carries usage', async () => {
  const raw = ` {\n "model" : "gpt-4o-mini" ,\n "max_tokens": 7, "metadata": {"task": "chat"},\n "messages": ${JSON.stringify(msgs)} }\n`;
  const { status, text } = await post(raw);
  assert.equal(status, 200, text);
  const j = JSON.parse(text);
  assert.ok(j.usage.prompt_tokens > 0);
  const sent = await lastSent();
  assert.equal(sent.model, 'gpt-4o-mini');
  assert.equal(sent.max_tokens, 7);
  assert.deepEqual(sent.metadata, { task: 'chat' });
});

test('escaped and duplicate keys take the json-c path with its answers', async () => {
  // "mod\u0065l" is "model": found through json-c, renamed upstream.
  let r = await post(`{"mod\\u0065l":"mock-fast","messages":${JSON.stringify(msgs)}}`);
  assert.equal(r.status, 200, r.text);
  assert.equal((await lastSent()).model, 'mock-fast-001');
  // Duplicate "model": the last one wins, as json-c reads it.
  r = await post(`{"model":"nope","model":"gpt-4o-mini","messages":${JSON.stringify(msgs)}}`);
  assert.equal(r.status, 200, r.text);
  // A non-boolean stream is refused in OpenAI's shape.
  r = await post(`{"model":"gpt-4o-mini","stream":"yes","messages":[]}`);
  assert.equal(r.status, 400);
  assert.equal(JSON.parse(r.text).error.code, 'invalid_type');
  // Not JSON, not an object, no model.
  for (const [raw, code] of [
    ['{"model":"gpt-4o-mini",', 'invalid_json'],
    ['[1,2]', 'invalid_json'],
    ['{"messages":[]}', 'missing_required_parameter'],
    ['{"model":"","messages":[]}', 'missing_required_parameter'],
    ['{"model":"gpt-4o-mini","x":NaN}', 'invalid_json'],
  ]) {
    r = await post(raw);
    assert.equal(r.status, 400, raw);
    assert.equal(JSON.parse(r.text).error.code, code, raw);
  }
});
