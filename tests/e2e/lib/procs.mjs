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
