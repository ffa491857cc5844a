// Admin users (operators and tenant users) and their tokens: create (token
// shown once), rotate, disable, delete.
import { h, table, badge, fmtTime, toast } from '../dom.js';
import { api, enc, listAll } from '../api.js';
import { formDialog, confirmDialog, secretDialog } from '../forms.js';
import { ctx, refresh } from '../app.js';
import { pageHeader, button } from './common.js';

const ROLES = [['tenant_admin', 'Tenant admin'], ['tenant_viewer', 'Tenant viewer'], ['platform_admin', 'Platform admin']];

export async function usersView() {
  const [users, tenants] = await Promise.all([
    listAll('/users'),
    ctx.platform ? listAll('/tenants') : Promise.resolve([]),
  ]);
  const tname = new Map(tenants.map((t) => [t.id, t.name]));
  const mayChange = (u) => ctx.platform || (ctx.me.role === 'tenant_admin' && u.tenant_id === ctx.me.tenant_id && u.role !== 'platform_admin');
  const cols = [
    { label: 'Name', cell: (u) => [u.name, u.id === ctx.me.user_id ? h('span', { class: 'muted small' }, ' (you)') : null] },
    { label: 'Role', cell: (u) => (ROLES.find(([r]) => r === u.role) || [u.role, u.role])[1] },
    { label: 'Tenant', cell: (u) => (u.tenant_id ? tname.get(u.tenant_id) || h('code', null, u.tenant_id) : h('span', { class: 'muted' }, 'all (platform)')) },
    { label: 'Status', cell: (u) => (u.disabled ? badge('disabled', 'danger') : badge('active', 'ok')) },
    { label: 'Created', cell: (u) => fmtTime(u.created_at) },
  ];
  if (users.some(mayChange)) {
    cols.push({
      label: 'Actions', class: 'actions', cell: (u) => (mayChange(u) ? h('div', { class: 'row-actions' },
        button('New token', async () => {
          const tok = await formDialog(`New token for ${u.name}`, [
            { name: 'revoke_existing', label: 'Revoke this user\'s other tokens (rotation)', type: 'checkbox', value: true },
          ], { submitLabel: 'Create token', onSubmit: (v) => api.post(`/users/${enc(u.id)}/tokens`, v) });
          if (!tok) return;
          await secretDialog(`Admin token for ${u.name}`, tok.token,
            tok.revoked_others ? `${tok.revoked_others} older token(s) revoked.` : 'Only its SHA-256 is stored.');
          refresh();
        }, { small: true, label: `New token for ${u.name}` }),
        button(u.disabled ? 'Enable' : 'Disable', async () => {
          if (!u.disabled && !(await confirmDialog(`Disable ${u.name}?`, 'Their tokens stop working at once.', { confirmLabel: 'Disable user', danger: true }))) return;
          try {
            await api.patch(`/users/${enc(u.id)}`, { disabled: !u.disabled });
            toast(`${u.name} ${u.disabled ? 'enabled' : 'disabled'}.`);
            refresh();
          } catch (err) {
            toast(err.message, 'error');
          }
        }, { small: true, kind: u.disabled ? '' : 'danger-outline', label: `${u.disabled ? 'Enable' : 'Disable'} ${u.name}` }),
        button('Delete', async () => {
          if (!(await confirmDialog(`Delete ${u.name}?`, 'The user and all their tokens are removed. The audit log keeps their changes.', { confirmLabel: 'Delete user', danger: true }))) return;
          try {
            await api.del(`/users/${enc(u.id)}`);
            toast(`${u.name} deleted.`);
            refresh();
          } catch (err) {
            toast(err.message, 'error');
          }
        }, { small: true, kind: 'danger-outline', label: `Delete ${u.name}` })) : null),
    });
  }
  const canCreate = ctx.platform || ctx.me.role === 'tenant_admin';
  return h('section', null,
    pageHeader('Users', {
      subtitle: 'Who may use this console and the admin API. Tokens are shown once and stored hashed.',
      actions: canCreate ? [button('New user', async () => {
        const specs = [
          { name: 'name', label: 'Name', required: true, placeholder: 'alice@example.com' },
          { name: 'role', label: 'Role', type: 'select', value: 'tenant_viewer', options: ctx.platform ? ROLES : ROLES.slice(0, 2) },
        ];
        if (ctx.platform) {
          specs.push({ name: 'tenant_id', label: 'Tenant', type: 'select', empty: 'omit', value: tenants[0]?.id ?? '',
            options: [['', 'None (platform admins)'], ...tenants.map((t) => [t.id, t.name])], help: 'Required for tenant roles.' });
        }
        const created = await formDialog('New user', specs, { submitLabel: 'Create user', onSubmit: (v) => api.post('/users', v) });
        if (!created) return;
        await secretDialog(`Admin token for ${created.name}`, created.token, 'Hand it to the user over a safe channel; only its SHA-256 is stored.');
        refresh();
      }, { kind: 'primary' })] : [],
    }),
    table(cols, users, { empty: 'No users.', caption: 'Users' }));
}
