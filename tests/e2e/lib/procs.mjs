// Helpers for e2e tests: start the real daemons on loopback, wait until they
// answer, and stop them (and everything they forked) when the test ends.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
// SWITCHYARD_BIN_DIR lets the suite run against another build (e.g. build/asan/bin).
export const BIN_DIR = process.env.SWITCHYARD_BIN_DIR || path.join(ROOT, 'bin');
export const bin = (name) => path.join(BIN_DIR, name);

export function tempDir(prefix = 'sy-e2e-') {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

// Asks the kernel for a free loopback port.
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls url until it answers with a status below 500, or throws after timeoutMs.
export async function waitForHttp(url, timeoutMs = 10000, proc = null) {
  const deadline = Date.now() + timeoutMs;
  let lastErr;
  while (Date.now() < deadline) {
    if (proc && proc.exitCode !== null) {
      throw new Error(`${proc.spawnargs.join(' ')} exited with ${proc.exitCode}:\n${proc.output()}`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status < 500) return res;
    } catch (e) {
      lastErr = e;
    }
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${url}: ${lastErr}\n${proc ? proc.output() : ''}`);
}

// Starts a process, capturing its output (kept in memory, last 64 KiB) for
// failure messages. Returns the ChildProcess with .output() and .stop().
export function startProcess(file, args = [], opts = {}) {
  const child = spawn(file, args, {
    cwd: opts.cwd || ROOT,
    env: { ...process.env, ...(opts.env || {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so stop() reaches forked workers
  });
  let out = '';
  const keep = (d) => {
    out += d.toString();
    if (out.length > 65536) out = out.slice(-65536);
    if (opts.onOutput) opts.onOutput(d.toString());
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  child.output = () => out;
  child.stop = (signal = 'SIGTERM', timeoutMs = 5000) =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
      const t = setTimeout(() => {
        try { process.kill(-child.pid, 'SIGKILL'); } catch {}
      }, timeoutMs);
      child.once('exit', (code) => {
        clearTimeout(t);
        resolve(code);
      });
      try { process.kill(-child.pid, signal); } catch { resolve(child.exitCode); }
    });
  return child;
}

// Starts bin/switchyard-mockprovider on a free port; resolves to
// { url, port, proc, stop() } once it answers GET /_mock/stats.
export async function startMock(extraArgs = [], env = {}) {
  const port = await freePort();
  const proc = startProcess(bin('switchyard-mockprovider'), ['--listen', `127.0.0.1:${port}`, ...extraArgs], { env });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/_mock/stats`, 10000, proc);
  return { url, port, proc, stop: () => proc.stop() };
}

// --- data plane ---------------------------------------------------------------
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';

export const sha256Hex = (s) => createHash('sha256').update(s).digest('hex');

// A routing table (dataplane/README.md, JSON form) with one tenant, one key
// and the mock as an OpenAI-compatible provider. opts.keys adds more keys:
// [{ id, secret, expires_at, allowed_models, blocked }].
export function demoSnapshot(mockUrl, key, opts = {}) {
  const keys = [{ id: 'k1', secret: key }, ...(opts.keys || [])].map((k) => ({
    id: k.id, sha256: sha256Hex(k.secret), prefix: k.secret.slice(0, 8), tenant_id: 't1', team_id: 'team1',
    name: k.id, expires_at: k.expires_at || 0, allowed_models: k.allowed_models || [], blocked: !!k.blocked,
  }));
  return {
    version: opts.version || 1,
    created_at: Date.now(),
    live_workers: 1,
    tenants: [{ id: 't1', name: 'tenant one', tier: 'standard' }],
    teams: [{ id: 'team1', tenant_id: 't1', name: 'team one' }],
    keys,
    providers: [{ id: 'mock', name: 'mock', kind: 'PROVIDER_KIND_OPENAI_COMPATIBLE', base_url: `${mockUrl}/v1`,
      api_key: 'mock-key', ...(opts.provider || {}) }],
    models: [
      { id: 'gpt-4o-mini', provider_id: 'mock', upstream_name: 'gpt-4o-mini', capabilities: ['chat'],
        prices: [{ valid_from: 0, input_per_mtok: 1, output_per_mtok: 2 }] },
      { id: 'mock-fast', provider_id: 'mock', upstream_name: 'mock-fast-001', capabilities: ['chat'] },
      { id: 'text-embedding-3-small', provider_id: 'mock', capabilities: ['embeddings'] },
    ],
    routes: [{ id: 'r-auto', alias: 'auto', rules: [{ name: 'all', strategy: 'priority',
      targets: [{ provider_id: 'mock', model_id: 'gpt-4o-mini', weight: 1 }] }] }],
  };
}

// Starts bin/switchyard-dataplane on a free port with a snapshot file
// (opts.snapshot, default demoSnapshot(mockUrl, key)). Resolves once /readyz
// answers 200 to { url, baseURL, key, port, proc, dir, snapshotPath, stop() }.
export async function startDataplane(mockUrl, opts = {}) {
  const port = await freePort();
  const dir = tempDir('sy-dp-');
  const key = opts.key || `sk-test-${randomBytes(12).toString('hex')}`;
  const snapshotPath = path.join(dir, 'snapshot.json');
  writeFileSync(snapshotPath, JSON.stringify(opts.snapshot || demoSnapshot(mockUrl, key, opts)));
  const args = ['--listen', `127.0.0.1:${port}`, '--workers', String(opts.workers || 1),
    '--snapshot-file', snapshotPath, ...(opts.args || [])];
  // SWITCHYARD_VALGRIND=DIR runs the data plane under valgrind, one log per
  // process (master and workers) in DIR.
  if (!opts.valgrind && process.env.SWITCHYARD_VALGRIND) {
    opts.valgrind = ['--leak-check=full', '--errors-for-leak-kinds=definite', '--error-exitcode=99',
      `--log-file=${process.env.SWITCHYARD_VALGRIND}/vg.%p.log`];
  }
  const file = opts.valgrind ? 'valgrind' : bin('switchyard-dataplane');
  const fullArgs = opts.valgrind ? [...opts.valgrind, bin('switchyard-dataplane'), ...args] : args;
  const proc = startProcess(file, fullArgs, { env: opts.env || {} });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (opts.valgrind ? 60000 : 10000);
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`dataplane exited ${proc.exitCode}:\n${proc.output()}`);
    try {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {}
    if (Date.now() > deadline) throw new Error(`dataplane not ready:\n${proc.output()}`);
    await sleep(50);
  }
  return { url, baseURL: `${url}/v1`, key, port, proc, dir, snapshotPath, stop: (sig) => proc.stop(sig) };
}
