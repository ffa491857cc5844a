// The official @anthropic-ai/sdk, pointed straight at the mock provider:
// plain, streamed (exact event sequence) and tool calls with exact usage, and
// every scripted error surfacing as the SDK's own error class.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startMock } from './lib/procs.mjs';

const words = (s) => s.split(/\s+/).filter(Boolean).length;

let mock;
let client;

before(async () => {
  mock = await startMock(['--name', 'an-1', '--api-key', 'sk-ant-mock']);
  client = new Anthropic({ apiKey: 'sk-ant-mock', baseURL: mock.url, maxRetries: 0, timeout: 5000 });
});

after(async () => {
  const code = await mock.stop();
  assert.equal(code, 0, `mock exited with ${code}:\n${mock.proc.output()}`);
});

const lookupTool = {
  name: 'lookup_order',
  description: 'Find an order',
  input_schema: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] },
};

test('non-streaming message: text, stop reason, usage with cache reads', async () => {
  const msg = await client.messages.create(
    {
      model: 'claude-sonnet-4-5',
      max_tokens: 256,
      system: 'You answer briefly.',
      messages: [
        { role: 'user', content: 'first question' },
        { role: 'assistant', content: 'first answer' },
        { role: 'user', content: [{ type: 'text', text: 'And how far is the moon' }] },
      ],
    },
    { headers: { 'x-mock-cached-tokens': '5' } },
  );
  assert.equal(msg.type, 'message');
  assert.equal(msg.role, 'assistant');
  assert.equal(msg.model, 'claude-sonnet-4-5');
  assert.match(msg.id, /^msg_an-1-\d+$/);
  assert.equal(msg.content.length, 1);
  assert.equal(msg.content[0].type, 'text');
  assert.equal(msg.content[0].text, 'Echo: And how far is the moon');
  assert.equal(msg.stop_reason, 'end_turn');
  assert.equal(msg.stop_sequence, null);
  // prompt = system (1 + 3) + 3 messages (2 + 2 + 6 words + 3) = 17; input_tokens excludes the 5 cached.
  const prompt = 1 + words('You answer briefly.') + 3 + 2 + 2 + 6;
  assert.equal(prompt, 17);
  assert.equal(msg.usage.input_tokens, prompt - 5);
  assert.equal(msg.usage.cache_read_input_tokens, 5);
  assert.equal(msg.usage.cache_creation_input_tokens, 0);
  assert.equal(msg.usage.output_tokens, 7);
});

test('streaming message: exact event sequence, text and final usage', async () => {
  const stream = await client.messages.create({
    model: 'claude-haiku',
    max_tokens: 100,
    messages: [{ role: 'user', content: 'tell me three things' }],
    stream: true,
  });
  const types = [];
  let text = '';
  let start = null;
  let delta = null;
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'message_start') start = ev.message;
    if (ev.type === 'content_block_delta') {
      assert.equal(ev.delta.type, 'text_delta');
      text += ev.delta.text;
    }
    if (ev.type === 'message_delta') delta = ev;
  }
  const deltas = Array(5).fill('content_block_delta');
  // The SDK drops ping events; the wire carries them (checked below).
  assert.deepEqual(types, [
    'message_start', 'content_block_start', ...deltas,
    'content_block_stop', 'message_delta', 'message_stop',
  ]);
  const raw = await fetch(`${mock.url}/v1/messages`, {
    method: 'POST',
    headers: { 'x-api-key': 'sk-ant-mock', 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', max_tokens: 5, stream: true, messages: [{ role: 'user', content: 'tell me three things' }] }),
  });
  assert.match(raw.headers.get('content-type'), /^text\/event-stream/);
  const wire = await raw.text();
  const events = wire.split('\n\n').filter(Boolean).map((e) => {
    const [ev, data] = e.split('\n');
    const name = ev.replace(/^event: /, '');
    assert.equal(JSON.parse(data.replace(/^data: /, '')).type, name);
    return name;
  });
  assert.deepEqual(events, [
    'message_start', 'content_block_start', 'ping', ...deltas,
    'content_block_stop', 'message_delta', 'message_stop',
  ]);
  assert.equal(text, 'Echo: tell me three things');
  assert.equal(start.stop_reason, null);
  assert.equal(start.usage.input_tokens, 5);
  assert.equal(delta.delta.stop_reason, 'end_turn');
  assert.equal(delta.usage.output_tokens, 5);
});

