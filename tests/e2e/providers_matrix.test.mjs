// Conformance matrix: ingress (OpenAI, Anthropic) x upstream (OpenAI,
// OpenAI-compatible, Anthropic, Gemini) x (non-stream, stream) x (text, tool
// call, image input), each cell one request through the real data plane to
// the mock provider, driven by the official openai and @anthropic-ai/sdk
// clients. Every cell must see the same text, tool calls (name, parsed
// arguments), finish reason and usage numbers whichever provider answered.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, startDataplane, demoSnapshot } from './lib/procs.mjs';

let mock, dp, openai, anthropic;
const results = [];

const UPSTREAMS = [
  { name: 'openai', model: 'mx-openai' },
  { name: 'openai-compatible', model: 'mx-compat' },
  { name: 'anthropic', model: 'mx-anthropic' },
  { name: 'gemini', model: 'mx-gemini' },
];
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
const WEATHER = {
  name: 'get_weather',
  description: 'Get current weather for a city.',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

before(async () => {
  mock = await startMock();
  const key = 'sk-matrix-0123456789';
  const snap = demoSnapshot(mock.url, key);
  snap.providers.push(
    { id: 'p-openai', name: 'openai', kind: 'PROVIDER_KIND_OPENAI', base_url: `${mock.url}/v1`, api_key: 'mock-key' },
    { id: 'p-anthropic', name: 'anthropic', kind: 'PROVIDER_KIND_ANTHROPIC', base_url: mock.url, api_key: 'mock-key' },
    { id: 'p-gemini', name: 'gemini', kind: 'PROVIDER_KIND_GEMINI', base_url: mock.url, api_key: 'mock-key' },
  );
  snap.models.push(
    { id: 'mx-openai', provider_id: 'p-openai', upstream_name: 'gpt-4o', capabilities: ['chat'] },
    { id: 'mx-compat', provider_id: 'mock', upstream_name: 'llama-3', capabilities: ['chat'] },
    { id: 'mx-anthropic', provider_id: 'p-anthropic', upstream_name: 'claude-sonnet-4-5', capabilities: ['chat'],
      default_max_tokens: 256 },
    { id: 'mx-gemini', provider_id: 'p-gemini', upstream_name: 'gemini-2.5-flash', capabilities: ['chat'] },
  );
  snap.routes.push({ id: 'r-fo', alias: 'mx-failover', rules: [{ name: 'all', strategy: 'priority',
    targets: [{ provider_id: 'p-anthropic', model_id: 'mx-anthropic', weight: 1 },
      { provider_id: 'p-gemini', model_id: 'mx-gemini', weight: 1 }] }] });
  dp = await startDataplane(mock.url, { key, snapshot: snap });
  openai = new OpenAI({ baseURL: dp.baseURL, apiKey: key, maxRetries: 0, timeout: 10000 });
  anthropic = new Anthropic({ baseURL: dp.url, apiKey: key, maxRetries: 0, timeout: 10000 });
});

after(async () => {
  await dp?.stop();
  await mock?.stop();
  if (results.length) {
    const cells = results.map((r) => `${r.ok ? 'ok  ' : 'FAIL'} ${r.cell}`).join('\n');
    console.log(`\nconformance matrix (${results.filter((r) => r.ok).length}/${results.length} green)\n${cells}`);
  }
});

const PROMPT = 'What is the weather in Paris today';
const userContent = (kind, ingress) => {
  if (kind !== 'image') return PROMPT;
  return ingress === 'openai'
    ? [{ type: 'text', text: PROMPT }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }]
    : [{ type: 'text', text: PROMPT }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } }];
};

