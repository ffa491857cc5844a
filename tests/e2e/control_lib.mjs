// Helpers for the control-plane e2e tests: start switchyard-control and a
// data plane connected to it over nanomsg ipc sockets, drive the admin API,
// and send chat requests with exact usage bookkeeping.
import { writeFileSync, mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { bin, freePort, startProcess, waitForHttp, sleep, ROOT } from './lib/procs.mjs';

export const ADMIN_TOKEN = 'sy-admin-e2e-' + randomBytes(12).toString('hex');

export function writeKey(file) {
  writeFileSync(file, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
  return file;
}

// Starts (or restarts, with the same dir and port) the control plane.
export async function startControl(dir, { port, clusterKeyFile, extra = [] } = {}) {
  port = port || (await freePort());
  const args = [
    '--data-dir', dir,
    '--admin-listen', `127.0.0.1:${port}`,
    '--migrations-dir', path.join(ROOT, 'migrations'),
    '--heartbeat', '200ms',
    '--debounce', '20ms',
    '--usage-refresh', '1s',
    '--log-level', 'warn',
  ];
  if (clusterKeyFile) args.push('--cluster-key-file', clusterKeyFile);
  const proc = startProcess(bin('switchyard-control'), [...args, ...extra], {
    env: { SWITCHYARD_ADMIN_TOKEN: ADMIN_TOKEN },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/admin/v1/healthz`, 10000, proc);
  return { url, port, proc, dir, clusterKeyFile, api: adminClient(url, ADMIN_TOKEN) };
}

export function adminClient(url, token) {
  return async function api(method, p, body) {
    const res = await fetch(`${url}/admin/v1${p}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
    const text = await res.text();
    let json = null;
    try { json = JSON.parse(text); } catch {}
    return { status: res.status, body: json, text };
  };
}

export async function must(api, method, p, body, status = null) {
  const r = await api(method, p, body);
  if (status ? r.status !== status : r.status >= 300) {
    throw new Error(`${method} ${p} -> ${r.status}: ${r.text}`);
  }
  return r.body;
}

// Starts a data plane whose workers talk to the control plane in controlDir.
export async function startDataplane({ controlDir, clusterKeyFile, stateDir, workers = 2, port, control }) {
  port = port || (await freePort());
  mkdirSync(stateDir, { recursive: true });
  const proc = startProcess(bin('switchyard-dataplane'), [
    '--listen', `127.0.0.1:${port}`,
    '--workers', String(workers),
    '--control', control || `ipc://${controlDir}`,
    '--cluster-key-file', clusterKeyFile,
    '--state-dir', stateDir,
    '--access-log=false',
    '--log-level', 'info',
  ]);
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/healthz`, 10000, proc);
  return { url, port, proc };
}

// pid of each worker, from the dataplane's worker_started log lines (the
// latest line per worker wins, so restarts are followed).
export function workerPids(proc) {
  const pids = {};
  for (const line of proc.output().split('\n')) {
    if (!line.includes('"worker_started"')) continue;
    try {
      const j = JSON.parse(line);
      pids[j.worker] = j.pid;
    } catch {}
  }
  return pids;
}

// The demo objects: a tenant, a team, a provider (the mock as OpenAI), a
// priced model and a key. Returns ids, the key's secret and the price.
export async function createTenantWithKey(api, mockUrl, name = 'acme') {
  const tenant = await must(api, 'POST', '/tenants', { name });
  const team = await must(api, 'POST', `/tenants/${tenant.id}/teams`, { name: 'eng' });
  const provider = await must(api, 'POST', '/providers', {
    name: `mock-${name}`, kind: 'openai', base_url: `${mockUrl}/v1`, api_key: 'mock-key',
  });
  const price = { valid_from: 0, input_per_mtok: 2.5, output_per_mtok: 10, cached_input_per_mtok: 1.25 };
  const model = await must(api, 'POST', '/models', {
    id: `gpt-e2e-${name}`, provider_id: provider.id, upstream_name: 'gpt-4o', prices: [price],
  });
  const key = await must(api, 'POST', `/tenants/${tenant.id}/keys`, { name: 'k1', team_id: team.id });
  return { tenant, team, provider, model, key, secret: key.secret, price };
}

// Waits until the data plane accepts secret (the snapshot carrying it has
// arrived); throws after timeoutMs.
export async function waitKeyWorks(url, secret, model, timeoutMs = 3000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await chat(url, secret, model);
    if (last.status === 200) return last;
    await sleep(20);
  }
  throw new Error(`key never worked: ${last && last.status} ${last && last.text}`);
}

export async function chat(url, secret, model, content = 'hello there my friend') {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content }] }),
    signal: AbortSignal.timeout(10000),
  });
  const text = await res.text();
  let body = null;
  try { body = JSON.parse(text); } catch {}
  return { status: res.status, body, text };
}

// Sends n requests with the given concurrency; every prompt has a different
// length so token totals are not a simple multiple. Returns the tallies of
// what the mock reported in the responses.
export async function load(url, secret, model, n, concurrency = 16, onProgress = null) {
  const tally = { ok: 0, failed: 0, prompt: 0, completion: 0, cached: 0, errors: [] };
  let next = 0;
  async function loop() {
    while (next < n) {
      const i = next++;
      const words = 1 + (i % 13);
      const content = Array.from({ length: words }, (_, k) => `w${k}`).join(' ');
      try {
        const r = await chat(url, secret, model, content);
        if (r.status === 200 && r.body && r.body.usage) {
          tally.ok++;
          tally.prompt += r.body.usage.prompt_tokens;
          tally.completion += r.body.usage.completion_tokens;
          tally.cached += r.body.usage.prompt_tokens_details?.cached_tokens || 0;
        } else {
          tally.failed++;
          if (tally.errors.length < 5) tally.errors.push(`${r.status} ${r.text.slice(0, 200)}`);
        }
      } catch (e) {
        tally.failed++;
        if (tally.errors.length < 5) tally.errors.push(String(e));
      }
      if (onProgress) onProgress(tally);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, loop));
  return tally;
}

export function expectedCost(t, price) {
  return ((t.prompt - t.cached) * price.input_per_mtok + t.cached * price.cached_input_per_mtok +
    t.completion * price.output_per_mtok) / 1e6;
}

// Polls the usage API until totals for the key reach the wanted token
// counts (or the deadline passes); returns the last totals.
export async function waitUsage(api, keyId, want, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  let last = null;
  while (Date.now() < deadline) {
    try {
      const r = await api('GET', `/usage?key=${keyId}`);
      if (r.status === 200) {
        last = r.body.totals;
        if (last.requests >= want.requests && last.prompt_tokens >= want.prompt_tokens) {
          // Let a straggling duplicate show up if there were one.
          await sleep(300);
          const again = await api('GET', `/usage?key=${keyId}`);
          return again.body.totals;
        }
      }
    } catch {}
    await sleep(100);
  }
  return last;
}

export { sleep };
