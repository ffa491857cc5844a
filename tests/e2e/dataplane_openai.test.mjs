// The official openai SDK through Switchyard's data plane to the mock provider.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock, startDataplane, sleep } from './lib/procs.mjs';

let mock, dp, client;

const lastBody = (s) => {
  const b = s.endpoints.chat_completions.last.body;
  return typeof b === 'string' ? JSON.parse(b) : b;
};
const stats = async () => (await fetch(`${mock.url}/_mock/stats`)).json();
const fault = (body) =>
  fetch(`${mock.url}/_mock/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

before(async () => {
  mock = await startMock();
  dp = await startDataplane(mock.url);
  client = new OpenAI({ baseURL: dp.baseURL, apiKey: dp.key, maxRetries: 0, timeout: 10000 });
});

after(async () => {
  await dp?.stop();
  await mock?.stop();
});

test('chat non-streaming relays the answer and usage', async () => {
  const res = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'hello from the sdk' }],
  });
  assert.equal(res.object, 'chat.completion');
  assert.match(res.choices[0].message.content, /^Echo: hello from the sdk/);
  assert.ok(res.usage.prompt_tokens > 0);
  assert.equal(res.usage.total_tokens, res.usage.prompt_tokens + res.usage.completion_tokens);
});

test('x-request-id on every response, model renamed upstream only when names differ', async () => {
  const { data, response } = await client.chat.completions
    .create({ model: 'mock-fast', messages: [{ role: 'user', content: 'x' }] })
    .withResponse();
  assert.match(response.headers.get('x-request-id'), /^req_/);
  assert.equal(data.model, 'mock-fast-001'); // the upstream saw its own name
  const s = await stats();
  const sent = lastBody(s);
  assert.equal(sent.model, 'mock-fast-001');
  assert.equal(s.endpoints.chat_completions.last.headers['authorization'], 'Bearer mock-key');
});

test('streaming text without include_usage: no usage chunk reaches the client', async () => {
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    stream: true,
    messages: [{ role: 'user', content: 'one two three four' }],
  });
  let text = '';
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    assert.notEqual(chunk.choices.length, 0, 'the usage-only chunk must be removed');
    text += chunk.choices[0]?.delta?.content || '';
  }
  assert.ok(chunks >= 3);
  assert.equal(text, 'Echo: one two three four');
  // Upstream was asked for usage even though the client was not.
  const sent = lastBody(await stats());
  assert.equal(sent.stream_options.include_usage, true);
});

test('streaming with include_usage keeps the usage chunk', async () => {
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: 'user', content: 'count my tokens' }],
  });
  let usage = null;
  for await (const chunk of stream) if (chunk.usage) usage = chunk.usage;
  assert.ok(usage, 'usage chunk expected');
  assert.ok(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
});

test('streaming tool calls arrive intact', async () => {
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    stream: true,
    messages: [{ role: 'user', content: 'weather in Paris?' }],
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
  });
  let name = '';
  let args = '';
  let finish = null;
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (!c) continue;
    for (const tc of c.delta.tool_calls || []) {
      if (tc.function?.name) name += tc.function.name;
      if (tc.function?.arguments) args += tc.function.arguments;
    }
    if (c.finish_reason) finish = c.finish_reason;
  }
  assert.equal(name, 'get_weather');
  assert.doesNotThrow(() => JSON.parse(args));
  assert.equal(finish, 'tool_calls');
});

test('embeddings', async () => {
  const res = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'embed me' });
  assert.equal(res.object, 'list');
  assert.ok(res.data[0].embedding.length > 0);
  assert.ok(res.usage.prompt_tokens > 0);
});

test('models list shows the models of the key', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids.sort(), ['gpt-4o-mini', 'mock-fast', 'text-embedding-3-small']);
  const one = await client.models.retrieve('mock-fast');
  assert.equal(one.id, 'mock-fast');
});

test('route alias resolves to its target', async () => {
  const res = await client.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(res.model, 'gpt-4o-mini');
});

test('bad key is 401 in OpenAI shape', async () => {
  const bad = new OpenAI({ baseURL: dp.baseURL, apiKey: 'sk-wrong', maxRetries: 0 });
  await assert.rejects(bad.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }), (e) => {
    assert.equal(e.status, 401);
    assert.equal(e.code, 'invalid_api_key');
    assert.equal(e.type, 'invalid_request_error');
    return true;
  });
});

test('unknown model is 404 model_not_found', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }), (e) => {
    assert.equal(e.status, 404);
    assert.equal(e.code, 'model_not_found');
    return true;
  });
});

test('upstream 429 and 500 are surfaced with their status', async () => {
  await fault({ fault: 'status=429;retry_after=7', count: 1, endpoint: 'chat_completions' });
  await assert.rejects(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }), (e) => {
    assert.equal(e.status, 429);
    assert.equal(e.headers.get('retry-after'), '7');
    assert.ok(e.error?.message);
    return true;
  });
  await fault({ fault: 'status=500', count: 1, endpoint: 'chat_completions' });
  await assert.rejects(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] }), (e) => {
    assert.equal(e.status, 500);
    assert.ok(e.error?.message);
    return true;
  });
});

test('client abort mid-stream cancels the upstream transfer', async () => {
  await fault({ fault: 'chunk_delay_ms=100', count: 1, endpoint: 'chat_completions' });
  const before = (await stats()).endpoints.chat_completions.aborted;
  const ac = new AbortController();
  const stream = await client.chat.completions.create(
    { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'a b c d e f g h' }] },
    { signal: ac.signal },
  );
  let n = 0;
  try {
    for await (const _ of stream) if (++n === 2) ac.abort();
  } catch {
    // an abort may surface as an error or as the end of the iteration
  }
  assert.equal(n, 2);
  const deadline = Date.now() + 3000;
  let aborted = before;
  while (Date.now() < deadline) {
    aborted = (await stats()).endpoints.chat_completions.aborted;
    if (aborted > before) break;
    await sleep(50);
  }
  assert.equal(aborted, before + 1, 'the mock saw the transfer aborted');
  // The gateway still serves.
  const res = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'still here' }] });
  assert.match(res.choices[0].message.content, /still here/);
});

test('key policy: expired 401, blocked 403, allowed_models filters models and requests', async () => {
  const { demoSnapshot } = await import('./lib/procs.mjs');
  const snap = demoSnapshot(mock.url, 'sk-policy-main', {
    keys: [
      { id: 'expired', secret: 'sk-policy-expired', expires_at: 1000 },
      { id: 'blocked', secret: 'sk-policy-blocked', blocked: true },
      { id: 'narrow', secret: 'sk-policy-narrow', allowed_models: ['mock-fast'] },
    ],
  });
  const dp2 = await startDataplane(mock.url, { snapshot: snap });
  try {
    const c = (key) => new OpenAI({ baseURL: dp2.baseURL, apiKey: key, maxRetries: 0 });
    const ask = (key, model) => c(key).chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }] });
    await assert.rejects(ask('sk-policy-expired', 'mock-fast'), (e) => e.status === 401 && e.code === 'expired_api_key');
    await assert.rejects(ask('sk-policy-blocked', 'mock-fast'), (e) => e.status === 403);
    await assert.rejects(ask('sk-policy-narrow', 'gpt-4o-mini'), (e) => e.status === 404 && e.code === 'model_not_found');
    assert.match((await ask('sk-policy-narrow', 'mock-fast')).choices[0].message.content, /^Echo/);
    const ids = [];
    for await (const m of c('sk-policy-narrow').models.list()) ids.push(m.id);
    assert.deepEqual(ids, ['mock-fast']);
  } finally {
    await dp2.stop();
  }
});
