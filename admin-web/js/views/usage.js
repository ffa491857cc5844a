// Usage: tokens and cost grouped by model, key, team, provider or tenant
// over a period, as a table and an inline SVG bar chart.
import { h, svg, table, fmtInt, fmtUsd, clear } from '../dom.js';
import { api, qs, listAll, enc } from '../api.js';
import { ctx, errorBox } from '../app.js';
import { pageHeader } from './common.js';
import { field } from '../forms.js';

const GROUPS = [['model', 'Model'], ['key', 'API key'], ['team', 'Team'], ['provider', 'Provider'], ['tenant', 'Tenant'], ['route', 'Route']];
const DIM = { model: 'model_id', key: 'key_id', team: 'team_id', provider: 'provider_id', tenant: 'tenant_id', route: 'route' };

const day = (d) => d.toISOString().slice(0, 10);

export async function usageView() {
  const tenants = ctx.platform ? await listAll('/tenants') : [];
  const today = new Date();
  const weekAgo = new Date(Date.now() - 6 * 86400000);
  const groups = ctx.platform ? GROUPS : GROUPS.filter(([g]) => g !== 'tenant');
  const f = {
    tenant: ctx.platform ? field({ name: 'tenant', label: 'Tenant', type: 'select', value: '', options: [['', 'All tenants'], ...tenants.map((t) => [t.id, t.name])] }) : null,
    from: field({ name: 'from', label: 'From (UTC, inclusive)', type: 'date', value: day(weekAgo) }),
    to: field({ name: 'to', label: 'To (UTC, inclusive)', type: 'date', value: day(today) }),
    group: field({ name: 'group_by', label: 'Group by', type: 'select', value: 'model', options: groups }),
    metric: field({ name: 'metric', label: 'Chart', type: 'select', value: 'cost', options: [['cost', 'Cost (USD)'], ['tokens', 'Total tokens'], ['requests', 'Requests']] }),
  };
  const out = h('div', { class: 'usage-out', 'aria-live': 'polite' });
  const formEl = h('form', { class: 'filters', 'aria-label': 'Usage filters' },
    Object.values(f).filter(Boolean).map((x) => x.wrap),
    h('div', { class: 'field field-button' }, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Show')));
  const names = new Map(tenants.map((t) => [t.id, t.name]));

  async function load() {
    clear(out);
    for (const x of Object.values(f)) if (x) x.error.textContent = '';
    const tenant = ctx.platform ? f.tenant.input.value : ctx.me.tenant_id;
    const from = f.from.input.value;
    const toDay = f.to.input.value;
    const to = toDay ? day(new Date(Date.parse(toDay + 'T00:00:00Z') + 86400000)) : '';
    const group = f.group.input.value;
    out.setAttribute('aria-busy', 'true');
    try {
      if (tenant && (group === 'key' || group === 'team')) await loadNames(tenant, names);
      const u = await api.get('/usage' + qs({ tenant, from, to, group_by: group }));
      out.append(render(u, group, f.metric.input.value, names));
    } catch (err) {
      const target = err.param === 'to' ? f.to : err.param === 'from' ? f.from : err.param === 'group_by' ? f.group : null;
      if (target) target.error.textContent = err.message;
      out.append(errorBox(err));
    } finally {
      out.removeAttribute('aria-busy');
    }
  }
  formEl.addEventListener('submit', (ev) => { ev.preventDefault(); load(); });
  f.metric.input.addEventListener('change', load);
  await load();
  return h('section', null,
    pageHeader('Usage', { subtitle: 'Tokens and cost from the usage rollups (reported by the data plane, applied exactly once).' }),
    formEl, out);
}

async function loadNames(tenant, names) {
  const [teams, keys] = await Promise.all([listAll(`/tenants/${enc(tenant)}/teams`), listAll(`/tenants/${enc(tenant)}/keys`)]);
  for (const t of teams) names.set(t.id, t.name);
  for (const k of keys) names.set(k.id, `${k.name} (${k.prefix}…)`);
}

function render(u, group, metric, names) {
  const dim = DIM[group];
  const rows = (u.data || []).filter((r) => r.requests || r.total_tokens || r.cost_usd)
    .map((r) => ({ ...r, label: r[dim] === null || r[dim] === undefined || r[dim] === '' ? '(none)' : names.get(r[dim]) || String(r[dim]) }));
  const value = (r) => (metric === 'tokens' ? r.total_tokens : metric === 'requests' ? r.requests : r.cost_usd);
  rows.sort((a, b) => value(b) - value(a) || a.label.localeCompare(b.label));
  const t = u.totals;
  const summary = h('div', { class: 'stats stats-row' },
    stat('Cost', fmtUsd(t.cost_usd)), stat('Requests', fmtInt(t.requests)), stat('Errors', fmtInt(t.errors)),
    stat('Prompt tokens', fmtInt(t.prompt_tokens)), stat('Completion tokens', fmtInt(t.completion_tokens)),
    stat('Total tokens', fmtInt(t.total_tokens)));
  if (!rows.length) return h('div', null, summary, h('p', { class: 'empty-state' }, 'No usage in this period.'));
  const label = (GROUPS.find(([g]) => g === group) || [group, group])[1];
  const cols = [
    { label, cell: (r) => h('span', { title: String(r[dim] ?? '') }, r.label) },
    { label: 'Requests', class: 'num', cell: (r) => fmtInt(r.requests) },
    { label: 'Errors', class: 'num', cell: (r) => fmtInt(r.errors) },
    { label: 'Prompt', class: 'num', cell: (r) => fmtInt(r.prompt_tokens) },
    { label: 'Cached', class: 'num', cell: (r) => fmtInt(r.cached_tokens) },
    { label: 'Completion', class: 'num', cell: (r) => fmtInt(r.completion_tokens) },
    { label: 'Total tokens', class: 'num', cell: (r) => fmtInt(r.total_tokens) },
    { label: 'Cost', class: 'num', cell: (r) => fmtUsd(r.cost_usd) },
  ];
  const totalsCell = {
    [label]: 'Total', Requests: fmtInt(t.requests), Errors: fmtInt(t.errors), Prompt: fmtInt(t.prompt_tokens),
    Cached: fmtInt(t.cached_tokens), Completion: fmtInt(t.completion_tokens), 'Total tokens': fmtInt(t.total_tokens), Cost: fmtUsd(t.cost_usd),
  };
  return h('div', null, summary,
    h('div', { class: 'card' }, barChart(rows.slice(0, 12), value, metric, label)),
    table(cols, rows, { caption: `Usage by ${label}`, footer: (c) => totalsCell[c.label] }));
}

function stat(label, value) {
  return h('div', { class: 'stat' }, h('div', { class: 'stat-value' }, value), h('div', { class: 'stat-label' }, label));
}

// Horizontal bars, one per group (largest first).
function barChart(rows, value, metric, label) {
  const fmt = metric === 'cost' ? fmtUsd : fmtInt;
  const max = Math.max(...rows.map(value), 0) || 1;
  const rowH = 26;
  const labelW = 220;
  const barW = 460;
  const width = labelW + barW + 110;
  const height = rows.length * rowH + 8;
  const title = `${metric === 'cost' ? 'Cost' : metric === 'tokens' ? 'Total tokens' : 'Requests'} by ${label === 'API key' ? label : label.toLowerCase()}`;
  const chart = svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, width: '100%', role: 'img', 'aria-label': title, preserveAspectRatio: 'xMinYMin meet' },
    svg('title', null, title),
    rows.map((r, i) => {
      const y = 4 + i * rowH;
      const w = Math.max(2, (value(r) / max) * barW);
      const text = r.label.length > 30 ? r.label.slice(0, 29) + '…' : r.label;
      return svg('g', { class: 'bar' },
        svg('text', { x: labelW - 8, y: y + 16, 'text-anchor': 'end', class: 'bar-label' }, text),
        svg('rect', { x: labelW, y: y + 3, width: w.toFixed(1), height: rowH - 8, rx: 3 }, svg('title', null, `${r.label}: ${fmt(value(r))}`)),
        svg('text', { x: labelW + w + 6, y: y + 16, class: 'bar-value' }, fmt(value(r))));
    }));
  return h('figure', { class: 'chart-fig' }, h('figcaption', null, title), chart);
}
