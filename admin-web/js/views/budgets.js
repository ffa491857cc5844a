// Budgets of a tenant (scope tenant, team or key; daily or monthly; soft
// threshold; hard block), with the spend of the current period from the
// usage API.
import { h, table, badge, fmtUsd, toast } from '../dom.js';
import { api, enc, qs, listAll } from '../api.js';
import { formDialog, confirmDialog } from '../forms.js';
import { refresh } from '../app.js';
import { button } from './common.js';
import { periodStart } from '../time.js';

function budgetFields(scopes, b) {
  const fields = [];
  if (!b) {
    const options = [['tenant', 'Whole tenant'], ['team', 'A team'], ['key', 'An API key']];
    fields.push({ name: 'scope', label: 'Applies to', type: 'select', value: 'tenant', options, required: true });
    fields.push({
      name: 'scope_id', label: 'Tenant, team or key', type: 'select', required: true, value: scopes[0][0],
      options: scopes, help: 'Pick the object matching "Applies to".',
    });
  }
  fields.push(
    { name: 'period', label: 'Period', type: 'select', value: b?.period ?? 'monthly', options: [['daily', 'Daily'], ['monthly', 'Monthly']] },
    { name: 'amount_usd', label: 'Amount (USD)', type: 'number', min: 0, step: 'any', required: true, value: b?.amount_usd ?? '' },
    { name: 'soft_threshold', label: 'Warning threshold', type: 'number', min: 0, max: 1, step: 0.05, value: b?.soft_threshold ?? 0.8, empty: 'omit', help: 'Fraction of the amount (0–1) that raises a warning.' },
    { name: 'hard', label: 'Hard limit: refuse requests once the amount is spent', type: 'checkbox', value: b ? b.hard : true },
  );
  return fields;
}

export async function budgetsPanel(tenant, write) {
  const [budgets, teams, keys] = await Promise.all([
    listAll('/budgets', { tenant_id: tenant.id }),
    listAll(`/tenants/${enc(tenant.id)}/teams`),
    listAll(`/tenants/${enc(tenant.id)}/keys`),
  ]);
  const names = new Map([[tenant.id, `Tenant ${tenant.name}`]]);
  for (const t of teams) names.set(t.id, `Team ${t.name}`);
  for (const k of keys) names.set(k.id, `Key ${k.name} (${k.prefix}…)`);
  // Spend of each budget's current window.
  const spend = await Promise.all(budgets.map(async (b) => {
    const filter = b.scope === 'tenant' ? { tenant: tenant.id } : b.scope === 'team' ? { tenant: tenant.id, team: b.scope_id } : { tenant: tenant.id, key: b.scope_id };
    try {
      const u = await api.get('/usage' + qs({ ...filter, from: periodStart(b.period, tenant.time_zone) }));
      return u.totals.cost_usd;
    } catch {
      return null;
    }
  }));
  const rows = budgets.map((b, i) => ({ ...b, spent: spend[i] }));
  const scopes = [[tenant.id, `Tenant ${tenant.name}`],
    ...teams.map((t) => [t.id, `Team ${t.name}`]),
    ...keys.filter((k) => !k.revoked_at).map((k) => [k.id, `Key ${k.name} (${k.prefix}…)`])];

  const cols = [
    { label: 'Applies to', cell: (b) => names.get(b.scope_id) || `${b.scope} ${b.scope_id}` },
    { label: 'Period', cell: (b) => b.period },
    { label: 'Amount', class: 'num', cell: (b) => fmtUsd(b.amount_usd) },
    { label: 'Spent this period', cell: (b) => spentCell(b) },
    { label: 'Warn at', class: 'num', cell: (b) => `${Math.round((b.soft_threshold ?? 0) * 100)}%` },
    { label: 'Kind', cell: (b) => (b.hard ? badge('hard', 'danger') : badge('soft', 'neutral')) },
  ];
  if (write) {
    cols.push({
      label: 'Actions', class: 'actions', cell: (b) => h('div', { class: 'row-actions' },
        button('Edit', async () => {
          const saved = await formDialog(`Edit budget of ${names.get(b.scope_id) || b.scope_id}`, budgetFields(scopes, b), {
            onSubmit: (v) => api.patch(`/budgets/${enc(b.id)}`, v),
          });
          if (saved) { toast('Budget saved.'); refresh(); }
        }, { small: true, label: `Edit budget of ${names.get(b.scope_id) || b.scope_id}` }),
        button('Delete', async () => {
          if (!(await confirmDialog('Delete this budget?', `${names.get(b.scope_id) || b.scope_id}: ${b.period} ${fmtUsd(b.amount_usd)}.`, { confirmLabel: 'Delete budget', danger: true }))) return;
          try {
            await api.del(`/budgets/${enc(b.id)}`);
            toast('Budget deleted.');
            refresh();
          } catch (err) {
            toast(err.message, 'error');
          }
        }, { small: true, kind: 'danger-outline', label: `Delete budget of ${names.get(b.scope_id) || b.scope_id}` })),
    });
  }
  return h('div', null,
    h('div', { class: 'section-head' }, h('h2', null, 'Budgets'),
      write ? button('New budget', async () => {
        const saved = await formDialog('New budget', budgetFields(scopes), {
          submitLabel: 'Create budget',
          onSubmit: (v) => api.post('/budgets', v),
          setup: (inputs) => {
            // Only the objects of the chosen scope.
            const fill = () => {
              const want = inputs.scope.value;
              const opts = scopes.filter(([id]) => (want === 'tenant' ? id === tenant.id : want === 'team' ? teams.some((t) => t.id === id) : keys.some((k) => k.id === id)));
              inputs.scope_id.replaceChildren(...opts.map(([id, label]) => h('option', { value: id }, label)));
              if (!opts.length) inputs.scope_id.append(h('option', { value: '' }, `No ${want} yet`));
            };
            inputs.scope.addEventListener('change', fill);
            fill();
          },
        });
        if (saved) { toast('Budget created.'); refresh(); }
      }, { kind: 'primary' }) : null),
    h('p', { class: 'muted small' }, `Windows start at midnight in the tenant's time zone (${tenant.time_zone}); spend comes from the usage rollups.`),
    table(cols, rows, { empty: 'No budgets yet. Without one, spend is unbounded.', caption: 'Budgets' }));
}

function spentCell(b) {
  if (b.spent === null || b.spent === undefined) return h('span', { class: 'muted' }, 'unknown');
  const frac = b.amount_usd > 0 ? b.spent / b.amount_usd : 0;
  const kind = frac >= 1 ? 'danger' : frac >= (b.soft_threshold || 1) ? 'warn' : 'ok';
  return h('div', { class: 'spend' },
    h('div', { class: 'small' }, `${fmtUsd(b.spent)} (${Math.round(frac * 100)}%)`),
    h('div', { class: `meter meter-${kind}`, role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': Math.min(100, Math.round(frac * 100)), 'aria-label': 'Share of the budget spent' },
      h('div', { class: 'meter-fill', style: { width: `${Math.min(100, frac * 100).toFixed(1)}%` } })));
}
