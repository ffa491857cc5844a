// The official openai SDK, pointed straight at the mock provider: plain,
// streamed and tool calls with exact usage, embeddings, models, and every
// scripted error surfacing as the SDK's own error class.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startMock } from './lib/procs.mjs';

// The mock's documented rule (tests/mockprovider/README.md).
const words = (s) => s.split(/\s+/).filter(Boolean).length;

let mock;
let client;

before(async () => {
  mock = await startMock(['--name', 'oa-1']);
  client = new OpenAI({ apiKey: 'mock-key', baseURL: `${mock.url}/v1`, maxRetries: 0, timeout: 5000 });
});

after(async () => {
  const code = await mock.stop();
  assert.equal(code, 0, `mock exited with ${code}:\n${mock.proc.output()}`);
});

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather of a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string' } },
      required: ['city'],
    },
  },
};

test('non-streaming chat: text, finish reason, exact usage with cached tokens', async () => {
  const messages = [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'What is the capital of France today' },
  ];
  const res = await client.chat.completions.create(
    { model: 'gpt-4o', messages },
    { headers: { 'x-mock-cached-tokens': '4' } },
  );
  assert.equal(res.object, 'chat.completion');
  assert.equal(res.model, 'gpt-4o');
  assert.match(res.id, /^chatcmpl-oa-1-\d+$/);
  const choice = res.choices[0];
  assert.equal(choice.message.role, 'assistant');
  assert.equal(choice.message.content, 'Echo: What is the capital of France today');
  assert.equal(choice.finish_reason, 'stop');
  // prompt = words of all text (3 + 7) + one per message (2) = 12.
  assert.equal(res.usage.prompt_tokens, 12);
  assert.equal(res.usage.prompt_tokens, words('You are terse.') + words(messages[1].content) + 2);
  assert.equal(res.usage.completion_tokens, 8);
  assert.equal(res.usage.total_tokens, 20);
  assert.equal(res.usage.prompt_tokens_details.cached_tokens, 4);
});

test('streaming chat with include_usage: chunks, finish chunk, usage chunk', async () => {
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'stream me five words please' }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  const ids = new Set();
  for await (const chunk of stream) {
    chunks++;
    ids.add(chunk.id);
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.choices.length === 0) {
      usage = chunk.usage;
      continue;
    }
    assert.equal(chunk.usage, null); // include_usage: every other chunk carries "usage": null
    text += chunk.choices[0].delta.content ?? '';
    if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
  }
  assert.equal(ids.size, 1);
  assert.equal(text, 'Echo: stream me five words please');
  assert.equal(finish, 'stop');
  // role chunk + 6 word chunks + finish chunk + usage chunk
  assert.equal(chunks, 1 + 6 + 1 + 1);
  assert.deepEqual(
    { p: usage.prompt_tokens, c: usage.completion_tokens, t: usage.total_tokens },
    { p: 6, c: 6, t: 12 },
  );
});

test('streaming without include_usage has no usage chunk; x-mock-words sets the length', async () => {
  const stream = await client.chat.completions.create(
    { model: 'gpt-4o', messages: [{ role: 'user', content: 'a b' }], stream: true },
    { headers: { 'x-mock-words': '300' } },
  );
  let n = 0;
  let text = '';
  for await (const chunk of stream) {
    assert.equal(chunk.usage, undefined);
    assert.equal(chunk.choices.length, 1);
    text += chunk.choices[0].delta.content ?? '';
    n++;
  }
  assert.equal(n, 1 + 300 + 1);
  assert.equal(words(text), 300);
  assert.ok(text.startsWith('Echo: a b Echo: a b'));
});

test('tool call: first tool, JSON arguments, finish reason tool_calls', async () => {
  const res = await client.chat.completions.create({
    model: 'gpt-4o',
    messages: [{ role: 'user', content: 'Weather in Paris please' }],
    tools: [weatherTool, { type: 'function', function: { name: 'other' } }],
  });
  const choice = res.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.content, null);
  assert.equal(choice.message.tool_calls.length, 1);
  const call = choice.message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.match(call.id, /^call_/);
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Weather in Paris please' });
  assert.equal(res.usage.prompt_tokens, 4 + 1);
  assert.equal(res.usage.completion_tokens, 1 + words(call.function.arguments));
});

