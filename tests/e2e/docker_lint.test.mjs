// Lints docker/ without a Docker engine: every command in compose.yaml names a
// binary we build and only flags that binary accepts, every COPY source in the
// Dockerfile exists, and the load balancer's nginx config passes `nginx -t`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { ROOT, bin, tempDir } from './lib/procs.mjs';

const compose = readFileSync(path.join(ROOT, 'docker/compose.yaml'), 'utf8');

// The compose file writes each command as a JSON-style flow sequence, possibly
// over several lines: collect them.
function commands() {
  const out = [];
  const re = /command:\s*(\[[^\]]*\])/g;
  let m;
  while ((m = re.exec(compose)) !== null) out.push(JSON.parse(m[1].replace(/\s+/g, ' ')));
  return out;
}

test('compose commands use real binaries and flags they accept', () => {
  const cmds = commands();
  assert.ok(cmds.length >= 4, 'expected the control, data plane and mock commands');
  for (const cmd of cmds) {
    const file = bin(cmd[0]);
    assert.ok(existsSync(file), `${cmd[0]} is not built`);
    let help = '';
    try {
      help = execFileSync(file, ['--help'], { encoding: 'utf8' });
    } catch (e) {
      help = `${e.stdout || ''}${e.stderr || ''}`;
    }
    for (const arg of cmd.slice(1).filter((a) => a.startsWith('--'))) {
      assert.ok(help.includes(`${arg} `) || help.includes(`${arg}\n`), `${cmd[0]} does not accept ${arg}`);
    }
  }
});

test('Dockerfile COPY sources exist', () => {
  const dockerfile = readFileSync(path.join(ROOT, 'docker/Dockerfile'), 'utf8');
  const copies = [...dockerfile.matchAll(/^COPY\s+(?!--from)(\S+)\s+\S+$/gm)].map((m) => m[1]);
  assert.ok(copies.length >= 5);
  for (const src of copies) assert.ok(existsSync(path.join(ROOT, src)), `COPY ${src}: missing`);
});

test('load balancer config passes nginx -t', () => {
  const dir = tempDir('sy-nginx-lint-');
  // Compose service names do not resolve here: test the same config on loopback.
  const conf = readFileSync(path.join(ROOT, 'docker/nginx-lb.conf'), 'utf8').replace(/dataplane-[ab]/g, '127.0.0.1');
  writeFileSync(path.join(dir, 'nginx.conf'), `pid ${dir}/nginx.pid;\nerror_log stderr;\n${conf}`);
  const out = execFileSync('/usr/sbin/nginx', ['-t', '-p', dir, '-c', path.join(dir, 'nginx.conf')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  assert.equal(typeof out, 'string');
});
