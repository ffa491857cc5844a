// `make run` (tests/tools/run-local.sh) as the README promises: it starts the
// whole system, writes run/switchyard.env, and the demo key works with the
// official SDK at once; SIGTERM stops everything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { ROOT, freePort, startProcess, tempDir, sleep } from './lib/procs.mjs';

test('make run starts the gateway and fills run/switchyard.env', async () => {
  const runDir = tempDir('sy-run-');
  const env = {
    SWITCHYARD_RUN_DIR: runDir,
    SWITCHYARD_PORT: String(await freePort()),
    SWITCHYARD_ADMIN_PORT: String(await freePort()),
    SWITCHYARD_MOCK_PORT: String(await freePort()),
    SWITCHYARD_WORKERS: '1',
  };
  let printed = '';
  const proc = startProcess(path.join(ROOT, 'tests/tools/run-local.sh'), [], {
    env,
    onOutput: (d) => { printed += d; },
  });
  try {
    const deadline = Date.now() + 30000;
    while (!printed.includes('Ctrl-C stops everything') && Date.now() < deadline) {
      assert.equal(proc.exitCode, null, `run-local.sh exited early:\n${proc.output()}`);
      await sleep(100);
    }
    assert.ok(printed.includes('Ctrl-C stops everything'), `not ready:\n${proc.output()}`);

    const vars = Object.fromEntries(
      readFileSync(path.join(runDir, 'switchyard.env'), 'utf8')
        .trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)),
    );
    for (const k of ['SWITCHYARD_BASE_URL', 'SWITCHYARD_API_KEY', 'SWITCHYARD_ADMIN_URL',
      'SWITCHYARD_ADMIN_TOKEN', 'SWITCHYARD_MOCK_URL']) {
      assert.ok(vars[k], `${k} missing from switchyard.env`);
    }
    assert.equal(vars.SWITCHYARD_BASE_URL, `http://127.0.0.1:${env.SWITCHYARD_PORT}`);
    assert.ok(printed.includes(vars.SWITCHYARD_API_KEY), 'the demo key is printed');
    assert.ok(printed.includes(vars.SWITCHYARD_ADMIN_TOKEN), 'the admin token is printed');

    // The README's curl line, as a raw request.
    const res = await fetch(`${vars.SWITCHYARD_BASE_URL}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${vars.SWITCHYARD_API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello there' }] }),
    });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.choices[0].message.content, 'Echo: Hello there');

    // The official SDK with only the base URL changed.
    const client = new OpenAI({ baseURL: `${vars.SWITCHYARD_BASE_URL}/v1`, apiKey: vars.SWITCHYARD_API_KEY, maxRetries: 0 });
    const models = await client.models.list();
    assert.ok(models.data.some((m) => m.id === 'gpt-4o-mini'));

    const admin = await fetch(`${vars.SWITCHYARD_ADMIN_URL}/admin/v1/tenants`, {
      headers: { authorization: `Bearer ${vars.SWITCHYARD_ADMIN_TOKEN}` },
    });
    assert.equal(admin.status, 200);
  } finally {
    const code = await proc.stop('SIGTERM', 15000);
    assert.equal(code, 0, `run-local.sh did not stop cleanly:\n${proc.output()}`);
  }
});