// One normalized answer: { text, calls: [{name, args}], finish, prompt, completion }.
async function viaOpenAI(model, stream, kind) {
  const req = { model, messages: [{ role: 'user', content: userContent(kind, 'openai') }] };
  if (kind === 'tool') req.tools = [{ type: 'function', function: WEATHER }];
  if (!stream) {
    const res = await openai.chat.completions.create(req);
    const m = res.choices[0].message;
    return {
      text: m.content || '',
      calls: (m.tool_calls || []).map((c) => ({ id: c.id, name: c.function.name, args: JSON.parse(c.function.arguments) })),
      finish: res.choices[0].finish_reason,
      prompt: res.usage.prompt_tokens,
      completion: res.usage.completion_tokens,
    };
  }
  const s = await openai.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
  let text = '', finish = null, usage = null;
  const calls = [];
  for await (const chunk of s) {
    if (chunk.usage) usage = chunk.usage;
    const ch = chunk.choices[0];
    if (!ch) continue;
    text += ch.delta?.content || '';
    for (const tc of ch.delta?.tool_calls || []) {
      if (tc.id) calls[tc.index] = { id: tc.id, name: tc.function.name, args: '' };
      calls[tc.index].args += tc.function?.arguments || '';
    }
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  assert.ok(usage, 'usage chunk');
  return {
    text, finish, prompt: usage.prompt_tokens, completion: usage.completion_tokens,
    calls: calls.map((c) => ({ ...c, args: JSON.parse(c.args) })),
  };
}

const STOP = { end_turn: 'stop', tool_use: 'tool_calls', max_tokens: 'length' };
async function viaAnthropic(model, stream, kind) {
  const req = { model, max_tokens: 200, messages: [{ role: 'user', content: userContent(kind, 'anthropic') }] };
  if (kind === 'tool') req.tools = [{ name: WEATHER.name, description: WEATHER.description, input_schema: WEATHER.parameters }];
  const msg = stream ? await anthropic.messages.stream(req).finalMessage() : await anthropic.messages.create(req);
  assert.equal(msg.type, 'message');
  return {
    text: msg.content.filter((b) => b.type === 'text').map((b) => b.text).join(''),
    calls: msg.content.filter((b) => b.type === 'tool_use').map((b) => ({ id: b.id, name: b.name, args: b.input })),
    finish: STOP[msg.stop_reason] || msg.stop_reason,
    prompt: msg.usage.input_tokens + (msg.usage.cache_read_input_tokens || 0) + (msg.usage.cache_creation_input_tokens || 0),
    completion: msg.usage.output_tokens,
  };
}

// The reference answer of each (kind) comes from the OpenAI passthrough cell.
const reference = {};
for (const kind of ['text', 'tool', 'image']) {
  for (const ingress of ['openai', 'anthropic']) {
    for (const up of UPSTREAMS) {
      for (const stream of [false, true]) {
        const cell = `${ingress} ingress | ${up.name} upstream | ${stream ? 'stream' : 'non-stream'} | ${kind}`;
        test(cell, async () => {
          let ok = false;
          try {
            const got = await (ingress === 'openai' ? viaOpenAI : viaAnthropic)(up.model, stream, kind);
            if (kind === 'tool') {
              assert.equal(got.calls.length, 1);
              assert.equal(got.calls[0].name, 'get_weather');
              assert.deepEqual(got.calls[0].args, { city: 'What is the weather in Paris today' });
              assert.ok(got.calls[0].id.length > 0);
              assert.equal(got.finish, 'tool_calls');
            } else {
              assert.equal(got.text, `Echo: ${PROMPT}`);
              assert.equal(got.finish, 'stop');
              assert.equal(got.calls.length, 0);
            }
            assert.ok(got.prompt > 0 && got.completion > 0);
            const ref = (reference[kind] ||= { prompt: got.prompt, completion: got.completion });
            assert.equal(got.prompt, ref.prompt, 'prompt tokens as for every other provider');
            assert.equal(got.completion, ref.completion, 'completion tokens as for every other provider');
            ok = true;
          } finally {
            results.push({ cell, ok });
          }
        });
      }
    }
  }
}

const addFault = (fault, endpoint) =>
  fetch(`${mock.url}/_mock/faults`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ fault, count: 1, endpoint }),
  }).then((r) => r.arrayBuffer());

