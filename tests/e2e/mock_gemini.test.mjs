// The official @google/genai SDK, pointed straight at the mock provider:
// generateContent, generateContentStream (alt=sse, CRLF framing) and a
// function call with exact usage, and scripted errors as ApiError.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { GoogleGenAI, ApiError } from '@google/genai';
import { startMock } from './lib/procs.mjs';

const words = (s) => s.split(/\s+/).filter(Boolean).length;

let mock;
let ai;

const opts = (url, apiKey = 'AIza-mock') =>
  new GoogleGenAI({ apiKey, httpOptions: { baseUrl: url, retryOptions: { attempts: 1 }, timeout: 5000 } });

before(async () => {
  mock = await startMock(['--name', 'gm-1', '--api-key', 'AIza-mock']);
  ai = opts(mock.url);
});

after(async () => {
  const code = await mock.stop();
  assert.equal(code, 0, `mock exited with ${code}:\n${mock.proc.output()}`);
});

test('generateContent: text, finish reason, usage with cached tokens', async () => {
  const res = await ai.models.generateContent({
    model: 'gemini-2.5-flash',
    contents: [
      { role: 'user', parts: [{ text: 'earlier turn' }] },
      { role: 'model', parts: [{ text: 'ok' }] },
      { role: 'user', parts: [{ text: 'Why is the sky blue' }] },
    ],
    config: { systemInstruction: 'Be short.', httpOptions: { headers: { 'x-mock-cached-tokens': '3' } } },
  });
  assert.equal(res.text, 'Echo: Why is the sky blue');
  assert.equal(res.candidates[0].finishReason, 'STOP');
  assert.equal(res.modelVersion, 'gemini-2.5-flash');
  assert.match(res.responseId, /^resp-gm-1-\d+$/);
  // prompt = system (1 + 2) + 3 contents (2 + 1 + 5 words + 3) = 14, cached included.
  const prompt = 1 + words('Be short.') + 3 + 2 + 1 + 5;
  assert.equal(res.usageMetadata.promptTokenCount, prompt);
  assert.equal(res.usageMetadata.candidatesTokenCount, 6);
  assert.equal(res.usageMetadata.totalTokenCount, prompt + 6);
  assert.equal(res.usageMetadata.cachedContentTokenCount, 3);
});

test('generateContentStream: one chunk per word, cumulative usage, final STOP', async () => {
  const stream = await ai.models.generateContentStream({
    model: 'gemini-2.5-pro',
    contents: 'count these four words',
  });
  let text = '';
  let n = 0;
  let last = null;
  for await (const chunk of stream) {
    n++;
    text += chunk.text ?? '';
    assert.equal(chunk.usageMetadata.candidatesTokenCount, Math.min(n, 5));
    last = chunk;
  }
  assert.equal(n, 5 + 1);
  assert.equal(text, 'Echo: count these four words');
  assert.equal(last.candidates[0].finishReason, 'STOP');
  assert.equal(last.usageMetadata.promptTokenCount, 5);
  assert.equal(last.usageMetadata.totalTokenCount, 10);

  // The wire uses CRLF framing, as the real API does.
  const raw = await fetch(`${mock.url}/v1beta/models/g:streamGenerateContent?alt=sse`, {
    method: 'POST',
    headers: { 'x-goog-api-key': 'AIza-mock', 'content-type': 'application/json' },
    body: JSON.stringify({ contents: [{ parts: [{ text: 'hi' }] }] }),
  });
  const wire = await raw.text();
  assert.ok(wire.endsWith('}\r\n\r\n'));
  assert.equal(wire.split('\r\n\r\n').filter(Boolean).length, 2 + 1);
});

