// Tenants: list, create, edit (tier, time zone, limits), block.
import { h, table, badge, fmtLimit, fmtTime, link, toast } from '../dom.js';
import { api, enc, qs } from '../api.js';
import { formDialog, confirmDialog } from '../forms.js';
import { ctx, refresh, navigate, errorBox } from '../app.js';
import { pageHeader, button, moreButton } from './common.js';

export function tenantFields(t = {}) {
  return [
    { name: 'name', label: 'Name', required: true, value: t.name, help: 'Unique display name.' },
    { name: 'tier', label: 'Tier', value: t.tier ?? 'standard', help: 'free, standard, enterprise… (matched by route rules)' },
    { name: 'time_zone', label: 'Time zone', value: t.time_zone ?? 'UTC', help: 'IANA name; budget days and months start at midnight here.', placeholder: 'Europe/Paris' },
    { name: 'rpm', label: 'Requests per minute', type: 'number', min: 0, step: 1, value: t.rpm ?? 0, empty: 'zero', help: '0 = unlimited' },
    { name: 'tpm', label: 'Tokens per minute', type: 'number', min: 0, step: 1, value: t.tpm ?? 0, empty: 'zero', help: '0 = unlimited' },
    { name: 'blocked', label: 'Blocked (every request of this tenant is refused)', type: 'checkbox', value: t.blocked },
  ];
}

export async function editTenant(t) {
  const saved = await formDialog(t ? `Edit tenant ${t.name}` : 'New tenant', tenantFields(t || {}), {
    submitLabel: t ? 'Save changes' : 'Create tenant',
    onSubmit: (v) => (t ? api.patch(`/tenants/${enc(t.id)}`, v) : api.post('/tenants', v)),
  });
  if (saved) toast(t ? `Tenant ${saved.name} saved.` : `Tenant ${saved.name} created.`);
  return saved;
}

export async function toggleBlock(t) {
  const block = !t.blocked;
  const ok = await confirmDialog(block ? `Block ${t.name}?` : `Unblock ${t.name}?`,
    block ? 'Every request with this tenant\'s keys will be refused until it is unblocked.'
      : 'Requests with this tenant\'s keys will be served again.',
    { confirmLabel: block ? 'Block tenant' : 'Unblock tenant', danger: block });
  if (!ok) return false;
  try {
    await api.patch(`/tenants/${enc(t.id)}`, { blocked: block });
    toast(block ? `${t.name} is blocked.` : `${t.name} is unblocked.`);
  } catch (err) {
    toast(err.message, 'error');
  }
  return true;
}

export async function tenantsView() {
  const page = await api.get('/tenants' + qs({ limit: 100 }));
  const canCreate = ctx.platform;
  const cols = [
    { label: 'Name', cell: (t) => link(`/admin/tenants/${enc(t.id)}`, t.name) },
    { label: 'Tier', cell: (t) => t.tier },
    { label: 'Time zone', cell: (t) => t.time_zone },
    { label: 'RPM', class: 'num', cell: (t) => fmtLimit(t.rpm) },
    { label: 'TPM', class: 'num', cell: (t) => fmtLimit(t.tpm) },
    { label: 'Status', cell: (t) => (t.blocked ? badge('blocked', 'danger') : badge('active', 'ok')) },
    { label: 'Created', cell: (t) => fmtTime(t.created_at) },
  ];
  if (ctx.platform) {
    cols.push({
      label: 'Actions', class: 'actions',
      cell: (t) => h('div', { class: 'row-actions' },
        button('Edit', async () => { if (await editTenant(t)) refresh(); }, { small: true, label: `Edit ${t.name}` }),
        button(t.blocked ? 'Unblock' : 'Block', async () => { if (await toggleBlock(t)) refresh(); },
          { small: true, kind: t.blocked ? '' : 'danger-outline', label: `${t.blocked ? 'Unblock' : 'Block'} ${t.name}` })),
    });
  }
  const list = h('div', null, table(cols, page.data, { empty: 'No tenants yet. Create the first one.', caption: 'Tenants' }));
  const tbody = list.querySelector('tbody');
  return h('section', null,
    pageHeader('Tenants', {
      subtitle: 'Customers of the gateway: each has its teams, API keys, budgets and limits.',
      actions: canCreate ? [button('New tenant', async () => {
        const t = await editTenant(null);
        if (t) navigate(`/admin/tenants/${enc(t.id)}`);
      }, { kind: 'primary' })] : [],
    }),
    list,
    moreButton(page, (cursor) => api.get('/tenants' + qs({ limit: 100, cursor })), (rows) => {
      const t = table(cols, rows);
      if (tbody && t.querySelector) for (const tr of t.querySelectorAll('tbody tr')) tbody.append(tr);
    }));
}

export { errorBox };