// Before the error tests below: their failures open the targets' circuit breakers.
test('an Anthropic stream failing before its first content fails over invisibly to Gemini', async () => {
  const before = await (await fetch(`${mock.url}/_mock/stats`)).json();
  const gem0 = before.endpoints.stream_generate_content?.received || 0;
  await addFault('malformed', 'messages'); // message_start, then a broken event
  const s = await openai.chat.completions.create({
    model: 'mx-failover', stream: true, messages: [{ role: 'user', content: 'fail over please' }],
  });
  let text = '';
  for await (const chunk of s) text += chunk.choices[0]?.delta?.content || '';
  assert.equal(text, 'Echo: fail over please');
  const after = await (await fetch(`${mock.url}/_mock/stats`)).json();
  assert.equal(after.endpoints.stream_generate_content.received, gem0 + 1, 'Gemini answered');
});

test('errors keep their meaning across providers and dialects', async () => {
  // Anthropic 529 overloaded -> 503; Gemini invalid key (400 upstream) -> 401.
  await fetch(`${mock.url}/_mock/faults`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ fault: { status: 529 }, count: 1, endpoint: 'messages' }),
  });
  const e1 = await openai.chat.completions
    .create({ model: 'mx-anthropic', messages: [{ role: 'user', content: 'hi' }] })
    .catch((e) => e);
  assert.equal(e1.status, 503);
  assert.equal(e1.error?.cause, 'provider');

  // A request Anthropic cannot serve: a clear 400 naming the parameter.
  const e2 = await openai.chat.completions
    .create({ model: 'mx-anthropic', n: 2, messages: [{ role: 'user', content: 'hi' }] })
    .catch((e) => e);
  assert.equal(e2.status, 400);
  assert.equal(e2.param, 'n');
  assert.equal(e2.error?.cause, 'caller');

  // The same refusal on the Anthropic ingress comes in Anthropic's shape.
  const e3 = await anthropic.messages
    .create({ model: 'mx-gemini', max_tokens: 10, messages: [{ role: 'user', content: [{ type: 'document', source: {} }] }] })
    .catch((e) => e);
  assert.equal(e3.status, 400);
  assert.equal(e3.error?.type, 'error');
  assert.equal(e3.error?.error?.type, 'invalid_request_error');
});


test('a stream that breaks after the 200 ends in an explicit error, never a silent truncation', async () => {
  const cases = [
    { model: 'mx-anthropic', endpoint: 'messages', fault: 'malformed' },
    { model: 'mx-gemini', endpoint: 'stream_generate_content', fault: 'malformed' },
    { model: 'mx-anthropic', endpoint: 'messages', fault: 'reset=2' },
    { model: 'mx-gemini', endpoint: 'stream_generate_content', fault: 'reset=2' },
  ];
  for (const c of cases) {
    // OpenAI ingress: the SDK raises on the error event.
    await addFault(c.fault, c.endpoint);
    let text = '';
    const err = await (async () => {
      try {
        // Before any content the failure is a plain HTTP error (create throws);
        // after it, an error event (the iteration throws).
        const s = await openai.chat.completions.create({
          model: c.model, stream: true, messages: [{ role: 'user', content: 'one two three four five' }],
        });
        for await (const chunk of s) text += chunk.choices[0]?.delta?.content || '';
      } catch (e) {
        return e;
      }
      return null;
    })();
    assert.ok(err, `${c.model} ${c.fault}: the client must see an error`);
    assert.ok(!text.includes('five'), 'the stream did not complete');
    // Anthropic ingress: the SDK raises on the error event too.
    await addFault(c.fault, c.endpoint);
    const err2 = await anthropic.messages
      .stream({ model: c.model, max_tokens: 50, messages: [{ role: 'user', content: 'one two three four five' }] })
      .finalMessage()
      .then(() => null, (e) => e);
    assert.ok(err2, `${c.model} ${c.fault} (anthropic ingress): the client must see an error`);
  }
});