test('streamed tool call: arguments arrive in fragments and reassemble', async () => {
  const stream = await client.chat.completions.create({
    model: 'gpt-4o',
    messages: [{ role: 'user', content: 'Weather in Zürich "old town"' }],
    tools: [weatherTool],
    stream: true,
    stream_options: { include_usage: true },
  });
  let args = '';
  let name = null;
  let id = null;
  let fragments = 0;
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const d = chunk.choices[0]?.delta;
    if (!d) continue;
    for (const tc of d.tool_calls ?? []) {
      assert.equal(tc.index, 0);
      if (tc.id) id = tc.id;
      if (tc.function?.name) name = tc.function.name;
      if (tc.function?.arguments) {
        args += tc.function.arguments;
        fragments++;
      }
    }
    if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
  }
  assert.equal(name, 'get_weather');
  assert.match(id, /^call_/);
  assert.ok(fragments > 2, `only ${fragments} fragments`);
  assert.deepEqual(JSON.parse(args), { city: 'Weather in Zürich "old town"' });
  assert.equal(finish, 'tool_calls');
  assert.equal(usage.completion_tokens, 1 + words(args));
});

test('embeddings (base64, as the SDK asks) and models', async () => {
  const emb = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['one two', 'three'] });
  assert.equal(emb.data.length, 2);
  assert.equal(emb.data[0].embedding.length, 8);
  assert.ok(emb.data[0].embedding.every((x) => Number.isFinite(x) && Math.abs(x) <= 1));
  assert.notDeepEqual(emb.data[0].embedding, emb.data[1].embedding);
  assert.equal(emb.usage.prompt_tokens, 3);
  const again = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'one two', dimensions: 8 });
  assert.deepEqual(again.data[0].embedding, emb.data[0].embedding); // deterministic

  const models = [];
  for await (const m of client.models.list()) models.push(m);
  assert.ok(models.some((m) => m.id === 'gpt-4o'));
  assert.ok(models.every((m) => m.owned_by === 'oa-1'));
  const one = await client.models.retrieve('my-model');
  assert.equal(one.id, 'my-model');
  assert.equal(one.object, 'model');
});

test('errors surface as the SDK error classes', async () => {
  const body = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] };
  const bad = new OpenAI({ apiKey: 'wrong', baseURL: `${mock.url}/v1`, maxRetries: 0 });
  await assert.rejects(bad.chat.completions.create(body), (e) => {
    assert.ok(e instanceof OpenAI.AuthenticationError, e.constructor.name);
    assert.equal(e.status, 401);
    assert.equal(e.code, 'invalid_api_key');
    assert.equal(e.type, 'invalid_request_error');
    return true;
  });
  const cases = [
    [400, OpenAI.BadRequestError],
    [401, OpenAI.AuthenticationError],
    [429, OpenAI.RateLimitError],
    [500, OpenAI.InternalServerError],
    [503, OpenAI.InternalServerError],
  ];
  for (const [status, cls] of cases) {
    await assert.rejects(
      client.chat.completions.create(body, { headers: { 'x-mock-fault': `status=${status};retry_after=2` } }),
      (e) => {
        assert.ok(e instanceof cls, `${status}: ${e.constructor.name}`);
        assert.equal(e.status, status);
        assert.equal(e.headers.get('retry-after'), '2');
        assert.ok(typeof e.error.message === 'string' && e.error.message.length > 0);
        return true;
      },
    );
  }
  // Bad input is a 400 naming the parameter, not a crash.
  await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages: [] }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.equal(e.param, 'messages');
    return true;
  });
  const raw = await fetch(`${mock.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: 'Bearer mock-key', 'content-type': 'application/json' },
    body: '{"model": "x", "messages": [}',
  });
  assert.equal(raw.status, 400);
  const err = await raw.json();
  assert.deepEqual(Object.keys(err.error).sort(), ['code', 'message', 'param', 'type']);
});

test('stats prove what arrived', async () => {
  await fetch(`${mock.url}/_mock/reset`, { method: 'POST' });
  await client.chat.completions.create({
    model: 'gpt-4o-stats',
    messages: [{ role: 'user', content: 'count me' }],
    stream: true,
    stream_options: { include_usage: true },
  }).then(async (s) => { for await (const _ of s); }); // eslint-disable-line no-unused-vars
  const st = await (await fetch(`${mock.url}/_mock/stats`)).json();
  assert.equal(st.name, 'oa-1');
  const ep = st.endpoints.chat_completions;
  assert.equal(ep.received, 1);
  assert.equal(ep.completed, 1);
  assert.equal(ep.last.model, 'gpt-4o-stats');
  assert.equal(ep.last.include_usage, true);
  assert.equal(ep.last.body.messages[0].content, 'count me');
  assert.equal(ep.last.headers.authorization, 'Bearer mock-key');
  assert.equal(st.last.endpoint, 'chat_completions');
});
