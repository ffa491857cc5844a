// Turns build/bench/results.jsonl (written by tests/bench/run.sh) into the
// markdown table of `make bench`, on stdout.
//   node tests/bench/report.mjs results.jsonl [header.txt]
import { readFileSync, existsSync } from 'node:fs';

const [file, headerFile] = process.argv.slice(2);
const rows = readFileSync(file, 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l));

const fmt = (v, digits = 1) => (v === null || v === undefined || Number.isNaN(v) ? '–' : v.toFixed(digits));
const ratio = (v, base) => (v == null || base == null || base <= 0 ? '–' : `${(v / base).toFixed(2)}×`);
const int = (v) => (v == null ? '–' : Math.round(v).toLocaleString('en-US'));

const http = rows.filter((r) => r.kind === 'http');
const streams = rows.filter((r) => r.kind === 'stream');

// Per (target, conns) figures: with several rounds, each figure is the
// median over the rounds (taken figure by figure).
const median = (xs) => {
  const v = xs.filter((x) => x != null && !Number.isNaN(x)).sort((p, q) => p - q);
  if (!v.length) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const runs = new Map();
for (const r of http) {
  if (r.failed) continue;
  const key = `${r.target}/${r.conns}`;
  if (!runs.has(key)) runs.set(key, []);
  const w = r.wrk;
  const secs = w.duration_us / 1e6;
  runs.get(key).push({
    target: r.target,
    conns: r.conns,
    rps: w.requests / secs,
    p50: w.latency_us.p50 / 1000,
    p99: w.latency_us.p99 / 1000,
    cpu: r.gw_cpu_us == null ? null : r.gw_cpu_us / w.requests,
    mockCpu: r.mock_cpu_us / w.requests,
    status: w.errors.status,
    errors: w.errors.connect + w.errors.read + w.errors.write + w.errors.timeout,
  });
}
const fig = new Map();
for (const [key, rs] of runs) {
  const pick = (f) => median(rs.map(f));
  fig.set(key, {
    target: rs[0].target,
    conns: rs[0].conns,
    rounds: rs.length,
    rps: pick((x) => x.rps),
    p50: pick((x) => x.p50),
    p99: pick((x) => x.p99),
    cpu: pick((x) => x.cpu),
    mockCpu: pick((x) => x.mockCpu),
    bad: `${rs.reduce((n, x) => n + x.status, 0)}/${rs.reduce((n, x) => n + x.errors, 0)}`,
  });
}

const out = [];
if (headerFile && existsSync(headerFile)) out.push(readFileSync(headerFile, 'utf8').trimEnd(), '');

out.push('### Non-streaming chat completions (wrk, POST /v1/chat/completions)', '');
out.push(
  '| target | conns | req/s | req/s ×nginx | p50 ms | p99 ms | added p50 ms | added p50 ×nginx | gateway CPU µs/req | CPU ×nginx | mock CPU µs/req | non-2xx/errors |',
);
out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
const conns = [...new Set(http.filter((r) => !r.failed).map((r) => r.conns))].sort((a, b) => b - a);
const targets = [...new Set(http.map((r) => r.target))];
for (const c of conns) {
  const ng = fig.get(`nginx/${c}`);
  const direct = fig.get(`direct/${c}`);
  for (const t of targets) {
    const f = fig.get(`${t}/${c}`);
    if (!f) continue;
    const added = direct && t !== 'direct' ? f.p50 - direct.p50 : null;
    const ngAdded = direct && ng ? ng.p50 - direct.p50 : null;
    out.push(
      `| ${t} | ${c} | ${int(f.rps)} | ${ratio(f.rps, ng?.rps)} | ${fmt(f.p50, 3)} | ${fmt(f.p99, 3)} | ` +
        `${fmt(added, 3)} | ${t === 'direct' ? '–' : ratio(added, ngAdded)} | ${fmt(f.cpu)} | ` +
        `${ratio(f.cpu, ng?.cpu)} | ${fmt(f.mockCpu)} | ${f.bad} |`,
    );
  }
}
for (const r of http.filter((x) => x.failed)) out.push(`| ${r.target} | failed: see the log above | | | | | | | | | | |`);
out.push(
  '',
  'CPU: utime+stime (+ reaped children) of the gateway\'s whole process tree (master and workers), ' +
    'from /proc/PID/stat before and after the run, divided by the requests wrk completed. ' +
    'Added p50: the target\'s p50 minus the direct-to-mock p50 at the same connection count. ' +
    'non-2xx/errors: wrk\'s status errors / socket errors and timeouts, summed over the rounds.',
);

if (streams.length) {
  out.push('', '### Concurrent SSE streams (tests/bench/streamclient)', '');
  out.push(
    '| target | workers | streams | peak in flight (answering) | completed | refused/broken | events | RSS KiB/open stream (workers total) | RSS KiB/open stream (added over idle) | CPU µs/relayed event (whole run) | CPU µs/relayed event (steady) | all open after |',
  );
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const s of streams) {
    if (s.failed) {
      out.push(`| ${s.target} | failed: see the log above | | | | | | | | | | |`);
      continue;
    }
    const r = s.result;
    const open = r.peak_active || null;
    const total = open ? r.peak.workers_rss_kib / open : null;
    const added = open ? (r.peak.workers_rss_kib - r.before.workers_rss_kib) / open : null;
    const cpu = r.events ? (r.after.cpu_us - r.before.cpu_us) / r.events : null;
    const steady = r.steady ? r.steady.cpu_us / r.steady.events : null;
    out.push(
      `| ${s.target} | ${r.peak.procs > 1 ? r.peak.procs - 1 : 1} | ${int(r.streams)} | ${int(r.peak_active)} (${int(r.peak_answering)}) | ` +
        `${int(r.completed)} | ${int(r.refused)}/${int(r.broken)} | ${int(r.events)} | ${fmt(total, 2)} | ` +
        `${fmt(added, 2)} | ${fmt(cpu, 2)} | ${fmt(steady, 2)} | ${r.all_open_at_ms ? `${(r.all_open_at_ms / 1000).toFixed(1)} s` : 'never'} |`,
    );
  }
  out.push(
    '',
    'In flight: request written, response not ended; answering: 200 and headers received. ' +
      'RSS: sum of the worker processes\' resident set at the moment the most streams were in flight at once ' +
      '(the latest such sample, as answers start), divided by that number; "added over idle" subtracts the workers\' RSS before the first stream. ' +
      'CPU (whole run): the whole process tree from the first connect to the last close, divided by the SSE events ' +
      'the clients received; (steady): only while every stream was answering and none had ended, when the ' +
      'gateway does nothing but relay events (– when the run had no such window).',
  );
}

