// Shared setup for the routing e2e files: several mock instances as distinct
// providers, and a snapshot whose routes exercise failover, rules and
// strategies. Faults that belong to one provider travel as that provider's
// extra header (x-mock-fault), so one mock instance can play several broken
// providers while a healthy instance answers.
import { sha256Hex, freePort } from './lib/procs.mjs';

export const KEY = 'sk-route-0123456789abcdef';

// Counts from GET /_mock/stats for chat completions.
export async function chatStats(mock) {
  const s = await (await fetch(`${mock.url}/_mock/stats`)).json();
  const e = s.endpoints.chat_completions || {};
  return { received: e.received || 0, completed: e.completed || 0, faults: e.faults || 0,
    errors: e.errors || 0, aborted: e.aborted || 0 };
}
export const resetStats = (...mocks) =>
  Promise.all(mocks.map((m) => fetch(`${m.url}/_mock/reset`, { method: 'POST' }).then((r) => r.arrayBuffer())));

// Which mock instance answered: ids are chatcmpl-<name>-<n>.
export const answeredBy = (id) => (/^chatcmpl-([A-Za-z0-9._]+)-\d+$/.exec(id) || [])[1];

export async function chat(dp, body, headers = {}) {
  const res = await fetch(`${dp.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15000),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch {}
  return { status: res.status, headers: res.headers, text, json };
}

const price = (inp, out) => [{ valid_from: 0, input_per_mtok: inp, output_per_mtok: out }];

// mocks: { a: bad instance, b: healthy fallback, c: rules targets }.
export async function routingSnapshot(mocks, extra = {}) {
  const refusedPort = await freePort(); // nothing listens there: connection refused
  const prov = (id, url, o = {}) => ({ id, name: id, kind: 'PROVIDER_KIND_OPENAI_COMPATIBLE',
    base_url: `${url}/v1`, api_key: 'mock-key', ...o });
  const fault = (f) => ({ headers: { 'x-mock-fault': f } });
  const model = (id, provider_id, p = price(1, 2), o = {}) => ({ id, provider_id, upstream_name: id,
    capabilities: ['chat'], prices: p, ...o });
  const route = (alias, rules, o = {}) => ({ id: `r-${alias}`, alias, max_attempts: 4, deadline_ms: 10000, rules, ...o });
  const rule = (name, strategy, targets, o = {}) => ({ name, strategy,
    targets: targets.map((m) => ({ model_id: m, weight: 1 })), ...o });
  return {
    version: 1, created_at: Date.now(), live_workers: 2,
    tenants: [{ id: 't1', name: 'tenant one', tier: 'standard' }],
    teams: [{ id: 'team1', tenant_id: 't1', name: 'team one' }],
    keys: [{ id: 'k1', sha256: sha256Hex(KEY), prefix: KEY.slice(0, 8), tenant_id: 't1', team_id: 'team1',
      name: 'k1', allowed_models: [], ...(extra.key || {}) }],
    providers: [
      prov('p-down', `http://127.0.0.1:${refusedPort}`, { connect_timeout_ms: 1000 }),
      prov('p-429', mocks.a.url, fault('status=429; retry_after=1')),
      prov('p-slow', mocks.a.url, { first_byte_timeout_ms: 300, ...fault('latency=3000') }),
      prov('p-cut', mocks.a.url, fault('reset=3')),
      prov('p-rst', mocks.a.url, fault('reset=before')),
      prov('p-400', mocks.a.url, fault('status=400')),
      prov('p-flaky', mocks.a.url), // faults set per instance in the breaker test
      prov('p-laggy', mocks.a.url, fault('latency=120')),
      prov('p-good', mocks.b.url),
      prov('p-c', mocks.c.url),
    ],
    models: [
      model('m-down', 'p-down'), model('m-429', 'p-429'), model('m-slow', 'p-slow'),
      model('m-cut', 'p-cut'), model('m-rst', 'p-rst'), model('m-400', 'p-400'),
      model('m-flaky', 'p-flaky'), model('m-good', 'p-good'), model('m-laggy', 'p-laggy'),
      model('m-fast', 'p-c', price(0.5, 1)), model('m-long', 'p-c', price(3, 6)),
      model('m-big', 'p-c', price(5, 15)), model('m-mid', 'p-c', price(1, 2)),
      model('m-cheap', 'p-c', price(0.15, 0.6)),
    ],
    routes: [
      route('down-first', [rule('all', 'priority', ['m-down', 'm-good'])]),
      route('throttled', [rule('all', 'priority', ['m-429', 'm-good'])]),
      route('slow', [rule('all', 'priority', ['m-slow', 'm-good'])]),
      route('cut', [rule('all', 'priority', ['m-cut', 'm-good'])]),
      route('rst', [rule('all', 'priority', ['m-rst', 'm-good'])]),
      route('caller-error', [rule('all', 'priority', ['m-400', 'm-good'])]),
      route('flaky', [rule('all', 'priority', ['m-flaky', 'm-good'])]),
      route('quick', [rule('all', 'lowest-latency', ['m-laggy', 'm-good'])]),
      route('auto', [
        rule('fast', 'priority', ['m-fast'], { task: 'fast-classify' }),
        rule('long', 'priority', ['m-long'], { min_prompt_tokens: 2000 }),
        rule('bulk', 'lowest-cost', ['m-big', 'm-mid', 'm-cheap'], { task: 'bulk' }),
        rule('default', 'priority', ['m-big', 'm-mid']),
      ]),
    ],
    budgets: extra.budgets || [],
  };
}
