// One tenant: overview, teams, API keys and budgets.
import { h, table, badge, fmtLimit, fmtTime, fmtUsd, fmtInt, link, toast } from '../dom.js';
import { api, enc, qs, listAll } from '../api.js';
import { formDialog, confirmDialog, secretDialog } from '../forms.js';
import { ctx, refresh } from '../app.js';
import { pageHeader, button } from './common.js';
import { editTenant, toggleBlock } from './tenants.js';
import { budgetsPanel } from './budgets.js';
import { periodStart } from '../time.js';

const TABS = [
  ['overview', 'Overview'],
  ['teams', 'Teams'],
  ['keys', 'API keys'],
  ['budgets', 'Budgets'],
];

export async function tenantView(id, tab) {
  const tenant = await api.get(`/tenants/${enc(id)}`);
  const write = ctx.canWrite(tenant.id);
  const base = `/admin/tenants/${enc(tenant.id)}`;
  const tabs = h('nav', { class: 'tabs', 'aria-label': 'Tenant sections' },
    TABS.map(([k, label]) => h('a', { href: k === 'overview' ? base : `${base}/${k}`, 'data-link': true, 'aria-current': k === tab ? 'page' : null }, label)));
  const actions = [];
  if (ctx.platform) {
    actions.push(button('Edit', async () => { if (await editTenant(tenant)) refresh(); }),
      button(tenant.blocked ? 'Unblock' : 'Block', async () => { if (await toggleBlock(tenant)) refresh(); },
        { kind: tenant.blocked ? '' : 'danger-outline' }));
  }
  let body;
  if (tab === 'teams') body = await teamsTab(tenant, write);
  else if (tab === 'keys') body = await keysTab(tenant, write);
  else if (tab === 'budgets') body = await budgetsTab(tenant, write);
  else body = await overviewTab(tenant);
  return h('section', null,
    pageHeader(tenant.name, {
      crumbs: ctx.platform ? [link('/admin/tenants', 'Tenants'), ' / ', tenant.name] : null,
      subtitle: h('span', null, tenant.blocked ? badge('blocked', 'danger') : badge('active', 'ok'), ' ',
        h('code', null, tenant.id)),
      actions,
    }),
    tabs,
    !write ? h('p', { class: 'readonly-note' }, 'Read-only: your role can view this tenant but not change it.') : null,
    body);
}