test('Gemini RetryInfo and Anthropic retry-after become Retry-After on a 429', async () => {
  await addFault({ status: 429, retry_after: 7 }, 'generate_content');
  const res = await fetch(`${dp.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${dp.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mx-gemini', messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(res.status, 429);
  assert.equal(res.headers.get('retry-after'), '7');
  const body = await res.json();
  assert.equal(body.error.code, 'rate_limit_exceeded');
  assert.equal(body.error.cause, 'provider');

  await addFault({ status: 429, retry_after: 3 }, 'messages');
  const res2 = await fetch(`${dp.url}/v1/messages`, {
    method: 'POST',
    headers: { 'x-api-key': dp.key, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'mx-anthropic', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(res2.status, 429);
  assert.equal(res2.headers.get('retry-after'), '3');
  const b2 = await res2.json();
  assert.equal(b2.type, 'error');
  assert.equal(b2.error.type, 'rate_limit_error');
});

test('the Anthropic ingress takes the key from Authorization too, and refuses a bad one in its shape', async () => {
  const ok = await fetch(`${dp.url}/v1/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${dp.key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'mx-gemini', max_tokens: 10, messages: [{ role: 'user', content: 'hi there' }] }),
  });
  assert.equal(ok.status, 200);
  const msg = await ok.json();
  assert.equal(msg.content[0].text, 'Echo: hi there');
  const wrong = new Anthropic({ baseURL: dp.url, apiKey: 'sk-wrong-key', maxRetries: 0, timeout: 10000 });
  const bad = await wrong.messages
    .create({ model: 'mx-gemini', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] })
    .catch((e) => e);
  assert.equal(bad.status, 401);
  assert.equal(bad.error?.type, 'error');
  assert.equal(bad.error?.error?.type, 'authentication_error');
});

test('refusals from routing reach an Anthropic-style client in its shape (unknown model: 404 not_found_error)', async () => {
  const anthropicErr = async (model) => {
    const res = await fetch(`${dp.url}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': dp.key, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
      signal: AbortSignal.timeout(10000),
    });
    return { status: res.status, body: await res.json() };
  };
  const unknown = await anthropicErr('no-such-model');
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.type, 'error');
  assert.equal(unknown.body.error.type, 'not_found_error');
  assert.match(unknown.body.error.message, /model/i);
  // The official SDK raises its own class for it.
  const sdk = new Anthropic({ baseURL: dp.url, apiKey: dp.key, maxRetries: 0, timeout: 10000 });
  const e = await sdk.messages
    .create({ model: 'no-such-model', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] })
    .catch((err) => err);
  assert.ok(e instanceof Anthropic.NotFoundError, String(e));
  assert.equal(e.error?.error?.type, 'not_found_error');
});

test('errors found while reading a /v1/messages request are in Anthropic shape too (431)', async () => {
  const res = await fetch(`${dp.url}/v1/messages`, {
    method: 'POST',
    headers: { 'x-api-key': dp.key, 'content-type': 'application/json', 'x-pad': 'p'.repeat(40000) },
    body: JSON.stringify({ model: 'mx-anthropic', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
    signal: AbortSignal.timeout(10000),
  });
  assert.equal(res.status, 431);
  const body = await res.json();
  assert.equal(body.type, 'error');
  assert.equal(body.error.type, 'invalid_request_error');
  // The same on the OpenAI endpoint stays in OpenAI's shape.
  const res2 = await fetch(`${dp.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${dp.key}`, 'content-type': 'application/json', 'x-pad': 'p'.repeat(40000) },
    body: '{}',
    signal: AbortSignal.timeout(10000),
  });
  assert.equal(res2.status, 431);
  const b2 = await res2.json();
  assert.equal(b2.error.type, 'invalid_request_error');
  assert.equal(b2.type, undefined);
});