test('tool use: non-streaming and streamed via messages.stream().finalMessage()', async () => {
  const req = {
    model: 'claude-sonnet-4-5',
    max_tokens: 100,
    tools: [lookupTool],
    messages: [{ role: 'user', content: 'where is order 42 now' }],
  };
  const msg = await client.messages.create(req);
  assert.equal(msg.stop_reason, 'tool_use');
  const block = msg.content.find((b) => b.type === 'tool_use');
  assert.equal(block.name, 'lookup_order');
  assert.match(block.id, /^toolu_/);
  assert.deepEqual(block.input, { query: 'where is order 42 now' });
  assert.equal(msg.usage.output_tokens, 1 + words(JSON.stringify(block.input)));

  const fragments = [];
  const s = client.messages.stream(req);
  s.on('inputJson', (partial) => fragments.push(partial));
  const final = await s.finalMessage();
  assert.equal(final.stop_reason, 'tool_use');
  const sb = final.content.find((b) => b.type === 'tool_use');
  assert.equal(sb.name, 'lookup_order');
  assert.deepEqual(sb.input, { query: 'where is order 42 now' });
  assert.ok(fragments.length > 2, `${fragments.length} input_json fragments`);
  assert.equal(final.usage.output_tokens, msg.usage.output_tokens);
});

test('errors surface as the SDK error classes', async () => {
  const body = { model: 'claude', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] };
  const bad = new Anthropic({ apiKey: 'nope', baseURL: mock.url, maxRetries: 0 });
  await assert.rejects(bad.messages.create(body), (e) => {
    assert.ok(e instanceof Anthropic.AuthenticationError, e.constructor.name);
    assert.equal(e.status, 401);
    assert.equal(e.error.type, 'error');
    assert.equal(e.error.error.type, 'authentication_error');
    return true;
  });
  const cases = [
    [400, Anthropic.BadRequestError, 'invalid_request_error'],
    [429, Anthropic.RateLimitError, 'rate_limit_error'],
    [500, Anthropic.InternalServerError, 'api_error'],
    [529, Anthropic.InternalServerError, 'overloaded_error'],
  ];
  for (const [status, cls, type] of cases) {
    await assert.rejects(
      client.messages.create(body, { headers: { 'x-mock-fault': `status=${status};ratelimit` } }),
      (e) => {
        assert.ok(e instanceof cls, `${status}: ${e.constructor.name}`);
        assert.equal(e.status, status);
        assert.equal(e.error.error.type, type);
        assert.equal(e.headers.get('anthropic-ratelimit-requests-remaining'), '59');
        return true;
      },
    );
  }
  // The API's own validation: max_tokens is required, anthropic-version too.
  await assert.rejects(client.messages.create({ model: 'claude', messages: body.messages }), (e) => {
    assert.ok(e instanceof Anthropic.BadRequestError);
    assert.match(e.error.error.message, /max_tokens/);
    return true;
  });
  const raw = await fetch(`${mock.url}/v1/messages`, {
    method: 'POST',
    headers: { 'x-api-key': 'sk-ant-mock', 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(raw.status, 400);
  assert.match((await raw.json()).error.message, /anthropic-version/);
});

test('in-stream overloaded_error after the 200 ends the stream with an SDK error', async () => {
  const stream = await client.messages.create(
    { model: 'claude', max_tokens: 10, stream: true, messages: [{ role: 'user', content: 'a b c' }] },
    { headers: { 'x-mock-fault': 'stream_error=4' } },
  );
  const types = [];
  await assert.rejects(
    (async () => {
      for await (const ev of stream) types.push(ev.type);
    })(),
    (e) => {
      assert.ok(e instanceof Anthropic.APIError, e.constructor.name);
      assert.match(String(e.message), /overloaded_error|Overloaded/);
      return true;
    },
  );
  assert.deepEqual(types, ['message_start', 'content_block_start', 'content_block_delta']);
});