test('function call: non-streaming and streamed', async () => {
  const req = {
    model: 'gemini-2.5-flash',
    contents: 'Set the lights to blue',
    config: {
      tools: [
        {
          functionDeclarations: [
            {
              name: 'set_light',
              description: 'Set the light color',
              parametersJsonSchema: {
                type: 'object',
                properties: { color: { type: 'string' }, brightness: { type: 'integer' } },
                required: ['color'],
              },
            },
          ],
        },
      ],
    },
  };
  const res = await ai.models.generateContent(req);
  assert.equal(res.functionCalls.length, 1);
  assert.equal(res.functionCalls[0].name, 'set_light');
  assert.deepEqual(res.functionCalls[0].args, { color: 'Set the lights to blue' });
  assert.equal(res.candidates[0].finishReason, 'STOP');
  const argsText = JSON.stringify({ color: 'Set the lights to blue' });
  assert.equal(res.usageMetadata.candidatesTokenCount, 1 + words(argsText));

  const stream = await ai.models.generateContentStream(req);
  const calls = [];
  for await (const chunk of stream) calls.push(...(chunk.functionCalls ?? []));
  assert.equal(calls.length, 1);
  assert.equal(calls[0].name, 'set_light');
  assert.deepEqual(calls[0].args, { color: 'Set the lights to blue' });
});

test('errors: invalid key is 400 API_KEY_INVALID; scripted statuses as ApiError', async () => {
  await assert.rejects(opts(mock.url, 'wrong').models.generateContent({ model: 'g', contents: 'x' }), (e) => {
    assert.ok(e instanceof ApiError, e.constructor.name);
    assert.equal(e.status, 400);
    const body = JSON.parse(e.message.slice(e.message.indexOf('{')));
    assert.equal(body.error.status, 'INVALID_ARGUMENT');
    assert.equal(body.error.details[0].reason, 'API_KEY_INVALID');
    return true;
  });
  for (const [status, rpc] of [[429, 'RESOURCE_EXHAUSTED'], [500, 'INTERNAL'], [503, 'UNAVAILABLE']]) {
    await assert.rejects(
      ai.models.generateContent({
        model: 'g',
        contents: 'x',
        config: { httpOptions: { headers: { 'x-mock-fault': `status=${status}` } } },
      }),
      (e) => {
        assert.ok(e instanceof ApiError, e.constructor.name);
        assert.equal(e.status, status);
        assert.match(e.message, new RegExp(rpc));
        return true;
      },
    );
  }
  // Missing contents is the API's own 400.
  const raw = await fetch(`${mock.url}/v1beta/models/g:generateContent`, {
    method: 'POST',
    headers: { 'x-goog-api-key': 'AIza-mock', 'content-type': 'application/json' },
    body: '{}',
  });
  assert.equal(raw.status, 400);
  assert.equal((await raw.json()).error.status, 'INVALID_ARGUMENT');
  // The key may also come as ?key=.
  const q = await fetch(`${mock.url}/v1beta/models/g:generateContent?key=AIza-mock`, {
    method: 'POST',
    body: JSON.stringify({ contents: [{ parts: [{ text: 'hi' }] }] }),
  });
  assert.equal(q.status, 200);
});

test('in-stream error event after the 200 fails the stream', async () => {
  const stream = await ai.models.generateContentStream({
    model: 'g',
    contents: 'a b c',
    config: { httpOptions: { headers: { 'x-mock-fault': 'stream_error=2' } } },
  });
  let text = '';
  await assert.rejects(
    (async () => {
      for await (const chunk of stream) text += chunk.text ?? '';
    })(),
    (e) => {
      assert.match(String(e.message), /UNAVAILABLE|overloaded/);
      return true;
    },
  );
  assert.equal(text, 'Echo: a');
});

test('models: list and get', async () => {
  const names = [];
  const pager = await ai.models.list();
  for await (const m of pager) names.push(m.name);
  assert.deepEqual(names, ['models/gemini-2.5-flash', 'models/gemini-2.5-pro']);
  const one = await ai.models.get({ model: 'gemini-x' });
  assert.equal(one.name, 'models/gemini-x');
  assert.equal(one.description, 'mock model of gm-1');
});