// The issue's targets, judged on this run's figures.
const sy64 = fig.get(`switchyard/${conns[0]}`);
const ng64 = fig.get(`nginx/${conns[0]}`);
const sy1 = fig.get('switchyard/1');
const ng1 = fig.get('nginx/1');
const d1 = fig.get('direct/1');
const syStream = streams.find((s) => s.target === 'switchyard' && !s.failed);
const lines = [];
if (sy64 && ng64) {
  const r = sy64.cpu / ng64.cpu;
  lines.push(`- CPU per request at ${conns[0]} connections: ${r.toFixed(2)}× nginx (target ≤ 1.2×): ${r <= 1.2 ? 'met' : 'not met'}`);
}
if (sy1 && ng1 && d1) {
  const r = (sy1.p50 - d1.p50) / (ng1.p50 - d1.p50);
  lines.push(`- Added p50 at 1 connection: ${r.toFixed(2)}× nginx (target ≤ 1.5×): ${r <= 1.5 ? 'met' : 'not met'}`);
}
if (syStream) {
  const r = syStream.result;
  const per = r.peak_active ? r.peak.workers_rss_kib / r.peak_active : Infinity;
  const added = r.peak_active ? (r.peak.workers_rss_kib - r.before.workers_rss_kib) / r.peak_active : Infinity;
  lines.push(
    `- Streams: ${r.peak_active} in flight at once of ${r.streams} (target ≥ 20,000), ` +
      `${per.toFixed(2)} KiB workers' RSS per open stream, ${added.toFixed(2)} KiB added over idle ` +
      `(target ≤ 16 KiB): ${r.peak_active >= 20000 && per <= 16 ? 'met' : 'not met'}`,
  );
}
if (lines.length) out.push('', '### Targets (issue 3)', '', ...lines);
console.log(out.join('\n'));
