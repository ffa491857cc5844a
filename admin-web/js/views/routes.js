// Routes: a read-only view of aliases, their rules (first match wins) and
// ordered targets.
import { h, badge, fmtTime } from '../dom.js';
import { listAll } from '../api.js';
import { ctx } from '../app.js';
import { pageHeader } from './common.js';

function conditions(r) {
  const c = [];
  if (r.task) c.push(`task = ${r.task}`);
  if (r.min_prompt_tokens) c.push(`prompt ≥ ${r.min_prompt_tokens.toLocaleString('en-US')} tokens`);
  if (r.tenant_tier) c.push(`tier = ${r.tenant_tier}`);
  if (r.latency_class) c.push(`latency = ${r.latency_class}`);
  if (r.max_budget_remaining_fraction) c.push(`budget left ≤ ${Math.round(r.max_budget_remaining_fraction * 100)}%`);
  return c.length ? c.join(', ') : 'always';
}

export async function routesView() {
  const [routes, providers] = await Promise.all([listAll('/routes'), ctx.platform ? listAll('/providers') : Promise.resolve([])]);
  const pname = new Map(providers.map((p) => [p.id, p.name]));
  return h('section', null,
    pageHeader('Routes', { subtitle: 'Aliases clients can ask for ("auto", "fast"…): the first matching rule picks the targets, in the order of its strategy.' }),
    routes.length ? routes.map((rt) => h('article', { class: 'card route' },
      h('div', { class: 'route-head' },
        h('h2', null, h('code', null, rt.alias)),
        rt.tenant_id ? badge(`tenant ${rt.tenant_id}`, 'neutral') : badge('all tenants', 'info'),
        h('span', { class: 'muted small' }, `max attempts ${rt.max_attempts || 'default'} · deadline ${rt.deadline_ms ? rt.deadline_ms + ' ms' : 'default'} · updated ${fmtTime(rt.updated_at)}`)),
      h('div', { class: 'table-wrap' }, h('table', { class: 'data' },
        h('caption', { class: 'sr-only' }, `Rules of ${rt.alias}`),
        h('thead', null, h('tr', null, ['#', 'Rule', 'Matches when', 'Strategy', 'Targets'].map((l) => h('th', { scope: 'col' }, l)))),
        h('tbody', null, (rt.rules || []).map((r, i) => h('tr', null,
          h('td', null, String(i + 1)),
          h('td', null, r.name || h('span', { class: 'muted' }, 'unnamed')),
          h('td', null, conditions(r)),
          h('td', null, r.strategy || 'priority'),
          h('td', null, h('ol', { class: 'targets' }, (r.targets || []).map((t) => h('li', null, h('code', null, t.model_id),
            t.provider_id ? h('span', { class: 'muted' }, ` via ${pname.get(t.provider_id) || t.provider_id}`) : null,
            t.weight ? h('span', { class: 'muted' }, ` · weight ${t.weight}`) : null)))))))))))
      : h('p', { class: 'empty-state' }, 'No routes: clients ask for concrete models only.'));
}