async function overviewTab(t) {
  const from = periodStart('monthly', t.time_zone || 'UTC');
  const [teams, keys, usage] = await Promise.all([
    api.get(`/tenants/${enc(t.id)}/teams?limit=1000`),
    api.get(`/tenants/${enc(t.id)}/keys?limit=1000`),
    api.get('/usage' + qs({ tenant: t.id, from })),
  ]);
  const live = keys.data.filter((k) => !k.revoked_at).length;
  const dl = (pairs) => h('dl', { class: 'props' }, pairs.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
  return h('div', { class: 'grid-2' },
    h('div', { class: 'card' }, h('h2', null, 'Settings'), dl([
      ['Tier', t.tier], ['Time zone', t.time_zone], ['Requests per minute', fmtLimit(t.rpm)],
      ['Tokens per minute', fmtLimit(t.tpm)], ['Created', fmtTime(t.created_at)], ['Updated', fmtTime(t.updated_at)],
    ])),
    h('div', { class: 'card' }, h('h2', null, 'This month'), h('div', { class: 'stats' },
      stat('Spend', fmtUsd(usage.totals.cost_usd)),
      stat('Requests', fmtInt(usage.totals.requests)),
      stat('Tokens', fmtInt(usage.totals.total_tokens)),
      stat('Teams', fmtInt(teams.data.length) + (teams.has_more ? '+' : '')),
      stat('Live keys', fmtInt(live)))));
}

function stat(label, value) {
  return h('div', { class: 'stat' }, h('div', { class: 'stat-value' }, value), h('div', { class: 'stat-label' }, label));
}

// ---- Teams

function teamFields(t = {}) {
  return [
    { name: 'name', label: 'Name', required: true, value: t.name, help: 'Unique within the tenant.' },
    { name: 'rpm', label: 'Requests per minute', type: 'number', min: 0, step: 1, value: t.rpm ?? 0, empty: 'zero', help: '0 = unlimited' },
    { name: 'tpm', label: 'Tokens per minute', type: 'number', min: 0, step: 1, value: t.tpm ?? 0, empty: 'zero', help: '0 = unlimited' },
    { name: 'blocked', label: 'Blocked', type: 'checkbox', value: t.blocked },
  ];
}

async function teamsTab(tenant, write) {
  const teams = await listAll(`/tenants/${enc(tenant.id)}/teams`);
  const cols = [
    { label: 'Name', cell: (t) => t.name },
    { label: 'RPM', class: 'num', cell: (t) => fmtLimit(t.rpm) },
    { label: 'TPM', class: 'num', cell: (t) => fmtLimit(t.tpm) },
    { label: 'Status', cell: (t) => (t.blocked ? badge('blocked', 'danger') : badge('active', 'ok')) },
    { label: 'Created', cell: (t) => fmtTime(t.created_at) },
  ];
  if (write) {
    cols.push({
      label: 'Actions', class: 'actions', cell: (t) => h('div', { class: 'row-actions' },
        button('Edit', async () => {
          const saved = await formDialog(`Edit team ${t.name}`, teamFields(t), { onSubmit: (v) => api.patch(`/teams/${enc(t.id)}`, v) });
          if (saved) { toast(`Team ${saved.name} saved.`); refresh(); }
        }, { small: true, label: `Edit team ${t.name}` }),
        button('Delete', async () => {
          if (!(await confirmDialog(`Delete team ${t.name}?`, 'A team with live API keys cannot be deleted: revoke or move its keys first.', { confirmLabel: 'Delete team', danger: true }))) return;
          try {
            await api.del(`/teams/${enc(t.id)}`);
            toast(`Team ${t.name} deleted.`);
            refresh();
          } catch (err) {
            toast(err.message, 'error');
          }
        }, { small: true, kind: 'danger-outline', label: `Delete team ${t.name}` })),
    });
  }
  return h('div', null,
    h('div', { class: 'section-head' }, h('h2', null, 'Teams'),
      write ? button('New team', async () => {
        const saved = await formDialog('New team', teamFields(), { submitLabel: 'Create team', onSubmit: (v) => api.post(`/tenants/${enc(tenant.id)}/teams`, v) });
        if (saved) { toast(`Team ${saved.name} created.`); refresh(); }
      }, { kind: 'primary' }) : null),
    table(cols, teams, { empty: 'No teams yet. Teams group keys for limits, budgets and usage.', caption: 'Teams' }));
}

// ---- API keys

function keyStatus(k) {
  if (k.revoked_at) return badge('revoked', 'danger');
  if (k.expires_at && k.expires_at * 1000 <= Date.now()) return badge('expired', 'warn');
  return badge('active', 'ok');
}

function dateInput(unix) {
  return unix ? new Date(unix * 1000).toISOString().slice(0, 10) : '';
}

function keyFields(teams, k = {}) {
  return [
    { name: 'name', label: 'Name', required: true, value: k.name, help: 'What uses this key, e.g. "checkout-service".' },
    { name: 'team_id', label: 'Team', type: 'select', empty: 'null', value: k.team_id ?? '',
      options: [['', 'No team'], ...teams.map((t) => [t.id, t.name])] },
    { name: 'expires_at', label: 'Expires on (UTC)', type: 'date', empty: 'zero', value: dateInput(k.expires_at), help: 'The key stops working at 00:00 UTC that day. Empty = never.' },
    { name: 'allowed_models', label: 'Allowed models', list: true, empty: 'empty', value: (k.allowed_models || []).join(', '),
      placeholder: 'gpt-4o, auto', help: 'Model ids or route aliases, comma separated. Empty = all.' },
    { name: 'rpm', label: 'Requests per minute', type: 'number', min: 0, step: 1, value: k.rpm ?? 0, empty: 'zero', help: '0 = unlimited' },
    { name: 'tpm', label: 'Tokens per minute', type: 'number', min: 0, step: 1, value: k.tpm ?? 0, empty: 'zero', help: '0 = unlimited' },
    { name: 'budget_usd', label: 'Lifetime budget (USD)', type: 'number', min: 0, step: 'any', value: k.budget_usd ?? 0, empty: 'zero', help: '0 = none' },
  ];
}

async function keysTab(tenant, write) {
  const [keys, teams] = await Promise.all([listAll(`/tenants/${enc(tenant.id)}/keys`), listAll(`/tenants/${enc(tenant.id)}/teams`)]);
  const teamName = new Map(teams.map((t) => [t.id, t.name]));
  keys.reverse(); // newest first
  const cols = [
    { label: 'Name', cell: (k) => k.name },
    { label: 'Prefix', cell: (k) => h('code', null, `${k.prefix}…`) },
    { label: 'Team', cell: (k) => (k.team_id ? teamName.get(k.team_id) || k.team_id : h('span', { class: 'muted' }, '—')) },
    { label: 'Limits', cell: (k) => h('span', { class: 'small' }, `RPM ${fmtLimit(k.rpm)} · TPM ${fmtLimit(k.tpm)}`, k.budget_usd ? ` · ${fmtUsd(k.budget_usd)}` : '') },
    { label: 'Models', cell: (k) => (k.allowed_models && k.allowed_models.length ? k.allowed_models.join(', ') : h('span', { class: 'muted' }, 'all')) },
    { label: 'Expires', cell: (k) => (k.expires_at ? fmtTime(k.expires_at) : 'never') },
    { label: 'Status', cell: (k) => [keyStatus(k), k.revoked_at ? h('div', { class: 'small muted' }, fmtTime(k.revoked_at)) : null] },
    { label: 'Created', cell: (k) => fmtTime(k.created_at) },
  ];
  if (write) {
    cols.push({
      label: 'Actions', class: 'actions', cell: (k) => (k.revoked_at ? null : h('div', { class: 'row-actions' },
        button('Edit', async () => {
          const saved = await formDialog(`Edit key ${k.name}`, keyFields(teams, k), { onSubmit: (v) => api.patch(`/keys/${enc(k.id)}`, v) });
          if (saved) { toast(`Key ${saved.name} saved.`); refresh(); }
        }, { small: true, label: `Edit key ${k.name}` }),
        button('Revoke', async () => {
          const ok = await confirmDialog(`Revoke key ${k.name}?`,
            `Requests with ${k.prefix}… will be refused within seconds. This cannot be undone.`, { confirmLabel: 'Revoke key', danger: true });
          if (!ok) return;
          try {
            await api.del(`/keys/${enc(k.id)}`);
            toast(`Key ${k.name} revoked.`);
            refresh();
          } catch (err) {
            toast(err.message, 'error');
          }
        }, { small: true, kind: 'danger-outline', label: `Revoke key ${k.name}` }))),
    });
  }
  return h('div', null,
    h('div', { class: 'section-head' }, h('h2', null, 'API keys'),
      write ? button('New API key', async () => {
        const created = await formDialog('New API key', keyFields(teams), {
          submitLabel: 'Create key', onSubmit: (v) => api.post(`/tenants/${enc(tenant.id)}/keys`, v),
        });
        if (!created) return;
        const secret = created.secret;
        delete created.secret;
        await secretDialog(`API key ${created.name} created`, secret,
          'Only its SHA-256 is stored; if it is lost, create a new key and revoke this one.');
        refresh();
      }, { kind: 'primary' }) : null),
    table(cols, keys, { empty: 'No API keys yet.', caption: 'API keys' }));
}

// ---- Budgets

function budgetsTab(tenant, write) {
  return budgetsPanel(tenant, write);
}
